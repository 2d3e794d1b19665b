use std::process::ExitCode;

use clap::Parser;

// mimalloc instead of glibc's malloc: a token request allocates and frees many small blocks
// (JSON, claims, SQL rows), and glibc's malloc was about a tenth of its CPU time. Measured in paired runs
// (docs/performance.md, "The ninth round"): 5-11% less CPU per request at 16 connections, no
// change at one. Only the binary sets it; the libraries and their tests keep the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // rustls (SMTP, AWS, Redis over TLS) uses aws-lc-rs; install it once, before any TLS client.
    delivery::install_crypto_provider();
    let cli = idp::cli::Cli::parse();
    idp::commands::run(cli)
}
