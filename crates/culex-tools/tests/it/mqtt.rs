//! culex pub, sub and rr against a real broker (Debian's mosquitto), run
//! in-process, compared with mosquitto_sub and checked for mosquitto's exit
//! codes on refusal, timeout and connection failure.

use crate::common::{self, culex, culex_with, mosquitto, spawn_culex, Outcome};
use culex_testkit::{python_with_paho, run_with_timeout, tool, ChildGuard, Mosquitto};
use culex_tools::args::Tool;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Publishes with mosquitto_pub, which must succeed.
fn mosquitto_pub(port: u16, args: &[&str]) {
    assert!(
        common::mosquitto_pub(port, args),
        "mosquitto_pub {args:?} failed"
    );
}

/// Keeps publishing `payload` to `topic` every 50 ms until `done` yields,
/// so that a subscriber that is still connecting cannot miss the message.
fn publish_until(port: u16, topic: &str, payload: &str, done: &mpsc::Receiver<Outcome>) -> Outcome {
    let limit = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(outcome) = done.try_recv() {
            return outcome;
        }
        assert!(Instant::now() < limit, "subscriber did not finish");
        mosquitto_pub(port, &["-t", topic, "-m", payload]);
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pub_qos_0_1_2_and_retain_reach_mosquitto_sub() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    for (qos, topic) in [("0", "p/q0"), ("1", "p/q1"), ("2", "p/q2")] {
        let out = culex(
            Tool::Pub,
            &[
                "-p",
                &port,
                "-t",
                topic,
                "-m",
                &format!("hello {qos}"),
                "-q",
                qos,
                "-r",
            ],
        );
        assert_eq!(
            (out.code, out.stderr_text()),
            (0, String::new()),
            "qos {qos}"
        );
    }
    // Retained messages are there for a later subscriber, with their QoS.
    let mut sub = Command::new(tool("mosquitto_sub"));
    sub.args([
        "-p",
        &port,
        "-t",
        "p/#",
        "-q",
        "2",
        "-C",
        "3",
        "-W",
        "5",
        "-F",
        "%t %q %r %p",
    ]);
    let out = run_with_timeout(&mut sub, Duration::from_secs(10));
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        ["p/q0 0 1 hello 0", "p/q1 1 1 hello 1", "p/q2 2 1 hello 2"]
    );
}

#[test]
fn pub_payload_sources_file_stdin_lines_null_and_repeat() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    // mosquitto_sub with -d says when its SUBACK arrived (line-buffered with
    // stdbuf, since its debug lines are not flushed); publish after that.
    let mut sub = Command::new(tool("stdbuf"));
    sub.arg("-oL")
        .arg(tool("mosquitto_sub"))
        .args([
            "-p", &port, "-t", "src/#", "-C", "8", "-W", "10", "-d", "-q", "1", "-F", "%t %x",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = ChildGuard(sub.spawn().expect("mosquitto_sub"));
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        if line.expect("line").contains("SUBACK") {
            break;
        }
    }
    let file = broker.path("payload.bin");
    std::fs::write(&file, b"from a file").expect("write");
    let file = file.to_string_lossy().into_owned();
    assert_eq!(
        culex(
            Tool::Pub,
            &["-p", &port, "-q", "1", "-t", "src/f", "-f", &file]
        )
        .code,
        0
    );
    assert_eq!(
        culex_with(
            Tool::Pub,
            &["-p", &port, "-q", "1", "-t", "src/s", "-s"],
            b"",
            b"all of\nstdin"
        )
        .code,
        0
    );
    assert_eq!(
        culex_with(
            Tool::Pub,
            &["-p", &port, "-q", "2", "-t", "src/l", "-l"],
            b"",
            b"one\n\nthree\n"
        )
        .code,
        0
    );
    assert_eq!(
        culex(Tool::Pub, &["-p", &port, "-q", "1", "-t", "src/n", "-n"]).code,
        0
    );
    assert_eq!(
        culex(
            Tool::Pub,
            &["-p", &port, "-q", "0", "-t", "src/r", "-m", "again", "--repeat", "2"]
        )
        .code,
        0
    );
    let got: Vec<String> = lines
        .map_while(Result::ok)
        .filter(|l| l.starts_with("src/"))
        .collect();
    let hex = |s: &str| s.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let expect = vec![
        format!("src/f {}", hex("from a file")),
        format!("src/s {}", hex("all of\nstdin")),
        format!("src/l {}", hex("one")),
        "src/l ".to_string(),
        format!("src/l {}", hex("three")),
        "src/n ".to_string(),
        format!("src/r {}", hex("again")),
        format!("src/r {}", hex("again")),
    ];
    assert_eq!(got, expect);
}

