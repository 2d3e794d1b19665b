//! What both backends share: the SQL text, the timestamp encoding, error mapping, the parsers
//! that turn stored strings back into domain types, and [`impl_store!`], which expands the one
//! `impl Store` body for a given store type and sqlx database.
//!
//! The SQL is written once with `$N` placeholders, which PostgreSQL and sqlx's SQLite driver
//! both accept. Only connecting, migrating, opening a write transaction and the encoding of
//! [`Timestamp`] differ per backend; those live in `sqlite.rs` and `postgres.rs`.

use policies::lockout::LockState;
use policies::{AccountType, InstitutionCode, InstitutionKind};
use serde::de::DeserializeOwned;
use time::{OffsetDateTime, UtcOffset};

use crate::{OtpPurpose, SecondFactor, SecondFactorMethod, StoreError};

/// A timestamp on its way into the database: converted to UTC and truncated to whole
/// microseconds, the precision PostgreSQL keeps, so that both backends return exactly the value
/// they were given after that truncation.
///
/// SQLite stores it as fixed-width RFC 3339 text (`2026-11-03T01:02:03.456789Z`, always six
/// fraction digits), which makes text comparison and `ORDER BY` chronological. sqlx's own
/// encoding trims trailing zeros and drops an all-zero fraction, and `…:03Z` sorts after
/// `…:03.5Z`, so it cannot be compared as text. Each backend implements `Encode` for it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timestamp(pub OffsetDateTime);

impl Timestamp {
    /// The value the database will hold: UTC, whole microseconds.
    pub(crate) fn normalized(self) -> OffsetDateTime {
        let utc = self.0.to_offset(UtcOffset::UTC);
        let micros = utc.nanosecond() / 1_000 * 1_000;
        // A nanosecond value below one billion is always accepted; fall back to the UTC value
        // rather than panic should that ever change.
        utc.replace_nanosecond(micros).unwrap_or(utc)
    }
}

pub(crate) fn ts(at: OffsetDateTime) -> Timestamp {
    Timestamp(at)
}

pub(crate) fn ts_opt(at: Option<OffsetDateTime>) -> Option<Timestamp> {
    at.map(Timestamp)
}

/// Any driver error that is not a known constraint violation.
pub(crate) fn db(err: sqlx::Error) -> StoreError {
    StoreError::Database(err)
}

/// Maps the errors of a write: a unique violation becomes `Conflict(what)`, a foreign-key
/// violation `NotFound` (the institution or account referred to does not exist).
pub(crate) fn on_write(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(e) if e.is_unique_violation() => StoreError::Conflict(what),
        sqlx::Error::Database(e) if e.is_foreign_key_violation() => StoreError::NotFound,
        _ => StoreError::Database(err),
    }
}

/// `NotFound` when an update or delete touched no row.
pub(crate) fn expect_one(rows_affected: u64) -> crate::Result<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

pub(crate) fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {detail}"))
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> crate::Result<String> {
    // Serializing plain records to a string cannot fail in practice; report it as corrupt data
    // rather than panic if it ever does.
    serde_json::to_string(value).map_err(|e| corrupt("json", e))
}

pub(crate) fn from_json<T: DeserializeOwned>(column: &str, raw: &str) -> crate::Result<T> {
    serde_json::from_str(raw).map_err(|e| corrupt(column, e))
}

pub(crate) fn parse_code(raw: &str) -> crate::Result<InstitutionCode> {
    InstitutionCode::parse_for_login(raw).map_err(|v| corrupt("institution_code", v.message_en))
}

/// Parses the stored kind and checks it agrees with the code it belongs to.
pub(crate) fn parse_kind(raw: &str, code: &InstitutionCode) -> crate::Result<InstitutionKind> {
    let kind = match raw {
        "medical" => InstitutionKind::Medical,
        "dental" => InstitutionKind::Dental,
        "pharmacy" => InstitutionKind::Pharmacy,
        "home_nursing" => InstitutionKind::HomeNursing,
        "platform" => InstitutionKind::Platform,
        other => return Err(corrupt("kind", format!("unknown kind {other:?}"))),
    };
    if kind != code.kind() {
        return Err(corrupt("kind", format!("{raw} does not match code {code}")));
    }
    Ok(kind)
}

pub(crate) fn parse_account_type(raw: &str) -> crate::Result<AccountType> {
    raw.parse().map_err(|e| corrupt("account_type", e))
}

pub(crate) fn parse_lock(raw: &str) -> crate::Result<LockState> {
    [LockState::None, LockState::Failures, LockState::Admin]
        .into_iter()
        .find(|state| state.as_str() == raw)
        .ok_or_else(|| corrupt("lock_state", format!("unknown lock state {raw:?}")))
}

pub(crate) fn parse_method(raw: &str) -> crate::Result<SecondFactorMethod> {
    SecondFactorMethod::parse(raw).ok_or_else(|| corrupt("method", format!("unknown {raw:?}")))
}

pub(crate) fn parse_job_status(raw: &str) -> crate::Result<policies::bulk::JobStatus> {
    policies::bulk::JobStatus::parse(raw)
        .ok_or_else(|| corrupt("status", format!("unknown {raw:?}")))
}

/// Rows per multi-row INSERT in a bulk registration: 500 accounts of 18 columns stay well under
/// SQLite's 32,766 bound parameters and PostgreSQL's 65,535.
pub(crate) const BATCH_ROWS: usize = 500;

pub(crate) fn parse_purpose(raw: &str) -> crate::Result<OtpPurpose> {
    OtpPurpose::parse(raw).ok_or_else(|| corrupt("purpose", format!("unknown {raw:?}")))
}

/// Rebuilds the optional second factor from its four columns.
pub(crate) fn second_factor(
    method: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    verified: bool,
) -> crate::Result<Option<SecondFactor>> {
    let Some(method) = method else {
        return Ok(None);
    };
    let method = SecondFactorMethod::parse(&method)
        .ok_or_else(|| corrupt("second_factor_method", format!("unknown method {method:?}")))?;
    Ok(Some(SecondFactor {
        method,
        email,
        phone,
        verified,
    }))
}

/// A `LIKE` pattern matching `needle` anywhere, with the backslash, `%` and `_` escaped by a
/// backslash (the queries say `ESCAPE '\'`), so user input is always matched literally.
pub(crate) fn contains_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '\\' | '%' | '_') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// What a partial search for `needle` requires of the indexed grams of a column (PostgreSQL's
/// `sekimori_grams`, migration 0003): the character itself for a one-character search, every
/// distinct pair of adjacent characters otherwise. Characters, not bytes, as PostgreSQL's
/// `substr` counts them.
pub(crate) fn needle_grams(needle: &str) -> Vec<String> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() == 1 {
        return vec![chars[0].to_string()];
    }
    let mut grams: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
    grams.sort();
    grams.dedup();
    grams
}

/// The time of a batch of rotations' latest: one statement spends the whole batch at it.
pub(crate) fn latest(rotations: &[crate::Rotation]) -> Option<OffsetDateTime> {
    rotations.iter().map(|r| r.at).max()
}

/// A batch of rotations once its statement has spent the hashes in `unclaimed`.
pub(crate) struct Settled {
    /// Whether each rotation, in order, won its token.
    pub spent: Vec<bool>,
    /// The winners' successors and audit rows, to be written in the same transaction.
    pub successors: Vec<crate::RefreshToken>,
    pub audits: Vec<crate::NewAuditEvent>,
}

/// Decides which rotations of a batch won: those whose token the statement spent, and of a token
/// presented twice in one batch, the first.
pub(crate) fn settle_rotations(
    rotations: Vec<crate::Rotation>,
    mut unclaimed: std::collections::HashSet<crate::RefreshTokenId>,
) -> Settled {
    let mut settled = Settled {
        spent: Vec::with_capacity(rotations.len()),
        successors: Vec::new(),
        audits: Vec::new(),
    };
    for rotation in rotations {
        let first = unclaimed.remove(&rotation.spent);
        if first {
            settled.successors.push(rotation.successor);
            settled.audits.push(rotation.audit);
        }
        settled.spent.push(first);
    }
    settled
}

/// The SQL both backends run. Column lists are spelled out, never `SELECT *`, so that the
/// decoders and the schema are visibly in step.
pub(crate) mod sql {
    pub const PING: &str = "SELECT 1";

    pub const INSERT_INSTITUTION: &str = "\
        INSERT INTO institutions (code, name, kind, usage_start, created_at) \
        VALUES ($1, $2, $3, $4, $5)";
    pub const SELECT_INSTITUTION: &str = "\
        SELECT code, name, kind, usage_start, settings, settings_version, created_at \
        FROM institutions WHERE code = $1";
    pub const LIST_INSTITUTIONS: &str = "\
        SELECT code, name, kind, usage_start, settings, settings_version, created_at \
        FROM institutions ORDER BY code";

    pub const INSERT_ACCOUNT: &str = "\
        INSERT INTO accounts (id, institution_code, account_type, user_id, name, name_kana, \
            usage_start, usage_end, second_factor_method, second_factor_email, \
            second_factor_phone, second_factor_verified, password_hash, initial_issued_at, \
            initial_sealed, password_changed_at, created_by, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

