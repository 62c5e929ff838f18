//! The Python client's pytest suite (`python/tests`), run against this
//! build's `cfgd` binary: get, snapshot, set (accepted, refused with typed
//! problems, compare-and-set), and watches (a set seen once, a daemon
//! restart gone through with nothing missed or repeated), on TCP and on a
//! Unix socket with grpc-core's own `:authority`. The venv and the package
//! come from `.ci/deps.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the daemon crate sits in the repo")
        .to_path_buf()
}

#[test]
fn the_python_client_passes_its_suite_against_the_daemon() {
    let venv = std::env::var_os("CFGD_VENV").map_or_else(|| repo().join(".venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python venv at {}: run .ci/deps.sh",
        venv.display()
    );
    let out = Command::new(&python)
        .args([
            "-m",
            "pytest",
            "python/tests",
            "-q",
            "-p",
            "no:cacheprovider",
        ])
        .current_dir(repo())
        .env("CFGD_BIN", env!("CARGO_BIN_EXE_cfgd"))
        .env_remove("CFGD_ENDPOINT")
        .env_remove("CFGD_TOKEN")
        .env_remove("CFGD_CA_CERT")
        .output()
        .expect("run pytest from the venv (run .ci/deps.sh)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the Python client's suite failed ({}); a missing package or pytest means: run .ci/deps.sh\n{report}",
        out.status
    );
    assert!(report.contains(" passed"), "pytest ran no test:\n{report}");
}
