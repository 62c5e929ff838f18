//! The daemon's own configuration, layered with figment: defaults <
//! `cfgd.toml` (`--config FILE`) < `CFGD_*` environment < flags.
//!
//! The flags stay the one declaration of every option (clap, with its
//! defaults and environment variables); a `cfgd.toml` key is a flag's name
//! with `_` for `-` (`state_dir`, `debounce_ms`, `store`, `etcd_ca`). The
//! command line is parsed once to learn, per option, whether it came from a
//! default, the environment or a flag; figment merges those with the file,
//! each value keeping its provenance; the merged options are then parsed by
//! clap again, so every value is checked by the same parser whatever its
//! layer, and an error names the key and where it came from (`` `history`
//! in TOML file /etc/cfgd/cfgd.toml ``). [`Layered::print`] is
//! `cfgd --print-config`: every option, its value and its source.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use figment::providers::Format;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

/// The options that choose the file and what to do with it; never keys of
/// the file itself.
const OWN: [&str; 4] = ["config", "print_config", "help", "version"];

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read or is not TOML (figment says where).
    #[error("{0}")]
    File(String),
    /// A key the daemon does not know.
    #[error("unknown key `{key}` in {file}; known keys: {known}")]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        file: String,
        /// Every key it could have been.
        known: String,
    },
    /// A value its option refuses.
    #[error("{message}\n  (the value of `{key}` from {source_name})")]
    Value {
        /// The key.
        key: String,
        /// Where the value came from.
        source_name: String,
        /// The parser's words.
        message: String,
    },
    /// A command line that is wrong in itself (clap's own error: it prints
    /// and exits as clap does).
    #[error(transparent)]
    Clap(#[from] clap::Error),
}

/// The parsed options, with where each came from.
#[derive(Debug)]
pub struct Layered<A> {
    /// The options, as parsed from every layer.
    pub args: A,
    /// `--print-config` was given.
    pub print: bool,
    values: BTreeMap<String, (String, String)>,
}

/// One value of one layer (figment keeps its metadata for provenance).
struct One {
    key: String,
    value: Value,
    name: String,
}

impl Provider for One {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        dict.insert(self.key.clone(), self.value.clone());
        Ok(Profile::Default.collect(dict))
    }
}

/// A TOML value as the flag it stands for would be written.
fn flag_text(v: &Value) -> Option<String> {
    match v {
        Value::String(_, s) => Some(s.clone()),
        Value::Char(_, c) => Some(c.to_string()),
        Value::Bool(_, b) => Some(b.to_string()),
        Value::Num(_, n) => Some(match n.to_f64() {
            Some(f) if f.fract() != 0.0 => f.to_string(),
            _ => n
                .to_i128()
                .map(|i| i.to_string())
                .or_else(|| n.to_u128().map(|u| u.to_string()))
                .unwrap_or_default(),
        }),
        Value::Array(_, items) => {
            let parts: Option<Vec<String>> = items.iter().map(flag_text).collect();
            parts.map(|p| p.join(","))
        }
        Value::Empty(..) | Value::Dict(..) => None,
    }
}

