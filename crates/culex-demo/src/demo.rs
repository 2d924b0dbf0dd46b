//! `culex demo`: a broker, the tutorial's boards and a web page that shows
//! them, in one process.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::args::{self, ArgError};
use crate::board::{Board, BoardConfig, Signal};
use crate::embedded::EmbeddedBroker;
use crate::monitor::{Log, Monitor};
use crate::web::{BoardView, Scene, WebServer};

const USAGE: &str = "\
usage: culex demo [--broker HOST:PORT] [--boards blue,green,...] [--http ADDR:PORT] [--mqtt ADDR:PORT]

The MQTT tutorial's ESP32 boards, simulated, in the browser. Each board
publishes its button to NAME/btn/0 twice a second and lights its LED while its
peer's button is pressed; with more than two boards each one's peer is the
next (a ring). Open the printed URL and hold a board's BOOT button.

  --broker HOST:PORT  use this broker instead of starting culex's own
  --boards LIST       the boards' names (default blue,green); NAME:PEER
                      sets a board's peer, e.g. --boards blue:green runs
                      blue alone, for a real board green to answer
  --http ADDR:PORT    where the page is served (default 127.0.0.1:8080, or
                      any free port when that one is taken)
  --mqtt ADDR:PORT    where the embedded broker listens (default
                      127.0.0.1:1883, or any free port when that one is taken;
                      0.0.0.0:1883 lets real boards on the network join)
  --help              this text

Real boards and other clients (culex pub, mosquitto_pub) can join the same
broker: everything publishing on +/btn/0 shows in the page's message log.";

/// The default address of the page.
const DEFAULT_HTTP: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// The default address of the embedded broker.
const DEFAULT_MQTT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);

/// The options of `culex demo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// An external broker as `(host, port)`; `None` starts the embedded one.
    pub broker: Option<(String, u16)>,
    /// The boards, in order; each one's peer is the one named after a colon,
    /// or else the next in the list (the last's is the first).
    pub boards: Vec<BoardSpec>,
    /// Where the page is served.
    pub http: SocketAddr,
    /// Whether `http` was chosen by the user (otherwise a taken default
    /// port falls back to a free one).
    pub http_given: bool,
    /// Where the embedded broker listens.
    pub mqtt: SocketAddr,
    /// Whether `mqtt` was chosen by the user.
    pub mqtt_given: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            broker: None,
            boards: vec![BoardSpec::new("blue"), BoardSpec::new("green")],
            http: DEFAULT_HTTP,
            http_given: false,
            mqtt: DEFAULT_MQTT,
            mqtt_given: false,
        }
    }
}

impl DemoOptions {
    /// Parses the arguments after `culex demo`; `Ok(None)` asks for the usage text.
    pub fn parse(args: &[String]) -> Result<Option<DemoOptions>, ArgError> {
        let mut options = DemoOptions::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--help" => return Ok(None),
                "--broker" => {
                    let text = args::value(arg, it.next())?;
                    options.broker = Some(host_port(arg, &text)?);
                }
                "--boards" => {
                    let text = args::value(arg, it.next())?;
                    options.boards = parse_boards(arg, &text)?;
                }
                "--http" => {
                    options.http = socket_addr(arg, it.next())?;
                    options.http_given = true;
                }
                "--mqtt" => {
                    options.mqtt = socket_addr(arg, it.next())?;
                    options.mqtt_given = true;
                }
                other => return Err(ArgError::Unknown(other.to_owned())),
            }
        }
        Ok(Some(options))
    }

    /// The boards with their peers: each one's peer is the one it names, or
    /// else the next in the ring. A lone board of the tutorial's pair gets
    /// the other as its peer (`--boards blue` waits for a real `green`,
    /// such as the QEMU board), rather than being its own peer.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let n = self.boards.len();
        (0..n)
            .map(|i| {
                let board = &self.boards[i];
                let peer = board
                    .peer
                    .clone()
                    .unwrap_or_else(|| match (n, board.name.as_str()) {
                        (1, "blue") => "green".to_owned(),
                        (1, "green") => "blue".to_owned(),
                        _ => self.boards[(i + 1) % n].name.clone(),
                    });
                (board.name.clone(), peer)
            })
            .collect()
    }
}

/// One simulated board of `--boards`: `NAME` or `NAME:PEER`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardSpec {
    /// Its name.
    pub name: String,
    /// Its peer, when given; otherwise the next board in the ring. Naming a
    /// board that is not simulated leaves the part to a real one.
    pub peer: Option<String>,
}

impl BoardSpec {
    /// A board whose peer is the next in the ring.
    pub fn new(name: &str) -> BoardSpec {
        BoardSpec {
            name: name.to_owned(),
            peer: None,
        }
    }
}

