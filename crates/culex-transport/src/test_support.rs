//! Helpers shared by the unit tests: certificates and a rustls client.

use std::sync::{Arc, OnceLock};

use culex_testkit::pki::{Identity, Pki, PkiFiles};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConnection, RootCertStore};

use crate::tls::TlsOptions;

/// One set of certificates for all tests (making one takes a few ms, but
/// every test would otherwise write its own files).
pub(crate) fn pki() -> &'static (Pki, PkiFiles, tempfile::TempDir) {
    static PKI: OnceLock<(Pki, PkiFiles, tempfile::TempDir)> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        let files = pki.write_to(dir.path());
        (pki, files, dir)
    })
}

pub(crate) fn options() -> TlsOptions {
    let (_, files, _) = pki();
    TlsOptions::new(&files.server.0, &files.server.1)
}

pub(crate) fn mtls_options() -> TlsOptions {
    let (_, files, _) = pki();
    TlsOptions {
        cafile: Some(files.ca.clone()),
        crlfile: Some(files.crl.clone()),
        require_certificate: true,
        ..options()
    }
}

pub(crate) fn client(identity: Option<&Identity>, tls12_only: bool) -> ClientConnection {
    let (pki, _, _) = pki();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(id.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                PrivateKeyDer::from_pem_slice(id.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
}
