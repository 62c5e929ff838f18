//! Typed values and the one parser every path uses (env, `.env`, `cfg set`,
//! gRPC strings, profile strings and native TOML values).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{Entry, Kind};

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
/// `[1, 10, 100]` and `[1,10,100]`. Never panics.
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
        Kind::Delays => Value::Delays(parse_delays(text)?),
    };
    check_bounds(entry, value)
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

fn parse_integer(text: &str) -> Result<i64, Expected> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    digits
        .replace('_', "")
        .parse::<i64>()
        .map_err(|_| format!("expected an integer, got {text:?}"))
}

fn parse_number(text: &str) -> Result<f64, Expected> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        Ok(n) => Err(format!("expected a finite number, got {n}")),
        Err(_) => Err(format!("expected a number, got {text:?}")),
    }
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
    if let Some(min) = entry.min
        && n < min
    {
        return Err(format!("expected a value >= {min}, got {value}"));
    }
    if let Some(max) = entry.max
        && n > max
    {
        return Err(format!("expected a value <= {max}, got {value}"));
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
}
