//! The `main` of every binary, written once: parse the configuration (a bad
//! value stops here, naming its variable), then serve, apply migrations or
//! probe a running instance; telemetry is flushed before the process exits.

use crate::readiness::Readiness;
use clap::{Args, Command, FromArgMatches};
use std::{fmt::Display, net::SocketAddr, process::ExitCode, sync::Arc};
use tokio::net::TcpListener;

/// How the `healthcheck` subcommand asks an instance whether it is ready.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// gRPC health of this service name.
    Grpc(&'static str),
    /// `GET` of this path answers 2xx.
    Http(&'static str),
}

/// A binary of the suite.
pub trait Service {
    type Config: Args + FromArgMatches;
    type Error: Display;
    /// The binary's name, for logs, traces and error messages.
    const NAME: &'static str;
    const ABOUT: &'static str;
    const VERSION: &'static str;
    const PROBE: Probe;
    /// Whether it has a database to migrate (a `migrate` subcommand, which
    /// runs [`Readiness::migrate`] of [`Service::database`]).
    const MIGRATES: bool;

    fn listen_addr(config: &Self::Config) -> SocketAddr;

    /// Where and how `healthcheck` asks: [`Service::PROBE`] at the listen
    /// address, unless the binary knows better (the gateway's readiness is
    /// on its admin port).
    fn probe(config: &Self::Config) -> (SocketAddr, Probe) {
        (Self::listen_addr(config), Self::PROBE)
    }

    fn serve(
        config: Self::Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// The database to migrate, once the configuration is checked.
    fn database(config: &Self::Config) -> Result<Option<Arc<dyn Readiness>>, Self::Error> {
        let _ = config;
        Ok(None)
    }
}

/// The binary (a unit struct) and its [`Service`], for a gRPC service with
/// a database: it listens at its
/// configuration's `listen_addr`, is probed by gRPC health of its first
/// service, serves with `$serve`, and migrates the database `$open` gives
/// once the configuration `validate`s. The two services are such binaries;
/// the gateway writes its own.
#[macro_export]
macro_rules! grpc_service_with_database {
    ($(#[$doc:meta])* $vis:vis struct $binary:ident: $name:literal, $about:literal, $services:expr;
     $config:ty, $error:ty, $serve:path, $open:path) => {
        $(#[$doc])*
        #[derive(Debug)]
        $vis struct $binary;

        impl $crate::runner::Service for $binary {
            type Config = $config;
            type Error = $error;
            const NAME: &'static str = $name;
            const ABOUT: &'static str = $about;
            const VERSION: &'static str = env!("CARGO_PKG_VERSION");
            const PROBE: $crate::runner::Probe = $crate::runner::Probe::Grpc($services[0]);
            const MIGRATES: bool = true;

            fn listen_addr(config: &$config) -> ::std::net::SocketAddr {
                config.listen_addr
            }

            fn serve(
                config: $config,
                listener: ::tokio::net::TcpListener,
                shutdown: impl ::std::future::Future<Output = ()> + Send + 'static,
            ) -> impl ::std::future::Future<Output = Result<(), $error>> {
                $serve(config, listener, shutdown)
            }

            fn database(
                config: &$config,
            ) -> Result<Option<::std::sync::Arc<dyn $crate::readiness::Readiness>>, $error> {
                config.validate()?;
                Ok(Some(::std::sync::Arc::new($open(config)?)))
            }
        }
    };
}

/// Runs `S` as the process's `main`.
pub fn main<S: Service>() -> ExitCode {
    let mut cli = Command::new(S::NAME)
        .subcommand(Command::new("serve").about("Serve (the default)"))
        .subcommand(Command::new("healthcheck").about(
            "Exit 0 if the instance is ready, 1 if not (the gateway: /readyz at ADMIN_ADDR \
             if set, else /api/health at LISTEN_ADDR): a probe for runtimes without a \
             shell (compose on a distroless image)",
        ));
    if S::MIGRATES {
        cli = cli.subcommand(Command::new("migrate").about("Apply database migrations, then exit"));
    }
    // After the arguments: a flattened group's doc comment would replace `about`.
    let matches = S::Config::augment_args(cli)
        .about(S::ABOUT)
        .version(S::VERSION)
        .get_matches();
    let config = match S::Config::from_arg_matches(&matches) {
        Ok(config) => config,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(S::NAME, e),
    };
    let command = matches.subcommand_name().unwrap_or("serve").to_owned();
    runtime.block_on(run::<S>(&command, config))
}

async fn run<S: Service>(command: &str, config: S::Config) -> ExitCode {
    if command == "healthcheck" {
        let (addr, probe) = S::probe(&config);
        let result = match probe {
            Probe::Grpc(service) => crate::probe::grpc(addr, service).await,
            Probe::Http(path) => crate::probe::http(addr, path).await,
        };
        return crate::probe::exit_code(S::NAME, result);
    }
    let telemetry = match suite_telemetry::init(S::NAME, S::VERSION) {
        Ok(t) => t,
        Err(e) => return fail(S::NAME, e),
    };
    let result = if command == "migrate" {
        match S::database(&config) {
            Ok(Some(database)) => database.migrate().await,
            Ok(None) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    } else {
        match crate::listen::bind(S::listen_addr(&config)).await {
            Ok(listener) => S::serve(config, listener, crate::shutdown::signal())
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    // The last spans go out before the process ends.
    telemetry.shutdown().await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(S::NAME, e),
    }
}

fn fail(name: &str, e: impl Display) -> ExitCode {
    eprintln!("{name}: {e}");
    ExitCode::FAILURE
}
