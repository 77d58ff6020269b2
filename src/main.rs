//! `suite`: the whole suite in one process (see the library for what it wires).
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    version,
    about = "Runs the users-and-authentication suite in one process"
)]
struct Cli {
    #[command(flatten)]
    suite: suite::SuiteConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry =
        match suite_telemetry::init_suite("suite", &suite::SERVICES, env!("CARGO_PKG_VERSION")) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("suite: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = async {
        let listeners = suite::Listeners::bind(&cli.suite).await?;
        if let Ok(addr) = listeners.gateway.local_addr() {
            println!("{}", suite::welcome(addr));
        }
        suite::run(
            cli.suite,
            suite_user::Config::defaults(),
            suite_auth::Config::defaults(),
            suite_gateway::Config::defaults(),
            listeners,
            suite_runtime::shutdown::signal(),
        )
        .await
    }
    .await;
    // The last spans go out before the process ends.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suite: {e}");
            ExitCode::FAILURE
        }
    }
}
