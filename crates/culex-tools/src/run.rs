//! From raw arguments to an exit code: defaults file, parsing, and the
//! messages and exit codes mosquitto gives for each outcome.

use crate::args::{self, Parsed, Tool};
use crate::usage;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// Runs `tool` with `args` (program and command names excluded).
pub fn main(tool: Tool, args: Vec<OsString>) -> ExitCode {
    let defaults = args::defaults_path(tool)
        .and_then(|path| std::fs::read(path).ok())
        .map(|contents| args::defaults_lines(&contents))
        .unwrap_or_default();
    match args::parse(tool, &defaults, &args) {
        Parsed::Run(config) => ExitCode::from(crate::session::run(&config)),
        Parsed::Usage { error } => {
            if let Some(error) = error {
                eprint!("{error}");
            }
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(usage::text(tool).as_bytes());
            let _ = stdout.flush();
            ExitCode::from(1)
        }
        Parsed::Version => {
            println!("{}", usage::version_line(tool));
            ExitCode::from(1)
        }
        Parsed::Error { message, hint } => {
            eprint!("{message}");
            if hint {
                eprint!("\nUse '{} --help' to see usage.\n", tool.command());
            }
            ExitCode::from(1)
        }
    }
}
