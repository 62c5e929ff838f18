//! The embedded store: `log.jsonl` in the state dir and a `profiles.toml`.
//!
//! `log.jsonl` starts with a header line (`{"header": Base}`) followed by
//! one JSON record per line. Appends are a single `write` plus `fsync`; a
//! torn last line (a crash mid-append, never acknowledged) is cut off on
//! recovery. Compaction rewrites the whole log atomically.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use cfgd_settings::ProfilesFile;
use cfgd_settings::fs::write_atomic;
use serde::{Deserialize, Serialize};

use super::{Base, Effective, Record, Recovered, Store, StoreError};

const LOG_FILE: &str = "log.jsonl";

#[derive(Serialize, Deserialize)]
struct Header {
    header: Base,
}

/// The embedded file store.
#[derive(Debug)]
pub struct FileStore {
    log_path: PathBuf,
    profiles_path: PathBuf,
    log: Option<File>,
    /// Length of the log up to its last complete line.
    len: u64,
}

impl FileStore {
    /// A store with its log in `state_dir` and its profiles at `profiles_path`.
    pub fn new(state_dir: &Path, profiles_path: &Path) -> Self {
        Self {
            log_path: state_dir.join(LOG_FILE),
            profiles_path: profiles_path.to_owned(),
            log: None,
            len: 0,
        }
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: self.log_path.display().to_string(),
            source,
        }
    }

    fn open_append(&mut self) -> Result<(), StoreError> {
        let file = OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .map_err(|e| self.io("cannot open", e))?;
        self.len = file
            .metadata()
            .map_err(|e| self.io("cannot stat", e))?
            .len();
        self.log = Some(file);
        Ok(())
    }

    fn write_log(&mut self, base: &Base, records: &VecDeque<Record>) -> Result<(), StoreError> {
        let mut text = serde_json::to_string(&Header {
            header: base.clone(),
        })
        .expect("the header serializes");
        text.push('\n');
        for r in records {
            text.push_str(&serde_json::to_string(r).expect("records serialize"));
            text.push('\n');
        }
        write_atomic(&self.log_path, text.as_bytes(), 0o600)
            .map_err(|e| self.io("cannot write", e))?;
        self.open_append()
    }

    fn read_log(&mut self) -> Result<Option<(Base, VecDeque<Record>)>, StoreError> {
        let bytes = match std::fs::read(&self.log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("cannot read", e)),
        };
        let path = self.log_path.display().to_string();
        let corrupt = |line: usize, message: String| StoreError::Corrupt {
            path: path.clone(),
            line,
            message,
        };
        let mut base = None;
        let mut records = VecDeque::new();
        let mut good_len = 0usize;
        let mut lines = bytes
            .split_inclusive(|&b| b == b'\n')
            .enumerate()
            .peekable();
        while let Some((i, line)) = lines.next() {
            let last = lines.peek().is_none();
            let complete = line.ends_with(b"\n");
            let parsed = if i == 0 {
                serde_json::from_slice::<Header>(line).map(|h| base = Some(h.header))
            } else {
                serde_json::from_slice::<Record>(line).map(|r| records.push_back(r))
            };
            match parsed {
                Ok(()) if complete => good_len += line.len(),
                // A torn final append was never acknowledged: drop it.
                _ if last && i > 0 => break,
                Ok(()) => return Err(corrupt(i + 1, "the header line is incomplete".into())),
                Err(e) => return Err(corrupt(i + 1, e.to_string())),
            }
        }
        let Some(base) = base else {
            return Err(corrupt(1, "missing header".into()));
        };
        if good_len < bytes.len() {
            tracing::warn!(
                log = %path,
                dropped_bytes = bytes.len() - good_len,
                "dropping an incomplete record at the end of the revision log (a write that was never acknowledged)"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(&self.log_path)
                .map_err(|e| self.io("cannot open", e))?;
            f.set_len(good_len as u64)
                .and_then(|()| f.sync_all())
                .map_err(|e| self.io("cannot truncate", e))?;
        }
        Ok(Some((base, records)))
    }
}

