use std::collections::BTreeMap;

use cfgd_settings::Catalog;
use proptest::prelude::*;

use super::*;
use crate::store::{KeyChange, Origin};

const RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn profiles(&self) -> PathBuf {
        self.dir.path().join("profiles.toml")
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }
    fn store(&self) -> FileStore {
        FileStore::new(self.dir.path(), &self.profiles())
    }
    fn recover(&self) -> Result<Recovered, StoreError> {
        self.store().recover(&|_| BTreeMap::new())
    }
    /// The log's records: the file without its reserved tail of zeros.
    fn log_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.log()).unwrap();
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        bytes.truncate(end);
        bytes
    }
    fn set_log(&self, bytes: &[u8]) {
        std::fs::write(self.log(), bytes).unwrap();
    }
}

/// A `Set` of retries to `n` in the default profile, as the core records it.
fn set(profiles: &mut ProfilesFile, revision: u64, n: i64) -> Record {
    let catalog = Catalog::builtin();
    let delta = profiles.set_delta(
        &catalog,
        "default",
        RETRIES,
        &cfgd_settings::Value::Integer(n),
    );
    profiles.apply(&delta);
    Record {
        revision,
        time_ms: 1_000 + revision as i64,
        origin: Origin::Set,
        detail: RETRIES.into(),
        changes: vec![KeyChange {
            name: RETRIES.into(),
            old: None,
            new: Some(Effective {
                value: Some(cfgd_settings::Value::Integer(n)),
                source: cfgd_settings::Source::profile("default"),
            }),
            secret: false,
        }],
        profiles: delta,
        host: None,
    }
}

/// A store holding records 1..=n (retries set to 1..=n), and its profiles.
fn with_records(n: u64) -> (Dir, ProfilesFile, Vec<Record>) {
    let d = Dir::new();
    let mut s = d.store();
    s.recover(&|_| BTreeMap::new()).unwrap();
    let mut profiles = ProfilesFile::default();
    let records: Vec<Record> = (1..=n).map(|r| set(&mut profiles, r, r as i64)).collect();
    for r in &records {
        s.append(std::slice::from_ref(r)).unwrap();
    }
    (d, profiles, records)
}

fn revisions(r: &Recovered) -> Vec<u64> {
    r.records.iter().map(|r| r.revision).collect()
}

fn corrupt_line(e: StoreError) -> (usize, String) {
    match e {
        StoreError::Corrupt { line, message, .. } => (line, message),
        other => panic!("expected a corrupt log, got {other}"),
    }
}

#[test]
fn recovers_records_and_cuts_a_torn_tail() {
    let (d, profiles, _) = with_records(2);
    let mut f = OpenOptions::new().append(true).open(d.log()).unwrap();
    f.write_all(b"0badf00d {\"revision\":3,\"ti").unwrap();
    drop(f);
    let r = d.recover().unwrap();
    assert!(!r.fresh);
    assert_eq!(revisions(&r), [1, 2]);
    assert_eq!(r.profiles(), profiles);
    // The tail is gone from the file, so the next append follows record 2.
    let mut s = d.store();
    s.recover(&|_| BTreeMap::new()).unwrap();
    let mut p = profiles.clone();
    s.append(&[set(&mut p, 3, 3)]).unwrap();
    assert_eq!(revisions(&d.recover().unwrap()), [1, 2, 3]);
}

#[test]
fn appends_overwrite_reserved_space_instead_of_growing_the_file() {
    let (d, profiles, _) = with_records(1);
    let size = std::fs::metadata(d.log()).unwrap().len();
    let records = d.log_bytes().len() as u64;
    assert!(
        size >= records + RESERVE,
        "{size} bytes on disk for {records} of records"
    );
    let mut s = d.store();
    s.recover(&|_| BTreeMap::new()).unwrap();
    let mut p = profiles.clone();
    for r in 2..=20 {
        s.append(&[set(&mut p, r, r as i64)]).unwrap();
    }
    assert_eq!(
        std::fs::metadata(d.log()).unwrap().len(),
        size,
        "the appends fit in the reserve"
    );
    let r = d.recover().unwrap();
    assert_eq!(revisions(&r), (1..=20).collect::<Vec<_>>());
    assert_eq!(r.profiles(), p);
}

