//! Where a run's defaults come from: the [`RetryDefaults`] trait, the
//! process-wide source ([`set_global_defaults`]), and the fallback when none
//! is installed — the built-in catalogue resolved with the process
//! environment ([`FixedDefaults::from_process_env`]).
//!
//! A run reads its defaults when it starts, so a settings change reaches the
//! next run of an already-built task (Prefect reads them once, when the task
//! is defined). Only the parameters the call site leaves unset are read.

use std::fmt;
use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwapOption;
use cfgd_settings::{Catalog, Delays, Layer, LayerKind, resolve};

/// A source of default retry parameters, read at the start of every run.
///
/// Reads must be cheap: a run calls these on its hot path. The SDK's live
/// settings handle implements it with lock-free loads.
pub trait RetryDefaults: Send + Sync {
    /// `PREFECT_TASKS_DEFAULT_RETRIES`.
    fn task_retries(&self) -> u32;
    /// `PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS`.
    fn task_retry_delay(&self) -> Delays;
    /// `PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR` (`None`: no jitter).
    fn task_retry_jitter_factor(&self) -> Option<f64>;
    /// `PREFECT_FLOWS_DEFAULT_RETRIES`.
    fn flow_retries(&self) -> u32;
    /// `PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS`.
    fn flow_retry_delay(&self) -> Delays;
}

/// Fixed default values.
///
/// # Default
/// Prefect's built-ins: no retries, no delay, no jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedDefaults {
    /// Task retries.
    pub task_retries: u32,
    /// Task retry delay.
    pub task_retry_delay: Delays,
    /// Task jitter factor.
    pub task_retry_jitter_factor: Option<f64>,
    /// Flow retries.
    pub flow_retries: u32,
    /// Flow retry delay.
    pub flow_retry_delay: Delays,
}

impl Default for FixedDefaults {
    fn default() -> Self {
        let zero = Delays::scalar(0.0).expect("0 is a valid delay");
        Self {
            task_retries: 0,
            task_retry_delay: zero.clone(),
            task_retry_jitter_factor: None,
            flow_retries: 0,
            flow_retry_delay: zero,
        }
    }
}

const TASK_RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";
const TASK_DELAY: &str = "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS";
const TASK_JITTER: &str = "PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR";
const FLOW_RETRIES: &str = "PREFECT_FLOWS_DEFAULT_RETRIES";
const FLOW_DELAY: &str = "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS";

impl FixedDefaults {
    /// The built-in catalogue's defaults under the given environment
    /// variables (canonical names and their aliases, such as
    /// `PREFECT_TASK_DEFAULT_RETRIES`). A variable whose value does not
    /// parse is skipped with a warning, so one bad value does not discard
    /// the others.
    pub fn from_env_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let catalog = Catalog::builtin();
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let env = match Layer::from_env(&catalog, LayerKind::ProcessEnv, vars.iter().map(pair)) {
            Ok(layer) => layer,
            Err(errors) => {
                tracing::warn!("ignoring invalid retry settings in the environment: {errors}");
                let mut layer = Layer::empty(LayerKind::ProcessEnv);
                for var in &vars {
                    if let Ok(one) = Layer::from_env(&catalog, LayerKind::ProcessEnv, [pair(var)]) {
                        layer.values.extend(one.values);
                    }
                }
                layer
            }
        };
        let defaults = Layer::defaults(&catalog);
        let resolution = resolve(&catalog, &[&defaults, &env]);
        let value = |name: &str| resolution.get(name).and_then(|r| r.value.as_ref());
        let retries = |name: &str| {
            value(name)
                .and_then(|v| v.as_integer())
                .map_or(0, |n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
        };
        let delay = |name: &str| {
            value(name)
                .and_then(|v| v.as_delays().cloned())
                .unwrap_or_else(|| Delays::scalar(0.0).expect("0 is a valid delay"))
        };
        Self {
            task_retries: retries(TASK_RETRIES),
            task_retry_delay: delay(TASK_DELAY),
            task_retry_jitter_factor: value(TASK_JITTER).and_then(|v| v.as_number()),
            flow_retries: retries(FLOW_RETRIES),
            flow_retry_delay: delay(FLOW_DELAY),
        }
    }

    /// [`FixedDefaults::from_env_vars`] with this process's environment
    /// (variables that are not valid Unicode are skipped).
    pub fn from_process_env() -> Self {
        Self::from_env_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }
}

fn pair<K: AsRef<str>, V: AsRef<str>>((k, v): &(K, V)) -> (&str, &str) {
    (k.as_ref(), v.as_ref())
}

