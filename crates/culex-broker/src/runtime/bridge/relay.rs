//! The relay between a bridge's two ends (see the parent module's docs):
//! messages cross with their topics remapped, acknowledgements go back
//! with their packet ids unchanged, and what the remote has not
//! acknowledged is kept to be sent again after a reconnect.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use culex_codec::packet::{PubResponse, Publish};
use culex_codec::topic::TopicName;
use culex_codec::{decode_packet, Packet, PacketId, Properties, QoS, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::local::Local;
use super::remote::{Remote, RemoteError};
use crate::config::bridge::Bridge;
use crate::runtime::state::shutdown_requested;

/// How a link ended.
#[derive(Debug)]
pub(super) enum Ended {
    /// The broker stops.
    Shutdown,
    /// The link was lost (or refused): connect again after the wait.
    Lost,
    /// A lazy bridge was idle: connect again when messages wait.
    Idle,
}

/// Where an outgoing QoS 1/2 message stands with the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flight {
    /// PUBLISH sent (the frame, as sent), no PUBACK/PUBREC yet.
    Sent(Bytes),
    /// PUBREC received; the local PUBREL not yet relayed.
    Received,
    /// PUBREL relayed, no PUBCOMP yet.
    Released,
}

/// The relay's state, kept across reconnects of the link.
pub(super) struct Relay {
    /// The remote took the bridge bit last time (try it again).
    pub private: bool,
    /// Outgoing QoS 1/2 messages in flight with the remote, in the order
    /// they were sent.
    flights: Vec<(PacketId, Flight)>,
    /// Outgoing QoS 2 messages that could not cross (too large): their
    /// flow is completed towards the local session by the relay itself.
    refused: HashSet<PacketId>,
    /// Whether every topic crosses unchanged (no prefixes): frames are
    /// then forwarded as they are.
    plain: bool,
}

impl Relay {
    pub fn new(bridge: &Bridge) -> Relay {
        let plain = bridge
            .topics
            .iter()
            .all(|t| t.local_prefix == t.remote_prefix);
        Relay {
            private: true,
            flights: Vec::new(),
            refused: HashSet::new(),
            plain,
        }
    }

    /// Relays until the link ends. First sends again what the remote had
    /// not acknowledged before (PUBLISH with DUP, PUBREL), in order.
    pub async fn run(
        &mut self,
        bridge: &Bridge,
        local: &mut Local,
        remote: &mut Remote,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Ended, RemoteError> {
        let mut out = BytesMut::new();
        self.resend(bridge, &mut out);
        let keepalive = Duration::from_secs(u64::from(bridge.keepalive));
        let mut last_sent = Instant::now();
        let mut last_traffic = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let more = self.relay_local(bridge, local, &mut out, now)?;
            if !out.is_empty() {
                remote.stream.write_all(&out).await?;
                out.clear();
                last_sent = now;
                last_traffic = now;
            }
            if local.is_closed() {
                return Ok(Ended::Lost);
            }
            // The session wakes the link only when it goes from nothing
            // ready to something: what is left after a full batch is taken
            // at once, not after the next wake.
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            let ping_due = match ping_sent {
                Some(at) => at + keepalive,
                None => last_sent + keepalive,
            };
            let idle_due = last_traffic + bridge.idle_timeout;
            let local_due = local.conn.poll_timeout();
            tokio::select! {
                _ = shutdown_requested(shutdown) => {
                    Remote::goodbye(remote, bridge).await;
                    return Ok(Ended::Shutdown);
                }
                _ = local.waker.notify.notified() => {
                    if let Err(close) = local.handle_wake(Instant::now()) {
                        local.lost(close);
                    }
                }
                read = remote.stream.read_buf(&mut remote.input) => {
                    if read? == 0 {
                        return Ok(Ended::Lost);
                    }
                    last_traffic = Instant::now();
                    ping_sent = None;
                    self.relay_remote(bridge, local, remote, &mut out)?;
                }
                _ = tokio::time::sleep_until(ping_due.into()) => {
                    if ping_sent.is_some() {
                        return Err(RemoteError::Timeout);
                    }
                    out.extend_from_slice(&[0xC0, 0x00]);
                    ping_sent = Some(Instant::now());
                }
                _ = sleep_until_opt(local_due) => {
                    if let Err(close) = local.handle_timeout(Instant::now()) {
                        local.lost(close);
                    }
                }
                _ = tokio::time::sleep_until(idle_due.into()), if bridge.start_type == crate::config::bridge::StartType::Lazy => {
                    tracing::info!("Bridge {} idle: disconnecting.", bridge.name);
                    Remote::goodbye(remote, bridge).await;
                    return Ok(Ended::Idle);
                }
            }
        }
    }

