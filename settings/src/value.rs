//! Typed values and the one parser every path uses (env, `.env`, `cfg set`,
//! gRPC strings, profile strings and native TOML values). The forms values
//! take in a `profiles.toml` and an environment are [`crate::render`]'s
//! (re-exported here).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{Entry, Kind};

pub use crate::render::{to_env, to_profile};

/// Most delays a setting or a task may declare (Prefect's limit).
pub const MAX_DELAYS: usize = 50;

/// The text shown in place of a secret.
pub const MASK: &str = "********";

/// Retry delays in seconds: a single number or a list.
///
/// Every entry is finite and ≥ 0 and a list has at most [`MAX_DELAYS`]
/// entries; [`Delays::new`] and [`Delays::scalar`] check it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delays {
    seconds: Vec<f64>,
    list: bool,
}

impl Delays {
    /// A single delay, used for every retry.
    ///
    /// # Errors
    /// When `seconds` is negative or not finite (the message says which).
    pub fn scalar(seconds: f64) -> Result<Self, String> {
        check_delay(seconds)?;
        Ok(Self {
            seconds: vec![seconds],
            list: false,
        })
    }

    /// A list of delays; retry `k` waits `list[min(k-1, len-1)]`.
    ///
    /// # Errors
    /// When an entry is negative or not finite, or there are more than
    /// [`MAX_DELAYS`] entries.
    pub fn list(seconds: Vec<f64>) -> Result<Self, String> {
        if seconds.len() > MAX_DELAYS {
            return Err(format!(
                "at most {MAX_DELAYS} delays, got {}",
                seconds.len()
            ));
        }
        for s in &seconds {
            check_delay(*s)?;
        }
        Ok(Self {
            seconds,
            list: true,
        })
    }

    /// The delays in seconds (one entry for a scalar).
    pub fn seconds(&self) -> &[f64] {
        &self.seconds
    }

    /// Whether this was given as a list (`[10]` is a list, `10` is not).
    pub fn is_list(&self) -> bool {
        self.list
    }

    /// The delay before retry `k` (1-based): the last entry repeats; an
    /// empty list means no delay.
    pub fn for_retry(&self, k: u32) -> f64 {
        let idx = (k.max(1) as usize - 1).min(self.seconds.len().saturating_sub(1));
        self.seconds.get(idx).copied().unwrap_or(0.0)
    }
}

fn check_delay(s: f64) -> Result<(), String> {
    if !s.is_finite() {
        Err(format!("every delay must be a finite number, got {s}"))
    } else if s < 0.0 {
        Err(format!("every delay must be >= 0, got {s}"))
    } else {
        Ok(())
    }
}

impl fmt::Display for Delays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.list {
            return write!(f, "{}", self.seconds[0]);
        }
        f.write_str("[")?;
        for (i, s) in self.seconds.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s}")?;
        }
        f.write_str("]")
    }
}

/// A typed setting value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Value {
    /// A whole number.
    Integer(i64),
    /// A finite floating-point number.
    Number(f64),
    /// `true` or `false`.
    Boolean(bool),
    /// Free text.
    String(String),
    /// Text that is masked wherever it is shown (its `Debug` masks it too).
    Secret(String),
    /// Retry delays.
    Delays(Delays),
    /// A list (of strings or integers, as the setting's `items` say).
    List(Vec<Value>),
}

impl Value {
    /// The value as text with secrets replaced by [`MASK`].
    pub fn masked(&self) -> String {
        match self {
            Value::Secret(_) => MASK.to_owned(),
            other => other.to_string(),
        }
    }

    /// The integer, if this is one.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The number (an integer converts), if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The text of a string or secret.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::Secret(s) => Some(s),
            _ => None,
        }
    }

    /// The delays, if this is one.
    pub fn as_delays(&self) -> Option<&Delays> {
        match self {
            Value::Delays(d) => Some(d),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }
}

/// Shows the value as the parser reads it back; a secret in clear.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "{i}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::String(s) | Value::Secret(s) => f.write_str(s),
            Value::Delays(d) => write!(f, "{d}"),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "Integer({i})"),
            Value::Number(n) => write!(f, "Number({n})"),
            Value::Boolean(b) => write!(f, "Boolean({b})"),
            Value::String(s) => write!(f, "String({s:?})"),
            Value::Secret(_) => write!(f, "Secret({MASK})"),
            Value::Delays(d) => write!(f, "Delays({d})"),
            Value::List(items) => f.debug_tuple("List").field(items).finish(),
        }
    }
}

