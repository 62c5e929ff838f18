//! [`LiveView`]: one immutable copy of the settings as the SDK sees them —
//! the daemon's effective values (or a local resolution while it is down)
//! under the service's own environment.

use std::collections::BTreeMap;
use std::sync::Arc;

use cfgd_settings::{Catalog, ConfigDir, Layer, LayerKind, Source, Sourced, Value, resolve};

use crate::client::{Change, Setting, Shown, Snapshot};

/// One setting's value in a [`LiveView`].
#[derive(Debug, Clone, PartialEq)]
pub struct Current {
    /// The effective value; `None` when unset (or a secret the daemon
    /// withheld).
    pub value: Option<Value>,
    /// Where it comes from.
    pub source: Source,
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

/// An immutable copy of every setting.
#[derive(Debug, Clone)]
pub struct LiveView {
    catalog: Catalog,
    /// The daemon's (or local) values, aligned with `catalog.entries()`.
    base: Vec<Current>,
    /// After the process env overlay, aligned likewise.
    values: Vec<Current>,
    origin: Origin,
}

impl LiveView {
    /// Resolves locally: defaults, the config dir's files when given, and
    /// `env` (the service's environment) on top.
    pub fn local(config_dir: Option<&ConfigDir>, env: &[(String, String)], use_env: bool) -> Self {
        let catalog = config_dir.map_or_else(Catalog::builtin, |d| d.catalog().clone());
        let defaults = Layer::defaults(&catalog);
        let mut layers = vec![&defaults];
        if let Some(dir) = config_dir {
            layers.extend(dir.layers());
        }
        let resolution = resolve(&catalog, &layers);
        let base = catalog
            .entries()
            .iter()
            .map(|e| {
                let r = resolution.get(&e.name).expect("every entry resolves");
                Current {
                    value: r.value.clone(),
                    source: r.source.clone(),
                }
            })
            .collect();
        Self::with_env(catalog, base, Origin::Local, env, use_env)
    }

    /// The daemon's snapshot (with its catalogue) under `env`.
    pub fn from_snapshot(
        catalog: Catalog,
        snapshot: &Snapshot,
        env: &[(String, String)],
        use_env: bool,
    ) -> Self {
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
                None => Current {
                    value: e.default.clone(),
                    source: Source::defaults(),
                },
            })
            .collect();
        let origin = Origin::Daemon {
            revision: snapshot.revision,
            epoch: snapshot.epoch,
        };
        Self::with_env(catalog, base, origin, env, use_env)
    }

    /// This view with a daemon change applied.
    pub fn apply(
        &self,
        change: &Change,
        epoch: u64,
        env: &[(String, String)],
        use_env: bool,
    ) -> Self {
        let mut base = self.base.clone();
        for c in &change.changes {
            if let Some(i) = self.catalog.index_of(&c.name) {
                base[i] = current(&c.new, c.new_source.as_ref());
            }
        }
        let origin = Origin::Daemon {
            revision: change.revision,
            epoch,
        };
        Self::with_env(self.catalog.clone(), base, origin, env, use_env)
    }

    fn with_env(
        catalog: Catalog,
        base: Vec<Current>,
        origin: Origin,
        env: &[(String, String)],
        use_env: bool,
    ) -> Self {
        let mut values = base.clone();
        if use_env {
            // One variable at a time, so a bad one is skipped, not fatal.
            for (k, v) in env {
                let Ok(layer) = Layer::from_env(&catalog, LayerKind::ProcessEnv, [(k, v)]) else {
                    tracing::warn!(variable = %k, "ignoring an environment variable whose value does not parse");
                    continue;
                };
                for (name, Sourced { value, source }) in layer.values {
                    if let Some(i) = catalog.index_of(&name) {
                        let canonical_set = values[i].source.layer == LayerKind::ProcessEnv
                            && values[i].source.detail.as_deref() == Some(name.as_str());
                        if !canonical_set {
                            values[i] = Current {
                                value: Some(value),
                                source,
                            };
                        }
                    }
                }
            }
        }
        Self {
            catalog,
            base,
            values,
            origin,
        }
    }

    /// The catalogue this view was built with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
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
        self.catalog.index_of(name).map(|i| &self.values[i])
    }

    /// The setting at `index` in [`Catalog::entries`] (see [`crate::Key`]).
    #[inline]
    pub fn at(&self, index: usize) -> Option<&Current> {
        self.values.get(index)
    }

    /// Every setting with its canonical name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Current)> {
        self.catalog
            .entries()
            .iter()
            .map(|e| e.name.as_str())
            .zip(self.values.iter())
    }

    pub(crate) fn arc(self) -> Arc<Self> {
        Arc::new(self)
    }
}

fn current(shown: &Shown, source: Option<&Source>) -> Current {
    Current {
        value: shown.value().cloned(),
        source: source.cloned().unwrap_or_else(Source::defaults),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_env_overrides_and_canonical_wins() {
        let env = vec![
            ("PREFECT_TASKS_DEFAULT_RETRIES".to_owned(), "4".to_owned()),
            ("PREFECT_TASK_DEFAULT_RETRIES".to_owned(), "3".to_owned()),
            (
                "PREFECT_FLOW_DEFAULT_RETRIES".to_owned(),
                "not a number".to_owned(),
            ),
        ];
        let view = LiveView::local(None, &env, true);
        let r = view.get("PREFECT_TASK_DEFAULT_RETRIES").unwrap();
        assert_eq!(r.value, Some(Value::Integer(4)));
        assert_eq!(r.source.layer, LayerKind::ProcessEnv);
        // The bad variable is skipped, the default stays.
        let f = view.get("PREFECT_FLOWS_DEFAULT_RETRIES").unwrap();
        assert_eq!(f.value, Some(Value::Integer(0)));
        assert_eq!(f.source.layer, LayerKind::Defaults);
        // Switched off, the environment is ignored.
        let off = LiveView::local(None, &env, false);
        assert_eq!(
            off.get("PREFECT_TASKS_DEFAULT_RETRIES").unwrap().value,
            Some(Value::Integer(0))
        );
    }
}
