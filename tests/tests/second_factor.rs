//! The second factor end to end (SPEC §7, §10, §12): enrollment during sign-in by e-mail through
//! a real SMTP server (aiosmtpd), by SMS through moto's SNS, by voice through the local
//! SendVoiceMessage server; single use, lockout, expiry, cooldown and caps, delivery failures,
//! trusted networks and the institution setting, machine accounts, `/account` changes and the
//! forgotten password. Codes are read where a person would find them: the mailbox, the SMS
//! provider, the call, or the development outbox.

use std::sync::Arc;

use reqwest::StatusCode;
use sekimori_tests::peers::{self, Peer};
use sekimori_tests::{
    Backend, Browser, Page, TestApp, spawn_app, spawn_with, spawn_with_delivery, test_settings,
};
use serde_json::Value;
use service::authentication::{Authenticator, RequestContext, SignIn};
use store::{
    AuditFilter, AuditResult, Credential, InstitutionSettings, NewAccount, NewAuditEvent,
    SecondFactor, SecondFactorMethod,
};
use time::Duration;

const CLINIC: &str = "1312345678";
const NEW_PASSWORD: &str = "Sekimori#29x";
const STAFF_PASSWORD: &str = "Hokkyoku#27q";

/// Signs the master in at `/login` with its initial password and sets [`NEW_PASSWORD`]; returns
/// the page that follows (enrollment, since the master has no destination yet).
async fn master_past_password(app: &TestApp, browser: &mut Browser) -> Page {
    let created = app.institution(CLINIC).await;
    let login = browser.get(&app.url("/login")).await;
    let change = browser
        .login(
            &app.base,
            &login,
            CLINIC,
            "mst01",
            &created.master.initial_password,
        )
        .await;
    assert!(change.field("pending").is_some(), "{}", change.body);
    let page = browser
        .change_password(&app.base, &change, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert!(browser.cookie("sekimori_session").is_none());
    page
}

/// Posts the enrollment form on `page`.
async fn enroll(
    app: &TestApp,
    browser: &mut Browser,
    page: &Page,
    method: &str,
    destination: &str,
) -> Page {
    assert!(
        page.body.contains("二要素認証の登録"),
        "enrollment page expected: {}",
        page.body
    );
    let csrf = page.field("csrf_token").unwrap();
    let step = page.field("step").unwrap();
    let field = if method == "email" { "email" } else { "phone" };
    browser
        .post(
            &app.url("/login/second-factor/enroll"),
            &[
                ("csrf_token", &csrf),
                ("step", &step),
                ("method", method),
                (field, destination),
            ],
        )
        .await
}

/// A `general` account created straight in the store, as an admin would register it: a
/// changed password and, when given, a first destination marked verified (SPEC §7).
async fn staff(app: &TestApp, user_id: &str, factor: Option<SecondFactor>) -> uuid::Uuid {
    let services = app.services().await;
    let now = service::Clock::now(&app.clock);
    let hash = services
        .provisioner
        .hasher
        .hash(STAFF_PASSWORD.into())
        .await
        .unwrap();
    let code = policies::InstitutionCode::parse(CLINIC).unwrap();
    let id = uuid::Uuid::now_v7();
    services
        .store
        .create_account(
            NewAccount {
                id,
                institution_code: code.clone(),
                account_type: policies::AccountType::General,
                user_id: user_id.into(),
                name: "関守花子".into(),
                name_kana: "セキモリハナコ".into(),
                usage_start: policies::usage::jst_date(now) - Duration::days(1),
                usage_end: policies::usage::FAR_FUTURE,
                second_factor: factor,
                credential: Credential {
                    hash,
                    initial_issued_at: None,
                    initial_sealed: None,
                    changed_at: Some(now),
                },
                created_by: None,
                created_at: now,
            },
            NewAuditEvent {
                at: now,
                kind: "account.create".into(),
                actor_account_id: None,
                actor: "test".into(),
                target_account_id: Some(id),
                target: Some(user_id.into()),
                institution_code: Some(CLINIC.into()),
                ip: None,
                user_agent: None,
                result: AuditResult::Success,
                reason: None,
            },
        )
        .await
        .unwrap();
    id
}

fn sms_factor(phone: &str) -> Option<SecondFactor> {
    Some(SecondFactor {
        method: SecondFactorMethod::Sms,
        email: None,
        phone: Some(phone.into()),
        verified: true,
    })
}

async fn staff_login(app: &TestApp, browser: &mut Browser, user_id: &str, password: &str) -> Page {
    let login = browser.get(&app.url("/login")).await;
    browser
        .login(&app.base, &login, CLINIC, user_id, password)
        .await
}

/// The `amr` of the browser's session, read through the store.
async fn session_amr(app: &TestApp, browser: &Browser) -> Vec<String> {
    let value = browser
        .cookie("sekimori_session")
        .expect("a session cookie");
    let services = app.services().await;
    services
        .store
        .get_session(&idp::oidc::hash_handle(value))
        .await
        .unwrap()
        .expect("the session is stored")
        .amr
}

async fn audit(app: &TestApp, kind: &str) -> Vec<store::AuditEvent> {
    app.services()
        .await
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
}

async fn account(app: &TestApp, user_id: &str) -> store::Account {
    let code = policies::InstitutionCode::parse(CLINIC).unwrap();
    app.services()
        .await
        .store
        .find_account(&code, user_id)
        .await
        .unwrap()
        .expect("account")
}

/// No code, secret or password ever reaches the audit log.
async fn assert_audit_has_no(app: &TestApp, secrets: &[&str]) {
    let all = app
        .services()
        .await
        .store
        .list_audit(&AuditFilter::default(), 10_000)
        .await
        .unwrap();
    let text = format!("{all:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} found in the audit log");
    }
}

