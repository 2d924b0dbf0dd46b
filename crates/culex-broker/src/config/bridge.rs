//! mosquitto's bridge options: a `connection NAME` line starts a bridge,
//! and the bridge options after it configure that bridge.
//!
//! The parser hands every line to `BridgeDraft::option` while a bridge
//! is open; it knows no file or line (the caller adds them to errors).

use std::path::PathBuf;
use std::time::Duration;

use culex_codec::{Protocol, QoS, SubscriptionOptions};

/// One `connection` block: a link to a remote broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// The connection's name.
    pub name: String,
    /// Remote brokers, `host` and port, tried in order (`address`).
    pub addresses: Vec<(String, u16)>,
    /// `round_robin`: each new attempt goes to the next address; otherwise
    /// every attempt starts again at the first one.
    pub round_robin: bool,
    /// What crosses the link, which way (`topic`).
    pub topics: Vec<BridgeTopic>,
    /// `bridge_protocol_version` (default 3.1.1).
    pub protocol: Protocol,
    /// `cleansession`: the remote session's (default false).
    pub clean_session: bool,
    /// `local_cleansession`: the local session's (default: `cleansession`).
    pub local_clean_session: bool,
    /// `remote_clientid` / `clientid` (default `HOSTNAME.NAME`).
    pub remote_client_id: String,
    /// `local_clientid` (default `local.` + the remote client id).
    pub local_client_id: String,
    /// `remote_username` / `username`.
    pub remote_username: Option<String>,
    /// `remote_password` / `password`.
    pub remote_password: Option<String>,
    /// `local_username`.
    pub local_username: Option<String>,
    /// `local_password`.
    pub local_password: Option<String>,
    /// `keepalive_interval` in seconds (default 60, at least 5).
    pub keepalive: u16,
    /// `restart_timeout`: how long to wait before connecting again.
    pub restart: Restart,
    /// `start_type`.
    pub start_type: StartType,
    /// `idle_timeout` (lazy bridges), default 60 s.
    pub idle_timeout: Duration,
    /// `threshold` (lazy bridges): queued messages that start the link,
    /// default 10.
    pub threshold: usize,
    /// `notifications` (default true).
    pub notifications: bool,
    /// `notifications_local_only`.
    pub notifications_local_only: bool,
    /// `notification_topic` (default `$SYS/broker/connection/CLIENTID/state`).
    pub notification_topic: String,
    /// `try_private` (default true): the bridge bit in CONNECT.
    pub try_private: bool,
    /// `bridge_outgoing_retain` (default true).
    pub outgoing_retain: bool,
    /// `bridge_max_packet_size`: larger messages do not cross.
    pub max_packet_size: Option<u32>,
    /// `bridge_attempt_unsubscribe` (default true).
    pub attempt_unsubscribe: bool,
    /// TLS towards the remote (`bridge_cafile` and friends).
    pub tls: Option<BridgeTls>,
}

/// TLS towards the remote broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeTls {
    /// `bridge_cafile`.
    pub cafile: Option<PathBuf>,
    /// `bridge_capath`.
    pub capath: Option<PathBuf>,
    /// `bridge_certfile`.
    pub certfile: Option<PathBuf>,
    /// `bridge_keyfile`.
    pub keyfile: Option<PathBuf>,
    /// `bridge_insecure`: the remote's name is not checked.
    pub insecure: bool,
    /// `bridge_tls_version`: the lowest version (`tlsv1.2` or `tlsv1.3`).
    pub min_tls13: bool,
    /// `bridge_alpn`.
    pub alpn: Option<String>,
}

/// Which way a bridged topic goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local to remote.
    Out,
    /// Remote to local.
    In,
    /// Both.
    Both,
}

