//! The retry budget (a cfgd extension: Prefect has none): retries may not
//! multiply an outage.
//!
//! In the spirit of Finagle's `RetryBudget` and gRPC's retry throttling, a
//! retry is allowed only while the retries of the last
//! [`WINDOW_SECONDS`] stay under `ratio` × the first attempts of that
//! window plus a floor of `floor` retries per second:
//!
//! ```text
//! retries(window) + 1 ≤ ratio · first_attempts(window) + floor · WINDOW_SECONDS
//! ```
//!
//! There is one [`RetryBudget`] per task name ([`RetryBudget::named`]) and
//! one across all names ([`RetryBudget::global`]); the settings
//! ([`BudgetSettings`]) are read at the start of each run, so `cfg set`
//! changes them live, while the counts a budget keeps survive the change.
//!
//! The counts are kept per second in a ring of [`WINDOW_SECONDS`] atomic
//! slots, so a check is a few loads and one compare-and-swap, without a
//! lock. Under contention a check and its withdrawal are not one atomic
//! step, so concurrent retries may overdraw by at most one each — as
//! Finagle's budget does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long first attempts and retries count: ten one-second slots.
pub const WINDOW_SECONDS: u64 = 10;

/// The budget's settings, read at the start of each run.
///
/// # Default
/// Ratio 0.1 (one retry per ten first attempts), floor 1 retry per second,
/// per task name only. No budget applies unless
/// `PREFECT_TASKS_DEFAULT_RETRY_BUDGET_RATIO` is set (Prefect has none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSettings {
    /// Retries allowed per first attempt in the window
    /// (`PREFECT_TASKS_DEFAULT_RETRY_BUDGET_RATIO`).
    pub ratio: f64,
    /// Retries per second allowed whatever the ratio
    /// (`PREFECT_TASKS_DEFAULT_RETRY_BUDGET_FLOOR`).
    pub floor: f64,
    /// Whether a retry must also fit the budget shared by every task name
    /// (`PREFECT_TASKS_DEFAULT_RETRY_BUDGET_GLOBAL`).
    pub global: bool,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            ratio: 0.1,
            floor: 1.0,
            global: false,
        }
    }
}

impl BudgetSettings {
    /// The budget a window allows for `first_attempts`.
    fn allowance(&self, first_attempts: u64) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let firsts = first_attempts as f64;
        self.ratio * firsts + self.floor * WINDOW_SECONDS as f64
    }
}

// A slot packs the second it counts (24 bits, compared modulo 2^24), the
// first attempts (20 bits) and the retries (20 bits) of that second, so
// that one compare-and-swap updates it and resets a stale one.
const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const EPOCH_MASK: u64 = (1 << 24) - 1;

fn pack(epoch: u64, firsts: u64, retries: u64) -> u64 {
    ((epoch & EPOCH_MASK) << (2 * COUNT_BITS)) | (firsts << COUNT_BITS) | retries
}

fn unpack(slot: u64) -> (u64, u64, u64) {
    (
        slot >> (2 * COUNT_BITS),
        (slot >> COUNT_BITS) & COUNT_MAX,
        slot & COUNT_MAX,
    )
}

