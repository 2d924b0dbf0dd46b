//! Third-party clients on the new listeners: paho-mqtt over TLS and over
//! WebSockets, and mosquitto's clients over a unix socket.

use std::time::Duration;

use culex_testkit::run_with_timeout;

use super::{show, sub_sees_pub, Broker, Certs};

/// paho's TLS client and its `transport="websockets"` client, each
/// subscribed, each publishing to the other at QoS 1.
#[test]
fn paho_over_tls_and_websockets() {
    let certs = Certs::new();
    let broker = Broker::start(&certs.fill(
        "allow_anonymous true\nlistener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n\
         listener 0 127.0.0.1\nprotocol websockets\n",
    ));
    let script = r#"
import sys, threading
import paho.mqtt.client as mqtt
tls_port, ws_port, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = {}
done = threading.Event()
subscribed = threading.Barrier(3)
def make(name, **kw):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-" + name, **kw)
    def on_message(client, userdata, msg):
        got[name] = (msg.topic, msg.payload.decode(), msg.qos)
        if len(got) == 2:
            done.set()
    def on_subscribe(client, userdata, mid, reasons, properties):
        subscribed.wait(5)
    c.on_message = on_message
    c.on_subscribe = on_subscribe
    return c
tls = make("tls")
tls.tls_set(ca_certs=ca)
ws = make("ws", transport="websockets")
tls.connect("localhost", tls_port, 30)
ws.connect("127.0.0.1", ws_port, 30)
tls.subscribe("to/tls", 1)
ws.subscribe("to/ws", 1)
tls.loop_start(); ws.loop_start()
subscribed.wait(5)
tls.publish("to/ws", "from tls", 1).wait_for_publish(5)
ws.publish("to/tls", "from ws", 1).wait_for_publish(5)
ok = done.wait(5)
tls.disconnect(); ws.disconnect()
tls.loop_stop(); ws.loop_stop()
print(sorted(got.items()))
sys.exit(0 if ok else 1)
"#;
    let out = run_with_timeout(
        culex_testkit::python_with_paho().args([
            "-c",
            script,
            &broker.port(0).to_string(),
            &broker.port(1).to_string(),
            &show(&certs.files.ca),
        ]),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "[('tls', ('to/tls', 'from ws', 1)), ('ws', ('to/ws', 'from tls', 1))]"
    );
}

/// `listener 0 PATH`: mosquitto's clients connect with `--unix`; the
/// socket file goes away with the broker.
#[test]
fn mosquitto_clients_over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mqtt.sock");
    let broker = Broker::start(&format!(
        "allow_anonymous true\nlistener 0 {}\n",
        path.display()
    ));
    let socket = show(&path);
    let sub = ["--unix", &socket, "-t", "local/#", "-v"];
    let publish = [
        "--unix",
        &socket,
        "-t",
        "local/x",
        "-m",
        "over a unix socket",
    ];
    assert_eq!(
        sub_sees_pub(&sub, &[&publish]),
        "local/x over a unix socket\n"
    );
    super::expect_log(&["New connection from ", "mqtt.sock:0 on port 0."]);
    broker.stop();
    assert!(!path.exists(), "the socket file is removed at shutdown");
}
