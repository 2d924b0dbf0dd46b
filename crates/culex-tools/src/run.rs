//! From raw arguments to an exit code: defaults file, parsing, and the
//! messages and exit codes mosquitto gives for each outcome.

use crate::args::{self, Parsed, Tool};
use crate::usage;
use std::ffi::OsString;
use std::io::{BufRead, Write};

/// The standard streams of one run, so that tests can run a tool in-process.
pub struct Io<'a> {
    /// Where `-s` and `-l` read from.
    pub stdin: &'a mut (dyn BufRead + Send),
    /// Where messages and usage go.
    pub stdout: &'a mut (dyn Write + Send),
    /// Where errors go.
    pub stderr: &'a mut (dyn Write + Send),
}

impl std::fmt::Debug for Io<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

/// Runs `tool` with the process's streams and defaults file.
pub fn main(tool: Tool, args: Vec<OsString>) -> std::process::ExitCode {
    let defaults = args::defaults_path(tool)
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_default();
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let io = Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    std::process::ExitCode::from(run_with(tool, &args, &defaults, io))
}

/// Runs `tool` with `args` (program and command names excluded), the
/// contents of its defaults file, and the given streams; returns the exit code.
pub fn run_with(tool: Tool, args: &[OsString], defaults: &[u8], io: Io<'_>) -> u8 {
    let defaults = args::defaults_lines(defaults);
    let code = match args::parse(tool, &defaults, args) {
        Parsed::Run(config) => crate::session::run(&config, io.stdin, io.stdout, io.stderr),
        Parsed::Usage { error } => {
            if let Some(error) = error {
                let _ = io.stderr.write_all(error.as_bytes());
            }
            let _ = io.stdout.write_all(usage::text(tool).as_bytes());
            1
        }
        Parsed::Version => {
            let _ = writeln!(io.stdout, "{}", usage::version_line(tool));
            1
        }
        Parsed::Error { message, hint } => {
            let _ = io.stderr.write_all(message.as_bytes());
            if hint {
                let _ = write!(
                    io.stderr,
                    "\nUse '{} --help' to see usage.\n",
                    tool.command()
                );
            }
            1
        }
    };
    let _ = io.stdout.flush();
    let _ = io.stderr.flush();
    code
}
