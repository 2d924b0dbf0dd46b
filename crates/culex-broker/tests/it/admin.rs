//! The admin HTTP listener over real HTTP against a real broker, with real
//! MQTT clients (paho-mqtt, mosquitto_pub): `/metrics` through promtool,
//! the JSON API, and who may use it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_broker::auth::password::PasswordHash;
use culex_broker::config::{Config, HttpListener};
use culex_broker::testing::{local_config, BrokerThread};
use culex_testkit::{run_with_timeout, tool, ChildGuard};
use serde_json::Value;

/// A broker with its admin listener on 127.0.0.1 (port 0), no login, and
/// no `$SYS` (its retained values would move the counts).
pub(crate) fn broker_with_admin() -> (BrokerThread, SocketAddr) {
    start_with_admin(admin_config())
}

fn admin_config() -> Config {
    let mut config = local_config();
    config.sys_interval = Duration::ZERO;
    config.http = Some(HttpListener::new(SocketAddr::from(([127, 0, 0, 1], 0))));
    config
}

fn start_with_admin(config: Config) -> (BrokerThread, SocketAddr) {
    let broker = BrokerThread::start_with(config);
    let http = broker.http_addr().expect("the admin listener");
    (broker, http)
}

/// An HTTP/1.1 response: status, headers (lower-case names), body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request over a new connection (`Connection: close`).
pub(crate) fn request(
    stream: &mut dyn ReadWrite,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut text =
        format!("{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: 0\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        text.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

pub(crate) trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A request over plain HTTP.
pub(crate) fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    request(&mut stream, addr, method, path, headers)
}

pub(crate) fn get(addr: SocketAddr, path: &str) -> Value {
    let reply = http(addr, "GET", path, &[]);
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
    reply.json()
}

/// An action (POST or DELETE) with the header actions need.
pub(crate) fn act(addr: SocketAddr, method: &str, path: &str) -> Reply {
    http(addr, method, path, &[("X-Culex-Admin", "1")])
}

/// Waits until `check` holds, or fails with `what`.
pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A paho-mqtt 5.0 client that subscribes to `filter`, then prints
/// `ready`, `msg TOPIC PAYLOAD` for each message, and `disconnected RC`
/// when the broker closes it (it does not reconnect). Its stdout lines
/// arrive on the returned channel.
pub(crate) fn paho_client(
    port: u16,
    client_id: &str,
    filter: &str,
) -> (ChildGuard, mpsc::Receiver<String>) {
    let script = r#"
import sys, time
import paho.mqtt.client as mqtt
port, cid, flt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
c.reconnect_delay_set(min_delay=60, max_delay=60)
gone = []
def on_connect(cl, u, flags, rc, props):
    cl.subscribe(flt, qos=1)
def on_subscribe(cl, u, mid, rcs, props):
    print("ready", flush=True)
def on_message(cl, u, m):
    print("msg", m.topic, m.payload.decode(errors="replace"), flush=True)
def on_disconnect(cl, u, flags, rc, props):
    print("disconnected", rc.value if hasattr(rc, "value") else rc, flush=True)
    gone.append(1)
c.on_connect, c.on_subscribe, c.on_message, c.on_disconnect = on_connect, on_subscribe, on_message, on_disconnect
c.connect("127.0.0.1", port, keepalive=30)
c.loop_start()
deadline = time.time() + 40
while not gone and time.time() < deadline:
    time.sleep(0.05)
c.loop_stop()
"#;
    let mut child = culex_testkit::python_with_paho()
        .args(["-c", script, &port.to_string(), client_id, filter])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let guard = ChildGuard(child);
    expect_line(&rx, "ready");
    (guard, rx)
}

/// Waits for a line starting with `prefix`; returns it.
pub(crate) fn expect_line(rx: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line starting with {prefix:?} from the paho client"),
        }
    }
}

