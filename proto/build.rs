//! Compiles the .proto contract with protox (pure Rust, no system `protoc`) and
//! generates prost messages and tonic clients/servers from it. The encoded
//! descriptor set is kept for gRPC server reflection and the gateway's
//! transcoding and OpenAPI document.

use prost_reflect::{DescriptorPool, Value};
use std::{env, fmt::Write as _, fs, path::PathBuf};

const PROTOS: &[&str] = &[
    "suite/api/v1/annotations.proto",
    "suite/user/v1/user.proto",
    "suite/user/v1/events.proto",
    "suite/user/v1/user_service.proto",
    "suite/auth/v1/events.proto",
    "suite/auth/v1/auth_service.proto",
    "suite/auth/v1/client_service.proto",
    "suite/auth/v1/oauth_service.proto",
    "suite/auth/v1/token_service.proto",
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
    "suite.auth.v1.CreatePersonalAccessTokenResponse",
    "suite.auth.v1.ExchangePersonalAccessTokenRequest",
    "suite.auth.v1.ExchangePersonalAccessTokenResponse",
    "suite.user.v1.CreateUserRequest",
    "suite.user.v1.ChangePasswordRequest",
    "suite.user.v1.VerifyCredentialsRequest",
    "suite.user.v1.ImportedUser",
    "suite.user.v1.ConfirmEmailRequest",
    "suite.user.v1.RevertEmailChangeRequest",
    "suite.user.v1.ResetPasswordRequest",
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
    fs::write(
        out_dir.join("access.rs"),
        access_table(&compiler.descriptor_pool())?,
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

/// The method -> access table of `src/access.rs`, from each method's
/// `suite.api.v1.access` and `suite.api.v1.http` options: written here, at
/// build time, so that every verifier (gateway and services) reads the one
/// contract without a descriptor pool of its own.
fn access_table(pool: &DescriptorPool) -> Result<String, Box<dyn std::error::Error>> {
    let access = pool
        .get_extension_by_name("suite.api.v1.access")
        .ok_or("suite.api.v1.access is not declared")?;
    let http = pool
        .get_extension_by_name("suite.api.v1.http")
        .ok_or("suite.api.v1.http is not declared")?;
    let rest = pool
        .get_extension_by_name("google.api.http")
        .ok_or("google.api.http is not declared")?;
    let mut rows = Vec::new();
    // Routed over REST, needing a token, naming no scope and not declared
    // first-party: every OAuth token is refused there, which a test flags
    // as most likely an oversight.
    let mut unscoped = Vec::new();
    for service in pool.services() {
        if !service.full_name().starts_with("suite.") {
            continue;
        }
        for method in service.methods() {
            let options = method.options();
            let field = |ext, name: &str| match options.get_extension(ext).as_ref() {
                Value::Message(m) => m.get_field_by_name(name).map(|v| v.into_owned()),
                _ => None,
            };
            let public = options.has_extension(&http)
                && matches!(field(&http, "public"), Some(Value::Bool(true)));
            let scope = if options.has_extension(&access) {
                match field(&access, "scope") {
                    Some(Value::String(s)) if !s.is_empty() => Some(s),
                    _ => None,
                }
            } else {
                None
            };
            let first_party = options.has_extension(&access)
                && matches!(field(&access, "first_party"), Some(Value::Bool(true)));
            let entry = match (public, scope) {
                (true, None) => "MethodAccess::Open".to_owned(),
                (false, Some(s)) => format!("MethodAccess::Scope({s:?})"),
                (false, None) => {
                    if options.has_extension(&rest) && !first_party {
                        unscoped.push(method.full_name().to_owned());
                    }
                    "MethodAccess::FirstParty".to_owned()
                }
                (true, Some(_)) => {
                    return Err(
                        format!("{}: a public method needs no scope", method.full_name()).into(),
                    );
                }
            };
            rows.push((format!("/{}/{}", service.full_name(), method.name()), entry));
        }
    }
    // Sorted, for a binary search.
    rows.sort();
    let mut out = String::from("pub(crate) static METHODS: &[(&str, MethodAccess)] = &[\n");
    for (path, entry) in rows {
        writeln!(out, "    ({path:?}, {entry}),")?;
    }
    out.push_str("];\n");
    writeln!(
        out,
        "#[cfg(test)]\npub(crate) static UNSCOPED_ROUTES: &[&str] = &{unscoped:?};"
    )?;
    Ok(out)
}
