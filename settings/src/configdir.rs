//! A config dir, read whole: the catalogue files, the value files and `.env`,
//! each keeping its last good content.
//!
//! Layout of a config dir (one rule, [`FileKind::classify`]):
//! - `catalog.toml` — replaces cfgd's embedded `catalog.toml` when present
//!   (Prefect's embedded settings always stay);
//! - `catalog.d/*.toml` — further catalogue files (a service's own settings);
//! - every other `*.toml` directly in the dir — a value file, applied in
//!   file-name order (a later name wins);
//! - `.env` — one more layer above the value files.
//!
//! Other files (`*.toml.example`, `.env.example`, `prod.env`, dot-files such
//! as editor temp files and Kubernetes' `..data`) are ignored. A file that
//! fails to read or validate never takes effect: its last good content stays
//! in force and the error is kept for [`ConfigDir::files`] until the file is
//! fixed. Only regular files (or symlinks to them) up to a size limit are
//! read (see `read`), and at most [`MAX_FILE_ERRORS`] errors are kept per
//! file.
//!
//! [`ConfigDir::reload`] re-reads only the files that a watcher reported or
//! whose identity on disk (inode, size, times) changed, and says in a
//! [`ReloadOutcome`] whether values or status changed.

mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

pub use read::DEFAULT_MAX_FILE_BYTES;

use crate::catalog::Catalog;
use crate::error::Errors;
use crate::layer::Layer;

/// Most errors kept (and shown) per file; the rest are counted in
/// [`FileState::errors_omitted`].
pub const MAX_FILE_ERRORS: usize = 20;

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

impl FileKind {
    /// What `path` is in the config dir `dir`, or `None` when the daemon
    /// does not read it. This is the one rule for every reader (daemon,
    /// SDK, `cfg validate`, file watchers).
    pub fn classify(dir: &Path, path: &Path) -> Option<FileKind> {
        let rel = path.strip_prefix(dir).ok()?;
        let mut parts = rel.components();
        let (first, second) = (parts.next()?, parts.next());
        if parts.next().is_some() {
            return None;
        }
        fn name<'p>(c: Component<'p>) -> Option<&'p str> {
            match c {
                Component::Normal(n) => n.to_str(),
                _ => None,
            }
        }
        match (name(first)?, second.map(name)) {
            (".env", None) => Some(FileKind::DotEnv),
            ("catalog.toml", None) => Some(FileKind::Catalog),
            (n, None) if is_toml_name(n) => Some(FileKind::Values),
            ("catalog.d", Some(Some(n))) if is_toml_name(n) => Some(FileKind::Catalog),
            _ => None,
        }
    }

    /// What a file named on its own (e.g. `cfg validate FILE`) would be in
    /// its config dir: its parent dir, or the parent of `catalog.d`.
    pub fn classify_file(path: &Path) -> Option<FileKind> {
        let parent = path.parent()?;
        let dir = match parent.file_name() {
            Some(n) if n == "catalog.d" => parent.parent()?,
            _ => parent,
        };
        Self::classify(dir, path)
    }
}

/// `x.toml`, but not a dot-file (editor temp files, hidden files).
fn is_toml_name(name: &str) -> bool {
    name.len() > ".toml".len() && name.ends_with(".toml") && !name.starts_with('.')
}

/// Whether a change to `path` can matter to a config dir at `dir`: one of
/// its files, `catalog.d` itself, or Kubernetes' `..data` link (a ConfigMap
/// update swaps it; the visible files are symlinks through it).
pub fn is_relevant(dir: &Path, path: &Path) -> bool {
    FileKind::classify(dir, path).is_some()
        || path == dir.join("catalog.d")
        || path == dir.join("..data")
}

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReloadOutcome {
    /// The catalogue or a value layer in force changed.
    pub values_changed: bool,
    /// The files or their errors (what status shows) changed.
    pub status_changed: bool,
}

impl ReloadOutcome {
    /// Whether anything changed.
    pub fn changed(self) -> bool {
        self.values_changed || self.status_changed
    }
}

/// One file's state: what is in force and what is wrong.
#[derive(Debug, Clone)]
pub struct FileState {
    /// The file.
    pub path: PathBuf,
    /// Its role.
    pub kind: FileKind,
    /// What was read last, and what it was on disk.
    current: Option<(Arc<str>, read::Identity)>,
    /// The content in force (the last that validated), if any.
    good: Option<Arc<str>>,
    /// The layer built from `good` (value files and `.env`), shared by
    /// every clone of the config dir (the reload task's and the core's).
    layer: Option<Arc<Layer>>,
    /// Why the file's current content is not in force (at most
    /// [`MAX_FILE_ERRORS`] of the reasons).
    pub error: Option<Errors>,
    /// How many more errors the file has than `error` holds.
    pub errors_omitted: usize,
}