impl Store for FileStore {
    fn recover(
        &mut self,
        initial: &dyn Fn(&ProfilesFile) -> BTreeMap<String, Effective>,
    ) -> Result<Recovered, StoreError> {
        let on_disk = ProfilesFile::load(&self.profiles_path)?;
        let Some((base, records)) = self.read_log()? else {
            let base = Base {
                epoch: new_epoch(),
                revision: 0,
                effective: initial(&on_disk),
                profiles: on_disk.clone(),
            };
            self.write_log(&base, &VecDeque::new())?;
            return Ok(Recovered {
                base,
                records: VecDeque::new(),
                profiles: on_disk,
                fresh: true,
            });
        };
        self.open_append()?;
        let logged = records
            .iter()
            .rev()
            .find_map(|r| r.profiles.as_ref())
            .unwrap_or(&base.profiles)
            .clone();
        let file_exists = self.profiles_path.exists();
        let stale = !file_exists
            || std::iter::once(&base.profiles)
                .chain(records.iter().filter_map(|r| r.profiles.as_ref()))
                .any(|p| *p == on_disk);
        let profiles = if on_disk == logged {
            on_disk
        } else if stale {
            // A crash between the log append and the profiles write: the log wins.
            tracing::info!(path = %self.profiles_path.display(), "restoring the profiles file from the revision log");
            self.write_profiles(&logged)?;
            logged
        } else {
            tracing::info!(
                path = %self.profiles_path.display(),
                "the profiles file was edited while cfgd was down; taking its content"
            );
            on_disk
        };
        Ok(Recovered {
            base,
            records,
            profiles,
            fresh: false,
        })
    }

    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(256 * records.len());
        for r in records {
            serde_json::to_writer(&mut buf, r).expect("records serialize");
            buf.push(b'\n');
        }
        let len = self.len;
        let Some(log) = self.log.as_mut() else {
            return Err(self.io("cannot append to", std::io::Error::other("log not open")));
        };
        let result = log.write_all(&buf).and_then(|()| log.sync_data());
        match result {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part of the batch reached the file.
                let _ = log.set_len(len);
                Err(self.io("cannot append to", e))
            }
        }
    }

    fn compact(&mut self, base: &Base, records: &VecDeque<Record>) -> Result<(), StoreError> {
        self.write_log(base, records)
    }

    fn write_profiles(&mut self, profiles: &ProfilesFile) -> Result<(), StoreError> {
        Ok(profiles.save(&self.profiles_path)?)
    }

    fn profiles_path(&self) -> String {
        self.profiles_path.display().to_string()
    }
}

fn new_epoch() -> u64 {
    // Never 0, so "no epoch" stays distinguishable on the wire.
    rand::random::<u64>().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Origin;

    fn record(revision: u64, profiles: Option<ProfilesFile>) -> Record {
        Record {
            revision,
            time_ms: 0,
            origin: Origin::Set,
            detail: String::new(),
            changes: Vec::new(),
            profiles,
        }
    }

    fn with_active(name: &str) -> ProfilesFile {
        let mut p = ProfilesFile::default();
        p.create(name, None).unwrap();
        p.use_profile(name).unwrap();
        p
    }

    #[test]
    fn recovers_records_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles.toml");
        let mut s = FileStore::new(dir.path(), &profiles);
        let fresh = s.recover(&|_| BTreeMap::new()).unwrap();
        assert!(fresh.fresh);
        s.append(&[record(1, None), record(2, None)]).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(LOG_FILE))
            .unwrap();
        f.write_all(b"{\"revision\":3,\"ti").unwrap();
        drop(f);

        let mut again = FileStore::new(dir.path(), &profiles);
        let r = again.recover(&|_| BTreeMap::new()).unwrap();
        assert!(!r.fresh);
        assert_eq!(r.base.epoch, fresh.base.epoch);
        assert_eq!(
            r.records.iter().map(|r| r.revision).collect::<Vec<_>>(),
            [1, 2]
        );
        again.append(&[record(3, None)]).unwrap();
        let r = FileStore::new(dir.path(), &profiles)
            .recover(&|_| BTreeMap::new())
            .unwrap();
        assert_eq!(r.records.len(), 3);
    }

    #[test]
    fn a_stale_profiles_file_is_repaired_and_an_edited_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let mut s = FileStore::new(dir.path(), &path);
        s.recover(&|_| BTreeMap::new()).unwrap();
        // Logged, then "crashed" before the profiles file was written.
        s.append(&[record(1, Some(with_active("dev")))]).unwrap();
        let r = FileStore::new(dir.path(), &path)
            .recover(&|_| BTreeMap::new())
            .unwrap();
        assert_eq!(r.profiles.active_name(), "dev");
        assert_eq!(ProfilesFile::load(&path).unwrap().active_name(), "dev");
        // Edited by hand to something never logged: the edit is kept.
        with_active("ops").save(&path).unwrap();
        let r = FileStore::new(dir.path(), &path)
            .recover(&|_| BTreeMap::new())
            .unwrap();
        assert_eq!(r.profiles.active_name(), "ops");
    }

    #[test]
    fn compaction_keeps_base_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let mut s = FileStore::new(dir.path(), &path);
        let rec = s.recover(&|_| BTreeMap::new()).unwrap();
        let mut base = rec.base.clone();
        s.append(&[record(1, None), record(2, None), record(3, None)])
            .unwrap();
        base.absorb(&record(1, None));
        base.absorb(&record(2, None));
        s.compact(&base, &VecDeque::from([record(3, None)]))
            .unwrap();
        s.append(&[record(4, None)]).unwrap();
        let r = FileStore::new(dir.path(), &path)
            .recover(&|_| BTreeMap::new())
            .unwrap();
        assert_eq!(r.base.revision, 2);
        assert_eq!(
            r.records.iter().map(|r| r.revision).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    #[test]
    fn a_corrupt_middle_line_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profiles.toml");
        let mut s = FileStore::new(dir.path(), &path);
        s.recover(&|_| BTreeMap::new()).unwrap();
        s.append(&[record(1, None)]).unwrap();
        let log = dir.path().join(LOG_FILE);
        let mut text = std::fs::read_to_string(&log).unwrap();
        text.push_str("garbage\n{}\n");
        std::fs::write(&log, text).unwrap();
        let err = FileStore::new(dir.path(), &path)
            .recover(&|_| BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3: corrupt revision log"), "{err}");
    }
}
