//! Authentication (password file) and authorisation (ACL file), with
//! mosquitto's file formats and semantics.
//!
//! (Contract for the broker core; the auth work fills it in.)

pub mod acl;
pub mod password;

use std::sync::Arc;

/// The security policy of one listener, swapped whole on SIGHUP reload.
#[derive(Debug, Default)]
pub struct Policy {
    /// Whether clients without a user name may connect.
    pub allow_anonymous: bool,
    /// Users and their hashes; None when no password file is configured.
    pub passwords: Option<password::PasswordFile>,
    /// The ACL; None when no ACL file is configured (everything allowed).
    pub acl: Option<acl::Acl>,
}

/// The outcome of checking a CONNECT's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// Allowed.
    Accepted,
    /// Wrong user name or password: CONNACK 5 (3.x) / 0x86 or 0x87 (5.0).
    BadCredentials,
    /// Anonymous clients are not allowed: CONNACK 5 / 0x87.
    NotAuthorized,
}

impl Policy {
    /// Checks the credentials of a CONNECT (constant-time password compare).
    pub fn login(&self, username: Option<&str>, password: Option<&[u8]>) -> Login {
        let _ = (username, password);
        unimplemented_policy()
    }

    /// Whether `client_id`/`username` may publish to `topic`.
    pub fn can_write(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.check(client_id, username, topic, acl::Access::Write),
        }
    }

    /// Whether `client_id`/`username` may receive a message on `topic`.
    pub fn can_read(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.check(client_id, username, topic, acl::Access::Read),
        }
    }

    /// Whether `client_id`/`username` may subscribe to `filter` (refused with
    /// SUBACK 0x80/0x87 when no read rule could ever match it).
    pub fn can_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        match &self.acl {
            None => true,
            Some(acl) => acl.check_subscribe(client_id, username, filter),
        }
    }
}

fn unimplemented_policy() -> Login {
    Login::NotAuthorized
}

/// A policy shared by connections and replaced atomically on reload.
pub type SharedPolicy = Arc<parking_lot::RwLock<Arc<Policy>>>;
