//! The mosquitto.conf reader: one `option value…` a line, `#` comments,
//! `include_dir` for a directory of `*.conf` files.
//!
//! Every option of mosquitto 2.0 is known here and falls in one of four
//! groups: served; accepted with a warning because it changes nothing yet
//! (persistence, tuning knobs); refused because serving it wrongly would be
//! worse (bridges, plugins, and what rustls cannot do: PSK, OpenSSL
//! engines); or unknown, which is an error. A listener's TLS, WebSocket and
//! PROXY options are read in `transport.rs`, culex's own admin HTTP
//! listener and cluster options in `own.rs`.

mod own;
mod transport;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::own::HttpDraft;
use super::bridge::{is_bridge_option, Bridge, BridgeDraft};
use super::{
    Config, ConfigError, HttpListener, Limits, Listener, LogConfig, LogDest, Persistence, Security,
};

/// Where a line came from, for messages.
#[derive(Debug, Clone)]
struct Loc {
    file: PathBuf,
    line: usize,
}

impl Loc {
    fn invalid(&self, option: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line,
            option: option.to_string(),
            reason: reason.into(),
        }
    }

    fn unsupported(&self, option: &str, feature: &str) -> ConfigError {
        ConfigError::Unsupported {
            file: self.file.clone(),
            line: self.line,
            option: option.to_string(),
            feature: feature.to_string(),
        }
    }

    fn warning(&self, option: &str, text: &str) -> String {
        format!("{}:{}: {option}: {text}", self.file.display(), self.line)
    }
}

/// Security settings as read, before mosquitto 2's defaults are applied.
#[derive(Debug, Clone, Default)]
struct SecurityDraft {
    allow_anonymous: Option<bool>,
    password_file: Option<PathBuf>,
    acl_file: Option<PathBuf>,
    allow_zero_length_clientid: Option<bool>,
    auto_id_prefix: Option<String>,
}