/// Why a string or TOML value is not a valid value for a setting: what was
/// expected, without the setting or source (the caller adds those).
pub type Expected = String;

/// Parses `raw` as a value of `entry`'s type: the one parser for env, `.env`,
/// `cfg set`, gRPC and profile strings.
///
/// Surrounding whitespace is ignored. Delays accept `10`, `10.5`, `1,10,100`,
/// `[1, 10, 100]` and `[1,10,100]`; lists `a,b`, `["a", "b"]` and `""` (an
/// empty list); durations seconds, ISO 8601 and `HH:MM:SS`
/// ([`crate::duration`]). Never panics.
///
/// # Errors
/// A sentence saying what was expected and what was given.
pub fn parse(entry: &Entry, raw: &str) -> Result<Value, Expected> {
    let text = raw.trim();
    let value = match entry.kind {
        Kind::Integer => Value::Integer(parse_integer(text)?),
        Kind::Number => Value::Number(parse_number(text)?),
        Kind::Boolean => Value::Boolean(parse_bool(text)?),
        Kind::String => Value::String(raw.to_owned()),
        Kind::Secret => Value::Secret(raw.to_owned()),
        // Prefect reads an empty string as "no delay" where it splits lists.
        Kind::Delays if text.is_empty() && entry.comma_lists => {
            Value::Delays(Delays::list(Vec::new())?)
        }
        Kind::Delays => Value::Delays(parse_delays(text)?),
        Kind::Choice => Value::String(parse_choice(entry, text)?),
        Kind::Url => Value::String(parse_url(text)?),
        Kind::Path => Value::String(parse_path(raw)?),
        Kind::Duration => Value::Number(crate::duration::parse(text)?),
        Kind::List => Value::List(parse_list(entry, text)?),
        Kind::Json => Value::String(parse_json(entry, text)?),
    };
    check_bounds(entry, value)
}

/// Whether `entry` may be written into a profile: Prefect refuses
/// `PREFECT_HOME` and `PREFECT_PROFILES_PATH` there (`env_only`), as they
/// decide where profiles are read from.
///
/// # Errors
/// What to do instead, for an `env_only` entry.
pub fn check_settable(entry: &Entry) -> Result<(), Expected> {
    if entry.env_only {
        Err(format!(
            "{} cannot be changed in a profile (Prefect reads it only from its environment); use an environment variable instead",
            entry.name
        ))
    } else {
        Ok(())
    }
}

/// Converts a native TOML value (a config file, a profile) to `entry`'s type.
/// Strings go through [`parse`], so Prefect's string-valued profiles load.
///
/// # Errors
/// As [`parse`], or when the TOML type cannot hold this setting.
pub fn from_toml(entry: &Entry, value: &toml::Value) -> Result<Value, Expected> {
    use toml::Value as T;
    let typed = match (entry.kind, value) {
        (_, T::String(s)) => return parse(entry, s),
        (Kind::Integer, T::Integer(i)) => Value::Integer(*i),
        (Kind::Number, T::Integer(i)) => Value::Number(*i as f64),
        (Kind::Number, T::Float(f)) => Value::Number(finite(*f)?),
        (Kind::Boolean, T::Boolean(b)) => Value::Boolean(*b),
        (Kind::Duration, T::Integer(i)) => Value::Number(*i as f64),
        (Kind::Duration, T::Float(f)) => Value::Number(finite(*f)?),
        (Kind::List, T::Array(items)) => Value::List(list_from_toml(entry, items)?),
        (Kind::Json, T::Table(_)) => {
            return Err(
                "expected a JSON object as a string, e.g. '{\"key\": \"value\"}' (Prefect reads no native table here)"
                    .into(),
            );
        }
        (Kind::Delays, T::Integer(i)) => Value::Delays(Delays::scalar(*i as f64)?),
        (Kind::Delays, T::Float(f)) => Value::Delays(Delays::scalar(*f)?),
        (Kind::Delays, T::Array(items)) => {
            let mut seconds = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    T::Integer(i) => seconds.push(*i as f64),
                    T::Float(f) => seconds.push(*f),
                    other => {
                        return Err(format!(
                            "expected a list of numbers of seconds, found a {} in the list",
                            other.type_str()
                        ));
                    }
                }
            }
            Value::Delays(Delays::list(seconds)?)
        }
        (kind, other) => {
            return Err(format!(
                "expected {}, found a TOML {}",
                kind.expectation(),
                other.type_str()
            ));
        }
    };
    check_bounds(entry, typed)
}

