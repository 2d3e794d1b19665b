//! `/institutions…` (operators only): one file per action.

pub mod create;
pub mod get;
pub mod list;
pub mod update;
