//! TLS on rustls, server side, with mosquitto's listener options.
//!
//! [`TlsOptions`] are the options as written (`certfile`, `cafile`,
//! `require_certificate`, …); [`TlsOptions::server_config`] reads the files
//! and builds a rustls `ServerConfig` with the `ring` provider.
//! [`TlsAcceptor`] holds the config a listener uses and swaps it on reload;
//! [`TlsAcceptor::accept`] starts a [`TlsLayer`] for a new connection.
//!
//! The layer is rustls's unbuffered server connection: records are
//! decrypted from the caller's buffer, and what rustls must send is written
//! straight into the caller's output buffer. So an idle layer holds rustls's
//! session state (keys, the peer's certificates) and no I/O buffers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{UnbufferedServerConnection, WebPkiClientVerifier};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError};
use rustls::{RootCertStore, ServerConfig};
use x509_cert::der::Decode;

use crate::ciphers::{self, CipherError};

/// The lowest TLS version a listener accepts (`tls_version`; mosquitto 2
/// reads it as a minimum). rustls has no TLS 1.1 or older.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Which part of a client certificate becomes the MQTT username.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateField {
    /// `use_identity_as_username`: the subject's first CN.
    CommonName,
    /// `use_subject_as_username`: the whole subject,
    /// `CN=client,O=Example,C=GB` (RFC 4514 order, as mosquitto prints it).
    Subject,
}

impl CertificateField {
    /// The username this field gives for `identity`, if it has one.
    pub fn username(self, identity: &PeerIdentity) -> Option<&str> {
        match self {
            CertificateField::CommonName => identity.common_name.as_deref(),
            CertificateField::Subject => Some(&identity.subject),
        }
    }
}

/// A listener's TLS options as mosquitto.conf names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `certfile`: the server's certificate chain (PEM).
    pub certfile: PathBuf,
    /// `keyfile`: its private key (PEM, not encrypted).
    pub keyfile: PathBuf,
    /// `cafile`: CA certificates trusted for client certificates.
    pub cafile: Option<PathBuf>,
    /// `capath`: a directory of such CA certificates.
    pub capath: Option<PathBuf>,
    /// `crlfile`: revoked client certificates (PEM CRLs).
    pub crlfile: Option<PathBuf>,
    /// `require_certificate`: clients must present a valid certificate.
    pub require_certificate: bool,
    /// `tls_version`.
    pub min_version: TlsVersion,
    /// `ciphers` (TLS 1.2, OpenSSL syntax); rustls's defaults when `None`.
    pub ciphers: Option<String>,
    /// `ciphers_tls1.3`; rustls's defaults when `None`.
    pub ciphers_tls13: Option<String>,
    /// `use_identity_as_username` / `use_subject_as_username`.
    pub username_from: Option<CertificateField>,
}

impl TlsOptions {
    /// Options with a certificate and key and mosquitto's defaults for the rest.
    pub fn new(certfile: impl Into<PathBuf>, keyfile: impl Into<PathBuf>) -> TlsOptions {
        TlsOptions {
            certfile: certfile.into(),
            keyfile: keyfile.into(),
            cafile: None,
            capath: None,
            crlfile: None,
            require_certificate: false,
            min_version: TlsVersion::default(),
            ciphers: None,
            ciphers_tls13: None,
            username_from: None,
        }
    }

