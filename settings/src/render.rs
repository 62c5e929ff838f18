//! The forms a typed value takes outside cfgd, so that Prefect 3.9.1 reads
//! it back as the same value: in a `profiles.toml` ([`to_profile`]) and in
//! an environment ([`to_env`], what `cfg env` and `cfg run` give).

use crate::catalog::{Entry, Kind};
use crate::value::Value;

/// The text of `value` as an environment variable, in the form Prefect
/// 3.9.1 reads from its environment (where pydantic-settings decodes JSON
/// for list-typed settings first): lists and delay lists as JSON arrays
/// (`[1,10,100]`, `[10]`: the one form both task and flow delays read, and
/// that tells a one-entry list from a scalar), durations as ISO 8601
/// seconds, everything else as its text. Secrets in clear: the caller
/// decides who sees this.
pub fn to_env(entry: &Entry, value: &Value) -> String {
    let json_number = |s: f64| {
        if s.fract() == 0.0 && s.abs() < 1e15 {
            (s as i64).to_string()
        } else {
            s.to_string()
        }
    };
    match (entry.kind, value) {
        (Kind::Duration, Value::Number(s)) => crate::duration::iso(*s),
        (_, Value::Delays(d)) if d.is_list() => format!(
            "[{}]",
            d.seconds()
                .iter()
                .map(|s| json_number(*s))
                .collect::<Vec<_>>()
                .join(",")
        ),
        (_, Value::List(items)) => serde_json::Value::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::Integer(i) => serde_json::Value::from(*i),
                    other => serde_json::Value::from(other.to_string()),
                })
                .collect(),
        )
        .to_string(),
        (_, other) => other.to_string(),
    }
}

/// The form `value` takes in a `profiles.toml` so that Prefect 3.9.1 reads
/// it back as the same value, and keeps reading it after Prefect rewrites
/// the file (Prefect writes every value back as `str(value)`, so a native
/// TOML array it loaded comes back as a string it cannot parse):
///
/// - most values: a string, as Prefect writes them (`"2"`, `"true"`,
///   `"INFO"`, `"http://…"`);
/// - durations: ISO 8601 seconds (`"PT3600S"`), which every Prefect
///   duration setting parses from a string (a bare `"3600"` it does not);
/// - delays where Prefect's parser splits strings (`comma_lists`: the task
///   delays): a comma string, `"1,10,100"`; a list of one as that number
///   (`"10"`: the same retries, and no string tells `[10]` from `10`); an
///   empty list as `""` (Prefect: no delay). Elsewhere (the flow delays,
///   which Prefect parses from no string) a list is a native TOML array;
/// - lists: a comma string where Prefect splits one (`"429,502"`), else a
///   native array.
pub fn to_profile(entry: &Entry, value: &Value) -> toml::Value {
    use toml::Value as T;
    let number = |s: f64| {
        if s.fract() == 0.0 && s.abs() < 1e15 {
            T::Integer(s as i64)
        } else {
            T::Float(s)
        }
    };
    match (entry.kind, value) {
        (Kind::Duration, Value::Number(s)) => T::String(crate::duration::iso(*s)),
        (_, Value::Delays(d)) if !d.is_list() => T::String(value.to_string()),
        (_, Value::Delays(d)) if entry.comma_lists => T::String(
            d.seconds()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        (_, Value::Delays(d)) => T::Array(d.seconds().iter().map(|s| number(*s)).collect()),
        (_, Value::List(items)) if !entry.comma_lists => T::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::Integer(i) => T::Integer(*i),
                    other => T::String(other.to_string()),
                })
                .collect(),
        ),
        (_, other) => T::String(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Delays, from_toml};

    fn builtin(name: &str) -> Entry {
        crate::Catalog::builtin().get(name).unwrap().clone()
    }

    #[test]
    fn profile_forms_are_ones_prefect_reads_back() {
        use toml::Value as T;
        let task = builtin("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS");
        let flow = builtin("PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS");
        let list = |v: Vec<f64>| Value::Delays(Delays::list(v).unwrap());
        let form = |e: &Entry, v: &Value| to_profile(e, v);
        assert_eq!(
            form(&task, &list(vec![2.0, 20.0, 200.0])),
            T::String("2,20,200".into())
        );
        // A list of one retries as its number does; no string tells them apart.
        assert_eq!(form(&task, &list(vec![10.0])), T::String("10".into()));
        assert_eq!(form(&task, &list(vec![])), T::String("".into()));
        assert_eq!(
            form(&task, &Value::Delays(Delays::scalar(2.5).unwrap())),
            T::String("2.5".into())
        );
        assert_eq!(
            form(&flow, &list(vec![1.0, 2.5])),
            T::Array(vec![T::Integer(1), T::Float(2.5)])
        );
        let period = builtin("PREFECT_SERVER_EVENTS_RETENTION_PERIOD");
        assert_eq!(
            form(&period, &Value::Number(3600.0)),
            T::String("PT3600S".into())
        );
        let codes = builtin("PREFECT_CLIENT_RETRY_EXTRA_CODES");
        assert_eq!(
            form(
                &codes,
                &Value::List(vec![Value::Integer(429), Value::Integer(502)])
            ),
            T::String("429,502".into())
        );
        let retries = builtin("PREFECT_TASKS_DEFAULT_RETRIES");
        assert_eq!(form(&retries, &Value::Integer(2)), T::String("2".into()));
        // Every form reads back in cfgd as the same value.
        for (e, v) in [
            (&task, list(vec![2.0, 20.0, 200.0])),
            (&task, list(vec![])),
            (&flow, list(vec![1.0, 2.5])),
            (&period, Value::Number(3600.5)),
            (&codes, Value::List(vec![Value::Integer(429)])),
        ] {
            assert_eq!(from_toml(e, &form(e, &v)), Ok(v.clone()), "{}", e.name);
        }
    }

    #[test]
    fn env_forms_are_ones_prefect_reads_from_its_environment() {
        let task = builtin("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS");
        let list = Value::Delays(Delays::list(vec![10.0]).unwrap());
        assert_eq!(to_env(&task, &list), "[10]");
        let period = builtin("PREFECT_SERVER_EVENTS_RETENTION_PERIOD");
        assert_eq!(to_env(&period, &Value::Number(60.0)), "PT60S");
        let loggers = builtin("PREFECT_LOGGING_EXTRA_LOGGERS");
        assert_eq!(
            to_env(&loggers, &Value::List(vec![Value::String("a".into())])),
            r#"["a"]"#
        );
    }
}
