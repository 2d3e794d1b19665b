use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // rustls (SMTP, AWS, Redis over TLS) uses aws-lc-rs; install it once, before any TLS client.
    delivery::install_crypto_provider();
    let cli = idp::cli::Cli::parse();
    idp::commands::run(cli)
}
