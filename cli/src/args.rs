//! The command line as clap sees it: raw words, before `cfg` gives them
//! meaning (assignments are read by [`crate::assign`], the output format by
//! [`crate::output::Format`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `cfg`: change and inspect the settings held by the cfgd daemon.
#[derive(Debug, Parser)]
#[command(
    name = "cfg",
    version,
    about = "Change and inspect the settings held by the cfgd daemon",
    long_about = "Change and inspect the settings held by the cfgd daemon.\n\n\
        Values come from layers, lowest first: defaults, the active profile (what `cfg set` \
        writes), config files, .env, and the daemon's environment. A higher layer wins, and \
        every command that shows or changes a value says which layer it comes from.",
    after_help = "Examples:\n  \
        cfg set PREFECT_TASK_DEFAULT_RETRIES=3\n  \
        cfg set PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS = [1, 10, 100]\n  \
        cfg set PREFECT_API_KEY            # asks for the value, without echo\n  \
        cfg view --show-defaults\n  \
        cfg -p staging view\n  \
        cfg run -- python my_flow.py\n  \
        cfg watch\n  \
        cfg --endpoint http://127.0.0.1:7979 status"
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The daemon to talk to: http://HOST:PORT, https://HOST:PORT or unix:/PATH.
    #[arg(
        long,
        global = true,
        env = "CFGD_ENDPOINT",
        default_value = cfgd_sdk::client::DEFAULT_ENDPOINT,
        value_name = "URL"
    )]
    pub endpoint: String,
    /// The daemon's token, needed for writes and for --show-secrets when it
    /// has one. Prefer --token-file: a token on the command line shows in
    /// the process list and the shell's history.
    #[arg(
        long,
        global = true,
        env = "CFGD_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,
    /// Read the daemon's token from this file (surrounding whitespace is
    /// ignored).
    #[arg(long, global = true, env = "CFGD_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Use this profile instead of the active one: reads resolve with it,
    /// writes go into it (as `prefect -p NAME`). PREFECT_PROFILE, as in
    /// Prefect, does the same.
    #[arg(
        short = 'p',
        long,
        global = true,
        env = "PREFECT_PROFILE",
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// A CA certificate (PEM) to trust for an https:// endpoint.
    #[arg(long, global = true, env = "CFGD_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Print data as JSON (the only other format).
    #[arg(short = 'o', long, global = true, value_name = "json")]
    pub output: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set settings in the active profile (all or nothing).
    #[command(after_help = "Examples:\n  \
        cfg set PREFECT_TASK_DEFAULT_RETRIES=3\n  \
        cfg set PREFECT_TASKS_DEFAULT_RETRIES=3 PREFECT_TASKS_DEFAULT_RETRY_DELAY_SECONDS=10\n  \
        cfg set PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS = [1, 10, 100]\n  \
        cfg set 'PREFECT_TASK_DEFAULT_RETRY_DELAY_SECONDS=[1, 10, 100]'\n  \
        cfg set PREFECT_API_KEY                       # asks, without echo\n  \
        printf %s \"$KEY\" | cfg set PREFECT_API_KEY    # reads stdin\n  \
        cfg -p staging set PREFECT_LOGGING_LEVEL=DEBUG\n\n\
        A value continues over the next words while it is incomplete (empty, an open '[', or a \
        trailing ','), so the spaced form above works unquoted. Other spaces need quotes.\n\
        A lone NAME (no '=') takes its value from stdin: asked for without echo on a terminal, \
        else read to the end (one trailing newline dropped), so a secret never reaches the \
        process list or the shell's history.")]
    Set(SetArgs),
    /// Remove settings from the active profile.
    #[command(after_help = "Examples:\n  \
        cfg unset PREFECT_TASK_DEFAULT_RETRIES\n  \
        cfg unset -y PREFECT_TASKS_DEFAULT_RETRIES PREFECT_FLOWS_DEFAULT_RETRIES")]
    Unset(UnsetArgs),
    /// Show one setting's effective value, where it comes from and what it overrides.
    #[command(after_help = "Examples:\n  \
        cfg get PREFECT_TASK_DEFAULT_RETRIES\n  \
        cfg get PREFECT_API_KEY --show-secrets --token \"$CFGD_TOKEN\"\n  \
        cfg get PREFECT_TASKS_DEFAULT_RETRIES -o json")]
    Get(GetArgs),
    /// Show the effective settings of the active profile.
    #[command(after_help = "Examples:\n  \
        cfg view\n  \
        cfg view --show-defaults --hide-sources\n  \
        cfg view -o json")]
    View(ViewArgs),
    /// Check config files offline (no daemon needed), reporting file and line.
    #[command(after_help = "Examples:\n  \
        cfg validate\n  \
        cfg validate --config-dir /etc/cfgd\n  \
        cfg validate config/prefect.toml config/.env")]
    Validate(ValidateArgs),
    /// Print each change to the settings as it happens, until interrupted.
    #[command(after_help = "Examples:\n  \
        cfg watch\n  \
        cfg watch PREFECT_TASKS_DEFAULT_RETRIES PREFECT_FLOWS_DEFAULT_RETRIES\n  \
        cfg watch -o json    # one JSON document per line")]
    Watch(WatchArgs),
    /// Show the recorded changes, oldest first.
    #[command(after_help = "Examples:\n  \
        cfg history\n  \
        cfg history -n 5 -o json")]
    History(HistoryArgs),
    /// Restore the profiles as they were at a revision (as a new revision).
    #[command(after_help = "Examples:\n  \
        cfg history        # find the revision\n  \
        cfg rollback 12\n  \
        cfg rollback -y 12 # no question on a terminal")]
    Rollback(RollbackArgs),
    /// Print the effective settings as KEY=value lines (dotenv, shell or JSON).
    #[command(after_help = "Examples:\n  \
        cfg env > .env\n  \
        eval \"$(cfg env --format shell)\"\n  \
        cfg env --all --format json\n\n\
        Only settings some layer sets are printed (not defaults) unless --all; secrets are \
        masked unless --show-secrets.")]
    Env(EnvArgs),
    /// Run a command with the effective settings in its environment.
    #[command(after_help = "Examples:\n  \
        cfg run -- python my_flow.py\n  \
        cfg -p staging run -- prefect config view\n\n\
        The command gets cfg's own environment plus every setting some layer sets (profile, \
        config files, .env, the daemon's environment), secrets in clear, in the form Prefect \
        reads from its environment. Defaults are left out, so Prefect computes its own (paths \
        under PREFECT_HOME, for one). A setting already in cfg's environment, under any of its \
        names, is left as it is: your shell's value wins, as an environment variable wins over \
        a profile in Prefect. The command's exit code is cfg's.")]
    Run(RunArgs),
    /// Show the daemon's address, revision, epoch, profile and config files.
    #[command(after_help = "Examples:\n  \
        cfg status\n  \
        CFGD_ENDPOINT=http://127.0.0.1:7980 cfg status -o json")]
    Status(StatusArgs),
    /// Show which hosts (daemons) and services run which revision.
    #[command(after_help = "Examples:\n  \
        cfg fleet\n  \
        cfg fleet -o json\n  \
        cfg set --wait=30s PREFECT_TASK_DEFAULT_RETRIES=3   # until the fleet has it\n\n\
        With the etcd store (cfgd --store etcd://…) every live daemon of the fleet is listed; \
        with the file store, the one daemon. Services appear once their SDK reports the \
        revision it applied.")]
    Fleet(FleetArgs),
    /// Manage profiles.
    #[command(
        alias = "profiles",
        subcommand,
        after_help = "Examples:\n  \
            cfg profile ls\n  \
            cfg profile create staging --from default\n  \
            cfg profile use staging"
    )]
    Profile(ProfileCommand),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        cfg completions bash > ~/.local/share/bash-completion/completions/cfg\n  \
        cfg completions zsh > \"${fpath[1]}/_cfg\"\n  \
        cfg completions fish > ~/.config/fish/completions/cfg.fish")]
    Completions(CompletionsArgs),
}

