//! The embedded store: `log.jsonl` and `epoch` in the state dir, and the
//! `profiles.toml` mirror.
//!
//! Every line of the log is `<CRC-32 of the JSON, 8 hex digits> <JSON>\n`.
//! Line 1 is the checkpoint (`{"format":2,"base":…}`); each later line is
//! one record, their revisions consecutive from the checkpoint's + 1. An
//! append is a single `write` plus `fdatasync`; compaction rewrites the
//! whole log atomically with a later checkpoint.
//!
//! The file may end in NUL bytes: space reserved ahead of the records
//! ([`RESERVE`] at a time, written as zeros), so an append overwrites
//! blocks the file already has and its `fdatasync` flushes that data alone
//! — not the inode and the journal, as a write that grows the file must
//! (etcd's WAL preallocates its segments for the same reason). Reading
//! stops at the reserved tail.
//!
//! Recovery trusts nothing it cannot check. Only a genuinely incomplete
//! *last* line (no newline, and no valid record in it) is a torn append —
//! never acknowledged — and is cut off. Anything else (a bad checksum, a
//! gap or repeat in the revisions, a missing log in a state dir that had
//! one, an epoch that is not the state dir's) refuses to start, naming the
//! file, the line and what is wrong. `--repair-state` keeps the good records
//! before the damage, sets the damaged log aside and begins a new epoch, so
//! no revision is ever issued twice in one epoch.
//!
//! A log written by cfgd 0.1 (no checksums, whole profiles in each record)
//! is read once and rewritten in this format.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cfgd_settings::ProfilesFile;
use cfgd_settings::fs::write_atomic;
use serde::{Deserialize, Serialize};

use super::mirror::Mirror;
use super::{Base, Effective, Numbering, OnDisk, Record, Recovered, Store, StoreError};

pub(super) const LOG_FILE: &str = "log.jsonl";
pub(super) const EPOCH_FILE: &str = "epoch";
const FORMAT: u32 = 2;

/// How much space the log reserves past its records at a time.
const RESERVE: u64 = 256 * 1024;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: u32,
    base: Base,
    /// How the records' revisions are numbered (absent: dense).
    #[serde(default, skip_serializing_if = "is_dense")]
    numbering: Numbering,
}

fn is_dense(n: &Numbering) -> bool {
    *n == Numbering::Dense
}

/// The embedded file store.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    log_path: PathBuf,
    log: Option<File>,
    /// Length of the log up to its last complete line.
    len: u64,
    /// Length of the file: `len` and the zeros reserved after it.
    allocated: u64,
    /// Device and inode of the open log, to notice it being deleted or
    /// replaced under the daemon.
    identity: (u64, u64),
    mirror: Mirror,
    repair: bool,
    numbering: Numbering,
}

/// A recovered log, and what recovery had to mend.
struct Read {
    base: Base,
    records: VecDeque<Record>,
    /// The whole log must be rewritten (a v1 log, or a repair).
    rewrite: bool,
    /// Where the records end (the reserved tail, if any, after).
    len: u64,
}

impl FileStore {
    /// A store with its log in `state_dir` and its profiles at `profiles_path`.
    pub fn new(state_dir: &Path, profiles_path: &Path) -> Self {
        Self {
            dir: state_dir.to_owned(),
            log_path: state_dir.join(LOG_FILE),
            log: None,
            len: 0,
            allocated: 0,
            identity: (0, 0),
            mirror: Mirror::open(state_dir, profiles_path),
            repair: false,
            numbering: Numbering::Dense,
        }
    }

    /// A log whose revisions are numbered as `numbering` says; recovery
    /// refuses a log numbered otherwise (a state dir serves one kind of
    /// store).
    pub fn with_numbering(mut self, numbering: Numbering) -> Self {
        self.numbering = numbering;
        self
    }

    /// The state dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Recovery keeps what it can of a damaged or missing log instead of
    /// refusing to start, and begins a new epoch (`--repair-state`).
    pub fn repairing(mut self) -> Self {
        self.repair = true;
        self
    }

