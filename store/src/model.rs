//! The records the store reads and writes. These are storage shapes, not wire formats: the HTTP
//! surfaces map them to their own request and response types.

use policies::lockout::LockState;
use policies::usage::LoginHours;
use policies::{AccountType, InstitutionCode, InstitutionKind};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Security settings an institution may tune within the deployment's bounds (SPEC §6, §7).
/// Stored as JSON; a change bumps the institution's `settings_version`, which ends every session
/// and refresh token issued under the previous version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstitutionSettings {
    /// Require the second factor everywhere, not only outside trusted networks.
    pub second_factor_everywhere: bool,
    /// Consecutive failures that lock an account; `None` uses the deployment default.
    pub lockout_threshold: Option<u32>,
    /// Optional login hours in Asia/Tokyo, stored in the configuration shape of
    /// [`LoginHours`] (`{"opens": "09:00", "closes": "22:00", "days": ["mon", …]}`), so a stored
    /// value is valid by construction.
    pub login_hours: Option<LoginHours>,
}

#[derive(Debug, Clone)]
pub struct NewInstitution {
    pub code: InstitutionCode,
    pub name: String,
    pub usage_start: Date,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Institution {
    pub code: InstitutionCode,
    pub name: String,
    pub kind: InstitutionKind,
    pub usage_start: Date,
    pub settings: InstitutionSettings,
    pub settings_version: i64,
    pub created_at: OffsetDateTime,
}

/// Second-factor methods (SPEC §7). Codes 1/2/3 are the seed's method codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorMethod {
    Email,
    Sms,
    Voice,
}

impl SecondFactorMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            SecondFactorMethod::Email => "email",
            SecondFactorMethod::Sms => "sms",
            SecondFactorMethod::Voice => "voice",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "email" => Some(SecondFactorMethod::Email),
            "sms" => Some(SecondFactorMethod::Sms),
            "voice" => Some(SecondFactorMethod::Voice),
            _ => None,
        }
    }
}

/// A registered second-factor destination. `verified` is false until the user confirmed a code
/// sent to it; an admin-registered first destination counts as verified (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactor {
    pub method: SecondFactorMethod,
    pub email: Option<String>,
    /// E.164, e.g. `+819012345678`.
    pub phone: Option<String>,
    pub verified: bool,
}

/// Why a one-time code was sent (SPEC §7, §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtpPurpose {
    /// The second step of a sign-in, to the registered destination.
    SignIn,
    /// Registering a first destination during sign-in.
    Enroll,
    /// Changing method or destination on `/account`.
    Change,
    /// Proving control of the registered destination to set a forgotten password.
    Reset,
}

impl OtpPurpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::SignIn => "sign_in",
            OtpPurpose::Enroll => "enroll",
            OtpPurpose::Change => "change",
            OtpPurpose::Reset => "reset",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "sign_in" => Some(OtpPurpose::SignIn),
            "enroll" => Some(OtpPurpose::Enroll),
            "change" => Some(OtpPurpose::Change),
            "reset" => Some(OtpPurpose::Reset),
            _ => None,
        }
    }
}

/// One code sent to one destination. Only a keyed digest of the code is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpChallenge {
    pub id: Uuid,
    pub account_id: Uuid,
    pub purpose: OtpPurpose,
    pub method: SecondFactorMethod,
    /// The normalised destination: an e-mail address or an E.164 number.
    pub destination: String,
    pub code_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Wrong entries so far.
    pub tries: i64,
    pub used_at: Option<OffsetDateTime>,
}

/// What the resend cooldown and the daily caps need: codes sent since a given instant (the
/// start of the Asia/Tokyo day) to an account and to a destination, and the account's last send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtpSendStats {
    pub sent_by_account: i64,
    pub sent_to_destination: i64,
    pub last_sent_at: Option<OffsetDateTime>,
}

