//! OpenID Connect core, end to end: a relying party built on the `openidconnect` crate signs a
//! user in through Sekimori's own pages (authorization code + PKCE), verifies the ID token and
//! calls userinfo; then the misuse cases.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use reqwest::StatusCode;
use sekimori_tests::{
    Backend, Browser, Page, TestApp, spawn_app, spawn_with, test_settings, urlencode,
};
use serde_json::Value;

const CLINIC: &str = "1312345678";
const REDIRECT: &str = "https://rp.example/callback";
const NEW_PASSWORD: &str = "Sekimori#29x";

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

fn http() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .expect("HTTP client")
}

async fn relying_party(app: &TestApp, client_id: &str, secret: Option<String>) -> Rp {
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http())
            .await
            .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.into()),
        secret.map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
}

struct Started {
    url: String,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn start(rp: &Rp) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("institution".into()))
        .set_pkce_challenge(challenge)
        .url();
    Started {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

/// The code from a redirect back to the client, after checking `state` and `iss` (RFC 9207).
fn code_from(app: &TestApp, page: &Page, started: &Started) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.location().unwrap().starts_with(REDIRECT));
    assert_eq!(
        page.redirect_param("state").as_deref(),
        Some(started.state.secret().as_str())
    );
    assert_eq!(
        page.redirect_param("iss").as_deref(),
        Some(app.base.as_str())
    );
    page.redirect_param("code").expect("code")
}

/// Signs the master in for the first time: the initial password, then the forced change.
async fn first_sign_in(
    app: &TestApp,
    browser: &mut Browser,
    started: &Started,
    initial: &str,
) -> String {
    let login = browser.get(&started.url).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.body.contains("name=\"institution_code\""));
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        csp.contains("form-action 'self' https://rp.example"),
        "{csp}"
    );

    let change = browser
        .login(&app.base, &login, CLINIC, "mst01", initial)
        .await;
    assert_eq!(change.status, StatusCode::OK, "{}", change.body);
    assert!(
        change.field("pending").is_some(),
        "forced change page expected"
    );
    assert!(
        browser.cookie("sekimori_session").is_none(),
        "no session before the new password"
    );

    let refused = browser
        .change_password(&app.base, &change, "abcd1234", "abcd1234")
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("3種類以上"), "{}", refused.body);

    let enroll = browser
        .change_password(&app.base, &refused, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    assert!(
        browser.cookie("sekimori_session").is_none(),
        "no session before the second factor"
    );
    // The embedded default requires a second factor everywhere; the master has none yet, so it
    // enrolls an e-mail address and types the code from the development outbox.
    let done = browser
        .second_factor(&app.base, &app.settings.outbox.path, enroll)
        .await;
    assert!(browser.cookie("sekimori_session").is_some());
    code_from(app, &done, started)
}

fn payload(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

async fn code_flow_with_pkce(backend: Backend, alg: &str) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, alg).await;
    let rp = relying_party(&app, "rp", secret).await;
    let mut browser = Browser::new();

    let started = start(&rp);
    let code = first_sign_in(
        &app,
        &mut browser,
        &started,
        &created.master.initial_password,
    )
    .await;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id_token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &started.nonce)
        .expect("valid ID token");
    assert_eq!(claims.issuer().as_str(), app.base);
    let raw_id = payload(&id_token.to_string());
    assert_eq!(raw_id["institution_code"], CLINIC);
    assert_eq!(raw_id["institution_kind"], "medical");
    assert_eq!(raw_id["account_type"], "master");
    assert_eq!(raw_id["user_id"], "mst01");
    assert_eq!(raw_id["name"], "マスタアカウント");
    assert_eq!(raw_id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(raw_id["acr"], "urn:sekimori:acr:mfa");
    assert!(raw_id["auth_time"].as_i64().is_some());
    let header = payload_header(&id_token.to_string());
    assert_eq!(header["alg"], alg);

    let access = tokens.access_token().secret();
    let at_header = payload_header(access);
    assert_eq!(at_header["typ"], "at+jwt");
    let at = payload(access);
    assert_eq!(at["client_id"], "rp");
    assert_eq!(at["sub"], raw_id["sub"]);

    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), raw_id["sub"].as_str().unwrap());
    let raw_info: Value = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw_info["user_id"], "mst01");
    assert_eq!(raw_info["name_kana"], "マスタアカウント");

    // Single sign-on: a second authorization in the same browser needs no login page.
    let again = start(&rp);
    let page = browser.get(&again.url).await;
    let code = code_from(&app, &page, &again);
    let second = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(again.verifier)
        .request_async(&http())
        .await
        .expect("second exchange");
    let second_claims = second
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &again.nonce)
        .unwrap();
    assert_eq!(second_claims.subject(), claims.subject(), "sub is stable");
}

