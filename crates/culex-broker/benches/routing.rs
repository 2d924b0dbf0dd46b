//! Routing micro-benchmarks: matching a topic against the subscription tree
//! and handing a delivery to a session. `cargo bench -p culex-broker`.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use culex_broker::core::message::Message;
use culex_broker::core::session::{Delivery, Session, SessionLimits};
use culex_broker::core::subscriptions::SubscriptionTree;
use culex_codec::{QoS, SubscriptionOptions};

fn tree(clients: u32) -> SubscriptionTree<u32> {
    let mut t = SubscriptionTree::new();
    let o = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        ..Default::default()
    };
    for c in 0..clients {
        t.subscribe(&format!("site/{}/dev{c}/+", c % 16), c, o, None);
        t.subscribe(&format!("dev{c}/cmd/#"), c, o, None);
    }
    t.subscribe("site/#", clients, o, None);
    t
}

fn bench(c: &mut Criterion) {
    let t = tree(10_000);
    let mut out = Vec::new();
    c.bench_function("match 3-level topic, 20k subscriptions", |b| {
        b.iter(|| {
            out.clear();
            t.matches(black_box("site/3/dev1235/temp"), &mut out);
            black_box(out.len())
        })
    });
    let now = Instant::now();
    let msg = Arc::new(Message::new(
        "a/b/c",
        vec![0u8; 16],
        QoS::AtLeastOnce,
        false,
        now,
    ));
    let mut session = Session::new(SessionLimits {
        max_inflight: 0,
        max_queued: None,
        max_queued_bytes: None,
    });
    session.attach(u16::MAX, now);
    let mut ready = Vec::new();
    c.bench_function("deliver QoS 1 + take + ack", |b| {
        b.iter(|| {
            let d = Delivery::new(msg.clone(), QoS::AtLeastOnce, false);
            session.deliver(d, now);
            ready.clear();
            session.take_ready(&mut ready, 16, usize::MAX, now);
            if let Some(culex_broker::core::session::Outgoing::Publish {
                packet_id: Some(id),
                ..
            }) = ready.first()
            {
                let _ = session.puback(*id, now);
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