/// One token budget: first attempts and retries of the last
/// [`WINDOW_SECONDS`].
#[derive(Debug)]
pub struct RetryBudget {
    slots: [AtomicU64; WINDOW_SECONDS as usize],
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryBudget {
    /// An empty budget (no first attempts, no retries).
    pub fn new() -> Self {
        Self {
            // Epoch 0 with zero counts; a stale slot reads as empty anyway.
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The budget of the task named `name` (one per name in the process).
    pub fn named(name: &str) -> Arc<RetryBudget> {
        static BY_NAME: LazyLock<Mutex<HashMap<String, Arc<RetryBudget>>>> =
            LazyLock::new(Mutex::default);
        let mut by_name = BY_NAME.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(budget) = by_name.get(name) {
            return budget.clone();
        }
        let budget = Arc::new(RetryBudget::new());
        by_name.insert(name.to_owned(), budget.clone());
        budget
    }

    /// The budget shared by every task name.
    pub fn global() -> &'static RetryBudget {
        static GLOBAL: LazyLock<RetryBudget> = LazyLock::new(RetryBudget::new);
        &GLOBAL
    }

    /// Counts a first attempt at `now` (seconds on any monotonic-enough
    /// clock; see [`now_seconds`]).
    pub fn deposit(&self, now: u64) {
        self.update(now, |firsts, retries| Some((firsts + 1, retries)));
    }

    /// Counts a retry at `now` if the budget allows one; `false` if not.
    pub fn try_withdraw(&self, settings: &BudgetSettings, now: u64) -> bool {
        let (firsts, retries) = self.counts(now);
        #[allow(clippy::cast_precision_loss)]
        if retries as f64 + 1.0 > settings.allowance(firsts) {
            return false;
        }
        self.update(now, |firsts, retries| Some((firsts, retries + 1)));
        true
    }

    /// Gives back a retry counted at `now` (another budget refused it).
    pub fn refund(&self, now: u64) {
        self.update(now, |firsts, retries| {
            retries.checked_sub(1).map(|r| (firsts, r))
        });
    }

    /// The first attempts and retries counted in the window ending at
    /// `now`.
    pub fn counts(&self, now: u64) -> (u64, u64) {
        // A slot counts when its second is one of the window's, `now - 9`
        // to `now` modulo 2^24: when the slot minus the window's first
        // second, both in the top bits, is below ten seconds there (one
        // subtraction and one comparison per slot on the retry path).
        let first = pack(now.wrapping_sub(WINDOW_SECONDS - 1), 0, 0);
        let window = pack(WINDOW_SECONDS, 0, 0);
        let (mut firsts, mut retries) = (0, 0);
        for slot in &self.slots {
            let slot = slot.load(Ordering::Relaxed);
            if slot.wrapping_sub(first) < window {
                let (_, f, r) = unpack(slot);
                firsts += f;
                retries += r;
            }
        }
        (firsts, retries)
    }

    /// Applies `f` to the counts of `now`'s slot (a stale slot starts from
    /// zero); `f` returning `None` leaves the slot as it is.
    fn update(&self, now: u64, f: impl Fn(u64, u64) -> Option<(u64, u64)>) {
        #[allow(clippy::cast_possible_truncation)]
        let slot = &self.slots[(now % WINDOW_SECONDS) as usize];
        let epoch = now & EPOCH_MASK;
        let mut current = slot.load(Ordering::Relaxed);
        loop {
            let (at, firsts, retries) = unpack(current);
            let (firsts, retries) = if at == epoch {
                (firsts, retries)
            } else {
                (0, 0)
            };
            let Some((firsts, retries)) = f(firsts, retries) else {
                return;
            };
            let next = pack(epoch, firsts.min(COUNT_MAX), retries.min(COUNT_MAX));
            match slot.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }
}

/// Whole seconds of `time` since the Unix epoch: the clock budgets count
/// in (a run reads it anyway to stamp its states).
pub fn now_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// [`now_seconds`] of a run's successive times, which mostly fall in one
/// second: a time in the span last converted costs two comparisons
/// instead of a subtraction from the epoch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds {
    second: u64,
    /// Times known to fall in `second`: `[from, until)`, from the time
    /// last converted to the end of its second; empty before the epoch or
    /// at the end of time.
    from: SystemTime,
    until: SystemTime,
}

impl Seconds {
    pub(crate) fn new(time: SystemTime) -> Self {
        let Ok(since) = time.duration_since(UNIX_EPOCH) else {
            return Self {
                second: 0,
                from: time,
                until: time,
            };
        };
        // To the end of `time`'s second.
        let rest = Duration::new(0, 1_000_000_000 - since.subsec_nanos());
        Self {
            second: since.as_secs(),
            from: time,
            until: time.checked_add(rest).unwrap_or(time),
        }
    }

    /// The second last converted (at first, the one made with).
    pub(crate) fn second(&self) -> u64 {
        self.second
    }

    /// `now_seconds(time)`.
    #[inline]
    pub(crate) fn of(&mut self, time: SystemTime) -> u64 {
        if !(self.from <= time && time < self.until) {
            *self = Self::new(time);
        }
        self.second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HALF: BudgetSettings = BudgetSettings {
        ratio: 0.5,
        floor: 0.0,
        global: false,
    };

    #[test]
    fn retries_stay_under_the_ratio_of_first_attempts() {
        let b = RetryBudget::new();
        assert!(!b.try_withdraw(&HALF, 100), "no first attempt, no floor");
        for _ in 0..4 {
            b.deposit(100);
        }
        assert!(b.try_withdraw(&HALF, 100));
        assert!(b.try_withdraw(&HALF, 101));
        assert!(
            !b.try_withdraw(&HALF, 101),
            "2 retries for 4 first attempts"
        );
        assert_eq!(b.counts(101), (4, 2));
        // Two more first attempts refill one retry.
        b.deposit(102);
        b.deposit(102);
        assert!(b.try_withdraw(&HALF, 102));
        assert!(!b.try_withdraw(&HALF, 102));
    }

    #[test]
    fn the_window_forgets_after_ten_seconds_and_the_floor_always_allows() {
        let b = RetryBudget::new();
        for _ in 0..2 {
            b.deposit(7);
        }
        assert!(b.try_withdraw(&HALF, 7));
        assert!(!b.try_withdraw(&HALF, 16), "second 7 still counts at 16");
        assert_eq!(b.counts(17), (0, 0), "second 7 has left the window");
        let floor = BudgetSettings {
            ratio: 0.0,
            floor: 0.2,
            global: false,
        };
        assert!(b.try_withdraw(&floor, 17));
        assert!(b.try_withdraw(&floor, 18));
        assert!(!b.try_withdraw(&floor, 19), "0.2/s over 10 s: 2 retries");
        b.refund(19);
        assert_eq!(b.counts(19), (0, 2), "nothing counted at 19 to refund");
        b.refund(18);
        assert!(b.try_withdraw(&floor, 19));
    }

    #[test]
    fn the_window_wraps_with_the_seconds_it_packs() {
        // Seconds are kept modulo 2^24: a window across the wrap counts
        // both sides of it.
        let wrap = EPOCH_MASK + 1;
        let b = RetryBudget::new();
        b.deposit(wrap - 2);
        b.deposit(wrap + 1);
        assert_eq!(b.counts(wrap + 1), (2, 0));
        assert_eq!(b.counts(wrap + 8), (1, 0), "wrap - 2 has left the window");
        assert_eq!(b.counts(wrap - 3), (0, 0), "both are ahead of it");
    }

    proptest::proptest! {
        #[test]
        fn counts_are_the_slots_of_the_last_ten_seconds(
            slots in proptest::collection::vec(proptest::num::u64::ANY, 10),
            now in proptest::num::u64::ANY,
            near in 0u64..12,
        ) {
            let b = RetryBudget::new();
            for (slot, value) in b.slots.iter().zip(&slots) {
                slot.store(*value, Ordering::Relaxed);
            }
            // Times near a slot's second as well as anywhere.
            let near = (slots[0] >> (2 * COUNT_BITS)).wrapping_add(near);
            for now in [now, near] {
                let (mut firsts, mut retries) = (0, 0);
                for &slot in &slots {
                    let (epoch, f, r) = unpack(slot);
                    if (now.wrapping_sub(epoch) & EPOCH_MASK) < WINDOW_SECONDS {
                        firsts += f;
                        retries += r;
                    }
                }
                proptest::prop_assert_eq!(b.counts(now), (firsts, retries));
            }
        }
    }

    #[test]
    fn seconds_match_now_seconds_across_a_second_and_before_the_epoch() {
        let at = |s: u64, nanos: u32| UNIX_EPOCH + Duration::new(s, nanos);
        let mut seconds = Seconds::new(at(100, 999_999_999));
        for time in [
            at(100, 0),
            at(100, 5),
            at(101, 0),
            at(100, 999_999_999),
            at(99, 3),
            at(0, 0),
            UNIX_EPOCH - Duration::from_secs(5),
            UNIX_EPOCH - Duration::from_nanos(1),
            at(7, 1),
        ] {
            assert_eq!(seconds.of(time), now_seconds(time), "{time:?}");
        }
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(Seconds::new(before).of(before), 0);
    }

    #[test]
    fn budgets_are_per_name() {
        let a = RetryBudget::named("budget-test-a");
        assert!(Arc::ptr_eq(&a, &RetryBudget::named("budget-test-a")));
        assert!(!Arc::ptr_eq(&a, &RetryBudget::named("budget-test-b")));
    }

    #[test]
    fn counts_saturate_instead_of_spilling_into_the_next_field() {
        let b = RetryBudget::new();
        b.slots[3].store(pack(3, COUNT_MAX, 0), Ordering::Relaxed);
        b.deposit(3);
        assert_eq!(b.counts(3), (COUNT_MAX, 0));
    }
}
