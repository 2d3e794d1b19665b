//! Bulk registration (SPEC §9, §12, seed 002 §2-4 and §2-5): the columns of the upload CSV and
//! their English and Japanese headers, the second-factor method codes, the job statuses with
//! their seed labels, the per-row results, how a job's outcome follows from its rows, the
//! reception number and the 30-day retention of the initial passwords in a result file.
//!
//! Decoding bytes and reading CSV records happen at the edge (`service::bulk`); this module only
//! decides.

use time::{Duration, OffsetDateTime, UtcOffset};

use crate::Violation;

/// The largest upload accepted, in bytes (about 40 times what 10,000 typical rows take).
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// The most data rows one file may hold.
pub const MAX_ROWS: usize = 10_000;
/// How long the initial passwords of a finished job stay readable in its result file.
pub const PASSWORD_RETENTION: Duration = Duration::days(30);
/// What the result file says of a good row in a job that failed validation (seed 002 §2-5).
pub const NOT_REGISTERED_NOTE_JA: &str = "【入力チェックエラーなし:未登録】";
pub const NOT_REGISTERED_NOTE_EN: &str = "[no input error: not registered]";
/// Seconds a client should wait before uploading again while a job runs (seed 002 §2-4: "1分程度").
pub const RETRY_AFTER_SECONDS: u32 = 60;

/// One column of the upload CSV (SPEC §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    AccountType,
    UserId,
    Name,
    NameKana,
    UsageStart,
    UsageEnd,
    SecondFactorMethod,
    SecondFactorEmail,
    SecondFactorPhone,
}

impl Column {
    /// Every column, in the order the result file writes them.
    pub const ALL: [Column; 9] = [
        Column::AccountType,
        Column::UserId,
        Column::Name,
        Column::NameKana,
        Column::UsageStart,
        Column::UsageEnd,
        Column::SecondFactorMethod,
        Column::SecondFactorEmail,
        Column::SecondFactorPhone,
    ];

    /// The English header, also the field name in error reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Column::AccountType => "account_type",
            Column::UserId => "user_id",
            Column::Name => "name",
            Column::NameKana => "name_kana",
            Column::UsageStart => "usage_start",
            Column::UsageEnd => "usage_end",
            Column::SecondFactorMethod => "second_factor_method",
            Column::SecondFactorEmail => "second_factor_email",
            Column::SecondFactorPhone => "second_factor_phone",
        }
    }

    /// The Japanese header (SPEC §12, the labels of seed 002's screens).
    pub const fn label_ja(self) -> &'static str {
        match self {
            Column::AccountType => "権限区分",
            Column::UserId => "ユーザID",
            Column::Name => "ユーザ名",
            Column::NameKana => "ユーザ名（カナ）",
            Column::UsageStart => "利用開始年月日",
            Column::UsageEnd => "利用終了年月日",
            Column::SecondFactorMethod => "二要素認証手段コード",
            Column::SecondFactorEmail => "二要素認証用メールアドレス",
            Column::SecondFactorPhone => "二要素認証用電話番号",
        }
    }

    /// Whether every file must have this column.
    pub const fn required(self) -> bool {
        matches!(
            self,
            Column::AccountType
                | Column::UserId
                | Column::Name
                | Column::NameKana
                | Column::UsageStart
        )
    }

    /// Reads a header cell: the English name (any case) or the Japanese label. Surrounding
    /// whitespace, a leading `*` (the seed marks required items so) and the half-width
    /// parentheses Excel users type for （カナ） are tolerated.
    pub fn from_header(raw: &str) -> Option<Column> {
        let cell = raw.trim().trim_start_matches(['*', '＊']).trim();
        let folded: String = cell
            .chars()
            .map(|c| match c {
                '(' => '（',
                ')' => '）',
                c => c,
            })
            .filter(|c| !c.is_whitespace())
            .collect();
        Column::ALL.into_iter().find(|c| {
            c.as_str().eq_ignore_ascii_case(cell)
                || c.label_ja() == folded
                // ＩＤ written full-width, as some spreadsheets autocorrect it.
                || (c.label_ja() == "ユーザID" && folded == "ユーザＩＤ")
        })
    }
}

/// Where each column sits in the file's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    positions: Vec<(Column, usize)>,
    width: usize,
}

