//! A real etcd cluster for tests (feature `testing`): members on 127.0.0.1
//! with free ports and data dirs in a temp dir, that a test can kill
//! (SIGKILL), hang (SIGSTOP) and resume (SIGCONT), restart on their data
//! dir and compact. Everything stops when the [`Cluster`] is dropped.
//!
//! `etcd` must be on the PATH (Debian's `etcd-server`, which
//! `.ci/deps.sh` installs); without it [`Cluster::start`] fails saying so.
//! Ports are picked from `127.0.0.1:0` before any member starts (each
//! member's peer URL is part of every member's flags); a member that still
//! finds its port taken exits, and the start is tried again on new ports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::{Client, Config, Credentials, Range, Tls, pb};

/// How long a cluster (or a restarted member) may take to become healthy:
/// generous, because the machine is shared with builds.
const HEALTHY_WITHIN: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
/// Starts tried before giving up on port collisions.
const STARTS: usize = 3;

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
#[error("etcd test harness: {0}")]
pub struct HarnessError(String);

/// TLS for the members' client URLs, all PEM.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The CA that signed `cert_pem` (and, with client-cert auth, the
    /// clients' certificates).
    pub ca_pem: String,
    /// The members' certificate (valid for 127.0.0.1).
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
    /// Whether members require a client certificate signed by the CA.
    pub client_cert_auth: bool,
    /// The certificate and key the harness's own clients (and
    /// [`Cluster::config`]) present, when members require one.
    pub client_identity: Option<(String, String)>,
}

/// How to start a cluster.
///
/// # Default
/// 3 members, plain HTTP, heartbeat 100 ms and election timeout 1,000 ms
/// (etcd's defaults).
#[derive(Debug, Clone)]
pub struct Options {
    /// Members (1 to 7).
    pub members: usize,
    /// TLS on the client URLs.
    pub tls: Option<ServerTls>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            members: 3,
            tls: None,
        }
    }
}

#[derive(Debug)]
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// A running etcd cluster on loopback.
#[derive(Debug)]
pub struct Cluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    options: Options,
    etcd: PathBuf,
    dir: tempfile::TempDir,
}

/// The `etcd` binary on the PATH.
fn find_etcd() -> Result<PathBuf, HarnessError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            HarnessError(
                "`etcd` is not on the PATH: run .ci/deps.sh (it installs Debian's etcd-server and etcd-client)"
                    .into(),
            )
        })
}

