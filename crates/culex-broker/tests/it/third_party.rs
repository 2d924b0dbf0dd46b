//! Real third-party clients against culex: Debian's mosquitto_sub and
//! mosquitto_pub, and paho-mqtt.

use std::process::{Command, Stdio};
use std::time::Duration;

use culex_broker::testing::BrokerThread;
use culex_testkit::{run_with_timeout, tool, ChildGuard};

/// The tutorial: `mosquitto_sub -v -t hello` sees `mosquitto_pub -t hello -m 'my name is blah'`.
#[test]
fn tutorial_mosquitto_sub_sees_mosquitto_pub() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    let sub = Command::new(tool("mosquitto_sub"))
        .args(["-p", &port, "-v", "-t", "hello", "-C", "1", "-W", "5"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    let sub = ChildGuard(sub);
    // Publish until the subscriber has its subscription in place.
    let mut output = None;
    let mut guard = sub;
    for _ in 0..50 {
        let out = run_with_timeout(
            Command::new(tool("mosquitto_pub")).args([
                "-p",
                &port,
                "-t",
                "hello",
                "-m",
                "my name is blah",
            ]),
            Duration::from_secs(5),
        );
        assert!(
            out.status.success(),
            "mosquitto_pub: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Ok(Some(_)) = guard.0.try_wait() {
            output = guard.0.stdout.take();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut output.expect("mosquitto_sub finished"), &mut text).unwrap();
    assert_eq!(text, "hello my name is blah\n");
}

/// mosquitto_pub -r then mosquitto_sub gets the retained message, at QoS 2.
#[test]
fn mosquitto_clients_retained_qos2() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    let out = run_with_timeout(
        Command::new(tool("mosquitto_pub"))
            .args(["-p", &port, "-t", "r/x", "-m", "kept", "-r", "-q", "2"]),
        Duration::from_secs(5),
    );
    assert!(out.status.success());
    let out = run_with_timeout(
        Command::new(tool("mosquitto_sub")).args([
            "-p", &port, "-v", "-t", "r/#", "-q", "2", "-C", "1", "-W", "5",
        ]),
        Duration::from_secs(8),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "r/x kept\n");
}

/// The tutorial's boards as paho-mqtt clients: blue and green publish
/// NAME/btn/0 every 0.5 s and each sees the other's messages.
#[test]
fn paho_blue_and_green_see_each_other() {
    let broker = BrokerThread::start();
    let script = r#"
import sys, time, threading
import paho.mqtt.client as mqtt
port = int(sys.argv[1])
seen = {"blue": [], "green": []}
clients = {}
for name, peer in (("blue", "green"), ("green", "blue")):
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=True)
    except AttributeError:
        c = mqtt.Client(client_id=name, clean_session=True)
    def on_message(client, userdata, msg, name=name):
        seen[name].append((msg.topic, msg.payload.decode()))
    c.on_message = on_message
    c.connect("127.0.0.1", port, 60)
    c.subscribe(peer + "/btn/0")
    c.loop_start()
    clients[name] = c
time.sleep(0.3)
for i in range(5):
    for name, c in clients.items():
        c.publish(name + "/btn/0", "1" if i % 2 else "0")
    time.sleep(0.5)
time.sleep(0.3)
for c in clients.values():
    c.loop_stop(); c.disconnect()
ok = all(len(seen[n]) >= 4 for n in seen) \
    and all(t == "green/btn/0" for t, _ in seen["blue"]) \
    and all(t == "blue/btn/0" for t, _ in seen["green"])
print(seen)
sys.exit(0 if ok else 1)
"#;
    let out = run_with_timeout(
        culex_testkit::python_with_paho().args(["-c", script, &broker.port().to_string()]),
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A password file written by Debian's mosquitto_passwd works unchanged:
/// the right password connects, a wrong one is refused with code 5.
#[test]
fn mosquitto_passwd_file_works() {
    let dir = tempfile_dir();
    let file = dir.join("passwd");
    let out = run_with_timeout(
        Command::new(tool("mosquitto_passwd"))
            .arg("-c")
            .arg("-b")
            .arg(&file)
            .args(["alice", "s3cret"]),
        Duration::from_secs(5),
    );
    assert!(out.status.success());
    let mut config = culex_broker::testing::local_config();
    config.security.allow_anonymous = false;
    config.security.password_file = Some(file);
    let broker = BrokerThread::start_with(config);
    let port = broker.port().to_string();
    let good = run_with_timeout(
        Command::new(tool("mosquitto_pub")).args([
            "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "s3cret",
        ]),
        Duration::from_secs(5),
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let bad = run_with_timeout(
        Command::new(tool("mosquitto_pub")).args([
            "-p", &port, "-t", "t", "-m", "x", "-u", "alice", "-P", "wrong",
        ]),
        Duration::from_secs(5),
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not authorised"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "culex-broker-it-{}-{}",
        std::process::id(),
        culex_testkit::free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// MQTT 3.1 (`MQIsdp`) clients: mosquitto_sub/pub with `-V mqttv31`.
#[test]
fn mosquitto_clients_v31() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    let mut sub = Command::new(tool("mosquitto_sub"));
    sub.args([
        "-p", &port, "-V", "mqttv31", "-i", "old31", "-t", "v31", "-C", "1", "-W", "5",
    ]);
    let sub = std::thread::spawn(move || run_with_timeout(&mut sub, Duration::from_secs(8)));
    std::thread::sleep(Duration::from_millis(500));
    let out = run_with_timeout(
        Command::new(tool("mosquitto_pub")).args([
            "-p", &port, "-V", "mqttv31", "-i", "pub31", "-t", "v31", "-m", "classic", "-q", "1",
        ]),
        Duration::from_secs(5),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&sub.join().unwrap().stdout),
        "classic\n"
    );
}

/// paho-mqtt's MQTT 5 client through culex: user properties and response
/// topic passed through [MQTT-3.3.2-17], no-local honoured [MQTT-3.8.3-3],
/// a subscription identifier returned [MQTT-3.3.4-3].
#[test]
fn paho_mqtt5_properties_and_no_local() {
    let broker = BrokerThread::start();
    let script = r#"
import sys, time
import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions
port = int(sys.argv[1])
got = {"a": [], "b": []}
def make(name):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, ud, msg: got[name].append(msg)
    c.connect("127.0.0.1", port, 60)
    c.loop_start()
    return c
a, b = make("a"), make("b")
sp = Properties(PacketTypes.SUBSCRIBE)
sp.SubscriptionIdentifier = 42
a.subscribe("v5/t", options=SubscribeOptions(qos=1, noLocal=True), properties=sp)
b.subscribe("v5/t", options=SubscribeOptions(qos=1))
time.sleep(0.5)
pp = Properties(PacketTypes.PUBLISH)
pp.UserProperty = [("k1", "v1"), ("k2", "v2")]
pp.ResponseTopic = "v5/reply"
a.publish("v5/t", "from a", qos=1, properties=pp).wait_for_publish(5)
b.publish("v5/t", "from b", qos=1).wait_for_publish(5)
time.sleep(0.7)
for c in (a, b):
    c.loop_stop(); c.disconnect()
pa = [m.payload for m in got["a"]]
pb = [m.payload for m in got["b"]]
assert pa == [b"from b"], pa
assert sorted(pb) == [b"from a", b"from b"], pb
ma = got["a"][0]
assert ma.properties.SubscriptionIdentifier == [42], ma.properties
mb = [m for m in got["b"] if m.payload == b"from a"][0]
assert mb.properties.UserProperty == [("k1", "v1"), ("k2", "v2")], mb.properties
assert mb.properties.ResponseTopic == "v5/reply", mb.properties
print("ok")
"#;
    let out = run_with_timeout(
        culex_testkit::python_with_paho().args(["-c", script, &broker.port().to_string()]),
        Duration::from_secs(15),
    );
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 15.7: a real mosquitto bridges into culex, with `try_private true` (its
/// default: the bridge bit in the CONNECT, once refused with return code 1)
/// and `false`. Messages cross both ways, and what the bridge publishes
/// into culex does not come back to it (mosquitto would loop them).
#[test]
fn a_mosquitto_bridge_connects_into_culex() {
    use crate::client::Raw;
    use culex_codec::QoS;
    for try_private in ["true", "false"] {
        let broker = BrokerThread::start();
        let port = broker.port();
        let mosquitto = culex_testkit::Mosquitto::start(&format!(
            "connection to-culex\naddress 127.0.0.1:{port}\ntopic # both 0\n\
             try_private {try_private}\nrestart_timeout 1\n"
        ));
        // Into culex: published on mosquitto, seen on culex.
        let (mut on_culex, _) = Raw::connect(port, "on-culex", true);
        on_culex.subscribe(&[("up/#", QoS::AtMostOnce)]);
        let (mut on_mosquitto, _) = Raw::connect(mosquitto.port, "on-mosquitto", true);
        on_mosquitto.subscribe(&[("down/#", QoS::AtMostOnce), ("up/#", QoS::AtMostOnce)]);
        let mut got = None;
        for i in 0..50 {
            on_mosquitto.publish("up/x", format!("{i}").as_bytes(), QoS::AtMostOnce, false, 0);
            assert_eq!(on_mosquitto.recv().publish().topic, "up/x", "local echo");
            if let Some(f) = on_culex.try_recv(Duration::from_millis(200)) {
                got = Some(f.publish());
                break;
            }
        }
        let got = got.unwrap_or_else(|| panic!("try_private {try_private}: nothing crossed"));
        assert_eq!(got.topic, "up/x");
        // What came back from culex to mosquitto's subscriber meanwhile:
        // nothing with the bridge bit (culex does not echo the bridge's own
        // messages), copies without it (an ordinary client gets its own
        // messages back, as it would from mosquitto).
        let mut echoed = 0;
        while let Some(f) = on_mosquitto.try_recv(Duration::from_millis(500)) {
            assert_eq!(f.publish().topic, "up/x");
            echoed += 1;
        }
        if try_private == "true" {
            assert_eq!(echoed, 0, "culex sent the bridge's message back to it");
        }
        // Out of culex: published on culex, seen on mosquitto.
        let (mut publ, _) = Raw::connect(port, "culex-pub", true);
        publ.publish("down/y", b"hi", QoS::AtMostOnce, false, 0);
        let g = on_mosquitto.recv().publish();
        assert_eq!((g.topic.as_str(), &g.payload[..]), ("down/y", &b"hi"[..]));
    }
}

/// mosquitto_sub and mosquitto_pub speaking 5.0 through culex, user property included.
#[test]
fn mosquitto_clients_v5() {
    let broker = BrokerThread::start();
    let port = broker.port().to_string();
    let mut sub = std::process::Command::new(tool("mosquitto_sub"));
    sub.args([
        "-p", &port, "-V", "mqttv5", "-t", "v5/#", "-C", "1", "-W", "5", "-F", "%t %p",
    ]);
    let sub = std::thread::spawn(move || run_with_timeout(&mut sub, Duration::from_secs(8)));
    std::thread::sleep(Duration::from_millis(500));
    let out = run_with_timeout(
        Command::new(tool("mosquitto_pub")).args([
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-t",
            "v5/a",
            "-m",
            "five",
            "-q",
            "1",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
        ]),
        Duration::from_secs(5),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sub.join().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v5/a five\n");
}
