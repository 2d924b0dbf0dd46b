//! The three kinds of connection: publisher, subscriber and idle.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use culex_codec::topic::TopicName;
use culex_codec::{Packet, PacketId, Protocol, QoS};
use tokio::time::Instant;

use crate::conn::{
    put_disconnect, put_publish, put_response, ConnError, Response, Role, Step, HIGH_WATER,
};
use crate::stats::{read_stamp, stamp, wall_ns, Shared, STAMP_LEN};

/// Most PUBLISH packets produced per call when flat out.
const BATCH: u64 = 128;
/// How often a waiting subscriber looks at the stop flags.
const POLL: Duration = Duration::from_millis(50);

/// Run-wide flags set by the coordinator.
#[derive(Debug, Default)]
pub struct Control {
    /// Ctrl-C: publishers stop now.
    pub interrupted: AtomicBool,
    /// Everything expected has arrived, or nothing more will: subscribers stop.
    pub subscribers_done: AtomicBool,
}

/// The times of the measured phase.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    /// Publishing starts (for a paced publisher, its own first send).
    pub start: Instant,
    /// Publishing stops; idle connections close.
    pub stop_at: Instant,
    /// Nothing runs past this.
    pub drain_until: Instant,
}

/// A publisher: PUBLISH at a rate or flat out, a window of QoS 1/2 in flight.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
    control: Arc<Control>,
    times: Times,
    topic: String,
    qos: QoS,
    payload: Vec<u8>,
    run_id: u32,
    rate: Option<f64>,
    window: u32,
    in_flight: InFlight,
    /// Messages produced so far.
    count: u64,
    disconnect_sent: bool,
}

/// The packet ids of QoS 1/2 publications awaiting their acknowledgement.
#[derive(Debug)]
struct InFlight {
    /// One bit per packet id.
    ids: Vec<u64>,
    count: u32,
    next_id: PacketId,
    /// Acknowledged since the last batch was counted.
    acked_batch: u64,
}

impl InFlight {
    fn new(qos: QoS) -> InFlight {
        InFlight {
            ids: if qos == QoS::AtMostOnce {
                Vec::new()
            } else {
                vec![0; 1024]
            },
            count: 0,
            next_id: PacketId::new(1).unwrap_or_else(|| unreachable!("1 is non-zero")),
            acked_batch: 0,
        }
    }

    fn bit(id: PacketId) -> (usize, u64) {
        let n = usize::from(id.get());
        (n / 64, 1u64 << (n % 64))
    }

    /// Takes the next free packet id and marks it in flight; the caller keeps
    /// `count` below 65535, so a free id exists.
    fn take(&mut self) -> PacketId {
        loop {
            let id = self.next_id;
            self.next_id = id.next();
            let (word, bit) = Self::bit(id);
            if let Some(w) = self.ids.get_mut(word) {
                if *w & bit == 0 {
                    *w |= bit;
                    self.count += 1;
                    return id;
                }
            }
        }
    }

    /// Clears an id in flight; false when it was not.
    fn release(&mut self, id: PacketId) -> bool {
        let (word, bit) = Self::bit(id);
        match self.ids.get_mut(word) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                self.count -= 1;
                self.acked_batch += 1;
                true
            }
            _ => false,
        }
    }
}

impl Publisher {
    /// A publisher on `topic`; `window` bounds QoS 1/2 publications in flight.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        control: Arc<Control>,
        times: Times,
        topic: String,
        qos: QoS,
        size: usize,
        run_id: u32,
        rate: Option<f64>,
        window: u16,
    ) -> Publisher {
        Publisher {
            shared,
            control,
            times,
            topic,
            qos,
            payload: vec![b'x'; size],
            run_id,
            rate,
            window: u32::from(window.clamp(1, u16::MAX - 1)),
            in_flight: InFlight::new(qos),
            count: 0,
            disconnect_sent: false,
        }
    }
}

impl Role for Publisher {
    fn hard_deadline(&self) -> Instant {
        self.times.drain_until
    }

