//! SQLite reads of single rows by key, run in-line on the calling thread through rusqlite.
//!
//! sqlx runs every SQLite statement on a worker thread of its connection: a query is a message to
//! that thread and a message back, and each message wakes a sleeping thread. On a busy server
//! those two context switches (and the pool's bookkeeping around them) cost several times what
//! SQLite spends finding one row in its page cache. The reads on the token endpoints' hot paths
//! (an account with its institution, a grant with its account, a refresh token) are such
//! look-ups, so the SQLite store runs them here, on the async thread itself: a few microseconds
//! of work, like any other computation between two awaits.
//!
//! These connections only read: every write still goes through the store's one sqlx writer
//! connection, and WAL lets a reader see every transaction committed before its statement began,
//! so a read that follows a write of the same request sees it. The SQL and the row decoders are
//! the same ones sqlx uses ([`crate::common::sql`], [`crate::rows`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, ToSql};

use crate::rows::InlineRow;
use crate::{Result, StoreError};

/// Prepared statements kept per connection: the handful of hot reads.
const STATEMENT_CACHE: usize = 16;

pub(crate) struct InlineReader {
    path: PathBuf,
    busy_timeout: Duration,
    /// Connections not in use. A read takes one (opening one if none is idle) and puts it back;
    /// at most `keep` are kept.
    idle: Mutex<Vec<Connection>>,
    keep: usize,
    /// The result columns of each statement run, by SQL text (the same for every connection).
    names: Mutex<HashMap<String, Arc<[Box<str>]>>>,
}

impl InlineReader {
    /// Reads the database file at `path`, which the sqlx pool has already opened (and so
    /// created) in WAL mode.
    pub(crate) fn new(path: PathBuf, busy_timeout: Duration, keep: usize) -> Self {
        Self {
            path,
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            keep: keep.max(1),
            names: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `sql` with the positional parameters `$1`, `$2`, … bound to `params` and decodes the
    /// first row, if any.
    pub(crate) fn optional<T>(
        &self,
        sql: &str,
        params: &[&dyn ToSql],
        decode: impl FnOnce(&InlineRow<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let connection = match self.take() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let found = self.query(&connection, sql, params, decode);
        // A connection that failed is dropped rather than reused.
        if found.is_ok() {
            self.give_back(connection);
        }
        found
    }

    fn query<T>(
        &self,
        connection: &Connection,
        sql: &str,
        params: &[&dyn ToSql],
        decode: impl FnOnce(&InlineRow<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut statement = connection.prepare_cached(sql).map_err(inline)?;
        let names = self.column_names(sql, &statement);
        // `$N` is a named parameter to SQLite, numbered in order of first appearance: bind by
        // name so that the SQL may use them in any order.
        for (k, value) in params.iter().enumerate() {
            let index = statement
                .parameter_index(&format!("${}", k + 1))
                .map_err(inline)?
                .ok_or_else(|| StoreError::Corrupt(format!("no parameter ${} in {sql}", k + 1)))?;
            statement.raw_bind_parameter(index, value).map_err(inline)?;
        }
        let mut rows = statement.raw_query();
        match rows.next().map_err(inline)? {
            Some(row) => decode(&InlineRow {
                row,
                names: &names,
                next: std::cell::Cell::new(0),
            })
            .map(Some),
            None => Ok(None),
        }
    }

    fn column_names(&self, sql: &str, statement: &rusqlite::Statement<'_>) -> Arc<[Box<str>]> {
        let mut names = self.names.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = names.get(sql) {
            return known.clone();
        }
        let read: Arc<[Box<str>]> = statement
            .column_names()
            .into_iter()
            .map(Box::from)
            .collect();
        names.insert(sql.to_owned(), read.clone());
        read
    }

    fn take(&self) -> Option<Connection> {
        self.idle().pop()
    }

    fn give_back(&self, connection: Connection) {
        let mut idle = self.idle();
        if idle.len() < self.keep {
            idle.push(connection);
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // Push and pop are single operations: a panic elsewhere cannot leave the list torn.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open(&self) -> Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(inline)?;
        connection.busy_timeout(self.busy_timeout).map_err(inline)?;
        // A reader never writes: refuse it outright should a statement ever try.
        connection
            .pragma_update(None, "query_only", true)
            .map_err(inline)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(connection)
    }
}

pub(crate) fn inline(err: rusqlite::Error) -> StoreError {
    StoreError::Inline(err)
}