    fn io(&self, action: &'static str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            action,
            path: self.log_path.display().to_string(),
            source,
        }
    }

    fn corrupt(&self, line: usize, message: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.log_path.display().to_string(),
            line,
            message: message.into(),
        }
    }

    /// Opens the log for appends after its records, which end at `len`.
    fn open_append(&mut self, len: u64) -> Result<(), StoreError> {
        let file = OpenOptions::new()
            .write(true)
            .open(&self.log_path)
            .map_err(|e| self.io("cannot open", e))?;
        let meta = file.metadata().map_err(|e| self.io("cannot stat", e))?;
        self.len = len;
        self.allocated = meta.len().max(len);
        self.identity = (meta.dev(), meta.ino());
        self.log = Some(file);
        Ok(())
    }

    /// Reserves space past `needed` (zeros, made durable), so the appends
    /// up to there do not grow the file. Best effort: on a full disk the
    /// log grows with each append instead, as a log without reserve does.
    fn reserve(&mut self, needed: u64) {
        let Some(log) = &self.log else { return };
        let target = (needed + RESERVE).next_multiple_of(4096);
        let zeros = vec![0; usize::try_from(target - self.allocated).unwrap_or(0)];
        match log
            .write_all_at(&zeros, self.allocated)
            .and_then(|()| log.sync_data())
        {
            Ok(()) => self.allocated = target,
            Err(e) => {
                // Give back what part of the zeros was written.
                let _ = log.set_len(self.allocated);
                tracing::debug!(error = %e, log = %self.log_path.display(), "cannot reserve space for the revision log; appending without");
            }
        }
    }

    /// Fails when the open log is no longer the file at its path: the state
    /// dir (or the log) was deleted or replaced under the daemon.
    fn check_identity(&self) -> Result<(), StoreError> {
        let gone = || StoreError::StateDirGone {
            dir: self.dir.display().to_string(),
        };
        let Some(log) = &self.log else {
            return Err(gone());
        };
        let open = log.metadata().map_err(|e| self.io("cannot stat", e))?;
        if open.nlink() == 0 {
            return Err(gone());
        }
        match std::fs::metadata(&self.log_path) {
            Ok(m) if (m.dev(), m.ino()) == self.identity => Ok(()),
            _ => Err(gone()),
        }
    }

    fn write_log(&mut self, base: &Base, records: &[&Record]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(4096);
        let header = Header {
            format: FORMAT,
            base: base.clone(),
            numbering: self.numbering,
        };
        encode_line(
            &serde_json::to_vec(&header).expect("the header serializes"),
            &mut buf,
        );
        for r in records {
            encode_line(&serde_json::to_vec(r).expect("records serialize"), &mut buf);
        }
        write_atomic(&self.log_path, &buf, 0o600).map_err(|e| self.io("cannot write", e))?;
        self.open_append(buf.len() as u64)
    }

    fn epoch_path(&self) -> PathBuf {
        self.dir.join(EPOCH_FILE)
    }

    fn read_epoch(&self) -> Result<Option<u64>, StoreError> {
        let path = self.epoch_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| StoreError::Corrupt {
                    path: path.display().to_string(),
                    line: 1,
                    message: format!(
                        "expected the store's epoch (a number), got {:?}",
                        prefix(&text)
                    ),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io {
                action: "cannot read",
                path: path.display().to_string(),
                source: e,
            }),
        }
    }

    fn write_epoch(&self, epoch: u64) -> Result<(), StoreError> {
        let path = self.epoch_path();
        write_atomic(&path, format!("{epoch}\n").as_bytes(), 0o600).map_err(|e| StoreError::Io {
            action: "cannot write",
            path: path.display().to_string(),
            source: e,
        })
    }

    /// Reads and checks the log; `None` when there is none.
    fn read_log(&mut self) -> Result<Option<Read>, StoreError> {
        let bytes = match std::fs::read(&self.log_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io("cannot read", e)),
        };
        if bytes.first() == Some(&b'{') {
            return self.read_v1(&bytes).map(Some);
        }
        // The records, without the reserved tail.
        let bytes = &bytes[..bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)];
        let mut base: Option<Base> = None;
        let mut records = VecDeque::new();
        let mut mend: Option<Mend> = None;
        let mut pos = 0usize;
        let mut line = 0usize;
        while pos < bytes.len() {
            line += 1;
            let (seg, next) = match bytes[pos..].iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[pos..pos + i], Some(pos + i + 1)),
                None => (&bytes[pos..], None),
            };
            let checked = match (check_line(seg), next) {
                (Ok(json), _) => Ok(json),
                (Err(e), Some(_)) => Err(e),
                // The last line, without its newline: a record whose
                // terminator alone was damaged is whole; anything else is
                // an append that never completed (never acknowledged).
                (Err(e), None) => match seg.split_last() {
                    Some((_, body)) if check_line(body).is_ok() => {
                        mend = Some(Mend::Terminator(pos + body.len()));
                        check_line(body)
                    }
                    _ if line > 1 => {
                        mend = Some(Mend::TornTail(pos));
                        break;
                    }
                    _ => Err(e),
                },
            };
            let parsed = checked.and_then(|json| {
                if line == 1 {
                    let h: Header = serde_json::from_slice(json)
                        .map_err(|e| format!("the checkpoint does not parse: {e}"))?;
                    if h.format != FORMAT {
                        return Err(format!(
                            "log format {} is not one this cfgd reads (format {FORMAT})",
                            h.format
                        ));
                    }
                    if h.numbering != self.numbering {
                        return Err(numbering_mismatch(h.numbering));
                    }
                    base = Some(h.base);
                    return Ok(());
                }
                let r: Record = serde_json::from_slice(json)
                    .map_err(|e| format!("the record does not parse: {e}"))?;
                let prev = records
                    .back()
                    .map_or_else(|| base.as_ref().map_or(0, |b| b.revision), |r: &Record| r.revision);
                if !self.numbering.follows(prev, r.revision) {
                    let expected = match self.numbering {
                        Numbering::Dense => format!("revision {}", prev + 1),
                        Numbering::Fleet => format!("a revision after {prev}"),
                    };
                    return Err(format!(
                        "revision {} where {expected} was expected (a record is missing or repeated)",
                        r.revision
                    ));
                }
                records.push_back(r);
                Ok(())
            });
            match parsed {
                Ok(()) => pos = next.unwrap_or(bytes.len()),
                Err(message) if self.repair && line > 1 => {
                    mend = Some(Mend::Repair { line, message });
                    break;
                }
                Err(message) if self.repair => {
                    let aside = self.set_aside()?;
                    tracing::error!(log = %self.log_path.display(), problem = %message, damaged_copy = %aside.display(), "repairing the state: the log's checkpoint is damaged; beginning a new epoch from the profiles file");
                    return Ok(None);
                }
                Err(message) => return Err(self.corrupt(line, message)),
            }
        }
        let Some(mut base) = base else {
            return Err(self.corrupt(1, "the log is empty: its checkpoint line is missing"));
        };
        let mut rewrite = false;
        let mut len = bytes.len() as u64;
        match mend {
            None => {}
            Some(Mend::TornTail(at)) => {
                len = at as u64;
                tracing::warn!(
                    log = %self.log_path.display(),
                    dropped_bytes = bytes.len() - at,
                    "cutting off an incomplete record at the end of the revision log (an append that never completed, so never acknowledged)"
                );
                self.truncate(at as u64)?;
            }
            Some(Mend::Terminator(at)) => {
                len = at as u64 + 1;
                tracing::warn!(log = %self.log_path.display(), "the last record's line ending was damaged; the record itself is intact and kept");
                self.truncate(at as u64)?;
                let mut f = OpenOptions::new()
                    .append(true)
                    .open(&self.log_path)
                    .map_err(|e| self.io("cannot open", e))?;
                f.write_all(b"\n")
                    .and_then(|()| f.sync_data())
                    .map_err(|e| self.io("cannot repair", e))?;
            }
            Some(Mend::Repair { line, message }) => {
                let aside = self.set_aside()?;
                tracing::error!(
                    log = %self.log_path.display(),
                    line,
                    problem = %message,
                    kept = records.len(),
                    damaged_copy = %aside.display(),
                    "repairing the state: keeping the records before the damage and beginning a new epoch"
                );
                base.epoch = new_epoch();
                rewrite = true;
            }
        }
        Ok(Some(Read {
            base,
            records,
            rewrite,
            len,
        }))
    }

    /// Reads a cfgd 0.1 log (no checksums; whole profiles per record).
    fn read_v1(&mut self, bytes: &[u8]) -> Result<Read, StoreError> {
        #[derive(Deserialize)]
        struct HeaderV1 {
            header: Base,
        }
        #[derive(Deserialize)]
        struct RecordV1 {
            revision: u64,
            time_ms: i64,
            origin: super::Origin,
            detail: String,
            changes: Vec<super::KeyChange>,
            #[serde(default)]
            profiles: Option<ProfilesFile>,
        }
        let mut lines = bytes
            .split_inclusive(|&b| b == b'\n')
            .enumerate()
            .peekable();
        let mut base = None;
        let mut records = VecDeque::new();
        let mut prev = ProfilesFile::default();
        let mut logged = Vec::new();
        while let Some((i, line)) = lines.next() {
            let last = lines.peek().is_none();
            if i == 0 {
                let h: HeaderV1 = serde_json::from_slice(line)
                    .map_err(|e| self.corrupt(1, format!("the 0.1 header does not parse: {e}")))?;
                prev = h.header.profiles.clone();
                logged.push(prev.clone());
                base = Some(h.header);
                continue;
            }
            match serde_json::from_slice::<RecordV1>(line) {
                // 0.1 cut a torn last line off; so does the upgrade.
                _ if last && !line.ends_with(b"\n") => break,
                Err(_) if last => break,
                Err(e) => return Err(self.corrupt(i + 1, e.to_string())),
                Ok(r) => {
                    let delta = match &r.profiles {
                        Some(p) => {
                            let d = prev.diff(p);
                            prev = p.clone();
                            logged.push(p.clone());
                            d
                        }
                        None => Default::default(),
                    };
                    records.push_back(Record {
                        revision: r.revision,
                        time_ms: r.time_ms,
                        origin: r.origin,
                        detail: r.detail,
                        changes: r.changes,
                        profiles: delta,
                        host: None,
                    });
                }
            }
        }
        let base = base.ok_or_else(|| self.corrupt(1, "missing header"))?;
        // 0.1 kept no marker of what it wrote to profiles.toml: a file equal
        // to any state it logged is its own (possibly lagging) copy.
        if !self.mirror.known()
            && let Ok(disk) = ProfilesFile::load(self.mirror.path())
            && logged.contains(&disk)
        {
            self.mirror.adopt(&disk)?;
        }
        tracing::info!(log = %self.log_path.display(), "upgrading a cfgd 0.1 revision log to the checksummed format");
        Ok(Read {
            base,
            records,
            rewrite: true,
            // Rewritten: where its records end does not matter.
            len: 0,
        })
    }

    fn truncate(&self, len: u64) -> Result<(), StoreError> {
        let f = OpenOptions::new()
            .write(true)
            .open(&self.log_path)
            .map_err(|e| self.io("cannot open", e))?;
        f.set_len(len)
            .and_then(|()| f.sync_all())
            .map_err(|e| self.io("cannot truncate", e))
    }

    /// Keeps a copy of a damaged log beside it.
    fn set_aside(&self) -> Result<PathBuf, StoreError> {
        let aside = self
            .dir
            .join(format!("{LOG_FILE}.damaged-{}", crate::writer::now_ms()));
        std::fs::copy(&self.log_path, &aside).map_err(|e| self.io("cannot copy", e))?;
        Ok(aside)
    }

    fn new_store(
        &mut self,
        initial: &dyn Fn(&ProfilesFile) -> BTreeMap<String, Effective>,
    ) -> Result<Recovered, StoreError> {
        // A new store starts from the profiles file as it is (an existing
        // Prefect profiles.toml works as is); an invalid one is reported
        // later and left alone.
        let on_disk = ProfilesFile::load(self.mirror.path()).ok();
        let profiles = on_disk.clone().unwrap_or_default();
        let base = Base {
            epoch: new_epoch(),
            revision: 0,
            effective: initial(&profiles),
            profiles,
        };
        // The log first, then the epoch file: a crash between them leaves a
        // log without an epoch file, which recovery accepts.
        self.write_log(&base, &[])?;
        self.write_epoch(base.epoch)?;
        if let Some(p) = &on_disk {
            self.mirror.adopt(p)?;
        }
        Ok(Recovered {
            base,
            records: VecDeque::new(),
            fresh: true,
        })
    }
}

