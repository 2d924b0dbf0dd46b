//! The demo page in a real headless browser: Debian's chromium, driven by
//! playwright-core (tests/browser/press.mjs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use culex_testkit::{run_with_timeout, tool};

use crate::support::{demo_with_embedded_broker, wait_online};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Installs playwright-core from the committed lock file unless it is there.
fn ensure_playwright() {
    culex_testkit::npm_ci(&browser_dir(), "playwright-core");
}

#[test]
fn holding_blue_in_the_page_lights_green() {
    let chromium = tool("chromium");
    ensure_playwright();
    let demo = demo_with_embedded_broker();
    wait_online(&[demo.board("blue").unwrap(), demo.board("green").unwrap()]);

    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../test-artifacts/culex-demo");
    let mut node = Command::new(tool("node"));
    node.arg(browser_dir().join("press.mjs"))
        .arg(demo.url())
        .arg(&artifacts)
        .env("CHROMIUM", &chromium);
    // Set CULEX_DEMO_SCREENSHOT=docs/demo.png to refresh the README's picture.
    if let Some(path) = std::env::var_os("CULEX_DEMO_SCREENSHOT") {
        node.arg(path);
    }
    let out = run_with_timeout(&mut node, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser check failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );

    let result: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("press.mjs prints JSON");
    eprintln!("browser: {result}");
    let on_ms = result["on_ms"].as_u64().expect("on_ms");
    let off_ms = result["off_ms"].as_u64().expect("off_ms");
    assert!(on_ms <= 1500, "green's LED lit {on_ms} ms after the press");
    assert!(
        off_ms <= 1500,
        "green's LED went out {off_ms} ms after the release"
    );
    assert_eq!(result["green_led_class"], "led on");
    assert_eq!(result["blue_led"], "off");
    assert!(
        artifacts.join("demo-pressed.png").is_file(),
        "screenshot saved"
    );
    // The button really went through the board: it is released again now.
    assert!(!demo.board("blue").unwrap().pins().pressed());
}