impl Bridge {
    /// The subscriptions one end of the bridge makes: on this broker
    /// (`local`) for the topics that go out, on the remote for those that
    /// come in. What the bridge sends must not come back, and retain flags
    /// cross as published: 5.0 says so in the options, 3.x has no such
    /// options (the bridge bit asks for them).
    pub fn subscriptions(&self, local: bool) -> Vec<(String, SubscriptionOptions)> {
        self.topics
            .iter()
            .filter(|t| if local { t.goes_out() } else { t.comes_in() })
            .map(|t| {
                let options = SubscriptionOptions {
                    qos: t.qos,
                    no_local: self.protocol.is_v5(),
                    retain_as_published: self.protocol.is_v5(),
                    ..SubscriptionOptions::default()
                };
                let filter = if local {
                    t.local_filter()
                } else {
                    t.remote_filter()
                };
                (filter, options)
            })
            .collect()
    }
}

/// A `topic` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTopic {
    /// The pattern, between the prefixes (may be empty with a prefix).
    pub pattern: String,
    /// Which way it goes (default out).
    pub direction: Direction,
    /// The QoS of the subscription that carries it (default 0).
    pub qos: QoS,
    /// Put before the pattern on this broker.
    pub local_prefix: String,
    /// Put before the pattern on the remote broker.
    pub remote_prefix: String,
}

impl BridgeTopic {
    /// The filter on this broker.
    pub fn local_filter(&self) -> String {
        format!("{}{}", self.local_prefix, self.pattern)
    }

    /// The filter on the remote broker.
    pub fn remote_filter(&self) -> String {
        format!("{}{}", self.remote_prefix, self.pattern)
    }

    /// Whether messages go local → remote.
    pub fn goes_out(&self) -> bool {
        matches!(self.direction, Direction::Out | Direction::Both)
    }

    /// Whether messages go remote → local.
    pub fn comes_in(&self) -> bool {
        matches!(self.direction, Direction::In | Direction::Both)
    }
}

/// When a bridge connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartType {
    /// At start, and again after every loss (the default).
    Automatic,
    /// When `threshold` messages wait; disconnects after `idle_timeout`.
    Lazy,
    /// At start, never again.
    Once,
}

/// The wait before connecting again (`restart_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always this long.
    Constant(Duration),
    /// Random, from `base`, doubling with each failure up to `cap`
    /// (mosquitto's default: base 5 s, cap 30 s).
    Backoff {
        /// The first wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
}

/// A bridge as read so far.
#[derive(Debug, Clone)]
pub(crate) struct BridgeDraft {
    bridge: Bridge,
    clientid_set: bool,
    local_clientid_set: bool,
    local_clean_set: bool,
    topic_set: bool,
}

/// The options that belong to a bridge (besides `connection`).
pub(crate) fn is_bridge_option(option: &str) -> bool {
    matches!(
        option,
        "address"
            | "addresses"
            | "cleansession"
            | "local_cleansession"
            | "keepalive_interval"
            | "local_clientid"
            | "local_password"
            | "local_username"
            | "notifications"
            | "notifications_local_only"
            | "notification_topic"
            | "remote_clientid"
            | "remote_password"
            | "remote_username"
            | "restart_timeout"
            | "round_robin"
            | "start_type"
            | "threshold"
            | "topic"
            | "try_private"
            | "idle_timeout"
            | "clientid"
            | "username"
            | "password"
    ) || option.starts_with("bridge_")
}

impl BridgeDraft {
    /// A bridge named `name`, with mosquitto's defaults.
    pub fn new(name: &str, hostname: &str) -> BridgeDraft {
        let remote_client_id = format!("{hostname}.{name}");
        BridgeDraft {
            bridge: Bridge {
                name: name.to_owned(),
                addresses: Vec::new(),
                round_robin: false,
                topics: Vec::new(),
                protocol: Protocol::V3_1_1,
                clean_session: false,
                local_clean_session: false,
                local_client_id: format!("local.{remote_client_id}"),
                remote_client_id,
                remote_username: None,
                remote_password: None,
                local_username: None,
                local_password: None,
                keepalive: 60,
                restart: Restart::Backoff {
                    base: Duration::from_secs(5),
                    cap: Duration::from_secs(30),
                },
                start_type: StartType::Automatic,
                idle_timeout: Duration::from_secs(60),
                threshold: 10,
                notifications: true,
                notifications_local_only: false,
                notification_topic: String::new(),
                try_private: true,
                outgoing_retain: true,
                max_packet_size: None,
                attempt_unsubscribe: true,
                tls: None,
            },
            clientid_set: false,
            local_clientid_set: false,
            local_clean_set: false,
            topic_set: false,
        }
    }

