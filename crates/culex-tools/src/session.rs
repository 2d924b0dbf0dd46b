//! The MQTT side of `culex pub`, `culex sub` and `culex rr`.

use crate::args::Config;

/// Connects, does the tool's work, and returns the exit code.
pub fn run(config: &Config) -> u8 {
    if !config.quiet {
        eprintln!(
            "Error: {} cannot connect yet: the culex client is not available.",
            config.tool.command()
        );
    }
    1
}