/// `cfg set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// NAME=VALUE assignments (also NAME = VALUE, NAME= VALUE, NAME =VALUE).
    #[arg(
        required = true,
        num_args = 1..,
        allow_negative_numbers = true,
        value_name = "NAME=VALUE"
    )]
    pub assignments: Vec<String>,
    /// Return only once every live host and its services have applied the
    /// change (at most TIMEOUT, default 60s; such as --wait=30s); name those
    /// that have not.
    #[arg(
        long,
        value_name = "TIMEOUT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "60s"
    )]
    pub wait: Option<String>,
}

/// `cfg unset`.
#[derive(Debug, Args)]
pub struct UnsetArgs {
    /// Setting names (canonical or alias).
    #[arg(required = true, num_args = 1.., value_name = "NAME")]
    pub names: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// `cfg get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The setting (canonical name or alias).
    pub name: String,
    /// Show a secret in clear (needs the token when the daemon has one).
    #[arg(long)]
    pub show_secrets: bool,
}

/// `cfg view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Also show settings whose value is the default.
    #[arg(long, overrides_with = "hide_defaults")]
    pub show_defaults: bool,
    /// Hide settings whose value is the default (the default).
    #[arg(long, overrides_with = "show_defaults")]
    pub hide_defaults: bool,
    /// Say where each value comes from (the default).
    #[arg(long, overrides_with = "hide_sources")]
    pub show_sources: bool,
    /// Do not say where each value comes from.
    #[arg(long, overrides_with = "show_sources")]
    pub hide_sources: bool,
    /// Show secrets in clear (needs the token when the daemon has one).
    #[arg(long, overrides_with = "hide_secrets")]
    pub show_secrets: bool,
    /// Mask secrets as ******** (the default).
    #[arg(long, overrides_with = "show_secrets")]
    pub hide_secrets: bool,
}

