//! Bulk registration (SPEC §9, §12, seed 002 §2-4/§2-5): upload a CSV, run it as a background
//! job, read its status and its result file.
//!
//! The upload is read at once: bytes are decoded (UTF-8 with or without BOM, else CP932 as Excel
//! writes "Shift_JIS") and the CSV's header and shape are checked. A file that cannot be read is
//! recorded as `failed_file_structure`; a readable one is queued with its bytes.
//!
//! A runner on every node ([`BulkRegistrations::run`]) claims queued jobs, and jobs whose lease
//! expired because their node died, and runs each from its stored file: every row is validated
//! with the rules of the single create (`accounts::check_new_account`) and the permission
//! matrix, user IDs already used in the institution (deleted accounts included) become
//! duplicates, then the initial passwords are generated and hashed in memory (one worker per
//! hashing permit, so sign-ins keep their turn), and finally the accounts, their audit events,
//! the sealed result and the final status are written by ONE store call in one transaction.
//! Whatever moment a node dies, the database holds either the whole outcome or none of it, and
//! a later claim re-runs the job (up to `max_attempts` starts, then `failed_system`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use policies::bulk::{self, Column, Header, JobStatus, MethodCode, RowCheck, RowResult};
use policies::permissions::{self, Action};
use policies::{AccountType, InstitutionCode, Violation};
use store::{
    AuditResult, BulkCompletion, BulkJob, BulkProblem, BulkResultRow, ClaimedBulkJob, NewAccount,
    NewAuditEvent, NewBulkJob, SecondFactorMethod, StoreError,
};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::accounts::{
    Admin, AdminActor, NewAccountInput, SecondFactorInput, Target, check_new_account,
};
use crate::provisioning::initial_password_context;
use crate::{Refusal, ServiceError};

/// How jobs run on this node (`[bulk]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkSettings {
    /// Whether this node runs jobs at all (nodes that only serve sign-ins may leave it to others).
    pub worker: bool,
    /// How long a claim holds a job without renewal; a dead node's job is taken over after it.
    pub lease: Duration,
    /// How often an idle runner looks for claimable jobs and purges old passwords.
    pub poll: StdDuration,
    /// Starts of one job before it ends `failed_system`.
    pub max_attempts: i64,
}

impl Default for BulkSettings {
    fn default() -> Self {
        Self {
            worker: true,
            lease: Duration::seconds(60),
            poll: StdDuration::from_secs(5),
            max_attempts: 3,
        }
    }
}

/// The bulk registration use cases and this node's runner.
#[derive(Clone)]
pub struct BulkRegistrations {
    admin: Admin,
    settings: BulkSettings,
    /// This process's lease owner name, unique per start.
    node: Arc<str>,
    wake: Arc<Notify>,
}

/// A readable upload: its header and its data rows with their file lines (header = 1).
#[derive(Debug)]
struct ParsedFile {
    header: Header,
    rows: Vec<(u64, Vec<String>)>,
}

