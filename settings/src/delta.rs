//! What changed in the profile layer: a [`ProfilesDelta`] between two
//! [`ProfilesFile`]s, small enough to log with every revision.
//!
//! A change record carries the delta, never the whole profiles state, so a
//! one-integer `Set` costs the same whatever else the profiles hold. The
//! same deltas describe an edit that Prefect (or a person) made to
//! `profiles.toml`: `diff(last known, on disk)` applied over cfgd's own
//! state is a read-modify-write that loses neither side's change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::profiles::{ProfilesFile, stored};
use crate::value::Value;

/// The change from one profiles state to another. Applying it is
/// idempotent: [`ProfilesFile::apply`] of a delta twice gives the same file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesDelta {
    /// The new `active = …` value, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveChange>,
    /// Profiles removed whole (applied before `profiles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Profiles created or changed; a profile that does not exist is
    /// created (possibly empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, TableChange>,
}

/// The `active = …` line after a change (`None`: the line is gone, so the
/// `default` profile is active).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveChange {
    /// The active profile's name.
    pub to: Option<String>,
}

/// What changed inside one profile's table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableChange {
    /// Keys written, with their stored value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub put: BTreeMap<String, toml::Value>,
    /// Keys removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl ProfilesDelta {
    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.active.is_none() && self.removed.is_empty() && self.profiles.is_empty()
    }

    /// Whether applying the delta changes the active profile's values or
    /// which profile is active.
    pub fn touches_active(&self, active_before: &str) -> bool {
        self.active.is_some()
            || self.removed.iter().any(|p| p == active_before)
            || self.profiles.contains_key(active_before)
    }

    /// The names of the profiles it creates, changes or removes.
    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.removed
            .iter()
            .map(String::as_str)
            .chain(self.profiles.keys().map(String::as_str))
    }
}

