//! Where a run's defaults come from: the [`RetryDefaults`] trait, the
//! process-wide source ([`set_global_defaults`]), and the fallback when none
//! is installed — the built-in catalogue resolved with the process
//! environment ([`FixedDefaults::from_process_env`]).
//!
//! A run reads its defaults when it starts, so a settings change reaches the
//! next run of an already-built task (Prefect reads them once, when the task
//! is defined). It reads them all at once, as one [`Defaults`] taken from
//! one view of the settings, and records the revision of that view
//! ([`TaskRun::settings_revision`](super::TaskRun::settings_revision)): a
//! batched `cfg set` of retries and delays reaches a run whole or not at
//! all.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use cfgd_settings::{Catalog, Delays, Layer, LayerKind, Layers, Value, resolve};

use super::budget::BudgetSettings;

/// Every default a run may use, read from one view of the settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults<'a> {
    /// `PREFECT_TASKS_DEFAULT_RETRIES`.
    pub task_retries: u32,
    /// `PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS`.
    pub task_retry_delay: &'a Delays,
    /// `PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR` (`None`: no jitter).
    pub task_retry_jitter_factor: Option<f64>,
    /// `PREFECT_FLOWS_DEFAULT_RETRIES`.
    pub flow_retries: u32,
    /// `PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS`.
    pub flow_retry_delay: &'a Delays,
    /// The retry budget (`PREFECT_TASKS_DEFAULT_RETRY_BUDGET_*`); `None`
    /// when no ratio is set: no budget, as in Prefect.
    pub retry_budget: Option<BudgetSettings>,
    /// The longest server-suggested delay honoured
    /// (`PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS`).
    pub max_suggested_delay: Duration,
    /// The settings revision these values are at (`None`: not from the
    /// daemon — fixed values, or resolved locally while it is down).
    pub revision: Option<u64>,
}

/// A source of default retry parameters, read at the start of every run.
///
/// [`read`](RetryDefaults::read) hands every value at once, from one
/// consistent view, so that a run never mixes two revisions. Reads must be
/// cheap: a run calls it on its hot path. The SDK's live settings handle
/// implements it with one lock-free load.
pub trait RetryDefaults: Send + Sync {
    /// Calls `f` once with the current defaults.
    fn read(&self, f: &mut dyn FnMut(&Defaults<'_>));
}

impl dyn RetryDefaults + '_ {
    /// Calls `f` with the current defaults and returns what it returns.
    pub fn with<R>(&self, f: impl FnOnce(&Defaults<'_>) -> R) -> R {
        let mut f = Some(f);
        let mut out = None;
        self.read(&mut |d| out = f.take().map(|f| f(d)));
        out.expect("RetryDefaults::read calls its function once")
    }
}

/// The delay `0`, the catalogue's default.
pub(crate) fn zero_delay() -> &'static Delays {
    static ZERO: LazyLock<Delays> =
        LazyLock::new(|| Delays::scalar(0.0).expect("0 is a valid delay"));
    &ZERO
}

/// The default of `PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS`.
pub const DEFAULT_MAX_SUGGESTED_DELAY: Duration = Duration::from_secs(60);

/// Fixed default values.
///
/// # Default
/// Prefect's built-ins: no retries, no delay, no jitter; and cfgd's: no
/// retry budget, server-suggested delays up to 60 s.
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
    /// The retry budget, if any.
    pub retry_budget: Option<BudgetSettings>,
    /// The longest server-suggested delay honoured.
    pub max_suggested_delay: Duration,
}

impl Default for FixedDefaults {
    fn default() -> Self {
        Self {
            task_retries: 0,
            task_retry_delay: zero_delay().clone(),
            task_retry_jitter_factor: None,
            flow_retries: 0,
            flow_retry_delay: zero_delay().clone(),
            retry_budget: None,
            max_suggested_delay: DEFAULT_MAX_SUGGESTED_DELAY,
        }
    }
}

/// The names of the settings a run reads.
pub(crate) mod names {
    pub(crate) const TASK_RETRIES: &str = "PREFECT_TASKS_DEFAULT_RETRIES";
    pub(crate) const TASK_DELAY: &str = "PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS";
    pub(crate) const TASK_JITTER: &str = "PREFECT_TASKS_DEFAULT_RETRY_JITTER_FACTOR";
    pub(crate) const FLOW_RETRIES: &str = "PREFECT_FLOWS_DEFAULT_RETRIES";
    pub(crate) const FLOW_DELAY: &str = "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS";
    pub(crate) const BUDGET_RATIO: &str = "PREFECT_TASKS_DEFAULT_RETRY_BUDGET_RATIO";
    pub(crate) const BUDGET_FLOOR: &str = "PREFECT_TASKS_DEFAULT_RETRY_BUDGET_FLOOR";
    pub(crate) const BUDGET_GLOBAL: &str = "PREFECT_TASKS_DEFAULT_RETRY_BUDGET_GLOBAL";
    pub(crate) const MAX_SUGGESTED: &str =
        "PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS";
}

