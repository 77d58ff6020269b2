//! `suitectl`, the operator's command line: the first admin, users,
//! sessions, OAuth clients, personal access tokens, health and imports, over gRPC with a service token signed with
//! the auth service's key or an admin's login. Each module does one job;
//! [`main`] runs a parsed command line and gives the exit code. The binary
//! is the root package's `suitectl` (its tests run it against the launched
//! suite); this crate keeps it from linking the services.
#![forbid(unsafe_code)]

pub mod clients;
pub mod connect;
pub mod error;
pub mod factors;
pub mod health;
pub mod import;
pub mod output;
pub mod sessions;
pub mod tokens;
pub mod users;

use clap::{ArgGroup, CommandFactory, Parser, Subcommand};
use connect::{Conn, ConnectArgs};
use error::{CtlError, exit};
use output::Format;
use serde_json::json;
use std::time::Duration;

/// Operate the suite: users, sessions, OAuth clients, personal access
/// tokens, health, imports.
///
/// Exit codes: 0 success; 1 the operation failed (including an import with
/// failed lines); 2 usage error; 3 a service cannot be reached or refuses
/// the credentials.
#[derive(Debug, Parser)]
#[command(name = "suitectl", version)]
pub struct Cli {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// `text` for people, `json` for scripts (no progress bar).
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Administrators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Users: list, get, find, roles, delete, import, second factors.
    #[command(subcommand)]
    Users(UsersCommand),
    /// A user's sessions at the auth service.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// OAuth 2.0 / OpenID Connect clients: the applications that sign their
    /// users in with the suite, or get tokens of their own.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// A user's personal access tokens (`suitepat_…`): named, scoped,
    /// expiring secrets for scripts, created, listed and revoked.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Health of every replica of each service (no credentials needed).
    Health,
    /// Prints a shell completion script (e.g. `suitectl completions bash > /etc/bash_completion.d/suitectl`).
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Creates a user with the admin role (the first admin, for example).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        display_name: String,
        /// Read the password from stdin's first line (required: passwords
        /// never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Lists users, oldest first, through every page.
    List {
        /// Users per call (at most 100).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=100))]
        page_size: i32,
        /// Stop after this many users.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Shows one user by id (`me`: the logged-in admin).
    Get { id: String },
    /// Finds a user by username or email.
    Find {
        #[arg(value_name = "LOGIN")]
        username_or_email: String,
    },
    /// Replaces a user's roles.
    SetRoles {
        id: String,
        /// A role (`user`, `admin`); repeat for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
    },
    /// Deletes a user and ends their sessions.
    Delete {
        id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Imports users with password hashes from JSON lines (see the README).
    Import(import::ImportArgs),
    /// A user's second factors (authenticator apps) and recovery codes.
    #[command(subcommand)]
    Mfa(MfaCommand),
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Lists a user's second factors and how many recovery codes are left.
    List {
        /// The user: an id, a username or an email.
        user: String,
    },
    /// Removes every second factor and recovery code of a user who lost
    /// them: the password alone signs in again. Their sessions stay (end
    /// them with `sessions revoke`).
    Reset {
        /// The user: an id, a username or an email.
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Registers a client; a confidential client's secret is printed once.
    Create {
        /// Public (SPA, native app: PKCE, no secret) or confidential.
        #[arg(long = "type", value_enum)]
        kind: clients::Kind,
        #[command(flatten)]
        fields: clients::ClientFields,
    },
    /// Lists the clients, oldest first.
    List,
    /// Shows one client.
    Get { client_id: String },
    /// Changes the fields given (a repeated flag replaces its whole list).
    Update {
        client_id: String,
        #[command(flatten)]
        fields: clients::ClientFields,
    },
    /// Deletes a client: its tokens, codes, consents and sessions end with it.
    Delete {
        client_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Generates a new secret for a confidential client, printed once.
    RotateSecret {
        client_id: String,
        /// Seconds the previous secret keeps working (default: the
        /// service's, one hour; 0 ends it at once).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(i64).range(0..=604_800))]
        previous_secret_ttl: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Creates a personal access token for a user; its secret is printed
    /// once (the suite keeps only its hash).
    #[command(group(ArgGroup::new("expiry").required(true).args(["expires_in", "expires_at"])))]
    Create {
        /// The user: an id, a username or an email.
        user: String,
        /// A name to tell the token apart, e.g. `ci deploy`.
        #[arg(long)]
        name: String,
        /// What it may do (repeat for several).
        #[arg(long = "scope", value_name = "SCOPE", required = true, value_parser = tokens::SCOPES)]
        scopes: Vec<String>,
        /// How long it works: `90d`, `12h`, `30m`, or a number of days (at
        /// most the service's maximum, 365 days by default).
        #[arg(long, value_name = "DURATION", value_parser = tokens::parse_lifetime)]
        expires_in: Option<chrono::Duration>,
        /// When it stops working, in RFC 3339 (e.g. 2027-01-31T00:00:00Z).
        #[arg(long, value_name = "TIME", value_parser = tokens::parse_time)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Lists a user's tokens, newest first: never their secrets.
    List {
        /// The user: an id, a username or an email.
        user: String,
    },
    /// Revokes a token: refused everywhere within a second.
    Revoke {
        token_id: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Lists a user's live sessions.
    List { user_id: String },
    /// Ends a session.
    Revoke { session_id: String },
}

/// Runs `cli`: prints the results, reports an error on stderr, and gives
/// the exit code.
pub async fn main(cli: Cli) -> u8 {
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("suitectl: {e}");
            e.exit_code()
        }
    }
}

/// Runs `cli`, printing its results on stdout; the exit code on success
/// (non-zero when some replicas or import lines failed).
pub async fn run(cli: Cli) -> Result<u8, CtlError> {
    let format = cli.output;
    match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "suitectl",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Health => health(&cli.connect, format).await,
        command => {
            let mut conn = Conn::open(&cli.connect).await?;
            let result = authenticated(&mut conn, command, format).await;
            conn.close().await;
            result
        }
    }
}

async fn authenticated(conn: &mut Conn, command: Command, format: Format) -> Result<u8, CtlError> {
    let print_user = |u: &suite_proto::user::User| println!("{}", users::print_user(format, u));
    match command {
        Command::Admin(AdminCommand::Create {
            username,
            email,
            display_name,
            password_stdin: _,
        }) => print_user(&users::create_admin(conn, username, email, display_name).await?),
        Command::Users(UsersCommand::List { page_size, limit }) => {
            let list = users::list(conn, page_size, limit).await?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::Value::from(list.iter().map(output::user_json).collect::<Vec<_>>())
                ),
                Format::Text => println!(
                    "{}",
                    output::table(
                        &output::USER_HEADER,
                        &list.iter().map(output::user_row).collect::<Vec<_>>()
                    )
                ),
            }
        }
        Command::Users(UsersCommand::Get { id }) => print_user(&users::get(conn, id).await?),
        Command::Users(UsersCommand::Find { username_or_email }) => {
            print_user(&users::find(conn, username_or_email).await?);
        }
        Command::Users(UsersCommand::SetRoles { id, roles }) => {
            print_user(&users::set_roles(conn, id, roles).await?);
        }
        Command::Users(UsersCommand::Delete { id, yes }) => {
            users::delete(conn, id.clone(), yes).await?;
            match format {
                Format::Json => println!("{}", json!({ "deleted": id })),
                Format::Text => println!("deleted user {id}"),
            }
        }
        Command::Users(UsersCommand::Import(args)) => {
            let report = import::run(conn, &args, format == Format::Text).await?;
            return import_report(&report, format);
        }
        Command::Sessions(SessionsCommand::List { user_id }) => {
            let list = sessions::list(conn, user_id).await?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::Value::from(
                        list.iter().map(output::session_json).collect::<Vec<_>>()
                    )
                ),
                Format::Text => println!(
                    "{}",
                    output::table(
                        &output::SESSION_HEADER,
                        &list.iter().map(output::session_row).collect::<Vec<_>>()
                    )
                ),
            }
        }
        Command::Sessions(SessionsCommand::Revoke { session_id }) => {
            sessions::revoke(conn, session_id.clone()).await?;
            match format {
                Format::Json => println!("{}", json!({ "revoked": session_id })),
                Format::Text => println!("revoked session {session_id}"),
            }
        }
        Command::Users(UsersCommand::Mfa(command)) => mfa_command(conn, command, format).await?,
        Command::Clients(command) => return clients_command(conn, command, format).await,
        Command::Tokens(command) => tokens_command(conn, command, format).await?,
        Command::Health | Command::Completions { .. } => {}
    }
    Ok(0)
}

