//! The cfgd SDK, linked by services.
//!
//! - [`Settings`]: a live, lock-free copy of the settings that survives the
//!   daemon being down — what a service reads.
//! - [`Client`]: every daemon operation as a typed async call (what `cfg`
//!   uses).
//! - [`retry`]: the task/flow retry engine with Prefect's semantics.
//!
//! The settings types these return ([`Value`], [`Source`], [`Delays`], …)
//! are re-exported here.
//!
//! # Features
//! - `client` (default): [`Client`], [`Settings`] and their gRPC stack
//!   (tonic). Without it (`default-features = false`) the crate is the
//!   retry engine alone.
//! - `tower` (default): `retry::RetryPolicy`, a `tower::retry::Policy`.
//! - `metrics` (default): retry and live-view metrics through the
//!   `metrics` facade ([`metrics`](mod@metrics)); the service installs the
//!   recorder.
//!
//! # Layout
//! - [`client`] — the typed gRPC client, the SDK's own types, and the
//!   resuming watch.
//! - [`error`] — errors, mapped from daemon answers (code and typed
//!   details, never wording) in one place; [`Problem`]s of a refusal.
//! - [`live`] — [`Settings`], its view and the background watch.
//! - [`retry`] — tasks, flows, delays, jitter, states.
//! - [`metrics`](mod@metrics) — the metrics the SDK records.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod error;
#[cfg(feature = "client")]
pub mod live;
pub mod metrics;
pub mod retry;

/// The settings model's types that this API hands out, so a service needs
/// no `cfgd-settings` dependency of its own.
pub use cfgd_settings::{Catalog, Delays, Entry, Kind, LayerKind, Source, Sourced, Value};
#[cfg(feature = "client")]
pub use client::{Assign, Client, Connect, Setting, Shown, WatchEvent};
#[cfg(feature = "client")]
pub use error::{Code, Error, Problem, ProblemKind};
#[cfg(feature = "client")]
pub use live::{Key, Options, Settings};