    /// Reads every file and builds the rustls config. Clients are asked for
    /// a certificate only with `require_certificate` (as mosquitto does);
    /// then `crlfile` is checked for the client's own certificate.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsConfigError> {
        let chain = load_certificates(&self.certfile)?;
        let key = load_private_key(&self.keyfile)?;
        let mut provider = rustls::crypto::ring::default_provider();
        let (default12, default13): (Vec<_>, Vec<_>) = provider
            .cipher_suites
            .iter()
            .partition(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)));
        let tls12 = match &self.ciphers {
            Some(list) => {
                ciphers::parse_tls12(list)
                    .map_err(|source| TlsConfigError::Ciphers {
                        option: "ciphers",
                        source,
                    })?
                    .suites
            }
            None => default12,
        };
        let tls13 = match &self.ciphers_tls13 {
            Some(list) => {
                ciphers::parse_tls13(list)
                    .map_err(|source| TlsConfigError::Ciphers {
                        option: "ciphers_tls1.3",
                        source,
                    })?
                    .suites
            }
            None => default13,
        };
        provider.cipher_suites = tls13.into_iter().chain(tls12).collect();
        let provider = Arc::new(provider);
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(TlsConfigError::Rustls)?;
        let builder = if self.require_certificate {
            let roots = load_roots(self.cafile.as_deref(), self.capath.as_deref())?;
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    // OpenSSL's X509_V_FLAG_CRL_CHECK, as mosquitto sets it: the
                    // client's own certificate, and refused when its CA has no CRL.
                    .only_check_end_entity_revocation();
            if let Some(path) = &self.crlfile {
                verifier = verifier.with_crls(load_crls(path)?);
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsConfigError::Verifier(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config =
            builder
                .with_single_cert(chain, key)
                .map_err(|source| TlsConfigError::KeyPair {
                    certfile: self.certfile.clone(),
                    keyfile: self.keyfile.clone(),
                    source,
                })?;
        // Resumption by stateless tickets (as OpenSSL does by default): the
        // server keeps nothing per session, where rustls's default cache
        // would hold two entries for every TLS 1.3 connection.
        config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(TlsConfigError::Rustls)?;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

/// Why a TLS configuration cannot be built. A reload that fails with one
/// of these keeps the config that was in use.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind needed.
    #[error("{}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// `require_certificate` without `cafile` or `capath`.
    #[error("require_certificate needs cafile or capath to check client certificates against")]
    NoClientCa,
    /// A cipher list that cannot be honoured.
    #[error("{option}: {source}")]
    Ciphers {
        /// `ciphers` or `ciphers_tls1.3`.
        option: &'static str,
        /// Why.
        source: CipherError,
    },
    /// The certificate and key do not make a usable pair.
    #[error("{} and {}: {source}", certfile.display(), keyfile.display())]
    KeyPair {
        /// `certfile`.
        certfile: PathBuf,
        /// `keyfile`.
        keyfile: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The CA certificates or CRLs were refused by the verifier.
    #[error("client certificate verifier: {0}")]
    Verifier(String),
    /// rustls refused the combination of versions and cipher suites.
    #[error("{0}")]
    Rustls(rustls::Error),
}

/// The certificates of a PEM file, in order; at least one.
pub fn load_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsConfigError::Pem {
            path: path.to_path_buf(),
            reason: "no certificate in the file".to_string(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::Pem {
            path: path.to_path_buf(),
            reason: "no private key in the file (an encrypted key is not supported)".to_string(),
        },
        other => pem_error(path, other),
    })
}

/// The trusted CAs of `cafile` and of every `*.pem`/`*.crt` file (or
/// OpenSSL hash link) in `capath`.
pub fn load_roots(
    cafile: Option<&Path>,
    capath: Option<&Path>,
) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    let mut add = |path: &Path, certs: Vec<CertificateDer<'static>>| {
        for cert in certs {
            roots.add(cert).map_err(|e| TlsConfigError::Pem {
                path: path.to_path_buf(),
                reason: format!("not a usable CA certificate: {e}"),
            })?;
        }
        Ok::<(), TlsConfigError>(())
    };
    if let Some(path) = cafile {
        add(path, load_certificates(path)?)?;
    }
    if let Some(dir) = capath {
        let entries = std::fs::read_dir(dir).map_err(|source| TlsConfigError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut found = false;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let wanted = name.ends_with(".pem") || name.ends_with(".crt") || is_hash_link(&name);
            if !wanted || !path.is_file() {
                continue;
            }
            let pem = read(&path)?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pem_error(&path, e))?;
            found |= !certs.is_empty();
            add(&path, certs)?;
        }
        if !found {
            return Err(TlsConfigError::Pem {
                path: dir.to_path_buf(),
                reason: "no CA certificate in the directory".to_string(),
            });
        }
    }
    if cafile.is_none() && capath.is_none() {
        return Err(TlsConfigError::NoClientCa);
    }
    Ok(roots)
}

/// The revocation lists of a PEM file; at least one.
pub fn load_crls(
    path: &Path,
) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsConfigError> {
    let pem = read(path)?;
    let crls = CertificateRevocationListDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if crls.is_empty() {
        return Err(TlsConfigError::Pem {
            path: path.to_path_buf(),
            reason: "no certificate revocation list in the file".to_string(),
        });
    }
    Ok(crls)
}

