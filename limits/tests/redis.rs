//! `RedisLimiter` against a real Redis at `TEST_REDIS_URL`.
//!
//! Without `TEST_REDIS_URL` these tests are skipped with a note, except under `CI=true`, where
//! they fail. Every test uses its own random key so runs never collide, and deletes what it wrote.

use std::sync::Arc;
use std::time::{Duration, Instant};

use limits::{Decision, LimitError, RateLimiter, RedisLimiter, Rule};
use redis::AsyncCommands;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The Redis URL, or `None` (after printing why) when the tests should be skipped.
fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("TEST_REDIS_URL must be set when CI=true")
        }
        _ => {
            eprintln!("note: TEST_REDIS_URL is not set; skipping the Redis tests");
            None
        }
    }
}

/// A key no other test or run uses.
fn unique_key(label: &str) -> String {
    format!("test:{label}:{}", uuid::Uuid::new_v4())
}

/// Deletes the Redis state of `keys` under `rule`.
async fn cleanup(url: &str, rule: &Rule, keys: &[&str]) {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    for key in keys {
        let _: () = connection
            .del(RedisLimiter::storage_key(rule, key))
            .await
            .unwrap();
    }
}

async fn pttl(url: &str, rule: &Rule, key: &str) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    connection
        .pttl(RedisLimiter::storage_key(rule, key))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_under_concurrency_allow_exactly_the_limit() {
    let Some(url) = redis_url() else { return };
    // Two limiters with their own connection managers stand for two IdP nodes.
    let node_a: Arc<dyn RateLimiter> = Arc::new(RedisLimiter::connect(&url).await.unwrap());
    let node_b: Arc<dyn RateLimiter> = Arc::new(RedisLimiter::connect(&url).await.unwrap());
    // An hour-long window makes the emission interval 72 s, far longer than the test.
    let rule = Rule {
        name: "test_concurrency",
        limit: 50,
        window: Duration::from_secs(3600),
    };
    let key = unique_key("concurrency");
    let tasks: Vec<JoinHandle<Decision>> = (0..200)
        .map(|i| {
            let node = if i % 2 == 0 {
                node_a.clone()
            } else {
                node_b.clone()
            };
            let key = key.clone();
            tokio::spawn(async move { node.hit(&rule, &key).await.unwrap() })
        })
        .collect();
    let mut allowed = 0;
    let mut remaining_seen = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Decision::Allowed { remaining } => {
                allowed += 1;
                remaining_seen.push(remaining);
            }
            Decision::Limited { retry_after } => {
                assert!(
                    retry_after <= Duration::from_secs(72),
                    "retry_after {retry_after:?}"
                );
                assert!(
                    retry_after > Duration::from_secs(60),
                    "retry_after {retry_after:?}"
                );
            }
        }
    }
    cleanup(&url, &rule, &[&key]).await;
    assert_eq!(allowed, 50);
    remaining_seen.sort_unstable();
    assert_eq!(remaining_seen, (0..50).collect::<Vec<u32>>());
}

#[tokio::test]
async fn retry_after_matches_the_stored_state() {
    let Some(url) = redis_url() else { return };
    let limiter = RedisLimiter::connect(&url).await.unwrap();
    let rule = Rule {
        name: "test_retry_after",
        limit: 3,
        window: Duration::from_secs(60),
    };
    let key = unique_key("retry");
    for expected in [2, 1, 0] {
        assert_eq!(
            limiter.hit(&rule, &key).await.unwrap(),
            Decision::Allowed {
                remaining: expected
            }
        );
    }
    let Decision::Limited { retry_after } = limiter.hit(&rule, &key).await.unwrap() else {
        panic!("the fourth hit must be limited");
    };
    // After a burst of 3 in a 60 s window the next hit is due one interval (20 s) later, and the
    // key expires when the whole window has replenished.
    assert!(
        retry_after > Duration::from_secs(19) && retry_after <= Duration::from_secs(20),
        "{retry_after:?}"
    );
    let ttl = pttl(&url, &rule, &key).await;
    assert!((59_000..=60_000).contains(&ttl), "PTTL {ttl}");
    // The retry-after is the TTL minus the two further intervals the full burst still holds.
    let held = i64::try_from(retry_after.as_millis()).unwrap() + 40_000;
    assert!(
        (ttl - held).abs() <= 5,
        "PTTL {ttl}, retry_after {retry_after:?}"
    );
    cleanup(&url, &rule, &[&key]).await;
}

