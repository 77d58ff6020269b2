//! `suite-auth`: runs the auth service, or applies its migrations.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    suite_runtime::runner::main::<suite_auth::AuthBinary>()
}