fn free_ports(n: usize) -> Result<Vec<u16>, HarnessError> {
    // All bound at once, so no two are the same; released together just
    // before the members bind them.
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HarnessError(format!("cannot bind 127.0.0.1:0: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| HarnessError(format!("no local address: {e}")))
}

fn signal(child: &Child, sig: Signal, what: &str) -> Result<(), HarnessError> {
    kill_process(Pid::from_child(child), sig)
        .map_err(|e| HarnessError(format!("cannot {what} pid {}: {e}", child.id())))
}

/// Waits until every thread of `pid` is stopped (`T` in its
/// `/proc/PID/task/TID/stat`), or none is.
fn wait_threads(pid: u32, stopped: bool) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| HarnessError(format!("cannot list the threads of pid {pid}: {e}")))?;
        let all = tasks.filter_map(Result::ok).all(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
            // The state follows the command name, which ends with ')'.
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next());
            (state == Some('T')) == stopped
        });
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            let what = if stopped { "stop" } else { "continue" };
            return Err(HarnessError(format!(
                "pid {pid} did not {what} within 10 s"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Cluster {
    /// Starts 3 members and waits until the cluster is healthy.
    ///
    /// # Errors
    /// `etcd` not on the PATH (the message names `.ci/deps.sh`), a member
    /// that exits or a cluster not healthy within 30 s (with the end of
    /// its log).
    pub async fn start() -> Result<Self, HarnessError> {
        Self::start_with(Options::default()).await
    }

    /// Starts a single member (for tests that kill nothing) and waits until
    /// it is healthy.
    ///
    /// # Errors
    /// As [`Cluster::start`].
    pub async fn start_one() -> Result<Self, HarnessError> {
        Self::start_with(Options {
            members: 1,
            tls: None,
        })
        .await
    }

    /// Starts a cluster as `options` say and waits until it is healthy.
    ///
    /// # Errors
    /// As [`Cluster::start`].
    pub async fn start_with(options: Options) -> Result<Self, HarnessError> {
        let etcd = find_etcd()?;
        let mut last = None;
        for _ in 0..STARTS {
            let mut cluster = Self::spawn(&etcd, &options)?;
            match cluster.wait_healthy().await {
                Ok(()) => return Ok(cluster),
                // A member that exited early most likely lost its port to
                // another test between the pick and its bind: new ports.
                Err(e) if cluster.any_exited() => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| HarnessError("the cluster did not start".into())))
    }

    fn spawn(etcd: &Path, options: &Options) -> Result<Self, HarnessError> {
        let n = options.members;
        if !(1..=7).contains(&n) {
            return Err(HarnessError(format!(
                "{n} members asked for; 1 to 7 are supported"
            )));
        }
        let dir = tempfile::Builder::new()
            .prefix("cfgd-etcd-")
            .tempdir()
            .map_err(|e| HarnessError(format!("cannot make a temp dir: {e}")))?;
        let ports = free_ports(2 * n)?;
        let scheme = if options.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let members: Vec<Member> = (0..n)
            .map(|i| Member {
                name: format!("m{}", i + 1),
                client_url: format!("{scheme}://127.0.0.1:{}", ports[2 * i]),
                peer_url: format!("http://127.0.0.1:{}", ports[2 * i + 1]),
                data_dir: dir.path().join(format!("m{}", i + 1)),
                log: dir.path().join(format!("m{}.log", i + 1)),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",");
        if let Some(tls) = &options.tls {
            for (file, pem) in [
                ("ca.pem", &tls.ca_pem),
                ("server.pem", &tls.cert_pem),
                ("server-key.pem", &tls.key_pem),
            ] {
                std::fs::write(dir.path().join(file), pem)
                    .map_err(|e| HarnessError(format!("cannot write {file}: {e}")))?;
            }
        }
        let mut cluster = Self {
            members,
            initial_cluster,
            // Unique per cluster, so members of two tests' clusters never
            // take each other for peers.
            token: format!("cfgd-test-{}-{}", std::process::id(), ports[0]),
            options: options.clone(),
            etcd: etcd.to_owned(),
            dir,
        };
        for i in 0..n {
            cluster.spawn_member(i)?;
        }
        Ok(cluster)
    }

    fn spawn_member(&mut self, i: usize) -> Result<(), HarnessError> {
        let m = &self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .map_err(|e| HarnessError(format!("cannot open {}: {e}", m.log.display())))?;
        let mut cmd = Command::new(&self.etcd);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            // Ignored once the data dir exists: the same flags restart.
            .args(["--initial-cluster-state", "new"])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(tls) = &self.options.tls {
            let d = self.dir.path();
            cmd.arg("--cert-file")
                .arg(d.join("server.pem"))
                .arg("--key-file")
                .arg(d.join("server-key.pem"))
                .arg("--trusted-ca-file")
                .arg(d.join("ca.pem"));
            if tls.client_cert_auth {
                cmd.arg("--client-cert-auth");
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| HarnessError(format!("cannot start {}: {e}", self.etcd.display())))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    fn any_exited(&mut self) -> bool {
        self.members
            .iter_mut()
            .filter_map(|m| m.child.as_mut())
            .any(|c| c.try_wait().ok().flatten().is_some())
    }

    /// The members' client URLs, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The client URL of member `i`.
    pub fn endpoint(&self, i: usize) -> &str {
        &self.members[i].client_url
    }

    /// The index of the member at `endpoint`.
    pub fn index_of(&self, endpoint: &str) -> Option<usize> {
        self.members.iter().position(|m| m.client_url == endpoint)
    }

    /// A client configuration for every member (with the cluster's CA and
    /// the harness's client identity when it runs TLS).
    pub fn config(&self) -> Config {
        let config = Config::new(self.endpoints());
        match &self.options.tls {
            Some(tls) => {
                let mut client = Tls::new(tls.ca_pem.clone());
                if let Some((cert, key)) = &tls.client_identity {
                    client = client.identity(cert.clone(), key.clone());
                }
                config.tls(client)
            }
            None => config,
        }
    }

    /// A client of every member, with [`Cluster::config`].
    ///
    /// # Errors
    /// As [`Client::new`].
    pub fn client(&self) -> Result<Client, crate::Error> {
        Client::new(self.config())
    }

    /// The pid of member `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// SIGKILLs member `i` and waits until it is gone.
    ///
    /// # Errors
    /// When it is not running or cannot be signalled.
    pub fn kill(&mut self, i: usize) -> Result<(), HarnessError> {
        let mut child = self.members[i]
            .child
            .take()
            .ok_or_else(|| HarnessError(format!("member {i} is not running")))?;
        signal(&child, Signal::KILL, "kill")?;
        child
            .wait()
            .map_err(|e| HarnessError(format!("cannot wait for member {i}: {e}")))?;
        Ok(())
    }

    /// SIGSTOPs member `i`: it holds its connections and answers nothing.
    ///
    /// # Errors
    /// When it is not running or cannot be signalled.
    pub fn hang(&self, i: usize) -> Result<(), HarnessError> {
        let child = self.members[i]
            .child
            .as_ref()
            .ok_or_else(|| HarnessError(format!("member {i} is not running")))?;
        signal(child, Signal::STOP, "stop")?;
        // The stop lands asynchronously on each of etcd's threads; until
        // it has, the member may still read and forward a call.
        wait_threads(child.id(), true)
    }

    /// SIGCONTs member `i` after [`Cluster::hang`].
    ///
    /// # Errors
    /// When it is not running or cannot be signalled.
    pub fn resume(&self, i: usize) -> Result<(), HarnessError> {
        let child = self.members[i]
            .child
            .as_ref()
            .ok_or_else(|| HarnessError(format!("member {i} is not running")))?;
        signal(child, Signal::CONT, "continue")?;
        wait_threads(child.id(), false)
    }

    /// Starts member `i` again on its data dir (after [`Cluster::kill`])
    /// and waits until the cluster is healthy with it.
    ///
    /// # Errors
    /// When it is still running, cannot start, or is not healthy in time.
    pub async fn restart(&mut self, i: usize) -> Result<(), HarnessError> {
        if self.members[i].child.is_some() {
            return Err(HarnessError(format!("member {i} is still running")));
        }
        self.spawn_member(i)?;
        self.wait_healthy().await
    }

    /// The `Status` of member `i` (answered without a leader too).
    ///
    /// # Errors
    /// When it does not answer.
    pub async fn status(&self, i: usize) -> Result<pb::StatusResponse, HarnessError> {
        self.client()
            .map_err(|e| HarnessError(e.to_string()))?
            .member_status(i)
            .await
            .map_err(|e| HarnessError(e.to_string()))
    }

    /// The index of the member that running members take for the leader.
    pub async fn leader(&self) -> Option<usize> {
        for i in self.running() {
            if let Ok(s) = self.status(i).await
                && s.leader != 0
                && s.header.as_ref().is_some_and(|h| h.member_id == s.leader)
            {
                return Some(i);
            }
        }
        None
    }

    /// Waits until member `i` says it has no leader (after it lost its
    /// quorum, an election timeout or so).
    ///
    /// # Errors
    /// When it still has one after 30 s.
    pub async fn wait_leader_lost(&self, i: usize) -> Result<(), HarnessError> {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        while Instant::now() < deadline {
            if self.status(i).await.is_ok_and(|s| s.leader == 0) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(HarnessError(format!(
            "member {i} still has a leader after {HEALTHY_WITHIN:?}"
        )))
    }

    /// Compacts the history up to `revision` (physically) through any
    /// member.
    ///
    /// # Errors
    /// etcd's refusal.
    pub async fn compact(&self, revision: i64) -> Result<(), HarnessError> {
        self.client()
            .map_err(|e| HarnessError(e.to_string()))?
            .compact(revision, true)
            .await
            .map(drop)
            .map_err(|e| HarnessError(e.to_string()))
    }

    /// Turns auth on with a `root` user (the only one etcd requires) of
    /// `password`; clients then need [`Credentials`].
    ///
    /// # Errors
    /// etcd's refusal.
    pub async fn enable_auth(&self, password: &str) -> Result<Credentials, HarnessError> {
        let client = self.client().map_err(|e| HarnessError(e.to_string()))?;
        let channel = client.members()[client.current()].channel.clone();
        let mut auth = pb::auth_client::AuthClient::new(channel);
        let fail = |what: &str, e: tonic::Status| HarnessError(format!("{what}: {}", e.message()));
        auth.role_add(pb::AuthRoleAddRequest {
            name: "root".into(),
        })
        .await
        .map_err(|e| fail("role add root", e))?;
        auth.user_add(pb::AuthUserAddRequest {
            name: "root".into(),
            password: password.into(),
        })
        .await
        .map_err(|e| fail("user add root", e))?;
        auth.user_grant_role(pb::AuthUserGrantRoleRequest {
            user: "root".into(),
            role: "root".into(),
        })
        .await
        .map_err(|e| fail("grant root to root", e))?;
        auth.auth_enable(pb::AuthEnableRequest {})
            .await
            .map_err(|e| fail("auth enable", e))?;
        Ok(Credentials::new("root", password))
    }

    /// Changes the password of `credentials`' user to `new` (the same one
    /// too): etcd then drops every auth token of that user, as it does
    /// when a token expires.
    ///
    /// # Errors
    /// etcd's refusal.
    pub async fn change_password(
        &self,
        credentials: &Credentials,
        new: &str,
    ) -> Result<(), HarnessError> {
        let client = Client::new(self.config().credentials(credentials.clone()))
            .map_err(|e| HarnessError(e.to_string()))?;
        let i = client.current();
        let token = client
            .token(i)
            .await
            .map_err(|e| HarnessError(format!("authenticate: {}", e.message())))?;
        let req = client.request(
            pb::AuthUserChangePasswordRequest {
                name: credentials.user.clone(),
                password: new.into(),
            },
            crate::client::Leader::Required,
            token.as_deref(),
        );
        pb::auth_client::AuthClient::new(client.members()[i].channel.clone())
            .user_change_password(req)
            .await
            .map_err(|e| HarnessError(format!("change password: {}", e.message())))?;
        Ok(())
    }

    /// The indexes of the members that run (killed ones excluded).
    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].child.is_some())
            .collect()
    }

    /// Waits until every running member answers `Status` and agrees on a
    /// leader, and a linearizable read through them succeeds.
    ///
    /// # Errors
    /// When that does not happen within 30 s, or a member exits: with the
    /// end of each member's log.
    pub async fn wait_healthy(&mut self) -> Result<(), HarnessError> {
        let deadline = Instant::now() + HEALTHY_WITHIN;
        let client = Client::new(self.config().deadline(Duration::from_secs(1)))
            .map_err(|e| HarnessError(e.to_string()))?;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            if self.any_exited() {
                return Err(HarnessError(format!(
                    "a member exited during start-up\n{}",
                    self.logs()
                )));
            }
            match self.agreed_leader(&client).await {
                Ok(()) => match client.range(Range::key("/")).await {
                    Ok(_) => return Ok(()),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e,
            }
            tokio::time::sleep(POLL).await;
        }
        Err(HarnessError(format!(
            "the cluster was not healthy within {HEALTHY_WITHIN:?} ({last})\n{}",
            self.logs()
        )))
    }

    async fn agreed_leader(&self, client: &Client) -> Result<(), String> {
        let mut leader = None;
        for i in self.running() {
            let s = client.member_status(i).await.map_err(|e| e.to_string())?;
            if s.leader == 0 || leader.is_some_and(|l| l != s.leader) {
                return Err(format!("member {i} sees leader {:x}", s.leader));
            }
            leader = Some(s.leader);
        }
        Ok(())
    }

    /// The last lines of each member's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            let text = std::fs::read_to_string(&m.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(
                out,
                "--- {} ({}), last lines of {}:",
                m.name,
                m.client_url,
                m.log.display()
            );
            for l in &lines[lines.len().saturating_sub(8)..] {
                let _ = writeln!(out, "{l}");
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The data is thrown away: SIGKILL (which also ends a stopped
        // member) is what stops a cluster fastest.
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = signal(&child, Signal::KILL, "kill");
                let _ = child.wait();
            }
        }
    }
}
