//! Group commit of rows that are only ever inserted: audit rows and refresh tokens.
//!
//! Every token issued, sign-in and refresh appends an audit row (a refresh also inserts its
//! successor token), and the request answers only once its row is committed. Committing each
//! row in its own transaction costs a write of every touched page of the table and its indexes
//! (SQLite: WAL frames; PostgreSQL: a WAL flush) and, on SQLite, round trips to the connection's
//! worker thread, per row. Instead, rows that arrive while a batch is being written wait for the
//! next batch, and one transaction commits them all: the same durability (nobody is answered
//! before their row is committed), a fraction of the cost under load, and no delay when idle (a
//! lone row is written at once).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::{Result, StoreError};

type Waiter = oneshot::Sender<Result<()>>;

pub(crate) struct GroupCommit<T> {
    pending: Mutex<Vec<(T, Waiter)>>,
    /// Held while a batch is written; whoever takes it next writes everything pending.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl<T> Default for GroupCommit<T> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            writing: Arc::default(),
        }
    }
}

impl<T: Clone + Send + 'static> GroupCommit<T> {
    /// Queues `row` and returns once the batch holding it is committed. `write` commits the rows
    /// it is given in one transaction. A batch that fails is written again row by row, so a bad
    /// row fails only its own request, with its own error.
    pub(crate) async fn append<F, Fut>(&self, row: T, write: F) -> Result<()>
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
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
        let batch = std::mem::take(&mut *self.pending());
        if batch.is_empty() {
            drop(guard);
        } else {
            // A task of its own: a request cancelled now (its client went away) must not drop
            // the rows of the others in its batch.
            tokio::spawn(async move {
                let _guard = guard;
                let (rows, mut waiters): (Vec<T>, Vec<Waiter>) = batch.into_iter().unzip();
                if rows.len() == 1 {
                    let outcome = write(rows).await;
                    if let Some(waiter) = waiters.pop() {
                        let _ = waiter.send(outcome);
                    }
                    return;
                }
                if write(rows.clone()).await.is_ok() {
                    for waiter in waiters {
                        let _ = waiter.send(Ok(()));
                    }
                    return;
                }
                for (row, waiter) in rows.into_iter().zip(waiters) {
                    let _ = waiter.send(write(vec![row]).await);
                }
            });
        }
        settle(receipt.await)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(T, Waiter)>> {
        // A panic while holding this lock cannot leave the vector half-updated (push and take
        // are single operations), so a poisoned lock is still sound.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn settle(outcome: std::result::Result<Result<()>, oneshot::error::RecvError>) -> Result<()> {
    // The writing task was dropped (the runtime is shutting down): the row is not known to be
    // committed.
    outcome.unwrap_or_else(|_| Err(StoreError::Batch("the batch writer stopped".to_owned())))
}
