//! Which store the daemon uses (`--store`), and how it reaches etcd.

use std::path::PathBuf;
use std::time::Duration;

/// Where the profile layer, revisions and history live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded file store in the state dir (one daemon).
    #[default]
    File,
    /// Shared by a fleet through etcd.
    Etcd(Box<EtcdConfig>),
}

impl std::str::FromStr for StoreConfig {
    type Err = String;

    /// `file`, or `etcd://HOST:PORT[,HOST:PORT…]` (the other options at
    /// their defaults).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "file" {
            return Ok(StoreConfig::File);
        }
        let Some(list) = s.strip_prefix("etcd://") else {
            return Err(format!(
                "invalid store {s:?}: expected `file` or etcd://HOST:PORT[,HOST:PORT…]"
            ));
        };
        let endpoints: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(format!(
                "invalid store {s:?}: no etcd member after etcd:// (expected etcd://HOST:PORT[,HOST:PORT…])"
            ));
        }
        for e in &endpoints {
            let ok = e
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok || e.contains('/') {
                return Err(format!(
                    "invalid store {s:?}: etcd member {e:?} is not HOST:PORT"
                ));
            }
        }
        Ok(StoreConfig::Etcd(Box::new(EtcdConfig::new(endpoints))))
    }
}

/// How the daemon reaches etcd and takes part in the fleet.
///
/// # Default
/// Keys under `/cfgd`, host id from the host name, a 10 s lease renewed
/// every ~3 s, its fleet entry rewritten at most once a second, 1,000
/// shared records kept in etcd, etcd calls given 3 s, no TLS, no
/// credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// The members, `HOST:PORT`.
    pub endpoints: Vec<String>,
    /// The CA (PEM) that signed the members' certificates: talk TLS.
    pub ca: Option<PathBuf>,
    /// This daemon's client certificate and key (PEM), for members that
    /// require one.
    pub identity: Option<(PathBuf, PathBuf)>,
    /// An etcd user, with the file holding its password.
    pub user: Option<(String, PathBuf)>,
    /// The root of cfgd's keys: `<prefix>/v1/…` (shared data) and
    /// `<prefix>/fleet/v1/…` (the fleet registry).
    pub prefix: String,
    /// This daemon's id in the fleet (unique per daemon).
    pub host: String,
    /// The fleet entry's lease: it vanishes this long after the daemon.
    pub lease_ttl: Duration,
    /// Least time between two rewrites of the fleet entry.
    pub report_interval: Duration,
    /// Shared records kept in etcd (trimmed by the writers themselves).
    pub history: u64,
    /// How long one etcd call may go round the members.
    pub deadline: Duration,
}

impl EtcdConfig {
    /// The defaults (see the type) for these members.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            ca: None,
            identity: None,
            user: None,
            prefix: "/cfgd".into(),
            host: default_host(),
            lease_ttl: Duration::from_secs(10),
            report_interval: Duration::from_secs(1),
            history: 1000,
            deadline: Duration::from_secs(3),
        }
    }
}

/// The host name, as the kernel has it.
fn default_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "cfgd".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_is_file_or_etcd_members() {
        assert_eq!("file".parse::<StoreConfig>().unwrap(), StoreConfig::File);
        let StoreConfig::Etcd(e) = "etcd://10.0.0.1:2379, etcd-2:2379"
            .parse::<StoreConfig>()
            .unwrap()
        else {
            panic!("an etcd store");
        };
        assert_eq!(e.endpoints, ["10.0.0.1:2379", "etcd-2:2379"]);
        assert_eq!(e.prefix, "/cfgd");
        for (bad, says) in [
            ("etcd:/a:1", "expected `file` or etcd://"),
            ("etcd://", "no etcd member"),
            ("etcd://a", "\"a\" is not HOST:PORT"),
            ("etcd://a:x", "\"a:x\" is not HOST:PORT"),
            ("etcd://a:1/b", "\"a:1/b\" is not HOST:PORT"),
        ] {
            let e = bad.parse::<StoreConfig>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
