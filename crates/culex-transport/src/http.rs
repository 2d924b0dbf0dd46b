//! The little HTTP/1.1 a WebSocket listener speaks besides the upgrade:
//! error responses, and plain files from `http_dir` (which the runtime
//! reads; this module only says which file and writes the response head).

use std::path::{Component, Path, PathBuf};

use bytes::{BufMut, BytesMut};

/// A plain GET (or HEAD) for a file under the listener's `http_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// The file, relative to `http_dir`: percent-decoded, without query,
    /// never absolute and without `..`; `index.html` for a directory.
    /// The runtime should still refuse a path that resolves (through a
    /// symbolic link) outside `http_dir`.
    pub path: PathBuf,
    /// A HEAD request: send the head of the response only.
    pub head_only: bool,
}

impl FileRequest {
    /// Parses a request target such as `/js/app.js?v=2`; `None` when it is
    /// not a safe relative path.
    pub fn parse(target: &str, head_only: bool) -> Option<FileRequest> {
        let path = target.split(['?', '#']).next().unwrap_or_default();
        let path = path.strip_prefix('/')?;
        let decoded = percent_decode(path)?;
        if decoded.contains(['\0', '\\']) {
            return None;
        }
        let mut clean = PathBuf::new();
        for component in Path::new(&decoded).components() {
            match component {
                Component::Normal(part) => clean.push(part),
                Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        if decoded.is_empty() || decoded.ends_with('/') {
            clean.push("index.html");
        }
        Some(FileRequest {
            path: clean,
            head_only,
        })
    }
}

/// `%XX` escapes decoded; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = char::from(bytes.next()?).to_digit(16)?;
            let lo = char::from(bytes.next()?).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

/// The reason phrase of the statuses used here.
pub fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        500 => "Internal Server Error",
        _ => "",
    }
}

/// Writes a response head: status line, `fields`, blank line.
pub fn write_head(out: &mut BytesMut, status: u16, fields: &[(&str, &str)]) {
    out.put_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (name, value) in fields {
        out.put_slice(name.as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
}

/// A complete response for a file or a short text: the head (with
/// `Content-Type`, `Content-Length` and `Connection: close`) and, unless
/// `head_only`, `body`. For a large file write the head alone with
/// [`write_file_head`] and stream the file after it.
pub fn write_response(
    out: &mut BytesMut,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) {
    write_file_head(out, status, content_type, body.len() as u64);
    if !head_only {
        out.put_slice(body);
    }
}

/// The head of a response whose body (`content_length` bytes) follows.
pub fn write_file_head(out: &mut BytesMut, status: u16, content_type: &str, content_length: u64) {
    let length = content_length.to_string();
    write_head(
        out,
        status,
        &[
            ("Content-Type", content_type),
            ("Content-Length", &length),
            ("Connection", "close"),
        ],
    );
}

/// An error response with its reason phrase as the body.
pub fn write_error(out: &mut BytesMut, status: u16) {
    let body = format!("{status} {}\n", reason(status));
    write_response(
        out,
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        false,
    );
}

/// The `Content-Type` for a file, from its extension.
pub fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(target: &str, expect: Option<&str>) {
        let got = FileRequest::parse(target, false).map(|f| f.path.display().to_string());
        assert_eq!(got.as_deref(), expect, "{target}");
    }

    #[test]
    fn paths_are_sanitised() {
        check("/", Some("index.html"));
        check("/index.html", Some("index.html"));
        check("/js/app.js?v=2#top", Some("js/app.js"));
        check("/docs/", Some("docs/index.html"));
        check("/a/./b.txt", Some("a/b.txt"));
        check("/a//b.txt", Some("a/b.txt"));
        check("//etc/passwd", None);
        check("/hello%20world.txt", Some("hello world.txt"));
        check("/caf%C3%A9.html", Some("café.html"));
        check("/../etc/passwd", None);
        check("/a/../../etc/passwd", None);
        check("/a/%2e%2e/b", None);
        check("/%2e%2e%2fetc", None);
        check("/a%5c..%5cb", None);
        check("/a%00b", None);
        check("/%zz", None);
        check("/%C3", None);
        check("/%", None);
        check("relative", None);
        check("*", None);
        check("http://example.com/x", None);
    }

    #[test]
    fn responses() {
        let mut out = BytesMut::new();
        write_response(
            &mut out,
            200,
            content_type(Path::new("a/INDEX.HTML")),
            b"<p>hi</p>",
            false,
        );
        assert_eq!(
            &out[..],
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 9\r\nConnection: close\r\n\r\n<p>hi</p>"
        );
        let mut head = BytesMut::new();
        write_response(&mut head, 200, "text/plain", b"body", true);
        assert!(head.ends_with(b"Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let mut error = BytesMut::new();
        write_error(&mut error, 404);
        assert!(error.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
        assert!(error.ends_with(b"\r\n\r\n404 Not Found\n"));
        assert_eq!(content_type(Path::new("x.bin")), "application/octet-stream");
    }
}
