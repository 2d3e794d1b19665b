//! Institution codes (SPEC §1, seed 002 §2-6): prefecture (01-47) + score-table digit + 7 digits.

use serde::{Deserialize, Serialize};

use crate::Violation;

/// The kind of an institution, derived from the score-table digit of its code.
/// `Platform` is the pseudo-institution of the platform operators (code `0000000000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstitutionKind {
    Medical,
    Dental,
    Pharmacy,
    HomeNursing,
    Platform,
}

impl InstitutionKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            InstitutionKind::Medical => "medical",
            InstitutionKind::Dental => "dental",
            InstitutionKind::Pharmacy => "pharmacy",
            InstitutionKind::HomeNursing => "home_nursing",
            InstitutionKind::Platform => "platform",
        }
    }
}

impl std::fmt::Display for InstitutionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid 10-digit institution code, or the platform code `0000000000`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct InstitutionCode(String);

/// The code operators type on the login page (SPEC §12).
pub const PLATFORM_CODE: &str = "0000000000";

impl InstitutionCode {
    /// Parses the code of a real institution. The platform code is refused here: no institution
    /// can be created with it.
    pub fn parse(raw: &str) -> Result<Self, Violation> {
        if raw == PLATFORM_CODE {
            return Err(Violation::new(
                "institution_code.reserved",
                "0000000000 は運用事業者用に予約されています。",
                "0000000000 is reserved for the platform operator.",
            ));
        }
        if raw.chars().count() != 10 || !raw.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Violation::new(
                "institution_code.format",
                "医療機関等コードは半角数字10桁で入力してください。",
                "The institution code must be exactly 10 half-width digits.",
            ));
        }
        let prefecture: u8 = raw[..2].parse().expect("two ASCII digits");
        if !(1..=47).contains(&prefecture) {
            return Err(Violation::new(
                "institution_code.prefecture",
                "医療機関等コードの先頭2桁（都道府県番号）は01から47です。",
                "The first two digits of the institution code (prefecture) must be 01-47.",
            ));
        }
        if kind_of_digit(raw.as_bytes()[2]).is_none() {
            return Err(Violation::new(
                "institution_code.score_table",
                "医療機関等コードの3桁目（点数表番号）は1（医科）、3（歯科）、4（薬局）、6（訪問看護）のいずれかです。",
                "The third digit of the institution code (score table) must be 1 (medical), 3 (dental), 4 (pharmacy) or 6 (home nursing).",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Parses what a person typed on the login page: a real institution or the platform code.
    pub fn parse_for_login(raw: &str) -> Result<Self, Violation> {
        if raw == PLATFORM_CODE {
            Ok(Self::platform())
        } else {
            Self::parse(raw)
        }
    }

    pub fn platform() -> Self {
        Self(PLATFORM_CODE.to_owned())
    }

    pub fn is_platform(&self) -> bool {
        self.0 == PLATFORM_CODE
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> InstitutionKind {
        if self.is_platform() {
            return InstitutionKind::Platform;
        }
        kind_of_digit(self.0.as_bytes()[2]).expect("validated at parse")
    }
}

fn kind_of_digit(digit: u8) -> Option<InstitutionKind> {
    match digit {
        b'1' => Some(InstitutionKind::Medical),
        b'3' => Some(InstitutionKind::Dental),
        b'4' => Some(InstitutionKind::Pharmacy),
        b'6' => Some(InstitutionKind::HomeNursing),
        _ => None,
    }
}

impl std::fmt::Display for InstitutionCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstitutionCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        InstitutionCode::parse_for_login(&raw).map_err(|v| serde::de::Error::custom(v.message_en))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row: the rule a code fails, or the kind it is.
    fn check(raw: &str, expected: Result<InstitutionKind, &str>) {
        let got = InstitutionCode::parse(raw)
            .map(|c| c.kind())
            .map_err(|v| v.rule);
        assert_eq!(got, expected, "{raw:?}");
    }

    #[test]
    fn seed_rules() {
        use InstitutionKind::*;
        let rows: &[(&str, Result<InstitutionKind, &str>)] = &[
            // 002 §2-6 機関コード example "1234567890": prefecture 12, score table 3 (dental).
            ("1234567890", Ok(Dental)),
            // 002 §2-6: prefecture (01-47) + score table (1 medical, 3 dental, 4 pharmacy,
            // 6 home nursing) + 7 digits.
            ("0111234567", Ok(Medical)),
            ("1314000001", Ok(Medical)),
            ("2741234567", Ok(Pharmacy)),
            ("4761234567", Ok(HomeNursing)),
            ("4861234567", Err("institution_code.prefecture")),
            ("0011234567", Err("institution_code.prefecture")),
            ("9911234567", Err("institution_code.prefecture")),
            ("1321234567", Err("institution_code.score_table")),
            ("1351234567", Err("institution_code.score_table")),
            ("1301234567", Err("institution_code.score_table")),
            // SPEC §12: "0000000000" is the operators' pseudo-institution, not a real one.
            ("0000000000", Err("institution_code.reserved")),
            // 002 §2-6: exactly 10 half-width digits.
            ("123456789", Err("institution_code.format")),
            ("12345678901", Err("institution_code.format")),
            ("１２３４５６７８９０", Err("institution_code.format")),
            ("12345-7890", Err("institution_code.format")),
            ("", Err("institution_code.format")),
            ("٠١٢٣٤٥٦٧٨٩", Err("institution_code.format")),
        ];
        for (raw, expected) in rows {
            check(raw, *expected);
        }
    }

    #[test]
    fn login_accepts_the_platform_code() {
        let code = InstitutionCode::parse_for_login(PLATFORM_CODE).expect("platform");
        assert!(code.is_platform());
        assert_eq!(code.kind(), InstitutionKind::Platform);
        assert!(InstitutionCode::parse_for_login("1234567890").is_ok());
        assert!(InstitutionCode::parse_for_login("abc").is_err());
    }
}