#[test]
fn a_torn_append_inside_the_reserve_is_cut_off_and_written_over() {
    let (d, profiles, _) = with_records(2);
    let at = d.log_bytes().len() as u64;
    let f = OpenOptions::new().write(true).open(d.log()).unwrap();
    f.write_all_at(b"0badf00d {\"revision\":3,\"ti", at)
        .unwrap();
    drop(f);
    let mut s = d.store();
    assert_eq!(revisions(&s.recover(&|_| BTreeMap::new()).unwrap()), [1, 2]);
    let mut p = profiles.clone();
    s.append(&[set(&mut p, 3, 3)]).unwrap();
    assert_eq!(revisions(&d.recover().unwrap()), [1, 2, 3]);
}

#[test]
fn a_whole_last_record_with_a_damaged_line_ending_is_kept() {
    let (d, profiles, _) = with_records(3);
    let mut bytes = d.log_bytes();
    *bytes.last_mut().unwrap() = b'#';
    d.set_log(&bytes);
    let r = d.recover().unwrap();
    assert_eq!(revisions(&r), [1, 2, 3]);
    assert_eq!(r.profiles(), profiles);
    assert!(d.log_bytes().ends_with(b"}\n"));
}

#[test]
fn a_line_cut_in_the_middle_of_the_log_refuses_to_start() {
    let (d, _, _) = with_records(4);
    let text = String::from_utf8(d.log_bytes()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Line 3 (record 2) loses its second half; the records after it stay.
    let cut = &lines[2][..lines[2].len() / 2];
    let damaged = format!(
        "{}\n{}\n{cut}\n{}\n{}\n",
        lines[0], lines[1], lines[3], lines[4]
    );
    d.set_log(damaged.as_bytes());
    let (line, message) = corrupt_line(d.recover().unwrap_err());
    assert_eq!(line, 3);
    assert!(message.contains("checksum mismatch"), "{message}");
}

#[test]
fn a_changed_number_is_caught_by_the_checksum() {
    let (d, _, _) = with_records(3);
    let text = String::from_utf8(d.log_bytes()).unwrap();
    let altered = text.replacen("\"revision\":2", "\"revision\":7", 1);
    d.set_log(altered.as_bytes());
    let err = d.recover().unwrap_err();
    assert!(
        err.to_string().contains("line 3: corrupt revision log"),
        "{err}"
    );
    assert!(err.to_string().contains("--repair-state"), "{err}");
}

#[test]
fn a_repeated_or_missing_revision_refuses_to_start() {
    let (d, _, _) = with_records(3);
    let text = String::from_utf8(d.log_bytes()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Record 2 twice: every line checks out on its own.
    let repeated = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        lines[0], lines[1], lines[2], lines[2], lines[3]
    );
    d.set_log(repeated.as_bytes());
    let (line, message) = corrupt_line(d.recover().unwrap_err());
    assert_eq!(line, 4);
    assert_eq!(
        message,
        "revision 2 where revision 3 was expected (a record is missing or repeated)"
    );
    // Record 2 missing.
    let missing = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[3]);
    d.set_log(missing.as_bytes());
    assert_eq!(corrupt_line(d.recover().unwrap_err()).0, 3);
}

