//! `/institutions/{code}/accounts…`: one file per action.

pub mod create;
pub mod delete;
pub mod get;
pub mod lock;
pub mod reset;
pub mod search;
pub mod update;

use serde::Deserialize;

/// The path of one account.
#[derive(Debug, Deserialize)]
pub struct AccountPath {
    pub code: String,
    pub user_id: String,
}
