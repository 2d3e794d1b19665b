//! The foundation, end to end: discovery, JWKS, health probes, the bootstrap operator and data
//! surviving a restart, on SQLite and on PostgreSQL.

use reqwest::StatusCode;
use sekimori_tests::{Backend, spawn_app};

async fn discovery_and_jwks_are_served(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };

    let (status, doc) = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["issuer"], app.base.as_str());
    let jwks_uri = doc["jwks_uri"].as_str().expect("jwks_uri");
    assert!(jwks_uri.starts_with(&app.base));

    let response = app.http.get(jwks_uri).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/jwk-set+json"
    );
    let jwks: serde_json::Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().expect("keys");
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for key in keys {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        for private in ["d", "p", "q", "dp", "dq", "qi", "k"] {
            assert!(
                key.get(private).is_none(),
                "JWKS publishes private member {private}"
            );
        }
    }

    let (status, health) = app.get_json("/healthz").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, ready) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let expected = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(ready["database"], expected);
}

async fn keys_and_accounts_survive_a_restart(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let bootstrap = app
        .bootstrap
        .clone()
        .expect("first start creates the bootstrap operator");
    assert_eq!(bootstrap.user_id, "admin");
    assert_eq!(bootstrap.initial_password.chars().count(), 12);
    let (_, before) = app.get_json("/jwks.json").await;

    let app = app.stop().await.restart().await;
    assert!(
        app.bootstrap.is_none(),
        "the bootstrap operator is created only once"
    );
    let (_, after) = app.get_json("/jwks.json").await;
    assert_eq!(
        before, after,
        "signing keys are loaded, not regenerated, after a restart"
    );
}

#[tokio::test]
async fn sqlite_discovery_and_jwks_are_served() {
    discovery_and_jwks_are_served(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_discovery_and_jwks_are_served() {
    discovery_and_jwks_are_served(Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_keys_and_accounts_survive_a_restart() {
    keys_and_accounts_survive_a_restart(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_keys_and_accounts_survive_a_restart() {
    keys_and_accounts_survive_a_restart(Backend::Postgres).await;
}

#[tokio::test]
async fn startup_without_a_database_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = sekimori_tests::test_settings(&dir);
    settings.database.url = "postgres://postgres@127.0.0.1:1/none".into();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let clock = std::sync::Arc::new(service::SystemClock);
    let err = match idp::Application::build_on(listener, settings, clock).await {
        Ok(_) => panic!("startup must fail without a database"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("cannot open the database"), "{err}");
}

#[tokio::test]
async fn readyz_reports_an_unreachable_database() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    assert_eq!(app.get_json("/readyz").await.0, StatusCode::OK);
    app.drop_postgres_database().await;
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "database unreachable");
    // Liveness does not depend on the database.
    assert_eq!(app.get_json("/healthz").await.0, StatusCode::OK);
}