/// `cfg validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files to check: value files (*.toml), .env, catalogues, profiles.toml.
    /// Without any, the whole config dir is checked.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The config dir (its catalogue is used to check FILEs).
    #[arg(
        long,
        env = "CFGD_CONFIG_DIR",
        default_value = "config",
        value_name = "DIR"
    )]
    pub config_dir: PathBuf,
}

/// `cfg watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only these settings (canonical names or aliases); all when none.
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
    /// Show secrets in clear (needs the token when the daemon has one).
    #[arg(long)]
    pub show_secrets: bool,
}

/// `cfg history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// How many of the newest changes to show.
    #[arg(short = 'n', long = "limit", default_value_t = 20, value_name = "N")]
    pub limit: u32,
    /// Show secrets in clear (needs the token when the daemon has one).
    #[arg(long)]
    pub show_secrets: bool,
}

/// `cfg rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The revision whose profiles to restore (see `cfg history`).
    pub revision: u64,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// The formats of `cfg env`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    /// `NAME=value` lines, quoted where needed (a `.env` Prefect reads).
    Dotenv,
    /// `export NAME='value'` lines for a POSIX shell.
    Shell,
    /// One JSON object of names to values.
    Json,
}

/// `cfg env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// The output format.
    #[arg(long, value_enum, default_value = "dotenv")]
    pub format: EnvFormat,
    /// Also print settings at their defaults.
    #[arg(long)]
    pub all: bool,
    /// Show secrets in clear (needs the token when the daemon has one).
    #[arg(long)]
    pub show_secrets: bool,
}

/// `cfg run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The command and its arguments (after `--`).
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `cfg status`.
#[derive(Debug, Args)]
pub struct StatusArgs {}

/// `cfg fleet`.
#[derive(Debug, Args)]
pub struct FleetArgs {}

/// `cfg profile …`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles; the active one is marked with '*'.
    #[command(
        alias = "list",
        after_help = "Examples:\n  cfg profile ls\n  cfg profile ls -o json"
    )]
    Ls,
    /// Create a profile, empty or as a copy of another.
    #[command(after_help = "Examples:\n  \
        cfg profile create staging\n  \
        cfg profile create staging --from default")]
    Create {
        /// The new profile's name.
        name: String,
        /// Copy the settings of this profile.
        #[arg(long, value_name = "PROFILE")]
        from: Option<String>,
    },
    /// Make a profile the active one.
    #[command(after_help = "Examples:\n  cfg profile use staging")]
    Use {
        /// The profile.
        name: String,
    },
    /// Delete a profile (not the active one).
    #[command(
        after_help = "Examples:\n  cfg profile delete staging\n  cfg profile delete -y staging"
    )]
    Delete {
        /// The profile.
        name: String,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Rename a profile.
    #[command(after_help = "Examples:\n  cfg profile rename staging prod")]
    Rename {
        /// Its current name.
        old: String,
        /// Its new name.
        new: String,
    },
    /// Show the settings a profile holds (the active one by default).
    #[command(
        after_help = "Examples:\n  cfg profile inspect\n  cfg profile inspect staging -o json"
    )]
    Inspect {
        /// The profile; the active one when omitted.
        name: Option<String>,
        /// Show secrets in clear (needs the token when the daemon has one).
        #[arg(long)]
        show_secrets: bool,
    },
}

/// `cfg completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(help.contains("Examples:"), "{path} has no example");
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &path);
            }
        }
        walk(&Cli::command(), "");
    }

    #[test]
    fn the_spaced_form_reaches_set_as_words() {
        let cli = Cli::try_parse_from([
            "cfg",
            "set",
            "PREFECT_FLOW_DEFAULT_RETRY_DELAY_SECONDS",
            "=",
            "[1,",
            "10,",
            "100]",
        ])
        .unwrap();
        let Command::Set(set) = cli.command else {
            panic!("not set")
        };
        assert_eq!(set.assignments.len(), 5);
        let cli = Cli::try_parse_from(["cfg", "set", "X", "=", "-1"]).unwrap();
        let Command::Set(set) = cli.command else {
            panic!("not set")
        };
        assert_eq!(set.assignments, ["X", "=", "-1"]);
    }

    #[test]
    fn view_flags_override_each_other_and_profiles_is_an_alias() {
        let cli = Cli::try_parse_from(["cfg", "view", "--hide-sources", "--show-sources"]).unwrap();
        let Command::View(v) = cli.command else {
            panic!("not view")
        };
        assert!(v.show_sources && !v.hide_sources);
        let cli = Cli::try_parse_from(["cfg", "profiles", "ls", "-o", "json"]).unwrap();
        assert!(matches!(cli.command, Command::Profile(ProfileCommand::Ls)));
        assert_eq!(cli.global.output.as_deref(), Some("json"));
    }
}