async fn mfa_command(conn: &mut Conn, command: MfaCommand, format: Format) -> Result<(), CtlError> {
    match command {
        MfaCommand::List { user } => {
            let user = factors::resolve(conn, user).await?;
            let list = factors::list(conn, user.id.clone()).await?;
            match format {
                Format::Json => println!("{}", output::factors_json(&user.id, &list)),
                Format::Text => println!("{}", output::factors_text(&list)),
            }
        }
        MfaCommand::Reset { user, yes } => {
            let user = factors::resolve(conn, user).await?;
            let removed = factors::reset(conn, &user, yes).await?;
            match format {
                Format::Json => println!("{}", json!({ "user_id": user.id, "removed": removed })),
                Format::Text => println!(
                    "removed {removed} second factor{} of {} ({}) and their recovery codes; their sessions stay (end them with `sessions revoke`)",
                    if removed == 1 { "" } else { "s" },
                    user.username,
                    user.id
                ),
            }
        }
    }
    Ok(())
}

async fn tokens_command(
    conn: &mut Conn,
    command: TokensCommand,
    format: Format,
) -> Result<(), CtlError> {
    match command {
        TokensCommand::Create {
            user,
            name,
            scopes,
            expires_in,
            expires_at,
        } => {
            let expire_time = tokens::expiry(expires_in, expires_at, chrono::Utc::now())?;
            let user = factors::resolve(conn, user).await?;
            let created = tokens::create(conn, user.id, name, scopes, expire_time).await?;
            println!("{}", tokens::print_created(format, &created));
        }
        TokensCommand::List { user } => {
            let user = factors::resolve(conn, user).await?;
            let list = tokens::list(conn, user.id).await?;
            println!("{}", tokens::print_list(format, &list));
        }
        TokensCommand::Revoke { token_id, yes } => {
            if !yes {
                users::confirm(&format!(
                    "Revoke personal access token {token_id}? Whatever uses it is refused from now on. [y/N] "
                ))?;
            }
            tokens::revoke(conn, token_id.clone()).await?;
            match format {
                Format::Json => println!("{}", json!({ "revoked": token_id })),
                Format::Text => println!("revoked token {token_id}"),
            }
        }
    }
    Ok(())
}

