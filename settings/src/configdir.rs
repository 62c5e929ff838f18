//! A config dir, read whole: the catalogue files, the value files and `.env`,
//! each keeping its last good content.
//!
//! Layout of a config dir:
//! - `catalog.toml` — replaces cfgd's embedded `catalog.toml` when present
//!   (Prefect's embedded settings always stay);
//! - `catalog.d/*.toml` — further catalogue files (a service's own settings);
//! - every other `*.toml` directly in the dir — a value file, applied in
//!   file-name order (a later name wins);
//! - `.env` — one more layer above the value files.
//!
//! Other files (`*.toml.example`, `.env.example`, editor temp files) are
//! ignored. A file that fails to read or validate never takes effect: its
//! last good content stays in force and the error is kept for
//! [`ConfigDir::files`] until the file is fixed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::error::{Errors, SettingsError};
use crate::layer::Layer;

/// The role of a file in the config dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    /// `catalog.toml` or `catalog.d/*.toml`.
    Catalog,
    /// A `*.toml` value file.
    Values,
    /// `.env`.
    DotEnv,
}

/// One file's state: what is in force and what is wrong.
#[derive(Debug, Clone)]
pub struct FileState {
    /// The file.
    pub path: PathBuf,
    /// Its role.
    pub kind: FileKind,
    /// The content in force (the last that validated), if any.
    good: Option<String>,
    /// The layer built from `good` (value files and `.env`).
    layer: Option<Layer>,
    /// Why the file's current content is not in force.
    pub error: Option<Errors>,
}

impl FileState {
    /// Whether some content of this file is in force.
    pub fn in_force(&self) -> bool {
        self.good.is_some()
    }

    /// Problems in the content in force that leave the rest of it applied
    /// (unknown `PREFECT_` names; bad values in `.env`).
    pub fn warnings(&self) -> &[SettingsError] {
        self.layer.as_ref().map_or(&[], |l| &l.warnings)
    }
}

/// The config dir's catalogue, value layers and per-file states.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    dir: PathBuf,
    catalog: Catalog,
    files: BTreeMap<PathBuf, FileState>,
}

impl ConfigDir {
    /// Reads `dir`. Never fails: a missing dir is empty, and each bad file
    /// is recorded in [`ConfigDir::files`] and left out.
    pub fn load(dir: &Path) -> Self {
        let mut this = Self {
            dir: dir.to_owned(),
            catalog: Catalog::builtin(),
            files: BTreeMap::new(),
        };
        this.reload();
        this
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads every file. A file that now fails keeps its last good
    /// content; a deleted file drops out. Returns whether anything in force
    /// (catalogue or layers) changed.
    pub fn reload(&mut self) -> bool {
        let before = (self.catalog_fingerprint(), self.owned_layers());
        let listed = list_files(&self.dir);
        // Deleted files drop out; read errors on listed files are kept below.
        self.files
            .retain(|path, _| listed.iter().any(|(p, _)| p == path));
        let mut texts = BTreeMap::new();
        for (path, kind) in listed {
            let text = std::fs::read_to_string(&path).map_err(|e| SettingsError::Io {
                action: "cannot read",
                path: path.display().to_string(),
                message: e.to_string(),
            });
            texts.insert(path.clone(), text);
            self.files.entry(path.clone()).or_insert(FileState {
                path,
                kind,
                good: None,
                layer: None,
                error: None,
            });
        }
        self.reload_catalog(&texts);
        self.reload_values(&texts);
        let after = (self.catalog_fingerprint(), self.owned_layers());
        before != after
    }

    /// The catalogue: built in (or `catalog.toml`) plus `catalog.d/*.toml`.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The value layers in precedence order: value files by name, then `.env`.
    pub fn layers(&self) -> Vec<&Layer> {
        let mut files: Vec<&FileState> = self
            .files
            .values()
            .filter(|f| f.kind != FileKind::Catalog)
            .collect();
        // `.env` sorts before `10-a.toml` by name but sits above every value file.
        files.sort_by_key(|f| f.kind);
        files.into_iter().filter_map(|f| f.layer.as_ref()).collect()
    }

    /// Every file and its state, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = &FileState> {
        self.files.values()
    }