fn payload_header(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn sqlite_code_flow_rs256() {
    code_flow_with_pkce(Backend::Sqlite, "RS256").await;
}

#[tokio::test]
async fn sqlite_code_flow_es256() {
    code_flow_with_pkce(Backend::Sqlite, "ES256").await;
}

#[tokio::test]
async fn sqlite_code_flow_eddsa() {
    code_flow_with_pkce(Backend::Sqlite, "EdDSA").await;
}

#[tokio::test]
async fn postgres_code_flow_rs256() {
    code_flow_with_pkce(Backend::Postgres, "RS256").await;
}

/// A signed-in browser and a started authorization, for the misuse cases.
async fn signed_in(app: &TestApp, rp: &Rp, browser: &mut Browser, initial: &str) -> Started {
    let first = start(rp);
    first_sign_in(app, browser, &first, initial).await;
    start(rp)
}

async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = app.http.post(app.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn misuse_is_refused() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, "RS256").await.unwrap();
    let rp = relying_party(&app, "rp", Some(secret.clone())).await;
    let mut browser = Browser::new();
    let started = signed_in(&app, &rp, &mut browser, &created.master.initial_password).await;

    // Wrong PKCE verifier.
    let code = code_from(&app, &browser.get(&started.url).await, &started);
    let wrong = PkceCodeVerifier::new("x".repeat(43));
    let err = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(wrong)
        .request_async(&http())
        .await;
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");

    // Reused code: refused, and the tokens of the first exchange are revoked.
    let started = start(&rp);
    let code = code_from(&app, &browser.get(&started.url).await, &started);
    let verifier = started.verifier.secret().to_owned();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.clone()))
        .request_async(&http())
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();
    let ok = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let (status, _, body) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
        Some(("rp", &secret)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let revoked = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert!(
        revoked.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // Wrong redirect URI at the token endpoint.
    let started = start(&rp);
    let code = code_from(&app, &browser.get(&started.url).await, &started);
    let (status, _, body) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example/other"),
            ("code_verifier", started.verifier.secret()),
        ],
        Some(("rp", &secret)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Wrong client secret: 401 with WWW-Authenticate, by Basic and by post.
    let (status, headers, body) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
        ],
        Some(("rp", "wrong")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let (status, _, _) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("client_id", "rp"),
            ("client_secret", "wrong"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = token_request(
        &app,
        &[("grant_type", "authorization_code")],
        Some(("nobody", "x")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // client_secret_post works.
    let started = start(&rp);
    let code = code_from(&app, &browser.get(&started.url).await, &started);
    let (status, headers, body) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", started.verifier.secret()),
            ("client_id", "rp"),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");

    // An expired code (60 s) through the injected clock.
    let started = start(&rp);
    let code = code_from(&app, &browser.get(&started.url).await, &started);
    app.clock.advance(time::Duration::seconds(61));
    let err = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await;
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");

    // Unsupported grant type.
    let (status, _, body) =
        token_request(&app, &[("grant_type", "password")], Some(("rp", &secret))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn authorization_errors_stay_or_go_back_as_the_rfc_says() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.institution(CLINIC).await;
    app.client("rp", REDIRECT, false, "RS256").await;
    app.client("spa", REDIRECT, true, "ES256").await;
    let mut browser = Browser::new();
    let authorize = |query: &str| format!("{}/authorize?{query}", app.base);
    let redirect = urlencode(REDIRECT);

    // Unknown client and unregistered redirect URI: an error page, never a redirect.
    let page = browser
        .get(&authorize(&format!(
            "client_id=nobody&redirect_uri={redirect}&response_type=code&scope=openid"
        )))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
    assert!(page.body.contains("登録されていません"));
    let evil = urlencode("https://evil.example/cb");
    let page = browser
        .get(&authorize(&format!(
            "client_id=rp&redirect_uri={evil}&response_type=code&scope=openid"
        )))
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location().is_none());
    browser.accept_language = "en-US,en;q=0.9";
    let page = browser
        .get(&authorize(&format!(
            "client_id=rp&redirect_uri={evil}&response_type=code&scope=openid"
        )))
        .await;
    assert!(
        page.body.contains("does not match a registered one"),
        "{}",
        page.body
    );
    browser.accept_language = "ja";

    let back = |page: &Page| {
        (
            page.redirect_param("error").unwrap_or_default(),
            page.redirect_param("state").unwrap_or_default(),
        )
    };
    let base = format!("client_id=rp&redirect_uri={redirect}&state=xyz");
    let cases = [
        (
            "&response_type=token&scope=openid",
            "unsupported_response_type",
        ),
        ("&response_type=code&scope=profile", "invalid_scope"),
        ("&response_type=code&scope=openid%20email", "invalid_scope"),
        (
            "&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=plain",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid&prompt=none",
            "login_required",
        ),
        (
            "&response_type=code&scope=openid&request=eyJ",
            "request_not_supported",
        ),
        (
            "&response_type=code&scope=openid&scope=openid",
            "invalid_request",
        ),
        (
            "&response_type=code&scope=openid&max_age=-1",
            "invalid_request",
        ),
    ];
    for (extra, expected) in cases {
        let page = browser.get(&authorize(&format!("{base}{extra}"))).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{extra}");
        assert_eq!(
            back(&page),
            (expected.to_owned(), "xyz".to_owned()),
            "{extra}"
        );
        assert_eq!(
            page.redirect_param("iss").as_deref(),
            Some(app.base.as_str())
        );
    }
    // Public clients must use PKCE.
    let page = browser
        .get(&authorize(&format!(
            "client_id=spa&redirect_uri={redirect}&response_type=code&scope=openid&state=s"
        )))
        .await;
    assert_eq!(back(&page).0, "invalid_request");
    // With PKCE S256 the login page is shown.
    let page = browser
        .get(&authorize(&format!(
            "client_id=spa&redirect_uri={redirect}&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&login_hint=mst01%40{CLINIC}"
        )))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.field("user_id").as_deref(), Some("mst01"));
    assert_eq!(page.field("institution_code").as_deref(), Some(CLINIC));
}

#[tokio::test]
async fn login_failures_are_generic_and_forms_need_their_csrf_token() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, "RS256").await;
    let rp = relying_party(&app, "rp", secret).await;
    let mut browser = Browser::new();
    let started = start(&rp);
    let login = browser.get(&started.url).await;

    let mut bodies = Vec::new();
    for (code, user, password) in [
        (CLINIC, "mst01", "Wrong#Pass99"),
        (CLINIC, "nobody", "Wrong#Pass99"),
        ("1319999999", "mst01", "Wrong#Pass99"),
        ("abc", "mst01", "x"),
    ] {
        let page = browser.login(&app.base, &login, code, user, password).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(
            page.body.contains("ログインできませんでした"),
            "{}",
            page.body
        );
        assert!(browser.cookie("sekimori_session").is_none());
        // The page differs only in what was typed back into the fields.
        bodies.push(
            page.body
                .replace(code, "")
                .replace(user, "")
                .split("name=\"csrf_token\"")
                .next()
                .unwrap()
                .len(),
        );
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "failure pages must not differ: {bodies:?}"
    );

    // Posting without the CSRF cookie's token is refused.
    let req = login.field("req").unwrap();
    let page = browser
        .post(
            &app.url("/login"),
            &[
                ("csrf_token", "forged"),
                ("req", &req),
                ("institution_code", CLINIC),
                ("user_id", "mst01"),
                ("password", &created.master.initial_password),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let mut stranger = Browser::new();
    let csrf = login.field("csrf_token").unwrap();
    let page = stranger
        .post(
            &app.url("/login"),
            &[
                ("csrf_token", &csrf),
                ("req", &req),
                ("institution_code", CLINIC),
                ("user_id", "mst01"),
                ("password", &created.master.initial_password),
            ],
        )
        .await;
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "a token without its cookie is refused"
    );

    // The audit log has the real reasons; the page never did.
    let services = app.services().await;
    let events = services
        .store
        .list_audit(
            &store::AuditFilter {
                kind: Some("login.failure".into()),
                ..Default::default()
            },
            100,
        )
        .await
        .unwrap();
    let reasons: Vec<_> = events
        .iter()
        .map(|e| e.event.reason.clone().unwrap())
        .collect();
    assert_eq!(
        reasons,
        [
            "wrong_password",
            "unknown_account",
            "unknown_account",
            "malformed_institution_code"
        ]
    );

    // English when the browser prefers it.
    browser.accept_language = "en";
    let page = browser
        .login(&app.base, &login, CLINIC, "mst01", "Wrong#Pass99")
        .await;
    assert!(page.body.contains("Sign-in failed"), "{}", page.body);
}

#[tokio::test]
async fn max_age_and_prompt_login_ask_again() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, "RS256").await;
    let rp = relying_party(&app, "rp", secret).await;
    let mut browser = Browser::new();
    let started = signed_in(&app, &rp, &mut browser, &created.master.initial_password).await;
    assert_eq!(
        browser.get(&started.url).await.status,
        StatusCode::SEE_OTHER
    );

    app.clock.advance(time::Duration::minutes(5));
    let page = browser.get(&format!("{}&max_age=60", started.url)).await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "a sign-in older than max_age needs the login page"
    );
    let page = browser.get(&format!("{}&prompt=login", started.url)).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = browser.get(&format!("{}&prompt=none", started.url)).await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "prompt=none with a live session succeeds"
    );
    assert!(page.redirect_param("code").is_some());

    // Past the idle timeout the session is gone.
    app.clock.advance(time::Duration::minutes(31));
    let page = browser.get(&format!("{}&prompt=none", started.url)).await;
    assert_eq!(
        page.redirect_param("error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn key_rotation_keeps_earlier_tokens_verifiable_until_they_expire() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, "RS256").await;
    let rp = relying_party(&app, "rp", secret.clone()).await;
    let mut browser = Browser::new();
    let started = start(&rp);
    let code = first_sign_in(
        &app,
        &mut browser,
        &started,
        &created.master.initial_password,
    )
    .await;
    let before = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .unwrap();
    let old_kid = payload_header(before.access_token().secret())["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let services = app.services().await;
    let rotated = idp::keys::rotate(
        services.store.as_ref(),
        &services.sealer,
        services.clock.as_ref(),
        &["RS256"],
    )
    .await
    .unwrap();
    assert_eq!(rotated[0].retired, std::slice::from_ref(&old_kid));
    // A restarted node loads the rotation (running nodes reload every keys.reload_seconds).
    let app = app.stop().await.restart().await;
    let (_, jwks) = app.get_json("/jwks.json").await;
    let rs256: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == "RS256")
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(rs256.len(), 2, "the retired key stays published: {jwks}");
    assert!(rs256.contains(&old_kid.as_str()));
    let ok = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(before.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "a token signed before the rotation still verifies"
    );

    // New tokens are signed with the new key.
    let rp = relying_party(&app, "rp", secret).await;
    let mut browser = Browser::new();
    let started = start(&rp);
    let login = browser.get(&started.url).await;
    // Past the resend cooldown of the first sign-in's code, so a new code is sent.
    app.clock.advance(time::Duration::seconds(61));
    let password = browser
        .login(&app.base, &login, CLINIC, "mst01", NEW_PASSWORD)
        .await;
    let outbox = app.settings.outbox.path.clone();
    let done = browser.second_factor(&app.base, &outbox, password).await;
    let code = code_from(&app, &done, &started);
    let after = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .unwrap();
    after
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &started.nonce)
        .expect("verifies against the new JWKS");
    let new_kid = payload_header(after.access_token().secret())["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_kid, old_kid);

    // Once every token the old key signed has expired, it leaves JWKS.
    app.clock.advance(time::Duration::hours(1));
    let app = app.stop().await.restart().await;
    let (_, jwks) = app.get_json("/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        !kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{jwks}"
    );
}

#[tokio::test]
async fn introspection_and_revocation() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, "ES256").await.unwrap();
    let other_secret = app.client("other", REDIRECT, false, "ES256").await.unwrap();
    app.client("spa", REDIRECT, true, "ES256").await;
    let rp = relying_party(&app, "rp", Some(secret.clone())).await;
    let mut browser = Browser::new();
    let started = start(&rp);
    let code = first_sign_in(
        &app,
        &mut browser,
        &started,
        &created.master.initial_password,
    )
    .await;
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .unwrap();
    let access = tokens.access_token().secret().clone();

    let introspect = |client: &'static str, secret: String, token: String| {
        let app = &app;
        async move {
            app.post_basic("/introspect", client, &secret, &[("token", &token)])
                .await
        }
    };
    let (status, body) = introspect("rp", secret.clone(), access.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["client_id"], "rp");
    assert_eq!(body["username"], format!("mst01@{CLINIC}"));
    assert_eq!(body["account_type"], "master");
    assert!(body.get("gid").is_none());
    let (_, body) = introspect("rp", secret.clone(), "not-a-token".into()).await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    let (status, _) = introspect("rp", "wrong".into(), access.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let public = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", access.as_str()), ("client_id", "spa")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        public.status(),
        StatusCode::UNAUTHORIZED,
        "public clients cannot introspect"
    );

    // Another client cannot revoke rp's token (200, but nothing happens).
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("other", Some(other_secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(
        introspect("rp", secret.clone(), access.clone()).await.1["active"],
        true
    );
    // The owner revokes: introspection and userinfo stop accepting it; revoking again is fine.
    for _ in 0..2 {
        let revoked = app
            .http
            .post(app.url("/revoke"))
            .basic_auth("rp", Some(secret.clone()))
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
    }
    assert_eq!(
        introspect("rp", secret.clone(), access.clone()).await.1["active"],
        false
    );
    let info = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    let (_, doc) = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["introspection_endpoint"], app.url("/introspect"));
    assert_eq!(doc["revocation_endpoint"], app.url("/revoke"));
}