/// `0a1b2c3d.0`: the names `openssl rehash` gives.
fn is_hash_link(name: &str) -> bool {
    match name.split_once('.') {
        Some((hash, n)) => {
            hash.len() == 8
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|source| TlsConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, error: rustls::pki_types::pem::Error) -> TlsConfigError {
    TlsConfigError::Pem {
        path: path.to_path_buf(),
        reason: format!("bad PEM: {error:?}"),
    }
}

/// The TLS config of one listener, swapped whole on reload: connections
/// accepted after a reload use the new config, those before keep theirs.
#[derive(Debug)]
pub struct TlsAcceptor {
    // A lock is right here: it is read once per accepted connection, for as
    // long as an `Arc` clone takes, and written only on SIGHUP.
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Builds the config from `options`.
    pub fn new(options: &TlsOptions) -> Result<TlsAcceptor, TlsConfigError> {
        Ok(TlsAcceptor {
            current: RwLock::new(options.server_config()?),
        })
    }

    /// Builds a new config from `options` (the files are read again) and
    /// uses it for new connections. On error the old config stays.
    pub fn reload(&self, options: &TlsOptions) -> Result<(), TlsConfigError> {
        let config = options.server_config()?;
        *self.current.write() = config;
        Ok(())
    }

    /// The config new connections get.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current.read().clone()
    }

    /// A layer for a new connection.
    pub fn accept(&self) -> Result<TlsLayer, TlsError> {
        TlsLayer::new(self.config())
    }
}

/// What the client's certificate says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The first CN of the subject, if any.
    pub common_name: Option<String>,
    /// The subject in RFC 4514 form, e.g. `CN=client one,O=culex tests,C=GB`.
    pub subject: String,
}

impl PeerIdentity {
    /// The identity in a DER certificate; `None` if it does not parse
    /// (rustls verified it already, so that would be a parser gap).
    pub fn from_der(der: &[u8]) -> Option<PeerIdentity> {
        use x509_cert::ext::pkix::name::DirectoryString;
        let cert = x509_cert::Certificate::from_der(der).ok()?;
        let subject = cert.tbs_certificate().subject();
        let common_name = match subject.common_name() {
            Ok(Some(DirectoryString::Utf8String(s))) => Some(s),
            Ok(Some(DirectoryString::PrintableString(s))) => Some(s.to_string()),
            Ok(Some(DirectoryString::TeletexString(s))) => Some(s.to_string()),
            Ok(Some(DirectoryString::BmpString(s))) => Some(s.to_string()),
            _ => None,
        };
        Some(PeerIdentity {
            common_name,
            subject: subject.to_string(),
        })
    }
}

/// What the client did wrong (or, for [`TlsError::Closed`], the caller).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The client's certificate was refused: unknown CA, expired, revoked, ….
    #[error("client certificate refused: {0}")]
    Certificate(rustls::CertificateError),
    /// No client certificate, and the listener requires one.
    #[error("the client sent no certificate, and this listener requires one")]
    NoCertificate,
    /// Nothing in common: versions, cipher suites, signature schemes.
    #[error("the client's TLS has nothing in common with this listener: {0}")]
    Incompatible(rustls::Error),
    /// Records or handshake messages that break the protocol.
    #[error("the client broke the TLS protocol: {0}")]
    Protocol(rustls::Error),
    /// The client gave up with a fatal alert.
    #[error("the client sent a fatal alert: {0:?}")]
    Alert(rustls::AlertDescription),
    /// Data after the connection was closed.
    #[error("the TLS connection is closed")]
    Closed,
    /// `write` or `close` found records that `read` has not processed (the
    /// caller's mistake: call `read` after every socket read).
    #[error("records are waiting: call read before write")]
    ReadFirst,
    /// Anything else rustls reports.
    #[error("TLS: {0}")]
    Other(rustls::Error),
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> TlsError {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(e) => TlsError::Certificate(e),
            E::NoCertificatesPresented => TlsError::NoCertificate,
            E::PeerIncompatible(_) => TlsError::Incompatible(error),
            E::AlertReceived(alert) => TlsError::Alert(alert),
            E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. }
            | E::InvalidMessage(_)
            | E::DecryptError
            | E::PeerMisbehaved(_)
            | E::PeerSentOversizedRecord => TlsError::Protocol(error),
            other => TlsError::Other(other),
        }
    }
}

/// Where a [`TlsLayer`] stands after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProgress {
    /// The handshake goes on.
    Handshaking,
    /// Application data flows.
    Open,
    /// The client sent close_notify: nothing more will arrive.
    PeerClosed,
}

