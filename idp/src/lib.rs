//! The Sekimori OpenID Provider: configuration, composition, the HTTP surface and the CLI.
//!
//! Architecture Invariant: this is the only crate that names a concrete backend (through
//! `store::connect`) and the only one that reads configuration files or the environment.

pub mod app;
pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod idle_poll;
pub mod keys;
pub mod oidc;
pub mod pages;
pub mod retention;
pub mod session;
pub mod telemetry;

pub use app::{Application, Services};
pub use config::Settings;