impl SecurityDraft {
    fn resolve(&self, local_only: bool) -> Security {
        Security {
            allow_anonymous: self.allow_anonymous.unwrap_or(local_only),
            password_file: self.password_file.clone(),
            acl_file: self.acl_file.clone(),
            allow_zero_length_clientid: self.allow_zero_length_clientid.unwrap_or(true),
            auto_id_prefix: self
                .auto_id_prefix
                .clone()
                .unwrap_or_else(|| super::DEFAULT_AUTO_ID_PREFIX.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    V4,
    V6,
}

#[derive(Debug, Clone, Default)]
struct ListenerDraft {
    port: Option<u16>,
    /// Resolved at the line that names it; empty means every interface.
    ips: Vec<IpAddr>,
    max_connections: Option<Option<usize>>,
    security: SecurityDraft,
    mount_point: Option<String>,
    socket_domain: Option<Domain>,
    loc: Option<Loc>,
    /// The listener of `port`/`bind_address`.
    is_default: bool,
    /// `listener 0 /path/to.sock`.
    unix_path: Option<PathBuf>,
    transport: transport::TransportDraft,
}

/// The parser's state across the main file and its includes.
struct Parser {
    per_listener_settings: bool,
    /// A security option was seen (per_listener_settings must come first).
    security_seen: bool,
    global: SecurityDraft,
    /// The listener of `port`/`bind_address` (mosquitto's "default listener").
    default: ListenerDraft,
    default_used: bool,
    listeners: Vec<ListenerDraft>,
    limits: Limits,
    log: LogConfig,
    log_dest_seen: bool,
    log_type_seen: bool,
    pid_file: Option<PathBuf>,
    persistence: Persistence,
    sys_interval: Duration,
    persistent_client_expiration: Option<Duration>,
    presence_events: bool,
    cluster_servers: Option<(Vec<String>, Loc)>,
    cluster_node: Option<(String, Loc)>,
    cluster_namespace: Option<String>,
    http: Option<HttpDraft>,
    /// `http_admin`, wherever it appears.
    http_admins: Vec<String>,
    /// Options apply to the HTTP listener: `http_listener` was the last
    /// listener line.
    in_http: bool,
    warnings: Vec<String>,
    bridges: Vec<Bridge>,
    /// The bridge that bridge options apply to (since its `connection`).
    bridge: Option<(BridgeDraft, Loc)>,
}

/// Reads `path` (and its `include_dir`s) into a [`Config`]; `cmd_ports` are
/// the `-p` ports, used only in local-only mode.
pub(super) fn parse_file(path: &Path, cmd_ports: &[u16]) -> Result<Config, ConfigError> {
    parse_text(&read(path)?, path, cmd_ports)
}

/// Parses config text as if read from `name` (includes are still read from disk).
pub(super) fn parse_text(
    text: &str,
    name: &Path,
    cmd_ports: &[u16],
) -> Result<Config, ConfigError> {
    let mut parser = Parser::new();
    parser.parse_text(text, name, true)?;
    parser.check_listeners()?;
    Ok(parser.finish(Some(name.to_path_buf()), cmd_ports))
}

/// The configuration with no file at all.
pub(super) fn defaults(cmd_ports: &[u16]) -> Config {
    Parser::new().finish(None, cmd_ports)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })
}

impl Parser {
    fn new() -> Parser {
        Parser {
            per_listener_settings: false,
            security_seen: false,
            global: SecurityDraft::default(),
            default: ListenerDraft::default(),
            default_used: false,
            listeners: Vec::new(),
            limits: Limits::default(),
            log: LogConfig::default(),
            log_dest_seen: false,
            log_type_seen: false,
            pid_file: None,
            persistence: Persistence::default(),
            sys_interval: Duration::from_secs(super::DEFAULT_SYS_INTERVAL_SECS),
            persistent_client_expiration: None,
            presence_events: false,
            cluster_servers: None,
            cluster_node: None,
            cluster_namespace: None,
            http: None,
            http_admins: Vec::new(),
            in_http: false,
            warnings: Vec::new(),
            bridges: Vec::new(),
            bridge: None,
        }
    }

    /// Ends the bridge being read, if any.
    fn close_bridge(&mut self) -> Result<(), ConfigError> {
        if let Some((draft, loc)) = self.bridge.take() {
            let bridge = draft.finish().map_err(|r| loc.invalid("connection", r))?;
            self.bridges.push(bridge);
        }
        Ok(())
    }