/// One TLS server connection over caller-owned buffers.
///
/// Call order: [`read`](Self::read) after each socket read, with the
/// bytes read so far (complete records are consumed; an incomplete one
/// stays); it appends plaintext to `up` and handshake records, alerts and
/// tickets to `out`, which the caller sends. Once [`read`](Self::read)
/// reports [`TlsProgress::Open`], [`write`](Self::write) encrypts
/// plaintext into `out`. [`close`](Self::close) queues close_notify. After
/// an error, `out` may hold the fatal alert for the client: send it, then
/// close the socket.
pub struct TlsLayer {
    conn: UnbufferedServerConnection,
    peer_closed: bool,
    failed: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("progress", &self.progress())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Appends the application data of every record `$records` holds to
/// `$up`, counting what it consumed into `$discard`; the step that
/// follows. (A macro: rustls's `ReadTraffic` and `ReadEarlyData` share no
/// trait, and each record borrows the iterator.)
macro_rules! read_records {
    ($records:ident, $discard:ident, $up:ident) => {{
        let mut step = Step::Continue;
        while let Some(record) = $records.next_record() {
            match record {
                Ok(record) => {
                    $discard += record.discard;
                    $up.extend_from_slice(record.payload);
                }
                Err(e) => {
                    step = Step::Failed(e);
                    break;
                }
            }
        }
        step
    }};
}

enum Step {
    Continue,
    Wait,
    Failed(rustls::Error),
}

impl TlsLayer {
    /// A server connection with `config`.
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsLayer, TlsError> {
        Ok(TlsLayer {
            conn: UnbufferedServerConnection::new(config)?,
            peer_closed: false,
            failed: false,
        })
    }

    /// Where the connection stands.
    pub fn progress(&self) -> TlsProgress {
        if self.peer_closed {
            TlsProgress::PeerClosed
        } else if self.conn.is_handshaking() {
            TlsProgress::Handshaking
        } else {
            TlsProgress::Open
        }
    }

    /// The client certificate's identity, once the handshake is done and
    /// if the client sent one.
    pub fn peer_identity(&self) -> Option<PeerIdentity> {
        let cert = self.conn.peer_certificates()?.first()?;
        PeerIdentity::from_der(cert.as_ref())
    }

    /// The negotiated protocol version and cipher suite, for logs.
    pub fn negotiated(&self) -> Option<(rustls::ProtocolVersion, rustls::CipherSuite)> {
        Some((
            self.conn.protocol_version()?,
            self.conn.negotiated_cipher_suite()?.suite(),
        ))
    }

    /// Processes the records at the front of `input` (see the type's docs).
    pub fn read(
        &mut self,
        input: &mut BytesMut,
        up: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<TlsProgress, TlsError> {
        if self.failed {
            return Err(TlsError::Closed);
        }
        loop {
            let status = self.conn.process_tls_records(input);
            let mut discard = status.discard;
            let step = match status.state {
                Err(e) => Step::Failed(e),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    read_records!(traffic, discard, up)
                }
                // Early data is never enabled; should rustls offer some, it
                // is read like any other data.
                Ok(ConnectionState::ReadEarlyData(mut early)) => {
                    read_records!(early, discard, up)
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    match encode_record(out, 1024, &mut encode) {
                        Ok(()) => Step::Continue,
                        Err(()) => {
                            Step::Failed(rustls::Error::General("encoding a record failed".into()))
                        }
                    }
                }
                // The encoded records are in `out`: the caller sends them.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Step::Continue
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Step::Continue
                }
                Ok(ConnectionState::Closed) => {
                    self.peer_closed = true;
                    Step::Wait
                }
                // Blocked on more input, or idle and established.
                Ok(_) => Step::Wait,
            };
            input.advance(discard.min(input.len()));
            match step {
                Step::Continue => {}
                Step::Wait => return Ok(self.progress()),
                Step::Failed(error) => {
                    self.fail(input, out);
                    input.clear();
                    return Err(error.into());
                }
            }
        }
    }