/// A password hash together with the state the policies need (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// PHC string (argon2id).
    pub hash: String,
    /// Set while the account is on a system-issued initial password.
    pub initial_issued_at: Option<OffsetDateTime>,
    /// The initial password, sealed with the key-encryption key, kept only while it is current
    /// and unexpired so that a notice can be printed (SPEC §5, §9).
    pub initial_sealed: Option<Vec<u8>>,
    pub changed_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: Uuid,
    pub institution_code: InstitutionCode,
    pub account_type: AccountType,
    pub user_id: String,
    pub name: String,
    pub name_kana: String,
    pub usage_start: Date,
    pub usage_end: Date,
    pub second_factor: Option<SecondFactor>,
    pub credential: Credential,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// Stable internal identifier; also the OIDC `sub`.
    pub id: Uuid,
    pub institution_code: InstitutionCode,
    pub account_type: AccountType,
    pub user_id: String,
    pub name: String,
    pub name_kana: String,
    pub enabled: bool,
    pub lock: LockState,
    pub locked_at: Option<OffsetDateTime>,
    /// Tokens issued before this instant's second are invalid, whatever the account's state is
    /// now: the time of its last lock or other end of access (disable, reset, delete), so that
    /// an unlock or enable revives none of them (`policies::lockout::issued_before_lock`).
    pub tokens_not_before: Option<OffsetDateTime>,
    pub failed_attempts: i64,
    pub usage_start: Date,
    pub usage_end: Date,
    pub second_factor: Option<SecondFactor>,
    pub credential: Credential,
    pub notice_issued: bool,
    pub last_login_at: Option<OffsetDateTime>,
    pub created_by: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
}

/// A printed ID/password notice: the account and the password hash of the credential it showed
/// (see [`crate::Store::mark_notices_issued`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintedNotice {
    pub account_id: Uuid,
    pub password_hash: String,
}

/// A registered relying party (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub client_id: String,
    /// PHC string of the client secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// JWS algorithm for this client's tokens: `RS256`, `ES256` or `EdDSA`.
    pub signing_alg: String,
    pub created_at: OffsetDateTime,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }
}

/// A signing key. The private part is sealed with the key-encryption key; only the public JWK
/// is ever served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub public_jwk: serde_json::Value,
    pub private_sealed: Vec<u8>,
    pub created_at: OffsetDateTime,
    /// Set when a newer key of the same algorithm took over; the key stays published until
    /// every token it signed has expired.
    pub retired_at: Option<OffsetDateTime>,
}

/// A server-side browser session. The cookie carries a random value; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    pub account_id: Uuid,
    pub institution_settings_version: i64,
    pub auth_time: OffsetDateTime,
    pub amr: Vec<String>,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditResult {
    Success,
    Failure,
}

impl AuditResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditResult::Success => "success",
            AuditResult::Failure => "failure",
        }
    }
}

/// An append-only audit record (SPEC §9). Never carries a password, code, token or secret.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub at: OffsetDateTime,
    /// Dotted kind, e.g. `institution.create`, `login.failure`.
    pub kind: String,
    pub actor_account_id: Option<Uuid>,
    /// Human-readable actor, e.g. `cli` or `0000000000/admin1`.
    pub actor: String,
    pub target_account_id: Option<Uuid>,
    pub target: Option<String>,
    pub institution_code: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub result: AuditResult,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub seq: i64,
    pub event: NewAuditEvent,
}

/// Which audit events to list; `None` fields match everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Inclusive lower bound on `at`.
    pub from: Option<OffsetDateTime>,
    /// Exclusive upper bound on `at`.
    pub to: Option<OffsetDateTime>,
    /// Exact kind, e.g. `login.failure`.
    pub kind: Option<String>,
    /// Exact institution code.
    pub institution_code: Option<String>,
}

/// What one authorization produced: the account, the client, and how and when the user
/// authenticated. Codes and tokens refer to their grant; revoking it revokes them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub account_id: Uuid,
    pub client_id: String,
    pub session_id_hash: Option<String>,
    pub scopes: Vec<String>,
    pub auth_time: OffsetDateTime,
    pub amr: Vec<String>,
    pub acr: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The grant and its codes are deleted after this, once no refresh token and no session
    /// refers to it ([`crate::Store::purge_grants`]).
    pub retain_until: OffsetDateTime,
}

/// A single-use authorization code. Only the SHA-256 of the code is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub grant_id: Uuid,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge, when the client sent one.
    pub code_challenge: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// The outcome of redeeming a code.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per redemption and taken apart at once: boxing the grant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum CodeRedemption {
    /// First use: the code is now spent.
    Redeemed {
        code: AuthorizationCode,
        grant: Grant,
    },
    /// The code had been used before: a replay. The caller revokes the grant.
    Replayed {
        code: AuthorizationCode,
    },
    Unknown,
}

