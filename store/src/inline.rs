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
//! These connections only read: every write still goes through the store's writers, and WAL lets
//! a reader see every transaction committed before its statement began, so a read that follows
//! a write of the same request sees it. When the in-line writer (`inline_writer.rs`) is idle, a
//! read runs on its connection instead: SQLite drops a connection's whole page cache when
//! another connection has committed since its last transaction, so a reader reads every page
//! again after each write, while the writer's cache survives its own commits. The SQL and the
//! row decoders are the same ones sqlx uses ([`crate::common::sql`], [`crate::rows`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, ToSql};

use crate::inline_writer::InlineWriter;
use crate::rows::InlineRow;
use crate::{Result, StoreError};

/// Prepared statements kept per connection: the handful of hot reads.
const STATEMENT_CACHE: usize = 16;

pub(crate) struct InlineReader {
    path: PathBuf,
    /// The store's in-line writer, whose connection serves a read when no write holds it.
    writer: Option<Arc<InlineWriter>>,
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
    /// created) in WAL mode; on `writer`'s connection when it is idle.
    pub(crate) fn new(
        path: PathBuf,
        busy_timeout: Duration,
        keep: usize,
        writer: Option<Arc<InlineWriter>>,
    ) -> Self {
        Self {
            path,
            writer,
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
        let mut decode = Some(decode);
        if let Some(writer) = &self.writer {
            let found = writer.read_if_idle(|connection| {
                self.query(connection, sql, params, |row| match decode.take() {
                    Some(decode) => decode(row),
                    None => Err(StoreError::Corrupt("a row decoded twice".to_owned())),
                })
            });
            match found {
                Some(Ok(found)) => return Ok(found),
                // The row came back and its decoding failed: that is the answer.
                Some(Err(e)) if decode.is_none() => return Err(e),
                // Not run, or failed before a row came back (busy while a checkpoint starts
                // the log over, say): a reader runs it again, since it changed nothing.
                _ => {}
            }
        }
        let decode = decode.ok_or_else(|| StoreError::Corrupt("a row decoded twice".to_owned()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inline_writer::tests::{put, setup};
    use crate::rows::Columns;

    /// The length of row `k`'s value, read through `reader`.
    fn length_of(reader: &InlineReader, k: &str) -> Option<i64> {
        reader
            .optional("SELECT length(v) AS n FROM t WHERE k = $1", &[&k], |row| {
                row.col("n")
            })
            .expect("read")
    }

    #[tokio::test]
    async fn a_read_sees_every_commit_whichever_connection_serves_it() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, writer, gate) = setup(dir.path(), 1_000, 0).await;
        let reader = InlineReader::new(path, Duration::from_secs(5), 2, Some(writer.clone()));
        assert_eq!(length_of(&reader, "a"), None, "nothing written yet");
        put(&writer, &gate, "a").await.expect("put");
        // The writer's connection is open and idle: it serves the read.
        assert_eq!(length_of(&reader, "a"), Some(3000));
        // A commit by another connection is seen on the writer's connection too.
        sqlx::query("UPDATE t SET v = x'00' WHERE k = 'a'")
            .execute(&gate)
            .await
            .expect("update");
        assert_eq!(length_of(&reader, "a"), Some(1));
        // While a write holds the writer's connection, a reader's connection serves the read.
        let turn = writer.hold_turn().await;
        assert_eq!(length_of(&reader, "a"), Some(1));
        assert_eq!(reader.idle().len(), 1, "a reader's connection was opened");
        drop(turn);
    }

    #[tokio::test]
    async fn a_decoding_error_is_answered_once_not_retried() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, writer, gate) = setup(dir.path(), 1_000, 0).await;
        let reader = InlineReader::new(path, Duration::from_secs(5), 2, Some(writer.clone()));
        put(&writer, &gate, "a").await.expect("put");
        let mut calls = 0;
        let outcome = reader.optional("SELECT v FROM t WHERE k = $1", &[&"a"], |row| {
            calls += 1;
            row.col::<i64>("missing")
        });
        assert!(
            matches!(outcome, Err(StoreError::Corrupt(_))),
            "{outcome:?}"
        );
        assert_eq!(calls, 1);
        assert!(
            reader.idle().is_empty(),
            "no reader's connection was needed"
        );
    }
}