    fn parse_text(&mut self, text: &str, file: &Path, main: bool) -> Result<(), ConfigError> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let loc = Loc {
                file: file.to_path_buf(),
                line: index + 1,
            };
            let (option, rest) = split_word(line);
            self.option(option, rest, &loc, main)?;
        }
        if main {
            self.close_bridge()?;
            match (&self.cluster_servers, &self.cluster_node) {
                (Some(_), None) => {
                    let loc = self.cluster_servers.as_ref().map(|(_, l)| l.clone());
                    return Err(loc
                        .unwrap_or_else(|| Loc {
                            file: file.to_path_buf(),
                            line: 0,
                        })
                        .invalid("cluster_servers", "cluster_node is needed too"));
                }
                (None, Some((_, loc))) => {
                    return Err(loc.invalid("cluster_node", "cluster_servers is needed too"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The listener that per-listener options apply to.
    fn current_listener(&mut self) -> &mut ListenerDraft {
        match self.listeners.last_mut() {
            Some(listener) => listener,
            None => &mut self.default,
        }
    }

    /// The security settings that security options apply to.
    fn security_target(&mut self) -> &mut SecurityDraft {
        self.security_seen = true;
        if self.per_listener_settings {
            if let Some(listener) = self.listeners.last_mut() {
                return &mut listener.security;
            }
        }
        &mut self.global
    }

    fn option(
        &mut self,
        option: &str,
        rest: &str,
        loc: &Loc,
        main: bool,
    ) -> Result<(), ConfigError> {
        if self.in_http && self.http_option(option, rest, loc)? {
            return Ok(());
        }
        match option {
            // culex's own admin HTTP listener (see `http_option`).
            "http_listener" => self.http_listener(rest, loc)?,
            "http_admin" => {
                let users: Vec<String> = without_comment(rest)
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                if users.is_empty() {
                    return Err(loc.invalid(option, "missing user name"));
                }
                self.http_admins.extend(users);
            }
            // Listeners.
            "listener" => {
                self.in_http = false;
                let (port, address) = split_word(without_comment(rest));
                let port = parse_num::<u16>(option, port, loc)?;
                let mut ips = Vec::new();
                let mut unix_path = None;
                if !address.is_empty() {
                    if address.contains(char::is_whitespace) {
                        return Err(loc.invalid(option, format!("too many values in '{rest}'")));
                    }
                    if address.starts_with('/') {
                        if port != 0 {
                            return Err(loc.invalid(option, "a unix socket listener needs port 0"));
                        }
                        unix_path = Some(PathBuf::from(address));
                    } else {
                        ips = resolve(address, option, loc)?;
                    }
                }
                self.listeners.push(ListenerDraft {
                    port: Some(port),
                    ips,
                    unix_path,
                    loc: Some(loc.clone()),
                    ..ListenerDraft::default()
                });
            }
            "port" => {
                let port = parse_num::<u16>(option, one(option, rest, loc)?, loc)?;
                self.default.port = Some(port);
                self.default_used = true;
                self.default.loc = Some(loc.clone());
                self.warnings.push(loc.warning(
                    option,
                    "the 'port' option is deprecated and will be removed in a future version, use 'listener' instead",
                ));
            }
            "bind_address" => {
                self.default.ips = resolve(one(option, rest, loc)?, option, loc)?;
                self.default_used = true;
                self.default.loc = Some(loc.clone());
                self.warnings.push(loc.warning(
                    option,
                    "the 'bind_address' option is deprecated and will be removed in a future version, use 'listener' instead",
                ));
            }
            "mount_point" => {
                let value = one(option, rest, loc)?;
                if value.contains(['+', '#']) {
                    return Err(loc.invalid(option, format!("invalid mount point '{value}'")));
                }
                self.current_listener().mount_point = Some(value.to_string());
            }
            "max_connections" => {
                let value = parse_num::<i64>(option, one(option, rest, loc)?, loc)?;
                let value = usize::try_from(value).ok();
                if self.listeners.is_empty() {
                    self.limits.max_connections = value;
                }
                self.current_listener().max_connections = Some(value);
            }
            "socket_domain" => {
                let domain = match one(option, rest, loc)? {
                    "ipv4" => Domain::V4,
                    "ipv6" => Domain::V6,
                    other => return Err(bad_value(option, other, "ipv4 or ipv6", loc)),
                };
                let listener = self.current_listener();
                if listener.unix_path.is_some() {
                    return Err(loc.invalid(option, "a unix socket listener has no IP domain"));
                }
                if !listener.ips.is_empty() && addrs_for(&listener.ips, 0, Some(domain)).is_empty()
                {
                    return Err(loc.invalid(option, "the listener has no address of this domain"));
                }
                listener.socket_domain = Some(domain);
            }
            o if transport::OPTIONS.contains(&o) => {
                let warnings = &mut self.warnings;
                let listener = match self.listeners.last_mut() {
                    Some(listener) => listener,
                    None => &mut self.default,
                };
                listener.transport.option(option, rest, loc, warnings)?;
            }
            "per_listener_settings" => {
                let value = parse_bool(option, rest, loc)?;
                if self.security_seen || !self.listeners.is_empty() {
                    return Err(
                        loc.invalid(option, "must be set before any listener or security option")
                    );
                }
                self.per_listener_settings = value;
            }

            // Security.
            "allow_anonymous" => {
                let value = parse_bool(option, rest, loc)?;
                self.security_target().allow_anonymous = Some(value);
            }
            "password_file" | "acl_file" => {
                let value = path_value(option, rest, loc)?;
                let target = self.security_target();
                let file = if option == "password_file" {
                    &mut target.password_file
                } else {
                    &mut target.acl_file
                };
                if file.is_some() {
                    return Err(loc.invalid(option, "duplicate value in configuration"));
                }
                *file = Some(value);
            }
            "allow_zero_length_clientid" => {
                let value = parse_bool(option, rest, loc)?;
                self.security_target().allow_zero_length_clientid = Some(value);
            }
            "auto_id_prefix" => {
                let value = one(option, rest, loc)?.to_string();
                self.security_target().auto_id_prefix = Some(value);
            }

            // Limits.
            "max_inflight_messages" => {
                let value = parse_num::<u16>(option, one(option, rest, loc)?, loc)?;
                self.limits.max_inflight_messages = nonzero(value);
            }
            "max_queued_messages" => {
                let value = parse_num::<usize>(option, one(option, rest, loc)?, loc)?;
                self.limits.max_queued_messages = nonzero(value);
            }
            "max_queued_bytes" => {
                let value = parse_num::<usize>(option, one(option, rest, loc)?, loc)?;
                self.limits.max_queued_bytes = nonzero(value);
            }
            "message_size_limit" => {
                let value = parse_num::<u32>(option, one(option, rest, loc)?, loc)?;
                if value > super::MQTT_MAX_PAYLOAD {
                    return Err(loc.invalid(
                        option,
                        format!(
                            "{value} is above the MQTT maximum of {}",
                            super::MQTT_MAX_PAYLOAD
                        ),
                    ));
                }
                self.limits.message_size_limit = nonzero(value);
            }
            "max_packet_size" => {
                let value = parse_num::<u32>(option, one(option, rest, loc)?, loc)?;
                if value != 0 && value < 20 {
                    return Err(loc.invalid(option, "must be at least 20 bytes"));
                }
                self.limits.max_packet_size = nonzero(value);
            }
            // culex's own (mosquitto's limit of 200 is fixed).
            "max_topic_levels" => {
                let value = parse_num::<usize>(option, one(option, rest, loc)?, loc)?;
                if value == 0 {
                    return Err(loc.invalid(option, "must be at least 1"));
                }
                self.limits.max_topic_levels = value;
            }
            // culex's own: the back-off after failed logins, per address.
            "auth_backoff_max" => {
                let value = parse_num::<u64>(option, one(option, rest, loc)?, loc)?;
                if value > 15 {
                    return Err(loc.invalid(option, "at most 15 seconds"));
                }
                self.limits.auth_backoff_max = Duration::from_secs(value);
            }
            "max_keepalive" => {
                self.limits.max_keepalive = parse_num::<u16>(option, one(option, rest, loc)?, loc)?;
            }
            "max_qos" => {
                let value = one(option, rest, loc)?;
                self.limits.max_qos = match value {
                    "0" => culex_codec::QoS::AtMostOnce,
                    "1" => culex_codec::QoS::AtLeastOnce,
                    "2" => culex_codec::QoS::ExactlyOnce,
                    other => return Err(bad_value(option, other, "0, 1 or 2", loc)),
                };
            }
            "retain_available" => self.limits.retain_available = parse_bool(option, rest, loc)?,
            "upgrade_outgoing_qos" => {
                self.limits.upgrade_outgoing_qos = parse_bool(option, rest, loc)?
            }
            "persistent_client_expiration" => {
                self.persistent_client_expiration =
                    Some(parse_expiration(option, one(option, rest, loc)?, loc)?);
            }
            "sys_interval" => {
                self.sys_interval =
                    Duration::from_secs(parse_num::<u64>(option, one(option, rest, loc)?, loc)?);
            }
            "presence_events" => self.presence_events = parse_bool(option, rest, loc)?,

            o if self.cluster_option(o, rest, loc)? => {}

            // Logging.
            "log_dest" => {
                if !self.log_dest_seen {
                    self.log.dest.clear();
                    self.log_dest_seen = true;
                }
                let (kind, path) = split_word(rest);
                let dest = match kind {
                    "stderr" => LogDest::Stderr,
                    "stdout" => LogDest::Stdout,
                    "syslog" => LogDest::Syslog,
                    "topic" => LogDest::Topic,
                    "none" => LogDest::None,
                    "file" => {
                        if path.is_empty() {
                            return Err(loc.invalid(option, "'file' needs a file name"));
                        }
                        if self.log.dest.iter().any(|d| matches!(d, LogDest::File(_))) {
                            return Err(
                                loc.invalid(option, "only one file destination may be configured")
                            );
                        }
                        LogDest::File(PathBuf::from(path))
                    }
                    "dlt" => return Err(loc.unsupported(option, "DLT logging")),
                    "" => return Err(loc.invalid(option, "missing value")),
                    other => {
                        return Err(bad_value(
                            option,
                            other,
                            "stdout, stderr, syslog, topic, file or none",
                            loc,
                        ))
                    }
                };
                if kind != "file" && !path.is_empty() {
                    return Err(loc.invalid(option, format!("too many values in '{rest}'")));
                }
                self.log.dest.push(dest);
            }
            "log_type" => {
                if !self.log_type_seen {
                    self.log.types.clear();
                    self.log_type_seen = true;
                }
                let value = one(option, rest, loc)?;
                match value {
                    "all" => {
                        self.log.types = super::LOG_TYPES.iter().map(|t| t.to_string()).collect();
                    }
                    "none" => self.log.types.clear(),
                    t if super::LOG_TYPES.contains(&t) => {
                        if !self.log.types.iter().any(|known| known == t) {
                            self.log.types.push(t.to_string());
                        }
                    }
                    other => {
                        return Err(bad_value(
                            option,
                            other,
                            "debug, error, warning, notice, information, subscribe, unsubscribe, websockets, none or all",
                            loc,
                        ))
                    }
                }
            }
            "connection_messages" => self.log.connection_messages = parse_bool(option, rest, loc)?,
            "log_timestamp" => self.log.timestamp = parse_bool(option, rest, loc)?,
            "log_timestamp_format" => {
                if rest.is_empty() {
                    return Err(loc.invalid(option, "missing value"));
                }
                self.log.timestamp_format = Some(rest.to_string());
            }
            "log_facility" => {
                parse_num::<u8>(option, one(option, rest, loc)?, loc)?;
                self.warnings
                    .push(loc.warning(option, "has no effect: syslog lines are written to stderr"));
            }

            // Files.
            "pid_file" => self.pid_file = Some(path_value(option, rest, loc)?),
            "include_dir" => {
                if !main {
                    return Err(loc.invalid(option, "only allowed in the main configuration file"));
                }
                let dir = path_value(option, rest, loc)?;
                self.include_dir(&dir, loc)?;
            }

            // Persistence: the durable store (crate culex-store).
            "persistence" => self.persistence.enabled = parse_bool(option, rest, loc)?,
            "persistence_location" => {
                self.persistence.location = Some(path_value(option, rest, loc)?)
            }
            "persistence_file" => self.persistence.file = Some(one(option, rest, loc)?.to_string()),
            "autosave_interval" => {
                self.persistence.autosave_interval =
                    Some(parse_num::<u64>(option, one(option, rest, loc)?, loc)?);
            }
            "autosave_on_changes" => {
                self.persistence.autosave_on_changes = parse_bool(option, rest, loc)?
            }
            // culex's own: `sync` (acknowledge once durable, the default) or
            // `periodic MS` (commit every MS milliseconds; a crash may lose
            // that window).
            "persistence_mode" => {
                let mode = rest
                    .trim()
                    .parse()
                    .map_err(|e: String| loc.invalid(option, e))?;
                self.persistence.mode = Some(mode);
            }

            // Harmless: accepted, with a warning when they would change something.
            "set_tcp_nodelay" => {
                if !parse_bool(option, rest, loc)? {
                    self.warnings
                        .push(loc.warning(option, "culex always sets TCP_NODELAY"));
                }
            }
            "user" => {
                one(option, rest, loc)?;
                self.warnings.push(loc.warning(
                    option,
                    "has no effect: culex runs as the user that starts it",
                ));
            }
            "check_retain_source" | "queue_qos0_messages" | "allow_duplicate_messages" => {
                parse_bool(option, rest, loc)?;
                self.warnings
                    .push(loc.warning(option, "has no effect in culex yet"));
            }
            "memory_limit"
            | "max_inflight_bytes"
            | "websockets_headers_size"
            | "websockets_log_level"
            | "max_topic_alias"
            | "retry_interval"
            | "store_clean_interval" => {
                parse_num::<u64>(option, one(option, rest, loc)?, loc)?;
                self.warnings
                    .push(loc.warning(option, "has no effect in culex yet"));
            }

            // Later features: refused, since serving them wrongly would be worse.
            // Bridges: `connection NAME`, then that bridge's options.
            "connection" => {
                self.close_bridge()?;
                let name = one(option, rest, loc)?;
                self.bridge = Some((BridgeDraft::new(name, &hostname()), loc.clone()));
            }
            o if is_bridge_option(o) => match self.bridge.as_mut() {
                Some((draft, _)) => draft
                    .option(option, rest)
                    .map_err(|reason| loc.invalid(option, reason))?,
                None => return Err(loc.invalid(option, "a bridge option before any 'connection'")),
            },
            "plugin" | "auth_plugin" | "auth_plugin_deny_special_chars" | "global_plugin" => {
                return Err(loc.unsupported(option, "plugins"));
            }
            o if o.starts_with("plugin_opt_") || o.starts_with("auth_opt_") => {
                return Err(loc.unsupported(option, "plugins"));
            }
            "clientid_prefixes" | "use_username_as_clientid" | "bind_interface" => {
                return Err(loc.unsupported(option, "this option"));
            }

            _ => {
                return Err(ConfigError::UnknownOption {
                    file: loc.file.clone(),
                    line: loc.line,
                    option: option.to_string(),
                })
            }
        }
        Ok(())
    }

    /// Reads every `*.conf` file of `dir`, in mosquitto's order.
    fn include_dir(&mut self, dir: &Path, loc: &Loc) -> Result<(), ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            loc.invalid(
                "include_dir",
                format!("unable to open directory '{}': {e}", dir.display()),
            )
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| {
                loc.invalid(
                    "include_dir",
                    format!("unable to read '{}': {e}", dir.display()),
                )
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") && entry.path().is_file() {
                files.push(name);
            }
        }
        files.sort_by(|a, b| include_order(a, b));
        for name in files {
            let path = dir.join(&name);
            let text = read(&path)?;
            self.parse_text(&text, &path, false)?;
        }
        Ok(())
    }

    /// Checks each listener's transport options as a set (a key that does
    /// not match its certificate, a CA missing for `require_certificate`).
    fn check_listeners(&mut self) -> Result<(), ConfigError> {
        let drafts = self.listeners.iter();
        let default = self.default_used.then_some(&self.default);
        for draft in default.into_iter().chain(drafts) {
            draft.transport.check(&mut self.warnings)?;
        }
        Ok(())
    }

    fn finish(mut self, source: Option<PathBuf>, cmd_ports: &[u16]) -> Config {
        let mut drafts = std::mem::take(&mut self.listeners);
        if self.default_used {
            let mut default = self.default.clone();
            default.is_default = true;
            drafts.insert(0, default);
        }
        let local_only = drafts.is_empty();
        let per_listener = self.per_listener_settings;
        let global = self.global.resolve(local_only);
        let own_security = |draft: &SecurityDraft| per_listener.then(|| draft.resolve(local_only));

        let mut listeners = Vec::new();
        if local_only {
            let ports: &[u16] = if cmd_ports.is_empty() {
                &[super::DEFAULT_PORT]
            } else {
                cmd_ports
            };
            for &port in ports {
                let local = [
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                ];
                listeners.push(Listener {
                    addrs: addrs_for(&local, port, self.default.socket_domain),
                    port,
                    max_connections: self.limits.max_connections,
                    security: own_security(&self.global),
                    mount_point: self.default.mount_point.clone(),
                    unix_path: None,
                    transport: Default::default(),
                });
            }
        } else {
            if !cmd_ports.is_empty() {
                self.warnings
                    .push("-p is ignored because the configuration defines listeners".to_string());
            }
            for draft in &drafts {
                let port = draft.port.unwrap_or(super::DEFAULT_PORT);
                let any = [
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                ];
                let ips = if draft.ips.is_empty() {
                    &any[..]
                } else {
                    &draft.ips[..]
                };
                let ips = if draft.unix_path.is_some() {
                    &[][..]
                } else {
                    ips
                };
                listeners.push(Listener {
                    addrs: addrs_for(ips, port, draft.socket_domain),
                    port,
                    max_connections: draft.max_connections.unwrap_or(self.limits.max_connections),
                    // The listener of `port`/`bind_address` uses the settings
                    // given outside any `listener` block.
                    security: own_security(if draft.is_default {
                        &self.global
                    } else {
                        &draft.security
                    }),
                    mount_point: draft.mount_point.clone(),
                    unix_path: draft.unix_path.clone(),
                    transport: draft.transport.resolve(),
                });
            }
        }
        if !self.http_admins.is_empty() && self.http.is_none() {
            self.warnings
                .push("http_admin has no effect without http_listener".to_string());
        }
        let http = self.http.take().map(|draft| HttpListener {
            addr: draft.addr,
            admins: std::mem::take(&mut self.http_admins),
            password_file: draft.password_file.or_else(|| global.password_file.clone()),
            certfile: draft.certfile,
            keyfile: draft.keyfile,
        });
        Config {
            listeners,
            local_only,
            per_listener_settings: per_listener,
            security: global,
            limits: self.limits,
            log: self.log,
            pid_file: self.pid_file,
            persistence: self.persistence,
            sys_interval: self.sys_interval,
            persistent_client_expiration: self.persistent_client_expiration,
            presence_events: self.presence_events,
            http,
            source,
            warnings: self.warnings,
            bridges: self.bridges,
            cluster: match (self.cluster_servers, self.cluster_node) {
                (Some((servers, _)), Some((node, _))) => Some(super::ClusterConfig {
                    servers,
                    node,
                    namespace: self.cluster_namespace.unwrap_or_else(|| "culex".to_owned()),
                }),
                _ => None,
            },
        }
    }
}

/// The addresses of a listener's host: an IP address, or a name looked up.
fn resolve(address: &str, option: &str, loc: &Loc) -> Result<Vec<IpAddr>, ConfigError> {
    if let Ok(ip) = address.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let mut ips: Vec<IpAddr> = (address, 0)
        .to_socket_addrs()
        .map_err(|e| loc.invalid(option, format!("cannot resolve '{address}': {e}")))?
        .map(|addr| addr.ip())
        .collect();
    ips.dedup();
    if ips.is_empty() {
        return Err(loc.invalid(option, format!("cannot resolve '{address}'")));
    }
    Ok(ips)
}

fn addrs_for(ips: &[IpAddr], port: u16, domain: Option<Domain>) -> Vec<SocketAddr> {
    ips.iter()
        .filter(|ip| match domain {
            None => true,
            Some(Domain::V4) => ip.is_ipv4(),
            Some(Domain::V6) => ip.is_ipv6(),
        })
        .map(|ip| SocketAddr::new(*ip, port))
        .collect()
}

/// mosquitto's include order: alphabetical, and the upper case of a letter
/// just before its lower case (`A.conf`, `a.conf`, `B.conf`, `b.conf`).
fn include_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |c: char| (c.to_ascii_lowercase(), c.is_ascii_lowercase());
    a.chars().map(key).cmp(b.chars().map(key))
}

/// This machine's name, for bridges' default client ids (as mosquitto).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "culex".to_owned())
}

fn split_word(text: &str) -> (&str, &str) {
    match text.split_once([' ', '\t']) {
        Some((word, rest)) => (word, rest.trim_start()),
        None => (text, ""),
    }
}

/// The single value of an option.
fn one<'a>(option: &str, rest: &'a str, loc: &Loc) -> Result<&'a str, ConfigError> {
    let value = without_comment(rest);
    if value.is_empty() {
        return Err(loc.invalid(option, "missing value"));
    }
    if value.contains(char::is_whitespace) {
        return Err(loc.invalid(option, format!("too many values in '{rest}'")));
    }
    Ok(value)
}

