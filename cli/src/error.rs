//! [`Failure`]: why a command exits 1. Every error, from the SDK or from
//! `cfg` itself, becomes one, and `main` turns it into the exit code.

use std::fmt;

/// A command that failed: what to tell the user (nothing, when the command
/// has already said it). Nothing was changed by a failed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Print this (one or more lines) on stderr.
    Message(String),
    /// The command already printed why (e.g. JSON on stdout).
    Reported,
}

impl Failure {
    /// A failure with this message.
    pub(crate) fn message(text: impl Into<String>) -> Self {
        Failure::Message(text.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Message(m) => f.write_str(m),
            Failure::Reported => Ok(()),
        }
    }
}

impl std::error::Error for Failure {}

/// The daemon's own words: they already name the setting, profile or
/// address, and for an unreachable daemon say how to start it.
impl From<cfgd_sdk::Error> for Failure {
    fn from(e: cfgd_sdk::Error) -> Self {
        Failure::Message(e.to_string())
    }
}
