//! Composition: one place that turns [`Settings`] into live services, and the server built on
//! them. Tests build an [`Application`] on port 0 with their own clock.

use std::fs;
use std::future::IntoFuture;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use policies::AccountType;
use service::authentication::Authenticator;
use service::provisioning::{Actor, IssuedCredential, Provisioner};
use service::second_factor::SecondFactorService;
use service::{Clock, PasswordHasher, Sealer, SecretDigester};
use store::Store;
use tokio::net::TcpListener;

use crate::config::Settings;
use crate::http::{self, AppState};
use crate::keys::KeyRing;
use crate::pages::Pages;
use crate::pages::csrf::Csrf;

/// How many verified access-token signatures a node remembers (about 8 MB at most).
const VERIFIED_SIGNATURES: usize = 100_000;

/// The services every command needs: storage, sealing and provisioning.
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub clock: Arc<dyn Clock>,
    pub kek: [u8; 32],
    pub provisioner: Provisioner,
}

impl Services {
    /// Opens the database, applies migrations and loads the key-encryption key.
    pub async fn open(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let kek = load_kek(&settings)?;
        let store = store::connect(&settings.database.url, settings.database.max_connections)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database ({})",
                    redact_url(&settings.database.url)
                )
            })?;
        store.migrate().await.context("cannot apply migrations")?;
        let sealer = Arc::new(Sealer::new(&kek)?);
        let digester = Arc::new(SecretDigester::from_kek(&kek));
        let provisioner = Provisioner {
            store: store.clone(),
            hasher: PasswordHasher::new(settings.password_hashing, digester.clone())?,
            sealer: sealer.clone(),
            digester,
            clock: clock.clone(),
            policy: Arc::new(settings.password.clone()),
        };
        Ok(Self {
            settings: Arc::new(settings),
            store,
            sealer,
            clock,
            kek,
            provisioner,
        })
    }
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// The bootstrap operator's credential when this start created it; printed once.
    pub bootstrap: Option<IssuedCredential>,
}

impl Application {
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let bind = settings.bind_addr()?;
        let listener = TcpListener::bind(bind)
            .await
            .with_context(|| format!("server.bind: cannot listen on {bind}"))?;
        Self::build_on(listener, settings, clock).await
    }

    /// Builds on an already bound listener (tests bind port 0 first to learn the issuer URL).
    pub async fn build_on(
        listener: TcpListener,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        Self::build_with_delivery(listener, settings, clock, None).await
    }

    /// [`Application::build_on`] with the second-factor delivery given (tests point AWS drivers
    /// at local peers with fixed credentials). `None` builds the drivers from `[delivery]`.
    pub async fn build_with_delivery(
        listener: TcpListener,
        settings: Settings,
        clock: Arc<dyn Clock>,
        delivery: Option<Arc<dyn delivery::Deliver>>,
    ) -> anyhow::Result<Self> {
        let delivery = match delivery {
            Some(delivery) => delivery,
            None => Arc::new(
                delivery::Channels::build(
                    &settings.delivery,
                    &settings.outbox.path,
                    settings.server.production,
                )
                .map_err(anyhow::Error::msg)?,
            ),
        };
        let services = Services::open(settings, clock).await?;
        let keys = KeyRing::load_or_create(
            services.store.as_ref(),
            &services.sealer,
            services.clock.as_ref(),
            services.settings.key_overlap(),
        )
        .await?;
        let bootstrap = bootstrap_operator(&services).await?;
        let settings = services.settings.clone();
        let redis = Some(settings.redis.url.as_str()).filter(|u| !u.is_empty());
        let limiter = limits::from_url(redis).await?;
        let provisioner = &services.provisioner;
        let authenticator = Authenticator {
            store: services.store.clone(),
            hasher: provisioner.hasher.clone(),
            clock: services.clock.clone(),
            lockout: settings.lockout.clone(),
            policy: provisioner.policy.clone(),
            login_hours: settings.login_hours.clone(),
        };
        let second_factor = SecondFactorService::new(
            services.store.clone(),
            services.clock.clone(),
            delivery,
            settings.second_factor.otp.clone(),
            settings.second_factor.trusted_networks.clone(),
            settings.lockout.clone(),
            &services.kek,
        );
        let admin = service::accounts::Admin {
            store: services.store.clone(),
            hasher: provisioner.hasher.clone(),
            sealer: services.sealer.clone(),
            clock: services.clock.clone(),
            policy: provisioner.policy.clone(),
            lockout: settings.lockout.clone(),
        };
        let bulk =
            service::bulk::BulkRegistrations::new(admin.clone(), settings.bulk.to_settings());
        let notices = service::notices::Notices::new(admin.clone(), settings.issuer())?;
        let state = AppState::new(http::Shared {
            bulk,
            notices,
            admin,
            provisioner: provisioner.clone(),
            discovery: http::discovery_document(settings.issuer()),
            verified_signatures: crate::oidc::jwt::VerifiedSignatures::new(VERIFIED_SIGNATURES),
            store: services.store.clone(),
            keys,
            clock: services.clock.clone(),
            sealer: services.sealer.clone(),
            digester: provisioner.digester.clone(),
            authenticator,
            second_factor,
            csrf: Arc::new(Csrf::from_kek(&services.kek)),
            pages: Arc::new(Pages::new()),
            limiter,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(5))
                .build()
                .context("cannot build the outbound HTTP client")?,
            settings,
        });
        Ok(Self {
            listener,
            state,
            bootstrap,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
    /// `server.shutdown_grace_seconds`.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let grace = Duration::from_secs(state.settings.server.shutdown_grace_seconds);
        let reloader = tokio::spawn(reload_keys(state.clone()));
        let bulk_runner = tokio::spawn(state.bulk.clone().run());
        let purger = tokio::spawn(purge_initial_passwords(state.clone()));
        let sign_in_purger = tokio::spawn(crate::retention::purge_ended_sign_ins(state.clone()));
        let router = http::router(state);
        tracing::info!(address = %self.listener.local_addr()?, "serving");
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping_tx.send(());
        })
        .into_future();
        let mut server = tokio::spawn(server);
        let result = tokio::select! {
            result = &mut server => result,
            _ = stopping_rx => match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(seconds = grace.as_secs(), "grace period over; closing remaining connections");
                    server.abort();
                    Ok(Ok(()))
                }
            },
        };
        reloader.abort();
        bulk_runner.abort();
        purger.abort();
        sign_in_purger.abort();
        result??;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Picks up keys created or rotated by other nodes and by `idp keys rotate`.
