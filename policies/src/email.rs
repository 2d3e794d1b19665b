//! E-mail addresses for the second factor (SPEC §7, method `email`).
//!
//! A pragmatic check, not RFC 5322: one `@`, a local part of 1-64 characters, a domain with a
//! dot and no empty label, at most 254 characters in total, no spaces or control characters.
//! The domain is lower-cased (domains are case-insensitive); the local part is kept as typed,
//! since a mail server may treat its case as significant. Surrounding whitespace is trimmed.
//! Whether the address exists is only known once a code sent to it is confirmed.

use std::fmt;

use crate::Violation;

const MAX_TOTAL: usize = 254;
const MAX_LOCAL: usize = 64;

/// An e-mail address that passed the pragmatic check; the domain is lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

fn format_violation() -> Violation {
    Violation::new(
        "email.format",
        "メールアドレスの形式が正しくありません（例: taro@example.jp）。",
        "The e-mail address is not valid (e.g. taro@example.jp).",
    )
}

fn total_length_violation() -> Violation {
    Violation::new(
        "email.length",
        "メールアドレスは254文字以内で入力してください。",
        "The e-mail address must be at most 254 characters.",
    )
}

impl EmailAddress {
    /// Checks and normalises an address. Pure; never panics.
    pub fn parse(raw: &str) -> Result<EmailAddress, Violation> {
        let raw = raw.trim_matches(|c: char| c.is_whitespace());
        if raw.chars().count() > MAX_TOTAL {
            return Err(total_length_violation());
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format_violation());
        }
        let mut parts = raw.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format_violation());
        };
        if local.is_empty() {
            return Err(format_violation());
        }
        if local.chars().count() > MAX_LOCAL {
            return Err(Violation::new(
                "email.length",
                "メールアドレスの @ より前は64文字以内で入力してください。",
                "The part before @ must be at most 64 characters.",
            ));
        }
        if !domain.contains('.') || domain.split('.').any(str::is_empty) {
            return Err(format_violation());
        }
        let address = format!("{local}@{}", domain.to_lowercase());
        // Lower-casing can lengthen a few non-ASCII characters, so the limit is checked again.
        if address.chars().count() > MAX_TOTAL {
            return Err(total_length_violation());
        }
        Ok(EmailAddress(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`, lower-case.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One row: `raw` normalises to `expected`, or fails with the rule `expected` names.
    fn check(raw: &str, expected: Result<&str, &str>) {
        let got = EmailAddress::parse(raw)
            .map(|e| e.as_str().to_owned())
            .map_err(|v| v.rule);
        assert_eq!(got, expected.map(str::to_owned), "{raw:?}");
    }

    #[test]
    fn pragmatic_check() {
        // SPEC §7: method `email` (1: メール) needs a deliverable address.
        let long_local = "a".repeat(65);
        let long_total = format!("a@{}.jp", "b".repeat(250));
        let rows: Vec<(&str, Result<&str, &str>)> = vec![
            ("taro@example.jp", Ok("taro@example.jp")),
            (
                "Taro.Yamada+2fa@Clinic.Example.JP",
                Ok("Taro.Yamada+2fa@clinic.example.jp"),
            ),
            (" taro@example.jp\n", Ok("taro@example.jp")),
            ("taro@例え.jp", Ok("taro@例え.jp")),
            ("", Err("email.format")),
            ("taro", Err("email.format")),
            ("@example.jp", Err("email.format")),
            ("taro@", Err("email.format")),
            ("taro@localhost", Err("email.format")),
            ("taro@@example.jp", Err("email.format")),
            ("a@b@example.jp", Err("email.format")),
            ("taro yamada@example.jp", Err("email.format")),
            ("taro@example..jp", Err("email.format")),
            ("taro@.example.jp", Err("email.format")),
            ("taro@example.jp.", Err("email.format")),
            ("taro\u{0}@example.jp", Err("email.format")),
            ("taro@exa\u{3000}mple.jp", Err("email.format")),
            (&long_local, Err("email.format")),
            (&long_total, Err("email.length")),
        ];
        for (raw, expected) in rows {
            check(raw, expected);
        }
        check(&format!("{long_local}@example.jp"), Err("email.length"));
        check(
            &format!("{}@example.jp", "a".repeat(64)),
            Ok(&format!("{}@example.jp", "a".repeat(64))),
        );
    }

    #[test]
    fn domain_accessor() {
        assert_eq!(
            EmailAddress::parse("x@Example.JP").unwrap().domain(),
            "example.jp"
        );
    }

    proptest! {
        #[test]
        fn never_panics(raw in "\\PC*") {
            if let Ok(email) = EmailAddress::parse(&raw) {
                prop_assert!(email.as_str().chars().count() <= MAX_TOTAL);
                prop_assert_eq!(EmailAddress::parse(email.as_str()).unwrap(), email);
            }
        }
    }
}
