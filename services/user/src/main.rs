//! `suite-user`: runs the user service, or applies its migrations.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(version, about = "The suite's user service (gRPC)")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: suite_user::Config,
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
            suite_shared::probe::grpc(cli.config.listen_addr, "suite.user.v1.UserService").await;
        return suite_shared::probe::exit_code("suite-user", result);
    }
    let telemetry = match suite_shared::telemetry::init("suite-user", env!("CARGO_PKG_VERSION")) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("suite-user: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        // Handled above, before logging starts.
        Command::Healthcheck => Ok(()),
        Command::Migrate => suite_user::migrate(&cli.config).await,
        Command::Serve => match suite_shared::grpc::bind(cli.config.listen_addr).await {
            Ok(listener) => {
                suite_user::serve(cli.config, listener, suite_shared::shutdown::signal()).await
            }
            Err(e) => Err(suite_user::Error::Internal(e.to_string())),
        },
    };
    // The last spans go out before the process ends.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suite-user: {e}");
            ExitCode::FAILURE
        }
    }
}
