//! The `client_credentials` grant end to end (SPEC §8): machine accounts created through the
//! admin API get RFC 9068 access tokens with their account secret (HTTP Basic or
//! `client_secret_post`), verified here against the published JWKS; every refusal is the same
//! `invalid_client`; wrong secrets count toward the lockout; a lock, reset or delete ends an
//! issued token at introspection and userinfo. Registered clients get service tokens for their
//! own scopes.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use policies::AccountType::{self, *};
use policies::InstitutionCode;
use reqwest::{Method, StatusCode};
use sekimori_tests::{ADMIN_NEW_PASSWORD, Backend, TestApp, spawn_with, test_settings};
use serde_json::{Value, json};
use store::{AuditFilter, InstitutionSettings, NewAuditEvent};

const CLINIC: &str = "1312345678";
const MANAGER: &str = "kanri1";
/// A resource server that introspects tokens.
const RS: &str = "resource-server";

struct World {
    app: TestApp,
    /// The manager's admin API token.
    manager: String,
    /// The resource server's client secret.
    rs_secret: String,
}

/// An institution with a manager signed in to the admin API (from a trusted network, so no
/// second factor is asked; tests/second_factor.rs covers that), and a resource server client.
/// `threshold` sets the institution's own lockout threshold before anyone signs in.
async fn world(backend: Backend, threshold: Option<u32>) -> Option<World> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    let app = spawn_with(backend, dir, settings).await?;
    let secret = app.admin_client().await;
    let created = app.institution(CLINIC).await;
    if threshold.is_some() {
        let services = app.services().await;
        services
            .store
            .set_institution_settings(
                &InstitutionCode::parse(CLINIC).unwrap(),
                &InstitutionSettings {
                    lockout_threshold: threshold,
                    ..Default::default()
                },
                service::Clock::now(&app.clock),
                audit_row("institution.settings"),
            )
            .await
            .unwrap();
    }
    let master = app
        .admin_token(&secret, CLINIC, "mst01", &created.master.initial_password)
        .await;
    let (status, _, body) = app
        .admin(
            &master,
            Method::POST,
            &format!("/institutions/{CLINIC}/accounts"),
            Some(account_body(Manager, MANAGER)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let initial = body["initial_password"].as_str().unwrap().to_owned();
    let manager = app.admin_token(&secret, CLINIC, MANAGER, &initial).await;
    let rs_secret = register_client(&app, RS, &["openid"], &["authorization_code"], "ES256")
        .await
        .expect("a confidential client");
    Some(World {
        app,
        manager,
        rs_secret,
    })
}

fn audit_row(kind: &str) -> NewAuditEvent {
    NewAuditEvent {
        at: time::OffsetDateTime::now_utc(),
        kind: kind.into(),
        actor_account_id: None,
        actor: "test".into(),
        target_account_id: None,
        target: None,
        institution_code: Some(CLINIC.into()),
        ip: None,
        user_agent: None,
        result: store::AuditResult::Success,
        reason: None,
    }
}

fn account_body(account_type: AccountType, user_id: &str) -> Value {
    json!({
        "account_type": account_type.as_str(),
        "user_id": user_id,
        "name": "連携　システム",
        "name_kana": "レンケイ システム",
        "usage_start": "2020-04-01",
    })
}

async fn register_client(
    app: &TestApp,
    client_id: &str,
    scopes: &[&str],
    grants: &[&str],
    alg: &str,
) -> Option<String> {
    let services = app.services().await;
    let (_, secret) = services
        .provisioner
        .create_client(
            &service::provisioning::Actor::cli(),
            service::provisioning::NewClientInput {
                client_id: client_id.into(),
                redirect_uris: vec!["https://rs.example/cb".into()],
                post_logout_redirect_uris: vec![],
                public: false,
                scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
                grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
                backchannel_logout_uri: None,
                signing_alg: alg.into(),
            },
        )
        .await
        .expect("register the client");
    secret
}

impl World {
    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let (status, _, body) = self
            .app
            .admin(
                &self.manager,
                method,
                &format!("/institutions/{CLINIC}/accounts{path}"),
                body,
            )
            .await;
        (status, body)
    }

    /// Creates a machine account through the admin API; returns its secret.
    async fn machine(&self, account_type: AccountType, user_id: &str) -> String {
        let (status, body) = self
            .admin(Method::POST, "", Some(account_body(account_type, user_id)))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body["expires_at"].is_null(), "machine secrets never expire");
        body["initial_password"].as_str().unwrap().to_owned()
    }

    async fn account(&self, user_id: &str) -> store::Account {
        let services = self.app.services().await;
        services
            .store
            .find_account(&InstitutionCode::parse(CLINIC).unwrap(), user_id)
            .await
            .unwrap()
            .expect("the account")
    }

    async fn introspect(&self, token: &str) -> Value {
        let (status, body) = self
            .app
            .post_basic("/introspect", RS, &self.rs_secret, &[("token", token)])
            .await;
        assert_eq!(status, StatusCode::OK);
        body
    }

    /// A revocation (RFC 7009) authenticated with HTTP Basic; the status and the body (JSON
    /// or null).
    async fn revoke(&self, client_id: &str, secret: &str, token: &str) -> (StatusCode, Value) {
        self.app
            .post_basic("/revoke", client_id, secret, &[("token", token)])
            .await
    }

    async fn userinfo(&self, token: &str) -> (StatusCode, String, Value) {
        let response = self
            .app
            .http
            .get(self.app.url("/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            status,
            challenge,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn audit_reasons(&self, kind: &str) -> Vec<String> {
        let services = self.app.services().await;
        services
            .store
            .list_audit(
                &AuditFilter {
                    kind: Some(kind.into()),
                    ..Default::default()
                },
                1000,
            )
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.reason.unwrap_or_default())
            .collect()
    }
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

/// A `client_credentials` request, authenticated with HTTP Basic (`basic`) or in the form.
async fn token(
    app: &TestApp,
    client_id: &str,
    secret: &str,
    basic: bool,
    extra: &[(&str, &str)],
) -> Answer {
    let mut form = vec![("grant_type", "client_credentials")];
    form.extend_from_slice(extra);
    let mut request = app.http.post(app.url("/token"));
    if basic {
        request = request.basic_auth(client_id, Some(secret));
    } else {
        form.push(("client_id", client_id));
        form.push(("client_secret", secret));
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    Answer {
        status,
        challenge,
        body: response.json().await.unwrap(),
    }
}

fn machine_id(user_id: &str) -> String {
    format!("{user_id}@{CLINIC}")
}

fn b64(part: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(part).expect("base64url")
}

/// Verifies a compact JWS against the server's JWKS (independently of the server's own code)
/// and returns its header and claims.
async fn verify_jwt(app: &TestApp, jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "{jwt}");
    let header: Value = serde_json::from_slice(&b64(parts[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64(parts[1])).unwrap();
    let signature = b64(parts[2]);
    let input = format!("{}.{}", parts[0], parts[1]);
    let (_, jwks) = app.get_json("/jwks.json").await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the signing key is published");
    let jwk = |name: &str| b64(key[name].as_str().unwrap());
    let ok = match header["alg"].as_str().unwrap() {
        "RS256" => RsaPublicKeyComponents {
            n: jwk("n"),
            e: jwk("e"),
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &signature)
        .is_ok(),
        "ES256" => {
            let mut point = vec![4u8];
            point.extend(jwk("x"));
            point.extend(jwk("y"));
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(input.as_bytes(), &signature)
                .is_ok()
        }
        "EdDSA" => UnparsedPublicKey::new(&ED25519, jwk("x"))
            .verify(input.as_bytes(), &signature)
            .is_ok(),
        other => panic!("unexpected alg {other}"),
    };
    assert!(ok, "the signature verifies against JWKS");
    (header, claims)
}

async fn machine_tokens_carry_the_account(backend: Backend) {
    let Some(w) = world(backend, None).await else {
        return;
    };
    let app = &w.app;
    let (_, doc) = app.get_json("/.well-known/openid-configuration").await;
    assert!(
        doc["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("client_credentials")),
        "{doc}"
    );

    let secret = w.machine(WebApi, "A0api").await;
    assert_eq!(secret.chars().count(), 24, "the long generated form");
    let account = w.account("A0api").await;
    assert!(
        account.credential.hash.starts_with("$hmac-sha256$v=1$"),
        "machine secrets use the keyed hash"
    );

    // HTTP Basic.
    let basic = token(app, &machine_id("A0api"), &secret, true, &[]).await;
    assert_eq!(basic.status, StatusCode::OK, "{}", basic.body);
    assert_eq!(basic.body["token_type"], "Bearer");
    assert_eq!(basic.body["expires_in"], 300);
    assert_eq!(basic.body["scope"], "institution");
    assert!(basic.body.get("refresh_token").is_none());
    assert!(basic.body.get("id_token").is_none());
    let access = basic.body["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = verify_jwt(app, &access).await;
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "RS256", "tokens.machine_signing_alg");
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], app.base);
    assert_eq!(claims["sub"], account.id.to_string(), "the opaque sub");
    assert_eq!(claims["client_id"], machine_id("A0api"));
    assert_eq!(claims["account_type"], "web_api");
    assert_eq!(claims["institution_code"], CLINIC);
    assert_eq!(claims["user_id"], "A0api");
    assert!(claims.get("name").is_none());
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );

    // client_secret_post, with the profile scope.
    let post = token(
        app,
        &machine_id("A0api"),
        &secret,
        false,
        &[("scope", "institution profile")],
    )
    .await;
    assert_eq!(post.status, StatusCode::OK, "{}", post.body);
    let (_, claims) = verify_jwt(app, post.body["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["name"], "連携　システム");
    assert_eq!(claims["account_type"], "web_api");

    // Scopes a machine cannot have, and grants it cannot use.
    for scope in ["openid", "admin", "offline_access", "records:read"] {
        let refused = token(
            app,
            &machine_id("A0api"),
            &secret,
            true,
            &[("scope", scope)],
        )
        .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{scope}");
        assert_eq!(refused.body["error"], "invalid_scope", "{scope}");
    }
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(machine_id("A0api"), Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", "https://rs.example/cb"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");

    // Userinfo and introspection accept it while the account may act.
    let (status, _, info) = w.userinfo(&access).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["sub"], account.id.to_string());
    assert_eq!(info["account_type"], "web_api");
    assert_eq!(info["user_id"], "A0api");
    let active = w.introspect(&access).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["username"], machine_id("A0api"));
    assert_eq!(active["account_type"], "web_api");
    assert!(active.get("crv").is_none(), "private claims stay private");
    // A machine token is no admin token.
    let (status, _, _) = app
        .admin(
            &access,
            Method::GET,
            &format!("/institutions/{CLINIC}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Audited like sign-ins; last_login_at is written at most once a minute.
    assert!(
        w.audit_reasons("login.success")
            .await
            .iter()
            .filter(|r| *r == "client_credentials")
            .count()
            >= 2
    );
    let first_login = w.account("A0api").await.last_login_at.expect("recorded");
    app.clock.advance(time::Duration::seconds(30));
    assert_eq!(
        token(app, &machine_id("A0api"), &secret, true, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        w.account("A0api").await.last_login_at,
        Some(first_login),
        "not rewritten within a minute"
    );
    app.clock.advance(time::Duration::seconds(31));
    assert_eq!(
        token(app, &machine_id("A0api"), &secret, true, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert!(w.account("A0api").await.last_login_at.unwrap() > first_login);

    // The other machine types work the same way.
    for (account_type, user_id) in [(LinkedApp, "R0app"), (CardReader, "F0cam")] {
        let secret = w.machine(account_type, user_id).await;
        let ok = token(app, &machine_id(user_id), &secret, true, &[]).await;
        assert_eq!(ok.status, StatusCode::OK, "{user_id}: {}", ok.body);
        let (_, claims) = verify_jwt(app, ok.body["access_token"].as_str().unwrap()).await;
        assert_eq!(claims["account_type"], account_type.as_str());
    }
}

#[tokio::test]
async fn sqlite_machine_tokens_carry_the_account() {
    machine_tokens_carry_the_account(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_machine_tokens_carry_the_account() {
    machine_tokens_carry_the_account(Backend::Postgres).await;
}

async fn wrong_secrets_count_toward_the_institution_lockout(backend: Backend) {
    let Some(w) = world(backend, Some(3)).await else {
        return;
    };
    let app = &w.app;
    let secret = w.machine(WebApi, "A0api").await;
    let id = machine_id("A0api");
    for (n, basic) in [(1, true), (2, false)] {
        let refused = token(app, &id, "Wrong#Secret29xxxxxxxxxxx", basic, &[]).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "attempt {n}");
        assert_eq!(refused.body["error"], "invalid_client");
        assert!(
            refused
                .challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Basic")),
            "{:?}",
            refused.challenge
        );
        assert_eq!(w.account("A0api").await.failed_attempts, n);
    }
    // A success in between resets the count (SPEC §6).
    assert_eq!(
        token(app, &id, &secret, true, &[]).await.status,
        StatusCode::OK
    );
    assert_eq!(w.account("A0api").await.failed_attempts, 0);
    for _ in 0..3 {
        let refused = token(app, &id, "Wrong#Secret29xxxxxxxxxxx", true, &[]).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = w.admin(Method::GET, "/A0api", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["lock"], "failures", "locked by failures: {body}");
    // Locked: even the right secret fails, with the same answer.
    let locked = token(app, &id, &secret, true, &[]).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        locked.body,
        json!({"error": "invalid_client", "error_description": "client authentication failed"})
    );
    let reasons = w.audit_reasons("login.failure").await;
    for expected in ["wrong_password", "wrong_password_locked", "locked"] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected}: {reasons:?}"
        );
    }
    // An admin unlock lets it in again.
    let (status, body) = w.admin(Method::POST, "/A0api/unlock", None).await;
    assert!(status.is_success(), "{body}");
    assert_eq!(
        token(app, &id, &secret, true, &[]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn sqlite_wrong_secrets_count_toward_the_institution_lockout() {
    wrong_secrets_count_toward_the_institution_lockout(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_wrong_secrets_count_toward_the_institution_lockout() {
    wrong_secrets_count_toward_the_institution_lockout(Backend::Postgres).await;
}

#[tokio::test]
async fn every_refusal_is_the_same_invalid_client() {
    let Some(w) = world(Backend::Sqlite, None).await else {
        return;
    };
    let app = &w.app;
    let secret = w.machine(WebApi, "A0api").await;
    let id = machine_id("A0api");
    let generic =
        json!({"error": "invalid_client", "error_description": "client authentication failed"});
    let refused = |answer: Answer, what: &str| {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
        assert_eq!(answer.body, generic, "{what}");
    };

    // A person's account, whatever the password: refused without trying it.
    refused(
        token(app, &machine_id(MANAGER), ADMIN_NEW_PASSWORD, true, &[]).await,
        "human account",
    );
    assert_eq!(w.account(MANAGER).await.failed_attempts, 0);
    refused(
        token(app, "A0none@1312345678", &secret, true, &[]).await,
        "unknown user ID",
    );
    refused(
        token(app, "A0api@1399999999", &secret, false, &[]).await,
        "unknown institution",
    );
    refused(
        token(app, "A0api@13-bad", &secret, true, &[]).await,
        "malformed institution code",
    );
    let no_secret = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", &id)])
        .send()
        .await
        .unwrap();
    assert_eq!(no_secret.status(), StatusCode::UNAUTHORIZED);

    // Disabled, then enabled again.
    let (status, _) = w
        .admin(Method::PATCH, "/A0api", Some(json!({"enabled": false})))
        .await;
    assert_eq!(status, StatusCode::OK);
    refused(token(app, &id, &secret, true, &[]).await, "disabled");
    w.admin(Method::PATCH, "/A0api", Some(json!({"enabled": true})))
        .await;
    assert_eq!(
        token(app, &id, &secret, true, &[]).await.status,
        StatusCode::OK
    );

    // Outside the usage dates.
    let (status, body) = w
        .admin(
            Method::PATCH,
            "/A0api",
            Some(json!({"usage_start": "2099-01-01", "usage_end": "2099-12-31"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused(
        token(app, &id, &secret, true, &[]).await,
        "before usage start",
    );
    w.admin(
        Method::PATCH,
        "/A0api",
        Some(json!({"usage_start": "2020-04-01", "usage_end": "2020-12-31"})),
    )
    .await;
    refused(token(app, &id, &secret, true, &[]).await, "after usage end");

    // Deleted.
    let (status, _) = w.admin(Method::DELETE, "/A0api", None).await;
    assert!(status.is_success());
    refused(token(app, &id, &secret, true, &[]).await, "deleted");

    let reasons = w.audit_reasons("login.failure").await;
    for expected in [
        "wrong_account_kind",
        "unknown_account",
        "malformed_institution_code",
        "disabled",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "{expected}: {reasons:?}"
        );
    }
    assert!(
        reasons.iter().filter(|r| r.starts_with("usage.")).count() >= 2,
        "{reasons:?}"
    );
}

#[tokio::test]
async fn machine_accounts_cannot_use_the_login_page() {
    let Some(w) = world(Backend::Sqlite, None).await else {
        return;
    };
    let secret = w.machine(WebApi, "A0api").await;
    let mut browser = sekimori_tests::Browser::new();
    let login = browser.get(&w.app.url("/login")).await;
    let page = browser
        .login(&w.app.base, &login, CLINIC, "A0api", &secret)
        .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED, "the generic failure");
    assert!(browser.cookie("sekimori_session").is_none());
    assert_eq!(w.account("A0api").await.failed_attempts, 0);
    assert!(
        w.audit_reasons("login.failure")
            .await
            .contains(&"wrong_account_kind".to_owned())
    );
}

async fn lock_reset_and_delete_end_issued_machine_tokens(backend: Backend) {
    let Some(w) = world(backend, None).await else {
        return;
    };
    let app = &w.app;
    let secret = w.machine(LinkedApp, "R0app").await;
    let id = machine_id("R0app");
    let issue = |secret: String| {
        let id = id.clone();
        async move {
            let answer = token(app, &id, &secret, true, &[]).await;
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
            answer.body["access_token"].as_str().unwrap().to_owned()
        }
    };

    // A reset: the old token and the old secret stop working, the new secret works.
    let before_reset = issue(secret.clone()).await;
    assert_eq!(w.introspect(&before_reset).await["active"], true);
    let (status, body) = w.admin(Method::POST, "/R0app/password-reset", None).await;
    assert!(status.is_success(), "{body}");
    let new_secret = body["initial_password"].as_str().unwrap().to_owned();
    assert_eq!(w.introspect(&before_reset).await, json!({"active": false}));
    assert_eq!(w.userinfo(&before_reset).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        token(app, &id, &secret, true, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let after_reset = issue(new_secret.clone()).await;
    assert_eq!(w.introspect(&after_reset).await["active"], true);

    // A lock (by an admin, a second later): inactive at once, and still after the unlock,
    // which only tokens issued after it survive.
    app.clock.advance(time::Duration::seconds(1));
    let (status, body) = w.admin(Method::POST, "/R0app/lock", None).await;
    assert!(status.is_success(), "{body}");
    assert_eq!(w.introspect(&after_reset).await, json!({"active": false}));
    let (status, challenge, _) = w.userinfo(&after_reset).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"), "{challenge}");
    let (status, body) = w.admin(Method::POST, "/R0app/unlock", None).await;
    assert!(status.is_success(), "{body}");
    assert_eq!(w.introspect(&after_reset).await, json!({"active": false}));
    assert_eq!(w.userinfo(&after_reset).await.0, StatusCode::UNAUTHORIZED);
    let after_unlock = issue(new_secret.clone()).await;
    assert_eq!(w.introspect(&after_unlock).await["active"], true);
    assert_eq!(w.userinfo(&after_unlock).await.0, StatusCode::OK);

    // Disabled (a second later), which enabling again does not undo; then deleted.
    let live = issue(new_secret.clone()).await;
    app.clock.advance(time::Duration::seconds(1));
    w.admin(Method::PATCH, "/R0app", Some(json!({"enabled": false})))
        .await;
    assert_eq!(w.introspect(&live).await["active"], false);
    w.admin(Method::PATCH, "/R0app", Some(json!({"enabled": true})))
        .await;
    assert_eq!(w.introspect(&live).await["active"], false);
    let live = issue(new_secret).await;
    assert_eq!(w.introspect(&live).await["active"], true);
    w.admin(Method::DELETE, "/R0app", None).await;
    assert_eq!(w.introspect(&live).await["active"], false);
    assert_eq!(w.userinfo(&live).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sqlite_lock_reset_and_delete_end_issued_machine_tokens() {
    lock_reset_and_delete_end_issued_machine_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_lock_reset_and_delete_end_issued_machine_tokens() {
    lock_reset_and_delete_end_issued_machine_tokens(Backend::Postgres).await;
}

#[tokio::test]
async fn machine_secrets_never_expire() {
    let Some(w) = world(Backend::Sqlite, None).await else {
        return;
    };
    let app = &w.app;
    let secret = w.machine(CardReader, "F0cam").await;
    // A person's initial password lapses after 30 days; a machine's never does.
    app.clock.advance(time::Duration::days(31));
    let answer = token(app, &machine_id("F0cam"), &secret, true, &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Still on its issued secret, which counts as initial, not expired.
    let account = w.account("F0cam").await;
    assert_eq!(
        policies::credential::password_state(
            account.account_type,
            account.credential.initial_issued_at,
            service::Clock::now(&app.clock),
            policies::credential::INITIAL_PASSWORD_VALIDITY,
        ),
        policies::credential::PasswordState::Initial
    );
    app.clock.advance(time::Duration::days(400));
    assert_eq!(
        token(app, &machine_id("F0cam"), &secret, false, &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_argon2_machine_secret_still_works_and_is_upgraded() {
    let Some(w) = world(Backend::Sqlite, None).await else {
        return;
    };
    let app = &w.app;
    let secret = w.machine(WebApi, "A0old").await;
    // As stored before machine secrets used the keyed hash.
    let services = app.services().await;
    let account = w.account("A0old").await;
    let legacy = services
        .provisioner
        .hasher
        .hash(secret.clone())
        .await
        .unwrap();
    services
        .store
        .set_credential(
            account.id,
            store::Credential {
                hash: legacy,
                ..account.credential.clone()
            },
        )
        .await
        .unwrap();
    let first = token(app, &machine_id("A0old"), &secret, true, &[]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let upgraded = w.account("A0old").await.credential.hash;
    assert!(upgraded.starts_with("$hmac-sha256$v=1$"), "{upgraded}");
    let access = first.body["access_token"].as_str().unwrap();
    assert_eq!(w.introspect(access).await["active"], true);
    assert_eq!(
        token(app, &machine_id("A0old"), &secret, true, &[])
            .await
            .status,
        StatusCode::OK
    );
}

async fn machine_accounts_revoke_their_own_tokens(backend: Backend) {
    let Some(w) = world(backend, Some(3)).await else {
        return;
    };
    let app = &w.app;
    let secret = w.machine(WebApi, "A0api").await;
    let other_secret = w.machine(LinkedApp, "R0app").await;
    let id = machine_id("A0api");
    let issue = |id: String, secret: String| async move {
        let answer = token(app, &id, &secret, true, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["access_token"].as_str().unwrap().to_owned()
    };
    let first = issue(id.clone(), secret.clone()).await;
    let second = issue(id.clone(), secret.clone()).await;
    let others = issue(machine_id("R0app"), other_secret.clone()).await;

    // Another machine account's or a registered client's attempt changes nothing (RFC 7009
    // §2.2: 200 all the same).
    let (status, _) = w.revoke(&machine_id("R0app"), &other_secret, &first).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(w.revoke(RS, &w.rs_secret, &first).await.0, StatusCode::OK);
    assert_eq!(w.introspect(&first).await["active"], true);
    // A wrong secret is refused like at the token endpoint, and counts toward the lockout.
    let (status, body) = w.revoke(&id, "Wrong#Secret29xxxxxxxxxxx", &first).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(w.account("A0api").await.failed_attempts, 1);
    assert_eq!(w.introspect(&first).await["active"], true);

    // The owner ends this token at once, and only this one; once audited.
    for _ in 0..2 {
        assert_eq!(w.revoke(&id, &secret, &first).await.0, StatusCode::OK);
        assert_eq!(w.introspect(&first).await, json!({"active": false}));
        assert_eq!(w.userinfo(&first).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(w.account("A0api").await.failed_attempts, 0);
    assert_eq!(w.introspect(&second).await["active"], true);
    assert_eq!(w.introspect(&others).await["active"], true);
    assert_eq!(w.audit_reasons("token.revoke").await, ["machine_token"]);
    // A machine account has no refresh tokens; a token that is none answers 200 too.
    for token in ["not-a-token", "a.b.c"] {
        assert_eq!(w.revoke(&id, &secret, token).await.0, StatusCode::OK);
    }
    assert_eq!(w.audit_reasons("token.revoke").await.len(), 1);
    let (status, _) = app
        .post_basic(
            "/revoke",
            &id,
            &secret,
            &[("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "no token");
    // It is no resource server: introspection refuses it, without counting a failure.
    let (status, _) = app
        .post_basic("/introspect", &id, &secret, &[("token", second.as_str())])
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(w.account("A0api").await.failed_attempts, 0);
    // The revocation is forgotten when the token would have expired anyway.
    app.clock.advance(time::Duration::seconds(301));
    assert_eq!(w.introspect(&first).await, json!({"active": false}));
}

#[tokio::test]
async fn sqlite_machine_accounts_revoke_their_own_tokens() {
    machine_accounts_revoke_their_own_tokens(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_machine_accounts_revoke_their_own_tokens() {
    machine_accounts_revoke_their_own_tokens(Backend::Postgres).await;
}

#[tokio::test]
async fn registered_clients_get_service_tokens_for_their_own_scopes() {
    let Some(w) = world(Backend::Sqlite, None).await else {
        return;
    };
    let app = &w.app;
    let batch = register_client(
        app,
        "batch",
        &["openid", "records:read", "records:write"],
        &["client_credentials"],
        "ES256",
    )
    .await
    .unwrap();
    let rp = register_client(
        app,
        "rp",
        &["openid", "records:read"],
        &["authorization_code"],
        "RS256",
    )
    .await
    .unwrap();

    let all = token(app, "batch", &batch, true, &[]).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(
        all.body["scope"], "records:read records:write",
        "never openid"
    );
    let narrow = token(app, "batch", &batch, false, &[("scope", "records:read")]).await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.body);
    let access = narrow.body["access_token"].as_str().unwrap().to_owned();
    let (header, claims) = verify_jwt(app, &access).await;
    assert_eq!(header["alg"], "ES256", "the client's algorithm");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["sub"], "batch");
    assert_eq!(claims["client_id"], "batch");
    assert_eq!(claims["scope"], "records:read");
    assert!(claims.get("account_type").is_none());
    for scope in ["openid", "profile", "records:read admin", "records:delete"] {
        let refused = token(app, "batch", &batch, true, &[("scope", scope)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{scope}");
        assert_eq!(refused.body["error"], "invalid_scope", "{scope}");
    }
    // A client not allowed the grant, and a wrong secret.
    let refused = token(app, "rp", &rp, true, &[]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"], "unauthorized_client");
    let refused = token(app, "batch", "wrong", true, &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["error"], "invalid_client");

    // No user behind it: userinfo answers 403 insufficient_scope; introspection describes it.
    let (status, challenge, _) = w.userinfo(&access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let active = w.introspect(&access).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], "batch");
    assert_eq!(active["scope"], "records:read");
    assert!(active.get("username").is_none());
    let (status, _, _) = app
        .admin(
            &access,
            Method::GET,
            &format!("/institutions/{CLINIC}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Revocation: another client's attempt does nothing (200 all the same, RFC 7009 §2.2); the
    // owner's ends this token at once, and only this one, and is audited once.
    assert_eq!(w.revoke(RS, &w.rs_secret, &access).await.0, StatusCode::OK);
    assert_eq!(w.introspect(&access).await["active"], true);
    for _ in 0..2 {
        assert_eq!(w.revoke("batch", &batch, &access).await.0, StatusCode::OK);
        assert_eq!(w.introspect(&access).await, json!({"active": false}));
    }
    let other = all.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        w.introspect(&other).await["active"],
        true,
        "only the one revoked"
    );
    assert_eq!(w.audit_reasons("token.revoke").await, ["service_token"]);
    app.clock.advance(time::Duration::seconds(301));
    assert_eq!(w.introspect(&other).await, json!({"active": false}));
}