    /// Applies one option line; `Err(reason)` for a bad value, or an
    /// option rustls cannot honour.
    pub fn option(&mut self, option: &str, rest: &str) -> Result<(), String> {
        let b = &mut self.bridge;
        match option {
            "address" | "addresses" => {
                for word in rest.split_whitespace() {
                    b.addresses.push(address(word)?);
                }
                if b.addresses.is_empty() {
                    return Err("missing value".into());
                }
            }
            "round_robin" => b.round_robin = boolean(rest)?,
            "topic" => {
                b.topics.push(topic(rest)?);
                self.topic_set = true;
            }
            "bridge_protocol_version" => {
                b.protocol = match one(rest)? {
                    "mqttv31" => Protocol::V3_1,
                    "mqttv311" => Protocol::V3_1_1,
                    "mqttv50" => Protocol::V5,
                    other => {
                        return Err(format!("'{other}': expected mqttv31, mqttv311 or mqttv50"))
                    }
                }
            }
            "cleansession" => b.clean_session = boolean(rest)?,
            "local_cleansession" => {
                b.local_clean_session = boolean(rest)?;
                self.local_clean_set = true;
            }
            "remote_clientid" | "clientid" => {
                b.remote_client_id = one(rest)?.to_owned();
                self.clientid_set = true;
            }
            "local_clientid" => {
                b.local_client_id = one(rest)?.to_owned();
                self.local_clientid_set = true;
            }
            "remote_username" | "username" => b.remote_username = Some(one(rest)?.to_owned()),
            "remote_password" | "password" => b.remote_password = Some(one(rest)?.to_owned()),
            "local_username" => b.local_username = Some(one(rest)?.to_owned()),
            "local_password" => b.local_password = Some(one(rest)?.to_owned()),
            "keepalive_interval" => {
                let secs: u16 = number(one(rest)?)?;
                if secs < 5 {
                    return Err("at least 5 seconds".into());
                }
                b.keepalive = secs;
            }
            "restart_timeout" => b.restart = restart(rest)?,
            "start_type" => {
                b.start_type = match one(rest)? {
                    "automatic" => StartType::Automatic,
                    "lazy" => StartType::Lazy,
                    "once" => StartType::Once,
                    other => return Err(format!("'{other}': expected automatic, lazy or once")),
                }
            }
            "idle_timeout" => b.idle_timeout = Duration::from_secs(number(one(rest)?)?),
            "threshold" => b.threshold = number::<usize>(one(rest)?)?.max(1),
            "notifications" => b.notifications = boolean(rest)?,
            "notifications_local_only" => b.notifications_local_only = boolean(rest)?,
            "notification_topic" => b.notification_topic = one(rest)?.to_owned(),
            "try_private" => b.try_private = boolean(rest)?,
            "bridge_outgoing_retain" => b.outgoing_retain = boolean(rest)?,
            "bridge_attempt_unsubscribe" => b.attempt_unsubscribe = boolean(rest)?,
            "bridge_max_packet_size" => {
                let size: u32 = number(one(rest)?)?;
                b.max_packet_size = (size > 0).then_some(size);
            }
            _ => self.tls_option(option, rest)?,
        }
        Ok(())
    }

    fn tls_option(&mut self, option: &str, rest: &str) -> Result<(), String> {
        let tls = self.bridge.tls.get_or_insert_with(BridgeTls::default);
        match option {
            "bridge_cafile" => tls.cafile = Some(file(rest)?),
            "bridge_capath" => tls.capath = Some(file(rest)?),
            "bridge_certfile" => tls.certfile = Some(file(rest)?),
            "bridge_keyfile" => tls.keyfile = Some(file(rest)?),
            "bridge_insecure" => tls.insecure = boolean(rest)?,
            "bridge_alpn" => tls.alpn = Some(one(rest)?.to_owned()),
            "bridge_tls_version" => {
                tls.min_tls13 = match one(rest)? {
                    "tlsv1.3" => true,
                    "tlsv1.2" => false,
                    other => {
                        return Err(format!("'{other}': rustls speaks tlsv1.2 and tlsv1.3 only"))
                    }
                }
            }
            "bridge_identity" | "bridge_psk" => {
                return Err("TLS-PSK is not available (rustls has no PSK)".into())
            }
            "bridge_require_ocsp" => return Err("OCSP is not available in culex".into()),
            _ => return Err("unknown bridge option".into()),
        }
        Ok(())
    }

