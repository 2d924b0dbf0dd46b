//! The demo's web page: a small HTTP server that draws the boards and streams
//! their state as server-sent events.
//!
//! Routes:
//! - `GET /`, `/app.js`, `/style.css`: the page, embedded in the binary;
//! - `GET /api/state`: the boards as JSON (see [`state_json`]);
//! - `GET /events`: server-sent events, `state` (the same JSON, whenever a
//!   board changes) and `msg` (one line of the `+/btn/0` monitor, as
//!   `mosquitto_sub -v` prints it);
//! - `POST /api/boards/NAME/press` and `.../release`: the board's button.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::board::{Pins, Signal};
use crate::monitor::Log;

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// How many monitor lines a page that just opened receives.
const BACKLOG_LINES: usize = 40;

/// How often an idle event stream sends a comment, so a closed page is noticed.
const STREAM_PING: Duration = Duration::from_secs(15);

/// At most this many event streams at once, each holding a thread.
const MAX_STREAMS: usize = 64;

/// One board as the page sees it.
#[derive(Debug, Clone)]
pub struct BoardView {
    /// The board's name.
    pub name: String,
    /// The board whose button lights this board's LED.
    pub peer: String,
    /// Its hardware.
    pub pins: Arc<Pins>,
}

/// What the web server shows.
#[derive(Debug)]
pub struct Scene {
    /// The boards, in display order.
    pub boards: Vec<BoardView>,
    /// The broker the boards use, as `HOST:PORT`.
    pub broker: String,
    /// The monitor's lines.
    pub log: Arc<Log>,
    /// Wakes the event streams when anything changes.
    pub signal: Arc<Signal>,
}

/// The running web server. Dropping it stops it.
pub struct WebServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl WebServer {
    /// Binds `addr` and serves `scene` from a thread of its own.
    pub fn start(addr: SocketAddr, scene: Scene) -> std::io::Result<WebServer> {
        // Keep the I/O error's kind (AddrInUse lets the demo fall back to a
        // free port).
        let server = tiny_http::Server::http(addr).map_err(|err| {
            match err.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other),
            }
        })?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| std::io::Error::other("the web server has no IP address"))?;
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let signal = Arc::clone(&scene.signal);
        let thread = std::thread::Builder::new().name("web".into()).spawn({
            let server = Arc::clone(&server);
            let stopping = Arc::clone(&stopping);
            move || serve(&server, Arc::new(scene), &stopping)
        })?;
        Ok(WebServer {
            addr,
            server,
            stopping,
            signal,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL (on the loopback address when the server listens on
    /// every address).
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            let loopback: std::net::IpAddr = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            addr.set_ip(loopback);
        }
        format!("http://{addr}/")
    }
}

impl std::fmt::Debug for WebServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        // Event streams wait on the signal; wake them so they see the flag.
        self.signal.notify();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The boards' state as JSON:
/// `{"broker":"HOST:PORT","boards":[{"name","peer","led","pressed","button","link"}]}`.
pub fn state_json(scene: &Scene) -> String {
    let boards: Vec<serde_json::Value> = scene
        .boards
        .iter()
        .map(|board| {
            serde_json::json!({
                "name": board.name,
                "peer": board.peer,
                "led": board.pins.led_on(),
                "pressed": board.pins.pressed(),
                "button": board.pins.button_value(),
                "link": board.pins.link().as_str(),
                "error": board.pins.last_error(),
            })
        })
        .collect();
    serde_json::json!({ "broker": scene.broker, "boards": boards }).to_string()
}