/// A confidential client allowed `offline_access` and the refresh token grant.
async fn offline_client(app: &TestApp) -> String {
    let services = app.services().await;
    let (_, secret) = services
        .provisioner
        .create_client(
            &service::provisioning::Actor::cli(),
            service::provisioning::NewClientInput {
                client_id: "offline".into(),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec![],
                public: false,
                scopes: ["openid", "profile", "institution", "offline_access"]
                    .map(String::from)
                    .to_vec(),
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                backchannel_logout_uri: None,
                signing_alg: "ES256".into(),
            },
        )
        .await
        .unwrap();
    secret.unwrap()
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reuse_revokes_the_family() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = offline_client(&app).await;
    let rp = relying_party(&app, "offline", Some(secret.clone())).await;
    let mut browser = Browser::new();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let started = Started {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    };
    let code = first_sign_in(
        &app,
        &mut browser,
        &started,
        &created.master.initial_password,
    )
    .await;
    let first = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .unwrap();
    let r1 = first
        .refresh_token()
        .expect("a refresh token for offline_access")
        .clone();

    // Each use returns a new refresh token and fresh tokens.
    let second = rp
        .exchange_refresh_token(&r1)
        .unwrap()
        .request_async(&http())
        .await
        .expect("refresh");
    let r2 = second.refresh_token().expect("rotated").clone();
    assert_ne!(r1.secret(), r2.secret());
    let id = second.id_token().expect("an ID token on refresh");
    assert_eq!(
        payload(&id.to_string())["sub"],
        payload(&first.id_token().unwrap().to_string())["sub"]
    );
    let access = second.access_token().secret().clone();
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // A token that names r2's row with another secret is unknown: refused, and r2's family
    // lives on (nothing spent, nothing revoked).
    let mut forged = r2.secret().clone().into_bytes();
    let at = forged.len() / 2 + 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = RefreshToken::new(String::from_utf8(forged).unwrap());
    let refused = rp
        .exchange_refresh_token(&forged)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(
        format!("{refused:?}").contains("invalid_grant"),
        "{refused:?}"
    );
    let described: Value = app
        .http
        .post(app.url("/introspect"))
        .basic_auth("offline", Some(&secret))
        .form(&[("token", r2.secret().as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(described["active"], true, "{described}");

    // Reusing the spent r1 fails and ends the family: r2 and its access token die with it.
    let reuse = rp
        .exchange_refresh_token(&r1)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(format!("{reuse:?}").contains("invalid_grant"), "{reuse:?}");
    let after = rp
        .exchange_refresh_token(&r2)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(format!("{after:?}").contains("invalid_grant"), "{after:?}");
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let services = app.services().await;
    let reuses = services
        .store
        .list_audit(
            &store::AuditFilter {
                kind: Some("token.refresh_reuse".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(reuses.len(), 1);

    // A new family: idle expiry through the clock, and a locked account is refused.
    let again = start_offline(&rp);
    let code = code_from(&app, &browser.get(&again.url).await, &again);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(again.verifier)
        .request_async(&http())
        .await
        .unwrap();
    let r = tokens.refresh_token().unwrap().clone();
    app.clock.advance(time::Duration::hours(23));
    let tokens = rp
        .exchange_refresh_token(&r)
        .unwrap()
        .request_async(&http())
        .await
        .expect("within the idle time");
    let r = tokens.refresh_token().unwrap().clone();
    app.clock.advance(time::Duration::hours(25));
    let idle = rp
        .exchange_refresh_token(&r)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(
        format!("{idle:?}").contains("invalid_grant"),
        "idle refresh token must expire: {idle:?}"
    );

    let again = start_offline(&rp);
    let page = browser.get(&again.url).await;
    let login = if page.status == StatusCode::OK {
        let password = browser
            .login(&app.base, &page, CLINIC, "mst01", NEW_PASSWORD)
            .await;
        let outbox = app.settings.outbox.path.clone();
        browser.second_factor(&app.base, &outbox, password).await
    } else {
        page
    };
    let code = code_from(&app, &login, &again);
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(again.verifier)
        .request_async(&http())
        .await
        .unwrap();
    let r = tokens.refresh_token().unwrap().clone();
    let account = services
        .store
        .find_account(&policies::InstitutionCode::parse(CLINIC).unwrap(), "mst01")
        .await
        .unwrap()
        .unwrap();
    services
        .store
        .set_lock(
            account.id,
            policies::lockout::LockState::Admin,
            Some(service::Clock::now(&app.clock)),
        )
        .await
        .unwrap();
    let locked = rp
        .exchange_refresh_token(&r)
        .unwrap()
        .request_async(&http())
        .await;
    assert!(
        format!("{locked:?}").contains("invalid_grant"),
        "{locked:?}"
    );
}

#[tokio::test]
async fn refresh_tokens_are_introspected_and_revoked_by_their_own_client() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = offline_client(&app).await;
    let other_secret = app.client("other", REDIRECT, false, "ES256").await.unwrap();
    let rp = relying_party(&app, "offline", Some(secret.clone())).await;
    let mut browser = Browser::new();
    let started = start_offline(&rp);
    let code = first_sign_in(
        &app,
        &mut browser,
        &started,
        &created.master.initial_password,
    )
    .await;
    let first = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .unwrap();
    let r1 = first.refresh_token().unwrap().secret().clone();
    let sub = payload(&first.id_token().unwrap().to_string())["sub"].clone();

    let call = |path: &'static str, client: &'static str, secret: String, token: String| {
        let app = &app;
        async move {
            let form = [
                ("token", token.as_str()),
                ("token_type_hint", "refresh_token"),
            ];
            app.post_basic(path, client, &secret, &form).await
        }
    };

    let (status, body) = call("/introspect", "offline", secret.clone(), r1.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "refresh_token");
    assert_eq!(body["client_id"], "offline");
    assert_eq!(body["sub"], sub);
    assert_eq!(body["username"], format!("mst01@{CLINIC}"));
    assert!(
        body["scope"].as_str().unwrap().contains("offline_access"),
        "{body}"
    );
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
    // Another client learns nothing about it and cannot revoke it.
    let (_, body) = call("/introspect", "other", other_secret.clone(), r1.clone()).await;
    assert_eq!(body, serde_json::json!({ "active": false }));
    let (status, _) = call("/revoke", "other", other_secret.clone(), r1.clone()).await;
    assert_eq!(status, StatusCode::OK);

    // A rotation spends r1: it is no longer active, its successor is.
    let second = rp
        .exchange_refresh_token(&RefreshToken::new(r1.clone()))
        .unwrap()
        .request_async(&http())
        .await
        .expect("r1 still works after the other client's revocation attempt");
    let r2 = second.refresh_token().unwrap().secret().clone();
    let access = second.access_token().secret().clone();
    let (_, body) = call("/introspect", "offline", secret.clone(), r1.clone()).await;
    assert_eq!(body["active"], false);
    let (_, body) = call("/introspect", "offline", secret.clone(), r2.clone()).await;
    assert_eq!(body["active"], true);

    // The owner revokes r2 (RFC 7009): the family and its access tokens end; again is fine.
    for _ in 0..2 {
        let (status, _) = call("/revoke", "offline", secret.clone(), r2.clone()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, body) = call("/introspect", "offline", secret.clone(), r2.clone()).await;
    assert_eq!(body["active"], false);
    let refused = rp
        .exchange_refresh_token(&RefreshToken::new(r2.clone()))
        .unwrap()
        .request_async(&http())
        .await;
    assert!(
        format!("{refused:?}").contains("invalid_grant"),
        "{refused:?}"
    );
    assert_eq!(
        app.http
            .get(app.url("/userinfo"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let revocations = app
        .services()
        .await
        .store
        .list_audit(
            &store::AuditFilter {
                kind: Some("token.revoke".into()),
                ..Default::default()
            },
            10,
        )
        .await
        .unwrap();
    assert_eq!(revocations.len(), 1, "one revocation, by the owner");
    assert_eq!(
        revocations[0].event.reason.as_deref(),
        Some("refresh_token")
    );
}

fn start_offline(rp: &Rp) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    Started {
        url: url.to_string(),
        state,
        nonce,
        verifier,
    }
}

/// The ID token of an authorization that ended on `page` (a redirect back with a code).
async fn id_token_after(app: &TestApp, page: &Page, secret: &str) -> Value {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let code = page.redirect_param("code").expect("code");
    let (status, _, body) = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ],
        Some(("rp", secret)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    payload(body["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn acr_values_step_up_to_a_second_factor_even_on_a_trusted_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let secret = app.client("rp", REDIRECT, false, "RS256").await.unwrap();
    let authorize = |extra: &str| {
        format!(
            "{}/authorize?response_type=code&client_id=rp&redirect_uri={}&scope=openid&state=s1&nonce=n1{extra}",
            app.base,
            urlencode(REDIRECT)
        )
    };
    let mut browser = Browser::new();

    // From the trusted network a password is enough: acr password, amr [pwd].
    let login = browser.get(&authorize("")).await;
    let change = browser
        .login(
            &app.base,
            &login,
            CLINIC,
            "mst01",
            &created.master.initial_password,
        )
        .await;
    let done = browser
        .change_password(&app.base, &change, NEW_PASSWORD, NEW_PASSWORD)
        .await;
    let id = id_token_after(&app, &done, &secret).await;
    assert_eq!(id["acr"], "urn:sekimori:acr:password");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    let first_auth_time = id["auth_time"].as_i64().unwrap();

    // acr_values demands the second factor: the password-only session does not do, and the new
    // sign-in asks for a code although the network is trusted.
    let step_up = "&acr_values=urn%3Asekimori%3Aacr%3Amfa";
    let login = browser.get(&authorize(step_up)).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert!(login.body.contains("name=\"password\""));
    // Listing the password level too keeps the session (a voluntary request).
    let relaxed = browser
        .get(&authorize(
            "&acr_values=urn%3Asekimori%3Aacr%3Amfa%20urn%3Asekimori%3Aacr%3Apassword",
        ))
        .await;
    assert_eq!(relaxed.status, StatusCode::SEE_OTHER);
    app.clock.advance(time::Duration::minutes(2));
    let sent_before = app.outbox().len();
    let second = browser
        .login(&app.base, &login, CLINIC, "mst01", NEW_PASSWORD)
        .await;
    assert!(
        second.body.contains("/login/second-factor/enroll")
            || second.body.contains("/second-factor/verify"),
        "a second factor is asked for: {}",
        second.body
    );
    let done = browser
        .second_factor(&app.base, &app.settings.outbox.path, second)
        .await;
    assert!(app.outbox().len() > sent_before, "a code went out");
    let id = id_token_after(&app, &done, &secret).await;
    assert_eq!(id["acr"], "urn:sekimori:acr:mfa");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert!(id["auth_time"].as_i64().unwrap() > first_auth_time);

    // The stepped-up session satisfies the next request at once...
    let again = browser.get(&authorize(step_up)).await;
    let id = id_token_after(&app, &again, &secret).await;
    assert_eq!(id["acr"], "urn:sekimori:acr:mfa");

    // ...unless max_age asks for a fresher one: password and a new code again.
    app.clock.advance(time::Duration::minutes(2));
    let login = browser
        .get(&authorize(&format!("{step_up}&max_age=60")))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let code_page = browser
        .login(&app.base, &login, CLINIC, "mst01", NEW_PASSWORD)
        .await;
    assert!(
        code_page.body.contains("/second-factor/verify"),
        "{}",
        code_page.body
    );
    let done = browser
        .second_factor(&app.base, &app.settings.outbox.path, code_page)
        .await;
    let fresh = id_token_after(&app, &done, &secret).await;
    assert_eq!(fresh["acr"], "urn:sekimori:acr:mfa");
    assert!(fresh["auth_time"].as_i64().unwrap() > id["auth_time"].as_i64().unwrap());

    // Discovery lists the acr values and the grants.
    let (_, doc) = app.get_json("/.well-known/openid-configuration").await;
    assert_eq!(
        doc["acr_values_supported"],
        serde_json::json!(["urn:sekimori:acr:password", "urn:sekimori:acr:mfa"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
    );
}

/// Signs `user_id` of the clinic in through a browser of its own (the forced change to
/// [`NEW_PASSWORD`] when `password` is an initial one, then the second factor) and returns a
/// refresh token of a new family for the offline client.
async fn new_family(app: &TestApp, rp: &Rp, user_id: &str, password: &str) -> RefreshToken {
    let mut browser = Browser::new();
    let started = start_offline(rp);
    let login = browser.get(&started.url).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let mut page = browser
        .login(&app.base, &login, CLINIC, user_id, password)
        .await;
    if page.field("pending").is_some() {
        page = browser
            .change_password(&app.base, &page, NEW_PASSWORD, NEW_PASSWORD)
            .await;
    }
    let page = browser
        .second_factor(&app.base, &app.settings.outbox.path, page)
        .await;
    let code = code_from(app, &page, &started);
    rp.exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http())
        .await
        .expect("code exchange")
        .refresh_token()
        .expect("a refresh token for offline_access")
        .clone()
}

/// Refreshes once: the rotated token, or the error as text.
async fn refresh(rp: &Rp, token: &RefreshToken) -> Result<RefreshToken, String> {
    rp.exchange_refresh_token(token)
        .unwrap()
        .request_async(&http())
        .await
        .map(|response| response.refresh_token().expect("rotated").clone())
        .map_err(|e| format!("{e:?}"))
}

/// SPEC §8: a refresh token is refused once its account is outside its usage dates, disabled,
/// locked (also after the unlock), reset or deleted, or its institution's settings changed. The institution's master makes each
/// change through the admin API, and each change meets a family of its own; an account that was
/// not changed keeps its family.
#[tokio::test]
async fn refresh_is_refused_after_each_administrative_change() {
    use reqwest::Method;
    // Loopback is trusted, so no second factor is asked: every account here would enroll the
    // test helper's one address, whose codes the send cooldown and daily caps limit, and
    // tests/second_factor.rs covers that step.
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut settings = test_settings(&dir);
    settings.second_factor.trusted_networks = vec![policies::Cidr::parse("127.0.0.0/8").unwrap()];
    // One person signs in a dozen times here, more than a minute's sign-ins per account allow.
    settings.limits.login_per_account_per_minute = 1_000;
    let Some(app) = spawn_with(Backend::Sqlite, dir, settings).await else {
        return;
    };
    let created = app.institution(CLINIC).await;
    let admin_secret = app.admin_client().await;
    let master = app
        .admin_token(
            &admin_secret,
            CLINIC,
            "mst01",
            &created.master.initial_password,
        )
        .await;
    let secret = offline_client(&app).await;
    let rp = relying_party(&app, "offline", Some(secret)).await;
    // The master manages the institution's settings and its managers; a manager manages the
    // general accounts (SPEC §2).
    let password = app
        .create_account(&master, CLINIC, "manager", "mgr01")
        .await;
    let mut manager = app
        .admin_token(&admin_secret, CLINIC, "mgr01", &password)
        .await;
    let initial = [
        app.create_account(&manager, CLINIC, "general", "u0001")
            .await,
        app.create_account(&manager, CLINIC, "general", "u0002")
            .await,
    ];
    let first = new_family(&app, &rp, "u0001", &initial[0]).await;
    refresh(&rp, &first).await.expect("a live family refreshes");
    let account = format!("/institutions/{CLINIC}/accounts/u0001");
    let yesterday = (service::Clock::now(&app.clock) - time::Duration::days(1)).date();
    let refused = |what: &str, result: Result<RefreshToken, String>| match result {
        Err(e) if e.contains("invalid_grant") => {}
        other => panic!("{what}: the refresh must be refused with invalid_grant: {other:?}"),
    };

    // Each change is made while a family is alive; the same family is refused afterwards.
    let changes = [
        (
            "usage ended",
            serde_json::json!({"usage_end": yesterday.to_string()}),
            serde_json::json!({"usage_end": "9999-12-31"}),
        ),
        (
            "disabled",
            serde_json::json!({"enabled": false}),
            serde_json::json!({"enabled": true}),
        ),
    ];
    for (what, change, undo) in changes {
        let token = new_family(&app, &rp, "u0001", NEW_PASSWORD).await;
        let (status, _, body) = app
            .admin(&manager, Method::PATCH, &account, Some(change))
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
        refused(what, refresh(&rp, &token).await);
        let (status, _, body) = app
            .admin(&manager, Method::PATCH, &account, Some(undo))
            .await;
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }

    // A lock by failed sign-ins (an admin lock also revokes the grants) ends the families issued
    // before it, although none was presented while it lasted: the unlock revives none, and a
    // family begun after the unlock lives.
    let token = new_family(&app, &rp, "u0001", NEW_PASSWORD).await;
    app.clock.advance(time::Duration::seconds(1));
    let mut browser = Browser::new();
    for _ in 0..5 {
        let login = browser.get(&start_offline(&rp).url).await;
        let page = browser
            .login(&app.base, &login, CLINIC, "u0001", "not-the-password-1")
            .await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{}", page.body);
    }
    let (status, _, body) = app.admin(&manager, Method::GET, &account, None).await;
    assert_eq!(
        (status, &body["lock"]),
        (StatusCode::OK, &serde_json::json!("failures")),
        "{body}"
    );
    let (status, _, body) = app
        .admin(&manager, Method::POST, &format!("{account}/unlock"), None)
        .await;
    assert!(status.is_success(), "unlock: {status}: {body}");
    refused("locked, then unlocked", refresh(&rp, &token).await);
    let token = new_family(&app, &rp, "u0001", NEW_PASSWORD).await;
    refresh(&rp, &token)
        .await
        .expect("a family begun after the unlock lives");

    // The institution's settings change: every family of the institution ends, the admins'
    // own access tokens included.
    let token = new_family(&app, &rp, "u0001", NEW_PASSWORD).await;
    let (status, _, body) = app
        .admin(
            &master,
            Method::PUT,
            &format!("/institutions/{CLINIC}/settings"),
            Some(serde_json::json!({"lockout_threshold": 4})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused("settings changed", refresh(&rp, &token).await);
    manager = app
        .admin_token(
            &admin_secret,
            CLINIC,
            "mgr01",
            sekimori_tests::ADMIN_NEW_PASSWORD,
        )
        .await;

    // A password reset ends the reset account's families, and only those.
    let token = new_family(&app, &rp, "u0001", NEW_PASSWORD).await;
    let other = new_family(&app, &rp, "u0002", &initial[1]).await;
    let (status, _, body) = app
        .admin(
            &manager,
            Method::POST,
            &format!("{account}/password-reset"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    refused("reset", refresh(&rp, &token).await);
    let other = refresh(&rp, &other)
        .await
        .expect("another account's family lives on");

    // Deleting the account ends its family.
    let (status, _, body) = app
        .admin(
            &manager,
            Method::DELETE,
            &format!("/institutions/{CLINIC}/accounts/u0002"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}: {body}");
    refused("deleted", refresh(&rp, &other).await);
}