impl BulkRegistrations {
    pub fn new(admin: Admin, settings: BulkSettings) -> Self {
        Self {
            admin,
            settings,
            node: format!("node-{}", Uuid::new_v4().simple()).into(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// Receives a file (SPEC §9 upload): refuses callers who may register no type here and a
    /// second job while one is queued or running (Conflict `bulk_registration`), then records
    /// the job — queued, or `failed_file_structure` at once when the file cannot be read — and
    /// wakes the runner.
    pub async fn upload(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        file: Vec<u8>,
    ) -> Result<BulkJob, ServiceError> {
        self.may_bulk_register(actor, institution, "bulk_registration.upload")
            .await?;
        let store = &self.admin.store;
        if store.active_bulk_job(institution).await?.is_some() {
            return Err(ServiceError::Conflict("bulk_registration"));
        }
        let now = self.admin.clock.now();
        let reception_number = bulk::reception_number(now, &actor.account.user_id);
        let (status, finished_at, row_count, errors) = match read_file(&file) {
            Ok(parsed) => (JobStatus::Queued, None, parsed.rows.len(), Vec::new()),
            Err(problems) => (JobStatus::FailedFileStructure, Some(now), 0, problems),
        };
        let job = NewBulkJob {
            institution_code: institution.clone(),
            reception_number: reception_number.clone(),
            submitter_id: actor.account.id,
            submitter_type: actor.account.account_type,
            status,
            submitted_at: now,
            finished_at,
            row_count: i64::try_from(row_count).unwrap_or(i64::MAX),
            // A file that cannot be run is not kept.
            file: if status == JobStatus::Queued {
                file
            } else {
                Vec::new()
            },
            errors,
        };
        let target = Target::institution(institution);
        let mut audit = self.admin.audit(
            actor,
            "bulk_registration.upload",
            &target,
            None,
            Some(format!("{reception_number} {}", status.as_str())),
        );
        if status != JobStatus::Queued {
            audit.result = AuditResult::Failure;
        }
        let created = store.create_bulk_job(job, audit).await?;
        self.wake.notify_one();
        Ok(created)
    }

    /// The caller's newest three jobs in the institution (seed 002 §2-5).
    pub async fn list(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
    ) -> Result<Vec<BulkJob>, ServiceError> {
        self.may_bulk_register(actor, institution, "bulk_registration.list")
            .await?;
        Ok(self
            .admin
            .store
            .list_bulk_jobs(institution, actor.account.id, 3)
            .await?)
    }

    /// One job of the caller's.
    pub async fn get(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        reception_number: &str,
    ) -> Result<BulkJob, ServiceError> {
        self.may_bulk_register(actor, institution, "bulk_registration.get")
            .await?;
        self.own_job(
            actor,
            institution,
            reception_number,
            "bulk_registration.get",
        )
        .await
    }

    /// The result file of one of the caller's finished jobs, as CSV text (without BOM): each
    /// row as uploaded, its `result`, its `errors` (Japanese, or English when `english`) and,
    /// for registered rows, the `initial_password` until the passwords are purged (30 days
    /// after the job ended). Conflict `bulk_result` while the job has no result.
    pub async fn result_csv(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        reception_number: &str,
        english: bool,
    ) -> Result<String, ServiceError> {
        self.may_bulk_register(actor, institution, "bulk_registration.result")
            .await?;
        let job = self
            .own_job(
                actor,
                institution,
                reception_number,
                "bulk_registration.result",
            )
            .await?;
        if !job.status.has_result() {
            return Err(ServiceError::Conflict("bulk_result"));
        }
        let store = &self.admin.store;
        let now = self.admin.clock.now();
        if job
            .finished_at
            .is_some_and(|at| bulk::passwords_expired(at, now))
        {
            store
                .purge_bulk_passwords(now - bulk::PASSWORD_RETENTION, now)
                .await?;
        }
        let result = store
            .bulk_result(institution, reception_number)
            .await?
            .ok_or(ServiceError::Conflict("bulk_result"))?;
        let passwords: Vec<Option<String>> = match &result.passwords_sealed {
            Some(sealed) => {
                let plain = self
                    .admin
                    .sealer
                    .open(sealed, &result_context(institution, reception_number))
                    .map_err(|e| ServiceError::Internal(format!("bulk result passwords: {e}")))?;
                serde_json::from_slice(&plain)
                    .map_err(|e| ServiceError::Internal(format!("bulk result passwords: {e}")))?
            }
            None => Vec::new(),
        };
        let audit = self.admin.audit(
            actor,
            "bulk_registration.result",
            &Target::institution(institution),
            None,
            Some(reception_number.to_owned()),
        );
        store.append_audit(audit).await?;
        write_result(&result.rows, &passwords, english)
    }

    /// Refuses (audited) a caller who may bulk-register no account type in this institution.
    async fn may_bulk_register(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        kind: &str,
    ) -> Result<(), ServiceError> {
        let allowed = AccountType::ALL.into_iter().any(|t| {
            permissions::can_in_institution(
                actor.account.account_type,
                &actor.account.institution_code,
                Action::BulkRegister,
                t,
                institution,
            )
        });
        if allowed {
            Ok(())
        } else {
            Err(self
                .admin
                .refuse(
                    actor,
                    kind,
                    &Target::institution(institution),
                    Refusal::NotPermitted,
                )
                .await)
        }
    }

    async fn own_job(
        &self,
        actor: &AdminActor,
        institution: &InstitutionCode,
        reception_number: &str,
        kind: &str,
    ) -> Result<BulkJob, ServiceError> {
        if !bulk::is_reception_number(reception_number) {
            return Err(ServiceError::NotFound);
        }
        let job = self
            .admin
            .store
            .get_bulk_job(institution, reception_number)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if job.submitter_id != actor.account.id {
            return Err(self
                .admin
                .refuse(
                    actor,
                    kind,
                    &Target::institution(institution),
                    Refusal::NotPermitted,
                )
                .await);
        }
        Ok(job)
    }

    /// This node's runner: claims and runs jobs one at a time, purges passwords older than 30
    /// days, and sleeps until an upload wakes it or the poll interval passes. Runs until the
    /// task is dropped.
    pub async fn run(self) {
        loop {
            if self.settings.worker {
                loop {
                    match self.run_one().await {
                        Ok(true) => continue,
                        Ok(false) => break,
                        Err(e) => {
                            tracing::error!(error = %e, "bulk registration runner");
                            break;
                        }
                    }
                }
            }
            let now = self.admin.clock.now();
            match self
                .admin
                .store
                .purge_bulk_passwords(now - bulk::PASSWORD_RETENTION, now)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "purged the initial passwords of bulk results"),
                Err(e) => tracing::warn!(error = %e, "purging bulk result passwords failed"),
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// Claims one job and runs it to its end. False when there was nothing to claim.
    pub async fn run_one(&self) -> Result<bool, ServiceError> {
        let now = self.admin.clock.now();
        let Some(claimed) = self
            .admin
            .store
            .claim_bulk_job(&self.node, now, now + self.settings.lease)
            .await?
        else {
            return Ok(false);
        };
        let job = claimed.job.clone();
        tracing::info!(
            reception_number = %job.reception_number,
            attempt = job.attempts,
            rows = job.row_count,
            "bulk registration started"
        );
        let renewer = tokio::spawn(renew_lease(
            self.admin.clone(),
            job.institution_code.clone(),
            job.reception_number.clone(),
            self.node.clone(),
            self.settings.lease,
        ));
        let outcome = self.execute(claimed).await;
        renewer.abort();
        match outcome {
            Ok(status) => {
                tracing::info!(
                    reception_number = %job.reception_number,
                    status = status.as_str(),
                    "bulk registration finished"
                );
            }
            // The job stays running under a lease that will lapse; the next claim re-runs it.
            Err(e) => tracing::error!(
                reception_number = %job.reception_number,
                error = %e,
                "bulk registration attempt failed"
            ),
        }
        Ok(true)
    }

    async fn execute(&self, claimed: ClaimedBulkJob) -> Result<JobStatus, ServiceError> {
        let job = &claimed.job;
        if job.attempts > self.settings.max_attempts {
            let completion = self.completion(job, JobStatus::FailedSystem, Vec::new());
            self.complete(job, completion).await?;
            return Ok(JobStatus::FailedSystem);
        }
        // A user ID taken between validation and commit (a single create racing the job)
        // rolls the transaction back; validating again turns it into a duplicate.
        let mut races = 0;
        loop {
            let completion = match read_file(&claimed.file) {
                Err(problems) => {
                    let mut c = self.completion(job, JobStatus::FailedFileStructure, Vec::new());
                    c.errors = problems;
                    c
                }
                Ok(parsed) => self.prepare(job, parsed).await?,
            };
            let status = completion.status;
            match self.complete(job, completion).await {
                Err(ServiceError::Conflict("account")) if races < 3 => races += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(status),
            }
        }
    }

    async fn complete(
        &self,
        job: &BulkJob,
        completion: BulkCompletion,
    ) -> Result<(), ServiceError> {
        self.admin
            .store
            .complete_bulk_job(
                &job.institution_code,
                &job.reception_number,
                &self.node,
                completion,
            )
            .await
            .map_err(|e| match e {
                StoreError::NotFound => {
                    ServiceError::Internal("the job's lease passed to another node".into())
                }
                other => other.into(),
            })
    }

    /// A completion without accounts, with the outcome's audit event.
    fn completion(
        &self,
        job: &BulkJob,
        status: JobStatus,
        result_rows: Vec<BulkResultRow>,
    ) -> BulkCompletion {
        let count = |r: RowResult| {
            let n = result_rows
                .iter()
                .filter(|row| row.result == r.as_str())
                .count();
            i64::try_from(n).unwrap_or(i64::MAX)
        };
        let now = self.admin.clock.now();
        let audit = outcome_audit(job, status, now, &result_rows);
        BulkCompletion {
            status,
            finished_at: now,
            row_count: i64::try_from(result_rows.len()).unwrap_or(i64::MAX),
            registered_count: count(RowResult::Registered),
            duplicate_count: count(RowResult::Duplicate),
            invalid_count: count(RowResult::Invalid),
            errors: Vec::new(),
            result_rows,
            passwords_sealed: None,
            accounts: Vec::new(),
            audit: vec![audit],
        }
    }

    /// Validates every row, decides the outcome and, when accounts are to be registered,
    /// generates, hashes and seals their initial passwords.
    async fn prepare(
        &self,
        job: &BulkJob,
        parsed: ParsedFile,
    ) -> Result<BulkCompletion, ServiceError> {
        let institution = &job.institution_code;
        let mut checked = Vec::with_capacity(parsed.rows.len());
        let mut problems: Vec<Vec<BulkProblem>> = Vec::with_capacity(parsed.rows.len());
        for (line, cells) in &parsed.rows {
            match check_row(job, &parsed.header, *line, cells) {
                Ok(account) => {
                    checked.push(Some(account));
                    problems.push(Vec::new());
                }
                Err(found) => {
                    checked.push(None);
                    problems.push(found);
                }
            }
        }
        let user_ids: Vec<&str> = parsed
            .rows
            .iter()
            .map(|(_, cells)| parsed.header.cell(cells, Column::UserId))
            .collect();
        for (i, first) in bulk::repeated_ids(&user_ids).into_iter().enumerate() {
            if let Some(first) = first {
                let line = parsed.rows[i].0;
                let first_line = usize::try_from(parsed.rows[first].0).unwrap_or(usize::MAX);
                problems[i].push(problem(
                    Some(line),
                    Column::UserId.as_str(),
                    &bulk::repeated_id_violation(first_line),
                ));
                checked[i] = None;
            }
        }
        let candidates: Vec<String> = checked
            .iter()
            .flatten()
            .map(|a| a.user_id.as_str().to_owned())
            .collect();
        let taken: std::collections::HashSet<String> = self
            .admin
            .store
            .taken_user_ids(institution, &candidates)
            .await?
            .into_iter()
            .collect();
        let checks: Vec<RowCheck> = checked
            .iter()
            .map(|a| match a {
                None => RowCheck::Invalid,
                Some(a) if taken.contains(a.user_id.as_str()) => RowCheck::Taken,
                Some(_) => RowCheck::Valid,
            })
            .collect();
        let (status, results) = bulk::outcome(&checks);
        let mut rows: Vec<BulkResultRow> = parsed
            .rows
            .iter()
            .zip(&results)
            .zip(problems)
            .map(|(((line, cells), result), errors)| BulkResultRow {
                line: *line,
                cells: Column::ALL
                    .into_iter()
                    .map(|c| parsed.header.cell(cells, c).to_owned())
                    .collect(),
                result: result.as_str().to_owned(),
                errors,
            })
            .collect();
        if status == JobStatus::FailedValidation {
            return Ok(self.completion(job, status, rows));
        }

        // Registration: passwords by the policy, hashed on the bounded pool, sealed per account
        // (for the ID/password notice) and once more, all together, for the result file.
        let now = self.admin.clock.now();
        let mut to_register: Vec<(usize, crate::accounts::CheckedAccount, String)> = Vec::new();
        {
            let mut rng = rand::rng();
            for (i, (account, result)) in checked.into_iter().zip(&results).enumerate() {
                if *result == RowResult::Registered
                    && let Some(account) = account
                {
                    let password = self
                        .admin
                        .policy
                        .generate_initial(account.account_type, &mut rng);
                    to_register.push((i, account, password));
                }
            }
        }
        let hashes = hash_many(
            &self.admin.hasher,
            to_register
                .iter()
                .map(|(_, account, p)| (account.account_type, p.clone()))
                .collect(),
        )
        .await?;
        let submitter_label = submitter_label(job);
        let mut passwords: Vec<Option<String>> = vec![None; rows.len()];
        let mut accounts: Vec<NewAccount> = Vec::with_capacity(to_register.len());
        let mut audit: Vec<NewAuditEvent> = Vec::with_capacity(to_register.len() + 1);
        for ((i, account, password), hash) in to_register.into_iter().zip(hashes) {
            let id = Uuid::now_v7();
            let credential = store::Credential {
                hash,
                initial_issued_at: Some(now),
                initial_sealed: Some(
                    self.admin
                        .sealer
                        .seal(password.as_bytes(), &initial_password_context(id)),
                ),
                changed_at: None,
            };
            let new = account.into_new_account(id, credential, Some(job.submitter_id), now);
            audit.push(NewAuditEvent {
                at: now,
                kind: "account.create".into(),
                actor_account_id: Some(job.submitter_id),
                actor: submitter_label.clone(),
                target_account_id: Some(id),
                target: Some(new.user_id.clone()),
                institution_code: Some(institution.as_str().to_owned()),
                ip: None,
                user_agent: None,
                result: AuditResult::Success,
                reason: Some(format!("bulk {}", job.reception_number)),
            });
            accounts.push(new);
            passwords[i] = Some(password);
        }
        for row in &mut rows {
            row.errors.clear();
        }
        let sealed = serde_json::to_vec(&passwords)
            .map_err(|e| ServiceError::Internal(format!("bulk result passwords: {e}")))?;
        let mut completion = self.completion(job, status, rows);
        completion.passwords_sealed = Some(
            self.admin
                .sealer
                .seal(&sealed, &result_context(institution, &job.reception_number)),
        );
        audit.append(&mut completion.audit);
        completion.audit = audit;
        completion.accounts = accounts;
        Ok(completion)
    }
}

/// Keeps a running job's lease alive while this node works on it.
async fn renew_lease(
    admin: Admin,
    institution: InstitutionCode,
    reception_number: String,
    node: Arc<str>,
    lease: Duration,
) {
    let every = StdDuration::try_from(lease / 3).unwrap_or(StdDuration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let until = admin.clock.now() + lease;
        match admin
            .store
            .renew_bulk_lease(&institution, &reception_number, &node, until)
            .await
        {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => tracing::warn!(error = %e, "renewing a bulk registration lease failed"),
        }
    }
}

/// Hashes every password (in order) in the form its account type calls for (argon2id, or the
/// keyed digest for machine accounts) with one worker per hashing permit: each worker waits for a
/// permit per hash, so a sign-in arriving meanwhile waits for at most one hash, never for the
/// whole file.
pub async fn hash_many(
    hasher: &crate::PasswordHasher,
    passwords: Vec<(AccountType, String)>,
) -> Result<Vec<String>, ServiceError> {
    let passwords = Arc::new(passwords);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..hasher.max_in_flight().max(1) {
        let (hasher, passwords, next) = (hasher.clone(), passwords.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((account_type, password)) = passwords.get(i) else {
                    return Ok::<_, ServiceError>(done);
                };
                done.push((i, hasher.hash_for(*account_type, password.clone()).await?));
            }
        });
    }
    let mut hashes = vec![String::new(); passwords.len()];
    while let Some(joined) = workers.join_next().await {
        let done = joined.map_err(|e| ServiceError::Internal(format!("hashing worker: {e}")))??;
        for (i, hash) in done {
            hashes[i] = hash;
        }
    }
    Ok(hashes)
}

/// The associated data under which a job's result passwords are sealed.
fn result_context(institution: &InstitutionCode, reception_number: &str) -> String {
    format!("bulk-result:{}/{reception_number}", institution.as_str())
}

fn submitter_label(job: &BulkJob) -> String {
    let user = job
        .reception_number
        .split_once('_')
        .map_or("", |(_, user)| user);
    format!("{}/{user}", job.institution_code.as_str())
}

fn outcome_audit(
    job: &BulkJob,
    status: JobStatus,
    now: OffsetDateTime,
    rows: &[BulkResultRow],
) -> NewAuditEvent {
    let count = |r: RowResult| rows.iter().filter(|row| row.result == r.as_str()).count();
    NewAuditEvent {
        at: now,
        kind: "bulk_registration.finish".into(),
        actor_account_id: Some(job.submitter_id),
        actor: submitter_label(job),
        target_account_id: None,
        target: Some(job.institution_code.as_str().to_owned()),
        institution_code: Some(job.institution_code.as_str().to_owned()),
        ip: None,
        user_agent: None,
        result: if matches!(status, JobStatus::Done | JobStatus::DoneWithDuplicates) {
            AuditResult::Success
        } else {
            AuditResult::Failure
        },
        reason: Some(format!(
            "{} {} registered={} duplicate={} invalid={}",
            job.reception_number,
            status.as_str(),
            count(RowResult::Registered),
            count(RowResult::Duplicate),
            count(RowResult::Invalid)
        )),
    }
}

fn problem(line: Option<u64>, field: &str, v: &Violation) -> BulkProblem {
    BulkProblem {
        line,
        field: field.to_owned(),
        rule: v.rule.to_owned(),
        message_ja: v.message_ja.clone(),
        message_en: v.message_en.clone(),
    }
}

fn file_problem(line: Option<u64>, rule: &'static str, ja: String, en: String) -> BulkProblem {
    problem(line, "file", &Violation::new(rule, ja, en))
}

/// Decodes and reads an upload, or lists why it is not a bulk registration file.
fn read_file(bytes: &[u8]) -> Result<ParsedFile, Vec<BulkProblem>> {
    let text = decode(bytes).map_err(|p| vec![p])?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header_cells: Vec<String> = loop {
        match records.next() {
            None => {
                return Err(vec![file_problem(
                    None,
                    "file.empty",
                    "ファイルに見出し行がありません。".into(),
                    "The file has no header row.".into(),
                )]);
            }
            Some(Err(e)) => return Err(vec![csv_problem(&e)]),
            Some(Ok(record)) if record.iter().all(|c| c.trim().is_empty()) => continue,
            Some(Ok(record)) => break record.iter().map(|c| c.trim().to_owned()).collect(),
        }
    };
    let header = Header::parse(&header_cells).map_err(|violations| {
        violations
            .iter()
            .map(|v| problem(Some(1), "file", v))
            .collect::<Vec<_>>()
    })?;
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut lines = LineCounter::new(&text);
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                problems.push(csv_problem(&e));
                break;
            }
        };
        let line = lines.line_at(record.position().map_or(0, csv::Position::byte));
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if record.len() != header.width() {
            if problems.len() < 20 {
                problems.push(file_problem(
                    Some(line),
                    "file.column_count",
                    format!(
                        "{line}行目の項目数が{}です（見出しは{}項目）。",
                        record.len(),
                        header.width()
                    ),
                    format!(
                        "Line {line} has {} cells; the header has {}.",
                        record.len(),
                        header.width()
                    ),
                ));
            }
            continue;
        }
        if rows.len() == bulk::MAX_ROWS {
            problems.push(file_problem(
                Some(line),
                "file.too_many_rows",
                format!("1ファイルに登録できるのは{}行までです。", bulk::MAX_ROWS),
                format!("A file may hold at most {} rows.", bulk::MAX_ROWS),
            ));
            break;
        }
        rows.push((line, record.iter().map(|c| c.trim().to_owned()).collect()));
    }
    if problems.is_empty() && rows.is_empty() {
        problems.push(file_problem(
            None,
            "file.no_rows",
            "登録するデータ行がありません。".into(),
            "The file has no data rows.".into(),
        ));
    }
    if problems.is_empty() {
        Ok(ParsedFile { header, rows })
    } else {
        Err(problems)
    }
}

