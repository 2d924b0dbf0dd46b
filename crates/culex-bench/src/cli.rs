//! Command-line arguments of `culex bench`, and their resolution into a [`Plan`].

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use culex_codec::{Protocol, QoS};

use crate::BenchError;

/// The longest run accepted: every run is bounded.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The longest drain accepted after the publishers stop.
pub const MAX_DRAIN: Duration = Duration::from_secs(60);
/// The largest payload accepted.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;
/// The most clients one run may open.
pub const MAX_CLIENTS: u32 = 100_000;

/// `culex bench`: an MQTT load generator.
#[derive(Debug, Parser)]
#[command(
    name = "culex bench",
    version,
    about = "An MQTT load generator: connections, publishers, subscribers and the usual scenarios",
    after_help = "Every run is bounded in time. Targets outside 127.0.0.0/8 and ::1 are refused \
                  unless --allow-remote is given."
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open CLIENTS connections, hold them idle for the duration, report the connect rate.
    Conn(Opts),
    /// CLIENTS publishers, each on TOPIC with %i replaced by its index; no subscribers.
    Pub(Opts),
    /// CLIENTS subscribers, each to TOPIC with %i replaced by its index.
    Sub(Opts),
    /// CLIENTS publishers on TOPIC(i), SUBSCRIBERS (default 1) subscribers to TOPIC(+).
    Fanin(Opts),
    /// PUBLISHERS (default 1) publishers on TOPIC(i), CLIENTS subscribers to TOPIC(+).
    Fanout(Opts),
    /// CLIENTS publisher/subscriber pairs: publisher i on TOPIC(i), subscriber i on TOPIC(i).
    Pairs(Opts),
    /// Pairs at a fixed rate (default 10 pairs at 1000 msg/s each), for latency.
    Latency(Opts),
}

/// Options shared by every scenario.
#[derive(Debug, Clone, Args)]
pub struct Opts {
    /// Broker host name or address.
    #[arg(short = 'H', long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(short, long, default_value_t = 1883)]
    pub port: u16,
    /// Subscribers connect to this port of the host instead (another node
    /// of a cluster, or the far side of a bridge).
    #[arg(long)]
    pub sub_port: Option<u16>,
    /// Number of clients (connections, publishers, subscribers or pairs; see each scenario).
    #[arg(short, long, value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64))]
    pub clients: Option<u32>,
    /// Publishers in fanout (default 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64))]
    pub publishers: Option<u32>,
    /// Subscribers in fanin (default 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_CLIENTS as i64))]
    pub subscribers: Option<u32>,
    /// Topic pattern; %i becomes the client index (or + in a fanin/fanout filter).
    #[arg(short, long, default_value = "bench/%i")]
    pub topic: String,
    /// Subscribers join the shared subscription GROUP (`$share/GROUP/`
    /// before their filter): each message reaches one of them, as in a
    /// pool of workers.
    #[arg(long, value_name = "GROUP")]
    pub share: Option<String>,
    /// QoS of publications and subscriptions.
    #[arg(short, long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (16 or more carries a timestamp for latency).
    #[arg(short, long, default_value_t = 64, value_parser = parse_size)]
    pub size: usize,
    /// Messages per second per publisher; 0 is flat out (default, except latency: 1000).
    #[arg(short, long)]
    pub rate: Option<f64>,
    /// Messages per second offered by all publishers together, split evenly
    /// between them (instead of --rate).
    #[arg(long, conflicts_with = "rate")]
    pub total_rate: Option<f64>,
    /// How long to publish or hold connections, e.g. 10s, 500ms, 2m (at most 1h).
    #[arg(short, long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time allowed after publishing stops for messages in flight to arrive (at most 60s).
    #[arg(long, default_value = "2s", value_parser = parse_drain)]
    pub drain: Duration,
    /// MQTT version: 3.1.1 or 5.
    #[arg(short = 'V', long, default_value = "3.1.1", value_parser = parse_protocol)]
    pub protocol: ProtocolArg,
    /// QoS 1/2 messages a publisher may have unacknowledged (capped by the broker's receive maximum).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,
    /// Local source addresses, spread round-robin: a range 127.0.0.1-127.0.0.8, a list, or a count N (127.0.0.1..N).
    #[arg(long)]
    pub source_ips: Option<String>,
    /// Connection attempts in progress at once (from connect() to CONNACK).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connect_concurrency: u32,
    /// Write CONNECT right after connect(), before the runtime has reported
    /// the TCP handshake complete. Faster for the tool; by default each
    /// client waits for the handshake, as mosquitto_pub and paho do.
    #[arg(long)]
    pub early_connect: bool,
    /// Connect over TLS (the broker's certificate must be valid for --host).
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) that the broker's TLS certificate is checked against.
    #[arg(long, requires = "tls")]
    pub cafile: Option<std::path::PathBuf>,
    /// Speak MQTT over a WebSocket (`mqtt` subprotocol; with --tls, over TLS).
    #[arg(long)]
    pub ws: bool,
    /// User name for CONNECT.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password for CONNECT.
    #[arg(short = 'P', long)]
    pub password: Option<String>,
    /// Prefix of client identifiers (followed by the role and index).
    #[arg(long)]
    pub client_id_prefix: Option<String>,
    /// Subscribers keep their sessions (clean session 0; 5.0: session expiry
    /// 300 s), so a persisting broker stores what it queues for them.
    #[arg(long)]
    pub persistent: bool,
    /// Worker threads of the load generator (default: the number of cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Print the summary as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No live progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Allow targets and source addresses outside loopback.
    #[arg(long)]
    pub allow_remote: bool,
}