/// Converts a typed value to `entry`'s type (an integer is accepted for a
/// number, a number for delays) and checks the bounds.
///
/// # Errors
/// When the value's type does not fit the setting or is out of bounds.
pub fn coerce(entry: &Entry, value: Value) -> Result<Value, Expected> {
    let typed = match (entry.kind, value) {
        (Kind::Integer, v @ Value::Integer(_)) => v,
        (Kind::Number, Value::Integer(i)) => Value::Number(i as f64),
        (Kind::Number, Value::Number(n)) => Value::Number(finite(n)?),
        (Kind::Boolean, v @ Value::Boolean(_)) => v,
        (Kind::String, Value::String(s)) => Value::String(s),
        (Kind::Secret, Value::String(s) | Value::Secret(s)) => Value::Secret(s),
        (Kind::Delays, Value::Delays(d)) => {
            if d.is_list() {
                Value::Delays(Delays::list(d.seconds)?)
            } else {
                Value::Delays(Delays::scalar(d.seconds.first().copied().unwrap_or(0.0))?)
            }
        }
        (Kind::Delays, Value::Integer(i)) => Value::Delays(Delays::scalar(i as f64)?),
        (Kind::Delays, Value::Number(n)) => Value::Delays(Delays::scalar(n)?),
        (Kind::Duration, Value::Integer(i)) => Value::Number(i as f64),
        (Kind::Duration, Value::Number(n)) => Value::Number(finite(n)?),
        (Kind::List, Value::List(items)) => {
            let text: Vec<String> = items.iter().map(ToString::to_string).collect();
            Value::List(list_items(entry, text.iter().map(String::as_str))?)
        }
        (_, Value::String(s)) => return parse(entry, &s),
        (kind, other) => {
            return Err(format!(
                "expected {}, got {}",
                kind.expectation(),
                other.masked()
            ));
        }
    };
    check_bounds(entry, typed)
}

fn finite(n: f64) -> Result<f64, Expected> {
    if n.is_finite() {
        Ok(n)
    } else {
        Err(format!("expected a finite number, got {n}"))
    }
}

/// Pydantic's integer from a string: `3`, `+3`, `1_000`, and a decimal
/// with no fraction (`1.0`) are integers; `1.5` is not.
fn parse_integer(text: &str) -> Result<i64, Expected> {
    let expected = || format!("expected an integer, got {text:?}");
    let digits = strip_underscores(text.strip_prefix('+').unwrap_or(text)).ok_or_else(expected)?;
    if let Ok(i) = digits.parse::<i64>() {
        return Ok(i);
    }
    match digits.split_once('.') {
        Some((whole, fraction)) if !whole.is_empty() && fraction.bytes().all(|b| b == b'0') => {
            whole.parse::<i64>().map_err(|_| expected())
        }
        _ => Err(expected()),
    }
}

/// `1_000` → `1000`: underscores only between digits, as Python reads them.
fn strip_underscores(text: &str) -> Option<std::borrow::Cow<'_, str>> {
    if !text.contains('_') {
        return Some(text.into());
    }
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let digit = |j: Option<&u8>| j.is_some_and(u8::is_ascii_digit);
            if !digit(i.checked_sub(1).and_then(|j| bytes.get(j))) || !digit(bytes.get(i + 1)) {
                return None;
            }
        }
    }
    Some(text.replace('_', "").into())
}

fn parse_number(text: &str) -> Result<f64, Expected> {
    let parsed = strip_underscores(text).and_then(|t| t.parse::<f64>().ok());
    match parsed {
        Some(n) if n.is_finite() => Ok(n),
        Some(n) => Err(format!("expected a finite number, got {n}")),
        None => Err(format!("expected a number, got {text:?}")),
    }
}

