//! Layers: one source of values each (defaults, a profile, a config file,
//! `.env`, an environment), keyed by canonical name, every value with its
//! provenance.
//!
//! Each builder validates everything it reads and reports every problem,
//! with the file and line, instead of stopping at the first.
//!
//! Names, as Prefect treats them:
//! - the environment and `.env`: a name that is not a setting is ignored
//!   (a `.env` holds `DATABASE_URL` and the like); in `.env` a `PREFECT_`
//!   name nobody declares is a warning, and a bad value drops only that
//!   setting (a warning with file and line: the rest of the file applies);
//! - a profile or a TOML value file: an unknown `PREFECT_` name (or a TOML
//!   path under a Prefect section), e.g. a newer Prefect's setting, is a
//!   warning ([`SettingsError::UnknownPrefect`]) that never keeps the file
//!   from applying; other unknown names in a value file are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Entry};
use crate::error::{Errors, SettingsError};
use crate::toml_lines::{Lines, line_of};
use crate::value::{self, Value};

/// Which layer a value comes from, lowest precedence first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// The catalogue's defaults.
    Defaults,
    /// The active profile (`cfg set`).
    Profile,
    /// A value file in the config dir.
    File,
    /// The `.env` file in the config dir.
    DotEnv,
    /// The daemon's environment at start.
    Env,
    /// The service's own environment (SDK only).
    ProcessEnv,
    /// The value given at a task's or flow's call site (SDK only).
    CallSite,
}

impl LayerKind {
    /// The short label `cfg view` shows: `(from env)`.
    pub fn label(self) -> &'static str {
        match self {
            LayerKind::Defaults => "defaults",
            LayerKind::Profile => "profile",
            LayerKind::File => "config file",
            LayerKind::DotEnv => ".env file",
            LayerKind::Env => "env",
            LayerKind::ProcessEnv => "process env",
            LayerKind::CallSite => "call site",
        }
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The layer.
    pub layer: LayerKind,
    /// The file, for config files and `.env`: one allocation shared by
    /// every value of a file.
    pub file: Option<Arc<str>>,
    /// 1-based line in `file`, when known.
    pub line: Option<u32>,
    /// The profile name, or the variable name for env and `.env`.
    pub detail: Option<String>,
}

impl Source {
    /// A source with only a layer.
    pub fn layer(layer: LayerKind) -> Self {
        Self {
            layer,
            file: None,
            line: None,
            detail: None,
        }
    }

    /// The catalogue's defaults.
    pub fn defaults() -> Self {
        Self::layer(LayerKind::Defaults)
    }

    /// A profile.
    pub fn profile(name: &str) -> Self {
        Self {
            detail: Some(name.to_owned()),
            ..Self::layer(LayerKind::Profile)
        }
    }

    /// A file (config file or `.env`) and line.
    pub fn file(layer: LayerKind, file: &str, line: Option<u32>) -> Self {
        Self::in_file(layer, &Arc::from(file), line)
    }

    /// A file and line, sharing the file's name with its other values.
    pub fn in_file(layer: LayerKind, file: &Arc<str>, line: Option<u32>) -> Self {
        Self {
            file: Some(file.clone()),
            line,
            ..Self::layer(layer)
        }
    }

    /// An environment variable.
    pub fn var(layer: LayerKind, name: &str) -> Self {
        Self {
            detail: Some(name.to_owned()),
            ..Self::layer(layer)
        }
    }
}

/// `profile 'default'`, `config file config/a.toml, line 3`, `env PREFECT_X`.
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.layer.label())?;
        match (&self.file, self.line, &self.detail) {
            (Some(file), Some(line), _) => write!(f, " {file}, line {line}"),
            (Some(file), None, _) => write!(f, " {file}"),
            (None, _, Some(detail)) if self.layer == LayerKind::Profile => {
                write!(f, " '{detail}'")
            }
            (None, _, Some(detail)) => write!(f, " {detail}"),
            (None, _, None) => Ok(()),
        }
    }
}

/// A value in a layer, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sourced {
    /// The typed value.
    pub value: Value,
    /// Its provenance.
    pub source: Source,
}

