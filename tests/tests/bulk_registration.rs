//! Bulk CSV registration end to end (SPEC §9, §12, seed 002 §2-4/§2-5): uploads through the
//! admin API in the encodings and header languages Excel produces, the background job and its
//! statuses, duplicates (live and deleted IDs), all-or-nothing validation, file-structure
//! errors, one job per institution (409 + Retry-After), permissions, the submitter-only result
//! file, signing in with a password from it, and the 30-day purge through the injected clock.

use std::time::Duration as StdDuration;

use reqwest::{Method, StatusCode};
use sekimori_tests::{ADMIN_NEW_PASSWORD, Backend, TestApp, spawn_with, test_settings};
use serde_json::Value;

const CODE: &str = "1312345678";

struct World {
    app: TestApp,
    secret: String,
    master: String,
    manager: String,
}

async fn world(backend: Backend, worker: bool) -> Option<World> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    settings.bulk.worker = worker;
    let app = spawn_with(backend, dir, settings).await?;
    let secret = app.admin_client().await;
    let created = app.institution(CODE).await;
    let master = app
        .admin_token(
            &secret,
            CODE,
            &created.master.user_id,
            &created.master.initial_password,
        )
        .await;
    let mut world = World {
        app,
        secret,
        master,
        manager: String::new(),
    };
    let password = world
        .create(&world.master.clone(), "manager", "kanri01")
        .await;
    world.manager = world.token("kanri01", &password).await;
    Some(world)
}

impl World {
    async fn create(&self, token: &str, account_type: &str, user_id: &str) -> String {
        self.app
            .create_account(token, CODE, account_type, user_id)
            .await
    }

    async fn token(&self, user_id: &str, password: &str) -> String {
        self.app
            .admin_token(&self.secret, CODE, user_id, password)
            .await
    }

    async fn upload(
        &self,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let response = self
            .app
            .http
            .post(
                self.app
                    .url(&format!("/admin/v1/institutions/{CODE}/bulk-registrations")),
            )
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{body}"
            );
        }
        (status, headers, body)
    }

    async fn job(&self, token: &str, reception: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .app
            .admin(
                token,
                Method::GET,
                &format!("/institutions/{CODE}/bulk-registrations/{reception}"),
                None,
            )
            .await;
        (status, body)
    }

    /// Uploads a file that must be accepted and waits until its job has ended.
    async fn register(&self, token: &str, content_type: &str, body: Vec<u8>) -> Value {
        let (status, headers, job) = self.upload(token, content_type, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        let reception = job["reception_number"].as_str().unwrap().to_owned();
        assert!(
            headers["location"]
                .to_str()
                .unwrap()
                .ends_with(&format!("/bulk-registrations/{reception}"))
        );
        self.finished(token, &reception).await
    }

    /// Polls the job until it leaves queued/running (the runner is woken by the upload).
    async fn finished(&self, token: &str, reception: &str) -> Value {
        for _ in 0..600 {
            let (status, job) = self.job(token, reception).await;
            assert_eq!(status, StatusCode::OK, "{job}");
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("job {reception} did not finish");
    }

    /// Downloads a result file: the status and, on success, its records without the BOM.
    async fn result(&self, token: &str, reception: &str) -> (StatusCode, Vec<Vec<String>>) {
        let response = self
            .app
            .http
            .get(self.app.url(&format!(
                "/admin/v1/institutions/{CODE}/bulk-registrations/{reception}/result.csv"
            )))
            .bearer_auth(token)
            .send()
            .await
            .expect("result");
        let status = response.status();
        if !status.is_success() {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            return (status, Vec::new());
        }
        assert_eq!(
            response.headers()["content-type"],
            "text/csv; charset=utf-8"
        );
        let bytes = response.bytes().await.unwrap();
        let text = std::str::from_utf8(bytes.strip_prefix(b"\xEF\xBB\xBF").expect("a BOM"))
            .unwrap()
            .to_owned();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let records = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        (status, records)
    }

    /// Whether the live account is visible to `token` (masters see managers, managers the rest).
    async fn exists_for(&self, token: &str, user_id: &str) -> bool {
        let (status, _, _) = self
            .app
            .admin(
                token,
                Method::GET,
                &format!("/institutions/{CODE}/accounts/{user_id}"),
                None,
            )
            .await;
        status == StatusCode::OK
    }

    async fn exists(&self, user_id: &str) -> bool {
        self.exists_for(&self.manager, user_id).await
    }
}

/// The column of `name` in a result file.
fn column(records: &[Vec<String>], name: &str) -> usize {
    records[0]
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn row<'r>(records: &'r [Vec<String>], user_id: &str) -> &'r Vec<String> {
    let at = column(records, "user_id");
    records
        .iter()
        .find(|r| r[at] == user_id)
        .unwrap_or_else(|| panic!("no row {user_id}"))
}