#[test]
fn a_garbled_field_name_is_not_read_as_unset() {
    let (d, _, _) = with_records(2);
    let text = String::from_utf8(d.log_bytes()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Rename a field and give the line a valid checksum: the record must
    // still be refused (unknown fields are errors, not silently dropped).
    let json = lines[2][9..].replacen("\"profiles\"", "\"profilez\"", 1);
    let mut forged = Vec::new();
    encode_line(json.as_bytes(), &mut forged);
    let damaged = format!(
        "{}\n{}\n{}",
        lines[0],
        lines[1],
        String::from_utf8(forged).unwrap()
    );
    d.set_log(damaged.as_bytes());
    let (line, message) = corrupt_line(d.recover().unwrap_err());
    assert_eq!(line, 3);
    assert!(message.contains("unknown field `profilez`"), "{message}");
}

#[test]
fn a_damaged_last_complete_record_refuses_to_start() {
    let (d, _, _) = with_records(3);
    let mut bytes = d.log_bytes();
    let n = bytes.len();
    bytes[n - 5] ^= 0x01;
    d.set_log(&bytes);
    assert_eq!(corrupt_line(d.recover().unwrap_err()).0, 4);
}

#[test]
fn a_deleted_log_refuses_to_start_and_repair_begins_a_new_epoch() {
    let (d, profiles, _) = with_records(2);
    let epoch = d.recover().unwrap().base.epoch;
    profiles.save(&d.profiles()).unwrap();
    std::fs::remove_file(d.log()).unwrap();
    let err = d.recover().unwrap_err();
    assert!(
        matches!(err, StoreError::LogMissing { epoch: e, .. } if e == epoch),
        "{err}"
    );
    assert!(err.to_string().contains("--repair-state"), "{err}");
    let r = d.store().repairing().recover(&|_| BTreeMap::new()).unwrap();
    assert_ne!(r.base.epoch, epoch);
    assert_eq!(r.base.revision, 0);
    // Started from the profiles file as it was.
    assert_eq!(r.profiles(), ProfilesFile::load(&d.profiles()).unwrap());
}

#[test]
fn a_log_from_another_epoch_refuses_to_start() {
    let (d, _, _) = with_records(1);
    std::fs::write(d.dir.path().join(EPOCH_FILE), "42\n").unwrap();
    let (line, message) = corrupt_line(d.recover().unwrap_err());
    assert_eq!(line, 1);
    assert!(message.contains("epoch file says 42"), "{message}");
}

#[test]
fn repair_keeps_the_records_before_the_damage_in_a_new_epoch() {
    let (d, _, records) = with_records(4);
    let epoch = d.recover().unwrap().base.epoch;
    let text = String::from_utf8(d.log_bytes()).unwrap();
    let damaged = text.replacen("\"revision\":3", "\"revision\":9", 1);
    d.set_log(damaged.as_bytes());
    let r = d.store().repairing().recover(&|_| BTreeMap::new()).unwrap();
    assert_eq!(revisions(&r), [1, 2]);
    assert_eq!(r.records[1], records[1]);
    assert_ne!(r.base.epoch, epoch);
    let aside: Vec<_> = std::fs::read_dir(d.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
        .collect();
    assert_eq!(aside.len(), 1);
    // The repaired log starts cleanly, in the new epoch.
    let again = d.recover().unwrap();
    assert_eq!(again.base.epoch, r.base.epoch);
    assert_eq!(revisions(&again), [1, 2]);
}

#[test]
fn compaction_keeps_the_checkpoint_and_the_tail() {
    let (d, profiles, records) = with_records(4);
    let mut s = d.store();
    let rec = s.recover(&|_| BTreeMap::new()).unwrap();
    let mut base = rec.base.clone();
    base.absorb(&records[0]);
    base.absorb(&records[1]);
    let tail: VecDeque<Arc<Record>> = records[2..].iter().cloned().map(Arc::new).collect();
    s.compact(&base, &tail).unwrap();
    let mut p = profiles.clone();
    s.append(&[set(&mut p, 5, 5)]).unwrap();
    let r = d.recover().unwrap();
    assert_eq!(r.base.revision, 2);
    assert_eq!(revisions(&r), [3, 4, 5]);
    assert_eq!(r.profiles(), p);
}

/// Issue 16 §1: the profiles file lags the log, compaction moves the
/// checkpoint past the revision the file holds, then a crash. Recovery
/// must take the log's state, and see the file as cfgd's own stale copy
/// (never as an edit, which would undo the later writes).
#[test]
fn a_stale_profiles_file_after_compaction_is_not_taken_as_an_edit() {
    let d = Dir::new();
    let mut s = d.store();
    let rec = s.recover(&|_| BTreeMap::new()).unwrap();
    let mut profiles = ProfilesFile::default();
    let first = set(&mut profiles, 1, 1);
    s.append(std::slice::from_ref(&first)).unwrap();
    s.write_profiles(&profiles).unwrap();
    let later: Vec<Record> = (2..=5).map(|r| set(&mut profiles, r, r as i64)).collect();
    s.append(&later).unwrap();
    let mut base = rec.base.clone();
    base.absorb(&first);
    for r in &later[..3] {
        base.absorb(r);
    }
    s.compact(&base, &VecDeque::from([Arc::new(later[3].clone())]))
        .unwrap();
    drop(s);
    let mut s = d.store();
    let r = s.recover(&|_| BTreeMap::new()).unwrap();
    assert_eq!(r.profiles(), profiles);
    assert_eq!(
        s.read_profiles(&r.profiles()),
        OnDisk::Ours { current: false }
    );
}

#[test]
fn an_edit_made_while_down_is_a_delta_over_the_logs_state() {
    let d = Dir::new();
    let mut s = d.store();
    s.recover(&|_| BTreeMap::new()).unwrap();
    let mut profiles = ProfilesFile::default();
    s.append(&[set(&mut profiles, 1, 1)]).unwrap();
    s.write_profiles(&profiles).unwrap();
    // Logged but not yet in the file when the daemon stopped.
    s.append(&[set(&mut profiles, 2, 2)]).unwrap();
    drop(s);
    // Prefect adds a profile to the (lagging) file meanwhile.
    let mut edited = ProfilesFile::load(&d.profiles()).unwrap();
    edited.create("ops", None).unwrap();
    edited.save(&d.profiles()).unwrap();
    let mut s = d.store();
    let r = s.recover(&|_| BTreeMap::new()).unwrap();
    let OnDisk::Edited(delta) = s.read_profiles(&r.profiles()) else {
        panic!("expected an edit");
    };
    let mut merged = r.profiles();
    merged.apply(&delta);
    assert!(merged.profiles.contains_key("ops"));
    assert_eq!(
        merged.values("default")[RETRIES],
        toml::Value::from("2"),
        "cfgd's logged write survives the edit"
    );
}

#[test]
fn a_crash_between_marker_and_file_is_still_recognised() {
    let d = Dir::new();
    let mut s = d.store();
    s.recover(&|_| BTreeMap::new()).unwrap();
    let mut profiles = ProfilesFile::default();
    s.append(&[set(&mut profiles, 1, 1)]).unwrap();
    s.write_profiles(&profiles).unwrap();
    let old = std::fs::read(d.profiles()).unwrap();
    s.append(&[set(&mut profiles, 2, 2)]).unwrap();
    s.write_profiles(&profiles).unwrap();
    // As if the file's rename never happened after the marker was written.
    std::fs::write(d.profiles(), old).unwrap();
    drop(s);
    let mut s = d.store();
    let r = s.recover(&|_| BTreeMap::new()).unwrap();
    assert_eq!(
        s.read_profiles(&r.profiles()),
        OnDisk::Ours { current: false }
    );
}

#[test]
fn an_invalid_profiles_file_is_reported_not_overwritten() {
    let (d, profiles, _) = with_records(1);
    std::fs::write(d.profiles(), "active = \n").unwrap();
    let mut s = d.store();
    let r = s.recover(&|_| BTreeMap::new()).unwrap();
    assert_eq!(r.profiles(), profiles);
    assert!(matches!(
        s.read_profiles(&r.profiles()),
        OnDisk::Invalid(cfgd_settings::SettingsError::Syntax { line: Some(1), .. })
    ));
}

#[test]
fn a_cfgd_0_1_log_is_upgraded() {
    let d = Dir::new();
    let mut p1 = ProfilesFile::default();
    p1.profiles
        .get_mut("default")
        .unwrap()
        .insert(RETRIES.into(), "3".into());
    let header = serde_json::json!({"header": {"epoch": 77, "revision": 0,
        "profiles": ProfilesFile::default(), "effective": {}}});
    let rec = serde_json::json!({"revision": 1, "time_ms": 5, "origin": "set",
        "detail": RETRIES, "changes": [], "profiles": p1});
    let rec2 = serde_json::json!({"revision": 2, "time_ms": 6, "origin": "file",
        "detail": "x", "changes": []});
    d.set_log(format!("{header}\n{rec}\n{rec2}\n{{\"revision\":3").as_bytes());
    p1.save(&d.profiles()).unwrap();
    let mut s = d.store();
    let r = s.recover(&|_| BTreeMap::new()).unwrap();
    assert_eq!(r.base.epoch, 77);
    assert_eq!(revisions(&r), [1, 2]);
    assert_eq!(r.profiles(), p1);
    assert_eq!(s.read_profiles(&p1), OnDisk::Ours { current: true });
    // Rewritten with checksums, and it reads back the same.
    assert!(!d.log_bytes().starts_with(b"{"));
    assert_eq!(revisions(&d.recover().unwrap()), [1, 2]);
}

#[test]
fn a_deleted_state_dir_refuses_writes() {
    let (d, profiles, _) = with_records(1);
    let mut s = d.store();
    s.recover(&|_| BTreeMap::new()).unwrap();
    std::fs::remove_file(d.log()).unwrap();
    let mut p = profiles.clone();
    let err = s.append(&[set(&mut p, 2, 2)]).unwrap_err();
    assert!(matches!(err, StoreError::StateDirGone { .. }), "{err}");
    // A new log in its place (another daemon, a restore) is not ours either.
    std::fs::write(d.log(), b"").unwrap();
    assert!(matches!(
        s.append(&[set(&mut p, 2, 2)]),
        Err(StoreError::StateDirGone { .. })
    ));
    assert!(matches!(
        s.compact(&d.recover_base(), &VecDeque::new()),
        Err(StoreError::StateDirGone { .. })
    ));
}

impl Dir {
    fn recover_base(&self) -> Base {
        Base {
            epoch: 1,
            revision: 0,
            profiles: ProfilesFile::default(),
            effective: BTreeMap::new(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any bytes at all: recovery answers (a history or an error), never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let d = Dir::new();
        d.set_log(&bytes);
        let _ = d.recover();
    }

    /// One flipped byte anywhere: recovery either refuses, or gives back
    /// exactly the history that was written (never a silently altered one).
    #[test]
    fn a_flipped_byte_never_alters_history(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (d, _, records) = with_records(4);
        let mut bytes = d.log_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        d.set_log(&bytes);
        if let Ok(r) = d.recover() {
            prop_assert_eq!(r.records.iter().cloned().collect::<Vec<_>>(), records);
        }
    }

    /// A log cut anywhere after its checkpoint (a torn append): recovery
    /// keeps every record whose line is whole.
    #[test]
    fn a_cut_log_keeps_every_whole_record(at in any::<prop::sample::Index>()) {
        let (d, _, records) = with_records(4);
        let bytes = d.log_bytes();
        let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        let cut = header_len + at.index(bytes.len() - header_len);
        let whole = bytes[..cut].iter().filter(|&&b| b == b'\n').count() - 1;
        d.set_log(&bytes[..cut]);
        let r = d.recover().unwrap();
        prop_assert!(r.records.len() >= whole);
        prop_assert_eq!(&r.records.iter().cloned().collect::<Vec<_>>()[..], &records[..r.records.len()]);
    }
}
