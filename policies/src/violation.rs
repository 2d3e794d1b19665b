//! One failed rule, with a stable identifier and messages for both languages.

use serde::Serialize;

/// A rule that an input failed. `rule` is a stable identifier (used by clients and tests);
/// the messages are what a person reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub message_ja: String,
    pub message_en: String,
}

impl Violation {
    pub fn new(
        rule: &'static str,
        message_ja: impl Into<String>,
        message_en: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            message_ja: message_ja.into(),
            message_en: message_en.into(),
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message_en, self.rule)
    }
}
