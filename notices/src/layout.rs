//! The page layout: A4 portrait, a title, the addressee, a bordered table of the credentials and
//! a short list of instructions. Coordinates are PDF points from the bottom-left corner.

use printpdf::{
    Color, FontId, Line, LinePoint, Op, PaintMode, ParsedFont, PdfFontHandle, PdfPage, Point, Pt,
    Rect, Rgb, TextItem,
};
use time::OffsetDateTime;

use crate::{Notice, TITLE, format_date_time};

/// A4 portrait, 210 × 297 mm.
pub const PAGE_WIDTH_PT: f32 = 595.28;
pub const PAGE_HEIGHT_PT: f32 = 841.89;

const MARGIN: f32 = 56.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH_PT - 2.0 * MARGIN;
const LABEL_WIDTH: f32 = 130.0;
const CELL_PADDING: f32 = 8.0;
const BODY_SIZE: f32 = 10.5;
const LINE_FACTOR: f32 = 1.5;

/// Characters that may not start a line in Japanese text (行頭禁則, the common subset).
const NO_LINE_START: &str =
    "、。，．・：；？！ー）」』】〕〉》”’ぁぃぅぇぉっゃゅょァィゥェォッャュョ";

/// Collects the drawing operations of one page and measures text with the font's advances.
pub(crate) struct PageWriter<'f> {
    font: &'f ParsedFont,
    font_id: FontId,
    ops: Vec<Op>,
    missing: Vec<char>,
}

impl<'f> PageWriter<'f> {
    pub(crate) fn new(font: &'f ParsedFont, font_id: FontId) -> Self {
        Self {
            font,
            font_id,
            ops: Vec::new(),
            missing: Vec::new(),
        }
    }

    pub(crate) fn missing_glyphs(&self) -> &[char] {
        &self.missing
    }

    pub(crate) fn finish(self) -> PdfPage {
        PdfPage::new(
            Pt(PAGE_WIDTH_PT).into(),
            Pt(PAGE_HEIGHT_PT).into(),
            self.ops,
        )
    }

    /// Width of `text` at `size` points. Characters without a glyph count as one em and are
    /// remembered, so the caller can report them.
    fn width(&mut self, text: &str, size: f32) -> f32 {
        let upem = f32::from(self.font.font_metrics.units_per_em.max(1));
        text.chars()
            .map(|c| match self.font.lookup_glyph_index(u32::from(c)) {
                Some(glyph) => f32::from(self.font.get_horizontal_advance(glyph)) / upem * size,
                None => {
                    if !c.is_whitespace() && !self.missing.contains(&c) {
                        self.missing.push(c);
                    }
                    size
                }
            })
            .sum()
    }

