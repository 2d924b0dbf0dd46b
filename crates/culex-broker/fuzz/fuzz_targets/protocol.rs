//! Several clients send the broker arbitrary sequences of frames — raw
//! bytes, and well-formed packets to get past CONNECT and reach deeper
//! states — while time passes, on the protocol layer's simulation (a real
//! `Core` and one protocol `Connection` per client, no socket). No input may
//! panic or abort, and what the broker buffers stays bounded.
#![no_main]

use std::time::Duration;

use culex_broker::testing::raw::{Read, Wire};
use culex_broker::testing::sim::{Sim, SimWire};
use culex_codec::packet::{Connect, PubResponse, Publish, Subscribe, Unsubscribe};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{Packet, PacketId, Properties, Protocol, QoS, Seq, SubscriptionOptions};
use libfuzzer_sys::fuzz_target;

const CLIENTS: usize = 4;
/// What one client may have unread before the target calls it a leak.
const MAX_UNREAD: usize = 64 << 20;

fuzz_target!(|data: &[u8]| {
    let mut config = culex_broker::testing::local_config();
    config.limits.max_queued_messages = Some(16);
    config.limits.max_inflight_messages = Some(4);
    config.limits.max_topic_levels = 8;
    let sim = Sim::start_with(config);
    let mut clients: Vec<Option<SimWire>> = (0..CLIENTS).map(|_| None).collect();
    let mut unread = [0usize; CLIENTS];
    let mut input = data.iter().copied();
    while let Some(op) = input.next() {
        let c = usize::from(op) % CLIENTS;
        let arg = input.next().unwrap_or(0);
        match (op >> 2) % 8 {
            0 => {
                let mut wire = SimWire::open(sim.port());
                let protocol = [Protocol::V3_1, Protocol::V3_1_1, Protocol::V5][usize::from(arg % 3)];
                send(&mut wire, &connect(protocol, arg), protocol);
                clients[c] = Some(wire);
                unread[c] = 0;
            }
            1 => {
                let n = usize::from(arg);
                let bytes: Vec<u8> = input.by_ref().take(n).collect();
                if let Some(wire) = clients[c].as_mut() {
                    wire.write(&bytes);
                }
            }
            2 => {
                if let Some(wire) = clients[c].as_mut() {
                    let protocol = if arg & 0x80 != 0 { Protocol::V5 } else { Protocol::V3_1_1 };
                    packet(wire, arg, protocol);
                }
            }
            3 => sim.advance(Duration::from_millis(u64::from(arg) * 100)),
            4 => clients[c] = None,
            _ => {
                if let Some(wire) = clients[c].as_mut() {
                    match wire.read(Duration::ZERO) {
                        Read::Bytes(b) => unread[c] += b.len(),
                        Read::Closed => clients[c] = None,
                        Read::Nothing => {}
                    }
                    if arg & 1 == 0 {
                        unread[c] = 0;
                    }
                    assert!(unread[c] < MAX_UNREAD, "the broker buffers without bound");
                }
            }
        }
    }
});

fn send(wire: &mut SimWire, p: &Packet<'_>, protocol: Protocol) {
    let mut out = Vec::new();
    if p.encode(protocol, &mut out).is_ok() {
        wire.write(&out);
    }
}

fn connect(protocol: Protocol, arg: u8) -> Packet<'static> {
    const IDS: [&str; 4] = ["a", "b", "c", ""];
    Packet::Connect(Connect {
        bridge: arg & 0x40 != 0,
        protocol,
        clean_start: arg & 0x10 != 0,
        keep_alive: u16::from(arg & 0x03),
        client_id: IDS[usize::from(arg >> 2) % 4],
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    })
}

/// A well-formed packet chosen by `arg`: what reaches the session, the
/// tree and the retained store.
fn packet(wire: &mut SimWire, arg: u8, protocol: Protocol) {
    const TOPICS: [&str; 4] = ["t", "t/a", "$SYS/x", "t/a/b/c/d/e/f/g/h/i"];
    const FILTERS: [&str; 5] = ["#", "t/+", "$share/g/t/#", "+/+/#", "t"];
    let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(arg % 3)];
    let id = PacketId::new(u16::from(arg % 8) + 1).unwrap();
    let response = PubResponse {
        packet_id: id,
        reason: culex_codec::ReasonCode::Success,
        properties: Properties::default(),
    };
    let topic = TopicName::new(TOPICS[usize::from(arg >> 3) % 4]).unwrap();
    let filters = [(
        TopicFilter::new(FILTERS[usize::from(arg >> 3) % 5]).unwrap(),
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    )];
    let names = [filters[0].0];
    let p = match (arg >> 5) % 8 {
        0 | 1 => Packet::Publish(Publish {
            dup: false,
            qos,
            retain: arg & 0x10 != 0,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then_some(id),
            properties: Properties::default(),
            payload: b"payload",
        }),
        2 => Packet::Subscribe(Subscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: Seq::Items(&filters),
        }),
        3 => Packet::Unsubscribe(Unsubscribe {
            packet_id: id,
            properties: Properties::default(),
            filters: Seq::Items(&names),
        }),
        4 => Packet::PubAck(response),
        5 => Packet::PubRec(response),
        6 => Packet::PubRel(response),
        _ => Packet::PubComp(response),
    };
    send(wire, &p, protocol);
}
