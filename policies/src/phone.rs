//! Japanese phone numbers for the second factor (SPEC §7 "Phone numbers: Japanese numbers only,
//! stored as E.164 (+81...)"; seed 001 "二要素認証", 001 作業① AL-AN).
//!
//! [`PhoneNumber::parse`] accepts what people type — `090-1234-5678`, `(03) 1234-5678`,
//! full-width `０９０１２３４５６７８`, `+81 90 1234 5678`, `+81-90-…` — and keeps only the E.164
//! form. [`PhoneNumber::check_for`] then decides whether a number may receive a code by SMS or by
//! a voice call.
//!
//! Decisions where the spec is silent:
//! - Accepted: mobiles 070/080/090 (11 digits), IP phones 050 (11 digits) and fixed lines (0 +
//!   area code, 10 digits). SMS goes to mobiles only; a voice call goes to any accepted number.
//! - Refused at parse (`phone.kind`): free dial 0120/0800 and the other non-geographic services
//!   (0570 navi-dial, 0180, 0990 premium, 020 pagers/M2M, 060). They are shared inbound service
//!   lines, not a person's phone, and providers abroad often cannot call them.
//! - `+81` is the only country code (`phone.country` otherwise). `81…` without `+` and the
//!   `00`/`010` international prefixes are refused (`phone.format`): the intent is ambiguous.
//! - After `+81`, a trunk `0` (`+81 (0)90…`, `+81 090…`) is tolerated and dropped: a Japanese
//!   national significant number never starts with 0, so the reading is unambiguous.
//! - Separators: ASCII and full-width hyphens, dashes, the long-vowel mark `ー` people type for a
//!   hyphen in Japanese input, spaces (also U+3000) and parentheses. Nothing else.

use std::fmt;

use crate::Violation;

/// Longest raw input looked at; anything longer is refused before any work.
const MAX_RAW_CHARS: usize = 64;

/// A Japanese phone number, validated and kept in E.164 (`+819012345678`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    e164: String,
    kind: PhoneKind,
}

/// What kind of line a number is, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneKind {
    /// 070, 080, 090: can receive SMS and calls.
    Mobile,
    /// 050: calls only.
    IpPhone,
    /// 0 + area code, 10 digits: calls only.
    Fixed,
}

/// How a code would reach a phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PhoneChannel {
    Sms,
    Voice,
}

fn format_violation() -> Violation {
    Violation::new(
        "phone.format",
        "電話番号の形式が正しくありません。090-1234-5678 や 03-1234-5678 のように入力してください。",
        "The phone number is not valid; enter it like 090-1234-5678 or 03-1234-5678.",
    )
}

fn country_violation() -> Violation {
    Violation::new(
        "phone.country",
        "日本国内の電話番号（+81）のみ登録できます。",
        "Only Japanese phone numbers (+81) are accepted.",
    )
}

fn plus_required_violation() -> Violation {
    Violation::new(
        "phone.format",
        "国番号から入力する場合は +81 のように先頭に + を付けてください。",
        "Write the country code with a leading +, as in +81.",
    )
}

fn kind_violation() -> Violation {
    Violation::new(
        "phone.kind",
        "フリーダイヤル（0120/0800）やナビダイヤル等の番号は二要素認証の宛先に登録できません。携帯電話・固定電話・050の番号を入力してください。",
        "Free-dial (0120/0800) and other service numbers cannot receive codes; enter a mobile, fixed-line or 050 number.",
    )
}

/// Maps one input character to a digit, `+`, a separator (`None`), or refuses it (`Err`).
fn normalize(c: char) -> Result<Option<char>, ()> {
    match c {
        '0'..='9' | '+' => Ok(Some(c)),
        // Full-width digits and plus sign.
        '０'..='９' => {
            let offset = u32::from(c) - u32::from('０');
            char::from_digit(offset, 10).map(Some).ok_or(())
        }
        '＋' => Ok(Some('+')),
        // Hyphens and dashes, ASCII and Japanese, including the long-vowel marks often typed
        // for a hyphen, spaces and parentheses in both widths.
        '-' | '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '－' | 'ー' | 'ｰ' | ' ' | '\u{3000}'
        | '(' | ')' | '（' | '）' => Ok(None),
        _ => Err(()),
    }
}

