//! A [`TestDaemon`] on a runtime of its own, for synchronous tests (those
//! of the `cfg` binary, which run a process and wait for it): start it with
//! [`Builder::start_blocking`]; it stops gracefully when dropped and can
//! restart on the same port and dirs. Its `cfg` runner runs the real binary
//! against it ([`crate::cli`]).

use std::future::Future;
use std::path::PathBuf;
use std::process::Command;

use cfgd_sdk::Client;

use crate::cli::{PATIENCE, Run, cfg_at, run};
use crate::{Builder, TestDaemon};

/// A daemon with its own runtime; stopped (gracefully) when dropped.
#[derive(Debug)]
pub struct Daemon {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its port.
    pub port: u16,
    builder: Builder,
    running: Option<TestDaemon>,
    // Last: dropped after the daemon it runs.
    rt: tokio::runtime::Runtime,
}

impl Builder {
    /// Starts the daemon on a runtime of its own and waits until it
    /// answers.
    pub fn start_blocking(self) -> Daemon {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let running = rt.block_on(self.clone().start());
        Daemon {
            endpoint: running.endpoint.clone(),
            port: running.port(),
            builder: self.dirs(running.dirs.clone()),
            running: Some(running),
            rt,
        }
    }
}

impl Daemon {
    /// A builder: empty environment, no token, no config files.
    pub fn builder() -> Builder {
        TestDaemon::builder()
    }

    /// A daemon with nothing configured.
    pub fn start() -> Self {
        Self::builder().start_blocking()
    }

    /// Stops the daemon gracefully; its dirs stay for [`Daemon::restart`].
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.rt
                .block_on(async { tokio::time::timeout(PATIENCE, running.stop()).await })
                .expect("the daemon stops in time");
        }
    }

    /// Starts the daemon again on the same port and dirs.
    pub fn restart(&mut self) {
        self.stop();
        let running = self
            .rt
            .block_on(self.builder.clone().port(self.port).start());
        self.running = Some(running);
    }

    fn running(&self) -> &TestDaemon {
        self.running.as_ref().expect("the daemon runs")
    }

    /// The config dir.
    pub fn config_dir(&self) -> PathBuf {
        self.builder.config_dir()
    }

    /// Runs `f` on the daemon's runtime.
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// An SDK client with the daemon's token, if any.
    pub async fn client(&self) -> Client {
        self.running().client().await
    }

    /// The current revision, through the SDK.
    pub fn revision(&self) -> u64 {
        self.block_on(async { self.client().await.status().await })
            .expect("status")
            .revision
    }

    /// The active profile's `(name, value)` entries, through the SDK,
    /// secrets in clear.
    pub fn profile(&self) -> Vec<(String, String)> {
        let p = self
            .block_on(async { self.client().await.inspect_profile(None, true).await })
            .expect("inspect");
        p.entries
            .into_iter()
            .map(|(n, v, _)| (n, v.display(true)))
            .collect()
    }

    /// A setting's effective value and source, through the SDK.
    pub fn effective(&self, name: &str) -> (String, String) {
        let s = self
            .block_on(async { self.client().await.get(name, true).await })
            .expect("get");
        (s.value.display(true), s.source.to_string())
    }

    /// `cfg --endpoint <this daemon>`, with a clean environment.
    pub fn command(&self) -> Command {
        cfg_at(&self.endpoint)
    }

    /// Runs `cfg ARGS` against this daemon.
    pub fn cfg(&self, args: &[&str]) -> Run {
        run(self.command().args(args))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop();
        }
    }
}
