//! RP-initiated logout and back-channel logout, end to end: a relying party signs a user in,
//! ends the session with `id_token_hint`, and its back-channel receiver (a local HTTP server that
//! fails once, to exercise the retries) gets a valid logout token.

use std::sync::{Arc, Mutex};

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::routing::post;
use base64::Engine;
use reqwest::StatusCode;
use sekimori_tests::{Backend, Browser, TestApp, spawn_app, urlencode};
use serde_json::Value;

const CLINIC: &str = "1313333333";
const REDIRECT: &str = "https://rp.example/callback";
const AFTER: &str = "https://rp.example/signed-out";

#[derive(Default)]
struct Receiver {
    attempts: usize,
    tokens: Vec<String>,
}

async fn receive(
    State(seen): State<Arc<Mutex<Receiver>>>,
    Form(form): Form<Vec<(String, String)>>,
) -> AxumStatus {
    let mut seen = seen.lock().unwrap();
    seen.attempts += 1;
    if seen.attempts == 1 {
        // The first delivery fails: Sekimori must retry.
        return AxumStatus::SERVICE_UNAVAILABLE;
    }
    seen.tokens.extend(
        form.into_iter()
            .filter(|(k, _)| k == "logout_token")
            .map(|(_, v)| v),
    );
    AxumStatus::OK
}

async fn receiver() -> (String, Arc<Mutex<Receiver>>) {
    let seen = Arc::new(Mutex::new(Receiver::default()));
    let app = axum::Router::new()
        .route("/backchannel", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/backchannel",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn claims(jwt: &str, part: usize) -> Value {
    let segment = jwt.split('.').nth(part).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(segment)
            .unwrap(),
    )
    .unwrap()
}

/// Signs the master in through the code flow; returns the ID token.
async fn signed_in(app: &TestApp, browser: &mut Browser, secret: &str, initial: &str) -> String {
    let authorize = format!(
        "{}/authorize?client_id=rp&redirect_uri={}&response_type=code&scope=openid&state=s&nonce=n",
        app.base,
        urlencode(REDIRECT)
    );
    let login = browser.get(&authorize).await;
    let change = browser
        .login(&app.base, &login, CLINIC, "mst01", initial)
        .await;
    let changed = browser
        .change_password(&app.base, &change, "Sekimori#29x", "Sekimori#29x")
        .await;
    let outbox = app.settings.outbox.path.clone();
    let done = browser.second_factor(&app.base, &outbox, changed).await;
    let code = done.redirect_param("code").expect("code");
    let tokens: Value = app
        .http
        .post(app.url("/token"))
        .basic_auth("rp", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"].as_str().expect("id_token").to_owned()
}

async fn client_with_logout(app: &TestApp, backchannel: &str) -> String {
    let services = app.services().await;
    let (_, secret) = services
        .provisioner
        .create_client(
            &service::provisioning::Actor::cli(),
            service::provisioning::NewClientInput {
                client_id: "rp".into(),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![AFTER.into()],
                public: false,
                scopes: vec!["openid".into()],
                grant_types: vec!["authorization_code".into()],
                backchannel_logout_uri: Some(backchannel.into()),
                signing_alg: "EdDSA".into(),
            },
        )
        .await
        .unwrap();
    secret.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_notifies_the_back_channel() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let (url, seen) = receiver().await;
    let secret = client_with_logout(&app, &url).await;
    let mut browser = Browser::new();
    let id_token = signed_in(
        &app,
        &mut browser,
        &secret,
        &created.master.initial_password,
    )
    .await;
    let sid = claims(&id_token, 1)["sid"]
        .as_str()
        .expect("sid in the ID token")
        .to_owned();

    // An unregistered post-logout redirect is refused without redirecting.
    let bad = browser
        .get(&format!(
            "{}/session/end?id_token_hint={id_token}&post_logout_redirect_uri={}",
            app.base,
            urlencode("https://evil.example/")
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.location().is_none());

    let page = browser
        .get(&format!(
            "{}/session/end?id_token_hint={id_token}&post_logout_redirect_uri={}&state=st",
            app.base,
            urlencode(AFTER)
        ))
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location().as_deref(),
        Some(format!("{AFTER}?state=st").as_str())
    );
    assert!(browser.cookie("sekimori_session").is_none());
    assert_eq!(
        browser
            .get(&app.url("/account"))
            .await
            .location()
            .as_deref(),
        Some("/login")
    );

    // The logout token arrives after one failed attempt (retries back off from 0.5 s).
    let mut token = None;
    for _ in 0..50 {
        if let Some(t) = seen.lock().unwrap().tokens.first().cloned() {
            token = Some(t);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = token.expect("a logout token was delivered");
    assert!(
        seen.lock().unwrap().attempts >= 2,
        "the first failure was retried"
    );
    let header = claims(&token, 0);
    assert_eq!(header["typ"], "logout+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let logout = claims(&token, 1);
    assert_eq!(logout["iss"], app.base.as_str());
    assert_eq!(logout["aud"], "rp");
    assert_eq!(logout["sid"], sid.as_str());
    assert_eq!(logout["sub"], claims(&id_token, 1)["sub"]);
    assert!(logout["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(logout.get("nonce").is_none());
    // The signature verifies against the published EdDSA key.
    let (_, jwks) = app.get_json("/jwks.json").await;
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("published key");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key["x"].as_str().unwrap())
        .unwrap();
    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x)
        .verify(signing_input.as_bytes(), &signature)
        .expect("logout token signature");
}

#[tokio::test]
async fn logout_without_a_hint_asks_for_confirmation() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let (url, _) = receiver().await;
    let secret = client_with_logout(&app, &url).await;
    let mut browser = Browser::new();
    signed_in(
        &app,
        &mut browser,
        &secret,
        &created.master.initial_password,
    )
    .await;

    let page = browser
        .get(&format!(
            "{}/session/end?client_id=rp&post_logout_redirect_uri={}",
            app.base,
            urlencode(AFTER)
        ))
        .await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "a link alone does not sign anyone out"
    );
    assert!(page.body.contains("ログアウトしますか"));
    assert_eq!(
        browser.get(&app.url("/account")).await.status,
        StatusCode::OK,
        "still signed in"
    );
    let csrf = page.field("csrf_token").unwrap();
    let after = page.field("after").unwrap();
    let forged = browser
        .post(
            &app.url("/session/end/confirm"),
            &[("csrf_token", "x"), ("after", &after)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let done = browser
        .post(
            &app.url("/session/end/confirm"),
            &[("csrf_token", &csrf), ("after", &after)],
        )
        .await;
    assert_eq!(done.location().as_deref(), Some(AFTER));
    assert_eq!(
        browser
            .get(&app.url("/account"))
            .await
            .location()
            .as_deref(),
        Some("/login")
    );
}