/// Publishes with mosquitto_pub; at QoS 1 unless `args` say otherwise, so
/// that the broker has routed it (PUBACK) when this returns.
pub(crate) fn mosquitto_pub(port: u16, args: &[&str]) {
    let port = port.to_string();
    let qos: &[&str] = if args.contains(&"-q") {
        &[]
    } else {
        &["-q", "1"]
    };
    let out = run_with_timeout(
        Command::new(tool("mosquitto_pub"))
            .args(["-p", &port])
            .args(qos)
            .args(args),
        Duration::from_secs(5),
    );
    assert!(
        out.status.success(),
        "mosquitto_pub: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of a metric line `NAME{LABELS} VALUE` (exact labels).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// `/metrics` of a broker that carried traffic (and committed it to its
/// store) passes `promtool check metrics`, and its values move with the
/// traffic.
#[test]
fn metrics_pass_promtool_and_follow_the_traffic() {
    let store = tempfile::tempdir().unwrap();
    let mut config = admin_config();
    config.persistence.enabled = true;
    config.persistence.location = Some(store.path().to_path_buf());
    let (broker, admin) = start_with_admin(config);
    let port = broker.port();
    let before = http(admin, "GET", "/metrics", &[]);
    assert_eq!(before.status, 200);
    assert!(before
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let (_sub, rx) = paho_client(port, "metrics-sub", "m/#");
    for qos in ["0", "1", "2"] {
        mosquitto_pub(port, &["-t", "m/x", "-m", "12345", "-q", qos]);
    }
    mosquitto_pub(port, &["-t", "m/r", "-m", "kept", "-r", "-q", "0"]);
    for _ in 0..4 {
        expect_line(&rx, "msg m/");
    }
    let text = http(admin, "GET", "/metrics", &[]).body;
    let mut promtool = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let listener = format!("listener=\"{port}\"");
    let v5 = format!("culex_connections{{{listener},protocol=\"5.0\"}}");
    assert_eq!(metric(&text, &v5), 1.0, "the paho client");
    let total = format!("culex_connections_total{{{listener},protocol=\"3.1.1\"}}");
    assert_eq!(metric(&text, &total), 4.0, "four mosquitto_pub runs");
    for qos in ["1", "2"] {
        let received = format!("culex_messages_received_total{{qos=\"{qos}\"}}");
        assert_eq!(metric(&text, &received), 1.0);
        let bytes = format!("culex_messages_received_bytes_total{{qos=\"{qos}\"}}");
        assert_eq!(metric(&text, &bytes), 5.0);
    }
    assert_eq!(
        metric(&text, "culex_messages_received_total{qos=\"0\"}"),
        2.0
    );
    assert!(metric(&text, "culex_messages_sent_total{qos=\"1\"}") >= 2.0);
    assert_eq!(metric(&text, "culex_retained_bytes"), 4.0);
    assert_eq!(metric(&text, "culex_subscriptions"), 1.0);
    assert!(metric(&text, "process_resident_memory_bytes") > 1e6);
    let commits = metric(&text, "culex_store_commits_total");
    assert!(
        commits >= 1.0,
        "the retained message, the QoS 1 and 2 state"
    );
    let timed = metric(&text, "culex_store_commit_duration_seconds_count");
    let inf = metric(
        &text,
        "culex_store_commit_duration_seconds_bucket{le=\"+Inf\"}",
    );
    assert!(timed >= 1.0 && inf == timed);
    assert_eq!(
        metric(&before.body, "culex_messages_received_total{qos=\"1\"}"),
        0.0
    );
}

/// The JSON API on clients: list, search, detail; a subscription removed
/// (no more deliveries) and a kick the paho client sees (5.0 reason 0x98).
#[test]
fn api_lists_details_unsubscribes_and_kicks_a_paho_client() {
    let (broker, admin) = broker_with_admin();
    let port = broker.port();
    let (_client, rx) = paho_client(port, "paho-kick", "k/#");
    let list = get(admin, "/api/clients?search=KICK");
    assert_eq!(list["matched"], 1);
    let c = &list["clients"][0];
    assert_eq!(c["client_id"], "paho-kick");
    assert_eq!(c["connected"], true);
    let detail = get(admin, "/api/clients/paho-kick");
    assert_eq!(detail["protocol"], "5.0");
    assert_eq!(detail["keep_alive"], 30);
    assert!(detail["address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(detail["subscriptions"][0]["filter"], "k/#");
    assert_eq!(detail["subscriptions"][0]["qos"], 1);
    assert_eq!(http(admin, "GET", "/api/clients/nobody", &[]).status, 404);

    // Actions need the header a cross-origin page cannot send unasked.
    let path = "/api/clients/paho-kick/subscriptions?filter=k%2F%23";
    assert_eq!(http(admin, "DELETE", path, &[]).status, 403);
    assert_eq!(act(admin, "DELETE", path).status, 200);
    assert_eq!(act(admin, "DELETE", path).status, 404, "already gone");
    mosquitto_pub(port, &["-t", "k/x", "-m", "after", "-q", "1"]);
    assert_eq!(
        get(admin, "/api/clients/paho-kick")["subscriptions"],
        Value::Array(vec![])
    );

    assert_eq!(act(admin, "GET", "/api/clients/paho-kick/kick").status, 405);
    let kicked = act(admin, "POST", "/api/clients/paho-kick/kick");
    assert_eq!(kicked.status, 200, "{}", kicked.body);
    let line = expect_line(&rx, "");
    assert_eq!(
        line, "disconnected 152",
        "no message after the unsubscribe, then 0x98"
    );
    // A clean 5.0 session (expiry 0) ends with its connection.
    eventually("the client to be gone", || {
        get(admin, "/api/clients?connected=1&search=paho-kick")["matched"] == 0
    });
    assert_eq!(
        act(admin, "POST", "/api/clients/paho-kick/kick").status,
        404
    );
    let log = get(admin, "/api/log");
    let texts: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("Admin (local) from 127.0.0.1: kicked client paho-kick")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("as paho-kick (p5)")),
        "{texts:?}"
    );
    // DNS rebinding: without login, only loopback host names are served.
    let foreign = http(admin, "GET", "/api/overview", &[("Host", "evil.example")]);
    assert_eq!(foreign.status, 421);
}

/// Retained messages by filter, read and deleted (gone for a new
/// subscriber); the topic tree with message counts per node.
#[test]
fn api_browses_and_deletes_retained_messages_and_counts_topics() {
    let (broker, admin) = broker_with_admin();
    let port = broker.port();
    mosquitto_pub(port, &["-t", "r/a", "-m", "{\"v\":1}", "-r"]);
    mosquitto_pub(port, &["-t", "r/b", "-m", "two", "-r"]);
    mosquitto_pub(port, &["-t", "other", "-m", "x", "-r"]);
    let page = get(admin, "/api/retained?filter=r%2F%23&limit=1");
    assert_eq!(page["matched"], 2);
    assert_eq!(page["more"], true);
    assert_eq!(page["messages"][0]["topic"], "r/a");
    let next = get(admin, "/api/retained?filter=r%2F%23&after=r%2Fa");
    assert_eq!(next["messages"][0]["topic"], "r/b");
    assert_eq!(next["more"], false);
    let one = get(admin, "/api/retained/message?topic=r%2Fa");
    assert_eq!(one["text"], "{\"v\":1}");
    let bad = http(admin, "GET", "/api/retained?filter=a%2F%23%2Fb", &[]);
    assert_eq!(bad.status, 400);
    assert_eq!(
        act(admin, "DELETE", "/api/retained/message?topic=r%2Fa").status,
        200
    );
    assert_eq!(
        http(admin, "GET", "/api/retained/message?topic=r%2Fa", &[]).status,
        404
    );
    let port_s = port.to_string();
    let out = run_with_timeout(
        Command::new(tool("mosquitto_sub")).args(["-p", &port_s, "-t", "r/#", "-v", "-W", "1"]),
        Duration::from_secs(5),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "r/b two\n");

    // The first read starts the watch; counts are from then on.
    let root = get(admin, "/api/topics");
    let names: Vec<&str> = root["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"r") && names.contains(&"other"),
        "{names:?}"
    );
    let seq = root["seq"].as_u64().unwrap();
    for v in ["20.5", "21", "21.5"] {
        mosquitto_pub(port, &["-t", "s/temp", "-m", v]);
    }
    mosquitto_pub(port, &["-t", "s/hum", "-m", "40"]);
    let s = get(admin, "/api/topics?path=s");
    assert_eq!(s["node"]["total"], 4);
    let temp = s["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "temp")
        .unwrap();
    assert_eq!(temp["messages"], 3);
    assert_eq!(temp["last"]["text"], "21.5");
    let delta = get(admin, &format!("/api/topics?since={seq}"));
    let changed: Vec<&str> = delta["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["s"], "only what changed since");
    let detail = get(admin, "/api/topic?topic=s%2Ftemp");
    let samples: Vec<&str> = detail["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(samples, ["20.5", "21", "21.5"]);
}

/// Shutdown closes the admin listener's keep-alive connections (a page
/// left open) instead of waiting for them.
#[test]
fn shutdown_does_not_wait_for_an_open_page() {
    let (broker, admin) = broker_with_admin();
    let mut stream = TcpStream::connect(admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!("GET /api/overview HTTP/1.1\r\nHost: {admin}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let started = Instant::now();
    drop(broker);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
}

/// Off the loopback the listener refuses to start without administrators
/// and HTTPS.
#[test]
fn off_the_loopback_it_needs_login_and_https() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = |http: HttpListener| {
        let mut config = local_config();
        config.http = Some(http);
        runtime.block_on(culex_broker::Broker::start(config)).err()
    };
    let anywhere = SocketAddr::from(([0, 0, 0, 0], 0));
    let err = start(HttpListener::new(anywhere)).expect("refused");
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    let http = HttpListener {
        admins: vec!["alice".into()],
        password_file: Some("/nonexistent".into()),
        ..HttpListener::new(anywhere)
    };
    let err = start(http).expect("refused without HTTPS");
    assert!(err.to_string().contains("certfile and keyfile"), "{err}");
    let http = HttpListener {
        admins: vec!["alice".into()],
        ..HttpListener::new(SocketAddr::from(([127, 0, 0, 1], 0)))
    };
    let err = start(http).expect("refused without a password file");
    assert!(err.to_string().contains("password_file"), "{err}");
}

/// With administrators: HTTPS, nothing without valid credentials (a kick
/// neither), users of the password file who are not administrators
/// refused.
#[test]
fn login_over_https_guards_every_route() {
    let dir = tempfile::tempdir().unwrap();
    culex_testkit::tls_certificates(dir.path(), "DNS:localhost,IP:127.0.0.1");
    let passwords = format!(
        "alice:{}\nbob:{}\n",
        PasswordHash::generate(b"wonderland"),
        PasswordHash::generate(b"builder")
    );
    let password_file = culex_testkit::write_file(dir.path(), "passwd", &passwords);
    let mut config: Config = local_config();
    config.http = Some(HttpListener {
        admins: vec!["alice".into()],
        password_file: Some(password_file),
        certfile: Some(dir.path().join("server.crt")),
        keyfile: Some(dir.path().join("server.key")),
        ..HttpListener::new(SocketAddr::from(([127, 0, 0, 1], 0)))
    });
    let broker = BrokerThread::start_with(config);
    let admin = broker.http_addr().unwrap();
    let (_client, rx) = paho_client(broker.port(), "guarded", "g/#");
    let tls = tls_client(&dir.path().join("ca.crt"));
    let https = |method: &str, path: &str, headers: &[(&str, &str)]| {
        let tcp = TcpStream::connect(admin).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        request(&mut stream, admin, method, path, headers)
    };
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {token}")
    };
    let alice = basic("alice", "wonderland");
    let action = |auth: &str| {
        https(
            "POST",
            "/api/clients/guarded/kick",
            &[("X-Culex-Admin", "1"), ("Authorization", auth)],
        )
    };

    let none = https("GET", "/metrics", &[]);
    assert_eq!(none.status, 401);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    assert_eq!(https("GET", "/", &[]).status, 401);
    let kick = https(
        "POST",
        "/api/clients/guarded/kick",
        &[("X-Culex-Admin", "1")],
    );
    assert_eq!(kick.status, 401, "no action without login");
    assert_eq!(action(&basic("alice", "wrong")).status, 401);
    assert_eq!(action(&basic("bob", "builder")).status, 401, "not an admin");
    assert_eq!(get_status_plain(admin), None, "plain HTTP is not served");
    assert!(rx.try_recv().is_err(), "still connected");
    let ok = https("GET", "/api/overview", &[("Authorization", &alice)]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["https"], true);
    assert_eq!(action(&alice).status, 200);
    assert_eq!(expect_line(&rx, "disconnected"), "disconnected 152");
}

/// What a plain-HTTP request to the HTTPS port gets: no HTTP status.
fn get_status_plain(addr: SocketAddr) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn tls_client(ca: &std::path::Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).unwrap();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}