    /// The finished bridge; `Err(reason)` when it cannot work.
    pub fn finish(mut self) -> Result<Bridge, String> {
        let b = &mut self.bridge;
        if b.addresses.is_empty() {
            return Err(format!("bridge '{}' has no address", b.name));
        }
        if !self.topic_set {
            return Err(format!("bridge '{}' has no topic", b.name));
        }
        if !self.local_clean_set {
            b.local_clean_session = b.clean_session;
        }
        if self.clientid_set && !self.local_clientid_set {
            b.local_client_id = format!("local.{}", b.remote_client_id);
        }
        if b.notification_topic.is_empty() {
            b.notification_topic = format!("$SYS/broker/connection/{}/state", b.remote_client_id);
        }
        if b.local_client_id == b.remote_client_id {
            return Err(format!(
                "bridge '{}': local_clientid and remote clientid are the same",
                b.name
            ));
        }
        Ok(self.bridge)
    }
}

fn one(rest: &str) -> Result<&str, String> {
    let mut words = rest.split_whitespace();
    match (words.next(), words.next()) {
        (Some(word), None) => Ok(word),
        (None, _) => Err("missing value".into()),
        (Some(_), Some(_)) => Err(format!("too many values in '{rest}'")),
    }
}

fn boolean(rest: &str) -> Result<bool, String> {
    match one(rest)? {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("'{other}': expected true or false")),
    }
}

fn number<T: std::str::FromStr>(word: &str) -> Result<T, String> {
    word.parse()
        .map_err(|_| format!("'{word}' is not a valid number"))
}

fn file(rest: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(rest.trim());
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    Ok(path)
}

/// `host`, `host:port` or `[v6]:port` (port 1883 when absent).
fn address(word: &str) -> Result<(String, u16), String> {
    if let Some(rest) = word.strip_prefix('[') {
        let (host, port) = rest.split_once("]:").ok_or_else(|| {
            format!("'{word}': an IPv6 address needs its port, as [ADDRESS]:PORT")
        })?;
        return Ok((host.to_owned(), number(port)?));
    }
    match word.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Ok((host.to_owned(), number(port)?)),
        Some(_) => Err(format!(
            "'{word}': an IPv6 address needs its port, as [ADDRESS]:PORT"
        )),
        None => Ok((word.to_owned(), 1883)),
    }
}

/// `topic PATTERN [[[out | in | both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`;
/// `""` stands for an empty pattern or prefix.
fn topic(rest: &str) -> Result<BridgeTopic, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let unquote = |w: &str| {
        if w == "\"\"" {
            String::new()
        } else {
            w.to_owned()
        }
    };
    let Some(pattern) = words.first() else {
        return Err("missing pattern".into());
    };
    let direction = match words.get(1).copied() {
        None | Some("out") => Direction::Out,
        Some("in") => Direction::In,
        Some("both") => Direction::Both,
        Some(other) => return Err(format!("'{other}': expected out, in or both")),
    };
    let qos = match words.get(2).copied() {
        None | Some("0") => QoS::AtMostOnce,
        Some("1") => QoS::AtLeastOnce,
        Some("2") => QoS::ExactlyOnce,
        Some(other) => return Err(format!("'{other}': expected QoS 0, 1 or 2")),
    };
    let (local_prefix, remote_prefix) = match (words.get(3), words.get(4), words.get(5)) {
        (None, None, None) => (String::new(), String::new()),
        (Some(l), Some(r), None) => (unquote(l), unquote(r)),
        (_, _, Some(_)) => return Err(format!("too many values in '{rest}'")),
        _ => return Err("a local prefix needs a remote prefix".into()),
    };
    let topic = BridgeTopic {
        pattern: unquote(pattern),
        direction,
        qos,
        local_prefix,
        remote_prefix,
    };
    if topic.pattern.is_empty() && topic.local_prefix.is_empty() && topic.remote_prefix.is_empty() {
        return Err("an empty pattern needs prefixes".into());
    }
    for filter in [topic.local_filter(), topic.remote_filter()] {
        culex_codec::topic::TopicFilter::new(&filter)
            .map_err(|e| format!("'{filter}' is not a valid topic filter: {e}"))?;
    }
    Ok(topic)
}

