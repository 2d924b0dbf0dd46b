//! Criterion benchmarks of the codec: decoding and encoding a PUBLISH (also
//! the broker's per-subscriber form, without properties) with a
//! 16-byte and a 1 KiB payload on a three-level topic, in 3.1.1 and 5.0, and
//! topic matching.
//!
//! Run: `cargo bench -p culex-codec -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{criterion_main, Criterion, Throughput};
use culex_codec::packet::Publish;
use culex_codec::topic::{matches, TopicName};
use culex_codec::{decode, Packet, PacketId, Properties, Protocol, QoS};

const TOPIC: &str = "home/kitchen/temperature";

fn publish(payload: &[u8]) -> Packet<'_> {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::new(TOPIC).unwrap(),
        packet_id: PacketId::new(42),
        properties: Properties::default(),
        payload,
    })
}

fn codec(c: &mut Criterion) {
    let small = [0x5Au8; 16];
    let large = vec![0xA5u8; 1024];
    for (protocol, version) in [(Protocol::V3_1_1, "3.1.1"), (Protocol::V5, "5.0")] {
        for (payload, size) in [(&small[..], "16B"), (&large[..], "1KiB")] {
            let packet = publish(payload);
            let mut wire = Vec::new();
            packet.encode(protocol, &mut wire).unwrap();

            let mut group = c.benchmark_group(format!("publish/{version}/{size}"));
            group.throughput(Throughput::Elements(1));
            group.bench_function("decode", |b| {
                b.iter(|| {
                    let (p, n) = decode(black_box(&wire), protocol, u32::MAX)
                        .unwrap()
                        .unwrap();
                    black_box((p, n));
                })
            });
            let mut out = Vec::with_capacity(wire.len());
            group.bench_function("encode", |b| {
                b.iter(|| {
                    out.clear();
                    black_box(&packet).encode(protocol, &mut out).unwrap();
                    black_box(&out);
                })
            });
            // What a broker writes per subscriber: a PUBLISH without
            // properties, straight from its parts.
            group.bench_function("encode plain", |b| {
                b.iter(|| {
                    out.clear();
                    culex_codec::encode_plain_publish(
                        protocol,
                        false,
                        QoS::AtLeastOnce,
                        false,
                        black_box(TopicName::new(TOPIC).unwrap()),
                        PacketId::new(42),
                        black_box(payload),
                        &mut out,
                    )
                    .unwrap();
                    black_box(&out);
                })
            });
            group.finish();
        }
    }
}

fn matching(c: &mut Criterion) {
    let cases = [
        ("home/kitchen/temperature", TOPIC),
        ("home/+/temperature", TOPIC),
        ("home/#", TOPIC),
        ("home/+/humidity", TOPIC),
        ("#", "$SYS/broker/uptime"),
        (
            "sport/tennis/player1/#",
            "sport/tennis/player1/score/wimbledon",
        ),
    ];
    let mut group = c.benchmark_group("topic_match");
    group.throughput(Throughput::Elements(cases.len() as u64));
    group.bench_function("6 filters", |b| {
        b.iter(|| {
            for (filter, topic) in black_box(&cases) {
                black_box(matches(filter, topic));
            }
        })
    });
    group.finish();
}

// The macro defines an undocumented public function.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::codec, super::matching);
}
use group::benches;
criterion_main!(benches);
