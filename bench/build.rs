//! Compiles the etcd subset and the echo service with `protox` (pure Rust),
//! so neither `protoc` nor a running etcd is needed to build this crate.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=proto");
    let fds = protox::compile(["etcd.proto", "echo.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
