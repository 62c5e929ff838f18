//! [`Key`]: a setting name resolved once, so a read skips the name lookup.
//!
//! An index is only good for the catalogue it was taken from, and a
//! `catalog.d` change can reorder the catalogue under a running service.
//! So a key remembers the catalogue generation of its index, and a read
//! that finds another generation looks the name up again (once per key and
//! generation). The check is one relaxed load and one integer compare.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::view::LiveView;

/// No such setting in that generation's catalogue.
const ABSENT: u32 = u32::MAX;

/// A resolved setting name: reading through a key skips the name lookup,
/// and stays right when the catalogue changes. Cheap to clone.
pub struct Key {
    name: Arc<str>,
    /// `generation << 32 | index` (the generation's low 32 bits: a key
    /// would have to sleep through 2^32 catalogue changes to be fooled).
    at: AtomicU64,
}

fn pack(generation: u64, index: u32) -> u64 {
    (generation << 32) | u64::from(index)
}

impl Key {
    /// A key for `name` as `view`'s catalogue has it; `None` for a name it
    /// does not know.
    pub(super) fn new(view: &LiveView, name: &str) -> Option<Self> {
        let index = view.catalog().index_of(name)?;
        let canonical = &view.catalog().entries()[index].name;
        Some(Self {
            name: canonical.as_str().into(),
            at: AtomicU64::new(pack(view.catalog_generation(), index as u32)),
        })
    }

    /// The setting's canonical name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's index in `view`'s catalogue, looked up again when the
    /// catalogue is not the one the key last saw.
    #[inline]
    pub(super) fn index_in(&self, view: &LiveView) -> Option<usize> {
        let at = self.at.load(Ordering::Relaxed);
        let index = if at >> 32 == view.catalog_generation() & 0xffff_ffff {
            at as u32
        } else {
            self.refresh(view)
        };
        (index != ABSENT).then_some(index as usize)
    }

    #[cold]
    fn refresh(&self, view: &LiveView) -> u32 {
        let index = view
            .catalog()
            .index_of(&self.name)
            .map_or(ABSENT, |i| i as u32);
        self.at
            .store(pack(view.catalog_generation(), index), Ordering::Relaxed);
        index
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            at: AtomicU64::new(self.at.load(Ordering::Relaxed)),
        }
    }
}

/// Keys are equal when they name the same setting.
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Key").field(&self.name).finish()
    }
}
