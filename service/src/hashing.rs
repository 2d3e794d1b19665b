//! Account secrets: argon2id on a bounded blocking pool for passwords people choose, and a keyed
//! HMAC-SHA-256 ([`SecretDigester`]) for the system-generated secrets of machine accounts.
//!
//! argon2id is CPU-bound (~14 ms at the OWASP minimum), so it never runs on the async runtime:
//! each hash runs in `spawn_blocking`, and a semaphore caps the hashes in flight at the number of
//! cores so a burst of sign-ins queues instead of oversubscribing the CPU.
//!
//! Machine accounts (`web_api`, `linked_app`, `card_reader`) never choose their secret: it is
//! always the generator's 24-character form (about 140 bits), so offline guessing is infeasible
//! whatever the hash, and argon2id would only cap their token endpoint at ~70 authentications per
//! core per second. Their secrets are stored as `$hmac-sha256$v=1$…` under a key derived from the
//! KEK (a stolen database alone allows no offline check). [`PasswordHasher::verify`] dispatches on
//! the stored form, so an older argon2id hash of a machine account still verifies and is replaced
//! by the HMAC form at its next successful use ([`Verified::needs_rehash`] from
//! [`PasswordHasher::verify_for`]).

use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use policies::AccountType;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::{SecretDigester, ServiceError};

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
    /// The keyed digest of machine secrets.
    digester: Arc<SecretDigester>,
    /// A digest of a random secret, the machine counterpart of `dummy`.
    dummy_digest: Arc<str>,
    scratch: Arc<Scratch>,
}

/// argon2's working memory (`memory_kib` blocks of 1 KiB), kept between hashes.
///
/// A fresh 19 MiB allocation per hash goes back to the kernel when it is freed, so every hash
/// paid for page faults, zeroing and, on unmap, TLB shootdowns: about a quarter of the CPU time
/// of a bulk registration, measured with `perf`. Hashes run only under a permit, so at most one
/// buffer per permit is ever kept. The buffers are the process's private memory, like any freed
/// heap memory, and every hash overwrites the blocks it uses before reading them.
#[derive(Default)]
struct Scratch(Mutex<Vec<Vec<Block>>>);

impl Scratch {
    fn with<T>(&self, blocks: usize, work: impl FnOnce(&mut [Block]) -> T) -> T {
        let mut memory = self.buffers().pop().unwrap_or_default();
        if memory.len() < blocks {
            memory.resize(blocks, Block::default());
        }
        let result = work(&mut memory);
        self.buffers().push(memory);
        result
    }

    fn buffers(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        // Pushing and popping cannot leave the list half-updated: a poisoned lock is sound.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a stored secret was hashed, read from its self-describing prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashForm {
    /// `$argon2id$…` (or any PHC string): a password a person chose.
    Argon2,
    /// `$hmac-sha256$v=1$…`: a system-generated machine secret.
    Hmac,
}

impl HashForm {
    pub fn of(stored: &str) -> Self {
        if SecretDigester::is_digest(stored) {
            HashForm::Hmac
        } else {
            HashForm::Argon2
        }
    }

