//! The `idp` command line as a user runs it: one JSON object on stdout, errors on stderr with a
//! non-zero exit, nothing half-written. Runs on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set (required under `CI=true`).

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

struct Env {
    dir: TempDir,
    database_url: String,
}

impl Env {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("cli.db").display());
        Self { dir, database_url }
    }

    fn postgres() -> Option<Self> {
        let admin = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but TEST_DATABASE_URL is not set")
            }
            _ => return None,
        };
        let name = format!("sekimori_cli_{}", uuid::Uuid::new_v4().simple());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            database_url: format!("{base}/{name}"),
        })
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_idp"))
            .args(args)
            .env("SEKIMORI__DATABASE__URL", &self.database_url)
            .env("SEKIMORI__KEYS__KEK_FILE", self.dir.path().join("kek"))
            .env("SEKIMORI__LOG__FILTER", "warn")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run idp");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_line(&out)
    }

    fn err(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(out.stdout.is_empty(), "nothing on stdout on failure");
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.database_url.starts_with("postgres").then(|| {
            let (base, name) = self.database_url.rsplit_once('/').unwrap();
            (format!("{base}/postgres"), name.to_owned())
        }) {
            psql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

fn psql(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .expect(sql);
    });
}

fn json_line(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        text.lines().count(),
        1,
        "exactly one JSON object on stdout: {text}"
    );
    serde_json::from_str(&text).unwrap()
}

fn institutions_story(env: &Env) {
    assert_eq!(env.ok(&["migrate"])["migrated"], true);
    // Migrations are idempotent.
    env.ok(&["migrate"]);

    let created = env.ok(&[
        "institution",
        "create",
        "--code",
        "1312345678",
        "--name",
        "関守クリニック",
        "--master-id",
        "mst01",
        "--master-reset-id",
        "rst01",
    ]);
    assert_eq!(created["code"], "1312345678");
    assert_eq!(created["master"]["user_id"], "mst01");
    assert_eq!(created["master_reset"]["user_id"], "rst01");
    let p1 = created["master"]["initial_password"].as_str().unwrap();
    let p2 = created["master_reset"]["initial_password"]
        .as_str()
        .unwrap();
    assert_eq!(p1.chars().count(), 12);
    assert_ne!(p1, p2);

    // Duplicate code.
    let err = env.err(&[
        "institution",
        "create",
        "--code",
        "1312345678",
        "--name",
        "x",
        "--master-id",
        "m1",
        "--master-reset-id",
        "r1",
    ]);
    assert!(err.contains("institution already exists"), "{err}");
    // Malformed codes name the rule.
    for (code, rule) in [
        ("131234567", "institution_code.format"),
        ("4812345678", "institution_code.prefecture"),
        ("1322345678", "institution_code.score_table"),
        ("0000000000", "institution_code.reserved"),
    ] {
        let err = env.err(&[
            "institution",
            "create",
            "--code",
            code,
            "--name",
            "x",
            "--master-id",
            "m1",
            "--master-reset-id",
            "r1",
        ]);
        assert!(err.contains(rule), "{code}: {err}");
    }
    // Same ID for both accounts, and a machine-style ID for a human account.
    let err = env.err(&[
        "institution",
        "create",
        "--code",
        "1412345678",
        "--name",
        "x",
        "--master-id",
        "m1",
        "--master-reset-id",
        "m1",
    ]);
    assert!(err.contains("user_id.duplicate"), "{err}");
    let err = env.err(&[
        "institution",
        "create",
        "--code",
        "1412345678",
        "--name",
        "x",
        "--master-id",
        "A0bad",
        "--master-reset-id",
        "r1",
    ]);
    assert!(err.contains("master_id"), "{err}");
    // None of the refused attempts left anything behind: the code is still free.
    let created = env.ok(&[
        "institution",
        "create",
        "--code",
        "1412345678",
        "--name",
        "関守薬局",
        "--master-id",
        "m1",
        "--master-reset-id",
        "r1",
    ]);
    assert_eq!(created["code"], "1412345678");

    let op = env.ok(&[
        "operator",
        "create",
        "--user-id",
        "ops1",
        "--name",
        "運用太郎",
    ]);
    assert_eq!(op["user_id"], "ops1");
    assert_eq!(op["initial_password"].as_str().unwrap().chars().count(), 12);
    let err = env.err(&[
        "operator",
        "create",
        "--user-id",
        "ops1",
        "--name",
        "運用太郎",
    ]);
    assert!(err.contains("already exists"), "{err}");

    let confidential = env.ok(&[
        "client",
        "create",
        "--client-id",
        "rp1",
        "--redirect-uri",
        "https://rp.example/cb",
        "--redirect-uri",
        "http://localhost:3000/cb",
        "--scope",
        "openid profile institution admin",
        "--backchannel-logout-uri",
        "https://rp.example/bcl",
    ]);
    assert_eq!(confidential["client_id"], "rp1");
    assert!(confidential["client_secret"].as_str().unwrap().len() >= 43);
    let public = env.ok(&[
        "client",
        "create",
        "--client-id",
        "spa",
        "--redirect-uri",
        "https://spa.example/cb",
        "--public",
    ]);
    assert!(public.get("client_secret").is_none(), "{public}");
    // A service client: client_credentials only, its own resource:action scopes, no redirect.
    let service = env.ok(&[
        "client",
        "create",
        "--client-id",
        "batch",
        "--grant-type",
        "client_credentials",
        "--scope",
        "records:read records:write",
    ]);
    assert!(service["client_secret"].is_string(), "{service}");
    let err = env.err(&[
        "client",
        "create",
        "--client-id",
        "spa2",
        "--public",
        "--grant-type",
        "client_credentials",
        "--scope",
        "records:read",
    ]);
    assert!(err.contains("client.grant_type"), "{err}");
    let err = env.err(&[
        "client",
        "create",
        "--client-id",
        "rp1",
        "--redirect-uri",
        "https://rp.example/cb",
    ]);
    assert!(err.contains("client already exists"), "{err}");
    let err = env.err(&[
        "client",
        "create",
        "--client-id",
        "rp2",
        "--redirect-uri",
        "http://rp.example/cb",
    ]);
    assert!(err.contains("client.uri"), "{err}");
    let err = env.err(&[
        "client",
        "create",
        "--client-id",
        "rp2",
        "--redirect-uri",
        "https://rp.example/cb",
        "--scope",
        "openid email",
    ]);
    assert!(err.contains("client.scope"), "{err}");
    let err = env.err(&[
        "client",
        "create",
        "--client-id",
        "rp2",
        "--redirect-uri",
        "https://rp.example/cb",
        "--signing-alg",
        "HS256",
    ]);
    assert!(err.contains("client.signing_alg"), "{err}");
}

