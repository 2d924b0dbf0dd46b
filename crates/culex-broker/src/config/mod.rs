//! mosquitto.conf: parsing, validation and the settings the broker runs with.
//!
//! Start at [`Config::from_file`] (or [`Config::local_only`] without a file).
//! Everything mosquitto 2.0 accepts is known: served, accepted with a warning
//! in [`Config::warnings`], or refused with [`ConfigError::Unsupported`].
//!
//! culex adds options of its own (README.md lists them all), among them:
//!
//! ```text
//! # Publish presence events: a retained $SYS/broker/clients/ID/state (1 or 0)
//! # and a connect/disconnect event per client. Default false.
//! presence_events true
//!
//! # Per listener: every connection starts with a PROXY protocol header of
//! # this version (1: text, 2: binary), as HAProxy or a cloud load balancer
//! # sends it; the client address it names is the one logged and matched.
//! # A connection without a valid header is closed. mosquitto 2.1's name.
//! enable_proxy_protocol 2
//!
//! # The admin HTTP listener: the dashboard, /metrics and /api/ (off by
//! # default; 127.0.0.1 unless an address is given). certfile and keyfile
//! # after it serve HTTPS; http_admin names the password file's users who
//! # may use it. Off the loopback it needs both.
//! http_listener 8080 0.0.0.0
//! certfile /etc/culex/admin.crt
//! keyfile /etc/culex/admin.key
//! http_admin alice bob
//! ```

pub mod bridge;
pub mod cli_args;
mod parse;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The port of local-only mode and of `port` when no `-p` is given.
pub const DEFAULT_PORT: u16 = 1883;
/// `auto_id_prefix` when the config does not set one.
pub const DEFAULT_AUTO_ID_PREFIX: &str = "auto-";
/// `sys_interval` when the config does not set one, in seconds.
pub const DEFAULT_SYS_INTERVAL_SECS: u64 = 10;
/// The largest PUBLISH payload MQTT allows.
pub const MQTT_MAX_PAYLOAD: u32 = 268_435_455;
/// Every `log_type` name (`all` selects them all).
pub const LOG_TYPES: &[&str] = &[
    "debug",
    "error",
    "warning",
    "notice",
    "information",
    "subscribe",
    "unsubscribe",
    "websockets",
];
/// `log_type` when the config does not set one.
pub const DEFAULT_LOG_TYPES: &[&str] = &["error", "warning", "notice", "information"];

/// The notice lines mosquitto 2.0 logs, in this order, when it starts in
/// local-only mode (no listener configured).
pub const LOCAL_ONLY_MESSAGES: [&str; 3] = [
    "Starting in local only mode. Connections will only be possible from clients running on this machine.",
    "Create a configuration file which defines a listener to allow remote access.",
    "For more details see https://mosquitto.org/documentation/authentication-methods/",
];
/// mosquitto 2.0's notice when started without `-c`.
pub const USING_DEFAULT_CONFIG_MESSAGE: &str = "Using default config.";

/// Why a configuration cannot be used. Start-up stops on any of these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file (or an included one) could not be read.
    #[error("unable to open configuration file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An option mosquitto 2.0 does not have either.
    #[error("{}:{line}: unknown option '{option}'", file.display())]
    UnknownOption {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The option as written.
        option: String,
    },
    /// A known option with a bad or missing value, or in the wrong place.
    #[error("{}:{line}: {option}: {reason}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The option.
        option: String,
        /// What is wrong.
        reason: String,
    },
    /// A mosquitto option for a feature culex does not serve yet.
    #[error("{}:{line}: option '{option}' is not supported by culex yet ({feature})", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The option.
        option: String,
        /// The feature it belongs to.
        feature: String,
    },
}

/// Everything the broker runs with, after the config file and command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Never empty: with no listener configured, mosquitto 2's
    /// local-only mode gives 127.0.0.1 and ::1 on port 1883 (or each `-p`).
    pub listeners: Vec<Listener>,
    /// True when no listener was configured and the local-only defaults apply.
    pub local_only: bool,
    /// `per_listener_settings`.
    pub per_listener_settings: bool,
    /// Settings shared by all listeners (or the defaults of each listener when
    /// `per_listener_settings` is false).
    pub security: Security,
    /// Broker-wide limits.
    pub limits: Limits,
    /// Logging.
    pub log: LogConfig,
    /// `pid_file`.
    pub pid_file: Option<PathBuf>,
    /// `persistence` and friends: the durable store's location and mode.
    pub persistence: Persistence,
    /// `sys_interval`: seconds between `$SYS` updates; 0 disables them.
    pub sys_interval: Duration,
    /// `persistent_client_expiration`: when a disconnected persistent session
    /// expires (None: never).
    pub persistent_client_expiration: Option<Duration>,
    /// Presence events on `$SYS/broker/clients/ID/state` (culex's own option).
    pub presence_events: bool,
    /// The admin HTTP listener (`http_listener`, culex's own option).
    pub http: Option<HttpListener>,
    /// The main file the config was read from (None without one), for
    /// messages and reloads.
    pub source: Option<PathBuf>,
    /// Options accepted that change nothing (or not yet), one line each,
    /// `FILE:LINE: OPTION: why`, for the broker to log as warnings.
    pub warnings: Vec<String>,
    /// `connection` blocks: links to remote brokers.
    pub bridges: Vec<bridge::Bridge>,
    /// `cluster_servers` and `cluster_node` (culex's own): this broker as a
    /// node of a cluster on NATS JetStream; `None` alone.
    pub cluster: Option<ClusterConfig>,
}

