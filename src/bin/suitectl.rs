//! `suitectl`: the operator's command line (see the `suite-ctl` crate).
#![forbid(unsafe_code)]

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = <suite_ctl::Cli as clap::Parser>::parse();
    ExitCode::from(suite_ctl::main(cli).await)
}
