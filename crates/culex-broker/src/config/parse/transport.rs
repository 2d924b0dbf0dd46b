//! A listener's transport options: TLS (`certfile`, `cafile`, …),
//! `protocol websockets` with `http_dir`, and `enable_proxy_protocol`.
//!
//! Files are read when their line is: a missing or unreadable certificate,
//! key, CA or CRL is an error naming that line. When the listener is
//! complete, the whole TLS config is built once, so that a key that does
//! not match its certificate is found at start too.

use std::path::PathBuf;

use culex_transport::tls::{self, CertificateField, TlsOptions, TlsVersion};
use culex_transport::{ciphers, ProxyVersion, TransportOptions, WebSocketOptions};

use super::{bad_value, one, parse_bool, path_value, ConfigError, Loc};

/// Every option this module reads.
pub(super) const OPTIONS: &[&str] = &[
    "certfile",
    "keyfile",
    "cafile",
    "capath",
    "crlfile",
    "require_certificate",
    "tls_version",
    "ciphers",
    "ciphers_tls1.3",
    "use_identity_as_username",
    "use_subject_as_username",
    "protocol",
    "http_dir",
    "enable_proxy_protocol",
    "dhparamfile",
    "tls_engine",
    "tls_engine_kpass_sha1",
    "tls_keyform",
    "psk_file",
    "psk_hint",
];

/// A value and the line that set it.
type At<T> = Option<(T, Loc)>;

/// The transport options of one listener, as read.
#[derive(Debug, Clone, Default)]
pub(super) struct TransportDraft {
    certfile: At<PathBuf>,
    keyfile: At<PathBuf>,
    cafile: At<PathBuf>,
    capath: At<PathBuf>,
    crlfile: At<PathBuf>,
    require_certificate: At<bool>,
    min_version: Option<TlsVersion>,
    ciphers: Option<String>,
    ciphers_tls13: Option<String>,
    use_identity: At<bool>,
    use_subject: At<bool>,
    websockets: bool,
    http_dir: At<PathBuf>,
    proxy: Option<ProxyVersion>,
    /// The first TLS option and its line, for errors about the set.
    first_tls: Option<(String, Loc)>,
}

