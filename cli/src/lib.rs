//! `cfg`, the command line of cfgd: it changes and inspects the settings the
//! daemon holds, manages profiles, follows changes, and checks config files
//! offline. Its commands, messages and exit codes follow Prefect's
//! `prefect config` and `prefect profile` (0 on success, 1 on failure), with
//! `-o json` on every command that prints data.
//!
//! It owns nothing but the command line: every operation is one call of the
//! SDK's [`cfgd_sdk::Client`] (the daemon validates and decides), except
//! `cfg validate`, which reads files with [`cfgd_settings`] and needs no
//! daemon.
//!
//! # Layout
//! - `args` — the command line as clap sees it ([`Cli`]).
//! - `assign` — `NAME=VALUE` words, including the spaced forms, to assignments.
//! - `output` — output format, colour ([`Printer`]), confirmations, shared text.
//! - `error` — [`Failure`], the one error type; `main` maps it to exit 1. A
//!   refusal is written from the daemon's typed problems.
//! - `prompt` — reading a secret on the terminal without echo.
//! - `commands` — one module per command group: `set` (set, unset), `view`
//!   (view, get), `validate`, `watch`, `history` (history, rollback),
//!   `status`, `profile`, `env` (env, run: the settings as an environment),
//!   and shell completions.
//!
//! # Example
//! ```no_run
//! use clap::Parser;
//!
//! let cli = cfgd_cli::Cli::parse_from(["cfg", "view", "--show-defaults"]);
//! let printer = cfgd_cli::Printer::detect();
//! if let Err(failure) = cfgd_cli::run(cli, &printer) {
//!     printer.error(&failure.to_string());
//!     std::process::exit(1);
//! }
//! ```

mod args;
mod assign;
mod commands;
mod error;
mod output;
mod prompt;

pub use args::Cli;
pub use error::Failure;
pub use output::Printer;

/// Runs one command, printing its output with `printer`.
///
/// # Errors
/// A [`Failure`] when the command did not succeed; nothing was changed.
/// [`Failure::Message`] still has to be printed.
pub fn run(cli: Cli, printer: &Printer) -> Result<(), Failure> {
    commands::run(cli, printer)
}
