//! TLS, WebSocket, unix socket and PROXY protocol listeners, end to end:
//! an in-process broker configured from mosquitto.conf text, certificates
//! made by the test kit, and real clients (mosquitto's, paho, MQTT.js in
//! Chromium, rustls, raw sockets).

mod bad_input;
mod browser;
mod clients;
mod proxy;
mod tls;
mod websocket;

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use culex_broker::config::Config;
use culex_broker::testing::raw::{Raw, Read, Wire};
use culex_codec::Protocol;
use culex_testkit::pki::{Pki, PkiFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// A set of test certificates in a scratch directory.
pub struct Certs {
    pub pki: Pki,
    pub files: PkiFiles,
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let files = pki.write_to(dir.path());
        Certs { pki, files, dir }
    }

    /// `{cert}`, `{key}`, `{ca}`, `{crl}` and `{dir}` in `text` replaced by paths.
    pub fn fill(&self, text: &str) -> String {
        let f = &self.files;
        text.replace("{cert}", &show(&f.server.0))
            .replace("{key}", &show(&f.server.1))
            .replace("{ca}", &show(&f.ca))
            .replace("{crl}", &show(&f.crl))
            .replace("{dir}", &show(self.dir.path()))
    }
}

pub fn show(path: &Path) -> String {
    path.display().to_string()
}

/// mosquitto.conf text as a `Config` (ports 0: any free port).
pub fn config(text: &str) -> Config {
    Config::parse(text, Path::new("listeners.conf"), &[]).unwrap()
}

enum Command {
    Reload(mpsc::Sender<Result<(), String>>),
    Parked(mpsc::Sender<usize>),
}

/// An in-process broker on its own two-worker runtime, shut down on drop.
pub struct Broker {
    addrs: Vec<SocketAddr>,
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Broker {
    pub fn start(text: &str) -> Broker {
        Broker::start_with(config(text))
    }

    pub fn start_with(config: Config) -> Broker {
        // Log lines are captured from the first broker of the test binary on.
        crate::logs::logs();
        let (addrs_tx, addrs_rx) = mpsc::channel();
        let (commands, commands_rx) = mpsc::channel::<Command>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let broker = culex_broker::Broker::start(config).await.unwrap();
                addrs_tx.send(broker.local_addrs().to_vec()).unwrap();
                // Commands come from a sync test thread: wait for them off the workers.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                std::thread::spawn(move || {
                    while let Ok(command) = commands_rx.recv() {
                        if tx.send(command).is_err() {
                            return;
                        }
                    }
                });
                while let Some(command) = rx.recv().await {
                    match command {
                        Command::Reload(reply) => {
                            let result = broker.reload_certificates().map_err(|e| e.to_string());
                            let _ = reply.send(result);
                        }
                        Command::Parked(reply) => {
                            let _ = reply.send(broker.parked_connections());
                        }
                    }
                }
                broker.shutdown().await;
            });
        });
        let addrs = addrs_rx.recv().expect("the broker started");
        Broker {
            addrs,
            commands: Some(commands),
            thread: Some(thread),
        }
    }

    /// The port of the `i`th TCP listen socket, in the file's order.
    pub fn port(&self, i: usize) -> u16 {
        self.addrs[i].port()
    }

    /// SIGHUP's certificate reload.
    pub fn reload_certificates(&self) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Reload(tx));
        rx.recv().unwrap()
    }

    /// Connections parked outside the runtime now.
    pub fn parked(&self) -> usize {
        let (tx, rx) = mpsc::channel();
        self.send(Command::Parked(tx));
        rx.recv().unwrap()
    }

    fn send(&self, command: Command) {
        self.commands.as_ref().unwrap().send(command).unwrap();
    }

    /// Shuts the broker down now and waits for it.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// A rustls client config that trusts `ca`, with a client certificate if given.
pub fn client_tls(ca: &Path, identity: Option<(&PathBuf, &PathBuf)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_file(cert).unwrap()],
                PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TCP connection to 127.0.0.1:`port` with its TLS handshake done.
