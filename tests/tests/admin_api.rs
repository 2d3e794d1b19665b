//! The admin API (`/admin/v1`) end to end: tokens obtained through the real login pages, the
//! whole permission matrix of SPEC §2 as a table, ID reservation after delete, token
//! invalidation, search filters, settings, the audit CSV and the problem+json contract.

use policies::AccountType::{self, *};
use policies::InstitutionCode;
use reqwest::{Method, StatusCode};
use sekimori_tests::{Backend, TestApp, spawn_with, test_settings};
use serde_json::{Value, json};
use store::{AuditResult, Credential, NewAccount, NewAuditEvent, Store};
use uuid::Uuid;

const A: &str = "1312345678";
const B: &str = "1318765432";
const PLATFORM: &str = "0000000000";

/// Everything a test needs: the app, the admin client's secret, and an operator's token.
struct World {
    app: TestApp,
    secret: String,
    operator: String,
}

/// The admin API is what these stories are about, so the server trusts loopback and asks for no
/// second factor (tests/second_factor.rs covers that step on the default settings).
async fn world(backend: Backend) -> Option<World> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    let app = spawn_with(backend, dir, settings).await?;
    let secret = app.admin_client().await;
    let bootstrap = app.bootstrap.clone().expect("the bootstrap operator");
    let operator = app
        .admin_token(
            &secret,
            PLATFORM,
            &bootstrap.user_id,
            &bootstrap.initial_password,
        )
        .await;
    Some(World {
        app,
        secret,
        operator,
    })
}

