use super::*;
use crate::value::Value;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join(name).parent().unwrap()).unwrap();
    std::fs::write(dir.join(name), text).unwrap();
}

fn value_of(cd: &ConfigDir, name: &str) -> Option<Value> {
    let defaults = Layer::defaults(cd.catalog());
    let mut layers = crate::Layers::new().with(&defaults);
    layers.extend(cd.layers());
    let resolution = crate::resolve(cd.catalog(), &layers);
    resolution.get(name).and_then(|r| r.value.clone())
}

fn retries(cd: &ConfigDir) -> Option<Value> {
    value_of(cd, "PREFECT_TASKS_DEFAULT_RETRIES")
}

fn touched(paths: &[PathBuf]) -> BTreeSet<PathBuf> {
    paths.iter().cloned().collect()
}

const VALUES: ReloadOutcome = ReloadOutcome {
    values_changed: true,
    status_changed: false,
};
const STATUS: ReloadOutcome = ReloadOutcome {
    values_changed: false,
    status_changed: true,
};
const BOTH: ReloadOutcome = ReloadOutcome {
    values_changed: true,
    status_changed: true,
};
const NOTHING: ReloadOutcome = ReloadOutcome {
    values_changed: false,
    status_changed: false,
};

#[test]
fn value_files_apply_in_name_order_then_dotenv() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "10-base.toml", "[tasks]\ndefault_retries = 1\n");
    write(d, "20-prod.toml", "PREFECT_TASK_DEFAULT_RETRIES = 2\n");
    write(d, "prefect.toml.example", "this is not toml");
    let mut cd = ConfigDir::load(d);
    assert_eq!(cd.errors().count(), 0);
    assert_eq!(retries(&cd), Some(Value::Integer(2)));
    write(d, ".env", "PREFECT_TASKS_DEFAULT_RETRIES=3\n");
    assert_eq!(cd.reload(&touched(&[d.join(".env")])), BOTH, "a new file");
    assert_eq!(retries(&cd), Some(Value::Integer(3)));
    assert_eq!(cd.reload_all(), NOTHING, "nothing changed on disk");
}

#[test]
fn a_bad_file_keeps_its_last_good_content_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = [d.join("a.toml")];
    write(d, "a.toml", "[tasks]\ndefault_retries = 1\n");
    let mut cd = ConfigDir::load(d);
    write(d, "a.toml", "[tasks]\ndefault_retries = \"many\"\n");
    assert_eq!(
        cd.reload(&touched(&a)),
        STATUS,
        "a bad file changes only status"
    );
    assert_eq!(retries(&cd), Some(Value::Integer(1)));
    let (path, err) = cd.errors().next().unwrap();
    assert_eq!(path, d.join("a.toml"));
    assert_eq!(
        err.to_string(),
        format!(
            "Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from config file {}, line 2: expected an integer, got \"many\"",
            d.join("a.toml").display()
        )
    );
    assert_eq!(err.0[0].line(), Some(2));
    write(d, "a.toml", "[tasks]\ndefault_retries = 4\n");
    assert_eq!(cd.reload(&touched(&a)), BOTH);
    assert_eq!(cd.errors().count(), 0);
    assert_eq!(retries(&cd), Some(Value::Integer(4)));
    std::fs::remove_file(d.join("a.toml")).unwrap();
    assert_eq!(cd.reload(&touched(&a)), BOTH, "the file left status");
    assert_eq!(retries(&cd), Some(Value::Integer(0)));
}

#[test]
fn an_edit_that_changes_no_value_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "a.toml", "[tasks]\ndefault_retries = 1\n");
    let mut cd = ConfigDir::load(d);
    write(
        d,
        "a.toml",
        "[tasks]\ndefault_retries = 1 # same line, same value\n",
    );
    assert_eq!(cd.reload(&touched(&[d.join("a.toml")])), NOTHING);
}

