//! mosquitto_passwd's password file: `user:$7$…` (PBKDF2-SHA512) and `$6$` lines.

/// A parsed password file.
#[derive(Debug, Default, Clone)]
pub struct PasswordFile {}
