//! The key layout in etcd (scale-out.md §4) and how values are written.
//!
//! Shared data, under one watched prefix `<root>/v1/`:
//! - `meta/epoch` — the fleet's epoch (random, decimal), written once;
//! - `meta/head` — `S`, the last shared revision; its mod revision is what
//!   every write compares;
//! - `active` — the active profile's name (absent: `default`);
//! - `profiles/<name>` — one profile's table, in TOML (the body of
//!   `[profiles.<name>]` in Prefect's `profiles.toml`);
//! - `log/<S, 20 digits>` — one [`SharedRecord`] per shared revision, as
//!   JSON, the last few thousand kept (trimmed by the writers).
//!
//! The fleet registry lives apart (`<root>/fleet/v1/hosts/<host>`, leased)
//! so that heartbeats never wake the data watch.

use std::collections::BTreeMap;

use cfgd_settings::ProfilesFile;

use crate::store::SharedRecord;

/// Every key cfgd uses, under one root.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    root: String,
}

impl Keys {
    /// The keys under `root` (such as `/cfgd`).
    pub(crate) fn new(root: &str) -> Self {
        Self {
            root: root.trim_end_matches('/').to_owned(),
        }
    }

    /// The shared data's prefix (what the daemon watches).
    pub(crate) fn data(&self) -> String {
        format!("{}/v1/", self.root)
    }

    pub(crate) fn epoch(&self) -> String {
        format!("{}/v1/meta/epoch", self.root)
    }

    pub(crate) fn head(&self) -> String {
        format!("{}/v1/meta/head", self.root)
    }

    pub(crate) fn active(&self) -> String {
        format!("{}/v1/active", self.root)
    }

    /// The profiles' prefix.
    pub(crate) fn profiles(&self) -> String {
        format!("{}/v1/profiles/", self.root)
    }

    pub(crate) fn profile(&self, name: &str) -> String {
        format!("{}{name}", self.profiles())
    }

    /// The records' prefix.
    pub(crate) fn log(&self) -> String {
        format!("{}/v1/log/", self.root)
    }

    /// The key of shared record `seq` (zero-padded, so keys sort as numbers).
    pub(crate) fn record(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.log())
    }

    /// The fleet registry's prefix.
    pub(crate) fn hosts(&self) -> String {
        format!("{}/fleet/v1/hosts/", self.root)
    }

    pub(crate) fn host(&self, id: &str) -> String {
        format!("{}{id}", self.hosts())
    }
}

/// A profile's table as its document.
pub(crate) fn encode_profile(table: &BTreeMap<String, toml::Value>) -> String {
    toml::to_string(table).expect("a profile's table serializes")
}

/// A profile document.
///
/// # Errors
/// A document that is not a TOML table.
pub(crate) fn decode_profile(
    key: &str,
    bytes: &[u8],
) -> Result<BTreeMap<String, toml::Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{key}: not UTF-8: {e}"))?;
    toml::from_str(text).map_err(|e| format!("{key}: not a profile table: {e}"))
}

/// A record as its value.
pub(crate) fn encode_record(r: &SharedRecord) -> Vec<u8> {
    serde_json::to_vec(r).expect("shared records serialize")
}

/// A record's value, read at `mod_revision`.
///
/// # Errors
/// A value that is not a shared record.
pub(crate) fn decode_record(
    key: &str,
    bytes: &[u8],
    mod_revision: i64,
) -> Result<SharedRecord, String> {
    let mut r: SharedRecord = serde_json::from_slice(bytes)
        .map_err(|e| format!("{key}: not a cfgd shared record: {e}"))?;
    r.store_revision = mod_revision;
    Ok(r)
}

/// A decimal counter (`meta/head`, `meta/epoch`).
///
/// # Errors
/// Anything else.
pub(crate) fn decode_number(key: &str, bytes: &[u8]) -> Result<u64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| {
            format!(
                "{key}: expected a number, got {:?}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
            )
        })
}

/// The profiles state from `active` and the profile documents.
pub(crate) fn profiles_of(
    active: Option<String>,
    tables: BTreeMap<String, BTreeMap<String, toml::Value>>,
) -> ProfilesFile {
    ProfilesFile {
        active,
        profiles: tables,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_their_revisions_and_prefixes_end_in_a_slash() {
        let k = Keys::new("/cfgd/");
        assert_eq!(k.head(), "/cfgd/v1/meta/head");
        assert_eq!(k.record(57), "/cfgd/v1/log/00000000000000000057");
        assert!(k.record(9) < k.record(10));
        assert!(k.record(57).starts_with(&k.log()) && k.log().starts_with(&k.data()));
        assert!(
            !k.host("a").starts_with(&k.data()),
            "heartbeats stay out of the data watch"
        );
    }

    #[test]
    fn a_profile_document_is_its_toml_table() {
        let mut t = BTreeMap::new();
        t.insert(
            "PREFECT_TASKS_DEFAULT_RETRIES".to_owned(),
            toml::Value::from("3"),
        );
        let doc = encode_profile(&t);
        assert_eq!(doc, "PREFECT_TASKS_DEFAULT_RETRIES = \"3\"\n");
        assert_eq!(decode_profile("k", doc.as_bytes()).unwrap(), t);
        assert!(
            decode_profile("k", b"= x")
                .unwrap_err()
                .starts_with("k: not a profile table")
        );
    }
}
