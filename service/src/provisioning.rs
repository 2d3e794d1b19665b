//! Creating institutions, operators and clients: the bootstrap and CLI use cases, shared later
//! with the admin API.
//!
//! Every initial password is generated here by the policy's generator, hashed (argon2id, or the
//! keyed HMAC for machine accounts, see `hashing`), sealed with the KEK for the ID/password
//! notice, and returned once to the caller.

use std::sync::Arc;

use policies::names::{NameKana, PersonName};
use policies::password::PasswordPolicy;
use policies::user_id::UserId;
use policies::{AccountType, InstitutionCode, Violation};
use serde::Serialize;
use store::{
    AuditResult, Client, Credential, Institution, NewAccount, NewAuditEvent, NewInstitution, Store,
};
use time::Date;
use uuid::Uuid;

use crate::{Clock, PasswordHasher, Sealer, SecretDigester, ServiceError};

/// Who performs an action, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub account_id: Option<Uuid>,
    pub label: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    /// The command-line tool run by whoever operates the deployment.
    pub fn cli() -> Self {
        Self {
            account_id: None,
            label: "cli".into(),
            ip: None,
            user_agent: None,
        }
    }

    /// The server itself, e.g. creating the bootstrap operator on first start.
    pub fn system() -> Self {
        Self {
            account_id: None,
            label: "system".into(),
            ip: None,
            user_agent: None,
        }
    }
}

/// An initial credential, returned exactly once.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCredential {
    pub user_id: String,
    pub initial_password: String,
}

#[derive(Debug, Clone)]
pub struct CreatedInstitution {
    pub institution: Institution,
    pub master: IssuedCredential,
    pub master_reset: IssuedCredential,
}

#[derive(Debug, Clone)]
pub struct NewInstitutionInput<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub master_id: &'a str,
    pub master_reset_id: &'a str,
    /// Defaults to today in Asia/Tokyo.
    pub usage_start: Option<Date>,
}

#[derive(Debug, Clone)]
pub struct NewClientInput {
    pub client_id: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub public: bool,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub signing_alg: String,
}

/// Scopes a client may be registered with.
pub const KNOWN_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "institution",
    "offline_access",
    "admin",
];
/// Whether `scope` is a service scope: a client's own API scope, granted only to its
/// `client_credentials` tokens. Written `resource:action` (a colon is required, so a mistyped
/// user scope is refused rather than taken for one): 3-64 of `[A-Za-z0-9._:/-]`, not starting or
/// ending with the colon.
pub fn is_service_scope(scope: &str) -> bool {
    (3..=64).contains(&scope.len())
        && scope.contains(':')
        && !scope.starts_with(':')
        && !scope.ends_with(':')
        && scope
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
}

/// Grant types a client may be registered with.
pub const KNOWN_GRANTS: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];
/// JWS algorithms a client may ask for.
pub const SIGNING_ALGS: &[&str] = &["RS256", "ES256", "EdDSA"];

#[derive(Clone)]
pub struct Provisioner {
    pub store: Arc<dyn Store>,
    pub hasher: PasswordHasher,
    pub sealer: Arc<Sealer>,
    pub digester: Arc<SecretDigester>,
    pub clock: Arc<dyn Clock>,
    pub policy: Arc<PasswordPolicy>,
}

