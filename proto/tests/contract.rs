//! Every gRPC toolchain compiles the contract: the reference compiler
//! (`grpcio-tools`, protoc's own parser) and `buf lint` accept `proto/`
//! with no error and no warning. `protox`, which builds this crate, is more
//! lenient than protoc (it let an rpc and a message named `Snapshot`
//! collide), so these run the real tools, installed by `.ci/deps.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the proto crate sits in the repo")
        .to_path_buf()
}

/// The venv `.ci/deps.sh` creates (`CFGD_VENV`, default `<repo>/.venv`).
fn venv() -> PathBuf {
    std::env::var_os("CFGD_VENV").map_or_else(|| repo().join(".venv"), PathBuf::from)
}

fn tool(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} is not installed at {}: run .ci/deps.sh",
        path.display()
    );
    path
}

/// Runs `cmd`; fails with its output unless it succeeds and prints nothing
/// on stderr.
fn quiet(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (run .ci/deps.sh)"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{what} did not accept proto/ ({}):\n{stderr}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn the_reference_compiler_accepts_the_contract_with_no_warning() {
    let python = tool(venv().join("bin/python"), "the Python venv");
    let out = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(python);
    cmd.args(["-m", "grpc_tools.protoc", "--fatal_warnings", "-I"])
        .arg(repo().join("proto/proto"))
        .arg(format!("--python_out={}", out.path().display()))
        .arg(format!("--pyi_out={}", out.path().display()))
        .arg(format!("--grpc_python_out={}", out.path().display()))
        .arg("cfgd/v1/cfgd.proto");
    quiet(cmd, "grpcio-tools (protoc)");
    let stubs = out.path().join("cfgd/v1/cfgd_pb2_grpc.py");
    let text = std::fs::read_to_string(&stubs).expect("protoc wrote the gRPC stubs");
    assert!(
        text.contains("/cfgd.v1.Settings/Snapshot"),
        "the stubs serve cfgd.v1.Settings"
    );
}

#[test]
fn buf_lint_passes() {
    let buf = tool(
        venv().join("buf/node_modules/.bin/buf"),
        "buf (npm @bufbuild/buf)",
    );
    let mut cmd = Command::new(buf);
    cmd.arg("lint").current_dir(repo().join("proto"));
    quiet(cmd, "buf lint");
}

/// The contract stays compatible, on the wire and in JSON, with the one
/// recorded in `compat/baseline.binpb` (fields keep their numbers and types;
/// removed ones are `reserved`). Additions pass; after a release that adds
/// to the contract, record it again: `buf build -o compat/baseline.binpb`.
#[test]
fn the_contract_stays_compatible_with_the_recorded_baseline() {
    let buf = tool(
        venv().join("buf/node_modules/.bin/buf"),
        "buf (npm @bufbuild/buf)",
    );
    let mut cmd = Command::new(buf);
    cmd.args(["breaking", "--against", "compat/baseline.binpb"])
        .current_dir(repo().join("proto"));
    quiet(cmd, "buf breaking");
}
