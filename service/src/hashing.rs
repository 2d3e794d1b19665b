//! Password hashing with argon2id on a bounded blocking pool.
//!
//! Hashing is CPU-bound (~14 ms at the OWASP minimum), so it never runs on the async runtime:
//! each hash runs in `spawn_blocking`, and a semaphore caps the hashes in flight at the number of
//! cores so a burst of sign-ins queues instead of oversubscribing the CPU.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::ServiceError;

/// argon2id cost parameters. The defaults are OWASP's minimum recommendation
/// (m = 19 MiB, t = 2, p = 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HashingParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; 0 means one per available core.
    pub max_in_flight: usize,
}

impl Default for HashingParams {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
            max_in_flight: 0,
        }
    }
}

impl HashingParams {
    /// Refuses parameters below the OWASP minimum; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.memory_kib < 19_456 {
            return Err(
                "password_hashing.memory_kib must be at least 19456 (OWASP minimum)".into(),
            );
        }
        if self.memory_kib > 4 * 1024 * 1024 {
            return Err("password_hashing.memory_kib must be at most 4194304".into());
        }
        if !(1..=10).contains(&self.iterations) {
            return Err("password_hashing.iterations must be between 1 and 10".into());
        }
        if u64::from(self.memory_kib) * u64::from(self.iterations) < 19_456 * 2 {
            return Err(
                "password_hashing.iterations must be at least 2 at the minimum memory".into(),
            );
        }
        if !(1..=16).contains(&self.parallelism) {
            return Err("password_hashing.parallelism must be between 1 and 16".into());
        }
        Ok(())
    }

    fn argon2(&self) -> Result<Argon2<'static>, ServiceError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| ServiceError::Internal(format!("argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses other parameters than the configured ones: rehash on success.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    params: HashingParams,
    permits: Arc<Semaphore>,
    /// The number of permits: hashes computed at once.
    in_flight: usize,
    /// A hash of a random password, verified against when an account does not exist so that the
    /// response time does not reveal whether it does.
    dummy: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(params: HashingParams) -> Result<Self, ServiceError> {
        let argon2 = params.argon2()?;
        let permits = match params.max_in_flight {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let dummy = hash_with(&argon2, &crate::random::token())?;
        Ok(Self {
            argon2,
            params,
            permits: Arc::new(Semaphore::new(permits)),
            in_flight: permits,
            dummy: dummy.into(),
        })
    }

    pub fn params(&self) -> HashingParams {
        self.params
    }

    /// How many hashes run at once (the blocking pool's bound).
    pub fn max_in_flight(&self) -> usize {
        self.in_flight
    }

    pub async fn hash(&self, secret: String) -> Result<String, ServiceError> {
        let argon2 = self.argon2.clone();
        self.blocking(move || hash_with(&argon2, &secret)).await?
    }

    /// Verifies in constant time. A malformed stored hash verifies as false.
    pub async fn verify(&self, secret: String, phc: String) -> Result<Verified, ServiceError> {
        let argon2 = self.argon2.clone();
        let params = self.params;
        self.blocking(move || verify_with(&argon2, params, &secret, &phc))
            .await
    }

    /// Spends the time of one verification and reports failure; used when the account is unknown.
    pub async fn verify_dummy(&self, secret: String) -> Result<(), ServiceError> {
        let dummy = self.dummy.to_string();
        self.verify(secret, dummy).await.map(|_| ())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ServiceError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ServiceError::Internal(format!("hashing task: {e}")))
    }
}

fn hash_with(argon2: &Argon2<'_>, secret: &str) -> Result<String, ServiceError> {
    let salt = SaltString::encode_b64(&crate::random::bytes::<16>())
        .map_err(|e| ServiceError::Internal(format!("salt: {e}")))?;
    argon2
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(format!("hashing: {e}")))
}

fn verify_with(argon2: &Argon2<'_>, params: HashingParams, secret: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified {
            ok: false,
            needs_rehash: false,
        };
    };
    let ok = argon2.verify_password(secret.as_bytes(), &parsed).is_ok();
    let needs_rehash = ok && !matches_params(&parsed, params);
    Verified { ok, needs_rehash }
}

fn matches_params(hash: &PasswordHash<'_>, params: HashingParams) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(0x13)
        && stored.m_cost() == params.memory_kib
        && stored.t_cost() == params.iterations
        && stored.p_cost() == params.parallelism
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_detect_parameter_changes() {
        let hasher = PasswordHasher::new(HashingParams::default()).unwrap();
        let phc = hasher.hash("Correct#Horse9".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher
                .verify("Correct#Horse9".into(), phc.clone())
                .await
                .unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(
            !hasher
                .verify("correct#Horse9".into(), phc.clone())
                .await
                .unwrap()
                .ok
        );
        assert!(
            !hasher
                .verify("x".into(), "not a hash".into())
                .await
                .unwrap()
                .ok
        );

        let stronger = PasswordHasher::new(HashingParams {
            iterations: 3,
            ..HashingParams::default()
        })
        .unwrap();
        assert_eq!(
            stronger.verify("Correct#Horse9".into(), phc).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }

    #[test]
    fn weak_parameters_are_refused_naming_the_key() {
        let err = HashingParams {
            memory_kib: 1024,
            ..HashingParams::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("password_hashing.memory_kib"));
    }
}