pub fn tls_connect(port: u16, config: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_nodelay(true)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The leaf certificate the server presented.
pub fn server_certificate(stream: &TlsStream) -> Vec<u8> {
    stream.conn.peer_certificates().unwrap()[0].to_vec()
}

/// A certificate PEM as DER.
pub fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A byte stream with a read timeout: TCP, unix, or TLS over TCP.
pub trait Stream: std::io::Read + std::io::Write {
    fn set_timeout(&self, wait: Duration);
}

impl Stream for TcpStream {
    fn set_timeout(&self, wait: Duration) {
        self.set_read_timeout(Some(wait)).unwrap();
    }
}

impl Stream for std::os::unix::net::UnixStream {
    fn set_timeout(&self, wait: Duration) {
        self.set_read_timeout(Some(wait)).unwrap();
    }
}

impl Stream for TlsStream {
    fn set_timeout(&self, wait: Duration) {
        self.sock.set_read_timeout(Some(wait)).unwrap();
    }
}

/// MQTT straight over a [`Stream`].
pub struct Direct<S>(pub S);

impl<S: Stream> Wire for Direct<S> {
    fn open(_: u16) -> Self {
        unreachable!("opened by the test")
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        self.0
            .write_all(bytes)
            .and_then(|()| self.0.flush())
            .is_ok()
    }

    fn read(&mut self, wait: Duration) -> Read {
        read_some(&mut self.0, wait)
    }
}

fn read_some<S: Stream>(stream: &mut S, wait: Duration) -> Read {
    if wait.is_zero() {
        return Read::Nothing;
    }
    stream.set_timeout(wait);
    let mut tmp = [0u8; 16384];
    match stream.read(&mut tmp) {
        Ok(0) => Read::Closed,
        Ok(n) => Read::Bytes(tmp[..n].to_vec()),
        Err(e)
            if e.kind() == std::io::ErrorKind::WouldBlock
                || e.kind() == std::io::ErrorKind::TimedOut =>
        {
            Read::Nothing
        }
        Err(_) => Read::Closed,
    }
}

/// MQTT in WebSocket binary frames over a [`Stream`], as a browser sends
/// them (masked); what the broker sends is unframed again.
pub struct Ws<S> {
    pub stream: S,
    frames: Vec<u8>,
    /// The close code the broker sent, once it did.
    pub close_code: Option<u16>,
}

/// The upgrade request of a WebSocket client offering `mqtt`.
pub const UPGRADE: &str = "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

impl<S: Stream> Ws<S> {
    /// Upgrades `stream`; panics unless the broker answers 101 with `mqtt`.
    pub fn upgrade(mut stream: S) -> Ws<S> {
        stream.write_all(UPGRADE.as_bytes()).unwrap();
        stream.flush().unwrap();
        let head = read_head(&mut stream);
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(head.contains("Sec-WebSocket-Protocol: mqtt\r\n"), "{head}");
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        Ws {
            stream,
            frames: Vec::new(),
            close_code: None,
        }
    }

    /// Sends one masked frame.
    pub fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> bool {
        self.stream.write_all(&frame(opcode, payload)).is_ok() && self.stream.flush().is_ok()
    }
}

/// A masked client frame, final.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads an HTTP response head (up to the blank line), byte by byte.
pub fn read_head<S: std::io::Read>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

impl<S: Stream> Wire for Ws<S> {
    fn open(_: u16) -> Self {
        unreachable!("opened by the test")
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        self.send_frame(0x2, bytes)
    }

    fn read(&mut self, wait: Duration) -> Read {
        let deadline = std::time::Instant::now() + wait;
        loop {
            // Whole frames first: binary payloads go up, a close ends it.
            if let Some((opcode, payload, len)) = server_frame(&self.frames) {
                self.frames.drain(..len);
                match opcode {
                    0x2 | 0x0 => return Read::Bytes(payload),
                    0x8 => {
                        self.close_code =
                            payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                        return Read::Closed;
                    }
                    _ => continue,
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match read_some(&mut self.stream, left) {
                Read::Bytes(b) => self.frames.extend_from_slice(&b),
                other => return other,
            }
        }
    }
}

/// A whole unmasked server frame at the front of `buf`: opcode, payload
/// and the frame's length.
fn server_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "server frames are not masked");
    let (len, at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    Some((b0 & 0x0f, payload, at + len))
}

/// A raw MQTT client over TLS to `port`, connected as `client_id`.
pub fn tls_client(
    port: u16,
    config: &Arc<rustls::ClientConfig>,
    client_id: &str,
) -> Raw<Direct<TlsStream>> {
    let stream = tls_connect(port, config).unwrap();
    connected(Direct(stream), client_id)
}

/// `wire` with a clean 3.1.1 session as `client_id`, which must be accepted.
pub fn connected<W: Wire>(wire: W, client_id: &str) -> Raw<W> {
    let mut client = Raw::over(wire, Protocol::V3_1_1);
    let (_, reason) = client.handshake(culex_broker::testing::raw::ConnectOpts {
        client_id,
        ..Default::default()
    });
    assert_eq!(reason, culex_codec::ReasonCode::Success, "{client_id}");
    client
}

/// Publishes on `from` until `to` (subscribed to `topic`) receives it:
/// returns the payload received.
pub fn round_trip<A: Wire, B: Wire>(from: &mut Raw<A>, to: &mut Raw<B>, topic: &str) -> Vec<u8> {
    let payload = format!("hello {topic}");
    from.publish(
        topic,
        payload.as_bytes(),
        culex_codec::QoS::AtMostOnce,
        false,
        0,
    );
    let got = to.recv().publish();
    assert_eq!(got.topic, topic);
    got.payload
}

/// Waits (3 s at most) for a log line that contains every one of `parts`;
/// panics listing the lines that contain the first.
pub fn expect_log(parts: &[&str]) -> String {
    let logs = crate::logs::logs();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let found = logs
            .lock()
            .iter()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .cloned();
        if let Some(line) = found {
            return line;
        }
        if std::time::Instant::now() >= deadline {
            let seen: Vec<String> = logs
                .lock()
                .iter()
                .filter(|l| l.contains(parts[0]))
                .cloned()
                .collect();
            panic!("no line with {parts:?}; seen:\n{}", seen.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `mosquitto_sub ARGS -C 1 -W 8` and publishes with `mosquitto_pub
/// PUB_ARGS` until it has received a message: its output.
pub fn sub_sees_pub(sub_args: &[&str], pub_args: &[&[&str]]) -> String {
    use culex_testkit::{run_with_timeout, tool, ChildGuard};
    use std::process::{Command, Stdio};
    let mut sub = ChildGuard(
        Command::new(tool("mosquitto_sub"))
            .args(sub_args)
            .args(["-C", "1", "-W", "8"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for _ in 0..40 {
        for args in pub_args {
            let out = run_with_timeout(
                Command::new(tool("mosquitto_pub")).args(*args),
                Duration::from_secs(5),
            );
            assert!(
                out.status.success(),
                "mosquitto_pub {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if let Ok(Some(status)) = sub.0.try_wait() {
            let mut text = String::new();
            sub.0
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            let mut errors = String::new();
            sub.0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut errors)
                .unwrap();
            assert!(status.success(), "mosquitto_sub: {status}: {errors}");
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("mosquitto_sub received nothing");
}
