//! Hot reload: watch the config *directory* (editors save by rename),
//! debounce, re-read off the async threads, hand the result to the writer.
//!
//! The file watcher only detects; the writer decides whether anything in
//! force changed (and only then makes a revision). The loop ends when the
//! shutdown token is cancelled.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cfgd_settings::ConfigDir;
use cfgd_settings::configdir::is_relevant;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::writer::{Op, WriterHandle};

/// Starts watching `dir`; `state` is the config dir as last loaded.
///
/// # Errors
/// When no watcher (neither the OS's nor polling) can watch the directory.
pub(crate) fn spawn(
    dir: PathBuf,
    debounce: Duration,
    state: ConfigDir,
    writer: WriterHandle,
    stop: CancellationToken,
) -> notify::Result<JoinHandle<()>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let watch_dir = dir.clone();
    let handler = move |event: notify::Result<notify::Event>| match event {
        // Reading the dir during a reload raises access events; reacting to
        // them would reload forever. Only a write-close among them matters.
        Ok(event)
            if matches!(event.kind, notify::EventKind::Access(k)
                if k != notify::event::AccessKind::Close(notify::event::AccessMode::Write)) => {}
        Ok(event) => {
            for path in event.paths {
                if is_relevant(&watch_dir, &path) {
                    // The loop may be gone during shutdown; nothing to do then.
                    let _ = tx.send(path);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "file watcher error"),
    };
    let watcher: Box<dyn Watcher + Send> = match notify::recommended_watcher(handler.clone()) {
        Ok(mut w) => match w.watch(&dir, RecursiveMode::Recursive) {
            Ok(()) => Box::new(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot use the OS file watcher; polling every second");
                poll_watcher(&dir, handler)?
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "cannot use the OS file watcher; polling every second");
            poll_watcher(&dir, handler)?
        }
    };
    Ok(tokio::spawn(reload_loop(
        watcher, rx, debounce, state, writer, stop,
    )))
}

fn poll_watcher(
    dir: &Path,
    handler: impl notify::EventHandler,
) -> notify::Result<Box<dyn Watcher + Send>> {
    let config = notify::Config::default().with_poll_interval(Duration::from_secs(1));
    let mut w = notify::PollWatcher::new(handler, config)?;
    w.watch(dir, RecursiveMode::Recursive)?;
    Ok(Box::new(w))
}

async fn reload_loop(
    // Kept alive for as long as the loop runs; dropping it stops watching.
    _watcher: Box<dyn Watcher + Send>,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    debounce: Duration,
    mut state: ConfigDir,
    writer: WriterHandle,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let mut paths = BTreeSet::from([first]);
        // Wait for a quiet period: editors write several events per save.
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                p = rx.recv() => match p { Some(p) => { paths.insert(p); } None => return },
                () = tokio::time::sleep(debounce) => break,
            }
        }
        let reloaded = tokio::task::spawn_blocking(move || {
            let changed = state.reload_all().changed();
            (state, changed)
        })
        .await;
        let (new_state, changed) = match reloaded {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "config reload panicked; watching stops");
                return;
            }
        };
        state = new_state;
        for (path, err) in state.errors() {
            tracing::error!(file = %path.display(), error = %err, "config file not applied; keeping its last good content");
        }
        let detail = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",");
        tracing::debug!(files = %detail, changed, "config dir re-read");
        // Always hand it over: even with nothing in force changed, the
        // per-file errors shown by status may have.
        let op = Op::Reload {
            dir: Arc::new(state.clone()),
            detail,
        };
        if writer.run(op).await.is_err() {
            return;
        }
    }
}