#[test]
fn sub_output_matches_mosquitto_sub_byte_for_byte() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    // Retained messages on distinct topics reach every later subscriber in the same order.
    mosquitto_pub(
        broker.port,
        &["-r", "-q", "1", "-t", "o/a", "-m", "first message"],
    );
    mosquitto_pub(
        broker.port,
        &["-r", "-q", "0", "-t", "o/b/c", "-m", "{\"json\": [1, 2]}"],
    );
    mosquitto_pub(
        broker.port,
        &["-r", "-q", "2", "-t", "o/d", "-m", "tab\tand\\backslash"],
    );
    let flag_sets: &[&[&str]] = &[
        &[],
        &["-v"],
        &["-N"],
        &["-v", "-N"],
        &["-F", "%t|%p|%l|%q|%r|%m|%x|%X"],
        &["-F", "[%-12t][%12p][%05l][%.2t]"],
        &["-F", "%j"],
        &["-F", "%J", "--pretty"],
        &["-F", "@Y-@m-@dT@H:@M:@S %I %U"],
        &["-F", "\\t%t\\n\\\\%p@@%%"],
        &["-v", "-q", "2"],
        &["-R", "-v", "-W", "1"],
    ];
    for flags in flag_sets {
        let mut args = vec!["-p", port.as_str(), "-t", "o/#", "-C", "3", "-W", "5"];
        if flags.contains(&"-W") {
            args.truncate(args.len() - 4);
            args.extend(["-t", "o/#"]);
        }
        args.extend_from_slice(flags);
        let ours = culex(Tool::Sub, &args);
        let theirs = mosquitto(Tool::Sub, &args);
        let timed = flags
            .iter()
            .any(|f| f.contains('@') || f.contains("%j") || f.contains("%J") || f.contains("%I"));
        let norm = |b: &[u8]| {
            let text = String::from_utf8_lossy(b).into_owned();
            if timed {
                text.chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect()
            } else {
                text
            }
        };
        assert_eq!(
            norm(&ours.stdout),
            norm(&theirs.stdout),
            "stdout for {flags:?}"
        );
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (theirs.code, theirs.stderr_text()),
            "exit for {flags:?}"
        );
    }
}

#[test]
fn sub_live_messages_count_and_filter_out() {
    let broker = Mosquitto::start("");
    let port = broker.port;
    let done = spawn_culex(
        Tool::Sub,
        strings(&[
            "-p",
            &port.to_string(),
            "-t",
            "live/#",
            "-T",
            "live/noise",
            "-C",
            "2",
            "-v",
            "-W",
            "10",
        ]),
    );
    let limit = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        if let Ok(outcome) = done.try_recv() {
            break outcome;
        }
        assert!(Instant::now() < limit, "culex sub did not finish");
        mosquitto_pub(port, &["-t", "live/noise", "-m", "filtered"]);
        mosquitto_pub(port, &["-t", "live/x", "-m", "kept"]);
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "live/x kept\nlive/x kept\n"
    );
}