/// One layer: values keyed by canonical name.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Which layer this is.
    pub kind: LayerKind,
    /// Values by canonical name.
    pub values: BTreeMap<String, Sourced>,
    /// Problems that leave the rest of the layer in force: unknown
    /// `PREFECT_` names, and in `.env` values that do not parse (that
    /// setting falls back to the layers below). Each names where it is.
    pub warnings: Vec<SettingsError>,
}

/// Collects a layer's values, letting the canonical name win over an alias
/// given in the same layer.
struct Builder<'c> {
    catalog: &'c Catalog,
    layer: Layer,
    from_canonical: BTreeMap<String, bool>,
    errors: Vec<SettingsError>,
}

impl<'c> Builder<'c> {
    fn new(catalog: &'c Catalog, kind: LayerKind) -> Self {
        Self {
            catalog,
            layer: Layer::empty(kind),
            from_canonical: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    /// Records `value` (already parsed) for `entry` under the name `given`.
    fn put(&mut self, entry: &Entry, given: &str, parsed: Result<Value, String>, source: Source) {
        let canonical = given == entry.name;
        match parsed {
            Err(expected) => self.errors.push(SettingsError::InvalidValue {
                name: entry.name.clone(),
                at: source,
                expected,
            }),
            Ok(value) => {
                // The canonical name wins over an alias; otherwise the later value wins.
                if !canonical && self.from_canonical.get(&entry.name) == Some(&true) {
                    return;
                }
                self.from_canonical.insert(entry.name.clone(), canonical);
                self.layer
                    .values
                    .insert(entry.name.clone(), Sourced { value, source });
            }
        }
    }

    fn unknown(&mut self, name: &str, suggestion: Option<String>, at: Source) {
        self.errors.push(SettingsError::UnknownName {
            name: name.to_owned(),
            suggestion,
            at: Some(at),
        });
    }

    /// A name Prefect may know but this catalogue does not: warned about.
    fn unknown_prefect(&mut self, name: &str, suggestion: Option<String>, at: Source) {
        self.layer.warnings.push(SettingsError::UnknownPrefect {
            name: name.to_owned(),
            suggestion,
            at,
        });
    }

    /// Moves the errors so far into the warnings (a `.env`: each bad value
    /// drops only its own setting).
    fn errors_to_warnings(&mut self) {
        self.layer.warnings.append(&mut self.errors);
        self.layer.warnings.sort_by_key(SettingsError::line);
    }

    fn finish(self) -> Result<Layer, Errors> {
        if self.errors.is_empty() {
            Ok(self.layer)
        } else {
            Err(Errors(self.errors))
        }
    }
}

impl Layer {
    /// A layer with no values.
    pub fn empty(kind: LayerKind) -> Self {
        Self {
            kind,
            values: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    /// The names whose value or source differs between `self` and
    /// `other` (present in one only, or different in both), sorted: what a
    /// resolution must re-resolve when `other` takes `self`'s place
    /// ([`Resolution::update`](crate::Resolution::update)). One merge walk
    /// of both layers, whatever the catalogue's size.
    pub fn changed_names<'a>(&'a self, other: &'a Layer) -> Vec<&'a str> {
        let mut out = Vec::new();
        let (mut a, mut b) = (
            self.values.iter().peekable(),
            other.values.iter().peekable(),
        );
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => return out,
                (Some((k, _)), None) => {
                    out.push(k.as_str());
                    a.next();
                }
                (None, Some((k, _))) => {
                    out.push(k.as_str());
                    b.next();
                }
                (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => {
                        out.push(ka.as_str());
                        a.next();
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(kb.as_str());
                        b.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if va != vb {
                            out.push(ka.as_str());
                        }
                        a.next();
                        b.next();
                    }
                },
            }
        }
    }

    /// The catalogue's defaults (settings without a default are absent).
    pub fn defaults(catalog: &Catalog) -> Self {
        let values = catalog
            .entries()
            .iter()
            .filter_map(|e| {
                let value = e.default.clone()?;
                Some((
                    e.name.clone(),
                    Sourced {
                        value,
                        source: Source::defaults(),
                    },
                ))
            })
            .collect();
        Self {
            kind: LayerKind::Defaults,
            values,
            warnings: Vec::new(),
        }
    }

    /// An environment (`kind` is [`LayerKind::Env`] for the daemon's,
    /// [`LayerKind::ProcessEnv`] for a service's). Variables that name no
    /// setting are ignored: an environment holds much else.
    ///
    /// # Errors
    /// Every variable naming a setting whose value does not parse.
    pub fn from_env<K, V>(
        catalog: &Catalog,
        kind: LayerKind,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Errors>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (layer, errors) = Self::from_env_lenient(catalog, kind, vars);
        if errors.is_empty() {
            Ok(layer)
        } else {
            Err(Errors(errors))
        }
    }

    /// As [`Layer::from_env`], but keeps every variable that parses and
    /// returns the problems beside it: one bad variable in an environment
    /// must not hide the rest (an alias that parses then stands in for a
    /// canonical name that does not).
    pub fn from_env_lenient<K, V>(
        catalog: &Catalog,
        kind: LayerKind,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> (Self, Vec<SettingsError>)
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut b = Builder::new(catalog, kind);
        for (name, raw) in vars {
            let name = name.as_ref();
            // Environment names are exact: `prefect_x` is not `PREFECT_X`.
            let Some(entry) = catalog.get(name).filter(|e| e.names().any(|n| n == name)) else {
                continue;
            };
            let parsed = value::parse(entry, raw.as_ref());
            b.put(entry, name, parsed, Source::var(kind, name));
        }
        (b.layer, b.errors)
    }

    /// A `.env` file (`KEY=value` lines, `#` comments, quotes, `export`),
    /// read as Prefect reads one: a name that is not a setting is ignored, as
    /// in the environment; an unknown `PREFECT_` name and a value that does
    /// not parse are [`Layer::warnings`] (with file and line), and only that
    /// setting falls back: the rest of the file applies.
    ///
    /// # Errors
    /// A line that is not `NAME=VALUE` (with the file and line): the file
    /// cannot be read as a whole then.
    pub fn from_dotenv(catalog: &Catalog, path: &Path, text: &str) -> Result<Self, Errors> {
        let file = path.display().to_string();
        let shared: Arc<str> = Arc::from(file.as_str());
        let mut b = Builder::new(catalog, LayerKind::DotEnv);
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            let (name, raw) = match item {
                Ok(pair) => pair,
                Err(dotenvy::Error::LineParse(line_text, _)) => {
                    let line = text
                        .lines()
                        .position(|l| l == line_text)
                        .map(|i| i as u32 + 1);
                    b.errors.push(SettingsError::Syntax {
                        file: file.clone(),
                        line,
                        message: format!("expected NAME=VALUE, got {line_text:?}"),
                    });
                    // dotenvy stops at the first bad line.
                    break;
                }
                Err(e) => {
                    b.errors.push(SettingsError::Syntax {
                        file: file.clone(),
                        line: None,
                        message: e.to_string(),
                    });
                    break;
                }
            };
            let source = Source {
                detail: Some(name.clone()),
                ..Source::in_file(LayerKind::DotEnv, &shared, dotenv_line(text, &name))
            };
            match catalog.get(&name) {
                Some(entry) => {
                    let parsed = value::parse(entry, &raw);
                    b.put(entry, &name, parsed, source);
                }
                None if is_prefect_name(&name) => {
                    let suggestion = catalog.suggest(&name);
                    b.unknown_prefect(&name, suggestion, source);
                }
                None => {}
            }
        }
        let syntax = b
            .errors
            .iter()
            .any(|e| matches!(e, SettingsError::Syntax { .. }));
        if !syntax {
            b.errors_to_warnings();
        }
        b.finish()
    }

    /// A TOML value file: nested by TOML path (`[tasks] default_retries = 2`,
    /// `tasks.default_retries = 2`) or flat by name
    /// (`PREFECT_TASKS_DEFAULT_RETRIES = 2`).
    ///
    /// # Errors
    /// Invalid TOML, an unknown name or path, a value of the wrong type —
    /// each with the file and line.
    pub fn from_toml(catalog: &Catalog, path: &Path, text: &str) -> Result<Self, Errors> {
        let file = path.display().to_string();
        let syntax = |e: toml::de::Error| SettingsError::Syntax {
            file: file.clone(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_owned(),
        };
        // One parse that keeps spans: each key's line comes from it, and
        // each value is taken from it as a `toml::Value`.
        let table = toml::de::DeTable::parse(text).map_err(syntax)?;
        let lines = Lines::new(text);
        let mut b = Builder::new(catalog, LayerKind::File);
        let shared: Arc<str> = Arc::from(file.as_str());
        walk_toml(&mut b, &shared, &lines, "", table.into_inner()).map_err(syntax)?;
        b.finish()
    }

    /// A profile's values, as stored in `profiles.toml` (strings, as Prefect
    /// writes them, or native TOML values).
    ///
    /// # Errors
    /// Every unknown name and every invalid value, naming the profile.
    pub fn from_profile(
        catalog: &Catalog,
        profile: &str,
        values: &BTreeMap<String, toml::Value>,
    ) -> Result<Self, Errors> {
        let (layer, errors) = Self::from_profile_lenient(catalog, profile, values);
        if errors.is_empty() {
            Ok(layer)
        } else {
            Err(Errors(errors))
        }
    }

    /// As [`Layer::from_profile`], but keeps every valid value and returns
    /// the problems beside it: a profiles file edited by hand (or by Prefect)
    /// must not take the whole profile down with one bad entry. An unknown
    /// `PREFECT_` name is a warning in the layer, not a problem: Prefect
    /// (a newer one) may know it, and the file keeps it as is.
    pub fn from_profile_lenient(
        catalog: &Catalog,
        profile: &str,
        values: &BTreeMap<String, toml::Value>,
    ) -> (Self, Vec<SettingsError>) {
        let mut b = Builder::new(catalog, LayerKind::Profile);
        for (name, raw) in values {
            match catalog.get(name) {
                Some(entry) => {
                    let parsed = value::from_toml(entry, raw);
                    b.put(entry, name, parsed, Source::profile(profile));
                }
                None if is_prefect_name(name) => {
                    let suggestion = catalog.suggest(name);
                    b.unknown_prefect(name, suggestion, Source::profile(profile));
                }
                None => {
                    let suggestion = catalog.suggest(name);
                    b.unknown(name, suggestion, Source::profile(profile));
                }
            }
        }
        (b.layer, b.errors)
    }
}

fn walk_toml(
    b: &mut Builder<'_>,
    file: &Arc<str>,
    lines: &Lines,
    prefix: &str,
    table: toml::de::DeTable<'_>,
) -> Result<(), toml::de::Error> {
    for (key, value) in table {
        let line = lines.at(key.span().start);
        let key: &str = key.get_ref();
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        let source = Source::in_file(LayerKind::File, file, Some(line));
        let catalog = b.catalog;
        // The nested path counts as the canonical spelling; flat names are
        // accepted at the top level only.
        let entry = match catalog.by_path(&path) {
            Some(entry) => Some((entry, entry.name.as_str())),
            None if prefix.is_empty() => catalog
                .get(key)
                .filter(|e| e.names().any(|n| n == key))
                .map(|e| (e, key)),
            None => None,
        };
        match (entry, value.into_inner()) {
            (Some((entry, given)), value) => {
                let value =
                    toml::Value::deserialize(toml::Spanned::new(0..0, value).into_deserializer())?;
                let parsed = value::from_toml(entry, &value);
                b.put(entry, given, parsed, source);
            }
            (None, toml::de::DeValue::Table(inner)) => walk_toml(b, file, lines, &path, inner)?,
            (None, _) => {
                let suggestion = if prefix.is_empty() {
                    catalog.suggest(key).or_else(|| catalog.suggest_path(&path))
                } else {
                    catalog.suggest_path(&path)
                };
                let prefect = if prefix.is_empty() {
                    is_prefect_name(key)
                } else {
                    is_prefect_section(catalog, &path)
                };
                if prefect {
                    b.unknown_prefect(&path, suggestion, source);
                } else {
                    b.unknown(&path, suggestion, source);
                }
            }
        }
    }
    Ok(())
}

/// Whether `name` is in Prefect's namespace (a newer Prefect may declare it).
fn is_prefect_name(name: &str) -> bool {
    name.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("PREFECT_"))
}

/// Whether a nested TOML `path` is under a section Prefect's settings use
/// (`[server.api] new_thing = 1` is a newer Prefect's; `[myapp] x = 1` is
/// a service's, and must be declared).
fn is_prefect_section(catalog: &Catalog, path: &str) -> bool {
    let top = path.split('.').next().unwrap_or(path);
    catalog.entries().iter().any(|e| {
        e.file.is_none()
            && is_prefect_name(&e.name)
            && e.path
                .as_deref()
                .is_some_and(|p| p.split('.').next() == Some(top) && p.contains('.'))
    })
}

/// The line of the last assignment to `name` in a `.env` text (the one
/// dotenvy keeps).
fn dotenv_line(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            line.strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .last()
        .map(|(i, _)| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dotenv(text: &str) -> Layer {
        Layer::from_dotenv(&Catalog::builtin(), Path::new("cfg/.env"), text).unwrap()
    }

    #[test]
    fn dotenv_ignores_names_that_are_not_settings() {
        let layer =
            dotenv("DATABASE_URL=postgres://x\nSECRET_KEY=abc\nPREFECT_TASK_DEFAULT_RETRIES=4\n");
        assert_eq!(
            layer.values["PREFECT_TASKS_DEFAULT_RETRIES"].value,
            Value::Integer(4)
        );
        assert_eq!(layer.values.len(), 1);
        assert!(layer.warnings.is_empty(), "{:?}", layer.warnings);
    }

    #[test]
    fn a_bad_dotenv_value_drops_only_its_setting_with_file_and_line() {
        let layer = dotenv(
            "PREFECT_TASKS_DEFAULT_RETRIES=many\nPREFECT_FLOWS_DEFAULT_RETRIES=2\nPREFECT_LOGGING_LEVEL=loud\nPREFECT_NEWER_THING=1\n",
        );
        assert_eq!(
            layer.values["PREFECT_FLOWS_DEFAULT_RETRIES"].value,
            Value::Integer(2)
        );
        assert!(!layer.values.contains_key("PREFECT_TASKS_DEFAULT_RETRIES"));
        let warnings: Vec<(String, Option<u32>)> = layer
            .warnings
            .iter()
            .map(|w| (w.to_string(), w.line()))
            .collect();
        assert_eq!(
            warnings,
            [
                (
                    "Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from .env file cfg/.env, line 1: expected an integer, got \"many\"".to_owned(),
                    Some(1)
                ),
                (
                    "Invalid value for PREFECT_LOGGING_LEVEL from .env file cfg/.env, line 3: expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL', got \"loud\"".to_owned(),
                    Some(3)
                ),
                (
                    ".env file cfg/.env, line 4: 'PREFECT_NEWER_THING' is not a setting of Prefect 3.9.1 or cfgd; it is kept as is and not applied.".to_owned(),
                    Some(4)
                ),
            ]
        );
    }

    #[test]
    fn unknown_prefect_names_in_a_profile_are_warnings_others_are_problems() {
        let values = BTreeMap::from([
            (
                "PREFECT_TASKS_DEFAULT_RETRIES".to_owned(),
                toml::Value::from("2"),
            ),
            ("PREFECT_SOMETHING_NEW".to_owned(), toml::Value::from("x")),
            ("MYAPP_X".to_owned(), toml::Value::from("x")),
        ]);
        let (layer, problems) =
            Layer::from_profile_lenient(&Catalog::builtin(), "default", &values);
        assert_eq!(layer.values.len(), 1);
        assert_eq!(layer.warnings.len(), 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "profile 'default': Unknown setting name 'MYAPP_X'."
        );
    }
}
