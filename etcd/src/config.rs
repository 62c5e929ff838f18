//! How to reach the cluster: its members, the timeouts of the failover
//! adapter and the watch, TLS and credentials.

use std::time::Duration;

use crate::Error;

/// The client's configuration; [`Config::new`] gives the defaults, the other
/// methods change one thing each.
///
/// # Default
/// Per-try timeout 1 s, connect timeout 500 ms, call deadline 3 s, watch
/// silence 2 s before a progress request, 1 s for its answer, no TLS, no
/// credentials.
#[derive(Clone)]
pub struct Config {
    pub(crate) endpoints: Vec<String>,
    pub(crate) try_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) deadline: Duration,
    pub(crate) watch_silence: Duration,
    pub(crate) progress_timeout: Duration,
    pub(crate) tls: Option<Tls>,
    pub(crate) credentials: Option<Credentials>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoints", &self.endpoints)
            .field("try_timeout", &self.try_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("deadline", &self.deadline)
            .field("watch_silence", &self.watch_silence)
            .field("progress_timeout", &self.progress_timeout)
            .field("tls", &self.tls.is_some())
            .field("user", &self.credentials.as_ref().map(|c| &c.user))
            .finish()
    }
}

/// TLS to the members (rustls): the CA that signed their certificates and,
/// for client-certificate auth, this client's certificate and key. All PEM.
#[derive(Clone)]
pub struct Tls {
    pub(crate) ca_pem: Vec<u8>,
    pub(crate) identity: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) domain: Option<String>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material stays out of logs.
        f.debug_struct("Tls")
            .field("client_identity", &self.identity.is_some())
            .field("domain", &self.domain)
            .finish()
    }
}

impl Tls {
    /// Trusts the members whose certificates `ca_pem` signed.
    pub fn new(ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            ca_pem: ca_pem.into(),
            identity: None,
            domain: None,
        }
    }

    /// Presents `cert_pem` (signed by a CA the members trust) with its
    /// private key `key_pem`.
    pub fn identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Checks the members' certificates for `domain` instead of the
    /// endpoints' host names.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
}

/// An etcd user and password: the client authenticates with them, sends the
/// token with every call and authenticates again when etcd says the token
/// is no longer valid.
#[derive(Clone)]
pub struct Credentials {
    pub(crate) user: String,
    pub(crate) password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: password.into(),
        }
    }
}

impl Config {
    /// The members at `endpoints`: `host:port` or `http[s]://host:port`.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            try_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            deadline: Duration::from_secs(3),
            watch_silence: Duration::from_secs(2),
            progress_timeout: Duration::from_secs(1),
            tls: None,
            credentials: None,
        }
    }

    /// How long one try on one member may take before the client moves on
    /// (a read) or reports the outcome unknown (a write).
    pub fn try_timeout(mut self, t: Duration) -> Self {
        self.try_timeout = t;
        self
    }

    /// How long connecting to a member may take (a connection that could
    /// not be made carried no call, so the next member is tried).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long one call may go round the members before it gives up as
    /// [`Error::Unreachable`].
    pub fn deadline(mut self, t: Duration) -> Self {
        self.deadline = t;
        self
    }

    /// How long a watch may hear nothing before it asks for progress, and
    /// how long it then waits for the answer before it moves to the next
    /// member.
    pub fn watch_progress(mut self, silence: Duration, answer: Duration) -> Self {
        self.watch_silence = silence;
        self.progress_timeout = answer;
        self
    }

    /// Talks TLS to every member.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Authenticates as this user.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The endpoints as URLs: the scheme follows the TLS setting when it is
    /// left out, and must agree with it when given.
    pub(crate) fn urls(&self) -> Result<Vec<String>, Error> {
        if self.endpoints.is_empty() {
            return Err(Error::Config(
                "no etcd endpoint given (expected host:port, …)".into(),
            ));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        self.endpoints
            .iter()
            .map(|e| {
                let e = e.trim().trim_end_matches('/');
                let url = match e.split_once("://") {
                    None => format!("{scheme}://{e}"),
                    Some((s, _)) if s == scheme => e.to_owned(),
                    Some((s, _)) => {
                        return Err(Error::Config(format!(
                            "endpoint {e:?} uses {s}:// but the client is configured for {scheme}:// (TLS {})",
                            if self.tls.is_some() { "on" } else { "off" }
                        )));
                    }
                };
                match url.parse::<tonic::transport::Uri>() {
                    Ok(u) if u.host().is_some() && u.port_u16().is_some() => Ok(url),
                    _ => Err(Error::Config(format!(
                        "endpoint {e:?} is not host:port or {scheme}://host:port"
                    ))),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_take_the_scheme_of_the_tls_setting() {
        let c = Config::new(["127.0.0.1:2379", "http://127.0.0.1:2380/"]);
        assert_eq!(
            c.urls().unwrap(),
            ["http://127.0.0.1:2379", "http://127.0.0.1:2380"]
        );
        let t = Config::new(["etcd-1:2379"]).tls(Tls::new("ca"));
        assert_eq!(t.urls().unwrap(), ["https://etcd-1:2379"]);
    }

    #[test]
    fn bad_endpoints_are_named() {
        let e = Config::new(["http://a:1"])
            .tls(Tls::new("ca"))
            .urls()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("\"http://a:1\" uses http:// but the client is configured for https://"),
            "{e}"
        );
        let e = Config::new(["no-port"]).urls().unwrap_err();
        assert!(
            e.to_string().contains("\"no-port\" is not host:port"),
            "{e}"
        );
        let e = Config::new(Vec::<String>::new()).urls().unwrap_err();
        assert!(e.to_string().contains("no etcd endpoint given"), "{e}");
    }
}