fn parse_boards(flag: &str, text: &str) -> Result<Vec<BoardSpec>, ArgError> {
    let mut boards = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, peer) = match item.split_once(':') {
            Some((name, peer)) => (name, Some(peer)),
            None => (item, None),
        };
        args::check_board_name(name)?;
        if let Some(peer) = peer {
            args::check_board_name(peer)?;
        }
        if boards.iter().any(|b: &BoardSpec| b.name == name) {
            return Err(invalid(flag, text, "each board needs its own name"));
        }
        boards.push(BoardSpec {
            name: name.to_owned(),
            peer: peer.map(str::to_owned),
        });
    }
    if boards.is_empty() {
        return Err(invalid(flag, text, "name at least one board"));
    }
    Ok(boards)
}

fn invalid(flag: &str, value: &str, why: &'static str) -> ArgError {
    ArgError::Invalid {
        flag: flag.to_owned(),
        value: value.to_owned(),
        why,
    }
}

fn host_port(flag: &str, text: &str) -> Result<(String, u16), ArgError> {
    let (host, port) = text
        .rsplit_once(':')
        .ok_or_else(|| invalid(flag, text, "expected HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| invalid(flag, text, "not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid(flag, text, "expected HOST:PORT"));
    }
    Ok((host.to_owned(), port))
}

fn socket_addr(flag: &str, given: Option<&String>) -> Result<SocketAddr, ArgError> {
    let text = args::value(flag, given)?;
    text.parse().map_err(|_| {
        invalid(
            flag,
            &text,
            "expected an IP address and port, e.g. 127.0.0.1:8080",
        )
    })
}