#[test]
fn sub_retained_only_and_remove_retained() {
    let broker = Mosquitto::start("");
    let port = broker.port;
    mosquitto_pub(port, &["-r", "-t", "keep/one", "-m", "1"]);
    mosquitto_pub(port, &["-r", "-t", "keep/two", "-m", "2"]);
    // --retained-only prints the retained ones and exits at the first live one.
    let done = spawn_culex(
        Tool::Sub,
        strings(&[
            "-p",
            &port.to_string(),
            "-t",
            "keep/#",
            "--retained-only",
            "--remove-retained",
            "-v",
            "-W",
            "10",
        ]),
    );
    let outcome = publish_until(port, "keep/live", "live", &done);
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "keep/one 1\nkeep/two 2\n"
    );
    // --remove-retained cleared them: a new subscriber times out with nothing.
    let out = culex(
        Tool::Sub,
        &[
            "-p",
            &port.to_string(),
            "-t",
            "keep/+",
            "-R",
            "-W",
            "1",
            "-v",
        ],
    );
    let retained = culex(
        Tool::Sub,
        &["-p", &port.to_string(), "-t", "keep/one", "-W", "1"],
    );
    assert_eq!(
        (retained.code, retained.stdout.clone()),
        (27, Vec::new()),
        "{retained:?} {out:?}"
    );
}

#[test]
fn sub_exit_after_subscribe_and_unsubscribe() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let out = culex(Tool::Sub, &["-p", &port, "-t", "e/x", "-U", "e/y", "-E"]);
    assert_eq!((out.code, out.stderr_text()), (0, String::new()));
}

#[test]
fn timeout_exits_27_with_timed_out() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    for tool_args in [
        (
            Tool::Sub,
            vec!["-p", &port, "-t", "nothing/here", "-W", "1"],
        ),
        (
            Tool::Rr,
            vec![
                "-p", &port, "-t", "nobody", "-e", "never", "-m", "q", "-W", "1",
            ],
        ),
    ] {
        let started = Instant::now();
        let ours = culex(tool_args.0, &tool_args.1);
        let theirs = mosquitto(tool_args.0, &tool_args.1);
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (27, "Timed out\n".to_string()),
            "{tool_args:?}"
        );
        assert_eq!(
            (ours.code, ours.stderr),
            (theirs.code, theirs.stderr),
            "{tool_args:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn refused_credentials_give_connack_code_and_mosquittos_message() {
    // The password file must exist before mosquitto starts.
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "").expect("pw");
    let mut passwd = Command::new(tool("mosquitto_passwd"));
    passwd.args(["-b"]).arg(&pw).args(["user", "secret"]);
    assert!(run_with_timeout(&mut passwd, Duration::from_secs(10))
        .status
        .success());
    let broker = Mosquitto::start(&format!(
        "allow_anonymous false\npassword_file {}\n",
        pw.display()
    ));
    let port = broker.port.to_string();
    let cases: &[(Tool, &[&str], i32)] = &[
        (
            Tool::Pub,
            &["-t", "a", "-m", "x", "-u", "bad", "-P", "bad"],
            5,
        ),
        (
            Tool::Pub,
            &["-t", "a", "-m", "x", "-u", "bad", "-P", "bad", "-V", "5"],
            135,
        ),
        (
            Tool::Pub,
            &["-t", "a", "-m", "x", "-u", "bad", "-P", "bad", "-V", "31"],
            5,
        ),
        (Tool::Sub, &["-t", "a", "-u", "bad", "-P", "bad"], 5),
        (
            Tool::Sub,
            &["-t", "a", "-u", "bad", "-P", "bad", "-V", "5"],
            135,
        ),
        (
            Tool::Rr,
            &["-t", "a", "-e", "b", "-m", "x", "-u", "bad", "-P", "bad"],
            135,
        ),
        (
            Tool::Rr,
            &[
                "-t", "a", "-e", "b", "-m", "x", "-u", "bad", "-P", "bad", "-V", "311",
            ],
            5,
        ),
    ];
    for (tool, args, code) in cases {
        let mut full = vec!["-p", port.as_str()];
        full.extend_from_slice(args);
        let ours = culex(*tool, &full);
        let theirs = mosquitto(*tool, &full);
        assert_eq!(ours.code, *code, "{tool:?} {args:?}: {ours:?}");
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (theirs.code, theirs.stderr_text()),
            "{tool:?} {args:?}"
        );
    }
}

