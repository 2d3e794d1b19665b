//! The store contract: one story, run against every backend.
//!
//! Each story is an async function taking a [`Ctx`] (the store as `Arc<dyn Store>` plus a raw
//! pool on the same database for what the trait deliberately cannot do, such as trying to
//! rewrite the audit log). [`contract!`] turns every story into two tests, `<story>::sqlite` and
//! `<story>::postgres`, each on a fresh database:
//!
//! - SQLite: a new file in its own temporary directory (inside a `data/` folder the store must
//!   create).
//! - PostgreSQL: a new `sekimori_test_<uuid>` database created through `TEST_DATABASE_URL`
//!   (e.g. `postgres://postgres@127.0.0.1:5432/test`) and dropped afterwards, best-effort. Without
//!   that variable the PostgreSQL half is skipped with a note, except under `CI=true`, where it
//!   fails.
//!
//! Timestamps are truncated to whole microseconds before they are stored: PostgreSQL keeps
//! microseconds, and the store normalizes SQLite to the same precision.

use std::future::Future;
use std::sync::Arc;

use policies::bulk::JobStatus;
use policies::lockout::LockState;
use policies::{AccountType, InstitutionCode, InstitutionKind};
use sqlx::{AssertSqlSafe, Connection, PgPool, SqlitePool};
use store::{
    Account, AccountChange, AccountFields, AccountFilter, AuditEvent, AuditFilter, AuditResult,
    AuthorizationCode, BulkCompletion, BulkProblem, BulkResultRow, Client, CodeRedemption,
    Credential, Grant, InstitutionSettings, InstitutionUpdate, NewAccount, NewAuditEvent,
    NewBulkJob, NewInstitution, OtpChallenge, OtpPurpose, OtpSendStats, PageRequest, PrintedNotice,
    RefreshFamily, RefreshKey, RefreshRedemption, RefreshToken, RefreshTokenId, Rotation,
    SecondFactor, SecondFactorMethod, Session, SigningKey, Store, StoreError,
};
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Harness.
// ---------------------------------------------------------------------------------------------

/// What a story gets: the store under test and a raw pool on the same database.
struct Ctx {
    store: Arc<dyn Store>,
    raw: Raw,
}

enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Raw {
    /// Runs one statement outside the store, returning the driver's verdict.
    async fn execute(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        match self {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
    }
}

/// Makes `<story>::sqlite` and `<story>::postgres` tests from each story function.
macro_rules! contract {
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::on_sqlite(super::$story).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::on_postgres(super::$story).await;
            }
        }
    )*};
}

/// A store at `url` with every migration applied or, for an upgrade story, those up to
/// `schema` only (the story applies the rest with [`Store::migrate`]).
async fn open(url: &str, schema: Option<i64>) -> Arc<dyn Store> {
    let store = store::connect(url, 5).await.expect("connect");
    let Some(version) = schema else {
        store.migrate().await.expect("migrate");
        return store;
    };
    let sqlite = url.starts_with("sqlite:");
    let folder = format!(
        "{}/../migrations/{}",
        env!("CARGO_MANIFEST_DIR"),
        if sqlite { "sqlite" } else { "postgres" }
    );
    let migrator = sqlx::migrate::Migrator::new(std::path::Path::new(&folder))
        .await
        .expect("migrations");
    if sqlite {
        let pool = SqlitePool::connect(url).await.expect("raw sqlite pool");
        migrator.run_to(version, &pool).await.expect("migrate");
        pool.close().await;
    } else {
        let pool = PgPool::connect(url).await.expect("raw postgres pool");
        migrator.run_to(version, &pool).await.expect("migrate");
        pool.close().await;
    }
    store
}

async fn on_sqlite<F, Fut>(story: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    on_sqlite_at(None, story).await;
}

async fn on_sqlite_at<F, Fut>(schema: Option<i64>, story: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/sekimori.db", dir.path().display());
    let store = open(&url, schema).await;
    assert_eq!(store.backend(), "sqlite");
    let raw = SqlitePool::connect(&url).await.expect("raw sqlite pool");
    story(Ctx {
        store,
        raw: Raw::Sqlite(raw.clone()),
    })
    .await;
    raw.close().await;
}

/// The server URL from `TEST_DATABASE_URL`; `None` (skip) when unset, a failure under CI.
fn postgres_server_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but TEST_DATABASE_URL is not set: the PostgreSQL contract must run in CI"
            )
        }
        _ => {
            eprintln!("note: TEST_DATABASE_URL is not set; skipping the PostgreSQL variant");
            None
        }
    }
}

/// Replaces the database name in a `postgres://user@host:port/db?params` URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

async fn on_postgres<F, Fut>(story: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    on_postgres_at(None, story).await;
}