fn parse_choice(entry: &Entry, text: &str) -> Result<String, Expected> {
    let found = entry.choices.iter().find(|c| {
        if entry.case_insensitive {
            c.eq_ignore_ascii_case(text)
        } else {
            c.as_str() == text
        }
    });
    match found {
        Some(choice) => Ok(choice.clone()),
        None => Err(format!(
            "expected one of {}, got {text:?}",
            entry
                .choices
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// An absolute URL: `scheme://…` with nothing but visible characters.
fn parse_url(text: &str) -> Result<String, Expected> {
    let scheme_ok = text.split_once("://").is_some_and(|(scheme, _)| {
        let mut b = scheme.bytes();
        b.next().is_some_and(|c| c.is_ascii_alphabetic())
            && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
    });
    if scheme_ok && text.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "expected an absolute URL such as http://127.0.0.1:4200/api, got {text:?}"
        ))
    }
}

fn parse_path(raw: &str) -> Result<String, Expected> {
    if raw.trim().is_empty() {
        Err("expected a path, got an empty value".into())
    } else if raw.contains('\0') {
        Err("expected a path, got text with a NUL character".into())
    } else {
        Ok(raw.to_owned())
    }
}

/// `a,b`, `["a", "b"]` (JSON) or nothing (an empty list), items checked
/// against the entry's `items`.
fn parse_list(entry: &Entry, text: &str) -> Result<Vec<Value>, Expected> {
    if text.starts_with('[') {
        let items: Vec<serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("expected a list such as [\"a\", \"b\"], got {text:?}: {e}"))?;
        let text: Result<Vec<String>, Expected> = items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => Ok(s),
                serde_json::Value::Number(n) => Ok(n.to_string()),
                other => Err(format!(
                    "expected strings or numbers in the list, found {other}"
                )),
            })
            .collect();
        let text = text?;
        return list_items(entry, text.iter().map(String::as_str));
    }
    // Prefect splits on commas and drops empty parts.
    list_items(
        entry,
        text.split(',').map(str::trim).filter(|p| !p.is_empty()),
    )
}

fn list_from_toml(entry: &Entry, items: &[toml::Value]) -> Result<Vec<Value>, Expected> {
    let mut text = Vec::with_capacity(items.len());
    for item in items {
        match item {
            toml::Value::String(s) => text.push(s.clone()),
            toml::Value::Integer(i) => text.push(i.to_string()),
            other => {
                return Err(format!(
                    "expected a list of {}, found a {} in the list",
                    entry.items.unwrap_or(Kind::String).name(),
                    other.type_str()
                ));
            }
        }
    }
    list_items(entry, text.iter().map(String::as_str))
}

fn list_items<'a>(
    entry: &Entry,
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<Value>, Expected> {
    let mut out = Vec::new();
    for item in items {
        let value = match entry.items {
            Some(Kind::Integer) => {
                let i = parse_integer(item.trim())?;
                check_bounds(entry, Value::Integer(i))?
            }
            _ if entry.comma_lists && item.contains(',') => {
                return Err(format!(
                    "a list item cannot hold a comma (Prefect splits on commas), got {item:?}"
                ));
            }
            _ => Value::String(item.to_owned()),
        };
        out.push(value);
    }
    Ok(out)
}

/// A JSON object whose members are strings or durations (the entry's
/// `items`); kept as the text given.
fn parse_json(entry: &Entry, text: &str) -> Result<String, Expected> {
    let object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| {
            format!("expected a JSON object such as {{\"key\": \"value\"}}, got {text:?}: {e}")
        })?;
    for (key, member) in &object {
        match (entry.items, member) {
            (Some(Kind::Duration), serde_json::Value::Number(n)) => {
                let seconds = n.as_f64().unwrap_or(f64::NAN);
                check_bounds(entry, Value::Number(seconds)).map_err(|e| format!("{key:?}: {e}"))?;
            }
            (Some(Kind::Duration), serde_json::Value::String(s)) => {
                let seconds = crate::duration::parse(s).map_err(|e| format!("{key:?}: {e}"))?;
                check_bounds(entry, Value::Number(seconds)).map_err(|e| format!("{key:?}: {e}"))?;
            }
            (Some(Kind::Duration), other) => {
                return Err(format!(
                    "{key:?}: expected a duration in seconds, got {other}"
                ));
            }
            (_, serde_json::Value::String(_)) => {}
            (_, other) => return Err(format!("{key:?}: expected a string, got {other}")),
        }
    }
    Ok(text.to_owned())
}

fn parse_bool(text: &str) -> Result<bool, Expected> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
        _ => Err(format!(
            "expected a boolean (true/false, 1/0, yes/no, on/off), got {text:?}"
        )),
    }
}

