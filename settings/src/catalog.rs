//! The catalogue: every setting declared once, as data.
//!
//! `config/catalog.toml` declares the built-in settings (embedded in the
//! binary, so a daemon or SDK without a config dir still knows them);
//! `config/catalog.d/*.toml` files add a service's own. The format:
//!
//! ```toml
//! [[settings]]
//! name = "PREFECT_TASKS_DEFAULT_RETRIES"     # canonical, upper case
//! aliases = ["PREFECT_TASK_DEFAULT_RETRIES"] # optional
//! path = "tasks.default_retries"             # optional: the nested TOML key
//! type = "integer"                           # integer|number|boolean|string|secret|delays
//! default = 0                                # optional: absent means unset
//! min = 0                                    # optional bounds (integer, number)
//! description = "…"
//! ```

use rustc_hash::FxHashMap as HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::error::SettingsError;
use crate::toml_lines::KeyLines;
use crate::value::{self, Value};

/// The catalogue that ships with cfgd (`config/catalog.toml`).
pub const BUILTIN_CATALOG: &str = include_str!("../../config/catalog.toml");

/// The type of a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A whole number (`i64`), optionally bounded.
    Integer,
    /// A finite number (`f64`), optionally bounded.
    Number,
    /// `true`/`false`.
    Boolean,
    /// Free text.
    String,
    /// Free text, masked wherever it is shown.
    Secret,
    /// Retry delays: a number or a list of at most 50 numbers, each ≥ 0.
    Delays,
}

impl Kind {
    /// The catalogue's name for this type.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::Boolean => "boolean",
            Kind::String => "string",
            Kind::Secret => "secret",
            Kind::Delays => "delays",
        }
    }

    /// Parses a catalogue type name.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "string" => Kind::String,
            "secret" => Kind::Secret,
            "delays" => Kind::Delays,
            _ => return None,
        })
    }

    /// What a value of this type looks like, for error messages.
    pub fn expectation(self) -> &'static str {
        match self {
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::String | Kind::Secret => "a string",
            Kind::Delays => "a number of seconds or a list of numbers",
        }
    }
}

/// One declared setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Canonical name, e.g. `PREFECT_TASKS_DEFAULT_RETRIES`.
    pub name: String,
    /// Other accepted names, e.g. `PREFECT_TASK_DEFAULT_RETRIES`.
    pub aliases: Vec<String>,
    /// Nested TOML key, e.g. `tasks.default_retries`.
    pub path: Option<String>,
    /// The value type.
    pub kind: Kind,
    /// The built-in default; `None` means unset.
    pub default: Option<Value>,
    /// Inclusive lower bound for integers and numbers.
    pub min: Option<f64>,
    /// Inclusive upper bound for integers and numbers.
    pub max: Option<f64>,
    /// One line on what the setting does.
    pub description: String,
    /// The catalogue file that declared it (`None` for the built-in one).
    pub file: Option<String>,
}

impl Entry {
    /// An entry with just a name and a type (handy in tests).
    pub fn new(name: &str, kind: Kind) -> Self {
        Self {
            name: name.to_owned(),
            aliases: Vec::new(),
            path: None,
            kind,
            default: None,
            min: None,
            max: None,
            description: String::new(),
            file: None,
        }
    }

    /// Whether values of this setting are masked when shown.
    pub fn is_secret(&self) -> bool {
        self.kind == Kind::Secret
    }

    /// The canonical name and every alias, canonical first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    #[serde(default)]
    settings: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    #[serde(default)]
    aliases: Vec<String>,
    path: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    default: Option<toml::Value>,
    min: Option<f64>,
    max: Option<f64>,
    #[serde(default)]
    description: String,
}

/// Every declared setting, indexed by canonical name, alias and TOML path.
///
/// Cheap to clone (the entries are shared).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Arc<Vec<Entry>>,
    // FxHash: a read by name is on the SDK's hot path, and the keys are
    // the catalogue's own (a caller only chooses what to look up, so it
    // cannot lengthen a bucket).
    by_name: Arc<HashMap<String, usize>>,
    by_path: Arc<HashMap<String, usize>>,
}

impl Catalog {
    /// The built-in catalogue.
    ///
    /// # Panics
    /// Never in a released build: the embedded file is checked by a test.
    pub fn builtin() -> Self {
        Self::parse(BUILTIN_CATALOG, None).expect("the built-in catalogue is valid")
    }

    /// Parses one catalogue file. `file` names it in errors and entries.
    ///
    /// # Errors
    /// Invalid TOML, an unknown field or type, a name that is not
    /// `UPPER_SNAKE_CASE`, a default that does not fit the type, or a name,
    /// alias or path declared twice — each with the file and line.
    pub fn parse(text: &str, file: Option<&Path>) -> Result<Self, SettingsError> {
        let mut catalog = Self::default();
        catalog.add_file(text, file)?;
        Ok(catalog)
    }

