//! The profiles file, in Prefect's `profiles.toml` format:
//!
//! ```toml
//! active = "default"
//!
//! [profiles.default]
//! PREFECT_TASKS_DEFAULT_RETRIES = "2"
//! PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS = "[1, 10, 100]"
//! ```
//!
//! Values are written as strings, as Prefect writes them, so Prefect can read
//! a file cfgd wrote and the reverse. Native TOML values are read too.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::error::{Errors, SettingsError};
use crate::fs::write_atomic;
use crate::layer::Layer;
use crate::toml_lines::line_of;
use crate::value::Value;

/// The profile cfgd creates when there is no profiles file.
pub const DEFAULT_PROFILE: &str = "default";

/// The profile in force when a profiles file names none (`active =` absent):
/// Prefect's packaged default, so that cfgd and Prefect agree on which
/// profile a file such as the one `prefect profile create` first writes
/// (`[profiles.dev]` alone) has in force.
pub const PREFECT_DEFAULT_ACTIVE: &str = "ephemeral";

/// The contents of a `profiles.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfilesFile {
    /// The active profile's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<String>,
    /// Every profile's values, by name as stored (canonical for cfgd's writes).
    #[serde(default)]
    pub profiles: BTreeMap<String, BTreeMap<String, toml::Value>>,
}

impl Default for ProfilesFile {
    /// One empty active profile named `default`.
    fn default() -> Self {
        Self {
            active: Some(DEFAULT_PROFILE.to_owned()),
            profiles: BTreeMap::from([(DEFAULT_PROFILE.to_owned(), BTreeMap::new())]),
        }
    }
}

impl ProfilesFile {
    /// Reads `path`; a missing file is the [`Default`] (one empty `default`
    /// profile).
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid profiles file.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SettingsError::Io {
                action: "cannot read",
                path: path.display().to_string(),
                message: e.to_string(),
            }),
        }
    }

    /// Parses the text of a profiles file; `path` names it in errors.
    ///
    /// # Errors
    /// Invalid TOML or the wrong shape, with the line.
    pub fn parse(text: &str, path: &Path) -> Result<Self, SettingsError> {
        toml::from_str(text).map_err(|e| SettingsError::Syntax {
            file: path.display().to_string(),
            line: e.span().map(|s| line_of(text, s.start)),
            message: format!(
                "{}; expected Prefect's profiles.toml format (active = \"name\", [profiles.name] NAME = \"value\")",
                e.message().trim()
            ),
        })
    }

    /// Writes the file atomically with mode 0600.
    ///
    /// # Errors
    /// Any I/O error; the old file is then untouched.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        write_atomic(path, self.to_toml().as_bytes(), 0o600).map_err(|e| SettingsError::Io {
            action: "cannot write",
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("profiles are plain strings and tables")
    }

    /// The active profile's name ([`PREFECT_DEFAULT_ACTIVE`], as with
    /// Prefect, when the file names none).
    pub fn active_name(&self) -> &str {
        self.active.as_deref().unwrap_or(PREFECT_DEFAULT_ACTIVE)
    }

    /// The values of profile `name` (empty when it does not exist).
    pub fn values(&self, name: &str) -> BTreeMap<String, toml::Value> {
        self.profiles.get(name).cloned().unwrap_or_default()
    }

    /// The active profile as a layer.
    ///
    /// # Errors
    /// Every unknown name and invalid value in the active profile.
    pub fn active_layer(&self, catalog: &Catalog) -> Result<Layer, Errors> {
        let name = self.active_name();
        Layer::from_profile(catalog, name, &self.values(name))
    }

    /// Stores `value` under the canonical `name` in `profile` (created if
    /// missing), removing any alias spelling of it, as Prefect does. The
    /// value is written in the form Prefect reads back as the same value
    /// ([`crate::value::to_profile`]).
    pub fn set(&mut self, catalog: &Catalog, profile: &str, name: &str, value: &Value) {
        let values = self.profiles.entry(profile.to_owned()).or_default();
        if let Some(entry) = catalog.get(name) {
            for alias in &entry.aliases {
                values.remove(alias);
            }
        }
        values.insert(name.to_owned(), stored(catalog, name, value));
    }

    /// Removes `name` (and its aliases) from `profile`.
    ///
    /// # Errors
    /// [`SettingsError::NotInProfile`] when the profile holds neither.
    pub fn unset(
        &mut self,
        catalog: &Catalog,
        profile: &str,
        name: &str,
    ) -> Result<(), SettingsError> {
        let names: Vec<String> = match catalog.get(name) {
            Some(e) => e.names().map(str::to_owned).collect(),
            None => vec![name.to_owned()],
        };
        let removed = self
            .profiles
            .get_mut(profile)
            .map(|values| names.iter().filter(|n| values.remove(*n).is_some()).count())
            .unwrap_or(0);
        if removed == 0 {
            return Err(SettingsError::NotInProfile {
                name: name.to_owned(),
                profile: profile.to_owned(),
            });
        }
        Ok(())
    }

    /// Creates an empty profile, or a copy of `from`.
    ///
    /// # Errors
    /// An invalid or taken name, or an unknown `from`.
    pub fn create(&mut self, name: &str, from: Option<&str>) -> Result<(), SettingsError> {
        check_profile_name(name)?;
        if self.profiles.contains_key(name) {
            return Err(SettingsError::ProfileExists(name.to_owned()));
        }
        let values = match from {
            Some(src) => self
                .profiles
                .get(src)
                .cloned()
                .ok_or_else(|| SettingsError::ProfileNotFound(src.to_owned()))?,
            None => BTreeMap::new(),
        };
        self.profiles.insert(name.to_owned(), values);
        Ok(())
    }

    /// Makes `name` the active profile.
    ///
    /// # Errors
    /// [`SettingsError::ProfileNotFound`].
    pub fn use_profile(&mut self, name: &str) -> Result<(), SettingsError> {
        self.require(name)?;
        self.active = Some(name.to_owned());
        Ok(())
    }

    /// Deletes a profile that is not active.
    ///
    /// # Errors
    /// An unknown name, or the active profile.
    pub fn delete(&mut self, name: &str) -> Result<(), SettingsError> {
        self.require(name)?;
        if self.active_name() == name {
            return Err(SettingsError::ProfileActive(name.to_owned()));
        }
        self.profiles.remove(name);
        Ok(())
    }

    /// Renames a profile, following it if it is active.
    ///
    /// # Errors
    /// An unknown `from`, or a `to` that is invalid or taken.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), SettingsError> {
        self.require(from)?;
        check_profile_name(to)?;
        if self.profiles.contains_key(to) {
            return Err(SettingsError::ProfileExists(to.to_owned()));
        }
        let values = self.profiles.remove(from).unwrap_or_default();
        self.profiles.insert(to.to_owned(), values);
        if self.active_name() == from {
            self.active = Some(to.to_owned());
        }
        Ok(())
    }

    fn require(&self, name: &str) -> Result<(), SettingsError> {
        // The implicit default profile exists even before anything is written to it.
        if self.profiles.contains_key(name) || (name == self.active_name()) {
            Ok(())
        } else {
            Err(SettingsError::ProfileNotFound(name.to_owned()))
        }
    }
}