/// The MQTT version chosen on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// MQTT 3.1.1.
    V311,
    /// MQTT 5.0.
    V5,
}

impl ProtocolArg {
    /// The codec's protocol.
    pub fn protocol(self) -> Protocol {
        match self {
            ProtocolArg::V311 => Protocol::V3_1_1,
            ProtocolArg::V5 => Protocol::V5,
        }
    }

    /// How the summary names it.
    pub fn name(self) -> &'static str {
        match self {
            ProtocolArg::V311 => "3.1.1",
            ProtocolArg::V5 => "5.0",
        }
    }
}

/// The kind of run, without its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Idle connections.
    Conn,
    /// Publishers only.
    Pub,
    /// Subscribers only.
    Sub,
    /// Many publishers, few subscribers.
    Fanin,
    /// Few publishers, many subscribers.
    Fanout,
    /// One subscriber per publisher.
    Pairs,
    /// Pairs at a fixed rate.
    Latency,
}

impl Scenario {
    /// The subcommand's name.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Conn => "conn",
            Scenario::Pub => "pub",
            Scenario::Sub => "sub",
            Scenario::Fanin => "fanin",
            Scenario::Fanout => "fanout",
            Scenario::Pairs => "pairs",
            Scenario::Latency => "latency",
        }
    }
}

impl Command {
    /// The scenario and its options.
    pub fn split(self) -> (Scenario, Opts) {
        match self {
            Command::Conn(o) => (Scenario::Conn, o),
            Command::Pub(o) => (Scenario::Pub, o),
            Command::Sub(o) => (Scenario::Sub, o),
            Command::Fanin(o) => (Scenario::Fanin, o),
            Command::Fanout(o) => (Scenario::Fanout, o),
            Command::Pairs(o) => (Scenario::Pairs, o),
            Command::Latency(o) => (Scenario::Latency, o),
        }
    }
}

/// Who subscribes to what in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeTo {
    /// Subscriber i takes TOPIC with %i replaced by i.
    Own,
    /// Every subscriber takes TOPIC with %i replaced by `+`.
    Wildcard,
}