    fn text(&mut self, x: f32, baseline: f32, size: f32, grey: f32, text: &str) {
        // Measuring records glyphs the font lacks.
        self.width(text, size);
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor {
                col: grey_color(grey),
            },
            Op::SetFont {
                font: PdfFontHandle::External(self.font_id.clone()),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point {
                    x: Pt(x),
                    y: Pt(baseline),
                },
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_owned())],
            },
            Op::EndTextSection,
        ]);
    }

    fn centered(&mut self, baseline: f32, size: f32, text: &str) {
        let x = (PAGE_WIDTH_PT - self.width(text, size)) / 2.0;
        self.text(x, baseline, size, 0.0, text);
    }

    fn right_aligned(&mut self, right: f32, baseline: f32, size: f32, grey: f32, text: &str) {
        let x = right - self.width(text, size);
        self.text(x, baseline, size, grey, text);
    }

    /// Breaks `text` into lines no wider than `max`: between any two Japanese characters (the
    /// language has no spaces), but not inside a run of half-width characters such as a date,
    /// an ID or a URL unless the run alone is too wide; closing punctuation and small kana stay
    /// off the start of a line.
    fn wrap(&mut self, text: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for unit in units(text) {
            let candidate = format!("{line}{unit}");
            let first = unit.chars().next().unwrap_or(' ');
            if line.is_empty()
                || NO_LINE_START.contains(first)
                || self.width(&candidate, size) <= max
            {
                line = candidate;
            } else {
                lines.push(std::mem::take(&mut line));
                line = unit.to_owned();
            }
            // A unit wider than a whole line is broken by character.
            while self.width(&line, size) > max && line.chars().count() > 1 {
                let mut head = String::new();
                for c in line.chars() {
                    let mut next = head.clone();
                    next.push(c);
                    if !head.is_empty() && self.width(&next, size) > max {
                        break;
                    }
                    head = next;
                }
                let rest = line[head.len()..].to_owned();
                lines.push(head);
                line = rest;
            }
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// A wrapped paragraph starting at `top` (the top of its first line); returns the y below it.
    fn paragraph(&mut self, x: f32, top: f32, size: f32, max: f32, text: &str) -> f32 {
        let mut y = top;
        for line in self.wrap(text, size, max) {
            y -= size * LINE_FACTOR;
            self.text(x, y + size * 0.35, size, 0.0, &line);
        }
        y
    }

    fn rect(&mut self, x: f32, y: f32, width: f32, height: f32, fill: Option<f32>) {
        let mut rect = Rect::from_xywh(Pt(x), Pt(y), Pt(width), Pt(height));
        if let Some(grey) = fill {
            rect.mode = Some(PaintMode::Fill);
            self.ops.push(Op::SetFillColor {
                col: grey_color(grey),
            });
            self.ops.push(Op::DrawRectangle { rectangle: rect });
        } else {
            self.ops.push(Op::SetOutlineColor {
                col: grey_color(0.0),
            });
            self.ops.push(Op::SetOutlineThickness { pt: Pt(0.8) });
            self.ops.push(Op::DrawLine {
                line: rect.to_line(),
            });
        }
    }

    fn hline(&mut self, x1: f32, x2: f32, y: f32, thickness: f32) {
        self.ops.push(Op::SetOutlineColor {
            col: grey_color(0.0),
        });
        self.ops.push(Op::SetOutlineThickness { pt: Pt(thickness) });
        self.ops.push(Op::DrawLine {
            line: Line {
                points: vec![point(x1, y), point(x2, y)],
                is_closed: false,
            },
        });
    }

    /// One table row: a shaded label cell and a value cell whose text wraps; returns the y of
    /// the row's bottom edge.
    fn row(&mut self, top: f32, label: &str, value: &str, value_size: f32) -> f32 {
        let value_width = CONTENT_WIDTH - LABEL_WIDTH - 2.0 * CELL_PADDING;
        let lines = self.wrap(value, value_size, value_width);
        let line_height = value_size * LINE_FACTOR;
        let height =
            (lines.len() as f32 * line_height).max(BODY_SIZE * LINE_FACTOR) + 2.0 * CELL_PADDING;
        let bottom = top - height;
        self.rect(MARGIN, bottom, LABEL_WIDTH, height, Some(0.90));
        self.rect(MARGIN, bottom, LABEL_WIDTH, height, None);
        self.rect(
            MARGIN + LABEL_WIDTH,
            bottom,
            CONTENT_WIDTH - LABEL_WIDTH,
            height,
            None,
        );
        let label_baseline = top - CELL_PADDING - BODY_SIZE * LINE_FACTOR + BODY_SIZE * 0.35
            - (height - 2.0 * CELL_PADDING - BODY_SIZE * LINE_FACTOR) / 2.0;
        self.text(MARGIN + CELL_PADDING, label_baseline, BODY_SIZE, 0.0, label);
        let mut y = top - CELL_PADDING;
        for line in lines {
            y -= line_height;
            self.text(
                MARGIN + LABEL_WIDTH + CELL_PADDING,
                y + value_size * 0.35,
                value_size,
                0.0,
                &line,
            );
        }
        bottom
    }
}

/// Splits text into line-breaking units: each run of printable half-width characters is one
/// unit, every other character is a unit of its own.
fn units(text: &str) -> Vec<&str> {
    let mut units = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_ascii_graphic() {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            units.push(&text[s..i]);
        }
        units.push(&text[i..i + c.len_utf8()]);
    }
    if let Some(s) = start {
        units.push(&text[s..]);
    }
    units
}

fn point(x: f32, y: f32) -> LinePoint {
    LinePoint {
        p: Point { x: Pt(x), y: Pt(y) },
        bezier: false,
    }
}

fn grey_color(level: f32) -> Color {
    Color::Rgb(Rgb {
        r: level,
        g: level,
        b: level,
        icc_profile: None,
    })
}