    /// The files whose current content is not in force, with why.
    pub fn errors(&self) -> impl Iterator<Item = (&Path, &Errors)> {
        self.files
            .values()
            .filter_map(|f| f.error.as_ref().map(|e| (f.path.as_path(), e)))
    }

    fn owned_layers(&self) -> Vec<Layer> {
        self.layers().into_iter().cloned().collect()
    }

    fn catalog_fingerprint(&self) -> Vec<crate::catalog::Entry> {
        self.catalog.entries().to_vec()
    }

    fn reload_catalog(&mut self, texts: &BTreeMap<PathBuf, Result<String, SettingsError>>) {
        let base_path = self.dir.join("catalog.toml");
        let mut catalog = match texts.get(&base_path) {
            Some(text) => {
                let state = self.files.get_mut(&base_path).expect("listed above");
                let parsed = text
                    .clone()
                    .and_then(|t| Catalog::with_base(&t, Some(&base_path)).map(|c| (t, c)));
                match parsed {
                    Ok((text, catalog)) => {
                        state.good = Some(text);
                        state.error = None;
                        catalog
                    }
                    Err(e) => {
                        state.error = Some(e.into());
                        state
                            .good
                            .as_deref()
                            .and_then(|t| Catalog::with_base(t, Some(&base_path)).ok())
                            .unwrap_or_else(Catalog::builtin)
                    }
                }
            }
            None => Catalog::builtin(),
        };
        let extra: Vec<PathBuf> = self
            .files
            .values()
            .filter(|f| f.kind == FileKind::Catalog && f.path != base_path)
            .map(|f| f.path.clone())
            .collect();
        for path in extra {
            let state = self.files.get_mut(&path).expect("listed above");
            let new = texts.get(&path).cloned().expect("listed above");
            let mut candidate = catalog.clone();
            match new.and_then(|t| candidate.add_file(&t, Some(&path)).map(|()| t)) {
                Ok(text) => {
                    state.good = Some(text);
                    state.error = None;
                    catalog = candidate;
                }
                Err(e) => {
                    state.error = Some(e.into());
                    if let Some(good) = &state.good {
                        let mut with_good = catalog.clone();
                        if with_good.add_file(good, Some(&path)).is_ok() {
                            catalog = with_good;
                        }
                    }
                }
            }
        }
        self.catalog = catalog;
    }

    fn reload_values(&mut self, texts: &BTreeMap<PathBuf, Result<String, SettingsError>>) {
        let catalog = &self.catalog;
        for state in self.files.values_mut() {
            if state.kind == FileKind::Catalog {
                continue;
            }
            let build = |text: &str| match state.kind {
                FileKind::DotEnv => Layer::from_dotenv(catalog, &state.path, text),
                _ => Layer::from_toml(catalog, &state.path, text),
            };
            let new = texts.get(&state.path).cloned().expect("listed above");
            match new
                .map_err(Errors::from)
                .and_then(|t| build(&t).map(|l| (t, l)))
            {
                Ok((text, layer)) => {
                    state.good = Some(text);
                    state.layer = Some(layer);
                    state.error = None;
                }
                Err(e) => {
                    state.error = Some(e);
                    // Re-validate the last good content: the catalogue may have changed.
                    state.layer = state.good.as_deref().and_then(|t| build(t).ok());
                }
            }
        }
    }
}

