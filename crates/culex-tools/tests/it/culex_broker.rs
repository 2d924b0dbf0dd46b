//! The tools against culex's own broker (in-process, `culex_broker::testing`):
//! the tutorial's round trip, every QoS, retained messages compared with
//! mosquitto_sub, request/response, and the timeout exit code.

use crate::common::{culex, mosquitto, spawn_culex, Outcome};
use culex_broker::testing::BrokerThread;
use culex_tools::args::Tool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Publishes with culex pub until the subscriber behind `done` finishes.
fn publish_until(port: &str, args: &[&str], done: &mpsc::Receiver<Outcome>) -> Outcome {
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(outcome) = done.recv_timeout(Duration::from_millis(50)) {
            return outcome;
        }
        assert!(Instant::now() < limit, "subscriber did not finish");
        let mut full = vec!["-p", port];
        full.extend_from_slice(args);
        let published = culex(Tool::Pub, &full);
        assert_eq!(published.code, 0, "{published:?}");
    }
}

#[test]
fn tutorial_round_trip_through_culex_broker() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    // The tutorial: `mosquitto_sub -v -t hello` sees `mosquitto_pub -t hello -m 'my name is blah'`.
    let done = spawn_culex(
        Tool::Sub,
        vec![
            "-p".into(),
            port.clone(),
            "-v".into(),
            "-t".into(),
            "hello".into(),
            "-C".into(),
            "1".into(),
            "-W".into(),
            "10".into(),
        ],
    );
    let out = publish_until(&port, &["-t", "hello", "-m", "my name is blah"], &done);
    assert_eq!(
        (out.code, String::from_utf8_lossy(&out.stdout).into_owned()),
        (0, "hello my name is blah\n".into())
    );
}

#[test]
fn every_qos_and_protocol_through_culex_broker() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    for version in ["mqttv311", "mqttv31", "mqttv5"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("q/{version}/{qos}");
            let done = spawn_culex(
                Tool::Sub,
                [
                    "-p", &port, "-V", version, "-q", qos, "-t", &topic, "-C", "1", "-W", "10",
                    "-F", "%t %q %p",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            );
            let out = publish_until(
                &port,
                &["-V", version, "-q", qos, "-t", &topic, "-m", "payload"],
                &done,
            );
            assert_eq!(out.code, 0, "{version} qos {qos}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{topic} {qos} payload\n")
            );
        }
    }
}

#[test]
fn retained_output_matches_mosquitto_sub_through_culex_broker() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    for (topic, payload, qos) in [
        ("r/a", "first", "1"),
        ("r/b", "second", "0"),
        ("r/c/d", "third", "2"),
    ] {
        assert_eq!(
            culex(
                Tool::Pub,
                &["-p", &port, "-r", "-q", qos, "-t", topic, "-m", payload]
            )
            .code,
            0
        );
    }
    for flags in [&["-v"][..], &["-F", "%t|%p|%r|%l|%x"][..], &["-N"][..]] {
        let mut args = vec!["-p", port.as_str(), "-t", "r/#", "-C", "3", "-W", "5"];
        args.extend_from_slice(flags);
        let ours = culex(Tool::Sub, &args);
        let theirs = mosquitto(Tool::Sub, &args);
        let sorted = |o: &Outcome| {
            let mut lines: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .split_inclusive('\n')
                .map(str::to_string)
                .collect();
            lines.sort();
            lines
        };
        assert_eq!(ours.code, 0, "{flags:?}: {ours:?}");
        // The order of retained messages on a wildcard is the broker's choice;
        // with -N the bytes must match as a whole.
        if flags == ["-N"] {
            let mut a = ours.stdout.clone();
            let mut b = theirs.stdout.clone();
            a.sort_unstable();
            b.sort_unstable();
            assert_eq!(a, b, "{flags:?}");
        } else {
            assert_eq!(sorted(&ours), sorted(&theirs), "{flags:?}");
        }
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (theirs.code, theirs.stderr_text())
        );
    }
}

#[test]
fn timeout_and_exit_after_subscribe_through_culex_broker() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    let out = culex(Tool::Sub, &["-p", &port, "-t", "quiet", "-W", "1"]);
    assert_eq!(
        (out.code, out.stderr_text()),
        (27, "Timed out\n".to_string())
    );
    let out = culex(Tool::Sub, &["-p", &port, "-t", "x", "-t", "y/#", "-E"]);
    assert_eq!((out.code, out.stderr_text()), (0, String::new()));
}

