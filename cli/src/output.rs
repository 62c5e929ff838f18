//! Everything `cfg` writes: the output format, colour, confirmations, and
//! the text of values, sources and times shared by several commands.

use std::io::{self, BufRead, IsTerminal, Write};

use cfgd_sdk::Shown;
use cfgd_settings::Source;

use crate::error::Failure;

/// How a command prints its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Lines for people.
    Text,
    /// JSON for programs (one document; `watch` prints one per line).
    Json,
}

impl Format {
    /// Reads `-o/--output`: absent means text; only `json` is accepted.
    pub(crate) fn parse(given: Option<&str>) -> Result<Self, Failure> {
        match given {
            None => Ok(Format::Text),
            Some(f) if f.eq_ignore_ascii_case("json") => Ok(Format::Json),
            Some(_) => Err(Failure::message("Only 'json' output format is supported.")),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Colour {
    Green,
    Red,
    Yellow,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::Green => "\x1b[32m",
            Colour::Red => "\x1b[31m",
            Colour::Yellow => "\x1b[33m",
        }
    }
}

/// Whether a stream gets colour: it is a terminal, and `NO_COLOR` is unset
/// or empty (<https://no-color.org>).
fn colour(no_color: Option<&std::ffi::OsStr>, terminal: bool) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Writes to stdout and stderr, in colour only where that stream is a
/// terminal and `NO_COLOR` is not set.
///
/// A closed stdout ends the process quietly (exit 0); other write errors are
/// ignored, as there is nobody left to tell.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    out_colour: bool,
    err_colour: bool,
}

impl Printer {
    /// Decides colour from the environment: each stream is coloured only if
    /// it is a terminal, and neither is when `NO_COLOR` is set (non-empty).
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR");
        Self {
            out_colour: colour(no_color.as_deref(), io::stdout().is_terminal()),
            err_colour: colour(no_color.as_deref(), io::stderr().is_terminal()),
        }
    }

    fn write(mut to: impl Write, colour: Option<Colour>, text: &str) -> io::Result<()> {
        match colour {
            Some(c) => writeln!(to, "{}{text}\x1b[0m", c.code()),
            None => writeln!(to, "{text}"),
        }
    }

    /// Writes a line on stdout. When whoever reads it has gone (`cfg watch |
    /// head -3`), there is no point going on: exit quietly, as ripgrep does.
    fn out(&self, colour: Option<Colour>, text: &str) {
        if let Err(e) = Self::write(io::stdout().lock(), colour, text)
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            std::process::exit(0);
        }
    }

    /// A plain line on stdout.
    pub(crate) fn line(&self, text: &str) {
        self.out(None, text);
    }

    /// A success line on stdout (green on a terminal).
    pub(crate) fn success(&self, text: &str) {
        self.out(self.out_colour.then_some(Colour::Green), text);
    }

    /// A warning on stderr (yellow on a terminal).
    pub(crate) fn warn(&self, text: &str) {
        let _ = Self::write(
            io::stderr().lock(),
            self.err_colour.then_some(Colour::Yellow),
            text,
        );
    }

    /// An error on stderr (red on a terminal).
    pub fn error(&self, text: &str) {
        let _ = Self::write(
            io::stderr().lock(),
            self.err_colour.then_some(Colour::Red),
            text,
        );
    }

    /// A JSON document on stdout, indented by 2 (as Prefect prints it).
    pub(crate) fn json(&self, value: &serde_json::Value) {
        let text = serde_json::to_string_pretty(value).expect("JSON values always serialise");
        self.out(None, &text);
    }

    /// One JSON document on one line (for streams such as `watch`).
    pub(crate) fn json_line(&self, value: &serde_json::Value) {
        self.out(None, &value.to_string());
    }
}

/// Whether to ask before a destructive step: only when stdin is a terminal
/// (a script cannot answer) and `--yes` was not given.
pub(crate) fn should_confirm(yes: bool) -> bool {
    !yes && io::stdin().is_terminal()
}

/// Asks `question` on stderr and reads a yes/no from stdin; anything but
/// `y`/`yes` (the default, like Prefect's) is no.
pub(crate) fn confirm(question: &str) -> bool {
    let mut err = io::stderr().lock();
    let _ = write!(err, "{question} [y/N]: ");
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    if io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// A value as `cfg` shows it: `None` when unset, `********` for a secret
/// unless `reveal` (and the daemon sent it in clear).
pub(crate) fn shown(value: &Shown, reveal: bool) -> String {
    value.display(reveal)
}

/// A value for JSON: its text, `null` when unset.
pub(crate) fn shown_json(value: &Shown, reveal: bool) -> serde_json::Value {
    match value {
        Shown::Unset => serde_json::Value::Null,
        other => serde_json::Value::String(other.display(reveal)),
    }
}

/// A source as `cfg` shows it: `profile 'default'`, `env PREFECT_X`,
/// `config file config/a.toml, line 3`, `defaults`.
pub(crate) fn source(s: &Source) -> String {
    s.to_string()
}

/// A source for JSON, with its parts as fields: `{"layer": "profile",
/// "profile": "default"}`, `{"layer": "config_file", "file": "…", "line":
/// 3}`, `{"layer": "env", "variable": "PREFECT_X"}`, `{"layer":
/// "dotenv", "file": "…", "line": 2, "variable": "PREFECT_X"}`,
/// `{"layer": "defaults"}`; `text` is how the text output says it.
pub(crate) fn source_json(s: &Source) -> serde_json::Value {
    use cfgd_settings::LayerKind as L;
    let layer = match s.layer {
        L::Defaults => "defaults",
        L::Profile => "profile",
        L::File => "config_file",
        L::DotEnv => "dotenv",
        L::Env => "env",
        L::ProcessEnv => "process_env",
        L::CallSite => "call_site",
    };
    let mut doc = serde_json::json!({"layer": layer});
    if let Some(file) = &s.file {
        doc["file"] = (**file).into();
    }
    if let Some(line) = s.line {
        doc["line"] = line.into();
    }
    if let Some(detail) = &s.detail {
        let key = if s.layer == L::Profile {
            "profile"
        } else {
            "variable"
        };
        doc[key] = detail.clone().into();
    }
    doc["text"] = s.to_string().into();
    doc
}

/// A revision epoch for JSON: a string, as a u64 does not fit a JSON number
/// (JavaScript and many parsers lose digits past 2^53).
pub(crate) fn epoch_json(epoch: u64) -> serde_json::Value {
    epoch.to_string().into()
}

/// Milliseconds since the Unix epoch as `2026-11-28 23:32:54 UTC`.
pub(crate) fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// `civil_from_days`), so no date crate is needed for one format.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_format_accepts_only_json() {
        assert_eq!(Format::parse(None).unwrap(), Format::Text);
        assert_eq!(Format::parse(Some("json")).unwrap(), Format::Json);
        assert_eq!(Format::parse(Some("JSON")).unwrap(), Format::Json);
        let err = Format::parse(Some("yaml")).unwrap_err();
        assert_eq!(err.to_string(), "Only 'json' output format is supported.");
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        use std::ffi::OsStr;
        assert!(colour(None, true));
        assert!(colour(Some(OsStr::new("")), true));
        assert!(!colour(Some(OsStr::new("1")), true));
        assert!(!colour(None, false));
    }

    #[test]
    fn utc_times_are_exact() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_999), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc(-1000), "1969-12-31 23:59:59 UTC");
    }
}