#[test]
fn bind_address_is_used_or_refused_like_mosquitto() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let ok = culex(
        Tool::Pub,
        &["-p", &port, "-A", "127.0.0.1", "-t", "bind", "-m", "x"],
    );
    assert_eq!((ok.code, ok.stderr_text()), (0, String::new()));
    // An address this machine does not have.
    let args = [
        "-p",
        port.as_str(),
        "-A",
        "192.0.2.1",
        "-t",
        "bind",
        "-m",
        "x",
    ];
    let ours = culex(Tool::Pub, &args);
    let theirs = mosquitto(Tool::Pub, &args);
    assert_eq!(
        (ours.code, ours.stderr_text()),
        (theirs.code, theirs.stderr_text())
    );
}

#[test]
fn unknown_host_is_a_lookup_error() {
    for (tool, args) in [
        (
            Tool::Pub,
            vec!["-h", "nonexistent.invalid", "-t", "a", "-m", "x"],
        ),
        (Tool::Sub, vec!["-h", "nonexistent.invalid", "-t", "a"]),
    ] {
        let ours = culex(tool, &args);
        let theirs = mosquitto(tool, &args);
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (1, "Unable to connect (Lookup error.).\n".to_string())
        );
        assert_eq!(
            (ours.code, ours.stderr),
            (theirs.code, theirs.stderr),
            "{tool:?}"
        );
    }
}

#[test]
fn unreachable_broker_exits_1_with_strerror() {
    let port = culex_testkit::free_port().to_string();
    for (tool, args) in [
        (
            Tool::Pub,
            vec!["-h", "127.0.0.1", "-p", &port, "-t", "a", "-m", "x"],
        ),
        (Tool::Sub, vec!["-h", "127.0.0.1", "-p", &port, "-t", "a"]),
        (
            Tool::Rr,
            vec![
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                "a",
                "-e",
                "b",
                "-m",
                "x",
            ],
        ),
    ] {
        let ours = culex(tool, &args);
        let theirs = mosquitto(tool, &args);
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (1, "Error: Connection refused\n".to_string()),
            "{tool:?}"
        );
        assert_eq!(
            (ours.code, ours.stderr),
            (theirs.code, theirs.stderr),
            "{tool:?}"
        );
    }
}

/// A paho-mqtt responder: answers one request on `req` with `answer`, echoing
/// the correlation data, on the request's response topic.
const RESPONDER: &str = r#"
import sys
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
port = int(sys.argv[1])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
def on_connect(c, u, f, rc, p):
    c.subscribe("req", qos=1)
def on_subscribe(c, u, mid, rcs, p):
    print("ready", flush=True)
def on_message(c, u, m):
    props = Properties(PacketTypes.PUBLISH)
    if hasattr(m.properties, "CorrelationData"):
        props.CorrelationData = m.properties.CorrelationData
    c.publish(m.properties.ResponseTopic, b"answer to " + m.payload, qos=1, properties=props)
c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_message = on_message
c.connect("127.0.0.1", port)
c.loop_forever(timeout=0.2)
"#;

