//! Shared helpers for the end-to-end tests: start the real server on port 0 with a fresh
//! database (SQLite in a temporary directory, or a new PostgreSQL database), drive it over HTTP,
//! control its clock, and read the development outbox.
//!
//! The settings are the embedded default, so a second factor is required for every human
//! sign-in (empty `second_factor.trusted_networks`); [`Browser::second_factor`] completes it
//! through the development outbox the way a person would: enroll an e-mail address when asked,
//! then type the code that arrived.

pub mod peers;

use std::path::Path;
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

/// [`spawn_with`] with the second-factor delivery given (drivers pointed at local peers).
pub async fn spawn_with_delivery(
    backend: Backend,
    dir: TempDir,
    mut settings: Settings,
    delivery: Arc<dyn delivery::Deliver>,
) -> Option<TestApp> {
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
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    Some(start_with_clock(dir, settings, postgres, Some(delivery), clock, 0).await)
}

async fn start(dir: TempDir, settings: Settings, postgres: Option<FreshPostgres>) -> TestApp {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    start_with_clock(dir, settings, postgres, None, clock, 0).await
}

/// Starts a server on `port` (0: any free port) with the given clock and, optionally, the
/// second-factor delivery (otherwise the configured one: the development outbox).
async fn start_with_clock(
    dir: TempDir,
    mut settings: Settings,
    postgres: Option<FreshPostgres>,
    delivery: Option<Arc<dyn delivery::Deliver>>,
    clock: ManualClock,
    port: u16,
) -> TestApp {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the test port");
    let port = listener.local_addr().expect("local address").port();
    settings.server.bind = format!("127.0.0.1:{port}");
    settings.server.issuer = format!("http://127.0.0.1:{port}");
    let app = Application::build_with_delivery(
        listener,
        settings.clone(),
        Arc::new(clock.clone()),
        delivery,
    )
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

/// A stopped server whose data (directory or PostgreSQL database), clock and port are kept for
/// a restart, so the issuer stays the same.
pub struct Stopped {
    pub dir: TempDir,
    pub settings: Settings,
    clock: ManualClock,
    port: u16,
    postgres: Option<FreshPostgres>,
}

impl Stopped {
    pub async fn restart(self) -> TestApp {
        start_with_clock(
            self.dir,
            self.settings,
            self.postgres,
            None,
            self.clock,
            self.port,
        )
        .await
    }
}

impl TestApp {
    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.expect("request");
        let status = response.status();
        (status, response.json().await.expect("JSON body"))
    }

    /// A form POST authenticated with HTTP Basic, as a client calls `/introspect` or `/revoke`:
    /// the status and the JSON body (null when there is none).
    pub async fn post_basic(
        &self,
        path: &str,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .http
            .post(self.url(path))
            .basic_auth(client_id, Some(secret))
            .form(form)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or_default())
    }

    /// Starts a second server on the same database and clock: another IdP node.
    pub async fn second_node(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary directory");
        // Same settings: the same database and key-encryption key, so both nodes share accounts
        // and keys.
        let settings = self.settings.clone();
        start_with_clock(dir, settings, None, None, self.clock.clone(), 0).await
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
        let port = self.port();
        let TestApp {
            dir,
            settings,
            shutdown,
            handle,
            postgres,
            clock,
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
            clock,
            port,
            postgres,
        }
    }
}

impl TestApp {
    /// Every line of the development outbox so far.
    pub fn outbox(&self) -> Vec<delivery::OutboxLine> {
        delivery::OutboxDriver::read_lines(&self.settings.outbox.path).expect("read the outbox")
    }

    /// The code of the newest outbox line.
    pub fn last_code(&self) -> String {
        self.outbox().pop().expect("a code in the outbox").code
    }

    /// The same services the server uses (a second pool on the same database, same clock).
    pub async fn services(&self) -> idp::Services {
        idp::Services::open(self.settings.clone(), Arc::new(self.clock.clone()))
            .await
            .expect("open services")
    }

    /// Creates an institution and returns the master's credential.
    pub async fn institution(&self, code: &str) -> service::provisioning::CreatedInstitution {
        let services = self.services().await;
        services
            .provisioner
            .create_institution(
                &service::provisioning::Actor::cli(),
                service::provisioning::NewInstitutionInput {
                    code,
                    name: "関守クリニック",
                    master_id: "mst01",
                    master_reset_id: "rst01",
                    usage_start: Some(
                        policies::usage::jst_date(service::Clock::now(&self.clock))
                            - time::Duration::days(1),
                    ),
                },
            )
            .await
            .expect("create institution")
    }

