//! Layered, typed configuration: the embedded `config/default.toml`, then `--config FILE`, then
//! `SEKIMORI__SECTION__KEY` environment variables. Unknown keys and invalid values stop startup
//! with a message that names the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use policies::lockout::LockoutPolicy;
use policies::password::PasswordPolicy;
use serde::Deserialize;
use service::HashingParams;

/// The embedded default, compiled into the binary so `idp serve` works from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    #[serde(default)]
    pub redis: RedisSettings,
    pub keys: KeySettings,
    pub log: LogSettings,
    pub bootstrap: BootstrapSettings,
    #[serde(default)]
    pub password: PasswordPolicy,
    #[serde(default)]
    pub password_hashing: HashingParams,
    #[serde(default)]
    pub lockout: LockoutPolicy,
    /// Deployment-wide login hours (Asia/Tokyo); absent means any time. An institution's own
    /// setting takes precedence.
    #[serde(default)]
    pub login_hours: Option<policies::usage::LoginHours>,
    pub session: SessionSettings,
    #[serde(default)]
    pub limits: limits::Limits,
    pub tokens: TokenSettings,
    pub outbox: OutboxSettings,
    pub delivery: delivery::DeliveryConfig,
    #[serde(default)]
    pub second_factor: SecondFactorSettings,
    #[serde(default)]
    pub bulk: BulkConfig,
}

/// `[bulk]`: how this node runs bulk registration jobs (SPEC §9).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkConfig {
    /// Whether this node runs jobs (uploads are accepted either way).
    pub worker: bool,
    /// Seconds a node holds a job without renewing; a dead node's job is taken over after it.
    pub lease_seconds: u32,
    /// Seconds between looks for claimable jobs (and purges of 30-day-old result passwords).
    pub poll_seconds: u32,
    /// Starts of one job before it ends failed_system.
    pub max_attempts: u32,
}

impl Default for BulkConfig {
    fn default() -> Self {
        Self {
            worker: true,
            lease_seconds: 60,
            poll_seconds: 5,
            max_attempts: 3,
        }
    }
}

impl BulkConfig {
    pub fn to_settings(&self) -> service::bulk::BulkSettings {
        service::bulk::BulkSettings {
            worker: self.worker,
            lease: time::Duration::seconds(i64::from(self.lease_seconds)),
            poll: std::time::Duration::from_secs(u64::from(self.poll_seconds)),
            max_attempts: i64::from(self.max_attempts),
        }
    }
}

/// `[second_factor]` (SPEC §7): where a second factor is required, the one-time-code profile,
/// and whether a forgotten password may be reset through the registered destination.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecondFactorSettings {
    /// Networks (CIDR) from which people sign in with a password alone. Empty (the default):
    /// a second factor is required everywhere. The peer address is the TCP peer; behind a
    /// reverse proxy every request would come from the proxy, so do not list the proxy here.
    pub trusted_networks: Vec<policies::Cidr>,
    /// Code length, lifetime, tries, cooldown and daily caps (`policies::otp::OtpPolicy`).
    pub otp: policies::OtpPolicy,
    /// Offer "forgot your password?" on the login page (default false: with it, control of the
    /// registered destination alone is enough to take over an account).
    pub forgotten_password: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub issuer: String,
    /// Production mode refuses development conveniences (outbox delivery, a generated KEK file,
    /// plain-http issuers).
    pub production: bool,
    pub shutdown_grace_seconds: u64,
    /// The longest a worker that ran out of work watches for more before it sleeps
    /// (`idle_poll.rs`); 0 turns polling off.
    pub idle_poll_microseconds: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Empty: counters and rate limits stay in this process.
    #[serde(default)]
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Base64 of 32 bytes. Takes precedence over `kek_file`.
    #[serde(default)]
    pub kek: Secret,
    /// File holding the KEK (base64 of 32 bytes). Outside production it is generated with
    /// owner-only permissions when missing.
    pub kek_file: PathBuf,
    /// How often every node re-reads the signing keys (rotations by other nodes or the CLI).
    pub reload_seconds: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSettings {
    /// On a start with no operator at all, create this operator and print its initial password
    /// once. Empty disables it.
    pub operator_user_id: String,
    pub operator_name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    pub idle_timeout_minutes: u32,
    pub absolute_timeout_hours: u32,
}

