//! drconsole: parse the command line, run the command ([`drconsole::app`]), exit with its code
//! ([`drconsole::exit`]).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = drconsole::cli::Cli::parse();
    match drconsole::app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            e.eprint();
            ExitCode::from(e.exit_code())
        }
    }
}
