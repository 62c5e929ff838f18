//! `cfgd --config FILE --print-config`: the real binary layers its options
//! (defaults < cfgd.toml < CFGD_* environment < flags), names where each
//! value came from, and refuses a bad file naming the key and the file.

use std::process::Command;

fn cfgd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cfgd"));
    // The caller's own CFGD_* variables must not leak into the layers.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CFGD_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn every_layer_wins_over_the_one_below_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cfgd.toml");
    std::fs::write(
        &file,
        "state_dir = \"/from/file\"\ndebounce_ms = 200\nhistory = 10\nstore = \"etcd://10.0.0.1:2379,10.0.0.2:2379\"\n",
    )
    .unwrap();
    let out = cfgd()
        .arg("--config")
        .arg(&file)
        .args(["--print-config", "--history", "20"])
        .env("CFGD_STATE_DIR", "/from/env")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
            .to_owned()
    };
    let f = file.display();
    assert!(line("listen").ends_with("# default"), "{stdout}");
    assert!(line("listen").contains("\"127.0.0.1:7979\""), "{stdout}");
    assert!(
        line("debounce_ms").contains("200")
            && line("debounce_ms").ends_with(&format!("# TOML file {f}")),
        "{stdout}"
    );
    assert!(
        line("state_dir").contains("\"/from/env\"")
            && line("state_dir").ends_with("# environment variable CFGD_STATE_DIR"),
        "{stdout}"
    );
    assert!(
        line("history").contains("20") && line("history").ends_with("# flag --history"),
        "{stdout}"
    );
    assert!(
        line("store").contains("etcd://10.0.0.1:2379,10.0.0.2:2379"),
        "{stdout}"
    );
}

#[test]
fn a_bad_file_is_refused_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cfgd.toml");
    std::fs::write(&file, "debounce_ms = -5\n").unwrap();
    let out = cfgd().arg("--config").arg(&file).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "(the value of `debounce_ms` from TOML file {})",
            file.display()
        )),
        "{stderr}"
    );
    std::fs::write(&file, "listen_on = \"127.0.0.1:1\"\n").unwrap();
    let out = cfgd().arg("--config").arg(&file).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!("unknown key `listen_on` in {}", file.display())),
        "{stderr}"
    );
}