impl World {
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, headers, body) = self.app.admin(token, method, path, body).await;
        if !status.is_success() {
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{path}: {body}"
            );
        }
        (status, body)
    }

    /// Creates an account through the API as `token` and returns its initial password.
    async fn create(
        &self,
        token: &str,
        institution: &str,
        account_type: AccountType,
        user_id: &str,
    ) -> String {
        let (status, body) = self
            .call(
                token,
                Method::POST,
                &format!("/institutions/{institution}/accounts"),
                Some(account_body(account_type, user_id)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["initial_password"].as_str().unwrap().to_owned()
    }

    async fn token(&self, institution: &str, user_id: &str, password: &str) -> String {
        self.app
            .admin_token(&self.secret, institution, user_id, password)
            .await
    }
}

fn account_body(account_type: AccountType, user_id: &str) -> Value {
    json!({
        "account_type": account_type.as_str(),
        "user_id": user_id,
        "name": "関守　花子",
        "name_kana": "セキモリ ハナコ",
        "usage_start": "2020-04-01",
    })
}

/// A valid user ID for `account_type` in a medical institution, unique per `n`.
fn user_id(account_type: AccountType, n: usize) -> String {
    let prefix = match account_type {
        WebApi => "A0",
        LinkedApp => "R0",
        CardReader => "F0",
        _ => "u",
    };
    format!("{prefix}{n:04}")
}

/// Inserts an account straight into the store (targets of the matrix never sign in).
async fn seed(store: &dyn Store, institution: &str, account_type: AccountType, user_id: &str) {
    let now = time::OffsetDateTime::now_utc();
    store
        .create_account(
            NewAccount {
                id: Uuid::now_v7(),
                institution_code: InstitutionCode::parse_for_login(institution).unwrap(),
                account_type,
                user_id: user_id.into(),
                name: "対象　太郎".into(),
                name_kana: "タイショウ タロウ".into(),
                usage_start: time::macros::date!(2020 - 04 - 01),
                usage_end: policies::usage::FAR_FUTURE,
                second_factor: None,
                credential: Credential {
                    hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
                    initial_issued_at: Some(now),
                    initial_sealed: None,
                    changed_at: None,
                },
                created_by: None,
                created_at: now,
            },
            audit("account.create", Some(institution), now),
        )
        .await
        .expect("seed account");
}

fn audit(kind: &str, institution: Option<&str>, at: time::OffsetDateTime) -> NewAuditEvent {
    NewAuditEvent {
        at,
        kind: kind.into(),
        actor_account_id: None,
        actor: "test".into(),
        target_account_id: None,
        target: None,
        institution_code: institution.map(Into::into),
        ip: Some("192.0.2.1".into()),
        user_agent: Some("Mozilla/5.0 関守テスト".into()),
        result: AuditResult::Success,
        reason: None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Get,
    Create,
    Update,
    Delete,
    Reset,
    Lock,
    Unlock,
}

/// SPEC §2's matrix written out: for each target type and action, the actor types allowed.
/// "view" (get) is not in the matrix: an actor sees what it may act on in some way.
fn spec_allows(actor: AccountType, act: Act, target: AccountType) -> bool {
    const LOWER: [AccountType; 5] = [General, ClinicalViewer, WebApi, LinkedApp, CardReader];
    let actors: &[AccountType] = match (target, act) {
        (Operator, _) => &[Operator],
        (Master, Act::Create | Act::Delete) => &[Operator],
        (Master, Act::Update) => &[],
        (Master, Act::Reset) => &[MasterReset],
        (Master, Act::Lock | Act::Unlock | Act::Get) => &[MasterReset, Operator],
        (MasterReset, _) => &[Operator],
        (Manager, _) => &[Master],
        (t, _) if LOWER.contains(&t) => &[Manager],
        _ => &[],
    };
    actors.contains(&actor)
}

/// Where a target of this type lives for a "same" or "other" institution check.
fn target_institution(actor_institution: &str, target: AccountType, same: bool) -> &'static str {
    if target == Operator {
        return PLATFORM;
    }
    match (actor_institution, same) {
        (PLATFORM, true) => A,
        (PLATFORM, false) => B,
        (A, true) => A,
        _ => B,
    }
}

/// Operators act across institutions; everyone else only inside their own.
fn spec_boundary(actor: AccountType, actor_institution: &str, target_institution: &str) -> bool {
    actor == Operator || actor_institution == target_institution
}

async fn permission_matrix(backend: Backend) {
    let Some(w) = world(backend).await else {
        return;
    };
    let services = w.app.services().await;
    let store = services.store.as_ref();

    // Institution A with every human actor, and institution B.
    let created = w.app.institution(A).await;
    w.app.institution(B).await;
    let master = w
        .token(A, &created.master.user_id, &created.master.initial_password)
        .await;
    let master_reset = w
        .token(
            A,
            &created.master_reset.user_id,
            &created.master_reset.initial_password,
        )
        .await;
    let manager_pw = w.create(&master, A, Manager, "mgr01").await;
    let manager = w.token(A, "mgr01", &manager_pw).await;
    let general_pw = w.create(&manager, A, General, "gen01").await;
    let general = w.token(A, "gen01", &general_pw).await;
    let viewer_pw = w.create(&manager, A, ClinicalViewer, "cv01").await;
    let viewer = w.token(A, "cv01", &viewer_pw).await;
    let actors: [(AccountType, &str, &str); 6] = [
        (Operator, PLATFORM, w.operator.as_str()),
        (Master, A, master.as_str()),
        (MasterReset, A, master_reset.as_str()),
        (Manager, A, manager.as_str()),
        (General, A, general.as_str()),
        (ClinicalViewer, A, viewer.as_str()),
    ];

    let mut n = 0;
    let mut fresh = |account_type| {
        n += 1;
        user_id(account_type, n)
    };
    let mut checked = 0;
    for (actor, actor_inst, token) in actors {
        for target in AccountType::ALL {
            for same in [true, false] {
                let inst = target_institution(actor_inst, target, same);
                if target == Operator && !same {
                    continue;
                }
                let main = fresh(target);
                seed(store, inst, target, &main).await;
                let base = format!("/institutions/{inst}/accounts");
                let one = format!("{base}/{main}");
                let boundary = spec_boundary(actor, actor_inst, inst);
                for act in [
                    Act::Get,
                    Act::Create,
                    Act::Update,
                    Act::Reset,
                    Act::Lock,
                    Act::Unlock,
                    Act::Delete,
                ] {
                    let allowed = boundary && spec_allows(actor, act, target);
                    let (method, path, body) = match act {
                        Act::Get => (Method::GET, one.clone(), None),
                        Act::Create => (
                            Method::POST,
                            base.clone(),
                            Some(account_body(target, &fresh(target))),
                        ),
                        Act::Update => (
                            Method::PATCH,
                            one.clone(),
                            Some(json!({"name_kana": "コウシン"})),
                        ),
                        Act::Reset => (Method::POST, format!("{one}/password-reset"), None),
                        Act::Lock => (Method::POST, format!("{one}/lock"), None),
                        Act::Unlock => (Method::POST, format!("{one}/unlock"), None),
                        Act::Delete => {
                            let victim = fresh(target);
                            seed(store, inst, target, &victim).await;
                            (Method::DELETE, format!("{base}/{victim}"), None)
                        }
                    };
                    let (status, body) = w.call(token, method, &path, body).await;
                    let what = format!("{actor}@{actor_inst} {act:?} {target}@{inst}");
                    if allowed {
                        assert!(status.is_success(), "{what}: {status} {body}");
                    } else {
                        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
                        assert_eq!(
                            body["type"], "https://sekimori.example/problems/forbidden",
                            "{what}"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 6 * 17 * 7);

    // Refused actions are audited as failures.
    let events = store
        .list_audit(&store::AuditFilter::default(), 100_000)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.event.result == AuditResult::Failure
        && e.event.reason.as_deref() == Some("forbidden")
        && e.event.actor == format!("{A}/gen01")));
}

#[tokio::test]
async fn sqlite_permission_matrix() {
    permission_matrix(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres_permission_matrix() {
    permission_matrix(Backend::Postgres).await;
}

#[tokio::test]
async fn operators_manage_institutions_and_operators_but_not_themselves() {
    let Some(w) = world(Backend::Sqlite).await else {
        return;
    };
    let (status, body) = w
        .call(
            &w.operator,
            Method::POST,
            "/institutions",
            Some(json!({"code": A, "name": "関守病院", "master_id": "mst01", "master_reset_id": "rst01", "usage_start": "2020-04-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["code"], A);
    assert_eq!(body["institution"]["kind"], "medical");
    let master_pw = body["master"]["initial_password"].as_str().unwrap();
    assert_eq!(body["master_reset"]["user_id"], "rst01");
    let (status, _) = w
        .call(
            &w.operator,
            Method::POST,
            "/institutions",
            Some(json!({"code": A, "name": "重複", "master_id": "m2", "master_reset_id": "r2"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = w
        .call(&w.operator, Method::GET, "/institutions", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        1,
        "no platform row"
    );
    let (status, body) = w
        .call(
            &w.operator,
            Method::PATCH,
            &format!("/institutions/{A}"),
            Some(json!({"name": "関守総合病院", "usage_start": "2021-01-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["usage_start"].as_str()),
        (Some("関守総合病院"), Some("2021-01-01"))
    );

    // Masters may not manage institutions.
    let master = w.token(A, "mst01", master_pw).await;
    let (status, _) = w.call(&master, Method::GET, "/institutions", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another operator: created, then locked and unlocked by the first; self-actions refused.
    let op2_pw = w.create(&w.operator, PLATFORM, Operator, "op02").await;
    let op2 = w.token(PLATFORM, "op02", &op2_pw).await;
    let bootstrap = w.app.bootstrap.clone().unwrap().user_id;
    for (method, suffix) in [
        (Method::POST, "/lock"),
        (Method::POST, "/password-reset"),
        (Method::DELETE, ""),
    ] {
        let (status, body) = w
            .call(
                &w.operator,
                method,
                &format!("/institutions/{PLATFORM}/accounts/{bootstrap}{suffix}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{suffix}");
        assert_eq!(
            body["type"],
            "https://sekimori.example/problems/own-account"
        );
    }
    let (status, _) = w
        .call(
            &op2,
            Method::POST,
            &format!("/institutions/{PLATFORM}/accounts/{bootstrap}/lock"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .call(&w.operator, Method::GET, "/institutions", None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a locked operator's token stops"
    );
}

#[tokio::test]
async fn deleted_user_ids_stay_reserved_and_tokens_stop_at_once() {
    let Some(w) = world(Backend::Sqlite).await else {
        return;
    };
    let created = w.app.institution(A).await;
    let master = w
        .token(A, &created.master.user_id, &created.master.initial_password)
        .await;
    let master_reset = w
        .token(
            A,
            &created.master_reset.user_id,
            &created.master_reset.initial_password,
        )
        .await;
    let manager_pw = w.create(&master, A, Manager, "mgr01").await;
    let manager = w.token(A, "mgr01", &manager_pw).await;

    // ID reuse after delete: 409, also for another type.
    let pw = w.create(&manager, A, General, "gen01").await;
    let general = w.token(A, "gen01", &pw).await;
    let one = format!("/institutions/{A}/accounts/gen01");
    let (status, _) = w.call(&manager, Method::DELETE, &one, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = w.call(&manager, Method::GET, &one, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for account_type in [General, ClinicalViewer] {
        let (status, body) = w
            .call(
                &manager,
                Method::POST,
                &format!("/institutions/{A}/accounts"),
                Some(account_body(account_type, "gen01")),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["type"], "https://sekimori.example/problems/conflict");
        assert!(body["message_ja"].as_str().unwrap().contains("再利用"));
    }
    // The deleted account's token stopped.
    let (status, _) = w.call(&general, Method::GET, "/institutions", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Lock: the manager's token stops at once, and stays revoked after an unlock.
    let (status, _) = w
        .call(
            &manager,
            Method::GET,
            &format!("/institutions/{A}/accounts"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mgr = format!("/institutions/{A}/accounts/mgr01");
    let (status, body) = w
        .call(&master, Method::POST, &format!("{mgr}/lock"), None)
        .await;
    assert_eq!(
        (status, body["lock"].as_str()),
        (StatusCode::OK, Some("admin"))
    );
    let (status, _) = w
        .call(
            &manager,
            Method::GET,
            &format!("/institutions/{A}/accounts"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = w
        .call(&master, Method::POST, &format!("{mgr}/unlock"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = w
        .call(
            &manager,
            Method::GET,
            &format!("/institutions/{A}/accounts"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "revoked tokens stay revoked"
    );

    // Reset: the master's token stops; the new initial password works, expires in 30 days.
    let (status, body) = w
        .call(
            &master_reset,
            Method::POST,
            &format!(
                "/institutions/{A}/accounts/{}/password-reset",
                created.master.user_id
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expires = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (expires - service::Clock::now(&w.app.clock)).whole_days();
    assert_eq!(days, 30);
    let (status, _) = w.call(&master, Method::GET, &mgr, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let master = w
        .token(
            A,
            &created.master.user_id,
            body["initial_password"].as_str().unwrap(),
        )
        .await;
    let (status, body) = w.call(&master, Method::GET, &mgr, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["password_state"], "changed");

    // Disable: the token stops too.
    let pw = w
        .create(&manager_again(&w, &master).await, A, General, "gen02")
        .await;
    let gen2 = w.token(A, "gen02", &pw).await;
    let mgr2 = w
        .token(A, "mgr02", sekimori_tests::ADMIN_NEW_PASSWORD)
        .await;
    let (status, body) = w
        .call(
            &mgr2,
            Method::PATCH,
            &format!("/institutions/{A}/accounts/gen02"),
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(
        (status, body["enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (status, _) = w.call(&gen2, Method::GET, "/institutions", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A second manager (the first was locked and its tokens revoked), signed in once so that its
/// password is [`sekimori_tests::ADMIN_NEW_PASSWORD`]; returns its token.
async fn manager_again(w: &World, master: &str) -> String {
    let pw = w.create(master, A, Manager, "mgr02").await;
    w.token(A, "mgr02", &pw).await
}

#[tokio::test]
async fn search_filters_pages_and_validation() {
    let Some(w) = world(Backend::Sqlite).await else {
        return;
    };
    let created = w.app.institution(A).await;
    let master = w
        .token(A, &created.master.user_id, &created.master.initial_password)
        .await;
    let manager_pw = w.create(&master, A, Manager, "mgr01").await;
    let manager = w.token(A, "mgr01", &manager_pw).await;
    let people = [
        (
            "s01",
            General,
            "佐藤　花子",
            "サトウ ハナコ",
            "2024-04-01",
            None,
        ),
        (
            "s02",
            General,
            "佐藤　一郎",
            "サトウ イチロウ",
            "2025-04-01",
            Some("2026-03-31"),
        ),
        (
            "s03",
            ClinicalViewer,
            "鈴木　花子",
            "スズキ ハナコ",
            "2025-10-01",
            None,
        ),
        (
            "A0001",
            WebApi,
            "連携　システム",
            "レンケイ システム",
            "2024-04-01",
            None,
        ),
    ];
    for (id, account_type, name, kana, start, end) in people {
        let mut body = account_body(account_type, id);
        body["name"] = json!(name);
        body["name_kana"] = json!(kana);
        body["usage_start"] = json!(start);
        if let Some(end) = end {
            body["usage_end"] = json!(end);
        }
        let (status, body) = w
            .call(
                &manager,
                Method::POST,
                &format!("/institutions/{A}/accounts"),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let base = format!("/institutions/{A}/accounts");
    w.call(&manager, Method::POST, &format!("{base}/s03/lock"), None)
        .await;
    w.call(
        &manager,
        Method::PATCH,
        &format!("{base}/s02"),
        Some(json!({"enabled": false})),
    )
    .await;

    let search = |query: &'static str| {
        let w = &w;
        let manager = manager.clone();
        let base = base.clone();
        async move {
            let (status, body) = w
                .call(&manager, Method::GET, &format!("{base}?{query}"), None)
                .await;
            (status, body)
        }
    };
    let ids = |body: &Value| {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["user_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let cases: [(&str, &[&str]); 12] = [
        ("", &["A0001", "s01", "s02", "s03"]),
        ("name=%E4%BD%90%E8%97%A4", &["s01", "s02"]),
        ("name=%E8%8A%B1%E5%AD%90", &["s01", "s03"]),
        ("name_kana=%E3%82%B5%E3%83%88%E3%82%A6", &["s01", "s02"]),
        ("account_type=web_api", &["A0001"]),
        ("user_id=s02", &["s02"]),
        ("locked=true", &["s03"]),
        ("locked=false", &["A0001", "s01", "s02"]),
        ("enabled=false", &["s02"]),
        (
            "usage_start_from=2025-01-01&usage_start_to=2025-12-31",
            &["s02", "s03"],
        ),
        ("usage_end_to=2026-12-31", &["s02"]),
        ("name=%25", &[]),
    ];
    for (query, want) in cases {
        let (status, body) = search(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(ids(&body), want, "{query}");
        assert_eq!(body["total"], want.len(), "{query}");
    }
    let (_, body) = search("page=2&per_page=3").await;
    assert_eq!(ids(&body), ["s03"]);
    assert_eq!(
        (
            body["total"].as_i64(),
            body["page"].as_i64(),
            body["per_page"].as_i64()
        ),
        (Some(4), Some(2), Some(3))
    );
    let (_, body) = search("name=%E4%BD%90%E8%97%A4").await;
    let first = &body["items"][0];
    assert_eq!(first["lock"], "none");
    assert_eq!(first["password_state"], "initial");
    assert_eq!(first["usage_end"], "9999-12-31");
    assert_eq!(first["institution_code"], A);

    // Managers never see the master; types outside their reach are refused.
    let (status, _) = search("account_type=master").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for bad in [
        "per_page=0",
        "per_page=101",
        "page=0",
        "locked=yes",
        "usage_start_from=2025/01/01",
        "account_type=boss",
    ] {
        let (status, body) = search(bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(body["type"], "https://sekimori.example/problems/validation");
        assert!(body["errors"][0]["field"].is_string() && body["errors"][0]["rule"].is_string());
    }
}

#[tokio::test]
async fn problems_validation_and_openapi() {
    let Some(w) = world(Backend::Sqlite).await else {
        return;
    };
    // 401 without a token, with a Bearer challenge; 401 with garbage.
    let response = w
        .app
        .http
        .get(w.app.url("/admin/v1/institutions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let (status, _, body) = w
        .app
        .admin("not-a-jwt", Method::GET, "/institutions", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body["type"],
        "https://sekimori.example/problems/unauthenticated"
    );
    assert!(body["message_ja"].is_string() && body["message_en"].is_string());

    // A token without the admin scope: 403 insufficient scope.
    let created = w.app.institution(A).await;
    let plain = w
        .app
        .access_token(
            &w.secret,
            A,
            &created.master.user_id,
            &created.master.initial_password,
            "openid profile",
        )
        .await;
    let (status, headers, body) = w
        .app
        .admin(&plain, Method::GET, "/institutions", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body["type"],
        "https://sekimori.example/problems/insufficient-scope"
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_scope")
    );

    // Validation: every failed rule of the field; immutable fields are 422.
    let master = w
        .token(
            A,
            &created.master.user_id,
            sekimori_tests::ADMIN_NEW_PASSWORD,
        )
        .await;
    let mut bad = account_body(Manager, "Ａ1");
    bad["name"] = json!("ｾｷﾓﾘ");
    let (status, body) = w
        .call(
            &master,
            Method::POST,
            &format!("/institutions/{A}/accounts"),
            Some(bad),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "user_id");
    assert_eq!(body["errors"][0]["rule"], "user_id.full_width");
    w.create(&master, A, Manager, "mgr01").await;
    for field in ["account_type", "user_id"] {
        let (status, body) = w
            .call(
                &master,
                Method::PATCH,
                &format!("/institutions/{A}/accounts/mgr01"),
                Some(json!({ field: "general" })),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["errors"][0]["field"], field);
        assert_eq!(body["errors"][0]["rule"], "field.immutable");
    }
    let (status, body) = w
        .call(
            &master,
            Method::PATCH,
            &format!("/institutions/{A}/accounts/mgr01"),
            Some(json!({"usage_start": "2030-01-01", "usage_end": "2029-12-31"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["rule"], "usage.end_before_start");
    let (status, body) = w
        .call(
            &master,
            Method::PATCH,
            &format!("/institutions/{A}/accounts/mgr01"),
            Some(json!({"second_factor": {"method": "sms", "phone": "090-1234-5678"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["second_factor"]["phone"], "+819012345678");

    // Password policy check lists every failed rule.
    let (status, body) = w
        .call(
            &master,
            Method::POST,
            "/password-policy/check",
            Some(json!({"user_id": "mgr01", "password": "aaa0"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ok"], false);
    assert!(body["violations"].as_array().unwrap().len() >= 3, "{body}");

    // The OpenAPI document is served without a token and names every path.
    let doc: Value = w
        .app
        .http
        .get(w.app.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/admin/v1/institutions",
        "/admin/v1/institutions/{code}/accounts/{user_id}/password-reset",
        "/admin/v1/audit-events.csv",
        "/admin/v1/password-policy/check",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[tokio::test]
async fn settings_end_every_session_of_the_institution() {
    let Some(w) = world(Backend::Sqlite).await else {
        return;
    };
    let created = w.app.institution(A).await;
    let master = w
        .token(A, &created.master.user_id, &created.master.initial_password)
        .await;
    let manager_pw = w.create(&master, A, Manager, "mgr01").await;
    let manager = w.token(A, "mgr01", &manager_pw).await;
    let path = format!("/institutions/{A}/settings");
    for bad in [
        json!({"lockout_threshold": 2}),
        json!({"lockout_threshold": 11}),
        json!({"login_hours": {"opens": "25:00", "closes": "22:00"}}),
        json!({"login_hours": {"opens": "09:00", "closes": "09:00"}}),
    ] {
        let (status, body) = w.call(&master, Method::PUT, &path, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = w
        .call(
            &manager,
            Method::PUT,
            &path,
            Some(json!({"lockout_threshold": 3})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = w
        .call(
            &master,
            Method::PUT,
            &path,
            Some(
                json!({"second_factor_everywhere": true, "lockout_threshold": 3,
                "login_hours": {"opens": "08:00", "closes": "22:00", "days": ["mon", "fri"]}}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["settings"]["lockout_threshold"], 3);
    assert_eq!(
        body["settings"]["login_hours"]["days"],
        json!(["mon", "fri"])
    );
    assert_eq!(body["settings_version"], 2);
    // Everyone in the institution signs in again, the master included.
    for token in [&master, &manager] {
        let (status, _) = w
            .call(
                token,
                Method::GET,
                &format!("/institutions/{A}/accounts"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = w
        .call(
            &w.operator,
            Method::GET,
            &format!("/institutions/{A}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the operator's token is untouched");
    assert_eq!(body["settings"]["second_factor_everywhere"], true);
}

#[tokio::test]
async fn audit_export_csv() {
    let Some(w) = world(Backend::Sqlite).await else {
        return;
    };
    let services = w.app.services().await;
    let store = services.store.as_ref();
    let created = w.app.institution(A).await;
    let master = w
        .token(A, &created.master.user_id, &created.master.initial_password)
        .await;
    w.create(&master, A, Manager, "mgr01").await;

    let export = |query: String, token: String| {
        let app = &w.app;
        async move {
            let response = app
                .http
                .get(app.url(&format!("/admin/v1/audit-events.csv?{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            (status, headers, response.bytes().await.unwrap().to_vec())
        }
    };
    let (status, headers, body) = export(format!("institution_code={A}"), master.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    assert!(text.starts_with("seq,at,kind,result,"));
    assert!(text.contains("account.create"));
    assert!(!text.contains(&created.master.initial_password));

    // Masters export only their own institution; kind filter; Shift_JIS decodes.
    let (status, _, _) = export(String::new(), master.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, body) = export(
        format!("institution_code={A}&kind=account.create&encoding=shift_jis"),
        master.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv; charset=Shift_JIS");
    let (decoded, _, bad) = encoding_rs::SHIFT_JIS.decode(&body);
    assert!(!bad);
    let rows: Vec<&str> = decoded.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{decoded}");
    assert!(rows.iter().all(|r| r.contains(",account.create,")));

    // Over 25,000 rows: 422 asking to narrow the search; a narrower period works.
    let at = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    for i in 0..25_001 {
        store
            .append_audit(audit(
                "login.failure",
                Some(B),
                at + time::Duration::seconds(i),
            ))
            .await
            .unwrap();
    }
    let (status, _, body) = export(String::new(), w.operator.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["errors"][0]["rule"], "audit.too_many_rows");
    assert!(problem["message_ja"].is_string());
    let (status, _, body) = export(
        format!(
            "kind=login.failure&institution_code={B}&to={}",
            (at + time::Duration::seconds(100))
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap()
                .replace('+', "%2B")
        ),
        w.operator.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 101);
}
