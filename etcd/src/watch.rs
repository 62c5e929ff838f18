//! The resuming watch: the events of a key range from a start revision,
//! each delivered once and in order, through member deaths, hangs and
//! leader loss.
//!
//! One background task holds one etcd watch stream on the client's current
//! member, with `hasleader=true` so a member that loses its leader cancels
//! the stream instead of going quiet. When the stream fails, ends, or stays
//! silent (no message for the silence interval, then no answer to a
//! progress request within the progress timeout: a hung or partitioned
//! member sends nothing), the task moves to the next member and creates the
//! watch again from the last delivered revision + 1; events below that
//! revision are dropped, so a resumed stream repeats nothing.
//!
//! A start revision that etcd has compacted ends the watch with
//! [`WatchEvent::Compacted`]: the caller re-reads what it needs (live keys)
//! and watches again from there. The watch never restarts by itself at the
//! compact revision, which would silently skip the changes in between
//! (cilium/cilium PR #3011, etcd-io/etcd #9386).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::classify::{Failure, classify};
use crate::client::{Client, Leader};
use crate::kv::prefix_end;
use crate::pb::watch_client::WatchClient;
use crate::pb::watch_request::RequestUnion;
use crate::{Error, pb};

/// The id this client gives its one watch on each stream.
const WATCH_ID: i64 = 1;
/// The first pause after every member failed in a row; doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Responses held for a slow reader before the stream waits for it.
const BUFFER: usize = 64;

/// What a [`Watch`] delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Events of one or more whole revisions, in order, none delivered
    /// before. `revision` is the store's revision when etcd sent them.
    Events {
        /// The header revision of etcd's response.
        revision: i64,
        /// The events, in revision order.
        events: Vec<pb::Event>,
    },
    /// etcd has compacted the revision the watch had to resume from
    /// (`requested`): events between it and `compact_revision` are gone.
    /// The watch has ended; re-read the live keys and watch again.
    Compacted {
        /// The revision the watch asked for.
        requested: i64,
        /// The oldest revision etcd still has.
        compact_revision: i64,
    },
}

/// A resuming watch; dropping it ends its background task.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::Receiver<Result<WatchEvent, Error>>,
    state: Arc<State>,
    client: Client,
}

#[derive(Debug)]
struct State {
    member: AtomicUsize,
    moves: AtomicU64,
    /// Set once etcd confirmed a watch (on any member).
    created: watch::Sender<bool>,
}

impl Watch {
    /// The next event; `None` once the watch has ended (after
    /// [`WatchEvent::Compacted`] or an error).
    ///
    /// # Errors
    /// An item is an error when etcd refused the watch for good (permission
    /// denied, a bad range); the watch ends after it.
    pub async fn next(&mut self) -> Option<Result<WatchEvent, Error>> {
        self.rx.recv().await
    }

    /// The member the watch stream is on (or was last tried on).
    pub fn endpoint(&self) -> &str {
        self.client.endpoints()[self.state.member.load(Ordering::Acquire)]
    }

    /// How many times the watch moved to another member.
    pub fn moves(&self) -> u64 {
        self.state.moves.load(Ordering::Acquire)
    }

    /// Waits until etcd has confirmed the watch once (a watch "from now"
    /// sees every change made after this returns).
    pub async fn created(&self) {
        let mut created = self.state.created.subscribe();
        let _ = created.wait_for(|c| *c).await;
    }
}

impl Client {
    /// Watches `[key, range_end)` (`range_end` empty: `key` alone) from
    /// `start_revision` (inclusive; 0: from now on).
    pub fn watch(&self, key: impl Into<Vec<u8>>, range_end: Vec<u8>, start_revision: i64) -> Watch {
        let (tx, rx) = mpsc::channel(BUFFER);
        let state = Arc::new(State {
            member: AtomicUsize::new(self.current()),
            moves: AtomicU64::new(0),
            created: watch::channel(false).0,
        });
        let task = Task {
            client: self.clone(),
            key: key.into(),
            range_end,
            next: start_revision.max(0),
            tx,
            state: state.clone(),
        };
        // Ends when the Watch is dropped (tx closed), or after it delivered
        // `Compacted` or a final error.
        tokio::spawn(task.run());
        Watch {
            rx,
            state,
            client: self.clone(),
        }
    }

