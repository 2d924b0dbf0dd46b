//! HTTPS for the admin listener: a rustls server configuration from the
//! `certfile` and `keyfile` given after `http_listener`.
//!
//! Built here with rustls directly so that the admin side does not wait
//! for the MQTT TLS listeners; once those land (crate `culex-transport`
//! and its config builder), this should become a call to that builder.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::error::AdminError;

/// The server configuration for `certfile` (a PEM chain, leaf first) and
/// `keyfile` (a PEM private key), offering HTTP/1.1 over ALPN.
pub(crate) fn server_config(
    certfile: &Path,
    keyfile: &Path,
) -> Result<Arc<ServerConfig>, AdminError> {
    let certs = read_certs(certfile)?;
    let key = read_key(keyfile)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| AdminError::Tls(format!("{}: {e}", certfile.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, AdminError> {
    let file = open(path)?;
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut std::io::BufReader::new(file))
            .collect::<Result<_, _>>()
            .map_err(|e| AdminError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(AdminError::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, AdminError> {
    let file = open(path)?;
    rustls_pemfile::private_key(&mut std::io::BufReader::new(file))
        .map_err(|e| AdminError::Tls(format!("{}: {e}", path.display())))?
        .ok_or_else(|| AdminError::Tls(format!("{}: no private key found", path.display())))
}

fn open(path: &Path) -> Result<std::fs::File, AdminError> {
    std::fs::File::open(path)
        .map_err(|e| AdminError::Tls(format!("unable to open {}: {e}", path.display())))
}
