//! The command line of `culex pub`, `culex sub` and `culex rr`: mosquitto
//! 2.0's grammar, checks, error messages and defaults files, flag for flag.
//!
//! mosquitto's grammar is irregular (`-h` is the host, `-D` takes three or
//! four words, some flags belong to one tool only), so this is a hand-written
//! scanner over the raw argument bytes, not a generic parser.

use crate::format;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::Duration;

/// Which tool is parsing: flags valid for one tool are unknown to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// `culex pub`.
    Pub,
    /// `culex sub`.
    Sub,
    /// `culex rr`.
    Rr,
}

impl Tool {
    /// The command as users type it, for messages.
    pub fn command(self) -> &'static str {
        match self {
            Tool::Pub => "culex pub",
            Tool::Sub => "culex sub",
            Tool::Rr => "culex rr",
        }
    }

    /// The defaults file name under `~/.config`.
    pub fn defaults_name(self) -> &'static str {
        match self {
            Tool::Pub => "culex_pub",
            Tool::Sub => "culex_sub",
            Tool::Rr => "culex_rr",
        }
    }
}

/// MQTT protocol version chosen with `-V`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1 (`mqttv31`).
    V31,
    /// MQTT 3.1.1 (`mqttv311`).
    V311,
    /// MQTT 5.0 (`mqttv5`).
    V5,
}

/// Where `culex pub` (and `culex rr`) takes the payload from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadSource {
    /// `-m MESSAGE`.
    Message(Vec<u8>),
    /// `-f FILE`.
    File(PathBuf),
    /// `-s`: all of stdin as one message.
    Stdin,
    /// `-l`: one message per line of stdin.
    StdinLines,
    /// `-n`: an empty message.
    Null,
}

/// The packet a `-D` property is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyTarget {
    /// CONNECT.
    Connect,
    /// PUBLISH.
    Publish,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// DISCONNECT.
    Disconnect,
    /// The will message.
    Will,
}

/// The value of a `-D` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    /// A byte.
    Byte(u8),
    /// A two-byte integer.
    U16(u16),
    /// A four-byte integer.
    U32(u32),
    /// A variable byte integer.
    VarInt(u32),
    /// Binary data.
    Binary(Vec<u8>),
    /// A UTF-8 string.
    Str(String),
    /// A user property (name, value).
    Pair(String, String),
}

/// One `-D CMD NAME VALUE` property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyArg {
    /// The packet it goes into.
    pub target: PropertyTarget,
    /// The MQTT 5 property identifier.
    pub id: u8,
    /// Its value.
    pub value: PropertyValue,
}

/// The will message (`--will-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillArgs {
    /// `--will-topic`.
    pub topic: String,
    /// `--will-payload` (empty when not given).
    pub payload: Vec<u8>,
    /// `--will-qos`.
    pub qos: u8,
    /// `--will-retain`.
    pub retain: bool,
}

/// TLS options; any of `cafile`/`capath` (or an `mqtts://` URL) turns TLS on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsArgs {
    /// `--cafile`.
    pub cafile: Option<PathBuf>,
    /// `--capath`.
    pub capath: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--insecure`: do not check the server's host name.
    pub insecure: bool,
    /// `--tls-version`.
    pub version: Option<String>,
    /// `--ciphers`.
    pub ciphers: Option<String>,
    /// `--tls-alpn`.
    pub alpn: Option<String>,
    /// `--tls-use-os-certs` (or an `mqtts://` URL).
    pub use_os_certs: bool,
    /// `--psk`.
    pub psk: Option<String>,
    /// `--psk-identity`.
    pub psk_identity: Option<String>,
    /// `--keyform`, `--tls-engine`, `--tls-engine-kpass-sha1`: OpenSSL engine options.
    pub engine: bool,
    /// `--keyform` was given.
    pub keyform: bool,
}

impl TlsArgs {
    /// Whether the options ask for a TLS connection.
    pub fn enabled(&self) -> bool {
        self.cafile.is_some() || self.capath.is_some() || self.psk.is_some() || self.use_os_certs
    }
}

/// Everything the command line and the defaults file said.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which tool.
    pub tool: Tool,
    /// `-h` (default `localhost`), or the socket path with `--unix`.
    pub host: String,
    /// `-p`; `None` means 1883, or 8883 with TLS.
    pub port: Option<u16>,
    /// `--unix`: `host` is a Unix socket path.
    pub unix: bool,
    /// `-A`.
    pub bind_address: Option<String>,
    /// `-u`.
    pub username: Option<String>,
    /// `-P`.
    pub password: Option<Vec<u8>>,
    /// `-i`.
    pub id: Option<String>,
    /// `-I`.
    pub id_prefix: Option<String>,
    /// `-k`.
    pub keepalive: u16,
    /// Not `-c`.
    pub clean_session: bool,
    /// `-x` (MQTT 5), already defaulted as mosquitto does.
    pub session_expiry: Option<u32>,
    /// `-V`.
    pub protocol: Protocol,
    /// `--nodelay`.
    pub nodelay: bool,
    /// `-d`.
    pub debug: bool,
    /// `--quiet`.
    pub quiet: bool,
    /// `-M`.
    pub max_inflight: u16,
    /// `--will-*`.
    pub will: Option<WillArgs>,
    /// TLS options.
    pub tls: TlsArgs,
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `-D` properties, in command-line order.
    pub properties: Vec<PropertyArg>,
    /// pub/rr: `-t`.
    pub topic: Option<String>,
    /// sub: every `-t`.
    pub topics: Vec<String>,
    /// sub: `-T`.
    pub filter_out: Vec<String>,
    /// sub: `-U`.
    pub unsubscribe: Vec<String>,
    /// rr: `-e`.
    pub response_topic: Option<String>,
    /// pub/rr: the payload source.
    pub payload: Option<PayloadSource>,
    /// `-q`.
    pub qos: u8,
    /// pub: `-r`.
    pub retain: bool,
    /// pub: `--repeat`.
    pub repeat_count: u32,
    /// pub: `--repeat-delay`.
    pub repeat_delay: Duration,
    /// sub: `-C` (rr: always 1).
    pub msg_count: Option<u32>,
    /// sub: `-E`.
    pub exit_after_sub: bool,
    /// sub/rr: `-W`.
    pub timeout: Option<u32>,
    /// sub/rr: `-R`.
    pub no_retain: bool,
    /// sub: `--retained-only`.
    pub retained_only: bool,
    /// sub: `--remove-retained`.
    pub remove_retained: bool,
    /// sub/rr: `--retain-as-published`.
    pub retain_as_published: bool,
    /// sub: `--random-filter`, in hundredths of a percent (10000 = all).
    pub random_filter: u32,
    /// sub/rr: output options (`-v`, `-N`, `-F`, `--pretty`).
    pub output: format::OutputOptions,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Parsed {
    /// Run with this configuration.
    Run(Box<Config>),
    /// `--help`, or mosquitto's cases that print the usage: print it, exit 1.
    Usage {
        /// A line printed to stderr before the usage.
        error: Option<String>,
    },
    /// `--version`: print the version, exit 1 (as mosquitto does).
    Version,
    /// A bad argument: print `message` to stderr (unless empty), then the
    /// hint to use `--help`, and exit 1.
    Error {
        /// The error text, with mosquitto's trailing newlines.
        message: String,
        /// Whether mosquitto follows it with "Use '... --help' to see usage."
        hint: bool,
    },
}

