//! PROXY protocol listeners: the address the header names is the one the
//! log lines show and the login back-off counts; a connection without a
//! header is refused.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use culex_broker::testing::raw::{ConnectOpts, Raw};
use culex_codec::{Protocol, ReasonCode};

use super::{expect_log, Broker, Certs, Direct};

fn v1(source: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {source} 192.0.2.1 {port} 1883\r\n").into_bytes()
}

fn v2(source: [u8; 4], port: u16) -> Vec<u8> {
    let mut header = b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&source);
    header.extend_from_slice(&[192, 0, 2, 1]);
    header.extend_from_slice(&port.to_be_bytes());
    header.extend_from_slice(&1883u16.to_be_bytes());
    header
}

/// Connects to `port`, writes `header`, then CONNECTs with `opts`.
fn connect_via(
    port: u16,
    header: &[u8],
    opts: ConnectOpts<'_>,
) -> (Raw<Direct<TcpStream>>, ReasonCode) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(header).unwrap();
    let mut client = Raw::over(Direct(stream), Protocol::V3_1_1);
    let (_, reason) = client.handshake(opts);
    (client, reason)
}

#[test]
fn proxied_addresses_reach_the_log_lines() {
    let broker = Broker::start(
        "allow_anonymous true\nlistener 0 127.0.0.1\nenable_proxy_protocol 1\n\
         listener 0 127.0.0.1\nenable_proxy_protocol 2\n",
    );
    let opts = |client_id| ConnectOpts {
        client_id,
        ..ConnectOpts::default()
    };
    let (_one, reason) = connect_via(broker.port(0), &v1("198.51.100.7", 40001), opts("px-v1"));
    assert_eq!(reason, ReasonCode::Success);
    let (_two, reason) = connect_via(broker.port(1), &v2([203, 0, 113, 9], 40002), opts("px-v2"));
    assert_eq!(reason, ReasonCode::Success);
    expect_log(&["New connection from 198.51.100.7:40001 on port 0."]);
    expect_log(&["New client connected from 198.51.100.7:40001 as px-v1 (p2, c1, k60)."]);
    expect_log(&["New connection from 203.0.113.9:40002 on port 0."]);
    expect_log(&["New client connected from 203.0.113.9:40002 as px-v2 (p2, c1, k60)."]);
    // The socket's own address is not what they show.
    let logs = crate::logs::logs();
    assert!(!logs
        .lock()
        .iter()
        .any(|l| l.contains("as px-v1") && l.contains("127.0.0.1")));
}

/// Failed logins count against the address the proxy names: its next
/// attempts wait their turn, while another client behind the same proxy
/// logs in at once.
#[test]
fn login_back_off_counts_the_proxied_address() {
    let certs = Certs::new();
    let hash = culex_broker::auth::password::PasswordHash::generate(b"secret");
    culex_testkit::write_file(certs.dir.path(), "passwords", &format!("alice:{hash}\n"));
    let broker = Broker::start(&certs.fill(
        "allow_anonymous false\npassword_file {dir}/passwords\n\
         listener 0 127.0.0.1\nenable_proxy_protocol 1\n",
    ));
    let port = broker.port(0);
    let attempt = |source: &str, password: &[u8]| {
        let started = Instant::now();
        let (_, reason) = connect_via(
            port,
            &v1(source, 5000),
            ConnectOpts {
                client_id: "guess",
                username: Some("alice"),
                password: Some(password),
                ..ConnectOpts::default()
            },
        );
        (reason, started.elapsed())
    };
    for _ in 0..4 {
        assert_eq!(
            attempt("203.0.113.66", b"wrong").0,
            ReasonCode::NotAuthorized
        );
    }
    expect_log(&["Repeated failed logins from 203.0.113.66: "]);
    let (reason, took) = attempt("203.0.113.66", b"secret");
    assert_eq!(reason, ReasonCode::Success);
    assert!(took >= Duration::from_millis(400), "not delayed: {took:?}");
    let (reason, took) = attempt("203.0.113.67", b"secret");
    assert_eq!(reason, ReasonCode::Success);
    assert!(took < Duration::from_millis(300), "delayed: {took:?}");
}

/// Without a header (a client that reached the port directly) nothing is
/// served: it could otherwise claim any address.
#[test]
fn a_connection_without_a_proxy_header_is_refused() {
    let broker =
        Broker::start("allow_anonymous true\nlistener 0 127.0.0.1\nenable_proxy_protocol 2\n");
    let mut client = Raw::over(
        Direct(TcpStream::connect(("127.0.0.1", broker.port(0))).unwrap()),
        Protocol::V3_1_1,
    );
    client.send_raw(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00");
    assert!(client.is_closed_within(Duration::from_secs(2)));
    expect_log(&["failed: the connection does not start with a PROXY protocol v2 header."]);
}
