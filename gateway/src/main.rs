//! `suite-gateway`: runs the REST gateway.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    suite_runtime::runner::main::<suite_gateway::Gateway>()
}
