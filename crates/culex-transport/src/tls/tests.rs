//! A rustls client driven in memory against the server layer.

use super::*;
use crate::test_support::{client, mtls_options, options, pki};
use culex_testkit::pki::Identity;
use rustls::ClientConnection;
use std::sync::OnceLock;

/// A client and the server layer, and the server side's buffers.
struct Pair {
    client: ClientConnection,
    server: TlsLayer,
    wire: BytesMut,
    up: BytesMut,
}

impl Pair {
    fn new(config: Arc<ServerConfig>, client: ClientConnection) -> Pair {
        Pair {
            client,
            server: TlsLayer::new(config).unwrap(),
            wire: BytesMut::new(),
            up: BytesMut::new(),
        }
    }

    /// Moves bytes both ways until nothing moves; the server's error, if any,
    /// and the client's, if any.
    fn pump(&mut self) -> (Result<TlsProgress, TlsError>, Result<(), rustls::Error>) {
        let mut server_result = Ok(self.server.progress());
        for _ in 0..20 {
            let mut to_server = Vec::new();
            while self.client.wants_write() {
                self.client.write_tls(&mut to_server).unwrap();
            }
            self.wire.extend_from_slice(&to_server);
            let mut to_client = BytesMut::new();
            if !to_server.is_empty() || !self.wire.is_empty() {
                server_result = self
                    .server
                    .read(&mut self.wire, &mut self.up, &mut to_client);
            }
            let moved = !to_server.is_empty() || !to_client.is_empty();
            let mut from_server = &to_client[..];
            while !from_server.is_empty() {
                self.client.read_tls(&mut from_server).unwrap();
            }
            if let Err(e) = self.client.process_new_packets() {
                return (server_result, Err(e));
            }
            if server_result.is_err() || !moved {
                break;
            }
        }
        (server_result, Ok(()))
    }

    fn client_reads(&mut self) -> Vec<u8> {
        let mut got = Vec::new();
        let _ = std::io::Read::read_to_end(&mut self.client.reader(), &mut got);
        got
    }
}

#[test]
fn handshake_and_data_both_ways() {
    for tls12_only in [false, true] {
        let config = options().server_config().unwrap();
        let mut pair = Pair::new(config, client(None, tls12_only));
        assert_eq!(pair.server.progress(), TlsProgress::Handshaking);
        let (server, client) = pair.pump();
        assert_eq!(server.unwrap(), TlsProgress::Open);
        client.unwrap();
        assert!(!pair.client.is_handshaking());
        let version = pair.server.negotiated().unwrap().0;
        let expected = if tls12_only {
            rustls::ProtocolVersion::TLSv1_2
        } else {
            rustls::ProtocolVersion::TLSv1_3
        };
        assert_eq!(version, expected);

        // Client to server: a CONNECT's worth, and a large PUBLISH.
        std::io::Write::write_all(&mut pair.client.writer(), b"\x10\x0c\x00\x04MQTT").unwrap();
        let big = vec![0x5a; 100_000];
        let mut sent = 0;
        while sent < big.len() {
            sent += std::io::Write::write(&mut pair.client.writer(), &big[sent..]).unwrap();
            pair.pump().0.unwrap();
        }
        assert_eq!(pair.up.len(), 8 + big.len());
        assert!(pair.wire.is_empty());

        // Server to client, more than one record's worth.
        let mut plain = BytesMut::from(&vec![0x42; 40_000][..]);
        let mut out = BytesMut::new();
        pair.server
            .write(&mut pair.wire, &mut plain, &mut out)
            .unwrap();
        assert!(plain.is_empty());
        let mut from_server = &out[..];
        let mut got = Vec::new();
        while !from_server.is_empty() {
            pair.client.read_tls(&mut from_server).unwrap();
            pair.client.process_new_packets().unwrap();
            got.extend(pair.client_reads());
        }
        assert!(got == vec![0x42; 40_000], "{} bytes", got.len());
        assert_eq!(pair.server.peer_identity(), None);
    }
}

#[test]
fn records_arriving_byte_by_byte() {
    let config = options().server_config().unwrap();
    let mut pair = Pair::new(config, client(None, false));
    pair.pump().0.unwrap();
    std::io::Write::write_all(&mut pair.client.writer(), b"hello").unwrap();
    let mut record = Vec::new();
    pair.client.write_tls(&mut record).unwrap();
    let mut out = BytesMut::new();
    for (i, byte) in record.iter().enumerate() {
        pair.wire.extend_from_slice(&[*byte]);
        pair.server
            .read(&mut pair.wire, &mut pair.up, &mut out)
            .unwrap();
        // The partial record stays in the caller's buffer.
        assert_eq!(
            pair.wire.len(),
            if i + 1 == record.len() { 0 } else { i + 1 }
        );
    }
    assert_eq!(&pair.up[..], b"hello");
}