    fn fill(
        &mut self,
        out: &mut BytesMut,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Step, ConnError> {
        let stopping = now >= self.times.stop_at || self.control.interrupted.load(Relaxed);
        if stopping {
            if self.in_flight.count == 0 || now >= self.times.drain_until {
                return finish(&mut self.disconnect_sent, out, protocol);
            }
            return Ok(Step::Wait(self.times.drain_until));
        }
        let mut budget = BATCH;
        if let Some(rate) = self.rate {
            if now < self.times.start {
                return Ok(Step::Wait(self.times.start));
            }
            let elapsed = now
                .saturating_duration_since(self.times.start)
                .as_secs_f64();
            // Message k (from 0) is due at start + k / rate.
            let due = (elapsed * rate).floor() as u64 + 1;
            budget = budget.min(due.saturating_sub(self.count));
        }
        let window_bound = self.qos != QoS::AtMostOnce;
        if window_bound {
            budget = budget.min(u64::from(self.window.saturating_sub(self.in_flight.count)));
        }
        let topic = TopicName::new(&self.topic)
            .map_err(|_| ConnError::Encode(culex_codec::EncodeError::NotAllowed("topic name")))?;
        if budget > 0 && self.payload.len() >= STAMP_LEN {
            // One stamp per batch: the batch leaves in one write.
            stamp(&mut self.payload, wall_ns(), self.run_id);
        }
        let mut produced = 0;
        while produced < budget && out.len() < HIGH_WATER {
            let packet_id = if window_bound {
                Some(self.in_flight.take())
            } else {
                None
            };
            put_publish(out, protocol, topic, self.qos, packet_id, &self.payload)?;
            produced += 1;
        }
        self.count += produced;
        if produced > 0 {
            self.shared.sent.fetch_add(produced, Relaxed);
        }
        let blocked_by_window = window_bound && self.in_flight.count >= self.window;
        let wake = match self.rate {
            // Acks (or the socket draining) wake a blocked publisher, not the clock.
            _ if blocked_by_window => self.times.stop_at,
            Some(rate) => {
                let next_due = self.times.start + Duration::from_secs_f64(self.count as f64 / rate);
                next_due.min(self.times.stop_at)
            }
            None => self.times.stop_at,
        };
        Ok(Step::Wait(wake))
    }

    fn on_packet(
        &mut self,
        packet: &Packet<'_>,
        out: &mut BytesMut,
        protocol: Protocol,
    ) -> Result<(), ConnError> {
        match packet {
            Packet::PubAck(ack) if self.qos == QoS::AtLeastOnce => {
                if (ack.reason as u8) >= 0x80 {
                    self.shared.error(format!("PUBACK reason {:?}", ack.reason));
                }
                if !self.in_flight.release(ack.packet_id) {
                    self.shared.error("PUBACK for a packet id not in flight");
                }
            }
            Packet::PubRec(rec) if self.qos == QoS::ExactlyOnce => {
                if (rec.reason as u8) >= 0x80 {
                    // [MQTT-4.3.3] a failed PUBREC ends the exchange.
                    self.shared.error(format!("PUBREC reason {:?}", rec.reason));
                    self.in_flight.release(rec.packet_id);
                } else {
                    put_response(out, protocol, rec.packet_id, Response::PubRel)?;
                }
            }
            Packet::PubComp(comp) if self.qos == QoS::ExactlyOnce => {
                if !self.in_flight.release(comp.packet_id) {
                    self.shared.error("PUBCOMP for a packet id not in flight");
                }
            }
            Packet::PingResp => {}
            other => self.shared.error(format!(
                "unexpected {:?} to a publisher",
                other.packet_type()
            )),
        }
        Ok(())
    }

    fn end_batch(&mut self) {
        if self.in_flight.acked_batch > 0 {
            self.shared
                .acked
                .fetch_add(self.in_flight.acked_batch, Relaxed);
            self.in_flight.acked_batch = 0;
        }
    }
}

/// A subscriber: counts what arrives, times stamped payloads, acknowledges.
#[derive(Debug)]
pub struct Subscriber {
    shared: Arc<Shared>,
    control: Arc<Control>,
    index: usize,
    end: Instant,
    /// When set, only messages stamped by this run count as received.
    own_run: Option<u32>,
    received_batch: u64,
    stray_batch: u64,
    latencies: Vec<u64>,
    batch_now: Option<u64>,
    disconnect_sent: bool,
}

impl Subscriber {
    /// Subscriber `index`, which stops at `end` at the latest. With
    /// `own_run`, messages not stamped by that run are counted as strays.
    pub fn new(
        shared: Arc<Shared>,
        control: Arc<Control>,
        index: usize,
        end: Instant,
        own_run: Option<u32>,
    ) -> Subscriber {
        Subscriber {
            shared,
            control,
            index,
            end,
            own_run,
            received_batch: 0,
            stray_batch: 0,
            latencies: Vec::with_capacity(1024),
            batch_now: None,
            disconnect_sent: false,
        }
    }
}

impl Role for Subscriber {
    fn hard_deadline(&self) -> Instant {
        self.end + Duration::from_secs(1)
    }