#[tokio::test]
async fn email_enrollment_through_smtp_and_the_code_works_once() {
    let Some(python) = peers::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let smtp = Peer::smtp(&python, &maildir, dir.path());
    let mut settings = test_settings(&dir);
    settings.delivery.email = delivery::Channel::Smtp;
    settings.delivery.smtp.host = "127.0.0.1".into();
    settings.delivery.smtp.port = smtp.port;
    settings.delivery.smtp.from = "関守 <no-reply@sekimori.example.jp>".into();
    settings.delivery.smtp.tls = delivery::SmtpTls::None;
    let app = spawn_with(Backend::Sqlite, dir, settings).await.unwrap();
    let mut browser = Browser::new();

    let page = master_past_password(&app, &mut browser).await;
    // A foreign or malformed destination is refused with a clear message, nothing is sent.
    let refused = enroll(&app, &mut browser, &page, "email", "not an address").await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("メールアドレス"), "{}", refused.body);
    let code_page = enroll(
        &app,
        &mut browser,
        &refused,
        "email",
        "Taro.Yamada@Clinic.Example.JP",
    )
    .await;
    assert_eq!(code_page.status, StatusCode::OK, "{}", code_page.body);
    assert!(
        code_page.body.contains("T***@clinic.example.jp"),
        "{}",
        code_page.body
    );

    let mails = peers::read_maildir(&python, &maildir);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["to"], "Taro.Yamada@clinic.example.jp");
    assert_eq!(mails[0]["subject"], "【関守】認証コードのお知らせ");
    let body = mails[0]["body"].as_str().unwrap();
    assert!(body.contains("5分間"), "{body}");
    let code = peers::find_code(body, 6).expect("a 6-digit code in the mail");
    assert!(app.outbox().is_empty(), "SMTP, not the outbox");

    // Nothing is saved before the code is confirmed.
    assert_eq!(account(&app, "mst01").await.second_factor, None);
    let done = browser.submit_code(&app.base, &code_page, &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location().as_deref(), Some("/account"));
    assert_eq!(session_amr(&app, &browser).await, ["pwd", "otp", "mfa"]);
    assert_eq!(
        account(&app, "mst01").await.second_factor,
        Some(SecondFactor {
            method: SecondFactorMethod::Email,
            email: Some("Taro.Yamada@clinic.example.jp".into()),
            phone: None,
            verified: true,
        })
    );

    // The same code again (a replayed form) is refused.
    let mut other = Browser::new();
    let replay = other.submit_code(&app.base, &code_page, &code).await;
    assert_eq!(replay.status, StatusCode::FORBIDDEN, "no CSRF cookie");
    let replay = browser.submit_code(&app.base, &code_page, &code).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.body);

    // The next sign-in (after the resend cooldown) sends a code to the registered address, no
    // enrollment.
    app.clock.advance(Duration::seconds(61));
    let mut browser = Browser::new();
    let page = staff_login(&app, &mut browser, "mst01", NEW_PASSWORD).await;
    assert!(page.body.contains("name=\"code\""), "{}", page.body);
    assert_eq!(peers::read_maildir(&python, &maildir).len(), 2);
    assert_audit_has_no(&app, &[&code, NEW_PASSWORD]).await;
}

