//! What an idle connection's layers cost: their size, and the heap they
//! keep once the handshake is done and the buffers are empty. An idle
//! connection is parked with its stack, so this is the per-connection
//! price of TLS and WebSocket on top of a plain connection.
//!
//! Run with `--nocapture` to see the figures.

use std::io::Write;
use std::mem::size_of;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use culex_testkit::pki::{Identity, Pki};
use culex_transport::tls::{TlsLayer, TlsOptions};
use culex_transport::websocket::WebSocketLayer;
use culex_transport::{Acceptor, Progress, Stack, TransportOptions, WebSocketOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::ClientConnection;

const UPGRADE: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

fn client(pki: &Pki, identity: Option<&Identity>) -> ClientConnection {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(id.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
}

/// Handshakes (and upgrades, with WebSocket) a fresh stack against a client,
/// then drops everything but the stack; returns it and the heap bytes it
/// still holds.
fn idle_stack(
    acceptor: &Acceptor,
    pki: &Pki,
    identity: Option<&Identity>,
    websocket: bool,
) -> (Stack, i64) {
    let mut kept = None;
    let info = allocation_counter::measure(|| {
        let now = Instant::now();
        let mut stack = acceptor.start(now).unwrap().unwrap();
        let mut client = client(pki, identity);
        let (mut wire_in, mut plain_in, mut wire_out) =
            (BytesMut::new(), BytesMut::new(), BytesMut::new());
        if websocket {
            client.writer().write_all(UPGRADE).unwrap();
        }
        let mut progress = Progress::Handshaking;
        for _ in 0..10 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            wire_in.extend_from_slice(&to_server);
            progress = stack
                .read(now, &mut wire_in, &mut plain_in, &mut wire_out)
                .unwrap();
            let out = wire_out.split();
            let mut from_server = &out[..];
            while !from_server.is_empty() {
                client.read_tls(&mut from_server).unwrap();
                client.process_new_packets().unwrap();
            }
            if to_server.is_empty() && out.is_empty() {
                break;
            }
        }
        assert_eq!(progress, Progress::Open);
        assert!(stack.is_idle() && wire_in.is_empty());
        kept = Some(stack);
    });
    (kept.unwrap(), info.bytes_current)
}

#[test]
fn idle_layers_hold_no_buffers() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let files = pki.write_to(dir.path());
    let tls = TlsOptions::new(&files.server.0, &files.server.1);
    let mtls = TlsOptions {
        cafile: Some(files.ca.clone()),
        require_certificate: true,
        ..tls.clone()
    };
    let acceptor = |tls: Option<&TlsOptions>, websockets: bool| {
        let options = TransportOptions {
            tls: tls.cloned(),
            websockets: websockets.then(WebSocketOptions::default),
            ..TransportOptions::default()
        };
        Acceptor::new(&options).unwrap()
    };

    // WebSocket alone: no heap at all.
    let ws = acceptor(None, true);
    let mut kept = None;
    let info = allocation_counter::measure(|| {
        let mut stack = ws.start(Instant::now()).unwrap().unwrap();
        let (mut wire_in, mut plain_in, mut wire_out) =
            (BytesMut::from(UPGRADE), BytesMut::new(), BytesMut::new());
        assert_eq!(
            stack
                .read(Instant::now(), &mut wire_in, &mut plain_in, &mut wire_out)
                .unwrap(),
            Progress::Open
        );
        drop((wire_in, plain_in, wire_out));
        kept = Some(stack);
    });
    assert_eq!(
        info.bytes_current, 0,
        "an idle WebSocket stack holds no heap"
    );

    let (_tls_stack, tls_heap) = idle_stack(&acceptor(Some(&tls), false), &pki, None, false);
    let (_mtls_stack, mtls_heap) = idle_stack(
        &acceptor(Some(&mtls), false),
        &pki,
        Some(&pki.client),
        false,
    );
    let (_wss_stack, wss_heap) = idle_stack(&acceptor(Some(&tls), true), &pki, None, true);
    eprintln!(
        "size_of: Stack {} B, TlsLayer {} B, WebSocketLayer {} B\n\
         heap of an idle stack: WebSocket 0 B, TLS 1.3 {tls_heap} B, \
         TLS 1.3 with a client certificate {mtls_heap} B, WebSocket over TLS {wss_heap} B",
        size_of::<Stack>(),
        size_of::<TlsLayer>(),
        size_of::<WebSocketLayer>(),
    );
    // The boxed layer, rustls's session state (keys, the key schedule) and
    // the peer's certificate chain; no record buffers (one would be 4 KiB or
    // more). The bounds catch a buffer creeping in.
    assert!(tls_heap < 4096, "idle TLS holds {tls_heap} B");
    assert!(
        wss_heap < tls_heap + 512,
        "WebSocket over TLS holds {wss_heap} B"
    );
    assert!(mtls_heap < tls_heap + 3072, "idle mTLS holds {mtls_heap} B");
    drop(kept);
}