fn parse_delays(text: &str) -> Result<Delays, Expected> {
    const EXPECTED: &str =
        "expected a number of seconds or a list such as \"1,10,100\" or \"[1, 10, 100]\"";
    let (inner, bracketed) = match text.strip_prefix('[') {
        Some(rest) => match rest.strip_suffix(']') {
            Some(inner) => (inner.trim(), true),
            None => return Err(format!("{EXPECTED}: missing closing ']' in {text:?}")),
        },
        None => (text, false),
    };
    if inner.is_empty() {
        return if bracketed {
            Delays::list(Vec::new())
        } else {
            Err(format!("{EXPECTED}, got an empty value"))
        };
    }
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    // `1,10,` and `[1, 10,]` tolerate one trailing comma, as TOML does.
    let parts = match parts.split_last() {
        Some((last, rest)) if last.is_empty() && !rest.is_empty() => rest,
        _ => &parts[..],
    };
    if parts.len() > MAX_DELAYS {
        return Err(format!("at most {MAX_DELAYS} delays, got {}", parts.len()));
    }
    let mut seconds = Vec::with_capacity(parts.len());
    for part in parts {
        match part.parse::<f64>() {
            Ok(s) => seconds.push(s),
            Err(_) if part.is_empty() => {
                return Err(format!("{EXPECTED}: empty entry in {text:?}"));
            }
            Err(_) => return Err(format!("{EXPECTED}: {part:?} is not a number")),
        }
    }
    if bracketed || seconds.len() > 1 {
        Delays::list(seconds)
    } else {
        Delays::scalar(seconds[0])
    }
}

