//! ID/password notices end to end (SPEC §9, §12 [000 §5]): the real server prints PDFs over
//! HTTP, and `pdftotext` (poppler-utils, installed by `scripts/pdf-tools/install`) reads them
//! back the way a person's PDF viewer would: every field, the exact initial password, the
//! dates, the sign-in URL and one page per account. Then 出力済, the all-or-nothing selection,
//! refusals after a password change and after expiry (injected clock), permissions and audit.

use std::io::Write as _;
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use sekimori_tests::{ADMIN_NEW_PASSWORD, Backend, TestApp, spawn_with, test_settings};
use serde_json::{Value, json};
use store::{AuditFilter, AuditResult};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

const A: &str = "1312345678";
const PLATFORM: &str = "0000000000";
const INSTITUTION_NAME: &str = "せきもり内科クリニック";

/// `pdftotext -layout` of a PDF, pages separated by form feeds. `None` (the test is skipped with
/// a note) only outside CI when poppler-utils is not installed; under `CI=true` a missing tool
/// fails the test.
fn pdftotext(pdf: &[u8]) -> Option<String> {
    let child = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("pdftotext is required under CI=true ({e}); run scripts/pdf-tools/install")
        }
        Err(e) => {
            eprintln!("skipping the PDF text checks: pdftotext unavailable ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pdf)
        .expect("write the PDF to pdftotext");
    let output = child.wait_with_output().expect("pdftotext runs");
    assert!(output.status.success(), "pdftotext failed on the PDF");
    Some(String::from_utf8(output.stdout).expect("UTF-8 text"))
}

/// The pages of `pdftotext` output (it ends every page with a form feed).
fn pages(text: &str) -> Vec<&str> {
    text.split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect()
}

/// `2026年05月01日 10:30`: how a notice shows an instant (Asia/Tokyo), written out here
/// independently of the renderer.
fn shown(at: OffsetDateTime) -> String {
    let t = at.to_offset(UtcOffset::from_hms(9, 0, 0).unwrap());
    format!(
        "{:04}年{:02}月{:02}日 {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

struct World {
    app: TestApp,
    secret: String,
}

/// Tokens come from the real login pages; loopback is trusted so no second factor is asked
/// (tests/second_factor.rs covers that).
async fn world(backend: Backend) -> Option<World> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    let app = spawn_with(backend, dir, settings).await?;
    let secret = app.admin_client().await;
    Some(World { app, secret })
}

/// What an account creation returned.
struct Created {
    user_id: String,
    password: String,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

/// A raw admin response: status, content type, content disposition, cache control, body.
struct Raw {
    status: StatusCode,
    content_type: String,
    disposition: String,
    cache_control: String,
    body: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn assert_problem(&self, status: StatusCode, slug: &str) -> Value {
        let body = self.json();
        assert_eq!(self.status, status, "{body}");
        assert_eq!(self.content_type, "application/problem+json");
        assert_eq!(
            body["type"],
            format!("https://sekimori.example/problems/{slug}"),
            "{body}"
        );
        body
    }

    fn assert_pdf(&self, file_name_prefix: &str) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.json());
        assert_eq!(self.content_type, "application/pdf");
        assert!(
            self.disposition
                .starts_with(&format!("attachment; filename=\"{file_name_prefix}")),
            "{}",
            self.disposition
        );
        assert!(self.disposition.ends_with(".pdf\""), "{}", self.disposition);
        assert_eq!(self.cache_control, "no-store");
        assert!(self.body.starts_with(b"%PDF-"));
        // An embedded subset of the Japanese font: tens of kilobytes, not the 6 MB font.
        assert!(self.body.len() < 200_000, "{} bytes", self.body.len());
    }
}

impl World {
    async fn token(&self, institution: &str, user_id: &str, password: &str) -> String {
        self.app
            .admin_token(&self.secret, institution, user_id, password)
            .await
    }

    async fn raw(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Raw {
        let mut request = self
            .app
            .http
            .request(method, self.app.url(&format!("/admin/v1{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (content_type, disposition, cache_control) = (
            header("content-type"),
            header("content-disposition"),
            header("cache-control"),
        );
        let status = response.status();
        let body = response.bytes().await.expect("body").to_vec();
        Raw {
            status,
            content_type,
            disposition,
            cache_control,
            body,
        }
    }

    async fn json(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, _, body) = self.app.admin(token, method, path, body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
        body
    }

    async fn create(&self, token: &str, account_type: &str, user_id: &str, name: &str) -> Created {
        let body = self
            .json(
                token,
                Method::POST,
                &format!("/institutions/{A}/accounts"),
                Some(json!({
                    "account_type": account_type,
                    "user_id": user_id,
                    "name": name,
                    "name_kana": "ヤマダ ハナコ",
                    "usage_start": "2020-04-01",
                })),
            )
            .await;
        let expires_at =
            OffsetDateTime::parse(body["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
        Created {
            user_id: user_id.into(),
            password: body["initial_password"].as_str().unwrap().into(),
            // Human initial passwords are valid 30 days from issue [002 §2-2].
            issued_at: expires_at - Duration::days(30),
            expires_at,
        }
    }

    async fn notice_issued(&self, token: &str, user_id: &str) -> bool {
        let account = self
            .json(
                token,
                Method::GET,
                &format!("/institutions/{A}/accounts/{user_id}"),
                None,
            )
            .await;
        account["notice_issued"]
            .as_bool()
            .expect("notice_issued is a boolean")
    }

    async fn notice(&self, token: &str, user_id: &str) -> Raw {
        self.raw(
            token,
            Method::GET,
            &format!("/institutions/{A}/accounts/{user_id}/notice.pdf"),
            None,
        )
        .await
    }

    async fn selection(&self, token: &str, user_ids: &[&str]) -> Raw {
        self.raw(
            token,
            Method::POST,
            &format!("/institutions/{A}/notices"),
            Some(json!({ "user_ids": user_ids })),
        )
        .await
    }
}

/// Checks one page of a notice against the account it is for.
fn assert_page(page: &str, account: &Created, name: &str, sign_in_url: &str) {
    for expected in [
        "ID・パスワード発行通知書",
        INSTITUTION_NAME,
        A,
        name,
        &account.user_id,
        &account.password,
        &shown(account.issued_at),
        &shown(account.expires_at),
        sign_in_url,
    ] {
        assert!(
            page.contains(expected),
            "{expected:?} missing from the page:\n{page}"
        );
    }
}

async fn notices_story(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let sign_in_url = w.app.url("/login");
    let bootstrap = w.app.bootstrap.clone().expect("the bootstrap operator");
    let operator = w
        .token(PLATFORM, &bootstrap.user_id, &bootstrap.initial_password)
        .await;
    let created = w
        .json(
            &operator,
            Method::POST,
            "/institutions",
            Some(
                json!({"code": A, "name": INSTITUTION_NAME, "master_id": "mst01",
                        "master_reset_id": "rst01", "usage_start": "2020-04-01"}),
            ),
        )
        .await;
    let master_password = created["master"]["initial_password"].as_str().unwrap();

    // The operator who created the institution prints the master's notice (it issued that
    // password); nobody may print a notice that is not theirs to issue.
    let master_notice = w.notice(&operator, "mst01").await;
    master_notice.assert_pdf(&format!("notice-{A}-mst01"));
    let text = pdftotext(&master_notice.body);
    if let Some(text) = &text {
        assert_eq!(pages(text).len(), 1);
        assert!(text.contains(master_password), "{text}");
        assert!(text.contains("マスタアカウント"));
    }

    let master = w.token(A, "mst01", master_password).await;
    let manager_account = w.create(&master, "manager", "mgr01", "管理太郎").await;
    let manager = w.token(A, "mgr01", &manager_account.password).await;
    let staff: Vec<Created> = {
        let mut staff = Vec::new();
        for user_id in ["u0001", "u0002", "u0003", "u0004"] {
            staff.push(w.create(&manager, "general", user_id, "山田花子").await);
        }
        staff
    };

    // One account: every field, the exact password, the dates, the sign-in URL.
    assert!(!w.notice_issued(&manager, "u0001").await, "未出力 at first");
    let one = w.notice(&manager, "u0001").await;
    one.assert_pdf(&format!("notice-{A}-u0001"));
    if let Some(text) = pdftotext(&one.body) {
        let pages = pages(&text);
        assert_eq!(pages.len(), 1, "{text}");
        assert_page(pages[0], &staff[0], "山田花子", &sign_in_url);
        assert!(text.contains("一般アカウント"));
        assert!(text.contains("初回サインイン時に初期パスワードを新しいパスワードに変更"));
        for other in &staff[1..] {
            assert!(!text.contains(&other.password));
        }
    }
    assert!(
        w.notice_issued(&manager, "u0001").await,
        "出力済 after printing"
    );
    assert!(!w.notice_issued(&manager, "u0002").await);

    // A selection: one PDF, one page per account in the requested order; all become 出力済.
    // Printing an account again is allowed [000 §5: 未発行または発行済（初期パスワードの状態）].
    let batch = w.selection(&manager, &["u0003", "u0001", "u0002"]).await;
    batch.assert_pdf(&format!("notices-{A}-"));
    if let Some(text) = pdftotext(&batch.body) {
        let pages = pages(&text);
        assert_eq!(pages.len(), 3, "{text}");
        for (page, account) in pages.iter().zip([&staff[2], &staff[0], &staff[1]]) {
            assert_page(page, account, "山田花子", &sign_in_url);
        }
    }
    for user_id in ["u0001", "u0002", "u0003"] {
        assert!(w.notice_issued(&manager, user_id).await, "{user_id}");
    }
    assert!(!w.notice_issued(&manager, "u0004").await);

    // Staff accounts print nothing (SPEC §2: only the manager issues their passwords).
    let general = w.token(A, "u0001", &staff[0].password).await;
    let refused = w.notice(&general, "u0002").await;
    refused.assert_problem(StatusCode::FORBIDDEN, "forbidden");
    w.selection(&general, &["u0002"])
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");
    // Nor does the master for the manager's staff.
    w.notice(&master, "u0002")
        .await
        .assert_problem(StatusCode::FORBIDDEN, "forbidden");

    // u0001 signed in above and changed its password: its notice is gone for good.
    let changed = w.notice(&manager, "u0001").await;
    let problem = changed.assert_problem(StatusCode::CONFLICT, "notice-unavailable");
    assert!(
        problem["message_ja"].as_str().unwrap().contains("既に変更"),
        "{problem}"
    );
    assert!(problem["message_en"].as_str().unwrap().contains("changed"));
    assert_eq!(problem["errors"][0]["rule"], "notice.password_changed");
    assert!(
        !changed.body.windows(4).any(|w| w == b"%PDF"),
        "no PDF in a refusal"
    );

    // All or nothing: one unprintable or unknown account in a selection prints and marks none,
    // and the problem names each.
    let mixed = w.selection(&manager, &["u0004", "u0001", "nosuch"]).await;
    let problem = mixed.assert_problem(StatusCode::CONFLICT, "notice-unavailable");
    let message = problem["message_ja"].as_str().unwrap();
    assert!(
        message.contains("u0001") && message.contains("nosuch"),
        "{problem}"
    );
    assert!(!message.contains("u0004"), "{problem}");
    let errors = problem["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{problem}");
    assert_eq!(errors[0]["field"], "user_ids[1]");
    assert_eq!(errors[0]["rule"], "notice.password_changed");
    assert_eq!(errors[1]["field"], "user_ids[2]");
    assert_eq!(errors[1]["rule"], "notice.unknown_account");
    assert!(!w.notice_issued(&manager, "u0004").await, "nothing marked");

    // Selection limits: duplicates, empty and over 100 are refused before anything is read.
    let dup = w.selection(&manager, &["u0002", "u0003", "u0002"]).await;
    let problem = dup.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(problem["errors"][0]["rule"], "notice.selection_duplicate");
    let empty = w.selection(&manager, &[]).await;
    let problem = empty.assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(problem["errors"][0]["rule"], "notice.selection_empty");
    let many: Vec<String> = (0..101).map(|i| format!("x{i:04}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let problem = w
        .selection(&manager, &many)
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(problem["errors"][0]["rule"], "notice.selection_too_large");

    // Audit: one success per printed page, refusals as failures, never a password.
    let store = w.app.services().await.store;
    let events = store
        .list_audit(
            &AuditFilter {
                kind: Some("account.notice".into()),
                ..AuditFilter::default()
            },
            1000,
        )
        .await
        .unwrap();
    let successes: Vec<_> = events
        .iter()
        .filter(|e| e.event.result == AuditResult::Success)
        .collect();
    assert_eq!(successes.len(), 1 + 1 + 3, "master, u0001, then three");
    assert!(successes.iter().any(
        |e| e.event.target.as_deref() == Some("u0002") && e.event.actor == format!("{A}/mgr01")
    ));
    assert!(events.iter().any(|e| e.event.result == AuditResult::Failure
        && e.event.reason.as_deref() == Some("notice.password_changed")));
    assert!(events.iter().any(|e| e.event.result == AuditResult::Failure
        && e.event.reason.as_deref() == Some("forbidden")));
    let every_password: Vec<&str> = staff
        .iter()
        .map(|c| c.password.as_str())
        .chain([master_password, ADMIN_NEW_PASSWORD])
        .collect();
    let everything = format!("{events:?}");
    for password in every_password {
        assert!(
            !everything.contains(password),
            "a password in the audit log"
        );
    }

    // Thirty days after issue the initial passwords expire: no more notices (injected clock).
    w.app.clock.advance(Duration::days(30));
    let manager = w.token(A, "mgr01", ADMIN_NEW_PASSWORD).await;
    let expired = w.notice(&manager, "u0002").await;
    let problem = expired.assert_problem(StatusCode::CONFLICT, "notice-unavailable");
    assert_eq!(problem["errors"][0]["rule"], "notice.password_expired");
    let expiry = staff[1]
        .expires_at
        .to_offset(UtcOffset::from_hms(9, 0, 0).unwrap());
    let expiry = format!(
        "{:04}-{:02}-{:02} {:02}:{:02} JST",
        expiry.year(),
        u8::from(expiry.month()),
        expiry.day(),
        expiry.hour(),
        expiry.minute()
    );
    assert!(
        problem["message_ja"].as_str().unwrap().contains(&expiry),
        "{problem}"
    );
    w.selection(&manager, &["u0004"])
        .await
        .assert_problem(StatusCode::CONFLICT, "notice-unavailable");

    // A reset issues a new initial password: printable again, 未出力 until printed.
    let reset = w
        .json(
            &manager,
            Method::POST,
            &format!("/institutions/{A}/accounts/u0002/password-reset"),
            None,
        )
        .await;
    assert!(
        !w.notice_issued(&manager, "u0002").await,
        "a reset clears 出力済"
    );
    let again = w.notice(&manager, "u0002").await;
    again.assert_pdf(&format!("notice-{A}-u0002"));
    if let Some(text) = pdftotext(&again.body) {
        assert!(text.contains(reset["initial_password"].as_str().unwrap()));
        assert!(
            !text.contains(&staff[1].password),
            "the old password is gone"
        );
    }
    assert!(w.notice_issued(&manager, "u0002").await);
}

#[tokio::test]
async fn notices_on_sqlite() {
    notices_story(Backend::Sqlite).await;
}

#[tokio::test]
async fn notices_on_postgres() {
    notices_story(Backend::Postgres).await;
}