fn error(message: impl Into<String>) -> Parsed {
    Parsed::Error {
        message: message.into(),
        hint: true,
    }
}

impl Config {
    fn new(tool: Tool) -> Config {
        Config {
            tool,
            host: "localhost".into(),
            port: None,
            unix: false,
            bind_address: None,
            username: None,
            password: None,
            id: None,
            id_prefix: None,
            keepalive: 60,
            clean_session: true,
            session_expiry: None,
            protocol: if tool == Tool::Rr {
                Protocol::V5
            } else {
                Protocol::V311
            },
            nodelay: false,
            debug: false,
            quiet: false,
            max_inflight: 20,
            will: None,
            tls: TlsArgs::default(),
            proxy: None,
            properties: Vec::new(),
            topic: None,
            topics: Vec::new(),
            filter_out: Vec::new(),
            unsubscribe: Vec::new(),
            response_topic: None,
            payload: None,
            qos: 0,
            retain: false,
            repeat_count: 1,
            repeat_delay: Duration::ZERO,
            msg_count: if tool == Tool::Rr { Some(1) } else { None },
            exit_after_sub: false,
            timeout: None,
            no_retain: false,
            retained_only: false,
            remove_retained: false,
            retain_as_published: false,
            random_filter: 10_000,
            output: format::OutputOptions {
                eol: true,
                ..format::OutputOptions::default()
            },
        }
    }

    /// The port to connect to: `-p`, else 8883 with TLS, else 1883.
    pub fn effective_port(&self) -> u16 {
        match self.port {
            Some(port) => port,
            None if self.tls.cafile.is_some()
                || self.tls.capath.is_some()
                || self.tls.psk.is_some() =>
            {
                8883
            }
            None => 1883,
        }
    }

    /// The client id to use: `-i`, or `-I` plus the process id. Without
    /// either the id is empty and the broker assigns one, except in MQTT 3.1,
    /// which has no assigned ids: there, as libmosquitto does, a random one.
    pub fn client_id(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let pid = std::process::id();
        match &self.id_prefix {
            Some(prefix) => format!("{prefix}{pid}"),
            None if self.protocol == Protocol::V31 => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                // At most 23 characters, the limit 3.1 brokers may enforce.
                format!("culex-{pid}-{nanos:09}")
            }
            None => String::new(),
        }
    }
}

/// The defaults file for `tool`: `$XDG_CONFIG_HOME/culex_X`, else
/// `$HOME/.config/culex_X`, as mosquitto finds `mosquitto_X`.
pub fn defaults_path(tool: Tool) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join(tool.defaults_name()));
    }
    let home = std::env::var_os("HOME")?;
    Some(
        PathBuf::from(home)
            .join(".config")
            .join(tool.defaults_name()),
    )
}

/// Splits a defaults file into argument lists, one per line as mosquitto
/// does: `#` lines are comments, a line is an option and (after the first
/// space) its whole value.
pub fn defaults_lines(contents: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut lines = Vec::new();
    for line in contents.split(|b| *b == b'\n') {
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut line = line;
        while let Some((last, rest)) = line.split_last() {
            if *last == b'\r' || *last == b'\n' {
                line = rest;
            } else {
                break;
            }
        }
        let start = line.iter().position(|b| *b != b' ').unwrap_or(line.len());
        let line = line.get(start..).unwrap_or_default();
        if line.is_empty() {
            continue;
        }
        match line.iter().position(|b| *b == b' ') {
            Some(space) => {
                let option = line.get(..space).unwrap_or_default().to_vec();
                let value = line.get(space + 1..).unwrap_or_default();
                if value.is_empty() {
                    lines.push(vec![option]);
                } else {
                    lines.push(vec![option, value.to_vec()]);
                }
            }
            None => lines.push(vec![line.to_vec()]),
        }
    }
    lines
}

/// Parses the defaults file's lines and then the command line.
pub fn parse(tool: Tool, defaults: &[Vec<Vec<u8>>], args: &[OsString]) -> Parsed {
    let mut config = Config::new(tool);
    for line in defaults {
        if let Some(outcome) = scan(&mut config, line) {
            return outcome;
        }
    }
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    if let Some(outcome) = scan(&mut config, &args) {
        return outcome;
    }
    finish(config)
}

/// C's `atoi`: leading spaces, a sign, digits; anything else ends it.
pub(crate) fn atoi(text: &[u8]) -> i64 {
    let mut rest = text;
    while let Some((first, tail)) = rest.split_first() {
        if first.is_ascii_whitespace() {
            rest = tail;
        } else {
            break;
        }
    }
    let mut negative = false;
    if let Some((sign @ (b'+' | b'-'), tail)) = rest.split_first() {
        negative = *sign == b'-';
        rest = tail;
    }
    let mut value: i128 = 0;
    for digit in rest.iter().take_while(|b| b.is_ascii_digit()) {
        value = value
            .saturating_mul(10)
            .saturating_add(i128::from(digit - b'0'));
    }
    let value = if negative { -value } else { value };
    // glibc's atoi is `(int) strtol(…)`: strtol saturates at the range of a
    // 64-bit long, and the cast to int keeps the low 32 bits.
    let long = value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    i64::from(long as i32)
}

