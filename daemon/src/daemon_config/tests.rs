use std::io::Write;

use super::*;

/// A few options shaped like the daemon's.
#[derive(Debug, clap::Parser)]
struct Opts {
    #[arg(long, default_value = "127.0.0.1:7979")]
    listen: String,
    #[arg(long, default_value = ".cfgd")]
    state_dir: PathBuf,
    #[arg(long, default_value_t = 50)]
    debounce_ms: u64,
    #[arg(long)]
    host_id: Option<String>,
    #[arg(long)]
    repair_state: bool,
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    print_config: bool,
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn argv(args: &[&str]) -> Vec<OsString> {
    std::iter::once("cfgd")
        .chain(args.iter().copied())
        .map(OsString::from)
        .collect()
}

#[test]
fn the_file_is_above_the_defaults_and_below_the_flags() {
    let f = file(
        "state_dir = \"/var/lib/cfgd\"\ndebounce_ms = 200\nrepair_state = true\nhost_id = \"web-1\"\n",
    );
    let path = f.path().to_str().unwrap();
    let l = parse::<Opts>(argv(&["--config", path, "--debounce-ms", "75"])).unwrap();
    assert_eq!(l.args.state_dir, PathBuf::from("/var/lib/cfgd"));
    assert_eq!(l.args.debounce_ms, 75, "a flag beats the file");
    assert!(l.args.repair_state);
    assert_eq!(l.args.host_id.as_deref(), Some("web-1"));
    assert_eq!(l.args.listen, "127.0.0.1:7979");
    assert_eq!(l.source("listen"), Some("default"));
    assert_eq!(
        l.source("state_dir"),
        Some(format!("TOML file {path}").as_str())
    );
    assert_eq!(l.source("debounce_ms"), Some("flag --debounce-ms"));
    let printed = l.print();
    assert!(printed.contains("debounce_ms = 75"), "{printed}");
    assert!(printed.contains("# flag --debounce-ms"), "{printed}");
    assert!(
        printed.contains("state_dir = \"/var/lib/cfgd\""),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("# TOML file {path}")),
        "{printed}"
    );
    assert!(printed.contains("listen = \"127.0.0.1:7979\""), "{printed}");
}

#[test]
fn without_a_file_the_flags_and_defaults_are_the_configuration() {
    let l = parse::<Opts>(argv(&["--repair-state"])).unwrap();
    assert!(l.args.repair_state);
    assert_eq!(l.args.debounce_ms, 50);
    assert!(!l.print);
    assert_eq!(l.source("repair_state"), Some("flag --repair-state"));
    assert_eq!(l.source("host_id"), None, "not given anywhere");
}

#[test]
fn errors_name_the_key_and_the_file() {
    let f = file("debounce_ms = \"fast\"\n");
    let path = f.path().to_str().unwrap();
    let e = parse::<Opts>(argv(&["--config", path]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("invalid value 'fast'"), "{e}");
    assert!(
        e.contains(&format!(
            "(the value of `debounce_ms` from TOML file {path})"
        )),
        "{e}"
    );

    let f = file("debounce_msec = 3\n");
    let path = f.path().to_str().unwrap();
    let e = parse::<Opts>(argv(&["--config", path]))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!(
            "unknown key `debounce_msec` in {path}; known keys: listen, state_dir, debounce_ms"
        )),
        "{e}"
    );

    let f = file("state_dir = [\n");
    let path = f.path().to_str().unwrap();
    let e = parse::<Opts>(argv(&["--config", path]))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("cannot use {path}:")), "{e}");

    let f = file("repair_state = \"yes\"\n");
    let path = f.path().to_str().unwrap();
    let e = parse::<Opts>(argv(&["--config", path]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`repair_state` is true or false"), "{e}");
    assert!(e.contains(&format!("TOML file {path}")), "{e}");

    let e = parse::<Opts>(argv(&["--config", "/nonexistent/cfgd.toml"]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/cfgd.toml"), "{e}");
}