/// Lays out one notice on `page`.
pub(crate) fn notice_page(
    page: &mut PageWriter<'_>,
    notice: &Notice,
    printed_at: OffsetDateTime,
    number: usize,
    total: usize,
) {
    let right = PAGE_WIDTH_PT - MARGIN;
    let mut y = PAGE_HEIGHT_PT - 48.0;
    page.right_aligned(
        right,
        y,
        9.0,
        0.25,
        &format!("出力日時　{}", format_date_time(printed_at)),
    );

    y -= 48.0;
    page.centered(y, 20.0, TITLE);
    y -= 12.0;
    page.hline(MARGIN, right, y, 1.2);

    y -= 34.0;
    page.text(
        MARGIN,
        y,
        14.0,
        0.0,
        &format!("{}　様", notice.account_name),
    );

    y -= 10.0;
    y = page.paragraph(
        MARGIN,
        y,
        BODY_SIZE,
        CONTENT_WIDTH,
        "アカウントを発行しましたので、下記のとおりお知らせします。サインイン画面で医療機関等コード、\
         ユーザID、初期パスワードを入力してサインインしてください。",
    );

    y -= 14.0;
    let expiry = match notice.expires_at {
        Some(at) => format!("{}　まで", format_date_time(at)),
        None => "期限なし（システム連携用アカウント）".to_owned(),
    };
    let rows: [(&str, &str, f32); 9] = [
        ("医療機関等名称", &notice.institution_name, BODY_SIZE),
        ("医療機関等コード", &notice.institution_code, 12.0),
        ("氏名・名称", &notice.account_name, BODY_SIZE),
        ("権限区分", &notice.account_type_label, BODY_SIZE),
        ("ユーザID", &notice.user_id, 14.0),
        ("初期パスワード", &notice.initial_password, 14.0),
        ("発行日時", &format_date_time(notice.issued_at), BODY_SIZE),
        ("有効期限", &expiry, BODY_SIZE),
        ("サインインURL", &notice.sign_in_url, BODY_SIZE),
    ];
    for (label, value, size) in rows {
        y = page.row(y, label, value, size);
    }

    y -= 30.0;
    page.text(MARGIN, y, 12.0, 0.0, "ご注意");
    y -= 4.0;
    let instructions: Vec<String> = match notice.expires_at {
        Some(at) => vec![
            format!(
                "初回サインイン時に初期パスワードを新しいパスワードに変更してください。\
                 変更は有効期限（{}）までに行ってください。",
                format_date_time(at)
            ),
            "有効期限を過ぎた初期パスワードではサインインできません。その場合は管理者にパスワードの\
             初期化を依頼してください。"
                .to_owned(),
            "パスワードは英字の大文字と小文字を区別します。".to_owned(),
            "この通知書は他人の目に触れないよう保管し、パスワードの変更後は速やかに破棄してください。"
                .to_owned(),
        ],
        None => vec![
            format!(
                "このパスワードはシステム連携用のクライアントシークレットです。クライアントIDは\
                 「{}@{}」です。有効期限はありません。",
                notice.user_id, notice.institution_code
            ),
            "パスワードは英字の大文字と小文字を区別します。".to_owned(),
            "この通知書は他人の目に触れないよう保管し、設定後は速やかに破棄してください。".to_owned(),
        ],
    };
    for item in instructions {
        page.text(
            MARGIN,
            y - BODY_SIZE * LINE_FACTOR + BODY_SIZE * 0.35,
            BODY_SIZE,
            0.0,
            "・",
        );
        y = page.paragraph(
            MARGIN + BODY_SIZE,
            y,
            BODY_SIZE,
            CONTENT_WIDTH - BODY_SIZE,
            &item,
        );
        y -= 2.0;
    }

    let footer = 36.0;
    page.text(
        MARGIN,
        footer,
        8.0,
        0.4,
        &format!("{} / {}", notice.institution_code, notice.user_id),
    );
    page.right_aligned(right, footer, 8.0, 0.4, &format!("{number} / {total}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_half_width_runs_whole_and_lines_within_the_width() {
        let font = ParsedFont::from_bytes(crate::FONT, 0, &mut Vec::new()).unwrap();
        let mut page = PageWriter::new(&font, FontId("F1".into()));
        let text = "変更は有効期限（2026年05月01日 10:30）までに行ってください。";
        let width = page.width("変更は有効期限（20", BODY_SIZE);
        let lines = page.wrap(text, BODY_SIZE, width);
        assert_eq!(lines.concat(), text);
        assert!(
            lines
                .iter()
                .all(|l| !l.starts_with('。') && !l.starts_with('）'))
        );
        assert!(lines.iter().any(|l| l.starts_with("2026")), "{lines:?}");

        // A URL wider than the cell is broken by character, every line within the width.
        let url = format!("https://idp.example.jp/{}/login", "tenant".repeat(20));
        let max = 300.0;
        let lines = page.wrap(&url, BODY_SIZE, max);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), url);
        for line in &lines {
            assert!(page.width(line, BODY_SIZE) <= max, "{line}");
        }
        assert!(page.missing_glyphs().is_empty());
        assert_eq!(units("ab 12あい"), vec!["ab", " ", "12", "あ", "い"]);
    }
}
