//! SQLite's grouped writes (audit rows, refresh tokens, refresh rotations), run in-line on the
//! calling thread through rusqlite.
//!
//! A grouped write through sqlx is a string of round trips to the writer connection's worker
//! thread (acquire, `BEGIN`, each statement, `COMMIT`, and the liveness ping sqlx sends when the
//! connection goes back to its pool), each waking a sleeping thread. Here the batch runs on the
//! async thread itself, like the in-line reads (`inline.rs`): with `synchronous = NORMAL` a WAL
//! commit appends to the log without waiting for the disk, so it is tens of microseconds of
//! work, not a wait.
//!
//! SQLite still has one writer at a time: a batch holds the store's one sqlx writer connection
//! (without using it) while it writes, so it queues with every other write. What does wait for
//! the disk, the checkpoint that copies the log back into the database file and syncs it, runs
//! behind the writes on a blocking thread and a connection of its own (see
//! [`InlineWriter::write`]).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use crate::common::{Timestamp, db};
use crate::inline::inline;
use crate::{NewAuditEvent, RefreshToken, RefreshTokenId, Result, StoreError};

/// Prepared statements kept: the multi-row statements of the most frequent batch sizes.
const STATEMENT_CACHE: usize = 64;

pub(crate) struct InlineWriter {
    path: PathBuf,
    busy_timeout: Duration,
    /// Rows changed after which a batch checkpoints the log (see [`InlineWriter::new`]).
    checkpoint_rows: u64,
    /// The log size, in frames, from which a checkpoint holds the writes to start the log over
    /// (see [`InlineWriter::write`]).
    restart_frames: i64,
    state: Mutex<State>,
    /// The connection checkpoints run on (opened at the first one, dropped after a failed one),
    /// shared with the blocking threads they run on.
    checkpointer: Arc<Mutex<Option<Connection>>>,
    /// The checkpoint in progress, if any.
    pending: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Taken by every write and by the second step of a checkpoint, which must not run beside
    /// a write; waited for on the async thread, not blocking it.
    turn: Arc<tokio::sync::Mutex<()>>,
}

/// A commit's outcome, or the write handed back unrun because another connection was writing.
enum Attempt<T, F> {
    Done(Result<T>, bool),
    Busy(F, rusqlite::Error),
}

struct State {
    /// Opened at the first write; dropped after a failed one and opened again.
    connection: Option<Connection>,
    /// Rows changed since the last checkpoint.
    rows: u64,
}

