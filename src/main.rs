//! `suite`: the whole suite in one process for a first look and local
//! development. Each service keeps its own port and speaks real gRPC.
//! (Today the suite is the user service; auth and the gateway join it here.)
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
    user: suite_user::Config,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    suite_shared::telemetry::init_logging();
    let listener = match suite_shared::grpc::bind(cli.user.listen_addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("suite: {e}");
            return ExitCode::FAILURE;
        }
    };
    match suite_user::serve(cli.user, listener, suite_shared::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("suite: {e}");
            ExitCode::FAILURE
        }
    }
}
