//! `suitectl`: the operator's command line (see `suite::ctl`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = <suite::ctl::Cli as clap::Parser>::parse();
    ExitCode::from(suite::ctl::main(cli).await)
}
