//! Compiles the echo service with `protox` (pure Rust), so neither `protoc`
//! nor a running server is needed to build this crate. etcd's protos and
//! client come from `cfgd-etcd`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=proto");
    let fds = protox::compile(["echo.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
