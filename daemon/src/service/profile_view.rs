//! Reads and writes "as if profile P were active" (`cfg -p NAME`, Prefect's
//! `--profile`): the same layers resolved again with P's values in place of
//! the active profile's — through `cfgd_settings::resolve`, the one
//! layering function.

use std::sync::Arc;

use cfgd_settings::{Layer, ProfilesFile, Resolution, SettingsError, resolve};

use crate::core::LayerSet;
use crate::error::OpError;
use crate::hub::View;
use crate::writer::Outcome;

/// What `layers` resolve to with `profile`'s values (from `profiles`) in
/// place of the active profile's.
///
/// # Errors
/// A profile that does not exist.
fn resolved_with(
    layers: &LayerSet,
    profiles: &ProfilesFile,
    profile: &str,
) -> Result<Arc<Resolution>, OpError> {
    let values = profiles
        .profiles
        .get(profile)
        .ok_or_else(|| OpError::Settings(SettingsError::ProfileNotFound(profile.to_owned())))?;
    let (other, _) = Layer::from_profile_lenient(layers.catalog(), profile, values);
    Ok(Arc::new(resolve(
        layers.catalog(),
        &layers.layers().replacing(&other),
    )))
}

/// `view` as it would be with `profile` active (itself for the active
/// profile or an empty name).
///
/// # Errors
/// A profile that does not exist.
pub(crate) fn as_if_active(view: Arc<View>, profile: &str) -> Result<Arc<View>, OpError> {
    if profile.is_empty() || profile == view.active_profile {
        return Ok(view);
    }
    let mut other = (*view).clone();
    other.resolution = resolved_with(&view.layers, &view.profiles, profile)?;
    other.active_profile = profile.to_owned();
    Ok(Arc::new(other))
}

/// A write's outcome as seen from `profile` (a `-p NAME` write): the
/// values it resolves to with that profile, and its name.
///
/// # Errors
/// A profile that does not exist.
pub(crate) fn in_profile(
    mut outcome: Outcome,
    profile: Option<String>,
) -> Result<Outcome, OpError> {
    if let Some(profile) = profile
        && profile != outcome.profile
    {
        outcome.resolution = resolved_with(&outcome.layers, &outcome.view.profiles, &profile)?;
        outcome.profile = profile;
    }
    Ok(outcome)
}