#[test]
fn sqlite_institutions_operators_and_clients() {
    institutions_story(&Env::sqlite());
}

#[test]
fn postgres_institutions_operators_and_clients() {
    if let Some(env) = Env::postgres() {
        institutions_story(&env);
    }
}

#[test]
fn unknown_options_and_bad_configuration_are_refused() {
    let env = Env::sqlite();
    let out = env.run(
        &["client", "create", "--client-id", "x", "--colour", "red"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--colour"));

    let out = Command::new(env!("CARGO_BIN_EXE_idp"))
        .arg("migrate")
        .env("SEKIMORI__SERVER__BIND", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.bind"));

    let missing = env.dir.path().join("missing.toml");
    let err = env.err(&["--config", missing.to_str().unwrap(), "migrate"]);
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let mut env = Env::sqlite();
    env.database_url = "postgres://postgres@127.0.0.1:1/none".into();
    let err = env.err(&[
        "institution",
        "create",
        "--code",
        "1312345678",
        "--name",
        "x",
        "--master-id",
        "m1",
        "--master-reset-id",
        "r1",
    ]);
    assert!(err.contains("cannot open the database"), "{err}");
    env.database_url = "sqlite://x".into();
}

#[test]
fn policy_commands_print_a_verdict() {
    let env = Env::sqlite();
    let out = env.run(
        &["policy", "check-password", "--user-id", "taro"],
        Some("abcd1234\n"),
    );
    assert!(out.status.success());
    let verdict = json_line(&out);
    assert_eq!(verdict["ok"], false);
    let rules: Vec<&str> = verdict["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"password.classes"), "{rules:?}");
    assert!(verdict["violations"][0]["message_ja"].as_str().is_some());

    let out = env.run(
        &["policy", "check-password", "--user-id", "taro", "--current"],
        Some("Sekimori#29x\nSekimori#29x\n"),
    );
    let rules = json_line(&out)["violations"].to_string();
    assert!(rules.contains("password.same_as_current"), "{rules}");

    let out = env.run(&["policy", "check-password"], Some("Sekimori#29x\n"));
    assert_eq!(json_line(&out)["ok"], true);

    let mut child = Command::new(env!("CARGO_BIN_EXE_idp"))
        .args(["policy", "check-password"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&[0xff, 0xfe, b'\n'])
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));

    let ok = env.ok(&[
        "policy",
        "check-user-id",
        "--account-type",
        "web_api",
        "--institution-code",
        "1342345678",
        "--user-id",
        "A1api",
    ]);
    assert_eq!(ok["ok"], true, "{ok}");
    let bad = env.ok(&[
        "policy",
        "check-user-id",
        "--account-type",
        "web_api",
        "--institution-code",
        "1312345678",
        "--user-id",
        "A1api",
    ]);
    assert_eq!(bad["ok"], false, "{bad}");
    let bad = env.ok(&[
        "policy",
        "check-user-id",
        "--account-type",
        "general",
        "--institution-code",
        "99",
        "--user-id",
        "taro",
    ]);
    assert_eq!(
        bad["violations"][0]["rule"], "institution_code.format",
        "{bad}"
    );
    let out = env.run(
        &[
            "policy",
            "check-user-id",
            "--account-type",
            "superuser",
            "--institution-code",
            "1312345678",
            "--user-id",
            "x1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}