    fn fill(
        &mut self,
        out: &mut BytesMut,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Step, ConnError> {
        if now >= self.end || self.control.subscribers_done.load(Relaxed) {
            return finish(&mut self.disconnect_sent, out, protocol);
        }
        Ok(Step::Wait((now + POLL).min(self.end)))
    }

    fn begin_batch(&mut self) {
        self.batch_now = None;
    }

    fn on_packet(
        &mut self,
        packet: &Packet<'_>,
        out: &mut BytesMut,
        protocol: Protocol,
    ) -> Result<(), ConnError> {
        match packet {
            Packet::Publish(publish) => {
                match (read_stamp(publish.payload), self.own_run) {
                    (Some((sent_ns, run)), own) if own.unwrap_or(run) == run => {
                        self.received_batch += 1;
                        let now_ns = *self.batch_now.get_or_insert_with(wall_ns);
                        self.latencies.push(now_ns.saturating_sub(sent_ns));
                    }
                    (None, None) => self.received_batch += 1,
                    _ => self.stray_batch += 1,
                }
                match (publish.qos, publish.packet_id) {
                    (QoS::AtMostOnce, _) => {}
                    (QoS::AtLeastOnce, Some(id)) => {
                        put_response(out, protocol, id, Response::PubAck)?
                    }
                    (QoS::ExactlyOnce, Some(id)) => {
                        put_response(out, protocol, id, Response::PubRec)?
                    }
                    (_, None) => self.shared.error("QoS 1/2 PUBLISH without a packet id"),
                }
            }
            Packet::PubRel(rel) => put_response(out, protocol, rel.packet_id, Response::PubComp)?,
            Packet::PingResp => {}
            other => self.shared.error(format!(
                "unexpected {:?} to a subscriber",
                other.packet_type()
            )),
        }
        Ok(())
    }

    fn end_batch(&mut self) {
        if self.received_batch > 0 {
            self.shared.received.fetch_add(self.received_batch, Relaxed);
            self.received_batch = 0;
        }
        if self.stray_batch > 0 {
            self.shared.stray.fetch_add(self.stray_batch, Relaxed);
            self.stray_batch = 0;
        }
        self.shared.record_latencies(self.index, &self.latencies);
        self.latencies.clear();
    }
}

/// An idle connection held open until `end`.
#[derive(Debug)]
pub struct Idle {
    shared: Arc<Shared>,
    control: Arc<Control>,
    end: Instant,
    disconnect_sent: bool,
}

impl Idle {
    /// Holds the connection until `end`.
    pub fn new(shared: Arc<Shared>, control: Arc<Control>, end: Instant) -> Idle {
        Idle {
            shared,
            control,
            end,
            disconnect_sent: false,
        }
    }
}

impl Role for Idle {
    fn hard_deadline(&self) -> Instant {
        self.end + Duration::from_secs(1)
    }

    fn fill(
        &mut self,
        out: &mut BytesMut,
        protocol: Protocol,
        now: Instant,
    ) -> Result<Step, ConnError> {
        if now >= self.end || self.control.interrupted.load(Relaxed) {
            return finish(&mut self.disconnect_sent, out, protocol);
        }
        Ok(Step::Wait((now + Duration::from_secs(1)).min(self.end)))
    }

    fn on_packet(
        &mut self,
        packet: &Packet<'_>,
        _out: &mut BytesMut,
        _protocol: Protocol,
    ) -> Result<(), ConnError> {
        if *packet != Packet::PingResp {
            self.shared.error(format!(
                "unexpected {:?} to an idle connection",
                packet.packet_type()
            ));
        }
        Ok(())
    }
}

/// Ends a role's connection: a DISCONNECT the first time it is called (the
/// connection may call `fill` again before it closes), then `Finish`.
fn finish(
    disconnect_sent: &mut bool,
    out: &mut BytesMut,
    protocol: Protocol,
) -> Result<Step, ConnError> {
    if !*disconnect_sent {
        put_disconnect(out, protocol)?;
        *disconnect_sent = true;
    }
    Ok(Step::Finish)
}
