//! Reads and writes "as if profile P were active" (`cfg -p NAME`, Prefect's
//! `--profile`): the resolution with another profile's values in place of
//! the active one's.

use std::sync::Arc;

use cfgd_settings::{Resolution, SettingsError};

use crate::error::OpError;
use crate::hub::View;
use crate::writer::Outcome;

/// `resolution` as it would be with `profile` active; itself for the
/// active profile or an empty name.
///
/// # Errors
/// A profile that does not exist.
pub(crate) fn with_profile(
    view: &View,
    resolution: &Arc<Resolution>,
    profile: &str,
) -> Result<Arc<Resolution>, OpError> {
    if profile.is_empty() || profile == view.active_profile {
        return Ok(resolution.clone());
    }
    let values = view
        .profiles
        .profiles
        .get(profile)
        .ok_or_else(|| OpError::Settings(SettingsError::ProfileNotFound(profile.to_owned())))?;
    let (layer, _) = cfgd_settings::Layer::from_profile_lenient(&view.catalog, profile, values);
    Ok(Arc::new(layer.replacing_in(resolution)))
}

/// `view` as it would be with `profile` active (itself for the active one).
///
/// # Errors
/// A profile that does not exist.
pub(crate) fn as_if_active(view: Arc<View>, profile: &str) -> Result<Arc<View>, OpError> {
    if profile.is_empty() || profile == view.active_profile {
        return Ok(view);
    }
    let mut other = (*view).clone();
    other.resolution = with_profile(&view, &view.resolution, profile)?;
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
    if let Some(profile) = profile {
        outcome.resolution = with_profile(&outcome.view, &outcome.resolution, &profile)?;
        outcome.profile = profile;
    }
    Ok(outcome)
}
