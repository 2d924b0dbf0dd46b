//! culex's own options: the admin HTTP listener (`http_listener` and the
//! options on the lines after it) and a cluster node's (`cluster_servers`,
//! `cluster_node`, `cluster_namespace`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use super::{one, parse_num, path_value, resolve, split_word, without_comment, Loc, Parser};
use crate::config::ConfigError;

/// The admin HTTP listener as read.
#[derive(Debug, Clone)]
pub(super) struct HttpDraft {
    pub addr: SocketAddr,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
}

impl Parser {
    /// `http_listener PORT [ADDRESS]`: the admin HTTP listener, on
    /// 127.0.0.1 unless an address is given.
    pub(super) fn http_listener(&mut self, rest: &str, loc: &Loc) -> Result<(), ConfigError> {
        let option = "http_listener";
        if self.http.is_some() {
            return Err(loc.invalid(option, "only one http_listener may be configured"));
        }
        let (port, address) = split_word(without_comment(rest));
        let port = parse_num::<u16>(option, port, loc)?;
        let ip = match address {
            "" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            a if a.contains(char::is_whitespace) => {
                return Err(loc.invalid(option, format!("too many values in '{rest}'")));
            }
            a => resolve(a, option, loc)?
                .first()
                .copied()
                .ok_or_else(|| loc.invalid(option, format!("cannot resolve '{a}'")))?,
        };
        self.http = Some(HttpDraft {
            addr: SocketAddr::new(ip, port),
            certfile: None,
            keyfile: None,
            password_file: None,
        });
        self.in_http = true;
        Ok(())
    }

    /// An option on the lines after `http_listener`: `certfile` and
    /// `keyfile` are the HTTP listener's, as is `password_file` with
    /// `per_listener_settings true`; options of MQTT listeners are refused
    /// there. `false` for any other option (global ones).
    pub(super) fn http_option(
        &mut self,
        option: &str,
        rest: &str,
        loc: &Loc,
    ) -> Result<bool, ConfigError> {
        let per_listener = self.per_listener_settings;
        let Some(http) = self.http.as_mut() else {
            return Ok(false);
        };
        let slot = match option {
            "certfile" => &mut http.certfile,
            "keyfile" => &mut http.keyfile,
            "password_file" if per_listener => &mut http.password_file,
            "acl_file" | "allow_anonymous" | "allow_zero_length_clientid" | "auto_id_prefix"
                if per_listener =>
            {
                return Err(not_http(option, loc));
            }
            "mount_point"
            | "max_connections"
            | "socket_domain"
            | "protocol"
            | "cafile"
            | "capath"
            | "crlfile"
            | "ciphers"
            | "ciphers_tls1.3"
            | "tls_version"
            | "require_certificate"
            | "use_identity_as_username"
            | "use_subject_as_username" => {
                return Err(not_http(option, loc));
            }
            _ => return Ok(false),
        };
        if slot.is_some() {
            return Err(loc.invalid(option, "duplicate value in configuration"));
        }
        *slot = Some(path_value(option, rest, loc)?);
        Ok(true)
    }

    /// A cluster option; `false` for any other option.
    pub(super) fn cluster_option(
        &mut self,
        option: &str,
        rest: &str,
        loc: &Loc,
    ) -> Result<bool, ConfigError> {
        match option {
            "cluster_servers" => {
                let servers: Vec<String> = rest
                    .split([',', ' ', '\t'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if servers.is_empty() {
                    return Err(loc.invalid(option, "missing value"));
                }
                if let Some(bad) = servers.iter().find(|s| !s.starts_with("nats://")) {
                    return Err(loc.invalid(option, format!("'{bad}': expected nats://HOST:PORT")));
                }
                self.cluster_servers = Some((servers, loc.clone()));
            }
            "cluster_node" => {
                let name = cluster_name(option, rest, 64, loc)?;
                self.cluster_node = Some((name, loc.clone()));
            }
            "cluster_namespace" => {
                self.cluster_namespace = Some(cluster_name(option, rest, 32, loc)?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// An option of MQTT listeners on the lines of the HTTP listener.
fn not_http(option: &str, loc: &Loc) -> ConfigError {
    loc.invalid(
        option,
        "not an option of http_listener: put it before http_listener, or after a listener line",
    )
}

/// A cluster node or namespace name: 1 to `max` of `[A-Za-z0-9_-]` (it
/// becomes part of NATS subjects and stream names).
fn cluster_name(option: &str, rest: &str, max: usize, loc: &Loc) -> Result<String, ConfigError> {
    let name = one(option, rest, loc)?;
    let valid = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(loc.invalid(option, format!("1 to {max} of A-Z a-z 0-9 - _")));
    }
    Ok(name.to_owned())
}
