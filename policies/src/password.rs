//! The password policy (SPEC §5, seed 001 "パスワードのルール"): a data profile whose default is the
//! seed's rules verbatim, a checker that lists every failed rule in Japanese and English, and the
//! generator of initial passwords (seed 002 §2-2, 000 §2).
//!
//! The yen sign U+00A5 and the backslash U+005C are one key on Japanese keyboards, so the policy
//! treats them as the same character, and [`canonical`] maps one to the other: the service hashes
//! and compares the canonical form, so a password typed on either keyboard verifies.

use std::borrow::Cow;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{AccountType, Violation};

/// The symbols of seed 001, in the seed's order; `\` stands for the key labelled `¥`.
pub const SEED_SYMBOLS: &str = "@#$%^&*-!+=[]{}|\\:',.?/`~\"();";

/// Length of generated initial passwords for people [002 §2-2] and for machine accounts.
pub const INITIAL_LENGTH_HUMAN: usize = 12;
pub const INITIAL_LENGTH_MACHINE: usize = 24;

/// Bounds an operator may configure: the seed's profile is the floor (only tightening makes
/// sense), 128 the ceiling (argon2 input stays small).
pub const MIN_LENGTH_FLOOR: usize = 8;
pub const MAX_LENGTH_CEILING: usize = 128;
pub const MAX_HISTORY_DEPTH: u32 = 24;

/// Characters the generator never uses because they are confused with another character on paper,
/// on screen or when read aloud, or because they sit on a different key on Japanese keyboards:
/// `0 O o D Q`, `1 l I i j | !`, `S s` (5), `Z z` (2), `B` (8), and the punctuation
/// `` ` ' " , . ; : - ~ ^ \ ¥ ``.
pub const LOOK_ALIKES: &str = "0OoDQ1lIij|!SsZzB`'\",.;:-~^\\\u{a5}";

/// Symbols left out of machine secrets because `application/x-www-form-urlencoded` decoding
/// changes them.
pub const FORM_SIGNIFICANT: &str = "+%&";

/// How many offending characters a message names at most.
const MAX_NAMED: usize = 5;

/// How many uniform candidates the generator draws before building one by construction. A real
/// CSPRNG needs more than three about once in a trillion calls; only a broken random source (one
/// that repeats a value) reaches the fallback.
const MAX_GENERATION_ATTEMPTS: usize = 256;

/// The password profile. Configuration, not code: `[password]` in the config file, validated at
/// startup with [`PasswordPolicy::validate`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordPolicy {
    /// Fewest characters (seed: 8).
    pub min_length: usize,
    /// Most characters (seed: 30).
    pub max_length: usize,
    /// The allowed symbols. `\` and `¥` each stand for both.
    pub symbols: String,
    /// Whether the digit `0` is allowed. The seed lists the digits 1-9 only.
    pub allow_zero: bool,
    /// How many of the four classes (lower, upper, digit, symbol) a password must mix (seed: 3).
    pub min_classes: u8,
    /// The longest run of one character (seed: 2, i.e. three in a row are refused).
    pub max_repeat: usize,
    /// How many previous passwords, besides the current one, may not be reused. The seed refuses
    /// only the current password, so the default is 0. The check needs the stored hashes, so the
    /// service performs it and reports [`history_violation`].
    pub history_depth: u32,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 30,
            symbols: SEED_SYMBOLS.to_owned(),
            allow_zero: false,
            min_classes: 3,
            max_repeat: 2,
            history_depth: 0,
        }
    }
}

/// What the checker compares a new password with. Both are optional: an admin reset has no
/// current password, and the policy-check endpoint may not name a user.
#[derive(Clone, Copy, Default)]
pub struct PasswordContext<'a> {
    pub user_id: Option<&'a str>,
    pub current_password: Option<&'a str>,
}

impl std::fmt::Debug for PasswordContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordContext")
            .field("user_id", &self.user_id)
            .field(
                "current_password",
                &self.current_password.map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The four character classes of seed 001.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    Digit,
    Symbol,
}

