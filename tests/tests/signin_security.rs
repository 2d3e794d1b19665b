//! Sign-in security end to end (SPEC §4-§6): lockout and its exactness across two nodes, the
//! 30-day initial password, forced and self-service password changes, usage dates, login hours,
//! rate limits, `/account`, sign-out, and rehashing when the argon2 parameters change.
//!
//! These stories are about the password step, so the servers here trust the loopback network and
//! ask for no second factor (tests/second_factor.rs covers that step, on the default settings).

use reqwest::StatusCode;
use sekimori_tests::{Backend, Browser, Page, TestApp, spawn_with, test_settings};
use store::AuditFilter;
use time::Duration;

const NEW_PASSWORD: &str = "Sekimori#29x";

/// The embedded default, trusting loopback so no second factor is asked for.
fn password_only(dir: &tempfile::TempDir) -> idp::Settings {
    let mut settings = test_settings(dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    settings
}

async fn spawn_password_only() -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let settings = password_only(&dir);
    spawn_with(Backend::Sqlite, dir, settings).await
}

/// Opens `/login` (the self-service sign-in) and posts the form.
async fn login(
    app: &TestApp,
    browser: &mut Browser,
    code: &str,
    user: &str,
    password: &str,
) -> Page {
    let page = browser.get(&app.url("/login")).await;
    assert_eq!(page.status, StatusCode::OK);
    browser.login(&app.base, &page, code, user, password).await
}

/// Signs the master in for the first time and sets `NEW_PASSWORD`; leaves the browser on /account.
async fn first_login(app: &TestApp, browser: &mut Browser, code: &str, initial: &str) {
    let change = login(app, browser, code, "mst01", initial).await;
    assert!(
        change.field("pending").is_some(),
        "forced change expected: {}",
        change.body
    );
    let done = browser
        .change_password(&app.base, &change, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(
        done.location().as_deref(),
        Some("/account"),
        "{}",
        done.body
    );
}

async fn reasons(app: &TestApp) -> Vec<String> {
    let services = app.services().await;
    let filter = AuditFilter {
        kind: Some("login.failure".into()),
        ..Default::default()
    };
    let events = services.store.list_audit(&filter, 1000).await.unwrap();
    events.into_iter().filter_map(|e| e.event.reason).collect()
}

async fn account(app: &TestApp, code: &str, user: &str) -> store::Account {
    let services = app.services().await;
    let code = policies::InstitutionCode::parse(code).unwrap();
    services
        .store
        .find_account(&code, user)
        .await
        .unwrap()
        .expect("account")
}

fn failed(page: &Page) -> bool {
    page.status == StatusCode::UNAUTHORIZED && page.body.contains("ログインできませんでした")
}

#[tokio::test]
async fn five_wrong_passwords_lock_and_a_success_resets_the_count() {
    // Rate limits run on real time, not the test clock; keep them out of this story.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.limits.login_per_account_per_minute = 1000;
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let code = "1311111111";
    let created = app.institution(code).await;
    let mut browser = Browser::new();
    first_login(&app, &mut browser, code, &created.master.initial_password).await;

    // Four failures, then a success, then four more: the count restarts, nothing locks.
    for _ in 0..4 {
        assert!(failed(
            &login(&app, &mut Browser::new(), code, "mst01", "Wrong#Pass99").await
        ));
    }
    let ok = login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(account(&app, code, "mst01").await.failed_attempts, 0);
    app.clock.advance(Duration::minutes(2));
    for _ in 0..4 {
        assert!(failed(
            &login(&app, &mut Browser::new(), code, "mst01", "Wrong#Pass99").await
        ));
    }
    assert_eq!(
        account(&app, code, "mst01").await.lock,
        policies::lockout::LockState::None
    );

    // The fifth consecutive failure locks; then even the right password fails, generically.
    app.clock.advance(Duration::minutes(2));
    assert!(failed(
        &login(&app, &mut Browser::new(), code, "mst01", "Wrong#Pass99").await
    ));
    let locked = account(&app, code, "mst01").await;
    assert_eq!(locked.lock, policies::lockout::LockState::Failures);
    let page = login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await;
    assert!(
        failed(&page),
        "a locked account fails like any other failure"
    );

    // The lock ended the session the first browser had.
    assert_eq!(
        browser
            .get(&app.url("/account"))
            .await
            .location()
            .as_deref(),
        Some("/login")
    );
    let reasons = reasons(&app).await;
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "wrong_password_locked")
            .count(),
        1
    );
    assert_eq!(reasons.last().map(String::as_str), Some("locked"));
    let services = app.services().await;
    let locks = services
        .store
        .list_audit(
            &AuditFilter {
                kind: Some("account.lock".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(locks.len(), 1);

    // Locks survive a restart and never lapse by themselves by default.
    let app = app.stop().await.restart().await;
    app.clock.advance(Duration::days(3));
    assert!(failed(
        &login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await
    ));
}

#[tokio::test]
async fn an_optional_auto_unlock_lapses_failure_locks() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.lockout.threshold = 3;
    settings.lockout.auto_unlock_after = Some(Duration::minutes(30));
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let code = "1311111112";
    let created = app.institution(code).await;
    first_login(
        &app,
        &mut Browser::new(),
        code,
        &created.master.initial_password,
    )
    .await;
    for _ in 0..3 {
        login(&app, &mut Browser::new(), code, "mst01", "Wrong#Pass99").await;
    }
    assert!(failed(
        &login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await
    ));
    app.clock.advance(Duration::minutes(29));
    assert!(failed(
        &login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await
    ));
    app.clock.advance(Duration::minutes(2));
    let page = login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "the lock lapsed after 30 minutes"
    );
    assert_eq!(account(&app, code, "mst01").await.failed_attempts, 0);
}

