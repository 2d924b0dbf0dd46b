//! culex nodes as a cluster on NATS JetStream (issue 21): three broker
//! processes (the `broker` example) on one three-node NATS cluster, each
//! test with its own NATS servers, talked to over real sockets.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use culex_codec::{Packet, Protocol, QoS, ReasonCode};
use culex_testkit::{ChildGuard, NatsCluster};

use crate::client::{ConnectOpts, Raw};
use crate::crash::broker_exe;

/// One culex node: its process, its port and its log.
struct Node {
    child: Option<ChildGuard>,
    port: u16,
    log: std::path::PathBuf,
}

impl Node {
    /// Starts node `name` on `servers` and waits until it has joined.
    fn start(dir: &Path, servers: &[String], name: &str) -> Node {
        let node = Node::spawn(dir, &servers.join(","), name);
        node.wait_state("connected", Duration::from_secs(30));
        node
    }

    /// Starts node `name` without waiting for the cluster.
    fn spawn(dir: &Path, servers: &str, name: &str) -> Node {
        let port = culex_testkit::free_port();
        let conf = culex_testkit::write_file(
            dir,
            &format!("{name}.conf"),
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\n\
                 cluster_servers {servers}\ncluster_node {name}\n\
                 max_queued_messages 100000\n"
            ),
        );
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(broker_exe())
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn a culex node");
        let child = ChildGuard(child);
        culex_testkit::wait_for_port(port, Duration::from_secs(10));
        Node {
            child: Some(child),
            port,
            log,
        }
    }

    /// Waits until `$SYS/broker/cluster/state` says `state`.
    fn wait_state(&self, state: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (mut c, _) = Raw::connect(self.port, "state-watcher", true);
            c.subscribe(&[("$SYS/broker/cluster/state", QoS::AtMostOnce)]);
            if let Some(f) = c.try_recv(Duration::from_secs(1)) {
                if f.publish().payload == state.as_bytes() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "node never {state}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9.
    fn kill(&mut self) {
        self.child.take();
    }
}

/// Three culex nodes on a three-node NATS cluster.
fn three_nodes(dir: &Path) -> (NatsCluster, Vec<Node>) {
    let nats = NatsCluster::start();
    let nodes = ["one", "two", "three"]
        .iter()
        .map(|name| Node::start(dir, &nats.urls, name))
        .collect();
    (nats, nodes)
}

/// Every PUBLISH that arrives within `quiet` of the previous one (acked
/// when QoS 1), as (topic, payload).
fn drain(c: &mut Raw, quiet: Duration) -> Vec<(String, Vec<u8>)> {
    let mut got = Vec::new();
    while let Some(f) = c.try_recv(quiet) {
        if let Packet::Publish(_) = f.packet() {
            let p = f.publish();
            if p.qos == QoS::AtLeastOnce {
                c.ack(Packet::PubAck, p.id.expect("QoS 1 has an id"));
            }
            got.push((p.topic, p.payload));
        }
    }
    got
}

/// Publishes and subscriptions cross nodes with MQTT's matching, `$`
/// topics and NATS-special characters included; a retained message is one
/// view from every node; a shared group spread over the nodes gets each
/// message once.
#[test]
fn messages_retained_and_shared_groups_cross_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, nodes) = three_nodes(dir.path());
    let (one, two, three) = (&nodes[0], &nodes[1], &nodes[2]);

    // Wildcards as MQTT has them [MQTT-4.7.1-2], [MQTT-4.7.1-3]: `#` takes
    // the parent level; a leading wildcard does not match `$` topics [MQTT-4.7.2-1].
    let (mut sub, _) = Raw::connect(two.port, "wild", true);
    sub.subscribe(&[
        ("a/+/c", QoS::AtLeastOnce),
        ("a/#", QoS::AtLeastOnce),
        ("+/x y.z*>/#", QoS::AtLeastOnce),
        ("$x/#", QoS::AtLeastOnce),
    ]);
    let (mut everything, _) = Raw::connect(three.port, "everything", true);
    everything.subscribe(&[("#", QoS::AtMostOnce)]);
    std::thread::sleep(Duration::from_millis(500));
    let (mut publ, _) = Raw::connect(one.port, "pub", true);
    for (i, topic) in ["a/b/c", "a", "b/x y.z*>", "$x/y", "b/c"]
        .iter()
        .enumerate()
    {
        publ.publish_acked(topic, b"m", QoS::AtLeastOnce, false, i as u16 + 1);
    }
    let got: Vec<String> = drain(&mut sub, Duration::from_secs(2))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    // Once per message on the node, however many of its filters match.
    assert_eq!(sorted, ["$x/y", "a", "a/b/c", "b/x y.z*>"], "{got:?}");
    let mut all: Vec<String> = drain(&mut everything, Duration::from_secs(1))
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !t.starts_with("$SYS"))
        .collect();
    all.sort();
    assert_eq!(all, ["a", "a/b/c", "b/c", "b/x y.z*>"]);

    // Retained: set on one node, read on another, cleared on a third.
    publ.publish_acked("r/lamp", b"on", QoS::AtLeastOnce, true, 10);
    let (mut reader, _) = Raw::connect(three.port, "reader", true);
    reader.subscribe(&[("r/+", QoS::AtLeastOnce)]);
    let f = reader.recv();
    let p = f.publish();
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.retain),
        ("r/lamp", &b"on"[..], true)
    );
    let (mut clearer, _) = Raw::connect(two.port, "clearer", true);
    clearer.publish_acked("r/lamp", b"", QoS::AtLeastOnce, true, 1);
    let (mut late, _) = Raw::connect(one.port, "late", true);
    late.subscribe(&[("r/#", QoS::AtLeastOnce)]);
    assert!(
        late.try_recv(Duration::from_millis(800)).is_none(),
        "cleared everywhere"
    );

    // A shared group with a member on each node: every message once.
    let mut members: Vec<Raw> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let (mut m, _) = Raw::connect(n.port, &format!("member-{i}"), true);
            m.subscribe(&[("$share/g/s/#", QoS::AtLeastOnce)]);
            m
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    const SHARED: u16 = 150;
    for i in 1..=SHARED {
        publ.publish_acked("s/t", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    let per_member: Vec<Vec<(String, Vec<u8>)>> = members
        .iter_mut()
        .map(|m| drain(m, Duration::from_secs(2)))
        .collect();
    let counts: Vec<usize> = per_member.iter().map(Vec::len).collect();
    let unique: HashSet<Vec<u8>> = per_member
        .iter()
        .flatten()
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        usize::from(SHARED),
        "{counts:?}"
    );
    assert_eq!(unique.len(), usize::from(SHARED));
    assert!(
        counts.iter().all(|&n| n > 0),
        "spread over nodes: {counts:?}"
    );
}

