//! Group commit of small writes: audit rows, refresh tokens, and the rotation of a refresh token
//! (spend it, insert its successor, audit).
//!
//! Every token issued, sign-in and refresh appends an audit row (a refresh also spends its token
//! and inserts the successor), and the request answers only once its write is committed.
//! Committing each row in its own transaction costs a write of every touched page of the table
//! and its indexes (SQLite: WAL frames; PostgreSQL: a WAL flush) and, on SQLite, round trips to
//! the connection's worker thread, per row. Instead, rows that arrive while a batch is being
//! written wait for the next batch, and one transaction commits them all: the same durability
//! (nobody is answered before their row is committed), a fraction of the cost under load, and no
//! delay when idle (a lone row is written at once).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// Rows per batch: each kind of row fits one multi-row statement (see `common::BATCH_ROWS`).
const MAX_BATCH: usize = crate::common::BATCH_ROWS;

type Waiter<R> = oneshot::Sender<Result<R>>;

/// Batches of `T` committed together; each row's write answers an `R` (whether a conditional
/// write took effect, say).
pub(crate) struct GroupCommit<T, R = ()> {
    pending: Mutex<Vec<(T, Waiter<R>)>>,
    /// Held while a batch is written; whoever takes it next writes everything pending.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            writing: Arc::default(),
        }
    }
}

impl<T: Clone + Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Queues `row` and returns its answer once the batch holding it is committed. `write`
    /// commits the rows it is given in one transaction and answers one `R` per row, in order. A
    /// batch that fails is written again row by row, so a bad row fails only its own request,
    /// with its own error.
    pub(crate) async fn append<F, Fut>(&self, row: T, write: F) -> Result<R>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<R>>> + Send + 'static,
    {
        let (done, mut receipt) = oneshot::channel();
        self.pending().push((row, done));
        let lock = self.writing.clone().lock_owned();
        tokio::pin!(lock);
        // Another writer may take this row while we wait for the lock.
        let guard = tokio::select! {
            biased;
            outcome = &mut receipt => return settle(outcome),
            guard = &mut lock => guard,
        };
        // Let the requests that are ready to run reach this queue too, so that they share this
        // batch instead of each waiting for one of their own. When nothing else is ready this
        // returns at once.
        tokio::task::yield_now().await;
        let batch = {
            let mut pending = self.pending();
            let n = pending.len().min(MAX_BATCH);
            pending.drain(..n).collect::<Vec<_>>()
        };
        if batch.is_empty() {
            drop(guard);
        } else {
            // A task of its own: a request cancelled now (its client went away) must not drop
            // the rows of the others in its batch.
            tokio::spawn(async move {
                let _guard = guard;
                let (rows, mut waiters): (Vec<T>, Vec<Waiter<R>>) = batch.into_iter().unzip();
                if rows.len() == 1 {
                    let outcome = one(write(rows).await);
                    if let Some(waiter) = waiters.pop() {
                        let _ = waiter.send(outcome);
                    }
                    return;
                }
                if let Ok(answers) = write(rows.clone()).await
                    && answers.len() == waiters.len()
                {
                    for (answer, waiter) in answers.into_iter().zip(waiters) {
                        let _ = waiter.send(Ok(answer));
                    }
                    return;
                }
                for (row, waiter) in rows.into_iter().zip(waiters) {
                    let _ = waiter.send(one(write(vec![row]).await));
                }
            });
        }
        settle(receipt.await)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(T, Waiter<R>)>> {
        // A panic while holding this lock cannot leave the vector half-updated (push and take
        // are single operations), so a poisoned lock is still sound.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The answer of a batch of one row.
fn one<R>(answers: Result<Vec<R>>) -> Result<R> {
    answers?
        .pop()
        .ok_or_else(|| StoreError::Batch("the batch writer answered nothing".to_owned()))
}

fn settle<R>(outcome: std::result::Result<Result<R>, oneshot::error::RecvError>) -> Result<R> {
    // The writing task was dropped (the runtime is shutting down): the row is not known to be
    // committed.
    outcome.unwrap_or_else(|_| Err(StoreError::Batch("the batch writer stopped".to_owned())))
}
