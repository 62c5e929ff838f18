//! The cfgd SDK, linked by services.
//!
//! - [`Settings`]: a live, lock-free copy of the settings that survives the
//!   daemon being down — what a service reads.
//! - [`Client`]: every daemon operation as a typed async call (what `cfg`
//!   uses).
//! - [`retry`]: the task/flow retry engine with Prefect's semantics.
//!
//! # Layout
//! - [`client`] — the typed gRPC client and the SDK's own types.
//! - [`error`] — errors, mapped from daemon answers (code and typed
//!   details, never wording) in one place; [`Problem`]s of a refusal.
//! - [`live`] — [`Settings`], its view and the background watch.
//! - [`retry`] — tasks, flows, delays, jitter, states.

pub mod client;
pub mod error;
pub mod live;
pub mod retry;

pub use client::{Assign, Client, Connect, Setting, Shown, WatchEvent};
pub use error::{Code, Error, Problem, ProblemKind};
pub use live::{Key, Options, Settings};
