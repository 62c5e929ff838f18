//! [`Resuming`]: a watch that outlives its streams. When a stream drops
//! or cannot be opened it waits a [`Backoff`] and opens another after the
//! last revision it delivered, so the daemon replays what was missed or
//! starts with a resync; both arrive as ordinary [`WatchEvent`]s. What
//! happened to the connection is told as [`Resumed::Opened`] and
//! [`Resumed::Lost`], so a caller can say so or keep serving what it has.
//!
//! Both [`crate::Settings`]' background task and `cfg watch` are built on it.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::time::Instant;

use super::{Backoff, Client, WatchEvent};
use crate::error::Error;

/// A point in the daemon's history: a revision of one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The revision.
    pub revision: u64,
    /// The daemon's epoch (its state's identity).
    pub epoch: u64,
}

/// What a [`Resuming`] watch says next.
#[derive(Debug, Clone)]
pub enum Resumed {
    /// A stream is open: the daemon answered. `after` is where it resumes
    /// (`None`: it starts with a snapshot, as a
    /// [`WatchEvent::Resync`]).
    Opened {
        /// The last position delivered before this stream.
        after: Option<Position>,
    },
    /// A change, or a resync that replaces everything the caller had.
    Event(WatchEvent),
    /// The stream dropped, or could not be opened, for a reason that can
    /// pass; the next call waits `retry_in` and reconnects.
    Lost {
        /// Why.
        error: Error,
        /// How long the next call waits first.
        retry_in: Duration,
    },
}

type Events = BoxStream<'static, Result<WatchEvent, Error>>;

/// Opens one watch stream; a trait so the schedule can be tested with
/// scripted streams.
trait Open: Send + Sync {
    fn open(&self, after: Option<Position>, reveal: bool) -> BoxFuture<'_, Result<Events, Error>>;
    fn endpoint(&self) -> &str;
}

struct ClientOpen {
    client: Client,
    names: Vec<String>,
}

impl Open for ClientOpen {
    fn open(&self, after: Option<Position>, reveal: bool) -> BoxFuture<'_, Result<Events, Error>> {
        Box::pin(async move {
            let stream = self
                .client
                .watch(
                    after.map(|p| p.revision),
                    after.map(|p| p.epoch),
                    &self.names,
                    reveal,
                )
                .await?;
            Ok(stream.boxed())
        })
    }

    fn endpoint(&self) -> &str {
        self.client.endpoint()
    }
}

/// A watch that reconnects by itself and resumes where it left off, made
/// by [`Client::watch_resuming`]. Call [`Resuming::next`] in a loop.
pub struct Resuming {
    open: Box<dyn Open>,
    reveal: bool,
    backoff: Backoff,
    outages: u64,
    waits: Box<dyn Iterator<Item = Duration> + Send>,
    at: Option<Position>,
    stream: Option<Events>,
    retry_at: Option<Instant>,
}

impl std::fmt::Debug for Resuming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resuming")
            .field("endpoint", &self.open.endpoint())
            .field("at", &self.at)
            .field("open", &self.stream.is_some())
            .finish_non_exhaustive()
    }
}

impl Resuming {
    fn new(open: Box<dyn Open>, reveal: bool, backoff: Backoff) -> Self {
        Self {
            open,
            reveal,
            backoff,
            outages: 0,
            waits: Box::new(backoff.schedule(0)),
            at: None,
            stream: None,
            retry_at: None,
        }
    }

    /// The position of the last event delivered (`None` before the first).
    pub fn position(&self) -> Option<Position> {
        self.at
    }

    /// Whether later streams ask for secrets in clear (the first one does
    /// if the watch was made so).
    pub fn set_reveal(&mut self, reveal: bool) {
        self.reveal = reveal;
    }

    /// Drops the open stream, if any, because the caller could not use
    /// what it got (say, a call beside the watch failed): the next call
    /// reconnects after the backoff, which this returns, and resumes after
    /// `at` — what the caller did take in.
    pub fn interrupt(&mut self, at: Option<Position>) -> Duration {
        self.stream = None;
        self.at = at;
        self.schedule_retry()
    }