impl PasswordPolicy {
    /// Checks the profile at startup, naming the offending field.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_LENGTH_FLOOR..=MAX_LENGTH_CEILING).contains(&self.min_length) {
            return Err(format!(
                "password.min_length must be between {MIN_LENGTH_FLOOR} and {MAX_LENGTH_CEILING} (got {})",
                self.min_length
            ));
        }
        if !(self.min_length..=MAX_LENGTH_CEILING).contains(&self.max_length) {
            return Err(format!(
                "password.max_length must be between min_length ({}) and {MAX_LENGTH_CEILING} (got {})",
                self.min_length, self.max_length
            ));
        }
        if self.max_length < INITIAL_LENGTH_MACHINE {
            // Machine secrets are generated at this length and stored with a fast keyed hash,
            // which is sound only because they carry well over 128 bits.
            return Err(format!(
                "password.max_length must be at least {INITIAL_LENGTH_MACHINE}: machine account secrets are generated at that length (got {})",
                self.max_length
            ));
        }
        if self.symbols.is_empty() {
            return Err("password.symbols must not be empty".to_owned());
        }
        if let Some(bad) = self
            .symbols
            .chars()
            .find(|c| !c.is_ascii_punctuation() && *c != '¥')
        {
            return Err(format!(
                "password.symbols may contain only ASCII punctuation and ¥ (got {bad:?})"
            ));
        }
        if !(3..=4).contains(&self.min_classes) {
            return Err(format!(
                "password.min_classes must be 3 or 4 (got {})",
                self.min_classes
            ));
        }
        if !(1..=2).contains(&self.max_repeat) {
            return Err(format!(
                "password.max_repeat must be 1 or 2 (got {})",
                self.max_repeat
            ));
        }
        if self.history_depth > MAX_HISTORY_DEPTH {
            return Err(format!(
                "password.history_depth must be between 0 and {MAX_HISTORY_DEPTH} (got {})",
                self.history_depth
            ));
        }
        Ok(())
    }

    /// Checks a new password, returning every rule it fails (empty = accepted). Never echoes the
    /// password: the disallowed-character message names at most a few offending characters, and
    /// none when every character is disallowed.
    pub fn check(&self, password: &str, ctx: &PasswordContext<'_>) -> Vec<Violation> {
        let mut violations = Vec::new();

        let mut len = 0usize;
        let mut classes = [false; 4];
        let mut zero = false;
        let mut bad: Vec<char> = Vec::new();
        let mut bad_count = 0usize;
        let mut run = 0usize;
        let mut longest_run = 0usize;
        let mut previous: Option<char> = None;
        for c in password.chars() {
            len += 1;
            let key = canonical_char(c);
            run = if previous == Some(key) { run + 1 } else { 1 };
            longest_run = longest_run.max(run);
            previous = Some(key);
            if c == '0' && !self.allow_zero {
                zero = true;
                continue;
            }
            match self.class_of(c) {
                Some(class) => classes[class as usize] = true,
                None => {
                    bad_count += 1;
                    if bad.len() < MAX_NAMED && !bad.contains(&c) {
                        bad.push(c);
                    }
                }
            }
        }

        if !(self.min_length..=self.max_length).contains(&len) {
            violations.push(Violation::new(
                "password.length",
                format!(
                    "パスワードは{}文字以上{}文字以下で入力してください（入力: {len}文字）。",
                    self.min_length, self.max_length
                ),
                format!(
                    "The password must be {} to {} characters long (got {len}).",
                    self.min_length, self.max_length
                ),
            ));
        }
        if bad_count > 0 {
            violations.push(self.characters_violation(&bad, bad_count == len));
        }
        if zero {
            violations.push(Violation::new(
                "password.zero",
                "数字の「0」（ゼロ）は使用できません。数字は「1」～「9」を使用してください。",
                "The digit 0 (zero) is not allowed; use the digits 1-9.",
            ));
        }
        let class_count = classes.iter().filter(|c| **c).count();
        if class_count < usize::from(self.min_classes) {
            violations.push(Violation::new(
                "password.classes",
                format!(
                    "英小文字、英大文字、数字、記号のうち{}種類以上を組み合わせてください（現在: {class_count}種類）。",
                    self.min_classes
                ),
                format!(
                    "Combine at least {} of lower-case letters, upper-case letters, digits and symbols (got {class_count}).",
                    self.min_classes
                ),
            ));
        }
        if longest_run > self.max_repeat {
            let limit = self.max_repeat + 1;
            violations.push(Violation::new(
                "password.repeat",
                format!("同じ文字を{limit}文字以上連続して使用することはできません。"),
                format!("The same character must not appear {limit} or more times in a row."),
            ));
        }
        let canonical_password = canonical(password);
        if let Some(user_id) = ctx.user_id
            && canonical_password.eq_ignore_ascii_case(&canonical(user_id))
        {
            violations.push(Violation::new(
                "password.same_as_user_id",
                "ユーザIDと同じパスワードは使用できません。",
                "The password must not be the same as the user ID.",
            ));
        }
        if let Some(current) = ctx.current_password
            && canonical_password == canonical(current)
        {
            violations.push(Violation::new(
                "password.same_as_current",
                "現在と同じパスワードは使用できません。",
                "The new password must differ from the current password.",
            ));
        }
        violations
    }

    /// Generates an initial password: 12 characters for people, 24 for machine accounts (moved
    /// into `min_length..=max_length` if the profile demands it), drawn uniformly from letters,
    /// digits and symbols that are allowed and are not look-alikes ([`LOOK_ALIKES`]). The result
    /// always passes [`PasswordPolicy::check`] without a user ID: candidates are drawn uniformly
    /// and rejected until one passes, so every compliant password is equally likely. Machine
    /// secrets also leave out [`FORM_SIGNIFICANT`] (about 5.8 bits a character remain, ~140 bits
    /// in all).
    pub fn generate_initial<R: RngCore + CryptoRng + ?Sized>(
        &self,
        account_type: AccountType,
        rng: &mut R,
    ) -> String {
        let base = if account_type.is_machine() {
            INITIAL_LENGTH_MACHINE
        } else {
            INITIAL_LENGTH_HUMAN
        };
        let len = base.clamp(self.min_length.min(self.max_length), self.max_length.max(1));
        let mut pools = self.generator_pools();
        if account_type.is_machine() {
            // A machine secret is sent as an OAuth client secret, often in HTTP Basic by clients
            // that do not form-encode it (RFC 6749 §2.3.1 asks them to): leaving out the
            // characters that form decoding changes makes both readings the same secret.
            let kept: Vec<char> = pools[3]
                .iter()
                .copied()
                .filter(|c| !FORM_SIGNIFICANT.contains(*c))
                .collect();
            if !kept.is_empty() {
                pools[3] = kept;
            }
        }
        let alphabet: Vec<char> = pools.iter().flatten().copied().collect();
        let ctx = PasswordContext::default();
        for _ in 0..MAX_GENERATION_ATTEMPTS {
            let candidate: String = (0..len)
                .map(|_| alphabet[uniform_index(rng, alphabet.len())])
                .collect();
            if self.check(&candidate, &ctx).is_empty() {
                return candidate;
            }
        }
        // Only a degenerate random source gets here. Cycling through the classes puts every class
        // in the password and never places one character twice in a row.
        let non_empty: Vec<&Vec<char>> = pools.iter().filter(|p| !p.is_empty()).collect();
        (0..len)
            .map(|i| {
                let pool = non_empty[i % non_empty.len()];
                pool[uniform_index(rng, pool.len())]
            })
            .collect()
    }

    /// The characters the generator draws from, per class: lower, upper, digits, symbols.
    fn generator_pools(&self) -> [Vec<char>; 4] {
        let clean = |c: &char| !LOOK_ALIKES.contains(*c);
        let lower: Vec<char> = ('a'..='z').filter(clean).collect();
        let upper: Vec<char> = ('A'..='Z').filter(clean).collect();
        let digits: Vec<char> = ('1'..='9').filter(clean).collect();
        let mut symbols: Vec<char> = Vec::new();
        for c in self.symbols.chars().filter(clean) {
            if !symbols.contains(&c) {
                symbols.push(c);
            }
        }
        if symbols.is_empty() {
            // Every configured symbol is a look-alike: a password that mixes four classes still
            // needs one, so use them, preferring those that are not keyboard-dependent.
            symbols = self
                .symbols
                .chars()
                .filter(|c| *c != '\\' && *c != '¥')
                .collect();
            if symbols.is_empty() {
                symbols = self.symbols.chars().take(1).collect();
            }
        }
        [lower, upper, digits, symbols]
    }

    fn class_of(&self, c: char) -> Option<Class> {
        match c {
            'a'..='z' => Some(Class::Lower),
            'A'..='Z' => Some(Class::Upper),
            '1'..='9' => Some(Class::Digit),
            '0' if self.allow_zero => Some(Class::Digit),
            _ if self.is_symbol(c) => Some(Class::Symbol),
            _ => None,
        }
    }

    fn is_symbol(&self, c: char) -> bool {
        let key = canonical_char(c);
        (key.is_ascii_punctuation()) && self.symbols.chars().any(|s| canonical_char(s) == key)
    }

    fn characters_violation(&self, bad: &[char], all_bad: bool) -> Violation {
        let symbols: String = self
            .symbols
            .chars()
            .map(|c| if c == '\\' { '¥' } else { c })
            .collect();
        let digits = if self.allow_zero { "0～9" } else { "1～9" };
        let digits_en = if self.allow_zero { "0-9" } else { "1-9" };
        let (named_ja, named_en) = if all_bad {
            (String::new(), String::new())
        } else {
            let list = bad
                .iter()
                .map(|c| describe(*c))
                .collect::<Vec<_>>()
                .join(" ");
            (format!("（{list}）"), format!(" ({list})"))
        };
        Violation::new(
            "password.characters",
            format!(
                "パスワードに使用できない文字が含まれています{named_ja}。使用できる文字は英小文字（a～z）、英大文字（A～Z）、数字（{digits}）、記号（{symbols}）です。"
            ),
            format!(
                "The password contains characters that are not allowed{named_en}. Allowed: a-z, A-Z, digits {digits_en} and the symbols {symbols}"
            ),
        )
    }
}

