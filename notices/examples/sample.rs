//! Writes a sample notice document with made-up data, to look at the layout:
//! `cargo run -p notices --example sample -- sample.pdf [pages]`.

use notices::{Notice, Renderer};
use time::macros::datetime;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "sample.pdf".into());
    let pages: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1);
    let notices: Vec<Notice> = (1..=pages)
        .map(|i| Notice {
            institution_name: "医療法人社団関守会　せきもり内科クリニック".into(),
            institution_code: "1312345678".into(),
            account_name: "山田　花子".into(),
            account_type_label: "一般アカウント".into(),
            user_id: format!("user{i:02}"),
            initial_password: "Kx7#mP4q@Wf3".into(),
            issued_at: datetime!(2026-04-01 01:30 UTC),
            expires_at: Some(datetime!(2026-05-01 01:30 UTC)),
            sign_in_url: "https://idp.sekimori.example.jp/login".into(),
        })
        .collect();
    let started = std::time::Instant::now();
    let renderer = Renderer::new()?;
    let parsed = started.elapsed();
    let rendered = renderer.render(&notices, datetime!(2026-04-02 00:00 UTC))?;
    eprintln!(
        "font parsed in {parsed:?}, {} page(s) rendered in {:?}, {} bytes",
        rendered.pages,
        started.elapsed() - parsed,
        rendered.pdf.len()
    );
    std::fs::write(&path, rendered.pdf)?;
    Ok(())
}
