//! Options, refusals and output formats.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use culex_testkit::{free_port, Mosquitto};

use crate::support::bench;

/// A target outside loopback is refused before anything is sent.
#[test]
fn non_loopback_target_is_refused() {
    let (code, out) = bench(&["pairs", "-H", "192.0.2.1", "-d", "1s", "--quiet"]);
    assert_eq!(code, ExitCode::from(2));
    assert!(out.is_empty(), "no summary for a refused run: {out}");
}

/// Source addresses outside loopback are refused too.
#[test]
fn non_loopback_source_address_is_refused() {
    let (code, _) = bench(&["conn", "--source-ips", "192.0.2.1", "-d", "1s", "--quiet"]);
    assert_eq!(code, ExitCode::from(2));
}

/// Every run is bounded: a duration above the maximum is refused.
#[test]
fn duration_above_the_maximum_is_refused() {
    let (code, _) = bench(&["pairs", "-d", "2h"]);
    assert_eq!(code, ExitCode::from(2));
}

/// With no broker listening the run fails instead of reporting zeros as success.
#[test]
fn no_broker_is_a_failure() {
    let port = free_port().to_string();
    let (code, out) = bench(&["pairs", "-c", "1", "-d", "1s", "-p", &port, "--quiet"]);
    assert_eq!(code, ExitCode::from(1));
    assert!(out.is_empty());
}

/// Without --json the summary is a table naming each figure.
#[test]
fn summary_table_names_each_figure() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let (code, out) = bench(&[
        "pairs", "-c", "1", "-q", "1", "-r", "50", "-d", "300ms", "-p", &port, "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    for label in [
        "scenario",
        "connections",
        "sent",
        "received",
        "delivered",
        "latency",
        "errors",
        "own cpu",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(label)),
            "no {label} row in:\n{out}"
        );
    }
}

/// The help names every scenario; an unknown one is a usage error.
#[test]
fn help_lists_every_scenario() {
    use clap::CommandFactory;
    let help = culex_bench::Cli::command().render_help().to_string();
    for scenario in ["conn", "pub", "sub", "fanin", "fanout", "pairs", "latency"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(scenario)),
            "{scenario} missing:\n{help}"
        );
    }
    let (code, _) = bench(&["nonsense"]);
    assert_eq!(code, ExitCode::from(2));
}

/// --source-ips spreads connections round-robin over the given local
/// addresses: a minimal MQTT peer records where each connection came from.
#[test]
fn source_ips_spread_connections_over_local_addresses() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let peer = std::thread::spawn(move || {
        let mut seen = BTreeSet::new();
        let mut streams = Vec::new();
        for _ in 0..8 {
            let (mut stream, from) = listener.accept().expect("accept");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut connect = [0u8; 2];
            stream.read_exact(&mut connect).expect("CONNECT header");
            assert_eq!(connect[0], 0x10, "first packet is CONNECT");
            let mut rest = vec![0u8; usize::from(connect[1])];
            stream.read_exact(&mut rest).expect("CONNECT body");
            // CONNACK: session not present, accepted.
            stream
                .write_all(&[0x20, 0x02, 0x00, 0x00])
                .expect("CONNACK");
            seen.insert(from.ip());
            streams.push(stream);
        }
        // Hold every connection until the tool closes it.
        let deadline = Instant::now() + Duration::from_secs(10);
        for mut stream in streams {
            let mut sink = Vec::new();
            while Instant::now() < deadline && stream.read_to_end(&mut sink).is_err() {}
        }
        seen
    });
    let port = port.to_string();
    let (code, out) = bench(&[
        "conn",
        "-c",
        "8",
        "--source-ips",
        "127.0.0.1-127.0.0.4",
        "-d",
        "300ms",
        "-p",
        &port,
        "--quiet",
    ]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    let seen = peer.join().expect("peer");
    let expected: BTreeSet<IpAddr> = (1..=4).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    assert_eq!(seen, expected);
}

/// A broker that refuses the CONNECT fails the run, naming the reason.
#[test]
fn refused_connections_fail_the_run_with_the_reason() {
    use clap::Parser;
    let broker = Mosquitto::start("allow_anonymous false");
    let port = broker.port.to_string();
    let cli = culex_bench::Cli::try_parse_from([
        "culex bench",
        "pairs",
        "-c",
        "1",
        "-d",
        "1s",
        "-p",
        &port,
        "--quiet",
    ])
    .expect("arguments parse");
    let (scenario, opts) = cli.command.split();
    let plan = culex_bench::Plan::new(scenario, opts).expect("plan");
    match culex_bench::execute(plan) {
        Err(culex_bench::BenchError::NoConnection(why)) => {
            assert!(
                why.contains("refused") && why.contains("NotAuthorized"),
                "{why}"
            );
        }
        other => panic!("expected a refused run, got {other:?}"),
    }
}

/// -u and -P log in to a broker that requires a password.
#[test]
fn username_and_password_log_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let passwords = dir.path().join("passwords");
    let made = culex_testkit::run_with_timeout(
        std::process::Command::new(culex_testkit::tool("mosquitto_passwd"))
            .arg("-b")
            .arg("-c")
            .arg(&passwords)
            .args(["bench", "s3cret"]),
        Duration::from_secs(10),
    );
    assert!(made.status.success(), "{made:?}");
    let broker = Mosquitto::start(&format!(
        "allow_anonymous false\npassword_file {}",
        passwords.display()
    ));
    let port = broker.port.to_string();
    let args = [
        "pairs", "-c", "1", "-q", "1", "-r", "50", "-d", "300ms", "-p", &port, "--quiet",
    ];
    let (code, _) = bench(&[&args[..], &["-u", "bench", "-P", "s3cret"]].concat());
    assert_eq!(code, ExitCode::SUCCESS);
    let (code, _) = bench(&[&args[..], &["-u", "bench", "-P", "wrong"]].concat());
    assert_eq!(code, ExitCode::from(1));
}
