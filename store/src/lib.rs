//! Sekimori's storage: the [`Store`] trait, its two backends and their migrations.
//!
//! Architecture Invariant: SQL lives only in this crate. Callers see records from [`model`] and
//! [`StoreError`]; they never learn which backend runs. The backend is chosen once, by
//! [`connect`], from the database URL.
//!
//! Architecture Invariant: every operation that must be all-or-nothing (an institution with its
//! two master accounts, a counter update) is a single trait method that runs in one transaction
//! or one atomic statement, so no caller can half-write.

mod client_cache;
mod common;
mod group_commit;
mod inline;
mod inline_writer;
pub mod model;
mod postgres;
mod rows;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use policies::InstitutionCode;
use policies::lockout::LockState;
use time::OffsetDateTime;
use uuid::Uuid;

pub use model::*;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the payload names what collided (e.g. `institution`,
    /// `account`, `client`), never the value.
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// An error of SQLite's in-line reads and writes (rusqlite).
    #[error("database error: {0}")]
    Inline(#[source] rusqlite::Error),
    /// A row queued for a group commit was not written because the writer stopped (the process
    /// is shutting down).
    #[error("batch write failed: {0}")]
    Batch(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A search counts its matches up to this many; beyond it the total is reported as at least
/// this many. An admin screen pages through 20-100 accounts at a time, and an exact count of a
/// million rows would cost more than the page.
pub const SEARCH_COUNT_LIMIT: i64 = 10_000;

/// Everything Sekimori persists. One implementation per backend; the contract suite in
/// `store/tests/contract.rs` runs the same story against both.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Applies pending migrations of this backend's folder.
    async fn migrate(&self) -> Result<()>;

    /// Cheap round trip used by `/readyz`.
    async fn ping(&self) -> Result<()>;

    // Institutions.

    /// Creates an institution and its `master` and `master_reset` accounts in one transaction,
    /// with the audit events that record it. Conflict if the code or a user ID is taken.
    async fn create_institution(
        &self,
        institution: NewInstitution,
        master: NewAccount,
        master_reset: NewAccount,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Institution>;
    async fn get_institution(&self, code: &InstitutionCode) -> Result<Option<Institution>>;
    async fn list_institutions(&self) -> Result<Vec<Institution>>;
    /// Changes an institution's name and usage start date, with its audit event, in one
    /// transaction. NotFound if the institution does not exist.
    async fn update_institution(
        &self,
        code: &InstitutionCode,
        update: InstitutionUpdate,
        audit: NewAuditEvent,
    ) -> Result<Institution>;
    /// Replaces an institution's security settings and, in the same transaction, bumps its
    /// `settings_version`, ends every session and revokes every grant (hence every token) of its
    /// accounts at `at`, and appends the audit event (SPEC §6: everyone signs in again).
    /// NotFound if the institution does not exist.
    async fn set_institution_settings(
        &self,
        code: &InstitutionCode,
        settings: &InstitutionSettings,
        at: OffsetDateTime,
        audit: NewAuditEvent,
    ) -> Result<Institution>;

    // Accounts.

    /// Inserts an account and its audit event in one transaction. Conflict if the user ID was
    /// ever used in that institution, including by a deleted account; NotFound if the
    /// institution does not exist.
    async fn create_account(&self, account: NewAccount, audit: NewAuditEvent) -> Result<Account>;
    /// Any account by ID, deleted ones included (check `deleted_at`).
    async fn get_account(&self, id: Uuid) -> Result<Option<Account>>;
    /// [`Store::get_account`] with the account's institution, in one query.
    async fn get_account_and_institution(&self, id: Uuid)
    -> Result<Option<(Account, Institution)>>;
    /// [`Store::find_account`] with the account's institution, in one query.
    async fn find_account_and_institution(
        &self,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Option<(Account, Institution)>>;
    /// Looks up a live (not deleted) account by institution and user ID, case-sensitively.
    async fn find_account(
        &self,
        institution: &InstitutionCode,
        user_id: &str,
    ) -> Result<Option<Account>>;
    /// Counts live (not deleted) accounts of a type.
    async fn count_accounts_of_type(&self, account_type: policies::AccountType) -> Result<i64>;
    /// Soft-deletes: the row and its user ID stay, so the ID is never reused. NotFound if the
    /// account is unknown or already deleted.
    async fn delete_account(&self, id: Uuid, now: OffsetDateTime) -> Result<()>;
    /// Atomically adds one failure and returns the new count. NotFound if the account is
    /// unknown (as for every update below).
    async fn record_failure(&self, id: Uuid) -> Result<i64>;
    /// Resets the failure count and records the sign-in time.
    async fn record_success(&self, id: Uuid, now: OffsetDateTime) -> Result<()>;
    /// Sets the lock state and when it was set. Unlocking (`LockState::None`) also clears the
    /// failure count, so the next failure starts from one.
    async fn set_lock(&self, id: Uuid, lock: LockState, at: Option<OffsetDateTime>) -> Result<()>;
    /// Replaces the credential (password change or reset) and clears the failure count.
    async fn set_credential(&self, id: Uuid, credential: Credential) -> Result<()>;
    /// Live accounts matching the filter, ordered by user ID then internal ID (a stable order
    /// for pagination), and the number that match in all.
    async fn search_accounts(
        &self,
        filter: &AccountFilter,
        page: PageRequest,
    ) -> Result<AccountPage>;
    /// Applies one administrative change to a live account and appends its audit event, in one
    /// transaction. With `end_access_at`, the same transaction also ends every session of the
    /// account, revokes every grant (so its access and refresh tokens stop working at once) and
    /// sets `tokens_not_before` (so its machine tokens, which have no grant, stay ended).
    /// Returns the account as changed. NotFound if the account is unknown or deleted.
    async fn change_account(
        &self,
        id: Uuid,
        change: AccountChange,
        end_access_at: Option<OffsetDateTime>,
        audit: NewAuditEvent,
    ) -> Result<Account>;

    /// Marks the ID/password notices of these accounts printed (出力済) and appends the audit
    /// events, in one transaction. A notice counts only for the credential it showed: if any
    /// account is deleted or no longer has that password hash (reset or changed meanwhile),
    /// nothing is marked and the result is Conflict(`notice`).
    async fn mark_notices_issued(
        &self,
        notices: &[PrintedNotice],
        audit: Vec<NewAuditEvent>,
    ) -> Result<()>;

    /// A password change by the account holder, in one transaction: the previous hash joins the
    /// history (only the newest `keep` are retained), the new credential replaces it, and every
    /// other session of the account ends. Returns how many sessions ended.
    async fn change_password(
        &self,
        id: Uuid,
        credential: Credential,
        previous_hash: &str,
        keep: u32,
        keep_session: Option<&str>,
    ) -> Result<u64>;
    /// The newest `limit` previous password hashes of an account, newest first.
    async fn password_history(&self, id: Uuid, limit: u32) -> Result<Vec<String>>;

    /// Replaces the second factor of an account (a confirmed change, or an admin's first
    /// registration). NotFound if the account is unknown.
    async fn set_second_factor(&self, id: Uuid, second_factor: SecondFactor) -> Result<()>;

    // One-time codes of the second factor.

    /// Stores a code that was just sent. Conflict if the ID exists; NotFound if the account
    /// does not.
    async fn create_otp_challenge(&self, challenge: OtpChallenge) -> Result<()>;
    async fn get_otp_challenge(&self, id: Uuid) -> Result<Option<OtpChallenge>>;
    /// Atomically adds one wrong entry to a code and returns the new count. NotFound if unknown.
    async fn record_code_try(&self, id: Uuid) -> Result<i64>;
    /// Spends a code: true for exactly one of concurrent callers, false if it was already used
    /// (or is unknown).
    async fn consume_otp_challenge(&self, id: Uuid, now: OffsetDateTime) -> Result<bool>;
    /// Deletes up to `limit` one-time codes sent before `sent_before`, spent or not; returns how
    /// many.
    async fn purge_otp_challenges(&self, sent_before: OffsetDateTime, limit: u32) -> Result<u64>;
    /// Codes sent since `since` by `account_id` and to `destination` (whatever the account),
    /// and the account's newest send.
    async fn otp_send_stats(
        &self,
        account_id: Uuid,
        destination: &str,
        since: OffsetDateTime,
    ) -> Result<OtpSendStats>;

    // Clients.

    async fn create_client(&self, client: Client, audit: NewAuditEvent) -> Result<()>;
    async fn get_client(&self, client_id: &str) -> Result<Option<Client>>;

    // Signing keys.

    async fn insert_signing_key(&self, key: SigningKey) -> Result<()>;
    /// Every stored key, active and retired, oldest first. The caller publishes the active
    /// ones and the retired ones whose overlap has not ended.
    async fn list_signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// Marks a key retired at `at`; retiring it again keeps the first time. NotFound if unknown.
    async fn retire_signing_key(&self, kid: &str, at: OffsetDateTime) -> Result<()>;

    // Sessions.

    /// Conflict if the ID hash exists; NotFound if the account does not.
    async fn create_session(&self, session: Session) -> Result<()>;
    /// The session, expired or not: the caller compares `expires_at` with its clock.
    async fn get_session(&self, id_hash: &str) -> Result<Option<Session>>;
    /// Records activity. NotFound if the session is gone.
    async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> Result<()>;
    /// Ends a session; ending one that is already gone is not an error.
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// Ends every session of an account; returns how many ended.
    async fn delete_sessions_of_account(&self, account_id: Uuid) -> Result<u64>;

    // Authorization grants and codes.

    /// Stores a grant and its authorization code in one transaction.
    async fn create_grant_with_code(&self, grant: Grant, code: AuthorizationCode) -> Result<()>;
    /// Spends a code atomically: of concurrent redemptions exactly one sees `Redeemed`.
    async fn redeem_code(&self, code_hash: &str, now: OffsetDateTime) -> Result<CodeRedemption>;
    async fn get_grant(&self, id: Uuid) -> Result<Option<Grant>>;
    /// [`Store::get_grant`] with the grant's account (deleted or not), in one query.
    async fn get_grant_and_account(&self, id: Uuid) -> Result<Option<(Grant, Account)>>;
    /// Revoking twice keeps the first time.
    async fn revoke_grant(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Revokes every grant of an account not revoked yet; returns how many were revoked.
    async fn revoke_grants_of_account(&self, account_id: Uuid, at: OffsetDateTime) -> Result<u64>;
    /// The grants issued during a browser session, oldest first (for logout notifications).
    async fn grants_of_session(&self, session_id_hash: &str) -> Result<Vec<Grant>>;
    /// Conflict if the token's grant already has a token of its generation.
    async fn insert_refresh_token(&self, token: RefreshToken) -> Result<()>;
    /// Spends the refresh token `rotation.spent` if it is still unspent and, only then, inserts
    /// its successor and appends the audit row, in one transaction (committed together with
    /// concurrent rotations). Returns whether this call spent it: `false` when it was spent
    /// already or does not exist, and then nothing is written.
    async fn rotate_refresh_token(&self, rotation: Rotation) -> Result<bool>;
    /// A refresh token by its key, spent or not (for introspection and revocation), without
    /// spending it. The caller checks the secret (`secret_hash`).
    async fn get_refresh_token(&self, key: &RefreshKey) -> Result<Option<RefreshToken>>;
    /// A refresh token by its key, spent or not, with its grant, account and institution, as of
    /// one moment; None if the token is unknown. The caller checks the secret.
    async fn get_refresh_family(&self, key: &RefreshKey) -> Result<Option<RefreshFamily>>;
    /// Deletes up to `limit` refresh tokens whose family reached its absolute expiry before
    /// `expired_before`, looking only at grants whose ID is below `grants_below` (grant IDs are
    /// UUIDv7, so this is a creation time: the caller passes one that every expired family's
    /// grant precedes, and the look-up stays on the old end of the key). Returns how many were
    /// deleted.
    async fn purge_refresh_tokens(
        &self,
        grants_below: Uuid,
        expired_before: OffsetDateTime,
        limit: u32,
    ) -> Result<u64>;
    /// Deletes up to `limit` grants kept past `retained_before` (their `retain_until`) that no
    /// refresh token and no session refers to any longer, with their authorization codes, in
    /// one transaction. Returns how many grants were deleted.
    async fn purge_grants(&self, retained_before: OffsetDateTime, limit: u32) -> Result<u64>;
    /// Deletes up to `limit` sessions whose absolute expiry is before `expired_before`; returns
    /// how many.
    async fn purge_sessions(&self, expired_before: OffsetDateTime, limit: u32) -> Result<u64>;
    /// Records that the access token `jti` (one without a grant) is revoked, until `expires_at`
    /// when it would end anyway, with its audit row, in one transaction. Revoking it again
    /// keeps the first record and writes no second audit row; returns whether this call revoked
    /// it.
    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        audit: NewAuditEvent,
    ) -> Result<bool>;
    /// Whether the access token `jti` has been revoked (see [`Store::revoke_access_token`]).
    async fn access_token_revoked(&self, jti: &str) -> Result<bool>;
    /// Forgets the revocations of tokens that expired before `before`; returns how many.
    async fn purge_revoked_access_tokens(&self, before: OffsetDateTime) -> Result<u64>;
    /// Spends a refresh token atomically: of concurrent uses exactly one sees `Redeemed`.
    async fn redeem_refresh_token(
        &self,
        id: RefreshTokenId,
        now: OffsetDateTime,
    ) -> Result<RefreshRedemption>;

    // Bulk registration (SPEC §9).

    /// Records an upload with its audit event, in one transaction. Conflict
    /// (`bulk_registration`) when the institution already has a queued or running job (one in
    /// progress per institution) or the reception number is taken.
    async fn create_bulk_job(&self, job: NewBulkJob, audit: NewAuditEvent) -> Result<BulkJob>;
    /// The institution's queued or running job, if any.
    async fn active_bulk_job(&self, institution: &InstitutionCode) -> Result<Option<BulkJob>>;
    async fn get_bulk_job(
        &self,
        institution: &InstitutionCode,
        reception_number: &str,
    ) -> Result<Option<BulkJob>>;
    /// The newest `limit` jobs that `submitter_id` uploaded to the institution, newest first.
    async fn list_bulk_jobs(
        &self,
        institution: &InstitutionCode,
        submitter_id: Uuid,
        limit: i64,
    ) -> Result<Vec<BulkJob>>;
    /// Claims the oldest job that is queued, or running under a lease that expired before `now`
    /// (its node died): it becomes `running` under `owner` until `lease_until`, and its attempt
    /// count goes up by one. Of concurrent claimers exactly one gets a given job.
    async fn claim_bulk_job(
        &self,
        owner: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
    ) -> Result<Option<ClaimedBulkJob>>;
    /// Extends the lease of a running job; false when `owner` no longer holds it.
    async fn renew_bulk_lease(
        &self,
        institution: &InstitutionCode,
        reception_number: &str,
        owner: &str,
        until: OffsetDateTime,
    ) -> Result<bool>;
    /// Which of `user_ids` were ever used in the institution (deleted accounts included).
    async fn taken_user_ids(
        &self,
        institution: &InstitutionCode,
        user_ids: &[String],
    ) -> Result<Vec<String>>;
    /// Ends a running job held by `owner` in one transaction: its final status, counts and
    /// result, every account it registers with their audit events, and the dropping of the
    /// uploaded file. NotFound if `owner` no longer holds the job (nothing is written);
    /// Conflict (`account`) if a user ID was taken meanwhile (nothing is written).
    async fn complete_bulk_job(
        &self,
        institution: &InstitutionCode,
        reception_number: &str,
        owner: &str,
        completion: BulkCompletion,
    ) -> Result<()>;
    /// The result rows and sealed passwords of a job; `None` if unknown or not finished with a
    /// result.
    async fn bulk_result(
        &self,
        institution: &InstitutionCode,
        reception_number: &str,
    ) -> Result<Option<BulkResult>>;
    /// Destroys the sealed initial passwords (kept for the ID/password notice) of accounts of
    /// `account_types` issued at or before `issued_before`: once expired, nobody may read them.
    /// Returns how many accounts were purged.
    async fn purge_initial_passwords(
        &self,
        account_types: &[policies::AccountType],
        issued_before: OffsetDateTime,
    ) -> Result<u64>;
    /// Destroys the sealed initial passwords of jobs finished at or before `finished_before`,
    /// marking them purged at `now`. Returns how many jobs were purged.
    async fn purge_bulk_passwords(
        &self,
        finished_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64>;

    // Audit.

    async fn append_audit(&self, event: NewAuditEvent) -> Result<()>;
    /// The newest `limit` sign-in events (`login.success`, `login.failure`) about an account,
    /// newest first.
    async fn recent_sign_ins(&self, account_id: Uuid, limit: i64) -> Result<Vec<AuditEvent>>;
    /// Events matching the filter, oldest first (by `at`, then `seq`), at most `limit`
    /// (a negative limit counts as zero).
    async fn list_audit(&self, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditEvent>>;
}

/// Opens the backend named by the URL: `sqlite://PATH` (created if missing) or `postgres://…`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}
