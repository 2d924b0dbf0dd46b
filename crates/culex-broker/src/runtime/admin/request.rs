//! What the routes see of a request ([`Call`]) and answer ([`Reply`]), and
//! the decoding of its path and query: percent-escapes must decode to
//! UTF-8, or the request is refused.

use std::net::SocketAddr;

use bytes::Bytes;
use hyper::{Method, StatusCode};

use super::auth::Who;

/// The header every action (POST, DELETE) must carry.
pub(crate) const ACTION_HEADER: &str = "x-culex-admin";

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
