//! Following `profiles.toml` while the daemon runs.
//!
//! The file is Prefect's as much as cfgd's: `prefect config set`,
//! `prefect profile use` or a person's editor may change it at any time.
//! Its directory is watched (through [`DirWatch`], so a directory that is
//! created later, or recreated, is followed too) with a filter for the one
//! file; each debounced change is handed to the writer as
//! [`Op::ProfilesFileChanged`]. The writer compares the file with what it
//! last wrote (the marker in the state dir): an edit from outside becomes a
//! revision of its own (origin `ORIGIN_PROFILES_FILE`) that watchers see at
//! once, so a later `cfg set` builds on it and never reverts it; cfgd's own
//! writes are recognised and change nothing; an invalid file is reported
//! and profile writes are refused until it is fixed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::dirwatch::{self, DirWatch};
use crate::writer::{Op, WriterHandle};

/// Starts following `path` (absolute or relative to the working dir);
/// changes made after this returns are seen. Ends with `stop`, or when the
/// writer is gone; `None` when `path` names no file in a directory.
pub(crate) fn spawn(
    path: &Path,
    options: dirwatch::Options,
    writer: WriterHandle,
    stop: CancellationToken,
) -> Option<JoinHandle<()>> {
    let path = std::path::absolute(path).ok()?;
    let (dir, name) = split(&path)?;
    let options = dirwatch::Options {
        recursive: false,
        ..options
    };
    let watch = DirWatch::spawn(
        dir,
        move |p: &Path| p.file_name() == Some(name.as_os_str()),
        options,
        &stop,
    );
    Some(tokio::spawn(follow(watch, writer)))
}

fn split(path: &Path) -> Option<(PathBuf, OsString)> {
    Some((path.parent()?.to_owned(), path.file_name()?.to_owned()))
}

async fn follow(mut watch: DirWatch, writer: WriterHandle) {
    // `next` ends once `stop` is cancelled (the watch was spawned with it).
    while watch.next().await.is_some() {
        // The writer reads the file and decides; an error here means it is
        // shutting down.
        if writer.run(Op::ProfilesFileChanged).await.is_err() {
            return;
        }
    }
}