impl PhoneNumber {
    /// Parses a Japanese phone number as typed, with or without separators, in national form
    /// (`0…`) or with the country code (`+81…`). Pure; never panics.
    pub fn parse(raw: &str) -> Result<PhoneNumber, Violation> {
        let raw = raw.trim_matches(|c: char| c.is_whitespace());
        if raw.is_empty() || raw.chars().count() > MAX_RAW_CHARS {
            return Err(format_violation());
        }
        let mut compact = String::with_capacity(raw.len());
        for c in raw.chars() {
            match normalize(c) {
                Ok(Some(c)) => compact.push(c),
                Ok(None) => {}
                Err(()) => return Err(format_violation()),
            }
        }

        // The national number, always starting with the trunk prefix 0.
        let national = if let Some(rest) = compact.strip_prefix('+') {
            if rest.contains('+') || rest.is_empty() {
                return Err(format_violation());
            }
            let Some(after_country) = rest.strip_prefix("81") else {
                return Err(country_violation());
            };
            // `+81 (0)90…` and `+81 090…`: drop a written trunk 0.
            let significant = after_country.strip_prefix('0').unwrap_or(after_country);
            format!("0{significant}")
        } else if compact.contains('+') {
            return Err(format_violation());
        } else if compact.starts_with("81") {
            return Err(plus_required_violation());
        } else {
            compact
        };

        let kind = classify(&national)?;
        let e164 = format!("+81{}", &national[1..]);
        Ok(PhoneNumber { e164, kind })
    }

    /// The E.164 form, e.g. `+819012345678`: what is stored and sent to providers.
    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// The national form without separators, e.g. `09012345678`.
    pub fn national(&self) -> String {
        format!("0{}", &self.e164[3..])
    }

    pub fn kind(&self) -> PhoneKind {
        self.kind
    }

    /// Whether the number is a mobile (070/080/090), the only kind that receives SMS.
    pub fn is_mobile(&self) -> bool {
        self.kind == PhoneKind::Mobile
    }

    /// Whether a code may be sent to this number over `channel`: SMS only to mobiles; voice to
    /// any accepted number.
    pub fn check_for(&self, channel: PhoneChannel) -> Result<(), Violation> {
        match channel {
            PhoneChannel::Sms if !self.is_mobile() => Err(Violation::new(
                "phone.sms_mobile_only",
                "SMS は携帯電話番号（070/080/090）にのみ送信できます。固定電話・050の番号では音声通話を選んでください。",
                "SMS can only be sent to mobile numbers (070/080/090); choose a voice call for fixed-line or 050 numbers.",
            )),
            PhoneChannel::Sms | PhoneChannel::Voice => Ok(()),
        }
    }
}

