//! TLS listeners: mosquitto's clients with `--cafile`, mutual TLS with the
//! certificate's CN as the username, refused certificates, certificates
//! reloaded on SIGHUP, parking, and close_notify at shutdown.

use std::io::Read as _;
use std::process::Command;
use std::time::Duration;

use culex_codec::QoS;
use culex_testkit::{run_with_timeout, tool};

use super::{
    client_tls, der, expect_log, round_trip, server_certificate, show, sub_sees_pub, tls_client,
    Broker, Certs,
};

#[test]
fn mosquitto_clients_over_tls_with_a_cafile() {
    let certs = Certs::new();
    let broker = Broker::start(
        &certs.fill("allow_anonymous true\nlistener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"),
    );
    let port = broker.port(0).to_string();
    let ca = show(&certs.files.ca);
    let tls = ["-h", "localhost", "-p", &port, "--cafile", &ca];
    let sub: Vec<&str> = tls.iter().copied().chain(["-t", "tls/#", "-v"]).collect();
    let publish: Vec<&str> = tls
        .iter()
        .copied()
        .chain(["-t", "tls/a", "-m", "secret", "-q", "1"])
        .collect();
    assert_eq!(sub_sees_pub(&sub, &[&publish]), "tls/a secret\n");
    // Without TLS the port says nothing MQTT: the client gives up.
    let out = run_with_timeout(
        Command::new(tool("mosquitto_pub")).args(["-p", &port, "-t", "x", "-m", "plain"]),
        Duration::from_secs(15),
    );
    assert!(!out.status.success(), "plain MQTT on a TLS port was served");
}

/// `require_certificate` with `use_identity_as_username`: the CN is the
/// username (no password, though a password file is set), the ACL file
/// applies to it, and the log line names it.
#[test]
fn mutual_tls_identity_is_the_username_and_acls_apply() {
    let certs = Certs::new();
    let hash = culex_broker::auth::password::PasswordHash::generate(b"secret");
    culex_testkit::write_file(certs.dir.path(), "passwords", &format!("alice:{hash}\n"));
    culex_testkit::write_file(
        certs.dir.path(),
        "acl",
        "user client one\ntopic readwrite secure/#\n",
    );
    let broker = Broker::start(&certs.fill(
        "allow_anonymous false\npassword_file {dir}/passwords\nacl_file {dir}/acl\n\
         listener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\ncafile {ca}\ncrlfile {crl}\n\
         require_certificate true\nuse_identity_as_username true\n",
    ));
    let port = broker.port(0).to_string();
    let (ca, cert, key) = (
        show(&certs.files.ca),
        show(&certs.files.client.0),
        show(&certs.files.client.1),
    );
    let tls = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let with = |rest: &[&'static str]| -> Vec<&str> {
        tls.iter().copied().chain(rest.iter().copied()).collect()
    };
    let sub = with(&["-i", "mtls-sub", "-t", "secure/#", "-t", "other/#", "-v"]);
    // Outside the ACL first: were it delivered, the subscriber would print it.
    let denied = with(&["-t", "other/x", "-m", "denied"]);
    let allowed = with(&["-t", "secure/x", "-m", "allowed"]);
    assert_eq!(
        sub_sees_pub(&sub, &[&denied, &allowed]),
        "secure/x allowed\n"
    );
    expect_log(&["as mtls-sub (p2, c1, k60, u'client one')."]);
}