    /// What happens next: a stream opened, an event, or a lost stream.
    /// Cancel-safe: dropping the future loses no event and no wait.
    ///
    /// # Errors
    /// A refusal that trying again cannot fix (an unknown name, a missing
    /// token; see [`Error::is_transient`]). The watch stays usable: the
    /// next call waits the backoff and tries again, so a caller that can
    /// fix the cause (say, stop asking for secrets) can go on.
    pub async fn next(&mut self) -> Result<Resumed, Error> {
        let Some(stream) = self.stream.as_mut() else {
            if let Some(at) = self.retry_at {
                tokio::time::sleep_until(at).await;
                self.retry_at = None;
            }
            return match self.open.open(self.at, self.reveal).await {
                Ok(stream) => {
                    self.stream = Some(stream);
                    // The daemon answered: the next outage starts from the
                    // shortest wait again.
                    self.outages += 1;
                    self.waits = Box::new(self.backoff.schedule(self.outages));
                    Ok(Resumed::Opened { after: self.at })
                }
                Err(e) => self.failed(e),
            };
        };
        match stream.next().await {
            Some(Ok(event)) => {
                self.at = Some(Position {
                    revision: event.revision(),
                    epoch: event.epoch(),
                });
                Ok(Resumed::Event(event))
            }
            Some(Err(e)) => {
                self.stream = None;
                self.failed(e)
            }
            None => {
                self.stream = None;
                let error = Error::Unreachable {
                    endpoint: self.open.endpoint().to_owned(),
                    reason: "the daemon ended the stream".into(),
                };
                self.failed(error)
            }
        }
    }

    fn schedule_retry(&mut self) -> Duration {
        let wait = self.waits.next().unwrap_or(self.backoff.max());
        self.retry_at = Some(Instant::now() + wait);
        wait
    }

    fn failed(&mut self, error: Error) -> Result<Resumed, Error> {
        let retry_in = self.schedule_retry();
        if error.is_transient() {
            Ok(Resumed::Lost { error, retry_in })
        } else {
            Err(error)
        }
    }
}

