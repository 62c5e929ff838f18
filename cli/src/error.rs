//! [`Failure`]: why a command exits 1. Every error, from the SDK or from
//! `cfg` itself, becomes one, and `main` turns it into the exit code. A
//! daemon's refusal is written from its typed problems, never by reading
//! its wording.

use std::fmt;

use cfgd_sdk::{Error, Problem, ProblemKind};

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

/// A refusal with problems reads as Prefect's report, built from the
/// daemon's typed problems ([`problems_report`]); anything else in the
/// SDK's words, which name the setting, profile or address, and for an
/// unreachable daemon say how to start it.
impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::Rejected { problems, .. } if !problems.is_empty() => {
                Failure::Message(problems_report(&problems))
            }
            other => Failure::Message(other.to_string()),
        }
    }
}

/// Prefect's report of a refused `set`, from the daemon's typed problems
/// (never from its wording): each invalid setting as `Validation error(s)
/// for setting NAME`, a blank line and ` - <why>` lines, NAME as typed;
/// unknown names with their suggestion; names a profile does not hold as
/// Prefect says it; anything else as the daemon said it.
fn problems_report(problems: &[Problem]) -> String {
    let mut invalid: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut other = Vec::new();
    for p in problems {
        match p.kind {
            ProblemKind::InvalidValue => {
                match invalid.iter_mut().find(|(n, _)| *n == p.given_name) {
                    Some((_, list)) => list.push(&p.expected),
                    None => invalid.push((&p.given_name, vec![&p.expected])),
                }
            }
            ProblemKind::UnknownName => other.push(match &p.suggestion {
                Some(s) => format!(
                    "Unknown setting name '{}'. Did you mean '{s}'?",
                    p.given_name
                ),
                None => format!("Unknown setting name '{}'.", p.given_name),
            }),
            ProblemKind::NotInProfile => other.push(format!(
                "'{}' is not set in profile '{}'.",
                p.given_name,
                p.source
                    .as_ref()
                    .and_then(|s| s.detail.as_deref())
                    .unwrap_or_default()
            )),
            _ => other.push(p.message.clone()),
        }
    }
    let mut blocks = other;
    for (name, reasons) in invalid {
        let mut block = format!("Validation error(s) for setting {name}\n");
        for r in reasons {
            block.push_str(&format!("\n - {r}"));
        }
        blocks.push(block);
    }
    blocks.join("\n")
}

#[cfg(test)]
mod tests {
    use cfgd_settings::Source;

    use super::*;

    fn problem(
        kind: ProblemKind,
        given: &str,
        expected: &str,
        suggestion: Option<&str>,
    ) -> Problem {
        Problem {
            kind,
            setting: None,
            given_name: given.into(),
            source: Some(Source::profile("default")),
            expected: expected.into(),
            suggestion: suggestion.map(Into::into),
            // Whatever the daemon's wording, the report is built from the fields.
            message: "wording the report does not read".into(),
        }
    }

    #[test]
    fn refusals_read_as_prefect_reports_them() {
        let problems = [
            problem(
                ProblemKind::InvalidValue,
                "PREFECT_TASK_DEFAULT_RETRIES",
                "expected an integer, got \"x\"",
                None,
            ),
            problem(
                ProblemKind::UnknownName,
                "PREFECT_TASK_DEFAULT_RETRYS",
                "",
                Some("PREFECT_TASK_DEFAULT_RETRIES"),
            ),
            problem(
                ProblemKind::InvalidValue,
                "PREFECT_FLOWS_DEFAULT_RETRIES",
                "expected at least 0, got -1",
                None,
            ),
            problem(ProblemKind::UnknownName, "NOTHING_LIKE_IT", "", None),
        ];
        assert_eq!(
            problems_report(&problems),
            "Unknown setting name 'PREFECT_TASK_DEFAULT_RETRYS'. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?\n\
             Unknown setting name 'NOTHING_LIKE_IT'.\n\
             Validation error(s) for setting PREFECT_TASK_DEFAULT_RETRIES\n\n - expected an integer, got \"x\"\n\
             Validation error(s) for setting PREFECT_FLOWS_DEFAULT_RETRIES\n\n - expected at least 0, got -1"
        );
        let limit = Problem {
            message: "the batch holds 1001 settings; the limit is 1000 per request".into(),
            ..problem(ProblemKind::Limit, "", "at most 1000 per request", None)
        };
        assert_eq!(
            problems_report(&[limit]),
            "the batch holds 1001 settings; the limit is 1000 per request"
        );
        let not_set = problem(
            ProblemKind::NotInProfile,
            "PREFECT_TASK_DEFAULT_RETRIES",
            "",
            None,
        );
        assert_eq!(
            problems_report(&[not_set]),
            "'PREFECT_TASK_DEFAULT_RETRIES' is not set in profile 'default'."
        );
    }
}