/// A node of a culex cluster (see `docs/cluster.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `cluster_servers`: NATS servers, `nats://HOST:PORT`.
    pub servers: Vec<String>,
    /// `cluster_node`: this node's name, unique in the cluster.
    pub node: String,
    /// `cluster_namespace`: the prefix of every NATS subject, stream and
    /// bucket of the cluster (default `culex`), so that several clusters
    /// can share one NATS.
    pub namespace: String,
}

impl Config {
    /// The security settings in force on listener `index`: its own with
    /// `per_listener_settings true`, else the global ones.
    pub fn security_of(&self, index: usize) -> &Security {
        match self.listeners.get(index).and_then(|l| l.security.as_ref()) {
            Some(sec) if self.per_listener_settings => sec,
            _ => &self.security,
        }
    }

    /// Reads a mosquitto.conf and its `include_dir`s. `cmd_ports` are the
    /// `-p` ports, which count only when the file configures no listener.
    pub fn from_file(path: &Path, cmd_ports: &[u16]) -> Result<Config, ConfigError> {
        parse::parse_file(path, cmd_ports)
    }

    /// Parses configuration text; `name` is used in messages (an
    /// `include_dir` in it is still read from disk).
    pub fn parse(text: &str, name: &Path, cmd_ports: &[u16]) -> Result<Config, ConfigError> {
        parse::parse_text(text, name, cmd_ports)
    }

    /// mosquitto 2's configuration without a file: local-only mode on each of
    /// `ports` (1883 when empty), anonymous clients allowed.
    pub fn local_only(ports: &[u16]) -> Config {
        parse::defaults(ports)
    }

    /// The security settings that apply to clients of `listener`: its own
    /// with `per_listener_settings true`, else the global ones.
    pub fn security_for<'a>(&'a self, listener: &'a Listener) -> &'a Security {
        listener.security.as_ref().unwrap_or(&self.security)
    }
}

impl Default for Config {
    /// [`Config::local_only`] on port 1883.
    fn default() -> Config {
        Config::local_only(&[])
    }
}

/// One listening socket.
#[derive(Debug, Clone)]
pub struct Listener {
    /// Port and address; an unspecified address (`0.0.0.0`/`::`) binds all.
    pub addrs: Vec<SocketAddr>,
    /// The port as configured (for `on port N` log lines).
    pub port: u16,
    /// `max_connections` of this listener (-1 in the file: None).
    pub max_connections: Option<usize>,
    /// The listener's own security settings when `per_listener_settings true`.
    pub security: Option<Security>,
    /// `mount_point`.
    pub mount_point: Option<String>,
    /// `listener 0 /path/to.sock`: a unix socket instead of TCP (`addrs` is
    /// then empty).
    pub unix_path: Option<PathBuf>,
    /// PROXY protocol, TLS and WebSocket options, from which
    /// `culex_transport::Acceptor` builds the listener's layers.
    pub transport: culex_transport::TransportOptions,
}

/// The admin HTTP listener: the dashboard, `/metrics` and `/api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpListener {
    /// Where it listens (127.0.0.1 unless `http_listener` names an address).
    pub addr: SocketAddr,
    /// `http_admin`: the users of the password file who may use it. When
    /// empty, nobody needs to log in (allowed on the loopback only).
    pub admins: Vec<String>,
    /// The password file the administrators' passwords are checked
    /// against: the `password_file` after `http_listener` with
    /// `per_listener_settings true`, else the global one.
    pub password_file: Option<PathBuf>,
    /// `certfile` after `http_listener`: serve HTTPS with this certificate
    /// chain (PEM).
    pub certfile: Option<PathBuf>,
    /// `keyfile` after `http_listener`: the certificate's private key (PEM).
    pub keyfile: Option<PathBuf>,
}

impl HttpListener {
    /// An HTTP listener on `addr` without authentication or TLS.
    pub fn new(addr: SocketAddr) -> HttpListener {
        HttpListener {
            addr,
            admins: Vec::new(),
            password_file: None,
            certfile: None,
            keyfile: None,
        }
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.certfile.is_some()
    }
}

/// Authentication and authorisation settings.
#[derive(Debug, Clone)]
pub struct Security {
    /// `allow_anonymous` after mosquitto 2's defaults are applied.
    pub allow_anonymous: bool,
    /// `password_file`.
    pub password_file: Option<PathBuf>,
    /// `acl_file`.
    pub acl_file: Option<PathBuf>,
    /// `allow_zero_length_clientid`.
    pub allow_zero_length_clientid: bool,
    /// `auto_id_prefix` (default `auto-`).
    pub auto_id_prefix: String,
}