/// A run, fully resolved from the options.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Host as given.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The port subscribers connect to, when not `port`.
    pub sub_port: Option<u16>,
    /// Idle connections (conn only).
    pub connections: u32,
    /// Publishers.
    pub publishers: u32,
    /// Subscribers.
    pub subscribers: u32,
    /// What subscribers subscribe to.
    pub subscribe_to: SubscribeTo,
    /// Deliveries expected per message sent, when the run has both sides.
    pub fanout_factor: Option<u64>,
    /// Topic pattern.
    pub topic: String,
    /// The shared subscription group subscribers join.
    pub share: Option<String>,
    /// QoS.
    pub qos: QoS,
    /// Payload size.
    pub size: usize,
    /// Messages per second per publisher; `None` is flat out.
    pub rate: Option<f64>,
    /// Measured phase.
    pub duration: Duration,
    /// Drain allowance.
    pub drain: Duration,
    /// MQTT version.
    pub protocol: ProtocolArg,
    /// Publisher window for QoS 1/2.
    pub inflight: u16,
    /// Source addresses, empty for the system's choice.
    pub source_ips: Vec<IpAddr>,
    /// Connection attempts at once.
    pub connect_concurrency: u32,
    /// CONNECT written before the handshake is known to be complete.
    pub early_connect: bool,
    /// TLS, with the CA file to trust.
    pub tls: Option<std::path::PathBuf>,
    /// WebSocket.
    pub ws: bool,
    /// CONNECT user name.
    pub username: Option<String>,
    /// CONNECT password.
    pub password: Option<String>,
    /// Client id prefix.
    pub client_id_prefix: String,
    /// Subscribers keep their sessions.
    pub persistent: bool,
    /// Runtime worker threads.
    pub threads: usize,
    /// JSON summary.
    pub json: bool,
    /// No progress line.
    pub quiet: bool,
    /// Remote targets allowed.
    pub allow_remote: bool,
}