    /// The built-in catalogue plus each `(path, text)` file, in order.
    ///
    /// # Errors
    /// As [`Catalog::parse`]; also a name declared by two files.
    pub fn with_files<'a>(
        files: impl IntoIterator<Item = (&'a Path, &'a str)>,
    ) -> Result<Self, SettingsError> {
        let mut catalog = Self::builtin();
        for (path, text) in files {
            catalog.add_file(text, Some(path))?;
        }
        Ok(catalog)
    }

    /// Adds the entries of one catalogue file.
    ///
    /// # Errors
    /// As [`Catalog::parse`]. On error `self` is unchanged.
    pub fn add_file(&mut self, text: &str, file: Option<&Path>) -> Result<(), SettingsError> {
        let file_name = file.map(|p| p.display().to_string());
        let shown = file_name
            .clone()
            .unwrap_or_else(|| "built-in catalog.toml".into());
        let raw: RawCatalog = toml::from_str(text).map_err(|e| SettingsError::Syntax {
            file: shown.clone(),
            line: e.span().map(|s| crate::toml_lines::line_of(text, s.start)),
            message: e.message().trim().to_owned(),
        })?;
        let lines = KeyLines::new(text);
        let mut entries = (*self.entries).clone();
        let mut by_name = (*self.by_name).clone();
        let mut by_path = (*self.by_path).clone();
        for (i, raw) in raw.settings.into_iter().enumerate() {
            let line = lines.get(&format!("settings[{i}].name"));
            let fail = |message: String| SettingsError::Catalog {
                file: shown.clone(),
                line,
                message,
            };
            let kind = Kind::from_name(&raw.kind).ok_or_else(|| {
                fail(format!(
                    "setting {}: unknown type {:?}; expected one of integer, number, boolean, string, secret, delays",
                    raw.name, raw.kind
                ))
            })?;
            let mut entry = Entry {
                name: raw.name,
                aliases: raw.aliases,
                path: raw.path,
                kind,
                default: None,
                min: raw.min,
                max: raw.max,
                description: raw.description,
                file: file_name.clone(),
            };
            for name in entry.names() {
                if !is_setting_name(name) {
                    return Err(fail(format!(
                        "{name:?} is not a valid setting name; expected UPPER_SNAKE_CASE such as MYAPP_TIMEOUT_SECONDS"
                    )));
                }
            }
            if let Some(default) = &raw.default {
                entry.default =
                    Some(value::from_toml(&entry, default).map_err(|e| {
                        fail(format!("setting {}: invalid default: {e}", entry.name))
                    })?);
            }
            let index = entries.len();
            for name in entry.names() {
                if let Some(&other) = by_name.get(name) {
                    let other: &Entry = &entries[other];
                    return Err(fail(format!(
                        "{name} is already declared by {} (in {})",
                        other.name,
                        other.file.as_deref().unwrap_or("the built-in catalog.toml")
                    )));
                }
                by_name.insert(name.to_owned(), index);
            }
            if let Some(path) = &entry.path
                && by_path.insert(path.clone(), index).is_some()
            {
                return Err(fail(format!("the TOML path {path} is declared twice")));
            }
            entries.push(entry);
        }
        self.entries = Arc::new(entries);
        self.by_name = Arc::new(by_name);
        self.by_path = Arc::new(by_path);
        Ok(())
    }

    /// A catalogue of these entries (e.g. received from a daemon).
    ///
    /// # Errors
    /// A name, alias or path declared twice.
    pub fn from_entries(entries: Vec<Entry>) -> Result<Self, SettingsError> {
        let mut by_name = HashMap::default();
        let mut by_path = HashMap::default();
        for (index, entry) in entries.iter().enumerate() {
            let dup = |message: String| SettingsError::Catalog {
                file: entry.file.clone().unwrap_or_else(|| "catalogue".into()),
                line: None,
                message,
            };
            for name in entry.names() {
                if by_name.insert(name.to_owned(), index).is_some() {
                    return Err(dup(format!("{name} is declared twice")));
                }
            }
            if let Some(path) = &entry.path
                && by_path.insert(path.clone(), index).is_some()
            {
                return Err(dup(format!("the TOML path {path} is declared twice")));
            }
        }
        Ok(Self {
            entries: Arc::new(entries),
            by_name: Arc::new(by_name),
            by_path: Arc::new(by_path),
        })
    }

    /// Every entry, in declaration order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry for a canonical name or alias (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.index_of(name).map(|i| &self.entries[i])
    }

    /// Position of `name`'s entry in [`Catalog::entries`].
    pub fn index_of(&self, name: &str) -> Option<usize> {
        match self.by_name.get(name) {
            Some(&i) => Some(i),
            None if name.bytes().any(|b| b.is_ascii_lowercase()) => {
                self.by_name.get(&name.to_ascii_uppercase()).copied()
            }
            None => None,
        }
    }

    /// The entry for a nested TOML path such as `tasks.default_retries`.
    pub fn by_path(&self, path: &str) -> Option<&Entry> {
        self.by_path.get(path).map(|&i| &self.entries[i])
    }

    /// The entry for `name`, or an "unknown name" error with a suggestion.
    ///
    /// # Errors
    /// [`SettingsError::UnknownName`] when no entry has that name or alias.
    pub fn lookup(&self, name: &str) -> Result<&Entry, SettingsError> {
        self.get(name).ok_or_else(|| SettingsError::UnknownName {
            name: name.to_owned(),
            suggestion: self.suggest(name),
            at: None,
        })
    }

    /// The closest declared name or alias to `name`, if one is close.
    pub fn suggest(&self, name: &str) -> Option<String> {
        closest(name, self.by_name.keys().map(String::as_str))
    }

    /// The closest declared TOML path to `path`, if one is close.
    pub fn suggest_path(&self, path: &str) -> Option<String> {
        closest(path, self.by_path.keys().map(String::as_str))
    }
}

