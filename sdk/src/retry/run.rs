//! Run records: one [`TaskRun`] per task call and one [`FlowRun`] per flow
//! call, each with its attempt count and state history. A retry adds states
//! to the same run; it never creates a new one.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cfgd_settings::Delays;

use super::state::{State, StateName};

/// A run's id: unique within the process, increasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId(u64);

impl RunId {
    /// A new id.
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        RunId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// `<owner>-<id>`, the id in lower-case hex as [`RunId`] displays. Built
/// by hand: every run names itself, and the formatting machinery cost more
/// than the rest of a failed attempt.
fn run_name(owner: &str, id: RunId) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 16];
    let mut at = hex.len();
    let mut n = id.0;
    loop {
        at -= 1;
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n & 0xf) as usize;
        hex[at] = DIGITS[digit];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    let mut name = String::with_capacity(owner.len() + 1 + hex.len() - at);
    name.push_str(owner);
    name.push('-');
    name.extend(hex[at..].iter().map(|&b| char::from(b)));
    name
}

/// The states of a run, oldest first, and its attempt count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct History {
    states: Vec<State>,
    pub(crate) run_count: u32,
}

impl History {
    pub(crate) fn new(retries: u32) -> Self {
        // Pending, Running, two per retry, the final state.
        let capacity = 3 + 2 * retries.min(16) as usize;
        let mut states = Vec::with_capacity(capacity);
        states.push(State::new(StateName::Pending));
        Self {
            states,
            run_count: 0,
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, state: State) {
        debug_assert!(!self.current().is_final(), "a run ends once");
        if state.state_type() == super::state::StateType::Running {
            self.run_count += 1;
        }
        self.states.push(state);
    }

    #[inline]
    pub(crate) fn current(&self) -> &State {
        self.states.last().expect("a history starts with Pending")
    }
}

/// What a run resolved when it began: Prefect's `empirical_policy`, and
/// the settings revision its defaults came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Policy {
    pub(crate) retries: u32,
    pub(crate) retry_delay: Arc<Delays>,
    pub(crate) retry_jitter_factor: Option<f64>,
    pub(crate) settings_revision: Option<u64>,
}

/// What every run record has.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunCore {
    pub(crate) id: RunId,
    pub(crate) name: String,
    pub(crate) policy: Policy,
    pub(crate) history: History,
}

impl RunCore {
    /// A run of `owner_name`, in `Pending`.
    pub(crate) fn new(owner_name: &str, policy: Policy) -> Self {
        let id = RunId::next();
        Self {
            id,
            name: run_name(owner_name, id),
            history: History::new(policy.retries),
            policy,
        }
    }
}

/// A run record: what the engine needs of a [`TaskRun`] or [`FlowRun`].
pub(crate) trait Record {
    fn core(&self) -> &RunCore;
    fn core_mut(&mut self) -> &mut RunCore;
}

macro_rules! run_accessors {
    () => {
        /// The run's id.
        pub fn id(&self) -> RunId {
            self.core.id
        }

        /// The run's name: the task or flow name and the id.
        pub fn name(&self) -> &str {
            &self.core.name
        }

        /// How many attempts have started (each entry into a Running-type
        /// state); `retries + 1` at most.
        pub fn run_count(&self) -> u32 {
            self.core.history.run_count
        }

        /// The retries this run allows, resolved at its start.
        pub fn retries(&self) -> u32 {
            self.core.policy.retries
        }

        /// The delays this run uses, resolved at its start (retry *k*
        /// waits [`Delays::for_retry`]`(k)`, before jitter).
        pub fn retry_delays(&self) -> &Delays {
            &self.core.policy.retry_delay
        }

        /// The jitter factor this run uses, resolved at its start.
        pub fn retry_jitter_factor(&self) -> Option<f64> {
            self.core.policy.retry_jitter_factor
        }

        /// The settings revision the run's defaults were read at (`None`
        /// when they did not come from the daemon: fixed values, or a local
        /// view while it was unreachable). Every default of a run comes
        /// from this one revision.
        pub fn settings_revision(&self) -> Option<u64> {
            self.core.policy.settings_revision
        }

        /// The current (last) state.
        pub fn state(&self) -> &State {
            self.core.history.current()
        }

        /// Every state, oldest first.
        pub fn states(&self) -> &[State] {
            &self.core.history.states
        }

        /// The state names, oldest first (`["Pending", "Running", …]`).
        pub fn state_names(&self) -> Vec<&'static str> {
            self.core
                .history
                .states
                .iter()
                .map(|s| s.name().as_str())
                .collect()
        }
    };
}