/// C's `atof` for the few places mosquitto uses it.
fn atof(text: &[u8]) -> f64 {
    let text = String::from_utf8_lossy(text);
    let text = text.trim_start();
    let end = text
        .char_indices()
        .take_while(|(i, c)| {
            c.is_ascii_digit() || *c == '.' || ((*c == '-' || *c == '+') && *i == 0)
        })
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    text.get(..end).and_then(|t| t.parse().ok()).unwrap_or(0.0)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Scans one argument list; `Some` ends parsing with that outcome.
fn scan(cfg: &mut Config, args: &[Vec<u8>]) -> Option<Parsed> {
    let tool = cfg.tool;
    let mut i = 0;
    let argc = args.len();
    let arg = |i: usize| args.get(i).map(Vec::as_slice).unwrap_or_default();
    while i < argc {
        let option = arg(i);
        let has_value = i + 1 < argc;
        let value = arg(i + 1);
        let missing = |what: &str| -> Option<Parsed> {
            Some(error(format!(
                "Error: {} argument given but no {what} specified.\n\n",
                text(option)
            )))
        };
        let unknown = || {
            Some(error(format!(
                "Error: Unknown option '{}'.\n",
                text(option)
            )))
        };
        match option {
            b"-A" => {
                if !has_value {
                    return Some(error(
                        "Error: -A argument given but no address specified.\n\n",
                    ));
                }
                cfg.bind_address = Some(text(value));
                i += 1;
            }
            b"--cafile" | b"--capath" | b"--cert" | b"--key" => {
                if !has_value {
                    let what = if option == b"--capath" {
                        "directory"
                    } else {
                        "file"
                    };
                    return missing(what);
                }
                let path = Some(PathBuf::from(std::ffi::OsStr::from_bytes(value)));
                match option {
                    b"--cafile" => cfg.tls.cafile = path,
                    b"--capath" => cfg.tls.capath = path,
                    b"--cert" => cfg.tls.cert = path,
                    _ => cfg.tls.key = path,
                }
                i += 1;
            }
            b"--ciphers" => {
                if !has_value {
                    return missing("ciphers");
                }
                cfg.tls.ciphers = Some(text(value));
                i += 1;
            }
            b"-C" => {
                if tool != Tool::Sub {
                    return unknown();
                }
                if !has_value {
                    return Some(error(
                        "Error: -C argument given but no count specified.\n\n",
                    ));
                }
                let count = atoi(value);
                if count < 1 {
                    return Some(error(format!(
                        "Error: Invalid message count \"{count}\".\n\n"
                    )));
                }
                cfg.msg_count = Some(count as u32);
                i += 1;
            }
            b"-c" | b"--disable-clean-session" => cfg.clean_session = false,
            b"-d" | b"--debug" => cfg.debug = true,
            b"-D" | b"--property" => {
                i += 1;
                if let Some(outcome) = parse_property(cfg, args, &mut i) {
                    return Some(outcome);
                }
                cfg.protocol = Protocol::V5;
            }
            b"-e" => {
                if tool != Tool::Rr {
                    return unknown();
                }
                match topic_name_value(has_value, value, "-e", "response topic") {
                    Ok(topic) => cfg.response_topic = Some(topic),
                    Err(outcome) => return Some(outcome),
                }
                i += 1;
            }
            b"-E" => {
                if tool != Tool::Sub {
                    return unknown();
                }
                cfg.exit_after_sub = true;
            }
            b"-f" | b"--file" | b"-m" | b"--message" | b"-n" | b"--null-message" | b"-s"
            | b"--stdin-file" | b"-l" | b"--stdin-line" => {
                let is_line = matches!(option, b"-l" | b"--stdin-line");
                if tool == Tool::Sub || (is_line && tool != Tool::Pub) {
                    return unknown();
                }
                if cfg.payload.is_some() {
                    return Some(error(
                        "Error: Only one type of message can be sent at once.\n\n",
                    ));
                }
                cfg.payload = Some(match option {
                    b"-f" | b"--file" => {
                        if !has_value {
                            return Some(error(
                                "Error: -f argument given but no file specified.\n\n",
                            ));
                        }
                        i += 1;
                        PayloadSource::File(PathBuf::from(std::ffi::OsStr::from_bytes(value)))
                    }
                    b"-m" | b"--message" => {
                        if !has_value {
                            return Some(error(
                                "Error: -m argument given but no message specified.\n\n",
                            ));
                        }
                        i += 1;
                        PayloadSource::Message(value.to_vec())
                    }
                    b"-n" | b"--null-message" => PayloadSource::Null,
                    b"-s" | b"--stdin-file" => PayloadSource::Stdin,
                    _ => PayloadSource::StdinLines,
                });
            }
            b"-F" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                if !has_value {
                    return Some(error(
                        "Error: -F argument given but no format specified.\n\n",
                    ));
                }
                if let Err(message) = format::check_format(value) {
                    return Some(error(message));
                }
                cfg.output.format = Some(value.to_vec());
                i += 1;
            }
            b"--help" => return Some(Parsed::Usage { error: None }),
            b"-h" | b"--host" => {
                if !has_value {
                    return Some(error("Error: -h argument given but no host specified.\n\n"));
                }
                cfg.host = text(value);
                i += 1;
            }
            b"--insecure" => cfg.tls.insecure = true,
            b"-i" | b"--id" | b"-I" | b"--id-prefix" => {
                let prefix = matches!(option, b"-I" | b"--id-prefix");
                if (prefix && cfg.id.is_some()) || (!prefix && cfg.id_prefix.is_some()) {
                    return Some(error(
                        "Error: -i and -I argument cannot be used together.\n\n",
                    ));
                }
                if !has_value {
                    return Some(error(if prefix {
                        "Error: -I argument given but no id prefix specified.\n\n"
                    } else {
                        "Error: -i argument given but no id specified.\n\n"
                    }));
                }
                if prefix {
                    cfg.id_prefix = Some(text(value));
                } else {
                    cfg.id = Some(text(value));
                }
                i += 1;
            }
            b"-k" | b"--keepalive" => {
                if !has_value {
                    return Some(error(
                        "Error: -k argument given but no keepalive specified.\n\n",
                    ));
                }
                let keepalive = atoi(value);
                if !(5..=65535).contains(&keepalive) {
                    return Some(error(
                        "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n",
                    ));
                }
                cfg.keepalive = keepalive as u16;
                i += 1;
            }
            b"--keyform"
            | b"--tls-engine"
            | b"--tls-engine-kpass-sha1"
            | b"--tls-alpn"
            | b"--tls-version"
            | b"--psk"
            | b"--psk-identity" => {
                if !has_value {
                    let what = match option {
                        b"--keyform" => "keyform",
                        b"--tls-engine" => "engine_id",
                        b"--tls-engine-kpass-sha1" => "kpass sha1",
                        b"--tls-alpn" => "protocol",
                        b"--tls-version" => "version",
                        b"--psk" => "key",
                        _ => "identity",
                    };
                    return missing(what);
                }
                match option {
                    b"--tls-alpn" => cfg.tls.alpn = Some(text(value)),
                    b"--tls-version" => cfg.tls.version = Some(text(value)),
                    b"--psk" => cfg.tls.psk = Some(text(value)),
                    b"--psk-identity" => cfg.tls.psk_identity = Some(text(value)),
                    _ => cfg.tls.engine = true,
                }
                if option == b"--keyform" {
                    cfg.tls.keyform = true;
                }
                i += 1;
            }
            b"--tls-use-os-certs" => cfg.tls.use_os_certs = true,
            b"-L" | b"--url" => {
                if !has_value {
                    return Some(error("Error: -L argument given but no URL specified.\n\n"));
                }
                if let Some(outcome) = parse_url(cfg, value) {
                    return Some(outcome);
                }
                i += 1;
            }
            b"-M" => {
                if !has_value {
                    return Some(error(
                        "Error: -M argument given but max_inflight not specified.\n\n",
                    ));
                }
                let max = atoi(value);
                if max < 1 {
                    return Some(error(
                        "Error: Maximum inflight messages must be greater than 0.\n\n",
                    ));
                }
                cfg.max_inflight = max.min(65535) as u16;
                i += 1;
            }
            b"--nodelay" => cfg.nodelay = true,
            b"-N" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                cfg.output.eol = false;
            }
            b"-p" | b"--port" => {
                if !has_value {
                    return Some(error("Error: -p argument given but no port specified.\n\n"));
                }
                let port = atoi(value);
                if !(0..=65535).contains(&port) {
                    return Some(error(format!("Error: Invalid port given: {port}\n")));
                }
                cfg.port = Some(port as u16);
                i += 1;
            }
            b"--pretty" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                cfg.output.pretty = true;
            }
            b"-P" | b"--pw" => {
                if !has_value {
                    return Some(error(
                        "Error: -P argument given but no password specified.\n\n",
                    ));
                }
                cfg.password = Some(value.to_vec());
                i += 1;
            }
            b"--proxy" => {
                if !has_value {
                    return Some(error(
                        "Error: --proxy argument given but no proxy url specified.\n\n",
                    ));
                }
                if !value.starts_with(b"socks5h://") {
                    return Some(error(format!(
                        "Error: Unsupported proxy protocol: {}\n",
                        text(value)
                    )));
                }
                cfg.proxy = Some(text(value));
                i += 1;
            }
            b"-q" | b"--qos" => {
                if !has_value {
                    return Some(error("Error: -q argument given but no QoS specified.\n\n"));
                }
                let qos = atoi(value);
                if !(0..=2).contains(&qos) {
                    return Some(error(format!("Error: Invalid QoS given: {qos}\n")));
                }
                cfg.qos = qos as u8;
                i += 1;
            }
            b"--quiet" => cfg.quiet = true,
            b"-r" | b"--retain" => {
                if tool != Tool::Pub {
                    return unknown();
                }
                cfg.retain = true;
            }
            b"-R" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                cfg.no_retain = true;
            }
            b"--random-filter" => {
                if tool != Tool::Sub {
                    return unknown();
                }
                if !has_value {
                    return Some(error(
                        "Error: --random-filter argument given but no chance specified.\n\n",
                    ));
                }
                let chance = (10.0 * atof(value)) as i64;
                if !(1..=10_000).contains(&chance) {
                    return Some(error(
                        "Error: --random-filter chance must be between 0.1-100.0\n\n",
                    ));
                }
                cfg.random_filter = chance as u32;
                i += 1;
            }
            b"--remove-retained" => {
                if tool != Tool::Sub {
                    return unknown();
                }
                cfg.remove_retained = true;
            }
            b"--repeat" => {
                if tool != Tool::Pub {
                    return unknown();
                }
                if !has_value {
                    return Some(error(
                        "Error: --repeat argument given but no count specified.\n\n",
                    ));
                }
                let count = atoi(value);
                if count < 1 {
                    return Some(error("Error: --repeat argument must be >0.\n\n"));
                }
                cfg.repeat_count = count as u32;
                i += 1;
            }
            b"--repeat-delay" => {
                if tool != Tool::Pub {
                    return unknown();
                }
                if !has_value {
                    return Some(error(
                        "Error: --repeat-delay argument given but no time specified.\n\n",
                    ));
                }
                let seconds = atof(value) as f32;
                if seconds < 0.0 {
                    return Some(error("Error: --repeat-delay argument must be >=0.0.\n\n"));
                }
                cfg.repeat_delay = Duration::from_micros((seconds * 1.0e6) as u64);
                i += 1;
            }
            b"--retain-as-published" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                cfg.retain_as_published = true;
            }
            b"--retained-only" => {
                if tool != Tool::Sub {
                    return unknown();
                }
                cfg.retained_only = true;
            }
            b"-t" | b"--topic" => {
                if !has_value {
                    return Some(error(
                        "Error: -t argument given but no topic specified.\n\n",
                    ));
                }
                if let Some(outcome) = add_topic(cfg, value, "-t") {
                    return Some(outcome);
                }
                i += 1;
            }
            b"-T" | b"--filter-out" | b"-U" | b"--unsubscribe" => {
                if tool != Tool::Sub {
                    return unknown();
                }
                let filter_out = matches!(option, b"-T" | b"--filter-out");
                let (flag, noun) = if filter_out {
                    ("-T", "filter")
                } else {
                    ("-U", "unsubscribe")
                };
                if !has_value {
                    return Some(error(if filter_out {
                        "Error: -T argument given but no topic filter specified.\n\n"
                    } else {
                        "Error: -U argument given but no unsubscribe topic specified.\n\n"
                    }));
                }
                let filter = match checked_utf8(value, flag) {
                    Ok(filter) => filter,
                    Err(outcome) => return Some(outcome),
                };
                if !valid_topic_filter(&filter) {
                    return Some(error(format!(
                        "Error: Invalid {noun} topic '{filter}', are all '+' and '#' wildcards correct?\n"
                    )));
                }
                if filter_out {
                    cfg.filter_out.push(filter);
                } else {
                    cfg.unsubscribe.push(filter);
                }
                i += 1;
            }
            b"-u" | b"--username" => {
                if !has_value {
                    return Some(error(
                        "Error: -u argument given but no username specified.\n\n",
                    ));
                }
                cfg.username = Some(text(value));
                i += 1;
            }
            b"--unix" => {
                if !has_value {
                    return Some(error(
                        "Error: --unix argument given but no socket path specified.\n\n",
                    ));
                }
                cfg.host = text(value);
                cfg.port = Some(0);
                cfg.unix = true;
                i += 1;
            }
            b"-V" | b"--protocol-version" => {
                if !has_value {
                    return Some(error(
                        "Error: --protocol-version argument given but no version specified.\n\n",
                    ));
                }
                cfg.protocol = match value {
                    b"mqttv31" | b"31" => Protocol::V31,
                    b"mqttv311" | b"311" => Protocol::V311,
                    b"mqttv5" | b"5" => Protocol::V5,
                    _ => return Some(error("Error: Invalid protocol version argument given.\n\n")),
                };
                i += 1;
            }
            b"-v" | b"--verbose" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                cfg.output.verbose = true;
            }
            b"--version" => return Some(Parsed::Version),
            b"-W" => {
                if tool == Tool::Pub {
                    return unknown();
                }
                if !has_value {
                    return Some(error(
                        "Error: -W argument given but no timeout specified.\n\n",
                    ));
                }
                let timeout = atoi(value);
                if timeout < 1 {
                    return Some(error(format!("Error: Invalid timeout \"{timeout}\".\n\n")));
                }
                cfg.timeout = Some(timeout as u32);
                i += 1;
            }
            b"--will-payload" => {
                if !has_value {
                    return Some(error(
                        "Error: --will-payload argument given but no will payload specified.\n\n",
                    ));
                }
                will(cfg).payload = value.to_vec();
                i += 1;
            }
            b"--will-qos" => {
                if !has_value {
                    return Some(error(
                        "Error: --will-qos argument given but no will QoS specified.\n\n",
                    ));
                }
                let qos = atoi(value);
                if !(0..=2).contains(&qos) {
                    return Some(error(format!("Error: Invalid will QoS {qos}.\n\n")));
                }
                will(cfg).qos = qos as u8;
                i += 1;
            }
            b"--will-retain" => will(cfg).retain = true,
            b"--will-topic" => {
                match topic_name_value(has_value, value, "--will-topic", "will topic") {
                    Ok(topic) => will(cfg).topic = topic,
                    Err(outcome) => return Some(outcome),
                }
                i += 1;
            }
            b"-x" => {
                if !has_value {
                    return Some(error(
                        "Error: -x argument given but no session expiry interval specified.\n\n",
                    ));
                }
                match parse_expiry(value) {
                    Ok(expiry) => cfg.session_expiry = Some(expiry),
                    Err(outcome) => return Some(outcome),
                }
                i += 1;
            }
            _ => return unknown(),
        }
        i += 1;
    }
    None
}

