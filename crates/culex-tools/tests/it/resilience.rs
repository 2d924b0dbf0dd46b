//! culex sub keeps reconnecting when the broker goes away, as mosquitto_sub
//! does, and TLS (rustls) works against a TLS listener of Debian's mosquitto.

use crate::common::{culex, mosquitto_pub, spawn_watched, FixedMosquitto};
use culex_testkit::{free_port, tool};
use culex_tools::args::Tool;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn sub_reconnects_and_resubscribes_after_the_broker_restarts() {
    let port = free_port();
    let first = FixedMosquitto::start(port, "");
    assert!(mosquitto_pub(port, &["-r", "-t", "rc/one", "-m", "before"]));
    let port_text = port.to_string();
    let (done, out) = spawn_watched(
        Tool::Sub,
        &["-p", &port_text, "-t", "rc/#", "-C", "2", "-v", "-W", "20"],
    );
    let limit = Instant::now() + Duration::from_secs(10);
    while !out.text().contains("rc/one before") {
        assert!(Instant::now() < limit, "first message never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    let _second = FixedMosquitto::start(port, "");
    let outcome = loop {
        if let Ok(outcome) = done.recv_timeout(Duration::from_millis(100)) {
            break outcome;
        }
        assert!(
            Instant::now() < limit + Duration::from_secs(5),
            "no message after the restart"
        );
        mosquitto_pub(port, &["-t", "rc/two", "-m", "after"]);
    };
    assert_eq!(outcome.code, 0, "{outcome:?}");
    assert_eq!(out.text(), "rc/one before\nrc/two after\n");
}

/// A CA and a server certificate for `localhost` (no IP address), made with openssl.
fn certificates(dir: &std::path::Path) {
    culex_testkit::tls_certificates(dir, "DNS:localhost");
}

#[test]
fn tls_with_cafile_insecure_and_a_bad_ca() {
    let certs = tempfile::tempdir().expect("tempdir");
    certificates(certs.path());
    let path = |name: &str| certs.path().join(name).to_string_lossy().into_owned();
    let port = free_port();
    let _broker = FixedMosquitto::start(
        port,
        &format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            path("ca.crt"),
            path("server.crt"),
            path("server.key")
        ),
    );
    let port = port.to_string();
    let ca = path("ca.crt");
    // A retained message over TLS, read back over TLS.
    let out = culex(
        Tool::Pub,
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-t",
            "tls/a",
            "-m",
            "secret",
            "-r",
            "-q",
            "1",
        ],
    );
    assert_eq!((out.code, out.stderr_text()), (0, String::new()));
    let out = culex(
        Tool::Sub,
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-t",
            "tls/a",
            "-C",
            "1",
            "-W",
            "5",
            "-v",
        ],
    );
    assert_eq!(
        (out.code, String::from_utf8_lossy(&out.stdout).into_owned()),
        (0, "tls/a secret\n".into())
    );
    // The certificate names localhost, not 127.0.0.1: only --insecure accepts that.
    let refused = culex(
        Tool::Pub,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-t",
            "tls/b",
            "-m",
            "x",
        ],
    );
    assert_eq!(
        (refused.code, refused.stderr_text()),
        (1, "Error: A TLS error occurred.\n".to_string())
    );
    let insecure = culex(
        Tool::Pub,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "--insecure",
            "-t",
            "tls/b",
            "-m",
            "x",
        ],
    );
    assert_eq!((insecure.code, insecure.stderr_text()), (0, String::new()));
    // A CA that did not sign the server's certificate is refused.
    let out = culex(
        Tool::Pub,
        &[
            "-h",
            "localhost",
            "-p",
            &port,
            "--cafile",
            &path("server.crt"),
            "-t",
            "tls/c",
            "-m",
            "x",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    // --ciphers limits the TLS 1.2 suites: the server's key is EC, so an
    // ECDSA suite connects and an RSA-only list finds no suite in common.
    let tls12 = |ciphers: &str| {
        culex(
            Tool::Pub,
            &[
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &ca,
                "--tls-version",
                "tlsv1.2",
                "--ciphers",
                ciphers,
                "-t",
                "tls/e",
                "-m",
                "x",
            ],
        )
    };
    let out = tls12("ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_eq!((out.code, out.stderr_text()), (0, String::new()));
    let out = tls12("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384");
    assert_eq!(
        (out.code, out.stderr_text()),
        (1, "Error: A TLS error occurred.\n".to_string())
    );
    let out = tls12("NO-SUCH-CIPHER");
    assert_eq!(
        (out.code, out.stderr_text()),
        (
            1,
            "Error: Problem setting TLS options, check the options are valid.\n".to_string()
        )
    );
    // A missing CA file is reported as mosquitto does, before connecting.
    let out = culex(
        Tool::Pub,
        &[
            "-p",
            &port,
            "--cafile",
            "/nonexistent/ca.crt",
            "-t",
            "tls/d",
            "-m",
            "x",
        ],
    );
    assert_eq!(
        out.stderr_text(),
        "Error: Problem setting TLS options: File not found.\n"
    );
}

#[test]
fn unix_socket_with_unix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // mosquitto drops root for its own user before it binds the socket.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let socket = dir.path().join("mqtt.sock");
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener 0 {}\nallow_anonymous true\n", socket.display()),
    )
    .expect("conf");
    let child = Command::new(tool("mosquitto"))
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mosquitto");
    let _guard = culex_testkit::ChildGuard(child);
    let limit = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < limit, "mosquitto made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let path = socket.to_string_lossy().into_owned();
    let (done, out) = spawn_watched(
        Tool::Sub,
        &["--unix", &path, "-t", "u/x", "-C", "1", "-W", "10", "-v"],
    );
    let outcome = loop {
        if let Ok(outcome) = done.recv_timeout(Duration::from_millis(50)) {
            break outcome;
        }
        assert!(
            Instant::now() < limit,
            "nothing arrived over the unix socket"
        );
        let published = culex(
            Tool::Pub,
            &["--unix", &path, "-t", "u/x", "-m", "over a unix socket"],
        );
        assert_eq!(published.code, 0, "{published:?}");
    };
    assert_eq!(
        (outcome.code, out.text()),
        (0, "u/x over a unix socket\n".to_string())
    );
}