#[test]
fn mutual_tls_accepts_a_good_client_and_names_it() {
    let (pki, _, _) = pki();
    let config = mtls_options().server_config().unwrap();
    let mut pair = Pair::new(config, client(Some(&pki.client), false));
    assert_eq!(pair.pump().0.unwrap(), TlsProgress::Open);
    let identity = pair.server.peer_identity().unwrap();
    assert_eq!(identity.common_name.as_deref(), Some("client one"));
    assert_eq!(identity.subject, "CN=client one,O=culex tests,C=GB");
    assert_eq!(
        CertificateField::CommonName.username(&identity),
        Some("client one")
    );
    assert_eq!(
        CertificateField::Subject.username(&identity),
        Some("CN=client one,O=culex tests,C=GB")
    );
}

#[test]
fn mutual_tls_refuses_bad_clients() {
    let (pki, _, _) = pki();
    let cases: [(Option<&Identity>, &str); 4] = [
        (
            None,
            "the client sent no certificate, and this listener requires one",
        ),
        (
            Some(&pki.stranger),
            "client certificate refused: UnknownIssuer",
        ),
        (
            Some(&pki.expired_client),
            "client certificate refused: certificate expired",
        ),
        (
            Some(&pki.revoked_client),
            "client certificate refused: Revoked",
        ),
    ];
    for tls12_only in [false, true] {
        for (identity, expect) in &cases {
            let config = mtls_options().server_config().unwrap();
            let mut pair = Pair::new(config, client(*identity, tls12_only));
            let (server, client) = pair.pump();
            let error = server.unwrap_err().to_string();
            assert!(error.starts_with(expect), "{error}\nwant: {expect}");
            // The client hears why: a fatal alert.
            assert!(
                client.is_err() || pair.client.process_new_packets().is_err(),
                "{error}: the client got no alert"
            );
            // And the layer stays closed.
            let err = pair.server.read(
                &mut BytesMut::from(&b"x"[..]),
                &mut BytesMut::new(),
                &mut BytesMut::new(),
            );
            assert!(matches!(err, Err(TlsError::Closed)));
        }
    }
}

#[test]
fn reload_keeps_the_old_config_when_the_new_one_is_broken() {
    let (pki, files, _) = pki();
    let dir = tempfile::tempdir().unwrap();
    let cert = culex_testkit::write_file(dir.path(), "server.crt", &pki.server.cert);
    let key = culex_testkit::write_file(dir.path(), "server.key", &pki.server.key);
    let options = TlsOptions::new(&cert, &key);
    let acceptor = TlsAcceptor::new(&options).unwrap();
    let served_cn = |acceptor: &TlsAcceptor| {
        let mut pair = Pair::new(acceptor.config(), client(None, false));
        pair.pump().0.unwrap();
        let der = pair.client.peer_certificates().unwrap()[0].clone();
        PeerIdentity::from_der(der.as_ref())
            .unwrap()
            .common_name
            .unwrap()
    };
    assert_eq!(served_cn(&acceptor), "localhost");

    // A broken certificate: the reload fails and the old config serves on.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let err = acceptor.reload(&options).unwrap_err();
    assert!(err.to_string().contains("server.crt"), "{err}");
    assert_eq!(served_cn(&acceptor), "localhost");
    // A key that does not belong to the certificate.
    std::fs::write(&cert, &pki.server.cert).unwrap();
    std::fs::write(&key, &pki.client.key).unwrap();
    let err = acceptor.reload(&options).unwrap_err();
    assert!(matches!(err, TlsConfigError::KeyPair { .. }), "{err}");
    assert_eq!(served_cn(&acceptor), "localhost");

    // A good new certificate: new connections get it.
    let renewed = pki.new_server("localhost renewed");
    std::fs::write(&cert, &renewed.cert).unwrap();
    std::fs::write(&key, &renewed.key).unwrap();
    acceptor.reload(&options).unwrap();
    assert_eq!(served_cn(&acceptor), "localhost renewed");
    let _ = files;
}

#[test]
fn config_errors_name_the_file() {
    let (_, files, _) = pki();
    let show = |options: TlsOptions| options.server_config().map(|_| ()).unwrap_err().to_string();
    let missing = TlsOptions::new("/nonexistent/server.crt", &files.server.1);
    assert!(show(missing).starts_with("cannot read /nonexistent/server.crt: "));
    let swapped = TlsOptions::new(&files.server.1, &files.server.0);
    assert_eq!(
        show(swapped),
        format!("{}: no certificate in the file", files.server.1.display())
    );
    let no_ca = TlsOptions {
        require_certificate: true,
        ..options()
    };
    assert_eq!(
        show(no_ca),
        "require_certificate needs cafile or capath to check client certificates against"
    );
    let bad_crl = TlsOptions {
        crlfile: Some(files.ca.clone()),
        ..mtls_options()
    };
    assert_eq!(
        show(bad_crl),
        format!(
            "{}: no certificate revocation list in the file",
            files.ca.display()
        )
    );
    let ciphers = TlsOptions {
        ciphers: Some("RC4-MD5".into()),
        ..options()
    };
    assert!(show(ciphers).starts_with("ciphers: none of 'RC4-MD5' is offered by culex (rustls)"));
}

