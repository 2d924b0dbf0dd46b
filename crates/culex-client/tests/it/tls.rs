//! TLS with rustls against mosquitto's TLS listener (culex's broker has none
//! yet). Certificates are made with Debian's openssl for each test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use culex_client::asynch::{connect, Event, Options, Transport};
use culex_client::blocking::MQTTClient;
use culex_client::QoS;
use culex_testkit::Mosquitto;

use crate::{inbox, wait_until};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA and a server certificate for "localhost" and 127.0.0.1.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        culex_testkit::tls_certificates(dir.path(), "DNS:localhost,IP:127.0.0.1");
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn broker(&self) -> Mosquitto {
        Mosquitto::start(&format!(
            "cafile {}\ncertfile {}\nkeyfile {}",
            self.path("ca.crt").display(),
            self.path("server.crt").display(),
            self.path("server.key").display()
        ))
    }

    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs(&self.path("ca.crt")) {
            roots.add(cert).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

fn certs(path: &Path) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let pem = std::fs::read(path).unwrap();
    rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn blocking_client_over_tls() {
    let pki = Pki::new();
    let broker = pki.broker();
    let (messages, callback) = inbox();
    let mut c = MQTTClient::new("tls-blocking", "localhost")
        .port(broker.port)
        .tls(pki.client_config());
    c.set_callback(callback);
    c.connect(true).unwrap();
    c.subscribe("tls/t", QoS::AtLeastOnce).unwrap();
    c.publish("tls/t", b"secret", false, QoS::ExactlyOnce)
        .unwrap();
    wait_until(
        Duration::from_secs(5),
        || c.wait_msg().unwrap(),
        || !messages.lock().unwrap().is_empty(),
    );
    assert_eq!(messages.lock().unwrap()[0].1, b"secret");
}

#[test]
fn blocking_client_refuses_an_untrusted_server() {
    let pki = Pki::new();
    let broker = pki.broker();
    let other = Pki::new();
    let mut c = MQTTClient::new("tls-untrusted", "localhost")
        .port(broker.port)
        .tls(other.client_config());
    assert!(c.connect(true).is_err());
}

#[tokio::test]
async fn async_client_over_tls() {
    let pki = Pki::new();
    let broker = pki.broker();
    let mut o = Options::new("tls-async", "localhost", broker.port);
    o.transport = Transport::Tls {
        config: pki.client_config(),
        server_name: None,
    };
    o.reconnect = None;
    let (client, mut events) = connect(o);
    match tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
    {
        Some(Event::Connected(_)) => {}
        other => panic!("expected CONNACK, got {other:?}"),
    }
    client
        .subscribe("tls/a", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();
    client
        .publish("tls/a", "over tls", QoS::AtLeastOnce, false)
        .await
        .unwrap()
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
        {
            Some(Event::Message(m)) => {
                assert_eq!(&m.payload[..], b"over tls");
                break;
            }
            Some(_) => continue,
            None => panic!("event loop ended"),
        }
    }
}