#[tokio::test]
async fn capacity_returns_after_the_interval() {
    let Some(url) = redis_url() else { return };
    let limiter = RedisLimiter::connect(&url).await.unwrap();
    let rule = Rule {
        name: "test_window",
        limit: 2,
        window: Duration::from_millis(300),
    };
    let key = unique_key("window");
    assert!(limiter.hit(&rule, &key).await.unwrap().is_allowed());
    assert!(limiter.hit(&rule, &key).await.unwrap().is_allowed());
    let Decision::Limited { retry_after } = limiter.hit(&rule, &key).await.unwrap() else {
        panic!("the third hit must be limited");
    };
    assert!(retry_after <= Duration::from_millis(150), "{retry_after:?}");
    tokio::time::sleep(retry_after + Duration::from_millis(10)).await;
    assert_eq!(
        limiter.hit(&rule, &key).await.unwrap(),
        Decision::Allowed { remaining: 0 }
    );
    // Once the whole window has passed the key has expired and the bucket is full again.
    tokio::time::sleep(Duration::from_millis(320)).await;
    assert_eq!(pttl(&url, &rule, &key).await, -2, "the key expired");
    assert_eq!(
        limiter.hit(&rule, &key).await.unwrap(),
        Decision::Allowed { remaining: 1 }
    );
    cleanup(&url, &rule, &[&key]).await;
}

#[tokio::test]
async fn odd_keys_are_independent_and_stored_hashed() {
    let Some(url) = redis_url() else { return };
    let limiter = RedisLimiter::connect(&url).await.unwrap();
    let rule = Rule {
        name: "test_odd_keys",
        limit: 1,
        window: Duration::from_secs(60),
    };
    let prefix = unique_key("odd");
    let keys: Vec<String> = [
        "",
        "\0",
        "a\r\n*1\r\n$8\r\nFLUSHALL\r\n",
        "{hash-tag}",
        "* ? [",
        "ü🙂",
        &"x".repeat(100_000),
    ]
    .iter()
    .map(|suffix| format!("{prefix}{suffix}"))
    .collect();
    for key in &keys {
        assert!(
            limiter.hit(&rule, key).await.unwrap().is_allowed(),
            "{key:?}"
        );
    }
    for key in &keys {
        assert!(
            !limiter.hit(&rule, key).await.unwrap().is_allowed(),
            "{key:?}"
        );
        let stored = RedisLimiter::storage_key(&rule, key);
        assert_eq!(stored.len(), "sekimori:rl:test_odd_keys:".len() + 64);
        assert!(pttl(&url, &rule, key).await > 0);
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    cleanup(&url, &rule, &key_refs).await;
}

#[tokio::test]
async fn from_url_connects_to_redis() {
    let Some(url) = redis_url() else { return };
    let limiter = limits::from_url(Some(&url)).await.unwrap();
    let rule = Rule {
        name: "test_from_url",
        limit: 5,
        window: Duration::from_secs(60),
    };
    let key = unique_key("from_url");
    assert_eq!(
        limiter.hit(&rule, &key).await.unwrap(),
        Decision::Allowed { remaining: 4 }
    );
    cleanup(&url, &rule, &[&key]).await;
}

#[tokio::test]
async fn unreachable_redis_stops_startup_naming_the_key() {
    // Port 1 on loopback refuses connections; no Redis is needed for this test.
    let started = Instant::now();
    let err = RedisLimiter::connect("redis://:secret-password@127.0.0.1:1")
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LimitError::Config(_)));
    assert!(message.starts_with("redis.url"), "{message}");
    assert!(!message.contains("secret-password"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A TCP proxy in front of Redis that the test can cut, to simulate an outage.
struct Proxy {
    address: std::net::SocketAddr,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(listener: TcpListener, upstream: std::net::SocketAddr) -> Self {
        let address = listener.local_addr().unwrap();
        let tasks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let registry = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let connection = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                registry.lock().unwrap().push(connection);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { address, tasks }
    }

    /// Closes the listener and every proxied connection.
    async fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_outage_is_reported_as_unavailable_and_recovers() {
    let Some(url) = redis_url() else { return };
    let upstream = {
        let info = redis::Client::open(url.as_str()).unwrap();
        let addr = info.get_connection_info().addr().to_string();
        tokio::net::lookup_host(addr).await.unwrap().next().unwrap()
    };
    let proxy = Proxy::start(TcpListener::bind("127.0.0.1:0").await.unwrap(), upstream).await;
    let proxied_url = format!("redis://{}", proxy.address);
    let limiter = RedisLimiter::connect(&proxied_url).await.unwrap();
    let rule = Rule {
        name: "test_outage",
        limit: 10,
        window: Duration::from_secs(60),
    };
    let key = unique_key("outage");
    assert!(limiter.hit(&rule, &key).await.unwrap().is_allowed());

    proxy.cut().await;
    let started = Instant::now();
    let outcome = limiter.hit(&rule, &key).await;
    assert!(
        matches!(outcome, Err(LimitError::Unavailable(_))),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the outage must not hang callers"
    );

    // Redis comes back on the same address; the connection manager reconnects by itself.
    let listener = TcpListener::bind(proxy.address).await.unwrap();
    let _proxy = Proxy::start(listener, upstream).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match limiter.hit(&rule, &key).await {
            Ok(decision) => {
                assert_eq!(decision, Decision::Allowed { remaining: 8 });
                break;
            }
            Err(LimitError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("Redis did not come back: {other}"),
        }
    }
    cleanup(&url, &rule, &[&key]).await;
}
