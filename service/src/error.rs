//! Errors of the shared use cases.

use policies::Violation;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Input failed one or more rules; every violation is listed.
    #[error("invalid {field}: {}", .violations.iter().map(|v| v.message_en.as_str()).collect::<Vec<_>>().join(" "))]
    Invalid {
        field: &'static str,
        violations: Vec<Violation>,
    },
    /// Something with that identity already exists (or existed, for user IDs).
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    /// The permission matrix (or the self-action rule) refuses this actor.
    #[error("forbidden: {0:?}")]
    Forbidden(Refusal),
    /// No ID/password notice can be printed for these accounts; nothing was printed or marked.
    #[error("notice unavailable for {} account(s)", .0.len())]
    NoticeUnavailable(Vec<crate::notices::NoticeBlocked>),
    #[error(transparent)]
    Store(store::StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: &'static str, violations: Vec<Violation>) -> Self {
        Self::Invalid { field, violations }
    }
}

impl From<store::StoreError> for ServiceError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Conflict(what) => ServiceError::Conflict(what),
            store::StoreError::NotFound => ServiceError::NotFound,
            other => ServiceError::Store(other),
        }
    }
}

/// Why an admin action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `policies::permissions` does not list this actor for this action and target.
    NotPermitted,
    /// An admin action on the caller's own account (docs/policies.md: operators are the only
    /// type that acts on its own type, and never on themselves).
    OwnAccount,
}