impl Default for Security {
    /// mosquitto 2's defaults for a configured listener: no anonymous clients.
    fn default() -> Security {
        Security {
            allow_anonymous: false,
            password_file: None,
            acl_file: None,
            allow_zero_length_clientid: true,
            auto_id_prefix: DEFAULT_AUTO_ID_PREFIX.to_string(),
        }
    }
}

/// Broker-wide limits; `None` means unlimited.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `max_inflight_messages` (default 20; 0 in the file means unlimited).
    pub max_inflight_messages: Option<u16>,
    /// `max_queued_messages` (default 1000; 0 means unlimited).
    pub max_queued_messages: Option<usize>,
    /// `max_queued_bytes` (0 means unlimited).
    pub max_queued_bytes: Option<usize>,
    /// `message_size_limit`: largest PUBLISH payload accepted (0: the MQTT maximum).
    pub message_size_limit: Option<u32>,
    /// `max_packet_size`: largest packet accepted (0: the MQTT maximum).
    pub max_packet_size: Option<u32>,
    /// `max_keepalive` (default 65535).
    pub max_keepalive: u16,
    /// `max_qos` (default 2).
    pub max_qos: culex_codec::QoS,
    /// `retain_available` (default true).
    pub retain_available: bool,
    /// `max_connections` when not per listener.
    pub max_connections: Option<usize>,
    /// `upgrade_outgoing_qos`.
    pub upgrade_outgoing_qos: bool,
    /// `max_topic_levels` (culex's own, default 200, mosquitto's fixed
    /// limit): the most levels a topic name or filter may have. Deeper
    /// ones are refused: a PUBLISH or will closes the connection (5.0:
    /// 0x90 Topic Name invalid), a filter gets a failure in its SUBACK
    /// (5.0: 0x8F Topic Filter invalid).
    pub max_topic_levels: usize,
    /// `auth_backoff_max` (culex's own, seconds, default 10, at most 15; 0
    /// turns it off): after 3 failed logins in a row from one address, its
    /// login attempts take turns, 0.5 s apart and doubling with each
    /// further failure up to this; attempts past it are refused unchecked
    /// (see `auth::backoff`).
    pub auth_backoff_max: Duration,
}

impl Default for Limits {
    /// mosquitto 2's defaults.
    fn default() -> Limits {
        Limits {
            max_inflight_messages: Some(20),
            max_queued_messages: Some(1000),
            max_queued_bytes: None,
            message_size_limit: None,
            max_packet_size: None,
            max_keepalive: u16::MAX,
            max_qos: culex_codec::QoS::ExactlyOnce,
            retain_available: true,
            max_connections: None,
            upgrade_outgoing_qos: false,
            max_topic_levels: 200,
            auth_backoff_max: Duration::from_secs(10),
        }
    }
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `log_dest`: stderr, stdout, file PATH, syslog (accepted), none.
    pub dest: Vec<LogDest>,
    /// `log_type` set (notice, information, warning, error, debug, subscribe, …).
    pub types: Vec<String>,
    /// `connection_messages` (default true).
    pub connection_messages: bool,
    /// `log_timestamp` (default true).
    pub timestamp: bool,
    /// `log_timestamp_format` (strftime), None: epoch seconds.
    pub timestamp_format: Option<String>,
    /// `-v` on the command line: everything, including per-packet debug lines.
    pub verbose: bool,
}

impl Default for LogConfig {
    /// mosquitto 2's defaults: stderr; errors, warnings, notices and information.
    fn default() -> LogConfig {
        LogConfig {
            dest: vec![LogDest::Stderr],
            types: DEFAULT_LOG_TYPES.iter().map(|t| t.to_string()).collect(),
            connection_messages: true,
            timestamp: true,
            timestamp_format: None,
            verbose: false,
        }
    }
}

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    /// Standard error (the default).
    Stderr,
    /// Standard output.
    Stdout,
    /// Appended to a file.
    File(PathBuf),
    /// Syslog (written to stderr until supported).
    Syslog,
    /// Topic `$SYS/broker/log/…` (accepted).
    Topic,
    /// Nothing.
    None,
}

/// Persistence settings as read.
#[derive(Debug, Clone, Default)]
pub struct Persistence {
    /// `persistence`.
    pub enabled: bool,
    /// `persistence_location`.
    pub location: Option<PathBuf>,
    /// `persistence_file` (default `culex.db`, never mosquitto's own file).
    pub file: Option<String>,
    /// `autosave_interval` in seconds.
    pub autosave_interval: Option<u64>,
    /// `autosave_on_changes`.
    pub autosave_on_changes: bool,
    /// culex's own `persistence_mode sync | periodic MS`; when absent the
    /// mode follows `autosave_interval` (see `culex_store::Durability`).
    pub mode: Option<culex_store::Durability>,
}

#[cfg(test)]
mod tests;
