//! The PostgreSQL backend, for deployments with more than one server.
//!
//! Only what differs from SQLite lives here: connecting, the migration folder, opening a write
//! transaction, the encoding of timestamps (native `TIMESTAMPTZ`) and the index prefilter of
//! partial name searches. The `Store` methods themselves come from
//! [`crate::common::impl_store!`].

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgPoolOptions, PgTypeInfo};
use sqlx::{Database, Encode, PgPool, Postgres, QueryBuilder, Transaction, Type};
use time::OffsetDateTime;

use crate::client_cache::ClientCache;
use crate::common::{Timestamp, db, impl_store, needle_grams};
use crate::group_commit::GroupCommit;
use crate::inline::InlineReader;
use crate::inline_writer::InlineWriter;
use crate::{NewAuditEvent, RefreshToken, Rotation};

const BACKEND: &str = "postgres";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself (the SQLite backend keeps a
    /// separate single writer connection).
    writer: PgPool,
    audit: GroupCommit<NewAuditEvent>,
    refresh_tokens: GroupCommit<RefreshToken>,
    rotations: GroupCommit<Rotation, bool>,
    clients: ClientCache,
}

impl PostgresStore {
    /// Connects to a `postgres://…` URL. Does not migrate; call [`crate::Store::migrate`].
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        // An unreachable server fails startup (and readiness) within seconds instead of the
        // default half minute.
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(db)?;
        Ok(Self {
            writer: pool.clone(),
            pool,
            audit: GroupCommit::default(),
            refresh_tokens: GroupCommit::default(),
            rotations: GroupCommit::default(),
            clients: ClientCache::default(),
        })
    }

    /// PostgreSQL's default READ COMMITTED transaction is enough: every read-modify-write is a
    /// single statement.
    async fn begin_write(&self) -> crate::Result<Transaction<'static, Postgres>> {
        Self::begin_on(&self.writer).await
    }

    /// PostgreSQL answers every read over the network through sqlx.
    fn inline(&self) -> Option<&InlineReader> {
        None
    }

    fn inline_writer(&self) -> Option<&std::sync::Arc<InlineWriter>> {
        None
    }

    async fn begin_on(writer: &PgPool) -> crate::Result<Transaction<'static, Postgres>> {
        writer.begin().await.map_err(db)
    }
}

/// Narrows a partial search on `column` with its GIN index of character grams (migration 0003);
/// the LIKE that follows stays the exact check. An empty needle adds nothing.
pub(crate) fn push_substring_prefilter(
    query: &mut QueryBuilder<Postgres>,
    column: &'static str,
    needle: &str,
) {
    if needle.is_empty() {
        return;
    }
    query
        .push(" AND sekimori_grams(")
        .push(column)
        .push(") @> ")
        .push_bind(needle_grams(needle))
        .push("::text[]");
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        <OffsetDateTime as Type<Postgres>>::type_info()
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(
        &self,
        buf: &mut <Postgres as Database>::ArgumentBuffer,
    ) -> Result<IsNull, BoxDynError> {
        Encode::<Postgres>::encode(self.normalized(), buf)
    }
}

impl_store!(PostgresStore, sqlx::Postgres);
