//! The services of this daemon and the revision each has applied, as their
//! SDKs report it (`Ack`).
//!
//! An instance is listed while one of its watch streams is open, and for
//! [`GRACE`] after the last one closes (an SDK reconnecting is not a
//! service gone). An instance that acked but never watched (another
//! client) is dropped [`UNWATCHED`] after its last ack. The list is bounded
//! ([`MAX_INSTANCES`]): acks of new instances beyond it are dropped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// tokio's clock: tests pause and advance it.
use tokio::time::Instant;

/// How long an instance stays listed after its last stream closed.
pub(crate) const GRACE: Duration = Duration::from_secs(5);
/// How long an instance that never watched stays listed after its ack.
pub(crate) const UNWATCHED: Duration = Duration::from_secs(60);
/// Most instances listed.
pub(crate) const MAX_INSTANCES: usize = 4096;

/// One instance, as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Instance {
    /// The service's name.
    pub(crate) service: String,
    /// The instance.
    pub(crate) instance: String,
    /// The revision it applied (0: it has not acked yet).
    pub(crate) revision: u64,
    /// The epoch of `revision`.
    pub(crate) epoch: u64,
    /// When it last acked (ms since the Unix epoch; 0: never).
    pub(crate) acked_ms: i64,
    /// Whether one of its watch streams is open.
    pub(crate) connected: bool,
}

#[derive(Debug)]
struct Entry {
    revision: u64,
    epoch: u64,
    acked_ms: i64,
    acked: Option<Instant>,
    streams: u32,
    closed: Option<Instant>,
}

/// The registry (shared by the service and the fleet registry task).
#[derive(Debug, Default)]
pub(crate) struct Services {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
}

/// An open watch stream of an instance; closing it (drop) starts the grace.
#[derive(Debug)]
pub(crate) struct Stream {
    services: Arc<Services>,
    key: (String, String),
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut entries = self.services.lock();
        if let Some(e) = entries.get_mut(&self.key) {
            e.streams = e.streams.saturating_sub(1);
            if e.streams == 0 {
                e.closed = Some(Instant::now());
            }
        }
    }
}

impl Services {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry(
        entries: &mut BTreeMap<(String, String), Entry>,
        key: (String, String),
    ) -> Option<&mut Entry> {
        if !entries.contains_key(&key) && entries.len() >= MAX_INSTANCES {
            return None;
        }
        Some(entries.entry(key).or_insert(Entry {
            revision: 0,
            epoch: 0,
            acked_ms: 0,
            acked: None,
            streams: 0,
            closed: None,
        }))
    }

    /// `service`/`instance` applied `revision` of `epoch`.
    pub(crate) fn ack(
        &self,
        service: &str,
        instance: &str,
        revision: u64,
        epoch: u64,
        now_ms: i64,
    ) {
        let mut entries = self.lock();
        Self::prune(&mut entries);
        let Some(e) = Self::entry(&mut entries, (service.to_owned(), instance.to_owned())) else {
            tracing::warn!(
                service,
                instance,
                "too many service instances; this one's ack is dropped"
            );
            return;
        };
        e.revision = revision;
        e.epoch = epoch;
        e.acked_ms = now_ms;
        e.acked = Some(Instant::now());
    }

    /// A watch stream of `service`/`instance` opened; it counts until the
    /// returned guard is dropped.
    pub(crate) fn stream(self: &Arc<Self>, service: &str, instance: &str) -> Option<Stream> {
        let key = (service.to_owned(), instance.to_owned());
        let mut entries = self.lock();
        Self::prune(&mut entries);
        let e = Self::entry(&mut entries, key.clone())?;
        e.streams += 1;
        e.closed = None;
        Some(Stream {
            services: self.clone(),
            key,
        })
    }

    fn prune(entries: &mut BTreeMap<(String, String), Entry>) {
        entries.retain(|_, e| {
            e.streams > 0
                || match e.closed {
                    Some(t) => t.elapsed() < GRACE,
                    None => e.acked.is_some_and(|t| t.elapsed() < UNWATCHED),
                }
        });
    }

    /// The instances listed now.
    pub(crate) fn list(&self) -> Vec<Instance> {
        let mut entries = self.lock();
        Self::prune(&mut entries);
        entries
            .iter()
            .map(|((service, instance), e)| Instance {
                service: service.clone(),
                instance: instance.clone(),
                revision: e.revision,
                epoch: e.epoch,
                acked_ms: e.acked_ms,
                connected: e.streams > 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_listed_while_it_watches_and_shows_its_last_ack() {
        let s = Arc::new(Services::default());
        let stream = s.stream("svc", "i-1").unwrap();
        assert_eq!(s.list()[0].revision, 0, "listed before its first ack");
        s.ack("svc", "i-1", 7, 9, 1_000);
        s.ack("svc", "i-1", 8, 9, 2_000);
        let l = s.list();
        assert_eq!(l.len(), 1);
        assert_eq!(
            (l[0].revision, l[0].epoch, l[0].acked_ms, l[0].connected),
            (8, 9, 2_000, true)
        );
        drop(stream);
        let l = s.list();
        assert!(
            !l[0].connected,
            "still listed within the grace, as not connected"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_or_silent_instance_goes_after_its_grace() {
        let s = Arc::new(Services::default());
        let stream = s.stream("svc", "watching").unwrap();
        s.ack("svc", "watching", 1, 1, 0);
        s.ack("other", "acks-only", 1, 1, 0);
        drop(stream);
        tokio::time::advance(GRACE - Duration::from_millis(1)).await;
        assert_eq!(s.list().len(), 2);
        tokio::time::advance(Duration::from_millis(2)).await;
        let l = s.list();
        assert_eq!(l.len(), 1, "the closed one is gone after the grace: {l:?}");
        assert_eq!(l[0].service, "other");
        tokio::time::advance(UNWATCHED).await;
        assert!(
            s.list().is_empty(),
            "the one that never watched goes after UNWATCHED"
        );
    }

    #[test]
    fn the_list_is_bounded() {
        let s = Services::default();
        for i in 0..MAX_INSTANCES + 10 {
            s.ack("svc", &i.to_string(), 1, 1, 0);
        }
        assert_eq!(s.list().len(), MAX_INSTANCES);
    }
}