    /// The form an account type's secret is stored in: machine accounts only ever hold
    /// system-generated secrets (`policies::credential::secret_is_generated`).
    pub fn for_type(account_type: AccountType) -> Self {
        if policies::credential::secret_is_generated(account_type) {
            HashForm::Hmac
        } else {
            HashForm::Argon2
        }
    }
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    pub fn new(params: HashingParams, digester: Arc<SecretDigester>) -> Result<Self, ServiceError> {
        let argon2 = params.argon2()?;
        let permits = match params.max_in_flight {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let scratch = Arc::new(Scratch::default());
        let dummy = hash_with(&argon2, &scratch, &crate::random::token())?;
        let dummy_digest = digester.digest(&crate::random::token());
        Ok(Self {
            scratch,
            argon2,
            params,
            permits: Arc::new(Semaphore::new(permits)),
            in_flight: permits,
            dummy: dummy.into(),
            digester,
            dummy_digest: dummy_digest.into(),
        })
    }

    pub fn params(&self) -> HashingParams {
        self.params
    }

    /// How many hashes run at once (the blocking pool's bound).
    pub fn max_in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hashes a password a person chose (or an initial password a person will replace) with
    /// argon2id.
    pub async fn hash(&self, secret: String) -> Result<String, ServiceError> {
        let (argon2, scratch) = (self.argon2.clone(), self.scratch.clone());
        self.blocking(move || hash_with(&argon2, &scratch, &secret))
            .await?
    }

    /// Hashes the secret of an account of `account_type` in the form its type calls for:
    /// HMAC-SHA-256 for machine accounts, argon2id for everyone else.
    pub async fn hash_for(
        &self,
        account_type: AccountType,
        secret: String,
    ) -> Result<String, ServiceError> {
        match HashForm::for_type(account_type) {
            HashForm::Hmac => Ok(self.digester.digest(&secret)),
            HashForm::Argon2 => self.hash(secret).await,
        }
    }

    /// Verifies in constant time, dispatching on the stored form. A malformed stored hash
    /// verifies as false. `needs_rehash` reports argon2id parameters other than the configured
    /// ones; an HMAC digest never needs one.
    pub async fn verify(&self, secret: String, stored: String) -> Result<Verified, ServiceError> {
        if HashForm::of(&stored) == HashForm::Hmac {
            return Ok(Verified {
                ok: self.digester.verify(&secret, &stored),
                needs_rehash: false,
            });
        }
        let params = self.params;
        let scratch = self.scratch.clone();
        self.blocking(move || verify_with(&scratch, params, &secret, &stored))
            .await
    }

    /// [`Self::verify`] for the secret of an account of `account_type`: `needs_rehash` is also
    /// set when the stored form is not the one the type calls for (an argon2id hash of a machine
    /// account is upgraded to HMAC at its next successful use).
    pub async fn verify_for(
        &self,
        account_type: AccountType,
        secret: String,
        stored: String,
    ) -> Result<Verified, ServiceError> {
        let wrong_form = HashForm::of(&stored) != HashForm::for_type(account_type);
        let verified = self.verify(secret, stored).await?;
        Ok(Verified {
            ok: verified.ok,
            needs_rehash: verified.ok && (verified.needs_rehash || wrong_form),
        })
    }

    /// Spends the time of one argon2id verification and reports failure; used when the account
    /// is unknown.
    pub async fn verify_dummy(&self, secret: String) -> Result<(), ServiceError> {
        let dummy = self.dummy.to_string();
        self.verify(secret, dummy).await.map(|_| ())
    }

    /// Spends the time of one HMAC verification; used on the machine channel when the client ID
    /// names no machine account, so that timing does not reveal which exist.
    pub fn verify_dummy_digest(&self, secret: &str) {
        let _ = self.digester.verify(secret, &self.dummy_digest);
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

fn hash_with(argon2: &Argon2<'_>, scratch: &Scratch, secret: &str) -> Result<String, ServiceError> {
    let salt = SaltString::encode_b64(&crate::random::bytes::<16>())
        .map_err(|e| ServiceError::Internal(format!("salt: {e}")))?;
    let phc = raw_hash(argon2, scratch, secret.as_bytes(), salt.as_salt()).and_then(|output| {
        Ok(PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon2.params())?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        }
        .to_string())
    });
    phc.map_err(|e| ServiceError::Internal(format!("hashing: {e}")))
}

/// What `argon2::PasswordHasher::hash_password` computes, in memory from `scratch`.
fn raw_hash(
    argon2: &Argon2<'_>,
    scratch: &Scratch,
    password: &[u8],
    salt: Salt<'_>,
) -> argon2::password_hash::Result<Output> {
    let mut salt_buffer = [0u8; 64];
    let salt = salt.decode_b64(&mut salt_buffer)?;
    let params = argon2.params();
    let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    Output::init_with(len, |out| {
        scratch
            .with(params.block_count(), |blocks| {
                argon2.hash_password_into_with_memory(password, salt, out, blocks)
            })
            .map_err(Into::into)
    })
}

/// Checks `secret` against the PHC string `phc` with the parameters `phc` names (a hash from
/// before a parameter change still verifies, and `needs_rehash` says so).
fn verify_with(scratch: &Scratch, params: HashingParams, secret: &str, phc: &str) -> Verified {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Verified {
            ok: false,
            needs_rehash: false,
        };
    };
    let check = || -> argon2::password_hash::Result<bool> {
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let argon2 = Argon2::new(
            Algorithm::try_from(parsed.algorithm)?,
            version,
            Params::try_from(&parsed)?,
        );
        // `Output`'s equality is constant-time.
        Ok(raw_hash(&argon2, scratch, secret.as_bytes(), salt)? == expected)
    };
    let ok = check().unwrap_or(false);
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
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    #[test]
    fn reused_memory_gives_the_argon2_crates_hashes() {
        let argon2 = HashingParams::default().argon2().unwrap();
        let scratch = Scratch::default();
        // The second and third hashes run in memory the previous one left dirty.
        for password in ["Correct#Horse9", "another secret", "Correct#Horse9"] {
            let ours = hash_with(&argon2, &scratch, password).unwrap();
            let parsed = PasswordHash::new(&ours).unwrap();
            argon2
                .verify_password(password.as_bytes(), &parsed)
                .expect("the argon2 crate verifies our hash");
            let theirs = argon2
                .hash_password(password.as_bytes(), parsed.salt.unwrap())
                .unwrap()
                .to_string();
            assert_eq!(ours, theirs);
            assert!(verify_with(&scratch, HashingParams::default(), password, &theirs).ok);
            assert!(!verify_with(&scratch, HashingParams::default(), "wrong", &theirs).ok);
        }
        assert_eq!(scratch.buffers().len(), 1);
    }

