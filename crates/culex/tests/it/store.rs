//! `culex store dump` on a store written by `culex broker` with
//! `persistence true`.

use std::process::Command;
use std::time::Duration;

use culex_testkit::{free_port, run_with_timeout, wait_for_port, write_file, ChildGuard};

#[test]
fn dump_shows_what_the_broker_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = write_file(
        dir.path(),
        "culex.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\n",
            dir.path().display()
        ),
    );
    let culex = env!("CARGO_BIN_EXE_culex");
    let mut broker = ChildGuard(
        Command::new(culex)
            .args(["broker", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, Duration::from_secs(10));

    // A retained message and a persistent session with a subscription.
    let out = run_with_timeout(
        Command::new(culex).args([
            "pub",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-r",
            "-t",
            "kitchen/lamp",
            "-m",
            "on",
        ]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{out:?}");
    let out = run_with_timeout(
        Command::new(culex).args([
            "sub",
            "-p",
            &port.to_string(),
            "-c",
            "-i",
            "keeper",
            "-q",
            "1",
            "-t",
            "alerts/#",
            "-E",
        ]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{out:?}");

    // A graceful stop closes the store, which only one process may hold.
    let pid = broker.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = broker.0.wait().unwrap();
    assert!(status.success(), "broker exit: {status:?}");

    let out = run_with_timeout(
        Command::new(culex)
            .args(["store", "dump"])
            .arg(dir.path().join("culex.db")),
        Duration::from_secs(10),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("kitchen/lamp"), "{text}");
    assert!(text.contains("keeper"), "{text}");
    assert!(text.contains("alerts/#"), "{text}");
}

#[test]
fn dump_of_a_missing_store_fails_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_culex"))
            .args(["store", "dump"])
            .arg(dir.path().join("nothing.db")),
        Duration::from_secs(10),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