/// A failure to start the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The embedded broker did not start.
    #[error("cannot start the embedded broker on {addr}: {source}")]
    Broker {
        /// Where it was to listen.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The external broker's address does not resolve.
    #[error("cannot resolve broker {0}")]
    Resolve(String),
    /// The web server did not start.
    #[error("cannot serve the page on {addr}: {source}")]
    Web {
        /// Where it was to listen.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// The running demo. Dropping it stops the page, the boards, the monitor and
/// the embedded broker, in that order.
#[derive(Debug)]
pub struct Demo {
    web: WebServer,
    boards: Vec<Board>,
    log: Arc<Log>,
    _monitor: Monitor,
    broker_addr: (String, u16),
    // Declared last so that it stops after every client of it.
    _broker: Option<EmbeddedBroker>,
}

impl Demo {
    /// Starts the broker (unless `options.broker` names one), the boards,
    /// the monitor and the web page.
    pub fn start(options: &DemoOptions) -> Result<Demo, DemoError> {
        let (broker, broker_addr) = match &options.broker {
            Some((host, port)) => {
                let resolves = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map(|mut a| a.next().is_some());
                if !resolves.unwrap_or(false) {
                    return Err(DemoError::Resolve(format!("{host}:{port}")));
                }
                (None, (host.clone(), *port))
            }
            None => {
                let broker =
                    start_with_fallback(options.mqtt, options.mqtt_given, EmbeddedBroker::start)
                        .map_err(|source| DemoError::Broker {
                            addr: options.mqtt,
                            source,
                        })?;
                let addr = broker.addr();
                let host = if addr.ip().is_unspecified() {
                    "127.0.0.1".to_owned()
                } else {
                    addr.ip().to_string()
                };
                (Some(broker), (host, addr.port()))
            }
        };
        let signal = Signal::new();
        let log = Log::new(Arc::clone(&signal));
        let (host, port) = broker_addr.clone();
        let monitor = Monitor::start(
            format!("culex-demo-monitor-{}", std::process::id()),
            host.clone(),
            port,
            Arc::clone(&log),
        )
        .map_err(DemoError::Thread)?;
        let mut boards = Vec::new();
        for (name, peer) in options.pairs() {
            let config = BoardConfig {
                name,
                peer,
                host: host.clone(),
                port,
            };
            boards.push(Board::start(config, Arc::clone(&signal)).map_err(DemoError::Thread)?);
        }
        let scene = Scene {
            boards: boards
                .iter()
                .map(|b| BoardView {
                    name: b.name().to_owned(),
                    peer: b.peer().to_owned(),
                    pins: Arc::clone(b.pins()),
                })
                .collect(),
            broker: display_host_port(&host, port),
            log: Arc::clone(&log),
            signal,
        };
        let web = start_with_fallback(options.http, options.http_given, |addr| {
            WebServer::start(addr, scene_for(&scene))
        })
        .map_err(|source| DemoError::Web {
            addr: options.http,
            source,
        })?;
        Ok(Demo {
            web,
            boards,
            log,
            _monitor: monitor,
            broker_addr,
            _broker: broker,
        })
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        self.web.url()
    }

    /// The broker the boards use, as `(host, port)`.
    pub fn broker_addr(&self) -> (&str, u16) {
        (&self.broker_addr.0, self.broker_addr.1)
    }

    /// The board called `name`.
    pub fn board(&self, name: &str) -> Option<&Board> {
        self.boards.iter().find(|b| b.name() == name)
    }

    /// Every board, in order.
    pub fn boards(&self) -> &[Board] {
        &self.boards
    }

    /// The monitor's lines: the traffic on `+/btn/0`, as `mosquitto_sub -v`
    /// prints it.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }
}

/// The scene is needed again if the first address was taken; it is cheap to
/// copy since everything in it is shared.
fn scene_for(scene: &Scene) -> Scene {
    Scene {
        boards: scene.boards.clone(),
        broker: scene.broker.clone(),
        log: Arc::clone(&scene.log),
        signal: Arc::clone(&scene.signal),
    }
}

fn display_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Binds `addr`; when that is a default (not given by the user) and taken,
/// binds a free port on the same address instead.
fn start_with_fallback<T>(
    addr: SocketAddr,
    given: bool,
    mut start: impl FnMut(SocketAddr) -> std::io::Result<T>,
) -> std::io::Result<T> {
    match start(addr) {
        Err(err) if !given && err.kind() == std::io::ErrorKind::AddrInUse => {
            start(SocketAddr::new(addr.ip(), 0))
        }
        other => other,
    }
}

/// Entry point of `culex demo`.
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    let options = match args::parse_or_exit("demo", USAGE, args, DemoOptions::parse) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let demo = match Demo::start(&options) {
        Ok(demo) => demo,
        Err(err) => {
            eprintln!("culex demo: {err}");
            return std::process::ExitCode::from(1);
        }
    };
    let (host, port) = demo.broker_addr();
    let which = if options.broker.is_some() {
        "broker"
    } else {
        "embedded culex broker"
    };
    println!("culex demo: {which} on {}", display_host_port(host, port));
    let boards: Vec<String> = demo
        .boards()
        .iter()
        .map(|b| format!("{} (peer {})", b.name(), b.peer()))
        .collect();
    println!("culex demo: boards {}", boards.join(", "));
    println!("culex demo: watch with  mosquitto_sub -h {host} -p {port} -v -t '+/btn/0'");
    println!("culex demo: open {}", demo.url());
    println!("culex demo: press Ctrl-C to stop");
    // The demo runs until the process is interrupted; the default SIGINT
    // action ends it, and the boards' sessions are clean, so nothing is lost.
    loop {
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<DemoOptions>, ArgError> {
        DemoOptions::parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn boards_pair_in_a_ring() {
        let options = parse(&["--boards", "blue,green,red"]).unwrap().unwrap();
        assert_eq!(
            options.pairs(),
            [
                ("blue".into(), "green".into()),
                ("green".into(), "red".into()),
                ("red".into(), "blue".into())
            ]
        );
        let two = DemoOptions::default();
        assert_eq!(
            two.pairs(),
            [
                ("blue".into(), "green".into()),
                ("green".into(), "blue".into())
            ]
        );
    }

    #[test]
    fn a_board_may_name_its_peer() {
        let options = parse(&["--boards", "blue:green"]).unwrap().unwrap();
        assert_eq!(options.pairs(), [("blue".into(), "green".into())]);
        // The tutorial's pair, one of them real (the QEMU board).
        let lone = parse(&["--boards", "blue"]).unwrap().unwrap();
        assert_eq!(lone.pairs(), [("blue".into(), "green".into())]);
        let lone = parse(&["--boards", "green"]).unwrap().unwrap();
        assert_eq!(lone.pairs(), [("green".into(), "blue".into())]);
        let mixed = parse(&["--boards", "a,b:x,c"]).unwrap().unwrap();
        assert_eq!(
            mixed.pairs(),
            [
                ("a".into(), "b".into()),
                ("b".into(), "x".into()),
                ("c".into(), "a".into())
            ]
        );
        assert!(parse(&["--boards", "a:b/c"]).is_err());
    }

    #[test]
    fn a_taken_default_port_falls_back_to_a_free_one() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let signal = Signal::new();
        let scene = || Scene {
            boards: Vec::new(),
            broker: "127.0.0.1:1883".into(),
            log: Log::new(Arc::clone(&signal)),
            signal: Arc::clone(&signal),
        };
        let web = start_with_fallback(addr, false, |a| WebServer::start(a, scene())).unwrap();
        assert_ne!(web.addr().port(), addr.port());
        assert_ne!(web.addr().port(), 0);
        // A port the user asked for is never swapped behind their back.
        let err = start_with_fallback(addr, true, |a| WebServer::start(a, scene())).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }

    #[test]
    fn parses_addresses() {
        let options = parse(&["--broker", "localhost:1884", "--http", "127.0.0.1:0"])
            .unwrap()
            .unwrap();
        assert_eq!(options.broker, Some(("localhost".into(), 1884)));
        assert_eq!(options.http, "127.0.0.1:0".parse().unwrap());
        assert!(options.http_given && !options.mqtt_given);
        let v6 = parse(&["--broker", "[::1]:1883"]).unwrap().unwrap();
        assert_eq!(v6.broker, Some(("::1".into(), 1883)));
    }

    #[test]
    fn refuses_bad_options() {
        assert!(parse(&["--broker", "nohost"]).is_err());
        assert!(parse(&["--broker", "h:x"]).is_err());
        assert!(parse(&["--boards", "blue,blue"]).is_err());
        assert!(parse(&["--boards", ","]).is_err());
        assert!(parse(&["--boards", "a/b"]).is_err());
        assert!(parse(&["--http", "localhost"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
