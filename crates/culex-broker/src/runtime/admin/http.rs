//! One request: authentication, the route, the response with its
//! security headers. Requests are untrusted: only known paths are served
//! (the page's files are compiled in, nothing is read from disk), query
//! values are percent-decoded and must be UTF-8, lists come in bounded
//! pages, and actions need a header that a page of another origin cannot
//! send without the browser asking us first (which we never allow).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use super::auth::{Denied, Who};
use super::{api, metrics, Admin};

/// The header every action (POST, DELETE) must carry.
pub(crate) const ACTION_HEADER: &str = "x-culex-admin";

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

/// What a route answers.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A JSON document.
    Json(StatusCode, serde_json::Value),
    /// Text or a file of the page.
    Body(StatusCode, &'static str, Bytes),
    /// The method is not served on this path.
    Method(&'static str),
}

impl Reply {
    /// `{"error": why}` with `status`.
    pub fn error(status: StatusCode, why: impl Into<String>) -> Reply {
        Reply::Json(status, serde_json::json!({ "error": why.into() }))
    }
}

/// A request as the routes see it.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub method: &'a Method,
    /// The path's segments after `/api/`, percent-decoded.
    pub segments: Vec<String>,
    pub query: Query,
    pub who: Who,
    pub peer: SocketAddr,
}

/// Answers one request.
pub(crate) async fn handle(
    admin: &Admin,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let backoff = admin.core.auth_backoff();
    let who = match admin.auth.check(req.headers(), peer.ip(), backoff).await {
        Ok(who) => who,
        Err(denied) => return refuse(&denied, peer),
    };
    let reply = route(admin, &req, who, peer);
    respond(reply)
}

fn route(admin: &Admin, req: &Request<Incoming>, who: Who, peer: SocketAddr) -> Reply {
    let path = req.uri().path();
    let method = req.method();
    let get = |reply: fn() -> Reply| match *method {
        Method::GET | Method::HEAD => reply(),
        _ => Reply::Method("GET, HEAD"),
    };
    match path {
        "/" | "/index.html" => get(|| asset("text/html; charset=utf-8", INDEX_HTML)),
        "/app.js" => get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        "/app.css" => get(|| asset("text/css; charset=utf-8", APP_CSS)),
        "/metrics" => match *method {
            Method::GET | Method::HEAD => Reply::Body(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                Bytes::from(metrics::render(admin)),
            ),
            _ => Reply::Method("GET, HEAD"),
        },
        _ => {
            let Some(rest) = path.strip_prefix("/api/") else {
                return Reply::error(StatusCode::NOT_FOUND, "not found");
            };
            let call = match parse_call(req, rest, who, peer) {
                Ok(call) => call,
                Err(reply) => return reply,
            };
            api::route(admin, &call)
        }
    }
}

fn parse_call<'a>(
    req: &'a Request<Incoming>,
    rest: &str,
    who: Who,
    peer: SocketAddr,
) -> Result<Call<'a>, Reply> {
    let bad = |why: &str| Reply::error(StatusCode::BAD_REQUEST, why);
    let segments = rest
        .split('/')
        .map(|s| percent_decode(s, false).ok_or_else(|| bad("bad percent-encoding in the path")))
        .collect::<Result<Vec<String>, Reply>>()?;
    let query = Query::parse(req.uri().query().unwrap_or(""))
        .ok_or_else(|| bad("bad percent-encoding in the query"))?;
    let method = req.method();
    if !matches!(*method, Method::GET | Method::HEAD) && !req.headers().contains_key(ACTION_HEADER)
    {
        return Err(Reply::error(
            StatusCode::FORBIDDEN,
            format!("actions need the {ACTION_HEADER} header"),
        ));
    }
    Ok(Call {
        method,
        segments,
        query,
        who,
        peer,
    })
}

fn asset(content_type: &'static str, body: &'static str) -> Reply {
    Reply::Body(
        StatusCode::OK,
        content_type,
        Bytes::from_static(body.as_bytes()),
    )
}

/// A refused request: 401 asks the browser for credentials (not after a
/// refusal by the back-off, which it would only repeat).
fn refuse(denied: &Denied, peer: SocketAddr) -> Response<Full<Bytes>> {
    let (status, why) = match denied {
        Denied::Missing => (StatusCode::UNAUTHORIZED, "authentication required"),
        Denied::Wrong(user) => {
            tracing::info!(
                "Admin login failed for {} from {}.",
                user.as_deref().unwrap_or("?"),
                peer.ip()
            );
            (StatusCode::UNAUTHORIZED, "not an administrator")
        }
        Denied::TooMany => (StatusCode::TOO_MANY_REQUESTS, "too many failed logins"),
        Denied::ForeignHost => (StatusCode::MISDIRECTED_REQUEST, "not a loopback host name"),
    };
    let mut response = respond(Reply::error(status, why));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"culex admin\", charset=\"UTF-8\""),
        );
    }
    response
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let (status, content_type, body, allow) = match reply {
        Reply::Json(status, value) => (
            status,
            "application/json",
            Bytes::from(value.to_string()),
            None,
        ),
        Reply::Body(status, content_type, body) => (status, content_type, body, None),
        Reply::Method(allow) => (
            StatusCode::METHOD_NOT_ALLOWED,
            "application/json",
            Bytes::from_static(b"{\"error\":\"method not allowed\"}"),
            Some(allow),
        ),
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'",
        ),
    );
    if let Some(allow) = allow {
        headers.insert(ALLOW, HeaderValue::from_static(allow));
    }
    response
}

/// A request's query: `key=value` pairs, percent-decoded (`+` is a space).
#[derive(Debug, Default)]
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    /// `None` when a part is not valid percent-encoded UTF-8.
    pub fn parse(query: &str) -> Option<Query> {
        let mut pairs = Vec::new();
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((percent_decode(key, true)?, percent_decode(value, true)?));
        }
        Some(Query(pairs))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A number, `default` when absent; `None` when not a number.
    pub fn number(&self, key: &str, default: u64) -> Option<u64> {
        match self.get(key) {
            None | Some("") => Some(default),
            Some(v) => v.parse().ok(),
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space in a query); `None` for a
/// broken escape or a result that is not UTF-8.
pub(crate) fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hi = hex(bytes.next()?)?;
                let lo = hex(bytes.next()?)?;
                out.push((hi << 4) | lo);
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_or_refuse() {
        let q = Query::parse("filter=a%2F%23&x=1+2&empty=&flag").unwrap();
        assert_eq!(q.get("filter"), Some("a/#"));
        assert_eq!(q.get("x"), Some("1 2"));
        assert_eq!(q.get("empty"), Some(""));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.number("limit", 7), Some(7));
        assert_eq!(Query::parse("n=12").unwrap().number("n", 0), Some(12));
        assert_eq!(Query::parse("n=x").unwrap().number("n", 0), None);
        assert!(Query::parse("a=%zz").is_none());
        assert!(Query::parse("a=%f").is_none());
        assert!(Query::parse("a=%ff").is_none(), "not UTF-8");
        assert_eq!(percent_decode("%C3%A9/x", false).as_deref(), Some("é/x"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
    }
}
