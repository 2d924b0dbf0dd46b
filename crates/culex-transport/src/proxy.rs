//! The PROXY protocol, versions 1 (text) and 2 (binary), as HAProxy and
//! cloud load balancers send it: one header at the very start of a
//! connection that names the client the proxy is relaying.
//!
//! [`ProxyLayer::read`] takes the header off the front of the caller's
//! buffer once it is complete; everything after it belongs to the next
//! layer. A listener expects exactly one version (`enable_proxy_protocol 1`
//! or `2`, mosquitto 2.1's option); a connection without a valid header is
//! refused, since a client that reaches the port directly could otherwise
//! claim any address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use bytes::{Buf, BytesMut};

/// The version a listener expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// `PROXY TCP4 1.2.3.4 5.6.7.8 1000 1883\r\n`.
    V1,
    /// The binary header that starts with `\r\n\r\n\0\r\nQUIT\n`.
    V2,
}

/// What a PROXY header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address as the proxy saw it. `None` for a v2 LOCAL
    /// command (a health check from the proxy itself), v1 `UNKNOWN`, or an
    /// address family other than IPv4 and IPv6: the socket's own peer
    /// address stands.
    pub source: Option<SocketAddr>,
    /// The address the client connected to, when given.
    pub destination: Option<SocketAddr>,
}

/// What is wrong with the start of a connection on a PROXY listener.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The connection does not start with the expected signature.
    #[error("the connection does not start with a PROXY protocol {0} header")]
    Missing(&'static str),
    /// The header is longer than this layer accepts.
    #[error("the PROXY header is longer than {0} bytes")]
    TooLong(usize),
    /// The header breaks the protocol's grammar.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// The header did not arrive before the handshake deadline.
    #[error("no complete PROXY header before the deadline")]
    Timeout,
}

/// A v1 header is at most 107 bytes, CRLF included (the spec's bound).
pub const V1_MAX_LEN: usize = 107;
/// The largest v2 header accepted: the 16 fixed bytes and up to 4 KiB of
/// addresses and TLVs (HAProxy's TLVs are far smaller; the length field
/// could claim 64 KiB).
pub const V2_MAX_LEN: usize = 16 + 4096;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Reads the PROXY header at the start of a connection.
///
/// Call order: [`ProxyLayer::read`] after each socket read until it returns
/// `Ok(Some(header))`; then drop the layer and hand what is left in the
/// buffer to the next layer. The layer keeps no bytes itself: an incomplete
/// header stays in the caller's buffer.
#[derive(Debug, Clone)]
pub struct ProxyLayer {
    version: ProxyVersion,
    deadline: Instant,
}

impl ProxyLayer {
    /// A layer that expects `version` and gives up at `deadline`.
    pub fn new(version: ProxyVersion, deadline: Instant) -> ProxyLayer {
        ProxyLayer { version, deadline }
    }

    /// When the header must be complete.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Takes the header off the front of `wire` when it is complete
    /// (`Ok(None)`: not yet, read more). Bytes that cannot start a valid
    /// header are refused at once, without waiting for more.
    pub fn read(
        &mut self,
        now: Instant,
        wire: &mut BytesMut,
    ) -> Result<Option<ProxyHeader>, ProxyError> {
        let parsed = match self.version {
            ProxyVersion::V1 => parse_v1(wire)?,
            ProxyVersion::V2 => parse_v2(wire)?,
        };
        match parsed {
            Some((header, len)) => {
                wire.advance(len);
                Ok(Some(header))
            }
            None if now >= self.deadline => Err(ProxyError::Timeout),
            None => Ok(None),
        }
    }
}

