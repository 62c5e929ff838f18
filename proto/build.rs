//! Compiles `proto/cfgd/v1/cfgd.proto` with `protox` (pure Rust), so no
//! `protoc` is needed, and keeps its descriptor set for server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=proto");
    let fds = protox::compile(["cfgd/v1/cfgd.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("cfgd_descriptor.bin"), fds.encode_to_vec())?;
    let mut config = prost_build::Config::new();
    // `prost::Name` for every message: the type URL of a `google.protobuf.Any`
    // (error details) comes from the type, not from a string written by hand.
    config
        .enable_type_names()
        .type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