    /// `concat!` takes only literals, so the account column list is a macro. The columns are read
    /// from the alias `a` under their own names, so that joins can use the same list.
    macro_rules! account_columns_of_a {
        () => {
            "a.id, a.institution_code, a.account_type, a.user_id, a.name, a.name_kana, \
             a.enabled, a.lock_state, a.locked_at, a.tokens_not_before, a.failed_attempts, \
             a.usage_start, a.usage_end, a.second_factor_method, a.second_factor_email, \
             a.second_factor_phone, a.second_factor_verified, a.password_hash, \
             a.initial_issued_at, a.initial_sealed, a.password_changed_at, a.notice_issued, \
             a.last_login_at, a.created_by, a.created_at, a.deleted_at"
        };
    }
    macro_rules! select_account {
        ($where:literal) => {
            concat!(
                "SELECT ",
                account_columns_of_a!(),
                " FROM accounts a WHERE ",
                $where
            )
        };
    }
    pub const SELECT_ACCOUNT: &str = select_account!("id = $1");
    /// An institution's columns prefixed `i_`, beside an account's.
    /// An institution's columns, read from the alias `i` and prefixed `i_`.
    macro_rules! institution_columns_of_i {
        () => {
            "i.code AS i_code, i.name AS i_name, i.kind AS i_kind, \
             i.usage_start AS i_usage_start, i.settings AS i_settings, \
             i.settings_version AS i_settings_version, i.created_at AS i_created_at"
        };
    }
    /// A grant's columns, read from the alias `g` and prefixed `g_`.
    macro_rules! grant_columns_of_g {
        () => {
            "g.id AS g_id, g.account_id AS g_account_id, g.client_id AS g_client_id, \
             g.session_id_hash AS g_session_id_hash, g.scopes AS g_scopes, \
             g.auth_time AS g_auth_time, g.amr AS g_amr, g.acr AS g_acr, \
             g.created_at AS g_created_at, g.revoked_at AS g_revoked_at, \
             g.retain_until AS g_retain_until"
        };
    }
    macro_rules! refresh_columns {
        () => {
            "grant_id, generation, secret_hash, institution_settings_version, created_at, \
             idle_expires_at, absolute_expires_at, used_at"
        };
    }
    macro_rules! select_refresh_family {
        ($where:literal) => {
            concat!(
                "SELECT r.grant_id AS r_grant_id, r.generation AS r_generation, \
                 r.secret_hash AS r_secret_hash, \
                 r.institution_settings_version AS r_institution_settings_version, \
                 r.created_at AS r_created_at, r.idle_expires_at AS r_idle_expires_at, \
                 r.absolute_expires_at AS r_absolute_expires_at, r.used_at AS r_used_at, ",
                grant_columns_of_g!(),
                ", ",
                account_columns_of_a!(),
                ", ",
                institution_columns_of_i!(),
                " FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
                 JOIN accounts a ON a.id = g.account_id \
                 JOIN institutions i ON i.code = a.institution_code WHERE ",
                $where
            )
        };
    }
    macro_rules! select_account_and_institution {
        ($where:literal) => {
            concat!(
                "SELECT ",
                account_columns_of_a!(),
                ", ",
                institution_columns_of_i!(),
                " FROM accounts a JOIN institutions i ON i.code = a.institution_code WHERE ",
                $where
            )
        };
    }
    pub const SELECT_ACCOUNT_AND_INSTITUTION: &str = select_account_and_institution!("a.id = $1");
    pub const FIND_ACCOUNT_AND_INSTITUTION: &str = select_account_and_institution!(
        "a.institution_code = $1 AND a.user_id = $2 AND a.deleted_at IS NULL"
    );
    /// A grant's columns prefixed `g_`, beside its account's.
    pub const SELECT_GRANT_AND_ACCOUNT: &str = concat!(
        "SELECT ",
        grant_columns_of_g!(),
        ", ",
        account_columns_of_a!(),
        " FROM grants g JOIN accounts a ON a.id = g.account_id WHERE g.id = $1"
    );
    /// A refresh token (its columns prefixed `r_`) with its grant, account and institution, by
    /// its ID (`$1` grant, `$2` generation).
    pub const SELECT_REFRESH_FAMILY: &str =
        select_refresh_family!("r.grant_id = $1 AND r.generation = $2");
    /// [`SELECT_REFRESH_FAMILY`] of a token issued before migration 0010, by the hash of the
    /// whole token (`$1`), through the partial index over negative generations.
    pub const SELECT_LEGACY_REFRESH_FAMILY: &str =
        select_refresh_family!("r.secret_hash = $1 AND r.generation < 0");
    pub const FIND_ACCOUNT: &str =
        select_account!("institution_code = $1 AND user_id = $2 AND deleted_at IS NULL");
    pub const COUNT_ACCOUNTS_OF_TYPE: &str =
        "SELECT COUNT(*) AS n FROM accounts WHERE account_type = $1 AND deleted_at IS NULL";
    pub const DELETE_ACCOUNT: &str =
        "UPDATE accounts SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL";
    /// One statement, so concurrent failures never lose an increment.
    pub const RECORD_FAILURE: &str = "\
        UPDATE accounts SET failed_attempts = failed_attempts + 1 WHERE id = $1 \
        RETURNING failed_attempts";
    pub const RECORD_SUCCESS: &str =
        "UPDATE accounts SET failed_attempts = 0, last_login_at = $2 WHERE id = $1";
    /// Unlocking (`none`) also clears the failure count, so the next failure starts afresh.
    /// Locking moves `tokens_not_before` to the lock time; unlocking keeps it. (An admin lock,
    /// `SET_LOCK_LIVE`, ends access through `change_account`, which moves it.)
    pub const SET_LOCK: &str = "\
        UPDATE accounts SET lock_state = $2, locked_at = $3, \
            failed_attempts = CASE WHEN $2 = 'none' THEN 0 ELSE failed_attempts END, \
            tokens_not_before = CASE WHEN $2 = 'none' THEN tokens_not_before \
                ELSE COALESCE($3, tokens_not_before) END \
        WHERE id = $1";
    pub const SET_CREDENTIAL: &str = "\
        UPDATE accounts SET password_hash = $2, initial_issued_at = $3, initial_sealed = $4, \
            password_changed_at = $5, failed_attempts = 0 \
        WHERE id = $1";

    pub const SET_SECOND_FACTOR: &str = "\
        UPDATE accounts SET second_factor_method = $2, second_factor_email = $3, \
            second_factor_phone = $4, second_factor_verified = $5 \
        WHERE id = $1";

    pub const INSERT_OTP_CHALLENGE: &str = "\
        INSERT INTO otp_challenges (id, account_id, purpose, method, destination, code_hash, \
            created_at, expires_at, tries, used_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub const SELECT_OTP_CHALLENGE: &str = "\
        SELECT id, account_id, purpose, method, destination, code_hash, created_at, expires_at, \
            tries, used_at \
        FROM otp_challenges WHERE id = $1";
    /// One statement, so concurrent wrong entries are each counted.
    pub const RECORD_CODE_TRY: &str =
        "UPDATE otp_challenges SET tries = tries + 1 WHERE id = $1 RETURNING tries";
    /// One statement: of concurrent uses exactly one updates the row.
    pub const CONSUME_OTP_CHALLENGE: &str =
        "UPDATE otp_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL";
    pub const COUNT_OTP_BY_ACCOUNT: &str = "\
        SELECT COUNT(*) AS n FROM otp_challenges WHERE account_id = $1 AND created_at >= $2";
    pub const COUNT_OTP_BY_DESTINATION: &str = "\
        SELECT COUNT(*) AS n FROM otp_challenges WHERE destination = $1 AND created_at >= $2";
    pub const LAST_OTP_OF_ACCOUNT: &str = "\
        SELECT created_at FROM otp_challenges WHERE account_id = $1 \
        ORDER BY created_at DESC LIMIT 1";

    pub const INSERT_PASSWORD_HISTORY: &str =
        "INSERT INTO password_history (account_id, hash, created_at) VALUES ($1, $2, $3)";
    /// Keeps only the newest `$2` entries of an account.
    pub const TRIM_PASSWORD_HISTORY: &str = "\
        DELETE FROM password_history WHERE account_id = $1 AND hash NOT IN ( \
            SELECT hash FROM password_history WHERE account_id = $1 \
            ORDER BY created_at DESC LIMIT $2)";
    pub const SELECT_PASSWORD_HISTORY: &str = "\
        SELECT hash FROM password_history WHERE account_id = $1 \
        ORDER BY created_at DESC LIMIT $2";
    pub const DELETE_OTHER_SESSIONS: &str =
        "DELETE FROM sessions WHERE account_id = $1 AND ($2 IS NULL OR id_hash <> $2)";

    /// The column list and table of an account query; the search appends its conditions.
    pub const SEARCH_ACCOUNTS: &str = select_account!("");
    /// The count of a search stops at a bound (see [`crate::SEARCH_COUNT_LIMIT`]): the filter and
    /// a `LIMIT` are appended, then `COUNT_ACCOUNTS_END`.
    pub const COUNT_ACCOUNTS: &str = "SELECT COUNT(*) AS n FROM (SELECT 1 FROM accounts WHERE ";
    pub const COUNT_ACCOUNTS_END: &str = ") AS matched";
    pub const UPDATE_ACCOUNT_FIELDS: &str = "\
        UPDATE accounts SET name = $2, name_kana = $3, enabled = $4, usage_start = $5, \
            usage_end = $6, second_factor_method = $7, second_factor_email = $8, \
            second_factor_phone = $9, second_factor_verified = $10 \
        WHERE id = $1 AND deleted_at IS NULL";
    /// In an UPDATE every right-hand side reads the old row, so both CASEs see the old lock.
    pub const RESET_CREDENTIAL: &str = "\
        UPDATE accounts SET password_hash = $2, initial_issued_at = $3, initial_sealed = $4, \
            password_changed_at = $5, failed_attempts = 0, notice_issued = FALSE, \
            lock_state = CASE WHEN lock_state = 'failures' THEN 'none' ELSE lock_state END, \
            locked_at = CASE WHEN lock_state = 'failures' THEN NULL ELSE locked_at END \
        WHERE id = $1 AND deleted_at IS NULL";
    /// Marks a notice printed only while the account still has the credential the notice showed,
    /// so a reset or change that raced the printing is not marked 出力済.
    pub const MARK_NOTICE_ISSUED: &str = "\
        UPDATE accounts SET notice_issued = TRUE \
        WHERE id = $1 AND password_hash = $2 AND deleted_at IS NULL";
    pub const SET_LOCK_LIVE: &str = "\
        UPDATE accounts SET lock_state = $2, locked_at = $3, \
            failed_attempts = CASE WHEN $2 = 'none' THEN 0 ELSE failed_attempts END \
        WHERE id = $1 AND deleted_at IS NULL";

    pub const UPDATE_INSTITUTION: &str =
        "UPDATE institutions SET name = $2, usage_start = $3 WHERE code = $1";
    pub const SET_INSTITUTION_SETTINGS: &str = "\
        UPDATE institutions SET settings = $2, settings_version = settings_version + 1 \
        WHERE code = $1";
    pub const DELETE_SESSIONS_OF_INSTITUTION: &str = "\
        DELETE FROM sessions \
        WHERE account_id IN (SELECT id FROM accounts WHERE institution_code = $1)";
    pub const REVOKE_GRANTS_OF_INSTITUTION: &str = "\
        UPDATE grants SET revoked_at = $2 \
        WHERE revoked_at IS NULL \
            AND account_id IN (SELECT id FROM accounts WHERE institution_code = $1)";
    /// Ending an account's access also ends its stateless tokens (machine tokens), which no
    /// grant stands behind.
    pub const SET_TOKENS_NOT_BEFORE: &str =
        "UPDATE accounts SET tokens_not_before = $2 WHERE id = $1";
    pub const REVOKE_GRANTS_OF_ACCOUNT: &str =
        "UPDATE grants SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL";

    pub const INSERT_CLIENT: &str = "\
        INSERT INTO clients (client_id, secret_hash, redirect_uris, post_logout_redirect_uris, \
            grant_types, scopes, backchannel_logout_uri, signing_alg, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    pub const SELECT_CLIENT: &str = "\
        SELECT client_id, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, \
            scopes, backchannel_logout_uri, signing_alg, created_at \
        FROM clients WHERE client_id = $1";

    pub const INSERT_SIGNING_KEY: &str = "\
        INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, retired_at) \
        VALUES ($1, $2, $3, $4, $5, $6)";
    pub const LIST_SIGNING_KEYS: &str = "\
        SELECT kid, alg, public_jwk, private_sealed, created_at, retired_at \
        FROM signing_keys ORDER BY created_at, kid";
    /// Retiring twice keeps the first retirement time.
    pub const RETIRE_SIGNING_KEY: &str =
        "UPDATE signing_keys SET retired_at = COALESCE(retired_at, $2) WHERE kid = $1";

    pub const INSERT_SESSION: &str = "\
        INSERT INTO sessions (id_hash, account_id, institution_settings_version, auth_time, amr, \
            created_at, last_seen_at, expires_at, ip, user_agent) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub const SELECT_SESSION: &str = "\
        SELECT id_hash, account_id, institution_settings_version, auth_time, amr, created_at, \
            last_seen_at, expires_at, ip, user_agent \
        FROM sessions WHERE id_hash = $1";
    pub const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
    pub const DELETE_SESSIONS_OF_ACCOUNT: &str = "DELETE FROM sessions WHERE account_id = $1";