/// Which refresh token: its family (grant) and its place in it. Generations count up from 0 with
/// every rotation; tokens issued before migration 0010 have negative ones (`secret_hash` is then
/// the hash of the whole token, see [`RefreshKey::Legacy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefreshTokenId {
    pub grant_id: Uuid,
    pub generation: i64,
}

impl RefreshTokenId {
    /// The token that replaces this one when it is spent.
    pub fn successor(self) -> Self {
        Self {
            generation: self.generation + 1,
            ..self
        }
    }
}

/// How a presented refresh token finds its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshKey {
    /// A token of the current format names its row; the caller then compares the row's
    /// `secret_hash` with the hash of the token's secret.
    Id(RefreshTokenId),
    /// A token issued before migration 0010: found by the hash of the whole token, among the rows
    /// with negative generations only.
    Legacy { token_hash: String },
}

/// A refresh token. The row keeps only the SHA-256 of the token's secret; its grant is its
/// family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub grant_id: Uuid,
    pub generation: i64,
    pub secret_hash: String,
    /// The institution's settings version when issued: a settings change ends the family.
    pub institution_settings_version: i64,
    pub created_at: OffsetDateTime,
    pub idle_expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

impl RefreshToken {
    pub fn id(&self) -> RefreshTokenId {
        RefreshTokenId {
            grant_id: self.grant_id,
            generation: self.generation,
        }
    }
}

/// A refresh token with everything a refresh decides on, read in one statement: its grant, and
/// the grant's account (deleted or not) and institution.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshFamily {
    pub token: RefreshToken,
    pub grant: Grant,
    pub account: Account,
    pub institution: Institution,
}

/// One use of a refresh token that passed every check: the token spent, its successor and the
/// audit row of the refresh (see [`crate::Store::rotate_refresh_token`]).
#[derive(Debug, Clone)]
pub struct Rotation {
    pub spent: RefreshTokenId,
    pub at: OffsetDateTime,
    pub successor: RefreshToken,
    pub audit: NewAuditEvent,
}

/// The outcome of using a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
// Returned once per redemption and taken apart at once: boxing the grant would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
pub enum RefreshRedemption {
    /// First use: the token is now rotated out; the caller issues its successor.
    Redeemed {
        token: RefreshToken,
        grant: Grant,
    },
    /// The token had already been rotated: a reuse. The caller revokes the grant.
    Reused {
        token: RefreshToken,
    },
    Unknown,
}

/// The admin account search (SPEC §12). Deleted accounts never match; every `None` matches
/// everything.
#[derive(Debug, Clone)]
pub struct AccountFilter {
    pub institution_code: InstitutionCode,
    /// Only these types; an empty list matches nothing. The admin API passes the types the
    /// caller may see.
    pub account_types: Vec<AccountType>,
    /// Exact, case-sensitive user ID.
    pub user_id: Option<String>,
    /// A substring of the name (`%` and `_` are matched literally).
    pub name: Option<String>,
    /// A substring of the reading.
    pub name_kana: Option<String>,
    pub enabled: Option<bool>,
    /// `true`: locked by failures or by an admin; `false`: not locked.
    pub locked: Option<bool>,
    /// Inclusive bounds on the usage start date.
    pub usage_start_from: Option<Date>,
    pub usage_start_to: Option<Date>,
    /// Inclusive bounds on the usage end date.
    pub usage_end_from: Option<Date>,
    pub usage_end_to: Option<Date>,
}

impl AccountFilter {
    /// Every live account of these types in the institution.
    pub fn new(institution_code: InstitutionCode, account_types: Vec<AccountType>) -> Self {
        Self {
            institution_code,
            account_types,
            user_id: None,
            name: None,
            name_kana: None,
            enabled: None,
            locked: None,
            usage_start_from: None,
            usage_start_to: None,
            usage_end_from: None,
            usage_end_to: None,
        }
    }
}

/// One page of a search: `offset` rows skipped, at most `limit` returned (negative values count
/// as zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub offset: i64,
    pub limit: i64,
}