#[tokio::test]
async fn sms_enrollment_through_moto() {
    let Some(python) = peers::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let moto = Peer::moto(&python, dir.path());
    let mut settings = test_settings(&dir);
    settings.delivery.sms = delivery::Channel::Sns;
    settings.delivery.sns.region = "ap-northeast-1".into();
    settings.delivery.sns.endpoint = moto.url();
    let channels = delivery::Channels::build_with(
        &settings.delivery,
        &settings.outbox.path,
        false,
        peers::test_credentials(),
    )
    .unwrap();
    let app = spawn_with_delivery(Backend::Sqlite, dir, settings, Arc::new(channels))
        .await
        .unwrap();
    let mut browser = Browser::new();
    let page = master_past_password(&app, &mut browser).await;

    // Japanese numbers only; SMS only to mobiles.
    let foreign = enroll(&app, &mut browser, &page, "sms", "+1 206 555 0100").await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(foreign.body.contains("+81"), "{}", foreign.body);
    let fixed = enroll(&app, &mut browser, &foreign, "sms", "03-1234-5678").await;
    assert_eq!(fixed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let code_page = enroll(&app, &mut browser, &fixed, "sms", "090-1234-5678").await;
    assert_eq!(code_page.status, StatusCode::OK, "{}", code_page.body);
    assert!(
        code_page.body.contains("090-****-5678"),
        "{}",
        code_page.body
    );

    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sms = data["sns"]["SMS"].as_array().expect("sns.SMS");
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["phone_number"], "+819012345678");
    let text = sms[0]["message"].as_str().unwrap();
    let code = peers::find_code(text, 6).unwrap();
    assert_eq!(
        text,
        format!("関守 認証コード: {code}（5分間有効）他人に教えないでください。")
    );

    let done = browser.submit_code(&app.base, &code_page, &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(session_amr(&app, &browser).await, ["pwd", "sms", "mfa"]);
    let factor = account(&app, "mst01").await.second_factor.unwrap();
    assert_eq!(factor.phone.as_deref(), Some("+819012345678"));
    assert_eq!(factor.method, SecondFactorMethod::Sms);
}

#[tokio::test]
async fn voice_enrollment_through_the_voice_server() {
    let Some(python) = peers::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let voice = Peer::voice(&python, dir.path());
    let mut settings = test_settings(&dir);
    settings.delivery.voice = delivery::Channel::Voice;
    settings.delivery.voice_provider.region = "ap-northeast-1".into();
    settings.delivery.voice_provider.endpoint = voice.url();
    settings.delivery.voice_provider.origination_identity = "+815012345678".into();
    let channels = delivery::Channels::build_with(
        &settings.delivery,
        &settings.outbox.path,
        false,
        peers::test_credentials(),
    )
    .unwrap();
    let app = spawn_with_delivery(Backend::Sqlite, dir, settings, Arc::new(channels))
        .await
        .unwrap();
    let mut browser = Browser::new();
    let page = master_past_password(&app, &mut browser).await;
    // A fixed line can take a call.
    let code_page = enroll(&app, &mut browser, &page, "voice", "(03) 1234-5678").await;
    assert_eq!(code_page.status, StatusCode::OK, "{}", code_page.body);

    let requests: Value = reqwest::get(format!("{}/requests", voice.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let requests = requests.as_array().unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let body = &requests[0]["body"];
    assert_eq!(body["DestinationPhoneNumber"], "+81312345678");
    assert_eq!(body["MessageBodyTextType"], "SSML");
    let ssml = body["MessageBody"].as_str().unwrap();
    let code = peers::find_code(ssml, 6).unwrap();
    assert_eq!(
        ssml.matches(&format!(r#"<say-as interpret-as="digits">{code}</say-as>"#))
            .count(),
        2,
        "{ssml}"
    );

    let done = browser.submit_code(&app.base, &code_page, &code).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(session_amr(&app, &browser).await, ["pwd", "tel", "mfa"]);
}

async fn wrong_codes_lock_the_account(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.institution(CLINIC).await;
    // An admin-registered, verified first destination: accepted as registered, no enrollment.
    let id = staff(&app, "nurse1", sms_factor("+819012345678")).await;
    let mut browser = Browser::new();
    let mut page = staff_login(&app, &mut browser, "nurse1", STAFF_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("090-****-5678"), "{}", page.body);
    let code = app.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=4 {
        page = browser.submit_code(&app.base, &page, wrong).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
        assert!(page.body.contains("認証コードが正しくありません"));
    }
    // The fifth wrong code reaches the lockout threshold: the generic sign-in failure.
    let locked_page = browser.submit_code(&app.base, &page, wrong).await;
    assert_eq!(locked_page.status, StatusCode::UNAUTHORIZED);
    assert!(
        locked_page.body.contains("ログインできませんでした"),
        "{}",
        locked_page.body
    );
    assert!(browser.cookie("sekimori_session").is_none());
    let locked = account(&app, "nurse1").await;
    assert_eq!(locked.lock, policies::LockState::Failures);
    assert_eq!(locked.id, id);

    // The right code and the right password no longer help, and say nothing more.
    let late = browser.submit_code(&app.base, &page, &code).await;
    assert_eq!(late.status, StatusCode::UNAUTHORIZED);
    assert!(late.body.contains("ログインできませんでした"));
    let again = staff_login(&app, &mut Browser::new(), "nurse1", STAFF_PASSWORD).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.body.contains("ログインできませんでした"));

    let failures = audit(&app, "second_factor.failure").await;
    let reasons: Vec<_> = failures
        .iter()
        .filter_map(|e| e.event.reason.clone())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| *r == "sign_in wrong_code")
            .count(),
        4
    );
    assert!(reasons.contains(&"sign_in wrong_code_locked".to_owned()));
    assert_eq!(audit(&app, "account.lock").await.len(), 1);
    assert_audit_has_no(&app, &[&code, STAFF_PASSWORD]).await;
}

#[tokio::test]
async fn sqlite_wrong_codes_lock_the_account() {
    wrong_codes_lock_the_account(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_wrong_codes_lock_the_account() {
    wrong_codes_lock_the_account(Backend::Postgres).await;
}

#[tokio::test]
async fn expiry_cooldown_and_daily_cap() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.institution(CLINIC).await;
    staff(&app, "nurse1", sms_factor("+819012345678")).await;
    let mut browser = Browser::new();
    let page = staff_login(&app, &mut browser, "nurse1", STAFF_PASSWORD).await;
    let first = app.last_code();

    // Five minutes later the code has expired.
    app.clock.advance(Duration::minutes(5));
    let expired = browser.submit_code(&app.base, &page, &first).await;
    assert_eq!(expired.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(expired.body.contains("有効期限"), "{}", expired.body);

    // A resend is allowed (the last send was 5 minutes ago), a second one at once is not.
    let mut page = browser.resend(&app.base, &expired).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("再送信しました"));
    let cooling = browser.resend(&app.base, &page).await;
    assert_eq!(cooling.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(cooling.body.contains("秒後から可能"), "{}", cooling.body);
    assert_eq!(app.outbox().len(), 2);
    // The cooldown page still carries the code sent before.
    page = cooling;

    // Resend every 61 s until the daily cap (10 per account) refuses.
    let mut sent = 2;
    loop {
        app.clock.advance(Duration::seconds(61));
        let next = browser.resend(&app.base, &page).await;
        if next.status != StatusCode::OK {
            assert!(
                next.body.contains("本日の認証コード送信回数"),
                "{}",
                next.body
            );
            page = next;
            break;
        }
        sent += 1;
        page = next;
        assert!(sent <= 10, "the daily cap did not hold");
    }
    assert_eq!(sent, 10);
    assert_eq!(app.outbox().len(), 10);
    assert!(
        app.outbox()
            .iter()
            .all(|l| l.to == "+819012345678" && l.channel == "sms")
    );
    // The newest code still works once.
    let done = browser
        .submit_code(&app.base, &page, &app.last_code())
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let refused = audit(&app, "second_factor.send_refused").await;
    let reasons: Vec<_> = refused
        .iter()
        .filter_map(|e| e.event.reason.clone())
        .collect();
    assert!(reasons.contains(&"sign_in otp.cooldown".to_owned()));
    assert!(reasons.contains(&"sign_in otp.daily_cap_account".to_owned()));
}

#[tokio::test]
async fn a_provider_that_is_down_costs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.delivery.timeout_secs = 2;
    settings.delivery.email = delivery::Channel::Smtp;
    settings.delivery.smtp.host = "127.0.0.1".into();
    settings.delivery.smtp.port = peers::free_port();
    settings.delivery.smtp.from = "no-reply@example.jp".into();
    settings.delivery.smtp.tls = delivery::SmtpTls::None;
    let app = spawn_with(Backend::Sqlite, dir, settings).await.unwrap();
    let mut browser = Browser::new();
    let page = master_past_password(&app, &mut browser).await;
    let failed = enroll(&app, &mut browser, &page, "email", "taro@example.jp").await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        failed.body.contains("送信できませんでした"),
        "{}",
        failed.body
    );
    // Retrying at once is not held back by the cooldown: nothing was counted.
    let again = browser.resend(&app.base, &failed).await;
    assert_eq!(
        again.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        again.body
    );
    // Typing something anyway is not a wrong code: no code was sent.
    let none = browser.submit_code(&app.base, &again, "123456").await;
    assert!(
        none.body.contains("認証コードが送信されていません"),
        "{}",
        none.body
    );

    let master = account(&app, "mst01").await;
    assert_eq!(master.failed_attempts, 0);
    assert_eq!(master.lock, policies::LockState::None);
    let failures = audit(&app, "second_factor.delivery_failure").await;
    assert_eq!(failures.len(), 2);
    assert!(
        failures[0]
            .event
            .reason
            .as_deref()
            .unwrap()
            .starts_with("enroll email unavailable"),
        "{failures:?}"
    );
    assert!(audit(&app, "second_factor.failure").await.is_empty());

    // The same message in English when the browser prefers it.
    browser.accept_language = "en-US,en;q=0.9";
    let english = browser.resend(&app.base, &again).await;
    assert!(
        english.body.contains("The code could not be sent"),
        "{}",
        english.body
    );
}

#[tokio::test]
async fn trusted_networks_and_the_institution_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    let app = spawn_with(Backend::Sqlite, dir, settings).await.unwrap();
    app.institution(CLINIC).await;
    staff(&app, "nurse1", None).await;

    // From a trusted network a password suffices.
    let mut browser = Browser::new();
    let page = staff_login(&app, &mut browser, "nurse1", STAFF_PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(session_amr(&app, &browser).await, ["pwd"]);

    // The institution requires it everywhere: enrollment even from the trusted network, and
    // the change ended the existing session.
    let services = app.services().await;
    let code = policies::InstitutionCode::parse(CLINIC).unwrap();
    services
        .store
        .set_institution_settings(
            &code,
            &InstitutionSettings {
                second_factor_everywhere: true,
                ..Default::default()
            },
            service::Clock::now(&app.clock),
            settings_audit(),
        )
        .await
        .unwrap();
    assert_eq!(
        browser.get(&app.url("/account")).await.status,
        StatusCode::SEE_OTHER
    );
    let mut browser = Browser::new();
    let page = staff_login(&app, &mut browser, "nurse1", STAFF_PASSWORD).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("二要素認証の登録"), "{}", page.body);
    let done = browser
        .second_factor(&app.base, &app.settings.outbox.path, page)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(session_amr(&app, &browser).await, ["pwd", "otp", "mfa"]);

    // Forgotten password is off by default.
    assert_eq!(
        browser.get(&app.url("/password/forgot")).await.status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !browser
            .get(&app.url("/login"))
            .await
            .body
            .contains("/password/forgot")
    );
}

#[tokio::test]
async fn machine_accounts_never_get_a_second_factor() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.institution(CLINIC).await;
    staff(&app, "nurse1", None).await;
    let services = app.services().await;
    let now = service::Clock::now(&app.clock);
    let hash = services
        .provisioner
        .hasher
        .hash(STAFF_PASSWORD.into())
        .await
        .unwrap();
    let id = uuid::Uuid::now_v7();
    let machine = NewAccount {
        id,
        institution_code: policies::InstitutionCode::parse(CLINIC).unwrap(),
        account_type: policies::AccountType::WebApi,
        user_id: "A0123".into(),
        name: "連携".into(),
        name_kana: "レンケイ".into(),
        usage_start: policies::usage::jst_date(now) - Duration::days(1),
        usage_end: policies::usage::FAR_FUTURE,
        second_factor: None,
        credential: Credential {
            hash,
            initial_issued_at: None,
            initial_sealed: None,
            changed_at: Some(now),
        },
        created_by: None,
        created_at: now,
    };
    services
        .store
        .create_account(
            machine,
            NewAuditEvent {
                at: now,
                kind: "account.create".into(),
                actor_account_id: None,
                actor: "test".into(),
                target_account_id: Some(id),
                target: None,
                institution_code: Some(CLINIC.into()),
                ip: None,
                user_agent: None,
                result: AuditResult::Success,
                reason: None,
            },
        )
        .await
        .unwrap();
    services
        .store
        .set_institution_settings(
            &policies::InstitutionCode::parse(CLINIC).unwrap(),
            &InstitutionSettings {
                second_factor_everywhere: true,
                ..Default::default()
            },
            service::Clock::now(&app.clock),
            settings_audit(),
        )
        .await
        .unwrap();
    let authenticator = Authenticator {
        store: services.store.clone(),
        hasher: services.provisioner.hasher.clone(),
        clock: services.clock.clone(),
        lockout: app.settings.lockout.clone(),
        policy: services.provisioner.policy.clone(),
        login_hours: None,
    };
    let ctx = RequestContext {
        ip: Some("203.0.113.5".into()),
        user_agent: None,
    };
    // SPEC §8: a machine account signs in with client_credentials only; the login page refuses
    // it like an unknown account (so it never meets a second factor), while a person there
    // needs one.
    let machine = authenticator
        .sign_in_interactive(CLINIC, "A0123", STAFF_PASSWORD, Some(&[]), &ctx)
        .await
        .unwrap();
    assert!(
        matches!(
            machine,
            SignIn::Failure(service::authentication::FailureReason::WrongAccountKind)
        ),
        "{machine:?}"
    );
    let person = authenticator
        .sign_in_interactive(CLINIC, "nurse1", STAFF_PASSWORD, Some(&[]), &ctx)
        .await
        .unwrap();
    assert!(
        matches!(
            person,
            SignIn::Success {
                second_factor_required: true,
                ..
            }
        ),
        "{person:?}"
    );
}

