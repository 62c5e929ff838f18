//! Compiles `proto/cfgd/v1/cfgd.proto` with `protox` (pure Rust), so no
//! `protoc` is needed, and keeps its descriptor set for server reflection.
//!
//! Two generations from the one descriptor set:
//! - the messages and the client (`pb`, as every client sees the contract);
//! - the server (`pb::settings_server`), in which the messages are the
//!   ones above except `WatchResponse`, which is [`WatchFrame`]: an
//!   already-encoded `WatchResponse`, so the daemon encodes a change once
//!   and every watcher sends the same bytes. Its methods use
//!   `codec::LeanCodec`, whose encode buffer starts empty (a held watch
//!   stream keeps it).
//!
//! [`WatchFrame`]: ../cfgd_proto/frame/struct.WatchFrame.html

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
        .build_server(false)
        .build_client(true)
        .compile_fds_with_config(fds.clone(), config)?;

    let server = out.join("server");
    std::fs::create_dir_all(&server)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .out_dir(&server)
        // The most specific path wins: every message is `pb`'s, except the
        // watch's responses.
        .extern_path(".cfgd.v1", "crate::pb")
        .extern_path(".cfgd.v1.WatchResponse", "crate::frame::WatchFrame")
        .codec_path("crate::codec::LeanCodec")
        .compile_fds(fds)?;
    Ok(())
}