#[test]
fn only_touched_or_changed_files_are_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "a.toml", "[tasks]\ndefault_retries = 1\n");
    write(d, "b.toml", "[flows]\ndefault_retries = 1\n");
    let mut cd = ConfigDir::load(d);
    let text_of =
        |cd: &ConfigDir, name: &str| cd.files[&d.join(name)].current.as_ref().unwrap().0.clone();
    let (a0, b0) = (text_of(&cd, "a.toml"), text_of(&cd, "b.toml"));
    assert_eq!(cd.reload(&touched(&[d.join("a.toml")])), NOTHING);
    assert!(
        !Arc::ptr_eq(&a0, &text_of(&cd, "a.toml")),
        "a.toml was read"
    );
    assert!(
        Arc::ptr_eq(&b0, &text_of(&cd, "b.toml")),
        "b.toml was not read again"
    );
    // Replaced by rename: a new inode, noticed without a watcher's word.
    let tmp_file = d.join(".b.toml.tmp");
    std::fs::write(&tmp_file, "[flows]\ndefault_retries = 2\n").unwrap();
    std::fs::rename(&tmp_file, d.join("b.toml")).unwrap();
    assert_eq!(cd.reload(&BTreeSet::new()), VALUES);
    assert_eq!(
        value_of(&cd, "PREFECT_FLOWS_DEFAULT_RETRIES"),
        Some(Value::Integer(2))
    );
}

#[test]
fn service_catalogues_load_and_value_files_can_use_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "app.toml", "[myapp]\ntimeout = 2.5\n");
    let mut cd = ConfigDir::load(d);
    assert!(
        cd.errors()
            .next()
            .unwrap()
            .1
            .to_string()
            .contains("Unknown setting name 'myapp.timeout'")
    );
    write(
        d,
        "catalog.d/myapp.toml",
        "[[settings]]\nname = \"MYAPP_TIMEOUT\"\npath = \"myapp.timeout\"\ntype = \"number\"\ndefault = 1\n",
    );
    // Only the catalogue file is reported; the value file that was bad is
    // validated again against the new catalogue.
    assert_eq!(cd.reload(&touched(&[d.join("catalog.d/myapp.toml")])), BOTH);
    assert_eq!(cd.errors().count(), 0);
    assert_eq!(value_of(&cd, "MYAPP_TIMEOUT"), Some(Value::Number(2.5)));
}

#[test]
fn one_rule_says_what_a_file_is() {
    let d = Path::new("/cfg");
    let kind = |p: &str| FileKind::classify(d, Path::new(p));
    assert_eq!(kind("/cfg/a.toml"), Some(FileKind::Values));
    assert_eq!(kind("/cfg/.env"), Some(FileKind::DotEnv));
    assert_eq!(kind("/cfg/catalog.toml"), Some(FileKind::Catalog));
    assert_eq!(kind("/cfg/catalog.d/x.toml"), Some(FileKind::Catalog));
    assert_eq!(kind("/cfg/prod.env"), None, "only `.env` is a .env file");
    assert_eq!(kind("/cfg/.env.example"), None);
    assert_eq!(kind("/cfg/a.toml.example"), None);
    assert_eq!(kind("/cfg/.a.toml.swp"), None);
    assert_eq!(kind("/cfg/.hidden.toml"), None);
    assert_eq!(kind("/cfg/.toml"), None);
    assert_eq!(kind("/cfg/sub/a.toml"), None);
    assert_eq!(kind("/cfg/catalog.d/sub/x.toml"), None);
    assert_eq!(kind("/cfg/..data"), None);
    assert_eq!(kind("/elsewhere/a.toml"), None);
    let file = |p: &str| FileKind::classify_file(Path::new(p));
    assert_eq!(file("config/prod.toml"), Some(FileKind::Values));
    assert_eq!(file("config/catalog.d/app.toml"), Some(FileKind::Catalog));
    assert_eq!(file("prod.env"), None);
    assert!(is_relevant(d, Path::new("/cfg/a.toml")));
    assert!(is_relevant(d, Path::new("/cfg/catalog.d")));
    assert!(is_relevant(d, Path::new("/cfg/..data")));
    assert!(!is_relevant(d, Path::new("/cfg/..data_tmp")));
    assert!(!is_relevant(d, Path::new("/cfg/a.toml.example")));
}

