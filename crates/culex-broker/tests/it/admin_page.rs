//! The dashboard in a real headless browser: Debian's chromium, driven by
//! playwright-core (tests/browser/dashboard.mjs), against a broker with
//! real clients (paho-mqtt publishing and subscribing, mosquitto_pub).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use culex_testkit::{run_with_timeout, tool, ChildGuard};

use crate::admin::{broker_with_admin, expect_line, http, mosquitto_pub, paho_client};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Installs playwright-core from the committed lock file unless it is there.
fn ensure_playwright() {
    culex_testkit::npm_ci(&browser_dir(), "playwright-core");
}

/// Sensors publishing every 200 ms: a JSON document and plain numbers.
fn sensors(port: u16) -> ChildGuard {
    let script = r#"
import sys, time, math, json
import paho.mqtt.client as mqtt
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sensor-gateway")
c.connect("127.0.0.1", int(sys.argv[1]), 30)
c.loop_start()
t0 = time.time()
while time.time() - t0 < 60:
    x = time.time() - t0
    c.publish("dash/room/climate", json.dumps({"temp": round(21 + 2 * math.sin(x / 2), 2),
        "humidity": round(45 + 4 * math.cos(x / 3), 1), "fan": {"rpm": 900 + int(80 * math.sin(x))}}))
    c.publish("sensors/kitchen/temp", "%.2f" % (20 + math.sin(x / 2)))
    c.publish("sensors/hall/temp", "%.2f" % (18 + math.cos(x / 4)))
    c.publish("sensors/hall/door", "open" if int(x) % 6 < 2 else "closed")
    time.sleep(0.2)
"#;
    let child = culex_testkit::python_with_paho()
        .args(["-c", script, &port.to_string()])
        .spawn()
        .expect("python3");
    ChildGuard(child)
}

#[test]
fn the_dashboard_lists_kicks_charts_and_deletes() {
    ensure_playwright();
    let chromium = tool("chromium");
    let (broker, admin) = broker_with_admin();
    let port = broker.port();
    mosquitto_pub(port, &["-t", "dash/retained/one", "-m", "kept", "-r"]);
    let (_paho, rx) = paho_client(port, "paho-dash", "dash/#");
    let _sensors = sensors(port);

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts/culex-broker");
    let mut node = Command::new(tool("node"));
    node.arg(browser_dir().join("dashboard.mjs"))
        .arg(format!("http://{admin}/"))
        .arg(&artifacts)
        .env("CHROMIUM", &chromium);
    // Set CULEX_DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the README's picture.
    if let Some(path) = std::env::var_os("CULEX_DASHBOARD_SCREENSHOT") {
        node.arg(path);
    }
    let out = run_with_timeout(&mut node, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser check failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("JSON from the script");
    eprintln!("browser: {seen}");
    assert_eq!(seen["client_state"], "connected");
    assert_eq!(seen["kicked"], true);
    assert!(seen["chart_points"].as_u64().unwrap() >= 6);
    assert!(seen["last_payload"]["temp"].is_number());
    let fields: Vec<&str> = seen["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["temp", "humidity", "fan.rpm"],
        "one chart per numeric field"
    );
    assert!(seen["diff_rows"].as_u64().unwrap() >= 1);
    assert_eq!(seen["retained_deleted"], true);
    assert!(seen["log_admin"]
        .as_str()
        .unwrap()
        .contains("deleted the retained message of 'dash/retained/one'"));
    assert_eq!(seen["page_errors"], serde_json::json!([]));

    // What the page did happened in the broker: the paho client was
    // kicked (5.0 reason 0x98), the retained message is gone.
    assert_eq!(expect_line(&rx, "disconnected"), "disconnected 152");
    let gone = http(
        admin,
        "GET",
        "/api/retained/message?topic=dash%2Fretained%2Fone",
        &[],
    );
    assert_eq!(gone.status, 404);
}
