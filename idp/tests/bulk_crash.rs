//! Crash safety of bulk registration (SPEC §9): the real `idp serve` process is killed with
//! SIGKILL while it runs a job, then started again. The job must end as a whole — done, with
//! exactly the accounts its result file lists — or fail with no account at all; never half.
//!
//! The job is queued straight through the store (the upload endpoint and its permission checks
//! are covered end to end in `tests/tests/bulk_registration.rs`), with a file large enough that
//! hashing its initial passwords takes seconds. Runs on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set (required under `CI=true`).

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use policies::bulk::JobStatus;
use policies::{AccountType, InstitutionCode};
use sqlx::Connection as _;
use store::{AccountFilter, NewAuditEvent, NewBulkJob, PageRequest, Store};

const CODE: &str = "1312345678";
const ROWS: usize = 400;

struct Server {
    dir: tempfile::TempDir,
    database_url: String,
}

impl Server {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_idp"));
        command
            .args(args)
            .env("SEKIMORI__DATABASE__URL", &self.database_url)
            .env("SEKIMORI__KEYS__KEK_FILE", self.dir.path().join("kek"))
            .env("SEKIMORI__SERVER__BIND", "127.0.0.1:0")
            .env(
                "SEKIMORI__OUTBOX__PATH",
                self.dir.path().join("outbox.jsonl"),
            )
            .env("SEKIMORI__LOG__FILTER", "warn")
            .env("SEKIMORI__BULK__LEASE_SECONDS", "3")
            .env("SEKIMORI__BULK__POLL_SECONDS", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    fn serve(&self) -> Child {
        self.command(&["serve"]).spawn().expect("start idp serve")
    }
}

async fn wait_for(
    store: &dyn Store,
    reception: &str,
    timeout: Duration,
    until: impl Fn(JobStatus) -> bool,
) -> store::BulkJob {
    let code = InstitutionCode::parse_for_login(CODE).unwrap();
    let start = Instant::now();
    loop {
        let job = store
            .get_bulk_job(&code, reception)
            .await
            .unwrap()
            .expect("the job");
        if until(job.status) {
            return job;
        }
        assert!(
            start.elapsed() < timeout,
            "job still {:?} after {timeout:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn managers(store: &dyn Store) -> Vec<store::Account> {
    let filter = AccountFilter {
        institution_code: InstitutionCode::parse_for_login(CODE).unwrap(),
        account_types: vec![AccountType::Manager],
        user_id: None,
        name: None,
        name_kana: None,
        enabled: None,
        locked: None,
        usage_start_from: None,
        usage_start_to: None,
        usage_end_from: None,
        usage_end_to: None,
    };
    store
        .search_accounts(
            &filter,
            PageRequest {
                offset: 0,
                limit: 1000,
            },
        )
        .await
        .unwrap()
        .items
}

async fn story(server: Server) {
    let out = server
        .command(&[
            "institution",
            "create",
            "--code",
            CODE,
            "--name",
            "関守クリニック",
            "--master-id",
            "mst01",
            "--master-reset-id",
            "rst01",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = store::connect(&server.database_url, 2).await.unwrap();
    let code = InstitutionCode::parse_for_login(CODE).unwrap();
    let master = store.find_account(&code, "mst01").await.unwrap().unwrap();
    let mut csv = String::from("account_type,user_id,name,name_kana,usage_start\r\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "管理者,k{i:04},関守　太郎,セキモリ タロウ,2020/04/01\r\n"
        ));
    }
    let now = time::OffsetDateTime::now_utc();
    let reception = policies::bulk::reception_number(now, "mst01");
    store
        .create_bulk_job(
            NewBulkJob {
                institution_code: code.clone(),
                reception_number: reception.clone(),
                submitter_id: master.id,
                submitter_type: AccountType::Master,
                status: JobStatus::Queued,
                submitted_at: now,
                finished_at: None,
                row_count: ROWS as i64,
                file: csv.into_bytes(),
                errors: vec![],
            },
            NewAuditEvent {
                at: now,
                kind: "bulk_registration.upload".into(),
                actor_account_id: Some(master.id),
                actor: format!("{CODE}/mst01"),
                target_account_id: None,
                target: Some(CODE.into()),
                institution_code: Some(CODE.into()),
                ip: None,
                user_agent: None,
                result: store::AuditResult::Success,
                reason: Some(reception.clone()),
            },
        )
        .await
        .unwrap();

    // First life: killed while the job runs (hashing 400 passwords takes seconds).
    let mut first = server.serve();
    let running = wait_for(store.as_ref(), &reception, Duration::from_secs(60), |s| {
        s != JobStatus::Queued
    })
    .await;
    first.kill().expect("SIGKILL");
    first.wait().unwrap();
    assert_eq!(running.status, JobStatus::Running, "killed mid-job");
    assert_eq!(running.attempts, 1);
    let after_kill = store
        .get_bulk_job(&code, &reception)
        .await
        .unwrap()
        .unwrap();
    if after_kill.status == JobStatus::Running {
        assert!(
            managers(store.as_ref()).await.is_empty(),
            "nothing is half-written"
        );
    }

    // Second life: the lease lapses and the job is taken over and run again from its file.
    let mut second = server.serve();
    let job = wait_for(store.as_ref(), &reception, Duration::from_secs(120), |s| {
        !s.is_active()
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();

    let accounts = managers(store.as_ref()).await;
    if job.status != JobStatus::Done {
        assert_eq!(job.status, JobStatus::FailedSystem);
        assert!(accounts.is_empty(), "a failed job registers nothing");
        return;
    }
    assert_eq!(job.registered_count, ROWS as i64);
    if after_kill.status == JobStatus::Running {
        assert_eq!(job.attempts, 2, "run again after the crash");
    }
    // The accounts are exactly the result's registered rows.
    let result = store.bulk_result(&code, &reception).await.unwrap().unwrap();
    let registered: HashSet<String> = result
        .rows
        .iter()
        .filter(|r| r.result == "registered")
        .map(|r| r.cells[1].clone())
        .collect();
    let stored: HashSet<String> = accounts.iter().map(|a| a.user_id.clone()).collect();
    assert_eq!(registered.len(), ROWS);
    assert_eq!(stored, registered);

    // And the result's passwords are theirs.
    let kek_text = std::fs::read_to_string(server.dir.path().join("kek")).unwrap();
    let kek = base64::engine::general_purpose::STANDARD
        .decode(kek_text.trim())
        .unwrap();
    let sealer = service::Sealer::new(&kek).unwrap();
    let plain = sealer
        .open(
            result
                .passwords_sealed
                .as_deref()
                .expect("sealed passwords"),
            &format!("bulk-result:{CODE}/{reception}"),
        )
        .unwrap();
    let passwords: Vec<Option<String>> = serde_json::from_slice(&plain).unwrap();
    let digester = std::sync::Arc::new(service::SecretDigester::from_kek(&kek));
    let hasher = service::PasswordHasher::new(service::HashingParams::default(), digester).unwrap();
    for i in [0, ROWS / 2, ROWS - 1] {
        let user_id = &result.rows[i].cells[1];
        let account = accounts.iter().find(|a| &a.user_id == user_id).unwrap();
        let password = passwords[i]
            .clone()
            .expect("a password for a registered row");
        let verified = hasher
            .verify(password, account.credential.hash.clone())
            .await
            .unwrap();
        assert!(verified.ok, "the result's password of {user_id} signs in");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_job_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("crash.db").display());
    story(Server { dir, database_url }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_job_postgres() {
    let admin = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TEST_DATABASE_URL is not set")
        }
        _ => return,
    };
    let name = format!("sekimori_crash_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    story(Server {
        dir: tempfile::tempdir().unwrap(),
        database_url: format!("{base}/{name}"),
    })
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}
