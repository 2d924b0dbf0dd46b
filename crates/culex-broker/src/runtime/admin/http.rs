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

use super::api;
use super::auth::{Denied, Who};
use super::metrics;
use super::request::{percent_decode, Call, Query, Reply, ACTION_HEADER};
use super::shared::Admin;

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const APP_CSS: &str = include_str!("page/app.css");

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