/// The values before a trailing ` # comment`. mosquitto ignores words after
/// the ones it expects, so such comments work there; anything else extra is
/// still an error here.
fn without_comment(rest: &str) -> &str {
    match rest.find(" #").or_else(|| rest.find("\t#")) {
        Some(at) => rest.get(..at).unwrap_or(rest).trim_end(),
        None => rest,
    }
}

/// A path: the rest of the line, which may contain spaces.
fn path_value(option: &str, rest: &str, loc: &Loc) -> Result<PathBuf, ConfigError> {
    if rest.is_empty() {
        return Err(loc.invalid(option, "missing value"));
    }
    Ok(PathBuf::from(rest))
}

fn bad_value(option: &str, value: &str, expected: &str, loc: &Loc) -> ConfigError {
    loc.invalid(
        option,
        format!("invalid value '{value}', expected {expected}"),
    )
}

fn parse_bool(option: &str, rest: &str, loc: &Loc) -> Result<bool, ConfigError> {
    match one(option, rest, loc)? {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(bad_value(option, other, "true or false", loc)),
    }
}

fn parse_num<T: std::str::FromStr>(option: &str, value: &str, loc: &Loc) -> Result<T, ConfigError> {
    if value.is_empty() {
        return Err(loc.invalid(option, "missing value"));
    }
    value
        .parse()
        .map_err(|_| bad_value(option, value, "a number in range", loc))
}

fn nonzero<T: Default + PartialEq>(value: T) -> Option<T> {
    (value != T::default()).then_some(value)
}

/// `persistent_client_expiration`: a count and one of h, d, w, m, y.
fn parse_expiration(option: &str, value: &str, loc: &Loc) -> Result<Duration, ConfigError> {
    const HOUR: u64 = 3600;
    const DAY: u64 = 24 * HOUR;
    let bad = || bad_value(option, value, "a number followed by h, d, w, m or y", loc);
    let unit_at = value.len().checked_sub(1).ok_or_else(bad)?;
    let (count, unit) = (
        value.get(..unit_at).ok_or_else(bad)?,
        value.get(unit_at..).ok_or_else(bad)?,
    );
    let seconds = match unit {
        "h" => HOUR,
        "d" => DAY,
        "w" => 7 * DAY,
        "m" => 30 * DAY,
        "y" => 365 * DAY,
        _ => return Err(bad()),
    };
    let count: u64 = count.parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(bad());
    }
    count
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}
