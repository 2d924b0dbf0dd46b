//! Lists inside packets that are either read off the wire or lent by the caller.

use crate::properties;
use crate::reader::Reader;
use crate::topic::TopicFilter;
use crate::SubscriptionOptions;

/// A list inside a packet: the topic filters of a SUBSCRIBE, the reason codes
/// of a SUBACK, user properties, subscription identifiers.
///
/// A decoded packet holds the list as validated wire bytes and yields items by
/// reading them again (cheap, and needs no allocator); a packet built for
/// encoding lends a slice. Both iterate the same way.
#[derive(Debug, Clone, Copy)]
pub enum Seq<'a, T> {
    /// Wire bytes already validated by the decoder.
    Wire(Wire<'a>),
    /// Items lent by the caller.
    Items(&'a [T]),
}

/// Validated wire bytes of a [`Seq`]: the encoded items, back to back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) count: usize,
}

impl<T> Default for Seq<'_, T> {
    fn default() -> Self {
        Seq::Items(&[])
    }
}

/// An item type that a [`Seq`] can read back from its validated wire bytes.
pub trait WireItem<'a>: Sized + Copy {
    /// Reads one item from the front of `bytes`, advancing it. Only called on
    /// bytes the decoder validated, so `None` means the end of the list.
    fn read(bytes: &mut &'a [u8]) -> Option<Self>;
}

impl<'a, T: WireItem<'a>> Seq<'a, T> {
    /// The number of items.
    pub fn len(&self) -> usize {
        match self {
            Seq::Wire(w) => w.count,
            Seq::Items(items) => items.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items in order.
    pub fn iter(&self) -> SeqIter<'a, T> {
        match *self {
            Seq::Wire(w) => SeqIter::Wire(w.bytes),
            Seq::Items(items) => SeqIter::Items(items.iter()),
        }
    }
}

impl<'a, T: WireItem<'a> + PartialEq> PartialEq for Seq<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: WireItem<'a> + Eq> Eq for Seq<'a, T> {}

impl<'a, T: WireItem<'a>> IntoIterator for Seq<'a, T> {
    type Item = T;
    type IntoIter = SeqIter<'a, T>;
    fn into_iter(self) -> SeqIter<'a, T> {
        self.iter()
    }
}

/// Iterator over a [`Seq`].
#[derive(Debug, Clone)]
pub enum SeqIter<'a, T> {
    #[doc(hidden)]
    Wire(&'a [u8]),
    #[doc(hidden)]
    Items(core::slice::Iter<'a, T>),
}

impl<'a, T: WireItem<'a>> Iterator for SeqIter<'a, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        match self {
            SeqIter::Wire(bytes) => T::read(bytes),
            SeqIter::Items(items) => items.next().copied(),
        }
    }
}

// Wire readers for each list item type. Each reads through a `Reader`, so
// even bytes that were somehow not validated end the list instead of panicking.

/// Runs `read` on a reader over `bytes` and advances `bytes` past what it read.
fn read_with<'a, T>(
    bytes: &mut &'a [u8],
    read: impl FnOnce(&mut Reader<'a>) -> Option<T>,
) -> Option<T> {
    let mut r = Reader::new(bytes);
    let item = read(&mut r);
    *bytes = if item.is_some() { r.rest() } else { &[] };
    item
}

fn read_str<'a>(r: &mut Reader<'a>) -> Option<&'a str> {
    core::str::from_utf8(r.binary().ok()?).ok()
}

/// Subscription identifiers: the wire bytes are a span of a property block,
/// so other properties in between are skipped.
impl<'a> WireItem<'a> for u32 {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        read_with(bytes, |r| {
            properties::seek(r, properties::SUBSCRIPTION_IDENTIFIER)?;
            r.varint().ok()
        })
    }
}

/// Reason codes of SUBACK and UNSUBACK, one byte each.
impl<'a> WireItem<'a> for crate::ReasonCode {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        read_with(bytes, |r| crate::ReasonCode::from_u8(r.u8().ok()?))
    }
}

/// User properties: the wire bytes are a span of a property block, so other
/// properties in between are skipped.
impl<'a> WireItem<'a> for (&'a str, &'a str) {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        read_with(bytes, |r| {
            properties::seek(r, properties::USER_PROPERTY)?;
            Some((read_str(r)?, read_str(r)?))
        })
    }
}

/// The filters of an UNSUBSCRIBE.
impl<'a> WireItem<'a> for crate::topic::TopicFilter<'a> {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        read_with(bytes, |r| Some(TopicFilter::from_validated(read_str(r)?)))
    }
}

/// The entries of a SUBSCRIBE: filter, then options byte.
impl<'a> WireItem<'a> for (crate::topic::TopicFilter<'a>, crate::SubscriptionOptions) {
    fn read(bytes: &mut &'a [u8]) -> Option<Self> {
        read_with(bytes, |r| {
            let filter = TopicFilter::from_validated(read_str(r)?);
            let options = SubscriptionOptions::from_byte(r.u8().ok()?)?;
            Some((filter, options))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReasonCode;

    /// Readers stop, rather than panic, on bytes the decoder would have refused.
    #[test]
    fn readers_end_the_list_on_bad_bytes() {
        let wire = |bytes| Wire { bytes, count: 1 };
        // Truncated subscription identifier.
        let ids: Seq<'_, u32> = Seq::Wire(wire(&[0x0B, 0xFF]));
        assert_eq!(ids.iter().count(), 0);
        // Unknown property before a user property.
        let users: Seq<'_, (&str, &str)> = Seq::Wire(wire(&[0x7F, 0x26, 0, 0, 0, 0]));
        assert_eq!(users.iter().count(), 0);
        // Invalid UTF-8 in a filter.
        let filters: Seq<'_, TopicFilter<'_>> = Seq::Wire(wire(&[0x00, 0x01, 0xFF]));
        assert_eq!(filters.iter().count(), 0);
        // Undefined reason code.
        let reasons: Seq<'_, ReasonCode> = Seq::Wire(wire(&[0x03]));
        assert_eq!(reasons.iter().count(), 0);
        // Options byte with a reserved bit.
        let subs: Seq<'_, (TopicFilter<'_>, SubscriptionOptions)> =
            Seq::Wire(wire(&[0x00, 0x01, b'a', 0xC0]));
        assert_eq!(subs.iter().count(), 0);
    }

    #[test]
    fn wire_items_skip_other_properties() {
        // Message expiry, user property, subscription id, user property.
        let block: &[u8] = &[
            0x02, 0, 0, 0, 9, 0x26, 0, 1, b'a', 0, 1, b'b', 0x0B, 0x05, 0x26, 0, 1, b'c', 0, 0,
        ];
        let users: Seq<'_, (&str, &str)> = Seq::Wire(Wire {
            bytes: block,
            count: 2,
        });
        assert!(users.iter().eq([("a", "b"), ("c", "")]));
        let ids: Seq<'_, u32> = Seq::Wire(Wire {
            bytes: block,
            count: 1,
        });
        assert!(ids.iter().eq([5]));
    }
}
