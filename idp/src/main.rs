use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = idp::cli::Cli::parse();
    idp::commands::run(cli)
}
