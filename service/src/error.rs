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