/// A complete v1 header and its length, `None` when more bytes are needed.
fn parse_v1(wire: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let start = wire.len().min(V1_PREFIX.len());
    if wire.get(..start) != V1_PREFIX.get(..start) {
        return Err(ProxyError::Missing("v1"));
    }
    let window = wire.get(..wire.len().min(V1_MAX_LEN)).unwrap_or(wire);
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        if wire.len() >= V1_MAX_LEN {
            return Err(ProxyError::TooLong(V1_MAX_LEN));
        }
        return Ok(None);
    };
    let line = window.get(..end).unwrap_or_default();
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("not ASCII"))?;
    let mut words = line.split(' ');
    words.next(); // "PROXY", checked above
    let family = words.next().ok_or(ProxyError::Malformed("no protocol"))?;
    let header = match family {
        // The receiver must ignore whatever follows UNKNOWN.
        "UNKNOWN" => ProxyHeader {
            source: None,
            destination: None,
        },
        "TCP4" | "TCP6" => {
            let mut next = || words.next().ok_or(ProxyError::Malformed("too few fields"));
            let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
            if words.next().is_some() {
                return Err(ProxyError::Malformed("too many fields"));
            }
            let ip = |text: &str| -> Result<IpAddr, ProxyError> {
                if family == "TCP4" {
                    text.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    text.parse::<Ipv6Addr>().map(IpAddr::V6)
                }
                .map_err(|_| ProxyError::Malformed("bad address"))
            };
            ProxyHeader {
                source: Some(SocketAddr::new(ip(src)?, v1_port(sport)?)),
                destination: Some(SocketAddr::new(ip(dst)?, v1_port(dport)?)),
            }
        }
        _ => {
            return Err(ProxyError::Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    Ok(Some((header, end + 2)))
}

/// A port in a v1 header: decimal digits only (`str::parse` would take `+1`).
fn v1_port(text: &str) -> Result<u16, ProxyError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::Malformed("bad port"));
    }
    text.parse().map_err(|_| ProxyError::Malformed("bad port"))
}

/// A complete v2 header and its length, `None` when more bytes are needed.
fn parse_v2(wire: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let start = wire.len().min(V2_SIGNATURE.len());
    if wire.get(..start) != V2_SIGNATURE.get(..start) {
        return Err(ProxyError::Missing("v2"));
    }
    let Some(&[version_command, family, len_hi, len_lo]) = wire.get(12..16) else {
        return Ok(None);
    };
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed("version is not 2"));
    }
    let total = 16 + usize::from(u16::from_be_bytes([len_hi, len_lo]));
    if total > V2_MAX_LEN {
        return Err(ProxyError::TooLong(V2_MAX_LEN));
    }
    let Some(body) = wire.get(16..total) else {
        return Ok(None);
    };
    let local = ProxyHeader {
        source: None,
        destination: None,
    };
    let header = match version_command & 0x0F {
        // LOCAL: the proxy's own connection (a health check); addresses,
        // if any, are to be ignored.
        0 => local,
        1 => match family >> 4 {
            0 | 3 => local, // unspecified, or AF_UNIX: no IP address to report
            1 => {
                let a = body
                    .get(..12)
                    .ok_or(ProxyError::Malformed("IPv4 addresses cut short"))?;
                let ip = |at: usize| -> IpAddr {
                    let mut octets = [0u8; 4];
                    octets.copy_from_slice(a.get(at..at + 4).unwrap_or(&[0; 4]));
                    IpAddr::V4(Ipv4Addr::from(octets))
                };
                addresses(ip(0), ip(4), a.get(8..12))
            }
            2 => {
                let a = body
                    .get(..36)
                    .ok_or(ProxyError::Malformed("IPv6 addresses cut short"))?;
                let ip = |at: usize| -> IpAddr {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(a.get(at..at + 16).unwrap_or(&[0; 16]));
                    IpAddr::V6(Ipv6Addr::from(octets))
                };
                addresses(ip(0), ip(16), a.get(32..36))
            }
            _ => return Err(ProxyError::Malformed("unknown address family")),
        },
        _ => return Err(ProxyError::Malformed("command is neither LOCAL nor PROXY")),
    };
    if family & 0x0F > 2 {
        return Err(ProxyError::Malformed("unknown transport protocol"));
    }
    Ok(Some((header, total)))
}