/// The rule a service reports when a new password matches one of the last `history_depth`
/// passwords (checked against stored hashes, outside this crate).
pub fn history_violation(history_depth: u32) -> Violation {
    Violation::new(
        "password.history",
        format!("過去{history_depth}回以内に使用したパスワードは使用できません。"),
        format!("The password must not be one of the last {history_depth} passwords."),
    )
}

/// The rule a form reports when the new password and its confirmation differ.
pub fn confirmation_mismatch() -> Violation {
    Violation::new(
        "password.confirmation",
        "新しいパスワードと確認用パスワードが一致しません。",
        "The new password and its confirmation do not match.",
    )
}

/// The form a password is hashed and compared in: the yen sign U+00A5 becomes the backslash
/// U+005C, since both are the `¥` key of a Japanese keyboard. Borrows when there is nothing to map.
pub fn canonical(password: &str) -> Cow<'_, str> {
    if password.contains('¥') {
        Cow::Owned(password.replace('¥', "\\"))
    } else {
        Cow::Borrowed(password)
    }
}

fn canonical_char(c: char) -> char {
    if c == '¥' { '\\' } else { c }
}

/// A disallowed character as a message shows it: the character and its code point, or the code
/// point alone for characters that do not print (spaces, controls, combining marks).
fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() || is_invisible_or_combining(c) {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("「{c}」")
    }
}