impl Plan {
    /// Resolves the scenario's defaults and checks the options together.
    pub fn new(scenario: Scenario, o: Opts) -> Result<Plan, BenchError> {
        let clients = o.clients;
        let (connections, publishers, subscribers, subscribe_to) = match scenario {
            Scenario::Conn => (clients.unwrap_or(100), 0, 0, SubscribeTo::Own),
            Scenario::Pub => (0, clients.unwrap_or(1), 0, SubscribeTo::Own),
            Scenario::Sub => (0, 0, clients.unwrap_or(1), SubscribeTo::Own),
            Scenario::Fanin => (
                0,
                clients.unwrap_or(8),
                o.subscribers.unwrap_or(1),
                SubscribeTo::Wildcard,
            ),
            Scenario::Fanout => (
                0,
                o.publishers.unwrap_or(1),
                clients.unwrap_or(8),
                SubscribeTo::Wildcard,
            ),
            Scenario::Pairs => {
                let n = clients.unwrap_or(8);
                (0, n, n, SubscribeTo::Own)
            }
            Scenario::Latency => {
                let n = clients.unwrap_or(10);
                (0, n, n, SubscribeTo::Own)
            }
        };
        if o.publishers.is_some() && scenario != Scenario::Fanout {
            return Err(BenchError::Usage(
                "--publishers applies to fanout only (use --clients)".into(),
            ));
        }
        if o.subscribers.is_some() && scenario != Scenario::Fanin {
            return Err(BenchError::Usage(
                "--subscribers applies to fanin only (use --clients)".into(),
            ));
        }
        let total = u64::from(connections) + u64::from(publishers) + u64::from(subscribers);
        if total > u64::from(MAX_CLIENTS) {
            return Err(BenchError::Usage(format!(
                "at most {MAX_CLIENTS} clients in one run"
            )));
        }
        if o.share.is_some() && subscribers == 0 {
            return Err(BenchError::Usage(
                "--share needs a scenario with subscribers".into(),
            ));
        }
        // [MQTT-4.8.2-2]: a share name is not empty and has no `/`, `+` or `#`.
        if let Some(group) = &o.share {
            if group.is_empty() || group.contains(['/', '+', '#']) {
                return Err(BenchError::Usage(format!(
                    "--share {group:?}: a group name is not empty and has no '/', '+' or '#'"
                )));
            }
        }
        let fanout_factor = match scenario {
            Scenario::Pairs | Scenario::Latency => Some(1),
            // A shared group takes each message once [MQTT-4.8.2-2].
            Scenario::Fanin | Scenario::Fanout if o.share.is_some() => Some(1),
            Scenario::Fanin | Scenario::Fanout => Some(u64::from(subscribers)),
            Scenario::Conn | Scenario::Pub | Scenario::Sub => None,
        };
        if matches!(scenario, Scenario::Pairs | Scenario::Latency) && !o.topic.contains("%i") {
            return Err(BenchError::Usage(
                "pairs need a topic pattern with %i so each pair has its own topic".into(),
            ));
        }
        let rate = match (o.rate, o.total_rate) {
            (Some(r), _) | (_, Some(r)) if !(r.is_finite() && r >= 0.0) => {
                return Err(BenchError::Usage(format!("invalid rate {r}")))
            }
            (_, Some(_)) if publishers == 0 => {
                return Err(BenchError::Usage(
                    "--total-rate needs publishers in the scenario".into(),
                ))
            }
            (Some(0.0), _) | (_, Some(0.0)) => None,
            (Some(r), _) => Some(r),
            (None, Some(total)) => Some(total / f64::from(publishers)),
            (None, None) if scenario == Scenario::Latency => Some(1000.0),
            (None, None) => None,
        };
        let qos =
            QoS::from_u8(o.qos).ok_or_else(|| BenchError::Usage("qos must be 0, 1 or 2".into()))?;
        check_topic(
            &o.topic,
            publishers > 0,
            subscribers > 0,
            subscribe_to,
            o.share.as_deref(),
        )?;
        let source_ips = match &o.source_ips {
            None => Vec::new(),
            Some(spec) => parse_source_ips(spec)?,
        };
        if !o.allow_remote {
            if let Some(ip) = source_ips.iter().find(|ip| !ip.is_loopback()) {
                return Err(BenchError::Remote(format!("source address {ip}")));
            }
        }
        let threads = match o.threads {
            Some(t) => usize::from(t),
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        };
        let tls = match (o.tls, o.cafile) {
            (true, Some(cafile)) => Some(cafile),
            (true, None) => {
                return Err(BenchError::Usage(
                    "--tls needs --cafile with the broker's CA".into(),
                ))
            }
            (false, _) => None,
        };
        let client_id_prefix = o
            .client_id_prefix
            .unwrap_or_else(|| format!("culex-bench-{}", std::process::id()));
        Ok(Plan {
            scenario,
            host: o.host,
            port: o.port,
            sub_port: o.sub_port,
            connections,
            publishers,
            subscribers,
            subscribe_to,
            fanout_factor,
            topic: o.topic,
            share: o.share,
            qos,
            size: o.size,
            rate,
            duration: o.duration,
            drain: o.drain,
            protocol: o.protocol,
            inflight: o.inflight,
            source_ips,
            connect_concurrency: o.connect_concurrency,
            early_connect: o.early_connect,
            tls,
            ws: o.ws,
            username: o.username,
            password: o.password,
            client_id_prefix,
            persistent: o.persistent,
            threads,
            json: o.json,
            quiet: o.quiet,
            allow_remote: o.allow_remote,
        })
    }

    /// The topic publisher `index` publishes on.
    pub fn publish_topic(&self, index: u32) -> String {
        self.topic.replace("%i", &index.to_string())
    }

    /// Every client of the run: idle connections, publishers and
    /// subscribers, each one socket.
    pub fn clients(&self) -> u64 {
        u64::from(self.connections) + u64::from(self.publishers) + u64::from(self.subscribers)
    }

