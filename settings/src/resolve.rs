//! Resolution: all layering happens in [`resolve`], in precedence order.
//!
//! A [`Resolution`] is a persistent map (`imbl::OrdMap`) of shared
//! [`Resolved`] values: a clone is O(1), and a change that touched a few
//! names re-resolves only those ([`Resolution::update`]), copying
//! O(log n) of the map, whatever the catalogue's size.

use std::sync::Arc;

use imbl::OrdMap;

use crate::catalog::{Catalog, Entry};
use crate::layer::{Layer, Source, Sourced};
use crate::value::Value;

/// One setting's effective value, where it comes from, and what it shadows.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Canonical name (the same allocation as the resolution's key).
    pub name: Arc<str>,
    /// The effective value; `None` when no layer gives one (an optional
    /// setting without a default).
    pub value: Option<Value>,
    /// The layer (and file, line) the effective value comes from; the
    /// defaults when no layer gives one.
    pub source: Source,
    /// Values from lower layers that the effective value shadows, highest
    /// first.
    pub shadowed: Vec<Sourced>,
    /// Whether the setting is secret (mask it when showing it).
    pub secret: bool,
}

/// The effective value of every setting in the catalogue, by canonical name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolution {
    settings: OrdMap<Arc<str>, Arc<Resolved>>,
}

/// One setting whose effective value or source changed: its canonical
/// name, before and after (`None` when it is not in that resolution).
pub type Changed = (Arc<str>, Option<Arc<Resolved>>, Option<Arc<Resolved>>);

impl Resolution {
    /// The setting with this canonical name.
    pub fn get(&self, canonical: &str) -> Option<&Resolved> {
        self.settings.get(canonical).map(|r| &**r)
    }

    /// Every setting, sorted by canonical name.
    pub fn iter(&self) -> impl Iterator<Item = &Resolved> {
        self.settings.values().map(|r| &**r)
    }

    /// Resolves `names` again over `layers` (every other setting is kept as
    /// it is) and returns those whose effective value or source changed.
    ///
    /// This equals a full [`resolve`] when `self` was resolved over the
    /// same catalogue and layers that differ from `layers` only in the
    /// values of `names` — e.g. the names whose value in one layer changed
    /// ([`Layer::changed_names`]). Names the catalogue does not declare are
    /// skipped (a resolution holds only declared settings).
    pub fn update<'n>(
        &mut self,
        catalog: &Catalog,
        layers: &Layers<'_>,
        names: impl IntoIterator<Item = &'n str>,
    ) -> Vec<Changed> {
        let mut changed = Vec::new();
        for name in names {
            let Some(entry) = catalog.get(name) else {
                continue;
            };
            let (key, old) = match self.settings.get_key_value(entry.name.as_str()) {
                Some((k, old)) => (k.clone(), Some(old.clone())),
                None => (Arc::from(entry.name.as_str()), None),
            };
            let new = Arc::new(resolve_one(entry, key.clone(), layers));
            match old.as_ref() {
                Some(old) if old.value == new.value && old.source == new.source => {
                    // Same winner; the shadowed list may still differ.
                    if **old != *new {
                        self.settings.insert(key, new);
                    }
                }
                _ => {
                    self.settings.insert(key.clone(), new.clone());
                    changed.push((key, old, Some(new)));
                }
            }
        }
        changed
    }

    /// How many settings there are.
    pub fn len(&self) -> usize {
        self.settings.len()
    }

    /// Whether the catalogue was empty.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
    }

    /// The names whose effective value or source differs between `self`
    /// (old) and `new`, with both sides; a name missing on one side shows
    /// as `None`.
    pub fn diff<'a>(
        &'a self,
        new: &'a Resolution,
    ) -> Vec<(&'a str, Option<&'a Resolved>, Option<&'a Resolved>)> {
        let mut out = Vec::new();
        for (name, old) in &self.settings {
            match new.settings.get(name) {
                Some(n) if n.value == old.value && n.source == old.source => {}
                other => out.push((&**name, Some(&**old), other.map(|n| &**n))),
            }
        }
        for (name, n) in &new.settings {
            if !self.settings.contains_key(name) {
                out.push((&**name, None, Some(&**n)));
            }
        }
        out
    }
}