#[test]
fn rr_sends_response_topic_and_correlation_data_and_prints_the_answer() {
    let broker = Mosquitto::start("");
    let mut python = python_with_paho();
    python
        .args(["-c", RESPONDER, &broker.port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = ChildGuard(python.spawn().expect("start responder"));
    let stdout = child.0.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("responder ready");
    assert_eq!(line.trim(), "ready");
    let port = broker.port.to_string();
    let out = culex(
        Tool::Rr,
        &[
            "-p",
            &port,
            "-t",
            "req",
            "-e",
            "resp/me",
            "-m",
            "question",
            "-q",
            "1",
            "-W",
            "5",
            "-D",
            "publish",
            "correlation-data",
            "c-42",
            "-F",
            "%t %p %D",
        ],
    );
    assert_eq!((out.code, out.stderr_text()), (0, String::new()), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "resp/me answer to question c-42\n"
    );
}

#[test]
fn debug_lines_match_libmosquittos() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let cases: &[(Tool, &[&str])] = &[
        (Tool::Pub, &["-d", "-t", "dbg/a", "-m", "hi", "-q", "0"]),
        (
            Tool::Pub,
            &["-d", "-t", "dbg/a", "-m", "hi", "-q", "1", "-r"],
        ),
        (Tool::Pub, &["-d", "-t", "dbg/b", "-m", "hello", "-q", "2"]),
        (
            Tool::Pub,
            &[
                "-d", "-t", "dbg/c", "-m", "v5", "-q", "1", "-V", "5", "-i", "fixed-id",
            ],
        ),
        (
            Tool::Sub,
            &[
                "-d", "-E", "-t", "dbg/x", "-t", "dbg/y", "-q", "1", "-i", "sub-id",
            ],
        ),
        (
            Tool::Sub,
            &["-d", "-E", "-t", "dbg/x", "-R", "-V", "5", "-i", "sub-id"],
        ),
    ];
    for (tool, args) in cases {
        let mut full = vec!["-p", port.as_str()];
        full.extend_from_slice(args);
        let ours = culex(*tool, &full);
        let theirs = mosquitto(*tool, &full);
        assert_eq!(
            String::from_utf8_lossy(&ours.stdout),
            String::from_utf8_lossy(&theirs.stdout),
            "{tool:?} {args:?}"
        );
        assert_eq!(ours.code, theirs.code, "{tool:?} {args:?}");
    }
}

#[test]
fn persistent_session_keeps_qos1_messages_while_offline() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    for version in ["mqttv311", "mqttv5"] {
        let id = format!("keeper-{version}");
        let topic = format!("offline/{version}");
        // -c with a client id: the broker keeps the subscription after -E ends the run.
        let out = culex(
            Tool::Sub,
            &[
                "-p", &port, "-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic, "-E",
            ],
        );
        assert_eq!(out.code, 0, "{out:?}");
        mosquitto_pub(
            broker.port,
            &["-q", "1", "-t", &topic, "-m", "queued while away"],
        );
        let out = culex(
            Tool::Sub,
            &[
                "-p", &port, "-V", version, "-c", "-i", &id, "-q", "1", "-t", &topic, "-C", "1",
                "-W", "5", "-v",
            ],
        );
        assert_eq!(
            (out.code, String::from_utf8_lossy(&out.stdout).into_owned()),
            (0, format!("{topic} queued while away\n"))
        );
    }
}

#[test]
fn mqtt5_properties_from_pub_reach_sub() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let done = spawn_culex(
        Tool::Sub,
        strings(&[
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "props",
            "-C",
            "1",
            "-W",
            "10",
            "-F",
            "%P|%C|%R|%D|%F|%p",
        ]),
    );
    let limit = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        if let Ok(outcome) = done.recv_timeout(Duration::from_millis(50)) {
            break outcome;
        }
        assert!(Instant::now() < limit, "no message");
        let args = [
            "-p",
            &port,
            "-t",
            "props",
            "-m",
            "body",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "response-topic",
            "back",
            "-D",
            "publish",
            "correlation-data",
            "xyz",
            "-D",
            "publish",
            "payload-format-indicator",
            "1",
        ];
        assert_eq!(culex(Tool::Pub, &args).code, 0);
    };
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "k:v|text/plain|back|xyz|1|body\n"
    );
}

