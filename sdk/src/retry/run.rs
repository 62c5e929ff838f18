//! Run records: one [`TaskRun`] per task call and one [`FlowRun`] per flow
//! call, each with its attempt count and state history. A retry adds states
//! to the same run; it never creates a new one.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// The states of a run, oldest first, and its attempt count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct History {
    states: Vec<State>,
    run_count: u32,
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

    pub(crate) fn push(&mut self, state: State) {
        if state.state_type() == super::state::StateType::Running {
            self.run_count += 1;
        }
        self.states.push(state);
    }

    pub(crate) fn current(&self) -> &State {
        self.states.last().expect("a history starts with Pending")
    }
}

macro_rules! run_accessors {
    () => {
        /// The run's id.
        pub fn id(&self) -> RunId {
            self.id
        }

        /// The run's name: the task or flow name and the id.
        pub fn name(&self) -> &str {
            &self.name
        }

        /// How many attempts have started (each entry into a Running-type
        /// state); `retries + 1` at most.
        pub fn run_count(&self) -> u32 {
            self.history.run_count
        }

        /// The retries this run allows, resolved at its start.
        pub fn retries(&self) -> u32 {
            self.retries
        }

        /// The current (last) state.
        pub fn state(&self) -> &State {
            self.history.current()
        }

        /// Every state, oldest first.
        pub fn states(&self) -> &[State] {
            &self.history.states
        }

        /// The state names, oldest first (`["Pending", "Running", …]`).
        pub fn state_names(&self) -> Vec<&'static str> {
            self.history
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
    id: RunId,
    name: String,
    task_name: Cow<'static, str>,
    flow_run_id: Option<RunId>,
    retries: u32,
    pub(crate) history: History,
}

impl TaskRun {
    pub(crate) fn new(
        task_name: Cow<'static, str>,
        flow_run_id: Option<RunId>,
        retries: u32,
    ) -> Self {
        let id = RunId::next();
        Self {
            id,
            name: format!("{task_name}-{id}"),
            task_name,
            flow_run_id,
            retries,
            history: History::new(retries),
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

/// One call of a flow: its attempts and states.
///
/// History: `Pending, Running, (AwaitingRetry, Running)*, <final>`: as in
/// Prefect, a retried flow passes through `AwaitingRetry` even when the
/// delay is zero, and its new attempt is named `Running`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowRun {
    id: RunId,
    name: String,
    flow_name: Cow<'static, str>,
    retries: u32,
    pub(crate) history: History,
}

impl FlowRun {
    pub(crate) fn new(flow_name: Cow<'static, str>, retries: u32) -> Self {
        let id = RunId::next();
        Self {
            id,
            name: format!("{flow_name}-{id}"),
            flow_name,
            retries,
            history: History::new(retries),
        }
    }

    run_accessors!();

    /// The name of the flow this run belongs to.
    pub fn flow_name(&self) -> &str {
        &self.flow_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_names_carry_them() {
        let a = TaskRun::new("fetch".into(), None, 0);
        let b = TaskRun::new("fetch".into(), None, 0);
        assert!(b.id() > a.id());
        assert_eq!(a.name(), format!("fetch-{}", a.id()));
        assert_eq!(a.state_names(), ["Pending"]);
        assert_eq!(a.run_count(), 0);
    }

    #[test]
    fn run_count_counts_running_type_entries() {
        let mut run = FlowRun::new("f".into(), 1);
        run.history.push(State::new(StateName::Running));
        run.history.push(State::new(StateName::AwaitingRetry));
        run.history.push(State::new(StateName::Running));
        run.history.push(State::new(StateName::Completed));
        assert_eq!(run.run_count(), 2);
        assert_eq!(run.state().name(), StateName::Completed);
    }
}
