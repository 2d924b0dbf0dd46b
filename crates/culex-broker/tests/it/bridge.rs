//! Bridges (issue 18) against Debian's real mosquitto as the remote broker,
//! and between two culex brokers.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use culex_broker::testing::BrokerThread;
use culex_codec::{Packet, QoS};
use culex_testkit::{tool, ChildGuard};

use crate::client::{ConnectOpts, Raw};

/// A culex broker on 127.0.0.1 with `extra` config lines (the bridge).
fn culex(dir: &Path, extra: &str) -> BrokerThread {
    let conf = culex_testkit::write_file(
        dir,
        "culex.conf",
        &format!("listener 0 127.0.0.1\nallow_anonymous true\n{extra}"),
    );
    let config = culex_broker::config::Config::from_file(&conf, &[]).expect("config");
    BrokerThread::start_with(config)
}

/// Waits until the bridge's retained state on `port` says `1`.
fn wait_up(port: u16) {
    let (mut c, _) = Raw::connect(port, "state-watch", true);
    c.subscribe(&[("$SYS/broker/connection/+/state", QoS::AtMostOnce)]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Some(f) = c.try_recv(Duration::from_millis(500)) {
            if f.publish().payload == b"1" {
                return;
            }
        }
    }
    panic!("the bridge did not come up");
}

/// A mosquitto of our own on `port` (to stop and start again). It drops
/// root to its own user: `dir` must be open to it.
fn mosquitto(dir: &Path, port: u16, extra: &str) -> ChildGuard {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let conf = culex_testkit::write_file(
        dir,
        "mosquitto.conf",
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"),
    );
    let child = Command::new(tool("mosquitto"))
        .arg("-c")
        .arg(conf)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let guard = ChildGuard(child);
    culex_testkit::wait_for_port(port, Duration::from_secs(10));
    guard
}

fn terminate(child: &mut ChildGuard) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let _ = child.0.wait();
}

/// Collects payloads on a client until `n` arrived or `wait` passed.
fn collect(c: &mut Raw, n: usize, wait: Duration) -> Vec<(String, Vec<u8>, QoS)> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let Some(f) = c.try_recv(Duration::from_millis(300)) else {
            continue;
        };
        if let Packet::Publish(p) = f.packet() {
            if let Some(id) = p.packet_id {
                match p.qos {
                    QoS::AtLeastOnce => c.ack(Packet::PubAck, id.get()),
                    QoS::ExactlyOnce => c.ack(Packet::PubRec, id.get()),
                    QoS::AtMostOnce => {}
                }
            }
            got.push((p.topic.as_str().to_owned(), p.payload.to_vec(), p.qos));
        } else if let Packet::PubRel(r) = f.packet() {
            c.ack(Packet::PubComp, r.packet_id.get());
        }
    }
    got
}