    /// What the remote had not acknowledged, again: PUBLISH with DUP set
    /// [MQTT-4.4.0-1], PUBREL.
    fn resend(&mut self, bridge: &Bridge, out: &mut BytesMut) {
        for (id, flight) in &self.flights {
            match flight {
                Flight::Sent(frame) => {
                    let mut frame = BytesMut::from(&frame[..]);
                    if let Some(first) = frame.first_mut() {
                        *first |= 0x08;
                    }
                    out.extend_from_slice(&frame);
                }
                Flight::Released => encode(&Packet::PubRel(ack(*id)), bridge, out),
                Flight::Received => {}
            }
        }
    }

    /// Forwards what the local session has for the remote into `out`, and
    /// answers locally what cannot cross. `true` when it stopped at the
    /// batch limit with more to take.
    fn relay_local(
        &mut self,
        bridge: &Bridge,
        local: &mut Local,
        out: &mut BytesMut,
        now: Instant,
    ) -> Result<bool, RemoteError> {
        loop {
            while let Some(frame) = local.next_frame() {
                self.local_frame(bridge, local, frame, out, now);
            }
            if local.is_closed() || !local.poll_transmit(now) && local.output.is_empty() {
                return Ok(false);
            }
            if out.len() >= super::local::HIGH_WATER {
                return Ok(true);
            }
        }
    }

    fn local_frame(
        &mut self,
        bridge: &Bridge,
        local: &mut Local,
        frame: Bytes,
        out: &mut BytesMut,
        now: Instant,
    ) {
        let Ok(packet) = decode_packet(&frame, bridge.protocol) else {
            return;
        };
        match packet {
            Packet::Publish(p) => self.publish_out(bridge, local, &p, &frame, out, now),
            Packet::PubRel(r) => {
                if self.refused.remove(&r.packet_id) {
                    local.answer(&Packet::PubComp(ack(r.packet_id)), bridge, now);
                    return;
                }
                self.set(r.packet_id, Some(Flight::Released));
                out.extend_from_slice(&frame);
            }
            // Acknowledgements of what came in go back to the remote.
            Packet::PubAck(_) | Packet::PubRec(_) | Packet::PubComp(_) => {
                out.extend_from_slice(&frame);
            }
            Packet::Disconnect(_) => local.mark_closed(),
            _ => {}
        }
    }

    /// A message from the local session to the remote, its topic mapped.
    fn publish_out(
        &mut self,
        bridge: &Bridge,
        local: &mut Local,
        p: &Publish<'_>,
        frame: &Bytes,
        out: &mut BytesMut,
        now: Instant,
    ) {
        let retain = p.retain && bridge.outgoing_retain;
        let mapped = map_topic(bridge, p.topic.as_str(), true);
        let forwarded = match mapped {
            Some(_) if self.plain && retain == p.retain => Some(frame.clone()),
            Some(topic) => reencode(bridge, p, &topic, retain),
            None => None,
        };
        let fits = forwarded.as_ref().is_some_and(|f| {
            bridge
                .max_packet_size
                .is_none_or(|max| f.len() <= max as usize)
        });
        let (Some(forwarded), true) = (forwarded, fits) else {
            tracing::info!(
                "Bridge {}: '{}' does not cross (too large, or no topic maps it); dropped.",
                bridge.name,
                p.topic.as_str()
            );
            self.complete_locally(bridge, local, p, now);
            return;
        };
        if let Some(id) = p.packet_id {
            self.set(id, Some(Flight::Sent(forwarded.clone())));
        }
        out.extend_from_slice(&forwarded);
    }

