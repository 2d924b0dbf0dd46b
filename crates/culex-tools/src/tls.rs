//! TLS for the tools with rustls: `--cafile`, `--capath`, `--cert`/`--key`,
//! `--insecure`, `--tls-version`, `--tls-alpn`, `--tls-use-os-certs`.
//!
//! `--ciphers` takes an OpenSSL cipher list and, as OpenSSL's does, limits
//! the TLS 1.2 suites offered; TLS 1.3 suites are left alone. Names rustls
//! does not implement are skipped; a list that names none is refused.
//! TLS-PSK and OpenSSL engines do not exist in rustls and are refused.

use crate::args::Config;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};
use std::io::Error;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

/// Where Debian keeps the operating system's trusted CAs.
const OS_CERTS: &str = "/etc/ssl/certs/ca-certificates.crt";

fn tls_error(text: &str) -> Error {
    Error::other(text.to_string())
}

fn load_certs(path: &Path, roots: &mut RootCertStore) -> std::io::Result<usize> {
    let file = std::fs::File::open(path)?;
    let mut reader = std::io::BufReader::new(file);
    let mut added = 0;
    for cert in rustls_pemfile::certs(&mut reader) {
        if roots.add(cert?).is_ok() {
            added += 1;
        }
    }
    Ok(added)
}

/// Checks the TLS options before connecting, with mosquitto's messages.
pub fn check(config: &Config) -> Result<(), String> {
    let tls = &config.tls;
    if tls.psk.is_some() {
        return Err("Error: Problem setting TLS-PSK options.\n".into());
    }
    if tls.engine {
        return Err(
            "Error: Problem setting TLS engine: OpenSSL engines are not available in culex.\n"
                .into(),
        );
    }
    for path in [&tls.cafile, &tls.cert, &tls.key].into_iter().flatten() {
        if !path.is_file() {
            return Err("Error: Problem setting TLS options: File not found.\n".into());
        }
    }
    if let Some(dir) = &tls.capath {
        if !dir.is_dir() {
            return Err("Error: Problem setting TLS options: File not found.\n".into());
        }
    }
    if let Some(list) = &tls.ciphers {
        if tls12_suites(list).is_empty() {
            return Err(
                "Error: Problem setting TLS options, check the options are valid.\n".into(),
            );
        }
    }
    if let Some(version) = &tls.version {
        if !matches!(version.as_str(), "tlsv1.2" | "tlsv1.3") {
            return Err(
                "Error: Problem setting TLS options, check the options are valid.\n".into(),
            );
        }
    }
    Ok(())
}

fn client_config(config: &Config) -> std::io::Result<ClientConfig> {
    let tls = &config.tls;
    let mut roots = RootCertStore::empty();
    if let Some(cafile) = &tls.cafile {
        load_certs(cafile, &mut roots)?;
    }
    if let Some(capath) = &tls.capath {
        for entry in std::fs::read_dir(capath)? {
            let path = entry?.path();
            if path.is_file() {
                // A directory may hold other files (hash links to them, keys):
                // what does not parse as certificates is skipped.
                let _ = load_certs(&path, &mut roots);
            }
        }
    }
    if tls.use_os_certs || (tls.cafile.is_none() && tls.capath.is_none()) {
        let _ = load_certs(Path::new(OS_CERTS), &mut roots);
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.version.as_deref() {
        Some("tlsv1.2") => &[&rustls::version::TLS12],
        Some("tlsv1.3") => &[&rustls::version::TLS13],
        _ => rustls::DEFAULT_VERSIONS,
    };
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = &tls.ciphers {
        let wanted = tls12_suites(list);
        provider.cipher_suites.retain(|suite| match suite {
            rustls::SupportedCipherSuite::Tls12(_) => wanted.contains(&suite.suite()),
            rustls::SupportedCipherSuite::Tls13(_) => true,
        });
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .map_err(|e| tls_error(&e.to_string()))?;
    let roots = Arc::new(roots);
    let builder = if tls.insecure {
        let inner = WebPkiServerVerifier::builder(roots)
            .build()
            .map_err(|e| tls_error(&e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName { inner }))
    } else {
        builder.with_root_certificates(roots)
    };
    let mut client = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let certs: Vec<CertificateDer<'static>> =
                rustls_pemfile::certs(&mut std::io::BufReader::new(std::fs::File::open(cert)?))
                    .collect::<Result<_, _>>()?;
            let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
                std::fs::File::open(key)?,
            ))?
            .ok_or_else(|| tls_error("no private key found"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_error(&e.to_string()))?
        }
        _ => builder.with_no_client_auth(),
    };
    if let Some(alpn) = &tls.alpn {
        client.alpn_protocols = vec![alpn.as_bytes().to_vec()];
    }
    Ok(client)
}

