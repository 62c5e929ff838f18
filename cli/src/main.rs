//! The `cfg` binary: parses the command line, runs the command, and maps its
//! outcome to the exit code (0 success, 1 failure; clap's usage errors 2).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cfgd_cli::Cli::parse();
    let printer = cfgd_cli::Printer::detect();
    match cfgd_cli::run(cli, &printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(cfgd_cli::Failure::Reported) => ExitCode::FAILURE,
        Err(failure) => {
            printer.error(&failure.to_string());
            ExitCode::FAILURE
        }
    }
}