impl Provisioner {
    /// Creates an institution with its `master` and `master_reset` accounts in one transaction.
    pub async fn create_institution(
        &self,
        actor: &Actor,
        input: NewInstitutionInput<'_>,
    ) -> Result<CreatedInstitution, ServiceError> {
        let code = InstitutionCode::parse(input.code)
            .map_err(|v| ServiceError::invalid("code", vec![v]))?;
        let name = institution_name(input.name)?;
        let kind = code.kind();
        let master_id = UserId::parse(input.master_id, AccountType::Master, kind)
            .map_err(|v| ServiceError::invalid("master_id", v))?;
        let master_reset_id = UserId::parse(input.master_reset_id, AccountType::MasterReset, kind)
            .map_err(|v| ServiceError::invalid("master_reset_id", v))?;
        if master_id.as_str() == master_reset_id.as_str() {
            return Err(ServiceError::invalid(
                "master_reset_id",
                vec![Violation::new(
                    "user_id.duplicate",
                    "マスタアカウントとリセット用アカウントに同じユーザIDは使用できません。",
                    "The master and master_reset accounts need different user IDs.",
                )],
            ));
        }
        let now = self.clock.now();
        let usage_start = input
            .usage_start
            .unwrap_or_else(|| policies::usage::jst_date(now));

        let (master, master_password) = self
            .new_account(
                &code,
                AccountType::Master,
                master_id,
                "マスタアカウント",
                "マスタアカウント",
                usage_start,
                actor,
            )
            .await?;
        let (master_reset, reset_password) = self
            .new_account(
                &code,
                AccountType::MasterReset,
                master_reset_id,
                "マスタアカウントリセット用",
                "マスタアカウントリセットヨウ",
                usage_start,
                actor,
            )
            .await?;
        let audit = vec![
            self.audit(
                actor,
                "institution.create",
                None,
                Some(code.as_str().to_owned()),
                &code,
            ),
            self.audit(
                actor,
                "account.create",
                Some(master.id),
                Some(master.user_id.clone()),
                &code,
            ),
            self.audit(
                actor,
                "account.create",
                Some(master_reset.id),
                Some(master_reset.user_id.clone()),
                &code,
            ),
        ];
        let master_cred = IssuedCredential {
            user_id: master.user_id.clone(),
            initial_password: master_password,
        };
        let reset_cred = IssuedCredential {
            user_id: master_reset.user_id.clone(),
            initial_password: reset_password,
        };
        let institution = self
            .store
            .create_institution(
                NewInstitution {
                    code,
                    name,
                    usage_start,
                    created_at: now,
                },
                master,
                master_reset,
                audit,
            )
            .await?;
        Ok(CreatedInstitution {
            institution,
            master: master_cred,
            master_reset: reset_cred,
        })
    }

    /// Creates a platform operator (institution `0000000000`).
    pub async fn create_operator(
        &self,
        actor: &Actor,
        user_id: &str,
        name: &str,
        name_kana: &str,
    ) -> Result<IssuedCredential, ServiceError> {
        let code = InstitutionCode::platform();
        let user_id = UserId::parse(user_id, AccountType::Operator, code.kind())
            .map_err(|v| ServiceError::invalid("user_id", v))?;
        let usage_start = policies::usage::jst_date(self.clock.now());
        let (account, password) = self
            .new_account(
                &code,
                AccountType::Operator,
                user_id,
                name,
                name_kana,
                usage_start,
                actor,
            )
            .await?;
        let audit = self.audit(
            actor,
            "account.create",
            Some(account.id),
            Some(account.user_id.clone()),
            &code,
        );
        let account = self.store.create_account(account, audit).await?;
        Ok(IssuedCredential {
            user_id: account.user_id,
            initial_password: password,
        })
    }

    /// Registers a relying party. Returns the client and, for confidential clients, the secret,
    /// which is shown only this once.
    pub async fn create_client(
        &self,
        actor: &Actor,
        input: NewClientInput,
    ) -> Result<(Client, Option<String>), ServiceError> {
        validate_client(&input)?;
        let secret = (!input.public).then(crate::random::token);
        let client = Client {
            client_id: input.client_id,
            secret_hash: secret.as_deref().map(|s| self.digester.digest(s)),
            redirect_uris: input.redirect_uris,
            post_logout_redirect_uris: input.post_logout_redirect_uris,
            grant_types: input.grant_types,
            scopes: input.scopes,
            backchannel_logout_uri: input.backchannel_logout_uri,
            signing_alg: input.signing_alg,
            created_at: self.clock.now(),
        };
        let audit = NewAuditEvent {
            target: Some(client.client_id.clone()),
            ..self.audit(
                actor,
                "client.create",
                None,
                None,
                &InstitutionCode::platform(),
            )
        };
        self.store.create_client(client.clone(), audit).await?;
        Ok((client, secret))
    }

