//! Who may use the admin listener: with `http_admin`, the named users of
//! the password file, by HTTP Basic authentication (over HTTPS off the
//! loopback); without, anyone who reaches the loopback listener, as long
//! as the request names a loopback host (a web page elsewhere cannot make
//! a browser talk to it through DNS rebinding).
//!
//! Failed logins count for the source address's back-off, shared with
//! MQTT logins (`auth_backoff_max`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use hyper::header::{HeaderMap, AUTHORIZATION, HOST};
use parking_lot::RwLock;

use super::error::AdminError;
use crate::auth::backoff::{AuthBackoff, Turn};
use crate::auth::password::PasswordFile;
use crate::config::HttpListener;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    /// Anyone on the loopback (no `http_admin` configured).
    Local,
    /// An administrator, by user name.
    Admin(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Local => f.write_str("(local)"),
            Who::Admin(user) => f.write_str(user),
        }
    }
}

/// Why a request was turned away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No credentials: 401, and the browser asks for them.
    Missing,
    /// Credentials that are not an administrator's (the user, if readable).
    Wrong(Option<String>),
    /// The address's login back-off refuses it unchecked.
    TooMany,
    /// Without authentication, a host name that is not the loopback's.
    ForeignHost,
}

/// The admin listener's authentication.
#[derive(Debug)]
pub(crate) struct Auth {
    admins: Vec<String>,
    password_file: Option<PathBuf>,
    // Read per request, replaced whole on SIGHUP: a short read lock.
    passwords: RwLock<Arc<PasswordFile>>,
}

impl Auth {
    /// The authentication `http` asks for, its password file loaded.
    pub fn new(http: &HttpListener) -> Result<Auth, AdminError> {
        let auth = Auth {
            admins: http.admins.clone(),
            password_file: http.password_file.clone(),
            passwords: RwLock::new(Arc::new(PasswordFile::default())),
        };
        if auth.is_required() {
            auth.reload()?;
        }
        Ok(auth)
    }

    /// Whether requests must authenticate.
    pub fn is_required(&self) -> bool {
        !self.admins.is_empty()
    }

    /// Reads the password file again (SIGHUP).
    pub fn reload(&self) -> Result<(), AdminError> {
        if !self.is_required() {
            return Ok(());
        }
        let Some(path) = &self.password_file else {
            return Err(AdminError::Config(
                "http_admin needs a password_file to check the administrators' passwords".into(),
            ));
        };
        let file = PasswordFile::load(path).map_err(|e| AdminError::Config(e.to_string()))?;
        for admin in &self.admins {
            if !file.contains(admin) {
                tracing::warn!(
                    "Warning: http_admin user {admin} is not in {}.",
                    path.display()
                );
            }
        }
        *self.passwords.write() = Arc::new(file);
        Ok(())
    }

    /// Checks a request's credentials (waiting for the address's turn in
    /// its login back-off if it has one).
    pub async fn check(
        &self,
        headers: &HeaderMap,
        ip: IpAddr,
        backoff: &AuthBackoff,
    ) -> Result<Who, Denied> {
        if !self.is_required() {
            return match headers.get(HOST).and_then(|h| h.to_str().ok()) {
                Some(host) if is_loopback_host(host) => Ok(Who::Local),
                _ => Err(Denied::ForeignHost),
            };
        }
        let Some((user, password)) = basic_credentials(headers) else {
            return Err(Denied::Missing);
        };
        match backoff.turn(ip, Instant::now()) {
            Turn::Now => {}
            Turn::At(at) => tokio::time::sleep_until(at.into()).await,
            Turn::Refused => return Err(Denied::TooMany),
        }
        // The password is checked first, whoever the user: the time taken
        // does not tell administrators from other names.
        let valid = self.passwords.read().verify(&user, &password);
        let accepted = valid && self.admins.contains(&user);
        backoff.record(ip, accepted, Instant::now());
        match accepted {
            true => Ok(Who::Admin(user)),
            false => Err(Denied::Wrong(Some(user))),
        }
    }
}

/// The user and password of a `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(decoded.get(..colon)?.to_vec()).ok()?;
    let password = decoded.get(colon + 1..)?.to_vec();
    Some((user, password))
}

/// Whether a Host header names the loopback: `localhost` or a loopback
/// address, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn hosts_and_credentials() {
        for host in [
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "127.0.0.1",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["evil.example:8080", "10.0.0.1:80", "[fe80::1]:80", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
        let mut h = HeaderMap::new();
        // alice:s:ecret
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6czplY3JldA=="),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("alice".to_string(), b"s:ecret".to_vec()))
        );
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(basic_credentials(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic_credentials(&h), None);
    }
}