impl Header {
    /// Maps a header row, reporting every problem at once: an unknown header, a column given
    /// twice, a required column missing.
    pub fn parse<S: AsRef<str>>(cells: &[S]) -> Result<Header, Vec<Violation>> {
        let mut positions: Vec<(Column, usize)> = Vec::new();
        let mut violations = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            let cell = cell.as_ref();
            match Column::from_header(cell) {
                Some(column) if positions.iter().any(|(c, _)| *c == column) => {
                    violations.push(Violation::new(
                        "file.header_duplicate",
                        format!("見出し「{}」が2回以上あります。", column.label_ja()),
                        format!("The header {} appears more than once.", column.as_str()),
                    ));
                }
                Some(column) => positions.push((column, i)),
                None if cell.trim().is_empty() => violations.push(Violation::new(
                    "file.header_empty",
                    format!("{}列目の見出しが空です。", i + 1),
                    format!("The header of column {} is empty.", i + 1),
                )),
                None => {
                    let shown: String = cell.chars().filter(|c| !c.is_control()).take(40).collect();
                    violations.push(Violation::new(
                        "file.header_unknown",
                        format!("見出し「{shown}」は不明な項目です。"),
                        format!("The header {shown:?} is not a known column."),
                    ));
                }
            }
        }
        for column in Column::ALL.into_iter().filter(|c| c.required()) {
            if !positions.iter().any(|(c, _)| *c == column) {
                violations.push(Violation::new(
                    "file.header_missing",
                    format!(
                        "必須の見出し「{}」（{}）がありません。",
                        column.label_ja(),
                        column.as_str()
                    ),
                    format!(
                        "The required header {} ({}) is missing.",
                        column.as_str(),
                        column.label_ja()
                    ),
                ));
            }
        }
        if violations.is_empty() {
            Ok(Header {
                positions,
                width: cells.len(),
            })
        } else {
            Err(violations)
        }
    }

    /// The number of cells every row must have.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The cell of `column` in `row`, or `""` when the file has no such column.
    pub fn cell<'r, S: AsRef<str>>(&self, row: &'r [S], column: Column) -> &'r str {
        self.positions
            .iter()
            .find(|(c, _)| *c == column)
            .and_then(|(_, i)| row.get(*i))
            .map_or("", |s| s.as_ref())
    }
}

/// The second-factor method of a row (SPEC §7 method codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodCode {
    Email,
    Sms,
    Voice,
}

/// Parses 二要素認証手段コード: `1` email, `2` sms, `3` voice (full-width digits too), or the
/// method's name. An empty cell means no second factor is registered.
pub fn parse_method_code(raw: &str) -> Result<Option<MethodCode>, Violation> {
    let cell = raw.trim();
    let method = match cell {
        "" => return Ok(None),
        "1" | "１" => MethodCode::Email,
        "2" | "２" => MethodCode::Sms,
        "3" | "３" => MethodCode::Voice,
        other if other.eq_ignore_ascii_case("email") => MethodCode::Email,
        other if other.eq_ignore_ascii_case("sms") => MethodCode::Sms,
        other if other.eq_ignore_ascii_case("voice") => MethodCode::Voice,
        _ => {
            return Err(Violation::new(
                "second_factor.method_code",
                "二要素認証手段コードは 1（メール）、2（SMS）、3（電話）のいずれかです。",
                "The second-factor method code must be 1 (email), 2 (sms) or 3 (voice).",
            ));
        }
    };
    Ok(Some(method))
}

/// The state of a bulk registration job (SPEC §9, seed 002 §2-5 登録状況).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    DoneWithDuplicates,
    FailedValidation,
    FailedFileStructure,
    FailedSystem,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::DoneWithDuplicates,
        JobStatus::FailedValidation,
        JobStatus::FailedFileStructure,
        JobStatus::FailedSystem,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::DoneWithDuplicates => "done_with_duplicates",
            JobStatus::FailedValidation => "failed_validation",
            JobStatus::FailedFileStructure => "failed_file_structure",
            JobStatus::FailedSystem => "failed_system",
        }
    }

    /// The seed's 登録状況 label.
    pub const fn label_ja(self) -> &'static str {
        match self {
            JobStatus::Queued => "登録待ち",
            JobStatus::Running => "登録中",
            JobStatus::Done => "登録完了",
            JobStatus::DoneWithDuplicates => "登録完了(一部ID重複あり)",
            JobStatus::FailedValidation => "登録失敗(入力チェックエラー)",
            JobStatus::FailedFileStructure => "登録失敗(ファイル構造エラー)",
            JobStatus::FailedSystem => "登録失敗(システムエラー)",
        }
    }

    pub fn parse(raw: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Queued or running: the institution's one job in progress.
    pub const fn is_active(self) -> bool {
        matches!(self, JobStatus::Queued | JobStatus::Running)
    }

    /// Whether the submitter may download a result file (seed 002 §2-5: 登録完了,
    /// 登録完了(一部ID重複あり) and 登録失敗(入力チェックエラー) only).
    pub const fn has_result(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::DoneWithDuplicates | JobStatus::FailedValidation
        )
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowResult {
    Registered,
    /// The user ID exists or existed in the institution (IDs are never reused): skipped.
    Duplicate,
    /// The row broke a rule; its errors say which.
    Invalid,
    /// The row was fine, but another row was invalid, so nothing was registered.
    NotRegistered,
}

impl RowResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            RowResult::Registered => "registered",
            RowResult::Duplicate => "duplicate",
            RowResult::Invalid => "invalid",
            RowResult::NotRegistered => "not_registered",
        }
    }

    pub fn parse(raw: &str) -> Option<RowResult> {
        [
            RowResult::Registered,
            RowResult::Duplicate,
            RowResult::Invalid,
            RowResult::NotRegistered,
        ]
        .into_iter()
        .find(|r| r.as_str() == raw)
    }
}

