//! mosquitto's acl_file.

/// The access a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Receive messages.
    Read,
    /// Publish messages.
    Write,
}

/// A parsed ACL file.
#[derive(Debug, Default, Clone)]
pub struct Acl {}

impl Acl {
    /// Whether the client may read or write `topic`.
    pub fn check(&self, client_id: &str, username: Option<&str>, topic: &str, access: Access) -> bool {
        let _ = (client_id, username, topic, access);
        false
    }

    /// Whether the client may subscribe to `filter`.
    pub fn check_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let _ = (client_id, username, filter);
        false
    }
}
