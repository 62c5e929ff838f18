//! `cfg` end to end: the real binary against a real daemon started by each
//! test (the `cfgd-tests` harness: `blocking::Daemon`, `cli`), one module
//! per behaviour.

mod connection;
mod env;
mod fleet;
mod history;
mod prefect_interop;
mod profile;
mod refusal_details;
mod set;
mod status;
mod terminal;
mod unset;
mod validate;
mod view;
mod watch;
