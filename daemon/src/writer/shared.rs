//! The writer's half for a fleet (the etcd store): writes that go to the
//! shared store in one transaction per chunk of a group, and the shared
//! changes of other daemons, applied in order between groups.
//!
//! A write is acknowledged once the shared store has it; then it is logged
//! locally, published and answered, the order of the file store with the
//! transaction in the place of the fsync. When another daemon wrote first
//! the transaction is refused with the changes this daemon had missed: the
//! writer puts its checkpoint back, applies them and applies the chunk
//! again (a compare-and-set then sees the new revision and fails, as it
//! must). A transaction whose outcome stays unknown is answered as such,
//! never retried blindly and never reported as applied: if it was applied
//! after all, it comes back through the watch like any other change.

use std::sync::Arc;
use std::time::Duration;

use super::{After, Answer, Outcome, Request, Writer, now_ms};
use crate::error::OpError;
use crate::store::{CommitError, Record, Remote, shared_seq};

/// Requests per shared transaction: each makes at most one record (two
/// operations: the record and its trim) and touches at most two profile
/// documents, so a chunk stays under etcd's 128 operations per txn.
const CHUNK: usize = 30;

/// Transactions a chunk may lose to other daemons before it is refused as
/// contended (the caller may try again).
const MAX_TRIES: u32 = 16;

impl Writer {
    /// Writes `requests` through the shared store, a chunk at a time.
    pub(super) fn shared_group(&mut self, mut requests: Vec<Request>) {
        while !requests.is_empty() {
            let rest = requests.split_off(requests.len().min(CHUNK));
            let chunk = std::mem::replace(&mut requests, rest);
            self.shared_chunk(chunk);
        }
    }

    fn shared_chunk(&mut self, chunk: Vec<Request>) {
        let mut tries = 0;
        // Shared changes taken in after a lost race: logged together with
        // the chunk's own records (one fsync), or alone if the chunk fails.
        let mut missed: Vec<Record> = Vec::new();
        loop {
            let checkpoint = self.core.clone();
            let now = now_ms();
            let host = self.host();
            let mut records = Vec::new();
            let mut results: Vec<Result<(Option<Record>, After), OpError>> =
                Vec::with_capacity(chunk.len());
            for req in &chunk {
                let result = self.apply(&req.op, now).map(|record| {
                    let record = record.map(|mut r| {
                        r.host = Some(host.clone());
                        r
                    });
                    (record, self.after())
                });
                if let Ok((Some(r), _)) = &result {
                    records.push(r.clone());
                }
                results.push(result);
            }
            if records.is_empty() {
                self.log_and_publish(missed);
                return self.answer(zip(chunk, results), Vec::new());
            }
            let profiles = self.core.profiles().clone();
            let shared = self
                .store
                .shared()
                .expect("a fleet's store has a shared half");
            let failure = match shared.commit(&records, &profiles) {
                Ok(()) => {
                    let last = records.last().map_or(0, |r| shared_seq(r.revision));
                    tracing::debug!(shared_revision = last, "shared change committed");
                    let own: Vec<u64> = records.iter().map(|r| r.revision).collect();
                    missed.extend(records);
                    let published = self.log_and_publish(missed);
                    let own = published
                        .into_iter()
                        .filter(|r| own.contains(&r.revision))
                        .collect();
                    return self.answer(zip(chunk, results), own);
                }
                Err(e) => e,
            };
            self.core = checkpoint;
            let error = match failure {
                CommitError::Behind(remote) => {
                    tries += 1;
                    match self.take_remote(&remote, true) {
                        Err(e) => e,
                        Ok(taken) => {
                            missed.extend(taken);
                            if tries >= MAX_TRIES {
                                OpError::Contended { tries }
                            } else {
                                // Another daemon is writing right now: a
                                // short random pause, growing with each lost
                                // race, keeps two writers from meeting again.
                                let cap = 1u64 << tries.min(5);
                                std::thread::sleep(Duration::from_micros(rand::random_range(
                                    0..=cap * 500,
                                )));
                                continue;
                            }
                        }
                    }
                }
                CommitError::Refused { transient, message } => {
                    tracing::warn!(error = %message, "a shared write was refused; it was not applied");
                    if transient {
                        OpError::SharedUnavailable(message)
                    } else {
                        OpError::SharedRefused(message)
                    }
                }
                CommitError::Unknown(message) => {
                    tracing::error!(error = %message, "a shared write's outcome is unknown; it may still be applied");
                    OpError::OutcomeUnknown(message)
                }
            };
            self.log_and_publish(missed);
            let answers = chunk
                .into_iter()
                .zip(results)
                .map(|(req, result)| (req.reply, result.and_then(|_| Err(error.clone()))))
                .collect();
            return self.answer(answers, Vec::new());
        }
    }

    /// Logs and publishes records the shared store already holds.
    fn log_and_publish(&mut self, records: Vec<Record>) -> Vec<Arc<Record>> {
        if records.is_empty() {
            return Vec::new();
        }
        self.log_committed(&records);
        let records: Vec<Arc<Record>> = records.into_iter().map(Arc::new).collect();
        self.publish(&records);
        records
    }