fn cell<'r>(records: &'r [Vec<String>], user_id: &str, name: &str) -> &'r str {
    &row(records, user_id)[column(records, name)]
}

fn cp932(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

macro_rules! both_backends {
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$story(sekimori_tests::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$story(sekimori_tests::Backend::Postgres).await;
            }
        }
    )*};
}

both_backends!(
    cp932_with_japanese_headers_and_labels_registers_and_signs_in,
    utf8_with_bom_english_headers_and_duplicates,
    one_bad_row_registers_nothing,
    file_structure_errors_and_refusals,
    permissions_and_the_submitter_only_result,
    a_second_upload_while_one_is_queued_is_409,
    result_passwords_are_purged_after_30_days,
);

async fn cp932_with_japanese_headers_and_labels_registers_and_signs_in(backend: Backend) {
    let Some(w) = world(backend, true).await else {
        return;
    };
    // What Excel saves on a Japanese Windows: CP932, CRLF, the screens' labels.
    let text = "権限区分,ユーザID,ユーザ名,ユーザ名（カナ）,利用開始年月日,利用終了年月日,二要素認証手段コード,二要素認証用メールアドレス,二要素認証用電話番号\r\n\
                一般利用者,staff01,関守　一郎,セキモリ イチロウ,2020/04/01,,1,ichiro@example.jp,\r\n\
                医療情報閲覧,doc01,関守　二郎,セキモリ ジロウ,20200401,2099-12-31,2,,090-1234-5678\r\n\
                WebAPI用,A0001,レセコン連携,レセコン,2020-04-01,,,,\r\n";
    let job = w.register(&w.manager, "text/csv", cp932(text)).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["status_ja"], "登録完了");
    assert_eq!(job["row_count"], 3);
    assert_eq!(job["registered_count"], 3);
    assert_eq!(job["result_available"], true);
    let reception = job["reception_number"].as_str().unwrap();
    assert!(reception.ends_with("_kanri01"), "{reception}");

    let (status, records) = w.result(&w.manager, reception).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        records[0],
        [
            "line",
            "account_type",
            "user_id",
            "name",
            "name_kana",
            "usage_start",
            "usage_end",
            "second_factor_method",
            "second_factor_email",
            "second_factor_phone",
            "result",
            "errors",
            "initial_password"
        ]
    );
    assert_eq!(records.len(), 4);
    for user_id in ["staff01", "doc01", "A0001"] {
        assert_eq!(cell(&records, user_id, "result"), "registered");
        assert!(!cell(&records, user_id, "initial_password").is_empty());
        assert!(w.exists(user_id).await, "{user_id}");
    }
    assert_eq!(cell(&records, "doc01", "line"), "3");
    assert_eq!(cell(&records, "doc01", "name"), "関守　二郎");

    // The account as registered: labels became types, dates and the destination were read.
    let (_, _, account) = w
        .app
        .admin(
            &w.manager,
            Method::GET,
            &format!("/institutions/{CODE}/accounts/doc01"),
            None,
        )
        .await;
    assert_eq!(account["account_type"], "clinical_viewer");
    assert_eq!(account["usage_start"], "2020-04-01");
    assert_eq!(account["usage_end"], "2099-12-31");
    assert_eq!(account["password_state"], "initial");

    // The initial password from the result file signs in (and must be changed first).
    let password = cell(&records, "staff01", "initial_password").to_owned();
    let token = w
        .app
        .access_token(&w.secret, CODE, "staff01", &password, "openid")
        .await;
    assert!(!token.is_empty());

    // The upload and the outcome are audited, without passwords.
    let services = w.app.services().await;
    let events = services
        .store
        .list_audit(&store::AuditFilter::default(), 1000)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert!(kinds.contains(&"bulk_registration.upload"));
    assert!(kinds.contains(&"bulk_registration.finish"));
    let dump = format!("{events:?}");
    for user_id in ["staff01", "doc01", "A0001"] {
        let p = cell(&records, user_id, "initial_password");
        assert!(!dump.contains(p), "a password reached the audit log");
    }
}