#[test]
fn hostile_files_are_refused_and_the_rest_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write(d, "good.toml", "[tasks]\ndefault_retries = 3\n");
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.toml")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(d.join("fifo.toml"))
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(made.success());
    // A regression would block on the FIFO or read /dev/zero forever: load
    // on a thread so the test fails instead of hanging.
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = d.to_owned();
    std::thread::spawn(move || tx.send(ConfigDir::load_with(&dir, 1000)));
    let cd = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("loading returns");
    assert_eq!(retries(&cd), Some(Value::Integer(3)));
    let error_of = |name: &str| cd.files[&d.join(name)].error_text().unwrap();
    assert!(error_of("zero.toml").contains("it is a character device, not a regular file"));
    assert!(error_of("fifo.toml").contains("it is a FIFO, not a regular file"));
}

#[test]
fn an_oversized_file_keeps_its_last_good_content() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let a = [d.join("a.toml")];
    write(d, "a.toml", "[tasks]\ndefault_retries = 1\n");
    let mut cd = ConfigDir::load_with(d, 100);
    write(
        d,
        "a.toml",
        &format!("[tasks]\ndefault_retries = 2\n#{}\n", "x".repeat(200)),
    );
    assert_eq!(cd.reload(&touched(&a)), STATUS);
    assert_eq!(retries(&cd), Some(Value::Integer(1)));
    assert_eq!(
        cd.files[&a[0]].error_text().unwrap(),
        format!(
            "cannot read {}: the file is 230 bytes; config files may be at most 100 bytes (cfgd: --max-config-file-bytes)",
            a[0].display()
        )
    );
}

#[test]
fn errors_per_file_are_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let text: String = (0..5000).map(|i| format!("UNKNOWN_{i} = 1\n")).collect();
    write(d, "noise.toml", &text);
    let cd = ConfigDir::load(d);
    let state = &cd.files[&d.join("noise.toml")];
    assert_eq!(state.error.as_ref().unwrap().0.len(), MAX_FILE_ERRORS);
    assert_eq!(state.errors_omitted, 5000 - MAX_FILE_ERRORS);
    let shown = state.error_text().unwrap();
    assert_eq!(shown.lines().count(), MAX_FILE_ERRORS + 1);
    assert!(
        shown.ends_with("\n… and 4980 more error(s) in this file"),
        "{shown}"
    );
}

/// Kubernetes' atomic writer: `..<timestamp>/` holds the files, `..data`
/// links to it, and each visible file links through `..data`.
struct ConfigMap<'a> {
    dir: &'a Path,
    generation: u32,
}

impl<'a> ConfigMap<'a> {
    fn new(dir: &'a Path, files: &[(&str, &str)]) -> Self {
        let mut map = Self { dir, generation: 0 };
        let ts = map.write_generation(files);
        std::os::unix::fs::symlink(&ts, dir.join("..data")).unwrap();
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        map
    }

    fn write_generation(&mut self, files: &[(&str, &str)]) -> String {
        self.generation += 1;
        let ts = format!(
            "..2026_12_01_00_00_0{}.00000000{}",
            self.generation, self.generation
        );
        std::fs::create_dir(self.dir.join(&ts)).unwrap();
        for (name, text) in files {
            std::fs::write(self.dir.join(&ts).join(name), text).unwrap();
        }
        ts
    }

    /// The swap: a new timestamped dir, `..data_tmp` → it, renamed over
    /// `..data`, the old dir removed.
    fn update(&mut self, files: &[(&str, &str)]) {
        let old = std::fs::read_link(self.dir.join("..data")).unwrap();
        let ts = self.write_generation(files);
        std::os::unix::fs::symlink(&ts, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(old)).unwrap();
    }
}

#[test]
fn a_configmap_swap_is_seen_through_its_symlinks() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut map = ConfigMap::new(d, &[("app.toml", "[tasks]\ndefault_retries = 1\n")]);
    let mut cd = ConfigDir::load(d);
    assert_eq!(cd.errors().count(), 0);
    assert_eq!(retries(&cd), Some(Value::Integer(1)));
    map.update(&[("app.toml", "[tasks]\ndefault_retries = 2\n")]);
    // A watcher reports only `..data`; the visible link did not change.
    assert_eq!(cd.reload(&touched(&[d.join("..data")])), VALUES);
    assert_eq!(retries(&cd), Some(Value::Integer(2)));
}
