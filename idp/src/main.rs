use std::process::ExitCode;

use clap::Parser;

// mimalloc instead of glibc's malloc: a token request allocates and frees many small blocks
// (JSON, claims, rows), and glibc's malloc was about a tenth of its CPU time. In paired runs
// (docs/performance.md, "The ninth round") it took 2-11% off the CPU time of a token request at
// 16 connections and changed nothing at one. Only the binary sets it; the libraries and their
// tests keep the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // rustls (SMTP, AWS, Redis over TLS) uses aws-lc-rs; install it once, before any TLS client.
    delivery::install_crypto_provider();
    let cli = idp::cli::Cli::parse();
    idp::commands::run(cli)
}
