//! MQTT.js (npm's `mqtt`, installed by scripts/test) in headless Chromium,
//! over ws and wss, with the page and the library served by the broker's
//! own `http_dir`.
//!
//! The page connects one MQTT.js client over ws and one over wss, each
//! subscribes, each publishes to the other at QoS 1, and a third client
//! reports what arrived on `browser/result`, which the test watches. The
//! test CA is not in Chromium's trust store: `--ignore-certificate-errors-spki-list`
//! trusts exactly the test server's key (not every certificate, as
//! `--ignore-certificate-errors` would), which needs no certificate tool
//! and leaves the rest of the TLS checks on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use culex_broker::testing::raw::Raw;
use culex_codec::QoS;
use culex_testkit::{tool, ChildGuard};

use super::{connected, Broker, Certs, Direct};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>culex: MQTT.js over ws and wss</title>
<script src="mqtt.min.js"></script>
<script>
const q = new URLSearchParams(location.search);
const urls = { ws: `ws://${location.host}`, wss: `wss://localhost:${q.get("wss")}` };
const report = mqtt.connect(urls.ws, { clientId: "browser-report" });
const say = (text) => report.publish("browser/result", text, { qos: 1 });
window.onerror = (message) => say(`page error: ${message}`);
const ready = {};
for (const [name, peer] of [["ws", "wss"], ["wss", "ws"]]) {
  const client = mqtt.connect(urls[name], {
    clientId: `browser-${name}`, reconnectPeriod: 0, connectTimeout: 5000,
  });
  client.on("error", (e) => say(`${name} error: ${e.message}`));
  client.on("close", () => say(`${name} closed`));
  client.on("message", (topic, payload) => say(`${name} got ${topic}: ${payload}`));
  client.on("connect", () => client.subscribe(`browser/to-${name}`, { qos: 1 }, (error) => {
    if (error) return say(`${name} subscribe error: ${error.message}`);
    ready[name] = () => client.publish(`browser/to-${peer}`, `from ${name}`, { qos: 1 });
    if (ready.ws && ready.wss) { ready.ws(); ready.wss(); }
  }));
}
</script>
"#;

/// MQTT.js's browser bundle, as scripts/test installs it.
fn mqtt_js() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-peers/node_modules/mqtt/dist/mqtt.min.js");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test, which installs npm's mqtt",
        path.display()
    );
    path
}

/// Chromium's pin for a P-256 key: base64 of SHA-256 over its
/// SubjectPublicKeyInfo (the fixed P-256 prefix and the public point).
fn spki_pin(pkcs8_pem: &str) -> String {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(pkcs8_pem.as_bytes()).unwrap();
    let rng = ring::rand::SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        der.secret_pkcs8_der(),
        &rng,
    )
    .unwrap();
    let mut spki = hex_bytes("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(key.public_key().as_ref());
    let digest = ring::digest::digest(&ring::digest::SHA256, &spki);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn mqtt_js_in_chromium_over_ws_and_wss() {
    let chromium = tool("chromium");
    let certs = Certs::new();
    let www = certs.dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), PAGE).unwrap();
    std::fs::copy(mqtt_js(), www.join("mqtt.min.js")).unwrap();
    let broker = Broker::start(&certs.fill(&format!(
        "allow_anonymous true\nlistener 0 127.0.0.1\n\
         listener 0 127.0.0.1\nprotocol websockets\nhttp_dir {}\n\
         listener 0 127.0.0.1\nprotocol websockets\ncertfile {{cert}}\nkeyfile {{key}}\n",
        www.display()
    )));
    let mut watcher: Raw<Direct<std::net::TcpStream>> = connected(
        Direct(std::net::TcpStream::connect(("127.0.0.1", broker.port(0))).unwrap()),
        "browser-watcher",
    );
    watcher.subscribe(&[("browser/result", QoS::AtLeastOnce)]);

    let profile = tempfile::tempdir().unwrap();
    let url = format!(
        "http://127.0.0.1:{}/index.html?wss={}",
        broker.port(1),
        broker.port(2)
    );
    let _browser = ChildGuard(
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!(
                "--ignore-certificate-errors-spki-list={}",
                spki_pin(&certs.pki.server.key)
            ))
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let want = [
        "ws got browser/to-ws: from wss",
        "wss got browser/to-wss: from ws",
    ];
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !want.iter().all(|w| seen.iter().any(|s| s == w)) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(frame) = watcher.try_recv(left) else {
            panic!("the page reported {seen:?}");
        };
        let got = frame.publish();
        if let Some(id) = got.id {
            watcher.ack(culex_codec::Packet::PubAck, id);
        }
        seen.push(String::from_utf8_lossy(&got.payload).into_owned());
        assert!(
            !seen
                .iter()
                .any(|s| s.contains("error") || s.ends_with("closed")),
            "the page reported {seen:?}"
        );
    }
}
