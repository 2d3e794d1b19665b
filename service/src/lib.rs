//! The use cases that the CLI, the admin API and the IdP share: issuing credentials, creating
//! institutions, operators and clients, signing in with a password and a second factor, and the
//! primitives they need (clock, password hashing, sealing with the key-encryption key).
//!
//! Architecture Invariant: this crate decides nothing by itself; rules come from `policies`,
//! persistence from `store`. It knows no HTTP and no SQL.

pub mod accounts;
pub mod authentication;
pub mod bulk;
pub mod clock;
pub mod digest;
pub mod error;
pub mod hashing;
pub mod institutions;
pub mod notices;
pub mod provisioning;
pub mod random;
pub mod sealing;
pub mod second_factor;

pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::SecretDigester;
pub use error::{Refusal, ServiceError};
pub use hashing::{HashingParams, PasswordHasher};
pub use sealing::Sealer;