/// File lines of records. The csv crate's own line numbers go wrong after blank lines and CRLF
/// ends, and its byte position points before any blank lines that precede a record; this counts
/// `\n` up to the record's first character instead, incrementally.
struct LineCounter<'t> {
    text: &'t [u8],
    at: usize,
    line: u64,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    /// The line of the record that starts at `byte` (or after the line breaks found there).
    /// Positions must not decrease.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut end = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while end < self.text.len() && matches!(self.text[end], b'\r' | b'\n') {
            end += 1;
        }
        if end > self.at {
            let breaks = self.text[self.at..end]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += u64::try_from(breaks).unwrap_or(0);
            self.at = end;
        }
        self.line
    }
}

fn csv_problem(e: &csv::Error) -> BulkProblem {
    let line = e.position().map(csv::Position::line);
    file_problem(
        line,
        "file.csv",
        "CSVとして読み取れません。".into(),
        format!("The file is not valid CSV: {e}"),
    )
}

/// UTF-8 (a BOM is dropped), else CP932 (what Excel saves as "CSV (comma delimited)" on a
/// Japanese Windows). Bytes that are neither, or text with NUL characters, are refused.
fn decode(bytes: &[u8]) -> Result<String, BulkProblem> {
    let bad = || {
        file_problem(
            None,
            "file.encoding",
            "文字コードを判別できません。UTF-8 または Shift_JIS（CP932）で保存してください。"
                .into(),
            "The file is neither UTF-8 nor Shift_JIS (CP932) text.".into(),
        )
    };
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        std::str::from_utf8(rest).map_err(|_| bad())?.to_owned()
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        text.to_owned()
    } else {
        encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(bytes)
            .ok_or_else(bad)?
            .into_owned()
    };
    if text.contains('\0') {
        return Err(bad());
    }
    Ok(text)
}