/// What validation found for one row, before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowCheck {
    Valid,
    /// Valid, but its user ID is taken in the institution (live or deleted account).
    Taken,
    Invalid,
}

/// How a job ends given the checks of its rows, and each row's result: any invalid row fails
/// the whole file and registers nothing (good rows are `not_registered`); otherwise taken IDs are
/// skipped as duplicates and the rest registered. A file whose every row is a duplicate is
/// `done_with_duplicates` with nothing registered.
pub fn outcome(checks: &[RowCheck]) -> (JobStatus, Vec<RowResult>) {
    if checks.contains(&RowCheck::Invalid) {
        let rows = checks
            .iter()
            .map(|c| match c {
                RowCheck::Invalid => RowResult::Invalid,
                RowCheck::Valid | RowCheck::Taken => RowResult::NotRegistered,
            })
            .collect();
        return (JobStatus::FailedValidation, rows);
    }
    let rows: Vec<RowResult> = checks
        .iter()
        .map(|c| match c {
            RowCheck::Taken => RowResult::Duplicate,
            _ => RowResult::Registered,
        })
        .collect();
    let status = if rows.contains(&RowResult::Duplicate) {
        JobStatus::DoneWithDuplicates
    } else {
        JobStatus::Done
    };
    (status, rows)
}

/// The second and later rows of a file with a user ID seen before in the same file are invalid
/// (the first one stands): returns, per row, the line of the first occurrence when it is a repeat.
pub fn repeated_ids<S: AsRef<str>>(user_ids: &[S]) -> Vec<Option<usize>> {
    let mut first: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let id = id.as_ref();
            if id.is_empty() {
                return None;
            }
            match first.get(id) {
                Some(at) => Some(*at),
                None => {
                    first.insert(id, i);
                    None
                }
            }
        })
        .collect()
}

/// The violation for a repeated user ID; `first_line` is the file line (header = 1).
pub fn repeated_id_violation(first_line: usize) -> Violation {
    Violation::new(
        "user_id.repeated_in_file",
        format!("同じユーザIDがファイル内の{first_line}行目にもあります。"),
        format!("The same user ID already appears on line {first_line} of this file."),
    )
}