async fn utf8_with_bom_english_headers_and_duplicates(backend: Backend) {
    let Some(w) = world(backend, true).await else {
        return;
    };
    // kanri01 is live (the manager of the world); kanri02 existed and was deleted.
    w.create(&w.master, "manager", "kanri02").await;
    let (status, _, _) = w
        .app
        .admin(
            &w.master,
            Method::DELETE,
            &format!("/institutions/{CODE}/accounts/kanri02"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut file = b"\xEF\xBB\xBF".to_vec();
    file.extend_from_slice(
        "account_type,user_id,name,name_kana,usage_start\n\
         manager,kanri01,関守　一郎,セキモリ イチロウ,2020/04/01\n\
         管理者,kanri02,関守　二郎,セキモリ ジロウ,2020/04/01\n\
         manager,kanri03,関守　三郎,セキモリ サブロウ,2020/04/01\n"
            .as_bytes(),
    );
    let job = w.register(&w.master, "text/csv; charset=utf-8", file).await;
    assert_eq!(job["status"], "done_with_duplicates", "{job}");
    assert_eq!(job["status_ja"], "登録完了(一部ID重複あり)");
    assert_eq!(job["registered_count"], 1);
    assert_eq!(job["duplicate_count"], 2);
    let reception = job["reception_number"].as_str().unwrap();
    let (status, records) = w.result(&w.master, reception).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cell(&records, "kanri01", "result"), "duplicate");
    assert_eq!(cell(&records, "kanri02", "result"), "duplicate");
    assert_eq!(cell(&records, "kanri01", "initial_password"), "");
    assert_eq!(cell(&records, "kanri03", "result"), "registered");
    assert!(!cell(&records, "kanri03", "initial_password").is_empty());
    assert!(w.exists_for(&w.master, "kanri03").await);
    assert!(
        !w.exists_for(&w.master, "kanri02").await,
        "a deleted ID is never reused"
    );

    // The listing: the submitter's newest jobs.
    let (status, _, list) = w
        .app
        .admin(
            &w.master,
            Method::GET,
            &format!("/institutions/{CODE}/bulk-registrations"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["reception_number"], reception);
}

async fn one_bad_row_registers_nothing(backend: Backend) {
    let Some(w) = world(backend, true).await else {
        return;
    };
    let text = "account_type,user_id,name,name_kana,usage_start,usage_end,second_factor_method,second_factor_email,second_factor_phone\r\n\
                general,good01,関守　一郎,セキモリ イチロウ,2020/04/01,,,,\r\n\
                general,A0bad,ｾｷﾓﾘ,,2020/13/01,,9,,\r\n\
                general,good01,関守　三郎,セキモリ サブロウ,2020/04/01,,,,\r\n\
                clinical_viewer,good02,関守　四郎,セキモリ シロウ,2020/04/01,2019/04/01,,,\r\n";
    let job = w
        .register(&w.manager, "text/csv", text.as_bytes().to_vec())
        .await;
    assert_eq!(job["status"], "failed_validation", "{job}");
    assert_eq!(job["status_ja"], "登録失敗(入力チェックエラー)");
    assert_eq!(job["registered_count"], 0);
    assert_eq!(job["invalid_count"], 3);
    assert_eq!(job["result_available"], true);
    for user_id in ["good01", "A0bad", "good02"] {
        assert!(!w.exists(user_id).await, "{user_id} must not be registered");
    }
    let reception = job["reception_number"].as_str().unwrap();
    let (status, records) = w.result(&w.manager, reception).await;
    assert_eq!(status, StatusCode::OK);
    let results: Vec<&str> = records[1..]
        .iter()
        .map(|r| r[column(&records, "result")].as_str())
        .collect();
    assert_eq!(results, ["not_registered", "invalid", "invalid", "invalid"]);
    let first = &records[1];
    assert_eq!(
        first[column(&records, "errors")],
        "【入力チェックエラーなし:未登録】"
    );
    assert_eq!(first[column(&records, "initial_password")], "");
    // Every error of the bad row is listed: the ID's prefix, the half-width kana name, the
    // missing reading, the impossible date and the unknown method code.
    let errors = &records[2][column(&records, "errors")];
    for rule in [
        "[user_id.",
        "name: ",
        "name_kana: ",
        "usage_start: ",
        "[second_factor.method_code]",
    ] {
        assert!(errors.contains(rule), "{rule} missing from {errors}");
    }
    // The repeated ID is invalid on its second line, naming the first.
    assert!(records[3][column(&records, "errors")].contains("user_id.repeated_in_file"));
    assert!(records[3][column(&records, "errors")].contains('2'));
    // An end before the start.
    assert!(records[4][column(&records, "errors")].contains("usage_end"));
}

async fn file_structure_errors_and_refusals(backend: Backend) {
    let Some(w) = world(backend, true).await else {
        return;
    };
    let structure = |body: &[u8]| body.to_vec();
    for (body, rule) in [
        (
            structure(b"user_id,name\r\nab,x\r\n"),
            "file.header_missing",
        ),
        (
            structure(b"account_type,user_id,name,name_kana,usage_start\r\ngeneral,ab\r\n"),
            "file.column_count",
        ),
        (structure(b"\xFF\xFE\x00\x01"), "file.encoding"),
        (
            structure(b"account_type,user_id,name,name_kana,usage_start\r\n"),
            "file.no_rows",
        ),
        (structure(b"hello,password\r\n"), "file.header_unknown"),
    ] {
        let (status, _, job) = w.upload(&w.manager, "text/csv", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        assert_eq!(job["status"], "failed_file_structure", "{job}");
        assert_eq!(job["status_ja"], "登録失敗(ファイル構造エラー)");
        assert_eq!(job["result_available"], false);
        let rules: Vec<&str> = job["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["rule"].as_str().unwrap())
            .collect();
        assert!(rules.contains(&rule), "{rule} not in {job}");
        // No result file for a file that could not be read.
        let reception = job["reception_number"].as_str().unwrap();
        let (status, _) = w.result(&w.manager, reception).await;
        assert_eq!(status, StatusCode::CONFLICT);
        // Reception numbers are per millisecond; the next upload must not collide.
        tokio::time::sleep(StdDuration::from_millis(2)).await;
        w.app.clock.advance(time::Duration::milliseconds(5));
    }
    // Refused before any job: empty, not CSV, too large.
    let (status, _, _) = w.upload(&w.manager, "text/csv", Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = w
        .upload(&w.manager, "application/json", b"{}".to_vec())
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = w
        .upload(
            &w.manager,
            "text/csv",
            vec![b'a'; policies::bulk::MAX_FILE_BYTES + 1],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The listing keeps the newest three.
    let (_, _, list) = w
        .app
        .admin(
            &w.manager,
            Method::GET,
            &format!("/institutions/{CODE}/bulk-registrations"),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

async fn permissions_and_the_submitter_only_result(backend: Backend) {
    let Some(w) = world(backend, true).await else {
        return;
    };
    // A manager may not register managers: the row is invalid, nothing is registered.
    let text = "account_type,user_id,name,name_kana,usage_start\n\
                manager,kanri09,関守　一郎,セキモリ イチロウ,2020/04/01\n\
                general,staff09,関守　二郎,セキモリ ジロウ,2020/04/01\n";
    let job = w
        .register(&w.manager, "text/csv", text.as_bytes().to_vec())
        .await;
    assert_eq!(job["status"], "failed_validation", "{job}");
    let reception = job["reception_number"].as_str().unwrap().to_owned();
    let (_, records) = w.result(&w.manager, &reception).await;
    assert!(cell(&records, "kanri09", "errors").contains("account_type.not_permitted"));
    assert_eq!(cell(&records, "staff09", "result"), "not_registered");
    assert!(!w.exists("staff09").await);

    // A master may register managers only.
    let text = "account_type,user_id,name,name_kana,usage_start\n\
                general,staff08,関守　二郎,セキモリ ジロウ,2020/04/01\n";
    let job = w
        .register(&w.master, "text/csv", text.as_bytes().to_vec())
        .await;
    assert_eq!(job["status"], "failed_validation", "{job}");

    // Only the submitter reads the job and downloads its result.
    let (status, _) = w.result(&w.master, &reception).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.job(&w.master, &reception).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.job(&w.manager, "20200101000000000_nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Staff may not upload at all, nor list.
    let password = w.create(&w.manager, "general", "staff01").await;
    let staff = w.token("staff01", &password).await;
    let (status, _, _) = w.upload(&staff, "text/csv", text.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = w
        .app
        .admin(
            &staff,
            Method::GET,
            &format!("/institutions/{CODE}/bulk-registrations"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nor may a manager upload to another institution.
    let (status, _, _) = w
        .app
        .http
        .post(
            w.app
                .url("/admin/v1/institutions/1318765432/bulk-registrations"),
        )
        .bearer_auth(&w.manager)
        .header("content-type", "text/csv")
        .body(text.as_bytes().to_vec())
        .send()
        .await
        .map(|r| (r.status(), (), ()))
        .unwrap();
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn a_second_upload_while_one_is_queued_is_409(backend: Backend) {
    // No runner on this node: the first job stays queued, deterministically.
    let Some(w) = world(backend, false).await else {
        return;
    };
    let text = "account_type,user_id,name,name_kana,usage_start\n\
                general,staff01,関守　一郎,セキモリ イチロウ,2020/04/01\n";
    let (status, _, job) = w
        .upload(&w.manager, "text/csv", text.as_bytes().to_vec())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(job["status"], "queued");
    assert_eq!(job["status_ja"], "登録待ち");
    let reception = job["reception_number"].as_str().unwrap();
    // The institution's one job in progress blocks every other upload, the master's too.
    for token in [&w.manager, &w.master] {
        let (status, headers, problem) =
            w.upload(token, "text/csv", text.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::CONFLICT, "{problem}");
        assert_eq!(headers["retry-after"], "60");
        assert_eq!(
            problem["type"],
            "https://sekimori.example/problems/bulk-registration-in-progress"
        );
    }
    // No result while queued.
    let (status, _) = w.result(&w.manager, reception).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, job) = w.job(&w.manager, reception).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["status"], "queued");
}

async fn result_passwords_are_purged_after_30_days(backend: Backend) {
    let Some(w) = world(backend, true).await else {
        return;
    };
    let text = "account_type,user_id,name,name_kana,usage_start\n\
                web_api,A0001,レセコン連携,レセコン,2020/04/01\n";
    let job = w
        .register(&w.manager, "text/csv", text.as_bytes().to_vec())
        .await;
    assert_eq!(job["status"], "done", "{job}");
    let reception = job["reception_number"].as_str().unwrap().to_owned();
    let (_, records) = w.result(&w.manager, &reception).await;
    assert!(!cell(&records, "A0001", "initial_password").is_empty());

    w.app
        .clock
        .advance(time::Duration::days(30) - time::Duration::minutes(1));
    // Tokens issued before the jump have expired on the injected clock: sign in again.
    let manager = w.token("kanri01", ADMIN_NEW_PASSWORD).await;
    let (_, records) = w.result(&manager, &reception).await;
    assert!(
        !cell(&records, "A0001", "initial_password").is_empty(),
        "kept for 30 days"
    );
    w.app.clock.advance(time::Duration::minutes(2));
    let (status, records) = w.result(&manager, &reception).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cell(&records, "A0001", "initial_password"), "");
    assert_eq!(cell(&records, "A0001", "result"), "registered");
    let (_, job) = w.job(&manager, &reception).await;
    assert_eq!(job["passwords_purged"], true);
}