impl FileState {
    fn new(path: PathBuf, kind: FileKind) -> Self {
        Self {
            path,
            kind,
            current: None,
            good: None,
            layer: None,
            error: None,
            errors_omitted: 0,
        }
    }

    /// Whether some content of this file is in force.
    pub fn in_force(&self) -> bool {
        self.good.is_some()
    }

    /// Problems in the content in force that leave the rest of it applied
    /// (unknown `PREFECT_` names; bad values in `.env`).
    pub fn warnings(&self) -> &[crate::error::SettingsError] {
        self.layer.as_ref().map_or(&[], |l| &l.warnings)
    }

    /// The errors as shown to people: one per line, then `… and N more`.
    pub fn error_text(&self) -> Option<String> {
        let e = self.error.as_ref()?;
        let mut text = e.to_string();
        if self.errors_omitted > 0 {
            text.push_str(&format!(
                "\n… and {} more error(s) in this file",
                self.errors_omitted
            ));
        }
        Some(text)
    }

    fn set_error(&mut self, mut errors: Errors) {
        self.errors_omitted = errors.0.len().saturating_sub(MAX_FILE_ERRORS);
        errors.0.truncate(MAX_FILE_ERRORS);
        self.error = Some(errors);
    }

    fn clear_error(&mut self) {
        self.error = None;
        self.errors_omitted = 0;
    }

    /// The text last read, shared with `current` (a good text is held once).
    fn text(&self) -> Result<Arc<str>, Errors> {
        match (&self.current, &self.error) {
            (Some((t, _)), _) => Ok(t.clone()),
            // Unreadable: the read error is the only one.
            (None, Some(e)) => Err(e.clone()),
            (None, None) => Err(Errors(Vec::new())),
        }
    }
}

/// The config dir's catalogue, value layers and per-file states.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    dir: PathBuf,
    max_file_bytes: u64,
    catalog: Catalog,
    files: BTreeMap<PathBuf, FileState>,
}

impl ConfigDir {
    /// Reads `dir` with the default size limit ([`DEFAULT_MAX_FILE_BYTES`]).
    /// Never fails: a missing dir is empty, and each bad file is recorded in
    /// [`ConfigDir::files`] and left out.
    pub fn load(dir: &Path) -> Self {
        Self::load_with(dir, DEFAULT_MAX_FILE_BYTES)
    }

