//! Requested names to canonical ones, and the validation of a batch at the
//! edge. An unknown name is refused with a "did you mean": a fuzzy search
//! over the whole catalogue, by far the costliest step of a read (3,000
//! unknown names once took 7.9 s of CPU on the async workers and stalled a
//! parallel `Get` for 18.9 s). So it is bounded three ways: the names per
//! request are capped (`limits`), only the first [`MAX_SUGGESTIONS`]
//! unknown names of a request get a suggestion, and the search runs on the
//! blocking pool, one request at a time, never on the workers that serve
//! other requests.

use std::sync::Arc;

use cfgd_settings::{Catalog, SettingsError};
use tokio::sync::Semaphore;

use crate::core::{self, Input};
use crate::error::{GivenNames, OpError};

/// The names of a batch as given, beside their canonical names (for the
/// problems to name settings as the caller typed them).
pub(crate) fn given<'a>(
    catalog: &Catalog,
    names: impl IntoIterator<Item = &'a String>,
) -> GivenNames {
    GivenNames::new(
        names
            .into_iter()
            .filter_map(|g| Some((catalog.get(g)?.name.clone(), g.clone())))
            .collect(),
    )
}

/// Unknown names of one request that get a "did you mean".
pub(crate) const MAX_SUGGESTIONS: usize = 8;

/// Resolves names; owns the bound on suggestion work.
#[derive(Debug, Clone)]
pub(crate) struct Resolver {
    suggesting: Arc<Semaphore>,
}

impl Resolver {
    /// A resolver that suggests for one request at a time.
    pub(crate) fn new() -> Self {
        Self {
            suggesting: Arc::new(Semaphore::new(1)),
        }
    }

    /// The canonical names of `given`, in order.
    ///
    /// # Errors
    /// [`OpError::Invalid`] with one unknown-name problem per unknown name.
    pub(crate) async fn canonical(
        &self,
        catalog: &Catalog,
        given: &[String],
    ) -> Result<Vec<String>, OpError> {
        let mut out = Vec::with_capacity(given.len());
        let mut unknown = Vec::new();
        for g in given {
            match catalog.get(g) {
                Some(e) => out.push(e.name.clone()),
                None => unknown.push(g.clone()),
            }
        }
        if unknown.is_empty() {
            return Ok(out);
        }
        Err(OpError::Invalid(self.unknown(catalog, unknown).await))
    }

    /// Checks a batch against `catalog` without changing anything: every
    /// problem, in request order.
    ///
    /// # Errors
    /// [`OpError::Invalid`] with every problem of the batch.
    pub(crate) async fn validate(
        &self,
        catalog: &Catalog,
        profile: &str,
        batch: &[(String, Input)],
    ) -> Result<(), OpError> {
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        for item in batch {
            if catalog.get(&item.0).is_none() {
                // A placeholder, replaced in order below.
                unknown.push(item.0.clone());
                errors.push(None);
                continue;
            }
            if let Err(OpError::Invalid(e)) =
                core::validate(catalog, profile, std::slice::from_ref(item))
            {
                errors.extend(e.into_iter().map(Some));
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        let mut named = self.unknown(catalog, unknown).await.into_iter();
        let errors = errors
            .into_iter()
            .filter_map(|e| e.or_else(|| named.next()))
            .collect();
        Err(OpError::Invalid(errors))
    }

    /// Unknown-name problems for `names`; the first few with a suggestion.
    async fn unknown(&self, catalog: &Catalog, names: Vec<String>) -> Vec<SettingsError> {
        let catalog = catalog.clone();
        let bare = names.clone();
        let permit = self.suggesting.clone().acquire_owned().await;
        let suggested = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = permit;
            names
                .into_iter()
                .enumerate()
                .map(|(i, name)| SettingsError::UnknownName {
                    suggestion: (i < MAX_SUGGESTIONS)
                        .then(|| catalog.suggest(&name))
                        .flatten(),
                    name,
                    at: None,
                })
                .collect()
        })
        .await;
        // The search cannot panic; if it did, the names are still refused.
        suggested.unwrap_or_else(|_| {
            bare.into_iter()
                .map(|name| SettingsError::UnknownName {
                    name,
                    suggestion: None,
                    at: None,
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_first_unknown_names_get_a_suggestion() {
        let catalog = Catalog::builtin();
        let mut given: Vec<String> = (0..MAX_SUGGESTIONS + 5)
            .map(|_| "PREFECT_TASK_DEFAULT_RETRYS".to_owned())
            .collect();
        given.insert(1, "PREFECT_TASK_DEFAULT_RETRIES".into());
        let Err(OpError::Invalid(errors)) = Resolver::new().canonical(&catalog, &given).await
        else {
            panic!("unknown names are refused");
        };
        assert_eq!(errors.len(), MAX_SUGGESTIONS + 5, "every unknown name");
        let suggested = errors
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    SettingsError::UnknownName {
                        suggestion: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(suggested, MAX_SUGGESTIONS);
        assert!(matches!(
            &errors[0],
            SettingsError::UnknownName { suggestion: Some(s), .. } if s == "PREFECT_TASK_DEFAULT_RETRIES"
        ));
    }

    #[tokio::test]
    async fn a_batch_reports_every_problem_in_request_order() {
        let catalog = Catalog::builtin();
        let batch = vec![
            (
                "PREFECT_TASK_DEFAULT_RETRIES".to_owned(),
                Input::Raw("x".into()),
            ),
            ("NOPE".to_owned(), Input::Raw("1".into())),
            (
                "PREFECT_FLOWS_DEFAULT_RETRIES".to_owned(),
                Input::Raw("2".into()),
            ),
            (
                "PREFECT_FLOW_DEFAULT_RETRIES".to_owned(),
                Input::Raw("-1".into()),
            ),
        ];
        let Err(OpError::Invalid(errors)) =
            Resolver::new().validate(&catalog, "default", &batch).await
        else {
            panic!("the batch is refused");
        };
        let kinds: Vec<_> = errors
            .iter()
            .map(|e| match e {
                SettingsError::InvalidValue { name, .. } => format!("invalid {name}"),
                SettingsError::UnknownName { name, .. } => format!("unknown {name}"),
                other => format!("{other}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "invalid PREFECT_TASKS_DEFAULT_RETRIES",
                "unknown NOPE",
                "invalid PREFECT_FLOWS_DEFAULT_RETRIES"
            ]
        );
        let ok = Resolver::new()
            .validate(&catalog, "default", &batch[2..3])
            .await;
        assert!(ok.is_ok());
    }
}