    fn digester() -> Arc<SecretDigester> {
        Arc::new(SecretDigester::from_kek(&[7u8; 32]))
    }

    #[tokio::test]
    async fn hashes_verify_and_detect_parameter_changes() {
        let hasher = PasswordHasher::new(HashingParams::default(), digester()).unwrap();
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

        let stronger = PasswordHasher::new(
            HashingParams {
                iterations: 3,
                ..HashingParams::default()
            },
            digester(),
        )
        .unwrap();
        assert_eq!(
            stronger.verify("Correct#Horse9".into(), phc).await.unwrap(),
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn the_stored_form_follows_the_account_type_and_verification_dispatches_on_it() {
        let hasher = PasswordHasher::new(HashingParams::default(), digester()).unwrap();
        let secret = "Kx7#mPq2@Rt9$Wv4%Yb6&Nc3";
        for t in AccountType::ALL {
            let stored = hasher.hash_for(t, secret.into()).await.unwrap();
            let expected = if t.is_machine() {
                "$hmac-sha256$v=1$"
            } else {
                "$argon2id$"
            };
            assert!(stored.starts_with(expected), "{t}: {stored}");
            assert_eq!(HashForm::of(&stored), HashForm::for_type(t), "{t}");
            let right = hasher
                .verify_for(t, secret.into(), stored.clone())
                .await
                .unwrap();
            assert_eq!(
                right,
                Verified {
                    ok: true,
                    needs_rehash: false
                },
                "{t}"
            );
            let wrong = hasher
                .verify_for(t, "Kx7#mPq2@Rt9$Wv4%Yb6&Nc4".into(), stored)
                .await
                .unwrap();
            assert!(!wrong.ok && !wrong.needs_rehash, "{t}");
        }
    }

    #[tokio::test]
    async fn an_argon2_hash_of_a_machine_account_verifies_and_asks_for_the_hmac_form() {
        let hasher = PasswordHasher::new(HashingParams::default(), digester()).unwrap();
        let secret = "Kx7#mPq2@Rt9$Wv4%Yb6&Nc3";
        let legacy = hasher.hash(secret.into()).await.unwrap();
        let verified = hasher
            .verify_for(AccountType::WebApi, secret.into(), legacy.clone())
            .await
            .unwrap();
        assert_eq!(
            verified,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
        // A wrong secret never asks for a rehash, and a person's argon2 hash stays as it is.
        assert!(
            !hasher
                .verify_for(AccountType::WebApi, "nope".into(), legacy.clone())
                .await
                .unwrap()
                .needs_rehash
        );
        assert!(
            !hasher
                .verify_for(AccountType::General, secret.into(), legacy)
                .await
                .unwrap()
                .needs_rehash
        );
        // A digest under another key does not verify.
        let other = PasswordHasher::new(
            HashingParams::default(),
            Arc::new(SecretDigester::from_kek(&[8u8; 32])),
        )
        .unwrap();
        let foreign = other
            .hash_for(AccountType::CardReader, secret.into())
            .await
            .unwrap();
        assert!(!hasher.verify(secret.into(), foreign).await.unwrap().ok);
        assert!(
            !hasher
                .verify(secret.into(), "$hmac-sha256$v=1$!!".into())
                .await
                .unwrap()
                .ok
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
