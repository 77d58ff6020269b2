//! `suite-user`: runs the user service, or applies its migrations.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    suite_runtime::runner::main::<suite_user::UserBinary>()
}