#[tokio::test]
async fn the_destination_changes_on_the_account_page_only_after_its_code() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let mut browser = Browser::new();
    let page = master_past_password(&app, &mut browser).await;
    let done = browser
        .second_factor(&app.base, &app.settings.outbox.path, page)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let before = account(&app, "mst01").await.second_factor;
    assert_eq!(
        before.as_ref().and_then(|f| f.email.as_deref()),
        Some("staff@clinic.example.jp")
    );

    // A new send waits for the resend cooldown after the enrollment's code.
    app.clock.advance(Duration::seconds(61));
    let page = browser.get(&app.url("/account")).await;
    assert!(
        page.body.contains("s***@clinic.example.jp"),
        "{}",
        page.body
    );
    let csrf = page.field("csrf_token").unwrap();
    let foreign = browser
        .post(
            &app.url("/account/second-factor"),
            &[
                ("csrf_token", &csrf),
                ("method", "sms"),
                ("phone", "+44 7700 900123"),
            ],
        )
        .await;
    assert_eq!(foreign.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(foreign.body.contains("+81"), "{}", foreign.body);

    let code_page = browser
        .post(
            &app.url("/account/second-factor"),
            &[
                ("csrf_token", &csrf),
                ("method", "sms"),
                ("phone", "080-1111-2222"),
            ],
        )
        .await;
    assert_eq!(code_page.status, StatusCode::OK, "{}", code_page.body);
    assert!(code_page.body.contains("080-****-2222"));
    let line = app.outbox().pop().unwrap();
    assert_eq!(
        (line.channel.as_str(), line.to.as_str()),
        ("sms", "+818011112222")
    );
    // Not saved yet; a wrong code saves nothing either.
    assert_eq!(account(&app, "mst01").await.second_factor, before);
    let wrong = if line.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    let refused = browser.submit_code(&app.base, &code_page, wrong).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(account(&app, "mst01").await.second_factor, before);

    let saved = browser.submit_code(&app.base, &refused, &line.code).await;
    assert_eq!(
        saved.location().as_deref(),
        Some("/account?second_factor=1")
    );
    let factor = account(&app, "mst01").await.second_factor.unwrap();
    assert_eq!(factor.method, SecondFactorMethod::Sms);
    assert_eq!(factor.phone.as_deref(), Some("+818011112222"));
    assert_eq!(factor.email.as_deref(), Some("staff@clinic.example.jp"));
    let page = browser.get(&app.url("/account?second_factor=1")).await;
    assert!(page.body.contains("080-****-2222"), "{}", page.body);
    assert!(page.body.contains("送信先を変更しました"));
    assert_eq!(audit(&app, "second_factor.change").await.len(), 2);
}

