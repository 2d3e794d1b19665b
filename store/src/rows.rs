//! Turning result rows into the model, written once for every driver that produces rows: sqlx's
//! SQLite and PostgreSQL rows, and the rusqlite rows of SQLite's in-line reads
//! ([`crate::inline`]).
//!
//! A decoder asks a row for columns by name ([`Columns::col`]); each column type says how to read
//! itself from each kind of row ([`Column`]). The decoders of the rows the in-line reads return
//! (accounts, institutions, grants, refresh tokens) live here; the others stay beside the SQL in
//! [`crate::common::impl_store!`].

use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};
use uuid::Uuid;

use crate::common::{
    corrupt, from_json, parse_account_type, parse_code, parse_kind, parse_lock, second_factor,
};
use crate::{Account, Credential, Grant, Institution, RefreshFamily, RefreshToken, Result};

/// A row whose columns can be read by name.
pub(crate) trait Columns {
    /// Reads one column; a missing column or an undecodable value is `Corrupt`, never a panic.
    fn col<T: Column>(&self, name: &str) -> Result<T>;
}

/// A column type, read from the rows of each driver.
pub(crate) trait Column: Sized {
    fn from_sqlite(row: &SqliteRow, name: &str) -> Result<Self>;
    fn from_postgres(row: &PgRow, name: &str) -> Result<Self>;
    /// The column at `index` of an in-line row, named `name` (for errors).
    fn from_inline(row: &rusqlite::Row<'_>, index: usize, name: &str) -> Result<Self>;
}

impl Columns for SqliteRow {
    fn col<T: Column>(&self, name: &str) -> Result<T> {
        T::from_sqlite(self, name)
    }
}

impl Columns for PgRow {
    fn col<T: Column>(&self, name: &str) -> Result<T> {
        T::from_postgres(self, name)
    }
}

/// A rusqlite row with its statement's column names.
///
/// rusqlite finds a column by name by converting every column's C name on each look-up; the
/// decoders ask for most columns of a wide row (an account has 25), so the names are read once
/// per statement ([`crate::inline`]) and searched from just after the last column found:
/// decoders ask for columns in about the order the SQL lists them.
pub(crate) struct InlineRow<'a> {
    pub(crate) row: &'a rusqlite::Row<'a>,
    pub(crate) names: &'a [Box<str>],
    pub(crate) next: std::cell::Cell<usize>,
}

impl Columns for InlineRow<'_> {
    fn col<T: Column>(&self, name: &str) -> Result<T> {
        let n = self.names.len();
        let start = self.next.get();
        let index = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| &*self.names[i] == name)
            .ok_or_else(|| corrupt(name, "no such column"))?;
        self.next.set(index + 1);
        T::from_inline(self.row, index, name)
    }
}

/// The sqlx side of [`Column`] for types sqlx decodes itself; `inline` reads the value from a
/// rusqlite row.
macro_rules! column {
    ($ty:ty, |$row:ident, $index:ident, $name:ident| $inline:expr) => {
        impl Column for $ty {
            fn from_sqlite(row: &SqliteRow, name: &str) -> Result<Self> {
                row.try_get(name).map_err(|e| corrupt(name, e))
            }
            fn from_postgres(row: &PgRow, name: &str) -> Result<Self> {
                row.try_get(name).map_err(|e| corrupt(name, e))
            }
            fn from_inline($row: &rusqlite::Row<'_>, $index: usize, $name: &str) -> Result<Self> {
                $inline
            }
        }
    };
}

/// Types rusqlite decodes as SQLite stores them for sqlx (booleans as integers, byte strings as
/// blobs).
macro_rules! native_column {
    ($($ty:ty),*) => {
        $(column!($ty, |row, index, name| row.get(index).map_err(|e| corrupt(name, e)));)*
    };
}

native_column!(
    String,
    Option<String>,
    i64,
    bool,
    Option<bool>,
    Option<Vec<u8>>
);

// sqlx stores a UUID in SQLite as its 16 bytes, a date as `YYYY-MM-DD` and a timestamp as the
// text `Timestamp` encodes (RFC 3339, UTC).
column!(Uuid, |row, index, name| uuid_of(
    name,
    &row.get::<_, Vec<u8>>(index).map_err(|e| corrupt(name, e))?
));
column!(Option<Uuid>, |row, index, name| row
    .get::<_, Option<Vec<u8>>>(index)
    .map_err(|e| corrupt(name, e))?
    .map(|bytes| uuid_of(name, &bytes))
    .transpose());
column!(Date, |row, index, name| date_of(
    name,
    &row.get::<_, String>(index).map_err(|e| corrupt(name, e))?
));
column!(OffsetDateTime, |row, index, name| timestamp_of(
    name,
    &row.get::<_, String>(index).map_err(|e| corrupt(name, e))?
));
column!(Option<OffsetDateTime>, |row, index, name| row
    .get::<_, Option<String>>(index)
    .map_err(|e| corrupt(name, e))?
    .map(|text| timestamp_of(name, &text))
    .transpose());

fn uuid_of(name: &str, bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| corrupt(name, e))
}

fn date_of(name: &str, text: &str) -> Result<Date> {
    Date::parse(text, format_description!("[year]-[month]-[day]")).map_err(|e| corrupt(name, e))
}