impl InlineWriter {
    /// Writes the database file at `path`, which the sqlx pools have already opened (and so
    /// created) in WAL mode. The log is checkpointed every `checkpoint_rows` changed rows: a
    /// row of these tables writes one to three pages to the log (its table and index leaves)
    /// when committed alone, fewer in a batch. Once the log holds `restart_frames` frames, a
    /// checkpoint also starts it over.
    pub(crate) fn new(
        path: PathBuf,
        busy_timeout: Duration,
        checkpoint_rows: u64,
        restart_frames: i64,
    ) -> Self {
        Self {
            path,
            busy_timeout,
            checkpoint_rows: checkpoint_rows.max(1),
            restart_frames,
            state: Mutex::new(State {
                connection: None,
                rows: 0,
            }),
            checkpointer: Arc::new(Mutex::new(None)),
            pending: Mutex::new(None),
            turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Runs `write` in one `BEGIN IMMEDIATE` transaction and commits it.
    ///
    /// SQLite lets one connection write at a time. This one first tries to begin without
    /// waiting; only when the store's sqlx writer (`gate`, a pool of one connection) is in the
    /// middle of a write does it wait for that connection asynchronously, hold it, and begin
    /// again with the busy timeout. It used to hold `gate` for every write, but giving the
    /// connection back to its pool makes sqlx wake the connection's worker thread for a
    /// liveness ping: two context switches per write, a tenth of a machine account's token at
    /// one connection. The sqlx writer begins its transactions `IMMEDIATE` (`sqlite.rs`), so
    /// when this connection holds the lock SQLite's busy handler makes it wait on its own
    /// thread, never the async one.
    ///
    /// Every `checkpoint_rows` changed rows a checkpoint starts behind the writes, in two
    /// passive steps on a connection of its own. The first runs beside the writes and copies
    /// the log up to the last commit before it began, almost all of it. SQLite starts the log
    /// over only when a write finds all of it copied, which under a steady stream of writes
    /// never happens (run beside the writes alone, checkpoints let the log grow to 590 MB in a
    /// minute of refreshes); so once the log holds `restart_frames` frames, the second step
    /// holds every writer's turn and `gate` and copies the few commits made meanwhile (when
    /// there are none it neither copies nor syncs), and the next write starts the log over.
    /// Holding `gate` for the whole checkpoint, as before, made the batch that triggered it and
    /// every write queued behind it wait for the disk: a refresh's p99 at one connection was
    /// 17-20 ms that way against 10-12 ms this way (docs/performance.md, "The fourth round").
    /// Holding it for the second step of every checkpoint still made one write in 160 wait for
    /// two syncs; below `restart_frames` the log is left to grow instead ("The eleventh round").
    pub(crate) async fn write<DB, T>(
        &self,
        gate: &sqlx::Pool<DB>,
        write: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T>
    where
        DB: sqlx::Database,
    {
        let turn = self.turn.lock().await;
        let (outcome, due) = match self.commit(write, Duration::ZERO) {
            Attempt::Done(outcome, due) => (outcome, due),
            Attempt::Busy(write, _) => {
                let held = gate.acquire().await.map_err(db)?;
                let attempt = self.commit(write, self.busy_timeout);
                drop(held);
                match attempt {
                    Attempt::Done(outcome, due) => (outcome, due),
                    Attempt::Busy(_, e) => (Err(inline(e)), false),
                }
            }
        };
        drop(turn);
        if due {
            self.checkpoint_behind(gate.clone());
        }
        outcome
    }

    /// Runs `read` on the writing connection if no write or checkpoint holds it at this moment;
    /// `None` when one does or the connection is not open.
    ///
    /// SQLite keeps a page cache per connection and drops all of it when a transaction begins
    /// after another connection committed, so the in-line readers read every page they touch
    /// again after every write: six `pread`s for a machine account's look-up at one connection.
    /// The writing connection's cache survives its own commits (`docs/performance.md`, "The
    /// eleventh round"). `read` runs on the calling thread and holds the turn and the state
    /// without awaiting, so a write arriving meanwhile waits microseconds, never a scheduling.
    pub(crate) fn read_if_idle<T>(&self, read: impl FnOnce(&Connection) -> T) -> Option<T> {
        let _turn = self.turn.try_lock().ok()?;
        let state = self.state.try_lock().ok()?;
        state.connection.as_ref().map(read)
    }

    /// Holds the writers' turn, as a write does, until the guard is dropped.
    #[cfg(test)]
    pub(crate) async fn hold_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        Arc::clone(&self.turn).lock_owned().await
    }

    /// The transaction, and whether the log is due for a checkpoint; or `write` back, unrun,
    /// when another connection held the write lock for longer than `busy_timeout`.
    fn commit<T, F>(&self, write: F, busy_timeout: Duration) -> Attempt<T, F>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let mut state = lock(&self.state);
        let connection = match state.connection.take() {
            Some(connection) => connection,
            None => match open(&self.path, self.busy_timeout) {
                Ok(connection) => connection,
                Err(e) => return Attempt::Done(Err(e), false),
            },
        };
        if let Err(e) = connection.busy_timeout(busy_timeout) {
            return Attempt::Done(Err(inline(e)), false);
        }
        let before = connection.total_changes();
        match connection.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {}
            Err(e) if is_busy(&e) => {
                state.connection = Some(connection);
                return Attempt::Busy(write, e);
            }
            Err(e) => return Attempt::Done(Err(inline(e)), false),
        }
        let outcome = write(&connection).and_then(|answer| {
            connection.execute_batch("COMMIT").map_err(inline)?;
            Ok(answer)
        });
        // A connection that failed is dropped rather than reused; closing it rolls back what
        // it had not committed.
        if outcome.is_err() {
            return Attempt::Done(outcome, false);
        }
        state.rows += connection.total_changes() - before;
        state.connection = Some(connection);
        let due = state.rows >= self.checkpoint_rows;
        if due {
            state.rows = 0;
        }
        Attempt::Done(outcome, due)
    }