/// Expired, from a CA the listener does not trust, revoked by its CRL, or
/// no certificate at all: refused during the handshake.
#[test]
fn bad_client_certificates_are_refused() {
    let certs = Certs::new();
    let broker = Broker::start(&certs.fill(
        "allow_anonymous true\nlistener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n\
         cafile {ca}\ncrlfile {crl}\nrequire_certificate true\n",
    ));
    let port = broker.port(0).to_string();
    let ca = show(&certs.files.ca);
    let f = &certs.files;
    let cases = [
        ("good", Some(&f.client), true),
        ("expired", Some(&f.expired_client), false),
        ("stranger", Some(&f.stranger), false),
        ("revoked", Some(&f.revoked_client), false),
        ("none", None, false),
    ];
    for (name, identity, accepted) in cases {
        let mut cmd = Command::new(tool("mosquitto_pub"));
        cmd.args(["-h", "localhost", "-p", &port, "--cafile", &ca]);
        cmd.args(["-i", &format!("cert-{name}"), "-t", "c/x", "-m", name]);
        if let Some((cert, key)) = identity {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let out = run_with_timeout(&mut cmd, Duration::from_secs(10));
        assert_eq!(
            out.status.success(),
            accepted,
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The refusals are logged with the reason.
    expect_log(&[
        "Client connection from 127.0.0.1:",
        "failed: client certificate refused",
    ]);
    expect_log(&["failed: the client sent no certificate"]);
}

/// SIGHUP re-reads the certificate: new connections get the new one,
/// connected clients stay and are served; a broken certificate keeps the
/// one in use, and says why.
#[test]
fn reloaded_certificates_reach_new_connections_only() {
    let certs = Certs::new();
    let broker = Broker::start(
        &certs.fill("allow_anonymous true\nlistener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"),
    );
    let port = broker.port(0);
    let config = client_tls(&certs.files.ca, None);
    let mut before = tls_client(port, &config, "before-reload");
    before.subscribe(&[("reload/#", QoS::AtLeastOnce)]);
    assert_eq!(
        server_certificate(&before.wire.0),
        der(&certs.pki.server.cert)
    );

    let renewed = certs.pki.new_server("localhost");
    std::fs::write(&certs.files.server.0, &renewed.cert).unwrap();
    std::fs::write(&certs.files.server.1, &renewed.key).unwrap();
    broker.reload_certificates().unwrap();
    let mut after = tls_client(port, &config, "after-reload");
    assert_eq!(server_certificate(&after.wire.0), der(&renewed.cert));
    // The client from before the reload is still connected and served.
    assert_eq!(
        round_trip(&mut after, &mut before, "reload/one"),
        b"hello reload/one"
    );

    std::fs::write(
        &certs.files.server.0,
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .unwrap();
    let error = broker.reload_certificates().unwrap_err();
    assert!(
        error.contains("certfile") || error.contains("PEM"),
        "{error}"
    );
    expect_log(&[
        "Error when reloading certificate '",
        &show(&certs.files.server.0),
        "The previous certificate stays in use.",
    ]);
    let mut third = tls_client(port, &config, "after-broken-reload");
    assert_eq!(server_certificate(&third.wire.0), der(&renewed.cert));
    assert_eq!(
        round_trip(&mut third, &mut before, "reload/two"),
        b"hello reload/two"
    );
}

/// An idle TLS subscriber parks with its TLS session, and a message wakes
/// it: decrypted, encrypted and delivered as before.
#[test]
fn tls_connections_park_and_resume() {
    let certs = Certs::new();
    let broker = Broker::start(
        &certs.fill("allow_anonymous true\nlistener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"),
    );
    let port = broker.port(0);
    let config = client_tls(&certs.files.ca, None);
    let mut sub = tls_client(port, &config, "tls-parked-sub");
    sub.subscribe(&[("park/#", QoS::AtLeastOnce)]);
    let mut publisher = tls_client(port, &config, "tls-parked-pub");
    wait_parked(&broker, 2);
    // Both parked: the publisher's task resumes to read, the subscriber's
    // to write, each through its TLS session.
    publisher.publish_acked("park/x", b"woken", QoS::AtLeastOnce, false, 1);
    let got = sub.recv().publish();
    assert_eq!(got.payload, b"woken");
    sub.ack(culex_codec::Packet::PubAck, got.id.unwrap());
    assert_eq!(
        round_trip(&mut publisher, &mut sub, "park/y"),
        b"hello park/y"
    );
}

/// Waits until at least `n` connections are parked (a connection parks 2 s
/// after its last activity).
pub fn wait_parked(broker: &Broker, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while broker.parked() < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{} parked",
            broker.parked()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// At shutdown a TLS client is sent close_notify before the socket closes:
/// rustls reports a clean end, not a truncation.
#[test]
fn shutdown_sends_close_notify() {
    let certs = Certs::new();
    let broker = Broker::start(
        &certs.fill("allow_anonymous true\nlistener 0 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"),
    );
    let config = client_tls(&certs.files.ca, None);
    let client = tls_client(broker.port(0), &config, "close-notify");
    broker.stop();
    let mut stream = client.wire.0;
    stream
        .sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let end = stream.read_to_end(&mut rest);
    assert!(end.is_ok(), "not a clean TLS close: {end:?}");
}