    /// The filter subscriber `index` subscribes to.
    pub fn subscribe_filter(&self, index: u32) -> String {
        let filter = match self.subscribe_to {
            SubscribeTo::Own => self.topic.replace("%i", &index.to_string()),
            SubscribeTo::Wildcard => self.topic.replace("%i", "+"),
        };
        shared(self.share.as_deref(), filter)
    }
}

/// Checks that the topic pattern yields valid names and filters.
fn check_topic(
    pattern: &str,
    publishes: bool,
    subscribes: bool,
    subscribe_to: SubscribeTo,
    share: Option<&str>,
) -> Result<(), BenchError> {
    use culex_codec::topic::{TopicFilter, TopicName};
    let sample = pattern.replace("%i", "0");
    if publishes {
        TopicName::new(&sample).map_err(|e| {
            BenchError::Usage(format!("topic {sample:?} is not a valid topic name: {e}"))
        })?;
    }
    if subscribes {
        let filter = match subscribe_to {
            SubscribeTo::Own => sample,
            SubscribeTo::Wildcard => pattern.replace("%i", "+"),
        };
        let filter = shared(share, filter);
        TopicFilter::new(&filter).map_err(|e| {
            BenchError::Usage(format!("{filter:?} is not a valid topic filter: {e}"))
        })?;
    }
    Ok(())
}

/// `filter` in the shared subscription `group`, if any.
fn shared(group: Option<&str>, filter: String) -> String {
    match group {
        Some(group) => format!("$share/{group}/{filter}"),
        None => filter,
    }
}

