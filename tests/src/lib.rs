//! Shared helpers for the end-to-end tests: start the real server on port 0 with a fresh
//! database (SQLite in a temporary directory, or a new PostgreSQL database), drive it over HTTP,
//! and control its clock.

use std::sync::Arc;

use idp::{Application, Settings};
use service::ManualClock;
use sqlx::Connection;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL URL for tests, or `None` when the PostgreSQL variant should be skipped.
/// Under `CI=true` a missing `TEST_DATABASE_URL` is a failure, never a silent skip.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TEST_DATABASE_URL is not set")
        }
        _ => {
            eprintln!("note: TEST_DATABASE_URL is not set; skipping the PostgreSQL variant");
            None
        }
    }
}

/// A fresh PostgreSQL database, dropped when this value is dropped.
pub struct FreshPostgres {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl FreshPostgres {
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let name = format!("sekimori_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base);
        Ok(Self {
            admin_url: admin_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        })
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Dropping needs async I/O; do it on a small runtime of its own, best effort.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin_url).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub settings: Settings,
    pub bootstrap: Option<service::provisioning::IssuedCredential>,
    pub dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    postgres: Option<FreshPostgres>,
}

/// Settings for a test: the embedded default with a temporary data directory.
pub fn test_settings(dir: &TempDir) -> Settings {
    // An environment prefix that matches nothing: tests never pick up the developer's variables.
    let isolated = figment::providers::Env::prefixed("SEKIMORI_TEST_ISOLATED__");
    let mut settings = Settings::load_with(None, isolated).expect("the embedded default is valid");
    settings.database.url = format!("sqlite://{}", dir.path().join("sekimori.db").display());
    settings.keys.kek_file = dir.path().join("kek");
    settings.outbox.path = dir.path().join("outbox.jsonl");
    settings.database.max_connections = 4;
    settings
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let settings = test_settings(&dir);
    spawn_with(backend, dir, settings).await
}

/// Starts the server with the given settings (port and issuer are chosen here). Returns `None`
/// only for the PostgreSQL variant outside CI when no database is configured.
pub async fn spawn_with(backend: Backend, dir: TempDir, mut settings: Settings) -> Option<TestApp> {
    let postgres = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let url = postgres_url()?;
            let db = FreshPostgres::create(&url)
                .await
                .expect("create a fresh PostgreSQL database");
            settings.database.url = db.url.clone();
            Some(db)
        }
    };
    Some(start(dir, settings, postgres).await)
}

async fn start(dir: TempDir, mut settings: Settings, postgres: Option<FreshPostgres>) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let port = listener.local_addr().expect("local address").port();
    settings.server.bind = format!("127.0.0.1:{port}");
    settings.server.issuer = format!("http://127.0.0.1:{port}");
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let app = Application::build_on(listener, settings.clone(), Arc::new(clock.clone()))
        .await
        .expect("build the app");
    let bootstrap = app.bootstrap.clone();
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client");
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        http,
        clock,
        settings,
        bootstrap,
        dir,
        shutdown: Some(tx),
        handle: Some(handle),
        postgres,
    }
}

/// A stopped server whose data (directory or PostgreSQL database) is kept for a restart.
pub struct Stopped {
    pub dir: TempDir,
    pub settings: Settings,
    postgres: Option<FreshPostgres>,
}

impl Stopped {
    pub async fn restart(self) -> TestApp {
        start(self.dir, self.settings, self.postgres).await
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// Drops the PostgreSQL database under the running server (readiness tests).
    pub async fn drop_postgres_database(&self) {
        let db = self.postgres.as_ref().expect("a PostgreSQL-backed app");
        let mut conn = sqlx::PgConnection::connect(&db.admin_url)
            .await
            .expect("connect");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            db.name
        )))
        .execute(&mut conn)
        .await
        .expect("drop the database");
    }

    /// Stops the server gracefully and waits for it, keeping its data.
    pub async fn stop(self) -> Stopped {
        let TestApp {
            dir,
            settings,
            shutdown,
            handle,
            postgres,
            ..
        } = self;
        if let Some(tx) = shutdown {
            let _ = tx.send(());
        }
        if let Some(handle) = handle {
            handle
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        Stopped {
            dir,
            settings,
            postgres,
        }
    }
}