    /// Reads `dir`, refusing files larger than `max_file_bytes`.
    pub fn load_with(dir: &Path, max_file_bytes: u64) -> Self {
        let mut this = Self {
            dir: dir.to_owned(),
            max_file_bytes,
            catalog: Catalog::builtin(),
            files: BTreeMap::new(),
        };
        this.reload_all();
        this
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads the files in `touched` (what a watcher reported) and any
    /// file whose identity on disk changed (a ConfigMap swap changes the
    /// target of every symlink, not the links). A file that now fails keeps
    /// its last good content; a deleted file drops out.
    pub fn reload(&mut self, touched: &BTreeSet<PathBuf>) -> ReloadOutcome {
        self.refresh(&|p| touched.contains(p))
    }

    /// Re-reads every file (after the dir was recreated or a watcher lost
    /// events).
    pub fn reload_all(&mut self) -> ReloadOutcome {
        self.refresh(&|_| true)
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
        files
            .into_iter()
            .filter_map(|f| f.layer.as_deref())
            .collect()
    }

    /// Every file and its state, sorted by path.
    pub fn files(&self) -> impl Iterator<Item = &FileState> {
        self.files.values()
    }

    /// The files whose current content is not in force, with why (at most
    /// [`MAX_FILE_ERRORS`] reasons each; see [`FileState::error_text`]).
    pub fn errors(&self) -> impl Iterator<Item = (&Path, &Errors)> {
        self.files
            .values()
            .filter_map(|f| f.error.as_ref().map(|e| (f.path.as_path(), e)))
    }

    fn status(&self) -> Vec<(&Path, FileKind, Option<&Errors>, usize)> {
        self.files
            .values()
            .map(|f| (f.path.as_path(), f.kind, f.error.as_ref(), f.errors_omitted))
            .collect()
    }

    fn refresh(&mut self, force: &dyn Fn(&Path) -> bool) -> ReloadOutcome {
        let status_before: Vec<_> = self
            .status()
            .into_iter()
            .map(|(p, k, e, n)| (p.to_owned(), k, e.cloned(), n))
            .collect();
        let listed = list_files(&self.dir);
        let mut catalog_dirty = false;
        let mut values_changed = false;
        let mut dirty_values = BTreeSet::new();
        self.files.retain(|path, state| {
            let keep = listed.iter().any(|(p, _)| p == path);
            if !keep {
                catalog_dirty |= state.kind == FileKind::Catalog;
                values_changed |= state.layer.is_some();
            }
            keep
        });
        for (path, kind) in listed {
            let state = self
                .files
                .entry(path.clone())
                .or_insert_with(|| FileState::new(path.clone(), kind));
            let unchanged = state.current.as_ref().is_some_and(|(_, id)| {
                !force(&path) && read::Identity::current(&path) == Some(*id)
            });
            if unchanged {
                continue;
            }
            let before = state.current.as_ref().map(|(t, _)| t.clone());
            match read::read(&path, self.max_file_bytes) {
                Ok((text, id)) => {
                    let text: Arc<str> = Arc::from(text);
                    let same = before.as_deref() == Some(&*text);
                    // `good` keeps sharing the text it shared (held once).
                    if same
                        && let (Some(good), Some(before)) = (&state.good, &before)
                        && Arc::ptr_eq(good, before)
                    {
                        state.good = Some(text.clone());
                    }
                    state.current = Some((text, id));
                    if same {
                        continue;
                    }
                }
                Err(e) => {
                    state.current = None;
                    state.set_error(e.into());
                }
            }
            match kind {
                FileKind::Catalog => catalog_dirty = true,
                _ => {
                    dirty_values.insert(path);
                }
            }
        }
        let catalog_changed = catalog_dirty && self.rebuild_catalog();
        values_changed |= catalog_changed;
        let catalog = &self.catalog;
        for state in self.files.values_mut() {
            if state.kind == FileKind::Catalog
                || !(catalog_changed || dirty_values.contains(&state.path))
            {
                continue;
            }
            let (kind, path) = (state.kind, state.path.clone());
            let build = |text: &str| match kind {
                FileKind::DotEnv => Layer::from_dotenv(catalog, &path, text),
                _ => Layer::from_toml(catalog, &path, text),
            };
            let old = state.layer.take();
            match state.text().and_then(|t| build(&t).map(|l| (t, l))) {
                Ok((text, layer)) => {
                    state.good = Some(text);
                    state.layer = Some(Arc::new(layer));
                    state.clear_error();
                }
                Err(e) => {
                    if !e.0.is_empty() {
                        state.set_error(e);
                    }
                    // The last good content stays; the catalogue may have
                    // changed under it, so it is validated again.
                    state.layer = if catalog_changed {
                        state
                            .good
                            .as_deref()
                            .and_then(|t| build(t).ok())
                            .map(Arc::new)
                    } else {
                        old.clone()
                    };
                }
            }
            values_changed |= state.layer != old;
        }
        let status_changed = self.status()
            != status_before
                .iter()
                .map(|(p, k, e, n)| (p.as_path(), *k, e.as_ref(), *n))
                .collect::<Vec<_>>();
        ReloadOutcome {
            values_changed,
            status_changed,
        }
    }

    /// Builds the catalogue from the catalogue files' current (or last
    /// good) content; returns whether its entries changed.
    fn rebuild_catalog(&mut self) -> bool {
        let base_path = self.dir.join("catalog.toml");
        let mut catalog = match self.files.get_mut(&base_path) {
            Some(state) => {
                let parsed = state.text().and_then(|t| {
                    Catalog::with_base(&t, Some(&base_path))
                        .map(|c| (t, c))
                        .map_err(Errors::from)
                });
                match parsed {
                    Ok((text, catalog)) => {
                        state.good = Some(text);
                        state.clear_error();
                        catalog
                    }
                    Err(e) => {
                        if !e.0.is_empty() {
                            state.set_error(e);
                        }
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
        for state in self.files.values_mut() {
            if state.kind != FileKind::Catalog || state.path == base_path {
                continue;
            }
            let mut candidate = catalog.clone();
            let added = state.text().and_then(|t| {
                candidate
                    .add_file(&t, Some(&state.path))
                    .map(|()| t)
                    .map_err(Errors::from)
            });
            match added {
                Ok(text) => {
                    state.good = Some(text);
                    state.clear_error();
                    catalog = candidate;
                }
                Err(e) => {
                    if !e.0.is_empty() {
                        state.set_error(e);
                    }
                    if let Some(good) = &state.good {
                        let mut with_good = catalog.clone();
                        if with_good.add_file(good, Some(&state.path)).is_ok() {
                            catalog = with_good;
                        }
                    }
                }
            }
        }
        let changed = catalog.entries() != self.catalog.entries();
        self.catalog = catalog;
        changed
    }
}

/// The files of a config dir that matter, with their roles. Anything that
/// is not a directory is listed (a FIFO named `a.toml` is reported, not
/// skipped); reading decides what can be used.
fn list_files(dir: &Path) -> Vec<(PathBuf, FileKind)> {
    let entries = |d: &Path| -> Vec<PathBuf> {
        let Ok(read) = std::fs::read_dir(d) else {
            return Vec::new();
        };
        read.filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .map(|e| e.path())
            .collect()
    };
    let mut out: Vec<(PathBuf, FileKind)> = entries(dir)
        .into_iter()
        .chain(entries(&dir.join("catalog.d")))
        .filter_map(|p| FileKind::classify(dir, &p).map(|k| (p, k)))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests;
