//! "Did you mean": the closest known name to an unknown one, only when it is
//! really close, at a bounded cost.
//!
//! With Prefect's whole catalogue (hundreds of names that all start with
//! `PREFECT_`) a similarity score that rewards a shared prefix suggests
//! `PREFECT_API_KEY` for anything `PREFECT_API_…`. Edits are what a typo
//! is, so a name is suggested only within a few edits (optimal string
//! alignment: insert, delete, substitute, swap two neighbours), the bound
//! growing with the name's length. The work per query is bounded too: names
//! far longer than any known one are not compared at all; only names whose
//! length is within the bound are looked at; and a letter-count lower bound
//! rejects most of those before the quadratic distance is computed.

use std::collections::BTreeMap;

/// Longest name compared; longer input gets no suggestion (no catalogue
/// name is this long, so it could not be within the bound anyway).
const MAX_INPUT: usize = 256;

/// The most edits a suggestion may be away.
const MAX_EDITS: usize = 4;

/// How many edits away a suggestion for a name of `len` characters may be:
/// one, plus one per twelve characters, at most [`MAX_EDITS`]
/// (`PREFECT_TASK_DEFAULT_RETRYS` may be 3 edits off; `PREFECT_API_URI` 2).
pub fn max_edits(len: usize) -> usize {
    (1 + len / 12).min(MAX_EDITS)
}

/// Letter counts of a name (bytes folded into 64 buckets: a collision only
/// lowers the bound, so it stays a lower bound).
type Counts = [u8; 64];

fn counts(name: &[u8]) -> Counts {
    let mut c = [0u8; 64];
    for &b in name {
        let slot = &mut c[usize::from(b & 63)];
        *slot = slot.saturating_add(1);
    }
    c
}

/// A lower bound of the edit distance between two names from their letter
/// counts: every edit changes at most one count up and one down.
fn bag_distance(a: &Counts, b: &Counts) -> usize {
    let (mut more, mut fewer) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        if x > y {
            more += usize::from(x - y);
        } else {
            fewer += usize::from(y - x);
        }
    }
    more.max(fewer)
}

#[derive(Debug, Clone)]
struct Candidate {
    upper: String,
    original: String,
    counts: Counts,
}

/// An index of known names for [`Suggester::closest`].
#[derive(Debug, Clone, Default)]
pub struct Suggester {
    by_len: BTreeMap<usize, Vec<Candidate>>,
}

impl Suggester {
    /// Indexes `names` (compared case-insensitively).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut by_len: BTreeMap<usize, Vec<Candidate>> = BTreeMap::new();
        for name in names {
            let upper = name.to_ascii_uppercase();
            by_len.entry(upper.len()).or_default().push(Candidate {
                counts: counts(upper.as_bytes()),
                upper,
                original: name.to_owned(),
            });
        }
        for list in by_len.values_mut() {
            // Ties go to the first name in this order, so the answer never
            // depends on a hash map's.
            list.sort_by(|a, b| a.upper.cmp(&b.upper));
        }
        Self { by_len }
    }

    /// The known name fewest edits from `wanted`, if it is within
    /// [`max_edits`] (ties: the alphabetically first). An exact match
    /// (ignoring case) is not a suggestion.
    pub fn closest(&self, wanted: &str) -> Option<String> {
        if wanted.is_empty() || wanted.len() > MAX_INPUT {
            return None;
        }
        let upper = wanted.to_ascii_uppercase();
        let limit = max_edits(upper.len());
        let wanted_counts = counts(upper.as_bytes());
        let lo = upper.len().saturating_sub(limit);
        let hi = upper.len() + limit;
        let mut best: Option<(usize, &Candidate)> = None;
        for candidates in self.by_len.range(lo..=hi).map(|(_, c)| c) {
            for c in candidates {
                let bound = best.map_or(limit, |(d, _)| d);
                if bag_distance(&wanted_counts, &c.counts) > bound {
                    continue;
                }
                let d = strsim::osa_distance(&upper, &c.upper);
                if d == 0 || d > bound {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some((bd, bc)) => d < bd || (d == bd && c.upper < bc.upper),
                };
                if better {
                    best = Some((d, c));
                }
            }
        }
        best.map(|(_, c)| c.original.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Suggester {
        Suggester::new([
            "PREFECT_API_KEY",
            "PREFECT_API_URL",
            "PREFECT_TASK_DEFAULT_RETRIES",
            "PREFECT_TASKS_DEFAULT_RETRIES",
            "tasks.default_retries",
        ])
    }

    #[test]
    fn suggests_only_names_a_few_edits_away() {
        let s = index();
        assert_eq!(
            s.closest("PREFECT_TASK_DEFAULT_RETRYS").as_deref(),
            Some("PREFECT_TASK_DEFAULT_RETRIES")
        );
        assert_eq!(
            s.closest("PREFECT_API_URI").as_deref(),
            Some("PREFECT_API_URL")
        );
        assert_eq!(
            s.closest("prefect_api_kye").as_deref(),
            Some("PREFECT_API_KEY")
        );
        assert_eq!(
            s.closest("tasks.default_retrys").as_deref(),
            Some("tasks.default_retries")
        );
        // Three edits on a 15-character name is another name, not a typo.
        assert_eq!(s.closest("PREFECT_API_ABC"), None);
        assert_eq!(s.closest("PREFECT_LOGGING_LEVEL"), None);
        assert_eq!(s.closest("NOTHING_LIKE_IT"), None);
        assert_eq!(
            s.closest("PREFECT_API_KEY"),
            None,
            "an exact name is no suggestion"
        );
        assert_eq!(s.closest(""), None);
        assert_eq!(s.closest(&"X".repeat(100_000)), None);
    }

    #[test]
    fn the_bound_grows_with_length_and_is_capped() {
        assert_eq!(max_edits(5), 1);
        assert_eq!(max_edits(15), 2);
        assert_eq!(max_edits(27), 3);
        assert_eq!(max_edits(500), MAX_EDITS);
    }

    #[test]
    fn bag_distance_never_exceeds_the_edit_distance() {
        let pairs = [
            ("PREFECT_API_KEY", "PREFECT_API_URL"),
            ("ABCD", "BADC"),
            ("", "ABC"),
            ("TASKS_DEFAULT", "TASK_DEFAULTS"),
        ];
        for (a, b) in pairs {
            let bag = bag_distance(&counts(a.as_bytes()), &counts(b.as_bytes()));
            assert!(bag <= strsim::osa_distance(a, b), "{a} / {b}");
        }
    }
}
