//! The drivers against real protocol peers on 127.0.0.1, each started by the test that uses it
//! and killed when it ends: aiosmtpd (SMTP, writing a maildir), moto (SNS), the stdlib voice
//! stand-in `scripts/peers/voice_server.py`, and an in-process axum webhook receiver.
//!
//! The Python peers come from `scripts/peers/install` (idempotent; it prints the interpreter to
//! use). When they cannot be installed, the tests that need them fail under `CI=true` and are
//! skipped with a note otherwise. `SEKIMORI_PEERS_PYTHON` names an interpreter that already has
//! them and skips the install.
//!
//! AWS clients get fixed test credentials ([`AwsCredentials::Static`]): no AWS configuration
//! file or environment variable of the developer is read.

use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use delivery::{
    AwsCredentials, Channel, Channels, Deliver, DeliveryConfig, DeliveryError, Locale, Message,
    Method, OutboxDriver, Secret, SmtpTls, signature,
};
use serde_json::Value;

const CODE: &str = "482913";

use test_peers::{Peer, free_port, python as peers_python};

fn test_credentials() -> AwsCredentials {
    AwsCredentials::Static(Credentials::new("test", "test", None, None, "test"))
}

/// Every method through the outbox, with the test's changes on top.
fn config(change: impl FnOnce(&mut DeliveryConfig)) -> DeliveryConfig {
    let mut config = DeliveryConfig::outbox();
    config.timeout_secs = 5;
    change(&mut config);
    config
}

fn channels(config: &DeliveryConfig, dir: &Path) -> Channels {
    Channels::build_with(config, &dir.join("outbox.jsonl"), false, test_credentials())
        .expect("valid test configuration")
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .and_then(|r| r.error_for_status())
        .expect("peer answers")
        .json()
        .await
        .expect("peer answers JSON")
}

async fn post_json(url: &str, body: Value) {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("peer answers");
}

#[tokio::test]
async fn smtp_delivers_a_japanese_mail_with_the_code() {
    let Some(python) = peers_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    let smtp = Peer::smtp(&python, &maildir, dir.path());
    let config = config(|c| {
        c.email = Channel::Smtp;
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = smtp.port;
        c.smtp.from = "関守 <no-reply@sekimori.example.jp>".into();
        c.smtp.tls = SmtpTls::None;
    });
    let channels = channels(&config, dir.path());

    let msg = Message::new(
        Method::Email,
        "Taro.Yamada@Clinic.Example.JP",
        CODE,
        Locale::Ja,
    );
    let receipt = channels.deliver(&msg).await.expect("delivered");
    assert_eq!(receipt.driver, "smtp");

    let mails = test_peers::read_maildir(&python, &maildir);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["to"], "Taro.Yamada@clinic.example.jp");
    assert!(
        mail["from"]
            .as_str()
            .unwrap()
            .contains("no-reply@sekimori.example.jp")
    );
    assert_eq!(mail["subject"], "【関守】認証コードのお知らせ");
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains(CODE) && body.contains("5分間"), "{body}");
}