/// Both directions with prefixes, at QoS 0, 1 and 2; the state topic seen
/// by mosquitto_sub on the remote; nothing comes back (no echo).
#[test]
fn both_ways_with_prefixes_and_notifications() {
    let remote = culex_testkit::Mosquitto::start("");
    let dir = tempfile::tempdir().unwrap();
    let broker = culex(
        dir.path(),
        &format!(
            "connection link\naddress 127.0.0.1:{}\ntopic # both 2 c/ m/\nrestart_timeout 1\n",
            remote.port
        ),
    );
    wait_up(broker.port());
    let state = culex_testkit::run_with_timeout(
        Command::new(tool("mosquitto_sub")).args([
            "-p",
            &remote.port.to_string(),
            "-t",
            "$SYS/broker/connection/+/state",
            "-C",
            "1",
            "-v",
            "-W",
            "5",
        ]),
        Duration::from_secs(8),
    );
    let state = String::from_utf8_lossy(&state.stdout).into_owned();
    assert!(state.ends_with("/state 1\n"), "{state:?}");

    let (mut on_remote, _) = Raw::connect(remote.port, "on-remote", true);
    on_remote.subscribe(&[("m/#", QoS::ExactlyOnce)]);
    let (mut on_culex, _) = Raw::connect(broker.port(), "on-culex", true);
    on_culex.subscribe(&[("c/#", QoS::ExactlyOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "publ", true);
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publ.publish_acked(&format!("c/out/{i}"), b"out", qos, false, i as u16 + 1);
    }
    let mut out = collect(&mut on_remote, 3, Duration::from_secs(5));
    out.sort();
    let topics: Vec<(&str, QoS)> = out.iter().map(|(t, _, q)| (t.as_str(), *q)).collect();
    assert_eq!(
        topics,
        [
            ("m/out/0", QoS::AtMostOnce),
            ("m/out/1", QoS::AtLeastOnce),
            ("m/out/2", QoS::ExactlyOnce)
        ]
    );
    let (mut remote_pub, _) = Raw::connect(remote.port, "remote-pub", true);
    remote_pub.publish_acked("m/in/x", b"in", QoS::ExactlyOnce, false, 9);
    let came_in = collect(&mut on_culex, 5, Duration::from_secs(3));
    let came_in: Vec<&str> = came_in.iter().map(|(t, _, _)| t.as_str()).collect();
    // The three that went out are seen locally once each, and the one
    // that came in once: nothing echoed back.
    assert_eq!(
        came_in.iter().filter(|t| **t == "c/in/x").count(),
        1,
        "{came_in:?}"
    );
    assert_eq!(came_in.len(), 4, "{came_in:?}");
    let direct = collect(&mut on_remote, 2, Duration::from_secs(1));
    assert_eq!(
        direct.len(),
        1,
        "the remote's own message came back: {direct:?}"
    );
}

/// QoS 2 across a restart of the remote: 200 messages published on culex
/// while mosquitto (persistence on) is stopped and started again; the
/// remote subscriber gets every one exactly once.
#[test]
fn qos2_exactly_once_across_a_remote_restart() {
    const N: u16 = 200;
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let port = culex_testkit::free_port();
    let mosquitto_conf = format!(
        "persistence true\npersistence_location {}/\nautosave_interval 1\n",
        remote_dir.path().display()
    );
    let mut remote = mosquitto(remote_dir.path(), port, &mosquitto_conf);
    let broker = culex(
        dir.path(),
        &format!("connection link\naddress 127.0.0.1:{port}\ntopic q/# out 2\nrestart_timeout 1\n"),
    );
    wait_up(broker.port());
    let counter = || {
        Raw::connect_with(
            port,
            ConnectOpts {
                client_id: "counter",
                clean: false,
                ..ConnectOpts::default()
            },
        )
        .0
    };
    let mut c = counter();
    c.subscribe(&[("q/#", QoS::ExactlyOnce)]);
    c.disconnect();
    let culex_port = broker.port();
    let published = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(0));
    let progress = published.clone();
    let publisher = std::thread::spawn(move || {
        let (mut publ, _) = Raw::connect(culex_port, "publ", true);
        for i in 1..=N {
            publ.publish_acked(
                &format!("q/{i}"),
                &i.to_be_bytes(),
                QoS::ExactlyOnce,
                false,
                i,
            );
            progress.store(i, std::sync::atomic::Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    while published.load(std::sync::atomic::Ordering::Relaxed) < N / 4 {
        std::thread::sleep(Duration::from_millis(10));
    }
    terminate(&mut remote);
    let at_restart = published.load(std::sync::atomic::Ordering::Relaxed);
    assert!(at_restart < N, "the restart came too late to matter");
    let _remote = mosquitto(remote_dir.path(), port, &mosquitto_conf);
    publisher.join().unwrap();
    let mut c = counter();
    let mut got = collect(&mut c, N as usize, Duration::from_secs(15));
    got.extend(collect(&mut c, 10, Duration::from_millis(500)));
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (topic, _, _) in &got {
        *seen.entry(topic.clone()).or_default() += 1;
    }
    let missing: Vec<u16> = (1..=N)
        .filter(|i| !seen.contains_key(&format!("q/{i}")))
        .collect();
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, _)| t)
        .collect();
    assert!(missing.is_empty(), "missing {missing:?}");
    assert!(twice.is_empty(), "twice {twice:?}");
}

/// With `persistence true`, what a bridge has queued for a remote that is
/// down survives a kill -9 of culex: after the restart it crosses.
#[test]
fn queued_messages_survive_kill_minus_nine() {
    let dir = tempfile::tempdir().unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote_port = culex_testkit::free_port();
    let port = culex_testkit::free_port();
    let conf = culex_testkit::write_file(
        dir.path(),
        "culex.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}\nconnection link\naddress 127.0.0.1:{remote_port}\n\
             topic k/# out 1\nrestart_timeout 1\n",
            dir.path().display()
        ),
    );
    let start = || {
        let child = Command::new(crate::crash::broker_exe())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the broker");
        let guard = ChildGuard(child);
        culex_testkit::wait_for_port(port, Duration::from_secs(10));
        guard
    };
    let mut culex = start();
    // The bridge's local session exists once it has connected locally.
    std::thread::sleep(Duration::from_millis(300));
    let (mut publ, _) = Raw::connect(port, "publ", true);
    for i in 1..=50u16 {
        publ.publish_acked(&format!("k/{i}"), b"q", QoS::AtLeastOnce, false, i);
    }
    drop(publ);
    culex.0.kill().unwrap();
    let _ = culex.0.wait();
    let _remote = mosquitto(remote_dir.path(), remote_port, "");
    let (mut counter, _) = Raw::connect(remote_port, "counter", true);
    counter.subscribe(&[("k/#", QoS::AtLeastOnce)]);
    let _culex = start();
    let got = collect(&mut counter, 50, Duration::from_secs(15));
    let mut topics: Vec<String> = got.into_iter().map(|(t, _, _)| t).collect();
    topics.sort();
    topics.dedup();
    assert_eq!(topics.len(), 50, "{topics:?}");
}

/// TLS towards the remote: mosquitto with a certificate made for the
/// test, `bridge_cafile` on culex's side.
#[test]
fn tls_to_the_remote() {
    let certs = tempfile::tempdir().unwrap();
    culex_testkit::tls_certificates(certs.path(), "DNS:localhost,IP:127.0.0.1");
    let port = culex_testkit::free_port();
    let remote = mosquitto(
        certs.path(),
        culex_testkit::free_port(),
        &format!(
            "listener {port} 127.0.0.1\ncertfile {0}/server.crt\nkeyfile {0}/server.key\n",
            certs.path().display()
        ),
    );
    culex_testkit::wait_for_port(port, Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let broker = culex(
        dir.path(),
        &format!(
            "connection secure\naddress localhost:{port}\ntopic t/# out 1\nrestart_timeout 1\n\
             bridge_cafile {}/ca.crt\n",
            certs.path().display()
        ),
    );
    wait_up(broker.port());
    let _ = remote;
    let (mut publ, _) = Raw::connect(broker.port(), "publ", true);
    let port_text = port.to_string();
    let ca = format!("{}/ca.crt", certs.path().display());
    let waiter = std::thread::spawn(move || {
        culex_testkit::run_with_timeout(
            Command::new(tool("mosquitto_sub")).args([
                "-p",
                &port_text,
                "--cafile",
                &ca,
                "-h",
                "localhost",
                "-t",
                "t/#",
                "-C",
                "1",
                "-W",
                "8",
                "-v",
            ]),
            Duration::from_secs(10),
        )
    });
    let deadline = Instant::now() + Duration::from_secs(8);
    while !waiter.is_finished() && Instant::now() < deadline {
        publ.publish_acked("t/secure", b"over tls", QoS::AtLeastOnce, false, 1);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = waiter.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "t/secure over tls\n");
}

/// A remote that cannot be reached, one that refuses the bridge's
/// credentials, and one that accepts TCP and then says nothing: the bridge
/// keeps trying, says so in the log, and local clients are unaffected.
#[test]
fn bad_remotes_leave_local_clients_alone() {
    let refusing = culex_testkit::Mosquitto::start("allow_anonymous false\n");
    let staller = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let stall_port = staller.local_addr().unwrap().port();
    let closed_port = culex_testkit::free_port();
    let dir = tempfile::tempdir().unwrap();
    let broker = culex(
        dir.path(),
        &format!(
            "connection nowhere\naddress 127.0.0.1:{closed_port}\ntopic a/# out 0\nrestart_timeout 1\n\
             connection refused\naddress 127.0.0.1:{}\ntopic b/# out 0\nrestart_timeout 1\n\
             connection stall\naddress 127.0.0.1:{stall_port}\ntopic c/# out 0\nrestart_timeout 1\n",
            refusing.port
        ),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (mut sub, _) = Raw::connect(broker.port(), "sub", true);
    sub.subscribe(&[("#", QoS::AtMostOnce)]);
    let (mut publ, _) = Raw::connect(broker.port(), "publ", true);
    for topic in ["a/1", "b/1", "c/1", "d/1"] {
        let sent = Instant::now();
        publ.publish(topic, b"x", QoS::AtMostOnce, false, 0);
        let got = sub.recv().publish();
        assert_eq!(got.topic, topic);
        assert!(sent.elapsed() < Duration::from_millis(500));
    }
    drop(staller);
}

/// Two culex brokers, one bridge between them on `#` in both directions:
/// a message published on either side arrives once on each, no storm.
#[test]
fn a_bridge_both_ways_on_everything_does_not_storm() {
    let dir_b = tempfile::tempdir().unwrap();
    let b = culex(dir_b.path(), "");
    let dir_a = tempfile::tempdir().unwrap();
    let a = culex(
        dir_a.path(),
        &format!(
            "connection ab\naddress 127.0.0.1:{}\ntopic # both 1\nrestart_timeout 1\nnotifications false\n",
            b.port()
        ),
    );
    std::thread::sleep(Duration::from_millis(800));
    let (mut on_a, _) = Raw::connect(a.port(), "on-a", true);
    on_a.subscribe(&[("x/#", QoS::AtLeastOnce)]);
    let (mut on_b, _) = Raw::connect(b.port(), "on-b", true);
    on_b.subscribe(&[("x/#", QoS::AtLeastOnce)]);
    let (mut pa, _) = Raw::connect(a.port(), "pa", true);
    let (mut pb, _) = Raw::connect(b.port(), "pb", true);
    // The bridge may still be subscribing: send until B sees one from A.
    let mut n = 0u16;
    loop {
        n += 1;
        assert!(n < 50, "the bridge never carried a message");
        pa.publish_acked(&format!("x/probe/{n}"), b"p", QoS::AtLeastOnce, false, n);
        if !collect(&mut on_b, 1, Duration::from_millis(200)).is_empty() {
            break;
        }
    }
    let _ = collect(&mut on_a, 100, Duration::from_millis(500));
    let _ = collect(&mut on_b, 100, Duration::from_millis(300));
    pa.publish_acked("x/from-a", b"1", QoS::AtLeastOnce, false, 100);
    pb.publish_acked("x/from-b", b"2", QoS::AtLeastOnce, false, 101);
    let mut seen_a: Vec<String> = collect(&mut on_a, 10, Duration::from_secs(2))
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    let mut seen_b: Vec<String> = collect(&mut on_b, 10, Duration::from_secs(1))
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    seen_a.sort();
    seen_b.sort();
    assert_eq!(seen_a, ["x/from-a", "x/from-b"]);
    assert_eq!(seen_b, ["x/from-a", "x/from-b"]);
}

/// A QoS 0 flood crosses the bridge as it crosses a broker: the link takes
/// what is left after a full batch (256 KiB) without waiting for the
/// session's next wake, which a session that stays busy never sends (the
/// link then stalled until something else woke it, and the flood was
/// dropped: 0.2% crossed).
#[test]
fn a_qos0_flood_crosses_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let remote = culex(dir.path(), "");
    let rdir = tempfile::tempdir().unwrap();
    let local = culex(
        rdir.path(),
        &format!(
            // Room for more than a batch of the link in the session.
            "max_queued_messages 10000\n\
             connection flood\naddress 127.0.0.1:{}\ntopic flood/# out 0\n",
            remote.port()
        ),
    );
    wait_up(local.port());
    let (mut sub, _) = Raw::connect(remote.port(), "far", true);
    sub.subscribe(&[("flood/#", QoS::AtMostOnce)]);
    // The remote's subscription is in place: a probe crosses.
    let (mut probe, _) = Raw::connect(local.port(), "probe", true);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        probe.publish("flood/probe", b"p", QoS::AtMostOnce, false, 0);
        if sub.try_recv(Duration::from_millis(200)).is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bridge never carried the probe"
        );
    }
    while sub.try_recv(Duration::from_millis(200)).is_some() {}
    const PUBLISHERS: usize = 4;
    const EACH: usize = 40_000;
    let port = local.port();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|i| {
            std::thread::spawn(move || {
                let (mut publ, _) = Raw::connect(port, &format!("flood-{i}"), true);
                // Many packets per write, as a fast client sends them.
                let mut batch = Vec::new();
                for _ in 0..1000 {
                    let publish = culex_codec::packet::Publish {
                        dup: false,
                        qos: QoS::AtMostOnce,
                        retain: false,
                        topic: culex_codec::topic::TopicName::new("flood/x").unwrap(),
                        packet_id: None,
                        properties: culex_codec::Properties::default(),
                        payload: &[b'x'; 64],
                    };
                    Packet::Publish(publish)
                        .encode(culex_codec::Protocol::V3_1_1, &mut batch)
                        .unwrap();
                }
                for _ in 0..EACH / 1000 {
                    publ.send_raw(&batch);
                }
                publ.sync();
            })
        })
        .collect();
    let mut got = 0;
    let total = PUBLISHERS * EACH;
    let deadline = Instant::now() + Duration::from_secs(20);
    while got < total && Instant::now() < deadline {
        match sub.try_recv(Duration::from_secs(2)) {
            Some(_) => got += 1,
            None => break,
        }
    }
    for p in publishers {
        p.join().expect("publisher");
    }
    // Back-pressure holds the publishers instead of dropping their flood.
    assert!(got * 10 >= total * 9, "{got} of {total} crossed");
}