/// One call of a task: its attempts and states.
///
/// History: `Pending, Running, (AwaitingRetry, Retrying)*, <final>`, with
/// `Retrying` straight after the failed attempt when the delay is zero.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRun {
    pub(crate) core: RunCore,
    task_name: Cow<'static, str>,
    flow_run_id: Option<RunId>,
}

impl TaskRun {
    pub(crate) fn new(
        task_name: Cow<'static, str>,
        flow_run_id: Option<RunId>,
        core: RunCore,
    ) -> Self {
        Self {
            core,
            task_name,
            flow_run_id,
        }
    }

    run_accessors!();

    /// The name of the task this run belongs to.
    pub fn task_name(&self) -> &str {
        &self.task_name
    }

    /// The flow run this task ran in, if it ran inside one.
    pub fn flow_run_id(&self) -> Option<RunId> {
        self.flow_run_id
    }
}

impl Record for TaskRun {
    fn core(&self) -> &RunCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut RunCore {
        &mut self.core
    }
}

/// One call of a flow: its attempts and states, and the task runs it
/// started.
///
/// History: `Pending, Running, (AwaitingRetry, Running)*, <final>`: as in
/// Prefect, a retried flow passes through `AwaitingRetry` even when the
/// delay is zero, and its new attempt is named `Running`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRun {
    pub(crate) core: RunCore,
    flow_name: Cow<'static, str>,
    pub(crate) task_runs: Vec<TaskRun>,
}

impl FlowRun {
    pub(crate) fn new(flow_name: Cow<'static, str>, core: RunCore) -> Self {
        Self {
            core,
            flow_name,
            task_runs: Vec::new(),
        }
    }

    run_accessors!();

    /// The name of the flow this run belongs to.
    pub fn flow_name(&self) -> &str {
        &self.flow_name
    }

    /// The task runs started inside this flow run, in the order they
    /// finished, across all its attempts — each with its own history (as
    /// Prefect's server lists a flow run's task runs).
    pub fn task_runs(&self) -> &[TaskRun] {
        &self.task_runs
    }
}

impl Record for FlowRun {
    fn core(&self) -> &RunCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut RunCore {
        &mut self.core
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32) -> Policy {
        Policy {
            retries,
            retry_delay: Arc::new(Delays::scalar(0.0).unwrap()),
            retry_jitter_factor: None,
            settings_revision: Some(7),
        }
    }

    #[test]
    fn ids_are_unique_and_names_carry_them() {
        let a = TaskRun::new("fetch".into(), None, RunCore::new("fetch", policy(0)));
        let b = TaskRun::new("fetch".into(), None, RunCore::new("fetch", policy(0)));
        assert!(b.id() > a.id());
        assert_eq!(a.name(), format!("fetch-{}", a.id()));
        assert_eq!(a.state_names(), ["Pending"]);
        assert_eq!(a.run_count(), 0);
        assert_eq!(a.settings_revision(), Some(7));
    }

    #[test]
    fn names_spell_the_id_as_it_displays() {
        for id in [0, 1, 0xf, 0x10, 0xabc, u64::from(u32::MAX), u64::MAX] {
            let id = RunId(id);
            assert_eq!(run_name("task", id), format!("task-{id}"));
        }
        assert_eq!(run_name("", RunId(0)), "-0");
    }

    #[test]
    fn run_count_counts_running_type_entries() {
        let mut run = FlowRun::new("f".into(), RunCore::new("f", policy(1)));
        let h = &mut run.core.history;
        h.push(State::new(StateName::Running));
        h.push(State::new(StateName::AwaitingRetry));
        h.push(State::new(StateName::Running));
        h.push(State::new(StateName::Completed));
        assert_eq!(run.run_count(), 2);
        assert_eq!(run.state().name(), StateName::Completed);
        assert!(run.task_runs().is_empty());
    }
}
