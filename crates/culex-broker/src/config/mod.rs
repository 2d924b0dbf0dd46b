//! mosquitto.conf: parsing, validation and the settings the broker runs with.
//!
//! (Contract for the parser and the broker core; the parser fills it in.)

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// `persistence` and friends (kept in memory for now; see issue 10).
    pub persistence: Persistence,
    /// `sys_interval`: seconds between `$SYS` updates; 0 disables them.
    pub sys_interval: Duration,
    /// `persistent_client_expiration`: when a disconnected persistent session
    /// expires (None: never).
    pub persistent_client_expiration: Option<Duration>,
    /// Presence events on `$SYS/broker/clients/ID/state` (culex's own option).
    pub presence_events: bool,
    /// The files the config was read from, for messages and reloads.
    pub source: Option<PathBuf>,
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
}

/// Authentication and authorisation settings.
#[derive(Debug, Clone, Default)]
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

/// Persistence settings as read; durable storage arrives with issue 10.
#[derive(Debug, Clone, Default)]
pub struct Persistence {
    /// `persistence`.
    pub enabled: bool,
    /// `persistence_location`.
    pub location: Option<PathBuf>,
    /// `persistence_file` (default `mosquitto.db`).
    pub file: Option<String>,
    /// `autosave_interval` in seconds.
    pub autosave_interval: Option<u64>,
    /// `autosave_on_changes`.
    pub autosave_on_changes: bool,
}