    pub const INSERT_GRANT: &str = "\
        INSERT INTO grants (id, account_id, client_id, session_id_hash, scopes, auth_time, amr, \
            acr, created_at, revoked_at, retain_until) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
    pub const SELECT_GRANT: &str = "\
        SELECT id, account_id, client_id, session_id_hash, scopes, auth_time, amr, acr, \
            created_at, revoked_at, retain_until \
        FROM grants WHERE id = $1";
    /// Revoking twice keeps the first revocation time.
    pub const REVOKE_GRANT: &str =
        "UPDATE grants SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";
    pub const GRANTS_OF_SESSION: &str = "\
        SELECT id, account_id, client_id, session_id_hash, scopes, auth_time, amr, acr, \
            created_at, revoked_at, retain_until \
        FROM grants WHERE session_id_hash = $1 ORDER BY created_at, id";
    /// One statement: of concurrent uses exactly one updates the row.
    pub const REDEEM_REFRESH: &str = concat!(
        "UPDATE refresh_tokens SET used_at = $3 \
         WHERE grant_id = $1 AND generation = $2 AND used_at IS NULL RETURNING ",
        refresh_columns!()
    );
    /// `$1` grants below, `$2` expired before, `$3` at most so many rows.
    pub const PURGE_REFRESH: &str = "\
        DELETE FROM refresh_tokens WHERE (grant_id, generation) IN ( \
            SELECT grant_id, generation FROM refresh_tokens \
            WHERE grant_id < $1 AND absolute_expires_at < $2 LIMIT $3)";
    /// `$1` expired before, `$2` at most so many rows.
    pub const PURGE_SESSIONS: &str = "\
        DELETE FROM sessions WHERE id_hash IN ( \
            SELECT id_hash FROM sessions WHERE expires_at < $1 LIMIT $2)";
    /// `$1` sent before, `$2` at most so many rows.
    pub const PURGE_OTP_CHALLENGES: &str = "\
        DELETE FROM otp_challenges WHERE id IN ( \
            SELECT id FROM otp_challenges WHERE created_at < $1 LIMIT $2)";
    /// The grants [`PURGE_GRANTS`] may delete: kept long enough, and nothing refers to them
    /// but their codes. `$1` retained before, `$2` at most so many rows.
    macro_rules! purgeable_grants {
        () => {
            "SELECT id FROM grants g WHERE retain_until < $1 \
                AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = g.id) \
                AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id_hash = g.session_id_hash) \
             ORDER BY retain_until, id LIMIT $2"
        };
    }
    pub const PURGE_GRANT_CODES: &str = concat!(
        "DELETE FROM authorization_codes WHERE grant_id IN (",
        purgeable_grants!(),
        ")"
    );
    /// After [`PURGE_GRANT_CODES`] in the same transaction. A grant that still has a code (one
    /// chosen by a concurrent purge's different batch on PostgreSQL) waits for the next round
    /// instead of failing the foreign key.
    pub const PURGE_GRANTS: &str = concat!(
        "DELETE FROM grants WHERE id IN (",
        purgeable_grants!(),
        ") AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = grants.id)"
    );
    pub const REVOKE_ACCESS_TOKEN: &str = "\
        INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) \
        ON CONFLICT (jti) DO NOTHING";
    pub const ACCESS_TOKEN_REVOKED: &str =
        "SELECT 1 AS revoked FROM revoked_access_tokens WHERE jti = $1";
    pub const PURGE_REVOKED_ACCESS_TOKENS: &str =
        "DELETE FROM revoked_access_tokens WHERE expires_at < $1";
    pub const SELECT_REFRESH: &str = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE grant_id = $1 AND generation = $2"
    );
    /// [`SELECT_REFRESH`] of a token issued before migration 0010 (see
    /// [`SELECT_LEGACY_REFRESH_FAMILY`]).
    pub const SELECT_LEGACY_REFRESH: &str = concat!(
        "SELECT ",
        refresh_columns!(),
        " FROM refresh_tokens WHERE secret_hash = $1 AND generation < 0"
    );
    pub const INSERT_CODE: &str = "\
        INSERT INTO authorization_codes (code_hash, grant_id, client_id, redirect_uri, nonce, \
            code_challenge, created_at, expires_at, used_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    /// One statement: of concurrent redemptions exactly one updates the row.
    pub const REDEEM_CODE: &str = "\
        UPDATE authorization_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL \
        RETURNING code_hash, grant_id, client_id, redirect_uri, nonce, code_challenge, \
            created_at, expires_at, used_at";
    pub const SELECT_CODE: &str = "\
        SELECT code_hash, grant_id, client_id, redirect_uri, nonce, code_challenge, created_at, \
            expires_at, used_at \
        FROM authorization_codes WHERE code_hash = $1";

    pub const INSERT_BULK_JOB: &str = "\
        INSERT INTO bulk_registrations (institution_code, reception_number, submitter_id, \
            submitter_type, status, submitted_at, finished_at, row_count, file, errors) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    macro_rules! select_bulk_job {
        ($where:literal) => {
            concat!(
                "SELECT institution_code, reception_number, submitter_id, submitter_type, \
                 status, submitted_at, started_at, finished_at, row_count, registered_count, \
                 duplicate_count, invalid_count, attempts, lease_owner, lease_expires_at, \
                 errors, passwords_purged_at FROM bulk_registrations WHERE ",
                $where
            )
        };
    }
    pub const SELECT_BULK_JOB: &str =
        select_bulk_job!("institution_code = $1 AND reception_number = $2");
    pub const ACTIVE_BULK_JOB: &str =
        select_bulk_job!("institution_code = $1 AND status IN ('queued', 'running') LIMIT 1");
    pub const LIST_BULK_JOBS: &str = select_bulk_job!(
        "institution_code = $1 AND submitter_id = $2 \
         ORDER BY submitted_at DESC, reception_number DESC LIMIT $3"
    );
    /// Candidates for a claim; the claim itself is the compare-and-set below.
    pub const CLAIMABLE_BULK_JOBS: &str = "\
        SELECT institution_code, reception_number, attempts FROM bulk_registrations \
        WHERE status = 'queued' OR (status = 'running' AND lease_expires_at < $1) \
        ORDER BY submitted_at LIMIT 8";
    /// Succeeds for exactly one of concurrent claimers: the attempt count read with the
    /// candidate must still be the stored one, and the job still claimable.
    pub const CLAIM_BULK_JOB: &str = "\
        UPDATE bulk_registrations SET status = 'running', lease_owner = $3, \
            lease_expires_at = $4, attempts = attempts + 1, \
            started_at = COALESCE(started_at, $5) \
        WHERE institution_code = $1 AND reception_number = $2 AND attempts = $6 \
            AND (status = 'queued' OR (status = 'running' AND lease_expires_at < $5))";
    pub const SELECT_BULK_FILE: &str = "\
        SELECT file FROM bulk_registrations WHERE institution_code = $1 AND reception_number = $2";
    pub const RENEW_BULK_LEASE: &str = "\
        UPDATE bulk_registrations SET lease_expires_at = $4 \
        WHERE institution_code = $1 AND reception_number = $2 AND lease_owner = $3 \
            AND status = 'running'";
    /// Only the holder of a running job's lease can end it; the file is dropped then.
    pub const FINISH_BULK_JOB: &str = "\
        UPDATE bulk_registrations SET status = $4, finished_at = $5, row_count = $6, \
            registered_count = $7, duplicate_count = $8, invalid_count = $9, errors = $10, \
            result_rows = $11, passwords_sealed = $12, file = $13, lease_owner = NULL, \
            lease_expires_at = NULL \
        WHERE institution_code = $1 AND reception_number = $2 AND lease_owner = $3 \
            AND status = 'running'";
    pub const SELECT_BULK_RESULT: &str = "\
        SELECT result_rows, passwords_sealed FROM bulk_registrations \
        WHERE institution_code = $1 AND reception_number = $2 AND result_rows IS NOT NULL";
    pub const PURGE_BULK_PASSWORDS: &str = "\
        UPDATE bulk_registrations SET passwords_sealed = NULL, passwords_purged_at = $2 \
        WHERE passwords_sealed IS NOT NULL AND finished_at <= $1";

    /// The head of a multi-row audit insert, before its `VALUES`.
    pub const AUDIT_INSERT: &str = "\
        INSERT INTO audit_events (at, kind, actor_account_id, actor, target_account_id, target, \
            institution_code, ip, user_agent, result, reason)";
    /// The head of a multi-row refresh token insert, before its `VALUES`.
    pub const REFRESH_INSERT: &str =
        concat!("INSERT INTO refresh_tokens (", refresh_columns!(), ")");
    pub const RECENT_SIGN_INS: &str = "\
        SELECT seq, at, kind, actor_account_id, actor, target_account_id, target, \
            institution_code, ip, user_agent, result, reason \
        FROM audit_events \
        WHERE target_account_id = $1 AND kind IN ('login.success', 'login.failure') \
        ORDER BY at DESC, seq DESC LIMIT $2";
    /// `from` is inclusive, `to` exclusive; an absent bound or filter matches everything.
    pub const LIST_AUDIT: &str = "\
        SELECT seq, at, kind, actor_account_id, actor, target_account_id, target, \
            institution_code, ip, user_agent, result, reason \
        FROM audit_events \
        WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2) \
            AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR institution_code = $4) \
        ORDER BY at, seq LIMIT $5";
}