fn check_bounds(entry: &Entry, value: Value) -> Result<Value, Expected> {
    let n = match &value {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        _ => return Ok(value),
    };
    if let Some(min) = entry.min {
        if entry.min_exclusive && n <= min {
            return Err(format!("expected a value > {min}, got {value}"));
        }
        if n < min {
            return Err(format!("expected a value >= {min}, got {value}"));
        }
    }
    if let Some(max) = entry.max {
        if entry.max_exclusive && n >= max {
            return Err(format!("expected a value < {max}, got {value}"));
        }
        if n > max {
            return Err(format!("expected a value <= {max}, got {value}"));
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Entry;

    fn entry(kind: Kind) -> Entry {
        Entry::new("PREFECT_X", kind)
    }

    fn delays(raw: &str) -> Result<Value, String> {
        parse(&entry(Kind::Delays), raw)
    }

    #[test]
    fn delays_accept_every_documented_form() {
        let list = Value::Delays(Delays::list(vec![1.0, 10.0, 100.0]).unwrap());
        assert_eq!(delays("1,10,100").unwrap(), list);
        assert_eq!(delays("[1, 10, 100]").unwrap(), list);
        assert_eq!(delays("[1,10,100]").unwrap(), list);
        assert_eq!(delays(" [ 1 , 10 , 100 ] ").unwrap(), list);
        assert_eq!(
            delays("10").unwrap(),
            Value::Delays(Delays::scalar(10.0).unwrap())
        );
        assert_eq!(
            delays("10.5").unwrap(),
            Value::Delays(Delays::scalar(10.5).unwrap())
        );
        assert_eq!(
            delays("[10]").unwrap(),
            Value::Delays(Delays::list(vec![10.0]).unwrap())
        );
        assert_eq!(
            delays("[]").unwrap(),
            Value::Delays(Delays::list(vec![]).unwrap())
        );
    }

    #[test]
    fn delays_reject_bad_input_with_what_was_expected() {
        assert_eq!(
            delays("").unwrap_err(),
            "expected a number of seconds or a list such as \"1,10,100\" or \"[1, 10, 100]\", got an empty value"
        );
        assert!(
            delays("ten")
                .unwrap_err()
                .contains("\"ten\" is not a number")
        );
        assert!(delays("[1, 2").unwrap_err().contains("missing closing ']'"));
        assert!(delays("1,,2").unwrap_err().contains("empty entry"));
        assert_eq!(
            delays("-1").unwrap_err(),
            "every delay must be >= 0, got -1"
        );
        assert_eq!(
            delays("[1, NaN]").unwrap_err(),
            "every delay must be a finite number, got NaN"
        );
        assert_eq!(
            delays("inf").unwrap_err(),
            "every delay must be a finite number, got inf"
        );
        let many = vec!["1"; 51].join(",");
        assert_eq!(delays(&many).unwrap_err(), "at most 50 delays, got 51");
        assert!(delays(&vec!["1"; 50].join(",")).is_ok());
    }

    #[test]
    fn delay_for_retry_repeats_the_last_entry() {
        let d = Delays::list(vec![1.0, 2.0]).unwrap();
        assert_eq!(
            [d.for_retry(1), d.for_retry(2), d.for_retry(3)],
            [1.0, 2.0, 2.0]
        );
        assert_eq!(Delays::list(vec![]).unwrap().for_retry(1), 0.0);
        assert_eq!(Delays::scalar(5.0).unwrap().for_retry(7), 5.0);
    }

    #[test]
    fn integers_numbers_booleans() {
        assert_eq!(
            parse(&entry(Kind::Integer), " 3 ").unwrap(),
            Value::Integer(3)
        );
        assert_eq!(
            parse(&entry(Kind::Integer), "3.5").unwrap_err(),
            "expected an integer, got \"3.5\""
        );
        assert_eq!(
            parse(&entry(Kind::Number), "2.5").unwrap(),
            Value::Number(2.5)
        );
        assert_eq!(
            parse(&entry(Kind::Number), "nan").unwrap_err(),
            "expected a finite number, got NaN"
        );
        assert_eq!(
            parse(&entry(Kind::Number), "x").unwrap_err(),
            "expected a number, got \"x\""
        );
        assert_eq!(
            parse(&entry(Kind::Boolean), "Yes").unwrap(),
            Value::Boolean(true)
        );
        assert_eq!(
            parse(&entry(Kind::Boolean), "off").unwrap(),
            Value::Boolean(false)
        );
        assert!(
            parse(&entry(Kind::Boolean), "maybe")
                .unwrap_err()
                .starts_with("expected a boolean")
        );
    }

    #[test]
    fn bounds_are_checked() {
        let mut e = entry(Kind::Integer);
        e.min = Some(0.0);
        e.max = Some(10.0);
        assert_eq!(
            parse(&e, "-1").unwrap_err(),
            "expected a value >= 0, got -1"
        );
        assert_eq!(
            parse(&e, "11").unwrap_err(),
            "expected a value <= 10, got 11"
        );
        assert_eq!(parse(&e, "10").unwrap(), Value::Integer(10));
    }

    #[test]
    fn toml_values_convert_and_strings_parse() {
        let d = entry(Kind::Delays);
        let arr: toml::Value = toml::Value::Array(vec![1.into(), 10.5.into()]);
        assert_eq!(
            from_toml(&d, &arr).unwrap(),
            Value::Delays(Delays::list(vec![1.0, 10.5]).unwrap())
        );
        // Prefect writes lists into profiles.toml as strings.
        let s = toml::Value::String("[1.0, 10.0, 100.0]".into());
        assert_eq!(
            from_toml(&d, &s).unwrap(),
            Value::Delays(Delays::list(vec![1.0, 10.0, 100.0]).unwrap())
        );
        assert_eq!(
            from_toml(&entry(Kind::Integer), &toml::Value::Boolean(true)).unwrap_err(),
            "expected an integer, found a TOML boolean"
        );
        assert_eq!(
            from_toml(&d, &toml::Value::Array(vec!["a".into()])).unwrap_err(),
            "expected a list of numbers of seconds, found a string in the list"
        );
    }

    #[test]
    fn secrets_are_masked_in_debug_and_masked() {
        let v = Value::Secret("hunter2".into());
        assert_eq!(format!("{v:?}"), "Secret(********)");
        assert_eq!(v.masked(), MASK);
        assert_eq!(v.to_string(), "hunter2");
    }

    fn builtin(name: &str) -> Entry {
        crate::Catalog::builtin().get(name).unwrap().clone()
    }

    #[test]
    fn integers_and_numbers_read_as_pydantic_reads_them() {
        let e = entry(Kind::Integer);
        for (text, n) in [
            ("+3", 3),
            ("1_000", 1000),
            ("1.0", 1),
            (" -2 ", -2),
            ("7.000", 7),
        ] {
            assert_eq!(parse(&e, text), Ok(Value::Integer(n)), "{text}");
        }
        for text in ["1.5", "1__0", "_1", "1_", "", "1e3"] {
            assert!(parse(&e, text).is_err(), "{text}");
        }
        assert_eq!(
            parse(&entry(Kind::Number), "1_0.5"),
            Ok(Value::Number(10.5))
        );
        assert_eq!(
            parse(&entry(Kind::Number), "1e3"),
            Ok(Value::Number(1000.0))
        );
    }

    #[test]
    fn exclusive_bounds() {
        let e = builtin("PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT");
        assert_eq!(parse(&e, "0").unwrap_err(), "expected a value > 0, got 0");
        assert_eq!(parse(&e, "0.5"), Ok(Value::Number(0.5)));
        let e = builtin("PREFECT_FLOWS_HEARTBEAT_FREQUENCY");
        assert_eq!(
            parse(&e, "29").unwrap_err(),
            "expected a value >= 30, got 29"
        );
    }

    #[test]
    fn choices_urls_paths() {
        let level = builtin("PREFECT_LOGGING_LEVEL");
        assert_eq!(parse(&level, "debug"), Ok(Value::String("DEBUG".into())));
        assert_eq!(
            parse(&level, "loud").unwrap_err(),
            "expected one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL', got \"loud\""
        );
        let missing = builtin("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW");
        assert_eq!(parse(&missing, "warn"), Ok(Value::String("warn".into())));
        assert!(
            parse(&missing, "WARN").is_err(),
            "Prefect's Literal is case-sensitive here"
        );
        let url = builtin("PREFECT_API_URL");
        assert_eq!(
            parse(&url, "http://127.0.0.1:4200/api"),
            Ok(Value::String("http://127.0.0.1:4200/api".into()))
        );
        assert!(parse(&builtin("PREFECT_SERVER_DOCKET_URL"), "memory://").is_ok());
        assert_eq!(
            parse(&url, "localhost:4200").unwrap_err(),
            "expected an absolute URL such as http://127.0.0.1:4200/api, got \"localhost:4200\""
        );
        assert!(parse(&url, "http://a b").is_err());
        let home = builtin("PREFECT_HOME");
        assert_eq!(
            parse(&home, "~/.prefect"),
            Ok(Value::String("~/.prefect".into()))
        );
        assert!(parse(&home, " ").is_err());
    }

    #[test]
    fn durations_lists_and_json() {
        let period = builtin("PREFECT_SERVER_EVENTS_RETENTION_PERIOD");
        assert_eq!(parse(&period, "P7D"), Ok(Value::Number(604_800.0)));
        assert_eq!(parse(&period, "3600"), Ok(Value::Number(3600.0)));
        assert_eq!(period.default, Some(Value::Number(604_800.0)));
        let vacuum = builtin("PREFECT_SERVER_SERVICES_DB_VACUUM_RETENTION_PERIOD");
        assert_eq!(
            parse(&vacuum, "PT1H").unwrap_err(),
            "expected a value > 3600, got 3600"
        );
        let codes = builtin("PREFECT_CLIENT_RETRY_EXTRA_CODES");
        let list = Value::List(vec![Value::Integer(429), Value::Integer(502)]);
        assert_eq!(parse(&codes, "429, 502"), Ok(list.clone()));
        assert_eq!(parse(&codes, "[429, 502]"), Ok(list.clone()));
        assert_eq!(parse(&codes, ""), Ok(Value::List(vec![])));
        assert_eq!(
            parse(&codes, "99").unwrap_err(),
            "expected a value >= 100, got 99"
        );
        assert_eq!(list.to_string(), "429,502");
        let loggers = builtin("PREFECT_LOGGING_EXTRA_LOGGERS");
        assert_eq!(
            parse(&loggers, "a,b"),
            Ok(Value::List(vec![
                Value::String("a".into()),
                Value::String("b".into())
            ]))
        );
        let headers = builtin("PREFECT_CLIENT_CUSTOM_HEADERS");
        assert!(parse(&headers, r#"{"X-Test": "1"}"#).is_ok());
        assert!(
            parse(&headers, r#"{"X-Test": 1}"#)
                .unwrap_err()
                .contains("expected a string")
        );
        assert!(parse(&headers, "[1]").is_err());
        let overrides = builtin("PREFECT_SERVER_SERVICES_DB_VACUUM_EVENT_RETENTION_OVERRIDES");
        assert!(parse(&overrides, r#"{"a": 3600, "b": "P1D"}"#).is_ok());
        assert!(
            parse(&overrides, r#"{"a": 0}"#)
                .unwrap_err()
                .contains("expected a value > 0")
        );
    }
}
