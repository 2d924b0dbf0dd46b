//! culex pub, sub, rr and passwd: mosquitto's command-line tools, flag for flag.
//!
//! `pub`, `sub` and `rr` go: [`args`] (mosquitto 2.0's grammar, checks,
//! messages and `~/.config/culex_*` defaults files) → `session` (what each
//! tool does once connected, mosquitto's exit codes) → `link` (a blocking
//! socket, TCP, Unix or rustls TLS, around culex-client's sans-IO core, which
//! owns every protocol rule) → [`format`](mod@format) (mosquitto_sub's output: `-v`,
//! `-N`, the whole `-F` language, cJSON-exact `%j`/`%J`). [`run_with`] runs a
//! tool in-process with any streams, which is how the tests drive them.

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
