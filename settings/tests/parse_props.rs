//! Properties of the one parser: display → parse round-trips every valid
//! value, and no input makes it panic.

use cfgd_settings::value::{self, MAX_DELAYS};
use cfgd_settings::{Catalog, Delays, Entry, Kind, Layer, LayerKind, Value};
use proptest::prelude::*;

fn finite_nonneg() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..100_000).prop_map(f64::from),
        (0.0f64..1e9),
        Just(0.0),
        (0.0f64..1.0),
    ]
}

fn valid() -> impl Strategy<Value = (Kind, Value)> {
    prop_oneof![
        any::<i64>().prop_map(|i| (Kind::Integer, Value::Integer(i))),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| (Kind::Number, Value::Number(f))),
        any::<bool>().prop_map(|b| (Kind::Boolean, Value::Boolean(b))),
        any::<String>().prop_map(|s| (Kind::String, Value::String(s))),
        any::<String>().prop_map(|s| (Kind::Secret, Value::Secret(s))),
        finite_nonneg().prop_map(|f| (Kind::Delays, Value::Delays(Delays::scalar(f).unwrap()))),
        prop::collection::vec(finite_nonneg(), 0..=MAX_DELAYS)
            .prop_map(|v| (Kind::Delays, Value::Delays(Delays::list(v).unwrap()))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn display_then_parse_round_trips((kind, v) in valid()) {
        let entry = Entry::new("X_SETTING", kind);
        let shown = v.to_string();
        prop_assert_eq!(value::parse(&entry, &shown), Ok(v.clone()));
        // Through a TOML string too (how profiles.toml stores it).
        prop_assert_eq!(value::from_toml(&entry, &toml::Value::String(shown)), Ok(v));
    }

    #[test]
    fn any_string_gives_a_value_or_an_error_naming_the_setting(raw in any::<String>()) {
        let catalog = Catalog::builtin();
        for entry in catalog.entries() {
            match Layer::from_env(&catalog, LayerKind::Env, [(entry.name.as_str(), raw.as_str())]) {
                Ok(layer) => prop_assert!(layer.values.contains_key(&entry.name)),
                Err(e) => prop_assert!(e.to_string().contains(&entry.name), "{}", e),
            }
        }
    }

    #[test]
    fn delay_like_strings_never_panic(raw in r"\[?[0-9eE.,+\- naif\[\]]{0,40}\]?") {
        let entry = Entry::new("X_DELAYS", Kind::Delays);
        if let Ok(Value::Delays(d)) = value::parse(&entry, &raw) {
            prop_assert!(d.seconds().len() <= MAX_DELAYS);
            prop_assert!(d.seconds().iter().all(|s| s.is_finite() && *s >= 0.0));
        }
    }
}
