//! [`LiveView`]: one immutable copy of the settings as the SDK sees them —
//! the daemon's effective values (or a local resolution while it is down)
//! with the service's own environment layered over them by
//! [`cfgd_settings::resolve`], the same rule the daemon layers by.

use std::collections::BTreeMap;
use std::sync::Arc;

use cfgd_settings::{
    Catalog, ConfigDir, Layer, LayerKind, Layers, Source, Sourced, Value, resolve,
};

use crate::client::{Change, Setting, Shown, Snapshot};

/// One setting's value in a [`LiveView`].
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// The effective value; `None` when unset (or a secret the daemon
    /// withheld).
    pub value: Option<Value>,
    /// Where it comes from.
    pub source: Source,
    /// The values it shadows among the layers this view was resolved
    /// from, highest first: under the process environment, the daemon's
    /// effective value; while local, every lower layer. (The daemon's own
    /// shadow list is in [`crate::Client::get`].)
    pub shadowed: Vec<Sourced>,
}

/// Where the view's values came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Resolved locally: defaults, the config dir if given, process env.
    Local,
    /// From the daemon, at `revision` of `epoch`.
    Daemon {
        /// The daemon's revision.
        revision: u64,
        /// The daemon's epoch.
        epoch: u64,
    },
}

/// The service's environment: the variables as captured (empty when the
/// process env is not used), parsed once per catalogue into a layer.
#[derive(Debug, Clone)]
pub(crate) struct ProcessEnv {
    vars: Arc<[(String, String)]>,
    layer: Arc<Layer>,
}

impl ProcessEnv {
    pub(crate) fn new(catalog: &Catalog, vars: Vec<(String, String)>) -> Self {
        let vars: Arc<[(String, String)]> = vars.into();
        let (layer, problems) = Layer::from_env_lenient(
            catalog,
            LayerKind::ProcessEnv,
            vars.iter().map(|(k, v)| (k, v)),
        );
        for p in problems {
            tracing::warn!("ignoring a variable of the process environment: {p}");
        }
        Self {
            vars,
            layer: Arc::new(layer),
        }
    }

    fn reparsed(&self, catalog: &Catalog) -> Self {
        Self::new(catalog, self.vars.to_vec())
    }
}

/// An immutable copy of every setting.
#[derive(Debug, Clone)]
pub struct LiveView {
    catalog: Catalog,
    /// Bumped whenever the catalogue differs from the previous view's.
    generation: u64,
    env: ProcessEnv,
    /// The daemon's (or local) values without the process env, aligned
    /// with `catalog.entries()`. Each value is shared by the views it is
    /// in: a change copies pointers, not every setting.
    base: Arc<Vec<Arc<Current>>>,
    /// After the process env, aligned likewise.
    values: Vec<Arc<Current>>,
    origin: Origin,
    /// Bumped by every publish, so a waiter can tell a newer view.
    pub(super) seq: u64,
}

impl LiveView {
    /// Resolves locally: defaults, the config dir's files when given, and
    /// `env` (the service's environment) on top.
    pub(crate) fn local(config_dir: Option<&ConfigDir>, vars: Vec<(String, String)>) -> Self {
        let catalog = config_dir.map_or_else(Catalog::builtin, |d| d.catalog().clone());
        let env = ProcessEnv::new(&catalog, vars);
        let defaults = Layer::defaults(&catalog);
        let mut layers = Layers::new().with(&defaults);
        if let Some(dir) = config_dir {
            layers.extend(dir.layers());
        }
        let base = resolved(&catalog, &layers, &[]);
        layers.push(&env.layer);
        let values = resolved(&catalog, &layers, &base);
        Self {
            catalog,
            generation: 0,
            env,
            base: Arc::new(base),
            values,
            origin: Origin::Local,
            seq: 0,
        }
    }

