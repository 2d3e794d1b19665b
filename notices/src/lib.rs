//! ID/password notices (ID・パスワード発行通知書, SPEC §5, §9 [000 §5]): one A4 page per account,
//! rendered to PDF with printpdf.
//!
//! This crate is pure rendering: a list of [`Notice`]s and the printing instant go in, PDF bytes
//! come out. It reads no clock, no file and no configuration; the only outside input is the
//! IPAexGothic font compiled into the binary (`fonts/ipaexg.ttf`, IPA Font License v1.0, whose
//! text is in `fonts/IPA_Font_License_Agreement_v1.0.txt`). printpdf embeds only the glyphs a
//! document uses, so a notice is a few tens of kilobytes and prints the same on a machine with
//! no Japanese font installed.
//!
//! Architecture Invariant: no I/O, no clock, no randomness that matters to the content; the
//! caller decides what may be printed and supplies every value, including the instants shown.

mod layout;

use printpdf::{ParsedFont, PdfDocument, PdfParseErrorSeverity, PdfSaveOptions};
use time::{OffsetDateTime, UtcOffset};

pub use layout::{PAGE_HEIGHT_PT, PAGE_WIDTH_PT};

/// IPAexGothic 004.01 from Debian's `fonts-ipaexfont-gothic`.
const FONT: &[u8] = include_bytes!("../fonts/ipaexg.ttf");

/// The document title, also printed at the top of every page.
pub const TITLE: &str = "ID・パスワード発行通知書";

/// Japan Standard Time: every date and time on a notice is shown in Asia/Tokyo (no DST).
const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("+09:00 is a valid offset"),
};

/// Everything one page shows. Built by the caller from the account, its institution and the
/// unsealed initial password; `Debug` never prints the password.
#[derive(Clone)]
pub struct Notice {
    pub institution_name: String,
    pub institution_code: String,
    /// The account's name (氏名 for people, a label for machine accounts).
    pub account_name: String,
    /// The account type as the seed names it, e.g. 管理アカウント.
    pub account_type_label: String,
    pub user_id: String,
    pub initial_password: String,
    /// When the initial password was issued.
    pub issued_at: OffsetDateTime,
    /// When it lapses; `None` for machine accounts, whose initial password never expires.
    pub expires_at: Option<OffsetDateTime>,
    /// Where to sign in (the IdP's login page).
    pub sign_in_url: String,
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice")
            .field("institution_code", &self.institution_code)
            .field("user_id", &self.user_id)
            .field("initial_password", &"***")
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("the embedded font cannot be parsed")]
    Font,
    #[error("a notice document needs at least one notice")]
    Empty,
    #[error("the PDF could not be written: {0}")]
    Pdf(String),
}

/// A rendered document and the characters the font could not draw (shown as blanks). Names are
/// validated against environment-dependent characters, so this is normally empty; the caller
/// logs it when not.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub pages: usize,
    pub missing_glyphs: Vec<char>,
}

/// The parsed font, ready to render any number of documents. Parse once and share: parsing
/// the 6 MB font costs far more than rendering a page.
pub struct Renderer {
    font: ParsedFont,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer(IPAexGothic)")
    }
}

impl Renderer {
    pub fn new() -> Result<Self, NoticeError> {
        let font = ParsedFont::from_bytes(FONT, 0, &mut Vec::new()).ok_or(NoticeError::Font)?;
        Ok(Self { font })
    }

    /// One PDF with one page per notice, in the order given. `printed_at` is shown as the
    /// output date and recorded as the document's creation date.
    pub fn render(
        &self,
        notices: &[Notice],
        printed_at: OffsetDateTime,
    ) -> Result<Rendered, NoticeError> {
        if notices.is_empty() {
            return Err(NoticeError::Empty);
        }
        let mut doc = PdfDocument::new(TITLE);
        // Whole seconds since the epoch always fit printpdf's date; if not, its default stays.
        if let Ok(at) = printpdf::OffsetDateTime::from_unix_timestamp(printed_at.unix_timestamp()) {
            doc.metadata.info.creation_date = at;
            doc.metadata.info.modification_date = at;
            doc.metadata.info.metadata_date = at;
        }
        doc.metadata.info.creator = "Sekimori".into();
        doc.metadata.info.producer = "Sekimori".into();
        let font_id = doc.add_font(&self.font);
        let mut missing = Vec::new();
        let pages: Vec<_> = notices
            .iter()
            .enumerate()
            .map(|(i, notice)| {
                let mut page = layout::PageWriter::new(&self.font, font_id.clone());
                layout::notice_page(&mut page, notice, printed_at, i + 1, notices.len());
                for c in page.missing_glyphs() {
                    if !missing.contains(c) {
                        missing.push(*c);
                    }
                }
                page.finish()
            })
            .collect();
        let count = pages.len();
        let mut warnings = Vec::new();
        let pdf = doc
            .with_pages(pages)
            .save(&PdfSaveOptions::default(), &mut warnings);
        if let Some(error) = warnings
            .iter()
            .find(|w| w.severity == PdfParseErrorSeverity::Error)
        {
            return Err(NoticeError::Pdf(error.msg.clone()));
        }
        Ok(Rendered {
            pdf,
            pages: count,
            missing_glyphs: missing,
        })
    }
}

/// `2026年04月01日`, in Japan Standard Time.
pub fn format_date(at: OffsetDateTime) -> String {
    let d = at.to_offset(JST).date();
    format!(
        "{:04}年{:02}月{:02}日",
        d.year(),
        u8::from(d.month()),
        d.day()
    )
}

/// `2026年04月01日 09:30`, in Japan Standard Time.
pub fn format_date_time(at: OffsetDateTime) -> String {
    let t = at.to_offset(JST);
    format!("{} {:02}:{:02}", format_date(at), t.hour(), t.minute())
}

#[cfg(test)]
mod tests;