    /// Acknowledges to the local session a message that will not cross.
    fn complete_locally(
        &mut self,
        bridge: &Bridge,
        local: &mut Local,
        p: &Publish<'_>,
        now: Instant,
    ) {
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => local.answer(&Packet::PubAck(ack(id)), bridge, now),
            (QoS::ExactlyOnce, Some(id)) => {
                self.refused.insert(id);
                local.answer(&Packet::PubRec(ack(id)), bridge, now);
            }
            _ => {}
        }
    }

    /// Handles what the remote sent: messages published locally,
    /// acknowledgements relayed to the local session.
    fn relay_remote(
        &mut self,
        bridge: &Bridge,
        local: &mut Local,
        remote: &mut Remote,
        out: &mut BytesMut,
    ) -> Result<(), RemoteError> {
        let now = Instant::now();
        while let Some(frame) = remote.take_frame()? {
            let packet = decode_packet(&frame, bridge.protocol)
                .map_err(|e| RemoteError::Protocol(e.to_string()))?;
            match packet {
                Packet::Publish(p) => {
                    let Some(topic) = map_topic(bridge, p.topic.as_str(), false) else {
                        // Not ours: still acknowledged, or the remote waits forever.
                        self.ack_remote(&p, bridge, out);
                        continue;
                    };
                    let frame = if self.plain {
                        Some(frame.clone())
                    } else {
                        reencode(bridge, &p, &topic, p.retain)
                    };
                    if let Some(frame) = frame {
                        local.input.extend_from_slice(&frame);
                    }
                }
                Packet::PubAck(r) | Packet::PubComp(r) => {
                    self.set(r.packet_id, None);
                    local.input.extend_from_slice(&frame);
                }
                Packet::PubRec(r) => {
                    self.set(r.packet_id, Some(Flight::Received));
                    local.input.extend_from_slice(&frame);
                }
                Packet::PubRel(_) => local.input.extend_from_slice(&frame),
                _ => {}
            }
        }
        if let Err(close) = local.handle_input(now) {
            local.lost(close);
        }
        Ok(())
    }

    /// Acknowledges to the remote a message no topic of ours maps.
    fn ack_remote(&self, p: &Publish<'_>, bridge: &Bridge, out: &mut BytesMut) {
        match (p.qos, p.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => encode(&Packet::PubAck(ack(id)), bridge, out),
            (QoS::ExactlyOnce, Some(id)) => encode(&Packet::PubRec(ack(id)), bridge, out),
            _ => {}
        }
    }

    /// Sets (or, with `None`, ends) the flight of `id`, keeping the order.
    fn set(&mut self, id: PacketId, flight: Option<Flight>) {
        let pos = self.flights.iter().position(|(i, _)| *i == id);
        match (pos, flight) {
            (Some(pos), Some(flight)) => {
                if let Some(entry) = self.flights.get_mut(pos) {
                    entry.1 = flight;
                }
            }
            (Some(pos), None) => {
                self.flights.remove(pos);
            }
            (None, Some(flight)) => self.flights.push((id, flight)),
            (None, None) => {}
        }
    }
}

/// The topic on the other side: `out` from local to remote, else back.
/// The first bridge topic whose filter matches decides the prefixes.
fn map_topic(bridge: &Bridge, topic: &str, out: bool) -> Option<String> {
    bridge.topics.iter().find_map(|t| {
        let (goes, filter, from, to) = if out {
            (
                t.goes_out(),
                t.local_filter(),
                &t.local_prefix,
                &t.remote_prefix,
            )
        } else {
            (
                t.comes_in(),
                t.remote_filter(),
                &t.remote_prefix,
                &t.local_prefix,
            )
        };
        if !goes || !culex_codec::topic::matches(&filter, topic) {
            return None;
        }
        let rest = topic.strip_prefix(from.as_str())?;
        Some(format!("{to}{rest}"))
    })
}

/// A PUBLISH again, with another topic and retain flag.
fn reencode(bridge: &Bridge, p: &Publish<'_>, topic: &str, retain: bool) -> Option<Bytes> {
    let topic = TopicName::new(topic).ok()?;
    let packet = Packet::Publish(Publish {
        topic,
        retain,
        ..*p
    });
    let mut out = BytesMut::new();
    encode(&packet, bridge, &mut out);
    (!out.is_empty()).then(|| out.freeze())
}

fn encode(packet: &Packet<'_>, bridge: &Bridge, out: &mut BytesMut) {
    let _ = packet.encode(bridge.protocol, out);
}

fn ack(id: PacketId) -> PubResponse<'static> {
    PubResponse {
        packet_id: id,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
