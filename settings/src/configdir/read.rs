//! Reading one config file without trusting it: only a regular file (or a
//! symlink to one — Kubernetes ConfigMaps are symlinks), opened without
//! blocking so a FIFO cannot stall a reload, checked after opening so a
//! swap between a check and the open cannot fool it, and never more than
//! the size limit, even if the file grows while it is read.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use crate::error::SettingsError;

/// Largest config file read by default: 1 MiB, the size of a Kubernetes
/// ConfigMap.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 20;

/// What a file was when it was last read: a re-read is needed when this
/// differs (or when a watcher says the file was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Self {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Self {
                dev: 0,
                ino: 0,
                len: meta.len(),
                mtime_ns,
                ctime_ns: 0,
            }
        }
    }

    /// The identity of what `path` names now (following symlinks), without
    /// opening it; `None` when it cannot be stat'ed.
    pub(super) fn current(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}

/// Reads `path` as UTF-8 text of at most `max_bytes`, with the identity of
/// the file actually read.
pub(super) fn read(path: &Path, max_bytes: u64) -> Result<(String, Identity), SettingsError> {
    let fail = |message: String| SettingsError::Io {
        action: "cannot read",
        path: path.display().to_string(),
        message,
    };
    let file = open_nonblocking(path).map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail(format!(
            "it is {}, not a regular file; only regular files (or symlinks to them) are read",
            describe(&meta)
        )));
    }
    let too_big = |len: u64| {
        fail(format!(
            "the file is {len} bytes; config files may be at most {max_bytes} bytes (cfgd: --max-config-file-bytes)"
        ))
    };
    if meta.len() > max_bytes {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte past the limit tells a file that grew after the check.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_big(bytes.len() as u64));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok((text, Identity::of(&meta)))
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer, forever. O_NOCTTY: a terminal device never becomes ours.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn describe(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_and_a_symlink_to_one_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        std::fs::write(&real, "a = 1\n").unwrap();
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert_eq!(read(&real, 100).unwrap().0, "a = 1\n");
        let (text, id) = read(&link, 100).unwrap();
        assert_eq!(text, "a = 1\n");
        assert_eq!(Some(id), Identity::current(&real), "the target's identity");
    }

    #[test]
    fn devices_and_directories_are_refused_by_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("zero.toml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        assert_eq!(
            read(&zero, 100).unwrap_err().to_string(),
            format!(
                "cannot read {}: it is a character device, not a regular file; only regular files (or symlinks to them) are read",
                zero.display()
            )
        );
        let sub = dir.path().join("sub.toml");
        std::fs::create_dir(&sub).unwrap();
        assert!(
            read(&sub, 100)
                .unwrap_err()
                .to_string()
                .contains("it is a directory")
        );
    }

    #[test]
    fn a_file_over_the_limit_names_its_size_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; 101]).unwrap();
        assert_eq!(
            read(&big, 100).unwrap_err().to_string(),
            format!(
                "cannot read {}: the file is 101 bytes; config files may be at most 100 bytes (cfgd: --max-config-file-bytes)",
                big.display()
            )
        );
        assert_eq!(read(&big, 101).unwrap().0.len(), 101);
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.toml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo (coreutils)");
        assert!(made.success());
        // Opening a FIFO for reading blocks until a writer comes: run the
        // read on a thread so a regression fails here instead of hanging.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(read(&path, 100).map(|_| ())));
        let result = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO returns instead of blocking");
        assert!(result.unwrap_err().to_string().contains("it is a FIFO"));
    }

    #[test]
    fn binary_content_is_refused_with_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin.toml");
        std::fs::write(&bin, b"ab\xffcd").unwrap();
        assert!(
            read(&bin, 100)
                .unwrap_err()
                .to_string()
                .ends_with("it is not UTF-8 text (invalid byte at offset 2)")
        );
    }
}