fn is_invisible_or_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{FEFF}'
        | '\u{E0000}'..='\u{E01EF}')
}

/// A uniform index in `0..n` by rejection sampling on 32-bit draws: values in the incomplete top
/// range are drawn again, so no index is favoured. `n` must be non-zero and fit in a `u32`.
pub(crate) fn uniform_index<R: RngCore + ?Sized>(rng: &mut R, n: usize) -> usize {
    let n32 = u32::try_from(n).unwrap_or(u32::MAX).max(1);
    let zone = u32::MAX - (u32::MAX - n32 + 1) % n32;
    let mut x = rng.next_u32();
    // With a real random source a redraw happens with probability below n / 2^32; the bound only
    // keeps a broken source from spinning forever.
    for _ in 0..64 {
        if x <= zone {
            break;
        }
        x = rng.next_u32();
    }
    (x % n32) as usize
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// One row: the rules `password` must fail (in the order `check` lists them), given a user ID
    /// and a current password.
    fn check(password: &str, user_id: Option<&str>, current: Option<&str>, expected: &[&str]) {
        let ctx = PasswordContext {
            user_id,
            current_password: current,
        };
        let got: Vec<&str> = PasswordPolicy::default()
            .check(password, &ctx)
            .iter()
            .map(|v| v.rule)
            .collect();
        assert_eq!(got, expected, "password {password:?}");
    }

    #[test]
    fn seed_rules() {
        /// (password, user ID, current password, rules failed).
        type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [&'a str]);
        let rows: &[Row] = &[
            // 001 パスワードのルール: "8～30文字" — 7 characters refused, 8 and 30 accepted, 31 refused.
            ("Ab1@xyz", None, None, &["password.length"]),
            ("Ab1@xyzw", None, None, &[]),
            ("Ab1@xyzwAb1@xyzwAb1@xyzwAb1@xy", None, None, &[]),
            (
                "Ab1@xyzwAb1@xyzwAb1@xyzwAb1@xyz",
                None,
                None,
                &["password.length"],
            ),
            // 001: one class only: "abcdefgh" (lower) and "12345678" (digits) refused.
            ("abcdefgh", None, None, &["password.classes"]),
            ("12345678", None, None, &["password.classes"]),
            // 001: two classes: "abcd1234" (lower + digits) refused.
            ("abcd1234", None, None, &["password.classes"]),
            // 001: three of the four classes accepted, in every combination.
            ("abcdEF12", None, None, &[]),
            ("abcdEF@#", None, None, &[]),
            ("abcd12@#", None, None, &[]),
            ("ABCD12@#", None, None, &[]),
            // 001: "同じ文字を3文字以上連続": "111abc" and "123aaa" refused (also too short, 2 classes).
            (
                "111abc",
                None,
                None,
                &["password.length", "password.classes", "password.repeat"],
            ),
            (
                "123aaa",
                None,
                None,
                &["password.length", "password.classes", "password.repeat"],
            ),
            // 001: the same runs inside otherwise valid passwords fail only the repeat rule.
            ("Xy@111abc", None, None, &["password.repeat"]),
            ("Xy@123aaa", None, None, &["password.repeat"]),
            // 001: two in a row are fine.
            ("Xy@11aabb", None, None, &[]),
            // 001: "数字：1～9": the digit 0 is refused, with its own rule.
            ("Abcd@120", None, None, &["password.zero"]),
            (
                "Abcd@1000",
                None,
                None,
                &["password.zero", "password.repeat"],
            ),
            // 001: symbols "¥" — the yen sign and the backslash are both the ¥ key.
            ("Abcd12¥x", None, None, &[]),
            ("Abcd12\\x", None, None, &[]),
            // 001: "¥¥\" is the same key three times in a row.
            ("Abc12¥¥\\", None, None, &["password.repeat"]),
            // 001: characters outside the lists: space, underscore, full-width, kana, emoji.
            ("Abcd 1234", None, None, &["password.characters"]),
            ("Abcd_1234", None, None, &["password.characters"]),
            ("Ａbcd@123", None, None, &["password.characters"]),
            ("パスワードAb1@xyz", None, None, &["password.characters"]),
            ("Ab1@xyz😀", None, None, &["password.characters"]),
            // 001: "英小文字と英大文字は区別されます": different case is a different password.
            ("Abcd@123", None, Some("abcd@123"), &[]),
            // 001: "現在と同じパスワードは使用できません".
            (
                "Abcd@123",
                None,
                Some("Abcd@123"),
                &["password.same_as_current"],
            ),
            (
                "Abcd12¥x",
                None,
                Some("Abcd12\\x"),
                &["password.same_as_current"],
            ),
            // 001: "利用者IDと同じパスワードは使用できません" (refused whatever the case: decision).
            (
                "Staff123",
                Some("Staff123"),
                None,
                &["password.same_as_user_id"],
            ),
            (
                "sTAFF123",
                Some("Staff123"),
                None,
                &["password.same_as_user_id"],
            ),
            ("Staff1234", Some("Staff123"), None, &[]),
            // Bad input: empty, whitespace, combining marks.
            ("", None, None, &["password.length", "password.classes"]),
            (
                "        ",
                None,
                None,
                &["password.characters", "password.classes", "password.repeat"],
            ),
            ("Abcd@12e\u{301}", None, None, &["password.characters"]),
        ];
        for (password, user_id, current, expected) in rows {
            check(password, *user_id, *current, expected);
        }
    }

    #[test]
    fn every_seed_symbol_is_accepted() {
        // 001: "記号：「@ # $ % ^ & * - ! + = [ ] { } | ¥ : ' , . ? / ` ~ \" ( ) ;」".
        for symbol in SEED_SYMBOLS.chars().chain(['¥']) {
            check(&format!("Abcdef1{symbol}"), None, None, &[]);
        }
        assert_eq!(SEED_SYMBOLS.chars().count(), 29);
    }

    #[test]
    fn every_seed_digit_is_accepted() {
        // 001: "数字：「1」～「9」".
        for digit in '1'..='9' {
            check(&format!("Abcdefg{digit}"), None, None, &[]);
        }
    }

    #[test]
    fn messages_name_characters_but_never_the_password() {
        let policy = PasswordPolicy::default();
        let v = policy.check("Abcd 12あ3", &PasswordContext::default());
        let chars = v
            .iter()
            .find(|v| v.rule == "password.characters")
            .expect("violation");
        assert!(chars.message_ja.contains("「あ」"), "{}", chars.message_ja);
        assert!(chars.message_en.contains("U+0020"), "{}", chars.message_en);
        assert!(!chars.message_en.contains("Abcd"));
        // Every character disallowed: none is named, so the password is not echoed.
        let v = policy.check("ぱすわーどです", &PasswordContext::default());
        let chars = v
            .iter()
            .find(|v| v.rule == "password.characters")
            .expect("violation");
        assert!(!chars.message_ja.contains("ぱ"), "{}", chars.message_ja);
        // The zero refusal says that 0 is not allowed.
        let v = policy.check("Abcd@120", &PasswordContext::default());
        assert!(
            v[0].message_ja.contains("0") && v[0].message_en.contains("0 (zero) is not allowed")
        );
    }

    #[test]
    fn validate_names_the_field() {
        let ok = PasswordPolicy::default();
        assert_eq!(ok.validate(), Ok(()));
        let rows: &[(PasswordPolicy, &str)] = &[
            (
                PasswordPolicy {
                    min_length: 4,
                    ..ok.clone()
                },
                "min_length",
            ),
            (
                PasswordPolicy {
                    min_length: 200,
                    ..ok.clone()
                },
                "min_length",
            ),
            (
                PasswordPolicy {
                    min_length: 12,
                    max_length: 10,
                    ..ok.clone()
                },
                "max_length",
            ),
            (
                PasswordPolicy {
                    max_length: 129,
                    ..ok.clone()
                },
                "max_length",
            ),
            // Machine secrets need 24 characters (about 140 bits) for their fast keyed hash.
            (
                PasswordPolicy {
                    max_length: 20,
                    ..ok.clone()
                },
                "max_length",
            ),
            (
                PasswordPolicy {
                    symbols: String::new(),
                    ..ok.clone()
                },
                "symbols",
            ),
            (
                PasswordPolicy {
                    symbols: "@a".into(),
                    ..ok.clone()
                },
                "symbols",
            ),
            (
                PasswordPolicy {
                    min_classes: 2,
                    ..ok.clone()
                },
                "min_classes",
            ),
            (
                PasswordPolicy {
                    max_repeat: 0,
                    ..ok.clone()
                },
                "max_repeat",
            ),
            (
                PasswordPolicy {
                    max_repeat: 3,
                    ..ok.clone()
                },
                "max_repeat",
            ),
            (
                PasswordPolicy {
                    history_depth: 25,
                    ..ok.clone()
                },
                "history_depth",
            ),
        ];
        for (policy, field) in rows {
            let err = policy.validate().expect_err(field);
            assert!(err.contains(field), "{err}");
        }
        let tight = PasswordPolicy {
            min_length: 12,
            min_classes: 4,
            max_repeat: 1,
            allow_zero: true,
            history_depth: 5,
            ..ok
        };
        assert_eq!(tight.validate(), Ok(()));
    }

    #[test]
    fn config_is_data() {
        let p: PasswordPolicy =
            serde_json::from_str(r#"{"min_length": 10}"#).expect("partial profile");
        assert_eq!(
            p,
            PasswordPolicy {
                min_length: 10,
                ..PasswordPolicy::default()
            }
        );
        assert!(serde_json::from_str::<PasswordPolicy>(r#"{"min_lenght": 10}"#).is_err());
    }

    #[test]
    fn generated_passwords_have_the_right_length_and_no_look_alikes() {
        let policy = PasswordPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        for (account_type, len) in [(AccountType::General, 12), (AccountType::WebApi, 24)] {
            for _ in 0..200 {
                let p = policy.generate_initial(account_type, &mut rng);
                assert_eq!(p.chars().count(), len);
                assert!(p.chars().all(|c| !LOOK_ALIKES.contains(c)), "{p}");
                assert!(
                    policy.check(&p, &PasswordContext::default()).is_empty(),
                    "{p}"
                );
            }
        }
        for _ in 0..200 {
            let p = policy.generate_initial(AccountType::CardReader, &mut rng);
            assert!(
                p.chars().all(|c| !FORM_SIGNIFICANT.contains(c)),
                "machine secrets survive form decoding: {p}"
            );
        }
        let long = PasswordPolicy {
            min_length: 16,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            long.generate_initial(AccountType::Manager, &mut rng).len(),
            16
        );
    }

    /// A random source that always returns the same value.
    struct Stuck;

    impl RngCore for Stuck {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, dst: &mut [u8]) {
            dst.fill(0);
        }
    }

    impl CryptoRng for Stuck {}

    #[test]
    fn a_broken_random_source_still_yields_a_compliant_password() {
        for policy in [
            PasswordPolicy::default(),
            PasswordPolicy {
                max_repeat: 1,
                min_classes: 4,
                ..PasswordPolicy::default()
            },
            PasswordPolicy {
                symbols: "\\".into(),
                min_classes: 4,
                ..PasswordPolicy::default()
            },
        ] {
            let p = policy.generate_initial(AccountType::General, &mut Stuck);
            assert!(
                policy.check(&p, &PasswordContext::default()).is_empty(),
                "{p}"
            );
        }
    }

    #[test]
    fn uniform_index_is_in_range() {
        let mut rng = StdRng::seed_from_u64(1);
        for n in [1, 2, 3, 10, 63, 1_000_000] {
            for _ in 0..100 {
                assert!(uniform_index(&mut rng, n) < n);
            }
        }
    }
}
