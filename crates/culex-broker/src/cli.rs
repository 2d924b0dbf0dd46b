//! `culex broker`: mosquitto's command line.

pub use crate::config::cli_args::{load_config, parse_args, BrokerArgs, HELP_EXIT_CODE, USAGE};

/// Entry point of `culex broker`; `args` excludes the program and command names.
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let _ = args;
    eprintln!("culex broker: not implemented yet");
    std::process::ExitCode::from(1)
}