    #[allow(clippy::too_many_arguments)]
    async fn new_account(
        &self,
        code: &InstitutionCode,
        account_type: AccountType,
        user_id: UserId,
        name: &str,
        name_kana: &str,
        usage_start: Date,
        actor: &Actor,
    ) -> Result<(NewAccount, String), ServiceError> {
        let name = PersonName::parse(name).map_err(|v| ServiceError::invalid("name", v))?;
        // Operators are created from the command line with a name only; their reading is optional.
        let name_kana = if name_kana.is_empty() && account_type == AccountType::Operator {
            String::new()
        } else {
            NameKana::parse(name_kana)
                .map_err(|v| ServiceError::invalid("name_kana", v))?
                .as_str()
                .to_owned()
        };
        let password = self.policy.generate_initial(account_type, &mut rand::rng());
        let hash = self.hasher.hash_for(account_type, password.clone()).await?;
        let id = Uuid::now_v7();
        let now = self.clock.now();
        let account = NewAccount {
            id,
            institution_code: code.clone(),
            account_type,
            user_id: user_id.as_str().to_owned(),
            name: name.as_str().to_owned(),
            name_kana,
            usage_start,
            usage_end: Date::from_calendar_date(9999, time::Month::December, 31)
                .expect("valid date"),
            second_factor: None,
            credential: Credential {
                hash,
                initial_issued_at: Some(now),
                initial_sealed: Some(
                    self.sealer
                        .seal(password.as_bytes(), &initial_password_context(id)),
                ),
                changed_at: None,
            },
            created_by: actor.account_id,
            created_at: now,
        };
        Ok((account, password))
    }

    fn audit(
        &self,
        actor: &Actor,
        kind: &str,
        target_id: Option<Uuid>,
        target: Option<String>,
        institution: &InstitutionCode,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at: self.clock.now(),
            kind: kind.to_owned(),
            actor_account_id: actor.account_id,
            actor: actor.label.clone(),
            target_account_id: target_id,
            target,
            institution_code: Some(institution.as_str().to_owned()),
            ip: actor.ip.clone(),
            user_agent: actor.user_agent.clone(),
            result: AuditResult::Success,
            reason: None,
        }
    }
}

/// The associated data under which an account's initial password is sealed.
pub fn initial_password_context(account_id: Uuid) -> String {
    format!("initial-password:{account_id}")
}

/// Parses an institution name with the rule in `policies`.
pub(crate) fn institution_name(raw: &str) -> Result<String, ServiceError> {
    policies::names::InstitutionName::parse(raw)
        .map(policies::names::InstitutionName::into_string)
        .map_err(|v| ServiceError::invalid("name", vec![v]))
}

fn client_violation(rule: &'static str, ja: String, en: String) -> ServiceError {
    ServiceError::invalid("client", vec![Violation::new(rule, ja, en)])
}