enum Mend {
    /// Cut the log at this offset (a torn last append).
    TornTail(usize),
    /// The last record is whole but its newline was damaged: cut here and
    /// end the line again.
    Terminator(usize),
    /// `--repair-state`: the log is damaged at this line.
    Repair { line: usize, message: String },
}

impl Store for FileStore {
    fn recover(
        &mut self,
        initial: &dyn Fn(&ProfilesFile) -> BTreeMap<String, Effective>,
    ) -> Result<Recovered, StoreError> {
        let epoch = match self.read_epoch() {
            Err(e) if !self.repair => return Err(e),
            other => other.unwrap_or(None),
        };
        let Some(read) = self.read_log()? else {
            if let Some(epoch) = epoch
                && !self.repair
            {
                return Err(StoreError::LogMissing {
                    path: self.log_path.display().to_string(),
                    dir: self.dir.display().to_string(),
                    epoch,
                });
            }
            if epoch.is_some() {
                tracing::error!(log = %self.log_path.display(), "repairing the state: the revision log is missing; beginning a new epoch from the profiles file");
            }
            return self.new_store(initial);
        };
        let Read {
            mut base,
            records,
            mut rewrite,
            len,
        } = read;
        if let Some(e) = epoch
            && e != base.epoch
        {
            if !self.repair {
                return Err(self.corrupt(
                    1,
                    format!(
                        "the log belongs to epoch {} but the state dir's epoch file says {e} (the log was replaced)",
                        base.epoch
                    ),
                ));
            }
            base.epoch = new_epoch();
            rewrite = true;
        }
        if rewrite {
            let kept: Vec<&Record> = records.iter().collect();
            self.write_log(&base, &kept)?;
        } else {
            self.open_append(len)?;
        }
        if rewrite || epoch != Some(base.epoch) {
            self.write_epoch(base.epoch)?;
        }
        Ok(Recovered {
            base,
            records,
            fresh: false,
        })
    }

    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.check_identity()?;
        let mut buf = Vec::with_capacity(256 * records.len());
        for r in records {
            encode_line(&serde_json::to_vec(r).expect("records serialize"), &mut buf);
        }
        let (len, end) = (self.len, self.len + buf.len() as u64);
        if end > self.allocated {
            self.reserve(end);
        }
        let Some(log) = self.log.as_mut() else {
            return Err(self.io("cannot append to", std::io::Error::other("log not open")));
        };
        match log.write_all_at(&buf, len).and_then(|()| log.sync_data()) {
            Ok(()) => {
                self.len = end;
                self.allocated = self.allocated.max(end);
                Ok(())
            }
            Err(e) => {
                // Cut off whatever part of the batch reached the file (and
                // the reserve with it: the next append reserves again).
                let _ = log.set_len(len);
                self.allocated = len;
                Err(self.io("cannot append to", e))
            }
        }
    }

    fn compact(&mut self, base: &Base, records: &VecDeque<Arc<Record>>) -> Result<(), StoreError> {
        // Never write a log into a state dir that is no longer ours.
        self.check_identity()?;
        let records: Vec<&Record> = records.iter().map(|r| &**r).collect();
        self.write_log(base, &records)
    }

    fn read_profiles(&mut self, state: &ProfilesFile) -> OnDisk {
        self.mirror.read(state)
    }

    fn write_profiles(&mut self, state: &ProfilesFile) -> Result<(), StoreError> {
        // The marker lives in the state dir: never recreate a deleted one.
        self.check_identity()?;
        self.mirror.write(state)
    }

    fn profiles_path(&self) -> String {
        self.mirror.path().display().to_string()
    }

    fn log_path(&self) -> String {
        self.log_path.display().to_string()
    }
}