#[test]
fn rr_through_culex_broker_with_a_culex_responder() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    // The responder: culex sub prints the request's response topic and correlation data.
    let responder = spawn_culex(
        Tool::Sub,
        [
            "-p", &port, "-V", "5", "-t", "service", "-C", "1", "-W", "10", "-F", "%R %D %p",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    let requester = spawn_culex(
        Tool::Rr,
        [
            "-p",
            &port,
            "-t",
            "service",
            "-e",
            "answers/1",
            "-m",
            "ping",
            "-W",
            "10",
            "-D",
            "publish",
            "correlation-data",
            "id-7",
            "-v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    );
    // The request may go out before the responder subscribed: repeat it
    // (with the same response topic) until the responder has one.
    let limit = Instant::now() + Duration::from_secs(10);
    let request = loop {
        if let Ok(outcome) = responder.recv_timeout(Duration::from_millis(100)) {
            break outcome;
        }
        assert!(Instant::now() < limit, "responder saw no request");
        let args = [
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "service",
            "-m",
            "ping",
            "-D",
            "publish",
            "response-topic",
            "answers/1",
            "-D",
            "publish",
            "correlation-data",
            "id-7",
        ];
        assert_eq!(culex(Tool::Pub, &args).code, 0);
    };
    assert_eq!(
        String::from_utf8_lossy(&request.stdout),
        "answers/1 id-7 ping\n"
    );
    let reply = [
        "-p",
        &port,
        "-V",
        "5",
        "-t",
        "answers/1",
        "-m",
        "pong",
        "-D",
        "publish",
        "correlation-data",
        "id-7",
    ];
    let answer = loop {
        if let Ok(outcome) = requester.recv_timeout(Duration::from_millis(100)) {
            break outcome;
        }
        assert!(Instant::now() < limit, "requester got no answer");
        assert_eq!(culex(Tool::Pub, &reply).code, 0);
    };
    assert_eq!(
        (
            answer.code,
            String::from_utf8_lossy(&answer.stdout).into_owned()
        ),
        (0, "answers/1 pong\n".into())
    );
}

#[test]
fn refusal_exit_codes_through_culex_broker() {
    // A password file written by mosquitto_passwd, and no anonymous access.
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "").expect("pw");
    let mut passwd = std::process::Command::new(culex_testkit::tool("mosquitto_passwd"));
    passwd.args(["-b"]).arg(&pw).args(["user", "secret"]);
    assert!(
        culex_testkit::run_with_timeout(&mut passwd, Duration::from_secs(10))
            .status
            .success()
    );
    let mut config = culex_broker::testing::local_config();
    config.security.allow_anonymous = false;
    config.security.password_file = Some(pw);
    let broker = BrokerThread::start_with(config);
    let port = broker.port().to_string();
    let cases: &[(Tool, &[&str], i32, &str)] = &[
        (Tool::Pub, &["-t", "a", "-m", "x", "-u", "user", "-P", "wrong"], 5, "Connection error: Connection Refused: not authorised.\nError: The connection was refused.\n"),
        (Tool::Sub, &["-t", "a", "-u", "user", "-P", "wrong"], 5, "Connection error: Connection Refused: not authorised.\n"),
        (Tool::Sub, &["-t", "a", "-u", "user", "-P", "wrong", "-V", "5"], 135, "Connection error: Not authorized\n"),
        (Tool::Rr, &["-t", "a", "-e", "b", "-m", "x"], 135, "Connection error: Not authorized\n"),
    ];
    for (tool, args, code, stderr) in cases {
        let mut full = vec!["-p", port.as_str()];
        full.extend_from_slice(args);
        let out = culex(*tool, &full);
        assert_eq!(
            (out.code, out.stderr_text()),
            (*code, stderr.to_string()),
            "{tool:?} {args:?}"
        );
    }
    // The right password gets in.
    let out = culex(
        Tool::Pub,
        &[
            "-p", &port, "-u", "user", "-P", "secret", "-t", "a", "-m", "x",
        ],
    );
    assert_eq!((out.code, out.stderr_text()), (0, String::new()));
}

/// culex pub and sub over culex's own TLS listener (`--cafile`), and over a
/// mutual-TLS one with a client certificate (`--cert`/`--key`) whose CN is
/// the username the ACL file allows.
#[test]
fn pub_and_sub_over_tls_and_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = culex_testkit::pki::Pki::new();
    let files = pki.write_to(dir.path());
    let show = |p: &std::path::Path| p.display().to_string();
    let acl = culex_testkit::write_file(
        dir.path(),
        "acl",
        "user client one\ntopic readwrite tls/#\n",
    );
    let tls = format!(
        "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        show(&files.server.0),
        show(&files.server.1)
    );
    let brokers = [
        format!("allow_anonymous true\n{tls}"),
        format!(
            "allow_anonymous false\nacl_file {}\n{tls}cafile {}\nrequire_certificate true\nuse_identity_as_username true\n",
            show(&acl),
            show(&files.ca)
        ),
    ];
    let ca = show(&files.ca);
    let (cert, key) = (show(&files.client.0), show(&files.client.1));
    for (n, text) in brokers.iter().enumerate() {
        let config =
            culex_broker::config::Config::parse(text, std::path::Path::new("tls.conf"), &[])
                .expect("config");
        let broker = BrokerThread::start_with(config);
        let port = broker.port().to_string();
        let mut tls_args: Vec<String> = ["-h", "localhost", "--cafile", &ca]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if n == 1 {
            tls_args.extend(
                ["--cert", &cert, "--key", &key]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        let topic = format!("tls/{n}");
        let mut sub = tls_args.clone();
        sub.extend(
            ["-p", &port, "-t", &topic, "-C", "1", "-W", "10", "-v"]
                .iter()
                .map(|s| s.to_string()),
        );
        let done = spawn_culex(Tool::Sub, sub);
        let mut publish: Vec<&str> = tls_args.iter().map(String::as_str).collect();
        publish.extend(["-t", &topic, "-m", "over tls", "-q", "1"]);
        let out = publish_until(&port, &publish, &done);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{topic} over tls\n")
        );
    }
}