/// The files of a config dir that matter, with their roles.
fn list_files(dir: &Path) -> Vec<(PathBuf, FileKind)> {
    let mut out = Vec::new();
    let toml_files = |d: &Path| -> Vec<PathBuf> {
        let Ok(read) = std::fs::read_dir(d) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "toml")
                    && !p
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.'))
            })
            .collect();
        paths.sort();
        paths
    };
    for path in toml_files(dir) {
        let kind = if path.file_name().is_some_and(|n| n == "catalog.toml") {
            FileKind::Catalog
        } else {
            FileKind::Values
        };
        out.push((path, kind));
    }
    for path in toml_files(&dir.join("catalog.d")) {
        out.push((path, FileKind::Catalog));
    }
    let dotenv = dir.join(".env");
    if dotenv.is_file() {
        out.push((dotenv, FileKind::DotEnv));
    }
    out
}

/// Whether a change to `path` can matter to a config dir at `dir` (for file
/// watchers: editors write temp files and `*.example` files are ignored).
pub fn is_relevant(dir: &Path, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let parent = path.parent();
    let in_dir = parent == Some(dir);
    let in_catalog_d = parent == Some(&dir.join("catalog.d"));
    (in_dir && (name == ".env" || (name.ends_with(".toml") && !name.starts_with('.'))))
        || (in_catalog_d && name.ends_with(".toml") && !name.starts_with('.'))
        || path == dir.join("catalog.d")
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn value_files_apply_in_name_order_then_dotenv() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "10-base.toml", "[tasks]\ndefault_retries = 1\n");
        write(d, "20-prod.toml", "PREFECT_TASK_DEFAULT_RETRIES = 2\n");
        write(d, "prefect.toml.example", "this is not toml");
        let cd = ConfigDir::load(d);
        assert_eq!(cd.errors().count(), 0);
        assert_eq!(
            value_of(&cd, "PREFECT_TASKS_DEFAULT_RETRIES"),
            Some(Value::Integer(2))
        );
        write(d, ".env", "PREFECT_TASKS_DEFAULT_RETRIES=3\n");
        let mut cd = cd;
        assert!(cd.reload());
        assert_eq!(
            value_of(&cd, "PREFECT_TASKS_DEFAULT_RETRIES"),
            Some(Value::Integer(3))
        );
        assert!(!cd.reload(), "nothing changed on disk");
    }

    #[test]
    fn a_bad_file_keeps_its_last_good_content_and_recovers() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "a.toml", "[tasks]\ndefault_retries = 1\n");
        let mut cd = ConfigDir::load(d);
        write(d, "a.toml", "[tasks]\ndefault_retries = \"many\"\n");
        assert!(!cd.reload(), "a bad file changes nothing in force");
        assert_eq!(
            value_of(&cd, "PREFECT_TASKS_DEFAULT_RETRIES"),
            Some(Value::Integer(1))
        );
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
        assert!(cd.reload());
        assert_eq!(cd.errors().count(), 0);
        assert_eq!(
            value_of(&cd, "PREFECT_TASKS_DEFAULT_RETRIES"),
            Some(Value::Integer(4))
        );
        std::fs::remove_file(d.join("a.toml")).unwrap();
        assert!(cd.reload());
        assert_eq!(
            value_of(&cd, "PREFECT_TASKS_DEFAULT_RETRIES"),
            Some(Value::Integer(0))
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
        assert!(cd.reload());
        assert_eq!(cd.errors().count(), 0);
        assert_eq!(value_of(&cd, "MYAPP_TIMEOUT"), Some(Value::Number(2.5)));
    }

    #[test]
    fn relevance_filter_ignores_examples_and_temp_files() {
        let d = Path::new("/cfg");
        assert!(is_relevant(d, Path::new("/cfg/a.toml")));
        assert!(is_relevant(d, Path::new("/cfg/.env")));
        assert!(is_relevant(d, Path::new("/cfg/catalog.d/x.toml")));
        assert!(!is_relevant(d, Path::new("/cfg/a.toml.example")));
        assert!(!is_relevant(d, Path::new("/cfg/.a.toml.swp")));
        assert!(!is_relevant(d, Path::new("/cfg/sub/a.toml")));
    }
}
