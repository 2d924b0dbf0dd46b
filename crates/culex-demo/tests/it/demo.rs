//! `culex demo` in-process: its HTTP API, its event stream, its monitor, and
//! outside clients joining its broker.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use culex_demo::demo::{Demo, DemoOptions};
use std::process::Command;

use culex_testkit::{run_with_timeout, tool};

use crate::support::{demo_with_embedded_broker, wait_online, wait_until, TestBroker};

fn options(broker_port: u16, boards: &[&str]) -> DemoOptions {
    DemoOptions {
        broker: Some(("127.0.0.1".into(), broker_port)),
        boards: DemoOptions::parse(&["--boards".into(), boards.join(",")])
            .unwrap()
            .unwrap()
            .boards,
        http: "127.0.0.1:0".parse().unwrap(),
        http_given: true,
        ..DemoOptions::default()
    }
}

fn web_addr(demo: &Demo) -> SocketAddr {
    let url = demo.url();
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("url is http://IP:PORT/")
}

/// One HTTP/1.0 request; returns the status code and the body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    http_with(addr, method, path, "")
}

/// As [`http`], with extra header lines (each ending in CRLF).
fn http_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_page_and_its_api_drive_the_boards() {
    let demo = demo_with_embedded_broker();
    assert_eq!(demo.broker_addr().0, "127.0.0.1");
    assert_ne!(demo.broker_addr().1, 0);
    let addr = web_addr(&demo);
    let (blue, green) = (demo.board("blue").unwrap(), demo.board("green").unwrap());
    wait_online(&[blue, green]);

    let (status, page) = http(addr, "GET", "/");
    assert_eq!(status, 200);
    assert!(
        page.contains("<script src=\"/app.js\">"),
        "the page loads its script"
    );
    assert!(page.contains("mosquitto_sub -v -t '+/btn/0'"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
    assert_eq!(http(addr, "GET", "/app.js").0, 200);
    assert_eq!(http(addr, "GET", "/style.css").0, 200);
    assert_eq!(http(addr, "GET", "/nope").0, 404);
    assert_eq!(http(addr, "POST", "/api/boards/red/press").0, 404);

    let (status, state) = http(addr, "GET", "/api/state");
    assert_eq!(status, 200);
    let state: serde_json::Value = serde_json::from_str(&state).expect("state is JSON");
    assert_eq!(state["boards"][0]["name"], "blue");
    assert_eq!(state["boards"][0]["peer"], "green");
    assert_eq!(state["boards"][1]["peer"], "blue");
    assert_eq!(state["boards"][0]["button"], 1);
    assert_eq!(state["boards"][0]["link"], "online");

    // Another site's page may not press the buttons; the demo's own may.
    let evil = "Origin: http://evil.example\r\n";
    assert_eq!(
        http_with(addr, "POST", "/api/boards/blue/press", evil).0,
        403
    );
    assert!(!blue.pins().pressed());
    let own = format!("Origin: http://{addr}\r\n");
    assert_eq!(
        http_with(addr, "POST", "/api/boards/blue/press", &own).0,
        204
    );
    assert!(blue.pins().pressed());
    assert!(wait_until(Duration::from_millis(1500), || green.pins().led_on()).is_some());
    let (_, state) = http(addr, "GET", "/api/state");
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(state["boards"][0]["button"], 0);
    assert_eq!(state["boards"][1]["led"], true);
    assert_eq!(http(addr, "POST", "/api/boards/blue/release").0, 204);
    assert!(wait_until(Duration::from_millis(1500), || !green.pins().led_on()).is_some());
}

#[test]
fn the_event_stream_reports_state_and_traffic() {
    let broker = TestBroker::start();
    let demo = Demo::start(&options(broker.port, &["blue", "green"])).expect("demo starts");
    let addr = web_addr(&demo);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    write!(stream, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut saw_content_type = false;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        saw_content_type |= line
            .to_ascii_lowercase()
            .starts_with("content-type: text/event-stream");
    }
    assert!(saw_content_type);

    // Read events until both boards are online and a message from each was
    // relayed, within a bounded number of lines.
    let (mut online, mut blue_msg, mut green_msg) = (false, false, false);
    let mut event = String::new();
    for _ in 0..400 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let value: serde_json::Value = serde_json::from_str(data).expect("event data is JSON");
            match event.as_str() {
                "state" => {
                    online |= value["boards"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|b| b["link"] == "online");
                }
                "msg" => {
                    blue_msg |= value["line"] == "blue/btn/0 1";
                    green_msg |= value["line"] == "green/btn/0 1";
                }
                other => panic!("unknown event {other}"),
            }
        }
        if online && blue_msg && green_msg {
            return;
        }
    }
    panic!("stream ended early: online {online}, blue {blue_msg}, green {green_msg}");
}

