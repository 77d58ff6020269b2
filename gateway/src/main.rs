//! `suite-gateway`: runs the REST gateway.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "The suite's REST/JSON gateway")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: suite_gateway::Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Exit 0 if the gateway at LISTEN_ADDR is ready (`GET /readyz`), 1 if not:
    /// a probe for runtimes without a shell (compose on a distroless image).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck) = cli.command {
        let result = suite_shared::probe::http(cli.config.listen_addr, "/readyz").await;
        return suite_shared::probe::exit_code("suite-gateway", result);
    }
    let telemetry = match suite_shared::telemetry::init("suite-gateway", env!("CARGO_PKG_VERSION"))
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("suite-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match tokio::net::TcpListener::bind(cli.config.listen_addr).await {
        Ok(listener) => {
            suite_gateway::serve(cli.config, listener, suite_shared::shutdown::signal()).await
        }
        Err(e) => Err(e.into()),
    };
    // The last spans go out before the process ends.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suite-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
