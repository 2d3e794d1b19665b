//! Measures N argon2id hashes (default 10,000) with the default (OWASP minimum) parameters on
//! every core, the way bulk registration hashes a file's initial passwords
//! (`service::bulk::hash_many`: one worker per hashing permit). The floor for a bulk job;
//! used by `scripts/bench/bulk`: `cargo run --release -p service --example argon2_hash_many`.

use std::sync::Arc;
use std::time::Instant;

use policies::AccountType;
use service::{HashingParams, PasswordHasher, SecretDigester};

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let digester = Arc::new(SecretDigester::from_kek(&[0u8; 32]));
    let hasher = PasswordHasher::new(HashingParams::default(), digester)
        .expect("default parameters are valid");
    let passwords: Vec<(AccountType, String)> = (0..n)
        .map(|i| (AccountType::General, format!("Sekimori#{i:05}x")))
        .collect();
    let started = Instant::now();
    let hashes = service::bulk::hash_many(&hasher, passwords)
        .await
        .expect("hash");
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(hashes.len(), n);
    println!(
        "{{\"hashes\": {n}, \"workers\": {}, \"seconds\": {elapsed:.2}}}",
        hasher.max_in_flight()
    );
}
