//! `cfg validate`: checks config files offline, with the same settings model
//! the daemon uses, so what passes here loads there. No daemon is needed.

use std::path::{Path, PathBuf};

use cfgd_settings::configdir::FileKind;
use cfgd_settings::{Catalog, ConfigDir, Errors, Layer, ProfilesFile, SettingsError};
use serde_json::json;

use super::Ctx;
use crate::args::ValidateArgs;
use crate::error::Failure;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq)]
struct Issue {
    file: String,
    line: Option<u32>,
    setting: Option<String>,
    message: String,
    /// The file still applies (an unknown `PREFECT_` name, a bad `.env`
    /// value that drops only its setting): reported, never a failure.
    warning: bool,
}

impl Issue {
    fn from_error(file: &Path, e: &SettingsError) -> Self {
        let file = file.display().to_string();
        let message = if names_a_file(e) {
            e.to_string()
        } else {
            format!("{file}: {e}")
        };
        Issue {
            file,
            line: e.line(),
            setting: e.setting().map(str::to_owned),
            message,
            warning: false,
        }
    }

    fn from_errors(file: &Path, errors: &Errors) -> Vec<Self> {
        errors.0.iter().map(|e| Self::from_error(file, e)).collect()
    }

    fn warnings(file: &Path, warnings: &[SettingsError]) -> Vec<Self> {
        warnings
            .iter()
            .map(|w| Issue {
                warning: true,
                ..Self::from_error(file, w)
            })
            .collect()
    }

    /// A layer's warnings, or its errors.
    fn of_layer(file: &Path, built: Result<Layer, Errors>) -> Vec<Self> {
        match built {
            Ok(layer) => Self::warnings(file, &layer.warnings),
            Err(e) => Self::from_errors(file, &e),
        }
    }
}

/// Whether `e` says which file it is about (a profile's problems say
/// "profile 'x'", not the profiles file).
fn names_a_file(e: &SettingsError) -> bool {
    match e {
        SettingsError::Syntax { .. } | SettingsError::Catalog { .. } | SettingsError::Io { .. } => {
            true
        }
        SettingsError::InvalidValue { at, .. } => at.file.is_some(),
        SettingsError::UnknownName { at, .. } => at.as_ref().is_some_and(|s| s.file.is_some()),
        SettingsError::UnknownPrefect { at, .. } => at.file.is_some(),
        _ => false,
    }
}

/// What a file is, by its name and place (as the daemon tells them apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Values,
    DotEnv,
    Catalog,
    Profiles,
}

/// The daemon's rule ([`FileKind::classify_file`]), plus `profiles.toml`
/// named on its own; `None` for a name cfgd never reads (`prod.env`).
fn role(path: &Path) -> Option<Role> {
    let profiles = path.file_name().is_some_and(|n| n == "profiles.toml");
    Some(match FileKind::classify_file(path)? {
        FileKind::Catalog => Role::Catalog,
        FileKind::DotEnv => Role::DotEnv,
        FileKind::Values if profiles => Role::Profiles,
        FileKind::Values => Role::Values,
    })
}

/// The catalogue a `catalog.d` file is added to: its config dir's
/// `catalog.toml` when that is valid, else the built-in one.
fn base_catalog(catalog_d_file: &Path) -> Catalog {
    catalog_d_file
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("catalog.toml"))
        .and_then(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            Catalog::with_base(&text, Some(&p)).ok()
        })
        .unwrap_or_else(Catalog::builtin)
}

/// Checks one file against `catalog`.
fn check_file(path: &Path, catalog: &Catalog) -> Vec<Issue> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            let err = SettingsError::Io {
                action: "cannot read",
                path: path.display().to_string(),
                message: e.to_string(),
            };
            return vec![Issue::from_error(path, &err)];
        }
    };
    let Some(role) = role(path) else {
        let err = SettingsError::Io {
            action: "cannot check",
            path: path.display().to_string(),
            message: "cfgd reads no file of this name (value files are *.toml, the dotenv file is .env, catalogues are catalog.toml and catalog.d/*.toml)".into(),
        };
        return vec![Issue::from_error(path, &err)];
    };
    match role {
        Role::Values => Issue::of_layer(path, Layer::from_toml(catalog, path, &text)),
        Role::DotEnv => Issue::of_layer(path, Layer::from_dotenv(catalog, path, &text)),
        Role::Catalog => {
            let result = if path.file_name().is_some_and(|n| n == "catalog.toml") {
                Catalog::with_base(&text, Some(path)).map(drop)
            } else {
                base_catalog(path).add_file(&text, Some(path))
            };
            result
                .err()
                .map(|e| vec![Issue::from_error(path, &e)])
                .unwrap_or_default()
        }
        Role::Profiles => match ProfilesFile::parse(&text, path) {
            Err(e) => vec![Issue::from_error(path, &e)],
            Ok(file) => file
                .profiles
                .iter()
                .flat_map(|(name, values)| {
                    let (layer, errors) = Layer::from_profile_lenient(catalog, name, values);
                    errors
                        .iter()
                        .map(|e| Issue::from_error(path, e))
                        .chain(Issue::warnings(path, &layer.warnings))
                        .collect::<Vec<_>>()
                })
                .collect(),
        },
    }
}

