//! Authentication (password file) and authorisation (ACL file), with
//! mosquitto's file formats and semantics. [`Policy`] is what the broker
//! core consults; [`password`] and [`acl`] read the two files.

pub mod acl;
pub mod backoff;
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
    /// Checks the credentials of a CONNECT (constant-time password compare),
    /// as mosquitto 2.0 does:
    /// - no user name: accepted only when `allow_anonymous`;
    /// - a user name but no password file: accepted only when `allow_anonymous`;
    /// - with a password file, a user name must be in it with a matching
    ///   password, whatever `allow_anonymous` says.
    pub fn login(&self, username: Option<&str>, password: Option<&[u8]>) -> Login {
        match (username, &self.passwords) {
            (None, _) if self.allow_anonymous => Login::Accepted,
            (None, _) => Login::NotAuthorized,
            (Some(_), None) if self.allow_anonymous => Login::Accepted,
            (Some(_), None) => Login::BadCredentials,
            (Some(user), Some(file)) => match password {
                Some(password) if file.verify(user, password) => Login::Accepted,
                _ => Login::BadCredentials,
            },
        }
    }

    /// Builds a policy from security settings, reading the password and ACL
    /// files they name (also used to reload them on SIGHUP).
    pub fn load(security: &crate::config::Security) -> Result<Policy, PolicyError> {
        Ok(Policy {
            allow_anonymous: security.allow_anonymous,
            passwords: security
                .password_file
                .as_deref()
                .map(password::PasswordFile::load)
                .transpose()?,
            acl: security
                .acl_file
                .as_deref()
                .map(acl::Acl::load)
                .transpose()?,
        })
    }

    /// Whether `client_id`/`username` may publish to `topic`. As in
    /// mosquitto, clients never publish under `$SYS` (but for a bridge's
    /// `$SYS/broker/connection/ID/state`) or `$share`, whatever the ACL says.
    pub fn can_write(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        if topic.starts_with("$share") {
            return false;
        }
        if topic.starts_with("$SYS") && !is_bridge_state_topic(topic) {
            return false;
        }
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

/// `$SYS/broker/connection/+/state`.
fn is_bridge_state_topic(topic: &str) -> bool {
    topic
        .strip_prefix("$SYS/broker/connection/")
        .and_then(|rest| rest.strip_suffix("/state"))
        .is_some_and(|id| !id.contains('/'))
}

/// Why a policy's files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The password file.
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    /// The ACL file.
    #[error(transparent)]
    Acl(#[from] acl::AclError),
}

/// A policy shared by connections and replaced atomically on reload.
pub type SharedPolicy = Arc<parking_lot::RwLock<Arc<Policy>>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(allow_anonymous: bool) -> Policy {
        let line = format!("alice:{}\n", password::PasswordHash::generate(b"secret"));
        Policy {
            allow_anonymous,
            passwords: Some(password::PasswordFile::parse(&line)),
            acl: None,
        }
    }

    type LoginRow<'a> = (&'a Policy, Option<&'a str>, Option<&'a [u8]>, Login);

    #[test]
    fn login_table() {
        let open = Policy {
            allow_anonymous: true,
            passwords: None,
            acl: None,
        };
        let closed = Policy {
            allow_anonymous: false,
            passwords: None,
            acl: None,
        };
        let table: &[LoginRow] = &[
            (&open, None, None, Login::Accepted),
            (&open, Some("anyone"), Some(b"x"), Login::Accepted),
            (&open, Some("anyone"), None, Login::Accepted),
            (&closed, None, None, Login::NotAuthorized),
            (&closed, Some("anyone"), Some(b"x"), Login::BadCredentials),
            (
                &with_file(false),
                Some("alice"),
                Some(b"secret"),
                Login::Accepted,
            ),
            (
                &with_file(false),
                Some("alice"),
                Some(b"wrong"),
                Login::BadCredentials,
            ),
            (
                &with_file(false),
                Some("alice"),
                None,
                Login::BadCredentials,
            ),
            (
                &with_file(false),
                Some("bob"),
                Some(b"secret"),
                Login::BadCredentials,
            ),
            (&with_file(false), None, None, Login::NotAuthorized),
            // allow_anonymous does not let unknown users or wrong passwords in.
            (&with_file(true), None, None, Login::Accepted),
            (
                &with_file(true),
                Some("bob"),
                Some(b"secret"),
                Login::BadCredentials,
            ),
            (
                &with_file(true),
                Some("alice"),
                Some(b"wrong"),
                Login::BadCredentials,
            ),
        ];
        for (i, (policy, user, password, expected)) in table.iter().enumerate() {
            assert_eq!(policy.login(*user, *password), *expected, "row {i}");
        }
    }

    #[test]
    fn no_acl_allows_everything_and_acl_is_consulted() {
        let mut policy = Policy {
            allow_anonymous: true,
            passwords: None,
            acl: None,
        };
        assert!(policy.can_write("c", None, "a/b"));
        assert!(policy.can_subscribe("c", None, "#"));
        policy.acl = Some(acl::Acl::parse("topic read a/#\n").unwrap());
        assert!(!policy.can_subscribe("c", None, "#"));
        assert!(policy.can_subscribe("c", None, "a/+"));
        assert!(!policy.can_subscribe("c", Some("u"), "a/+"));
    }

    #[test]
    fn sys_and_share_topics_are_never_written() {
        let policy = Policy {
            allow_anonymous: true,
            passwords: None,
            acl: None,
        };
        assert!(!policy.can_write("c", None, "$SYS/broker/uptime"));
        assert!(!policy.can_write("c", None, "$share/g/t"));
        assert!(policy.can_write("c", None, "$SYS/broker/connection/b1/state"));
        assert!(!policy.can_write("c", None, "$SYS/broker/connection/b1/state/x"));
        assert!(policy.can_write("c", None, "$other/t"));
        assert!(policy.can_read("c", None, "$SYS/broker/uptime"));
    }

    #[test]
    fn load_reads_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(
            &pw,
            format!("u:{}\n", password::PasswordHash::generate(b"p")),
        )
        .unwrap();
        let acl = dir.path().join("acl");
        std::fs::write(&acl, "user u\ntopic read x/#\n").unwrap();
        let security = crate::config::Security {
            allow_anonymous: false,
            password_file: Some(pw),
            acl_file: Some(acl.clone()),
            ..Default::default()
        };
        let policy = Policy::load(&security).unwrap();
        assert_eq!(policy.login(Some("u"), Some(b"p")), Login::Accepted);
        assert!(policy.can_subscribe("c", Some("u"), "x/y"));
        std::fs::write(&acl, "bogus line\n").unwrap();
        let err = Policy::load(&security).unwrap_err();
        assert_eq!(
            err.to_string(),
            "acl_file line 1: unknown directive 'bogus'"
        );
        let missing = crate::config::Security {
            password_file: Some(dir.path().join("nope")),
            ..Default::default()
        };
        assert!(Policy::load(&missing).is_err());
    }
}
