//! Where the daemon accepts connections: a TCP address or a Unix socket.

use tokio::net::{TcpListener, UnixListener};

use crate::config::ListenAddr;

/// A bound listener: TCP or a Unix socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket, with its path.
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    /// Binds `addr`. A Unix socket gets mode 0600; a stale socket file left
    /// by a daemon that is gone is replaced.
    ///
    /// # Errors
    /// When the address is in use or cannot be bound.
    pub async fn bind(addr: &ListenAddr) -> std::io::Result<Self> {
        match addr {
            ListenAddr::Tcp(a) => Ok(Listener::Tcp(TcpListener::bind(a).await?)),
            ListenAddr::Unix(path) => {
                if path.exists() {
                    if tokio::net::UnixStream::connect(path).await.is_ok() {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::AddrInUse,
                            format!("{} is in use by a running daemon", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let l = UnixListener::bind(path)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
                Ok(Listener::Unix(l, path.clone()))
            }
        }
    }

    /// `127.0.0.1:7979` or `unix:/path`.
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Listener::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }
}