    /// The daemon's `snapshot` with its `catalog`, following `self`: the
    /// catalogue generation moves on if the catalogue differs.
    pub(crate) fn resynced(&self, catalog: Catalog, snapshot: &Snapshot) -> Self {
        let by_name: BTreeMap<&str, &Setting> = snapshot
            .settings
            .iter()
            .map(|s| (s.name.as_str(), s))
            .collect();
        let base = catalog
            .entries()
            .iter()
            .map(|e| match by_name.get(e.name.as_str()) {
                Some(s) => current(&s.value, Some(&s.source)),
                None => Arc::new(Current {
                    value: e.default.clone(),
                    source: Source::defaults(),
                    shadowed: Vec::new(),
                }),
            })
            .collect();
        let (generation, env) = if catalog.entries() == self.catalog.entries() {
            (self.generation, self.env.clone())
        } else {
            (self.generation + 1, self.env.reparsed(&catalog))
        };
        let origin = Origin::Daemon {
            revision: snapshot.revision,
            epoch: snapshot.epoch,
        };
        Self::over_daemon(catalog, generation, env, base, origin)
    }

    /// This view with a daemon change applied.
    pub(crate) fn apply(&self, change: &Change, epoch: u64) -> Self {
        let mut base = (*self.base).clone();
        for c in &change.changes {
            if let Some(i) = self.catalog.index_of(&c.name) {
                base[i] = current(&c.new, c.new_source.as_ref());
            }
        }
        let origin = Origin::Daemon {
            revision: change.revision,
            epoch,
        };
        Self::over_daemon(
            self.catalog.clone(),
            self.generation,
            self.env.clone(),
            base,
            origin,
        )
    }

    /// Whether a change to `revision` of `epoch` is one this view has
    /// passed already (it was brought forward by a snapshot).
    pub(crate) fn is_past(&self, epoch: u64, revision: u64) -> bool {
        matches!(self.origin, Origin::Daemon { revision: r, epoch: e } if e == epoch && revision <= r)
    }

    /// Puts the process env over the daemon's effective values.
    fn over_daemon(
        catalog: Catalog,
        generation: u64,
        env: ProcessEnv,
        base: Vec<Arc<Current>>,
        origin: Origin,
    ) -> Self {
        let values = if env.layer.values.is_empty() {
            base.clone()
        } else {
            // One layer of whatever the daemon decided, each value with its
            // own source; `resolve` reads only the values.
            let mut daemon = Layer::empty(LayerKind::Env);
            for (e, c) in catalog.entries().iter().zip(&base) {
                if let Some(value) = &c.value {
                    daemon.values.insert(
                        e.name.clone(),
                        Sourced {
                            value: value.clone(),
                            source: c.source.clone(),
                        },
                    );
                }
            }
            resolved(
                &catalog,
                &Layers::new().with(&daemon).with(&env.layer),
                &base,
            )
        };
        Self {
            catalog,
            generation,
            env,
            base: Arc::new(base),
            values,
            origin,
            seq: 0,
        }
    }

    /// The catalogue this view was built with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Which catalogue this is: it changes whenever the daemon's catalogue
    /// does (a `catalog.d` file added or edited), so an index into the
    /// old one (a [`crate::Key`]) knows to look its name up again.
    #[inline]
    pub fn catalog_generation(&self) -> u64 {
        self.generation
    }

    /// Where the values came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The daemon revision this view is at (`None` while local).
    pub fn revision(&self) -> Option<u64> {
        match self.origin {
            Origin::Daemon { revision, .. } => Some(revision),
            Origin::Local => None,
        }
    }

    /// A setting by canonical name or alias.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&Current> {
        self.catalog.index_of(name).map(|i| &*self.values[i])
    }

    /// The setting at `index` in [`Catalog::entries`] of this view's
    /// catalogue.
    #[inline]
    pub fn at(&self, index: usize) -> Option<&Current> {
        self.values.get(index).map(|c| &**c)
    }

    /// Every setting with its canonical name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Current)> {
        self.catalog
            .entries()
            .iter()
            .map(|e| e.name.as_str())
            .zip(self.values.iter().map(|c| &**c))
    }
}

/// `layers` resolved, aligned with the catalogue. A setting no layer gives
/// a value keeps `fallback`'s entry: the daemon may know a source for it
/// (a secret it withheld) that no layer here can say.
fn resolved(
    catalog: &Catalog,
    layers: &Layers<'_>,
    fallback: &[Arc<Current>],
) -> Vec<Arc<Current>> {
    let resolution = resolve(catalog, layers);
    catalog
        .entries()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let r = resolution.get(&e.name).expect("every entry resolves");
            match (&r.value, fallback.get(i)) {
                (None, Some(f)) => f.clone(),
                _ => Arc::new(Current {
                    value: r.value.clone(),
                    source: r.source.clone(),
                    shadowed: r.shadowed.clone(),
                }),
            }
        })
        .collect()
}

