//! `suite-auth`: runs the auth service, or applies its migrations.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "The suite's auth service (gRPC)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: suite_auth::Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve gRPC (the default).
    Serve,
    /// Apply database migrations, then exit.
    Migrate,
    /// Exit 0 if the service at LISTEN_ADDR is SERVING (gRPC health), 1 if not:
    /// a probe for runtimes without a shell (compose on a distroless image).
    Healthcheck,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck) = cli.command {
        let result =
            suite_shared::probe::grpc(cli.config.listen_addr, "suite.auth.v1.AuthService").await;
        return suite_shared::probe::exit_code("suite-auth", result);
    }
    let telemetry = match suite_shared::telemetry::init("suite-auth", env!("CARGO_PKG_VERSION")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("suite-auth: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        // Handled above, before logging starts.
        Command::Healthcheck => Ok(()),
        Command::Migrate => suite_auth::migrate(&cli.config).await,
        Command::Serve => match suite_shared::grpc::bind(cli.config.listen_addr).await {
            Ok(listener) => {
                suite_auth::serve(cli.config, listener, suite_shared::shutdown::signal()).await
            }
            Err(e) => Err(suite_auth::Error::Internal(e.to_string())),
        },
    };
    // The last spans go out before the process ends.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suite-auth: {e}");
            ExitCode::FAILURE
        }
    }
}