async fn clients_command(
    conn: &mut Conn,
    command: ClientsCommand,
    format: Format,
) -> Result<u8, CtlError> {
    match command {
        ClientsCommand::Create { kind, fields } => {
            let created = clients::create(conn, kind, fields).await?;
            println!("{}", clients::print_with_secret(format, &created));
        }
        ClientsCommand::List => {
            let list = clients::list(conn).await?;
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::Value::from(
                        list.iter().map(clients::client_json).collect::<Vec<_>>()
                    )
                ),
                Format::Text => println!(
                    "{}",
                    output::table(
                        &clients::CLIENT_HEADER,
                        &list.iter().map(clients::client_row).collect::<Vec<_>>()
                    )
                ),
            }
        }
        ClientsCommand::Get { client_id } => {
            let client = clients::get(conn, client_id).await?;
            println!("{}", clients::print_client(format, &client));
        }
        ClientsCommand::Update { client_id, fields } => {
            let client = clients::update(conn, client_id, fields).await?;
            println!("{}", clients::print_client(format, &client));
        }
        ClientsCommand::Delete { client_id, yes } => {
            if !yes {
                let client = clients::get(conn, client_id.clone()).await?;
                users::confirm(&format!(
                    "Delete client {} ({})? Its tokens, consents and sessions end with it. [y/N] ",
                    client.name, client.client_id
                ))?;
            }
            clients::delete(conn, client_id.clone()).await?;
            match format {
                Format::Json => println!("{}", json!({ "deleted": client_id })),
                Format::Text => println!("deleted client {client_id}"),
            }
        }
        ClientsCommand::RotateSecret {
            client_id,
            previous_secret_ttl,
        } => {
            let rotated = clients::rotate_secret(conn, client_id, previous_secret_ttl).await?;
            println!("{}", clients::print_with_secret(format, &rotated));
        }
    }
    Ok(0)
}