/// The reception number `YYYYMMDDHHMMSSmmm_<submitter>` (SPEC §9): the upload time in
/// Asia/Tokyo, as the seed's screens show 受付日時, to the millisecond, then the submitter's
/// user ID.
pub fn reception_number(submitted_at: OffsetDateTime, submitter: &str) -> String {
    let jst = UtcOffset::from_hms(9, 0, 0).unwrap_or(UtcOffset::UTC);
    let t = submitted_at.checked_to_offset(jst).unwrap_or(submitted_at);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}{:03}_{submitter}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Whether a reception number has the shape [`reception_number`] gives (17 digits, `_`, a user
/// ID of half-width alphanumerics). Anything else can be refused before any lookup.
pub fn is_reception_number(raw: &str) -> bool {
    let Some((stamp, user)) = raw.split_once('_') else {
        return false;
    };
    stamp.len() == 17
        && stamp.bytes().all(|b| b.is_ascii_digit())
        && (1..=crate::user_id::MAX_LEN).contains(&user.len())
        && user.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether the initial passwords of a job finished at `finished_at` must be gone at `now`.
pub fn passwords_expired(finished_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    now >= finished_at + PASSWORD_RETENTION
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn headers_in_english_or_japanese() {
        let cases: &[(&str, Option<Column>)] = &[
            ("account_type", Some(Column::AccountType)),
            ("ACCOUNT_TYPE", Some(Column::AccountType)),
            ("権限区分", Some(Column::AccountType)),
            ("ユーザID", Some(Column::UserId)),
            ("ユーザＩＤ", Some(Column::UserId)),
            (" ユーザ名 ", Some(Column::Name)),
            ("ユーザ名（カナ）", Some(Column::NameKana)),
            ("ユーザ名(カナ)", Some(Column::NameKana)),
            ("*利用開始年月日", Some(Column::UsageStart)),
            ("利用終了年月日", Some(Column::UsageEnd)),
            ("二要素認証手段コード", Some(Column::SecondFactorMethod)),
            (
                "二要素認証用メールアドレス",
                Some(Column::SecondFactorEmail),
            ),
            ("二要素認証用電話番号", Some(Column::SecondFactorPhone)),
            ("password", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(Column::from_header(raw), *want, "{raw:?}");
        }
    }

    #[test]
    fn a_header_row_reports_every_problem() {
        let ok =
            Header::parse(&["user_id", "権限区分", "name", "name_kana", "usage_start"]).unwrap();
        assert_eq!(ok.width(), 5);
        let row = ["staff01", "一般利用者", "関守", "セキモリ", "2026/04/01"];
        assert_eq!(ok.cell(&row, Column::AccountType), "一般利用者");
        assert_eq!(ok.cell(&row, Column::UsageEnd), "");

        let rules = |cells: &[&str]| -> Vec<&'static str> {
            Header::parse(cells)
                .unwrap_err()
                .iter()
                .map(|v| v.rule)
                .collect()
        };
        assert_eq!(
            rules(&[
                "user_id",
                "ユーザID",
                "name",
                "name_kana",
                "usage_start",
                "x",
                ""
            ]),
            [
                "file.header_duplicate",
                "file.header_unknown",
                "file.header_empty",
                "file.header_missing"
            ]
        );
        assert_eq!(rules(&["hello"]).len(), 6);
    }

    #[test]
    fn method_codes() {
        let cases: &[(&str, Result<Option<MethodCode>, ()>)] = &[
            ("", Ok(None)),
            (" ", Ok(None)),
            ("1", Ok(Some(MethodCode::Email))),
            ("２", Ok(Some(MethodCode::Sms))),
            ("3", Ok(Some(MethodCode::Voice))),
            ("SMS", Ok(Some(MethodCode::Sms))),
            ("4", Err(())),
            ("0", Err(())),
            ("メール", Err(())),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_method_code(raw).map_err(|_| ()), *want, "{raw:?}");
        }
    }

    #[test]
    fn statuses_and_their_seed_labels() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            JobStatus::DoneWithDuplicates.label_ja(),
            "登録完了(一部ID重複あり)"
        );
        assert_eq!(
            JobStatus::FailedFileStructure.label_ja(),
            "登録失敗(ファイル構造エラー)"
        );
        let downloadable: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.has_result())
            .collect();
        assert_eq!(
            downloadable,
            [
                JobStatus::Done,
                JobStatus::DoneWithDuplicates,
                JobStatus::FailedValidation
            ]
        );
        let active: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [JobStatus::Queued, JobStatus::Running]);
    }

    #[test]
    fn outcomes() {
        use RowCheck::{Taken, Valid};
        use RowResult::{Duplicate, NotRegistered, Registered};
        let bad = RowCheck::Invalid;
        let cases: &[(&[RowCheck], JobStatus, &[RowResult])] = &[
            (&[Valid, Valid], JobStatus::Done, &[Registered, Registered]),
            (
                &[Valid, Taken],
                JobStatus::DoneWithDuplicates,
                &[Registered, Duplicate],
            ),
            (&[Taken], JobStatus::DoneWithDuplicates, &[Duplicate]),
            // Seed 002 §2-5: one bad row and nothing is registered, good rows say so.
            (
                &[Valid, bad, Taken],
                JobStatus::FailedValidation,
                &[NotRegistered, RowResult::Invalid, NotRegistered],
            ),
        ];
        for (checks, status, rows) in cases {
            let (got_status, got_rows) = outcome(checks);
            assert_eq!(got_status, *status, "{checks:?}");
            assert_eq!(got_rows, *rows, "{checks:?}");
        }
        for r in [Registered, Duplicate, RowResult::Invalid, NotRegistered] {
            assert_eq!(RowResult::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn repeats_within_a_file() {
        assert_eq!(
            repeated_ids(&["a1", "b2", "a1", "", "", "b2", "A1"]),
            [None, None, Some(0), None, None, Some(1), None]
        );
    }

    #[test]
    fn reception_numbers_are_tokyo_time_to_the_millisecond() {
        // The seed's example: 20210820144356683_H0000364 received 2021/08/20 14:43:56 (JST).
        let at = datetime!(2021-08-20 05:43:56.683 UTC);
        let number = reception_number(at, "H0000364");
        assert_eq!(number, "20210820144356683_H0000364");
        assert!(is_reception_number(&number));
        for bad in [
            "",
            "2021_x",
            "20210820144356683",
            "20210820144356683_",
            "2021082014435668x_a",
            "20210820144356683_a/b",
        ] {
            assert!(!is_reception_number(bad), "{bad}");
        }
    }

    #[test]
    fn passwords_are_kept_thirty_days() {
        let done = datetime!(2026-01-01 00:00 UTC);
        assert!(!passwords_expired(
            done,
            done + Duration::days(30) - Duration::SECOND
        ));
        assert!(passwords_expired(done, done + Duration::days(30)));
    }
}