/// Two IdP nodes on one PostgreSQL database and one Redis: parallel wrong passwords are counted
/// exactly, and the threshold locks exactly once.
#[tokio::test]
async fn failures_are_counted_exactly_across_two_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.lockout.threshold = 10;
    settings.limits.login_per_account_per_minute = 1000;
    if let Ok(redis) = std::env::var("TEST_REDIS_URL") {
        settings.redis.url = redis;
    } else if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true but TEST_REDIS_URL is not set");
    }
    let Some(a) = spawn_with(Backend::Postgres, dir, settings).await else {
        return;
    };
    let b = a.second_node().await;
    let code = "1311111113";
    let created = a.institution(code).await;
    first_login(
        &a,
        &mut Browser::new(),
        code,
        &created.master.initial_password,
    )
    .await;

    // Nine wrong passwords at once, split over both nodes: exactly nine counted, no lock.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..9 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        tasks.spawn(async move {
            let mut browser = Browser::new();
            let page = browser.get(&format!("{base}/login")).await;
            browser
                .login(&base, &page, code, "mst01", "Wrong#Pass99")
                .await
                .status
        });
    }
    while let Some(status) = tasks.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let counted = account(&a, code, "mst01").await;
    assert_eq!(counted.failed_attempts, 9);
    assert_eq!(counted.lock, policies::lockout::LockState::None);

    // The tenth, on the other node, locks.
    assert!(failed(
        &login(&b, &mut Browser::new(), code, "mst01", "Wrong#Pass99").await
    ));
    assert_eq!(
        account(&a, code, "mst01").await.lock,
        policies::lockout::LockState::Failures
    );
    assert!(failed(
        &login(&a, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await
    ));
}