/// Parses `127.0.0.1-127.0.0.8`, `127.0.0.1,127.0.0.2` or a count `8`.
pub fn parse_source_ips(spec: &str) -> Result<Vec<IpAddr>, BenchError> {
    let bad = || BenchError::Usage(format!("invalid --source-ips {spec:?}"));
    let spec = spec.trim();
    if let Ok(count) = spec.parse::<u32>() {
        if count == 0 || count > 254 {
            return Err(bad());
        }
        return Ok((1..=count)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
            .collect());
    }
    if let Some((first, last)) = spec.split_once('-') {
        let first: Ipv4Addr = first.trim().parse().map_err(|_| bad())?;
        let last: Ipv4Addr = last.trim().parse().map_err(|_| bad())?;
        let (a, b) = (u32::from(first), u32::from(last));
        if b < a || b - a >= 65_536 {
            return Err(bad());
        }
        return Ok((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect());
    }
    spec.split(',')
        .map(|part| part.trim().parse::<IpAddr>().map_err(|_| bad()))
        .collect()
}

/// Parses `10s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = parse_any_duration(text)?;
    if d.is_zero() || d > MAX_DURATION {
        return Err(format!(
            "duration must be above 0 and at most {}s",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

fn parse_drain(text: &str) -> Result<Duration, String> {
    let d = parse_any_duration(text)?;
    if d > MAX_DRAIN {
        return Err(format!("drain must be at most {}s", MAX_DRAIN.as_secs()));
    }
    Ok(d)
}

fn parse_any_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {text:?} (use ms, s, m or h)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("invalid duration {text:?}"))
}

fn parse_size(text: &str) -> Result<usize, String> {
    let size: usize = text.parse().map_err(|_| format!("invalid size {text:?}"))?;
    if size > MAX_PAYLOAD {
        return Err(format!("payload size must be at most {MAX_PAYLOAD} bytes"));
    }
    Ok(size)
}

fn parse_protocol(text: &str) -> Result<ProtocolArg, String> {
    match text {
        "3.1.1" | "311" | "4" | "mqttv311" => Ok(ProtocolArg::V311),
        "5" | "5.0" | "mqttv5" => Ok(ProtocolArg::V5),
        _ => Err(format!("unsupported protocol {text:?} (use 3.1.1 or 5)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(
            parse_duration("2h").is_err(),
            "longer than the enforced maximum"
        );
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn source_ips() {
        let ips = parse_source_ips("127.0.0.1-127.0.0.3").unwrap();
        assert_eq!(ips.len(), 3);
        assert_eq!(ips[2], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(parse_source_ips("4").unwrap().len(), 4);
        assert_eq!(parse_source_ips("127.0.0.2, 127.0.0.9").unwrap().len(), 2);
        assert!(parse_source_ips("127.0.0.5-127.0.0.1").is_err());
        assert!(parse_source_ips("0").is_err());
        assert!(parse_source_ips("nonsense").is_err());
    }

    fn plan(args: &[&str]) -> Result<Plan, BenchError> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map_err(|e| BenchError::Usage(e.to_string()))?;
        let (scenario, opts) = cli.command.split();
        Plan::new(scenario, opts)
    }

    #[test]
    fn scenario_defaults() {
        let p = plan(&["fanout"]).unwrap();
        assert_eq!(
            (p.publishers, p.subscribers, p.fanout_factor),
            (1, 8, Some(8))
        );
        assert_eq!(p.subscribe_filter(3), "bench/+");
        let p = plan(&["fanin", "-c", "4"]).unwrap();
        assert_eq!((p.publishers, p.subscribers), (4, 1));
        assert_eq!(p.publish_topic(3), "bench/3");
        let p = plan(&["latency"]).unwrap();
        assert_eq!((p.publishers, p.rate), (10, Some(1000.0)));
        let p = plan(&["pairs", "--rate", "0", "-q", "1"]).unwrap();
        assert_eq!((p.rate, p.qos), (None, QoS::AtLeastOnce));
        assert_eq!(p.subscribe_filter(5), "bench/5");
        assert!(
            !p.early_connect,
            "CONNECT waits for the handshake by default"
        );
        let p = plan(&["pairs", "-c", "8", "--total-rate", "2000000"]).unwrap();
        assert_eq!(
            p.rate,
            Some(250_000.0),
            "the total split between publishers"
        );
        let p = plan(&["fanin", "-c", "4", "--total-rate", "0"]).unwrap();
        assert_eq!(p.rate, None, "0 is flat out");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(plan(&["pairs", "-t", "same/topic"]).is_err());
        assert!(plan(&["pub", "-t", "a/#"]).is_err());
        assert!(plan(&["pub", "-q", "3"]).is_err());
        assert!(plan(&["pairs", "--publishers", "2"]).is_err());
        assert!(plan(&["conn", "--source-ips", "10.0.0.1"]).is_err());
        assert!(plan(&["conn", "-d", "5h"]).is_err());
        assert!(plan(&["pub", "-V", "6"]).is_err());
        assert!(plan(&["pairs", "-r", "10", "--total-rate", "80"]).is_err());
        assert!(plan(&["conn", "--total-rate", "80"]).is_err());
        assert!(plan(&["pairs", "--total-rate=-5"]).is_err());
        assert!(plan(&["pub", "--share", "g"]).is_err());
        assert!(plan(&["fanout", "--share", "a/b"]).is_err());
        assert!(plan(&["fanout", "--share", "a+"]).is_err());
        assert!(plan(&["fanout", "--share", ""]).is_err());
    }

    /// A shared group's subscribers split the messages between them: each
    /// is expected once, whatever the number of subscribers.
    #[test]
    fn shared_subscribers_expect_each_message_once() {
        let p = plan(&[
            "fanout",
            "--publishers",
            "4",
            "-c",
            "3",
            "--share",
            "workers",
        ])
        .unwrap();
        assert_eq!(p.subscribe_filter(1), "$share/workers/bench/+");
        assert_eq!(p.publish_topic(1), "bench/1");
        assert_eq!(p.fanout_factor, Some(1));
        let p = plan(&["pairs", "--share", "g"]).unwrap();
        assert_eq!(p.subscribe_filter(2), "$share/g/bench/2");
        assert_eq!(p.fanout_factor, Some(1));
        let p = plan(&["fanin", "--subscribers", "2", "--share", "g"]).unwrap();
        assert_eq!(p.fanout_factor, Some(1));
    }
}