#[test]
fn will_is_published_when_the_session_is_taken_over() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    // A watcher for the will.
    let watcher = spawn_culex(
        Tool::Sub,
        strings(&["-p", &port, "-t", "wills/#", "-C", "1", "-W", "15", "-v"]),
    );
    // The client with a will; -d shows when it is subscribed.
    let (_willer, out) = crate::common::spawn_watched(
        Tool::Sub,
        &[
            "-p",
            &port,
            "-i",
            "has-a-will",
            "-t",
            "w/x",
            "-W",
            "4",
            "-d",
            "--will-topic",
            "wills/has-a-will",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
        ],
    );
    let limit = Instant::now() + Duration::from_secs(10);
    while !out.text().contains("SUBACK") {
        assert!(
            Instant::now() < limit,
            "the client with a will never subscribed"
        );
        thread::sleep(Duration::from_millis(20));
    }
    // Another connection with the same id takes the session over: the
    // broker closes the first one without DISCONNECT and sends its will.
    let outcome = loop {
        if let Ok(outcome) = watcher.recv_timeout(Duration::from_millis(200)) {
            break outcome;
        }
        assert!(Instant::now() < limit, "no will");
        mosquitto_pub(
            broker.port,
            &["-i", "has-a-will", "-t", "w/y", "-m", "takeover"],
        );
    };
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        "wills/has-a-will gone\n"
    );
}

#[test]
fn json_output_keeps_the_wire_order_of_properties() {
    let broker = Mosquitto::start("");
    let args = [
        "-V",
        "5",
        "-r",
        "-t",
        "order/x",
        "-m",
        "[1]",
        "-D",
        "publish",
        "payload-format-indicator",
        "1",
        "-D",
        "publish",
        "user-property",
        "a",
        "b",
        "-D",
        "publish",
        "response-topic",
        "r/t",
        "-D",
        "publish",
        "user-property",
        "c",
        "d",
        "-D",
        "publish",
        "correlation-data",
        "cd",
        "-D",
        "publish",
        "content-type",
        "text/x",
        "-D",
        "publish",
        "message-expiry-interval",
        "1000",
    ];
    mosquitto_pub(broker.port, &args);
    let port = broker.port.to_string();
    for format in ["%j", "%J"] {
        let args = [
            "-p",
            &port,
            "-V",
            "5",
            "-t",
            "order/#",
            "-C",
            "1",
            "-W",
            "5",
            "-D",
            "subscribe",
            "subscription-identifier",
            "9",
            "-F",
            format,
        ];
        let ours = culex(Tool::Sub, &args);
        let theirs = mosquitto(Tool::Sub, &args);
        let digits = |b: &[u8]| {
            // Times and the remaining expiry change between the two runs.
            let mut out = String::new();
            for c in String::from_utf8_lossy(b).chars() {
                if !(c.is_ascii_digit() && out.ends_with('9')) {
                    out.push(if c.is_ascii_digit() { '9' } else { c });
                }
            }
            out
        };
        assert!(
            String::from_utf8_lossy(&ours.stdout).contains("\"subscription-identifier\":9"),
            "{ours:?}"
        );
        assert_eq!(digits(&ours.stdout), digits(&theirs.stdout), "{format}");
        assert_eq!(
            (ours.code, ours.stderr_text()),
            (theirs.code, theirs.stderr_text())
        );
    }
}

#[test]
fn count_below_20_limits_receive_maximum_so_nothing_is_lost() {
    let broker = Mosquitto::start("");
    let port = broker.port.to_string();
    let base = [
        "-p",
        port.as_str(),
        "-V",
        "5",
        "-c",
        "-i",
        "counted",
        "-q",
        "1",
        "-t",
        "count/x",
    ];
    let mut setup = base.to_vec();
    setup.push("-E");
    assert_eq!(culex(Tool::Sub, &setup).code, 0);
    for n in ["one", "two", "three"] {
        mosquitto_pub(broker.port, &["-q", "1", "-t", "count/x", "-m", n]);
    }
    // Each run takes one message; the others stay queued for the next run.
    for expect in ["one", "two", "three"] {
        let mut args = base.to_vec();
        args.extend(["-C", "1", "-W", "5"]);
        let out = culex(Tool::Sub, &args);
        assert_eq!(
            (out.code, String::from_utf8_lossy(&out.stdout).into_owned()),
            (0, format!("{expect}\n"))
        );
    }
}
