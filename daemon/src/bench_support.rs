//! Internals for the write-path benches (`daemon/benches/write_path.rs`),
//! behind the `bench-internals` feature: not an API, and not built into
//! the daemon.
//!
//! [`WritePath`] drives the [`Core`](crate::core::Core) alone — validate,
//! `Set`, the record — with no I/O, so its instruction count is the cost of
//! a write's work as the catalogue grows (fsync, the log and the publish
//! come on top, and are measured end to end by `bench/`).

use std::path::Path;
use std::sync::Arc;

use cfgd_settings::{ConfigDir, ProfilesFile};

use crate::core::{Core, Input};

/// A core over a config dir, written to one setting at a time.
#[derive(Debug)]
pub struct WritePath {
    core: Core,
    name: String,
}

impl WritePath {
    /// A core over `config_dir` (its catalogue and value files), with no
    /// environment and an empty profile; each [`WritePath::set`] writes
    /// `name`.
    ///
    /// # Panics
    /// When `name` is not a setting of the config dir's catalogue.
    pub fn new(config_dir: &Path, name: &str) -> Self {
        let core = Core::new(
            ConfigDir::load(config_dir),
            Arc::new(Vec::new()),
            ProfilesFile::default(),
            1,
            0,
        );
        assert!(
            core.catalog().get(name).is_some(),
            "{name} is not a setting"
        );
        Self {
            core,
            name: name.to_owned(),
        }
    }

    /// How many settings the catalogue holds.
    pub fn settings(&self) -> usize {
        self.core.catalog().entries().len()
    }

    /// One `Set` of the setting to `value` (as the string a client sends):
    /// validated, applied, and its record built. Returns how many effective
    /// changes the record holds.
    ///
    /// # Panics
    /// When the value is refused.
    pub fn set(&mut self, value: u64) -> usize {
        let batch = self
            .core
            .validate(&[(self.name.clone(), Input::Raw(value.to_string()))])
            .expect("a valid value");
        let record = self
            .core
            .set_in(&batch, None, None, 0)
            .expect("the set applies");
        record.map_or(0, |r| r.changes.len())
    }
}