/// Every file of a config dir, and the problems of those that fail.
fn check_dir(dir: &Path) -> Result<(Vec<PathBuf>, Vec<Issue>), Failure> {
    if !dir.is_dir() {
        return Err(Failure::Message(format!(
            "Config dir '{}' does not exist or is not a directory (use --config-dir or CFGD_CONFIG_DIR).",
            dir.display()
        )));
    }
    let loaded = ConfigDir::load(dir);
    let files = loaded.files().map(|f| f.path.clone()).collect();
    let issues = loaded
        .files()
        .flat_map(|f| {
            let errors = f.error.as_ref().map(|e| Issue::from_errors(&f.path, e));
            errors
                .unwrap_or_default()
                .into_iter()
                .chain(Issue::warnings(&f.path, f.warnings()))
        })
        .collect();
    Ok((files, issues))
}

/// `cfg validate [FILE…]`.
pub(crate) fn validate(ctx: &Ctx<'_>, args: &ValidateArgs) -> Result<(), Failure> {
    let (files, issues) = if args.files.is_empty() {
        check_dir(&args.config_dir)?
    } else {
        let catalog = if args.config_dir.is_dir() {
            ConfigDir::load(&args.config_dir).catalog().clone()
        } else {
            Catalog::builtin()
        };
        let issues = args
            .files
            .iter()
            .flat_map(|f| check_file(f, &catalog))
            .collect();
        (args.files.clone(), issues)
    };
    let (warnings, mut errors): (Vec<Issue>, Vec<Issue>) =
        issues.into_iter().partition(|i| i.warning);
    // In file order: a TOML table's keys come back sorted, not as written.
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    let as_json = |list: &[Issue]| {
        list.iter()
            .map(|i| {
                json!({
                    "file": i.file,
                    "line": i.line,
                    "setting": i.setting,
                    "message": i.message,
                })
            })
            .collect::<Vec<_>>()
    };
    if ctx.json() {
        ctx.out.json(&json!({
            "valid": errors.is_empty(),
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "errors": as_json(&errors),
            "warnings": as_json(&warnings),
        }));
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(Failure::Reported)
        };
    }
    for w in &warnings {
        ctx.out.warn(&format!("warning: {}", w.message));
    }
    if errors.is_empty() {
        ctx.out.success("Configuration valid!");
        return Ok(());
    }
    for issue in &errors {
        ctx.out.error(&issue.message);
    }
    let mut bad: Vec<&str> = errors.iter().map(|i| i.file.as_str()).collect();
    bad.dedup();
    Err(Failure::Message(format!(
        "Found {} error(s) in {} file(s).",
        errors.len(),
        bad.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_told_apart_as_the_daemon_does() {
        assert_eq!(role(Path::new("config/prefect.toml")), Some(Role::Values));
        assert_eq!(role(Path::new("config/.env")), Some(Role::DotEnv));
        assert_eq!(
            role(Path::new("prod.env")),
            None,
            "the daemon reads only .env"
        );
        assert_eq!(role(Path::new("config/prefect.toml.example")), None);
        assert_eq!(role(Path::new("config/catalog.toml")), Some(Role::Catalog));
        assert_eq!(
            role(Path::new("config/catalog.d/app.toml")),
            Some(Role::Catalog)
        );
        assert_eq!(role(Path::new(".cfgd/profiles.toml")), Some(Role::Profiles));
    }

    #[test]
    fn problems_carry_file_line_and_setting() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("a.toml");
        std::fs::write(&bad, "[tasks]\ndefault_retries = \"many\"\n").unwrap();
        let issues = check_file(&bad, &Catalog::builtin());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].line, Some(2));
        assert_eq!(
            issues[0].setting.as_deref(),
            Some("PREFECT_TASKS_DEFAULT_RETRIES")
        );
        assert!(issues[0].message.contains(&bad.display().to_string()));

        let profiles = dir.path().join("profiles.toml");
        std::fs::write(
            &profiles,
            "active = \"default\"\n[profiles.default]\nPREFECT_TASKS_DEFAULT_RETRYS = \"2\"\n",
        )
        .unwrap();
        let issues = check_file(&profiles, &Catalog::builtin());
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0].warning,
            "a newer Prefect's name never fails a file"
        );
        assert!(
            issues[0]
                .message
                .starts_with(&format!("{}: ", profiles.display())),
            "{}",
            issues[0].message
        );
        assert!(issues[0].message.contains("Did you mean"));

        let missing = dir.path().join("nope.toml");
        let issues = check_file(&missing, &Catalog::builtin());
        assert!(issues[0].message.starts_with("cannot read"));
    }

    #[test]
    fn a_service_catalogue_is_checked_against_its_base() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("catalog.d");
        std::fs::create_dir(&d).unwrap();
        let ok = d.join("app.toml");
        std::fs::write(
            &ok,
            "[[settings]]\nname = \"APP_TIMEOUT\"\ntype = \"number\"\ndefault = 1\n",
        )
        .unwrap();
        assert!(check_file(&ok, &Catalog::builtin()).is_empty());
        let clash = d.join("clash.toml");
        std::fs::write(
            &clash,
            "[[settings]]\nname = \"PREFECT_TASKS_DEFAULT_RETRIES\"\ntype = \"integer\"\n",
        )
        .unwrap();
        let issues = check_file(&clash, &Catalog::builtin());
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(issues[0].message.contains("already declared"));
    }
}