impl RetryDefaults for FixedDefaults {
    fn task_retries(&self) -> u32 {
        self.task_retries
    }
    fn task_retry_delay(&self) -> Delays {
        self.task_retry_delay.clone()
    }
    fn task_retry_jitter_factor(&self) -> Option<f64> {
        self.task_retry_jitter_factor
    }
    fn flow_retries(&self) -> u32 {
        self.flow_retries
    }
    fn flow_retry_delay(&self) -> Delays {
        self.flow_retry_delay.clone()
    }
}

static GLOBAL: ArcSwapOption<Installed> = ArcSwapOption::const_empty();

/// An installed source (a sized wrapper, so it fits in an `ArcSwap`).
struct Installed(Arc<dyn RetryDefaults>);

/// Installs the process-wide defaults source, replacing any earlier one.
/// Tasks and flows without their own source ([`Task::defaults`]) read it at
/// the start of each run.
///
/// [`Task::defaults`]: super::Task::defaults
pub fn set_global_defaults(source: Arc<dyn RetryDefaults>) {
    GLOBAL.store(Some(Arc::new(Installed(source))));
}

/// Removes the process-wide source; runs fall back to
/// [`FixedDefaults::from_process_env`] (computed once).
pub fn clear_global_defaults() {
    GLOBAL.store(None);
}

/// The source a run without its own uses now: the installed one, or the
/// built-in catalogue under the process environment.
pub fn global_defaults() -> Arc<dyn RetryDefaults> {
    match GLOBAL.load_full() {
        Some(installed) => installed.0.clone(),
        None => builtin().clone(),
    }
}

fn builtin() -> &'static Arc<dyn RetryDefaults> {
    static BUILTIN: LazyLock<Arc<dyn RetryDefaults>> =
        LazyLock::new(|| Arc::new(FixedDefaults::from_process_env()));
    &BUILTIN
}

/// Calls `f` with the source a run uses: `own` if given, else the global
/// one. Lock-free; no allocation.
pub(crate) fn with_source<R>(
    own: Option<&Arc<dyn RetryDefaults>>,
    f: impl FnOnce(&dyn RetryDefaults) -> R,
) -> R {
    if let Some(own) = own {
        return f(&**own);
    }
    let guard = GLOBAL.load();
    match guard.as_deref() {
        Some(installed) => f(&*installed.0),
        None => f(&**builtin()),
    }
}

/// A debug view of a source: its current values.
pub(crate) struct Snapshot<'a>(pub(crate) &'a dyn RetryDefaults);

impl fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryDefaults")
            .field("task_retries", &self.0.task_retries())
            .field("task_retry_delay", &self.0.task_retry_delay())
            .field(
                "task_retry_jitter_factor",
                &self.0.task_retry_jitter_factor(),
            )
            .field("flow_retries", &self.0.flow_retries())
            .field("flow_retry_delay", &self.0.flow_retry_delay())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_defaults_are_prefects() {
        let d = FixedDefaults::from_env_vars(Vec::<(String, String)>::new());
        assert_eq!(d, FixedDefaults::default());
    }

    #[test]
    fn environment_names_and_aliases_apply() {
        let d = FixedDefaults::from_env_vars([
            ("PREFECT_TASK_DEFAULT_RETRIES", "3"),
            ("PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS", "1,10,100"),
            ("PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR", "0.5"),
            ("PREFECT_FLOWS_DEFAULT_RETRIES", "2"),
            ("PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS", "7"),
            ("UNRELATED", "x"),
        ]);
        assert_eq!(d.task_retries, 3);
        assert_eq!(d.task_retry_delay.seconds(), [1.0, 10.0, 100.0]);
        assert_eq!(d.task_retry_jitter_factor, Some(0.5));
        assert_eq!(d.flow_retries, 2);
        assert_eq!(d.flow_retry_delay, Delays::scalar(7.0).unwrap());
    }

    #[test]
    fn one_invalid_variable_keeps_the_valid_ones() {
        let d = FixedDefaults::from_env_vars([
            ("PREFECT_TASKS_DEFAULT_RETRIES", "two"),
            ("PREFECT_FLOWS_DEFAULT_RETRIES", "4"),
        ]);
        assert_eq!(d.task_retries, 0);
        assert_eq!(d.flow_retries, 4);
    }

    #[test]
    fn an_own_source_wins_over_the_global_one() {
        let own: Arc<dyn RetryDefaults> = Arc::new(FixedDefaults {
            task_retries: 9,
            ..FixedDefaults::default()
        });
        assert_eq!(with_source(Some(&own), |s| s.task_retries()), 9);
        let shown = format!("{:?}", Snapshot(&*own));
        assert!(shown.contains("task_retries: 9"), "{shown}");
    }
}
