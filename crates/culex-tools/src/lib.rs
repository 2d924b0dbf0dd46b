//! culex pub, sub, rr and passwd: mosquitto's command-line tools, flag for flag.

pub mod args;
pub mod format;
mod json;
mod link;
mod run;
mod session;
mod tls;
mod usage;

pub use run::{run_with, Io};

/// Entry point of `culex pub`; `args` excludes the program and command names.
pub fn pub_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    run::main(args::Tool::Pub, args)
}

/// Entry point of `culex sub`; `args` excludes the program and command names.
pub fn sub_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    run::main(args::Tool::Sub, args)
}

/// Entry point of `culex rr`; `args` excludes the program and command names.
pub fn rr_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    run::main(args::Tool::Rr, args)
}

mod passwd;
pub use passwd::passwd_main;
