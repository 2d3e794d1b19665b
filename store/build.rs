//! `sqlx::migrate!` embeds the migration folders at compile time; without this a migration added
//! to a folder would not reach an incremental build.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