#[tokio::test]
async fn a_human_initial_password_expires_after_30_days() {
    let Some(app) = spawn_password_only().await else {
        return;
    };
    let code = "1311111114";
    let created = app.institution(code).await;
    app.clock.advance(Duration::days(29));
    let page = login(
        &app,
        &mut Browser::new(),
        code,
        "mst01",
        &created.master.initial_password,
    )
    .await;
    assert!(
        page.field("pending").is_some(),
        "day 29: still valid, the change is forced"
    );
    app.clock.advance(Duration::days(1));
    let page = login(
        &app,
        &mut Browser::new(),
        code,
        "rst01",
        &created.master_reset.initial_password,
    )
    .await;
    assert!(failed(&page), "day 30: refused");
    assert_eq!(
        reasons(&app).await.last().map(String::as_str),
        Some("initial_password_expired")
    );
}

#[tokio::test]
async fn forced_change_refuses_weak_reused_and_mismatched_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.password.history_depth = 2;
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let code = "1311111115";
    let created = app.institution(code).await;
    let initial = created.master.initial_password.clone();
    let mut browser = Browser::new();
    let change = login(&app, &mut browser, code, "mst01", &initial).await;
    assert!(
        browser.cookie("sekimori_session").is_none(),
        "no session before the change"
    );

    for (new, confirm, expected) in [
        (initial.as_str(), initial.as_str(), "現在と同じ"),
        ("mst01", "mst01", "ユーザIDと同じ"),
        ("Sekimori#29x", "Sekimori#29y", "一致しません"),
        ("abc", "abc", "8"),
    ] {
        let page = browser
            .change_password(&app.base, &change, new, confirm)
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{new}");
        assert!(page.body.contains(expected), "{new}: {}", page.body);
        assert!(browser.cookie("sekimori_session").is_none());
    }
    let done = browser
        .change_password(&app.base, &change, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert_eq!(done.location().as_deref(), Some("/account"));

    // Self-service changes: the last two passwords may not come back.
    let account_page = browser.get(&app.url("/account")).await;
    let second = "Kanri#Pass48";
    let page = change_own(&mut browser, &app, &account_page, NEW_PASSWORD, second).await;
    assert_eq!(page.location().as_deref(), Some("/account?changed=1"));
    let account_page = browser.get(&app.url("/account?changed=1")).await;
    assert!(account_page.body.contains("パスワードを変更しました"));
    let page = change_own(&mut browser, &app, &account_page, second, NEW_PASSWORD).await;
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.body
    );
    assert!(page.body.contains("過去"), "{}", page.body);
}

