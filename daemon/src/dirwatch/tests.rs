use std::io::Write as _;

use super::*;

const OPTIONS: Options = Options {
    debounce: Duration::from_millis(50),
    max_wait: Duration::from_millis(200),
    recursive: true,
};

/// A DirWatch fed by hand (no OS watcher), on an existing dir.
fn fed(dir: &Path, stop: &CancellationToken) -> (mpsc::UnboundedSender<Raw>, DirWatch) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (unused, _) = mpsc::unbounded_channel();
    let mut supervisor = Supervisor::new(
        dir.to_owned(),
        OPTIONS,
        handler(dir.to_owned(), |_| true, unused, Arc::default()),
    );
    supervisor.watched = dir_id(dir);
    (tx, DirWatch::run(supervisor, rx, Arc::default(), stop))
}

fn paths(names: &[&str]) -> BTreeSet<PathBuf> {
    names.iter().map(PathBuf::from).collect()
}

#[tokio::test(start_paused = true)]
async fn a_quiet_period_ends_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (tx, mut watch) = fed(tmp.path(), &stop);
    let start = Instant::now();
    for name in ["a", "b", "a"] {
        tx.send(Raw::Path(name.into())).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let batch = watch.next().await.unwrap();
    assert_eq!(batch.paths, paths(&["a", "b"]));
    assert!(!batch.rescan);
    // The last event came at 20 ms; the batch waited 50 ms of quiet.
    assert_eq!(Instant::now() - start, Duration::from_millis(70));
}

