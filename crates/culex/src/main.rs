//! The `culex` command: the broker, mosquitto's tools, the demo and the load
//! generator, as subcommands of one binary.
//!
//! Each subcommand lives in its own crate and takes its arguments unparsed,
//! since mosquitto's tools use flags (`-h` for host, `-D CMD NAME VALUE`)
//! that a generic parser would misread.

/// jemalloc: the broker's per-message allocations (a shared message, its
/// deliveries) cost 13-19% less CPU than with glibc's malloc, and idle
/// connections no more memory (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::ffi::OsString;
use std::process::ExitCode;

type Entry = fn(Vec<OsString>) -> ExitCode;

const COMMANDS: &[(&str, &str, Entry)] = &[
    (
        "broker",
        "run the MQTT broker (mosquitto's flags and config)",
        culex_broker::cli::main,
    ),
    (
        "pub",
        "publish a message (mosquitto_pub's flags)",
        culex_tools::pub_main,
    ),
    (
        "sub",
        "subscribe and print messages (mosquitto_sub's flags)",
        culex_tools::sub_main,
    ),
    (
        "rr",
        "request and response (mosquitto_rr's flags)",
        culex_tools::rr_main,
    ),
    (
        "passwd",
        "manage a password file (mosquitto_passwd's flags)",
        culex_tools::passwd_main,
    ),
    (
        "device",
        "one simulated ESP32 board in the terminal",
        culex_demo::device_main,
    ),
    (
        "demo",
        "the tutorial's boards, simulated, in the browser",
        culex_demo::demo_main,
    ),
    ("bench", "an MQTT load generator", culex_bench::main),
    (
        "store",
        "inspect the broker's durable store (`store dump PATH`)",
        culex_store::store_main,
    ),
];

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(command) = args.next() else {
        // With no arguments culex runs the broker with its embedded defaults.
        return culex_broker::cli::main(Vec::new());
    };
    let rest: Vec<OsString> = args.collect();
    match command.to_str() {
        Some("-h" | "--help" | "help") => {
            print_usage();
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            println!("culex {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(name) => match COMMANDS.iter().find(|(n, _, _)| *n == name) {
            Some((_, _, entry)) => entry(rest),
            None => {
                eprintln!("culex: unknown command '{name}' (see 'culex --help')");
                ExitCode::from(1)
            }
        },
        None => {
            eprintln!("culex: command is not valid UTF-8 (see 'culex --help')");
            ExitCode::from(1)
        }
    }
}

fn print_usage() {
    println!(
        "culex {}: an MQTT broker and its tools\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("usage: culex [COMMAND] [ARGS...]   (no command: run the broker)\n");
    for (name, about, _) in COMMANDS {
        println!("  {name:<8} {about}");
    }
    println!("\n'culex COMMAND --help' describes each command.");
}
