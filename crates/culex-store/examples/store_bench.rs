//! Measures the store on the broker's workload (run it in release mode; not
//! a test):
//!
//! ```text
//! cargo run --release -p culex-store --example store_bench -- restore 1000000
//! cargo run --release -p culex-store --example store_bench -- qos1 16 5 sync
//! cargo run --release -p culex-store --example store_bench -- qos1 16 5 periodic:100
//! cargo run --release -p culex-store --example store_bench -- retained 200000
//! ```
//!
//! `restore N` fills a store with N retained messages (64-byte payloads),
//! closes it and times `DurableStore::open` (integrity check, read, decode).
//! `qos1 PUBLISHERS SECONDS MODE` runs PUBLISHERS threads that each store a
//! QoS 1 message for an offline subscriber and wait until it is durable
//! before the next one, as a broker does before PUBACK (in periodic mode
//! they do not wait, as the broker would not), while each delivery removes
//! it again. `retained N` upserts N retained messages over 10,000 topics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use culex_store::{Durability, DurableStore, Qos, QueuedMessage, StoredMessage};

fn message(topic: String, payload: Bytes) -> StoredMessage {
    StoredMessage {
        topic,
        payload,
        qos: Qos::AtLeastOnce,
        retain: true,
        props: None,
        received_unix_ms: culex_store::unix_ms_now(),
        origin: None,
    }
}

fn topic(i: u64) -> String {
    format!("site/{:03}/device-{i:06}/temperature", i % 1000)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_owned());
    match arg(0, "restore").as_str() {
        "restore" => {
            let n: u64 = arg(1, "1000000").parse().expect("N");
            let payload = Bytes::from(vec![b'x'; 64]);
            let started = Instant::now();
            let (store, _) = DurableStore::open(&path, Durability::Periodic(1000)).expect("open");
            for i in 0..n {
                store.retained_set(message(topic(i), payload.clone()));
            }
            store.close().expect("close");
            let size = std::fs::metadata(&path).expect("size").len();
            println!(
                "filled {n} retained in {:.2} s, file {} MiB",
                started.elapsed().as_secs_f64(),
                size >> 20
            );
            let started = Instant::now();
            let (_store, r) = DurableStore::open(&path, Durability::Sync).expect("reopen");
            let took = started.elapsed();
            assert_eq!(r.retained.len() as u64, n);
            println!(
                "restored {n} retained messages in {:.3} s",
                took.as_secs_f64()
            );
        }
        "qos1" => {
            let publishers: u64 = arg(1, "16").parse().expect("PUBLISHERS");
            let secs: u64 = arg(2, "5").parse().expect("SECONDS");
            let mode = match arg(3, "sync").as_str() {
                "sync" => Durability::Sync,
                m => Durability::Periodic(
                    m.strip_prefix("periodic:")
                        .and_then(|n| n.parse().ok())
                        .expect("sync or periodic:MS"),
                ),
            };
            let (store, _) = DurableStore::open(&path, mode).expect("open");
            let store = Arc::new(store);
            let stop = Arc::new(AtomicBool::new(false));
            let count = Arc::new(AtomicU64::new(0));
            let payload = Bytes::from(vec![b'p'; 100]);
            let threads: Vec<_> = (0..publishers)
                .map(|p| {
                    let (store, stop, count, payload) =
                        (store.clone(), stop.clone(), count.clone(), payload.clone());
                    std::thread::spawn(move || {
                        let client = format!("sub-{p}");
                        while !stop.load(Ordering::Relaxed) {
                            let t = store.queued_add(
                                &client,
                                QueuedMessage {
                                    qos: Qos::AtLeastOnce,
                                    message: message(format!("bench/{p}"), payload.clone()),
                                },
                            );
                            if mode == Durability::Sync {
                                store.wait_durable(t).expect("durable");
                            }
                            store.queued_remove_front(&client);
                            count.fetch_add(1, Ordering::Relaxed);
                            if mode != Durability::Sync && count.load(Ordering::Relaxed) % 1024 == 0
                            {
                                // Keep the pending list bounded without waiting on every message.
                                store.wait_durable(t).expect("durable");
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_secs(secs));
            stop.store(true, Ordering::Relaxed);
            for t in threads {
                t.join().expect("publisher");
            }
            let n = count.load(Ordering::Relaxed);
            println!(
                "qos1 {mode:?}: {publishers} publishers, {n} messages in {secs} s = {:.0} msg/s durable, {} commits ({:.1} messages per commit)",
                n as f64 / secs as f64,
                store.commit_count(),
                n as f64 / store.commit_count().max(1) as f64
            );
        }
        "retained" => {
            let n: u64 = arg(1, "200000").parse().expect("N");
            let payload = Bytes::from(vec![b'r'; 100]);
            let (store, _) = DurableStore::open(&path, Durability::Sync).expect("open");
            let started = Instant::now();
            let mut last = store.last_ticket();
            for i in 0..n {
                last = store.retained_set(message(topic(i % 10_000), payload.clone()));
            }
            store.wait_durable(last).expect("durable");
            let took = started.elapsed().as_secs_f64();
            println!(
                "{n} retained upserts in {took:.2} s = {:.0}/s, {} commits",
                n as f64 / took,
                store.commit_count()
            );
        }
        other => eprintln!("unknown bench {other}"),
    }
}