/// Builds [`Defaults`] from a lookup of typed values by canonical name —
/// one view of the settings — so every source reads them the same way.
pub(crate) fn from_values<'a>(
    value: impl Fn(&str) -> Option<&'a Value>,
    revision: Option<u64>,
) -> Defaults<'a> {
    use names::*;
    let retries = |name: &str| {
        value(name)
            .and_then(Value::as_integer)
            .map_or(0, |n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
    };
    let delay = |name: &str| {
        value(name)
            .and_then(Value::as_delays)
            .unwrap_or(zero_delay())
    };
    let number = |name: &str| value(name).and_then(Value::as_number);
    let defaults = BudgetSettings::default();
    Defaults {
        task_retries: retries(TASK_RETRIES),
        task_retry_delay: delay(TASK_DELAY),
        task_retry_jitter_factor: number(TASK_JITTER),
        flow_retries: retries(FLOW_RETRIES),
        flow_retry_delay: delay(FLOW_DELAY),
        retry_budget: number(BUDGET_RATIO).map(|ratio| BudgetSettings {
            ratio,
            floor: number(BUDGET_FLOOR).unwrap_or(defaults.floor),
            global: value(BUDGET_GLOBAL)
                .and_then(Value::as_bool)
                .unwrap_or(defaults.global),
        }),
        max_suggested_delay: number(MAX_SUGGESTED)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(DEFAULT_MAX_SUGGESTED_DELAY),
        revision,
    }
}

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
        let (env, errors) =
            Layer::from_env_lenient(&catalog, LayerKind::ProcessEnv, vars.iter().map(pair));
        if !errors.is_empty() {
            tracing::warn!(
                "ignoring invalid retry settings in the environment: {}",
                cfgd_settings::Errors(errors)
            );
        }
        let defaults = Layer::defaults(&catalog);
        let resolution = resolve(&catalog, &Layers::new().with(&defaults).with(&env));
        let d = from_values(
            |name| resolution.get(name).and_then(|r| r.value.as_ref()),
            None,
        );
        Self::from(&d)
    }

    /// [`FixedDefaults::from_env_vars`] with this process's environment
    /// (variables that are not valid Unicode are skipped).
    pub fn from_process_env() -> Self {
        Self::from_env_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// These values as [`Defaults`] (at no revision).
    pub fn view(&self) -> Defaults<'_> {
        Defaults {
            task_retries: self.task_retries,
            task_retry_delay: &self.task_retry_delay,
            task_retry_jitter_factor: self.task_retry_jitter_factor,
            flow_retries: self.flow_retries,
            flow_retry_delay: &self.flow_retry_delay,
            retry_budget: self.retry_budget,
            max_suggested_delay: self.max_suggested_delay,
            revision: None,
        }
    }
}

impl From<&Defaults<'_>> for FixedDefaults {
    fn from(d: &Defaults<'_>) -> Self {
        Self {
            task_retries: d.task_retries,
            task_retry_delay: d.task_retry_delay.clone(),
            task_retry_jitter_factor: d.task_retry_jitter_factor,
            flow_retries: d.flow_retries,
            flow_retry_delay: d.flow_retry_delay.clone(),
            retry_budget: d.retry_budget,
            max_suggested_delay: d.max_suggested_delay,
        }
    }
}

fn pair<K: AsRef<str>, V: AsRef<str>>((k, v): &(K, V)) -> (&str, &str) {
    (k.as_ref(), v.as_ref())
}

impl RetryDefaults for FixedDefaults {
    fn read(&self, f: &mut dyn FnMut(&Defaults<'_>)) {
        f(&self.view());
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
        self.0.with(|d| d.fmt(f))
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
            ("PREFECT_TASKS_DEFAULT_RETRY_BUDGET_RATIO", "0.2"),
            ("PREFECT_TASKS_DEFAULT_RETRY_BUDGET_GLOBAL", "true"),
            (
                "PREFECT_TASKS_DEFAULT_RETRY_MAX_SUGGESTED_DELAY_SECONDS",
                "2.5",
            ),
            ("UNRELATED", "x"),
        ]);
        assert_eq!(
            d.retry_budget,
            Some(BudgetSettings {
                ratio: 0.2,
                floor: 1.0,
                global: true
            })
        );
        assert_eq!(d.max_suggested_delay, Duration::from_millis(2500));
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
        assert_eq!(with_source(Some(&own), |s| s.with(|d| d.task_retries)), 9);
        let shown = format!("{:?}", Snapshot(&*own));
        assert!(shown.contains("task_retries: 9"), "{shown}");
    }
}