/// RFC 3339 as `Timestamp` writes it; a timestamp without an offset (SQLite's own
/// `CURRENT_TIMESTAMP` form) is UTC, as sqlx reads it.
fn timestamp_of(name: &str, text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| {
            PrimitiveDateTime::parse(
                text,
                format_description!(
                    "[year]-[month]-[day][first [T][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
                ),
            )
            .map(PrimitiveDateTime::assume_utc)
        })
        .map_err(|e| corrupt(name, e))
}

/// An institution from columns named `<prefix><column>` (a join's).
pub(crate) fn institution_from_prefixed_row(
    row: &impl Columns,
    prefix: &str,
) -> Result<Institution> {
    let name = |column: &str| format!("{prefix}{column}");
    let code = parse_code(&row.col::<String>(&name("code"))?)?;
    Ok(Institution {
        kind: parse_kind(&row.col::<String>(&name("kind"))?, &code)?,
        code,
        name: row.col(&name("name"))?,
        usage_start: row.col(&name("usage_start"))?,
        settings: from_json("settings", &row.col::<String>(&name("settings"))?)?,
        settings_version: row.col(&name("settings_version"))?,
        created_at: row.col(&name("created_at"))?,
    })
}

pub(crate) fn account_from_row(row: &impl Columns) -> Result<Account> {
    Ok(Account {
        id: row.col("id")?,
        institution_code: parse_code(&row.col::<String>("institution_code")?)?,
        account_type: parse_account_type(&row.col::<String>("account_type")?)?,
        user_id: row.col("user_id")?,
        name: row.col("name")?,
        name_kana: row.col("name_kana")?,
        enabled: row.col("enabled")?,
        lock: parse_lock(&row.col::<String>("lock_state")?)?,
        locked_at: row.col("locked_at")?,
        tokens_not_before: row.col("tokens_not_before")?,
        failed_attempts: row.col("failed_attempts")?,
        usage_start: row.col("usage_start")?,
        usage_end: row.col("usage_end")?,
        second_factor: second_factor(
            row.col("second_factor_method")?,
            row.col("second_factor_email")?,
            row.col("second_factor_phone")?,
            row.col("second_factor_verified")?,
        )?,
        credential: Credential {
            hash: row.col("password_hash")?,
            initial_issued_at: row.col("initial_issued_at")?,
            initial_sealed: row.col("initial_sealed")?,
            changed_at: row.col("password_changed_at")?,
        },
        notice_issued: row.col("notice_issued")?,
        last_login_at: row.col("last_login_at")?,
        created_by: row.col("created_by")?,
        created_at: row.col("created_at")?,
        deleted_at: row.col("deleted_at")?,
    })
}

/// A grant from columns named `<prefix><column>` (a join's).
pub(crate) fn grant_from_prefixed_row(row: &impl Columns, prefix: &str) -> Result<Grant> {
    let name = |column: &str| format!("{prefix}{column}");
    Ok(Grant {
        id: row.col(&name("id"))?,
        account_id: row.col(&name("account_id"))?,
        client_id: row.col(&name("client_id"))?,
        session_id_hash: row.col(&name("session_id_hash"))?,
        scopes: from_json("scopes", &row.col::<String>(&name("scopes"))?)?,
        auth_time: row.col(&name("auth_time"))?,
        amr: from_json("amr", &row.col::<String>(&name("amr"))?)?,
        acr: row.col(&name("acr"))?,
        created_at: row.col(&name("created_at"))?,
        revoked_at: row.col(&name("revoked_at"))?,
        retain_until: row.col(&name("retain_until"))?,
    })
}

pub(crate) fn grant_from_row(row: &impl Columns) -> Result<Grant> {
    grant_from_prefixed_row(row, "")
}

/// An account joined with its institution (the institution's columns prefixed `i_`).
pub(crate) fn account_and_institution(row: &impl Columns) -> Result<(Account, Institution)> {
    Ok((
        account_from_row(row)?,
        institution_from_prefixed_row(row, "i_")?,
    ))
}

/// A grant (its columns prefixed `g_`) joined with its account.
pub(crate) fn grant_and_account(row: &impl Columns) -> Result<(Grant, Account)> {
    Ok((grant_from_prefixed_row(row, "g_")?, account_from_row(row)?))
}

/// A refresh token from columns named `<prefix><column>` (a join's).
fn refresh_from_prefixed_row(row: &impl Columns, prefix: &str) -> Result<RefreshToken> {
    let name = |column: &str| format!("{prefix}{column}");
    Ok(RefreshToken {
        grant_id: row.col(&name("grant_id"))?,
        generation: row.col(&name("generation"))?,
        secret_hash: row.col(&name("secret_hash"))?,
        institution_settings_version: row.col(&name("institution_settings_version"))?,
        created_at: row.col(&name("created_at"))?,
        idle_expires_at: row.col(&name("idle_expires_at"))?,
        absolute_expires_at: row.col(&name("absolute_expires_at"))?,
        used_at: row.col(&name("used_at"))?,
    })
}

pub(crate) fn refresh_from_row(row: &impl Columns) -> Result<RefreshToken> {
    refresh_from_prefixed_row(row, "")
}

/// A refresh token (prefixed `r_`) with its grant (`g_`), account and institution (`i_`).
pub(crate) fn refresh_family(row: &impl Columns) -> Result<RefreshFamily> {
    let (account, institution) = account_and_institution(row)?;
    Ok(RefreshFamily {
        token: refresh_from_prefixed_row(row, "r_")?,
        grant: grant_from_prefixed_row(row, "g_")?,
        account,
        institution,
    })
}
