//! The bridge's end on the remote broker: a TCP (or TLS, rustls)
//! connection, and the client side of CONNECT and SUBSCRIBE on it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use culex_codec::packet::{Connect, Subscribe, Will};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    check_frame, decode_packet, Packet, PacketId, Properties, QoS, ReasonCode, Seq,
    SubscriptionOptions,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::config::bridge::{Bridge, BridgeTls};

/// How long connecting, CONNACK and SUBACK may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the link to the remote broker failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum RemoteError {
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The remote refused the CONNECT.
    #[error("connection refused: {0}")]
    Refused(String),
    /// The remote sent something that is not MQTT, or not in order.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// No answer in time.
    #[error("no answer in time")]
    Timeout,
}

/// The byte stream to the remote broker.
pub(super) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A link to the remote broker, connected and subscribed.
pub(super) struct Remote {
    pub stream: Stream,
    /// Bytes read and not yet handled.
    pub input: BytesMut,
    /// Whether the remote took the bridge bit (`try_private`).
    pub private: bool,
}

impl Remote {
    /// Connects to `host:port`, sends CONNECT (with the bridge bit when
    /// `private`), waits for CONNACK, subscribes to what comes in.
    pub async fn connect(
        bridge: &Bridge,
        tls: Option<&Arc<rustls::ClientConfig>>,
        (host, port): (&str, u16),
        private: bool,
    ) -> Result<Remote, RemoteError> {
        let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| RemoteError::Timeout)??;
        let _ = tcp.set_nodelay(true);
        let stream = match tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| RemoteError::Tls(e.to_string()))?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
                    .await
                    .map_err(|_| RemoteError::Timeout)??;
                Stream::Tls(Box::new(tls))
            }
            None => Stream::Tcp(tcp),
        };
        let mut remote = Remote {
            stream,
            input: BytesMut::new(),
            private,
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, remote.handshake(bridge))
            .await
            .map_err(|_| RemoteError::Timeout)??;
        Ok(remote)
    }

    async fn handshake(&mut self, bridge: &Bridge) -> Result<(), RemoteError> {
        let notify = bridge.notifications && !bridge.notifications_local_only;
        let will = notify.then(|| Will {
            topic: TopicName::new(&bridge.notification_topic).unwrap_or(TopicName::EMPTY),
            payload: b"0",
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: Properties::default(),
        });
        let connect = Packet::Connect(Connect {
            bridge: self.private && !bridge.protocol.is_v5(),
            protocol: bridge.protocol,
            clean_start: bridge.clean_session,
            keep_alive: bridge.keepalive,
            client_id: &bridge.remote_client_id,
            will: will.filter(|w| !w.topic.is_empty()),
            username: bridge.remote_username.as_deref(),
            password: bridge.remote_password.as_deref().map(str::as_bytes),
            properties: Properties {
                session_expiry_interval: (!bridge.clean_session && bridge.protocol.is_v5())
                    .then_some(u32::MAX),
                ..Properties::default()
            },
        });
        self.send(&connect, bridge).await?;
        let frame = self.next_frame().await?;
        match decode_packet(&frame, bridge.protocol) {
            Ok(Packet::ConnAck(a)) if a.reason == ReasonCode::Success => {}
            Ok(Packet::ConnAck(a)) => return Err(RemoteError::Refused(refusal(a.reason, bridge))),
            other => {
                return Err(RemoteError::Protocol(format!(
                    "expected CONNACK, got {other:?}"
                )))
            }
        }
        self.subscribe(bridge).await
    }

    async fn subscribe(&mut self, bridge: &Bridge) -> Result<(), RemoteError> {
        let filters = bridge.subscriptions(false);
        let list: Vec<(TopicFilter<'_>, SubscriptionOptions)> = filters
            .iter()
            .filter_map(|(f, o)| TopicFilter::new(f).ok().map(|f| (f, *o)))
            .collect();
        let Some(id) = PacketId::new(1) else {
            return Ok(());
        };
        if list.is_empty() {
            return Ok(());
        }
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: Seq::Items(&list),
        });
        self.send(&subscribe, bridge).await?;
        // The remote may already be delivering: everything before the
        // SUBACK stays in `input` for the relay.
        let mut pending = BytesMut::new();
        loop {
            let frame = self.next_frame().await?;
            match decode_packet(&frame, bridge.protocol) {
                Ok(Packet::SubAck(_)) => break,
                Ok(_) => pending.extend_from_slice(&frame),
                Err(e) => return Err(RemoteError::Protocol(e.to_string())),
            }
        }
        pending.extend_from_slice(&self.input);
        self.input = pending;
        Ok(())
    }

    /// Once connected: the bridge's state, `1`, retained on the remote
    /// (`notifications`; its will says `0`).
    pub async fn announce(remote: &mut Remote, bridge: &Bridge) -> Result<(), RemoteError> {
        match state_notification(bridge, b"1") {
            Some(state) => remote.send(&state, bridge).await,
            None => Ok(()),
        }
    }

    /// At shutdown: `0` on the remote (a normal DISCONNECT sends no will),
    /// then DISCONNECT.
    pub async fn goodbye(remote: &mut Remote, bridge: &Bridge) {
        if let Some(state) = state_notification(bridge, b"0") {
            let _ = remote.send(&state, bridge).await;
        }
        let disconnect = Packet::Disconnect(culex_codec::packet::Disconnect {
            reason: ReasonCode::Success,
            properties: Properties::default(),
        });
        let _ = remote.send(&disconnect, bridge).await;
        let _ = remote.stream.shutdown().await;
    }

    /// Encodes and writes one packet.
    pub async fn send(&mut self, packet: &Packet<'_>, bridge: &Bridge) -> Result<(), RemoteError> {
        let mut out = Vec::new();
        packet
            .encode(bridge.protocol, &mut out)
            .map_err(|e| RemoteError::Protocol(e.to_string()))?;
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next complete frame, reading as needed.
    async fn next_frame(&mut self) -> Result<Bytes, RemoteError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(frame);
            }
            self.input.reserve(4096);
            if self.stream.read_buf(&mut self.input).await? == 0 {
                return Err(RemoteError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    /// The next complete frame already read, if any.
    pub fn take_frame(&mut self) -> Result<Option<Bytes>, RemoteError> {
        match check_frame(&self.input, u32::MAX) {
            Ok(Some(len)) => Ok(Some(self.input.split_to(len).freeze())),
            Ok(None) => Ok(None),
            Err(e) => Err(RemoteError::Protocol(e.to_string())),
        }
    }
}

/// What a refused CONNACK says, as mosquitto words it.
fn refusal(reason: ReasonCode, bridge: &Bridge) -> String {
    let code = if bridge.protocol.is_v5() {
        reason as u8
    } else {
        reason.to_v3_connack()
    };
    let text = match reason {
        ReasonCode::UnsupportedProtocolVersion => "unacceptable protocol version",
        ReasonCode::ClientIdentifierNotValid => "identifier rejected",
        ReasonCode::BadUserNameOrPassword => "bad user name or password",
        ReasonCode::NotAuthorized => "not authorised",
        _ => "server unavailable",
    };
    format!("{text} ({code})")
}

/// The rustls client configuration of a bridge's `bridge_cafile` and
/// friends.
pub(super) fn tls_config(tls: &BridgeTls) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let mut files: Vec<std::path::PathBuf> = tls.cafile.iter().cloned().collect();
    if let Some(dir) = &tls.capath {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        files.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file()),
        );
    }
    for file in &files {
        for cert in read_certs(file)? {
            // A file of capath that is no certificate is skipped.
            let _ = roots.add(cert);
        }
    }
    let roots = Arc::new(roots);
    if roots.is_empty() {
        return Err("no CA certificate (bridge_cafile or bridge_capath)".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.min_tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots.clone());
    let mut config = match (&tls.certfile, &tls.keyfile) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = read_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("bridge_certfile and bridge_keyfile go together".into()),
    };
    if let Some(alpn) = &tls.alpn {
        config.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    if tls.insecure {
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            roots,
            config.crypto_provider().clone(),
        )
        .build()
        .map_err(|e| e.to_string())?;
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(insecure::NoNameCheck(verifier)));
    }
    Ok(Arc::new(config))
}

fn read_certs(
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    rustls_pemfile::certs(&mut reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn read_key(path: &std::path::Path) -> Result<rustls::pki_types::PrivateKeyDer<'static>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = std::io::BufReader::new(file);
    rustls_pemfile::private_key(&mut reader)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .ok_or_else(|| format!("{}: no private key", path.display()))
}

/// The retained PUBLISH of the bridge's state (`1` or `0`) on the remote,
/// when notifications go there.
fn state_notification<'a>(bridge: &'a Bridge, state: &'a [u8]) -> Option<Packet<'a>> {
    if !bridge.notifications || bridge.notifications_local_only {
        return None;
    }
    let topic = TopicName::new(&bridge.notification_topic).ok()?;
    Some(Packet::Publish(culex_codec::packet::Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: true,
        topic,
        packet_id: None,
        properties: Properties::default(),
        payload: state,
    }))
}

/// `bridge_insecure true`: the remote's certificate must still chain to a
/// trusted CA, but its name is not checked.
mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub struct NoNameCheck(pub Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for NoNameCheck {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self
                .0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}