fn current(shown: &Shown, source: Option<&Source>) -> Arc<Current> {
    Arc::new(Current {
        value: shown.value().cloned(),
        source: source.cloned().unwrap_or_else(Source::defaults),
        shadowed: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn process_env_overrides_and_canonical_wins() {
        let env = vars(&[
            ("PREFECT_TASKS_DEFAULT_RETRIES", "4"),
            ("PREFECT_TASK_DEFAULT_RETRIES", "3"),
            ("PREFECT_FLOW_DEFAULT_RETRIES", "not a number"),
        ]);
        let view = LiveView::local(None, env);
        let r = view.get("PREFECT_TASK_DEFAULT_RETRIES").unwrap();
        assert_eq!(r.value, Some(Value::Integer(4)));
        assert_eq!(r.source.layer, LayerKind::ProcessEnv);
        // What it shadows comes from the same resolution as the daemon's.
        assert_eq!(r.shadowed.len(), 1);
        assert_eq!(r.shadowed[0].source.layer, LayerKind::Defaults);
        // The bad variable is skipped, the default stays.
        let f = view.get("PREFECT_FLOWS_DEFAULT_RETRIES").unwrap();
        assert_eq!(f.value, Some(Value::Integer(0)));
        assert_eq!(f.source.layer, LayerKind::Defaults);
        // Without an environment, the defaults.
        let off = LiveView::local(None, Vec::new());
        assert_eq!(
            off.get("PREFECT_TASKS_DEFAULT_RETRIES").unwrap().value,
            Some(Value::Integer(0))
        );
    }

    #[test]
    fn an_alias_that_parses_stands_in_for_a_canonical_name_that_does_not() {
        let view = LiveView::local(
            None,
            vars(&[
                ("PREFECT_TASKS_DEFAULT_RETRIES", "four"),
                ("PREFECT_TASK_DEFAULT_RETRIES", "3"),
            ]),
        );
        let r = view.get("PREFECT_TASKS_DEFAULT_RETRIES").unwrap();
        assert_eq!(r.value, Some(Value::Integer(3)));
        assert_eq!(
            r.source.detail.as_deref(),
            Some("PREFECT_TASK_DEFAULT_RETRIES")
        );
    }

    fn snapshot(revision: u64, epoch: u64) -> Snapshot {
        Snapshot {
            revision,
            epoch,
            active_profile: "default".into(),
            settings: Vec::new(),
        }
    }

    fn change(revision: u64, retries: i64) -> Change {
        Change {
            revision,
            time_ms: 0,
            origin: crate::client::Origin::Set,
            detail: String::new(),
            host: String::new(),
            changes: vec![crate::client::KeyChange {
                name: "PREFECT_TASKS_DEFAULT_RETRIES".into(),
                old: Shown::Unset,
                old_source: None,
                new: Shown::Value(Value::Integer(retries)),
                new_source: Some(Source::profile("default")),
                secret: false,
            }],
        }
    }

    #[test]
    fn a_view_brought_forward_knows_the_changes_it_passed() {
        let local = LiveView::local(None, Vec::new());
        assert!(!local.is_past(1, 0), "a local view has passed nothing");
        let at5 = local.resynced(Catalog::builtin(), &snapshot(5, 1));
        assert_eq!(at5.catalog_generation(), local.catalog_generation());
        assert!(at5.is_past(1, 4) && at5.is_past(1, 5));
        assert!(!at5.is_past(1, 6));
        assert!(!at5.is_past(2, 3), "another epoch is another history");
        let at6 = at5.apply(&change(6, 3), 1);
        assert_eq!(at6.revision(), Some(6));
        assert_eq!(
            at6.get("PREFECT_TASK_DEFAULT_RETRIES").unwrap().value,
            Some(Value::Integer(3))
        );
    }
}
