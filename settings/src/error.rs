//! Errors of the settings model. Each says what was wrong, where (setting,
//! file, line) and what is expected.

use std::fmt;

use crate::layer::Source;

/// An error in a setting name, a value, a file or a profile operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingsError {
    /// No catalogue entry has this name or alias.
    #[error("{}Unknown setting name '{name}'.{}", Prefix(at.as_ref()), Suggestion(suggestion.as_deref()))]
    UnknownName {
        /// The name as given.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
        /// Where the name was found (file and line), if not on a command line.
        at: Option<Source>,
    },
    /// A `PREFECT_` name that neither Prefect's catalogue nor cfgd's
    /// declares (a newer Prefect's, or a typo): kept in its file as is, not
    /// applied, and never a reason to refuse the rest of the file.
    #[error(
        "{at}: '{name}' is not a setting of Prefect {} or cfgd; it is kept as is and not applied.{}",
        crate::catalog::PREFECT_VERSION,
        Suggestion(suggestion.as_deref())
    )]
    UnknownPrefect {
        /// The name as given (for a TOML path, the path).
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
        /// Where the name was found.
        at: Source,
    },
    /// A value that does not fit its setting's type or bounds.
    #[error("Invalid value for {name} from {at}: {expected}")]
    InvalidValue {
        /// Canonical name of the setting.
        name: String,
        /// Where the value came from.
        at: Source,
        /// What was expected, and what was given.
        expected: String,
    },
    /// A file that is not valid TOML (or `.env`), or has the wrong shape.
    #[error("{file}{}: {message}", Line(*line))]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line, when known.
        line: Option<u32>,
        /// What is wrong.
        message: String,
    },
    /// A catalogue file that declares something invalid.
    #[error("{file}{}: {message}", Line(*line))]
    Catalog {
        /// The catalogue file.
        file: String,
        /// 1-based line, when known.
        line: Option<u32>,
        /// What is wrong.
        message: String,
    },
    /// A file that cannot be read or written.
    #[error("{action} {path}: {message}")]
    Io {
        /// What was being done ("cannot read", "cannot write").
        action: &'static str,
        /// The file.
        path: String,
        /// The operating system's reason.
        message: String,
    },
    /// A profile that does not exist.
    #[error("Profile '{0}' not found.")]
    ProfileNotFound(String),
    /// A profile name already taken.
    #[error("Profile '{0}' already exists.")]
    ProfileExists(String),
    /// Deleting the active profile.
    #[error(
        "Profile '{0}' is the active profile. You must switch profiles before it can be deleted."
    )]
    ProfileActive(String),
    /// A profile name that cannot be stored.
    #[error(
        "Invalid profile name {0:?}: expected 1 to 64 characters of letters, digits, '-', '_' or '.'"
    )]
    ProfileName(String),
    /// Unsetting a name the profile does not hold.
    #[error("'{name}' is not set in profile '{profile}'.")]
    NotInProfile {
        /// Canonical name.
        name: String,
        /// The profile.
        profile: String,
    },
    /// One batch names the same setting twice (perhaps once by an alias).
    #[error(
        "'{second}' names {name} again (this batch already sets it as '{first}'): give each setting once"
    )]
    GivenTwice {
        /// Canonical name.
        name: String,
        /// The first name given for it.
        first: String,
        /// The second.
        second: String,
    },
}

impl SettingsError {
    /// The canonical setting name the error is about, if any.
    pub fn setting(&self) -> Option<&str> {
        match self {
            SettingsError::UnknownName { name, .. }
            | SettingsError::UnknownPrefect { name, .. }
            | SettingsError::InvalidValue { name, .. }
            | SettingsError::NotInProfile { name, .. }
            | SettingsError::GivenTwice { name, .. } => Some(name),
            _ => None,
        }
    }

    /// The 1-based line the error points at, if any.
    pub fn line(&self) -> Option<u32> {
        match self {
            SettingsError::UnknownName { at, .. } => at.as_ref().and_then(|s| s.line),
            SettingsError::UnknownPrefect { at, .. } => at.line,
            SettingsError::InvalidValue { at, .. } => at.line,
            SettingsError::Syntax { line, .. } | SettingsError::Catalog { line, .. } => *line,
            _ => None,
        }
    }
}

struct Prefix<'a>(Option<&'a Source>);

impl fmt::Display for Prefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(at) => write!(f, "{at}: "),
            None => Ok(()),
        }
    }
}

struct Suggestion<'a>(Option<&'a str>);

impl fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(s) => write!(f, " Did you mean '{s}'?"),
            None => Ok(()),
        }
    }
}

struct Line(Option<u32>);

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(line) => write!(f, ", line {line}"),
            None => Ok(()),
        }
    }
}

/// Several errors, shown one per line (a file can hold many).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct Errors(pub Vec<SettingsError>);

impl From<SettingsError> for Errors {
    fn from(e: SettingsError) -> Self {
        Errors(vec![e])
    }
}