/// Parses the daemon's options from `argv` (the environment through clap's
/// `env` attributes) and the file `--config` names.
///
/// # Errors
/// [`ConfigError`]: an unreadable file, an unknown key, a value its option
/// refuses (naming the key and its source), or clap's own error.
pub fn parse<A: CommandFactory + FromArgMatches>(
    argv: impl IntoIterator<Item = OsString>,
) -> Result<Layered<A>, ConfigError> {
    let argv: Vec<OsString> = argv.into_iter().collect();
    let command = A::command();
    let matches = command.clone().try_get_matches_from(&argv)?;
    let print = matches.get_flag("print_config");
    let file: Option<PathBuf> = matches.get_one::<PathBuf>("config").cloned();
    let args: Vec<&clap::Arg> = command
        .get_arguments()
        .filter(|a| !OWN.contains(&a.get_id().as_str()))
        .collect();
    let long = |id: &str| {
        args.iter()
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_long())
            .unwrap_or(id)
            .to_owned()
    };
    let mut figment = Figment::new();
    let layer = |figment: Figment, source: Option<ValueSource>| {
        let mut figment = figment;
        for a in &args {
            let id = a.get_id().as_str();
            if matches.value_source(id) != source {
                continue;
            }
            let value = match a.get_action() {
                ArgAction::SetTrue => matches.get_flag(id).to_string(),
                _ => match matches.get_raw(id) {
                    Some(raw) => raw
                        .map(|v| v.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    None => continue,
                },
            };
            let name = match source {
                Some(ValueSource::EnvVariable) => format!(
                    "environment variable {}",
                    a.get_env()
                        .map_or_else(String::new, |e| e.to_string_lossy().into_owned())
                ),
                Some(ValueSource::CommandLine) => format!("flag --{}", long(id)),
                _ => "default".to_owned(),
            };
            figment = figment.merge(One {
                key: id.to_owned(),
                value: Value::from(value),
                name,
            });
        }
        figment
    };
    figment = layer(figment, Some(ValueSource::DefaultValue));
    if let Some(path) = &file {
        let toml = figment::providers::Toml::file_exact(path);
        let data = toml
            .data()
            .map_err(|e| ConfigError::File(format!("cannot use {}: {e}", path.display())))?;
        let known: Vec<&str> = args.iter().map(|a| a.get_id().as_str()).collect();
        for key in data.values().flat_map(|d| d.keys()) {
            if !known.contains(&key.as_str()) {
                return Err(ConfigError::UnknownKey {
                    key: key.clone(),
                    file: path.display().to_string(),
                    known: known.join(", "),
                });
            }
        }
        figment = figment.merge(toml);
    }
    figment = layer(figment, Some(ValueSource::EnvVariable));
    figment = layer(figment, Some(ValueSource::CommandLine));

    let mut values = BTreeMap::new();
    let mut rebuilt: Vec<OsString> = vec![argv.first().cloned().unwrap_or_else(|| "cfgd".into())];
    for a in &args {
        let id = a.get_id().as_str();
        let Ok(value) = figment.find_value(id) else {
            continue;
        };
        let source = figment
            .find_metadata(id)
            .map_or_else(|| "default".to_owned(), describe);
        let Some(text) = flag_text(&value) else {
            return Err(ConfigError::Value {
                key: id.to_owned(),
                source_name: source,
                message: format!("`{id}` takes a single value, not a table"),
            });
        };
        match a.get_action() {
            ArgAction::SetTrue => match text.as_str() {
                "true" => rebuilt.push(format!("--{}", long(id)).into()),
                "false" => {}
                other => {
                    return Err(ConfigError::Value {
                        key: id.to_owned(),
                        source_name: source,
                        message: format!("`{id}` is true or false, not {other:?}"),
                    });
                }
            },
            _ => rebuilt.push(format!("--{}={text}", long(id)).into()),
        }
        values.insert(id.to_owned(), (text, source));
    }
    let matches = command
        .clone()
        .try_get_matches_from(&rebuilt)
        .map_err(|e| {
            let bad = e
                .get(clap::error::ContextKind::InvalidArg)
                .map(ToString::to_string)
                .and_then(|shown| {
                    args.iter()
                        .find(|a| {
                            a.get_long()
                                .is_some_and(|l| shown.contains(&format!("--{l}")))
                        })
                        .map(|a| a.get_id().to_string())
                });
            match bad.and_then(|k| values.get(&k).map(|(_, s)| (k, s.clone()))) {
                Some((key, source_name)) if !source_name.starts_with("flag ") => {
                    ConfigError::Value {
                        key,
                        source_name,
                        message: first_line(&e),
                    }
                }
                _ => ConfigError::Clap(e),
            }
        })?;
    let args = A::from_arg_matches(&matches)?;
    Ok(Layered {
        args,
        print,
        values,
    })
}

/// clap's message without its usage lines.
fn first_line(e: &clap::Error) -> String {
    e.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Where a value came from, in words.
fn describe(m: &Metadata) -> String {
    match &m.source {
        Some(figment::Source::File(path)) => format!("{} {}", m.name, path.display()),
        _ => m.name.to_string(),
    }
}

impl<A> Layered<A> {
    /// Where option `id` came from: `default`, `TOML file PATH`,
    /// `environment variable NAME` or `flag --NAME`.
    pub fn source(&self, id: &str) -> Option<&str> {
        self.values.get(id).map(|(_, s)| s.as_str())
    }

    /// The effective configuration as a `cfgd.toml`, each value with its
    /// source (`cfgd --print-config`).
    pub fn print(&self) -> String {
        let mut out = String::from(
            "# cfgd's effective configuration: defaults < cfgd.toml < CFGD_* environment < flags\n",
        );
        let width = self
            .values
            .iter()
            .map(|(k, (v, _))| k.len() + v.len())
            .max()
            .unwrap_or(0);
        for (key, (value, source)) in &self.values {
            let shown = toml_value(value);
            let pad = (width + 5).saturating_sub(key.len() + shown.len());
            out.push_str(&format!("{key} = {shown}{} # {source}\n", " ".repeat(pad)));
        }
        out
    }
}

/// A value as TOML writes it: numbers and booleans bare, the rest quoted.
fn toml_value(v: &str) -> String {
    if v == "true" || v == "false" || (!v.is_empty() && v.parse::<f64>().is_ok()) {
        v.to_owned()
    } else {
        toml::Value::String(v.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests;
