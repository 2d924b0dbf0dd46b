//! mosquitto's `ciphers` and `ciphers_tls1.3`: OpenSSL cipher strings
//! mapped onto the suites rustls offers with the `ring` provider.
//!
//! A TLS 1.2 list is read the way OpenSSL reads it, over the six suites
//! rustls has: names and aliases (`HIGH`, `ECDHE+AESGCM`, `aRSA`, …) add
//! suites, `!X` removes them for good, `-X` removes them, `+X` moves them to
//! the end, `@STRENGTH` and `@SECLEVEL=n` are accepted and change nothing.
//! A list is an allow-list, so an OpenSSL suite rustls lacks (CBC, RSA key
//! exchange, DHE) is left out and reported, not refused; a list that leaves
//! nothing, or a word OpenSSL would not know either, is an error.

use rustls::crypto::ring::cipher_suite as suite;
use rustls::SupportedCipherSuite;

/// The suites a list selected, in its order, and the OpenSSL names it
/// asked for that rustls does not have.
#[derive(Debug, Clone)]
pub struct CipherSelection {
    /// The suites to offer.
    pub suites: Vec<SupportedCipherSuite>,
    /// Names in the list that culex cannot offer (worth a warning).
    pub not_offered: Vec<String>,
}

/// A cipher list that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// A word that is neither a cipher name nor an alias.
    #[error("unknown cipher or alias '{0}'")]
    Unknown(String),
    /// Nothing the list allows is something rustls offers.
    #[error("none of '{list}' is offered by culex (rustls); it offers {offered}")]
    NoneOffered {
        /// The list as written.
        list: String,
        /// What could be chosen instead.
        offered: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Rsa,
    Ecdsa,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Cipher {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20,
}

struct Tls12Suite {
    openssl_name: &'static str,
    suite: SupportedCipherSuite,
    auth: Auth,
    cipher: Cipher,
}

const TLS12: [Tls12Suite; 6] = [
    Tls12Suite {
        openssl_name: "ECDHE-ECDSA-AES256-GCM-SHA384",
        suite: suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        auth: Auth::Ecdsa,
        cipher: Cipher::Aes256Gcm,
    },
    Tls12Suite {
        openssl_name: "ECDHE-RSA-AES256-GCM-SHA384",
        suite: suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        auth: Auth::Rsa,
        cipher: Cipher::Aes256Gcm,
    },
    Tls12Suite {
        openssl_name: "ECDHE-ECDSA-CHACHA20-POLY1305",
        suite: suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        auth: Auth::Ecdsa,
        cipher: Cipher::Chacha20,
    },
    Tls12Suite {
        openssl_name: "ECDHE-RSA-CHACHA20-POLY1305",
        suite: suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        auth: Auth::Rsa,
        cipher: Cipher::Chacha20,
    },
    Tls12Suite {
        openssl_name: "ECDHE-ECDSA-AES128-GCM-SHA256",
        suite: suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        auth: Auth::Ecdsa,
        cipher: Cipher::Aes128Gcm,
    },
    Tls12Suite {
        openssl_name: "ECDHE-RSA-AES128-GCM-SHA256",
        suite: suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        auth: Auth::Rsa,
        cipher: Cipher::Aes128Gcm,
    },
];

/// OpenSSL's TLS 1.3 names, and the rustls suite where there is one.
const TLS13: [(&str, Option<SupportedCipherSuite>); 5] = [
    (
        "TLS_AES_256_GCM_SHA384",
        Some(suite::TLS13_AES_256_GCM_SHA384),
    ),
    (
        "TLS_CHACHA20_POLY1305_SHA256",
        Some(suite::TLS13_CHACHA20_POLY1305_SHA256),
    ),
    (
        "TLS_AES_128_GCM_SHA256",
        Some(suite::TLS13_AES_128_GCM_SHA256),
    ),
    ("TLS_AES_128_CCM_SHA256", None),
    ("TLS_AES_128_CCM_8_SHA256", None),
];

/// Whether an alias (or name) selects `s`; `None` for an unknown word.
fn selects(word: &str, s: &Tls12Suite) -> Option<bool> {
    Some(match word {
        _ if word == s.openssl_name => true,
        "ALL" | "DEFAULT" | "HIGH" | "TLSv1.2" | "ECDHE" | "EECDH" | "kECDHE" | "kEECDH"
        | "ECDH" | "AEAD" | "FIPS" => true,
        "aRSA" => s.auth == Auth::Rsa,
        "aECDSA" | "ECDSA" => s.auth == Auth::Ecdsa,
        "AES" | "AESGCM" => s.cipher != Cipher::Chacha20,
        "AES128" => s.cipher == Cipher::Aes128Gcm,
        "AES256" => s.cipher == Cipher::Aes256Gcm,
        "CHACHA20" => s.cipher == Cipher::Chacha20,
        "SHA256" => s.cipher != Cipher::Aes256Gcm,
        "SHA384" => s.cipher == Cipher::Aes256Gcm,
        // Aliases of things rustls does not do at all.
        "MEDIUM"
        | "LOW"
        | "EXPORT"
        | "EXP"
        | "aNULL"
        | "eNULL"
        | "NULL"
        | "COMPLEMENTOFDEFAULT"
        | "COMPLEMENTOFALL"
        | "SSLv2"
        | "SSLv3"
        | "TLSv1"
        | "TLSv1.0"
        | "RC4"
        | "DES"
        | "3DES"
        | "MD5"
        | "SHA1"
        | "SHA"
        | "kRSA"
        | "RSA"
        | "DH"
        | "EDH"
        | "DHE"
        | "kDHE"
        | "kEDH"
        | "ADH"
        | "AECDH"
        | "kECDH"
        | "PSK"
        | "kPSK"
        | "aPSK"
        | "ECDHEPSK"
        | "DHEPSK"
        | "RSAPSK"
        | "SRP"
        | "kSRP"
        | "CAMELLIA"
        | "CAMELLIA128"
        | "CAMELLIA256"
        | "ARIA"
        | "ARIA128"
        | "ARIA256"
        | "SEED"
        | "IDEA"
        | "AESCCM"
        | "AESCCM8"
        | "DSS"
        | "aDSS"
        | "GOST" => false,
        _ if looks_like_cipher_name(word) => false,
        _ => return None,
    })
}

/// `AES128-SHA`, `DHE-RSA-AES256-GCM-SHA384`: an OpenSSL suite name.
fn looks_like_cipher_name(word: &str) -> bool {
    word.contains('-')
        && word
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// Reads a `ciphers` list (TLS 1.2).
pub fn parse_tls12(list: &str) -> Result<CipherSelection, CipherError> {
    let mut chosen: Vec<usize> = Vec::new();
    let mut killed = [false; TLS12.len()];
    let mut not_offered = Vec::new();
    for item in list.split([':', ',', ' ']).filter(|i| !i.is_empty()) {
        if item.starts_with('@') {
            continue;
        }
        let (op, body) = match item.as_bytes().first() {
            Some(b'!') | Some(b'-') | Some(b'+') => (item.get(..1), item.get(1..).unwrap_or("")),
            _ => (None, item),
        };
        let mut matching = Vec::new();
        for (index, s) in TLS12.iter().enumerate() {
            let mut all = true;
            for word in body.split('+') {
                match selects(word, s) {
                    Some(hit) => all &= hit,
                    None => return Err(CipherError::Unknown(word.to_string())),
                }
            }
            if all {
                matching.push(index);
            }
        }
        if matching.is_empty() && op.is_none() && looks_like_cipher_name(body) {
            not_offered.push(body.to_string());
        }
        match op {
            Some("!") => {
                chosen.retain(|i| !matching.contains(i));
                for &i in &matching {
                    if let Some(k) = killed.get_mut(i) {
                        *k = true;
                    }
                }
            }
            Some("-") => chosen.retain(|i| !matching.contains(i)),
            Some(_) => {
                let (moved, kept): (Vec<usize>, Vec<usize>) =
                    chosen.iter().partition(|i| matching.contains(i));
                chosen = kept;
                chosen.extend(moved);
            }
            None => {
                for i in matching {
                    if !chosen.contains(&i) && !killed.get(i).copied().unwrap_or(true) {
                        chosen.push(i);
                    }
                }
            }
        }
    }
    let suites: Vec<SupportedCipherSuite> = chosen
        .iter()
        .filter_map(|&i| TLS12.get(i).map(|s| s.suite))
        .collect();
    if suites.is_empty() {
        return Err(CipherError::NoneOffered {
            list: list.to_string(),
            offered: TLS12
                .iter()
                .map(|s| s.openssl_name)
                .collect::<Vec<_>>()
                .join(":"),
        });
    }
    Ok(CipherSelection {
        suites,
        not_offered,
    })
}

/// Reads a `ciphers_tls1.3` list: suite names separated by colons.
pub fn parse_tls13(list: &str) -> Result<CipherSelection, CipherError> {
    let mut suites = Vec::new();
    let mut not_offered = Vec::new();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        match TLS13.iter().find(|(known, _)| *known == name) {
            Some((_, Some(s))) => {
                if !suites.contains(s) {
                    suites.push(*s);
                }
            }
            Some((_, None)) => not_offered.push(name.to_string()),
            None => return Err(CipherError::Unknown(name.to_string())),
        }
    }
    if suites.is_empty() {
        return Err(CipherError::NoneOffered {
            list: list.to_string(),
            offered: TLS13
                .iter()
                .filter(|(_, s)| s.is_some())
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(":"),
        });
    }
    Ok(CipherSelection {
        suites,
        not_offered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(selection: &CipherSelection) -> String {
        selection
            .suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect::<Vec<_>>()
            .join(" ")
            .replace("TLS_ECDHE_", "")
            .replace("_WITH_", "-")
    }

    /// `expect`: the suites chosen (short names), then `| not offered: …`,
    /// or `error: …`.
    fn check(parse: fn(&str) -> Result<CipherSelection, CipherError>, list: &str, expect: &str) {
        let shown = match parse(list) {
            Ok(s) if s.not_offered.is_empty() => names(&s),
            Ok(s) => format!("{} | not offered: {}", names(&s), s.not_offered.join(" ")),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(shown, expect, "{list}");
    }

    #[test]
    fn tls12_lists() {
        let t = parse_tls12;
        check(t, "ECDHE-RSA-AES128-GCM-SHA256", "RSA-AES_128_GCM_SHA256");
        check(
            t,
            "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305",
            "RSA-AES_256_GCM_SHA384 ECDSA-CHACHA20_POLY1305_SHA256",
        );
        check(
            t,
            "ECDHE+AESGCM:!aRSA",
            "ECDSA-AES_256_GCM_SHA384 ECDSA-AES_128_GCM_SHA256",
        );
        check(t, "HIGH:!aNULL:!MD5", "ECDSA-AES_256_GCM_SHA384 RSA-AES_256_GCM_SHA384 ECDSA-CHACHA20_POLY1305_SHA256 RSA-CHACHA20_POLY1305_SHA256 ECDSA-AES_128_GCM_SHA256 RSA-AES_128_GCM_SHA256");
        check(t, "DEFAULT:!aNULL:!eNULL:!LOW:!EXPORT:!SSLv2:@STRENGTH", "ECDSA-AES_256_GCM_SHA384 RSA-AES_256_GCM_SHA384 ECDSA-CHACHA20_POLY1305_SHA256 RSA-CHACHA20_POLY1305_SHA256 ECDSA-AES_128_GCM_SHA256 RSA-AES_128_GCM_SHA256");
        check(
            t,
            "CHACHA20:+aECDSA",
            "RSA-CHACHA20_POLY1305_SHA256 ECDSA-CHACHA20_POLY1305_SHA256",
        );
        check(
            t,
            "!CHACHA20:ALL:-AES128:AES128+aRSA",
            "ECDSA-AES_256_GCM_SHA384 RSA-AES_256_GCM_SHA384 RSA-AES_128_GCM_SHA256",
        );
        // Suites rustls lacks are left out, and named.
        check(
            t,
            "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384",
            "RSA-AES_128_GCM_SHA256 | not offered: AES128-SHA DHE-RSA-AES256-GCM-SHA384",
        );
        check(t, "AES128-SHA:DES-CBC3-SHA", "error: none of 'AES128-SHA:DES-CBC3-SHA' is offered by culex (rustls); it offers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
        check(t, "ALL:!ECDHE", "error: none of 'ALL:!ECDHE' is offered by culex (rustls); it offers ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
        check(t, "HIGH:strong", "error: unknown cipher or alias 'strong'");
        check(t, "ECDHE+fast", "error: unknown cipher or alias 'fast'");
    }

    #[test]
    fn tls13_lists() {
        let t = parse_tls13;
        check(t, "TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256");
        check(
            t,
            "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384",
            "TLS13_CHACHA20_POLY1305_SHA256 TLS13_AES_256_GCM_SHA384",
        );
        check(
            t,
            "TLS_AES_128_CCM_SHA256:TLS_AES_256_GCM_SHA384",
            "TLS13_AES_256_GCM_SHA384 | not offered: TLS_AES_128_CCM_SHA256",
        );
        check(t, "TLS_AES_128_CCM_8_SHA256", "error: none of 'TLS_AES_128_CCM_8_SHA256' is offered by culex (rustls); it offers TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
        check(
            t,
            "TLS_AES_128_GCM_SHA256:AES128",
            "error: unknown cipher or alias 'AES128'",
        );
    }
}