/// Checks one row: its account type (and whether the submitter may register it), then every
/// rule of the single create. All problems of the row are returned.
fn check_row(
    job: &BulkJob,
    header: &Header,
    line: u64,
    cells: &[String],
) -> Result<crate::accounts::CheckedAccount, Vec<BulkProblem>> {
    let cell = |c: Column| header.cell(cells, c);
    let mut problems = Vec::new();
    let mut report =
        |column: Column, v: &Violation| problems.push(problem(Some(line), column.as_str(), v));
    let institution = &job.institution_code;

    let account_type = match AccountType::parse_label(cell(Column::AccountType)) {
        Ok(t)
            if permissions::can_in_institution(
                job.submitter_type,
                institution,
                Action::BulkRegister,
                t,
                institution,
            ) =>
        {
            Some(t)
        }
        Ok(t) => {
            report(
                Column::AccountType,
                &Violation::new(
                    "account_type.not_permitted",
                    format!(
                        "{}は{}を登録できません。",
                        job.submitter_type.label_ja(),
                        t.label_ja()
                    ),
                    format!(
                        "A {} account may not register {t} accounts.",
                        job.submitter_type
                    ),
                ),
            );
            None
        }
        Err(_) => {
            report(
                Column::AccountType,
                &Violation::new(
                    "account_type.unknown",
                    "権限区分が不明です（管理者、一般利用者、医療情報閲覧、WebAPI用、連携アプリケーション用、顔認証付きカードリーダー用 のいずれか）。",
                    "Unknown account type (manager, general, clinical_viewer, web_api, linked_app or card_reader).",
                ),
            );
            None
        }
    };
    let usage_start = match cell(Column::UsageStart) {
        "" => {
            report(
                Column::UsageStart,
                &Violation::new(
                    "usage_start.required",
                    "利用開始年月日を入力してください。",
                    "The usage start date is required.",
                ),
            );
            None
        }
        raw => policies::usage::parse_date(raw)
            .map_err(|v| report(Column::UsageStart, &v))
            .ok(),
    };
    let usage_end = match cell(Column::UsageEnd) {
        "" => Some(None),
        raw => policies::usage::parse_date(raw)
            .map(Some)
            .map_err(|v| report(Column::UsageEnd, &v))
            .ok(),
    };
    let email = cell(Column::SecondFactorEmail);
    let phone = cell(Column::SecondFactorPhone);
    let second_factor = match bulk::parse_method_code(cell(Column::SecondFactorMethod)) {
        Ok(None) if email.is_empty() && phone.is_empty() => Some(None),
        Ok(None) => {
            report(
                Column::SecondFactorMethod,
                &Violation::new(
                    "second_factor.method_required",
                    "二要素認証の宛先を登録するには二要素認証手段コードを入力してください。",
                    "A second-factor destination needs a method code.",
                ),
            );
            None
        }
        Ok(Some(code)) => Some(Some(SecondFactorInput {
            method: match code {
                MethodCode::Email => SecondFactorMethod::Email,
                MethodCode::Sms => SecondFactorMethod::Sms,
                MethodCode::Voice => SecondFactorMethod::Voice,
            },
            email: (!email.is_empty()).then(|| email.to_owned()),
            phone: (!phone.is_empty()).then(|| phone.to_owned()),
        })),
        Err(v) => {
            report(Column::SecondFactorMethod, &v);
            None
        }
    };

    // The single create's rules; the type-dependent user ID rules need a known type, so an
    // unknown one still has its ID's shape checked as a general account's would be.
    let input = NewAccountInput {
        account_type: account_type.unwrap_or(AccountType::General),
        user_id: cell(Column::UserId).to_owned(),
        name: cell(Column::Name).to_owned(),
        name_kana: cell(Column::NameKana).to_owned(),
        usage_start: usage_start.unwrap_or(time::Date::MIN),
        usage_end: usage_end.flatten(),
        second_factor: second_factor.clone().flatten(),
    };
    let checked = check_new_account(institution, input);
    if let Err(failed) = &checked {
        for (field, violations) in failed {
            let column = match *field {
                "user_id" => Column::UserId,
                "name" => Column::Name,
                "name_kana" => Column::NameKana,
                "usage_end" => Column::UsageEnd,
                "second_factor.email" => Column::SecondFactorEmail,
                "second_factor.phone" => Column::SecondFactorPhone,
                _ => Column::SecondFactorMethod,
            };
            // The window rule cannot be judged without a readable start or end.
            if column == Column::UsageEnd && (usage_start.is_none() || usage_end.is_none()) {
                continue;
            }
            for v in violations {
                report(column, v);
            }
        }
    }
    match checked {
        Ok(account)
            if problems.is_empty()
                && account_type.is_some()
                && usage_start.is_some()
                && usage_end.is_some()
                && second_factor.is_some() =>
        {
            Ok(account)
        }
        _ => Err(problems),
    }
}