    /// Starts a checkpoint behind the writes (see [`InlineWriter::write`]) unless one is still
    /// going.
    fn checkpoint_behind<DB: sqlx::Database>(&self, gate: sqlx::Pool<DB>) {
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let checkpointer = Arc::clone(&self.checkpointer);
        let turn = Arc::clone(&self.turn);
        let path = self.path.clone();
        let busy_timeout = self.busy_timeout;
        let restart_frames = self.restart_frames;
        *pending = Some(tokio::spawn(async move {
            let run = || {
                let checkpointer = Arc::clone(&checkpointer);
                let path = path.clone();
                tokio::task::spawn_blocking(move || passive(&checkpointer, &path, busy_timeout))
            };
            match run().await {
                Ok(Ok(frames)) if frames < restart_frames => return,
                outcome => report(outcome),
            }
            let turn = turn.lock().await;
            match gate.acquire().await {
                Ok(held) => {
                    report(run().await);
                    drop(held);
                    drop(turn);
                }
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint could not take the writer"),
            }
        }));
    }

    /// Waits for the checkpoint in progress, if any.
    #[cfg(test)]
    async fn checkpointed(&self) {
        let task = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.await.expect("checkpoint task");
        }
    }
}

/// Logs a failed checkpoint: the rows are committed either way, and the next checkpoint copies
/// them.
fn report<T>(outcome: std::result::Result<Result<T>, tokio::task::JoinError>) {
    match outcome {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        Err(e) => tracing::warn!(error = %e, "WAL checkpoint did not finish"),
    }
}

/// A passive checkpoint (readers are not waited for, as in SQLite's automatic one) on the
/// checkpointing connection. When another connection is checkpointing (the sqlx writer's own
/// automatic checkpoint), SQLite answers busy and this one copies nothing. Answers the size of
/// the log in frames (-1 when SQLite could not tell, as when busy).
fn passive(
    checkpointer: &Mutex<Option<Connection>>,
    path: &std::path::Path,
    busy_timeout: Duration,
) -> Result<i64> {
    let mut slot = checkpointer.lock().unwrap_or_else(PoisonError::into_inner);
    let connection = match slot.take() {
        Some(connection) => connection,
        None => open(path, busy_timeout)?,
    };
    let frames = connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
        .map_err(inline)?;
    *slot = Some(connection);
    Ok(frames)
}

/// Whether another connection held the write lock (`SQLITE_BUSY` and its extended codes).
fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Only the holder of the turn takes this lock, and every update of the state is a single
    // assignment: a panic cannot leave it torn.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A writing connection with the settings of the sqlx connections (`sqlite.rs`), except that it
/// never checkpoints on commit: [`InlineWriter::write`] does, off the async thread.
fn open(path: &std::path::Path, busy_timeout: Duration) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(inline)?;
    connection.busy_timeout(busy_timeout).map_err(inline)?;
    connection
        .pragma_update(None, "synchronous", "NORMAL")
        .map_err(inline)?;
    connection
        .pragma_update(None, "foreign_keys", true)
        .map_err(inline)?;
    connection
        .pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(inline)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// Appends audit events in one multi-row statement.
pub(crate) fn insert_audits(tx: &Connection, events: &[NewAuditEvent]) -> Result<()> {
    let mut values = Vec::with_capacity(events.len() * 11);
    for event in events {
        values.extend([
            time(event.at)?,
            Value::Text(event.kind.clone()),
            uuid(event.actor_account_id),
            Value::Text(event.actor.clone()),
            uuid(event.target_account_id),
            text(&event.target),
            text(&event.institution_code),
            text(&event.ip),
            text(&event.user_agent),
            Value::Text(event.result.as_str().to_owned()),
            text(&event.reason),
        ]);
    }
    insert(tx, crate::common::sql::AUDIT_INSERT, 11, values).map_err(inline)
}

/// Inserts refresh tokens in one multi-row statement; a generation already taken is a `Conflict`.
pub(crate) fn insert_refresh_tokens(tx: &Connection, tokens: &[RefreshToken]) -> Result<()> {
    let mut values = Vec::with_capacity(tokens.len() * 8);
    for token in tokens {
        values.extend([
            uuid(Some(token.grant_id)),
            Value::Integer(token.generation),
            Value::Text(token.secret_hash.clone()),
            Value::Integer(token.institution_settings_version),
            time(token.created_at)?,
            time(token.idle_expires_at)?,
            time(token.absolute_expires_at)?,
            match token.used_at {
                Some(at) => time(at)?,
                None => Value::Null,
            },
        ]);
    }
    insert(tx, crate::common::sql::REFRESH_INSERT, 8, values).map_err(on_write("refresh_token"))
}

