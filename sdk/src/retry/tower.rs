//! [`RetryPolicy`]: a `tower::retry::Policy` over the retry engine, so a
//! tonic or hyper client (any `tower::Service`) retries with a [`Task`]'s
//! parameters, the settings' defaults, its condition, the retry budget and
//! server-suggested delays — the same decisions, states, hooks and log
//! lines as [`Task::run`].
//!
//! ```
//! use std::time::Duration;
//! use cfgd_sdk::retry::{RetryPolicy, Task};
//! use tower::{Service, ServiceExt, retry::Retry, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
//! let seen = calls.clone();
//! let flaky = service_fn(move |n: u32| {
//!     let call = seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!     async move { if call < 2 { Err("unavailable") } else { Ok(n * 2) } }
//! });
//! let task = Task::new("double").retries(3).retry_delay(Duration::from_millis(100));
//! // Which results are failures, and the error the engine sees for them.
//! let policy = RetryPolicy::new(task, |r: &Result<u32, &'static str>| r.map(drop)).unwrap();
//! let mut client = Retry::new(policy, flaky);
//! assert_eq!(client.ready().await.unwrap().call(21).await, Ok(42));
//! assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
//! # }
//! ```
//!
//! The run begins when the first response arrives (its defaults are read
//! then), and each retry's state is stamped with the time it was scheduled
//! to start. The task's `timeout_seconds` does not apply (use
//! `tower::timeout`), and an async `retry_condition_fn` cannot: a policy
//! must decide at once ([`RetryPolicy::new`] refuses one).

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use super::condition::Condition;
use super::engine::{Engine, Step};
use super::error::ConfigError;
use super::outcome::Failure;
use super::task::{Task, TaskKind};

/// A `tower::retry::Policy` that retries through the retry engine.
///
/// `C` classifies a result: `Ok(())` completes the run; `Err(e)` fails the
/// attempt with `e`, which the task's condition, suggested-delay function
/// and log lines see.
pub struct RetryPolicy<E, C> {
    task: Arc<Task<E>>,
    classify: Arc<C>,
    run: Option<Engine<TaskKind<E>>>,
}

impl<E, C> RetryPolicy<E, C> {
    /// A policy running `task` for each request.
    ///
    /// # Errors
    /// The task's first invalid parameter, or
    /// [`ConfigError::AsyncCondition`] for an async condition.
    pub fn new(task: Task<E>, classify: C) -> Result<Self, ConfigError> {
        let task = task.build()?;
        if matches!(task.condition(), Some(Condition::Async(_))) {
            return Err(ConfigError::AsyncCondition);
        }
        Ok(Self {
            task: Arc::new(task),
            classify: Arc::new(classify),
            run: None,
        })
    }

    /// The task.
    pub fn task(&self) -> &Task<E> {
        &self.task
    }
}

/// A clone serves a new request: it shares the task, not the run.
impl<E, C> Clone for RetryPolicy<E, C> {
    fn clone(&self) -> Self {
        Self {
            task: self.task.clone(),
            classify: self.classify.clone(),
            run: None,
        }
    }
}

impl<E, C> fmt::Debug for RetryPolicy<E, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("task", &self.task.name())
            .field("running", &self.run.is_some())
            .finish_non_exhaustive()
    }
}

impl<Req, Res, SE, E, C> tower::retry::Policy<Req, Res, SE> for RetryPolicy<E, C>
where
    Req: Clone,
    E: fmt::Debug + fmt::Display,
    C: Fn(&Result<Res, SE>) -> Result<(), E>,
{
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _req: &mut Req, result: &mut Result<Res, SE>) -> Option<Self::Future> {
        let task = &*self.task;
        let engine = match &mut self.run {
            Some(engine) => engine,
            None => {
                let context = super::context::current().unwrap_or_default();
                match Engine::begin(task, &context) {
                    Ok(engine) => self.run.insert(engine),
                    // `new` checked the task; a source's invalid value stops here.
                    Err(_) => return None,
                }
            }
        };
        engine.start_attempt(task);
        let outcome = (self.classify)(result).map_err(Failure::Error);
        match engine.settle(task, outcome) {
            Step::Retry(wait) => {
                engine.starts_at(SystemTime::now() + wait);
                Some(tokio::time::sleep(wait))
            }
            Step::Done(_) => {
                self.run = None;
                None
            }
            Step::Ask(..) => unreachable!("RetryPolicy::new refuses async conditions"),
        }
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}