/// OpenSSL's names for the TLS 1.2 suites rustls implements.
const OPENSSL_TLS12_NAMES: &[(&str, rustls::CipherSuite)] = {
    use rustls::CipherSuite as S;
    &[
        (
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "ECDHE-RSA-AES256-GCM-SHA384",
            S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "ECDHE-RSA-AES128-GCM-SHA256",
            S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "ECDHE-RSA-CHACHA20-POLY1305",
            S::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
};

/// The TLS 1.2 suites an OpenSSL cipher list selects, in the list's order.
/// Understood: suite names, `ALL`/`DEFAULT`/`HIGH` (every suite), and `!` or
/// `-` before a name or keyword to take it out again. Anything else (other
/// OpenSSL keywords, suites rustls lacks) selects nothing, as an unknown
/// name does in OpenSSL.
fn tls12_suites(list: &str) -> Vec<rustls::CipherSuite> {
    let mut chosen: Vec<rustls::CipherSuite> = Vec::new();
    let every = || OPENSSL_TLS12_NAMES.iter().map(|&(_, suite)| suite);
    for token in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        let (remove, name) = match token.strip_prefix(['!', '-']) {
            Some(name) => (true, name),
            None => (false, token.strip_prefix('+').unwrap_or(token)),
        };
        let selected: Vec<rustls::CipherSuite> = match name {
            "ALL" | "DEFAULT" | "HIGH" => every().collect(),
            _ => OPENSSL_TLS12_NAMES
                .iter()
                .filter(|(openssl, _)| *openssl == name)
                .map(|&(_, suite)| suite)
                .collect(),
        };
        if remove {
            chosen.retain(|suite| !selected.contains(suite));
        } else {
            for suite in selected {
                if !chosen.contains(&suite) {
                    chosen.push(suite);
                }
            }
        }
    }
    chosen
}

/// Wraps a connected socket in TLS and completes the handshake.
pub fn wrap(
    config: &Config,
    mut tcp: TcpStream,
) -> std::io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let client = client_config(config)?;
    let name = ServerName::try_from(config.host.clone()).map_err(|e| tls_error(&e.to_string()))?;
    let mut conn =
        ClientConnection::new(Arc::new(client), name).map_err(|e| tls_error(&e.to_string()))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)
            .map_err(|_| tls_error("A TLS error occurred."))?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

/// `--insecure`: the certificate chain is checked, the host name is not.
#[derive(Debug)]
struct AnyName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
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
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::tls12_suites;
    use rustls::CipherSuite as S;

    #[test]
    fn openssl_cipher_lists_select_tls12_suites() {
        let cases: &[(&str, &[S])] = &[
            (
                "ECDHE-RSA-AES128-GCM-SHA256",
                &[S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256],
            ),
            (
                "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256",
                &[
                    S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                    S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                ],
            ),
            // Suites rustls lacks are skipped, as OpenSSL skips unknown names.
            (
                "AES128-SHA:ECDHE-ECDSA-CHACHA20-POLY1305",
                &[S::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256],
            ),
            ("NOPE", &[]),
            ("", &[]),
        ];
        for (list, want) in cases {
            assert_eq!(tls12_suites(list), *want, "{list}");
        }
        assert_eq!(tls12_suites("HIGH").len(), 6);
        let without_rsa = tls12_suites(
            "ALL:!ECDHE-RSA-AES256-GCM-SHA384:!ECDHE-RSA-AES128-GCM-SHA256:-ECDHE-RSA-CHACHA20-POLY1305",
        );
        assert_eq!(without_rsa.len(), 3);
        assert!(!without_rsa.contains(&S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256));
    }
}