/// A persistent session moves to another node with the messages queued
/// for it, and the old connection is closed; a node killed with -9 loses
/// none of the acknowledged QoS 1 messages of a session that reconnects
/// elsewhere, and its clients' wills are published by a survivor.
#[test]
fn sessions_move_between_nodes_and_survive_a_killed_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut nodes) = three_nodes(dir.path());
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();

    // Takeover with queued messages.
    let (mut s, present) = Raw::connect(ports[1], "mover", false);
    assert!(!present);
    s.subscribe(&[("q/#", QoS::AtLeastOnce)]);
    s.disconnect();
    let (mut publ, _) = Raw::connect(ports[0], "pub", true);
    for i in 1..=50u16 {
        publ.publish_acked("q/x", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    let (mut s, present) = Raw::connect(ports[2], "mover", false);
    assert!(present, "the session came along");
    let got = drain(&mut s, Duration::from_secs(2));
    let expected: Vec<Vec<u8>> = (1..=50).map(|i| format!("{i}").into_bytes()).collect();
    let payloads: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
    assert_eq!(payloads, expected, "queued messages in order");
    // Connecting on another node closes the connection here [MQTT-3.1.4-2].
    let (_s2, present) = Raw::connect(ports[0], "mover", false);
    assert!(present);
    assert!(s.is_closed_within(Duration::from_secs(5)));

    // kill -9 of the node a persistent subscriber and a will are on.
    let (mut watcher, _) = Raw::connect(ports[0], "watcher", true);
    watcher.subscribe(&[("will/#", QoS::AtLeastOnce)]);
    let _willing = Raw::connect_with_will(ports[1], "willing", 60, b"gone");
    let (mut sub, _) = Raw::connect(ports[1], "survivor", false);
    sub.subscribe(&[("k/#", QoS::AtLeastOnce)]);
    std::thread::sleep(Duration::from_millis(300));
    let mut received: HashSet<Vec<u8>> = HashSet::new();
    const TOTAL: u16 = 600;
    for i in 1..=TOTAL / 2 {
        publ.publish_acked("k/x", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    // Take part of them, acknowledging, then the node dies.
    for _ in 0..100 {
        let f = sub.recv();
        let p = f.publish();
        sub.ack(Packet::PubAck, p.id.expect("id"));
        received.insert(p.payload);
    }
    nodes[1].kill();
    for i in TOTAL / 2 + 1..=TOTAL {
        publ.publish_acked("k/x", format!("{i}").as_bytes(), QoS::AtLeastOnce, false, i);
    }
    let (mut sub, present) = Raw::connect(ports[2], "survivor", false);
    assert!(present);
    received.extend(
        drain(&mut sub, Duration::from_secs(3))
            .into_iter()
            .map(|(_, p)| p),
    );
    let missing: Vec<u16> = (1..=TOTAL)
        .filter(|i| !received.contains(format!("{i}").as_bytes()))
        .collect();
    assert!(missing.is_empty(), "acknowledged and lost: {missing:?}");

    // The will of the killed node's client, from the survivor that adopts
    // its session once the node's membership lapses (10 s).
    let f = watcher
        .try_recv(Duration::from_secs(30))
        .expect("the will of a client of the killed node");
    let p = f.publish();
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("will/willing", &b"gone"[..])
    );
    let adopted = |n: &Node| n.log().contains("session of willing adopted");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(adopted(&nodes[0]) || adopted(&nodes[2])) {
        assert!(
            Instant::now() < deadline,
            "no survivor says it adopted the session"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Without NATS a node serves its local clients, says so in its log and in
/// `$SYS`, and refuses persistent sessions (Server unavailable).
#[test]
fn without_nats_a_node_serves_locally_and_refuses_persistent_sessions() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on.
    let dead = format!("nats://127.0.0.1:{}", culex_testkit::free_port());
    let node = Node::spawn(dir.path(), &dead, "alone");
    node.wait_state("disconnected", Duration::from_secs(10));
    let (mut sub, _) = Raw::connect(node.port, "local-sub", true);
    sub.subscribe(&[("t", QoS::AtLeastOnce)]);
    let (mut publ, _) = Raw::connect(node.port, "local-pub", true);
    publ.publish_acked("t", b"here", QoS::AtLeastOnce, false, 1);
    assert_eq!(sub.recv().publish().payload, b"here");
    // 3.1.1: return code 3, Server unavailable.
    let (_c, present, reason) = Raw::connect_with(
        node.port,
        ConnectOpts {
            client_id: "persistent",
            clean: false,
            ..ConnectOpts::default()
        },
    );
    assert_eq!((present, reason), (false, ReasonCode::ServerUnavailable));
    let (_c, _, reason) = Raw::connect_with(
        node.port,
        ConnectOpts {
            client_id: "persistent5",
            clean: true,
            protocol: Protocol::V5,
            properties: culex_codec::Properties {
                session_expiry_interval: Some(60),
                ..Default::default()
            },
            ..ConnectOpts::default()
        },
    );
    assert_eq!(reason, ReasonCode::ServerUnavailable);
    assert!(
        node.log().contains("Cluster: cannot join"),
        "{}",
        node.log()
    );
}

/// One NATS server of three killed under QoS 1 load between two nodes:
/// every acknowledged message reaches the subscriber; service goes on.
#[test]
fn losing_a_nats_server_under_load_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut nats = NatsCluster::start();
    // Each node knows one server first, so that the killed one serves one.
    let one = Node::start(dir.path(), &nats.urls, "one");
    let two = Node::start(
        dir.path(),
        &[nats.urls[2].clone(), nats.urls[1].clone()],
        "two",
    );
    let (mut sub, _) = Raw::connect(two.port, "counter", false);
    sub.subscribe(&[("load/#", QoS::AtLeastOnce)]);
    std::thread::sleep(Duration::from_millis(300));
    let publisher = std::thread::spawn({
        let port = one.port;
        move || publish_through_failures(port, 1500, Duration::from_secs(60))
    });
    let mut received: HashSet<Vec<u8>> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut killed = false;
    let mut publisher = Some(publisher);
    let mut acked = None;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        if !killed && received.len() > 300 {
            nats.kill(2);
            killed = true;
        }
        if let Some(f) = sub.try_recv(Duration::from_millis(500)) {
            if let Packet::Publish(_) = f.packet() {
                let p = f.publish();
                sub.ack(Packet::PubAck, p.id.expect("id"));
                received.insert(p.payload);
                quiet_since = Instant::now();
            }
        }
        if publisher.as_ref().is_some_and(|p| p.is_finished()) {
            acked = publisher.take().map(|p| p.join().expect("publisher"));
        }
        // Messages missed while a node reconnected to NATS come back a
        // moment later: waited for, up to 20 s of silence.
        if let Some(acked) = &acked {
            let all = acked
                .iter()
                .all(|i| received.contains(format!("{i}").as_bytes()));
            if all || quiet_since.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
    }
    let acked = match (acked, publisher) {
        (Some(acked), _) => acked,
        (None, Some(p)) => p.join().expect("publisher"),
        (None, None) => Vec::new(),
    };
    assert!(killed);
    assert!(
        acked.len() > 600,
        "service went on: {} acknowledged",
        acked.len()
    );
    let lost: Vec<&u32> = acked
        .iter()
        .filter(|i| !received.contains(format!("{i}").as_bytes()))
        .collect();
    let cluster_lines = |n: &Node| {
        n.log()
            .lines()
            .filter(|l| l.contains("Cluster"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        lost.is_empty(),
        "acknowledged and lost: {} of {}: {lost:?}\none:\n{}\ntwo:\n{}",
        lost.len(),
        acked.len(),
        cluster_lines(&one),
        cluster_lines(&two)
    );
}

/// Publishes `count` QoS 1 messages in order, reconnecting whenever the
/// broker drops the connection, until all are acknowledged or `limit`
/// passes; returns those acknowledged.
fn publish_through_failures(port: u16, count: u32, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    let mut acked = Vec::new();
    while acked.len() < count as usize && Instant::now() < deadline {
        let next = acked.last().map_or(1, |l| l + 1);
        // The raw client panics when the connection is gone mid-write.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (mut c, _) = Raw::connect(port, "loader", true);
            for i in next..=count {
                let id = (i % 60_000) as u16 + 1;
                c.publish(
                    "load/x",
                    format!("{i}").as_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    id,
                );
                let ok = c.try_recv(Duration::from_secs(15)).is_some_and(
                    |f| matches!(f.packet(), Packet::PubAck(a) if a.packet_id.get() == id),
                );
                if !ok {
                    return;
                }
                acked.push(i);
            }
        }));
        std::thread::sleep(Duration::from_millis(200));
    }
    acked
}

/// A paho-mqtt client (Python) with a persistent session reconnects to
/// another node when its node dies, and gets what was published meanwhile.
#[test]
fn a_paho_client_reconnects_to_another_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_nats, mut nodes) = three_nodes(dir.path());
    let script = culex_testkit::write_file(dir.path(), "roam.py", PAHO_ROAMER);
    let mut roamer = ChildGuard(
        culex_testkit::python_with_paho()
            .arg(&script)
            .arg(nodes[1].port.to_string())
            .arg(nodes[2].port.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 with paho-mqtt"),
    );
    // The roamer says when it is subscribed.
    let stdout = roamer.0.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "subscribed");
    let (mut publ, _) = Raw::connect(nodes[0].port, "pub", true);
    for i in 1..=20u16 {
        publ.publish_acked(
            "roam/t",
            format!("{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    nodes[1].kill();
    for i in 21..=40u16 {
        publ.publish_acked(
            "roam/t",
            format!("{i}").as_bytes(),
            QoS::AtLeastOnce,
            false,
            i,
        );
    }
    let mut got: HashMap<String, usize> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    for line in lines {
        let line = line.unwrap_or_default();
        if line == "done" || Instant::now() > deadline {
            break;
        }
        if let Some(p) = line.strip_prefix("got ") {
            *got.entry(p.to_owned()).or_default() += 1;
        }
    }
    drop(roamer);
    let missing: Vec<u16> = (1..=40)
        .filter(|i| !got.contains_key(&i.to_string()))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}");
}

/// paho-mqtt 2.x: subscribes with a persistent session on the first port;
/// when the connection drops, reconnects to the second; prints each
/// payload, then `done` once 40 distinct ones arrived.
const PAHO_ROAMER: &str = r#"
import sys, time
import paho.mqtt.client as mqtt

ports = [int(p) for p in sys.argv[1:]]
seen = set()
state = {"port": 0}

def on_connect(c, userdata, flags, reason, props):
    c.subscribe("roam/#", qos=1)

def on_subscribe(c, userdata, mid, reasons, props):
    print("subscribed", flush=True)

def on_message(c, userdata, msg):
    p = msg.payload.decode()
    seen.add(p)
    print("got " + p, flush=True)
    if len(seen) >= 40:
        print("done", flush=True)
        c.disconnect()

def on_disconnect(c, userdata, flags, reason, props):
    state["lost"] = True

c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="roamer", clean_session=False)
c.on_connect = on_connect
c.on_subscribe = on_subscribe
c.on_message = on_message
c.on_disconnect = on_disconnect
deadline = time.time() + 60
while time.time() < deadline and len(seen) < 40:
    state["lost"] = False
    try:
        c.connect("127.0.0.1", ports[state["port"]], keepalive=5)
        while not state["lost"] and len(seen) < 40 and time.time() < deadline:
            c.loop(timeout=0.5)
    except OSError:
        pass
    state["port"] = (state["port"] + 1) % len(ports)
    time.sleep(0.2)
"#;