/// Spends every token of `ids` that is still unspent, at `at`; answers the IDs spent. One
/// statement per token: each is a look-up by the primary key, and the statement is prepared
/// once per connection.
pub(crate) fn spend_refresh_tokens(
    tx: &Connection,
    ids: &[RefreshTokenId],
    at: time::OffsetDateTime,
) -> Result<HashSet<RefreshTokenId>> {
    let mut statement = tx
        .prepare_cached(
            "UPDATE refresh_tokens SET used_at = ?1 \
             WHERE grant_id = ?2 AND generation = ?3 AND used_at IS NULL",
        )
        .map_err(inline)?;
    let at = time(at)?;
    let mut spent = HashSet::with_capacity(ids.len());
    for id in ids {
        let changed = statement
            .execute(rusqlite::params![
                at,
                id.grant_id.as_bytes().as_slice(),
                id.generation
            ])
            .map_err(inline)?;
        if changed == 1 {
            spent.insert(*id);
        }
    }
    Ok(spent)
}

fn insert(tx: &Connection, head: &str, columns: usize, values: Vec<Value>) -> rusqlite::Result<()> {
    let rows = values.len() / columns;
    if rows == 0 {
        return Ok(());
    }
    let row = format!("({})", placeholders(columns));
    let sql = format!("{head} VALUES {}", vec![row; rows].join(", "));
    tx.prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn time(at: time::OffsetDateTime) -> Result<Value> {
    Timestamp(at)
        .sqlite_text()
        .map(Value::Text)
        .map_err(|e| StoreError::Corrupt(format!("timestamp out of range: {e}")))
}

fn uuid(id: Option<uuid::Uuid>) -> Value {
    id.map_or(Value::Null, |id| Value::Blob(id.as_bytes().to_vec()))
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::Text)
}