    /// Logs committed shared records locally. The shared store already
    /// has them, so a local failure does not undo them: it is reported
    /// (status), and the next start takes them from the shared store again.
    fn log_committed(&mut self, records: &[Record]) {
        match self.store.append(records) {
            Ok(()) => {
                if self.log_error.take().is_some() {
                    tracing::info!("the revision log can be written again");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                if self.log_error.as_ref() != Some(&msg) {
                    tracing::error!(error = %msg, "a shared change could not be logged locally; the shared store holds it and the next start takes it from there");
                }
                self.log_error = Some(msg);
            }
        }
        self.sync
            .dirty_since
            .get_or_insert_with(std::time::Instant::now);
    }

    /// `Op::Remote`: applies shared changes and answers.
    pub(super) fn remote_request(&mut self, req: Request) {
        let super::Op::Remote(remote) = &req.op else {
            unreachable!("only remote requests come here")
        };
        let result = self.ingest(remote, true).map(|()| Outcome {
            record: None,
            revision: self.core.revision(),
            resolution: self.core.resolution().clone(),
            profile: self.core.active_profile().to_owned(),
            layers: self.core.layer_set(),
            view: self.hub.view(),
        });
        let _ = req.reply.send(result);
    }

    /// Applies the shared changes of `remote` that this daemon has not
    /// applied, in order, then logs and publishes them.
    ///
    /// # Errors
    /// A gap that cannot be filled (nothing is applied then).
    pub(super) fn ingest(&mut self, remote: &Remote, may_read: bool) -> Result<(), OpError> {
        let records = self.take_remote(remote, may_read)?;
        self.log_and_publish(records);
        Ok(())
    }

    /// Applies the shared changes of `remote` that this daemon has not
    /// applied to the core, in order (a gap, changes the watch did not
    /// bring, is read from the shared store when `may_read`; a state the
    /// records do not reach is taken whole), and moves the shared position
    /// on. They are facts of the shared store: logging them is left to the
    /// caller, and a log that cannot be written does not undo them.
    ///
    /// # Errors
    /// A gap that cannot be filled (nothing is applied then).
    fn take_remote(&mut self, remote: &Remote, may_read: bool) -> Result<Vec<Record>, OpError> {
        let checkpoint = self.core.clone();
        let mut records = Vec::new();
        let mut position = None;
        if let Err(e) = self.apply_remote(remote, may_read, &mut records, &mut position) {
            self.core = checkpoint;
            return Err(e);
        }
        if let Some((seq, store_revision)) = position {
            self.store
                .shared()
                .expect("a fleet's store has a shared half")
                .applied(seq, store_revision);
        }
        Ok(records)
    }

    fn apply_remote(
        &mut self,
        remote: &Remote,
        may_read: bool,
        records: &mut Vec<Record>,
        position: &mut Option<(u64, i64)>,
    ) -> Result<(), OpError> {
        let mut gap = false;
        for r in &remote.records {
            let seq = shared_seq(self.core.revision());
            if r.seq <= seq {
                continue;
            }
            if r.seq != seq + 1 {
                if !may_read {
                    gap = true;
                    break;
                }
                let filled = self.read_since(seq)?;
                self.apply_remote(&filled, false, records, position)?;
                if r.seq != shared_seq(self.core.revision()) + 1 {
                    continue;
                }
            }
            records.push(self.core.remote(
                r.seq,
                &r.profiles,
                r.origin,
                &r.detail,
                r.time_ms,
                &r.host,
            ));
            *position = Some((r.seq, r.store_revision));
        }
        let seq = shared_seq(self.core.revision());
        // The head is further than the records reach (they were trimmed,
        // or the watch brought the head alone): read what is missing.
        if remote.state.is_none() && remote.head.is_some_and(|(head, _)| head > seq) {
            if may_read {
                let filled = self.read_since(seq)?;
                return self.apply_remote(&filled, false, records, position);
            }
            gap = true;
        }
        match &remote.state {
            Some(state) if state.seq >= seq => {
                let detail = if state.seq > seq {
                    tracing::warn!(
                        from = seq,
                        to = state.seq,
                        "taking the shared store's profiles whole"
                    );
                    format!(
                        "shared revision {}: this daemon was away for longer than the shared history reaches",
                        state.seq
                    )
                } else {
                    if **self.core.profiles() != state.profiles {
                        tracing::warn!(
                            shared_revision = seq,
                            "this daemon's profiles differ from the shared store's; taking the shared store's"
                        );
                    }
                    "this daemon's profiles were not the shared store's".to_owned()
                };
                if let Some(r) =
                    self.core
                        .shared_state(state.seq, &state.profiles, detail, now_ms())
                {
                    records.push(r);
                }
                *position = Some((state.seq, state.store_revision));
            }
            _ if gap => {
                return Err(OpError::SharedUnavailable(format!(
                    "the shared changes after revision {seq} could not all be read"
                )));
            }
            _ => {}
        }
        // The head moved without a new record (nothing to apply, but the
        // next write must compare with where it is now).
        if let Some((head, at)) = remote.head
            && head == shared_seq(self.core.revision())
            && position.is_none_or(|(s, r)| s < head || r < at)
        {
            *position = Some((head, at));
        }
        Ok(())
    }

    fn read_since(&mut self, seq: u64) -> Result<Remote, OpError> {
        self.store
            .shared()
            .expect("a fleet's store has a shared half")
            .since(seq)
            .map_err(OpError::SharedUnavailable)
    }

    fn host(&mut self) -> String {
        self.store
            .shared()
            .map(|s| s.host().to_owned())
            .unwrap_or_default()
    }
}

fn zip(chunk: Vec<Request>, results: Vec<Result<(Option<Record>, After), OpError>>) -> Vec<Answer> {
    chunk
        .into_iter()
        .zip(results)
        .map(|(req, result)| (req.reply, result))
        .collect()
}
