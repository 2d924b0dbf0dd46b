//! Test certificates made in-process with `rcgen`: a CA, a second CA that
//! the broker does not trust, a server certificate, client certificates
//! (good, expired, revoked, from the other CA) and a CRL that revokes one.
//!
//! Everything is PEM text; [`Pki::write_to`] puts it in a directory for a
//! broker's config file or a command-line client (`--cafile`, `--cert`).
//! Keys are ECDSA P-256, so a whole set takes milliseconds.

use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

/// One set of test certificates.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA the server trusts for client certificates.
    pub ca: String,
    /// A CA nobody trusts.
    pub other_ca: String,
    /// The server: CN `localhost`, SANs `localhost`, `127.0.0.1`, `::1`.
    pub server: Identity,
    /// A client: subject `CN=client one,O=culex tests,C=GB`.
    pub client: Identity,
    /// A client whose certificate expired in 2021.
    pub expired_client: Identity,
    /// A client whose certificate `crl` revokes.
    pub revoked_client: Identity,
    /// A client signed by `other_ca`.
    pub stranger: Identity,
    /// The CA's revocation list: `revoked_client` is on it.
    pub crl: String,
    ca_params: CertificateParams,
    ca_key_pem: String,
}

/// Paths of the files [`Pki::write_to`] writes.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    /// `ca.crt`
    pub ca: PathBuf,
    /// `other-ca.crt`
    pub other_ca: PathBuf,
    /// `server.crt`, `server.key`
    pub server: (PathBuf, PathBuf),
    /// `client.crt`, `client.key`
    pub client: (PathBuf, PathBuf),
    /// `expired.crt`, `expired.key`
    pub expired_client: (PathBuf, PathBuf),
    /// `revoked.crt`, `revoked.key`
    pub revoked_client: (PathBuf, PathBuf),
    /// `stranger.crt`, `stranger.key`
    pub stranger: (PathBuf, PathBuf),
    /// `crl.pem`
    pub crl: PathBuf,
}

const REVOKED_SERIAL: u8 = 0x66;

impl Pki {
    /// Makes a fresh set.
    pub fn new() -> Pki {
        let (ca_params, ca_key) = ca("culex test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let (other_params, other_key) = ca("someone else's CA");
        let other_cert = other_params
            .self_signed(&other_key)
            .expect("self-sign the other CA");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let other_issuer = Issuer::from_params(&other_params, &other_key);

        let server = leaf(
            &issuer,
            &[(DnType::CommonName, "localhost")],
            Leaf::Server,
            1,
        );
        let client = leaf(
            &issuer,
            &[
                (DnType::CountryName, "GB"),
                (DnType::OrganizationName, "culex tests"),
                (DnType::CommonName, "client one"),
            ],
            Leaf::Client { expired: false },
            2,
        );
        let expired_client = leaf(
            &issuer,
            &[(DnType::CommonName, "expired client")],
            Leaf::Client { expired: true },
            3,
        );
        let revoked_client = leaf(
            &issuer,
            &[(DnType::CommonName, "revoked client")],
            Leaf::Client { expired: false },
            REVOKED_SERIAL,
        );
        let stranger = leaf(
            &other_issuer,
            &[(DnType::CommonName, "stranger")],
            Leaf::Client { expired: false },
            5,
        );
        let crl = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(3000, 1, 1),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[REVOKED_SERIAL]),
                revocation_time: date_time_ymd(2024, 1, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .expect("sign the CRL")
        .pem()
        .expect("CRL as PEM");
        Pki {
            ca: ca_cert.pem(),
            other_ca: other_cert.pem(),
            server,
            client,
            expired_client,
            revoked_client,
            stranger,
            crl,
            ca_key_pem: ca_key.serialize_pem(),
            ca_params,
        }
    }

    /// Another server certificate from the same CA, e.g. for a reload.
    pub fn new_server(&self, common_name: &str) -> Identity {
        let key = KeyPair::from_pem(&self.ca_key_pem).expect("CA key");
        let issuer = Issuer::from_params(&self.ca_params, &key);
        leaf(
            &issuer,
            &[(DnType::CommonName, common_name)],
            Leaf::Server,
            7,
        )
    }

    /// Writes every certificate, key and the CRL into `dir`.
    pub fn write_to(&self, dir: &Path) -> PkiFiles {
        let write = |name: &str, text: &str| crate::write_file(dir, name, text);
        let pair = |stem: &str, id: &Identity| {
            (
                write(&format!("{stem}.crt"), &id.cert),
                write(&format!("{stem}.key"), &id.key),
            )
        };
        PkiFiles {
            ca: write("ca.crt", &self.ca),
            other_ca: write("other-ca.crt", &self.other_ca),
            server: pair("server", &self.server),
            client: pair("client", &self.client),
            expired_client: pair("expired", &self.expired_client),
            revoked_client: pair("revoked", &self.revoked_client),
            stranger: pair("stranger", &self.stranger),
            crl: write("crl.pem", &self.crl),
        }
    }
}

impl Default for Pki {
    fn default() -> Pki {
        Pki::new()
    }
}

fn ca(common_name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(3000, 1, 1);
    (params, KeyPair::generate().expect("CA key"))
}

enum Leaf {
    Server,
    Client { expired: bool },
}

fn leaf(
    issuer: &Issuer<'_, &KeyPair>,
    subject: &[(DnType, &str)],
    kind: Leaf,
    serial: u8,
) -> Identity {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for (ty, value) in subject {
        params.distinguished_name.push(ty.clone(), *value);
    }
    params.serial_number = Some(SerialNumber::from_slice(&[serial]));
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(3000, 1, 1);
    match kind {
        Leaf::Server => {
            params.subject_alt_names = CertificateParams::new(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
                "::1".to_string(),
            ])
            .expect("server names")
            .subject_alt_names;
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
        Leaf::Client { expired } => {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            if expired {
                params.not_after = date_time_ymd(2021, 1, 1);
            }
        }
    }
    let key = KeyPair::generate().expect("leaf key");
    let cert = params.signed_by(&key, issuer).expect("sign a leaf");
    Identity {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}
