//! The MQTT side of `culex pub`, `culex sub` and `culex rr`.

use crate::args::Config;
use std::io::{BufRead, Write};

/// Connects, does the tool's work, and returns the exit code.
pub fn run(
    config: &Config,
    _stdin: &mut (dyn BufRead + Send),
    _stdout: &mut (dyn Write + Send),
    stderr: &mut (dyn Write + Send),
) -> u8 {
    if !config.quiet {
        let _ = writeln!(
            stderr,
            "Error: {} cannot connect yet: the culex client is not available.",
            config.tool.command()
        );
    }
    1
}
