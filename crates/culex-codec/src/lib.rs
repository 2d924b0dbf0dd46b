//! The MQTT codec shared by every part of culex: broker, client, tools.
//!
//! It reads and writes every control packet of MQTT 3.1 (`MQIsdp`, level 3),
//! 3.1.1 (level 4) and 5.0 (level 5). It is `#![no_std]` and needs no
//! allocator: decoded packets borrow from the caller's buffer (a PUBLISH
//! payload is never copied), and encoding writes into an [`Output`] the caller
//! owns. It knows nothing of sockets, clocks or sessions.
//!
//! Start with [`decode`] (or [`check_frame`] followed by [`decode_packet`] when
//! the caller wants to split the frame off its buffer first) and
//! [`Packet::encode`]. [`check_frame`] enforces the maximum packet size as
//! soon as the fixed header is readable, before the body is buffered. Topic
//! names and filters are validated by [`topic::TopicName`] and
//! [`topic::TopicFilter`], and matched by [`topic::TopicFilter::matches`]
//! (or [`topic::matches`] on plain strings), which never allocates.
//!
//! One vocabulary serves every version: 5.0's [`ReasonCode`]s and
//! [`Properties`]. 3.x return codes map onto reason codes (see
//! [`ReasonCode::to_v3_connack`]); a 3.x packet decodes with empty properties,
//! and encoding refuses what a version cannot express ([`EncodeError`]).
//! Lists inside decoded packets (filters, reason codes, user properties,
//! subscription identifiers) stay as validated wire bytes in a [`Seq`] and are
//! read again on iteration.
//! [`Properties`] keeps values, not the order they came in;
//! [`properties::iter_raw`] reads a property section in wire order.
//!
//! ```
//! use culex_codec::{decode, Packet, Protocol};
//!
//! // A QoS 0 PUBLISH of "hi" to "a/b", then the first byte of the next packet.
//! let buf = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i', 0xC0];
//! let (packet, used) = decode(&buf, Protocol::V3_1_1, 1024)?.expect("a whole packet");
//! assert_eq!(used, 9);
//! let Packet::Publish(publish) = packet else { unreachable!() };
//! assert_eq!((publish.topic.as_str(), publish.payload), ("a/b", &b"hi"[..]));
//!
//! let mut out = Vec::new();
//! packet.encode(Protocol::V3_1_1, &mut out)?;
//! assert_eq!(out, buf[..used]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every malformed input yields a [`DecodeError`] whose message names the
//! rule of the specification it breaks; nothing a peer sends can panic.
//!
//! Features: `std` (default) implements `std::error::Error`; `alloc` lets a
//! `Vec<u8>` be an [`Output`]; `bytes` does the same for `bytes::BytesMut`.
#![no_std]
#![cfg_attr(
    not(test),
    warn(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod decode;
mod encode;
mod error;
mod output;
pub mod packet;
pub mod properties;
mod reader;
mod reason;
mod seq;
pub mod topic;
mod types;
pub mod varint;

pub use decode::{check_frame, decode, decode_packet, decode_success_response, frame_size};
pub use encode::{encode_plain_publish, success_response};
pub use error::{DecodeError, EncodeError};
pub use output::{Output, SliceOutput};
pub use packet::Packet;
pub use properties::Properties;
pub use reason::ReasonCode;
pub use seq::{Seq, SeqIter, Wire, WireItem};
pub use types::{PacketId, PacketType, Protocol, QoS, RetainHandling, SubscriptionOptions};
