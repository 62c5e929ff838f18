//! Masking: the one rule for secrets on the wire. A secret goes out in
//! clear only when the request asked for it and the caller is authorised
//! (the auth check decides, once per request, and hands over a [`Mask`]);
//! otherwise it goes out as `Masked`. Every value the service sends —
//! resolved settings, shadowed values, history, watch events, profiles,
//! catalogue defaults — is made here.

use cfgd_proto::pb;
use cfgd_settings::{Entry, Value};

/// Whether this answer may carry secrets in clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mask {
    reveal: bool,
}

impl Mask {
    /// Secrets masked: for answers that never reveal (writes, the catalogue).
    pub(crate) const HIDE: Mask = Mask { reveal: false };

    /// Secrets in clear when `reveal` (already authorised).
    pub(crate) fn new(reveal: bool) -> Self {
        Self { reveal }
    }

    /// Whether secrets go out in clear.
    pub(crate) fn reveals(self) -> bool {
        self.reveal
    }

    /// A value for the wire; `None` is "unset".
    pub(crate) fn value(self, v: Option<&Value>) -> pb::Value {
        use pb::value::Kind;
        let kind = v.map(|v| match v {
            Value::Integer(i) => Kind::Integer(*i),
            Value::Number(n) => Kind::Number(*n),
            Value::Boolean(b) => Kind::Boolean(*b),
            Value::String(s) => Kind::Text(s.clone()),
            Value::Secret(s) if self.reveal => Kind::Secret(s.clone()),
            Value::Secret(_) => masked(),
            Value::Delays(d) => Kind::Delays(pb::Delays {
                seconds: d.seconds().to_vec(),
                list: d.is_list(),
            }),
            Value::List(items) => Kind::List(pb::ValueList {
                items: items.iter().map(|i| self.value(Some(i))).collect(),
            }),
        });
        pb::Value { kind }
    }

    /// A value as a profile stores it: typed when it is valid for its
    /// setting, as stored text otherwise. A secret setting's value is
    /// masked even when it is not valid (it is still someone's secret).
    pub(crate) fn stored(self, entry: Option<&Entry>, raw: &toml::Value) -> pb::Value {
        if entry.is_some_and(Entry::is_secret) && !self.reveal {
            return pb::Value {
                kind: Some(masked()),
            };
        }
        match entry.and_then(|e| cfgd_settings::value::from_toml(e, raw).ok()) {
            // Revealing is already decided above: a valid secret here is
            // one the caller may see.
            Some(v) => Mask::new(true).value(Some(&v)),
            None => pb::Value {
                kind: Some(pb::value::Kind::Text(match raw {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })),
            },
        }
    }
}

fn masked() -> pb::value::Kind {
    pb::value::Kind::Masked(pb::Masked {})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_entry() -> Entry {
        cfgd_settings::Catalog::builtin()
            .get("PREFECT_API_KEY")
            .expect("a built-in secret")
            .clone()
    }

    #[test]
    fn secrets_are_masked_unless_revealed() {
        let s = Value::Secret("hunter2".into());
        assert_eq!(Mask::HIDE.value(Some(&s)).kind, Some(masked()));
        assert_eq!(
            Mask::new(true).value(Some(&s)).kind,
            Some(pb::value::Kind::Secret("hunter2".into()))
        );
        assert_eq!(
            Mask::HIDE.value(Some(&Value::Integer(3))).kind,
            Some(pb::value::Kind::Integer(3))
        );
        assert_eq!(Mask::HIDE.value(None).kind, None);
    }

    #[test]
    fn a_stored_secret_is_masked_even_when_it_does_not_parse() {
        let entry = secret_entry();
        // Not a string: not a valid secret, and still masked.
        let raw = toml::Value::Integer(1234);
        assert_eq!(Mask::HIDE.stored(Some(&entry), &raw).kind, Some(masked()));
        assert_eq!(
            Mask::new(true).stored(Some(&entry), &raw).kind,
            Some(pb::value::Kind::Text("1234".into()))
        );
        let raw = toml::Value::String("hunter2".into());
        assert_eq!(Mask::HIDE.stored(Some(&entry), &raw).kind, Some(masked()));
        assert_eq!(
            Mask::new(true).stored(Some(&entry), &raw).kind,
            Some(pb::value::Kind::Secret("hunter2".into()))
        );
        // A key no setting has: shown as stored.
        assert_eq!(
            Mask::HIDE.stored(None, &raw).kind,
            Some(pb::value::Kind::Text("hunter2".into()))
        );
    }
}