/// How a value is stored in the profiles file: in the form Prefect reads
/// back as the same value ([`crate::value::to_profile`]); a name the
/// catalogue does not declare as a string, as Prefect writes it.
pub(crate) fn stored(catalog: &Catalog, name: &str, value: &Value) -> toml::Value {
    match catalog.get(name) {
        Some(entry) => crate::value::to_profile(entry, value),
        None => toml::Value::String(value.to_string()),
    }
}

fn check_profile_name(name: &str) -> Result<(), SettingsError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(SettingsError::ProfileName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Delays;

    /// A file as Prefect 3 writes it: every value a string, lists included,
    /// plus an alias key and a native array a user typed by hand.
    const PREFECT_WRITTEN: &str = r#"active = "prod"

[profiles.ephemeral]
PREFECT_SERVER_ALLOW_EPHEMERAL_MODE = "true"
PREFECT_API_URL = "http://127.0.0.1:4200/api"
PREFECT_LOGGING_LEVEL = "debug"
PREFECT_FROM_A_NEWER_PREFECT = "1"

[profiles.prod]
PREFECT_TASK_DEFAULT_RETRIES = "3"
PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS = "[1.0, 10.0, 100.0]"
PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS = [5, 10]
PREFECT_API_KEY = "pnu_secret"
"#;

    /// What `prefect profile create dev` first writes on a fresh home: no
    /// `active`, so Prefect's packaged default is in force — for cfgd too,
    /// and a write keeps the file naming none.
    #[test]
    fn a_file_naming_no_active_profile_has_prefects_default_in_force() {
        let mut f = ProfilesFile::parse("[profiles.dev]\n", Path::new("p.toml")).unwrap();
        assert_eq!(f.active_name(), "ephemeral");
        let catalog = Catalog::builtin();
        f.set(
            &catalog,
            "ephemeral",
            "PREFECT_TASKS_DEFAULT_RETRIES",
            &Value::Integer(7),
        );
        let text = f.to_toml();
        assert!(!text.contains("active"), "{text}");
        assert_eq!(f.active_layer(&catalog).unwrap().values.len(), 1);
    }

    #[test]
    fn loads_a_prefect_written_profiles_file() {
        let catalog = Catalog::builtin();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        std::fs::write(&path, PREFECT_WRITTEN).unwrap();
        let file = ProfilesFile::load(&path).unwrap();
        assert_eq!(file.active_name(), "prod");
        let layer = file.active_layer(&catalog).unwrap();
        let get = |n: &str| layer.values.get(n).unwrap().value.clone();
        assert_eq!(get("PREFECT_TASKS_DEFAULT_RETRIES"), Value::Integer(3));
        assert_eq!(
            get("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"),
            Value::Delays(Delays::list(vec![1.0, 10.0, 100.0]).unwrap())
        );
        assert_eq!(
            get("PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS"),
            Value::Delays(Delays::list(vec![5.0, 10.0]).unwrap())
        );
        assert_eq!(get("PREFECT_API_KEY"), Value::Secret("pnu_secret".into()));
        // Prefect's other settings load; a name only a newer Prefect knows
        // is a warning, never an error.
        let mut other = file.clone();
        other.use_profile("ephemeral").unwrap();
        let layer = other.active_layer(&catalog).unwrap();
        assert_eq!(
            layer.values["PREFECT_SERVER_EPHEMERAL_ENABLED"].value,
            Value::Boolean(true)
        );
        assert_eq!(
            layer.values["PREFECT_LOGGING_LEVEL"].value,
            Value::String("DEBUG".into())
        );
        assert_eq!(
            layer.values["PREFECT_API_URL"].value,
            Value::String("http://127.0.0.1:4200/api".into())
        );
        let warnings: Vec<String> = layer.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(
            warnings,
            [
                "profile 'ephemeral': 'PREFECT_FROM_A_NEWER_PREFECT' is not a setting of Prefect 3.9.1 or cfgd; it is kept as is and not applied."
            ]
        );
    }

    #[test]
    fn set_writes_strings_under_the_canonical_name_and_round_trips() {
        let catalog = Catalog::builtin();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let mut file = ProfilesFile::load(&path).unwrap();
        assert_eq!(file, ProfilesFile::default());
        file.profiles
            .get_mut("default")
            .unwrap()
            .insert("PREFECT_TASK_DEFAULT_RETRIES".into(), "1".into());
        let delays = Value::Delays(Delays::list(vec![1.0, 10.5]).unwrap());
        file.set(
            &catalog,
            "default",
            "PREFECT_TASKS_DEFAULT_RETRIES",
            &Value::Integer(2),
        );
        file.set(
            &catalog,
            "default",
            "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS",
            &delays,
        );
        file.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "active = \"default\"\n\n[profiles.default]\nPREFECT_TASKS_DEFAULT_RETRIES = \"2\"\nPREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS = \"1,10.5\"\n"
        );
        let again = ProfilesFile::load(&path).unwrap();
        assert_eq!(again, file);
        let layer = again.active_layer(&catalog).unwrap();
        assert_eq!(
            layer.values["PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"].value,
            delays
        );
    }

    #[test]
    fn profile_operations_follow_prefect() {
        let catalog = Catalog::builtin();
        let mut f = ProfilesFile::default();
        f.set(
            &catalog,
            "default",
            "PREFECT_TASKS_DEFAULT_RETRIES",
            &Value::Integer(1),
        );
        f.create("dev", Some("default")).unwrap();
        assert_eq!(f.values("dev").len(), 1);
        assert_eq!(
            f.create("dev", None).unwrap_err().to_string(),
            "Profile 'dev' already exists."
        );
        assert_eq!(
            f.create("x", Some("nope")).unwrap_err().to_string(),
            "Profile 'nope' not found."
        );
        assert!(
            f.create("bad name", None)
                .unwrap_err()
                .to_string()
                .starts_with("Invalid profile name")
        );
        assert_eq!(
            f.delete("default").unwrap_err().to_string(),
            "Profile 'default' is the active profile. You must switch profiles before it can be deleted."
        );
        f.use_profile("dev").unwrap();
        f.rename("dev", "staging").unwrap();
        assert_eq!(f.active_name(), "staging");
        assert_eq!(
            f.use_profile("dev").unwrap_err().to_string(),
            "Profile 'dev' not found."
        );
        f.delete("default").unwrap();
        assert_eq!(
            f.unset(&catalog, "staging", "PREFECT_FLOWS_DEFAULT_RETRIES")
                .unwrap_err()
                .to_string(),
            "'PREFECT_FLOWS_DEFAULT_RETRIES' is not set in profile 'staging'."
        );
        f.unset(&catalog, "staging", "PREFECT_TASK_DEFAULT_RETRIES")
            .unwrap();
        assert!(f.values("staging").is_empty());
    }

    #[test]
    fn a_malformed_file_names_the_line_and_the_format() {
        let err = ProfilesFile::parse("active = \"a\"\n[profiles.a]\nX = \n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.toml, line 3: "), "{err}");
        assert!(
            err.contains("expected Prefect's profiles.toml format"),
            "{err}"
        );
    }
}