fn serve(server: &tiny_http::Server, scene: Arc<Scene>, stopping: &Arc<AtomicBool>) {
    let streams = Arc::new(AtomicUsize::new(0));
    for request in server.incoming_requests() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        if is_cross_site(&request) {
            let _ = request.respond(status(403));
            continue;
        }
        if request.url() == "/events" {
            if streams.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
                streams.fetch_sub(1, Ordering::SeqCst);
                let _ = request.respond(status(503));
                continue;
            }
            let scene = Arc::clone(&scene);
            let stopping = Arc::clone(stopping);
            let count = Arc::clone(&streams);
            // Each event stream holds its connection open; give it a thread.
            let spawned = std::thread::Builder::new()
                .name("web-events".into())
                .spawn(move || {
                    stream_events(request, &scene, &stopping);
                    count.fetch_sub(1, Ordering::SeqCst);
                });
            if let Err(err) = spawned {
                streams.fetch_sub(1, Ordering::SeqCst);
                eprintln!("culex demo: cannot start an event stream: {err}");
            }
            continue;
        }
        let _ = handle(request, &scene);
    }
}

/// Whether a browser sent this request from another site's page (its
/// `Origin` names a host other than the one it asked): such a page may not
/// press the boards' buttons.
fn is_cross_site(request: &tiny_http::Request) -> bool {
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_owned())
    };
    match (header("Origin"), header("Host")) {
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .split_once("://")
                .map_or(origin.as_str(), |(_, rest)| rest);
            origin_host != host
        }
        (Some(_), None) => true,
        _ => false,
    }
}

fn handle(request: tiny_http::Request, scene: &Scene) -> std::io::Result<()> {
    use tiny_http::Method;
    let path = request.url().split('?').next().unwrap_or("").to_owned();
    match (request.method(), path.as_str()) {
        (Method::Get, "/" | "/index.html") => {
            request.respond(text(INDEX_HTML, "text/html; charset=utf-8"))
        }
        (Method::Get, "/app.js") => request.respond(text(APP_JS, "text/javascript; charset=utf-8")),
        (Method::Get, "/style.css") => request.respond(text(STYLE_CSS, "text/css; charset=utf-8")),
        (Method::Get, "/api/state") => {
            request.respond(text(&state_json(scene), "application/json"))
        }
        (Method::Post, path) if path.starts_with("/api/boards/") => {
            let rest = path.trim_start_matches("/api/boards/");
            let Some((name, action)) = rest.rsplit_once('/') else {
                return request.respond(status(404));
            };
            let Some(board) = scene.boards.iter().find(|b| b.name == name) else {
                return request.respond(status(404));
            };
            match action {
                "press" => board.pins.press(),
                "release" => board.pins.release(),
                _ => return request.respond(status(404)),
            }
            request.respond(status(204))
        }
        (Method::Get | Method::Post, _) => request.respond(status(404)),
        _ => request.respond(status(405)),
    }
}

fn text(body: &str, content_type: &str) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut response = tiny_http::Response::from_string(body);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(header);
    }
    if let Ok(header) = tiny_http::Header::from_bytes("Cache-Control", "no-store") {
        response = response.with_header(header);
    }
    response
}

fn status(code: u16) -> tiny_http::Response<std::io::Empty> {
    tiny_http::Response::empty(code)
}

/// Serves one `text/event-stream` until the page goes away or the server
/// stops. tiny_http would buffer a streamed body, so the stream is written
/// to the socket directly.
fn stream_events(request: tiny_http::Request, scene: &Scene, stopping: &AtomicBool) {
    let mut out = request.into_writer();
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                Cache-Control: no-store\r\nConnection: close\r\n\r\n";
    if out
        .write_all(head.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        return;
    }
    let mut sent_state = String::new();
    let mut next_line = scene.log.next_seq().saturating_sub(BACKLOG_LINES as u64);
    let mut generation = scene.signal.generation();
    while !stopping.load(Ordering::SeqCst) {
        let mut chunk = String::new();
        let state = state_json(scene);
        if state != sent_state {
            chunk.push_str(&format!("event: state\ndata: {state}\n\n"));
            sent_state = state;
        }
        for (seq, line) in scene.log.since(next_line) {
            let data = serde_json::json!({ "seq": seq, "line": line });
            chunk.push_str(&format!("event: msg\ndata: {data}\n\n"));
            next_line = seq + 1;
        }
        if chunk.is_empty() {
            chunk.push_str(": ping\n\n");
        }
        if out
            .write_all(chunk.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
        let seen = generation;
        generation = scene.signal.wait_past(seen, STREAM_PING);
    }
}