    /// Registers a client and returns its secret (None for public clients).
    pub async fn client(
        &self,
        client_id: &str,
        redirect_uri: &str,
        public: bool,
        alg: &str,
    ) -> Option<String> {
        let services = self.services().await;
        let (_, secret) = services
            .provisioner
            .create_client(
                &service::provisioning::Actor::cli(),
                service::provisioning::NewClientInput {
                    client_id: client_id.into(),
                    redirect_uris: vec![redirect_uri.into()],
                    post_logout_redirect_uris: vec![],
                    public,
                    scopes: ["openid", "profile", "institution"]
                        .map(String::from)
                        .to_vec(),
                    grant_types: vec!["authorization_code".into()],
                    backchannel_logout_uri: None,
                    signing_alg: alg.into(),
                },
            )
            .await
            .expect("create client");
        secret
    }
}

/// What a browser does that matters here: keep cookies, never follow redirects on its own.
pub struct Browser {
    pub http: reqwest::Client,
    cookies: std::collections::BTreeMap<String, String>,
    pub accept_language: &'static str,
}

pub struct Page {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The value of a named form field (hidden or pre-filled).
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker)?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        let value_at = tag.find("value=\"")? + 7;
        let value_end = value_at + tag[value_at..].find('"')?;
        Some(tag[value_at..value_end].to_owned())
    }

    /// A query parameter of the redirect target.
    pub fn redirect_param(&self, name: &str) -> Option<String> {
        let location = self.location()?;
        let url = reqwest::Url::parse(&location).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            http,
            cookies: Default::default(),
            accept_language: "ja,en;q=0.5",
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, headers: &reqwest::header::HeaderMap) {
        for value in headers.get_all("set-cookie") {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if text.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let response = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language)
            .send()
            .await
            .expect("GET");
        self.page(response).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("accept-language", self.accept_language)
            .form(form)
            .send()
            .await
            .expect("POST");
        self.page(response).await
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        self.keep_cookies(&headers);
        let body = response.text().await.expect("body");
        Page {
            status,
            headers,
            body,
        }
    }

    /// Fills and posts the login form on `page`.
    pub async fn login(
        &mut self,
        base: &str,
        page: &Page,
        institution: &str,
        user_id: &str,
        password: &str,
    ) -> Page {
        let csrf = page.field("csrf_token").expect("csrf_token field");
        let req = page.field("req").expect("req field");
        let url = format!("{base}/login");
        self.post(
            &url,
            &[
                ("csrf_token", &csrf),
                ("req", &req),
                ("institution_code", institution),
                ("user_id", user_id),
                ("password", password),
            ],
        )
        .await
    }

    /// Completes the second factor that follows a password on `page`, through the development
    /// outbox at `outbox`: on the enrollment page it registers `staff@clinic.example.jp` by
    /// e-mail; on the code page it types the newest code. Any other page is returned as is.
    pub async fn second_factor(&mut self, base: &str, outbox: &Path, page: Page) -> Page {
        let mut page = page;
        if page.body.contains("action=\"/login/second-factor/enroll\"")
            && page.field("code").is_none()
            && page.body.contains("name=\"method\"")
        {
            let csrf = page.field("csrf_token").expect("csrf_token field");
            let step = page.field("step").expect("step field");
            page = self
                .post(
                    &format!("{base}/login/second-factor/enroll"),
                    &[
                        ("csrf_token", &csrf),
                        ("step", &step),
                        ("method", "email"),
                        ("email", "staff@clinic.example.jp"),
                    ],
                )
                .await;
        }
        if !page.body.contains("action=\"/second-factor/verify\"") {
            return page;
        }
        let code = delivery::OutboxDriver::read_lines(outbox)
            .expect("read the outbox")
            .pop()
            .expect("a code in the outbox")
            .code;
        self.submit_code(base, &page, &code).await
    }

    /// Posts `code` on a second-factor code page.
    pub async fn submit_code(&mut self, base: &str, page: &Page, code: &str) -> Page {
        let csrf = page.field("csrf_token").expect("csrf_token field");
        let step = page.field("step").expect("step field");
        self.post(
            &format!("{base}/second-factor/verify"),
            &[("csrf_token", &csrf), ("step", &step), ("code", code)],
        )
        .await
    }

    /// Posts the resend button of a second-factor code page.
    pub async fn resend(&mut self, base: &str, page: &Page) -> Page {
        let csrf = page.field("csrf_token").expect("csrf_token field");
        let step = page.field("step").expect("step field");
        self.post(
            &format!("{base}/second-factor/resend"),
            &[("csrf_token", &csrf), ("step", &step)],
        )
        .await
    }

    /// Fills and posts the forced password change form on `page`.
    pub async fn change_password(
        &mut self,
        base: &str,
        page: &Page,
        new_password: &str,
        confirm: &str,
    ) -> Page {
        let csrf = page.field("csrf_token").expect("csrf_token field");
        let pending = page.field("pending").expect("pending field");
        let url = format!("{base}/login/password");
        self.post(
            &url,
            &[
                ("csrf_token", &csrf),
                ("pending", &pending),
                ("new_password", new_password),
                ("new_password_confirm", confirm),
            ],
        )
        .await
    }
}

