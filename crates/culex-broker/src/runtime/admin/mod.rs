//! The admin HTTP listener (`http_listener`): the dashboard page, metrics
//! in Prometheus's text format at `/metrics`, and a JSON API under `/api/`.
//!
//! It reads the broker only through the core's read-only views
//! (`core::observe`) and acts only through the core's owner API
//! (`Core::kick`, `remove_subscription`, `delete_retained`), like any
//! other part of the runtime; it never touches broker state itself.
//!
//! Costs: with no `http_listener` nothing here exists. With one and nobody
//! watching, the message path pays counter increments only: the topic
//! tree is fed by routing only while a page (or an API client) has asked
//! for it in the last 30 s (`shared::WATCH_LEASE`), and the live log hears of connects,
//! disconnects and spells of drops, never of single messages.
//!
//! The HTTP stack is hyper's HTTP/1.1 server, with tokio-rustls for HTTPS.
//! Requests are bounded: 16 KiB of head, no body is read, at most
//! [`MAX_CONNECTIONS`] connections, pages of at most 500 items.

mod api;
mod auth;
mod error;
pub(crate) mod events;
mod http;
mod metrics;
mod process;
mod request;
mod shared;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

use super::state::{shutdown_requested, Runtime};
use crate::config::HttpListener;
use crate::core::Core;
use auth::Auth;
use error::AdminError;
use events::EventRing;
pub(crate) use shared::Admin;

/// Concurrent HTTP connections at most; more are closed at once.
pub(crate) const MAX_CONNECTIONS: usize = 64;
/// How long a client may take for its TLS handshake, and for a request's head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An admin listener bound and configured, not serving yet.
pub(crate) struct Prepared {
    admin: Arc<Admin>,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Checks `http` (off the loopback only with administrators and HTTPS),
/// loads its certificate and password file and binds its socket.
pub(crate) fn prepare(
    core: Arc<Core>,
    http: &HttpListener,
    events: Arc<EventRing>,
    listeners: Vec<String>,
) -> Result<Prepared, AdminError> {
    check_exposure(http)?;
    let tls = match (&http.certfile, &http.keyfile) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            cert, key,
        )?)),
        (None, None) => None,
        _ => {
            return Err(AdminError::Config(
                "certfile and keyfile go together".into(),
            ))
        }
    };
    let auth = Auth::new(http)?;
    let bind = |addr| {
        let socket = std::net::TcpListener::bind(addr)?;
        socket.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(socket)
    };
    let listener = bind(http.addr).map_err(|source| AdminError::Bind {
        addr: http.addr,
        source,
    })?;
    let local_addr = listener.local_addr().unwrap_or(http.addr);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!("Opening admin listener on {scheme}://{local_addr}/.");
    let admin = Admin::new(core, auth, events, listeners, local_addr, tls.is_some());
    Ok(Prepared {
        admin: Arc::new(admin),
        listener,
        tls,
    })
}

/// Off the loopback, the listener needs administrators and HTTPS.
fn check_exposure(http: &HttpListener) -> Result<(), AdminError> {
    if http.addr.ip().is_loopback() {
        return Ok(());
    }
    let mut missing = Vec::new();
    if http.admins.is_empty() {
        missing.push("http_admin users (and a password_file)");
    }
    if http.certfile.is_none() || http.keyfile.is_none() {
        missing.push("certfile and keyfile (HTTPS)");
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(AdminError::Config(format!(
        "{} is not a loopback address: refusing to serve the admin API there without {}",
        http.addr.ip(),
        missing.join(" and ")
    )))
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Starts serving on the broker's runtime; everything stops at shutdown.
    pub fn spawn(self, rt: &Arc<Runtime>) -> Arc<Admin> {
        let admin = self.admin.clone();
        tokio::spawn(accept_loop(rt.clone(), self));
        tokio::spawn(housekeeping(rt.clone(), admin.clone()));
        admin
    }
}

/// Accepts admin connections until shutdown.
async fn accept_loop(rt: Arc<Runtime>, prepared: Prepared) {
    let _alive = rt.alive_token();
    let mut shutdown = rt.shutdown.clone();
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let Prepared {
        admin,
        listener,
        tls,
    } = prepared;
    loop {
        let accepted = tokio::select! {
            _ = shutdown_requested(&mut shutdown) => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!("admin listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (admin, rt, tls) = (admin.clone(), rt.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _alive = rt.alive_token();
            let mut shutdown = rt.shutdown.clone();
            let Some(acceptor) = tls else {
                return serve(admin, stream, peer, shutdown).await;
            };
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let stream = tokio::select! {
                _ = shutdown_requested(&mut shutdown) => return,
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return tracing::debug!("admin listener: TLS from {peer}: {e}"),
                    Err(_) => return tracing::debug!("admin listener: TLS from {peer}: timed out"),
                },
            };
            serve(admin, stream, peer, shutdown).await;
        });
    }
}

/// Serves one HTTP/1.1 connection until it ends or the broker shuts down.
async fn serve<S>(
    admin: Arc<Admin>,
    stream: S,
    peer: SocketAddr,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let admin = admin.clone();
        async move { Ok::<_, Infallible>(http::handle(&admin, req, peer).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown_requested(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
        }
    }
}

/// Once a second: the overview sample, and the end of an expired topic
/// watch. At shutdown the watch ends.
async fn housekeeping(rt: Arc<Runtime>, admin: Arc<Admin>) {
    let mut shutdown = rt.shutdown.clone();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown_requested(&mut shutdown) => break,
            _ = tick.tick() => {}
        }
        admin.sample();
        admin.expire_lease(false);
    }
    admin.expire_lease(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_off_the_loopback_needs_login_and_https() {
        let loopback = HttpListener::new(SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert!(check_exposure(&loopback).is_ok());
        let anywhere = HttpListener::new(SocketAddr::from(([0, 0, 0, 0], 8080)));
        let err = check_exposure(&anywhere).unwrap_err().to_string();
        assert!(
            err.contains("http_admin") && err.contains("certfile"),
            "{err}"
        );
        let guarded = HttpListener {
            admins: vec!["alice".into()],
            certfile: Some("/c.pem".into()),
            keyfile: Some("/k.pem".into()),
            ..anywhere
        };
        assert!(check_exposure(&guarded).is_ok());
    }
}
