//! Account holder names (SPEC §4, seeds 001 "B列: 利用者名" and 002 §2-6): `name` (ユーザ名,
//! 1-20 characters) and `name_kana` (ユーザ名（カナ）, 1-40 characters).
//!
//! - `name`: full-width hiragana, katakana (with ー), kanji (CJK unified ideographs U+4E00-U+9FFF
//!   and 々 〆 〇), full-width letters and digits, and the full-width space.
//! - `name_kana`: full-width katakana, ー, letters and digits (full- or half-width: SPEC §4 does
//!   not say full-width for the kana field) and spaces (U+3000 or U+0020).
//! - Refused with their own rule ids: half-width katakana, control and other invisible characters,
//!   and environment-dependent characters (機種依存文字): circled and parenthesised numbers,
//!   roman numerals, ㈱-style enclosed CJK, ㍉-style squared words, CJK compatibility
//!   ideographs (IBM extension forms such as 﨑), ideographs outside the BMP unified block, and
//!   variation selectors.
//! - A name made only of spaces is refused. Nothing is trimmed or normalised: what is stored is
//!   what was typed.
//!
//! Lengths count Unicode scalar values, as a person counts characters.

use serde::Serialize;

use crate::Violation;

pub const NAME_MAX_CHARS: usize = 20;
pub const NAME_KANA_MAX_CHARS: usize = 40;

/// How many offending characters a message names at most.
const MAX_NAMED: usize = 5;

/// ユーザ名: the account holder's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PersonName(String);