#[test]
fn three_boards_pair_in_a_ring() {
    let broker = TestBroker::start();
    let demo = Demo::start(&options(broker.port, &["blue", "green", "red"])).expect("demo starts");
    let [blue, green, red] = ["blue", "green", "red"].map(|name| demo.board(name).unwrap());
    wait_online(&[blue, green, red]);
    assert_eq!(
        (blue.peer(), green.peer(), red.peer()),
        ("green", "red", "blue")
    );
    let within = Duration::from_millis(1500);

    // Each board watches the next one's button: green lights blue, red
    // lights green, blue lights red.
    for (presser, watcher) in [(green, blue), (red, green), (blue, red)] {
        presser.pins().press();
        assert!(
            wait_until(within, || watcher.pins().led_on()).is_some(),
            "{} did not light {}",
            presser.name(),
            watcher.name()
        );
        let others_dark = [blue, green, red]
            .iter()
            .all(|b| b.name() == watcher.name() || !b.pins().led_on());
        assert!(
            others_dark,
            "pressing {} lit another board too",
            presser.name()
        );
        presser.pins().release();
        assert!(wait_until(within, || !watcher.pins().led_on()).is_some());
    }
}

#[test]
fn a_board_outside_the_demo_takes_part() {
    // Only blue is simulated; green is whoever publishes on green/btn/0,
    // here mosquitto_pub, as a real board running the tutorial would.
    let broker = TestBroker::start();
    let demo = Demo::start(&options(broker.port, &["blue:green"])).expect("demo starts");
    let blue = demo.board("blue").unwrap();
    wait_online(&[blue]);
    let publish = |payload: &str| {
        let mut command = Command::new(tool("mosquitto_pub"));
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-t",
            "green/btn/0",
            "-m",
            payload,
        ]);
        let out = run_with_timeout(&mut command, Duration::from_secs(5));
        assert!(out.status.success(), "mosquitto_pub failed: {out:?}");
    };
    let within = Duration::from_millis(1500);
    publish("0");
    assert!(
        wait_until(within, || blue.pins().led_on()).is_some(),
        "green's 0 did not light blue"
    );
    publish("1");
    assert!(
        wait_until(within, || !blue.pins().led_on()).is_some(),
        "green's 1 did not put blue out"
    );
    // The page's monitor saw the outsider, as mosquitto_sub -v prints it.
    let (status, _) = http(web_addr(&demo), "GET", "/api/state");
    assert_eq!(status, 200);
    let log = demo.log();
    let seen = wait_until(within, || {
        let lines: Vec<String> = log.since(0).into_iter().map(|(_, line)| line).collect();
        lines.iter().any(|l| l == "green/btn/0 0") && lines.iter().any(|l| l == "blue/btn/0 1")
    });
    assert!(seen.is_some(), "monitor lines: {:?}", log.since(0));
}

#[test]
fn the_monitor_prints_what_mosquitto_sub_prints() {
    let broker = TestBroker::start();
    let sub = crate::traffic::Sub::start(broker.port, "+/btn/0");
    let demo = Demo::start(&options(broker.port, &["blue", "green"])).expect("demo starts");
    let log = demo.log();
    // Both are subscribed once each has printed a line.
    let mut printed = vec![sub.next(Duration::from_secs(3)).1];
    assert!(wait_until(Duration::from_secs(3), || log.next_seq() > 0).is_some());
    // An empty payload, which mosquitto_sub -v prints as (null).
    let mut publish = Command::new(tool("mosquitto_pub"));
    let port = broker.port.to_string();
    publish.args(["-h", "127.0.0.1", "-p", &port, "-t", "red/btn/0", "-n"]);
    assert!(run_with_timeout(&mut publish, Duration::from_secs(5))
        .status
        .success());
    while printed.len() < 40 && !printed.iter().any(|l| l == "red/btn/0 (null)") {
        printed.push(sub.next(Duration::from_secs(3)).1);
    }
    assert!(
        printed.iter().any(|l| l == "red/btn/0 (null)"),
        "{printed:?}"
    );
    // Every line mosquitto_sub printed is in the page's log, the same text.
    let all_seen = wait_until(Duration::from_secs(2), || {
        let lines: Vec<String> = log.since(0).into_iter().map(|(_, l)| l).collect();
        printed.iter().all(|p| lines.contains(p))
    });
    assert!(
        all_seen.is_some(),
        "mosquitto_sub: {printed:?}\nmonitor: {:?}",
        log.since(0)
    );
}

#[test]
fn culex_pub_can_play_a_board() {
    let broker = TestBroker::start();
    let demo = Demo::start(&options(broker.port, &["blue:green"])).expect("demo starts");
    let blue = demo.board("blue").unwrap();
    wait_online(&[blue]);
    let port = broker.port.to_string();
    let culex_pub = |payload: &str| {
        let args = [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "green/btn/0",
            "-m",
            payload,
        ];
        culex_tools::pub_main(args.iter().map(Into::into).collect())
    };
    let within = Duration::from_millis(1500);
    assert_eq!(
        culex_pub("0"),
        std::process::ExitCode::SUCCESS,
        "culex pub failed"
    );
    assert!(
        wait_until(within, || blue.pins().led_on()).is_some(),
        "culex pub's 0 did not light blue"
    );
    assert_eq!(
        culex_pub("1"),
        std::process::ExitCode::SUCCESS,
        "culex pub failed"
    );
    assert!(
        wait_until(within, || !blue.pins().led_on()).is_some(),
        "culex pub's 1 did not put blue out"
    );
}
