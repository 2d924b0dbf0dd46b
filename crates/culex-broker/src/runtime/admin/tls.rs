//! HTTPS for the admin listener: the MQTT listeners' TLS builder
//! (`culex-transport`) with the `certfile` and `keyfile` given after
//! `http_listener`, offering HTTP/1.1 over ALPN.

use std::path::Path;
use std::sync::Arc;

use culex_transport::TlsOptions;
use rustls::ServerConfig;

use super::error::AdminError;

/// The server configuration for `certfile` (a PEM chain, leaf first) and
/// `keyfile` (a PEM private key).
pub(crate) fn server_config(
    certfile: &Path,
    keyfile: &Path,
) -> Result<Arc<ServerConfig>, AdminError> {
    let built = TlsOptions::new(certfile, keyfile)
        .server_config()
        .map_err(|e| AdminError::Tls(e.to_string()))?;
    let mut config = (*built).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
