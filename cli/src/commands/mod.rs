//! One module per command group, and the dispatch from [`Cli`] to them.
//!
//! Commands that talk to the daemon run on a current-thread tokio runtime
//! built only for them (`validate` and `completions` need none), and connect
//! once, right before their first call.

mod env;
mod fleet;
mod history;
mod profile;
mod set;
mod status;
mod validate;
mod view;
mod watch;

use std::future::Future;

use cfgd_sdk::{Client, Connect};
use clap::CommandFactory;

use crate::args::{Cli, Command, Global};
use crate::error::Failure;
use crate::output::{Format, Printer};

/// What every command gets: where the daemon is, how to print.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) global: &'a Global,
    pub(crate) format: Format,
    pub(crate) out: &'a Printer,
}

impl Ctx<'_> {
    /// Connects to the daemon.
    ///
    /// # Errors
    /// A malformed endpoint, or nothing answering there (the message names
    /// the address and how to start `cfgd`).
    pub(crate) async fn connect(&self) -> Result<Client, Failure> {
        let connect = Connect {
            token: self.token()?,
            ca_cert: self.global.ca_cert.clone(),
        };
        Ok(Client::connect_with(&self.global.endpoint, &connect)
            .await?
            .with_profile(self.profile()))
    }

    /// The token: `--token`, or the contents of `--token-file`.
    fn token(&self) -> Result<Option<String>, Failure> {
        let Some(path) = &self.global.token_file else {
            return Ok(self.global.token.clone());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Failure::Message(format!(
                "Cannot read the token file {}: {e}.",
                path.display()
            ))
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(Failure::Message(format!(
                "The token file {} is empty.",
                path.display()
            )));
        }
        Ok(Some(token.to_owned()))
    }

    /// `-p/--profile` (or `PREFECT_PROFILE`), if given and not empty.
    pub(crate) fn profile(&self) -> Option<&str> {
        self.global.profile.as_deref().filter(|p| !p.is_empty())
    }

    /// Whether to print JSON.
    pub(crate) fn json(&self) -> bool {
        self.format == Format::Json
    }
}

/// Runs `f` to completion on a fresh current-thread runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime can always be built")
        .block_on(f)
}

/// Runs the command `cli` names.
pub(crate) fn run(cli: Cli, out: &Printer) -> Result<(), Failure> {
    let format = Format::parse(cli.global.output.as_deref())?;
    let ctx = Ctx {
        global: &cli.global,
        format,
        out,
    };
    match &cli.command {
        Command::Set(a) => block_on(set::set(&ctx, a)),
        Command::Unset(a) => block_on(set::unset(&ctx, a)),
        Command::Get(a) => block_on(view::get(&ctx, a)),
        Command::View(a) => block_on(view::view(&ctx, a)),
        Command::Validate(a) => validate::validate(&ctx, a),
        Command::Watch(a) => block_on(watch::watch(&ctx, a)),
        Command::History(a) => block_on(history::history(&ctx, a)),
        Command::Rollback(a) => block_on(history::rollback(&ctx, a)),
        Command::Env(a) => block_on(env::env(&ctx, a)),
        Command::Run(a) => block_on(env::run(&ctx, a)),
        Command::Status(_) => block_on(status::status(&ctx)),
        Command::Fleet(_) => block_on(fleet::fleet(&ctx)),
        Command::Profile(p) => block_on(profile::profile(&ctx, p)),
        Command::Completions(a) => {
            if ctx.json() {
                return Err(Failure::message(
                    "completions prints a shell script; --output does not apply.",
                ));
            }
            clap_complete::generate(
                a.shell,
                &mut Cli::command(),
                "cfg",
                &mut std::io::stdout().lock(),
            );
            Ok(())
        }
    }
}