/// A will is built up by several flags; its topic may come last, so an
/// incomplete one has an empty topic until [`finish`] checks it.
fn will(cfg: &mut Config) -> &mut WillArgs {
    cfg.will.get_or_insert_with(|| WillArgs {
        topic: String::new(),
        payload: Vec::new(),
        qos: 0,
        retain: false,
    })
}

fn checked_utf8(value: &[u8], flag: &str) -> Result<String, Parsed> {
    match std::str::from_utf8(value) {
        Ok(text) if !text.contains('\0') => Ok(text.to_owned()),
        _ => Err(error(format!(
            "Error: Malformed UTF-8 in {flag} argument.\n\n"
        ))),
    }
}

/// The value of an option that takes a topic name (`-e`, `--will-topic`),
/// refused with mosquitto's messages when missing, not UTF-8 or holding a
/// wildcard; `what` names the topic in those messages.
fn topic_name_value(
    has_value: bool,
    value: &[u8],
    flag: &str,
    what: &str,
) -> Result<String, Parsed> {
    if !has_value {
        return Err(error(format!(
            "Error: {flag} argument given but no {what} specified.\n\n"
        )));
    }
    let topic = checked_utf8(value, flag)?;
    if !valid_topic_name(&topic) {
        return Err(error(format!(
            "Error: Invalid {what} '{topic}', does it contain '+' or '#'?\n"
        )));
    }
    Ok(topic)
}