/// The client the admin-API tests sign in with (confidential, scopes `openid profile
/// institution admin`).
pub const ADMIN_CLIENT: &str = "admin-console";
pub const ADMIN_REDIRECT: &str = "https://admin.example/callback";
/// The password every account gets at its forced first change in [`TestApp::admin_token`].
pub const ADMIN_NEW_PASSWORD: &str = "Kanri#Pass29";

impl TestApp {
    /// Registers [`ADMIN_CLIENT`] and returns its secret.
    pub async fn admin_client(&self) -> String {
        let services = self.services().await;
        let (_, secret) = services
            .provisioner
            .create_client(
                &service::provisioning::Actor::cli(),
                service::provisioning::NewClientInput {
                    client_id: ADMIN_CLIENT.into(),
                    redirect_uris: vec![ADMIN_REDIRECT.into()],
                    post_logout_redirect_uris: vec![],
                    public: false,
                    scopes: ["openid", "profile", "institution", "admin"]
                        .map(String::from)
                        .to_vec(),
                    grant_types: vec!["authorization_code".into()],
                    backchannel_logout_uri: None,
                    signing_alg: "ES256".into(),
                },
            )
            .await
            .expect("create the admin client");
        secret.expect("a confidential client has a secret")
    }

    /// Signs `user_id` in through the real pages (login, then the forced password change to
    /// [`ADMIN_NEW_PASSWORD`] when `password` is an initial one) with [`ADMIN_CLIENT`], asking for
    /// `scope`, and returns the access token.
    pub async fn access_token(
        &self,
        client_secret: &str,
        institution: &str,
        user_id: &str,
        password: &str,
        scope: &str,
    ) -> String {
        let mut browser = Browser::new();
        let mut authorize = reqwest::Url::parse(&self.url("/authorize")).expect("URL");
        authorize
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", ADMIN_CLIENT)
            .append_pair("redirect_uri", ADMIN_REDIRECT)
            .append_pair("scope", scope)
            .append_pair("state", "admin-state")
            .append_pair("nonce", "admin-nonce");
        let login = browser.get(authorize.as_str()).await;
        assert_eq!(login.status, reqwest::StatusCode::OK, "{}", login.body);
        let mut page = browser
            .login(&self.base, &login, institution, user_id, password)
            .await;
        if page.field("pending").is_some() {
            page = browser
                .change_password(&self.base, &page, ADMIN_NEW_PASSWORD, ADMIN_NEW_PASSWORD)
                .await;
        }
        // Where a second factor is required, complete it through the development outbox.
        let outbox = self.settings.outbox.path.clone();
        page = browser.second_factor(&self.base, &outbox, page).await;
        let code = page
            .redirect_param("code")
            .unwrap_or_else(|| panic!("no code for {institution}/{user_id}: {}", page.body));
        let response = self
            .http
            .post(self.url("/token"))
            .basic_auth(ADMIN_CLIENT, Some(client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", ADMIN_REDIRECT),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let body: serde_json::Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// [`Self::access_token`] with the scopes an admin console asks for.
    pub async fn admin_token(
        &self,
        client_secret: &str,
        institution: &str,
        user_id: &str,
        password: &str,
    ) -> String {
        self.access_token(
            client_secret,
            institution,
            user_id,
            password,
            "openid profile institution admin",
        )
        .await
    }

    /// Creates an account of `account_type` in `institution` through the admin API as `token`
    /// (a fixed name, reading and usage start) and returns its initial password.
    pub async fn create_account(
        &self,
        token: &str,
        institution: &str,
        account_type: &str,
        user_id: &str,
    ) -> String {
        let (status, _, body) = self
            .admin(
                token,
                reqwest::Method::POST,
                &format!("/institutions/{institution}/accounts"),
                Some(serde_json::json!({
                    "account_type": account_type,
                    "user_id": user_id,
                    "name": "関守　花子",
                    "name_kana": "セキモリ ハナコ",
                    "usage_start": "2020-04-01",
                })),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
        body["initial_password"]
            .as_str()
            .expect("initial_password")
            .to_owned()
    }

    /// Calls the admin API: `method` on `/admin/v1{path}` with a bearer token and an optional
    /// JSON body. Returns the status, the headers and the body as JSON (`Null` when empty or not
    /// JSON).
    pub async fn admin(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (
        reqwest::StatusCode,
        reqwest::header::HeaderMap,
        serde_json::Value,
    ) {
        let mut request = self
            .http
            .request(method, self.url(&format!("/admin/v1{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, headers, json)
    }
}

/// Percent-encodes every byte outside RFC 3986's unreserved set (for building query strings by
/// hand in tests).
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