    /// Encrypts all of `plain` into `out` and empties `plain`. Before the
    /// handshake is done nothing happens and `plain` is kept. `input` is the
    /// buffer [`read`](Self::read) consumes from: rustls keeps positions in
    /// it between calls, so every call gets it (this one reads nothing).
    pub fn write(
        &mut self,
        input: &mut BytesMut,
        plain: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<(), TlsError> {
        if plain.is_empty() {
            return Ok(());
        }
        if self.failed {
            return Err(TlsError::Closed);
        }
        loop {
            let status = self.conn.process_tls_records(input);
            let discard = status.discard;
            let step = match status.state {
                Err(e) => Step::Failed(e),
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    // Each record adds a header, a tag and a content type.
                    let guess = plain.len() + 32 * (plain.len() / 16384 + 1);
                    match fill(out, guess, |buf| match traffic.encrypt(plain, buf) {
                        Ok(n) => Ok(n),
                        Err(EncryptError::InsufficientSize(e)) => Err(Some(e.required_size)),
                        Err(_) => Err(None),
                    }) {
                        Ok(()) => {
                            plain.clear();
                            return Ok(());
                        }
                        Err(()) => Step::Failed(rustls::Error::EncryptError),
                    }
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    match encode_record(out, 1024, &mut encode) {
                        Ok(()) => Step::Continue,
                        Err(()) => {
                            Step::Failed(rustls::Error::General("encoding a record failed".into()))
                        }
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Step::Continue
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    Step::Continue
                }
                Ok(ConnectionState::Closed) => Step::Failed(rustls::Error::General(String::new())),
                Ok(ConnectionState::BlockedHandshake) => Step::Wait,
                // Records in `input` that `read` has not seen.
                Ok(_) => return Err(TlsError::ReadFirst),
            };
            input.advance(discard.min(input.len()));
            match step {
                Step::Continue => {}
                Step::Wait => return Ok(()),
                Step::Failed(rustls::Error::General(text)) if text.is_empty() => {
                    return Err(TlsError::Closed)
                }
                Step::Failed(error) => {
                    self.fail(input, out);
                    return Err(error.into());
                }
            }
        }
    }

    /// Queues close_notify into `out` (nothing before the handshake is
    /// done). `input` as for [`write`](Self::write).
    pub fn close(&mut self, input: &mut BytesMut, out: &mut BytesMut) {
        if self.failed {
            return;
        }
        loop {
            let status = self.conn.process_tls_records(input);
            let discard = status.discard;
            let done = match status.state {
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    let _ = fill(out, 64, |buf| match traffic.queue_close_notify(buf) {
                        Ok(n) => Ok(n),
                        Err(EncryptError::InsufficientSize(e)) => Err(Some(e.required_size)),
                        Err(_) => Err(None),
                    });
                    true
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    encode_record(out, 1024, &mut encode).is_err()
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    false
                }
                Ok(ConnectionState::PeerClosed) => {
                    self.peer_closed = true;
                    false
                }
                _ => true,
            };
            input.advance(discard.min(input.len()));
            if done {
                return;
            }
        }
    }

    /// After an error: queue what rustls still has to say (the fatal
    /// alert). Only queued messages are taken: processing `input` again
    /// would fail again.
    fn fail(&mut self, input: &mut BytesMut, out: &mut BytesMut) {
        self.failed = true;
        while self.conn.wants_write() {
            let status = self.conn.process_tls_records(input);
            let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state else {
                return;
            };
            let encoded = encode_record(out, 64, &mut encode);
            if encoded.is_err() {
                return;
            }
        }
    }
}

/// Appends the record rustls has ready to `out` (see [`fill`]).
fn encode_record(
    out: &mut BytesMut,
    guess: usize,
    encode: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::server::ServerConnectionData>,
) -> Result<(), ()> {
    fill(out, guess, |buf| match encode.encode(buf) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(e)) => Err(Some(e.required_size)),
        Err(_) => Err(None),
    })
}

/// Appends to `out` what `write` puts into a slice: first `guess` bytes of
/// room, then as many as `write` says it needs (`Err(Some(n))`).
fn fill(
    out: &mut BytesMut,
    guess: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), ()> {
    let start = out.len();
    let mut room = guess;
    loop {
        out.resize(start + room, 0);
        let result = match out.get_mut(start..) {
            Some(buf) => write(buf),
            None => Err(None),
        };
        match result {
            Ok(written) => {
                out.truncate(start + written);
                return Ok(());
            }
            Err(Some(needed)) if needed > room => room = needed,
            Err(_) => {
                out.truncate(start);
                return Err(());
            }
        }
    }
}

#[cfg(test)]
mod tests;