/// `-x`: a number (C `strtol` base 0), `-1` or `∞` for "never expires".
fn parse_expiry(value: &[u8]) -> Result<u32, Parsed> {
    if value == "∞".as_bytes() {
        return Ok(u32::MAX);
    }
    let text = std::str::from_utf8(value).unwrap_or("");
    let trimmed = text.trim_start();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    let parsed = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from_str_radix(hex, 16).ok()
    } else if digits.len() > 1 && digits.starts_with('0') {
        i128::from_str_radix(digits.get(1..).unwrap_or(""), 8).ok()
    } else {
        digits.parse::<i128>().ok()
    };
    let Some(number) = parsed.filter(|_| !digits.is_empty() && !digits.starts_with(['+', '-']))
    else {
        return Err(error("Error: session-expiry-interval not a number.\n\n"));
    };
    let number = if negative { -number } else { number };
    if number > i128::from(u32::MAX) || number < -1 {
        return Err(error("Error: session-expiry-interval out of range.\n\n"));
    }
    Ok(if number == -1 {
        u32::MAX
    } else {
        number as u32
    })
}

fn add_topic(cfg: &mut Config, value: &[u8], flag: &str) -> Option<Parsed> {
    let topic = match checked_utf8(value, flag) {
        Ok(topic) => topic,
        Err(outcome) => return Some(outcome),
    };
    match cfg.tool {
        Tool::Pub | Tool::Rr => {
            if !valid_topic_name(&topic) {
                return Some(error(format!(
                    "Error: Invalid publish topic '{topic}', does it contain '+' or '#'?\n"
                )));
            }
            cfg.topic = Some(topic);
        }
        Tool::Sub => {
            if !valid_topic_filter(&topic) {
                return Some(error(format!(
                    "Error: Invalid subscription topic '{topic}', are all '+' and '#' wildcards correct?\n"
                )));
            }
            cfg.topics.push(topic);
        }
    }
    None
}

/// `-L mqtt(s)://[user[:password]@]host[:port]/topic`.
fn parse_url(cfg: &mut Config, url: &[u8]) -> Option<Parsed> {
    let lower = url.to_ascii_lowercase();
    let rest = if lower.starts_with(b"mqtt://") {
        cfg.port = Some(1883);
        url.get(7..).unwrap_or_default()
    } else if lower.starts_with(b"mqtts://") {
        cfg.port = Some(8883);
        cfg.tls.use_os_certs = true;
        url.get(8..).unwrap_or_default()
    } else {
        return Some(error("Error: unsupported URL scheme.\n\n"));
    };
    let Some(slash) = rest.iter().position(|b| *b == b'/') else {
        return Some(error(
            "Error: Invalid URL for -L argument specified - topic missing.\n",
        ));
    };
    let (authority, topic) = (
        rest.get(..slash).unwrap_or_default(),
        rest.get(slash + 1..).unwrap_or_default(),
    );
    if let Some(outcome) = add_topic(cfg, topic, "-L topic") {
        return Some(outcome);
    }
    let host_port = match authority.iter().position(|b| *b == b'@') {
        Some(at) => {
            let credentials = authority.get(..at).unwrap_or_default();
            match credentials.iter().position(|b| *b == b':') {
                Some(colon) => {
                    cfg.username = Some(text(credentials.get(..colon).unwrap_or_default()));
                    cfg.password = Some(credentials.get(colon + 1..).unwrap_or_default().to_vec());
                }
                None => cfg.username = Some(text(credentials)),
            }
            authority.get(at + 1..).unwrap_or_default()
        }
        None => authority,
    };
    match host_port.iter().position(|b| *b == b':') {
        Some(colon) => {
            cfg.host = text(host_port.get(..colon).unwrap_or_default());
            cfg.port = Some(atoi(host_port.get(colon + 1..).unwrap_or_default()) as u16);
        }
        None => cfg.host = text(host_port),
    }
    None
}