/// The result file's header: the line, the upload's columns, then the outcome.
fn write_result(
    rows: &[BulkResultRow],
    passwords: &[Option<String>],
    english: bool,
) -> Result<String, ServiceError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let internal = |e: csv::Error| ServiceError::Internal(format!("result CSV: {e}"));
    let mut header = vec!["line"];
    header.extend(Column::ALL.iter().map(|c| c.as_str()));
    header.extend(["result", "errors", "initial_password"]);
    writer.write_record(&header).map_err(internal)?;
    for (i, row) in rows.iter().enumerate() {
        let errors = if row.result == RowResult::NotRegistered.as_str() {
            if english {
                bulk::NOT_REGISTERED_NOTE_EN.to_owned()
            } else {
                bulk::NOT_REGISTERED_NOTE_JA.to_owned()
            }
        } else {
            row.errors
                .iter()
                .map(|p| {
                    let message = if english {
                        &p.message_en
                    } else {
                        &p.message_ja
                    };
                    format!("{}: {message} [{}]", p.field, p.rule)
                })
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let password = passwords.get(i).cloned().flatten().unwrap_or_default();
        let mut record = vec![row.line.to_string()];
        record.extend(row.cells.iter().cloned());
        record.extend([row.result.clone(), errors, password]);
        writer.write_record(&record).map_err(internal)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| internal(e.into_error().into()))?;
    String::from_utf8(bytes).map_err(|e| ServiceError::Internal(format!("result CSV: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_with_or_without_bom_and_cp932_decode() {
        let text = "権限区分,ユーザID\r\n一般利用者,staff01\r\n";
        assert_eq!(decode(text.as_bytes()).unwrap(), text);
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        assert_eq!(decode(&bom).unwrap(), text);
        let (sjis, _, unmappable) = encoding_rs::SHIFT_JIS.encode(text);
        assert!(!unmappable);
        assert_eq!(decode(&sjis).unwrap(), text);
        assert_eq!(decode(b"\xFF\xFF\x00").unwrap_err().rule, "file.encoding");
        assert_eq!(decode(b"a\0b").unwrap_err().rule, "file.encoding");
    }

    #[test]
    fn structure_problems_are_named() {
        let rules = |text: &str| -> Vec<String> {
            read_file(text.as_bytes())
                .unwrap_err()
                .into_iter()
                .map(|p| p.rule)
                .collect()
        };
        assert_eq!(rules(""), ["file.empty"]);
        assert_eq!(rules("account_type,user_id\n"), ["file.header_missing"; 3]);
        assert_eq!(
            rules("account_type,user_id,name,name_kana,usage_start\n"),
            ["file.no_rows"]
        );
        assert_eq!(
            rules("account_type,user_id,name,name_kana,usage_start\ngeneral,a1\n"),
            ["file.column_count"]
        );
        let ok = read_file(
            "account_type,user_id,name,name_kana,usage_start\n\ngeneral,a1,x,y,20260401\n,,,,\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(ok.rows.len(), 1);
        assert_eq!(ok.rows[0].0, 3);
        // CRLF, blank lines and a quoted cell spanning two lines.
        let text = "account_type,user_id,name,name_kana,usage_start\r\n\r\ngeneral,a1,x,y,1\r\ngeneral,\"a\r\n2\",x,y,1\r\n\r\n\r\ngeneral,a3,x,y,1";
        let ok = read_file(text.as_bytes()).unwrap();
        let lines: Vec<u64> = ok.rows.iter().map(|r| r.0).collect();
        assert_eq!(lines, [3, 4, 8]);
    }
}