impl TransportDraft {
    /// Reads one of [`OPTIONS`].
    pub(super) fn option(
        &mut self,
        option: &str,
        rest: &str,
        loc: &Loc,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let path = |value: PathBuf| Some((value, loc.clone()));
        let flag = |value: bool| Some((value, loc.clone()));
        let invalid = |e: tls::TlsConfigError| loc.invalid(option, e.to_string());
        // The options that make a listener a TLS listener (a `false` or a
        // cipher list on a plain one changes nothing, as in mosquitto).
        let demands_tls = matches!(
            option,
            "certfile" | "keyfile" | "cafile" | "capath" | "crlfile"
        ) || (option == "require_certificate" && parse_bool(option, rest, loc)?);
        if demands_tls && self.first_tls.is_none() {
            self.first_tls = Some((option.to_string(), loc.clone()));
        }
        match option {
            "certfile" => {
                let file = path_value(option, rest, loc)?;
                tls::load_certificates(&file).map_err(invalid)?;
                self.certfile = path(file);
            }
            "keyfile" => {
                let file = path_value(option, rest, loc)?;
                tls::load_private_key(&file).map_err(invalid)?;
                self.keyfile = path(file);
            }
            "cafile" => {
                let file = path_value(option, rest, loc)?;
                tls::load_roots(Some(&file), None).map_err(invalid)?;
                self.cafile = path(file);
            }
            "capath" => {
                let file = path_value(option, rest, loc)?;
                tls::load_roots(None, Some(&file)).map_err(invalid)?;
                self.capath = path(file);
            }
            "crlfile" => {
                let file = path_value(option, rest, loc)?;
                tls::load_crls(&file).map_err(invalid)?;
                self.crlfile = path(file);
            }
            "require_certificate" => self.require_certificate = flag(parse_bool(option, rest, loc)?),
            "use_identity_as_username" => self.use_identity = flag(parse_bool(option, rest, loc)?),
            "use_subject_as_username" => self.use_subject = flag(parse_bool(option, rest, loc)?),
            // A minimum, as in mosquitto 2 (1.6 took it as the only version).
            "tls_version" => {
                self.min_version = Some(match one(option, rest, loc)? {
                    "tlsv1.3" => TlsVersion::Tls13,
                    "tlsv1.2" => TlsVersion::Tls12,
                    "tlsv1.1" => {
                        warnings.push(loc.warning(
                            option,
                            "TLS 1.1 is not offered (rustls has no TLS below 1.2): the minimum is TLS 1.2",
                        ));
                        TlsVersion::Tls12
                    }
                    other => return Err(bad_value(option, other, "tlsv1.3, tlsv1.2 or tlsv1.1", loc)),
                });
            }
            "ciphers" | "ciphers_tls1.3" => {
                let list = one(option, rest, loc)?;
                let parsed = if option == "ciphers" {
                    ciphers::parse_tls12(list)
                } else {
                    ciphers::parse_tls13(list)
                };
                let selection = parsed.map_err(|e| loc.invalid(option, e.to_string()))?;
                if !selection.not_offered.is_empty() {
                    warnings.push(loc.warning(
                        option,
                        &format!(
                            "not offered, rustls has no such suites: {}",
                            selection.not_offered.join(", ")
                        ),
                    ));
                }
                if option == "ciphers" {
                    self.ciphers = Some(list.to_string());
                } else {
                    self.ciphers_tls13 = Some(list.to_string());
                }
            }
            "protocol" => {
                self.websockets = match one(option, rest, loc)? {
                    "mqtt" => false,
                    "websockets" => true,
                    other => return Err(bad_value(option, other, "mqtt or websockets", loc)),
                }
            }
            "http_dir" => {
                let file = path_value(option, rest, loc)?;
                if !file.is_dir() {
                    return Err(loc.invalid(option, format!("'{}' is not a directory", file.display())));
                }
                self.http_dir = path(file);
            }
            // culex's own, named as in mosquitto 2.1.
            "enable_proxy_protocol" => {
                self.proxy = Some(match one(option, rest, loc)? {
                    "1" => ProxyVersion::V1,
                    "2" => ProxyVersion::V2,
                    other => return Err(bad_value(option, other, "1 or 2", loc)),
                });
            }
            // What rustls cannot do: refused, since a listener that silently
            // ignored them would not be the listener the file describes.
            "dhparamfile" => {
                return Err(loc.invalid(
                    option,
                    "not possible with rustls, which has no finite-field Diffie-Hellman (ECDHE is always used); remove the line",
                ))
            }
            "tls_engine" | "tls_engine_kpass_sha1" => {
                return Err(loc.invalid(option, "OpenSSL engines are not possible: culex's TLS is rustls"))
            }
            "tls_keyform" => match one(option, rest, loc)? {
                "pem" => {}
                "engine" => {
                    return Err(loc.invalid(option, "OpenSSL engines are not possible: culex's TLS is rustls"))
                }
                other => return Err(bad_value(option, other, "pem or engine", loc)),
            },
            "psk_file" | "psk_hint" => {
                return Err(loc.invalid(option, "pre-shared-key TLS is not possible with rustls"))
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks the listener's options as a set, and builds the TLS config
    /// once to find what only the files together can show.
    pub(super) fn check(&self, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
        let tls = self.tls_options();
        if tls.is_none() {
            for (name, value) in [
                ("use_identity_as_username", &self.use_identity),
                ("use_subject_as_username", &self.use_subject),
            ] {
                if let Some((true, loc)) = value {
                    return Err(loc.invalid(
                        name,
                        "needs certfile and keyfile on this listener (culex has no pre-shared-key TLS)",
                    ));
                }
            }
            if let Some((option, loc)) = &self.first_tls {
                return Err(loc.invalid(
                    option,
                    "TLS on this listener needs both certfile and keyfile",
                ));
            }
        }
        let required = self.require_certificate.as_ref().is_some_and(|(r, _)| *r);
        if let Some((true, loc)) = &self.require_certificate {
            if self.cafile.is_none() && self.capath.is_none() {
                return Err(loc.invalid(
                    "require_certificate",
                    "needs cafile or capath to check client certificates against",
                ));
            }
        }
        if !required {
            for (name, value) in [
                ("use_identity_as_username", &self.use_identity),
                ("use_subject_as_username", &self.use_subject),
            ] {
                if let Some((true, loc)) = value {
                    warnings.push(loc.warning(
                        name,
                        "without require_certificate true clients send no certificate, so every client is refused",
                    ));
                }
            }
            if let Some((_, loc)) = &self.crlfile {
                warnings
                    .push(loc.warning("crlfile", "has no effect without require_certificate true"));
            }
        }
        if let Some((_, loc)) = &self.http_dir {
            if !self.websockets {
                warnings.push(
                    loc.warning("http_dir", "has no effect: the listener's protocol is mqtt"),
                );
            }
        }
        if let (Some(options), Some((_, loc))) = (&tls, &self.certfile) {
            options
                .server_config()
                .map_err(|e| loc.invalid("certfile", e.to_string()))?;
        }
        Ok(())
    }

    fn tls_options(&self) -> Option<TlsOptions> {
        let (certfile, keyfile) = (&self.certfile.as_ref()?.0, &self.keyfile.as_ref()?.0);
        let on = |value: &At<bool>| value.as_ref().is_some_and(|(v, _)| *v);
        // Identity takes priority over subject, as in mosquitto.
        let username_from = if on(&self.use_identity) {
            Some(CertificateField::CommonName)
        } else if on(&self.use_subject) {
            Some(CertificateField::Subject)
        } else {
            None
        };
        Some(TlsOptions {
            cafile: self.cafile.as_ref().map(|(p, _)| p.clone()),
            capath: self.capath.as_ref().map(|(p, _)| p.clone()),
            crlfile: self.crlfile.as_ref().map(|(p, _)| p.clone()),
            require_certificate: on(&self.require_certificate),
            min_version: self.min_version.unwrap_or_default(),
            ciphers: self.ciphers.clone(),
            ciphers_tls13: self.ciphers_tls13.clone(),
            username_from,
            ..TlsOptions::new(certfile, keyfile)
        })
    }

    /// The options the broker runs the listener with.
    pub(super) fn resolve(&self) -> TransportOptions {
        TransportOptions {
            proxy_protocol: self.proxy,
            tls: self.tls_options(),
            websockets: self.websockets.then(|| WebSocketOptions {
                http_dir: self.http_dir.as_ref().map(|(p, _)| p.clone()),
                ..WebSocketOptions::default()
            }),
            handshake_timeout: None,
        }
    }
}