async fn on_postgres_at<F, Fut>(schema: Option<i64>, story: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(server) = postgres_server_url() else {
        return;
    };
    let database = format!("sekimori_test_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .expect("connect to TEST_DATABASE_URL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("create test database");

    let url = with_database(&server, &database);
    let store = open(&url, schema).await;
    assert_eq!(store.backend(), "postgres");
    let raw = PgPool::connect(&url).await.expect("raw postgres pool");
    // The story runs in its own task so that a failed assertion still reaches the cleanup.
    let outcome = tokio::spawn(story(Ctx {
        store,
        raw: Raw::Postgres(raw.clone()),
    }))
    .await;
    raw.close().await;

    let dropped = sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    if let Err(err) = dropped {
        eprintln!("note: could not drop {database}: {err}");
    }
    if let Err(err) = outcome {
        std::panic::resume_unwind(err.into_panic());
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures.
// ---------------------------------------------------------------------------------------------

/// Now, truncated to the microsecond precision both backends keep.
fn now() -> OffsetDateTime {
    micros(OffsetDateTime::now_utc())
}

fn micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .expect("valid nanosecond")
}

fn code(raw: &str) -> InstitutionCode {
    InstitutionCode::parse_for_login(raw).expect("valid institution code")
}

/// A medical institution in Tokyo (prefecture 13, score table 1).
const CLINIC: &str = "1310000001";
/// A pharmacy in Osaka (prefecture 27, score table 4).
const PHARMACY: &str = "2740000002";

fn new_institution(raw_code: &str) -> NewInstitution {
    NewInstitution {
        code: code(raw_code),
        name: "せきもり内科クリニック".into(),
        usage_start: date!(2026 - 04 - 01),
        // A non-UTC offset: the store must keep the instant.
        created_at: micros(datetime!(2026-03-15 09:30:00.123456789 +09:00)),
    }
}

fn new_account(raw_code: &str, account_type: AccountType, user_id: &str) -> NewAccount {
    let at = now();
    NewAccount {
        id: Uuid::now_v7(),
        institution_code: code(raw_code),
        account_type,
        user_id: user_id.into(),
        name: "関守 太郎".into(),
        name_kana: "セキモリ タロウ".into(),
        usage_start: date!(2026 - 04 - 01),
        usage_end: date!(2027 - 03 - 31),
        second_factor: Some(SecondFactor {
            method: SecondFactorMethod::Sms,
            email: None,
            phone: Some("+819012345678".into()),
            verified: true,
        }),
        credential: Credential {
            hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            initial_issued_at: Some(at),
            initial_sealed: Some(vec![0, 1, 2, 254, 255]),
            changed_at: None,
        },
        created_by: Some(Uuid::now_v7()),
        created_at: at,
    }
}

fn audit_event(kind: &str, institution: Option<&str>, at: OffsetDateTime) -> NewAuditEvent {
    NewAuditEvent {
        at,
        kind: kind.into(),
        actor_account_id: Some(Uuid::now_v7()),
        actor: "cli".into(),
        target_account_id: None,
        target: Some("1310000001/master".into()),
        institution_code: institution.map(Into::into),
        ip: Some("192.0.2.1".into()),
        user_agent: Some("contract-test".into()),
        result: AuditResult::Success,
        reason: None,
    }
}

/// The account a fresh `NewAccount` must read back as.
fn expected(new: &NewAccount) -> Account {
    Account {
        id: new.id,
        institution_code: new.institution_code.clone(),
        account_type: new.account_type,
        user_id: new.user_id.clone(),
        name: new.name.clone(),
        name_kana: new.name_kana.clone(),
        enabled: true,
        lock: LockState::None,
        locked_at: None,
        tokens_not_before: None,
        failed_attempts: 0,
        usage_start: new.usage_start,
        usage_end: new.usage_end,
        second_factor: new.second_factor.clone(),
        credential: new.credential.clone(),
        notice_issued: false,
        last_login_at: None,
        created_by: new.created_by,
        created_at: new.created_at,
        deleted_at: None,
    }
}

/// Creates the clinic with its two master accounts; returns (master, master_reset).
async fn clinic(store: &dyn Store) -> (NewAccount, NewAccount) {
    let master = new_account(CLINIC, AccountType::Master, "master");
    let reset = new_account(CLINIC, AccountType::MasterReset, "master_reset");
    store
        .create_institution(
            new_institution(CLINIC),
            master.clone(),
            reset.clone(),
            vec![],
        )
        .await
        .expect("create clinic");
    (master, reset)
}

fn assert_conflict<T: std::fmt::Debug>(result: store::Result<T>, what: &str) {
    match result {
        Err(StoreError::Conflict(got)) => assert_eq!(got, what),
        other => panic!("expected Conflict({what}), got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: store::Result<T>) {
    assert!(
        matches!(result, Err(StoreError::NotFound)),
        "expected NotFound, got {result:?}"
    );
}

fn jwk(kid: &str) -> serde_json::Value {
    serde_json::json!({"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "kid": kid, "use": "sig"})
}

/// The account with this ID, which must exist (deleted or not).
async fn account(store: &dyn Store, id: Uuid) -> Account {
    store
        .get_account(id)
        .await
        .expect("get_account")
        .expect("account present")
}

/// The ID of the live account with this user ID in that institution, if any.
async fn found(store: &dyn Store, institution: &str, user_id: &str) -> Option<Uuid> {
    let account = store
        .find_account(&code(institution), user_id)
        .await
        .expect("find_account");
    account.map(|a| a.id)
}

/// Creates an account with the `account.create` audit event the services would write.
async fn add_account(store: &dyn Store, account: NewAccount) -> store::Result<Account> {
    let institution = Some(account.institution_code.as_str());
    let audit = audit_event("account.create", institution, now());
    store.create_account(account, audit).await
}

/// The whole audit log, oldest first.
async fn audit_log(store: &dyn Store) -> Vec<AuditEvent> {
    store
        .list_audit(&all_audit(), 1000)
        .await
        .expect("list_audit")
}

fn all_audit() -> AuditFilter {
    AuditFilter::default()
}

// ---------------------------------------------------------------------------------------------
// The story.
// ---------------------------------------------------------------------------------------------

contract!(
    migrations_are_idempotent,
    platform_institution_is_seeded,
    create_institution_round_trips,
    duplicate_institution_conflicts,
    clashing_master_ids_leave_nothing_behind,
    same_user_id_in_another_institution_is_allowed,
    create_account_needs_an_existing_institution,
    find_account_is_case_sensitive,
    delete_account_is_soft_and_reserves_the_user_id,
    record_failure_is_atomic,
    record_success_resets_failures,
    set_lock_round_trips,
    set_credential_round_trips,
    updates_of_unknown_accounts_are_not_found,
    clients_round_trip,
    signing_keys_insert_list_retire,
    sessions_lifecycle,
    audit_filters_and_limit,
    audit_log_is_append_only,
    concurrent_audit_rows_are_all_committed,
    count_accounts_of_type,
    codes_are_redeemed_exactly_once,
    second_factor_is_set_and_read_back,
    otp_challenges_round_trip_and_are_spent_once,
    otp_tries_are_counted_exactly,
    otp_send_stats_count_since_and_by_destination,
    otp_challenges_are_purged_by_age,
    password_changes_keep_history_and_end_other_sessions,
    recent_sign_ins_of_an_account,
    refresh_tokens_are_redeemed_exactly_once,
    grouped_refresh_inserts_fail_only_the_bad_row,
    refresh_rotation_spends_once_and_writes_only_the_winner,
    refresh_tokens_of_ended_families_are_purged,
    grants_are_purged_with_their_codes_once_nothing_refers_to_them,
    access_tokens_are_revoked_once_until_they_expire,
    search_accounts_filters_and_pages,
    change_account_applies_and_ends_access,
    revoke_grants_of_account,
    joined_reads_match_the_single_reads,
    institution_update_and_settings,
    bulk_jobs_one_active_per_institution,
    bulk_jobs_are_claimed_once_and_taken_over_after_the_lease,
    bulk_completion_is_all_or_nothing,
    bulk_passwords_are_purged,
    notices_are_marked_all_or_nothing,
    expired_initial_passwords_are_purged,
);

async fn migrations_are_idempotent(ctx: Ctx) {
    // The harness migrated once already.
    ctx.store.migrate().await.expect("second migrate");
    ctx.store.migrate().await.expect("third migrate");
    ctx.store.ping().await.expect("ping");
    assert_eq!(ctx.store.list_institutions().await.expect("list").len(), 1);
}

async fn platform_institution_is_seeded(ctx: Ctx) {
    let platform = ctx
        .store
        .get_institution(&InstitutionCode::platform())
        .await
        .expect("get")
        .expect("platform institution present");
    assert_eq!(platform.code.as_str(), "0000000000");
    assert_eq!(platform.kind, InstitutionKind::Platform);
    assert_eq!(platform.name, "運用事業者");
    assert_eq!(platform.usage_start, date!(2000 - 01 - 01));
    assert_eq!(platform.settings, InstitutionSettings::default());
    assert_eq!(platform.settings_version, 1);
    assert_eq!(platform.created_at, datetime!(2000-01-01 00:00:00 UTC));
}

async fn create_institution_round_trips(ctx: Ctx) {
    let store = &*ctx.store;
    let institution = new_institution(CLINIC);
    let mut master = new_account(CLINIC, AccountType::Master, "master");
    // The master has an e-mail factor and no initial password, unlike master_reset.
    master.second_factor = Some(SecondFactor {
        method: SecondFactorMethod::Email,
        email: Some("master@example.jp".into()),
        phone: None,
        verified: false,
    });
    master.credential = Credential {
        hash: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$aGFzaDI".into(),
        initial_issued_at: None,
        initial_sealed: None,
        changed_at: Some(now()),
    };
    master.created_by = None;
    let reset = new_account(CLINIC, AccountType::MasterReset, "master_reset");
    let events = vec![
        audit_event("institution.create", Some(CLINIC), now()),
        audit_event("account.create", Some(CLINIC), now()),
    ];

    let created = store
        .create_institution(
            institution.clone(),
            master.clone(),
            reset.clone(),
            events.clone(),
        )
        .await
        .expect("create");
    let read = store
        .get_institution(&institution.code)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(created, read);
    assert_eq!(read.code, institution.code);
    assert_eq!(read.name, institution.name);
    assert_eq!(read.kind, InstitutionKind::Medical);
    assert_eq!(read.usage_start, institution.usage_start);
    assert_eq!(read.settings, InstitutionSettings::default());
    assert_eq!(read.settings_version, 1);
    assert_eq!(read.created_at, institution.created_at);

    for new in [&master, &reset] {
        let by_id = account(store, new.id).await;
        assert_eq!(by_id, expected(new));
        let found = store
            .find_account(&new.institution_code, &new.user_id)
            .await
            .expect("find");
        assert_eq!(found, Some(expected(new)));
    }

    let listed = store.list_institutions().await.expect("list");
    let codes: Vec<&str> = listed.iter().map(|i| i.code.as_str()).collect();
    assert_eq!(codes, ["0000000000", CLINIC]);

    let audit = audit_log(store).await;
    let stored: Vec<NewAuditEvent> = audit.into_iter().map(|e| e.event).collect();
    assert_eq!(stored, events);
}

async fn duplicate_institution_conflicts(ctx: Ctx) {
    let store = &*ctx.store;
    clinic(store).await;
    let again = store
        .create_institution(
            new_institution(CLINIC),
            new_account(CLINIC, AccountType::Master, "other_master"),
            new_account(CLINIC, AccountType::MasterReset, "other_reset"),
            vec![audit_event("institution.create", Some(CLINIC), now())],
        )
        .await;
    assert_conflict(again, "institution");
    assert!(audit_log(store).await.is_empty());
}

async fn clashing_master_ids_leave_nothing_behind(ctx: Ctx) {
    let store = &*ctx.store;
    let master = new_account(CLINIC, AccountType::Master, "same");
    let reset = new_account(CLINIC, AccountType::MasterReset, "same");
    let result = store
        .create_institution(
            new_institution(CLINIC),
            master.clone(),
            reset,
            vec![audit_event("institution.create", Some(CLINIC), now())],
        )
        .await;
    assert_conflict(result, "account");

    assert_eq!(
        store.get_institution(&code(CLINIC)).await.expect("get"),
        None
    );
    assert_eq!(store.get_account(master.id).await.expect("get"), None);
    assert!(audit_log(store).await.is_empty());
    assert_eq!(store.list_institutions().await.expect("list").len(), 1);

    // Nothing is left half-written: the same creation with distinct IDs now succeeds.
    clinic(store).await;
}

async fn same_user_id_in_another_institution_is_allowed(ctx: Ctx) {
    let store = &*ctx.store;
    clinic(store).await;
    let master = new_account(PHARMACY, AccountType::Master, "master");
    let reset = new_account(PHARMACY, AccountType::MasterReset, "master_reset");
    store
        .create_institution(new_institution(PHARMACY), master.clone(), reset, vec![])
        .await
        .expect("same user IDs in another institution");
    let pharmacy = store
        .get_institution(&code(PHARMACY))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(pharmacy.kind, InstitutionKind::Pharmacy);

    assert_eq!(found(store, PHARMACY, "master").await, Some(master.id));

    let manager = new_account(PHARMACY, AccountType::Manager, "kanri01");
    add_account(store, manager).await.expect("manager");
    let twin = new_account(CLINIC, AccountType::Manager, "kanri01");
    let created = add_account(store, twin.clone())
        .await
        .expect("same ID in clinic");
    assert_eq!(created, expected(&twin));
    let clash = new_account(PHARMACY, AccountType::General, "kanri01");
    assert_conflict(add_account(store, clash).await, "account");
}

async fn create_account_needs_an_existing_institution(ctx: Ctx) {
    let store = &*ctx.store;
    let orphan = new_account(CLINIC, AccountType::General, "orphan");
    let result = add_account(store, orphan.clone()).await;
    assert_not_found(result);
    assert_eq!(store.get_account(orphan.id).await.expect("get"), None);
    assert!(audit_log(store).await.is_empty());
}

async fn find_account_is_case_sensitive(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let user = new_account(CLINIC, AccountType::General, "Yamada");
    add_account(store, user.clone()).await.expect("create");

    assert_eq!(found(store, CLINIC, "Yamada").await, Some(user.id));
    assert_eq!(found(store, CLINIC, "yamada").await, None);
    assert_eq!(found(store, CLINIC, "YAMADA").await, None);
    assert_eq!(found(store, CLINIC, "Master").await, None);
    assert_eq!(found(store, PHARMACY, "master").await, None);
    // Case differs, so this is a different user ID and may be created.
    add_account(store, new_account(CLINIC, AccountType::General, "yamada"))
        .await
        .expect("case-different user ID");
    assert!(found(store, CLINIC, &master.user_id).await.is_some());
}

async fn delete_account_is_soft_and_reserves_the_user_id(ctx: Ctx) {
    let store = &*ctx.store;
    clinic(store).await;
    let user = new_account(CLINIC, AccountType::General, "taishoku");
    add_account(store, user.clone()).await.expect("create");
    let deleted_at = now();
    store
        .delete_account(user.id, deleted_at)
        .await
        .expect("delete");

    assert_eq!(found(store, CLINIC, "taishoku").await, None);
    let kept = account(store, user.id).await;
    assert_eq!(kept.deleted_at, Some(deleted_at));
    assert_eq!(
        kept,
        Account {
            deleted_at: Some(deleted_at),
            ..expected(&user)
        }
    );

    // The user ID is reserved forever.
    let again = new_account(CLINIC, AccountType::General, "taishoku");
    assert_conflict(add_account(store, again).await, "account");
    // Deleting twice, or an unknown account, is NotFound.
    assert_not_found(store.delete_account(user.id, now()).await);
    assert_not_found(store.delete_account(Uuid::now_v7(), now()).await);
    assert_eq!(
        store
            .count_accounts_of_type(AccountType::General)
            .await
            .expect("count"),
        0
    );
}

async fn record_failure_is_atomic(ctx: Ctx) {
    let store = &ctx.store;
    let (master, _) = clinic(store.as_ref()).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(store);
        tasks.spawn(async move { store.record_failure(master.id).await });
    }
    let mut counts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        counts.push(joined.expect("task").expect("record_failure"));
    }
    counts.sort_unstable();
    // Every increment saw a distinct count: none was lost or read stale.
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());
    assert_eq!(account(store.as_ref(), master.id).await.failed_attempts, 20);
}

async fn record_success_resets_failures(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    assert_eq!(store.record_failure(master.id).await.expect("failure"), 1);
    assert_eq!(store.record_failure(master.id).await.expect("failure"), 2);
    let at = now();
    store.record_success(master.id, at).await.expect("success");
    let after = account(store, master.id).await;
    assert_eq!(after.failed_attempts, 0);
    assert_eq!(after.last_login_at, Some(at));
    assert_eq!(store.record_failure(master.id).await.expect("failure"), 1);
}

async fn set_lock_round_trips(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    for _ in 0..5 {
        store.record_failure(master.id).await.expect("failure");
    }
    let at = now();
    store
        .set_lock(master.id, LockState::Failures, Some(at))
        .await
        .expect("lock");
    let locked = account(store, master.id).await;
    assert_eq!(
        (
            locked.lock,
            locked.locked_at,
            locked.failed_attempts,
            locked.tokens_not_before
        ),
        (LockState::Failures, Some(at), 5, Some(at))
    );

    let later = at + Duration::minutes(3);
    store
        .set_lock(master.id, LockState::Admin, Some(later))
        .await
        .expect("admin lock");
    let locked = account(store, master.id).await;
    assert_eq!(
        (locked.lock, locked.locked_at, locked.tokens_not_before),
        (LockState::Admin, Some(later), Some(later))
    );

    // Unlocking also clears the failure count, and keeps the tokens of the lock's time dead.
    store
        .set_lock(master.id, LockState::None, None)
        .await
        .expect("unlock");
    let unlocked = account(store, master.id).await;
    assert_eq!(
        (
            unlocked.lock,
            unlocked.locked_at,
            unlocked.failed_attempts,
            unlocked.tokens_not_before
        ),
        (LockState::None, None, 0, Some(later))
    );
}

async fn set_credential_round_trips(ctx: Ctx) {
    let store = &*ctx.store;
    let (_, reset) = clinic(store).await;
    store.record_failure(reset.id).await.expect("failure");
    let changed = Credential {
        hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3aGFzaA".into(),
        initial_issued_at: None,
        initial_sealed: None,
        changed_at: Some(now()),
    };
    store
        .set_credential(reset.id, changed.clone())
        .await
        .expect("set");
    let after = account(store, reset.id).await;
    assert_eq!(after.credential, changed);
    assert_eq!(after.failed_attempts, 0);

    let reissued = Credential {
        hash: "$argon2id$v=19$m=19456,t=2,p=1$aW5pdA$aW5pdGlhbA".into(),
        initial_issued_at: Some(now()),
        initial_sealed: Some(b"sealed initial password".to_vec()),
        changed_at: None,
    };
    store
        .set_credential(reset.id, reissued.clone())
        .await
        .expect("reissue");
    let after = account(store, reset.id).await;
    assert_eq!(after.credential, reissued);
}

async fn updates_of_unknown_accounts_are_not_found(ctx: Ctx) {
    let store = &*ctx.store;
    let nobody = Uuid::now_v7();
    assert_eq!(store.get_account(nobody).await.expect("get"), None);
    assert_not_found(store.record_failure(nobody).await);
    assert_not_found(store.record_success(nobody, now()).await);
    assert_not_found(store.set_lock(nobody, LockState::Admin, Some(now())).await);
    let credential = new_account(CLINIC, AccountType::General, "x").credential;
    assert_not_found(store.set_credential(nobody, credential).await);
}

async fn clients_round_trip(ctx: Ctx) {
    let store = &*ctx.store;
    let confidential = Client {
        client_id: "karte-web".into(),
        secret_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$Y2xp$c2VjcmV0".into()),
        redirect_uris: vec![
            "https://karte.example.jp/callback".into(),
            "https://karte.example.jp/cb2".into(),
        ],
        post_logout_redirect_uris: vec!["https://karte.example.jp/".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid".into(), "profile".into()],
        backchannel_logout_uri: Some("https://karte.example.jp/logout".into()),
        signing_alg: "ES256".into(),
        created_at: now(),
    };
    let public = Client {
        client_id: "card-reader-app".into(),
        secret_hash: None,
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["openid".into()],
        backchannel_logout_uri: None,
        signing_alg: "EdDSA".into(),
        created_at: now(),
    };
    for client in [&confidential, &public] {
        store
            .create_client(client.clone(), audit_event("client.create", None, now()))
            .await
            .expect("create client");
        let read = store
            .get_client(&client.client_id)
            .await
            .expect("get")
            .expect("present");
        assert_eq!(&read, client);
    }
    assert!(
        !store
            .get_client("karte-web")
            .await
            .expect("get")
            .expect("present")
            .is_public()
    );
    assert!(
        store
            .get_client("card-reader-app")
            .await
            .expect("get")
            .expect("present")
            .is_public()
    );
    assert_eq!(store.get_client("nobody").await.expect("get"), None);

    let duplicate = Client {
        signing_alg: "RS256".into(),
        ..public.clone()
    };
    assert_conflict(
        store
            .create_client(duplicate, audit_event("client.create", None, now()))
            .await,
        "client",
    );
    // One audit event per successful creation; the failed one left none.
    let audit = store
        .list_audit(
            &AuditFilter {
                kind: Some("client.create".into()),
                ..AuditFilter::default()
            },
            100,
        )
        .await
        .expect("audit");
    assert_eq!(audit.len(), 2);
}

async fn signing_keys_insert_list_retire(ctx: Ctx) {
    let store = &*ctx.store;
    let t0 = now() - Duration::days(30);
    let old = SigningKey {
        kid: "k-2026-10".into(),
        alg: "ES256".into(),
        public_jwk: jwk("k-2026-10"),
        private_sealed: vec![9, 8, 7, 0, 255],
        created_at: t0,
        retired_at: None,
    };
    let new = SigningKey {
        kid: "k-2026-11".into(),
        public_jwk: jwk("k-2026-11"),
        created_at: t0 + Duration::days(29),
        ..old.clone()
    };
    // Inserted newest first; listed oldest first.
    store
        .insert_signing_key(new.clone())
        .await
        .expect("insert new");
    store
        .insert_signing_key(old.clone())
        .await
        .expect("insert old");
    assert_eq!(
        store.list_signing_keys().await.expect("list"),
        vec![old.clone(), new.clone()]
    );
    assert_conflict(store.insert_signing_key(old.clone()).await, "signing_key");

    let retired_at = now();
    store
        .retire_signing_key(&old.kid, retired_at)
        .await
        .expect("retire");
    // Retiring again keeps the first time.
    store
        .retire_signing_key(&old.kid, retired_at + Duration::hours(1))
        .await
        .expect("retire again");
    let listed = store.list_signing_keys().await.expect("list");
    assert_eq!(
        listed,
        vec![
            SigningKey {
                retired_at: Some(retired_at),
                ..old
            },
            new
        ]
    );
    assert_not_found(store.retire_signing_key("unknown", now()).await);
}

async fn sessions_lifecycle(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let t = now();
    let session = |id_hash: &str, account_id: Uuid| Session {
        id_hash: id_hash.into(),
        account_id,
        institution_settings_version: 1,
        auth_time: t,
        amr: vec!["pwd".into(), "otp".into()],
        created_at: t,
        last_seen_at: t,
        expires_at: t + Duration::hours(8),
        ip: Some("2001:db8::1".into()),
        user_agent: Some("Mozilla/5.0".into()),
    };
    let first = session("a".repeat(64).as_str(), master.id);
    let second = Session {
        ip: None,
        user_agent: None,
        amr: vec!["pwd".into()],
        ..session("b", master.id)
    };
    let other = session("c", reset.id);
    for s in [&first, &second, &other] {
        store
            .create_session(s.clone())
            .await
            .expect("create session");
    }
    assert_eq!(
        store.get_session(&first.id_hash).await.expect("get"),
        Some(first.clone())
    );
    assert_eq!(
        store.get_session("b").await.expect("get"),
        Some(second.clone())
    );
    assert_eq!(store.get_session("missing").await.expect("get"), None);
    assert_conflict(store.create_session(first.clone()).await, "session");
    assert_not_found(store.create_session(session("d", Uuid::now_v7())).await);

    let seen = t + Duration::minutes(5);
    store
        .touch_session(&first.id_hash, seen)
        .await
        .expect("touch");
    let touched = store
        .get_session(&first.id_hash)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        touched,
        Session {
            last_seen_at: seen,
            ..first.clone()
        }
    );
    assert_not_found(store.touch_session("missing", seen).await);

    store.delete_session("b").await.expect("delete");
    assert_eq!(store.get_session("b").await.expect("get"), None);
    store
        .delete_session("b")
        .await
        .expect("deleting twice is fine");

    store.create_session(second).await.expect("recreate");
    assert_eq!(
        store
            .delete_sessions_of_account(master.id)
            .await
            .expect("delete all"),
        2
    );
    assert_eq!(store.get_session(&first.id_hash).await.expect("get"), None);
    assert_eq!(store.get_session("c").await.expect("get"), Some(other));
    assert_eq!(
        store
            .delete_sessions_of_account(master.id)
            .await
            .expect("delete none"),
        0
    );
}

async fn grouped_refresh_inserts_fail_only_the_bad_row(ctx: Ctx) {
    // Refresh tokens inserted at the same time share a group commit; a row that cannot be
    // written (here a generation already taken) fails only its own insert, with its own error.
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let grant_id = grant_for(store, master.id).await;
    let t = now();
    let token = |generation: i64| RefreshToken {
        grant_id,
        generation,
        secret_hash: format!("secret {generation}"),
        institution_settings_version: 1,
        created_at: t,
        idle_expires_at: t + Duration::hours(24),
        absolute_expires_at: t + Duration::days(30),
        used_at: None,
    };
    store
        .insert_refresh_token(token(1000))
        .await
        .expect("first");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let store = Arc::clone(&ctx.store);
        let generation = if i == 50 { 1000 } else { i };
        let row = token(generation);
        tasks.spawn(async move { (generation, store.insert_refresh_token(row).await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (generation, outcome) = joined.expect("task");
        if generation == 1000 {
            assert_conflict(outcome, "refresh_token");
        } else {
            outcome.expect("insert");
            let stored = store
                .get_refresh_token(&refresh_key(grant_id, generation))
                .await
                .expect("get")
                .expect("committed before the insert returned");
            assert_eq!(stored, token(generation));
        }
    }
    let kept = store
        .get_refresh_token(&refresh_key(grant_id, 1000))
        .await
        .expect("get")
        .expect("the first insert stands");
    assert_eq!(kept.secret_hash, "secret 1000");
}

async fn refresh_tokens_of_ended_families_are_purged(ctx: Ctx) {
    // Only families past their absolute expiry go, a batch at a time, and only among the
    // grants below the bound.
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let ended = grant_for(store, master.id).await;
    let living = grant_for(store, master.id).await;
    let t = now();
    let token = |grant_id: Uuid, generation: i64, absolute: OffsetDateTime| RefreshToken {
        grant_id,
        generation,
        secret_hash: format!("{grant_id} {generation}"),
        institution_settings_version: 1,
        created_at: t - Duration::days(31),
        idle_expires_at: absolute.min(t + Duration::hours(1)),
        absolute_expires_at: absolute,
        used_at: None,
    };
    for generation in 0..3 {
        store
            .insert_refresh_token(token(ended, generation, t - Duration::seconds(1)))
            .await
            .expect("insert");
    }
    for generation in 0..2 {
        store
            .insert_refresh_token(token(living, generation, t + Duration::days(1)))
            .await
            .expect("insert");
    }
    let all = Uuid::from_bytes([0xff; 16]);
    assert_eq!(
        store
            .purge_refresh_tokens(Uuid::nil(), t, 10)
            .await
            .expect("purge"),
        0,
        "no grant below the bound"
    );
    assert_eq!(
        store
            .purge_refresh_tokens(all, t - Duration::seconds(2), 10)
            .await
            .expect("purge"),
        0,
        "not yet ended at that time"
    );
    assert_eq!(
        store.purge_refresh_tokens(all, t, 2).await.expect("purge"),
        2
    );
    assert_eq!(
        store.purge_refresh_tokens(all, t, 2).await.expect("purge"),
        1
    );
    assert_eq!(
        store.purge_refresh_tokens(all, t, 2).await.expect("purge"),
        0
    );
    for generation in 0..3 {
        assert_eq!(
            store
                .get_refresh_token(&refresh_key(ended, generation))
                .await
                .expect("get"),
            None
        );
    }
    for generation in 0..2 {
        assert_eq!(
            store
                .get_refresh_token(&refresh_key(living, generation))
                .await
                .expect("get"),
            Some(token(living, generation, t + Duration::days(1)))
        );
    }
}

async fn grants_are_purged_with_their_codes_once_nothing_refers_to_them(ctx: Ctx) {
    // A grant goes with its code after its `retain_until`, but only once no session and no
    // refresh token refers to it; a session goes after its absolute expiry.
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let t = now();
    let past = t - Duration::seconds(1);
    store
        .create_session(session_of("s-short", master.id))
        .await
        .expect("session");
    let long = Session {
        expires_at: t + Duration::days(2),
        ..session_of("s-long", master.id)
    };
    store.create_session(long).await.expect("session");
    let plain = grant_with(store, master.id, None, past).await;
    let in_short = grant_with(store, master.id, Some("s-short"), past).await;
    let in_long = grant_with(store, master.id, Some("s-long"), past).await;
    let with_refresh = grant_with(store, master.id, None, past).await;
    let young = grant_with(store, master.id, None, t + Duration::hours(1)).await;
    store
        .insert_refresh_token(RefreshToken {
            grant_id: with_refresh,
            generation: 0,
            secret_hash: "secret".into(),
            institution_settings_version: 1,
            created_at: t,
            idle_expires_at: t + Duration::hours(1),
            absolute_expires_at: t + Duration::hours(1),
            used_at: None,
        })
        .await
        .expect("refresh token");
    let exists = |id: Uuid| async move { store.get_grant(id).await.expect("get").is_some() };

    assert_eq!(store.purge_grants(t, 10).await.expect("purge"), 1);
    assert!(!exists(plain).await);
    assert!(
        matches!(
            store
                .redeem_code(&format!("code-{plain}"), t)
                .await
                .expect("redeem"),
            CodeRedemption::Unknown
        ),
        "its code went with it"
    );
    for kept in [in_short, in_long, with_refresh, young] {
        assert!(exists(kept).await);
    }

    // Sessions go after their expiry (`s-short` ends at t + 8 h), and free their grants.
    let ended = t + Duration::hours(8);
    assert_eq!(store.purge_sessions(ended, 10).await.expect("purge"), 0);
    let later = ended + Duration::seconds(1);
    assert_eq!(store.purge_sessions(later, 10).await.expect("purge"), 1);
    assert!(store.get_session("s-short").await.expect("get").is_none());
    assert!(store.get_session("s-long").await.expect("get").is_some());
    // The refresh family ends and is purged, which frees the last grant kept by a reference.
    let all = Uuid::from_bytes([0xff; 16]);
    assert_eq!(
        store
            .purge_refresh_tokens(all, t + Duration::hours(2), 10)
            .await
            .expect("purge"),
        1
    );
    // A batch at a time.
    assert_eq!(store.purge_grants(t, 1).await.expect("purge"), 1);
    assert_eq!(store.purge_grants(t, 1).await.expect("purge"), 1);
    assert_eq!(store.purge_grants(t, 1).await.expect("purge"), 0);
    assert!(!exists(in_short).await && !exists(with_refresh).await);
    assert!(exists(in_long).await, "its session lives");
    assert!(exists(young).await, "kept until its time");
    assert_eq!(
        store
            .purge_grants(t + Duration::hours(2), 10)
            .await
            .expect("purge"),
        1
    );
    assert!(!exists(young).await);
}

async fn access_tokens_are_revoked_once_until_they_expire(ctx: Ctx) {
    let store = &*ctx.store;
    let t = now();
    assert!(!store.access_token_revoked("j1").await.expect("read"));
    let revoke = |jti: &'static str, expires_at: OffsetDateTime| {
        store.revoke_access_token(
            jti,
            expires_at,
            audit_event(&format!("token.revoke {jti}"), None, t),
        )
    };
    assert!(revoke("j1", t + Duration::hours(1)).await.expect("revoke"));
    assert!(
        !revoke("j1", t + Duration::hours(2)).await.expect("again"),
        "once"
    );
    assert!(
        revoke("j2", t - Duration::seconds(1))
            .await
            .expect("revoke")
    );
    assert!(store.access_token_revoked("j1").await.expect("read"));
    assert!(store.access_token_revoked("j2").await.expect("read"));
    assert!(!store.access_token_revoked("j3").await.expect("read"));
    let log = audit_log(store).await;
    assert_eq!(
        log.iter()
            .filter(|e| e.event.kind == "token.revoke j1")
            .count(),
        1,
        "one audit row for one revocation"
    );
    // The first expiry stands: j1 is forgotten only after its first expiry has passed.
    assert_eq!(
        store.purge_revoked_access_tokens(t).await.expect("purge"),
        1
    );
    assert!(!store.access_token_revoked("j2").await.expect("read"));
    assert!(store.access_token_revoked("j1").await.expect("read"));
    assert_eq!(
        store
            .purge_revoked_access_tokens(t + Duration::hours(1) + Duration::seconds(1))
            .await
            .expect("purge"),
        1
    );
    assert!(!store.access_token_revoked("j1").await.expect("read"));
}

fn refresh_key(grant_id: Uuid, generation: i64) -> RefreshKey {
    RefreshKey::Id(RefreshTokenId {
        grant_id,
        generation,
    })
}

async fn refresh_rotation_spends_once_and_writes_only_the_winner(ctx: Ctx) {
    // Rotations share a group commit. Of concurrent rotations of one token exactly one spends
    // it, and only that one's successor and audit row are written; rotations of other tokens
    // in the same batches are unaffected; a token that does not exist is never "spent".
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let grant_id = grant_for(store, master.id).await;
    let other_grant = grant_for(store, master.id).await;
    let t = now();
    let token = |grant_id: Uuid, generation: i64, secret: String| RefreshToken {
        grant_id,
        generation,
        secret_hash: secret,
        institution_settings_version: 1,
        created_at: t,
        idle_expires_at: t + Duration::hours(24),
        absolute_expires_at: t + Duration::days(30),
        used_at: None,
    };
    // Old token i is generation 2i of one family or, for odd i, of another; its successor is
    // generation 2i + 1.
    let family = |i: usize| {
        if i.is_multiple_of(2) {
            grant_id
        } else {
            other_grant
        }
    };
    let old = |i: usize| RefreshTokenId {
        grant_id: family(i),
        generation: 2 * i as i64,
    };
    for i in 0..10 {
        store
            .insert_refresh_token(token(family(i), old(i).generation, format!("old{i}")))
            .await
            .expect("insert");
    }
    let at = now();
    let rotation = |spent: RefreshTokenId, secret: String| Rotation {
        spent,
        at,
        successor: token(spent.grant_id, spent.successor().generation, secret.clone()),
        audit: audit_event(&format!("token.refresh {secret}"), None, at),
    };
    let mut tasks = tokio::task::JoinSet::new();
    // Old token i is presented by attempts (i, 0..4) at once; generation 100 names no token.
    for i in 0..10 {
        for attempt in 0..4 {
            let store = Arc::clone(&ctx.store);
            let r = rotation(old(i), format!("new{i}.{attempt}"));
            tasks.spawn(async move { (i, attempt, store.rotate_refresh_token(r).await) });
        }
    }
    let none = RefreshTokenId {
        grant_id,
        generation: 100,
    };
    let unknown = store
        .rotate_refresh_token(rotation(none, "never".into()))
        .await
        .expect("rotate unknown");
    assert!(!unknown);
    let mut winners = vec![None; 10];
    while let Some(joined) = tasks.join_next().await {
        let (i, attempt, outcome) = joined.expect("task");
        if outcome.expect("rotate") {
            assert_eq!(winners[i], None, "token old{i} spent twice");
            winners[i] = Some(attempt);
        }
    }
    let log = audit_log(store).await;
    for (i, winner) in winners.into_iter().enumerate() {
        let winner = winner.unwrap_or_else(|| panic!("old{i} was never spent"));
        let spent = store
            .get_refresh_token(&RefreshKey::Id(old(i)))
            .await
            .expect("get")
            .expect("old token kept");
        assert_eq!(spent.used_at, Some(at));
        assert_eq!(spent.secret_hash, format!("old{i}"));
        let successor = old(i).successor();
        let stored = store
            .get_refresh_token(&RefreshKey::Id(successor))
            .await
            .expect("get");
        assert_eq!(
            stored,
            Some(token(
                successor.grant_id,
                successor.generation,
                format!("new{i}.{winner}")
            )),
            "the winner's successor, and only it"
        );
        for attempt in 0..4 {
            let audited = log
                .iter()
                .filter(|e| e.event.kind == format!("token.refresh new{i}.{attempt}"))
                .count();
            assert_eq!(
                audited,
                usize::from(attempt == winner),
                "audit rows of old{i}"
            );
        }
    }
    assert_eq!(
        store
            .get_refresh_token(&RefreshKey::Id(none.successor()))
            .await
            .expect("get"),
        None
    );
    assert!(!log.iter().any(|e| e.event.kind == "token.refresh never"));
}

async fn concurrent_audit_rows_are_all_committed(ctx: Ctx) {
    // Rows appended at the same time are committed in shared batches (group commit): each
    // call returns once its own row is stored, and no row is lost or written twice.
    let base = datetime!(2026-11-03 10:00:00 UTC);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..200 {
        let store = Arc::clone(&ctx.store);
        tasks.spawn(async move {
            let event = NewAuditEvent {
                reason: Some(format!("row {i}")),
                ..audit_event(
                    "token.issue",
                    Some(CLINIC),
                    base + Duration::milliseconds(i),
                )
            };
            store.append_audit(event.clone()).await.expect("append");
            // Committed before the call returned: visible to a read at once.
            let stored = store.list_audit(&all_audit(), 1000).await.expect("list");
            assert!(
                stored.iter().any(|e| e.event == event),
                "row {i} not visible"
            );
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    let mut reasons: Vec<String> = audit_log(&*ctx.store)
        .await
        .into_iter()
        .filter_map(|e| e.event.reason)
        .collect();
    reasons.sort();
    let mut expected: Vec<String> = (0..200).map(|i| format!("row {i}")).collect();
    expected.sort();
    assert_eq!(reasons, expected);
}

async fn audit_filters_and_limit(ctx: Ctx) {
    let store = &*ctx.store;
    // Sub-second neighbours on both sides of a whole second: ordering and period bounds must
    // be chronological, not textual.
    let base = datetime!(2026-11-03 10:00:00 UTC);
    let times = [
        base - Duration::milliseconds(500),
        base,
        base + Duration::microseconds(1),
        base + Duration::milliseconds(500),
        base + Duration::seconds(1),
    ];
    let events = [
        audit_event("login.success", Some(CLINIC), times[0]),
        audit_event("login.failure", Some(CLINIC), times[1]),
        audit_event("login.success", Some(PHARMACY), times[2]),
        audit_event("account.create", None, times[3]),
        NewAuditEvent {
            result: AuditResult::Failure,
            reason: Some("bad_password".into()),
            actor_account_id: None,
            target_account_id: Some(Uuid::now_v7()),
            target: None,
            ip: None,
            user_agent: None,
            ..audit_event("login.failure", Some(CLINIC), times[4])
        },
    ];
    // Appended out of order; listed oldest first.
    for i in [4, 2, 0, 3, 1] {
        store.append_audit(events[i].clone()).await.expect("append");
    }

    let list = |filter: AuditFilter, limit: i64| async move {
        store
            .list_audit(&filter, limit)
            .await
            .expect("list")
            .into_iter()
            .map(|e| e.event)
            .collect::<Vec<_>>()
    };
    assert_eq!(list(all_audit(), 100).await, events.to_vec());
    assert_eq!(list(all_audit(), 2).await, events[..2].to_vec());
    assert_eq!(list(all_audit(), 0).await, vec![]);

    let period = AuditFilter {
        from: Some(base),
        to: Some(base + Duration::seconds(1)),
        ..AuditFilter::default()
    };
    assert_eq!(list(period, 100).await, events[1..4].to_vec());
    let from_only = AuditFilter {
        from: Some(base + Duration::microseconds(1)),
        ..AuditFilter::default()
    };
    assert_eq!(list(from_only, 100).await, events[2..].to_vec());
    let to_only = AuditFilter {
        to: Some(base),
        ..AuditFilter::default()
    };
    assert_eq!(list(to_only, 100).await, events[..1].to_vec());

    let kind = AuditFilter {
        kind: Some("login.failure".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        list(kind, 100).await,
        vec![events[1].clone(), events[4].clone()]
    );
    let clinic_only = AuditFilter {
        institution_code: Some(CLINIC.into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        list(clinic_only, 100).await,
        vec![events[0].clone(), events[1].clone(), events[4].clone()]
    );
    let combined = AuditFilter {
        from: Some(base),
        to: Some(base + Duration::seconds(2)),
        kind: Some("login.failure".into()),
        institution_code: Some(CLINIC.into()),
    };
    assert_eq!(
        list(combined.clone(), 100).await,
        vec![events[1].clone(), events[4].clone()]
    );
    assert_eq!(list(combined, 1).await, vec![events[1].clone()]);

    let seqs: Vec<i64> = audit_log(store).await.iter().map(|e| e.seq).collect();
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len(), "sequence numbers are unique");
}

async fn audit_log_is_append_only(ctx: Ctx) {
    let store = &*ctx.store;
    store
        .append_audit(audit_event("login.success", Some(CLINIC), now()))
        .await
        .expect("append");
    let update = ctx
        .raw
        .execute("UPDATE audit_events SET kind = 'tampered'")
        .await;
    assert!(
        update.is_err(),
        "UPDATE on audit_events must fail, got {update:?}"
    );
    let delete = ctx.raw.execute("DELETE FROM audit_events").await;
    assert!(
        delete.is_err(),
        "DELETE on audit_events must fail, got {delete:?}"
    );
    let events = audit_log(store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.kind, "login.success");
}

async fn count_accounts_of_type(ctx: Ctx) {
    let store = &*ctx.store;
    let count = |t| async move { store.count_accounts_of_type(t).await.expect("count") };
    assert_eq!(count(AccountType::Master).await, 0);
    clinic(store).await;
    store
        .create_institution(
            new_institution(PHARMACY),
            new_account(PHARMACY, AccountType::Master, "m"),
            new_account(PHARMACY, AccountType::MasterReset, "r"),
            vec![],
        )
        .await
        .expect("pharmacy");
    let operator = new_account("0000000000", AccountType::Operator, "op1");
    add_account(store, operator.clone())
        .await
        .expect("operator");
    assert_eq!(count(AccountType::Master).await, 2);
    assert_eq!(count(AccountType::MasterReset).await, 2);
    assert_eq!(count(AccountType::Operator).await, 1);
    assert_eq!(count(AccountType::CardReader).await, 0);
    // Deleted accounts do not count.
    store
        .delete_account(operator.id, now())
        .await
        .expect("delete");
    assert_eq!(count(AccountType::Operator).await, 0);
}

async fn codes_are_redeemed_exactly_once(ctx: Ctx) {
    let store = ctx.store.clone();
    let (master, _) = clinic(&*store).await;
    let client = Client {
        client_id: "rp".into(),
        secret_hash: None,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["openid".into()],
        backchannel_logout_uri: None,
        signing_alg: "RS256".into(),
        created_at: now(),
    };
    store
        .create_client(client, audit_event("client.create", None, now()))
        .await
        .expect("client");
    let grant = Grant {
        id: Uuid::now_v7(),
        account_id: master.id,
        client_id: "rp".into(),
        session_id_hash: Some("session-hash".into()),
        scopes: vec!["openid".into(), "profile".into()],
        auth_time: now(),
        amr: vec!["pwd".into()],
        acr: "urn:sekimori:acr:pwd".into(),
        created_at: now(),
        revoked_at: None,
        retain_until: now() + Duration::days(1),
    };
    let code = AuthorizationCode {
        code_hash: "code-hash".into(),
        grant_id: grant.id,
        client_id: "rp".into(),
        redirect_uri: "https://rp.example/cb".into(),
        nonce: Some("n-0S6_WzA2Mj".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        created_at: now(),
        expires_at: now() + Duration::seconds(60),
        used_at: None,
    };
    store
        .create_grant_with_code(grant.clone(), code.clone())
        .await
        .expect("grant and code");
    assert_eq!(
        store.get_grant(grant.id).await.expect("get grant"),
        Some(grant.clone())
    );

    // Eight concurrent redemptions: exactly one wins, the others see a replay.
    let at = now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.spawn(async move { store.redeem_code("code-hash", at).await.expect("redeem") });
    }
    let mut redeemed = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("task") {
            CodeRedemption::Redeemed {
                code: spent,
                grant: g,
            } => {
                redeemed += 1;
                assert_eq!(spent.used_at, Some(at));
                assert_eq!(spent.nonce, code.nonce);
                assert_eq!(g, grant);
            }
            CodeRedemption::Replayed { code: spent } => assert_eq!(spent.grant_id, grant.id),
            CodeRedemption::Unknown => panic!("the code exists"),
        }
    }
    assert_eq!(redeemed, 1);
    assert_eq!(
        store.redeem_code("other", now()).await.expect("redeem"),
        CodeRedemption::Unknown
    );

    let later = now() + Duration::seconds(5);
    store.revoke_grant(grant.id, later).await.expect("revoke");
    store
        .revoke_grant(grant.id, later + Duration::seconds(5))
        .await
        .expect("revoke again");
    let revoked = store
        .get_grant(grant.id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(revoked.revoked_at, Some(later));
    assert_not_found(store.revoke_grant(Uuid::now_v7(), later).await);
}

// ---------------------------------------------------------------------------------------------
// Second factor (SPEC §7).
// ---------------------------------------------------------------------------------------------

async fn second_factor_is_set_and_read_back(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    assert_eq!(
        account(store, master.id).await.second_factor,
        master.second_factor
    );
    let phone = SecondFactor {
        method: SecondFactorMethod::Voice,
        email: None,
        phone: Some("+81312345678".into()),
        verified: true,
    };
    store
        .set_second_factor(master.id, phone.clone())
        .await
        .expect("set");
    assert_eq!(account(store, master.id).await.second_factor, Some(phone));
    let email = SecondFactor {
        method: SecondFactorMethod::Email,
        email: Some("taro@example.jp".into()),
        phone: None,
        verified: false,
    };
    store
        .set_second_factor(master.id, email.clone())
        .await
        .expect("replace");
    assert_eq!(
        account(store, master.id).await.second_factor,
        Some(email.clone())
    );
    assert_not_found(store.set_second_factor(Uuid::new_v4(), email).await);
}

fn challenge(account_id: Uuid, destination: &str, at: OffsetDateTime) -> OtpChallenge {
    OtpChallenge {
        id: Uuid::new_v4(),
        account_id,
        purpose: OtpPurpose::SignIn,
        method: SecondFactorMethod::Sms,
        destination: destination.into(),
        code_hash: "$hmac-sha256$v=1$digest".into(),
        created_at: micros(at),
        expires_at: micros(at + Duration::minutes(5)),
        tries: 0,
        used_at: None,
    }
}

async fn otp_challenges_round_trip_and_are_spent_once(ctx: Ctx) {
    let store = &ctx.store;
    let (master, _) = clinic(store.as_ref()).await;
    let mut sent = challenge(master.id, "+819012345678", now());
    sent.purpose = OtpPurpose::Reset;
    store
        .create_otp_challenge(sent.clone())
        .await
        .expect("create");
    assert_eq!(
        store.get_otp_challenge(sent.id).await.unwrap(),
        Some(sent.clone())
    );
    assert_eq!(store.get_otp_challenge(Uuid::new_v4()).await.unwrap(), None);
    assert_conflict(
        store.create_otp_challenge(sent.clone()).await,
        "otp_challenge",
    );
    assert_not_found(
        store
            .create_otp_challenge(challenge(Uuid::new_v4(), "+819012345678", now()))
            .await,
    );

    // Of concurrent uses exactly one wins.
    let at = micros(now());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let store = Arc::clone(store);
        tasks.spawn(async move { store.consume_otp_challenge(sent.id, at).await });
    }
    let mut wins = 0;
    while let Some(joined) = tasks.join_next().await {
        wins += usize::from(joined.expect("task").expect("consume"));
    }
    assert_eq!(wins, 1);
    let spent = store.get_otp_challenge(sent.id).await.unwrap().unwrap();
    assert_eq!(spent.used_at, Some(at));
    assert!(
        !store
            .consume_otp_challenge(Uuid::new_v4(), at)
            .await
            .unwrap()
    );
}

async fn otp_tries_are_counted_exactly(ctx: Ctx) {
    let store = &ctx.store;
    let (master, _) = clinic(store.as_ref()).await;
    let sent = challenge(master.id, "taro@example.jp", now());
    store.create_otp_challenge(sent.clone()).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let store = Arc::clone(store);
        tasks.spawn(async move { store.record_code_try(sent.id).await });
    }
    let mut counts = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        counts.push(joined.expect("task").expect("record_code_try"));
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<i64>>());
    assert_eq!(
        store
            .get_otp_challenge(sent.id)
            .await
            .unwrap()
            .unwrap()
            .tries,
        20
    );
    assert_not_found(store.record_code_try(Uuid::new_v4()).await);
}

async fn otp_challenges_are_purged_by_age(ctx: Ctx) {
    // Spent or not, a code goes once it was sent before the bound, a batch at a time.
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let t = now();
    let old: Vec<OtpChallenge> = (1..=3)
        .map(|days| challenge(master.id, "+819012345678", t - Duration::days(days)))
        .collect();
    let recent = challenge(master.id, "+819012345678", t);
    for c in old.iter().chain([&recent]) {
        store.create_otp_challenge(c.clone()).await.expect("create");
    }
    assert!(
        store
            .consume_otp_challenge(old[0].id, t)
            .await
            .expect("spend")
    );
    let bound = t - Duration::hours(12);
    assert_eq!(
        store.purge_otp_challenges(bound, 2).await.expect("purge"),
        2
    );
    assert_eq!(
        store.purge_otp_challenges(bound, 2).await.expect("purge"),
        1
    );
    assert_eq!(
        store.purge_otp_challenges(bound, 2).await.expect("purge"),
        0
    );
    for c in &old {
        assert_eq!(store.get_otp_challenge(c.id).await.expect("get"), None);
    }
    assert_eq!(
        store.get_otp_challenge(recent.id).await.expect("get"),
        Some(recent)
    );
}

async fn otp_send_stats_count_since_and_by_destination(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let start = micros(now());
    let shared = "+819012345678";
    let none = store
        .otp_send_stats(master.id, shared, start)
        .await
        .expect("stats");
    assert_eq!(
        none,
        OtpSendStats {
            sent_by_account: 0,
            sent_to_destination: 0,
            last_sent_at: None
        }
    );
    // Yesterday's code counts for the cooldown's "last send" but not for today's caps.
    store
        .create_otp_challenge(challenge(master.id, shared, start - Duration::hours(1)))
        .await
        .unwrap();
    for minutes in [1, 3] {
        store
            .create_otp_challenge(challenge(
                master.id,
                shared,
                start + Duration::minutes(minutes),
            ))
            .await
            .unwrap();
    }
    store
        .create_otp_challenge(challenge(reset.id, shared, start + Duration::minutes(2)))
        .await
        .unwrap();
    store
        .create_otp_challenge(challenge(
            reset.id,
            "+818012345678",
            start + Duration::minutes(4),
        ))
        .await
        .unwrap();
    let stats = store
        .otp_send_stats(master.id, shared, start)
        .await
        .unwrap();
    assert_eq!(stats.sent_by_account, 2);
    assert_eq!(stats.sent_to_destination, 3);
    assert_eq!(stats.last_sent_at, Some(start + Duration::minutes(3)));
    let stats = store
        .otp_send_stats(reset.id, "+818012345678", start)
        .await
        .unwrap();
    assert_eq!(stats.sent_by_account, 2);
    assert_eq!(stats.sent_to_destination, 1);
    assert_eq!(stats.last_sent_at, Some(start + Duration::minutes(4)));
}

async fn password_changes_keep_history_and_end_other_sessions(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let t = now();
    let session = |id_hash: &str, account_id: Uuid| Session {
        id_hash: id_hash.into(),
        account_id,
        institution_settings_version: 1,
        auth_time: t,
        amr: vec!["pwd".into()],
        created_at: t,
        last_seen_at: t,
        expires_at: t + Duration::hours(8),
        ip: None,
        user_agent: None,
    };
    for (id, account) in [
        ("mine", master.id),
        ("other", master.id),
        ("theirs", reset.id),
    ] {
        store
            .create_session(session(id, account))
            .await
            .expect("session");
    }
    let credential = |hash: &str, at: OffsetDateTime| Credential {
        hash: hash.into(),
        initial_issued_at: None,
        initial_sealed: None,
        changed_at: Some(at),
    };

    // The first change keeps the caller's session and ends the account's other one only.
    let ended = store
        .change_password(
            master.id,
            credential("h1", t),
            &master.credential.hash,
            2,
            Some("mine"),
        )
        .await
        .expect("change");
    assert_eq!(ended, 1);
    assert!(store.get_session("mine").await.expect("get").is_some());
    assert!(store.get_session("other").await.expect("get").is_none());
    assert!(store.get_session("theirs").await.expect("get").is_some());
    let changed = account(store, master.id).await;
    assert_eq!(changed.credential, credential("h1", t));

    // History keeps the newest `keep` previous hashes, newest first.
    store
        .change_password(
            master.id,
            credential("h2", t + Duration::seconds(1)),
            "h1",
            2,
            None,
        )
        .await
        .expect("change");
    store
        .change_password(
            master.id,
            credential("h3", t + Duration::seconds(2)),
            "h2",
            2,
            None,
        )
        .await
        .expect("change");
    assert_eq!(
        store
            .password_history(master.id, 10)
            .await
            .expect("history"),
        ["h2", "h1"]
    );
    assert_eq!(
        store.password_history(master.id, 1).await.expect("history"),
        ["h2"]
    );
    assert!(
        store.get_session("mine").await.expect("get").is_none(),
        "no session kept: all end"
    );

    // Keeping no history stores none; an unknown account changes nothing.
    store
        .change_password(
            reset.id,
            credential("r1", t),
            &reset.credential.hash,
            0,
            None,
        )
        .await
        .expect("change");
    assert!(
        store
            .password_history(reset.id, 10)
            .await
            .expect("history")
            .is_empty()
    );
    assert_not_found(
        store
            .change_password(Uuid::now_v7(), credential("x", t), "y", 2, None)
            .await,
    );
}

async fn recent_sign_ins_of_an_account(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let t = now();
    let event = |kind: &str, target: Uuid, at: OffsetDateTime| NewAuditEvent {
        target_account_id: Some(target),
        ..audit_event(kind, Some(CLINIC), at)
    };
    for (i, kind) in [
        "login.success",
        "login.failure",
        "password.change",
        "login.success",
    ]
    .iter()
    .enumerate()
    {
        store
            .append_audit(event(kind, master.id, t + Duration::seconds(i as i64)))
            .await
            .expect("audit");
    }
    store
        .append_audit(event("login.success", reset.id, t))
        .await
        .expect("audit");
    let recent = store.recent_sign_ins(master.id, 10).await.expect("recent");
    let kinds: Vec<_> = recent.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["login.success", "login.failure", "login.success"],
        "newest first, sign-ins only"
    );
    assert_eq!(recent[0].event.at, t + Duration::seconds(3));
    assert_eq!(
        store
            .recent_sign_ins(master.id, 1)
            .await
            .expect("recent")
            .len(),
        1
    );
}

async fn refresh_tokens_are_redeemed_exactly_once(ctx: Ctx) {
    let store = ctx.store.clone();
    let (master, _) = clinic(&*store).await;
    let client = Client {
        client_id: "rp".into(),
        secret_hash: Some("$hmac-sha256$v=1$AAAA".into()),
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: vec!["openid".into(), "offline_access".into()],
        backchannel_logout_uri: None,
        signing_alg: "ES256".into(),
        created_at: now(),
    };
    store
        .create_client(client, audit_event("client.create", None, now()))
        .await
        .expect("client");
    let grant = Grant {
        id: Uuid::now_v7(),
        account_id: master.id,
        client_id: "rp".into(),
        session_id_hash: None,
        scopes: vec!["openid".into(), "offline_access".into()],
        auth_time: now(),
        amr: vec!["pwd".into()],
        acr: "urn:sekimori:acr:password".into(),
        created_at: now(),
        revoked_at: None,
        retain_until: now() + Duration::days(1),
    };
    let code = AuthorizationCode {
        code_hash: "c".into(),
        grant_id: grant.id,
        client_id: "rp".into(),
        redirect_uri: "https://rp.example/cb".into(),
        nonce: None,
        code_challenge: None,
        created_at: now(),
        expires_at: now() + Duration::seconds(60),
        used_at: None,
    };
    store
        .create_grant_with_code(grant.clone(), code)
        .await
        .expect("grant");
    let token = RefreshToken {
        grant_id: grant.id,
        generation: 0,
        secret_hash: "r1".into(),
        institution_settings_version: 1,
        created_at: now(),
        idle_expires_at: now() + Duration::hours(24),
        absolute_expires_at: now() + Duration::days(30),
        used_at: None,
    };
    store
        .insert_refresh_token(token.clone())
        .await
        .expect("insert");
    assert_conflict(
        store
            .insert_refresh_token(RefreshToken {
                secret_hash: "another secret".into(),
                ..token.clone()
            })
            .await,
        "refresh_token",
    );
    // Looking a token up does not spend it.
    assert_eq!(
        store
            .get_refresh_token(&refresh_key(grant.id, 0))
            .await
            .expect("get"),
        Some(token.clone())
    );
    assert_eq!(
        store
            .get_refresh_token(&refresh_key(grant.id, 1))
            .await
            .expect("get"),
        None
    );
    // A token of the format before migration 0010 (a negative generation) is also found by the
    // hash of the whole token; one of the current format never is.
    let legacy = RefreshToken {
        generation: -1,
        secret_hash: "legacy".into(),
        ..token.clone()
    };
    store
        .insert_refresh_token(legacy.clone())
        .await
        .expect("insert legacy");
    for (hash, found) in [("legacy", Some(legacy.clone())), ("r1", None), ("r9", None)] {
        let key = RefreshKey::Legacy {
            token_hash: hash.into(),
        };
        assert_eq!(store.get_refresh_token(&key).await.expect("get"), found);
        assert_eq!(
            store
                .get_refresh_family(&key)
                .await
                .expect("family")
                .map(|f| f.token),
            found,
            "{hash}"
        );
    }

    let at = now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let store = store.clone();
        let id = token.id();
        tasks.spawn(async move { store.redeem_refresh_token(id, at).await.expect("redeem") });
    }
    let mut redeemed = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.expect("task") {
            RefreshRedemption::Redeemed {
                token: spent,
                grant: g,
            } => {
                redeemed += 1;
                assert_eq!(
                    spent,
                    RefreshToken {
                        used_at: Some(at),
                        ..token.clone()
                    }
                );
                assert_eq!(g, grant);
            }
            RefreshRedemption::Reused { token: spent } => assert_eq!(spent.grant_id, grant.id),
            RefreshRedemption::Unknown => panic!("the token exists"),
        }
    }
    assert_eq!(redeemed, 1);
    assert_eq!(
        store
            .redeem_refresh_token(token.id().successor(), at)
            .await
            .expect("redeem"),
        RefreshRedemption::Unknown
    );
}

// ---------------------------------------------------------------------------------------------
// Upgrade stories: a store migrated up to an earlier schema, rows written as that schema had
// them, then the rest of the migrations.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_of_schema_9_outlive_migration_10_sqlite() {
    on_sqlite_at(Some(9), refresh_tokens_of_schema_9_outlive_migration_10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_of_schema_9_outlive_migration_10_postgres() {
    on_postgres_at(Some(9), refresh_tokens_of_schema_9_outlive_migration_10).await;
}

async fn refresh_tokens_of_schema_9_outlive_migration_10(ctx: Ctx) {
    // Before migration 0010 a refresh token's row was keyed by the hash of the whole token. The
    // migration keeps them: numbered back from -1 (the unspent one) in each family, found by
    // their hash, and the successor of -1 is generation 0.
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let t = now();
    let family = grant_before_schema_12(&ctx, master.id, t).await;
    let spent_only = grant_before_schema_12(&ctx, master.id, t).await;
    let rows = [
        ("old", family, 0, Some(1)),
        ("newer", family, 1, Some(2)),
        ("live", family, 2, None),
        ("alone", spent_only, 0, Some(1)),
    ];
    for (hash, grant_id, created, used) in rows {
        let at = |seconds: i64| t + Duration::seconds(seconds);
        let insert = "INSERT INTO refresh_tokens (token_hash, grant_id, \
            institution_settings_version, created_at, idle_expires_at, absolute_expires_at, \
            used_at) VALUES ($1, $2, 1, $3, $4, $5, $6)";
        match &ctx.raw {
            Raw::Sqlite(pool) => sqlx::query(insert)
                .bind(hash)
                .bind(grant_id)
                .bind(sqlite_text(at(created)))
                .bind(sqlite_text(at(100)))
                .bind(sqlite_text(at(1000)))
                .bind(used.map(|u| sqlite_text(at(u))))
                .execute(pool)
                .await
                .map(|_| ()),
            Raw::Postgres(pool) => sqlx::query(insert)
                .bind(hash)
                .bind(grant_id)
                .bind(at(created))
                .bind(at(100))
                .bind(at(1000))
                .bind(used.map(at))
                .execute(pool)
                .await
                .map(|_| ()),
        }
        .expect("a row of schema 9");
    }
    store.migrate().await.expect("migration 10");

    let legacy = |hash: &str| RefreshKey::Legacy {
        token_hash: hash.into(),
    };
    for (hash, grant_id, generation, created, used) in [
        ("live", family, -1, 2, None),
        ("newer", family, -2, 1, Some(2)),
        ("old", family, -3, 0, Some(1)),
        ("alone", spent_only, -1, 0, Some(1)),
    ] {
        let found = store
            .get_refresh_family(&legacy(hash))
            .await
            .expect("family")
            .unwrap_or_else(|| panic!("{hash} kept"));
        assert_eq!(found.token.grant_id, grant_id, "{hash}");
        assert_eq!(found.token.generation, generation, "{hash}");
        assert_eq!(found.token.secret_hash, hash);
        assert_eq!(
            found.token.created_at,
            t + Duration::seconds(created),
            "{hash}"
        );
        assert_eq!(
            found.token.used_at,
            used.map(|u| t + Duration::seconds(u)),
            "{hash}"
        );
        assert_eq!(found.token.absolute_expires_at, t + Duration::seconds(1000));
    }

    // The live token rotates into generation 0, which is found by its ID and never by a hash.
    let live = store
        .get_refresh_token(&legacy("live"))
        .await
        .expect("get")
        .expect("kept");
    let successor = RefreshToken {
        generation: 0,
        secret_hash: "successor".into(),
        created_at: t + Duration::seconds(5),
        ..live.clone()
    };
    let at = t + Duration::seconds(5);
    let rotation = Rotation {
        spent: live.id(),
        at,
        successor: successor.clone(),
        audit: audit_event("token.refresh", None, at),
    };
    assert!(
        store
            .rotate_refresh_token(rotation.clone())
            .await
            .expect("rotate")
    );
    assert!(
        !store.rotate_refresh_token(rotation).await.expect("again"),
        "spent once"
    );
    assert_eq!(
        store
            .get_refresh_token(&refresh_key(family, 0))
            .await
            .expect("get"),
        Some(successor)
    );
    assert_eq!(
        store
            .get_refresh_token(&legacy("successor"))
            .await
            .expect("get"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_of_schema_11_are_kept_a_day_past_their_creation_sqlite() {
    on_sqlite_at(
        Some(11),
        grants_of_schema_11_are_kept_a_day_past_their_creation,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_of_schema_11_are_kept_a_day_past_their_creation_postgres() {
    on_postgres_at(
        Some(11),
        grants_of_schema_11_are_kept_a_day_past_their_creation,
    )
    .await;
}

async fn grants_of_schema_11_are_kept_a_day_past_their_creation(ctx: Ctx) {
    // Migration 0012 gives the grants it finds a `retain_until` of a day past their creation;
    // the purge's checks of sessions and refresh tokens protect those still in use.
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let t = now();
    let old = grant_before_schema_12(&ctx, master.id, t - Duration::days(2)).await;
    let recent = grant_before_schema_12(&ctx, master.id, t).await;
    store.migrate().await.expect("migration 12");
    for (id, created) in [(old, t - Duration::days(2)), (recent, t)] {
        let grant = store.get_grant(id).await.expect("get").expect("kept");
        // SQLite's date functions keep milliseconds.
        let off = grant.retain_until - (created + Duration::days(1));
        assert!(off.abs() < Duration::milliseconds(1), "{off}");
    }
    assert_eq!(store.purge_grants(t, 10).await.expect("purge"), 1);
    assert!(store.get_grant(old).await.expect("get").is_none());
    assert!(store.get_grant(recent).await.expect("get").is_some());
}

// ---------------------------------------------------------------------------------------------
// Admin API stories.
// ---------------------------------------------------------------------------------------------

/// Registers client `rp` once.
async fn ensure_rp(store: &dyn Store) {
    if store.get_client("rp").await.expect("get client").is_some() {
        return;
    }
    let client = Client {
        client_id: "rp".into(),
        secret_hash: None,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["openid".into(), "admin".into()],
        backchannel_logout_uri: None,
        signing_alg: "ES256".into(),
        created_at: now(),
    };
    store
        .create_client(client, audit_event("client.create", None, now()))
        .await
        .expect("client");
}

/// Registers client `rp` once and gives `account_id` a live grant (with a code); returns its ID.
async fn grant_for(store: &dyn Store, account_id: Uuid) -> Uuid {
    grant_with(store, account_id, None, now() + Duration::days(1)).await
}

/// [`grant_for`] in the browser session `session_id_hash`, kept until `retain_until`. Its code
/// is `code-<grant ID>`.
async fn grant_with(
    store: &dyn Store,
    account_id: Uuid,
    session_id_hash: Option<&str>,
    retain_until: OffsetDateTime,
) -> Uuid {
    ensure_rp(store).await;
    let grant = Grant {
        id: Uuid::now_v7(),
        account_id,
        client_id: "rp".into(),
        session_id_hash: session_id_hash.map(str::to_owned),
        scopes: vec!["openid".into(), "admin".into()],
        auth_time: now(),
        amr: vec!["pwd".into()],
        acr: "urn:sekimori:acr:password".into(),
        created_at: now(),
        revoked_at: None,
        retain_until,
    };
    let code = AuthorizationCode {
        code_hash: format!("code-{}", grant.id),
        grant_id: grant.id,
        client_id: "rp".into(),
        redirect_uri: "https://rp.example/cb".into(),
        nonce: None,
        code_challenge: None,
        created_at: now(),
        expires_at: now() + Duration::seconds(60),
        used_at: None,
    };
    let id = grant.id;
    store
        .create_grant_with_code(grant, code)
        .await
        .expect("grant");
    id
}

/// A grant as the schemas before 12 stored it (no `retain_until`), with a code, written past
/// the store for the migration stories; returns its ID.
async fn grant_before_schema_12(ctx: &Ctx, account_id: Uuid, created_at: OffsetDateTime) -> Uuid {
    ensure_rp(&*ctx.store).await;
    let id = Uuid::now_v7();
    let grant = "INSERT INTO grants (id, account_id, client_id, session_id_hash, scopes, \
        auth_time, amr, acr, created_at) \
        VALUES ($1, $2, 'rp', NULL, '[\"openid\"]', $3, '[\"pwd\"]', 'urn:sekimori:acr:password', $3)";
    let code = "INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, \
        created_at, expires_at) VALUES ($1, $2, 'rp', 'https://rp.example/cb', $3, $3)";
    let code_hash = format!("code-{id}");
    match &ctx.raw {
        Raw::Sqlite(pool) => {
            let at = sqlite_text(created_at);
            sqlx::query(grant)
                .bind(id)
                .bind(account_id)
                .bind(&at)
                .execute(pool)
                .await
                .expect("a grant of an older schema");
            sqlx::query(code)
                .bind(&code_hash)
                .bind(id)
                .bind(&at)
                .execute(pool)
                .await
                .expect("its code");
        }
        Raw::Postgres(pool) => {
            sqlx::query(grant)
                .bind(id)
                .bind(account_id)
                .bind(created_at)
                .execute(pool)
                .await
                .expect("a grant of an older schema");
            sqlx::query(code)
                .bind(&code_hash)
                .bind(id)
                .bind(created_at)
                .execute(pool)
                .await
                .expect("its code");
        }
    }
    id
}

/// The fixed-width text the SQLite store keeps a time as.
fn sqlite_text(at: OffsetDateTime) -> String {
    at.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .expect("format")
}

fn session_of(id_hash: &str, account_id: Uuid) -> Session {
    let t = now();
    Session {
        id_hash: id_hash.into(),
        account_id,
        institution_settings_version: 1,
        auth_time: t,
        amr: vec!["pwd".into()],
        created_at: t,
        last_seen_at: t,
        expires_at: t + Duration::hours(8),
        ip: None,
        user_agent: None,
    }
}

async fn revoked(store: &dyn Store, grant: Uuid) -> bool {
    store
        .get_grant(grant)
        .await
        .expect("get grant")
        .expect("grant exists")
        .revoked_at
        .is_some()
}

async fn search_accounts_filters_and_pages(ctx: Ctx) {
    let store = &*ctx.store;
    clinic(store).await;
    let lower = [
        AccountType::General,
        AccountType::ClinicalViewer,
        AccountType::Manager,
    ];
    let people = [
        (
            "u01",
            AccountType::General,
            "佐藤 花子",
            "サトウ ハナコ",
            date!(2026 - 04 - 01),
        ),
        (
            "u02",
            AccountType::General,
            "佐藤 一郎",
            "サトウ イチロウ",
            date!(2026 - 05 - 01),
        ),
        (
            "u03",
            AccountType::ClinicalViewer,
            "鈴木 花子",
            "スズキ ハナコ",
            date!(2026 - 06 - 01),
        ),
        (
            "u04",
            AccountType::Manager,
            "高橋 次郎",
            "タカハシ ジロウ",
            date!(2026 - 07 - 01),
        ),
        (
            "u05",
            AccountType::General,
            "田中１００％",
            "タナカ 100%",
            date!(2026 - 08 - 01),
        ),
        (
            "u06",
            AccountType::General,
            "田中＿子",
            "タナカ_コ",
            date!(2026 - 09 - 01),
        ),
    ];
    let mut ids = std::collections::BTreeMap::new();
    for (user_id, account_type, name, kana, start) in people {
        let mut new = new_account(CLINIC, account_type, user_id);
        new.name = name.into();
        new.name_kana = kana.into();
        new.usage_start = start;
        new.usage_end = date!(2030 - 03 - 31);
        ids.insert(user_id, new.id);
        add_account(store, new).await.expect("add");
    }
    // Another institution's 佐藤 never shows up.
    store
        .create_institution(
            new_institution(PHARMACY),
            new_account(PHARMACY, AccountType::Master, "m1"),
            new_account(PHARMACY, AccountType::MasterReset, "r1"),
            vec![],
        )
        .await
        .expect("pharmacy");
    let mut other = new_account(PHARMACY, AccountType::General, "u01");
    other.name = "佐藤 花子".into();
    add_account(store, other).await.expect("add other");
    // A deleted account never matches.
    let mut gone = new_account(CLINIC, AccountType::General, "u07");
    gone.name = "佐藤 三郎".into();
    let gone = add_account(store, gone).await.expect("add gone");
    store.delete_account(gone.id, now()).await.expect("delete");
    store
        .set_lock(ids["u02"], LockState::Failures, Some(now()))
        .await
        .expect("lock");

    let all = PageRequest {
        offset: 0,
        limit: 100,
    };
    let base = AccountFilter::new(code(CLINIC), lower.to_vec());
    let user_ids = |page: &store::AccountPage| {
        page.items
            .iter()
            .map(|a| a.user_id.clone())
            .collect::<Vec<_>>()
    };
    let search = |filter: AccountFilter, page: PageRequest| async move {
        store.search_accounts(&filter, page).await.expect("search")
    };

    let everything = search(base.clone(), all).await;
    assert_eq!(
        user_ids(&everything),
        ["u01", "u02", "u03", "u04", "u05", "u06"]
    );
    assert_eq!(everything.total, 6);
    assert!(everything.total_exact, "a small result is counted exactly");
    assert_eq!(everything.items[0].id, ids["u01"]);

    let cases: Vec<(AccountFilter, Vec<&str>)> = vec![
        (
            AccountFilter {
                name: Some("佐藤".into()),
                ..base.clone()
            },
            vec!["u01", "u02"],
        ),
        (
            AccountFilter {
                name: Some("花子".into()),
                ..base.clone()
            },
            vec!["u01", "u03"],
        ),
        (
            AccountFilter {
                name_kana: Some("ハナコ".into()),
                ..base.clone()
            },
            vec!["u01", "u03"],
        ),
        // `%` and `_` are literal characters, never wildcards.
        (
            AccountFilter {
                name_kana: Some("100%".into()),
                ..base.clone()
            },
            vec!["u05"],
        ),
        (
            AccountFilter {
                name_kana: Some("_".into()),
                ..base.clone()
            },
            vec!["u06"],
        ),
        (
            AccountFilter {
                name_kana: Some("%".into()),
                ..base.clone()
            },
            vec!["u05"],
        ),
        (
            AccountFilter {
                user_id: Some("u04".into()),
                ..base.clone()
            },
            vec!["u04"],
        ),
        (
            AccountFilter {
                user_id: Some("U04".into()),
                ..base.clone()
            },
            vec![],
        ),
        (
            AccountFilter {
                account_types: vec![AccountType::General],
                ..base.clone()
            },
            vec!["u01", "u02", "u05", "u06"],
        ),
        (
            AccountFilter {
                account_types: vec![],
                ..base.clone()
            },
            vec![],
        ),
        (
            AccountFilter {
                locked: Some(true),
                ..base.clone()
            },
            vec!["u02"],
        ),
        (
            AccountFilter {
                locked: Some(false),
                ..base.clone()
            },
            vec!["u01", "u03", "u04", "u05", "u06"],
        ),
        (
            AccountFilter {
                enabled: Some(false),
                ..base.clone()
            },
            vec![],
        ),
        (
            AccountFilter {
                usage_start_from: Some(date!(2026 - 05 - 01)),
                usage_start_to: Some(date!(2026 - 07 - 01)),
                ..base.clone()
            },
            vec!["u02", "u03", "u04"],
        ),
        (
            AccountFilter {
                usage_end_to: Some(date!(2030 - 03 - 30)),
                ..base.clone()
            },
            vec![],
        ),
        (
            AccountFilter {
                usage_end_from: Some(date!(2030 - 03 - 31)),
                name: Some("佐藤".into()),
                ..base.clone()
            },
            vec!["u01", "u02"],
        ),
    ];
    for (filter, want) in cases {
        let page = search(filter.clone(), all).await;
        assert_eq!(user_ids(&page), want, "{filter:?}");
        assert_eq!(page.total, want.len() as i64, "{filter:?}");
    }

    // Pages are consecutive slices of one order; the total stays the same on every page.
    let mut seen = Vec::new();
    for offset in [0, 4, 8] {
        let page = search(base.clone(), PageRequest { offset, limit: 4 }).await;
        assert_eq!(page.total, 6);
        seen.extend(user_ids(&page));
    }
    assert_eq!(seen, user_ids(&everything));
    let nothing = search(
        base.clone(),
        PageRequest {
            offset: -5,
            limit: -1,
        },
    )
    .await;
    assert!(nothing.items.is_empty());
    assert_eq!(nothing.total, 6);
}

async fn change_account_applies_and_ends_access(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let grant = grant_for(store, master.id).await;
    let other_grant = grant_for(store, reset.id).await;
    store
        .create_session(session_of("s-master", master.id))
        .await
        .expect("session");
    store
        .create_session(session_of("s-reset", reset.id))
        .await
        .expect("session");

    // Fields: every value replaced; access untouched without `end_access_at`.
    let fields = AccountFields {
        name: "関守 花子".into(),
        name_kana: "セキモリ ハナコ".into(),
        enabled: false,
        usage_start: date!(2026 - 05 - 01),
        usage_end: date!(2026 - 12 - 31),
        second_factor: Some(SecondFactor {
            method: SecondFactorMethod::Email,
            email: Some("hanako@example.jp".into()),
            phone: None,
            verified: true,
        }),
    };
    let changed = store
        .change_account(
            master.id,
            AccountChange::Fields(fields.clone()),
            None,
            audit_event("account.update", Some(CLINIC), now()),
        )
        .await
        .expect("update");
    assert_eq!(
        (
            changed.name.as_str(),
            changed.name_kana.as_str(),
            changed.enabled,
            changed.usage_start,
            changed.usage_end,
            changed.second_factor.clone()
        ),
        (
            fields.name.as_str(),
            fields.name_kana.as_str(),
            false,
            fields.usage_start,
            fields.usage_end,
            fields.second_factor.clone()
        )
    );
    assert!(!revoked(store, grant).await);
    assert!(store.get_session("s-master").await.expect("get").is_some());

    // A reset clears a failure lock and the failure count, and ends access when asked.
    store.record_failure(master.id).await.expect("failure");
    store
        .set_lock(master.id, LockState::Failures, Some(now()))
        .await
        .expect("lock");
    let at = now();
    let credential = Credential {
        hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into(),
        initial_issued_at: Some(at),
        initial_sealed: Some(vec![9, 9]),
        changed_at: None,
    };
    let changed = store
        .change_account(
            master.id,
            AccountChange::ResetCredential(credential.clone()),
            Some(at),
            audit_event("account.password_reset", Some(CLINIC), at),
        )
        .await
        .expect("reset");
    assert_eq!(changed.credential, credential);
    assert_eq!(
        (
            changed.lock,
            changed.locked_at,
            changed.failed_attempts,
            changed.tokens_not_before
        ),
        (LockState::None, None, 0, Some(at))
    );
    assert!(revoked(store, grant).await);
    assert!(store.get_session("s-master").await.expect("get").is_none());
    assert!(
        !revoked(store, other_grant).await,
        "only the target's grants"
    );
    assert!(store.get_session("s-reset").await.expect("get").is_some());

    // A reset keeps an admin lock.
    store
        .set_lock(reset.id, LockState::Admin, Some(at))
        .await
        .expect("admin lock");
    let changed = store
        .change_account(
            reset.id,
            AccountChange::ResetCredential(credential.clone()),
            None,
            audit_event("account.password_reset", Some(CLINIC), at),
        )
        .await
        .expect("reset");
    assert_eq!(changed.lock, LockState::Admin);

    // Lock and unlock.
    let changed = store
        .change_account(
            master.id,
            AccountChange::Lock {
                state: LockState::Admin,
                at: Some(at),
            },
            Some(at),
            audit_event("account.lock", Some(CLINIC), at),
        )
        .await
        .expect("lock");
    assert_eq!(
        (changed.lock, changed.locked_at),
        (LockState::Admin, Some(at))
    );
    let changed = store
        .change_account(
            master.id,
            AccountChange::Lock {
                state: LockState::None,
                at: None,
            },
            None,
            audit_event("account.unlock", Some(CLINIC), at),
        )
        .await
        .expect("unlock");
    assert_eq!(changed.lock, LockState::None);

    // Delete: soft, ends access; afterwards every change is NotFound and the ID stays taken.
    store
        .create_session(session_of("s-reset-2", reset.id))
        .await
        .expect("session");
    let changed = store
        .change_account(
            reset.id,
            AccountChange::Delete { at },
            Some(at),
            audit_event("account.delete", Some(CLINIC), at),
        )
        .await
        .expect("delete");
    assert_eq!(changed.deleted_at, Some(at));
    assert!(revoked(store, other_grant).await);
    assert!(store.get_session("s-reset-2").await.expect("get").is_none());
    assert!(found(store, CLINIC, "master_reset").await.is_none());
    assert_not_found(
        store
            .change_account(
                reset.id,
                AccountChange::Delete { at },
                None,
                audit_event("account.delete", Some(CLINIC), at),
            )
            .await,
    );
    assert_conflict(
        add_account(
            store,
            new_account(CLINIC, AccountType::Manager, "master_reset"),
        )
        .await,
        "account",
    );

    // Every successful change wrote its audit event in the same transaction.
    let kinds: Vec<String> = audit_log(store)
        .await
        .into_iter()
        .map(|e| e.event.kind)
        .filter(|k| k.starts_with("account."))
        .collect();
    assert_eq!(
        kinds,
        [
            "account.update",
            "account.password_reset",
            "account.password_reset",
            "account.lock",
            "account.unlock",
            "account.delete"
        ]
    );
}

async fn revoke_grants_of_account(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let first = grant_for(store, master.id).await;
    let second = grant_for(store, master.id).await;
    let others = grant_for(store, reset.id).await;
    let at = now();
    store
        .revoke_grant(first, at - Duration::hours(1))
        .await
        .expect("revoke one");
    assert_eq!(
        store
            .revoke_grants_of_account(master.id, at)
            .await
            .expect("revoke"),
        1
    );
    assert_eq!(
        store
            .get_grant(first)
            .await
            .expect("get")
            .expect("grant")
            .revoked_at,
        Some(at - Duration::hours(1)),
        "the first revocation time is kept"
    );
    assert!(revoked(store, second).await);
    assert!(!revoked(store, others).await);
    assert_eq!(
        store
            .revoke_grants_of_account(master.id, at)
            .await
            .expect("again"),
        0
    );
}

async fn joined_reads_match_the_single_reads(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let clinic_code = code(CLINIC);
    let institution = store
        .get_institution(&clinic_code)
        .await
        .expect("institution")
        .expect("present");
    let account = store
        .get_account(master.id)
        .await
        .expect("account")
        .expect("present");
    assert_eq!(
        store
            .get_account_and_institution(master.id)
            .await
            .expect("joined"),
        Some((account.clone(), institution.clone()))
    );
    assert_eq!(
        store
            .find_account_and_institution(&clinic_code, &master.user_id)
            .await
            .expect("joined"),
        Some((account.clone(), institution.clone()))
    );
    let grant_id = grant_for(store, master.id).await;
    let grant = store
        .get_grant(grant_id)
        .await
        .expect("grant")
        .expect("present");
    assert_eq!(
        store.get_grant_and_account(grant_id).await.expect("joined"),
        Some((grant.clone(), account.clone()))
    );
    let token = RefreshToken {
        grant_id,
        generation: 0,
        secret_hash: "family".into(),
        institution_settings_version: institution.settings_version,
        created_at: now(),
        idle_expires_at: now() + Duration::hours(24),
        absolute_expires_at: now() + Duration::days(30),
        used_at: None,
    };
    store
        .insert_refresh_token(token.clone())
        .await
        .expect("insert");
    assert_eq!(
        store
            .get_refresh_family(&refresh_key(grant_id, 0))
            .await
            .expect("joined"),
        Some(RefreshFamily {
            token: store
                .get_refresh_token(&refresh_key(grant_id, 0))
                .await
                .expect("token")
                .expect("present"),
            grant,
            account,
            institution,
        })
    );
    assert_eq!(
        store
            .get_refresh_family(&refresh_key(grant_id, 1))
            .await
            .expect("none"),
        None
    );

    // Unknown IDs, and a deleted account: found by ID (with its grant), not by user ID.
    assert_eq!(
        store
            .get_account_and_institution(Uuid::now_v7())
            .await
            .expect("none"),
        None
    );
    assert_eq!(
        store
            .get_grant_and_account(Uuid::now_v7())
            .await
            .expect("none"),
        None
    );
    assert_eq!(
        store
            .find_account_and_institution(&clinic_code, "nobody")
            .await
            .expect("none"),
        None
    );
    let reset_grant = grant_for(store, reset.id).await;
    store.delete_account(reset.id, now()).await.expect("delete");
    assert_eq!(
        store
            .find_account_and_institution(&clinic_code, &reset.user_id)
            .await
            .expect("deleted"),
        None
    );
    let (deleted, _) = store
        .get_account_and_institution(reset.id)
        .await
        .expect("joined")
        .expect("a deleted account is still found by ID");
    assert!(deleted.deleted_at.is_some());
    let (_, deleted) = store
        .get_grant_and_account(reset_grant)
        .await
        .expect("joined")
        .expect("present");
    assert!(deleted.deleted_at.is_some());
    store
        .insert_refresh_token(RefreshToken {
            grant_id: reset_grant,
            ..token
        })
        .await
        .expect("insert");
    let family = store
        .get_refresh_family(&refresh_key(reset_grant, 0))
        .await
        .expect("joined")
        .expect("a deleted account's token is still found");
    assert!(family.account.deleted_at.is_some());
}

async fn institution_update_and_settings(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let clinic_code = code(CLINIC);
    let updated = store
        .update_institution(
            &clinic_code,
            InstitutionUpdate {
                name: "せきもり総合病院".into(),
                usage_start: date!(2026 - 10 - 01),
            },
            audit_event("institution.update", Some(CLINIC), now()),
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "せきもり総合病院");
    assert_eq!(updated.usage_start, date!(2026 - 10 - 01));
    assert_not_found(
        store
            .update_institution(
                &code(PHARMACY),
                InstitutionUpdate {
                    name: "x".into(),
                    usage_start: date!(2026 - 10 - 01),
                },
                audit_event("institution.update", Some(PHARMACY), now()),
            )
            .await,
    );

    // Settings: stored as given, version bumped, every session and grant of the institution
    // ended; other institutions untouched.
    store
        .create_institution(
            new_institution(PHARMACY),
            new_account(PHARMACY, AccountType::Master, "m1"),
            new_account(PHARMACY, AccountType::MasterReset, "r1"),
            vec![],
        )
        .await
        .expect("pharmacy");
    let pharmacy_master = found(store, PHARMACY, "m1").await.expect("m1");
    let grant = grant_for(store, master.id).await;
    let untouched = grant_for(store, pharmacy_master).await;
    store
        .create_session(session_of("s1", master.id))
        .await
        .expect("session");
    store
        .create_session(session_of("s2", pharmacy_master))
        .await
        .expect("session");
    let settings: InstitutionSettings = serde_json::from_value(serde_json::json!({
        "second_factor_everywhere": true,
        "lockout_threshold": 3,
        "login_hours": {"opens": "09:00", "closes": "22:00", "days": ["mon", "tue"]}
    }))
    .expect("settings");
    let at = now();
    let changed = store
        .set_institution_settings(
            &clinic_code,
            &settings,
            at,
            audit_event("institution.settings", Some(CLINIC), at),
        )
        .await
        .expect("settings");
    assert_eq!(changed.settings, settings);
    assert_eq!(changed.settings_version, 2);
    assert_eq!(
        store
            .get_institution(&clinic_code)
            .await
            .expect("get")
            .expect("clinic"),
        changed
    );
    assert!(revoked(store, grant).await);
    assert!(store.get_session("s1").await.expect("get").is_none());
    assert!(!revoked(store, untouched).await);
    assert!(store.get_session("s2").await.expect("get").is_some());
    assert_not_found(
        store
            .set_institution_settings(
                &code("1310000099"),
                &settings,
                at,
                audit_event("institution.settings", None, at),
            )
            .await,
    );
}

// ---------------------------------------------------------------------------------------------
// Bulk registration jobs.
// ---------------------------------------------------------------------------------------------

fn bulk_job(submitter: &NewAccount, reception: &str, at: OffsetDateTime) -> NewBulkJob {
    NewBulkJob {
        institution_code: submitter.institution_code.clone(),
        reception_number: reception.into(),
        submitter_id: submitter.id,
        submitter_type: submitter.account_type,
        status: JobStatus::Queued,
        submitted_at: at,
        finished_at: None,
        row_count: 2,
        file: b"account_type,user_id\r\n".to_vec(),
        errors: vec![],
    }
}

fn result_row(line: u64, user_id: &str, result: &str) -> BulkResultRow {
    BulkResultRow {
        line,
        cells: vec!["general".into(), user_id.into()],
        result: result.into(),
        errors: vec![],
    }
}

fn finished(
    status: JobStatus,
    at: OffsetDateTime,
    accounts: Vec<NewAccount>,
    sealed: Option<Vec<u8>>,
) -> BulkCompletion {
    let rows: Vec<BulkResultRow> = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| result_row(i as u64 + 2, &a.user_id, "registered"))
        .collect();
    let audit = accounts
        .iter()
        .map(|a| audit_event("account.create", Some(a.institution_code.as_str()), at))
        .chain([audit_event("bulk_registration.finish", Some(CLINIC), at)])
        .collect();
    BulkCompletion {
        status,
        finished_at: at,
        row_count: i64::try_from(rows.len()).unwrap(),
        registered_count: i64::try_from(accounts.len()).unwrap(),
        duplicate_count: 0,
        invalid_count: 0,
        errors: vec![],
        result_rows: rows,
        passwords_sealed: sealed,
        accounts,
        audit,
    }
}

async fn bulk_jobs_one_active_per_institution(ctx: Ctx) {
    let store = ctx.store.as_ref();
    let (master, _) = clinic(store).await;
    let t = now();
    let first = store
        .create_bulk_job(
            bulk_job(&master, "20260401090000000_master", t),
            audit_event("bulk_registration.upload", Some(CLINIC), t),
        )
        .await
        .expect("first upload");
    assert_eq!(first.status, JobStatus::Queued);
    assert_eq!(first.submitted_at, t);
    assert_eq!(first.attempts, 0);
    assert_eq!(
        store.active_bulk_job(&code(CLINIC)).await.unwrap(),
        Some(first.clone())
    );
    // A second queued job in the same institution collides, whoever uploads it.
    assert_conflict(
        store
            .create_bulk_job(
                bulk_job(&master, "20260401090001000_master", t),
                audit_event("bulk_registration.upload", Some(CLINIC), t),
            )
            .await,
        "bulk_registration",
    );
    // A file that could not be read is recorded as finished at once and does not collide.
    let broken = NewBulkJob {
        status: JobStatus::FailedFileStructure,
        finished_at: Some(t),
        row_count: 0,
        file: vec![],
        errors: vec![BulkProblem {
            line: Some(1),
            field: "file".into(),
            rule: "file.header_missing".into(),
            message_ja: "見出しがありません。".into(),
            message_en: "Missing header.".into(),
        }],
        ..bulk_job(
            &master,
            "20260401090002000_master",
            t + Duration::seconds(2),
        )
    };
    let broken = store
        .create_bulk_job(
            broken,
            audit_event("bulk_registration.upload", Some(CLINIC), t),
        )
        .await
        .expect("a failed upload is recorded");
    assert_eq!(broken.errors.len(), 1);
    assert_eq!(broken.errors[0].rule, "file.header_missing");
    // Newest first, at most the limit, only the submitter's.
    let listed = store
        .list_bulk_jobs(&code(CLINIC), master.id, 3)
        .await
        .unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|j| j.reception_number.as_str())
            .collect::<Vec<_>>(),
        ["20260401090002000_master", "20260401090000000_master"]
    );
    assert_eq!(
        store
            .list_bulk_jobs(&code(CLINIC), master.id, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_bulk_jobs(&code(CLINIC), Uuid::now_v7(), 3)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .get_bulk_job(&code(CLINIC), "20260401090002000_master")
            .await
            .unwrap()
            .map(|j| j.status),
        Some(JobStatus::FailedFileStructure)
    );
    assert!(
        store
            .get_bulk_job(&code(PHARMACY), "20260401090002000_master")
            .await
            .unwrap()
            .is_none()
    );
    // The uploads were audited in the same transaction.
    assert_eq!(
        audit_log(store)
            .await
            .iter()
            .filter(|e| e.event.kind == "bulk_registration.upload")
            .count(),
        2
    );
}

async fn bulk_jobs_are_claimed_once_and_taken_over_after_the_lease(ctx: Ctx) {
    let store = ctx.store.as_ref();
    let (master, _) = clinic(store).await;
    let t = now();
    store
        .create_bulk_job(
            bulk_job(&master, "20260401090000000_master", t),
            audit_event("bulk_registration.upload", Some(CLINIC), t),
        )
        .await
        .unwrap();
    let lease = Duration::seconds(60);
    let claimed = store
        .claim_bulk_job("node-a", t, t + lease)
        .await
        .unwrap()
        .expect("a queued job is claimable");
    assert_eq!(claimed.file, b"account_type,user_id\r\n");
    assert_eq!(claimed.job.status, JobStatus::Running);
    assert_eq!(claimed.job.attempts, 1);
    assert_eq!(claimed.job.lease_owner.as_deref(), Some("node-a"));
    assert_eq!(claimed.job.started_at, Some(t));
    // Held: nobody else gets it before the lease lapses.
    assert!(
        store
            .claim_bulk_job("node-b", t + Duration::seconds(59), t + lease)
            .await
            .unwrap()
            .is_none()
    );
    // Renewal by the holder only.
    assert!(
        store
            .renew_bulk_lease(
                &code(CLINIC),
                "20260401090000000_master",
                "node-a",
                t + Duration::seconds(120)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .renew_bulk_lease(
                &code(CLINIC),
                "20260401090000000_master",
                "node-b",
                t + Duration::seconds(500)
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_bulk_job("node-b", t + Duration::seconds(100), t + lease)
            .await
            .unwrap()
            .is_none()
    );
    // node-a died: after the lease, node-b takes over, and the attempt is counted.
    let later = t + Duration::seconds(121);
    let taken = store
        .claim_bulk_job("node-b", later, later + lease)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(taken.job.attempts, 2);
    assert_eq!(taken.job.lease_owner.as_deref(), Some("node-b"));
    assert_eq!(taken.job.started_at, Some(t));
    // The old holder can no longer renew or finish it.
    assert!(
        !store
            .renew_bulk_lease(
                &code(CLINIC),
                "20260401090000000_master",
                "node-a",
                later + lease
            )
            .await
            .unwrap()
    );
    assert_not_found(
        store
            .complete_bulk_job(
                &code(CLINIC),
                "20260401090000000_master",
                "node-a",
                finished(JobStatus::Done, later, vec![], None),
            )
            .await,
    );
    // Concurrent claims of one expired job: exactly one wins.
    let much_later = later + Duration::seconds(3600);
    let (a, b) = tokio::join!(
        store.claim_bulk_job("node-c", much_later, much_later + lease),
        store.claim_bulk_job("node-d", much_later, much_later + lease),
    );
    let winners = [a.unwrap(), b.unwrap()].into_iter().flatten().count();
    assert_eq!(winners, 1);
}

async fn bulk_completion_is_all_or_nothing(ctx: Ctx) {
    let store = ctx.store.as_ref();
    let (master, _) = clinic(store).await;
    let t = now();
    let reception = "20260401090000000_master";
    store
        .create_bulk_job(
            bulk_job(&master, reception, t),
            audit_event("bulk_registration.upload", Some(CLINIC), t),
        )
        .await
        .unwrap();
    store
        .claim_bulk_job("node-a", t, t + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    // Taken IDs: live and deleted accounts both count; the comparison is case-sensitive.
    let live = new_account(CLINIC, AccountType::Manager, "kanri01");
    let gone = new_account(CLINIC, AccountType::Manager, "kanri02");
    add_account(store, live.clone()).await.unwrap();
    add_account(store, gone.clone()).await.unwrap();
    store.delete_account(gone.id, t).await.unwrap();
    let mut taken = store
        .taken_user_ids(
            &code(CLINIC),
            &[
                "kanri01".into(),
                "kanri02".into(),
                "KANRI01".into(),
                "kanri03".into(),
            ],
        )
        .await
        .unwrap();
    taken.sort();
    assert_eq!(taken, ["kanri01", "kanri02"]);
    assert!(
        store
            .taken_user_ids(&code(PHARMACY), &["kanri01".into()])
            .await
            .unwrap()
            .is_empty()
    );

    // A clash rolls back everything: no account, no result, the job still running.
    let batch: Vec<NewAccount> = (0..1200)
        .map(|i| new_account(CLINIC, AccountType::Manager, &format!("m{i:05}")))
        .collect();
    let mut clashing = batch.clone();
    clashing.push(new_account(CLINIC, AccountType::Manager, "kanri02"));
    assert_conflict(
        store
            .complete_bulk_job(
                &code(CLINIC),
                reception,
                "node-a",
                finished(JobStatus::Done, t, clashing, Some(vec![9, 9])),
            )
            .await,
        "account",
    );
    assert!(found(store, CLINIC, "m00000").await.is_none());
    let job = store
        .get_bulk_job(&code(CLINIC), reception)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Running);
    assert!(
        store
            .bulk_result(&code(CLINIC), reception)
            .await
            .unwrap()
            .is_none()
    );

    // The whole batch (more than one multi-row statement) lands with its result and audit.
    let done_at = t + Duration::seconds(5);
    store
        .complete_bulk_job(
            &code(CLINIC),
            reception,
            "node-a",
            finished(JobStatus::Done, done_at, batch.clone(), Some(vec![1, 2, 3])),
        )
        .await
        .expect("complete");
    for new in [&batch[0], &batch[599], &batch[1199]] {
        assert_eq!(account(store, new.id).await, expected(new));
    }
    let job = store
        .get_bulk_job(&code(CLINIC), reception)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(job.finished_at, Some(done_at));
    assert_eq!(job.registered_count, 1200);
    assert_eq!(job.lease_owner, None);
    let result = store
        .bulk_result(&code(CLINIC), reception)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.rows.len(), 1200);
    assert_eq!(result.rows[0], result_row(2, "m00000", "registered"));
    assert_eq!(result.passwords_sealed, Some(vec![1, 2, 3]));
    let creations = AuditFilter {
        kind: Some("account.create".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        store.list_audit(&creations, 5000).await.unwrap().len(),
        1200 + 2
    );
    // Finished: no longer active, never claimable, and finishing twice is refused.
    assert!(
        store
            .active_bulk_job(&code(CLINIC))
            .await
            .unwrap()
            .is_none()
    );
    let far = t + Duration::days(1);
    assert!(
        store
            .claim_bulk_job("node-b", far, far)
            .await
            .unwrap()
            .is_none()
    );
    assert_not_found(
        store
            .complete_bulk_job(
                &code(CLINIC),
                reception,
                "node-a",
                finished(JobStatus::Done, t, vec![], None),
            )
            .await,
    );
}

async fn bulk_passwords_are_purged(ctx: Ctx) {
    let store = ctx.store.as_ref();
    let (master, _) = clinic(store).await;
    let t = now();
    let reception = "20260401090000000_master";
    store
        .create_bulk_job(
            bulk_job(&master, reception, t),
            audit_event("bulk_registration.upload", Some(CLINIC), t),
        )
        .await
        .unwrap();
    store
        .claim_bulk_job("node-a", t, t + Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    let accounts = vec![new_account(CLINIC, AccountType::Manager, "kanri01")];
    store
        .complete_bulk_job(
            &code(CLINIC),
            reception,
            "node-a",
            finished(JobStatus::Done, t, accounts, Some(vec![7; 40])),
        )
        .await
        .unwrap();
    // Not yet: finished after the cut-off.
    assert_eq!(
        store
            .purge_bulk_passwords(t - Duration::SECOND, t)
            .await
            .unwrap(),
        0
    );
    let later = t + Duration::days(30);
    assert_eq!(store.purge_bulk_passwords(t, later).await.unwrap(), 1);
    assert_eq!(store.purge_bulk_passwords(t, later).await.unwrap(), 0);
    let result = store
        .bulk_result(&code(CLINIC), reception)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.passwords_sealed, None);
    assert_eq!(result.rows.len(), 1);
    let job = store
        .get_bulk_job(&code(CLINIC), reception)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.passwords_purged_at, Some(later));
}

async fn notices_are_marked_all_or_nothing(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, reset) = clinic(store).await;
    let printed = |a: &NewAccount| PrintedNotice {
        account_id: a.id,
        password_hash: a.credential.hash.clone(),
    };
    let notice_audit = || audit_event("account.notice", Some(CLINIC), now());
    let before = audit_log(store).await.len();

    // One entry whose credential is no longer current: nothing is marked, nothing audited.
    let stale = PrintedNotice {
        account_id: reset.id,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXI$b3RoZXI".into(),
    };
    assert_conflict(
        store
            .mark_notices_issued(
                &[printed(&master), stale],
                vec![notice_audit(), notice_audit()],
            )
            .await,
        "notice",
    );
    assert!(!account(store, master.id).await.notice_issued);
    assert_eq!(audit_log(store).await.len(), before);

    store
        .mark_notices_issued(
            &[printed(&master), printed(&reset)],
            vec![notice_audit(), notice_audit()],
        )
        .await
        .expect("mark both");
    assert!(account(store, master.id).await.notice_issued);
    assert!(account(store, reset.id).await.notice_issued);
    assert_eq!(audit_log(store).await.len(), before + 2);
    // Printing again keeps the mark.
    store
        .mark_notices_issued(&[printed(&master)], vec![notice_audit()])
        .await
        .expect("mark again");

    // A reset clears the mark, and a notice of the old password no longer counts.
    let fresh = Credential {
        hash: "$argon2id$v=19$m=19456,t=2,p=1$bmV3$bmV3".into(),
        initial_issued_at: Some(now()),
        initial_sealed: Some(vec![7, 7]),
        changed_at: None,
    };
    store
        .change_account(
            master.id,
            AccountChange::ResetCredential(fresh),
            None,
            audit_event("account.password_reset", Some(CLINIC), now()),
        )
        .await
        .expect("reset");
    assert!(!account(store, master.id).await.notice_issued);
    assert_conflict(
        store.mark_notices_issued(&[printed(&master)], vec![]).await,
        "notice",
    );

    // Deleted accounts are never marked.
    store.delete_account(reset.id, now()).await.expect("delete");
    assert_conflict(
        store.mark_notices_issued(&[printed(&reset)], vec![]).await,
        "notice",
    );
}

async fn expired_initial_passwords_are_purged(ctx: Ctx) {
    let store = &*ctx.store;
    let (master, _) = clinic(store).await;
    let long_ago = now() - Duration::days(40);
    let issued = |account_type, user_id: &str, at| {
        let mut account = new_account(CLINIC, account_type, user_id);
        account.credential.initial_issued_at = Some(at);
        account
    };
    let old_staff = issued(AccountType::General, "staff_old", long_ago);
    let new_staff = issued(AccountType::General, "staff_new", now());
    let old_machine = issued(AccountType::WebApi, "api_old", long_ago);
    for account in [&old_staff, &new_staff, &old_machine] {
        store
            .create_account(
                account.clone(),
                audit_event("account.create", Some(CLINIC), now()),
            )
            .await
            .expect("create");
    }
    let humans: Vec<AccountType> = AccountType::ALL
        .into_iter()
        .filter(|t| t.initial_password_expires())
        .collect();

    let purged = store
        .purge_initial_passwords(&humans, now() - Duration::days(30))
        .await
        .expect("purge");
    assert_eq!(purged, 1, "only the expired human initial password");
    assert_eq!(
        account(store, old_staff.id).await.credential.initial_sealed,
        None
    );
    for kept in [&new_staff, &old_machine, &master] {
        assert_eq!(
            account(store, kept.id).await.credential.initial_sealed,
            kept.credential.initial_sealed,
            "{} keeps its sealed initial password",
            kept.user_id
        );
    }
    // The hash and the issue time stay: the password state still reads as expired.
    assert_eq!(
        account(store, old_staff.id)
            .await
            .credential
            .initial_issued_at,
        Some(long_ago)
    );
    assert_eq!(
        store
            .purge_initial_passwords(&humans, now() - Duration::days(30))
            .await
            .expect("purge again"),
        0
    );
    assert_eq!(
        store
            .purge_initial_passwords(&[], now())
            .await
            .expect("no types"),
        0
    );
}