/// Decides the kind of a national number (`0` followed by digits only).
fn classify(national: &str) -> Result<PhoneKind, Violation> {
    let bytes = national.as_bytes();
    if bytes.len() < 2 || bytes[0] != b'0' || !bytes.iter().all(u8::is_ascii_digit) {
        return Err(format_violation());
    }
    let starts = |prefix: &str| national.starts_with(prefix);
    // Free dial and the other non-geographic services, whatever their length.
    if ["0120", "0800", "0570", "0180", "0990", "020", "060"]
        .iter()
        .any(|p| starts(p))
    {
        return Err(kind_violation());
    }
    match national.len() {
        11 if starts("070") || starts("080") || starts("090") => Ok(PhoneKind::Mobile),
        11 if starts("050") => Ok(PhoneKind::IpPhone),
        // 0 + a geographic area code: 00 (carrier prefixes), 010 (international prefix) and the
        // 0[5-9]0 non-geographic blocks are not area codes.
        10 if bytes[1] != b'0'
            && !starts("010")
            && !(matches!(bytes[1], b'5'..=b'9') && bytes[2] == b'0') =>
        {
            Ok(PhoneKind::Fixed)
        }
        _ => Err(format_violation()),
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One row: `raw` parses to `expected` E.164, or fails with the rule `expected` names.
    fn check(raw: &str, expected: Result<&str, &str>) {
        let got = PhoneNumber::parse(raw)
            .map(|p| p.as_e164().to_owned())
            .map_err(|v| v.rule);
        assert_eq!(got, expected.map(str::to_owned), "{raw:?}");
    }

    #[test]
    fn japanese_numbers_are_stored_as_e164() {
        // SPEC §7: "Japanese numbers only, stored as E.164 (+81...)".
        let rows: &[(&str, Result<&str, &str>)] = &[
            ("09012345678", Ok("+819012345678")),
            ("090-1234-5678", Ok("+819012345678")),
            ("080 1234 5678", Ok("+818012345678")),
            ("070(1234)5678", Ok("+817012345678")),
            ("０９０－１２３４－５６７８", Ok("+819012345678")),
            ("０９０ー１２３４ー５６７８", Ok("+819012345678")),
            ("090\u{3000}1234\u{3000}5678", Ok("+819012345678")),
            ("  090-1234-5678 ", Ok("+819012345678")),
            ("+819012345678", Ok("+819012345678")),
            ("+81-90-1234-5678", Ok("+819012345678")),
            ("+81 90 1234 5678", Ok("+819012345678")),
            ("＋８１９０１２３４５６７８", Ok("+819012345678")),
            // Decision: a written trunk 0 after +81 is dropped.
            ("+81 (0)90-1234-5678", Ok("+819012345678")),
            ("+81 090 1234 5678", Ok("+819012345678")),
            // IP phone 050, 11 digits.
            ("050-1234-5678", Ok("+815012345678")),
            // Fixed lines: 0 + area code, 10 digits in total.
            ("03-1234-5678", Ok("+81312345678")),
            ("(03)1234-5678", Ok("+81312345678")),
            ("06-6123-4567", Ok("+81661234567")),
            ("011-123-4567", Ok("+81111234567")),
            ("0422-12-3456", Ok("+81422123456")),
            ("04992-1-2345", Ok("+81499212345")),
            ("0550-12-3456", Ok("+81550123456")),
            ("+81-3-1234-5678", Ok("+81312345678")),
        ];
        for (raw, expected) in rows {
            check(raw, *expected);
        }
    }

    #[test]
    fn other_countries_and_malformed_input_are_refused() {
        // SPEC §7: Japanese numbers only.
        let rows: &[(&str, Result<&str, &str>)] = &[
            ("+1 206 555 0100", Err("phone.country")),
            ("+44 20 7946 0958", Err("phone.country")),
            ("+8", Err("phone.country")),
            ("+", Err("phone.format")),
            // Decision: 81… without + is ambiguous and refused.
            ("819012345678", Err("phone.format")),
            ("0081-90-1234-5678", Err("phone.format")),
            ("010-81-90-1234-5678", Err("phone.format")),
            ("", Err("phone.format")),
            ("   ", Err("phone.format")),
            ("9012345678", Err("phone.format")),
            ("090-1234-567", Err("phone.format")),
            ("090-1234-56789", Err("phone.format")),
            ("03-1234-567", Err("phone.format")),
            ("03-1234-56789", Err("phone.format")),
            ("050-123-4567", Err("phone.format")),
            ("090.1234.5678", Err("phone.format")),
            ("090-1234-567８x", Err("phone.format")),
            ("+81+9012345678", Err("phone.format")),
            ("09012345678+", Err("phone.format")),
            ("tel:09012345678", Err("phone.format")),
            ("٠٩٠١٢٣٤٥٦٧٨", Err("phone.format")),
            ("+81", Err("phone.format")),
            ("00-1234-5678", Err("phone.format")),
        ];
        for (raw, expected) in rows {
            check(raw, *expected);
        }
    }

    #[test]
    fn service_numbers_are_refused() {
        // Decision (module doc): free dial and other service numbers are not personal phones.
        for raw in [
            "0120-123-456",
            "0800-123-4567",
            // 080-0… is the 0800 free-dial block, not a mobile.
            "080-0123-4567",
            "0570-123-456",
            "0180-123-456",
            "0990-123-456",
            "020-1234-5678",
            "060-1234-5678",
            "+81 120 123 456",
        ] {
            check(raw, Err("phone.kind"));
        }
    }

    #[test]
    fn sms_goes_to_mobiles_only() {
        // SPEC §7 methods: sms (2) and voice (3); SMS reaches only mobiles.
        let rows: &[(&str, PhoneKind, bool, bool)] = &[
            ("090-1234-5678", PhoneKind::Mobile, true, true),
            ("080-1234-5678", PhoneKind::Mobile, true, true),
            ("070-1234-5678", PhoneKind::Mobile, true, true),
            ("050-1234-5678", PhoneKind::IpPhone, false, true),
            ("03-1234-5678", PhoneKind::Fixed, false, true),
        ];
        for (raw, kind, sms, voice) in rows {
            let phone = PhoneNumber::parse(raw).expect(raw);
            assert_eq!(phone.kind(), *kind, "{raw}");
            assert_eq!(phone.is_mobile(), *sms, "{raw}");
            assert_eq!(phone.check_for(PhoneChannel::Sms).is_ok(), *sms, "{raw}");
            assert_eq!(
                phone.check_for(PhoneChannel::Voice).is_ok(),
                *voice,
                "{raw}"
            );
        }
        let refusal = PhoneNumber::parse("03-1234-5678")
            .unwrap()
            .check_for(PhoneChannel::Sms)
            .unwrap_err();
        assert_eq!(refusal.rule, "phone.sms_mobile_only");
        assert!(refusal.message_ja.contains("携帯電話"));
    }

    #[test]
    fn messages_are_bilingual() {
        let v = PhoneNumber::parse("+1 206 555 0100").unwrap_err();
        assert!(v.message_ja.contains("日本国内"));
        assert!(v.message_en.contains("Japanese"));
    }

    #[test]
    fn display_and_national_forms() {
        let phone = PhoneNumber::parse("090-1234-5678").unwrap();
        assert_eq!(phone.to_string(), "+819012345678");
        assert_eq!(phone.national(), "09012345678");
        assert_eq!(PhoneNumber::parse(phone.as_e164()).unwrap(), phone);
    }

    proptest! {
        #[test]
        fn never_panics(raw in "\\PC*") {
            let _ = PhoneNumber::parse(&raw);
        }

        #[test]
        fn never_panics_on_phone_like_input(raw in "[+＋0-9０-９()（） ー－-]{0,20}") {
            if let Ok(phone) = PhoneNumber::parse(&raw) {
                // Whatever is accepted is E.164 for Japan and parses back to itself.
                prop_assert!(phone.as_e164().starts_with("+81"));
                prop_assert!(phone.as_e164()[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(PhoneNumber::parse(phone.as_e164()).unwrap(), phone);
            }
        }

        #[test]
        // 0800 is free dial, not a mobile block, so the digit after 0X0 is 1-9 here.
        fn mobiles_round_trip(prefix in "0[789]0", rest in "[1-9][0-9]{7}") {
            let national = format!("{prefix}{rest}");
            let phone = PhoneNumber::parse(&national).unwrap();
            prop_assert!(phone.is_mobile());
            prop_assert_eq!(phone.national(), national);
        }
    }
}
