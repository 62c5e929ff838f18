//! `default-features = false` gives the retry engine alone: neither tonic
//! nor the gRPC client is compiled for it (checked with `cargo tree`, on
//! the dependencies a build of the library would compile).

use std::process::Command;

#[test]
fn the_engine_alone_does_not_depend_on_tonic_or_the_client() {
    let tree = |features: &[&str]| {
        let out = Command::new(env!("CARGO"))
            .args(["tree", "--offline", "-e", "normal", "--prefix", "none"])
            .args([
                "--manifest-path",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            ])
            .args(["-p", "cfgd-sdk"])
            .args(features)
            .output()
            .expect("cargo runs");
        assert!(
            out.status.success(),
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let engine_only = tree(&["--no-default-features"]);
    for absent in [
        "tonic",
        "tonic-types",
        "cfgd-proto",
        "hyper-util",
        "tower",
        "prost",
    ] {
        assert!(
            !engine_only.iter().any(|c| c == absent),
            "`{absent}` is built without the `client` feature: {engine_only:?}"
        );
    }
    assert!(engine_only.iter().any(|c| c == "cfgd-settings"));
    // The check can fail: the default build does have them.
    let full = tree(&[]);
    assert!(full.iter().any(|c| c == "tonic"), "{full:?}");
}