/// The layers of one resolution, kept in precedence order — the one place
/// that order lives: by [`LayerKind`](crate::LayerKind) (defaults, profile, config files,
/// `.env`, env, process env, call site), and layers of one kind (the config
/// files) in the order they were added (file-name order). However a caller
/// gathers its layers, [`resolve`] sees them in this order.
///
/// # Example
/// ```
/// use cfgd_settings::{Catalog, Layer, LayerKind, Layers, resolve};
///
/// let catalog = Catalog::builtin();
/// let env = Layer::from_env(&catalog, LayerKind::Env, [("PREFECT_TASK_DEFAULT_RETRIES", "3")]).unwrap();
/// let defaults = Layer::defaults(&catalog);
/// // Added highest first, still resolved lowest first.
/// let layers = Layers::new().with(&env).with(&defaults);
/// let r = resolve(&catalog, &layers);
/// assert_eq!(r.get("PREFECT_TASKS_DEFAULT_RETRIES").unwrap().source.layer, LayerKind::Env);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Layers<'a> {
    layers: Vec<&'a Layer>,
    /// Whether the catalogue's own defaults lie below every layer
    /// ([`Layers::with_catalog_defaults`]).
    catalog_defaults: bool,
}

impl<'a> Layers<'a> {
    /// No layers yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `layer` in its place: above every layer of a lower kind and
    /// every layer of its own kind added before it.
    pub fn push(&mut self, layer: &'a Layer) {
        let at = self.layers.partition_point(|l| l.kind <= layer.kind);
        self.layers.insert(at, layer);
    }

    /// [`Layers::push`], by value.
    pub fn with(mut self, layer: &'a Layer) -> Self {
        self.push(layer);
        self
    }

    /// These layers over the resolved catalogue's own defaults, read from
    /// its entries: what [`Layer::defaults`] of that catalogue at the
    /// bottom gives, without a copy of every default (a daemon with 10,000
    /// settings held ~1.3 MB of them). Give no defaults layer as well, or
    /// each default is shadowed by itself.
    pub fn with_catalog_defaults(mut self) -> Self {
        self.catalog_defaults = true;
        self
    }

    /// These layers with every layer of `layer`'s kind replaced by it (what
    /// the settings would be with another profile active).
    pub fn replacing(&self, layer: &'a Layer) -> Self {
        let mut out = Self {
            layers: self
                .layers
                .iter()
                .copied()
                .filter(|l| l.kind != layer.kind)
                .collect(),
            catalog_defaults: self.catalog_defaults,
        };
        out.push(layer);
        out
    }

    /// The layers, lowest precedence first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &'a Layer> + '_ {
        self.layers.iter().copied()
    }
}

impl<'a> Extend<&'a Layer> for Layers<'a> {
    fn extend<I: IntoIterator<Item = &'a Layer>>(&mut self, iter: I) {
        for l in iter {
            self.push(l);
        }
    }
}

impl<'a> FromIterator<&'a Layer> for Layers<'a> {
    fn from_iter<I: IntoIterator<Item = &'a Layer>>(iter: I) -> Self {
        let mut out = Self::new();
        out.extend(iter);
        out
    }
}

/// Resolves every catalogue setting over `layers` (in their precedence
/// order, see [`Layers`]): the highest layer that gives a value wins; the
/// values it hides are listed as shadowed, highest first.
pub fn resolve(catalog: &Catalog, layers: &Layers<'_>) -> Resolution {
    let settings = catalog
        .entries()
        .iter()
        .map(|entry| {
            let key: Arc<str> = Arc::from(entry.name.as_str());
            (key.clone(), Arc::new(resolve_one(entry, key, layers)))
        })
        .collect();
    Resolution { settings }
}