/// A topic name: no wildcards [MQTT-3.3.2-2], not empty [MQTT-4.7.3-1].
pub fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

/// A topic filter: `+` alone in its level, `#` alone and last [MQTT-4.7.1-2], [MQTT-4.7.1-3].
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(n, level)| match *level {
        "+" => true,
        "#" => n == last,
        level => !level.contains(['+', '#']),
    })
}

/// The property table: name, identifier, type, and the packets it may go in.
const PROPERTIES: &[(&str, u8, Kind, &[PropertyTarget])] = {
    use Kind::*;
    use PropertyTarget::*;
    &[
        ("payload-format-indicator", 0x01, Byte, &[Publish, Will]),
        ("message-expiry-interval", 0x02, Int32, &[Publish, Will]),
        ("content-type", 0x03, Str, &[Publish, Will]),
        ("response-topic", 0x08, Str, &[Publish, Will]),
        ("correlation-data", 0x09, Binary, &[Publish, Will]),
        (
            "subscription-identifier",
            0x0B,
            VarInt,
            &[Publish, Subscribe],
        ),
        (
            "session-expiry-interval",
            0x11,
            Int32,
            &[Connect, Disconnect],
        ),
        ("assigned-client-identifier", 0x12, Str, &[]),
        ("server-keep-alive", 0x13, Int16, &[]),
        ("authentication-method", 0x15, Str, &[Connect]),
        ("authentication-data", 0x16, Binary, &[Connect]),
        ("request-problem-information", 0x17, Byte, &[Connect]),
        ("will-delay-interval", 0x18, Int32, &[Will]),
        ("request-response-information", 0x19, Byte, &[Connect]),
        ("response-information", 0x1A, Str, &[]),
        ("server-reference", 0x1C, Str, &[Disconnect]),
        ("reason-string", 0x1F, Str, &[Disconnect]),
        ("receive-maximum", 0x21, Int16, &[Connect]),
        ("topic-alias-maximum", 0x22, Int16, &[Connect]),
        ("topic-alias", 0x23, Int16, &[Publish]),
        ("maximum-qos", 0x24, Byte, &[]),
        ("retain-available", 0x25, Byte, &[]),
        (
            "user-property",
            0x26,
            Pair,
            &[Connect, Publish, Subscribe, Unsubscribe, Disconnect, Will],
        ),
        ("maximum-packet-size", 0x27, Int32, &[Connect]),
        ("wildcard-subscription-available", 0x28, Byte, &[]),
        ("subscription-identifier-available", 0x29, Byte, &[]),
        ("shared-subscription-available", 0x2A, Byte, &[]),
    ]
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Byte,
    Int16,
    Int32,
    VarInt,
    Binary,
    Str,
    Pair,
}

/// Commands mosquitto knows by name; `None` marks the ones it refuses.
const COMMANDS: &[(&str, Option<PropertyTarget>)] = &[
    ("connect", Some(PropertyTarget::Connect)),
    ("connack", None),
    ("publish", Some(PropertyTarget::Publish)),
    ("puback", None),
    ("pubrec", None),
    ("pubrel", None),
    ("pubcomp", None),
    ("subscribe", Some(PropertyTarget::Subscribe)),
    ("suback", None),
    ("unsubscribe", Some(PropertyTarget::Unsubscribe)),
    ("unsuback", None),
    ("disconnect", Some(PropertyTarget::Disconnect)),
    ("auth", None),
    ("will", Some(PropertyTarget::Will)),
];

/// Which of the refused commands a property is nonetheless valid for in
/// MQTT 5 (mosquitto checks validity before support).
fn allowed_in_refused(command: &str, id: u8) -> bool {
    match command {
        "connack" => matches!(
            id,
            0x11 | 0x12
                | 0x13
                | 0x15
                | 0x16
                | 0x1A
                | 0x1C
                | 0x1F
                | 0x21
                | 0x22
                | 0x24
                | 0x25
                | 0x26
                | 0x27
                | 0x28
                | 0x29
                | 0x2A
        ),
        "puback" | "pubrec" | "pubrel" | "pubcomp" | "suback" | "unsuback" => {
            matches!(id, 0x1F | 0x26)
        }
        "auth" => matches!(id, 0x15 | 0x16 | 0x1F | 0x26),
        _ => false,
    }
}

/// `-D CMD NAME VALUE` (or `-D CMD user-property KEY VALUE`); `i` points at CMD.
fn parse_property(cfg: &mut Config, args: &[Vec<u8>], i: &mut usize) -> Option<Parsed> {
    const NOT_ENOUGH: &str =
        "Error: --property argument given but not enough arguments specified.\n\n";
    if *i + 2 >= args.len() {
        return Some(error(NOT_ENOUGH));
    }
    let arg = |n: usize| args.get(n).map(Vec::as_slice).unwrap_or_default();
    let command = text(arg(*i));
    let Some(&(_, target)) = COMMANDS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&command))
    else {
        return Some(error(
            "Error: Invalid command given in --property argument.\n\n",
        ));
    };
    let name = text(arg(*i + 1));
    let Some(&(_, id, kind, targets)) = PROPERTIES
        .iter()
        .find(|(n, ..)| n.eq_ignore_ascii_case(&name))
    else {
        return Some(error(
            "Error: Invalid property name given in --property argument.\n\n",
        ));
    };
    let allowed = match target {
        Some(target) => targets.contains(&target),
        None => allowed_in_refused(&command.to_ascii_lowercase(), id),
    };
    if !allowed {
        return Some(error(format!(
            "Error: {name} property not allowed for {command} in --property argument.\n\n"
        )));
    }
    let (key, value) = if kind == Kind::Pair {
        if *i + 3 >= args.len() {
            return Some(error(NOT_ENOUGH));
        }
        let pair = (Some(arg(*i + 2)), arg(*i + 3));
        *i += 3;
        pair
    } else {
        let single = (None, arg(*i + 2));
        *i += 2;
        single
    };
    let not_supported = || {
        Some(error(format!(
            "Error: {name} property not supported for {command} in --property argument.\n\n"
        )))
    };
    let Some(target) = target else {
        return not_supported();
    };
    if target == PropertyTarget::Publish && id == 0x0B {
        return not_supported();
    }
    let out_of_range = |n: i64| {
        Some(error(format!(
            "Error: Property value ({n}) out of range for property {name}.\n\n"
        )))
    };
    let value = match kind {
        Kind::Byte => {
            let n = atoi(value);
            if !(0..=255).contains(&n) {
                return out_of_range(n);
            }
            PropertyValue::Byte(n as u8)
        }
        Kind::Int16 => {
            let n = atoi(value);
            if !(0..=65535).contains(&n) {
                return out_of_range(n);
            }
            PropertyValue::U16(n as u16)
        }
        Kind::Int32 | Kind::VarInt => {
            let n = atoi(value);
            if n < 0 {
                return out_of_range(n);
            }
            if kind == Kind::Int32 {
                PropertyValue::U32(n as u32)
            } else {
                PropertyValue::VarInt(n as u32)
            }
        }
        Kind::Binary => {
            if value.len() > 65535 {
                return Some(error(format!(
                    "Error: Property value too long for property {name}.\n\n"
                )));
            }
            PropertyValue::Binary(value.to_vec())
        }
        Kind::Str => PropertyValue::Str(text(value)),
        Kind::Pair => PropertyValue::Pair(text(key.unwrap_or_default()), text(value)),
    };
    cfg.properties.push(PropertyArg { target, id, value });
    None
}

