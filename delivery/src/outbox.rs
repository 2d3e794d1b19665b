//! The development outbox (SPEC §11, §12): instead of sending, append one JSON line per code to
//! a file that developers and end-to-end tests read.
//!
//! Line format, fixed by SPEC §12:
//! `{"channel": "email"|"sms"|"voice", "to": "...", "code": "123456", "text": "...", "at": "RFC 3339"}`.
//! `text` is what the real driver would send (the e-mail as subject, blank line, body; the SMS;
//! the voice SSML). Lines from concurrent deliveries never interleave: one lock per driver, one
//! `write` per line on a file opened for appending. The info log line names the channel, the
//! destination and the file, never the code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Deliver, DeliveryError, Message, Receipt, render};

const NAME: &str = "outbox";

/// One line of the outbox, as written and as read back by tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxLine {
    pub channel: String,
    pub to: String,
    pub code: String,
    pub text: String,
    pub at: String,
}

/// Appends each code to a file; development and tests only ([`crate::Channels::build`] refuses it
/// in production).
#[derive(Debug, Clone)]
pub struct OutboxDriver {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl OutboxDriver {
    /// The file and its parent directories are created at the first delivery.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OutboxDriver {
            path: path.into(),
            lock: Arc::new(Mutex::new(())),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads every line of an outbox file (missing file: none). For tests and tooling.
    pub fn read_lines(path: &Path) -> std::io::Result<Vec<OutboxLine>> {
        let content = match std::fs::read_to_string(path) {
            Ok(content) => content,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        content
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
            .collect()
    }
}

fn append(path: &Path, lock: &Mutex<()>, line: &[u8]) -> std::io::Result<()> {
    // A poisoned lock only means another writer panicked; the file is still usable.
    let _guard = lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(line)
}

#[async_trait]
impl Deliver for OutboxDriver {
    async fn deliver(&self, msg: &Message) -> Result<Receipt, DeliveryError> {
        let to = msg.checked_destination(NAME)?;
        let at = OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .map_err(|_| DeliveryError::unavailable(NAME, "could not format the time"))?;
        let entry = OutboxLine {
            channel: msg.method.as_str().to_owned(),
            to: to.clone(),
            code: msg.code.clone(),
            text: render::text(msg),
            at,
        };
        let mut line = serde_json::to_vec(&entry)
            .map_err(|_| DeliveryError::unavailable(NAME, "could not encode the line"))?;
        line.push(b'\n');

        let path = self.path.clone();
        let lock = Arc::clone(&self.lock);
        let written = tokio::task::spawn_blocking(move || append(&path, &lock, &line)).await;
        match written {
            Ok(Ok(())) => {
                tracing::info!(
                    channel = msg.method.as_str(),
                    to = %to,
                    outbox = %self.path.display(),
                    "second-factor code written to the development outbox"
                );
                Ok(Receipt::new(NAME, None))
            }
            Ok(Err(e)) => Err(DeliveryError::unavailable(
                NAME,
                format!("cannot append to the outbox file: {}", e.kind()),
            )),
            Err(_) => Err(DeliveryError::unavailable(NAME, "the writer task failed")),
        }
    }

    fn name(&self) -> &'static str {
        NAME
    }
}