fn addresses(source: IpAddr, destination: IpAddr, ports: Option<&[u8]>) -> ProxyHeader {
    let (sport, dport) = match ports {
        Some(&[a, b, c, d]) => (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])),
        _ => (0, 0),
    };
    ProxyHeader {
        source: Some(SocketAddr::new(source, sport)),
        destination: Some(SocketAddr::new(destination, dport)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Feeds `input` to a fresh layer in one piece and describes the outcome:
    /// `source -> destination, rest=N` or the error.
    fn check(version: ProxyVersion, input: &[u8], expect: &str) {
        let now = Instant::now();
        let mut layer = ProxyLayer::new(version, now + Duration::from_secs(5));
        let mut wire = BytesMut::from(input);
        let shown = match layer.read(now, &mut wire) {
            Ok(Some(h)) => format!(
                "{} -> {}, rest={}",
                h.source.map_or("-".to_string(), |a| a.to_string()),
                h.destination.map_or("-".to_string(), |a| a.to_string()),
                wire.len()
            ),
            Ok(None) => format!("incomplete, kept={}", wire.len()),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(shown, expect, "{input:?}");
    }

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn v1_golden_headers() {
        use ProxyVersion::V1;
        check(
            V1,
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n\x10\x0c",
            "192.0.2.1:56324 -> 198.51.100.2:1883, rest=2",
        );
        check(
            V1,
            b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 8883\r\n",
            "[2001:db8::1]:65535 -> [2001:db8::2]:8883, rest=0",
        );
        check(V1, b"PROXY UNKNOWN\r\n", "- -> -, rest=0");
        check(
            V1,
            b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nX",
            "- -> -, rest=1",
        );
        // The longest header allowed, exactly 107 bytes.
        let longest = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert!(longest.len() <= V1_MAX_LEN);
        check(V1, longest, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535 -> [ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535, rest=0");
    }

    #[test]
    fn v1_truncated_and_malformed() {
        use ProxyVersion::V1;
        check(V1, b"PRO", "incomplete, kept=3");
        check(
            V1,
            b"PROXY TCP4 192.0.2.1 198.51.100.2 5",
            "incomplete, kept=35",
        );
        check(
            V1,
            b"\x10\x0c\x00\x04MQTT",
            "error: the connection does not start with a PROXY protocol v1 header",
        );
        check(
            V1,
            b"GET / HTTP/1.1\r\n",
            "error: the connection does not start with a PROXY protocol v1 header",
        );
        check(
            V1,
            &V2_SIGNATURE,
            "error: the connection does not start with a PROXY protocol v1 header",
        );
        check(V1, b"P", "incomplete, kept=1");
        let mut long = b"PROXY TCP4 ".to_vec();
        long.resize(200, b'1');
        check(
            V1,
            &long,
            "error: the PROXY header is longer than 107 bytes",
        );
        check(
            V1,
            b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
            "error: malformed PROXY header: protocol is not TCP4, TCP6 or UNKNOWN",
        );
        check(
            V1,
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n",
            "error: malformed PROXY header: too few fields",
        );
        check(
            V1,
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            "error: malformed PROXY header: too many fields",
        );
        check(
            V1,
            b"PROXY TCP4 ::1 1.2.3.4 1 2\r\n",
            "error: malformed PROXY header: bad address",
        );
        check(
            V1,
            b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
            "error: malformed PROXY header: bad address",
        );
        check(
            V1,
            b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n",
            "error: malformed PROXY header: bad port",
        );
        check(
            V1,
            b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n",
            "error: malformed PROXY header: bad port",
        );
        check(
            V1,
            b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n",
            "error: malformed PROXY header: too many fields",
        );
        check(
            V1,
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 \xff\r\n",
            "error: malformed PROXY header: not ASCII",
        );
    }

    #[test]
    fn v2_golden_headers() {
        use ProxyVersion::V2;
        let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x07, 0x5B];
        check(
            V2,
            &[v2(1, 0x11, &ipv4), b"\x10".to_vec()].concat(),
            "192.0.2.1:56324 -> 198.51.100.2:1883, rest=1",
        );
        let mut ipv6 = Vec::new();
        ipv6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        ipv6.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        ipv6.extend_from_slice(&[0xFF, 0xFF, 0x22, 0xB3]);
        check(
            V2,
            &v2(1, 0x21, &ipv6),
            "[2001:db8::1]:65535 -> [2001:db8::2]:8883, rest=0",
        );
        // TLVs after the addresses are skipped (here PP2_TYPE_ALPN "mqtt").
        let with_tlv = [&ipv4[..], &[0x01, 0x00, 0x04], b"mqtt"].concat();
        check(
            V2,
            &v2(1, 0x11, &with_tlv),
            "192.0.2.1:56324 -> 198.51.100.2:1883, rest=0",
        );
        // LOCAL keeps the socket's own address, whatever follows.
        check(V2, &v2(0, 0x00, &[]), "- -> -, rest=0");
        check(V2, &v2(0, 0x11, &ipv4), "- -> -, rest=0");
        // AF_UNIX and AF_UNSPEC carry no IP address.
        check(V2, &v2(1, 0x31, &[0; 216]), "- -> -, rest=0");
        check(V2, &v2(1, 0x00, &[]), "- -> -, rest=0");
    }

    #[test]
    fn v2_truncated_and_malformed() {
        use ProxyVersion::V2;
        let ipv4 = [192, 0, 2, 1, 198, 51, 100, 2, 0xDC, 0x04, 0x07, 0x5B];
        let full = v2(1, 0x11, &ipv4);
        for cut in [1, 12, 15, 16, 27] {
            check(V2, &full[..cut], &format!("incomplete, kept={cut}"));
        }
        check(
            V2,
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
            "error: the connection does not start with a PROXY protocol v2 header",
        );
        check(
            V2,
            b"\x10\x0c\x00\x04MQTT",
            "error: the connection does not start with a PROXY protocol v2 header",
        );
        let mut bad_version = full.clone();
        bad_version[12] = 0x11;
        check(
            V2,
            &bad_version,
            "error: malformed PROXY header: version is not 2",
        );
        check(
            V2,
            &v2(2, 0x11, &ipv4),
            "error: malformed PROXY header: command is neither LOCAL nor PROXY",
        );
        check(
            V2,
            &v2(1, 0x41, &ipv4),
            "error: malformed PROXY header: unknown address family",
        );
        check(
            V2,
            &v2(1, 0x13, &ipv4),
            "error: malformed PROXY header: unknown transport protocol",
        );
        check(
            V2,
            &v2(1, 0x11, &ipv4[..8]),
            "error: malformed PROXY header: IPv4 addresses cut short",
        );
        check(
            V2,
            &v2(1, 0x21, &[0; 20]),
            "error: malformed PROXY header: IPv6 addresses cut short",
        );
        // A declared length past the bound is refused before the body arrives.
        let mut huge = full[..14].to_vec();
        huge.extend_from_slice(&[0xFF, 0xFF]);
        check(
            V2,
            &huge,
            "error: the PROXY header is longer than 4112 bytes",
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            v2_prefix in proptest::bool::ANY,
        ) {
            let now = Instant::now();
            for version in [ProxyVersion::V1, ProxyVersion::V2] {
                let mut layer = ProxyLayer::new(version, now + Duration::from_secs(5));
                let mut wire = BytesMut::new();
                if v2_prefix {
                    wire.extend_from_slice(&V2_SIGNATURE);
                }
                wire.extend_from_slice(&bytes);
                let before = wire.len();
                if let Ok(Some(_)) = layer.read(now, &mut wire) {
                    proptest::prop_assert!(wire.len() < before);
                }
            }
        }
    }

    #[test]
    fn byte_by_byte_and_deadline() {
        let start = Instant::now();
        let deadline = start + Duration::from_secs(5);
        let header = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 1883\r\n";
        let mut layer = ProxyLayer::new(ProxyVersion::V1, deadline);
        let mut wire = BytesMut::new();
        for (i, byte) in header.iter().enumerate() {
            wire.extend_from_slice(&[*byte]);
            let got = layer.read(start, &mut wire).unwrap();
            assert_eq!(got.is_some(), i == header.len() - 1);
        }
        assert!(wire.is_empty());

        let mut slow = ProxyLayer::new(ProxyVersion::V2, deadline);
        let mut wire = BytesMut::from(&V2_SIGNATURE[..4]);
        assert_eq!(slow.read(start, &mut wire), Ok(None));
        assert_eq!(slow.read(deadline, &mut wire), Err(ProxyError::Timeout));
    }
}