async fn reload_keys(state: AppState) {
    let sealer = state.sealer.clone();
    let every = Duration::from_secs(u64::from(state.settings.keys.reload_seconds));
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = state
            .keys
            .reload(state.store.as_ref(), &sealer, state.clock.now())
            .await
        {
            tracing::warn!(error = %e, "reloading signing keys failed; keeping the current set");
        }
    }
}

/// How often expired initial passwords are looked for.
const INITIAL_PASSWORD_PURGE_EVERY: Duration = Duration::from_secs(600);

/// Destroys the sealed copies of initial passwords once they expire (30 days for people;
/// machine accounts' secrets never expire and stay printable): an initial password is kept,
/// encrypted, only until its first change (which drops it) or its expiry. Runs at start and then
/// every ten minutes; every node may run it, the update is idempotent.
async fn purge_initial_passwords(state: AppState) {
    let expiring: Vec<AccountType> = AccountType::ALL
        .into_iter()
        .filter(|t| t.initial_password_expires())
        .collect();
    let mut tick = tokio::time::interval(INITIAL_PASSWORD_PURGE_EVERY);
    loop {
        tick.tick().await;
        let issued_before = state.clock.now() - policies::credential::INITIAL_PASSWORD_VALIDITY;
        match state
            .store
            .purge_initial_passwords(&expiring, issued_before)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(accounts = n, "purged expired initial passwords"),
            Err(e) => tracing::warn!(error = %e, "purging expired initial passwords failed"),
        }
    }
}

async fn bootstrap_operator(services: &Services) -> anyhow::Result<Option<IssuedCredential>> {
    let settings = &services.settings.bootstrap;
    if settings.operator_user_id.is_empty()
        || services
            .store
            .count_accounts_of_type(AccountType::Operator)
            .await?
            > 0
    {
        return Ok(None);
    }
    let issued = services
        .provisioner
        .create_operator(
            &Actor::system(),
            &settings.operator_user_id,
            &settings.operator_name,
            "",
        )
        .await
        .context("cannot create the bootstrap operator (bootstrap.operator_user_id)")?;
    Ok(Some(issued))
}

/// Reads the KEK from `keys.kek` or `keys.kek_file`, generating the file outside production.
pub fn load_kek(settings: &Settings) -> anyhow::Result<[u8; 32]> {
    if !settings.keys.kek.is_empty() {
        return crate::config::decode_kek(settings.keys.kek.expose())
            .context("keys.kek: not base64 of 32 bytes");
    }
    let path = &settings.keys.kek_file;
    match fs::read_to_string(path) {
        Ok(text) => crate::config::decode_kek(&text)
            .with_context(|| format!("keys.kek_file {}: not base64 of 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !settings.server.production => {
            generate_kek_file(path)?;
            tracing::info!(path = %path.display(), "generated a key-encryption key (owner-only permissions)");
            load_kek(settings)
        }
        Err(e) => bail!("keys.kek_file {}: {e}", path.display()),
    }
}

fn generate_kek_file(path: &Path) -> anyhow::Result<()> {
    use base64::Engine;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        // The data directory also holds the database (password hashes): owner-only.
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let key = service::random::bytes::<32>();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("keys.kek_file {}: cannot create", path.display()))?;
    writeln!(
        file,
        "{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )?;
    file.sync_all()?;
    Ok(())
}

/// Hides a password in a database URL before it reaches a message.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_generated_kek_and_its_directory_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("data").join("kek");
        super::generate_kek_file(&path).unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(crate::config::decode_kek(&text).is_some());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
