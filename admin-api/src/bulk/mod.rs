//! `/institutions/{code}/bulk-registrations…` (SPEC §9, §12): upload a CSV, list the caller's
//! newest jobs, read one, download its result. One file per action; the use cases are
//! `service::bulk::BulkRegistrations`.

pub mod get;
pub mod list;
pub mod result;
pub mod upload;

use serde::{Deserialize, Serialize};
use store::{BulkJob, BulkProblem};
use utoipa::ToSchema;

use crate::wire::instant;

/// The path of one job.
#[derive(Debug, Deserialize)]
pub struct JobPath {
    pub code: String,
    pub reception_number: String,
}

/// A bulk registration job.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkJobView {
    /// `YYYYMMDDHHMMSSmmm_<submitter user ID>`, the upload time in Asia/Tokyo.
    #[schema(example = "20260401093015123_kanri01")]
    pub reception_number: String,
    /// `queued`, `running`, `done`, `done_with_duplicates`, `failed_validation`,
    /// `failed_file_structure` or `failed_system`.
    #[schema(example = "queued")]
    pub status: String,
    /// The seed's 登録状況 label, e.g. 登録待ち.
    #[schema(example = "登録待ち")]
    pub status_ja: String,
    #[schema(format = DateTime)]
    pub submitted_at: String,
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// Data rows in the file.
    pub row_count: i64,
    pub registered_count: i64,
    pub duplicate_count: i64,
    pub invalid_count: i64,
    /// Whether `result.csv` can be downloaded (done, done_with_duplicates, failed_validation).
    pub result_available: bool,
    /// Whether the initial passwords of the result were destroyed (30 days after the end).
    pub passwords_purged: bool,
    /// Why the file could not be read (failed_file_structure).
    pub errors: Vec<BulkProblemView>,
}

/// One problem of a file.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkProblemView {
    /// The line of the file (the header is line 1), when known.
    pub line: Option<u64>,
    pub field: String,
    pub rule: String,
    pub message_ja: String,
    pub message_en: String,
}

impl BulkJobView {
    pub fn new(job: &BulkJob) -> Self {
        Self {
            reception_number: job.reception_number.clone(),
            status: job.status.as_str().to_owned(),
            status_ja: job.status.label_ja().to_owned(),
            submitted_at: instant(job.submitted_at),
            started_at: job.started_at.map(instant),
            finished_at: job.finished_at.map(instant),
            row_count: job.row_count,
            registered_count: job.registered_count,
            duplicate_count: job.duplicate_count,
            invalid_count: job.invalid_count,
            result_available: job.status.has_result(),
            passwords_purged: job.passwords_purged_at.is_some(),
            errors: job.errors.iter().map(BulkProblemView::new).collect(),
        }
    }
}

impl BulkProblemView {
    fn new(p: &BulkProblem) -> Self {
        Self {
            line: p.line,
            field: p.field.clone(),
            rule: p.rule.clone(),
            message_ja: p.message_ja.clone(),
            message_en: p.message_en.clone(),
        }
    }
}