/// Waits (briefly) for the background delivery of a forgotten-password code.
async fn wait_for_outbox(app: &TestApp, count: usize) {
    for _ in 0..100 {
        if app.outbox().len() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no code arrived in the outbox");
}

fn visible_text(page: &Page) -> String {
    // The hidden CSRF token and sealed ticket differ per request by design.
    page.body
        .lines()
        .filter(|l| !l.contains("type=\"hidden\""))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn request_reset(app: &TestApp, browser: &mut Browser, user_id: &str, method: &str) -> Page {
    let form = browser.get(&app.url("/password/forgot")).await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.field("csrf_token").unwrap();
    browser
        .post(
            &app.url("/password/forgot"),
            &[
                ("csrf_token", &csrf),
                ("institution_code", CLINIC),
                ("user_id", user_id),
                ("method", method),
            ],
        )
        .await
}

async fn reset(app: &TestApp, browser: &mut Browser, page: &Page, code: &str, new: &str) -> Page {
    let csrf = page.field("csrf_token").unwrap();
    let ticket = page.field("ticket").unwrap();
    browser
        .post(
            &app.url("/password/reset"),
            &[
                ("csrf_token", &csrf),
                ("ticket", &ticket),
                ("code", code),
                ("new_password", new),
                ("new_password_confirm", new),
            ],
        )
        .await
}

#[tokio::test]
async fn forgotten_password_through_the_registered_destination() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.second_factor.forgotten_password = true;
    settings.password.history_depth = 3;
    let app = spawn_with(Backend::Sqlite, dir, settings).await.unwrap();
    app.institution(CLINIC).await;
    staff(&app, "nurse1", sms_factor("+819012345678")).await;
    // A live session that the reset must end.
    let mut signed_in = Browser::new();
    let page = staff_login(&app, &mut signed_in, "nurse1", STAFF_PASSWORD).await;
    let page = signed_in
        .second_factor(&app.base, &app.settings.outbox.path, page)
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let sent_before = app.outbox().len();
    app.clock.advance(Duration::seconds(61));

    let mut browser = Browser::new();
    assert!(
        browser
            .get(&app.url("/login"))
            .await
            .body
            .contains("/password/forgot")
    );
    // No enumeration: unknown user, wrong method and the real account get the same page.
    let unknown = request_reset(&app, &mut browser, "nobody", "sms").await;
    let wrong_method = request_reset(&app, &mut browser, "nurse1", "email").await;
    let real = request_reset(&app, &mut browser, "nurse1", "sms").await;
    for page in [&unknown, &wrong_method, &real] {
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("認証コードを送信しました"));
    }
    assert_eq!(visible_text(&unknown), visible_text(&real));
    assert_eq!(visible_text(&wrong_method), visible_text(&real));
    assert_eq!(
        unknown.field("ticket").unwrap().len(),
        real.field("ticket").unwrap().len()
    );
    wait_for_outbox(&app, sent_before + 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        app.outbox().len(),
        sent_before + 1,
        "only the real account got a code"
    );
    let line = app.outbox().pop().unwrap();
    assert_eq!(line.to, "+819012345678");

    // The unknown account's form fails like a wrong code.
    let bad = reset(&app, &mut browser, &unknown, &line.code, "Fuyugeshiki#38").await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(bad.body.contains("認証コードが正しくないか"));
    // The policy and the history apply; the code survives a refused password.
    let same = reset(&app, &mut browser, &real, &line.code, STAFF_PASSWORD).await;
    assert_eq!(
        same.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        same.body
    );
    let weak = reset(&app, &mut browser, &same, &line.code, "abcd1234").await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = reset(&app, &mut browser, &weak, &line.code, "Fuyugeshiki#38").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("パスワードを再設定しました"));
    // Single use.
    let replay = reset(&app, &mut browser, &weak, &line.code, "Harugasumi#47").await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);

    // Every session ended; the new password works (with its second factor), the old does not.
    assert_eq!(
        signed_in.get(&app.url("/account")).await.status,
        StatusCode::SEE_OTHER
    );
    let old = staff_login(&app, &mut Browser::new(), "nurse1", STAFF_PASSWORD).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let new = staff_login(&app, &mut Browser::new(), "nurse1", "Fuyugeshiki#38").await;
    assert!(new.body.contains("name=\"code\""), "{}", new.body);

    let forgotten = audit(&app, "password.forgotten").await;
    let reasons: Vec<_> = forgotten
        .iter()
        .map(|e| (e.event.result, e.event.reason.clone().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            (AuditResult::Failure, "unknown_account".to_owned()),
            (AuditResult::Failure, "no_matching_destination".to_owned()),
            (AuditResult::Success, "code requested by sms".to_owned()),
        ]
    );
    assert_eq!(audit(&app, "password.reset_forgotten").await.len(), 1);
    assert_audit_has_no(&app, &[&line.code, "Fuyugeshiki#38"]).await;
}

/// The audit event an admin's settings change writes.
fn settings_audit() -> store::NewAuditEvent {
    store::NewAuditEvent {
        at: time::OffsetDateTime::now_utc(),
        kind: "institution.settings".into(),
        actor_account_id: None,
        actor: "test".into(),
        target_account_id: None,
        target: Some(CLINIC.into()),
        institution_code: Some(CLINIC.into()),
        ip: None,
        user_agent: None,
        result: store::AuditResult::Success,
        reason: None,
    }
}