/// ユーザ名（カナ）: the reading of the name in katakana.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct NameKana(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, Vec<Violation>> {
        check(raw, &NAME_FIELD).map(|()| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl NameKana {
    pub fn parse(raw: &str) -> Result<Self, Vec<Violation>> {
        check(raw, &KANA_FIELD).map(|()| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 医療機関等名称: an institution's name. SPEC.md sets no character classes for it (names such as
/// "医療法人社団○○会 ○○クリニック" mix scripts and symbols), so the rule is only what keeps it
/// printable and bounded: 1-100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct InstitutionName(String);

impl InstitutionName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(raw: &str) -> Result<Self, Violation> {
        let trimmed = raw.trim();
        let len = trimmed.chars().count();
        if len == 0 || len > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(Violation::new(
                "institution_name.format",
                "医療機関等名称は1～100文字で、制御文字を含めずに入力してください。",
                "The institution name must be 1-100 characters without control characters.",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for NameKana {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stable rule ids of one field.
struct Rules {
    length: &'static str,
    blank: &'static str,
    characters: &'static str,
    half_width_katakana: &'static str,
    control: &'static str,
    environment_dependent: &'static str,
}

struct Field {
    rules: Rules,
    label_ja: &'static str,
    label_en: &'static str,
    max: usize,
    allowed: fn(char) -> bool,
    allowed_ja: &'static str,
    allowed_en: &'static str,
}

const NAME_FIELD: Field = Field {
    rules: Rules {
        length: "name.length",
        blank: "name.blank",
        characters: "name.characters",
        half_width_katakana: "name.half_width_katakana",
        control: "name.control",
        environment_dependent: "name.environment_dependent",
    },
    label_ja: "ユーザ名",
    label_en: "The name",
    max: NAME_MAX_CHARS,
    allowed: name_char,
    allowed_ja: "全角のひらがな・カタカナ・漢字・英数字・スペース",
    allowed_en: "full-width hiragana, katakana, kanji, letters, digits and the full-width space",
};

const KANA_FIELD: Field = Field {
    rules: Rules {
        length: "name_kana.length",
        blank: "name_kana.blank",
        characters: "name_kana.characters",
        half_width_katakana: "name_kana.half_width_katakana",
        control: "name_kana.control",
        environment_dependent: "name_kana.environment_dependent",
    },
    label_ja: "ユーザ名（カナ）",
    label_en: "The name reading (kana)",
    max: NAME_KANA_MAX_CHARS,
    allowed: kana_char,
    allowed_ja: "全角カタカナ・長音記号（ー）・英数字・スペース",
    allowed_en: "full-width katakana, the long-vowel mark (ー), letters, digits and spaces",
};

fn check(raw: &str, field: &Field) -> Result<(), Vec<Violation>> {
    let mut violations = Vec::new();
    let len = raw.chars().count();
    if len == 0 || len > field.max {
        violations.push(Violation::new(
            field.rules.length,
            format!(
                "{}は1文字以上{}文字以下で入力してください（入力: {len}文字）。",
                field.label_ja, field.max
            ),
            format!(
                "{} must be 1 to {} characters long (got {len}).",
                field.label_en, field.max
            ),
        ));
    } else if raw.chars().all(is_space) {
        violations.push(Violation::new(
            field.rules.blank,
            format!("{}がスペースだけです。", field.label_ja),
            format!("{} consists only of spaces.", field.label_en),
        ));
    }

    let mut half_kana = Vec::new();
    let mut control = false;
    let mut env_dep = Vec::new();
    let mut other = Vec::new();
    for c in raw.chars() {
        if (field.allowed)(c) {
            continue;
        }
        if is_half_width_katakana(c) {
            push_distinct(&mut half_kana, c);
        } else if is_control_or_invisible(c) {
            control = true;
        } else if is_environment_dependent(c) {
            push_distinct(&mut env_dep, c);
        } else {
            push_distinct(&mut other, c);
        }
    }
    if !half_kana.is_empty() {
        violations.push(Violation::new(
            field.rules.half_width_katakana,
            format!(
                "{}に半角カタカナは使用できません（{}）。全角で入力してください。",
                field.label_ja,
                show(&half_kana)
            ),
            format!(
                "{} must not contain half-width katakana ({}); use full-width katakana.",
                field.label_en,
                show(&half_kana)
            ),
        ));
    }
    if control {
        violations.push(Violation::new(
            field.rules.control,
            format!("{}に制御文字・改行・タブなどの見えない文字は使用できません。", field.label_ja),
            format!("{} must not contain control characters, line breaks, tabs or other invisible characters.", field.label_en),
        ));
    }
    if !env_dep.is_empty() {
        violations.push(Violation::new(
            field.rules.environment_dependent,
            format!(
                "{}に環境依存文字は使用できません（{}）。",
                field.label_ja,
                show(&env_dep)
            ),
            format!(
                "{} must not contain environment-dependent characters ({}).",
                field.label_en,
                show(&env_dep)
            ),
        ));
    }
    if !other.is_empty() {
        violations.push(Violation::new(
            field.rules.characters,
            format!(
                "{}に使用できない文字が含まれています（{}）。使用できる文字: {}。",
                field.label_ja,
                show(&other),
                field.allowed_ja
            ),
            format!(
                "{} contains characters that are not allowed ({}); allowed: {}.",
                field.label_en,
                show(&other),
                field.allowed_en
            ),
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

fn push_distinct(list: &mut Vec<char>, c: char) {
    if list.len() < MAX_NAMED && !list.contains(&c) {
        list.push(c);
    }
}

/// Names characters as `「①」(U+2460)`, so that look-alikes and combining marks stay readable.
fn show(chars: &[char]) -> String {
    chars
        .iter()
        .map(|c| {
            if is_combining(*c) {
                format!("U+{:04X}", u32::from(*c))
            } else {
                format!("「{c}」(U+{:04X})", u32::from(*c))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\u{3000}'
}

fn is_hiragana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{3096}' | 'ゝ' | 'ゞ')
}

fn is_full_width_katakana(c: char) -> bool {
    matches!(c, '\u{30A1}'..='\u{30F6}' | 'ー' | 'ヽ' | 'ヾ')
}

fn is_kanji(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '々' | '〆' | '〇')
}

fn is_full_width_alnum(c: char) -> bool {
    matches!(c, '０'..='９' | 'Ａ'..='Ｚ' | 'ａ'..='ｚ')
}

fn name_char(c: char) -> bool {
    is_hiragana(c)
        || is_full_width_katakana(c)
        || is_kanji(c)
        || is_full_width_alnum(c)
        || c == '\u{3000}'
}

fn kana_char(c: char) -> bool {
    is_full_width_katakana(c) || is_full_width_alnum(c) || c.is_ascii_alphanumeric() || is_space(c)
}

fn is_half_width_katakana(c: char) -> bool {
    matches!(c, '\u{FF61}'..='\u{FF9F}')
}

fn is_control_or_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}')
}

fn is_combining(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{3099}'..='\u{309A}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{E0100}'..='\u{E01EF}')
}

/// Characters that render differently or not at all across systems and code pages (機種依存文字):
/// the NEC special characters of CP932 row 13, the IBM extensions, and everything outside the
/// JIS-era ideograph repertoire.
pub fn is_environment_dependent(c: char) -> bool {
    matches!(c,
        // Circled, parenthesised and full-stop numbers and letters: ① ⑳ ⑴ ⒈ ⓐ.
        '\u{2460}'..='\u{24FF}'
        // Dingbat circled numbers: ❶ ➀.
        | '\u{2776}'..='\u{2793}'
        // Roman numerals and other number forms: Ⅰ Ⅻ ⅰ ⅹ.
        | '\u{2150}'..='\u{218F}'
        // Enclosed CJK letters and months: ㈱ ㈲ ㊤ ㊥.
        | '\u{3200}'..='\u{32FF}'
        // CJK compatibility (squared words and units): ㍉ ㌔ ㎜ ㏍ ㍻.
        | '\u{3300}'..='\u{33FF}'
        // NEC row 13 symbols not covered above: № ℡ ∮ ∑ ∟ ⊿.
        | '№' | '℡' | '∮' | '∑' | '∟' | '⊿'
        // IBM extension symbols: ￤ ＇ ＂.
        | '￤' | '＇' | '＂'
        // CJK compatibility ideographs (IBM extension forms such as 﨑 and 﨟).
        | '\u{F900}'..='\u{FAFF}'
        // CJK extension A and the supplementary ideograph planes (JIS X 0213 levels 3-4 and beyond).
        | '\u{3400}'..='\u{4DBF}'
        | '\u{20000}'..='\u{3FFFF}'
        // Variation selectors, including ideographic variation sequences.
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0100}'..='\u{E01EF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row: the rules a `name` fails (empty = accepted).
    fn check_name(raw: &str, expected: &[&str]) {
        let got: Vec<&str> = match PersonName::parse(raw) {
            Ok(n) => {
                assert_eq!(n.as_str(), raw);
                vec![]
            }
            Err(v) => v.iter().map(|v| v.rule).collect(),
        };
        assert_eq!(got, expected, "name {raw:?}");
    }

    /// One row: the rules a `name_kana` fails (empty = accepted).
    fn check_kana(raw: &str, expected: &[&str]) {
        let got: Vec<&str> = match NameKana::parse(raw) {
            Ok(n) => {
                assert_eq!(n.as_str(), raw);
                vec![]
            }
            Err(v) => v.iter().map(|v| v.rule).collect(),
        };
        assert_eq!(got, expected, "name_kana {raw:?}");
    }

    #[test]
    fn names() {
        let twenty = "山".repeat(20);
        let twenty_one = "山".repeat(21);
        let rows: &[(&str, &[&str])] = &[
            // 002 §2-6 ユーザ名: 全角かな、カタカナ、漢字、英数字.
            ("山田太郎", &[]),
            ("やまだ　たろう", &[]),
            ("ヤマダ　タロウ", &[]),
            ("佐々木〆子", &[]),
            // 002 §2-6 search screen: "スタッフ９９９" and "ＳＳＬ　ＳＨＩＮＤＡＮ" (full-width).
            ("スタッフ９９９", &[]),
            ("ＳＳＬ　ＳＨＩＮＤＡＮ", &[]),
            // 002 §2-6: 20 characters accepted, 21 refused; empty refused.
            (&twenty, &[]),
            (&twenty_one, &["name.length"]),
            ("", &["name.length"]),
            ("　　", &["name.blank"]),
            // 001 B列 "環境依存文字は使用できません": ① ㈱ Ⅲ ㍉ 﨑 𠮷 refused.
            ("①山田", &["name.environment_dependent"]),
            ("㈱テスト", &["name.environment_dependent"]),
            ("山田Ⅲ世", &["name.environment_dependent"]),
            ("㍉", &["name.environment_dependent"]),
            ("山﨑", &["name.environment_dependent"]),
            ("𠮷野", &["name.environment_dependent"]),
            // Decision: IBM-extension kanji in the unified block (髙) are accepted.
            ("髙橋", &[]),
            // SPEC §4: no half-width katakana, no control characters.
            ("ﾔﾏﾀﾞ", &["name.half_width_katakana"]),
            ("山田\n太郎", &["name.control"]),
            ("山田\u{200B}", &["name.control"]),
            // SPEC §4: half-width letters, digits and spaces are not in the name's classes.
            ("Yamada", &["name.characters"]),
            ("山田 太郎", &["name.characters"]),
            ("山田😀", &["name.characters"]),
            ("か\u{3099}", &["name.characters"]),
            (
                "ﾔﾏﾀﾞ①\t",
                &[
                    "name.half_width_katakana",
                    "name.control",
                    "name.environment_dependent",
                ],
            ),
        ];
        for (raw, expected) in rows {
            check_name(raw, expected);
        }
    }

    #[test]
    fn kana() {
        let forty = "ア".repeat(40);
        let forty_one = "ア".repeat(41);
        let rows: &[(&str, &[&str])] = &[
            // 002 §2-6 ユーザ名（カナ）: 全角カタカナ、英数字.
            ("ヤマダ　タロウ", &[]),
            ("ヴァイオリン", &[]),
            ("スタッフ９９９", &[]),
            // 002 §2-6 search screen: "エスエスエル シンダン SSL SHINDAN", "セイノ1123".
            ("エスエスエル シンダン SSL SHINDAN", &[]),
            ("セイノ1123", &[]),
            // SPEC §4: the long-vowel mark.
            ("スーパー", &[]),
            // 002 §2-6: 40 characters accepted, 41 refused; empty refused.
            (&forty, &[]),
            (&forty_one, &["name_kana.length"]),
            ("", &["name_kana.length"]),
            (" ", &["name_kana.blank"]),
            // SPEC §4: hiragana and kanji are not katakana.
            ("やまだ", &["name_kana.characters"]),
            ("山田", &["name_kana.characters"]),
            // SPEC §4 / 001: half-width katakana, control characters, environment-dependent ones.
            ("ﾔﾏﾀﾞ", &["name_kana.half_width_katakana"]),
            ("ヤマダ\r", &["name_kana.control"]),
            ("ヤマダ①", &["name_kana.environment_dependent"]),
        ];
        for (raw, expected) in rows {
            check_kana(raw, expected);
        }
    }

    #[test]
    fn messages_name_the_characters() {
        let v = PersonName::parse("①山田").expect_err("refused");
        assert!(v[0].message_ja.contains("①") && v[0].message_en.contains("U+2460"));
    }

    #[test]
    fn institution_names_are_trimmed_bounded_and_printable() {
        for (raw, ok) in [
            ("関守クリニック", true),
            ("  医療法人社団関守会　関守クリニック  ", true),
            ("", false),
            ("   ", false),
            ("病院\u{0007}", false),
            ("名\n前", false),
        ] {
            assert_eq!(InstitutionName::parse(raw).is_ok(), ok, "{raw:?}");
        }
        assert_eq!(InstitutionName::parse(" 関守 ").unwrap().as_str(), "関守");
        assert!(InstitutionName::parse(&"あ".repeat(100)).is_ok());
        assert_eq!(
            InstitutionName::parse(&"あ".repeat(101)).unwrap_err().rule,
            "institution_name.format"
        );
    }
}