async fn change_own(
    browser: &mut Browser,
    app: &TestApp,
    account_page: &Page,
    current: &str,
    new: &str,
) -> Page {
    let csrf = account_page.field("csrf_token").expect("csrf on /account");
    browser
        .post(
            &app.url("/account/password"),
            &[
                ("csrf_token", &csrf),
                ("current_password", current),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
        )
        .await
}

#[tokio::test]
async fn account_page_changes_the_password_ends_other_sessions_and_signs_out() {
    let Some(app) = spawn_password_only().await else {
        return;
    };
    let code = "1311111116";
    let created = app.institution(code).await;

    // Without a session, /account sends the browser to the login page.
    let mut browser = Browser::new();
    assert_eq!(
        browser
            .get(&app.url("/account"))
            .await
            .location()
            .as_deref(),
        Some("/login")
    );
    first_login(&app, &mut browser, code, &created.master.initial_password).await;
    let mut other = Browser::new();
    login(&app, &mut other, code, "mst01", NEW_PASSWORD).await;
    assert_eq!(other.get(&app.url("/account")).await.status, StatusCode::OK);

    let page = browser.get(&app.url("/account")).await;
    assert!(page.body.contains("mst01") && page.body.contains("最近のログイン"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self';"), "{csp}");
    let wrong = change_own(&mut browser, &app, &page, "Wrong#Pass99", "Kanri#Pass48").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("現在のパスワードが正しくありません"));
    let done = change_own(&mut browser, &app, &page, NEW_PASSWORD, "Kanri#Pass48").await;
    assert_eq!(done.location().as_deref(), Some("/account?changed=1"));
    assert_eq!(
        browser.get(&app.url("/account")).await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert_eq!(
        other.get(&app.url("/account")).await.location().as_deref(),
        Some("/login"),
        "the other one ended"
    );

    // Sign out: the cookie is cleared, the session is gone, and the end is audited.
    let page = browser.get(&app.url("/account")).await;
    let csrf = page.field("csrf_token").unwrap();
    let out = browser
        .post(&app.url("/logout"), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, StatusCode::OK);
    assert!(out.body.contains("ログアウトしました"));
    assert!(browser.cookie("sekimori_session").is_none());
    let services = app.services().await;
    let ended = services
        .store
        .list_audit(
            &AuditFilter {
                kind: Some("session.end".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    let changes = services
        .store
        .list_audit(
            &AuditFilter {
                kind: Some("password.change".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        changes.len(),
        2,
        "the forced change and the self-service change"
    );
    for event in services
        .store
        .list_audit(&AuditFilter::default(), 1000)
        .await
        .unwrap()
    {
        let row = format!("{:?}", event.event);
        assert!(
            !row.contains(NEW_PASSWORD) && !row.contains("Kanri#Pass48"),
            "a password reached the audit log"
        );
    }
}

#[tokio::test]
async fn usage_dates_and_login_hours_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.login_hours = Some(
        policies::usage::LoginHours::every_day(
            time::macros::time!(9:00),
            time::macros::time!(22:00),
        )
        .unwrap(),
    );
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    // 10:00 in Tokyo is 01:00 UTC.
    let today = service::Clock::now(&app.clock).date();
    app.clock.set(today.with_hms(1, 0, 0).unwrap().assume_utc());
    let code = "1311111117";
    let created = app.institution(code).await;
    let page = login(
        &app,
        &mut Browser::new(),
        code,
        "mst01",
        &created.master.initial_password,
    )
    .await;
    assert!(page.field("pending").is_some(), "inside the hours");

    // 23:00 in Tokyo is 14:00 UTC.
    app.clock
        .set(today.with_hms(14, 0, 0).unwrap().assume_utc());
    let page = login(
        &app,
        &mut Browser::new(),
        code,
        "mst01",
        &created.master.initial_password,
    )
    .await;
    assert!(failed(&page));
    assert_eq!(
        reasons(&app).await.last().map(String::as_str),
        Some("usage.login_hours")
    );

    // An account whose usage starts tomorrow cannot sign in yet.
    app.clock.set(today.with_hms(1, 0, 0).unwrap().assume_utc());
    let services = app.services().await;
    let later = services
        .provisioner
        .create_institution(
            &service::provisioning::Actor::cli(),
            service::provisioning::NewInstitutionInput {
                code: "1311111118",
                name: "翌日開始クリニック",
                master_id: "mst01",
                master_reset_id: "rst01",
                usage_start: Some(
                    policies::usage::jst_date(service::Clock::now(&app.clock)) + Duration::days(1),
                ),
            },
        )
        .await
        .unwrap();
    let page = login(
        &app,
        &mut Browser::new(),
        "1311111118",
        "mst01",
        &later.master.initial_password,
    )
    .await;
    assert!(failed(&page));
    assert!(reasons(&app).await.iter().any(|r| r == "usage.not_started"));
}

#[tokio::test]
async fn bursts_of_sign_ins_get_a_polite_429() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.limits.login_per_account_per_minute = 3;
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let code = "1311111119";
    app.institution(code).await;
    let mut browser = Browser::new();
    for _ in 0..3 {
        assert_eq!(
            login(&app, &mut browser, code, "mst01", "Wrong#Pass99")
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let page = login(&app, &mut browser, code, "mst01", "Wrong#Pass99").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        page.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert!(page.body.contains("しばらくお待ちください"));
    // The limited attempt never reached the password check: three failures counted, not four.
    assert_eq!(account(&app, code, "mst01").await.failed_attempts, 3);
}

#[tokio::test]
async fn stronger_hashing_parameters_rehash_at_the_next_sign_in() {
    let Some(app) = spawn_password_only().await else {
        return;
    };
    let code = "1311111120";
    let created = app.institution(code).await;
    first_login(
        &app,
        &mut Browser::new(),
        code,
        &created.master.initial_password,
    )
    .await;
    assert!(
        account(&app, code, "mst01")
            .await
            .credential
            .hash
            .contains("m=19456,t=2,p=1")
    );

    let stopped = app.stop().await;
    let mut settings = stopped.settings.clone();
    settings.password_hashing.iterations = 3;
    let app = spawn_with(Backend::Sqlite, stopped.dir, settings)
        .await
        .unwrap();
    let page = login(&app, &mut Browser::new(), code, "mst01", NEW_PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        account(&app, code, "mst01")
            .await
            .credential
            .hash
            .contains("m=19456,t=3,p=1")
    );
}

fn admin_audit(kind: &str, code: &str) -> store::NewAuditEvent {
    store::NewAuditEvent {
        at: time::OffsetDateTime::now_utc(),
        kind: kind.into(),
        actor_account_id: None,
        actor: "test".into(),
        target_account_id: None,
        target: None,
        institution_code: Some(code.into()),
        ip: None,
        user_agent: None,
        result: store::AuditResult::Success,
        reason: None,
    }
}

#[tokio::test]
async fn an_institution_threshold_and_a_disabled_account_apply_at_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.limits.login_per_account_per_minute = 1000;
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let code = "1311111121";
    let created = app.institution(code).await;
    first_login(
        &app,
        &mut Browser::new(),
        code,
        &created.master.initial_password,
    )
    .await;
    let services = app.services().await;
    let institution = policies::InstitutionCode::parse(code).unwrap();
    let settings = store::InstitutionSettings {
        lockout_threshold: Some(3),
        ..Default::default()
    };
    let now = service::Clock::now(&app.clock);
    services
        .store
        .set_institution_settings(
            &institution,
            &settings,
            now,
            admin_audit("institution.settings", code),
        )
        .await
        .unwrap();

    // Three failures lock under the institution's own threshold (the deployment's is five).
    for _ in 0..3 {
        assert!(failed(
            &login(&app, &mut Browser::new(), code, "mst01", "Wrong#Pass99").await
        ));
    }
    assert_eq!(
        account(&app, code, "mst01").await.lock,
        policies::lockout::LockState::Failures
    );

    // A disabled account fails generically, with the reason in the audit log.
    let reset = account(&app, code, "rst01").await;
    let fields = store::AccountFields {
        name: reset.name.clone(),
        name_kana: reset.name_kana.clone(),
        enabled: false,
        usage_start: reset.usage_start,
        usage_end: reset.usage_end,
        second_factor: reset.second_factor.clone(),
    };
    services
        .store
        .change_account(
            reset.id,
            store::AccountChange::Fields(fields),
            Some(now),
            admin_audit("account.update", code),
        )
        .await
        .unwrap();
    let page = login(
        &app,
        &mut Browser::new(),
        code,
        "rst01",
        &created.master_reset.initial_password,
    )
    .await;
    assert!(failed(&page));
    assert_eq!(
        reasons(&app).await.last().map(String::as_str),
        Some("disabled")
    );
}

#[tokio::test]
async fn the_token_endpoint_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = password_only(&dir);
    settings.limits.token_per_client_per_minute = 2;
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let secret = app
        .client("rp", "https://rp.example/cb", false, "ES256")
        .await
        .unwrap();
    let post = || {
        app.http
            .post(app.url("/token"))
            .basic_auth("rp", Some(secret.clone()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "unknown"),
                ("redirect_uri", "https://rp.example/cb"),
            ])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(post().await.unwrap().status(), StatusCode::BAD_REQUEST);
    }
    let limited = post().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    assert_eq!(limited.headers()["cache-control"], "no-store");
}