impl ProfilesFile {
    /// The delta that turns `self` into `after`.
    pub fn diff(&self, after: &ProfilesFile) -> ProfilesDelta {
        let mut delta = ProfilesDelta::default();
        if self.active != after.active {
            delta.active = Some(ActiveChange {
                to: after.active.clone(),
            });
        }
        for name in self.profiles.keys() {
            if !after.profiles.contains_key(name) {
                delta.removed.push(name.clone());
            }
        }
        for (name, new) in &after.profiles {
            let change = match self.profiles.get(name) {
                None => TableChange {
                    put: new.clone(),
                    remove: Vec::new(),
                },
                Some(old) if old == new => continue,
                Some(old) => TableChange {
                    put: new
                        .iter()
                        .filter(|(k, v)| old.get(*k) != Some(*v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    remove: old
                        .keys()
                        .filter(|k| !new.contains_key(*k))
                        .cloned()
                        .collect(),
                },
            };
            delta.profiles.insert(name.clone(), change);
        }
        delta
    }

    /// Applies `delta` (see [`ProfilesFile::diff`]).
    pub fn apply(&mut self, delta: &ProfilesDelta) {
        if let Some(a) = &delta.active {
            self.active = a.to.clone();
        }
        for name in &delta.removed {
            self.profiles.remove(name);
        }
        for (name, change) in &delta.profiles {
            let table = self.profiles.entry(name.clone()).or_default();
            for k in &change.remove {
                table.remove(k);
            }
            for (k, v) in &change.put {
                table.insert(k.clone(), v.clone());
            }
        }
    }

    /// The delta that stores `value` under the canonical `name` in
    /// `profile`, removing any alias spelling of it (as Prefect does), or an
    /// empty delta when the profile already holds exactly that.
    pub fn set_delta(
        &self,
        catalog: &Catalog,
        profile: &str,
        name: &str,
        value: &Value,
    ) -> ProfilesDelta {
        let table = self.profiles.get(profile);
        let held = |k: &str| table.and_then(|t| t.get(k));
        let mut change = TableChange::default();
        if let Some(entry) = catalog.get(name) {
            change.remove = entry
                .aliases
                .iter()
                .filter(|a| held(a).is_some())
                .cloned()
                .collect();
        }
        let new = stored(catalog, name, value);
        if held(name) != Some(&new) {
            change.put.insert(name.to_owned(), new);
        }
        let mut delta = ProfilesDelta::default();
        if !change.put.is_empty() || !change.remove.is_empty() || table.is_none() {
            delta.profiles.insert(profile.to_owned(), change);
        }
        delta
    }

    /// Merges `later` into `delta` so that applying the result equals
    /// applying `delta` then `later`.
    pub fn merge_delta(delta: &mut ProfilesDelta, later: ProfilesDelta) {
        if later.active.is_some() {
            delta.active = later.active;
        }
        for name in later.removed {
            delta.profiles.remove(&name);
            if !delta.removed.contains(&name) {
                delta.removed.push(name);
            }
        }
        for (name, change) in later.profiles {
            let t = delta.profiles.entry(name).or_default();
            for k in change.remove {
                t.put.remove(&k);
                if !t.remove.contains(&k) {
                    t.remove.push(k);
                }
            }
            for (k, v) in change.put {
                t.remove.retain(|r| *r != k);
                t.put.insert(k, v);
            }
        }
    }

    /// Bytes the profiles take as stored: every name and value, roughly as
    /// they appear in the file (what the daemon's profile-size limit counts).
    pub fn stored_bytes(&self) -> usize {
        self.profiles
            .iter()
            .map(|(name, table)| {
                name.len()
                    + table
                        .iter()
                        .map(|(k, v)| k.len() + value_bytes(v))
                        .sum::<usize>()
            })
            .sum()
    }
}

impl ProfilesFile {
    /// [`ProfilesFile::stored_bytes`] and the number of profiles after
    /// applying `delta`, without applying it.
    pub fn size_after(&self, delta: &ProfilesDelta) -> (usize, usize) {
        let table_bytes = |t: &std::collections::BTreeMap<String, toml::Value>| {
            t.iter()
                .map(|(k, v)| k.len() + value_bytes(v))
                .sum::<usize>()
        };
        let mut bytes = self.stored_bytes() as isize;
        let mut count = self.profiles.len() as isize;
        let mut gone: Vec<&str> = Vec::new();
        for name in &delta.removed {
            if let Some(t) = self.profiles.get(name) {
                bytes -= (name.len() + table_bytes(t)) as isize;
                count -= 1;
                gone.push(name);
            }
        }
        for (name, change) in &delta.profiles {
            let old = self
                .profiles
                .get(name)
                .filter(|_| !gone.contains(&name.as_str()));
            if old.is_none() {
                bytes += name.len() as isize;
                count += 1;
            }
            let held = |k: &str| old.and_then(|t| t.get(k));
            for k in &change.remove {
                if let Some(v) = held(k)
                    && !change.put.contains_key(k)
                {
                    bytes -= (k.len() + value_bytes(v)) as isize;
                }
            }
            for (k, v) in &change.put {
                if let Some(o) = held(k) {
                    bytes -= (k.len() + value_bytes(o)) as isize;
                }
                bytes += (k.len() + value_bytes(v)) as isize;
            }
        }
        (bytes.max(0) as usize, count.max(0) as usize)
    }
}

fn value_bytes(v: &toml::Value) -> usize {
    match v {
        toml::Value::String(s) => s.len() + 2,
        toml::Value::Array(a) => 2 + a.iter().map(|x| value_bytes(x) + 2).sum::<usize>(),
        toml::Value::Table(t) => t.iter().map(|(k, v)| k.len() + value_bytes(v)).sum(),
        other => other.to_string().len(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn file(active: Option<&str>, profiles: &[(&str, &[(&str, &str)])]) -> ProfilesFile {
        ProfilesFile {
            active: active.map(str::to_owned),
            profiles: profiles
                .iter()
                .map(|(n, kv)| {
                    (
                        n.to_string(),
                        kv.iter()
                            .map(|(k, v)| (k.to_string(), toml::Value::from(*v)))
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_delta_holds_only_what_changed() {
        let big = "x".repeat(60_000);
        let before = file(
            Some("a"),
            &[
                ("a", &[("K1", "1"), ("BIG", &big)]),
                ("b", &[("BIG", &big)]),
            ],
        );
        let mut after = before.clone();
        after
            .profiles
            .get_mut("a")
            .unwrap()
            .insert("K1".into(), "2".into());
        let delta = before.diff(&after);
        let json = serde_json::to_string(&delta).unwrap();
        assert_eq!(json, r#"{"profiles":{"a":{"put":{"K1":"2"}}}}"#);
        let mut again = before.clone();
        again.apply(&delta);
        assert_eq!(again, after);
    }

    #[test]
    fn set_delta_stores_the_canonical_name_and_drops_aliases() {
        let catalog = Catalog::builtin();
        let before = file(
            Some("default"),
            &[("default", &[("PREFECT_TASK_DEFAULT_RETRIES", "1")])],
        );
        let d = before.set_delta(
            &catalog,
            "default",
            "PREFECT_TASKS_DEFAULT_RETRIES",
            &Value::Integer(1),
        );
        let mut after = before.clone();
        after.apply(&d);
        assert_eq!(
            after.values("default").keys().collect::<Vec<_>>(),
            ["PREFECT_TASKS_DEFAULT_RETRIES"]
        );
        // Setting what is already stored changes nothing.
        assert!(
            after
                .set_delta(
                    &catalog,
                    "default",
                    "PREFECT_TASKS_DEFAULT_RETRIES",
                    &Value::Integer(1)
                )
                .is_empty()
        );
        // A profile that does not exist yet is created.
        let d = after.set_delta(
            &catalog,
            "new",
            "PREFECT_TASKS_DEFAULT_RETRIES",
            &Value::Integer(3),
        );
        assert!(d.profiles.contains_key("new"));
    }

    fn arb_file() -> impl Strategy<Value = ProfilesFile> {
        let table = prop::collection::btree_map("[A-C]", "[0-2]", 0..3);
        (
            prop::option::of("[a-c]"),
            prop::collection::btree_map("[a-c]", table, 0..3),
        )
            .prop_map(|(active, profiles)| ProfilesFile {
                active,
                profiles: profiles
                    .into_iter()
                    .map(|(n, t)| {
                        (
                            n,
                            t.into_iter()
                                .map(|(k, v)| (k, toml::Value::from(v)))
                                .collect(),
                        )
                    })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn apply_of_diff_gives_the_target_and_survives_a_round_trip(a in arb_file(), b in arb_file()) {
            let delta = a.diff(&b);
            let json = serde_json::to_string(&delta).unwrap();
            let back: ProfilesDelta = serde_json::from_str(&json).unwrap();
            let mut got = a.clone();
            got.apply(&back);
            prop_assert_eq!(&got, &b);
            got.apply(&back);
            prop_assert_eq!(&got, &b);
            prop_assert_eq!(delta.is_empty(), a == b);
        }

        #[test]
        fn size_after_equals_the_size_of_the_result(a in arb_file(), b in arb_file()) {
            let delta = a.diff(&b);
            prop_assert_eq!(a.size_after(&delta), (b.stored_bytes(), b.profiles.len()));
        }

        #[test]
        fn merged_deltas_equal_applying_both(a in arb_file(), b in arb_file(), c in arb_file()) {
            let mut merged = a.diff(&b);
            ProfilesFile::merge_delta(&mut merged, b.diff(&c));
            let mut got = a.clone();
            got.apply(&merged);
            prop_assert_eq!(got, c);
        }
    }
}