fn import_report(report: &import::Report, format: Format) -> Result<u8, CtlError> {
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(report).map_err(|e| CtlError::Failed(e.to_string()))?
        ),
        Format::Text => {
            println!(
                "{} lines: {} users created, {} skipped (already there), {} failed",
                report.lines,
                report.created,
                report.skipped.len(),
                report.failed.len()
            );
            for f in &report.failed {
                println!("line {}: {}", f.line, f.reason);
            }
        }
    }
    if let Some(e) = &report.unreachable {
        return Err(CtlError::Unreachable(e.clone()));
    }
    if report.failed.is_empty() {
        Ok(0)
    } else {
        eprintln!(
            "suitectl: {} lines were not imported (see above); fix them and run the import again: users already imported are skipped",
            report.failed.len()
        );
        Ok(exit::FAILED)
    }
}

async fn health(args: &ConnectArgs, format: Format) -> Result<u8, CtlError> {
    let limit = Duration::from_secs(args.timeout_secs.min(5));
    let mut replicas = Vec::new();
    let mut down = Vec::new();
    for (service, url, name) in health::services(&args.user_service_url, &args.auth_service_url) {
        let found = health::check(service, &url, name, limit).await?;
        if !found.iter().any(|r| r.serving) {
            down.push(service);
        }
        replicas.extend(found);
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&replicas).map_err(|e| CtlError::Failed(e.to_string()))?
        ),
        Format::Text => {
            let rows: Vec<Vec<String>> = replicas
                .iter()
                .map(|r| vec![r.service.to_owned(), r.address.clone(), r.status.clone()])
                .collect();
            println!(
                "{}",
                output::table(&["SERVICE", "ADDRESS", "STATUS"], &rows)
            );
        }
    }
    if down.is_empty() {
        Ok(0)
    } else {
        eprintln!("suitectl: no SERVING replica of: {}", down.join(", "));
        Ok(exit::FAILED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("suitectl").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn mfa_list_and_reset_take_one_user_and_reset_asks_unless_yes() {
        let cli = parse(&["users", "mfa", "list", "ada@example.com"]).expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Users(UsersCommand::Mfa(MfaCommand::List { ref user })) if user == "ada@example.com"
        ));
        let cli =
            parse(&["--output", "json", "users", "mfa", "reset", "ada", "--yes"]).expect("parsed");
        assert_eq!(cli.output, Format::Json);
        assert!(matches!(
            cli.command,
            Command::Users(UsersCommand::Mfa(MfaCommand::Reset { ref user, yes: true })) if user == "ada"
        ));
        let cli = parse(&[
            "users",
            "mfa",
            "reset",
            "0190f5c4-0000-7000-8000-000000000001",
        ])
        .expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Users(UsersCommand::Mfa(MfaCommand::Reset { yes: false, .. }))
        ));
        for bad in [
            &["users", "mfa", "list"][..],
            &["users", "mfa", "reset"],
            &["users", "mfa", "list", "a", "b"],
            &["users", "mfa", "enroll", "ada"],
        ] {
            let e = parse(bad).map(|_| ()).expect_err("refused");
            assert_eq!(e.exit_code(), i32::from(exit::USAGE), "{bad:?}");
        }
    }

    #[test]
    fn tokens_create_needs_a_user_a_name_a_scope_and_one_expiry() {
        let cli = parse(&[
            "tokens",
            "create",
            "ada",
            "--name",
            "ci",
            "--scope",
            "user:read",
            "--scope",
            "user:write",
            "--expires-in",
            "30d",
        ])
        .expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Tokens(TokensCommand::Create { ref user, ref scopes, expires_in: Some(d), expires_at: None, .. })
                if user == "ada" && scopes == &["user:read", "user:write"] && d == chrono::Duration::days(30)
        ));
        let cli = parse(&[
            "tokens",
            "create",
            "ada",
            "--name",
            "ci",
            "--scope",
            "admin",
            "--expires-at",
            "2027-01-31T00:00:00Z",
        ])
        .expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Tokens(TokensCommand::Create {
                expires_in: None,
                expires_at: Some(_),
                ..
            })
        ));
        let neither = parse(&[
            "tokens",
            "create",
            "ada",
            "--name",
            "ci",
            "--scope",
            "user:read",
        ])
        .map(|_| ())
        .expect_err("refused");
        assert_eq!(neither.exit_code(), i32::from(exit::USAGE));
        let text = neither.to_string();
        assert!(
            text.contains("--expires-in") && text.contains("--expires-at"),
            "{text}"
        );
        for bad in [
            &[
                "tokens",
                "create",
                "--name",
                "ci",
                "--scope",
                "user:read",
                "--expires-in",
                "1d",
            ][..],
            &[
                "tokens",
                "create",
                "ada",
                "--scope",
                "user:read",
                "--expires-in",
                "1d",
            ],
            &[
                "tokens",
                "create",
                "ada",
                "--name",
                "ci",
                "--expires-in",
                "1d",
            ],
            &[
                "tokens",
                "create",
                "ada",
                "--name",
                "ci",
                "--scope",
                "root",
                "--expires-in",
                "1d",
            ],
            &[
                "tokens",
                "create",
                "ada",
                "--name",
                "ci",
                "--scope",
                "user:read",
                "--expires-in",
                "1y",
            ],
            &[
                "tokens",
                "create",
                "ada",
                "--name",
                "ci",
                "--scope",
                "user:read",
                "--expires-in",
                "1d",
                "--expires-at",
                "2027-01-31T00:00:00Z",
            ],
            &[
                "tokens",
                "create",
                "ada",
                "--name",
                "ci",
                "--scope",
                "user:read",
                "--expires-at",
                "soon",
            ],
            &["tokens", "list"],
            &["tokens", "revoke"],
        ] {
            let e = parse(bad).map(|_| ()).expect_err("refused");
            assert_eq!(e.exit_code(), i32::from(exit::USAGE), "{bad:?}");
        }
        let cli =
            parse(&["tokens", "list", "ada@example.com", "--output", "json"]).expect("parsed");
        assert_eq!(cli.output, Format::Json);
        assert!(matches!(
            cli.command,
            Command::Tokens(TokensCommand::List { ref user }) if user == "ada@example.com"
        ));
        let cli = parse(&["tokens", "revoke", "t1"]).expect("parsed");
        assert!(matches!(
            cli.command,
            Command::Tokens(TokensCommand::Revoke { ref token_id, yes: false }) if token_id == "t1"
        ));
    }
}
