//! The command line of SPEC §11-§12. Every command prints one JSON object on stdout; errors go to
//! stderr with a non-zero exit status.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "idp", version, about = "Sekimori OpenID Provider")]
pub struct Cli {
    /// A TOML file merged over the embedded default configuration.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the IdP (applies pending migrations, creates signing keys on first start).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Platform operators (institution 0000000000).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Institutions with their master and master_reset accounts.
    #[command(subcommand)]
    Institution(InstitutionCommand),
    /// Relying parties.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check input against the configured rules without storing anything.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Create an operator and print its initial password once.
    Create(OperatorCreate),
}

#[derive(Debug, Args)]
pub struct OperatorCreate {
    #[arg(long)]
    pub user_id: String,
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "")]
    pub name_kana: String,
}

#[derive(Debug, Subcommand)]
pub enum InstitutionCommand {
    /// Create an institution with its master and master_reset accounts (one transaction) and
    /// print both initial passwords once.
    Create(InstitutionCreate),
}

#[derive(Debug, Args)]
pub struct InstitutionCreate {
    #[arg(long)]
    pub code: String,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub master_id: String,
    #[arg(long)]
    pub master_reset_id: String,
    /// YYYY-MM-DD; defaults to today in Asia/Tokyo.
    #[arg(long)]
    pub usage_start: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a relying party and print its secret once (none for public clients).
    Create(ClientCreate),
}

#[derive(Debug, Args)]
pub struct ClientCreate {
    #[arg(long)]
    pub client_id: String,
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// A public client (no secret; PKCE S256 required).
    #[arg(long)]
    pub public: bool,
    /// Space-separated scopes.
    #[arg(long, default_value = "openid profile institution")]
    pub scope: String,
    #[arg(long = "grant-type", default_values_t = [String::from("authorization_code"), String::from("refresh_token")])]
    pub grant_types: Vec<String>,
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// RS256, ES256 or EdDSA.
    #[arg(long, default_value = "RS256")]
    pub signing_alg: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new active signing key (per algorithm) and retire the previous one; the retired
    /// key stays published until every token it signed has expired.
    Rotate(KeysRotate),
}

#[derive(Debug, Args)]
pub struct KeysRotate {
    /// RS256, ES256 or EdDSA; repeat for several. Default: all three.
    #[arg(long = "alg")]
    pub algs: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a password read from stdin (one line; with --current a second line is the current
    /// password).
    CheckPassword(CheckPassword),
    /// Check a user ID for an account type in an institution.
    CheckUserId(CheckUserId),
}

#[derive(Debug, Args)]
pub struct CheckPassword {
    #[arg(long)]
    pub user_id: Option<String>,
    #[arg(long)]
    pub current: bool,
}

#[derive(Debug, Args)]
pub struct CheckUserId {
    #[arg(long, value_parser = clap::value_parser!(policies::AccountType))]
    pub account_type: policies::AccountType,
    #[arg(long)]
    pub institution_code: String,
    #[arg(long)]
    pub user_id: String,
}