impl Client {
    /// A watch of `names` (all when empty) that reconnects with `backoff`
    /// and resumes after the last event it delivered, across daemon
    /// restarts. Nothing is sent until the first [`Resuming::next`].
    pub fn watch_resuming(&self, names: &[String], reveal: bool, backoff: Backoff) -> Resuming {
        Resuming::new(
            Box::new(ClientOpen {
                client: self.clone(),
                names: names.to_vec(),
            }),
            reveal,
            backoff,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;
    use crate::client::{Change, Origin};

    /// One scripted answer to an open: nothing listens, a refusal, or a
    /// stream of changes to these revisions that then ends as `End` says.
    enum Script {
        Refused,
        Rejected,
        Stream(Vec<u64>, End),
    }

    #[derive(Clone, Copy)]
    enum End {
        /// A transport error.
        Drop,
        /// The daemon closes the stream.
        Close,
        /// It stays open.
        Stay,
    }

    struct Scripted {
        script: Mutex<VecDeque<Script>>,
        opened: Mutex<Vec<(Instant, Option<Position>)>>,
    }

    fn change(revision: u64) -> WatchEvent {
        WatchEvent::Change {
            epoch: 7,
            change: Change {
                revision,
                time_ms: 0,
                origin: Origin::Set,
                detail: String::new(),
                changes: Vec::new(),
                host: String::new(),
            },
        }
    }

    fn gone() -> Error {
        Error::Unreachable {
            endpoint: "test".into(),
            reason: "connection refused".into(),
        }
    }

    impl Open for std::sync::Arc<Scripted> {
        fn open(
            &self,
            after: Option<Position>,
            _reveal: bool,
        ) -> BoxFuture<'_, Result<Events, Error>> {
            self.opened.lock().unwrap().push((Instant::now(), after));
            let next = self.script.lock().unwrap().pop_front();
            Box::pin(async move {
                match next.expect("the script covers every open") {
                    Script::Refused => Err(gone()),
                    Script::Rejected => Err(Error::Rejected {
                        code: crate::Code::Unauthenticated,
                        message: "a token is required to reveal secrets".into(),
                        problems: Vec::new(),
                    }),
                    Script::Stream(revisions, end) => {
                        let items = futures_util::stream::iter(
                            revisions.into_iter().map(|r| Ok(change(r))),
                        );
                        Ok(match end {
                            End::Drop => items
                                .chain(futures_util::stream::once(async { Err(gone()) }))
                                .boxed(),
                            End::Close => items.boxed(),
                            End::Stay => items.chain(futures_util::stream::pending()).boxed(),
                        })
                    }
                }
            })
        }

        fn endpoint(&self) -> &str {
            "test"
        }
    }

    fn scripted(script: Vec<Script>, backoff: Backoff) -> (Resuming, std::sync::Arc<Scripted>) {
        let s = std::sync::Arc::new(Scripted {
            script: Mutex::new(script.into()),
            opened: Mutex::new(Vec::new()),
        });
        (Resuming::new(Box::new(s.clone()), false, backoff), s)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Two outages, the second after a reconnection: each starts again at
    /// the shortest wait, and the watch resumes after the last revision.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn each_outage_starts_from_the_shortest_wait_and_resumes_after_the_last_event() {
        use End::*;
        use Script::*;
        let backoff = Backoff::default()
            .with_min(ms(100))
            .with_max(ms(400))
            .without_jitter();
        let (mut watch, script) = scripted(
            vec![
                Stream(vec![1], Drop),
                Refused,
                Refused,
                Refused,
                Stream(vec![2, 3], Drop),
                Refused,
                Stream(vec![], Stay),
            ],
            backoff,
        );
        let mut said = Vec::new();
        // Twelve steps reach the last stream, which stays open.
        for _ in 0..12 {
            said.push(match watch.next().await.expect("only transient errors") {
                Resumed::Opened { after } => {
                    format!("opened after {:?}", after.map(|p| p.revision))
                }
                Resumed::Event(e) => format!("event {}", e.revision()),
                Resumed::Lost { retry_in, .. } => {
                    format!("lost, retry in {}", retry_in.as_millis())
                }
            });
        }
        assert_eq!(
            said,
            [
                "opened after None",
                "event 1",
                "lost, retry in 100",
                "lost, retry in 200",
                "lost, retry in 400",
                "lost, retry in 400",
                "opened after Some(1)",
                "event 2",
                "event 3",
                // The second outage waits the shortest wait again, not the longest.
                "lost, retry in 100",
                "lost, retry in 200",
                "opened after Some(3)",
            ]
        );
        // The waits really happen, in virtual time, between the opens (to
        // the 10 ms: tokio's timer rounds a deadline up to its next tick).
        let opened = script.opened.lock().unwrap().clone();
        let gaps: Vec<u128> = opened
            .windows(2)
            .map(|w| (w[1].0 - w[0].0).as_millis() / 10 * 10)
            .collect();
        assert_eq!(gaps, [100, 200, 400, 400, 100, 200]);
        let resumed: Vec<Option<u64>> = opened.iter().map(|o| o.1.map(|p| p.revision)).collect();
        assert_eq!(
            resumed,
            [None, Some(1), Some(1), Some(1), Some(1), Some(3), Some(3)]
        );
    }

    /// A refusal is the caller's to judge, and the watch goes on after
    /// it; a stream the daemon closes is lost like a dropped one.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_refusal_is_an_error_and_a_closed_stream_is_lost() {
        use End::*;
        use Script::*;
        let backoff = Backoff::default().with_min(ms(100)).without_jitter();
        let (mut watch, script) = scripted(
            vec![Rejected, Stream(vec![4], Close), Stream(vec![], Stay)],
            backoff,
        );
        let refused = watch.next().await.expect_err("a refusal");
        assert!(!refused.is_transient(), "{refused}");
        watch.set_reveal(false);
        assert!(matches!(
            watch.next().await,
            Ok(Resumed::Opened { after: None })
        ));
        assert!(matches!(watch.next().await, Ok(Resumed::Event(_))));
        let Ok(Resumed::Lost { error, retry_in }) = watch.next().await else {
            panic!("a closed stream is lost");
        };
        assert_eq!(
            error.to_string(),
            Error::Unreachable {
                endpoint: "test".into(),
                reason: "the daemon ended the stream".into()
            }
            .to_string()
        );
        // The open after the refusal reset the schedule.
        assert_eq!(retry_in, ms(100));
        let Ok(Resumed::Opened { after }) = watch.next().await else {
            panic!("reopened");
        };
        assert_eq!(
            after,
            Some(Position {
                revision: 4,
                epoch: 7
            })
        );
        let opened = script.opened.lock().unwrap();
        assert_eq!((opened[1].0 - opened[0].0).as_millis() / 10 * 10, 100);
    }
}
