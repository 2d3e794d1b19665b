//! One journey in a real headless browser (Debian Chromium driven by npm playwright-core, both
//! installed by `scripts/browser/install`): sign in with an initial password, the forced change,
//! enrollment of an e-mail second factor (the code read from the development outbox), a password
//! change on `/account`, and sign-out. Screenshots are kept under
//! `target/browser-journey/`.

use std::path::Path;
use std::process::Command;

use sekimori_tests::{Backend, spawn_app};

fn available() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let ready = Path::new("/usr/bin/chromium").exists()
        && root
            .join("scripts/browser/node_modules/playwright-core")
            .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !ready {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but the browser is not installed: run scripts/browser/install");
        }
        eprintln!(
            "note: Chromium or playwright-core missing (scripts/browser/install); skipping the browser journey"
        );
    }
    ready
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_changes_passwords_and_signs_out_in_chromium() {
    if !available() {
        return;
    }
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let created = app.institution("1312222222").await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let screenshots = root.join("target/browser-journey");
    let _ = std::fs::remove_dir_all(&screenshots);
    // Chromium accepts Secure cookies over plain http only on localhost.
    let base = app.base.replace("127.0.0.1", "localhost");
    let mut node = Command::new("node");
    node.arg(root.join("scripts/browser/journey.mjs"))
        .env("BASE", &base)
        .env("INSTITUTION", "1312222222")
        .env("USER_ID", "mst01")
        .env("INITIAL_PASSWORD", &created.master.initial_password)
        .env("SCREENSHOTS", &screenshots)
        .env("OUTBOX", &app.settings.outbox.path);
    // The server runs on this runtime: wait for the browser on a blocking thread.
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("run node");
    assert!(
        output.status.success(),
        "journey failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for shot in [
        "01-login",
        "02-forced-change-refused",
        "03-enroll-second-factor",
        "04-code",
        "05-account",
        "06-password-changed",
        "07-signed-out",
        "08-old-password-refused",
        "09-new-password-accepted",
    ] {
        assert!(
            screenshots.join(format!("{shot}.png")).exists(),
            "missing screenshot {shot}"
        );
    }
}