/// Expands the shared `impl Store` for `$store` over the sqlx database `$db`.
///
/// The invoking module provides `BACKEND` (the name for logs), `MIGRATOR` (its
/// `sqlx::migrate!` folder), `$store::begin_write` and `$store::begin_on` (how that backend opens a write transaction
/// on itself or on its writer pool)
/// and `Encode`/`Type` for [`Timestamp`]. Everything else is written once, here.
macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        mod shared {
            use super::{BACKEND, MIGRATOR, $store};
            use async_trait::async_trait;
            use policies::lockout::LockState;
            use policies::{AccountType, InstitutionCode};
            use sqlx::Row as _;
            use time::OffsetDateTime;
            use uuid::Uuid;

            use $crate::common::{
                BATCH_ROWS, contains_pattern, db, expect_one, from_json, latest, on_write,
                parse_account_type, parse_code, parse_job_status, parse_method, parse_purpose,
                settle_rotations, sql, to_json, ts, ts_opt,
            };
            use $crate::inline_writer;
            use $crate::rows::{
                account_and_institution, account_from_row, grant_and_account, grant_from_row,
                institution_from_prefixed_row, refresh_family, refresh_from_row,
            };
            use $crate::{
                Account, AccountChange, AccountFilter, AccountPage, AuditEvent, AuditFilter,
                AuditResult, AuthorizationCode, BulkCompletion, BulkJob, BulkResult,
                ClaimedBulkJob, Client, CodeRedemption, Credential, Grant, Institution,
                InstitutionSettings, InstitutionUpdate, NewAccount, NewAuditEvent, NewBulkJob,
                NewInstitution, OtpChallenge, OtpSendStats, PageRequest, PrintedNotice,
                RefreshFamily, RefreshKey, RefreshRedemption, RefreshToken, RefreshTokenId, Result, Rotation, SecondFactor, Session, SigningKey, Store,
                StoreError,
            };

            type Row = <$db as sqlx::Database>::Row;
            type Conn = <$db as sqlx::Database>::Connection;

            /// Reads one column; a missing column or an undecodable value is `Corrupt`, never a
            /// panic.
            fn col<'r, T>(row: &'r Row, name: &str) -> Result<T>
            where
                T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
            {
                row.try_get(name)
                    .map_err(|e| $crate::common::corrupt(name, e))
            }

            fn institution_from_row(row: &Row) -> Result<Institution> {
                institution_from_prefixed_row(row, "")
            }

            fn client_from_row(row: &Row) -> Result<Client> {
                Ok(Client {
                    client_id: col(row, "client_id")?,
                    secret_hash: col(row, "secret_hash")?,
                    redirect_uris: from_json(
                        "redirect_uris",
                        &col::<String>(row, "redirect_uris")?,
                    )?,
                    post_logout_redirect_uris: from_json(
                        "post_logout_redirect_uris",
                        &col::<String>(row, "post_logout_redirect_uris")?,
                    )?,
                    grant_types: from_json("grant_types", &col::<String>(row, "grant_types")?)?,
                    scopes: from_json("scopes", &col::<String>(row, "scopes")?)?,
                    backchannel_logout_uri: col(row, "backchannel_logout_uri")?,
                    signing_alg: col(row, "signing_alg")?,
                    created_at: col(row, "created_at")?,
                })
            }

            fn signing_key_from_row(row: &Row) -> Result<SigningKey> {
                Ok(SigningKey {
                    kid: col(row, "kid")?,
                    alg: col(row, "alg")?,
                    public_jwk: from_json("public_jwk", &col::<String>(row, "public_jwk")?)?,
                    private_sealed: col(row, "private_sealed")?,
                    created_at: col(row, "created_at")?,
                    retired_at: col(row, "retired_at")?,
                })
            }

            fn session_from_row(row: &Row) -> Result<Session> {
                Ok(Session {
                    id_hash: col(row, "id_hash")?,
                    account_id: col(row, "account_id")?,
                    institution_settings_version: col(row, "institution_settings_version")?,
                    auth_time: col(row, "auth_time")?,
                    amr: from_json("amr", &col::<String>(row, "amr")?)?,
                    created_at: col(row, "created_at")?,
                    last_seen_at: col(row, "last_seen_at")?,
                    expires_at: col(row, "expires_at")?,
                    ip: col(row, "ip")?,
                    user_agent: col(row, "user_agent")?,
                })
            }


            fn code_from_row(row: &Row) -> Result<AuthorizationCode> {
                Ok(AuthorizationCode {
                    code_hash: col(row, "code_hash")?,
                    grant_id: col(row, "grant_id")?,
                    client_id: col(row, "client_id")?,
                    redirect_uri: col(row, "redirect_uri")?,
                    nonce: col(row, "nonce")?,
                    code_challenge: col(row, "code_challenge")?,
                    created_at: col(row, "created_at")?,
                    expires_at: col(row, "expires_at")?,
                    used_at: col(row, "used_at")?,
                })
            }

            fn otp_from_row(row: &Row) -> Result<OtpChallenge> {
                Ok(OtpChallenge {
                    id: col(row, "id")?,
                    account_id: col(row, "account_id")?,
                    purpose: parse_purpose(&col::<String>(row, "purpose")?)?,
                    method: parse_method(&col::<String>(row, "method")?)?,
                    destination: col(row, "destination")?,
                    code_hash: col(row, "code_hash")?,
                    created_at: col(row, "created_at")?,
                    expires_at: col(row, "expires_at")?,
                    tries: col(row, "tries")?,
                    used_at: col(row, "used_at")?,
                })
            }

            fn audit_from_row(row: &Row) -> Result<AuditEvent> {
                let result = match col::<String>(row, "result")?.as_str() {
                    "success" => AuditResult::Success,
                    "failure" => AuditResult::Failure,
                    other => {
                        return Err($crate::common::corrupt(
                            "result",
                            format!("unknown {other:?}"),
                        ));
                    }
                };
                Ok(AuditEvent {
                    seq: col(row, "seq")?,
                    event: NewAuditEvent {
                        at: col(row, "at")?,
                        kind: col(row, "kind")?,
                        actor_account_id: col(row, "actor_account_id")?,
                        actor: col(row, "actor")?,
                        target_account_id: col(row, "target_account_id")?,
                        target: col(row, "target")?,
                        institution_code: col(row, "institution_code")?,
                        ip: col(row, "ip")?,
                        user_agent: col(row, "user_agent")?,
                        result,
                        reason: col(row, "reason")?,
                    },
                })
            }

            async fn insert_account(conn: &mut Conn, account: &NewAccount) -> Result<()> {
                let factor = account.second_factor.as_ref();
                sqlx::query(sql::INSERT_ACCOUNT)
                    .bind(account.id)
                    .bind(account.institution_code.as_str())
                    .bind(account.account_type.as_str())
                    .bind(&account.user_id)
                    .bind(&account.name)
                    .bind(&account.name_kana)
                    .bind(account.usage_start)
                    .bind(account.usage_end)
                    .bind(factor.map(|f| f.method.as_str()))
                    .bind(factor.and_then(|f| f.email.as_deref()))
                    .bind(factor.and_then(|f| f.phone.as_deref()))
                    .bind(factor.is_some_and(|f| f.verified))
                    .bind(&account.credential.hash)
                    .bind(ts_opt(account.credential.initial_issued_at))
                    .bind(account.credential.initial_sealed.as_deref())
                    .bind(ts_opt(account.credential.changed_at))
                    .bind(account.created_by)
                    .bind(ts(account.created_at))
                    .execute(&mut *conn)
                    .await
                    .map_err(on_write("account"))?;
                Ok(())
            }

            fn bulk_job_from_row(row: &Row) -> Result<BulkJob> {
                Ok(BulkJob {
                    institution_code: parse_code(&col::<String>(row, "institution_code")?)?,
                    reception_number: col(row, "reception_number")?,
                    submitter_id: col(row, "submitter_id")?,
                    submitter_type: parse_account_type(&col::<String>(row, "submitter_type")?)?,
                    status: parse_job_status(&col::<String>(row, "status")?)?,
                    submitted_at: col(row, "submitted_at")?,
                    started_at: col(row, "started_at")?,
                    finished_at: col(row, "finished_at")?,
                    row_count: col(row, "row_count")?,
                    registered_count: col(row, "registered_count")?,
                    duplicate_count: col(row, "duplicate_count")?,
                    invalid_count: col(row, "invalid_count")?,
                    attempts: col(row, "attempts")?,
                    lease_owner: col(row, "lease_owner")?,
                    lease_expires_at: col(row, "lease_expires_at")?,
                    errors: from_json("errors", &col::<String>(row, "errors")?)?,
                    passwords_purged_at: col(row, "passwords_purged_at")?,
                })
            }

            async fn fetch_bulk_job(
                conn: &mut Conn,
                institution: &str,
                reception_number: &str,
            ) -> Result<Option<BulkJob>> {
                let row = sqlx::query(sql::SELECT_BULK_JOB)
                    .bind(institution)
                    .bind(reception_number)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                row.as_ref().map(bulk_job_from_row).transpose()
            }

            /// Inserts accounts with multi-row statements of [`BATCH_ROWS`] rows.
            async fn insert_accounts(conn: &mut Conn, accounts: &[NewAccount]) -> Result<()> {
                for chunk in accounts.chunks(BATCH_ROWS) {
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "INSERT INTO accounts (id, institution_code, account_type, user_id, name, \
                         name_kana, usage_start, usage_end, second_factor_method, \
                         second_factor_email, second_factor_phone, second_factor_verified, \
                         password_hash, initial_issued_at, initial_sealed, password_changed_at, \
                         created_by, created_at) ",
                    );
                    query.push_values(chunk, |mut b, account| {
                        let factor = account.second_factor.as_ref();
                        b.push_bind(account.id)
                            .push_bind(account.institution_code.as_str().to_owned())
                            .push_bind(account.account_type.as_str())
                            .push_bind(account.user_id.clone())
                            .push_bind(account.name.clone())
                            .push_bind(account.name_kana.clone())
                            .push_bind(account.usage_start)
                            .push_bind(account.usage_end)
                            .push_bind(factor.map(|f| f.method.as_str()))
                            .push_bind(factor.and_then(|f| f.email.clone()))
                            .push_bind(factor.and_then(|f| f.phone.clone()))
                            .push_bind(factor.is_some_and(|f| f.verified))
                            .push_bind(account.credential.hash.clone())
                            .push_bind(ts_opt(account.credential.initial_issued_at))
                            .push_bind(account.credential.initial_sealed.clone())
                            .push_bind(ts_opt(account.credential.changed_at))
                            .push_bind(account.created_by)
                            .push_bind(ts(account.created_at));
                    });
                    query
                        .build()
                        .execute(&mut *conn)
                        .await
                        .map_err(on_write("account"))?;
                }
                Ok(())
            }

            /// Appends audit events with multi-row statements of [`BATCH_ROWS`] rows.
            async fn insert_audits(conn: &mut Conn, events: &[NewAuditEvent]) -> Result<()> {
                for chunk in events.chunks(BATCH_ROWS) {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new(format!("{} ", sql::AUDIT_INSERT));
                    query.push_values(chunk, |mut b, event| {
                        b.push_bind(ts(event.at))
                            .push_bind(event.kind.clone())
                            .push_bind(event.actor_account_id)
                            .push_bind(event.actor.clone())
                            .push_bind(event.target_account_id)
                            .push_bind(event.target.clone())
                            .push_bind(event.institution_code.clone())
                            .push_bind(event.ip.clone())
                            .push_bind(event.user_agent.clone())
                            .push_bind(event.result.as_str())
                            .push_bind(event.reason.clone());
                    });
                    query.build().execute(&mut *conn).await.map_err(db)?;
                }
                Ok(())
            }

            async fn insert_refresh_tokens(conn: &mut Conn, tokens: &[RefreshToken]) -> Result<()> {
                for chunk in tokens.chunks(BATCH_ROWS) {
                    let mut query =
                        sqlx::QueryBuilder::<$db>::new(format!("{} ", sql::REFRESH_INSERT));
                    query.push_values(chunk, |mut b, token| {
                        b.push_bind(token.grant_id)
                            .push_bind(token.generation)
                            .push_bind(token.secret_hash.clone())
                            .push_bind(token.institution_settings_version)
                            .push_bind(ts(token.created_at))
                            .push_bind(ts(token.idle_expires_at))
                            .push_bind(ts(token.absolute_expires_at))
                            .push_bind(ts_opt(token.used_at));
                    });
                    query
                        .build()
                        .execute(&mut *conn)
                        .await
                        .map_err(on_write("refresh_token"))?;
                }
                Ok(())
            }

            /// Runs one batch of a purge whose statement takes `$1` a time bound and `$2` a row
            /// limit; returns how many rows it deleted.
            async fn delete_before<'e, E>(
                executor: E,
                statement: &'static str,
                before: OffsetDateTime,
                limit: u32,
            ) -> Result<u64>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let done = sqlx::query(statement)
                    .bind(ts(before))
                    .bind(i64::from(limit))
                    .execute(executor)
                    .await
                    .map_err(db)?;
                Ok(done.rows_affected())
            }

            async fn insert_audit(conn: &mut Conn, event: &NewAuditEvent) -> Result<()> {
                insert_audits(conn, std::slice::from_ref(event)).await
            }

            async fn fetch_account(conn: &mut Conn, id: Uuid) -> Result<Option<Account>> {
                let row = sqlx::query(sql::SELECT_ACCOUNT)
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(db)?;
                row.as_ref().map(account_from_row).transpose()
            }

            /// Appends the search conditions (joined by AND) to a query that ends in `WHERE `.
            /// Only the filters present become conditions, so each combination is its own
            /// statement and PostgreSQL can plan it with its indexes (trigram GIN for the name
            /// and reading, the `(institution_code, user_id, id)` B-tree for order and paging).
            fn push_account_filter(query: &mut sqlx::QueryBuilder<$db>, filter: &AccountFilter) {
                query
                    .push("institution_code = ")
                    .push_bind(filter.institution_code.as_str().to_owned())
                    .push(" AND deleted_at IS NULL");
                if filter.account_types.is_empty() {
                    query.push(" AND 1 = 0");
                } else {
                    query.push(" AND account_type IN (");
                    let mut types = query.separated(", ");
                    for account_type in &filter.account_types {
                        types.push_bind(account_type.as_str().to_owned());
                    }
                    types.push_unseparated(")");
                }
                if let Some(user_id) = &filter.user_id {
                    query.push(" AND user_id = ").push_bind(user_id.clone());
                }
                if let Some(name) = &filter.name {
                    super::push_substring_prefilter(query, "name", name);
                    query
                        .push(" AND name LIKE ")
                        .push_bind(contains_pattern(name))
                        .push(" ESCAPE '\\'");
                }
                if let Some(kana) = &filter.name_kana {
                    super::push_substring_prefilter(query, "name_kana", kana);
                    query
                        .push(" AND name_kana LIKE ")
                        .push_bind(contains_pattern(kana))
                        .push(" ESCAPE '\\'");
                }
                if let Some(enabled) = filter.enabled {
                    query.push(" AND enabled = ").push_bind(enabled);
                }
                match filter.locked {
                    Some(true) => {
                        query.push(" AND lock_state <> 'none'");
                    }
                    Some(false) => {
                        query.push(" AND lock_state = 'none'");
                    }
                    None => {}
                }
                let bounds = [
                    (" AND usage_start >= ", filter.usage_start_from),
                    (" AND usage_start <= ", filter.usage_start_to),
                    (" AND usage_end >= ", filter.usage_end_from),
                    (" AND usage_end <= ", filter.usage_end_to),
                ];
                for (condition, bound) in bounds {
                    if let Some(date) = bound {
                        query.push(condition).push_bind(date);
                    }
                }
            }

            async fn apply_change(conn: &mut Conn, id: Uuid, change: &AccountChange) -> Result<()> {
                let done = match change {
                    AccountChange::Fields(fields) => {
                        let factor = fields.second_factor.as_ref();
                        sqlx::query(sql::UPDATE_ACCOUNT_FIELDS)
                            .bind(id)
                            .bind(&fields.name)
                            .bind(&fields.name_kana)
                            .bind(fields.enabled)
                            .bind(fields.usage_start)
                            .bind(fields.usage_end)
                            .bind(factor.map(|f| f.method.as_str()))
                            .bind(factor.and_then(|f| f.email.as_deref()))
                            .bind(factor.and_then(|f| f.phone.as_deref()))
                            .bind(factor.is_some_and(|f| f.verified))
                            .execute(&mut *conn)
                            .await
                    }
                    AccountChange::ResetCredential(credential) => {
                        sqlx::query(sql::RESET_CREDENTIAL)
                            .bind(id)
                            .bind(&credential.hash)
                            .bind(ts_opt(credential.initial_issued_at))
                            .bind(credential.initial_sealed.as_deref())
                            .bind(ts_opt(credential.changed_at))
                            .execute(&mut *conn)
                            .await
                    }
                    AccountChange::Lock { state, at } => {
                        sqlx::query(sql::SET_LOCK_LIVE)
                            .bind(id)
                            .bind(state.as_str())
                            .bind(ts_opt(*at))
                            .execute(&mut *conn)
                            .await
                    }
                    AccountChange::Delete { at } => {
                        sqlx::query(sql::DELETE_ACCOUNT)
                            .bind(id)
                            .bind(ts(*at))
                            .execute(&mut *conn)
                            .await
                    }
                }
                .map_err(db)?;
                expect_one(done.rows_affected())
            }

            /// The outcome of spending a single-use row (a code or a refresh token).
            enum Spend {
                /// This call spent it: the row as updated.
                First(Row),
                /// It had been spent before: the row as stored.
                Again(Row),
                Missing,
            }

            /// Spends a single-use row: `update` (an `UPDATE … WHERE used_at IS NULL RETURNING`)
            /// succeeds for exactly one of concurrent callers; the others read the row back.
            async fn spend(
                writer: &sqlx::Pool<$db>,
                reader: &sqlx::Pool<$db>,
                update: &'static str,
                select: &'static str,
                hash: &str,
                now: OffsetDateTime,
            ) -> Result<Spend> {
                let spent = sqlx::query(update)
                    .bind(hash)
                    .bind(ts(now))
                    .fetch_optional(writer)
                    .await
                    .map_err(db)?;
                if let Some(row) = spent {
                    return Ok(Spend::First(row));
                }
                let stored = sqlx::query(select)
                    .bind(hash)
                    .fetch_optional(reader)
                    .await
                    .map_err(db)?;
                Ok(stored.map_or(Spend::Missing, Spend::Again))
            }

            impl $store {
                /// The grant a spent code or token belongs to; its absence is corrupt data.
                async fn grant_of(&self, id: Uuid, what: &str) -> Result<Grant> {
                    self.get_grant(id)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt(format!("{what} without its grant")))
                }
            }

            #[async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    BACKEND
                }

                async fn migrate(&self) -> Result<()> {
                    MIGRATOR.run(&self.pool).await?;
                    Ok(())
                }

                async fn ping(&self) -> Result<()> {
                    sqlx::query(sql::PING)
                        .execute(&self.pool)
                        .await
                        .map_err(db)?;
                    Ok(())
                }

                async fn create_institution(
                    &self,
                    institution: NewInstitution,
                    master: NewAccount,
                    master_reset: NewAccount,
                    audit: Vec<NewAuditEvent>,
                ) -> Result<Institution> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sql::INSERT_INSTITUTION)
                        .bind(institution.code.as_str())
                        .bind(&institution.name)
                        .bind(institution.code.kind().as_str())
                        .bind(institution.usage_start)
                        .bind(ts(institution.created_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(on_write("institution"))?;
                    insert_account(&mut tx, &master).await?;
                    insert_account(&mut tx, &master_reset).await?;
                    for event in &audit {
                        insert_audit(&mut tx, event).await?;
                    }
                    let row = sqlx::query(sql::SELECT_INSTITUTION)
                        .bind(institution.code.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                    let created = institution_from_row(&row)?;
                    tx.commit().await.map_err(db)?;
                    Ok(created)
                }

                async fn get_institution(
                    &self,
                    code: &InstitutionCode,
                ) -> Result<Option<Institution>> {
                    let row = sqlx::query(sql::SELECT_INSTITUTION)
                        .bind(code.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(institution_from_row).transpose()
                }

                async fn list_institutions(&self) -> Result<Vec<Institution>> {
                    let rows = sqlx::query(sql::LIST_INSTITUTIONS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(institution_from_row).collect()
                }

                async fn update_institution(
                    &self,
                    code: &InstitutionCode,
                    update: InstitutionUpdate,
                    audit: NewAuditEvent,
                ) -> Result<Institution> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(sql::UPDATE_INSTITUTION)
                        .bind(code.as_str())
                        .bind(&update.name)
                        .bind(update.usage_start)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())?;
                    insert_audit(&mut tx, &audit).await?;
                    let row = sqlx::query(sql::SELECT_INSTITUTION)
                        .bind(code.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                    let updated = institution_from_row(&row)?;
                    tx.commit().await.map_err(db)?;
                    Ok(updated)
                }

                async fn set_institution_settings(
                    &self,
                    code: &InstitutionCode,
                    settings: &InstitutionSettings,
                    at: OffsetDateTime,
                    audit: NewAuditEvent,
                ) -> Result<Institution> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(sql::SET_INSTITUTION_SETTINGS)
                        .bind(code.as_str())
                        .bind(to_json(settings)?)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())?;
                    sqlx::query(sql::DELETE_SESSIONS_OF_INSTITUTION)
                        .bind(code.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    sqlx::query(sql::REVOKE_GRANTS_OF_INSTITUTION)
                        .bind(code.as_str())
                        .bind(ts(at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    insert_audit(&mut tx, &audit).await?;
                    let row = sqlx::query(sql::SELECT_INSTITUTION)
                        .bind(code.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db)?;
                    let updated = institution_from_row(&row)?;
                    tx.commit().await.map_err(db)?;
                    Ok(updated)
                }

                async fn create_account(
                    &self,
                    account: NewAccount,
                    audit: NewAuditEvent,
                ) -> Result<Account> {
                    let mut tx = self.begin_write().await?;
                    insert_account(&mut tx, &account).await?;
                    insert_audit(&mut tx, &audit).await?;
                    let created = fetch_account(&mut tx, account.id).await?.ok_or_else(|| {
                        StoreError::Corrupt("account vanished after insert".into())
                    })?;
                    tx.commit().await.map_err(db)?;
                    Ok(created)
                }

                async fn get_account(&self, id: Uuid) -> Result<Option<Account>> {
                    if let Some(inline) = self.inline() {
                        return inline.optional(
                            sql::SELECT_ACCOUNT,
                            &[&id.as_bytes().as_slice()],
                            |row| account_from_row(row),
                        );
                    }
                    let mut conn = self.pool.acquire().await.map_err(db)?;
                    fetch_account(&mut conn, id).await
                }

                async fn get_account_and_institution(
                    &self,
                    id: Uuid,
                ) -> Result<Option<(Account, Institution)>> {
                    if let Some(inline) = self.inline() {
                        return inline.optional(
                            sql::SELECT_ACCOUNT_AND_INSTITUTION,
                            &[&id.as_bytes().as_slice()],
                            |row| account_and_institution(row),
                        );
                    }
                    let row = sqlx::query(sql::SELECT_ACCOUNT_AND_INSTITUTION)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(account_and_institution).transpose()
                }

                async fn find_account_and_institution(
                    &self,
                    institution: &InstitutionCode,
                    user_id: &str,
                ) -> Result<Option<(Account, Institution)>> {
                    if let Some(inline) = self.inline() {
                        return inline.optional(
                            sql::FIND_ACCOUNT_AND_INSTITUTION,
                            &[&institution.as_str(), &user_id],
                            |row| account_and_institution(row),
                        );
                    }
                    let row = sqlx::query(sql::FIND_ACCOUNT_AND_INSTITUTION)
                        .bind(institution.as_str())
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(account_and_institution).transpose()
                }

                async fn get_refresh_family(&self, key: &RefreshKey) -> Result<Option<RefreshFamily>> {
                    let row = match (key, self.inline()) {
                        (RefreshKey::Id(id), Some(inline)) => {
                            return inline.optional(
                                sql::SELECT_REFRESH_FAMILY,
                                &[&id.grant_id.as_bytes().as_slice(), &id.generation],
                                |row| refresh_family(row),
                            );
                        }
                        (RefreshKey::Legacy { token_hash }, Some(inline)) => {
                            return inline.optional(
                                sql::SELECT_LEGACY_REFRESH_FAMILY,
                                &[token_hash],
                                |row| refresh_family(row),
                            );
                        }
                        (RefreshKey::Id(id), None) => sqlx::query(sql::SELECT_REFRESH_FAMILY)
                            .bind(id.grant_id)
                            .bind(id.generation)
                            .fetch_optional(&self.pool)
                            .await,
                        (RefreshKey::Legacy { token_hash }, None) => {
                            sqlx::query(sql::SELECT_LEGACY_REFRESH_FAMILY)
                                .bind(token_hash)
                                .fetch_optional(&self.pool)
                                .await
                        }
                    }
                    .map_err(db)?;
                    row.as_ref().map(refresh_family).transpose()
                }

                async fn get_grant_and_account(&self, id: Uuid) -> Result<Option<(Grant, Account)>> {
                    if let Some(inline) = self.inline() {
                        return inline.optional(
                            sql::SELECT_GRANT_AND_ACCOUNT,
                            &[&id.as_bytes().as_slice()],
                            |row| grant_and_account(row),
                        );
                    }
                    let row = sqlx::query(sql::SELECT_GRANT_AND_ACCOUNT)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(grant_and_account).transpose()
                }

                async fn find_account(
                    &self,
                    institution: &InstitutionCode,
                    user_id: &str,
                ) -> Result<Option<Account>> {
                    let row = sqlx::query(sql::FIND_ACCOUNT)
                        .bind(institution.as_str())
                        .bind(user_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(account_from_row).transpose()
                }

                async fn count_accounts_of_type(&self, account_type: AccountType) -> Result<i64> {
                    let row = sqlx::query(sql::COUNT_ACCOUNTS_OF_TYPE)
                        .bind(account_type.as_str())
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db)?;
                    col(&row, "n")
                }

                async fn delete_account(&self, id: Uuid, now: OffsetDateTime) -> Result<()> {
                    let done = sqlx::query(sql::DELETE_ACCOUNT)
                        .bind(id)
                        .bind(ts(now))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn record_failure(&self, id: Uuid) -> Result<i64> {
                    let row = sqlx::query(sql::RECORD_FAILURE)
                        .bind(id)
                        .fetch_optional(&self.writer)
                        .await
                        .map_err(db)?
                        .ok_or(StoreError::NotFound)?;
                    col(&row, "failed_attempts")
                }

                async fn record_success(&self, id: Uuid, now: OffsetDateTime) -> Result<()> {
                    let done = sqlx::query(sql::RECORD_SUCCESS)
                        .bind(id)
                        .bind(ts(now))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn set_lock(
                    &self,
                    id: Uuid,
                    lock: LockState,
                    at: Option<OffsetDateTime>,
                ) -> Result<()> {
                    let done = sqlx::query(sql::SET_LOCK)
                        .bind(id)
                        .bind(lock.as_str())
                        .bind(ts_opt(at))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn set_credential(&self, id: Uuid, credential: Credential) -> Result<()> {
                    let done = sqlx::query(sql::SET_CREDENTIAL)
                        .bind(id)
                        .bind(&credential.hash)
                        .bind(ts_opt(credential.initial_issued_at))
                        .bind(credential.initial_sealed.as_deref())
                        .bind(ts_opt(credential.changed_at))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn change_password(
                    &self,
                    id: Uuid,
                    credential: Credential,
                    previous_hash: &str,
                    keep: u32,
                    keep_session: Option<&str>,
                ) -> Result<u64> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(sql::SET_CREDENTIAL)
                        .bind(id)
                        .bind(&credential.hash)
                        .bind(ts_opt(credential.initial_issued_at))
                        .bind(credential.initial_sealed.as_deref())
                        .bind(ts_opt(credential.changed_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())?;
                    if keep > 0 {
                        let at = credential.changed_at.unwrap_or(OffsetDateTime::UNIX_EPOCH);
                        sqlx::query(sql::INSERT_PASSWORD_HISTORY)
                            .bind(id)
                            .bind(previous_hash)
                            .bind(ts(at))
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                    }
                    sqlx::query(sql::TRIM_PASSWORD_HISTORY)
                        .bind(id)
                        .bind(i64::from(keep))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    let ended = sqlx::query(sql::DELETE_OTHER_SESSIONS)
                        .bind(id)
                        .bind(keep_session)
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?
                        .rows_affected();
                    tx.commit().await.map_err(db)?;
                    Ok(ended)
                }

                async fn password_history(&self, id: Uuid, limit: u32) -> Result<Vec<String>> {
                    let rows = sqlx::query(sql::SELECT_PASSWORD_HISTORY)
                        .bind(id)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(|row| col::<String>(row, "hash")).collect()
                }

                async fn set_second_factor(
                    &self,
                    id: Uuid,
                    second_factor: SecondFactor,
                ) -> Result<()> {
                    let done = sqlx::query(sql::SET_SECOND_FACTOR)
                        .bind(id)
                        .bind(second_factor.method.as_str())
                        .bind(second_factor.email.as_deref())
                        .bind(second_factor.phone.as_deref())
                        .bind(second_factor.verified)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn create_otp_challenge(&self, challenge: OtpChallenge) -> Result<()> {
                    sqlx::query(sql::INSERT_OTP_CHALLENGE)
                        .bind(challenge.id)
                        .bind(challenge.account_id)
                        .bind(challenge.purpose.as_str())
                        .bind(challenge.method.as_str())
                        .bind(&challenge.destination)
                        .bind(&challenge.code_hash)
                        .bind(ts(challenge.created_at))
                        .bind(ts(challenge.expires_at))
                        .bind(challenge.tries)
                        .bind(ts_opt(challenge.used_at))
                        .execute(&self.writer)
                        .await
                        .map_err(on_write("otp_challenge"))?;
                    Ok(())
                }

                async fn get_otp_challenge(&self, id: Uuid) -> Result<Option<OtpChallenge>> {
                    let row = sqlx::query(sql::SELECT_OTP_CHALLENGE)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(otp_from_row).transpose()
                }

                async fn record_code_try(&self, id: Uuid) -> Result<i64> {
                    let row = sqlx::query(sql::RECORD_CODE_TRY)
                        .bind(id)
                        .fetch_optional(&self.writer)
                        .await
                        .map_err(db)?
                        .ok_or(StoreError::NotFound)?;
                    col(&row, "tries")
                }

                async fn consume_otp_challenge(
                    &self,
                    id: Uuid,
                    now: OffsetDateTime,
                ) -> Result<bool> {
                    let done = sqlx::query(sql::CONSUME_OTP_CHALLENGE)
                        .bind(id)
                        .bind(ts(now))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn otp_send_stats(
                    &self,
                    account_id: Uuid,
                    destination: &str,
                    since: OffsetDateTime,
                ) -> Result<OtpSendStats> {
                    let by_account = sqlx::query(sql::COUNT_OTP_BY_ACCOUNT)
                        .bind(account_id)
                        .bind(ts(since))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db)?;
                    let to_destination = sqlx::query(sql::COUNT_OTP_BY_DESTINATION)
                        .bind(destination)
                        .bind(ts(since))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(db)?;
                    let last = sqlx::query(sql::LAST_OTP_OF_ACCOUNT)
                        .bind(account_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    Ok(OtpSendStats {
                        sent_by_account: col(&by_account, "n")?,
                        sent_to_destination: col(&to_destination, "n")?,
                        last_sent_at: last
                            .as_ref()
                            .map(|row| col(row, "created_at"))
                            .transpose()?,
                    })
                }

                async fn search_accounts(
                    &self,
                    filter: &AccountFilter,
                    page: PageRequest,
                ) -> Result<AccountPage> {
                    // Counting every match of a broad search in a huge institution costs more
                    // than the page itself, so the count stops one past the bound.
                    let mut count = sqlx::QueryBuilder::<$db>::new(sql::COUNT_ACCOUNTS);
                    push_account_filter(&mut count, filter);
                    count
                        .push(" LIMIT ")
                        .push_bind($crate::SEARCH_COUNT_LIMIT + 1)
                        .push(sql::COUNT_ACCOUNTS_END);
                    let row = count.build().fetch_one(&self.pool).await.map_err(db)?;
                    let counted: i64 = col(&row, "n")?;
                    let total_exact = counted <= $crate::SEARCH_COUNT_LIMIT;
                    let total = counted.min($crate::SEARCH_COUNT_LIMIT);
                    let mut select = sqlx::QueryBuilder::<$db>::new(sql::SEARCH_ACCOUNTS);
                    push_account_filter(&mut select, filter);
                    select
                        .push(" ORDER BY user_id, id LIMIT ")
                        .push_bind(page.limit.max(0))
                        .push(" OFFSET ")
                        .push_bind(page.offset.max(0));
                    let rows = select.build().fetch_all(&self.pool).await.map_err(db)?;
                    let items = rows.iter().map(account_from_row).collect::<Result<_>>()?;
                    Ok(AccountPage {
                        items,
                        total,
                        total_exact,
                    })
                }

                async fn change_account(
                    &self,
                    id: Uuid,
                    change: AccountChange,
                    end_access_at: Option<OffsetDateTime>,
                    audit: NewAuditEvent,
                ) -> Result<Account> {
                    let mut tx = self.begin_write().await?;
                    apply_change(&mut tx, id, &change).await?;
                    if let Some(at) = end_access_at {
                        sqlx::query(sql::DELETE_SESSIONS_OF_ACCOUNT)
                            .bind(id)
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        for statement in [sql::REVOKE_GRANTS_OF_ACCOUNT, sql::SET_TOKENS_NOT_BEFORE] {
                            sqlx::query(statement)
                                .bind(id)
                                .bind(ts(at))
                                .execute(&mut *tx)
                                .await
                                .map_err(db)?;
                        }
                    }
                    insert_audit(&mut tx, &audit).await?;
                    let changed = fetch_account(&mut tx, id).await?.ok_or_else(|| {
                        StoreError::Corrupt("account vanished during a change".into())
                    })?;
                    tx.commit().await.map_err(db)?;
                    Ok(changed)
                }

                async fn mark_notices_issued(
                    &self,
                    notices: &[PrintedNotice],
                    audit: Vec<NewAuditEvent>,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    for notice in notices {
                        let done = sqlx::query(sql::MARK_NOTICE_ISSUED)
                            .bind(notice.account_id)
                            .bind(&notice.password_hash)
                            .execute(&mut *tx)
                            .await
                            .map_err(db)?;
                        if done.rows_affected() != 1 {
                            // Dropping the transaction rolls back the marks made so far.
                            return Err(StoreError::Conflict("notice"));
                        }
                    }
                    for event in &audit {
                        insert_audit(&mut tx, event).await?;
                    }
                    tx.commit().await.map_err(db)
                }

                async fn create_client(&self, client: Client, audit: NewAuditEvent) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sql::INSERT_CLIENT)
                        .bind(&client.client_id)
                        .bind(client.secret_hash.as_deref())
                        .bind(to_json(&client.redirect_uris)?)
                        .bind(to_json(&client.post_logout_redirect_uris)?)
                        .bind(to_json(&client.grant_types)?)
                        .bind(to_json(&client.scopes)?)
                        .bind(client.backchannel_logout_uri.as_deref())
                        .bind(&client.signing_alg)
                        .bind(ts(client.created_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(on_write("client"))?;
                    insert_audit(&mut tx, &audit).await?;
                    tx.commit().await.map_err(db)
                }

                async fn get_client(&self, client_id: &str) -> Result<Option<Client>> {
                    if let Some(client) = self.clients.get(client_id) {
                        return Ok(Some(client));
                    }
                    let row = sqlx::query(sql::SELECT_CLIENT)
                        .bind(client_id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    let client = row.as_ref().map(client_from_row).transpose()?;
                    if let Some(client) = &client {
                        self.clients.keep(client);
                    }
                    Ok(client)
                }

                async fn insert_signing_key(&self, key: SigningKey) -> Result<()> {
                    sqlx::query(sql::INSERT_SIGNING_KEY)
                        .bind(&key.kid)
                        .bind(&key.alg)
                        .bind(to_json(&key.public_jwk)?)
                        .bind(&key.private_sealed)
                        .bind(ts(key.created_at))
                        .bind(ts_opt(key.retired_at))
                        .execute(&self.writer)
                        .await
                        .map_err(on_write("signing_key"))?;
                    Ok(())
                }

                async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
                    let rows = sqlx::query(sql::LIST_SIGNING_KEYS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(signing_key_from_row).collect()
                }

                async fn retire_signing_key(&self, kid: &str, at: OffsetDateTime) -> Result<()> {
                    let done = sqlx::query(sql::RETIRE_SIGNING_KEY)
                        .bind(kid)
                        .bind(ts(at))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn create_session(&self, session: Session) -> Result<()> {
                    sqlx::query(sql::INSERT_SESSION)
                        .bind(&session.id_hash)
                        .bind(session.account_id)
                        .bind(session.institution_settings_version)
                        .bind(ts(session.auth_time))
                        .bind(to_json(&session.amr)?)
                        .bind(ts(session.created_at))
                        .bind(ts(session.last_seen_at))
                        .bind(ts(session.expires_at))
                        .bind(session.ip.as_deref())
                        .bind(session.user_agent.as_deref())
                        .execute(&self.writer)
                        .await
                        .map_err(on_write("session"))?;
                    Ok(())
                }

                async fn get_session(&self, id_hash: &str) -> Result<Option<Session>> {
                    let row = sqlx::query(sql::SELECT_SESSION)
                        .bind(id_hash)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(session_from_row).transpose()
                }

                async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> Result<()> {
                    let done = sqlx::query(sql::TOUCH_SESSION)
                        .bind(id_hash)
                        .bind(ts(at))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn delete_session(&self, id_hash: &str) -> Result<()> {
                    sqlx::query(sql::DELETE_SESSION)
                        .bind(id_hash)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(())
                }

                async fn delete_sessions_of_account(&self, account_id: Uuid) -> Result<u64> {
                    let done = sqlx::query(sql::DELETE_SESSIONS_OF_ACCOUNT)
                        .bind(account_id)
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                }

                async fn create_grant_with_code(
                    &self,
                    grant: Grant,
                    code: AuthorizationCode,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sql::INSERT_GRANT)
                        .bind(grant.id)
                        .bind(grant.account_id)
                        .bind(&grant.client_id)
                        .bind(grant.session_id_hash.as_deref())
                        .bind(to_json(&grant.scopes)?)
                        .bind(ts(grant.auth_time))
                        .bind(to_json(&grant.amr)?)
                        .bind(&grant.acr)
                        .bind(ts(grant.created_at))
                        .bind(ts_opt(grant.revoked_at))
                        .bind(ts(grant.retain_until))
                        .execute(&mut *tx)
                        .await
                        .map_err(on_write("grant"))?;
                    sqlx::query(sql::INSERT_CODE)
                        .bind(&code.code_hash)
                        .bind(code.grant_id)
                        .bind(&code.client_id)
                        .bind(&code.redirect_uri)
                        .bind(code.nonce.as_deref())
                        .bind(code.code_challenge.as_deref())
                        .bind(ts(code.created_at))
                        .bind(ts(code.expires_at))
                        .bind(ts_opt(code.used_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(on_write("authorization_code"))?;
                    tx.commit().await.map_err(db)
                }

                async fn redeem_code(
                    &self,
                    code_hash: &str,
                    now: OffsetDateTime,
                ) -> Result<CodeRedemption> {
                    let spent = spend(
                        &self.writer,
                        &self.pool,
                        sql::REDEEM_CODE,
                        sql::SELECT_CODE,
                        code_hash,
                        now,
                    );
                    Ok(match spent.await? {
                        Spend::First(row) => {
                            let code = code_from_row(&row)?;
                            let grant = self.grant_of(code.grant_id, "authorization code").await?;
                            CodeRedemption::Redeemed { code, grant }
                        }
                        Spend::Again(row) => CodeRedemption::Replayed {
                            code: code_from_row(&row)?,
                        },
                        Spend::Missing => CodeRedemption::Unknown,
                    })
                }

                async fn grants_of_session(&self, session_id_hash: &str) -> Result<Vec<Grant>> {
                    let rows = sqlx::query(sql::GRANTS_OF_SESSION)
                        .bind(session_id_hash)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(grant_from_row).collect()
                }

                async fn insert_refresh_token(&self, token: RefreshToken) -> Result<()> {
                    if let Some(inline) = self.inline_writer() {
                        let (inline, gate) = (inline.clone(), self.writer.clone());
                        return self
                            .refresh_tokens
                            .append(token, move |tokens| {
                                let (inline, gate) = (inline.clone(), gate.clone());
                                async move {
                                    let n = tokens.len();
                                    inline
                                        .write(&gate, move |tx| {
                                            inline_writer::insert_refresh_tokens(tx, &tokens)
                                        })
                                        .await?;
                                    Ok(vec![(); n])
                                }
                            })
                            .await;
                    }
                    let writer = self.writer.clone();
                    self.refresh_tokens
                        .append(token, move |tokens| {
                            let writer = writer.clone();
                            async move {
                                // A batch is one multi-row INSERT: atomic without a
                                // transaction of its own.
                                let mut conn = writer.acquire().await.map_err(db)?;
                                insert_refresh_tokens(&mut conn, &tokens).await?;
                                Ok(vec![(); tokens.len()])
                            }
                        })
                        .await
                }

                async fn rotate_refresh_token(&self, rotation: Rotation) -> Result<bool> {
                    if let Some(inline) = self.inline_writer() {
                        let (inline, gate) = (inline.clone(), self.writer.clone());
                        return self
                            .rotations
                            .append(rotation, move |rotations| {
                                let (inline, gate) = (inline.clone(), gate.clone());
                                async move {
                                    inline
                                        .write(&gate, move |tx| {
                                            let Some(at) = latest(&rotations) else {
                                                return Ok(Vec::new());
                                            };
                                            let ids = rotations.iter().map(|r| r.spent).collect::<Vec<_>>();
                                            let unclaimed =
                                                inline_writer::spend_refresh_tokens(tx, &ids, at)?;
                                            let settled = settle_rotations(rotations, unclaimed);
                                            inline_writer::insert_refresh_tokens(tx, &settled.successors)?;
                                            inline_writer::insert_audits(tx, &settled.audits)?;
                                            Ok(settled.spent)
                                        })
                                        .await
                                }
                            })
                            .await;
                    }
                    let writer = self.writer.clone();
                    self.rotations
                        .append(rotation, move |rotations| {
                            let writer = writer.clone();
                            async move {
                                let Some(at) = latest(&rotations) else {
                                    return Ok(Vec::new());
                                };
                                let mut tx = $store::begin_on(&writer).await?;
                                let mut query = sqlx::QueryBuilder::<$db>::new(
                                    "UPDATE refresh_tokens SET used_at = ",
                                );
                                query.push_bind(ts(at));
                                query.push(" WHERE used_at IS NULL AND (");
                                let mut ids = query.separated(" OR ");
                                for rotation in &rotations {
                                    ids.push("(grant_id = ");
                                    ids.push_bind_unseparated(rotation.spent.grant_id);
                                    ids.push_unseparated(" AND generation = ");
                                    ids.push_bind_unseparated(rotation.spent.generation);
                                    ids.push_unseparated(")");
                                }
                                query.push(") RETURNING grant_id, generation");
                                let unclaimed = query
                                    .build()
                                    .fetch_all(&mut *tx)
                                    .await
                                    .map_err(db)?
                                    .iter()
                                    .map(|row| {
                                        Ok(crate::RefreshTokenId {
                                            grant_id: col(row, "grant_id")?,
                                            generation: col(row, "generation")?,
                                        })
                                    })
                                    .collect::<Result<std::collections::HashSet<_>>>()?;
                                let settled = settle_rotations(rotations, unclaimed);
                                insert_refresh_tokens(&mut tx, &settled.successors).await?;
                                insert_audits(&mut tx, &settled.audits).await?;
                                tx.commit().await.map_err(db)?;
                                Ok(settled.spent)
                            }
                        })
                        .await
                }

                async fn get_refresh_token(&self, key: &RefreshKey) -> Result<Option<RefreshToken>> {
                    let row = match (key, self.inline()) {
                        (RefreshKey::Id(id), Some(inline)) => {
                            return inline.optional(
                                sql::SELECT_REFRESH,
                                &[&id.grant_id.as_bytes().as_slice(), &id.generation],
                                |row| refresh_from_row(row),
                            );
                        }
                        (RefreshKey::Legacy { token_hash }, Some(inline)) => {
                            return inline.optional(sql::SELECT_LEGACY_REFRESH, &[token_hash], |row| {
                                refresh_from_row(row)
                            });
                        }
                        (RefreshKey::Id(id), None) => sqlx::query(sql::SELECT_REFRESH)
                            .bind(id.grant_id)
                            .bind(id.generation)
                            .fetch_optional(&self.pool)
                            .await,
                        (RefreshKey::Legacy { token_hash }, None) => {
                            sqlx::query(sql::SELECT_LEGACY_REFRESH)
                                .bind(token_hash)
                                .fetch_optional(&self.pool)
                                .await
                        }
                    }
                    .map_err(db)?;
                    row.as_ref().map(refresh_from_row).transpose()
                }

                async fn purge_refresh_tokens(
                    &self,
                    grants_below: Uuid,
                    expired_before: OffsetDateTime,
                    limit: u32,
                ) -> Result<u64> {
                    let done = sqlx::query(sql::PURGE_REFRESH)
                        .bind(grants_below)
                        .bind(ts(expired_before))
                        .bind(i64::from(limit))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                }

                async fn purge_sessions(
                    &self,
                    expired_before: OffsetDateTime,
                    limit: u32,
                ) -> Result<u64> {
                    delete_before(&self.writer, sql::PURGE_SESSIONS, expired_before, limit).await
                }

                async fn purge_otp_challenges(
                    &self,
                    sent_before: OffsetDateTime,
                    limit: u32,
                ) -> Result<u64> {
                    delete_before(&self.writer, sql::PURGE_OTP_CHALLENGES, sent_before, limit)
                        .await
                }

                async fn purge_grants(
                    &self,
                    retained_before: OffsetDateTime,
                    limit: u32,
                ) -> Result<u64> {
                    let mut tx = self.begin_write().await?;
                    delete_before(&mut *tx, sql::PURGE_GRANT_CODES, retained_before, limit).await?;
                    let grants =
                        delete_before(&mut *tx, sql::PURGE_GRANTS, retained_before, limit).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(grants)
                }

                async fn revoke_access_token(
                    &self,
                    jti: &str,
                    expires_at: OffsetDateTime,
                    audit: NewAuditEvent,
                ) -> Result<bool> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(sql::REVOKE_ACCESS_TOKEN)
                        .bind(jti)
                        .bind(ts(expires_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    let revoked = done.rows_affected() == 1;
                    if revoked {
                        insert_audit(&mut tx, &audit).await?;
                    }
                    tx.commit().await.map_err(db)?;
                    Ok(revoked)
                }

                async fn access_token_revoked(&self, jti: &str) -> Result<bool> {
                    if let Some(inline) = self.inline() {
                        return Ok(inline
                            .optional(sql::ACCESS_TOKEN_REVOKED, &[&jti], |_| Ok(()))?
                            .is_some());
                    }
                    let row = sqlx::query(sql::ACCESS_TOKEN_REVOKED)
                        .bind(jti)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    Ok(row.is_some())
                }

                async fn purge_revoked_access_tokens(&self, before: OffsetDateTime) -> Result<u64> {
                    let done = sqlx::query(sql::PURGE_REVOKED_ACCESS_TOKENS)
                        .bind(ts(before))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                }

                async fn redeem_refresh_token(
                    &self,
                    id: RefreshTokenId,
                    now: OffsetDateTime,
                ) -> Result<RefreshRedemption> {
                    let spent = sqlx::query(sql::REDEEM_REFRESH)
                        .bind(id.grant_id)
                        .bind(id.generation)
                        .bind(ts(now))
                        .fetch_optional(&self.writer)
                        .await
                        .map_err(db)?;
                    if let Some(row) = spent {
                        let token = refresh_from_row(&row)?;
                        let grant = self.grant_of(token.grant_id, "refresh token").await?;
                        return Ok(RefreshRedemption::Redeemed { token, grant });
                    }
                    Ok(match self.get_refresh_token(&RefreshKey::Id(id)).await? {
                        Some(token) => RefreshRedemption::Reused { token },
                        None => RefreshRedemption::Unknown,
                    })
                }

                async fn get_grant(&self, id: Uuid) -> Result<Option<Grant>> {
                    if let Some(inline) = self.inline() {
                        return inline.optional(
                            sql::SELECT_GRANT,
                            &[&id.as_bytes().as_slice()],
                            |row| grant_from_row(row),
                        );
                    }
                    let row = sqlx::query(sql::SELECT_GRANT)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(grant_from_row).transpose()
                }

                async fn revoke_grant(&self, id: Uuid, at: OffsetDateTime) -> Result<()> {
                    let done = sqlx::query(sql::REVOKE_GRANT)
                        .bind(id)
                        .bind(ts(at))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())
                }

                async fn revoke_grants_of_account(
                    &self,
                    account_id: Uuid,
                    at: OffsetDateTime,
                ) -> Result<u64> {
                    let done = sqlx::query(sql::REVOKE_GRANTS_OF_ACCOUNT)
                        .bind(account_id)
                        .bind(ts(at))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                }

                async fn create_bulk_job(
                    &self,
                    job: NewBulkJob,
                    audit: NewAuditEvent,
                ) -> Result<BulkJob> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query(sql::INSERT_BULK_JOB)
                        .bind(job.institution_code.as_str())
                        .bind(&job.reception_number)
                        .bind(job.submitter_id)
                        .bind(job.submitter_type.as_str())
                        .bind(job.status.as_str())
                        .bind(ts(job.submitted_at))
                        .bind(ts_opt(job.finished_at))
                        .bind(job.row_count)
                        .bind(&job.file)
                        .bind(to_json(&job.errors)?)
                        .execute(&mut *tx)
                        .await
                        .map_err(on_write("bulk_registration"))?;
                    insert_audit(&mut tx, &audit).await?;
                    let created = fetch_bulk_job(
                        &mut tx,
                        job.institution_code.as_str(),
                        &job.reception_number,
                    )
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("job vanished after insert".into()))?;
                    tx.commit().await.map_err(db)?;
                    Ok(created)
                }

                async fn active_bulk_job(
                    &self,
                    institution: &InstitutionCode,
                ) -> Result<Option<BulkJob>> {
                    let row = sqlx::query(sql::ACTIVE_BULK_JOB)
                        .bind(institution.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    row.as_ref().map(bulk_job_from_row).transpose()
                }

                async fn get_bulk_job(
                    &self,
                    institution: &InstitutionCode,
                    reception_number: &str,
                ) -> Result<Option<BulkJob>> {
                    let mut conn = self.pool.acquire().await.map_err(db)?;
                    fetch_bulk_job(&mut conn, institution.as_str(), reception_number).await
                }

                async fn list_bulk_jobs(
                    &self,
                    institution: &InstitutionCode,
                    submitter_id: Uuid,
                    limit: i64,
                ) -> Result<Vec<BulkJob>> {
                    let rows = sqlx::query(sql::LIST_BULK_JOBS)
                        .bind(institution.as_str())
                        .bind(submitter_id)
                        .bind(limit.max(0))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(bulk_job_from_row).collect()
                }

                async fn claim_bulk_job(
                    &self,
                    owner: &str,
                    now: OffsetDateTime,
                    lease_until: OffsetDateTime,
                ) -> Result<Option<ClaimedBulkJob>> {
                    let candidates = sqlx::query(sql::CLAIMABLE_BULK_JOBS)
                        .bind(ts(now))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    for candidate in &candidates {
                        let institution: String = col(candidate, "institution_code")?;
                        let reception: String = col(candidate, "reception_number")?;
                        let attempts: i64 = col(candidate, "attempts")?;
                        let claimed = sqlx::query(sql::CLAIM_BULK_JOB)
                            .bind(&institution)
                            .bind(&reception)
                            .bind(owner)
                            .bind(ts(lease_until))
                            .bind(ts(now))
                            .bind(attempts)
                            .execute(&self.writer)
                            .await
                            .map_err(db)?;
                        if claimed.rows_affected() == 0 {
                            continue;
                        }
                        let mut conn = self.pool.acquire().await.map_err(db)?;
                        let job = fetch_bulk_job(&mut conn, &institution, &reception)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        let row = sqlx::query(sql::SELECT_BULK_FILE)
                            .bind(&institution)
                            .bind(&reception)
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(db)?;
                        return Ok(Some(ClaimedBulkJob {
                            job,
                            file: col(&row, "file")?,
                        }));
                    }
                    Ok(None)
                }

                async fn renew_bulk_lease(
                    &self,
                    institution: &InstitutionCode,
                    reception_number: &str,
                    owner: &str,
                    until: OffsetDateTime,
                ) -> Result<bool> {
                    let done = sqlx::query(sql::RENEW_BULK_LEASE)
                        .bind(institution.as_str())
                        .bind(reception_number)
                        .bind(owner)
                        .bind(ts(until))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn taken_user_ids(
                    &self,
                    institution: &InstitutionCode,
                    user_ids: &[String],
                ) -> Result<Vec<String>> {
                    let mut taken = Vec::new();
                    for chunk in user_ids.chunks(BATCH_ROWS) {
                        let mut query = sqlx::QueryBuilder::<$db>::new(
                            "SELECT user_id FROM accounts WHERE institution_code = ",
                        );
                        query.push_bind(institution.as_str().to_owned());
                        query.push(" AND user_id IN (");
                        let mut ids = query.separated(", ");
                        for id in chunk {
                            ids.push_bind(id.clone());
                        }
                        ids.push_unseparated(")");
                        let rows = query.build().fetch_all(&self.pool).await.map_err(db)?;
                        for row in &rows {
                            taken.push(col::<String>(row, "user_id")?);
                        }
                    }
                    Ok(taken)
                }

                async fn complete_bulk_job(
                    &self,
                    institution: &InstitutionCode,
                    reception_number: &str,
                    owner: &str,
                    completion: BulkCompletion,
                ) -> Result<()> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(sql::FINISH_BULK_JOB)
                        .bind(institution.as_str())
                        .bind(reception_number)
                        .bind(owner)
                        .bind(completion.status.as_str())
                        .bind(ts(completion.finished_at))
                        .bind(completion.row_count)
                        .bind(completion.registered_count)
                        .bind(completion.duplicate_count)
                        .bind(completion.invalid_count)
                        .bind(to_json(&completion.errors)?)
                        .bind(to_json(&completion.result_rows)?)
                        .bind(completion.passwords_sealed.as_deref())
                        .bind(Vec::<u8>::new())
                        .execute(&mut *tx)
                        .await
                        .map_err(db)?;
                    expect_one(done.rows_affected())?;
                    insert_accounts(&mut tx, &completion.accounts).await?;
                    insert_audits(&mut tx, &completion.audit).await?;
                    tx.commit().await.map_err(db)?;
                    Ok(())
                }

                async fn bulk_result(
                    &self,
                    institution: &InstitutionCode,
                    reception_number: &str,
                ) -> Result<Option<BulkResult>> {
                    let row = sqlx::query(sql::SELECT_BULK_RESULT)
                        .bind(institution.as_str())
                        .bind(reception_number)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db)?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    Ok(Some(BulkResult {
                        rows: from_json("result_rows", &col::<String>(&row, "result_rows")?)?,
                        passwords_sealed: col(&row, "passwords_sealed")?,
                    }))
                }

                async fn purge_initial_passwords(
                    &self,
                    account_types: &[AccountType],
                    issued_before: OffsetDateTime,
                ) -> Result<u64> {
                    if account_types.is_empty() {
                        return Ok(0);
                    }
                    let mut query = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE accounts SET initial_sealed = NULL \
                         WHERE initial_sealed IS NOT NULL AND initial_issued_at <= ",
                    );
                    query.push_bind(ts(issued_before));
                    query.push(" AND account_type IN (");
                    let mut types = query.separated(", ");
                    for account_type in account_types {
                        types.push_bind(account_type.as_str());
                    }
                    types.push_unseparated(")");
                    let done = query.build().execute(&self.writer).await.map_err(db)?;
                    Ok(done.rows_affected())
                }

                async fn purge_bulk_passwords(
                    &self,
                    finished_before: OffsetDateTime,
                    now: OffsetDateTime,
                ) -> Result<u64> {
                    let done = sqlx::query(sql::PURGE_BULK_PASSWORDS)
                        .bind(ts(finished_before))
                        .bind(ts(now))
                        .execute(&self.writer)
                        .await
                        .map_err(db)?;
                    Ok(done.rows_affected())
                }

                async fn append_audit(&self, event: NewAuditEvent) -> Result<()> {
                    if let Some(inline) = self.inline_writer() {
                        let (inline, gate) = (inline.clone(), self.writer.clone());
                        return self
                            .audit
                            .append(event, move |events| {
                                let (inline, gate) = (inline.clone(), gate.clone());
                                async move {
                                    let n = events.len();
                                    inline
                                        .write(&gate, move |tx| inline_writer::insert_audits(tx, &events))
                                        .await?;
                                    Ok(vec![(); n])
                                }
                            })
                            .await;
                    }
                    let writer = self.writer.clone();
                    self.audit
                        .append(event, move |events| {
                            let writer = writer.clone();
                            async move {
                                // A batch is one multi-row INSERT: atomic without a
                                // transaction of its own.
                                let mut conn = writer.acquire().await.map_err(db)?;
                                insert_audits(&mut conn, &events).await?;
                                Ok(vec![(); events.len()])
                            }
                        })
                        .await
                }

                async fn recent_sign_ins(
                    &self,
                    account_id: Uuid,
                    limit: i64,
                ) -> Result<Vec<AuditEvent>> {
                    let rows = sqlx::query(sql::RECENT_SIGN_INS)
                        .bind(account_id)
                        .bind(limit.max(0))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(audit_from_row).collect()
                }

                async fn list_audit(
                    &self,
                    filter: &AuditFilter,
                    limit: i64,
                ) -> Result<Vec<AuditEvent>> {
                    let rows = sqlx::query(sql::LIST_AUDIT)
                        .bind(ts_opt(filter.from))
                        .bind(ts_opt(filter.to))
                        .bind(filter.kind.as_deref())
                        .bind(filter.institution_code.as_deref())
                        .bind(limit.max(0))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db)?;
                    rows.iter().map(audit_from_row).collect()
                }
            }
        }
    };
}

pub(crate) use impl_store;
