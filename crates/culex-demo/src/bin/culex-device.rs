//! `culex device` as a program of its own: the same entry point as the
//! `culex` binary's subcommand, small enough for the terminal tests to run
//! under a pseudo-terminal without building all of culex.

fn main() -> std::process::ExitCode {
    culex_demo::device_main(std::env::args_os().skip(1).collect())
}
