use lopdf::{Document, Object};
use time::macros::datetime;

use super::*;

fn notice(user_id: &str, password: &str) -> Notice {
    Notice {
        institution_name: "関守クリニック".into(),
        institution_code: "1312345678".into(),
        account_name: "山田　花子".into(),
        account_type_label: "一般アカウント".into(),
        user_id: user_id.into(),
        initial_password: password.into(),
        issued_at: datetime!(2026-04-01 01:30 UTC),
        expires_at: Some(datetime!(2026-05-01 01:30 UTC)),
        sign_in_url: "https://idp.example.jp/login".into(),
    }
}

fn printed_at() -> OffsetDateTime {
    datetime!(2026-04-02 00:00 UTC)
}

/// The embedded font programs (`/FontFile2` streams) and their sizes.
fn font_files(doc: &Document) -> Vec<usize> {
    doc.objects
        .values()
        .filter_map(|o| match o {
            Object::Dictionary(d) if d.has(b"FontFile2") => {
                let id = d.get(b"FontFile2").ok()?.as_reference().ok()?;
                let stream = doc.get_object(id).ok()?.as_stream().ok()?;
                Some(stream.content.len())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn one_notice_is_a_small_a4_pdf_with_a_subset_font() {
    let renderer = Renderer::new().expect("the embedded font parses");
    let rendered = renderer
        .render(&[notice("taro01", "Kx7#mP4q@Wf3")], printed_at())
        .expect("renders");
    assert_eq!(rendered.pages, 1);
    assert!(
        rendered.missing_glyphs.is_empty(),
        "{:?}",
        rendered.missing_glyphs
    );
    assert!(rendered.pdf.starts_with(b"%PDF-"));

    let doc = Document::load_mem(&rendered.pdf).expect("a valid PDF");
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 1);
    let page = doc.get_object(pages[&1]).unwrap().as_dict().unwrap();
    let media_box = page.get(b"MediaBox").unwrap().as_array().unwrap();
    let size: Vec<f32> = media_box.iter().map(|v| v.as_float().unwrap()).collect();
    assert!((size[2] - PAGE_WIDTH_PT).abs() < 1.0 && (size[3] - PAGE_HEIGHT_PT).abs() < 1.0);

    // The font is embedded, and only as a subset: the full IPAexGothic is 6 MB.
    let fonts = font_files(&doc);
    assert_eq!(fonts.len(), 1, "one embedded font program");
    assert!(fonts[0] < 100_000, "font program of {} bytes", fonts[0]);
    assert!(
        rendered.pdf.len() < 100_000,
        "a notice should be tens of kilobytes, got {}",
        rendered.pdf.len()
    );
}

#[test]
fn a_selection_has_one_page_per_notice_in_order() {
    let renderer = Renderer::new().unwrap();
    let notices = [
        notice("user01", "Ab3#Ab3#Ab3#"),
        notice("user02", "Cd4$Cd4$Cd4$"),
        notice("user03", "Ef5%Ef5%Ef5%"),
    ];
    let rendered = renderer.render(&notices, printed_at()).unwrap();
    assert_eq!(rendered.pages, 3);
    let doc = Document::load_mem(&rendered.pdf).unwrap();
    assert_eq!(doc.get_pages().len(), 3);
    // Three pages share one subset font.
    assert_eq!(font_files(&doc).len(), 1);
}

#[test]
fn machine_accounts_and_missing_glyphs() {
    let renderer = Renderer::new().unwrap();
    let mut machine = notice("A0api01", "Xy7#Xy7#Xy7#Xy7#Xy7#Xy7#");
    machine.expires_at = None;
    machine.account_type_label = "WebAPI用アカウント".into();
    // U+20BB7 (𠮷) is outside IPAexGothic: rendered as a blank and reported.
    machine.account_name = "𠮷野家受付".into();
    let rendered = renderer.render(&[machine], printed_at()).unwrap();
    assert_eq!(rendered.missing_glyphs, vec!['𠮷']);
    assert_eq!(rendered.pages, 1);
}

#[test]
fn nothing_to_render_is_an_error() {
    let renderer = Renderer::new().unwrap();
    assert!(matches!(
        renderer.render(&[], printed_at()),
        Err(NoticeError::Empty)
    ));
}

#[test]
fn dates_are_shown_in_japan_time_and_debug_hides_the_password() {
    assert_eq!(
        format_date(datetime!(2026-03-31 15:30 UTC)),
        "2026年04月01日"
    );
    assert_eq!(
        format_date_time(datetime!(2026-03-31 15:30 UTC)),
        "2026年04月01日 00:30"
    );
    let shown = format!("{:?}", notice("taro01", "Kx7#mP4q@Wf3"));
    assert!(!shown.contains("Kx7#mP4q@Wf3"), "{shown}");
    assert!(shown.contains("taro01"));
}
