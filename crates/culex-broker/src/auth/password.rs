//! mosquitto_passwd's password file: `user:$7$…` (PBKDF2-SHA512) and `$6$` lines.
//!
//! Both hash formats are mosquitto's own, not crypt(3):
//! - `$6$SALT$HASH` is SHA-512 over the password followed by the salt;
//! - `$7$ITERATIONS$SALT$HASH` is PBKDF2-HMAC-SHA512 with a 64-byte output.
//!
//! Salt and hash are standard base64 with padding. mosquitto_passwd 2.0 writes
//! `$7$` with 101 iterations and a 12-byte salt, as [`PasswordHash::generate`] does.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

/// PBKDF2 iterations of the `$7$` hashes written by mosquitto_passwd 2.0.
pub const PBKDF2_ITERATIONS: u32 = 101;
/// Salt length of the hashes written by mosquitto_passwd 2.0.
pub const SALT_LEN: usize = 12;
/// Length of a SHA-512 digest and of a `$7$` derived key.
pub const HASH_LEN: usize = 64;

/// Iterations above this are refused, so that a corrupt file cannot make
/// every login take minutes.
const MAX_ITERATIONS: u32 = 10_000_000;

/// Why a hash or a password file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The file could not be read.
    #[error("unable to open password file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A `$…` string that is not a `$6$` or `$7$` hash.
    #[error("invalid password hash: {0}")]
    InvalidHash(&'static str),
}

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$`: SHA-512 of password then salt.
    Sha512 {
        /// The salt.
        salt: Vec<u8>,
        /// The digest.
        hash: Vec<u8>,
    },
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        /// The iteration count.
        iterations: u32,
        /// The salt.
        salt: Vec<u8>,
        /// The derived key.
        hash: Vec<u8>,
    },
}

impl fmt::Debug for PasswordHash {
    // Hashes stay out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash::Sha512(..)"),
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash::Pbkdf2Sha512({iterations}, ..)")
            }
        }
    }
}

impl PasswordHash {
    /// A `$7$` hash of `password` with a fresh random salt, as mosquitto_passwd 2.0 writes.
    pub fn generate(password: &[u8]) -> PasswordHash {
        let mut salt = [0u8; SALT_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut salt);
        PasswordHash::pbkdf2(password, &salt, PBKDF2_ITERATIONS)
    }

    /// A `$7$` hash of `password` with the given salt and iteration count.
    pub fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> PasswordHash {
        let mut hash = vec![0u8; HASH_LEN];
        pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut hash);
        PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt: salt.to_vec(),
            hash,
        }
    }

    /// A `$6$` hash of `password` with the given salt (mosquitto 1.6's format).
    pub fn sha512(password: &[u8], salt: &[u8]) -> PasswordHash {
        PasswordHash::Sha512 {
            salt: salt.to_vec(),
            hash: sha512_salted(password, salt),
        }
    }

    /// Parses `$6$SALT$HASH` or `$7$ITERATIONS$SALT$HASH`.
    pub fn parse(text: &str) -> Result<PasswordHash, PasswordError> {
        let mut parts = text.split('$');
        if parts.next() != Some("") {
            return Err(PasswordError::InvalidHash("does not start with '$'"));
        }
        // `$6$` has no iteration count; otherwise both are SALT$HASH.
        let iterations = match parts.next() {
            Some("6") => None,
            Some("7") => Some(
                parts
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|n| (1..=MAX_ITERATIONS).contains(n))
                    .ok_or(PasswordError::InvalidHash("bad iteration count"))?,
            ),
            _ => return Err(PasswordError::InvalidHash("unknown hash type")),
        };
        let salt = decode(parts.next())?;
        let hash = decode(parts.next())?;
        if hash.len() != HASH_LEN {
            return Err(PasswordError::InvalidHash("wrong hash length"));
        }
        if parts.next().is_some() {
            return Err(PasswordError::InvalidHash("too many fields"));
        }
        Ok(match iterations {
            None => PasswordHash::Sha512 { salt, hash },
            Some(iterations) => PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            },
        })
    }

    /// Whether `password` matches, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        let (computed, stored) = match self {
            PasswordHash::Sha512 { salt, hash } => (sha512_salted(password, salt), hash),
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                let mut out = vec![0u8; hash.len()];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, *iterations, &mut out);
                (out, hash)
            }
        };
        computed.ct_eq(stored).into()
    }
}

impl fmt::Display for PasswordHash {
    /// The form stored in the file after `user:`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", BASE64.encode(salt), BASE64.encode(hash))
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                write!(
                    f,
                    "$7${iterations}${}${}",
                    BASE64.encode(salt),
                    BASE64.encode(hash)
                )
            }
        }
    }
}

fn decode(field: Option<&str>) -> Result<Vec<u8>, PasswordError> {
    let field = field.ok_or(PasswordError::InvalidHash("missing field"))?;
    BASE64
        .decode(field)
        .map_err(|_| PasswordError::InvalidHash("bad base64"))
}

fn sha512_salted(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let mut digest = Sha512::new();
    digest.update(password);
    digest.update(salt);
    digest.finalize().to_vec()
}

/// A parsed password file.
#[derive(Debug, Default, Clone)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
    warnings: Vec<String>,
}

impl PasswordFile {
    /// Reads and parses a password file.
    pub fn load(path: &Path) -> Result<PasswordFile, PasswordError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswordError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(PasswordFile::parse(&text))
    }

    /// Parses the text of a password file: one `user:hash` a line; blank
    /// lines and lines starting with `#` are skipped. As in mosquitto, a user
    /// whose hash cannot be read is left out (and can never log in), with a
    /// warning in [`PasswordFile::warnings`].
    pub fn parse(text: &str) -> PasswordFile {
        let mut file = PasswordFile::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim_end_matches(['\r', ' ', '\t']);
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let line_no = index + 1;
            let Some((user, hash)) = line.split_once(':') else {
                file.warnings.push(format!(
                    "line {line_no}: user without a password hash, ignored"
                ));
                continue;
            };
            match PasswordHash::parse(hash) {
                Ok(hash) => {
                    file.users.insert(user.to_string(), hash);
                }
                Err(e) => file.warnings.push(format!(
                    "line {line_no}: {e} for user {user}, removing entry"
                )),
            }
        }
        file
    }

    /// Whether `user` exists and `password` is theirs. An unknown user costs
    /// about as much time as a known one, so timing does not reveal user names.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                let decoy = PasswordHash::Pbkdf2Sha512 {
                    iterations: PBKDF2_ITERATIONS,
                    salt: vec![0; SALT_LEN],
                    hash: vec![0; HASH_LEN],
                };
                let _ = decoy.verify(password);
                false
            }
        }
    }

    /// Whether `user` has an entry.
    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    /// How many users the file holds.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file holds no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Problems met while parsing (lines that were left out).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    // Written by Debian's `mosquitto_passwd -H sha512 -c -b pw carol hunter2`.
    const SHA512_LINE: &str = "carol:$6$Cl679SY/zXAcDy11$LKNviK5OT0EsmNc6kzvcfw6i3envXQNdASaWPxLQvBQXeqUAU0htf6eu/t07gSffIMSLpA61QVBLvFPAfYwEBQ==";
    // Written by Debian's `mosquitto_passwd -c -b pw alice secret`.
    const PBKDF2_LINE: &str = "alice:$7$101$JteSdUceLHu021Zg$eQdi6QHxYo/ISfV/0tvJ8XRZ59qrEbIIJLIcFO77R50RBGEoB9vps4FerburQKKk+XFTUO+iykKw/UEzTMTkWg==";

    #[test]
    fn sha512_vector_from_mosquitto_passwd() {
        let file = PasswordFile::parse(SHA512_LINE);
        assert!(file.verify("carol", b"hunter2"));
        assert!(!file.verify("carol", b"hunter3"));
        assert!(!file.verify("carol", b""));
    }

    #[test]
    fn pbkdf2_vector_from_mosquitto_passwd() {
        let file = PasswordFile::parse(PBKDF2_LINE);
        assert!(file.verify("alice", b"secret"));
        assert!(!file.verify("alice", b"Secret"));
        assert!(!file.verify("bob", b"secret"));
    }

    #[test]
    fn hash_written_now_by_mosquitto_passwd_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        let out = culex_testkit::run_with_timeout(
            Command::new(culex_testkit::tool("mosquitto_passwd"))
                .arg("-c")
                .arg("-b")
                .arg(&path)
                .arg("dave")
                .arg("p@ss word"),
            Duration::from_secs(10),
        );
        assert!(out.status.success(), "{out:?}");
        let file = PasswordFile::load(&path).unwrap();
        assert_eq!(file.len(), 1);
        assert!(file.warnings().is_empty());
        assert!(file.verify("dave", b"p@ss word"));
        assert!(!file.verify("dave", b"p@ss"));
    }

    #[test]
    fn generated_hash_has_mosquitto_2_shape_and_round_trips() {
        let hash = PasswordHash::generate(b"pw");
        let text = hash.to_string();
        let fields: Vec<&str> = text.split('$').collect();
        assert_eq!(fields.len(), 5, "{text}");
        assert_eq!(fields[1], "7");
        assert_eq!(fields[2], "101");
        assert_eq!(BASE64.decode(fields[3]).unwrap().len(), SALT_LEN);
        assert_eq!(BASE64.decode(fields[4]).unwrap().len(), HASH_LEN);
        let parsed = PasswordHash::parse(&text).unwrap();
        assert_eq!(parsed, hash);
        assert!(parsed.verify(b"pw"));
        assert!(!parsed.verify(b"pW"));
        // A fresh salt each time.
        assert_ne!(PasswordHash::generate(b"pw").to_string(), text);
    }

    #[test]
    fn sha512_round_trip() {
        let hash = PasswordHash::sha512(b"x", b"0123456789ab");
        assert_eq!(PasswordHash::parse(&hash.to_string()).unwrap(), hash);
        assert!(hash.verify(b"x"));
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "plain",
            "$5$abc$def",
            "$6$c2FsdA==",
            "$6$c2FsdA==$c2hvcnQ=",
            "$7$abc$c2FsdA==$c2FsdA==",
            "$7$0$c2FsdA==$c2FsdA==",
            "$7$101$!!!$c2FsdA==",
            "$7$101$c2FsdA==",
            "",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
        let extra = format!("{}$x", PasswordHash::generate(b"a"));
        assert!(PasswordHash::parse(&extra).is_err());
    }

    #[test]
    fn file_skips_comments_and_drops_bad_entries() {
        let text = format!("# users\n\n{PBKDF2_LINE}\r\nnohash\nplain:text\n{SHA512_LINE}\n");
        let file = PasswordFile::parse(&text);
        assert_eq!(file.len(), 2);
        assert_eq!(file.warnings().len(), 2, "{:?}", file.warnings());
        assert!(file.warnings()[0].starts_with("line 4:"));
        assert!(!file.contains("nohash"));
        assert!(!file.verify("plain", b"text"));
        assert!(file.verify("alice", b"secret"));
        assert!(file.verify("carol", b"hunter2"));
    }

    #[test]
    fn debug_does_not_show_hashes() {
        let shown = format!("{:?}", PasswordHash::generate(b"pw"));
        assert!(!shown.contains('$'), "{shown}");
    }
}