/// A page of accounts, ordered by user ID then internal ID, and how many matched in all.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountPage {
    pub items: Vec<Account>,
    /// How many accounts match, up to [`crate::SEARCH_COUNT_LIMIT`].
    pub total: i64,
    /// False when more than [`crate::SEARCH_COUNT_LIMIT`] match: `total` is then that bound.
    pub total_exact: bool,
}

/// The fields an admin may change (SPEC §9 update), as the complete new values: the service
/// merges the request into the current account and validates the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFields {
    pub name: String,
    pub name_kana: String,
    pub enabled: bool,
    pub usage_start: Date,
    pub usage_end: Date,
    pub second_factor: Option<SecondFactor>,
}

/// One administrative change to an account. [`crate::Store::change_account`] applies it, and
/// optionally ends the account's access, in one transaction with its audit event.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountChange {
    Fields(AccountFields),
    /// A password reset: the new (initial) credential. Clears the failure count, a lock caused by
    /// failures (an admin lock stays) and the notice's "issued" mark.
    ResetCredential(Credential),
    /// Lock (`Admin`) or unlock (`None`), as [`crate::Store::set_lock`].
    Lock {
        state: LockState,
        at: Option<OffsetDateTime>,
    },
    /// Soft delete: the user ID stays reserved.
    Delete {
        at: OffsetDateTime,
    },
}

/// What an institution's admin may change about the institution itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstitutionUpdate {
    pub name: String,
    pub usage_start: Date,
}

/// One problem found in a bulk registration file: a file-structure error (`line` of the file
/// when known) or a rule a row broke (`field` is the column's English name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkProblem {
    pub line: Option<u64>,
    pub field: String,
    pub rule: String,
    pub message_ja: String,
    pub message_en: String,
}

/// One row of a bulk registration's result: the cells as uploaded (in
/// `policies::bulk::Column::ALL` order), what happened to it and why. The initial password of a
/// registered row is not here: it lives in the job's sealed password blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkResultRow {
    /// The line of the file (the header is line 1).
    pub line: u64,
    pub cells: Vec<String>,
    /// `policies::bulk::RowResult::as_str`.
    pub result: String,
    pub errors: Vec<BulkProblem>,
}

/// A bulk registration job as uploaded (SPEC §9). `status` is `queued`, or already final
/// (`failed_file_structure`, with `errors` and `finished_at`) when the file could not be read.
#[derive(Debug, Clone)]
pub struct NewBulkJob {
    pub institution_code: InstitutionCode,
    pub reception_number: String,
    pub submitter_id: Uuid,
    pub submitter_type: AccountType,
    pub status: policies::bulk::JobStatus,
    pub submitted_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub row_count: i64,
    pub file: Vec<u8>,
    pub errors: Vec<BulkProblem>,
}

/// A bulk registration job without its file and result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkJob {
    pub institution_code: InstitutionCode,
    pub reception_number: String,
    pub submitter_id: Uuid,
    pub submitter_type: AccountType,
    pub status: policies::bulk::JobStatus,
    pub submitted_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub row_count: i64,
    pub registered_count: i64,
    pub duplicate_count: i64,
    pub invalid_count: i64,
    /// How many times a node started running it.
    pub attempts: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub errors: Vec<BulkProblem>,
    pub passwords_purged_at: Option<OffsetDateTime>,
}

/// A job a node has just claimed, with the file to run it from.
#[derive(Debug, Clone)]
pub struct ClaimedBulkJob {
    pub job: BulkJob,
    pub file: Vec<u8>,
}

/// The result of a finished job: its rows and the sealed initial passwords (absent once
/// purged, and for jobs that registered nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkResult {
    pub rows: Vec<BulkResultRow>,
    pub passwords_sealed: Option<Vec<u8>>,
}

/// How a job ends, written in one transaction with the accounts it registers and their audit
/// events ([`crate::Store::complete_bulk_job`]).
#[derive(Debug, Clone)]
pub struct BulkCompletion {
    pub status: policies::bulk::JobStatus,
    pub finished_at: OffsetDateTime,
    pub row_count: i64,
    pub registered_count: i64,
    pub duplicate_count: i64,
    pub invalid_count: i64,
    pub errors: Vec<BulkProblem>,
    pub result_rows: Vec<BulkResultRow>,
    pub passwords_sealed: Option<Vec<u8>>,
    pub accounts: Vec<NewAccount>,
    pub audit: Vec<NewAuditEvent>,
}
