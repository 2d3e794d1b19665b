//! Group commit of audit rows.
//!
//! Every token issued, sign-in and refresh appends an audit row, and the request answers only
//! once its row is committed. Committing each row in its own transaction costs a write of every
//! touched page of the table and its indexes (SQLite: WAL frames; PostgreSQL: a WAL flush) per
//! row. Instead, rows that arrive while a batch is being written wait for the next batch, and
//! one transaction commits them all: the same durability (nobody is answered before their row
//! is committed), a fraction of the I/O under load, and no delay when idle (a lone row is
//! written at once).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::{NewAuditEvent, Result, StoreError};

type Waiter = oneshot::Sender<std::result::Result<(), String>>;

#[derive(Default)]
pub(crate) struct AuditQueue {
    pending: Mutex<Vec<(NewAuditEvent, Waiter)>>,
    /// Held while a batch is written; whoever takes it next writes everything pending.
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl AuditQueue {
    /// Appends `event` and returns once the batch holding it is committed. `write` commits one
    /// batch in one transaction.
    pub(crate) async fn append<F, Fut>(&self, event: NewAuditEvent, write: F) -> Result<()>
    where
        F: FnOnce(Vec<NewAuditEvent>) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let (done, mut receipt) = oneshot::channel();
        self.pending().push((event, done));
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
            let (events, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let write = write(events);
            // A task of its own: a request cancelled now (its client went away) must not drop
            // the rows of the others in its batch.
            tokio::spawn(async move {
                let outcome = write.await.map_err(|e| e.to_string());
                drop(guard);
                for waiter in waiters {
                    let _ = waiter.send(outcome.clone());
                }
            });
        }
        settle(receipt.await)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(NewAuditEvent, Waiter)>> {
        // A panic while holding this lock cannot leave the vector half-updated (push and take
        // are single operations), so a poisoned lock is still sound.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn settle(
    outcome: std::result::Result<std::result::Result<(), String>, oneshot::error::RecvError>,
) -> Result<()> {
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(StoreError::AuditBatch(message)),
        // The writing task was dropped (the runtime is shutting down): the row is not known to
        // be committed.
        Err(_) => Err(StoreError::AuditBatch(
            "the audit writer stopped".to_owned(),
        )),
    }
}
