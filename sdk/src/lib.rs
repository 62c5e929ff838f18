//! The cfgd SDK, linked by services.
//!
//! - [`Client`]: every daemon operation as a typed async call (what `cfg`
//!   uses).
//! - [`retry`]: the task/flow retry engine with Prefect's semantics.
//!
//! # Layout
//! - [`client`] — the typed gRPC client and the SDK's own types.
//! - [`error`] — errors, mapped from daemon answers in one place.
//! - [`retry`] — tasks, flows, delays, jitter, states.

pub mod client;
pub mod error;
pub mod retry;

pub use client::{Assign, Client, Setting, Shown, WatchEvent};
pub use error::{Code, Error};
