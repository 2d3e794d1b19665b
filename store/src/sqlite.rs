//! The SQLite backend: one database file in WAL mode, for single-server deployments.
//!
//! Only what differs from PostgreSQL lives here: connection options, the migration folder,
//! `BEGIN IMMEDIATE` for write transactions, the text encoding of timestamps and the in-line
//! reader (`inline.rs`). The `Store`
//! methods themselves come from [`crate::common::impl_store!`].

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous, SqliteTypeInfo,
};
use sqlx::{Database, Encode, Sqlite, SqlitePool, Transaction, Type};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::StoreError;
use crate::client_cache::ClientCache;
use crate::common::{Timestamp, db, impl_store};
use crate::group_commit::GroupCommit;
use crate::inline::InlineReader;
use crate::inline_writer::InlineWriter;
use crate::{NewAuditEvent, RefreshToken, Rotation};

const BACKEND: &str = "sqlite";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");

/// The WAL size (in pages) at which the committing writer checkpoints: copies the log back into
/// the database file and syncs it, which makes that commit, and the requests waiting on it,
/// take milliseconds. SQLite's default of 1,000 pages made that the whole 99th-percentile
/// latency of the writing token endpoints at one connection (a refresh commit writes about ten
/// pages); a quarter of it makes each checkpoint a quarter as long for a few percent of
/// throughput (`docs/performance.md`, "The second round"). A background checkpoint thread was
/// measured too and was worse: its syncs still stalled the writer's appends to the log.
const CHECKPOINT_PAGES: u32 = 250;

/// The rows changed by the in-line writer (`inline_writer.rs`) after which it checkpoints. A row
/// of the hot tables writes one to three pages of log (its table and index leaves; rows
/// committed together share pages), so this is about [`CHECKPOINT_PAGES`] pages under load.
/// Measured at 80, 160, 300 and 1,000 rows: 160 gave the most refreshes at one and at sixteen
/// connections with the lowest 99th percentile (`docs/performance.md`, "The third round").
/// Measured again with the checkpoints behind the writes ("The fourth round"): 1,000 and 4,000
/// rows raised a refresh's p99 at one connection to 23 and 56 ms, against 10-12 ms at 160.
const CHECKPOINT_ROWS: u64 = 160;

/// The log size (in frames, one page each) from which the in-line writer's checkpoints hold the
/// writes to start the log over (`inline_writer.rs`); below it the log grows while every
/// checkpoint copies it back beside the writes. 4,000 frames of 4 KiB pages is about 16 MB,
/// within the first 4,062 frames SQLite's log index finds a page in with one hash look-up.
/// Holding the writes at every checkpoint made one write in 160 wait for two syncs, the 99th
/// percentile of the writing token endpoints at one connection (`docs/performance.md`, "The
/// eleventh round").
const RESTART_FRAMES: i64 = 4_000;

/// How long a connection waits for another writer before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads go through a pool of connections; every write goes through one dedicated connection.
///
/// SQLite allows one writer at a time. With several writing connections, a writer that finds
/// the database locked sleeps in SQLite's busy handler (in steps of up to 100 ms), which turns a
/// burst of writes into second-long tail latencies. One writer connection makes writes queue in
/// the async pool instead, fairly and without sleeping; WAL lets reads run beside it.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    audit: GroupCommit<NewAuditEvent>,
    refresh_tokens: GroupCommit<RefreshToken>,
    rotations: GroupCommit<Rotation, bool>,
    clients: ClientCache,
    /// The hot single-row reads, run in-line (not for an in-memory database, which only the
    /// connection that made it can see).
    inline: Option<InlineReader>,
    /// The grouped writes, run in-line (not for an in-memory database either).
    inline_writer: Option<Arc<InlineWriter>>,
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directory) the database file named by a
    /// `sqlite://PATH` URL. Does not migrate; call [`crate::Store::migrate`].
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("wal_autocheckpoint", CHECKPOINT_PAGES.to_string());
        let file = (!is_in_memory(url)).then(|| options.get_filename().to_path_buf());
        if let Some(file) = &file
            && let Some(parent) = file.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            // A directory made here holds password hashes: owner-only, like the KEK file.
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        // A connection to a local file cannot be lost the way a network connection can: the
        // liveness ping sqlx sends before handing out a pooled connection would only add a round
        // trip to the connection's worker thread to every query.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        let inline_writer = file.clone().map(|file| {
            Arc::new(InlineWriter::new(
                file,
                BUSY_TIMEOUT,
                CHECKPOINT_ROWS,
                RESTART_FRAMES,
            ))
        });
        let inline = file.map(|file| {
            InlineReader::new(
                file,
                BUSY_TIMEOUT,
                max_connections as usize,
                inline_writer.clone(),
            )
        });
        Ok(Self {
            pool,
            writer,
            audit: GroupCommit::default(),
            refresh_tokens: GroupCommit::default(),
            rotations: GroupCommit::default(),
            clients: ClientCache::default(),
            inline_writer,
            inline,
        })
    }

    fn inline(&self) -> Option<&InlineReader> {
        self.inline.as_ref()
    }

    fn inline_writer(&self) -> Option<&Arc<InlineWriter>> {
        self.inline_writer.as_ref()
    }

    /// Write transactions take the write lock up front. A deferred transaction that reads and
    /// then writes must upgrade its lock, and that upgrade fails with `SQLITE_BUSY` at once
    /// (the busy timeout does not apply) when another connection wrote in between.
    async fn begin_write(&self) -> crate::Result<Transaction<'static, Sqlite>> {
        Self::begin_on(&self.writer).await
    }

    async fn begin_on(writer: &SqlitePool) -> crate::Result<Transaction<'static, Sqlite>> {
        writer.begin_with("BEGIN IMMEDIATE").await.map_err(db)
    }
}

fn is_in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// SQLite has no gram index: the LIKE alone filters an institution's rows.
pub(crate) fn push_substring_prefilter(
    _query: &mut sqlx::QueryBuilder<Sqlite>,
    _column: &'static str,
    _needle: &str,
) {
}

impl Type<Sqlite> for Timestamp {
    fn type_info() -> SqliteTypeInfo {
        <OffsetDateTime as Type<Sqlite>>::type_info()
    }
}

impl Encode<'_, Sqlite> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Sqlite as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Sqlite>::encode(self.sqlite_text()?, buf)
    }
}

impl Timestamp {
    /// The fixed-width text SQLite stores (see [`Timestamp`]), for sqlx and rusqlite alike.
    pub(crate) fn sqlite_text(self) -> Result<String, time::error::Format> {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        self.normalized().format(&format)
    }
}

impl_store!(SqliteStore, sqlx::Sqlite);