/// Checks that need the whole command line, in mosquitto's order.
fn finish(mut cfg: Config) -> Parsed {
    if let Some(will) = &cfg.will {
        if will.topic.is_empty() {
            if !will.payload.is_empty() {
                return error("Error: Will payload given, but no will topic given.\n");
            }
            if will.retain {
                return error("Error: Will retain given, but no will topic given.\n");
            }
            cfg.will = None;
        }
    }
    if cfg.tls.cert.is_some() != cfg.tls.key.is_some() {
        return error("Error: Both certfile and keyfile must be provided if one of them is set.\n");
    }
    if cfg.tls.keyform && cfg.tls.key.is_none() {
        return error("Error: If keyform is set, keyfile must be also specified.\n");
    }
    if cfg.tls.psk.is_some() && (cfg.tls.cafile.is_some() || cfg.tls.capath.is_some()) {
        return error("Error: Only one of --psk or --cafile/--capath may be used at once.\n");
    }
    if cfg.tls.psk.is_some() && cfg.tls.psk_identity.is_none() {
        return error("Error: --psk-identity required if --psk used.\n");
    }
    if cfg.protocol == Protocol::V5 {
        if !cfg.clean_session && cfg.session_expiry.is_none() {
            cfg.session_expiry = Some(u32::MAX);
        }
        if cfg.session_expiry == Some(u32::MAX) && (cfg.id_prefix.is_some() || cfg.id.is_none()) {
            return error(
                "Error: You must provide a client id if you are using an infinite session expiry interval.\n",
            );
        }
    } else if !cfg.clean_session && (cfg.id_prefix.is_some() || cfg.id.is_none()) {
        return error("Error: You must provide a client id if you are using the -c option.\n");
    }
    if cfg.session_expiry == Some(0) {
        cfg.session_expiry = None;
    }
    if let Some(message) = check_connect_properties(&cfg) {
        if cfg.quiet {
            return Parsed::Error {
                message: String::new(),
                hint: true,
            };
        }
        return error(message);
    }
    match cfg.tool {
        Tool::Sub if cfg.topics.is_empty() && cfg.unsubscribe.is_empty() => {
            error("Error: You must specify a topic to subscribe to.\n")
        }
        Tool::Pub if cfg.topic.is_none() || cfg.payload.is_none() => Parsed::Usage {
            error: Some("Error: Both topic and message must be supplied.\n".into()),
        },
        Tool::Rr
            if cfg.topic.is_none() || cfg.payload.is_none() || cfg.response_topic.is_none() =>
        {
            error("Error: All of topic, message, and response topic must be supplied.\n")
        }
        _ => Parsed::Run(Box::new(cfg)),
    }
}

