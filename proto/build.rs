//! Compiles the `.proto` files with protox (pure Rust, so no system `protoc` is needed) and generates
//! prost messages plus tonic clients and servers. Also writes the encoded descriptor set, which the
//! services hand to gRPC server reflection.

use std::{error::Error, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &[
    "protos/tern/types/v1/types.proto",
    "protos/tern/auth/v1/auth.proto",
    "protos/tern/events/v1/events.proto",
    "protos/tern/broker/v1/broker.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["protos"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("tern_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Payloads, passwords and correlation data become `bytes::Bytes`: no copies on the way
        // from the MQTT codec to the wire.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