    /// Watches every key that starts with `prefix`, from `start_revision`.
    pub fn watch_prefix(&self, prefix: impl Into<Vec<u8>>, start_revision: i64) -> Watch {
        let key = prefix.into();
        let end = prefix_end(&key);
        self.watch(key, end, start_revision)
    }
}

struct Task {
    client: Client,
    key: Vec<u8>,
    range_end: Vec<u8>,
    /// The revision to (re)start from; 0 until the first stream says what
    /// "now" is.
    next: i64,
    tx: mpsc::Sender<Result<WatchEvent, Error>>,
    state: Arc<State>,
}

/// Why one stream ended.
enum End {
    /// The Watch was dropped.
    Gone,
    /// Delivered `Compacted` or a final error.
    Done,
    /// Move to the next member; `delivered` says whether this stream got
    /// anything through.
    Move { why: String, delivered: bool },
    /// Try the same member again (after the auth token was renewed).
    Again,
}

impl Task {
    async fn run(mut self) {
        let mut backoff = FIRST_BACKOFF;
        let mut failed_in_row = 0;
        let mut first_failure = None;
        loop {
            let i = self.client.current();
            self.state.member.store(i, Ordering::Release);
            match self.stream(i).await {
                End::Gone | End::Done => return,
                End::Again => continue,
                End::Move { why, delivered } => {
                    let from = self.client.endpoints()[i].to_owned();
                    let to = self.client.rotate(i);
                    self.state.moves.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(
                        from = %from,
                        to = %self.client.endpoints()[to],
                        next_revision = self.next,
                        "etcd watch moves to the next member: {why}"
                    );
                    if delivered {
                        failed_in_row = 0;
                        backoff = FIRST_BACKOFF;
                        first_failure = None;
                    } else {
                        failed_in_row += 1;
                        let since = *first_failure.get_or_insert_with(SystemTime::now);
                        if failed_in_row >= self.client.endpoints().len() {
                            self.client.note_unreachable(since);
                            tokio::select! {
                                () = self.tx.closed() => return,
                                () = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
            }
        }
    }

    fn create(&self) -> pb::WatchRequest {
        pb::WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(pb::WatchCreateRequest {
                key: self.key.clone(),
                range_end: self.range_end.clone(),
                start_revision: self.next,
                progress_notify: true,
                watch_id: WATCH_ID,
                ..Default::default()
            })),
        }
    }

    /// One watch stream on member `i`, until it fails or must be left.
    async fn stream(&mut self, i: usize) -> End {
        let config = self.client.config();
        let (silence, answer_within, try_timeout) = (
            config.watch_silence,
            config.progress_timeout,
            config.try_timeout,
        );
        let channel = self.client.members()[i].channel.clone();
        let token = match tokio::time::timeout(try_timeout, self.client.token(i)).await {
            Ok(Ok(t)) => t,
            Ok(Err(status)) => return self.failed(&status, None, false).await,
            Err(_) => {
                return End::Move {
                    why: "no auth token in time".into(),
                    delivered: false,
                };
            }
        };
        let (requests, outbound) = mpsc::channel(4);
        // The request side stays open as long as `requests` lives: etcd
        // ends a watch stream whose request side ends.
        let _ = requests.send(self.create()).await;
        let req = self.client.request(
            ReceiverStream::new(outbound),
            Leader::Required,
            token.as_deref(),
        );
        let mut watch = WatchClient::new(channel);
        let mut stream = match tokio::time::timeout(try_timeout, watch.watch(req)).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => return self.failed(&status, token.as_deref(), false).await,
            Err(_) => {
                return End::Move {
                    why: format!(
                        "no answer to the watch within {} ms",
                        try_timeout.as_millis()
                    ),
                    delivered: false,
                };
            }
        };
        let mut delivered = false;
        let mut asked = false;
        loop {
            let wait = if asked { answer_within } else { silence };
            let message = tokio::select! {
                () = self.tx.closed() => {
                    // Cancel, then end the request side: etcd 3.4 may keep
                    // the watchers of a stream that is only reset.
                    let cancel = pb::WatchRequest {
                        request_union: Some(RequestUnion::CancelRequest(pb::WatchCancelRequest {
                            watch_id: WATCH_ID,
                        })),
                    };
                    if requests.send(cancel).await.is_ok() {
                        let canceled = async {
                            while let Ok(Some(r)) = stream.message().await {
                                if r.canceled {
                                    break;
                                }
                            }
                        };
                        let _ = tokio::time::timeout(try_timeout, canceled).await;
                    }
                    drop(requests);
                    return End::Gone;
                }
                m = tokio::time::timeout(wait, stream.message()) => m,
            };
            let response = match message {
                Err(_) if !asked => {
                    asked = true;
                    let progress = pb::WatchRequest {
                        request_union: Some(RequestUnion::ProgressRequest(
                            pb::WatchProgressRequest {},
                        )),
                    };
                    if requests.send(progress).await.is_err() {
                        return End::Move {
                            why: "the stream closed".into(),
                            delivered,
                        };
                    }
                    continue;
                }
                Err(_) => {
                    return End::Move {
                        why: format!(
                            "silent: nothing for {} ms, then no answer to a progress request within {} ms",
                            silence.as_millis(),
                            answer_within.as_millis()
                        ),
                        delivered,
                    };
                }
                Ok(Err(status)) => return self.failed(&status, token.as_deref(), delivered).await,
                Ok(Ok(None)) => {
                    return End::Move {
                        why: "etcd ended the stream".into(),
                        delivered,
                    };
                }
                Ok(Ok(Some(r))) => r,
            };
            asked = false;
            let header_revision = response.header.as_ref().map_or(0, |h| h.revision);
            if response.canceled {
                return self.canceled(&response, i, delivered).await;
            }
            if response.created {
                self.state.created.send_replace(true);
                if self.next == 0 {
                    // Watching "from now": now is the revision at creation.
                    self.next = header_revision + 1;
                }
                continue;
            }
            if response.events.is_empty() {
                // A progress notice of this watch (not the stream-wide answer
                // to a progress request, which etcd 3.4 may send before the
                // watch has caught up: etcd-io/etcd #15220): every later
                // event has a higher revision.
                if response.watch_id == WATCH_ID && header_revision >= self.next {
                    self.next = header_revision + 1;
                }
                continue;
            }
            let next = self.next;
            let events: Vec<pb::Event> = response
                .events
                .into_iter()
                .filter(|e| e.kv.as_ref().is_some_and(|kv| kv.mod_revision >= next))
                .collect();
            let Some(last) = events.last().and_then(|e| e.kv.as_ref()) else {
                continue;
            };
            self.next = last.mod_revision + 1;
            delivered = true;
            let item = WatchEvent::Events {
                revision: header_revision,
                events,
            };
            if self.tx.send(Ok(item)).await.is_err() {
                return End::Gone;
            }
        }
    }

    async fn canceled(&mut self, response: &pb::WatchResponse, i: usize, delivered: bool) -> End {
        if response.compact_revision > 0 {
            let item = WatchEvent::Compacted {
                requested: self.next,
                compact_revision: response.compact_revision,
            };
            let _ = self.tx.send(Ok(item)).await;
            return End::Done;
        }
        let reason = &response.cancel_reason;
        if reason.contains("permission denied") || reason.contains("invalid") {
            let error = Error::Rejected {
                op: "watch",
                member: self.client.endpoints()[i].to_owned(),
                code: tonic::Code::PermissionDenied,
                message: reason.clone(),
            };
            let _ = self.tx.send(Err(error)).await;
            return End::Done;
        }
        End::Move {
            why: format!("etcd canceled the watch ({reason:?})"),
            delivered,
        }
    }

    async fn failed(
        &mut self,
        status: &tonic::Status,
        token: Option<&str>,
        delivered: bool,
    ) -> End {
        match classify(status) {
            Failure::StaleToken(_) => {
                self.client.drop_token(token).await;
                End::Again
            }
            Failure::Answered(code, message)
                if matches!(
                    code,
                    tonic::Code::PermissionDenied
                        | tonic::Code::InvalidArgument
                        | tonic::Code::Unauthenticated
                ) =>
            {
                let error = Error::Rejected {
                    op: "watch",
                    member: self.client.current_endpoint().to_owned(),
                    code,
                    message,
                };
                let _ = self.tx.send(Err(error)).await;
                End::Done
            }
            Failure::NotSent(why) | Failure::MaybeApplied(why) => End::Move { why, delivered },
            Failure::Answered(code, message) => End::Move {
                why: format!("{code:?}: {message}"),
                delivered,
            },
        }
    }
}