/// mosquitto's check of the CONNECT properties given with `-D`: a property
/// given twice, or a receive maximum or maximum packet size of zero, is a
/// protocol error [MQTT-3.1.2-*].
fn check_connect_properties(cfg: &Config) -> Option<String> {
    let mut seen = Vec::new();
    for property in cfg
        .properties
        .iter()
        .filter(|p| p.target == PropertyTarget::Connect)
    {
        let zero = matches!(
            (property.id, &property.value),
            (0x21, PropertyValue::U16(0)) | (0x27, PropertyValue::U32(0))
        );
        let bad_flag = matches!((property.id, &property.value), (0x17 | 0x19, PropertyValue::Byte(n)) if *n > 1);
        let repeated = property.id != 0x26 && seen.contains(&property.id);
        if zero || bad_flag || repeated {
            return Some(
                "Error in CONNECT properties: A network protocol error occurred when communicating with the broker.\n"
                    .into(),
            );
        }
        seen.push(property.id);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(tool: Tool, args: &[&str]) -> Parsed {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(tool, &[], &args)
    }

    fn config(tool: Tool, args: &[&str]) -> Config {
        match run(tool, args) {
            Parsed::Run(config) => *config,
            other => panic!("{args:?} did not parse: {other:?}"),
        }
    }

    fn error_of(tool: Tool, args: &[&str]) -> String {
        match run(tool, args) {
            Parsed::Error { message, .. } => message,
            Parsed::Usage {
                error: Some(message),
            } => message,
            other => panic!("{args:?} did not fail: {other:?}"),
        }
    }

    #[test]
    fn atoi_is_cs() {
        for (input, expect) in [
            ("12", 12),
            ("  7x", 7),
            ("-3", -3),
            ("abc", 0),
            ("+5", 5),
            ("", 0),
            // What glibc's atoi returns for values past the range of an int.
            ("4294967297", 1),
            ("-4294967297", -1),
            ("2147483648", -2147483648),
            ("-2147483649", 2147483647),
            ("99999999999999999999", -1),
            ("-99999999999999999999", 0),
        ] {
            assert_eq!(atoi(input.as_bytes()), expect, "{input:?}");
        }
    }

    #[test]
    fn pub_options() {
        let cfg = config(
            Tool::Pub,
            &[
                "-h",
                "example",
                "-p",
                "1884",
                "-t",
                "a/b",
                "-m",
                "hi",
                "-q",
                "2",
                "-r",
                "--repeat",
                "3",
                "--repeat-delay",
                "0.5",
            ],
        );
        assert_eq!(cfg.host, "example");
        assert_eq!(cfg.effective_port(), 1884);
        assert_eq!(cfg.topic.as_deref(), Some("a/b"));
        assert_eq!(cfg.payload, Some(PayloadSource::Message(b"hi".to_vec())));
        assert_eq!((cfg.qos, cfg.retain, cfg.repeat_count), (2, true, 3));
        assert_eq!(cfg.repeat_delay, Duration::from_millis(500));
    }

    #[test]
    fn sub_options() {
        let cfg = config(
            Tool::Sub,
            &[
                "-t", "a/+", "-t", "b/#", "-T", "b/x", "-U", "c", "-C", "4", "-W", "9", "-v", "-N",
                "-R", "-E", "-F", "%t",
            ],
        );
        assert_eq!(cfg.topics, vec!["a/+".to_string(), "b/#".to_string()]);
        assert_eq!(cfg.filter_out, vec!["b/x".to_string()]);
        assert_eq!(cfg.unsubscribe, vec!["c".to_string()]);
        assert_eq!((cfg.msg_count, cfg.timeout), (Some(4), Some(9)));
        assert!(cfg.output.verbose && !cfg.output.eol && cfg.no_retain && cfg.exit_after_sub);
        assert_eq!(cfg.output.format.as_deref(), Some(&b"%t"[..]));
    }

    #[test]
    fn url_sets_host_port_credentials_and_topic() {
        let cfg = config(Tool::Pub, &["-L", "mqtt://u:pw@broker:1999/x/y", "-n"]);
        assert_eq!(cfg.host, "broker");
        assert_eq!(cfg.port, Some(1999));
        assert_eq!(cfg.username.as_deref(), Some("u"));
        assert_eq!(cfg.password.as_deref(), Some(&b"pw"[..]));
        assert_eq!(cfg.topic.as_deref(), Some("x/y"));
    }

    #[test]
    fn properties_switch_to_mqtt5() {
        let cfg = config(
            Tool::Pub,
            &[
                "-t",
                "a",
                "-m",
                "x",
                "-D",
                "publish",
                "user-property",
                "k",
                "v",
                "-D",
                "connect",
                "session-expiry-interval",
                "10",
            ],
        );
        assert_eq!(cfg.protocol, Protocol::V5);
        assert_eq!(cfg.properties.len(), 2);
        assert_eq!(
            cfg.properties.first().map(|p| &p.value),
            Some(&PropertyValue::Pair("k".into(), "v".into()))
        );
    }

    #[test]
    fn errors_match_mosquitto() {
        let table: &[(Tool, &[&str], &str)] = &[
            (Tool::Pub, &["-t", "a/#", "-m", "x"], "Error: Invalid publish topic 'a/#', does it contain '+' or '#'?\n"),
            (Tool::Pub, &[], "Error: Both topic and message must be supplied.\n"),
            (Tool::Pub, &["-t", "a", "-m", "x", "-n"], "Error: Only one type of message can be sent at once.\n\n"),
            (Tool::Pub, &["-q", "3"], "Error: Invalid QoS given: 3\n"),
            (Tool::Pub, &["-C", "3"], "Error: Unknown option '-C'.\n"),
            (Tool::Pub, &["-p", "99999"], "Error: Invalid port given: 99999\n"),
            (Tool::Pub, &["-k", "2"], "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n"),
            (Tool::Pub, &["-V", "6"], "Error: Invalid protocol version argument given.\n\n"),
            (Tool::Pub, &["-c"], "Error: You must provide a client id if you are using the -c option.\n"),
            (Tool::Pub, &["--repeat", "0"], "Error: --repeat argument must be >0.\n\n"),
            (Tool::Pub, &["-x"], "Error: -x argument given but no session expiry interval specified.\n\n"),
            (Tool::Pub, &["-x", "abc"], "Error: session-expiry-interval not a number.\n\n"),
            (Tool::Pub, &["-D", "connect", "topic-alias", "3"], "Error: topic-alias property not allowed for connect in --property argument.\n\n"),
            (Tool::Pub, &["-D", "publish", "subscription-identifier", "3"], "Error: subscription-identifier property not supported for publish in --property argument.\n\n"),
            (Tool::Pub, &["-D", "publish", "topic-alias", "70000"], "Error: Property value (70000) out of range for property topic-alias.\n\n"),
            (Tool::Pub, &["-D", "bogus", "x", "y"], "Error: Invalid command given in --property argument.\n\n"),
            (Tool::Pub, &["-D", "connect", "foo", "1"], "Error: Invalid property name given in --property argument.\n\n"),
            (Tool::Pub, &["-D", "connect"], "Error: --property argument given but not enough arguments specified.\n\n"),
            (Tool::Pub, &["--will-payload", "x"], "Error: Will payload given, but no will topic given.\n"),
            (Tool::Pub, &["--cert", "x"], "Error: Both certfile and keyfile must be provided if one of them is set.\n"),
            (Tool::Pub, &["-L", "foo://x/y"], "Error: unsupported URL scheme.\n\n"),
            (Tool::Pub, &["-i", "a", "-I", "b"], "Error: -i and -I argument cannot be used together.\n\n"),
            (Tool::Sub, &[], "Error: You must specify a topic to subscribe to.\n"),
            (Tool::Sub, &["-t", "a/#/b"], "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?\n"),
            (Tool::Sub, &["-t", "a", "-F", "%z"], "Error: Invalid format specifier 'z'.\n"),
            (Tool::Sub, &["-t", "a", "-C", "0"], "Error: Invalid message count \"0\".\n\n"),
            (Tool::Sub, &["-t", "a", "-W", "0"], "Error: Invalid timeout \"0\".\n\n"),
            (Tool::Sub, &["-t", "a", "-V", "5", "-c"], "Error: You must provide a client id if you are using an infinite session expiry interval.\n"),
            (Tool::Rr, &["-t", "a"], "Error: All of topic, message, and response topic must be supplied.\n"),
            (Tool::Rr, &["-t", "a", "-e", "b/#"], "Error: Invalid response topic 'b/#', does it contain '+' or '#'?\n"),
            (Tool::Rr, &["-T", "x"], "Error: Unknown option '-T'.\n"),
        ];
        for (tool, args, expect) in table {
            assert_eq!(error_of(*tool, args), *expect, "{tool:?} {args:?}");
        }
    }

    #[test]
    fn defaults_file_lines() {
        let lines = defaults_lines(b"# comment\n-h broker\r\n-m hello world\n\n-r\n");
        assert_eq!(
            lines,
            vec![
                vec![b"-h".to_vec(), b"broker".to_vec()],
                vec![b"-m".to_vec(), b"hello world".to_vec()],
                vec![b"-r".to_vec()],
            ]
        );
        let args: Vec<OsString> = ["-t", "x"].iter().map(OsString::from).collect();
        match parse(Tool::Pub, &lines, &args) {
            Parsed::Run(cfg) => {
                assert_eq!(cfg.host, "broker");
                assert!(cfg.retain);
                assert_eq!(
                    cfg.payload,
                    Some(PayloadSource::Message(b"hello world".to_vec()))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn topic_grammar() {
        for (filter, ok) in [
            ("a/+/b", true),
            ("#", true),
            ("a/#", true),
            ("a/#/b", false),
            ("a+", false),
            ("", false),
        ] {
            assert_eq!(valid_topic_filter(filter), ok, "{filter}");
        }
        for (name, ok) in [("a/b", true), ("a/+", false), ("#", false), ("", false)] {
            assert_eq!(valid_topic_name(name), ok, "{name}");
        }
    }
}