fn is_setting_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z'))
        && bytes.all(|b| matches!(b, b'A'..=b'Z' | b'0'..=b'9' | b'_'))
}

fn closest<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let wanted = wanted.to_ascii_uppercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&wanted, &c.to_ascii_uppercase()), c))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_declares_the_prefect_retry_settings() {
        let c = Catalog::builtin();
        let retries = c.get("PREFECT_TASK_DEFAULT_RETRIES").unwrap();
        assert_eq!(retries.name, "PREFECT_TASKS_DEFAULT_RETRIES");
        assert_eq!(retries.path.as_deref(), Some("tasks.default_retries"));
        assert_eq!(retries.kind, Kind::Integer);
        assert_eq!(retries.default, Some(Value::Integer(0)));
        assert_eq!(retries.min, Some(0.0));
        for (alias, canonical, path) in [
            (
                "PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS",
                "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
                "tasks.default_retry_delay_seconds",
            ),
            (
                "PREFECT_FLOW_DEFAULT_RETRIES",
                "PREFECT_FLOWS_DEFAULT_RETRIES",
                "flows.default_retries",
            ),
            (
                "PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS",
                "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS",
                "flows.default_retry_delay_seconds",
            ),
        ] {
            let e = c.get(alias).unwrap();
            assert_eq!(e.name, canonical);
            assert_eq!(c.by_path(path).unwrap().name, canonical);
        }
        let jitter = c.get("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR").unwrap();
        assert_eq!(jitter.default, None);
        assert_eq!(jitter.kind, Kind::Number);
        assert!(c.get("PREFECT_API_KEY").unwrap().is_secret());
    }

    #[test]
    fn lookup_is_case_insensitive_and_suggests() {
        let c = Catalog::builtin();
        assert_eq!(
            c.get("prefect_task_default_retries").unwrap().name,
            "PREFECT_TASKS_DEFAULT_RETRIES"
        );
        let err = c.lookup("PREFECT_TASK_DEFAULT_RETRYS").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown setting name 'PREFECT_TASK_DEFAULT_RETRYS'. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?"
        );
        let err = c.lookup("NOTHING_LIKE_IT").unwrap_err();
        assert_eq!(err.to_string(), "Unknown setting name 'NOTHING_LIKE_IT'.");
    }

    #[test]
    fn service_catalogues_add_settings_and_errors_carry_file_and_line() {
        let text = "[[settings]]\nname = \"MYAPP_TIMEOUT\"\ntype = \"number\"\ndefault = 2.5\n";
        let c = Catalog::with_files([(Path::new("catalog.d/myapp.toml"), text)]).unwrap();
        assert_eq!(
            c.get("MYAPP_TIMEOUT").unwrap().default,
            Some(Value::Number(2.5))
        );
        assert!(c.get("PREFECT_API_KEY").is_some());

        let dup = "[[settings]]\nname = \"X_A\"\ntype = \"integer\"\n\n[[settings]]\nname = \"X_B\"\naliases = [\"X_A\"]\ntype = \"integer\"\n";
        let err = Catalog::parse(dup, Some(Path::new("d.toml"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.toml, line 6: X_A is already declared by X_A (in d.toml)"
        );

        let bad_type = "[[settings]]\nname = \"X_A\"\ntype = \"int\"\n";
        let err = Catalog::parse(bad_type, Some(Path::new("t.toml"))).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t.toml, line 2: setting X_A: unknown type \"int\"")
        );

        let bad_default =
            "[[settings]]\nname = \"X_A\"\ntype = \"integer\"\nmin = 0\ndefault = -1\n";
        let err = Catalog::parse(bad_default, Some(Path::new("t.toml"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml, line 2: setting X_A: invalid default: expected a value >= 0, got -1"
        );

        let bad_name = "[[settings]]\nname = \"lower\"\ntype = \"integer\"\n";
        assert!(
            Catalog::parse(bad_name, None)
                .unwrap_err()
                .to_string()
                .contains("UPPER_SNAKE_CASE")
        );

        let syntax = "[[settings]\nname = 1\n";
        let err = Catalog::parse(syntax, Some(Path::new("s.toml"))).unwrap_err();
        assert!(err.to_string().starts_with("s.toml, line 1: "), "{err}");
    }
}