fn validate_client(input: &NewClientInput) -> Result<(), ServiceError> {
    let id_ok = (1..=64).contains(&input.client_id.len())
        && input
            .client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !id_ok {
        return Err(client_violation(
            "client.client_id",
            "クライアントIDは英数字と - . _ の1～64文字です（@ は機械アカウント用に予約）。".into(),
            "The client ID must be 1-64 characters of letters, digits, '-', '.' and '_' ('@' is reserved for machine accounts).".into(),
        ));
    }
    let needs_redirect = input.grant_types.iter().any(|g| g == "authorization_code");
    if needs_redirect && input.redirect_uris.is_empty() {
        return Err(client_violation(
            "client.redirect_uri",
            "authorization_code を使うクライアントにはリダイレクトURIが1つ以上必要です。".into(),
            "A client using authorization_code needs at least one redirect URI.".into(),
        ));
    }
    for uri in input
        .redirect_uris
        .iter()
        .chain(&input.post_logout_redirect_uris)
        .chain(&input.backchannel_logout_uri)
    {
        if let Err(why) = check_uri(uri) {
            return Err(client_violation(
                "client.uri",
                format!("URI {uri:?} は使用できません: {why}"),
                format!("URI {uri:?} is not acceptable: {why}"),
            ));
        }
    }
    for scope in &input.scopes {
        if !KNOWN_SCOPES.contains(&scope.as_str()) && !is_service_scope(scope) {
            return Err(client_violation(
                "client.scope",
                format!(
                    "不明なスコープ {scope:?}（使用可能: {}、またはクライアント自身のAPIスコープ resource:action）",
                    KNOWN_SCOPES.join(" ")
                ),
                format!(
                    "unknown scope {scope:?} (known: {}, or the client's own API scopes written resource:action)",
                    KNOWN_SCOPES.join(" ")
                ),
            ));
        }
    }
    if !input.scopes.iter().any(|s| s == "openid") && needs_redirect {
        return Err(client_violation(
            "client.scope",
            "authorization_code を使うクライアントには openid スコープが必要です。".into(),
            "A client using authorization_code needs the openid scope.".into(),
        ));
    }
    for grant in &input.grant_types {
        if !KNOWN_GRANTS.contains(&grant.as_str()) {
            return Err(client_violation(
                "client.grant_type",
                format!(
                    "不明なグラント種別 {grant:?}（使用可能: {}）",
                    KNOWN_GRANTS.join(" ")
                ),
                format!(
                    "unknown grant type {grant:?} (known: {})",
                    KNOWN_GRANTS.join(" ")
                ),
            ));
        }
    }
    if input.public && input.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(client_violation(
            "client.grant_type",
            "公開クライアントは client_credentials を使用できません。".into(),
            "A public client cannot use client_credentials.".into(),
        ));
    }
    if !SIGNING_ALGS.contains(&input.signing_alg.as_str()) {
        return Err(client_violation(
            "client.signing_alg",
            format!(
                "署名アルゴリズムは {} のいずれかです。",
                SIGNING_ALGS.join(", ")
            ),
            format!(
                "The signing algorithm must be one of {}.",
                SIGNING_ALGS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Redirect and logout URIs must be absolute, without fragment, and use https except on loopback
/// hosts (RFC 8252 §7.3 style development setups).
fn check_uri(uri: &str) -> Result<(), &'static str> {
    if uri.len() > 2000 || uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("too long or contains spaces / control characters");
    }
    if uri.contains('#') {
        return Err("a fragment is not allowed");
    }
    let rest = if let Some(rest) = uri.strip_prefix("https://") {
        rest
    } else if let Some(rest) = uri.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        });
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err("http is allowed only for localhost; use https");
        }
        rest
    } else {
        return Err("must be an absolute http(s) URI");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the host is missing");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_uri, is_service_scope};

    #[test]
    fn service_scopes_need_a_colon_and_a_small_alphabet() {
        for ok in ["records:read", "karte/v1:write", "api.example:x"] {
            assert!(is_service_scope(ok), "{ok}");
        }
        for bad in [
            "profil", ":read", "read:", "a b:c", "x:", "é:read", "openid",
        ] {
            assert!(!is_service_scope(bad), "{bad}");
        }
    }

    #[test]
    fn redirect_uris_must_be_absolute_https_or_loopback() {
        for ok in [
            "https://rp.example/cb",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "https://rp.example/cb?x=1",
        ] {
            assert_eq!(check_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/cb",
            "http://rp.example/cb",
            "https://rp.example/cb#frag",
            "ftp://x",
            "https:///cb",
            "https://a b",
        ] {
            assert!(check_uri(bad).is_err(), "{bad}");
        }
    }
}