/// Lifetimes of what the OpenID Provider issues.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub authorization_code_seconds: u32,
    pub access_token_seconds: u32,
    pub id_token_seconds: u32,
    /// A refresh token unused this long expires.
    pub refresh_idle_seconds: u32,
    /// A refresh token family ends this long after the sign-in that started it.
    pub refresh_absolute_seconds: u32,
    /// JWS algorithm of machine accounts' access tokens (`client_credentials`): they have no
    /// client registration to name one. RS256 (default), ES256 or EdDSA.
    #[serde(default = "default_machine_signing_alg")]
    pub machine_signing_alg: String,
}

fn default_machine_signing_alg() -> String {
    "RS256".to_owned()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub path: PathBuf,
}

/// A configuration value that must never be printed.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(empty)"
        } else {
            "Secret(***)"
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(String),
    #[error("configuration: {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

impl Settings {
    /// Loads the embedded default, then `file`, then the environment, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, Env::prefixed("SEKIMORI__").split("__"))
    }

    pub fn load_with(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Load(format!(
                    "--config {}: no such file",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        let settings: Settings = figment.merge(env).extract().map_err(|e| {
            let errors: Vec<String> = e.into_iter().map(|e| describe(&e)).collect();
            ConfigError::Load(errors.join("; "))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if !(2..=3600).contains(&self.bulk.lease_seconds) {
            return Err(invalid("bulk.lease_seconds", "must be between 2 and 3600"));
        }
        if !(1..=600).contains(&self.bulk.poll_seconds) {
            return Err(invalid("bulk.poll_seconds", "must be between 1 and 600"));
        }
        if !(1..=10).contains(&self.bulk.max_attempts) {
            return Err(invalid("bulk.max_attempts", "must be between 1 and 10"));
        }
        if self.server.idle_poll_microseconds > 1000 {
            return Err(invalid(
                "server.idle_poll_microseconds",
                "must be between 0 and 1000",
            ));
        }
        let issuer = self.server.issuer.trim_end_matches('/');
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.contains(['?', '#'])
        {
            return Err(invalid(
                "server.issuer",
                "must be an absolute http(s) URL without query or fragment",
            ));
        }
        if self.server.production && !issuer.starts_with("https://") {
            return Err(invalid("server.issuer", "must use https in production"));
        }
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if !(1..=1000).contains(&self.database.max_connections) {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        if !self.redis.url.is_empty()
            && !self.redis.url.starts_with("redis://")
            && !self.redis.url.starts_with("rediss://")
        {
            return Err(invalid(
                "redis.url",
                "must be empty or start with redis:// or rediss://",
            ));
        }
        if !self.keys.kek.is_empty() && decode_kek(self.keys.kek.expose()).is_none() {
            return Err(invalid(
                "keys.kek",
                "must be the base64 encoding of exactly 32 bytes",
            ));
        }
        if self.server.production
            && self.keys.kek.is_empty()
            && self.keys.kek_file.as_os_str().is_empty()
        {
            return Err(invalid(
                "keys.kek",
                "production needs keys.kek or an existing keys.kek_file",
            ));
        }
        self.password
            .validate()
            .map_err(|m| invalid("password", m))?;
        self.password_hashing
            .validate()
            .map_err(|m| invalid("password_hashing", m))?;
        self.lockout.validate().map_err(|m| invalid("lockout", m))?;
        self.limits.validate().map_err(|m| invalid("limits", m))?;
        if !(1..=3600).contains(&self.keys.reload_seconds) {
            return Err(invalid("keys.reload_seconds", "must be between 1 and 3600"));
        }
        let tokens = &self.tokens;
        if !(10..=600).contains(&tokens.authorization_code_seconds) {
            return Err(invalid(
                "tokens.authorization_code_seconds",
                "must be between 10 and 600",
            ));
        }
        if !(60..=3600).contains(&tokens.access_token_seconds) {
            return Err(invalid(
                "tokens.access_token_seconds",
                "must be between 60 and 3600 (access tokens are short-lived)",
            ));
        }
        if !(60..=86_400).contains(&tokens.id_token_seconds) {
            return Err(invalid(
                "tokens.id_token_seconds",
                "must be between 60 and 86400",
            ));
        }
        if !(300..=30 * 86_400).contains(&tokens.refresh_idle_seconds) {
            return Err(invalid(
                "tokens.refresh_idle_seconds",
                "must be between 300 and 2592000",
            ));
        }
        if !(tokens.refresh_idle_seconds..=365 * 86_400).contains(&tokens.refresh_absolute_seconds)
        {
            return Err(invalid(
                "tokens.refresh_absolute_seconds",
                "must be at least tokens.refresh_idle_seconds and at most 31536000",
            ));
        }
        if !crate::keys::ALGORITHMS.contains(&tokens.machine_signing_alg.as_str()) {
            return Err(invalid(
                "tokens.machine_signing_alg",
                format!("must be one of {}", crate::keys::ALGORITHMS.join(", ")),
            ));
        }
        self.second_factor
            .otp
            .validate()
            .map_err(|m| invalid("second_factor", m))?;
        if !(1..=24 * 60).contains(&self.session.idle_timeout_minutes) {
            return Err(invalid(
                "session.idle_timeout_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=24 * 30).contains(&self.session.absolute_timeout_hours) {
            return Err(invalid(
                "session.absolute_timeout_hours",
                "must be between 1 and 720",
            ));
        }
        // Building the drivers checks every delivery key (and refuses the development outbox and
        // plain SMTP in production); the server builds them again for use.
        delivery::Channels::build(&self.delivery, &self.outbox.path, self.server.production)
            .map_err(ConfigError::Load)?;
        if self.server.production && !self.bootstrap.operator_user_id.is_empty() {
            return Err(invalid(
                "bootstrap.operator_user_id",
                "must be empty in production; use `idp operator create`",
            ));
        }
        Ok(())
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.bind.parse().map_err(|_| {
            invalid(
                "server.bind",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    self.server.bind
                ),
            )
        })
    }

    /// How long a retired signing key stays published: the longest token lifetime plus five
    /// minutes for clock skew, plus one reload period for nodes that have not noticed yet.
    pub fn key_overlap(&self) -> time::Duration {
        let longest = self
            .tokens
            .access_token_seconds
            .max(self.tokens.id_token_seconds);
        time::Duration::seconds(i64::from(longest) + 300 + i64::from(self.keys.reload_seconds))
    }

    /// The issuer without a trailing slash, as it appears in tokens and discovery.
    pub fn issuer(&self) -> &str {
        self.server.issuer.trim_end_matches('/')
    }
}

pub fn decode_kek(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    bytes.try_into().ok()
}

fn describe(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let kind = match &e.kind {
        figment::error::Kind::UnknownField(field, _) => {
            let key = if key.is_empty() {
                field.clone()
            } else {
                format!("{key}.{field}")
            };
            return format!("{key}: unknown key");
        }
        figment::error::Kind::MissingField(field) => {
            let key = if key.is_empty() {
                field.to_string()
            } else {
                format!("{key}.{field}")
            };
            return format!("{key}: missing");
        }
        other => other.to_string(),
    };
    if key.is_empty() {
        kind
    } else {
        format!("{key}: {kind}")
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
mod tests {
    use super::*;

    fn load_env(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut result = None;
        figment::Jail::expect_with(|jail| {
            for (k, v) in vars {
                jail.set_env(k, v);
            }
            result = Some(Settings::load(None));
            Ok(())
        });
        result.expect("the jail ran")
    }

    #[test]
    fn the_embedded_default_is_valid() {
        let s = load_env(&[]).unwrap();
        assert!(s.database.url.starts_with("sqlite:"));
        assert!(!s.server.production);
    }

    #[test]
    fn environment_overrides_name_their_section_and_key() {
        let s = load_env(&[
            ("SEKIMORI__SERVER__BIND", "127.0.0.1:9999"),
            ("SEKIMORI__DATABASE__URL", "postgres://x@h/db"),
        ])
        .unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:9999");
        assert_eq!(s.database.url, "postgres://x@h/db");
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("SEKIMORI__SERVER__BIND", "nonsense", "server.bind"),
            ("SEKIMORI__DATABASE__URL", "mysql://x", "database.url"),
            (
                "SEKIMORI__DATABASE__MAX_CONNECTIONS",
                "many",
                "database.max_connections",
            ),
            ("SEKIMORI__SERVER__NOPE", "1", "server.nope"),
            (
                "SEKIMORI__PASSWORD_HASHING__MEMORY_KIB",
                "8",
                "password_hashing.memory_kib",
            ),
            ("SEKIMORI__KEYS__KEK", "short", "keys.kek"),
            ("SEKIMORI__LOCKOUT__THRESHOLD", "50", "lockout.threshold"),
            (
                "SEKIMORI__LIMITS__LOGIN_PER_IP_PER_MINUTE",
                "0",
                "limits.login_per_ip_per_minute",
            ),
            (
                "SEKIMORI__TOKENS__ACCESS_TOKEN_SECONDS",
                "86400",
                "tokens.access_token_seconds",
            ),
            (
                "SEKIMORI__TOKENS__REFRESH_ABSOLUTE_SECONDS",
                "600",
                "tokens.refresh_absolute_seconds",
            ),
            ("SEKIMORI__KEYS__RELOAD_SECONDS", "0", "keys.reload_seconds"),
            (
                "SEKIMORI__TOKENS__MACHINE_SIGNING_ALG",
                "HS256",
                "tokens.machine_signing_alg",
            ),
            (
                "SEKIMORI__PASSWORD__MAX_LENGTH",
                "16",
                "password.max_length",
            ),
            ("SEKIMORI__DELIVERY__SMS", "carrier-pigeon", "delivery.sms"),
            (
                "SEKIMORI__SERVER__IDLE_POLL_MICROSECONDS",
                "5000",
                "server.idle_poll_microseconds",
            ),
        ];
        for (var, value, key) in cases {
            let err = load_env(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }

    #[test]
    fn second_factor_settings_are_read_and_checked() {
        let s = load_env(&[]).unwrap();
        assert!(s.second_factor.trusted_networks.is_empty());
        assert!(!s.second_factor.forgotten_password);
        assert_eq!(s.second_factor.otp, policies::OtpPolicy::default());
        let s = load_env(&[(
            "SEKIMORI__SECOND_FACTOR__TRUSTED_NETWORKS",
            r#"["127.0.0.0/8", "2001:db8::/32"]"#,
        )])
        .unwrap();
        assert_eq!(s.second_factor.trusted_networks.len(), 2);
        for (var, value, key) in [
            (
                "SEKIMORI__SECOND_FACTOR__TRUSTED_NETWORKS",
                r#"["10.0.0.0/33"]"#,
                "second_factor.trusted_networks",
            ),
            (
                "SEKIMORI__SECOND_FACTOR__OTP__MAX_TRIES",
                "50",
                "otp.max_tries",
            ),
            (
                "SEKIMORI__SECOND_FACTOR__OTP__LIFETIME_SECS",
                "5",
                "otp.lifetime_secs",
            ),
        ] {
            let err = load_env(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }

    #[test]
    fn production_refuses_the_outbox() {
        let err = load_env(&[
            ("SEKIMORI__SERVER__PRODUCTION", "true"),
            ("SEKIMORI__SERVER__ISSUER", "https://id.example"),
            ("SEKIMORI__BOOTSTRAP__OPERATOR_USER_ID", ""),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("delivery.email"), "{err}");
    }

    #[test]
    fn the_production_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/production.example.toml");
        figment::Jail::expect_with(|_| {
            Settings::load(Some(&path)).map_err(|e| e.to_string())?;
            Ok(())
        });
    }
}