/// Why a log of the other numbering is refused.
fn numbering_mismatch(found: Numbering) -> String {
    match found {
        Numbering::Dense => "the log belongs to the file store (--store file); the etcd store keeps its own log: give it a state dir of its own (--state-dir)".into(),
        Numbering::Fleet => "the log belongs to the etcd store (--store etcd://…); the file store keeps its own log: give it a state dir of its own (--state-dir), or start with the same --store".into(),
    }
}

/// Appends `<crc> <json>\n` to `out`.
fn encode_line(json: &[u8], out: &mut Vec<u8>) {
    let _ = write!(out, "{:08x} ", crc32fast::hash(json));
    out.extend_from_slice(json);
    out.push(b'\n');
}

/// The JSON of a line (without its newline) whose checksum matches.
fn check_line(line: &[u8]) -> Result<&[u8], String> {
    let Some((crc, json)) = line.split_at_checked(8) else {
        return Err("the line is too short to be a record".into());
    };
    let Some(json) = json.strip_prefix(b" ") else {
        return Err("expected an 8-digit checksum, a space and a JSON record".into());
    };
    let crc = std::str::from_utf8(crc)
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .ok_or("expected an 8-digit hexadecimal checksum at the start of the line")?;
    if crc32fast::hash(json) != crc {
        return Err("checksum mismatch: the line was altered or only partly written".into());
    }
    Ok(json)
}

/// At most the first 40 characters of `s`, for error messages.
fn prefix(s: &str) -> String {
    let mut p: String = s.chars().take(40).collect();
    if p.len() < s.len() {
        p.push('…');
    }
    p
}

fn new_epoch() -> u64 {
    // Never 0, so "no epoch" stays distinguishable on the wire.
    rand::random::<u64>().max(1)
}

#[cfg(test)]
mod tests;
