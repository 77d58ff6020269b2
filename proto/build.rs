//! Compiles the .proto contract with protox (pure Rust, no system `protoc`) and
//! generates prost messages and tonic clients/servers from it. The encoded
//! descriptor set is kept for gRPC server reflection (and, later, the gateway).

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "suite/user/v1/user_service.proto",
    "suite/auth/v1/auth_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["."])?;
    fs::write(out_dir.join("descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        .emit_rerun_if_changed(false)
        .compile_fds(fds)?;

    println!("cargo:rerun-if-changed=suite");
    println!("cargo:rerun-if-changed=google");
    Ok(())
}
