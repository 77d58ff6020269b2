//! Compiles the .proto contract with protox (pure Rust, no system `protoc`) and
//! generates prost messages and tonic clients/servers from it. The encoded
//! descriptor set is kept for gRPC server reflection and the gateway's
//! transcoding and OpenAPI document.

use std::{env, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "suite/api/v1/annotations.proto",
    "suite/user/v1/user.proto",
    "suite/user/v1/events.proto",
    "suite/user/v1/user_service.proto",
    "suite/auth/v1/events.proto",
    "suite/auth/v1/auth_service.proto",
    "suite/auth/v1/client_service.proto",
    "suite/auth/v1/oauth_service.proto",
];

/// Every message with a secret field; `src/redacted.rs` implements their
/// `Debug` (a message listed here without one there does not compile).
const SECRET_BEARING: &[&str] = &[
    "suite.auth.v1.LoginRequest",
    "suite.auth.v1.LoginResponse",
    "suite.auth.v1.RefreshRequest",
    "suite.auth.v1.RefreshResponse",
    "suite.auth.v1.LogoutRequest",
    "suite.auth.v1.CreateClientResponse",
    "suite.auth.v1.RotateClientSecretResponse",
    "suite.auth.v1.AuthorizeRequest",
    "suite.auth.v1.BrowserSessionCookie",
    "suite.auth.v1.SignInRequest",
    "suite.auth.v1.ConsentRequest",
    "suite.auth.v1.ClientAuthentication",
    "suite.auth.v1.TokenRequest",
    "suite.auth.v1.Tokens",
    "suite.auth.v1.IntrospectRequest",
    "suite.auth.v1.RevokeRequest",
    "suite.auth.v1.UserInfoRequest",
    "suite.auth.v1.EndSessionRequest",
    "suite.user.v1.CreateUserRequest",
    "suite.user.v1.ChangePasswordRequest",
    "suite.user.v1.VerifyCredentialsRequest",
    "suite.user.v1.ImportedUser",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut compiler = protox::Compiler::new(["."])?;
    // Source info carries the comments: reflection clients and the gateway's
    // OpenAPI document show them.
    compiler
        .include_imports(true)
        .include_source_info(true)
        .open_files(PROTOS)?;
    // Encoded by protox itself, which keeps custom options such as
    // google.api.http (prost's own types would drop them as unknown fields).
    fs::write(
        out_dir.join("descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();

    // Type names (`prost::Name`): an event's CloudEvents type is its
    // message's full name.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    // Messages that carry a secret (a password, a token, a password hash)
    // get a hand-written `Debug` that hides it (`src/redacted.rs`): a
    // `?request` in a log line must never print one.
    config.skip_debug(SECRET_BEARING);
    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds_with_config(fds, config)?;

    println!("cargo:rerun-if-changed=suite");
    println!("cargo:rerun-if-changed=google");
    Ok(())
}
