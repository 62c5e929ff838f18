//! Where the daemon accepts connections: a TCP address or a Unix socket.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tokio::net::{TcpListener, UnixListener};

use crate::config::ListenAddr;

/// A bound listener: TCP or a Unix socket.
#[derive(Debug)]
pub struct Listener {
    pub(crate) kind: Kind,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Tcp(TcpListener),
    Unix(UnixListener, UnixPath),
}

/// A socket file this daemon created, removed when it stops unless
/// something else has taken its place.
#[derive(Debug)]
pub(crate) struct UnixPath {
    path: PathBuf,
    id: (u64, u64),
}

impl UnixPath {
    /// Removes the socket file if it is still the one bound.
    pub(crate) fn remove(&self) {
        if socket_id(&self.path) == Some(self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn socket_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_socket())
        .map(|m| (m.dev(), m.ino()))
}

impl Listener {
    /// Binds `addr`. A Unix socket gets mode 0600; a stale socket file left
    /// by a daemon that is gone is replaced, and nothing else ever is.
    ///
    /// # Errors
    /// When the address is in use or cannot be bound, or a Unix socket path
    /// holds something that is not a socket.
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Self> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Self {
                kind: Kind::Tcp(TcpListener::bind(a).await?),
            }),
            ListenAddr::Unix(path) => {
                match std::fs::symlink_metadata(path) {
                    Ok(meta) if meta.file_type().is_socket() => {
                        if tokio::net::UnixStream::connect(path).await.is_ok() {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::AddrInUse,
                                format!("{} is in use by a running daemon", path.display()),
                            ));
                        }
                        // Nobody answers: a socket left by a daemon that is gone.
                        std::fs::remove_file(path)?;
                    }
                    Ok(meta) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AlreadyExists,
                            format!(
                                "{} exists and is {}, not a socket; refusing to replace it (remove it, or listen on another path)",
                                path.display(),
                                describe(&meta.file_type())
                            ),
                        ));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                let id = socket_id(path).ok_or_else(|| {
                    std::io::Error::other(format!(
                        "{} is not a socket right after binding it",
                        path.display()
                    ))
                })?;
                Ok(Self {
                    kind: Kind::Unix(
                        l,
                        UnixPath {
                            path: path.clone(),
                            id,
                        },
                    ),
                })
            }
        }
    }

    /// `127.0.0.1:7979` or `unix:/path`.
    pub fn local_addr(&self) -> String {
        match &self.kind {
            Kind::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Kind::Unix(_, p) => format!("unix:{}", p.path.display()),
        }
    }

    /// The address it is bound to.
    pub(crate) fn listen_addr(&self) -> Option<ListenAddr> {
        match &self.kind {
            Kind::Tcp(l) => l.local_addr().ok().map(ListenAddr::Tcp),
            Kind::Unix(_, p) => Some(ListenAddr::Unix(p.path.clone())),
        }
    }
}

fn describe(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symlink"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_unix_socket_replaces_only_a_stale_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfgd.sock");
        let addr = ListenAddr::Unix(path.clone());

        // A regular file is never deleted.
        std::fs::write(&path, "precious").unwrap();
        let err = Listener::bind(&addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(
            err.to_string(),
            format!(
                "{} exists and is a regular file, not a socket; refusing to replace it (remove it, or listen on another path)",
                path.display()
            )
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        std::fs::remove_file(&path).unwrap();

        // A socket that answers is in use.
        let first = Listener::bind(&addr).await.unwrap();
        let err = Listener::bind(&addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);

        // A socket nobody answers on is stale, and replaced.
        drop(first);
        assert!(socket_id(&path).is_some(), "dropping leaves the file");
        let second = Listener::bind(&addr).await.unwrap();
        assert_eq!(second.local_addr(), format!("unix:{}", path.display()));
    }

    #[tokio::test]
    async fn the_socket_file_is_removed_only_while_it_is_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfgd.sock");
        let listener = Listener::bind(&ListenAddr::Unix(path.clone()))
            .await
            .unwrap();
        let Kind::Unix(l, ours) = listener.kind else {
            unreachable!()
        };
        drop(l);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "someone else's").unwrap();
        ours.remove();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's");
        std::fs::remove_file(&path).unwrap();
        let again = Listener::bind(&ListenAddr::Unix(path.clone()))
            .await
            .unwrap();
        let Kind::Unix(_, ours) = again.kind else {
            unreachable!()
        };
        ours.remove();
        assert!(!path.exists());
    }
}