/// One setting over `layers`: the highest layer that gives it wins.
fn resolve_one(entry: &Entry, name: Arc<str>, layers: &Layers<'_>) -> Resolved {
    let default = match (layers.catalog_defaults, &entry.default) {
        (true, Some(value)) => Some(Sourced {
            value: value.clone(),
            source: Source::defaults(),
        }),
        _ => None,
    };
    let mut given = layers
        .iter()
        .rev()
        .filter_map(|layer| layer.values.get(&entry.name).cloned())
        .chain(default);
    match given.next() {
        Some(top) => {
            // Collected from an iterator of unknown length, a Vec starts
            // with room for 4: sized to what it holds (mostly the one
            // default), for every setting of the resolution.
            let mut shadowed: Vec<Sourced> = given.collect();
            shadowed.shrink_to_fit();
            Resolved {
                name,
                value: Some(top.value),
                source: top.source,
                shadowed,
                secret: entry.is_secret(),
            }
        }
        None => Resolved {
            name,
            value: None,
            source: Source::defaults(),
            shadowed: Vec::new(),
            secret: entry.is_secret(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::layer::LayerKind;

    const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";

    /// One layer of each kind, each setting retries to its own number:
    /// defaults 0, profile 1, file 2, .env 3, env 4, process env 5, call site 6.
    fn layer(catalog: &Catalog, kind: LayerKind) -> Layer {
        match kind {
            LayerKind::Defaults => Layer::defaults(catalog),
            LayerKind::Profile => Layer::from_profile(
                catalog,
                "default",
                &BTreeMap::from([(RETRIES.to_owned(), toml::Value::from("1"))]),
            )
            .unwrap(),
            LayerKind::File => Layer::from_toml(
                catalog,
                Path::new("cfg/a.toml"),
                "[tasks]\ndefault_retries = 2\n",
            )
            .unwrap(),
            LayerKind::DotEnv => Layer::from_dotenv(
                catalog,
                Path::new("cfg/.env"),
                "# x\nPREFECT_TASK_DEFAULT_RETRIES=3\n",
            )
            .unwrap(),
            LayerKind::Env | LayerKind::ProcessEnv => {
                let n = if kind == LayerKind::Env { "4" } else { "5" };
                Layer::from_env(catalog, kind, [(RETRIES, n)]).unwrap()
            }
            LayerKind::CallSite => {
                let mut l = Layer::empty(LayerKind::CallSite);
                l.values.insert(
                    RETRIES.to_owned(),
                    Sourced {
                        value: Value::Integer(6),
                        source: Source::layer(LayerKind::CallSite),
                    },
                );
                l
            }
        }
    }

    const ORDER: [LayerKind; 7] = [
        LayerKind::Defaults,
        LayerKind::Profile,
        LayerKind::File,
        LayerKind::DotEnv,
        LayerKind::Env,
        LayerKind::ProcessEnv,
        LayerKind::CallSite,
    ];

    #[test]
    fn every_higher_layer_wins_over_the_one_below_and_lists_it_as_shadowed() {
        let catalog = Catalog::builtin();
        for pair in ORDER.windows(2) {
            let (low, high) = (pair[0], pair[1]);
            let (low_l, high_l) = (layer(&catalog, low), layer(&catalog, high));
            let r = resolve(&catalog, &Layers::from_iter([&low_l, &high_l]));
            let got = r.get(RETRIES).unwrap();
            let expected_value = ORDER.iter().position(|k| *k == high).unwrap() as i64;
            assert_eq!(
                got.value,
                Some(Value::Integer(expected_value)),
                "{high:?} over {low:?}"
            );
            assert_eq!(got.source.layer, high);
            assert_eq!(got.shadowed.len(), 1);
            assert_eq!(got.shadowed[0].source.layer, low);
            assert_eq!(got.shadowed[0].value, Value::Integer(expected_value - 1));
        }
    }

    #[test]
    fn a_resolution_holds_no_spare_room_for_shadowed_values() {
        // Every setting of a resolution is held for as long as it is in
        // force: a shadowed list keeps only what it lists (a Vec collected
        // from an iterator would keep room for 4).
        let catalog = Catalog::builtin();
        let (defaults, file) = (
            layer(&catalog, LayerKind::Defaults),
            layer(&catalog, LayerKind::File),
        );
        let layers = Layers::from_iter([&defaults, &file]);
        let mut r = resolve(&catalog, &layers);
        assert_eq!(r.get(RETRIES).unwrap().shadowed.len(), 1);
        r.update(&catalog, &layers.replacing(&file), [RETRIES]);
        for s in r.iter() {
            assert_eq!(s.shadowed.capacity(), s.shadowed.len(), "{}", s.name);
        }
    }

    #[test]
    fn all_layers_together_shadow_highest_first_with_provenance() {
        let catalog = Catalog::builtin();
        let layers: Vec<Layer> = ORDER.iter().map(|k| layer(&catalog, *k)).collect();
        let refs: Vec<&Layer> = layers.iter().collect();
        let got = resolve(&catalog, &refs.into_iter().collect())
            .get(RETRIES)
            .unwrap()
            .clone();
        assert_eq!(got.value, Some(Value::Integer(6)));
        let sources: Vec<String> = got.shadowed.iter().map(|s| s.source.to_string()).collect();
        assert_eq!(
            sources,
            [
                "process env PREFECT_TASKS_DEFAULT_RETRIES",
                "env PREFECT_TASKS_DEFAULT_RETRIES",
                ".env file cfg/.env, line 2",
                "config file cfg/a.toml, line 2",
                "profile 'default'",
                "defaults",
            ]
        );
    }

    #[test]
    fn an_unset_optional_setting_has_no_value_and_reports_defaults() {
        let catalog = Catalog::builtin();
        let defaults = Layer::defaults(&catalog);
        let r = resolve(&catalog, &Layers::new().with(&defaults));
        let jitter = r.get("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR").unwrap();
        assert_eq!(jitter.value, None);
        assert_eq!(jitter.source.layer, LayerKind::Defaults);
        assert!(r.get("PREFECT_API_KEY").unwrap().secret);
    }

    #[test]
    fn canonical_name_wins_over_alias_within_a_layer_in_either_order() {
        let catalog = Catalog::builtin();
        for vars in [
            [("PREFECT_TASK_DEFAULT_RETRIES", "1"), (RETRIES, "2")],
            [(RETRIES, "2"), ("PREFECT_TASK_DEFAULT_RETRIES", "1")],
        ] {
            let env = Layer::from_env(&catalog, LayerKind::Env, vars).unwrap();
            assert_eq!(env.values[RETRIES].value, Value::Integer(2));
            assert_eq!(env.values[RETRIES].source.detail.as_deref(), Some(RETRIES));
        }
        let file = Layer::from_toml(
            &catalog,
            Path::new("a.toml"),
            "PREFECT_TASK_DEFAULT_RETRIES = 1\n[tasks]\ndefault_retries = 2\n",
        )
        .unwrap();
        assert_eq!(file.values[RETRIES].value, Value::Integer(2));
        assert_eq!(file.values[RETRIES].source.line, Some(3));
    }

    #[test]
    fn env_ignores_other_variables_but_rejects_bad_values() {
        let catalog = Catalog::builtin();
        let env = Layer::from_env(
            &catalog,
            LayerKind::Env,
            [("PATH", "/bin"), ("HOME", "/root")],
        )
        .unwrap();
        assert!(env.values.is_empty());
        let err = Layer::from_env(
            &catalog,
            LayerKind::Env,
            [("PREFECT_TASK_DEFAULT_RETRIES", "two")],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid value for PREFECT_TASKS_DEFAULT_RETRIES from env PREFECT_TASK_DEFAULT_RETRIES: expected an integer, got \"two\""
        );
    }

    #[test]
    fn toml_errors_name_the_file_line_and_suggest() {
        let catalog = Catalog::builtin();
        let p = Path::new("cfg/a.toml");
        // A name under Prefect's sections is warned about (a newer Prefect
        // may have it); the file still applies.
        let ok = Layer::from_toml(&catalog, p, "[tasks]\ndefault_retrys = 2\n").unwrap();
        assert_eq!(
            ok.warnings[0].to_string(),
            "config file cfg/a.toml, line 2: 'tasks.default_retrys' is not a setting of Prefect 3.9.1 or cfgd; it is kept as is and not applied. Did you mean 'tasks.default_retries'?"
        );
        let ok = Layer::from_toml(&catalog, p, "PREFECT_TASK_DEFAULT_RETRYS = 2\n").unwrap();
        assert_eq!(
            ok.warnings[0].to_string(),
            "config file cfg/a.toml, line 1: 'PREFECT_TASK_DEFAULT_RETRYS' is not a setting of Prefect 3.9.1 or cfgd; it is kept as is and not applied. Did you mean 'PREFECT_TASK_DEFAULT_RETRIES'?"
        );
        // A service's undeclared setting is an error.
        let err = Layer::from_toml(&catalog, p, "[myapp]\ntimeout = 2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "config file cfg/a.toml, line 2: Unknown setting name 'myapp.timeout'."
        );
        let err = Layer::from_toml(
            &catalog,
            p,
            "[tasks]\ndefault_retries = 1\ndefault_retry_delay_seconds = [1, -2]\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid value for PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS from config file cfg/a.toml, line 3: every delay must be >= 0, got -2"
        );
        let err = Layer::from_toml(&catalog, p, "a = 1\n[tasks\n").unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.to_string().starts_with("cfg/a.toml, line 2: "), "{err}");
        // Several problems are all reported.
        let err = Layer::from_toml(
            &catalog,
            p,
            "[tasks]\ndefault_retries = -1\n[myapp]\nnope = 1\n",
        )
        .unwrap_err();
        assert_eq!(err.0.len(), 2);
    }

    #[test]
    fn dotenv_reads_like_prefects_and_rejects_only_bad_lines() {
        let catalog = Catalog::builtin();
        let p = Path::new("cfg/.env");
        let err = Layer::from_dotenv(&catalog, p, "PREFECT_TASKS_DEFAULT_RETRIES=1\nnot a line\n")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cfg/.env, line 2: expected NAME=VALUE"),
            "{err}"
        );
        let ok = Layer::from_dotenv(
            &catalog,
            p,
            "export PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS=\"[1, 10, 100]\" # backoff\n",
        )
        .unwrap();
        assert_eq!(
            ok.values["PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS"]
                .value
                .to_string(),
            "[1, 10, 100]"
        );
    }

    #[test]
    fn diff_reports_changed_values_and_sources() {
        let catalog = Catalog::builtin();
        let defaults = layer(&catalog, LayerKind::Defaults);
        let profile = layer(&catalog, LayerKind::Profile);
        let a = resolve(&catalog, &Layers::from_iter([&defaults]));
        let b = resolve(&catalog, &Layers::from_iter([&defaults, &profile]));
        let d = a.diff(&b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].0, RETRIES);
        assert!(a.diff(&a).is_empty());
    }

    /// Names a random profile may hold: canonical names, an alias of one
    /// of them (the canonical spelling wins within a layer), a secret.
    const PROFILE_NAMES: [&str; 5] = [
        RETRIES,
        "PREFECT_TASK_DEFAULT_RETRIES",
        "PREFECT_FLOWS_DEFAULT_RETRIES",
        "PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR",
        "PREFECT_API_KEY",
    ];

    fn profile_layer(catalog: &Catalog, profile: &str, picks: &[(usize, u8)]) -> Layer {
        let table = picks
            .iter()
            .map(|(i, v)| {
                (
                    PROFILE_NAMES[i % PROFILE_NAMES.len()].to_owned(),
                    toml::Value::from(v.to_string()),
                )
            })
            .collect();
        Layer::from_profile(catalog, profile, &table).unwrap()
    }

    proptest::proptest! {
        /// Re-resolving the names a profile change touched gives what a
        /// full resolve of the new layers gives, with the same changes.
        #[test]
        fn update_of_the_changed_names_equals_a_full_resolve(
            before in proptest::collection::vec((0usize..5, 0u8..4), 0..6),
            after in proptest::collection::vec((0usize..5, 0u8..4), 0..6),
            switch in proptest::bool::ANY,
            env in proptest::option::of(0u8..4),
        ) {
            let catalog = Catalog::builtin();
            let defaults = Layer::defaults(&catalog);
            let env = match env {
                Some(v) => Layer::from_env(&catalog, LayerKind::Env, [(RETRIES, v.to_string())]).unwrap(),
                None => Layer::empty(LayerKind::Env),
            };
            let old = profile_layer(&catalog, "default", &before);
            let new = profile_layer(&catalog, if switch { "other" } else { "default" }, &after);
            let full_old = resolve(&catalog, &Layers::from_iter([&defaults, &old, &env]));
            let layers = Layers::from_iter([&defaults, &new, &env]);
            let full_new = resolve(&catalog, &layers);
            let mut incremental = full_old.clone();
            let changed = incremental.update(&catalog, &layers, old.changed_names(&new));
            proptest::prop_assert_eq!(&incremental, &full_new);
            let expected: Vec<&str> = full_old.diff(&full_new).into_iter().map(|(n, _, _)| n).collect();
            let got: Vec<&str> = changed.iter().map(|(n, _, _)| &**n).collect();
            proptest::prop_assert_eq!(got, expected);
            // The old resolution, shared before the update, is untouched.
            proptest::prop_assert_eq!(&full_old, &resolve(&catalog, &Layers::from_iter([&defaults, &old, &env])));
        }
    }

    #[test]
    fn the_catalogues_own_defaults_resolve_as_a_defaults_layer_does() {
        let catalog = Catalog::builtin();
        let defaults = Layer::defaults(&catalog);
        let profile = profile_layer(&catalog, "default", &[(0, 1), (3, 2)]);
        let file = layer(&catalog, LayerKind::File);
        let with_layer = resolve(&catalog, &Layers::from_iter([&defaults, &profile, &file]));
        let implicit = Layers::from_iter([&profile, &file]).with_catalog_defaults();
        let got = resolve(&catalog, &implicit);
        assert_eq!(got, with_layer);
        // The default is still shadowed, lowest, and kept through a
        // profile switch ("as if profile P were active").
        let retries = got.get(RETRIES).unwrap();
        assert_eq!(
            retries.shadowed.last().unwrap().source.layer,
            LayerKind::Defaults
        );
        let other = profile_layer(&catalog, "other", &[]);
        let replaced = resolve(&catalog, &implicit.replacing(&other));
        assert_eq!(
            replaced,
            resolve(&catalog, &Layers::from_iter([&defaults, &other, &file]))
        );
        // Without them, a setting no layer gives has no value.
        let bare = resolve(&catalog, &Layers::from_iter([&profile]));
        assert_eq!(
            bare.get("PREFECT_FLOWS_DEFAULT_RETRIES").unwrap().value,
            None
        );
        let mut updated = bare.clone();
        updated.update(&catalog, &implicit, ["PREFECT_FLOWS_DEFAULT_RETRIES"]);
        assert_eq!(
            updated.get("PREFECT_FLOWS_DEFAULT_RETRIES"),
            with_layer.get("PREFECT_FLOWS_DEFAULT_RETRIES")
        );
    }

    #[test]
    fn changed_names_lists_added_removed_and_changed_values_only() {
        let catalog = Catalog::builtin();
        let a = profile_layer(&catalog, "default", &[(0, 1), (2, 1)]);
        let b = profile_layer(&catalog, "default", &[(0, 2), (3, 1)]);
        assert_eq!(
            a.changed_names(&b),
            [
                "PREFECT_FLOWS_DEFAULT_RETRIES",
                RETRIES,
                "PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR",
            ]
        );
        assert!(a.changed_names(&a).is_empty());
        // Another profile's name is another source for every value.
        let c = profile_layer(&catalog, "other", &[(0, 1), (2, 1)]);
        assert_eq!(a.changed_names(&c).len(), 2);
    }
}
