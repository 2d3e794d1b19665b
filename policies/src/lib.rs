//! Sekimori's rules, as pure decisions.
//!
//! Architecture Invariant: nothing in this crate performs I/O, awaits, reads the clock or draws
//! randomness by itself. Every rule that depends on time takes `now`; every generator takes the
//! random source as a parameter. Callers (the store, the services, the HTTP surfaces) read state,
//! ask a rule, and act on the decision.
//!
//! Every function accepts any string (empty, huge, combining marks, emoji) and answers with a
//! verdict; none panics on input. `docs/policies.md` lists every rule with its seed source.

pub mod account_type;
pub mod bulk;
pub mod credential;
pub mod email;
pub mod institution;
pub mod lockout;
pub mod names;
pub mod network;
pub mod notice;
pub mod otp;
pub mod password;
pub mod permissions;
pub mod phone;
pub mod retention;
mod secs;
pub mod usage;
pub mod user_id;
pub mod violation;

pub use account_type::AccountType;
pub use credential::{PasswordState, password_state};
pub use email::EmailAddress;
pub use institution::{InstitutionCode, InstitutionKind};
pub use lockout::{FailureDecision, LockState, LockoutPolicy};
pub use names::{NameKana, PersonName};
pub use network::{Cidr, second_factor_required};
pub use otp::{OtpPolicy, SendRefusal, VerifyRefusal};
pub use password::{PasswordContext, PasswordPolicy};
pub use permissions::{Action, can, can_in_institution};
pub use phone::{PhoneChannel, PhoneKind, PhoneNumber};
pub use usage::{LoginHours, UsageRefusal, UsageWindow, check_sign_in_window};
pub use user_id::UserId;
pub use violation::Violation;