/// rusqlite's counterpart of [`crate::common::on_write`]: a unique violation is
/// `Conflict(what)`, a foreign-key violation `NotFound`.
fn on_write(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    use rusqlite::ffi;
    move |err| match err.sqlite_error().map(|e| e.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Conflict(what)
        }
        Some(ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => StoreError::NotFound,
        _ => StoreError::Inline(err),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A database file in WAL mode with one table, the writer of `checkpoint_rows` and
    /// `restart_frames`, and the one-connection pool it takes turns with.
    pub(crate) async fn setup(
        dir: &std::path::Path,
        checkpoint_rows: u64,
        restart_frames: i64,
    ) -> (PathBuf, Arc<InlineWriter>, sqlx::SqlitePool) {
        let path = dir.join("t.db");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", "0");
        let gate = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("pool");
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
            .execute(&gate)
            .await
            .expect("table");
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&gate)
            .await
            .expect("checkpoint");
        let writer = Arc::new(InlineWriter::new(
            path.clone(),
            Duration::from_secs(5),
            checkpoint_rows,
            restart_frames,
        ));
        (path, writer, gate)
    }

    /// Commits row `k` with a 3,000-byte value: about four pages of log.
    pub(crate) async fn put(
        writer: &Arc<InlineWriter>,
        gate: &sqlx::SqlitePool,
        k: &str,
    ) -> Result<()> {
        writer
            .write(gate, |tx| {
                tx.execute("INSERT INTO t (k, v) VALUES (?1, zeroblob(3000))", [k])
                    .map_err(on_write("row"))?;
                Ok(())
            })
            .await
    }

    #[tokio::test]
    async fn the_log_is_copied_back_once_enough_rows_are_written() {
        let dir = tempfile::tempdir().expect("dir");
        let (path, writer, gate) = setup(dir.path(), 20, 0).await;
        let size = || std::fs::metadata(&path).expect("file").len();
        let empty = size();
        // Only a checkpoint writes the database file itself; commits append to the log.
        for k in 0..19 {
            put(&writer, &gate, &k.to_string()).await.expect("put");
        }
        writer.checkpointed().await;
        assert_eq!(size(), empty, "no checkpoint before 20 rows");
        put(&writer, &gate, "19").await.expect("put");
        writer.checkpointed().await;
        assert!(size() > empty, "the 20th row starts a checkpoint");
        let copied = size();
        for k in 20..39 {
            put(&writer, &gate, &k.to_string()).await.expect("put");
        }
        writer.checkpointed().await;
        assert_eq!(size(), copied, "the count starts over after a checkpoint");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&gate)
            .await
            .expect("count");
        assert_eq!(count, 39);
    }

    /// The largest size of the log file over 2,000 rows put one at a time, with a checkpoint
    /// every 20 rows and `restart_frames`.
    async fn largest_log(restart_frames: i64) -> u64 {
        let dir = tempfile::tempdir().expect("dir");
        let (path, writer, gate) = setup(dir.path(), 20, restart_frames).await;
        let log = path.with_extension("db-wal");
        let mut largest = 0;
        for k in 0..2_000 {
            put(&writer, &gate, &k.to_string()).await.expect("put");
            largest = largest.max(std::fs::metadata(&log).expect("log").len());
        }
        largest
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_steady_stream_of_writes_keeps_the_log_bounded() {
        // Each row writes about four pages of log. With checkpoints run beside the writes alone
        // the log never started over and grew by some 16 KB a row (13 MB over 800 rows); with
        // the catch-up that holds the writes it starts over after every checkpoint and holds
        // the rows written between two, a number that depends on how many rows the writes
        // commit while a checkpoint syncs: 1.2-4.8 MB here over 45 runs of 800 and 2,000 rows.
        let largest = largest_log(0).await;
        assert!(
            largest < 10 << 20,
            "the log grew to {largest} bytes over 2,000 rows"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_once_it_holds_restart_frames() {
        // A frame is a page of 4 KiB and its 24-byte header.
        const FRAME: u64 = 4096 + 24;
        // 2,000 rows write some 8,000 frames (33 MB); the log file keeps its largest size when
        // it starts over, so that size is how far it grew between two restarts. Starting over
        // at every checkpoint (`restart_frames` 0) kept it at 1.2-4.8 MB in the test above.
        let largest = largest_log(1_500).await;
        assert!(
            largest >= 1_500 * FRAME,
            "the log started over at {largest} bytes, before holding 1,500 frames"
        );
        assert!(
            largest < 16 << 20,
            "the log grew to {largest} bytes over 2,000 rows"
        );
    }

    #[tokio::test]
    async fn reads_run_on_the_writing_connection_only_when_it_is_idle() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, writer, gate) = setup(dir.path(), 1_000, 0).await;
        let count = |connection: &Connection| {
            connection
                .query_row("SELECT count(*) FROM t", [], |row| row.get::<_, i64>(0))
                .expect("count")
        };
        assert!(
            writer.read_if_idle(count).is_none(),
            "no connection before the first write"
        );
        put(&writer, &gate, "a").await.expect("put");
        assert_eq!(writer.read_if_idle(count), Some(1));
        // A row committed by another connection is seen: the connection's cache is dropped
        // when someone else wrote.
        sqlx::query("INSERT INTO t (k, v) VALUES ('b', x'00')")
            .execute(&gate)
            .await
            .expect("insert through the pool");
        assert_eq!(writer.read_if_idle(count), Some(2));
        // While a write (or a checkpoint's second step) holds the turn, the read is refused.
        let turn = writer.hold_turn().await;
        assert!(writer.read_if_idle(count).is_none());
        drop(turn);
        assert_eq!(writer.read_if_idle(count), Some(2));
    }

    #[tokio::test]
    async fn a_failed_write_leaves_nothing_and_the_next_one_succeeds() {
        let dir = tempfile::tempdir().expect("dir");
        let (_, writer, gate) = setup(dir.path(), 1_000, 0).await;
        put(&writer, &gate, "a").await.expect("put");
        let outcome = writer
            .write(&gate, |tx| {
                tx.execute("INSERT INTO t (k, v) VALUES ('b', x'00')", [])
                    .map_err(inline)?;
                tx.execute("INSERT INTO t (k, v) VALUES ('a', x'00')", [])
                    .map_err(on_write("row"))?;
                Ok(())
            })
            .await;
        assert!(
            matches!(outcome, Err(StoreError::Conflict("row"))),
            "{outcome:?}"
        );
        put(&writer, &gate, "c").await.expect("put after a failure");
        let keys: Vec<String> = sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&gate)
            .await
            .expect("keys");
        assert_eq!(
            keys,
            ["a", "c"],
            "the failed transaction was rolled back whole"
        );
    }
}