#[test]
fn capath_is_a_directory_of_cas() {
    let (pki, _, _) = pki();
    let dir = tempfile::tempdir().unwrap();
    culex_testkit::write_file(dir.path(), "other.pem", &pki.other_ca);
    culex_testkit::write_file(dir.path(), "readme.txt", "not a certificate");
    let options = TlsOptions {
        capath: Some(dir.path().to_path_buf()),
        require_certificate: true,
        ..options()
    };
    // Only the other CA: our client is refused, the stranger accepted.
    let mut pair = Pair::new(
        options.server_config().unwrap(),
        client(Some(&pki.client), false),
    );
    assert!(pair.pump().0.is_err());
    let mut pair = Pair::new(
        options.server_config().unwrap(),
        client(Some(&pki.stranger), false),
    );
    assert_eq!(pair.pump().0.unwrap(), TlsProgress::Open);
    // With ours added under an `openssl rehash` name, both are.
    culex_testkit::write_file(dir.path(), "0badcafe.0", &pki.ca);
    let mut pair = Pair::new(
        options.server_config().unwrap(),
        client(Some(&pki.client), false),
    );
    assert_eq!(pair.pump().0.unwrap(), TlsProgress::Open);
    let empty = tempfile::tempdir().unwrap();
    let options = TlsOptions {
        capath: Some(empty.path().to_path_buf()),
        ..options
    };
    assert!(options
        .server_config()
        .unwrap_err()
        .to_string()
        .ends_with("no CA certificate in the directory"));
}

#[test]
fn versions_and_ciphers_are_honoured() {
    let tls13_only = TlsOptions {
        min_version: TlsVersion::Tls13,
        ..options()
    };
    let mut pair = Pair::new(tls13_only.server_config().unwrap(), client(None, true));
    assert!(matches!(pair.pump().0, Err(TlsError::Incompatible(_))));

    let chacha = TlsOptions {
        ciphers: Some("ECDHE-ECDSA-CHACHA20-POLY1305".into()),
        ciphers_tls13: Some("TLS_CHACHA20_POLY1305_SHA256".into()),
        ..options()
    };
    for tls12_only in [false, true] {
        let mut pair = Pair::new(chacha.server_config().unwrap(), client(None, tls12_only));
        pair.pump().0.unwrap();
        let suite = format!("{:?}", pair.server.negotiated().unwrap().1);
        assert!(suite.contains("CHACHA20_POLY1305"), "{suite}");
    }
}

#[test]
fn close_notify_both_ways() {
    let config = options().server_config().unwrap();
    let mut pair = Pair::new(config.clone(), client(None, false));
    pair.pump().0.unwrap();
    pair.client.send_close_notify();
    assert_eq!(pair.pump().0.unwrap(), TlsProgress::PeerClosed);

    let mut pair = Pair::new(config, client(None, false));
    pair.pump().0.unwrap();
    let mut out = BytesMut::new();
    pair.server.close(&mut pair.wire, &mut out);
    assert!(!out.is_empty());
    pair.client.read_tls(&mut &out[..]).unwrap();
    let state = pair.client.process_new_packets().unwrap();
    assert!(state.peer_has_closed());
}

#[test]
fn garbage_is_a_protocol_error_with_an_alert() {
    let config = options().server_config().unwrap();
    let mut layer = TlsLayer::new(config).unwrap();
    let mut out = BytesMut::new();
    let err = layer
        .read(
            &mut BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]),
            &mut BytesMut::new(),
            &mut out,
        )
        .unwrap_err();
    assert!(matches!(err, TlsError::Protocol(_)), "{err}");
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..400), 0..6), hello_first in proptest::bool::ANY) {
        static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
        let config = CONFIG.get_or_init(|| options().server_config().unwrap()).clone();
        let mut layer = TlsLayer::new(config).unwrap();
        let mut wire = BytesMut::new();
        if hello_first {
            let mut hello = Vec::new();
            client(None, false).write_tls(&mut hello).unwrap();
            wire.extend_from_slice(&hello);
        }
        let (mut up, mut out) = (BytesMut::new(), BytesMut::new());
        for chunk in chunks {
            wire.extend_from_slice(&chunk);
            if layer.read(&mut wire, &mut up, &mut out).is_err() {
                break;
            }
        }
    }
}
