//! The cfgd SDK.
//!
//! # Layout
//! - [`retry`] — the task/flow retry engine with Prefect's semantics.

pub mod retry;
