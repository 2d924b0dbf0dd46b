//! `culex bench`: an MQTT load generator.
//!
//! It opens many connections and drives them with a lean loop over the shared
//! codec (see [`conn`]): publishers encode straight into one write buffer per
//! connection, subscribers decode in place from one read buffer, and counters
//! are touched once per batch, so the tool is not the bottleneck. Scenarios:
//! `conn`, `pub`, `sub`, `fanin`, `fanout`, `pairs` and `latency`.
//!
//! Start at [`main`] (the `culex bench` subcommand) or [`run_cli`], which
//! writes the summary to a caller's writer. Every run is bounded in time, and
//! targets outside loopback are refused unless `--allow-remote` is given.

pub mod cli;
pub mod conn;
pub mod link;
pub mod report;
pub mod roles;
mod run;
pub mod stats;

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

pub use cli::{Cli, Plan, Scenario};
pub use report::Report;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The options do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// A target or source address outside loopback without `--allow-remote`.
    #[error("refusing non-loopback {0} (pass --allow-remote to allow it)")]
    Remote(String),
    /// The host name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Not a single connection could be set up.
    #[error("no connection could be set up: {0}")]
    NoConnection(String),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Entry point of `culex bench`; `args` excludes the program and command names.
pub fn main(args: Vec<OsString>) -> ExitCode {
    run_cli(args, &mut std::io::stdout().lock())
}

/// Parses `args` (without the program name), runs, and writes the summary
/// (a table, or JSON with `--json`) to `out`; progress and errors go to
/// stderr. Exits 0 when the run completed without errors, 1 when it failed or
/// counted errors (the summary is still written), 2 on bad usage.
pub fn run_cli(args: Vec<OsString>, out: &mut dyn Write) -> ExitCode {
    let argv = std::iter::once(OsString::from("culex bench")).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let (scenario, opts) = cli.command.split();
    let plan = match Plan::new(scenario, opts) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("culex bench: {e}");
            return ExitCode::from(2);
        }
    };
    let json = plan.json;
    match execute(plan) {
        Ok(report) => {
            let text = if json {
                serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"
            } else {
                report.table()
            };
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            if report.errors.total == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("culex bench: {e}");
            ExitCode::from(match e {
                BenchError::Usage(_) | BenchError::Remote(_) => 2,
                _ => 1,
            })
        }
    }
}

/// Runs a resolved plan and returns its report.
pub fn execute(plan: Plan) -> Result<Report, BenchError> {
    let addr = resolve(&plan.host, plan.port, plan.allow_remote)?;
    if !plan.source_ips.is_empty()
        && plan
            .source_ips
            .iter()
            .any(|ip| ip.is_ipv4() != addr.is_ipv4())
    {
        return Err(BenchError::Usage(format!(
            "source addresses and the target {addr} must be of one IP version"
        )));
    }
    reserve_descriptors(&plan);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.threads)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let sub_addr = match plan.sub_port {
        Some(port) => resolve(&plan.host, port, plan.allow_remote)?,
        None => addr,
    };
    runtime.block_on(run::run(plan, addr, sub_addr))
}

/// Makes room in the descriptor table for every socket of the run while
/// the process has one thread: Linux grows the table by doubling, and in a
/// threaded process each growth stalls every thread that opens a socket for
/// an RCU grace period (10–25 ms here), which showed as slow connects of
/// whichever broker was measured. Best effort.
fn reserve_descriptors(plan: &Plan) {
    let sockets = plan.clients();
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let top = sockets
        .saturating_add(64)
        .min(soft.unwrap_or(u64::MAX))
        .saturating_sub(1);
    if let (Ok(null), Ok(top)) = (std::fs::File::open("/dev/null"), i32::try_from(top)) {
        // The duplicate is closed at once; the table keeps its size.
        let _ = rustix::io::fcntl_dupfd_cloexec(&null, top);
    }
}

/// Resolves the target, refusing anything outside loopback unless allowed.
fn resolve(host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr, BenchError> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| BenchError::Resolve(format!("{host}: {e}")))?
        .collect();
    let first = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| BenchError::Resolve(host.to_string()))?;
    if !allow_remote {
        if let Some(remote) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(BenchError::Remote(format!(
                "target {host} ({})",
                remote.ip()
            )));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn loopback_targets_only() {
        assert!(resolve("127.0.0.1", 1883, false).is_ok());
        assert!(resolve("127.0.0.9", 1883, false).is_ok());
        assert!(resolve("::1", 1883, false).is_ok());
        assert!(matches!(
            resolve("192.0.2.1", 1883, false),
            Err(BenchError::Remote(_))
        ));
        assert!(matches!(
            resolve("10.1.2.3", 1883, false),
            Err(BenchError::Remote(_))
        ));
        assert!(resolve("192.0.2.1", 1883, true).is_ok());
    }

    /// The run's sockets fit in the descriptor table before any thread
    /// starts (`FDSize` in /proc/self/status is the table's size).
    #[test]
    fn the_descriptor_table_holds_every_socket_of_the_run() {
        let cli = cli::Cli::try_parse_from(["bench", "conn", "-c", "3000"]).unwrap();
        let (scenario, opts) = cli.command.split();
        let plan = Plan::new(scenario, opts).unwrap();
        reserve_descriptors(&plan);
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let size: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("FDSize:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(size >= 3000 + 64, "FDSize {size}");
    }
}