#[tokio::test]
async fn sns_publishes_a_transactional_sms_in_e164() {
    let Some(python) = peers_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let moto = Peer::moto(&python, dir.path());
    let config = config(|c| {
        c.sms = Channel::Sns;
        c.sns.region = "ap-northeast-1".into();
        c.sns.endpoint = moto.url();
    });
    let channels = channels(&config, dir.path());

    let msg = Message::new(Method::Sms, "０９０-1234-5678", CODE, Locale::Ja);
    let receipt = channels.deliver(&msg).await.expect("published");
    assert_eq!(receipt.driver, "sns");
    assert!(receipt.provider_id.is_some());

    // moto keeps the SMS it "sent" under sns.SMS: [{phone_number, message, message_id}].
    let data = get_json(&format!("{}/moto-api/data.json", moto.url())).await;
    let sms = data["sns"]["SMS"].as_array().expect("sns.SMS list");
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert_eq!(sms[0]["phone_number"], "+819012345678");
    assert_eq!(
        sms[0]["message"],
        format!("関守 認証コード: {CODE}（5分間有効）他人に教えないでください。")
    );

    // A fixed line never reaches the provider: SMS goes to mobiles only.
    let fixed = Message::new(Method::Sms, "03-1234-5678", CODE, Locale::Ja);
    let err = channels.deliver(&fixed).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Rejected { .. }), "{err:?}");
    let data = get_json(&format!("{}/moto-api/data.json", moto.url())).await;
    assert_eq!(data["sns"]["SMS"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn voice_reads_the_code_twice_in_ssml_with_the_configured_voice() {
    let Some(python) = peers_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let peer = Peer::voice(&python, dir.path());
    let config = config(|c| {
        c.voice = Channel::Voice;
        c.voice_provider.region = "ap-northeast-1".into();
        c.voice_provider.endpoint = peer.url();
        c.voice_provider.origination_identity = "+815012345678".into();
        c.voice_provider.voice_id = "MIZUKI".into();
    });
    let channels = channels(&config, dir.path());

    let msg = Message::new(Method::Voice, "03-1234-5678", CODE, Locale::Ja);
    let receipt = channels.deliver(&msg).await.expect("called");
    assert_eq!(receipt.driver, "voice");

    let requests = get_json(&format!("{}/requests", peer.url())).await;
    let requests = requests.as_array().unwrap();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let request = &requests[0];
    assert_eq!(request["target"], "PinpointSMSVoiceV2.SendVoiceMessage");
    assert!(
        request["headers"]["authorization"]
            .as_str()
            .unwrap()
            .contains("Credential=test/")
    );
    let body = &request["body"];
    assert_eq!(body["DestinationPhoneNumber"], "+81312345678");
    assert_eq!(body["OriginationIdentity"], "+815012345678");
    assert_eq!(body["VoiceId"], "MIZUKI");
    assert_eq!(body["MessageBodyTextType"], "SSML");
    assert_eq!(body["TimeToLive"], 300);
    let ssml = body["MessageBody"].as_str().unwrap();
    assert!(
        ssml.starts_with("<speak>") && ssml.ends_with("</speak>"),
        "{ssml}"
    );
    assert_eq!(
        ssml.matches(&format!(r#"<say-as interpret-as="digits">{CODE}</say-as>"#))
            .count(),
        2,
        "{ssml}"
    );

    // The provider's verdicts: a refused number is permanent, a server error is retryable.
    post_json(
        &format!("{}/respond", peer.url()),
        serde_json::json!({"status": 400, "body": {"__type": "ValidationException", "Message": "bad"}}),
    )
    .await;
    let err = channels.deliver(&msg).await.unwrap_err();
    assert!(
        matches!(
            err,
            DeliveryError::Rejected {
                driver: "voice",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(CODE));
    post_json(
        &format!("{}/respond", peer.url()),
        serde_json::json!({"status": 500, "body": {"__type": "InternalServerException", "Message": "down"}}),
    )
    .await;
    let err = channels.deliver(&msg).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
}

/// A local webhook receiver: records each request and answers with the status set in `status`.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver(delay: Duration) -> Receiver {
    let requests: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let status = Arc::new(AtomicU16::new(200));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let requests = Arc::clone(&requests);
            let status = Arc::clone(&status);
            move |headers: HeaderMap, body: Bytes| async move {
                tokio::time::sleep(delay).await;
                requests.lock().unwrap().push((headers, body));
                StatusCode::from_u16(status.load(Ordering::SeqCst)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url,
        requests,
        status,
        task,
    }
}

const SECRET: &str = "test-webhook-secret-0123456789abcdef";

#[tokio::test]
async fn webhook_posts_a_signed_body_and_maps_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let hook = receiver(Duration::ZERO).await;
    let config = config(|c| {
        c.sms = Channel::Webhook;
        c.voice = Channel::Webhook;
        c.webhook.url = hook.url.clone();
        c.webhook.secret = Secret::new(SECRET);
    });
    let channels = channels(&config, dir.path());

    let msg = Message::new(Method::Sms, "+81-90-1234-5678", CODE, Locale::En);
    assert_eq!(channels.deliver(&msg).await.unwrap().driver, "webhook");
    let voice = Message::new(Method::Voice, "0312345678", CODE, Locale::Ja);
    channels.deliver(&voice).await.unwrap();

    let requests = hook.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for (headers, body) in &requests {
        let sent = headers["x-sekimori-signature"].to_str().unwrap();
        assert_eq!(sent, signature(SECRET.as_bytes(), body));
        assert_ne!(sent, signature(b"another secret of enough length!!", body));
        let timestamp: i64 = headers["x-sekimori-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let json: Value = serde_json::from_slice(body).unwrap();
        let at = time::OffsetDateTime::parse(
            json["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        assert_eq!(at.unix_timestamp(), timestamp);
        assert_eq!(json["code"], CODE);
    }
    let sms: Value = serde_json::from_slice(&requests[0].1).unwrap();
    assert_eq!(sms["channel"], "sms");
    assert_eq!(sms["to"], "+819012345678");
    assert!(sms["text"].as_str().unwrap().contains(CODE));
    let call: Value = serde_json::from_slice(&requests[1].1).unwrap();
    assert_eq!(call["channel"], "voice");
    assert_eq!(call["to"], "+81312345678");
    assert!(call["ssml"].as_str().unwrap().starts_with("<speak>"));

    hook.status.store(422, Ordering::SeqCst);
    let err = channels.deliver(&msg).await.unwrap_err();
    assert!(
        matches!(
            err,
            DeliveryError::Rejected {
                driver: "webhook",
                ..
            }
        ),
        "{err:?}"
    );
    hook.status.store(503, Ordering::SeqCst);
    let err = channels.deliver(&msg).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains(CODE));
}

#[tokio::test]
async fn outbox_lines_follow_the_spec_format_even_when_concurrent() {
    let dir = tempfile::tempdir().unwrap();
    // A nested path: the parent directories are created.
    let path = dir.path().join("data/dev/outbox.jsonl");
    let channels = Channels::build(&DeliveryConfig::outbox(), &path, false).unwrap();
    let channels = Arc::new(channels);

    let mut tasks = Vec::new();
    for i in 0..60u32 {
        let channels = Arc::clone(&channels);
        tasks.push(tokio::spawn(async move {
            let (method, to) = match i % 3 {
                0 => (Method::Email, format!("user{i}@example.jp")),
                1 => (Method::Sms, format!("090-1000-{i:04}")),
                _ => (Method::Voice, format!("03-1234-{i:04}")),
            };
            let msg = Message::new(method, to, format!("{:06}", 100_000 + i), Locale::Ja);
            channels.deliver(&msg).await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().driver, "outbox");
    }

    // SPEC §12: {"channel": "email"|"sms"|"voice", "to", "code", "text", "at": RFC 3339}.
    let raw = std::fs::read_to_string(&path).unwrap();
    assert_eq!(raw.lines().count(), 60);
    for line in raw.lines() {
        let json: Value = serde_json::from_str(line).expect("one JSON object per line");
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{line}");
        for key in ["channel", "to", "code", "text", "at"] {
            assert!(json[key].is_string(), "{key} in {line}");
        }
        let code = json["code"].as_str().unwrap();
        assert!(json["text"].as_str().unwrap().contains(code));
        time::OffsetDateTime::parse(
            json["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339");
        match json["channel"].as_str().unwrap() {
            "email" => assert!(json["to"].as_str().unwrap().contains('@')),
            "sms" => assert!(json["to"].as_str().unwrap().starts_with("+8190")),
            "voice" => {
                assert!(json["to"].as_str().unwrap().starts_with("+813"));
                assert!(json["text"].as_str().unwrap().starts_with("<speak>"));
            }
            other => panic!("unexpected channel {other}"),
        }
    }
    let lines = OutboxDriver::read_lines(&path).unwrap();
    assert_eq!(lines.len(), 60);
}

#[tokio::test]
async fn a_provider_that_is_down_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let down = config(|c| {
        c.timeout_secs = 2;
        c.email = Channel::Smtp;
        c.smtp.host = "127.0.0.1".into();
        c.smtp.port = closed;
        c.smtp.from = "no-reply@example.jp".into();
        c.smtp.tls = SmtpTls::None;
        c.sms = Channel::Sns;
        c.sns.region = "ap-northeast-1".into();
        c.sns.endpoint = format!("http://127.0.0.1:{closed}");
        c.voice = Channel::Voice;
        c.voice_provider.region = "ap-northeast-1".into();
        c.voice_provider.endpoint = format!("http://127.0.0.1:{closed}");
        c.voice_provider.origination_identity = "+815012345678".into();
    });
    let channels = channels(&down, dir.path());
    for (method, to) in [
        (Method::Email, "taro@example.jp"),
        (Method::Sms, "09012345678"),
        (Method::Voice, "09012345678"),
    ] {
        let msg = Message::new(method, to, CODE, Locale::Ja);
        let err = channels.deliver(&msg).await.unwrap_err();
        assert!(err.is_retryable(), "{method:?}: {err:?}");
        assert!(!format!("{err} {err:?}").contains(CODE));
    }

    // A webhook that answers too slowly times out.
    let slow = receiver(Duration::from_secs(5)).await;
    let slow_config = config(|c| {
        c.timeout_secs = 1;
        c.email = Channel::Webhook;
        c.webhook.url = slow.url.clone();
        c.webhook.secret = Secret::new(SECRET);
    });
    let channels = self::channels(&slow_config, dir.path());
    let msg = Message::new(Method::Email, "taro@example.jp", CODE, Locale::Ja);
    let started = Instant::now();
    let err = channels.deliver(&msg).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn production_refuses_the_outbox() {
    let err =
        Channels::build(&DeliveryConfig::outbox(), Path::new("outbox.jsonl"), true).unwrap_err();
    assert_eq!(
        err,
        "delivery.email: the development outbox is refused in production"
    );
}