/// `restart_timeout VALUE` (constant) or `restart_timeout BASE CAP` (backoff).
fn restart(rest: &str) -> Result<Restart, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    match words.as_slice() {
        [value] => Ok(Restart::Constant(Duration::from_secs(number(value)?))),
        [base, cap] => Ok(Restart::Backoff {
            base: Duration::from_secs(number(base)?),
            cap: Duration::from_secs(number(cap)?),
        }),
        _ => Err(format!("'{rest}': expected a value, or a base and a cap")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge(lines: &[(&str, &str)]) -> Result<Bridge, String> {
        let mut draft = BridgeDraft::new("link", "host");
        for (option, rest) in lines {
            draft.option(option, rest)?;
        }
        draft.finish()
    }

    #[test]
    fn defaults_are_mosquittos() {
        let b = bridge(&[("address", "example.org"), ("topic", "#")]).unwrap();
        assert_eq!(b.addresses, [("example.org".to_owned(), 1883)]);
        assert_eq!(b.remote_client_id, "host.link");
        assert_eq!(b.local_client_id, "local.host.link");
        assert_eq!(
            b.notification_topic,
            "$SYS/broker/connection/host.link/state"
        );
        assert!(!b.clean_session && !b.local_clean_session && b.try_private);
        assert_eq!(b.protocol, Protocol::V3_1_1);
        let t = &b.topics[0];
        assert_eq!((t.direction, t.qos), (Direction::Out, QoS::AtMostOnce));
    }

    #[test]
    fn topic_lines_as_mosquitto_reads_them() {
        let t = topic("sensors/# both 2 local/ remote/").unwrap();
        assert_eq!(
            (t.local_filter(), t.remote_filter()),
            ("local/sensors/#".into(), "remote/sensors/#".into())
        );
        assert_eq!((t.direction, t.qos), (Direction::Both, QoS::ExactlyOnce));
        let t = topic("\"\" in 1 a/b c/d").unwrap();
        assert_eq!(
            (t.local_filter(), t.remote_filter()),
            ("a/b".into(), "c/d".into())
        );
        for bad in [
            "x sideways",
            "x out 3",
            "x out 1 local/",
            "\"\" out 0",
            "a/#/b",
        ] {
            assert!(topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_and_timeouts() {
        let b = bridge(&[
            ("address", "a:1884 [::1]:1885 b"),
            ("round_robin", "true"),
            ("topic", "t in"),
            ("restart_timeout", "2"),
            ("clientid", "mine"),
            ("cleansession", "true"),
        ])
        .unwrap();
        assert_eq!(b.addresses.len(), 3);
        assert_eq!(b.addresses[1], ("::1".to_owned(), 1885));
        assert_eq!(b.restart, Restart::Constant(Duration::from_secs(2)));
        assert_eq!(b.local_client_id, "local.mine");
        assert!(b.local_clean_session, "follows cleansession");
        assert!(bridge(&[
            ("address", "a"),
            ("topic", "t"),
            ("restart_timeout", "5 30")
        ])
        .is_ok());
        assert!(bridge(&[("topic", "t")])
            .unwrap_err()
            .contains("no address"));
        assert!(bridge(&[("address", "a")])
            .unwrap_err()
            .contains("no topic"));
        assert!(bridge(&[("address", "a"), ("topic", "t"), ("bridge_psk", "x")]).is_err());
        assert!(bridge(&[("address", "::1")]).is_err());
    }
}
