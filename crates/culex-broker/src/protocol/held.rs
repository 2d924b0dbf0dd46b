//! Acknowledgements held for the store, as data (see `acks` for the logic).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use culex_codec::packet::PubResponse;
use culex_codec::{Packet, PacketId, QoS, ReasonCode};

use crate::core::message::Message;
use crate::core::store::Durability;

/// Builds a PUBACK, PUBREC, PUBREL or PUBCOMP.
pub(super) type AckKind = fn(PubResponse<'static>) -> Packet<'static>;

/// An acknowledgement that may wait for the store.
#[derive(Debug)]
pub(super) enum Held {
    /// PUBACK or PUBREC.
    Pub(AckKind, PacketId, ReasonCode),
    /// Boxed: it is the rare one, and the largest.
    Sub(Box<HeldSubAck>),
    /// UNSUBACK with its reason codes (sent in 5.0 only).
    Unsub(PacketId, Vec<ReasonCode>),
}

/// A SUBACK and the retained messages to send after it.
#[derive(Debug)]
pub(super) struct HeldSubAck {
    pub packet_id: PacketId,
    pub codes: Vec<ReasonCode>,
    pub retained: Vec<(Arc<Message>, QoS)>,
    /// Filters whose retained messages the cluster is asked for after it.
    pub remote_retained: Vec<(String, QoS)>,
    pub sub_id: Option<u32>,
}

/// The held acknowledgements of a connection, oldest first.
#[derive(Debug, Default)]
pub(super) struct Acks {
    pub held: VecDeque<(Durability, Held)>,
    /// Shared with the store's callbacks.
    pub state: Arc<DurableState>,
}

/// What the store reported, written from its thread.
#[derive(Debug, Default)]
pub(super) struct DurableState {
    /// The highest ticket reported durable.
    pub durable: AtomicU64,
    pub failed: AtomicBool,
}

impl Acks {
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