#[tokio::test(start_paused = true)]
async fn a_storm_faster_than_the_debounce_still_yields_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (tx, mut watch) = fed(tmp.path(), &stop);
    let start = Instant::now();
    // An event every 30 ms for a second: never 50 ms of quiet.
    let storm = tokio::spawn(async move {
        for i in 0..34 {
            tx.send(Raw::Path(format!("f{i}").into())).unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        tx
    });
    let mut during = Vec::new();
    while !storm.is_finished() {
        let batch = watch.next().await.unwrap();
        during.push((Instant::now() - start, batch.paths.len()));
    }
    assert!(
        during.len() >= 4,
        "batches during a 1 s storm, each at most 200 ms after its first event: {during:?}"
    );
    assert_eq!(during[0].0, Duration::from_millis(200), "{during:?}");
    drop(storm.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn batches_not_taken_yet_are_merged() {
    let tmp = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (tx, mut watch) = fed(tmp.path(), &stop);
    tx.send(Raw::Path("a".into())).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    tx.send(Raw::Path("b".into())).unwrap();
    tx.send(Raw::Rescan).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let batch = watch.next().await.unwrap();
    assert_eq!(batch.paths, paths(&["a", "b"]));
    assert!(batch.rescan);
    stop.cancel();
    assert_eq!(watch.next().await, None, "stopped");
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_distinct_paths_becomes_a_rescan() {
    let tmp = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (tx, mut watch) = fed(tmp.path(), &stop);
    for i in 0..=MAX_BATCH_PATHS {
        tx.send(Raw::Path(format!("f{i}").into())).unwrap();
    }
    let batch = watch.next().await.unwrap();
    assert!(batch.rescan);
    assert!(batch.paths.is_empty());
}

// ---- the real OS watcher, on real directories

/// The next batch, within a generous bound for a busy machine.
async fn next(watch: &mut DirWatch) -> Batch {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a batch within 10 s")
        .expect("watching goes on")
}

/// Batches until one satisfies `done` (bounded by `next`'s timeout).
async fn until(watch: &mut DirWatch, done: impl Fn(&Batch) -> bool) -> Batch {
    loop {
        let batch = next(watch).await;
        if done(&batch) {
            return batch;
        }
    }
}

fn toml_filter(dir: &Path) -> impl Fn(&Path) -> bool + Send + Sync + 'static {
    let dir = dir.to_owned();
    move |p: &Path| p.parent() == Some(dir.as_path()) && p.extension().is_some_and(|e| e == "toml")
}

const REAL: Options = Options {
    debounce: Duration::from_millis(20),
    max_wait: Duration::from_millis(200),
    recursive: true,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_reported_and_reads_and_other_files_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    let stop = CancellationToken::new();
    let mut watch = DirWatch::spawn(dir.clone(), toml_filter(&dir), REAL, &stop);
    std::fs::write(dir.join("notes.txt"), "x").unwrap();
    std::fs::write(dir.join("a.toml"), "x = 1\n").unwrap();
    let batch = next(&mut watch).await;
    assert_eq!(
        batch.paths,
        BTreeSet::from([dir.join("a.toml")]),
        "{batch:?}"
    );
    // Reading raises access events only: no batch. A later write proves the
    // read was seen and dropped, not merely slow.
    let _ = std::fs::read_to_string(dir.join("a.toml")).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    std::fs::write(dir.join("b.toml"), "y = 1\n").unwrap();
    let batch = next(&mut watch).await;
    assert_eq!(
        batch.paths,
        BTreeSet::from([dir.join("b.toml")]),
        "{batch:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_and_recreated_dir_is_watched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    let stop = CancellationToken::new();
    let mut watch = DirWatch::spawn(dir.clone(), toml_filter(&dir), REAL, &stop);
    std::fs::remove_dir_all(&dir).unwrap();
    until(&mut watch, |b| b.rescan).await;
    std::fs::create_dir(&dir).unwrap();
    until(&mut watch, |b| b.rescan).await;
    std::fs::write(dir.join("a.toml"), "x = 1\n").unwrap();
    until(&mut watch, |b| b.paths.contains(&dir.join("a.toml"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dir_renamed_away_and_replaced_is_watched_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    let stop = CancellationToken::new();
    let mut watch = DirWatch::spawn(dir.clone(), toml_filter(&dir), REAL, &stop);
    let fresh = tmp.path().join("config.new");
    std::fs::create_dir(&fresh).unwrap();
    std::fs::rename(&dir, tmp.path().join("config.old")).unwrap();
    std::fs::rename(&fresh, &dir).unwrap();
    until(&mut watch, |b| b.rescan).await;
    // Writes in the old dir (now elsewhere) must not be reported as ours.
    std::fs::write(tmp.path().join("config.old/old.toml"), "x = 1\n").unwrap();
    std::fs::write(dir.join("a.toml"), "x = 1\n").unwrap();
    let batch = until(&mut watch, |b| !b.paths.is_empty()).await;
    assert_eq!(
        batch.paths,
        BTreeSet::from([dir.join("a.toml")]),
        "{batch:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dir_that_appears_later_is_watched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    let stop = CancellationToken::new();
    let mut watch = DirWatch::spawn(dir.clone(), toml_filter(&dir), REAL, &stop);
    std::fs::create_dir(&dir).unwrap();
    until(&mut watch, |b| b.rescan).await;
    std::fs::write(dir.join("a.toml"), "x = 1\n").unwrap();
    until(&mut watch, |b| b.paths.contains(&dir.join("a.toml"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_beside_the_dir_do_not_wake_the_watcher() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("config");
    std::fs::create_dir(&dir).unwrap();
    let stop = CancellationToken::new();
    let mut watch = DirWatch::spawn(dir.clone(), toml_filter(&dir), REAL, &stop);
    // A log file and a state dir's log next to the watched dir, written
    // as a daemon writes them.
    let mut beside = std::fs::File::create(tmp.path().join("cfgd.log")).unwrap();
    for i in 0..50 {
        writeln!(beside, "line {i}").unwrap();
    }
    drop(beside);
    std::fs::write(dir.join("a.toml"), "x = 1\n").unwrap();
    until(&mut watch, |b| b.paths.contains(&dir.join("a.toml"))).await;
    assert!(
        watch.heard() < 10,
        "{} events heard for one file written in the dir",
        watch.heard()
    );
}
