//! Measures one argon2id verification with the default (OWASP minimum) parameters, the bound on
//! password sign-ins per second per core. Used by `scripts/bench/signin`; run it pinned to the
//! same core as the server: `taskset -c 0 cargo run --release -p service --example argon2_verify`.

use std::time::Instant;

use std::sync::Arc;

use service::{HashingParams, PasswordHasher, SecretDigester};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let iterations: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let digester = Arc::new(SecretDigester::from_kek(&[0u8; 32]));
    let hasher = PasswordHasher::new(HashingParams::default(), digester)
        .expect("default parameters are valid");
    let phc = hasher.hash("Sekimori#29x".into()).await.expect("hash");
    // Warm up the allocator and caches before measuring.
    for _ in 0..5 {
        hasher
            .verify("Sekimori#29x".into(), phc.clone())
            .await
            .expect("verify");
    }
    let started = Instant::now();
    for _ in 0..iterations {
        let verified = hasher
            .verify("Sekimori#29x".into(), phc.clone())
            .await
            .expect("verify");
        assert!(verified.ok);
    }
    let mean = started.elapsed().as_secs_f64() / f64::from(iterations);
    println!(
        "{{\"iterations\": {iterations}, \"mean_ms\": {:.3}, \"bound_per_second\": {:.1}}}",
        mean * 1000.0,
        1.0 / mean
    );
}
