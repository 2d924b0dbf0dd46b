//! A quick load check for broker development (the real tool is `culex bench`):
//! `loadgen PORT [PAIRS] [SECONDS] [QOS]` runs PAIRS publisher/subscriber pairs
//! on `bench/N`, publishers flat out with 64-byte payloads (QoS 1 publishers
//! keep up to 64 messages unacknowledged), and prints deliveries per second.
//! `loadgen PORT PAIRS SECONDS QOS inproc` starts culex in-process first.
//! `loadgen PORT PAIRS SECONDS latency` sends 1000 msg/s per pair (QoS 0) with
//! a timestamp in the payload and prints p50/p99 latency.
//! `loadgen PORT N 0 idle BROKER_PID` opens N idle MQTT connections and
//! prints the connect rate and the broker's RSS growth per connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use culex_codec::packet::{Connect, PubResponse, Publish, Subscribe};
use culex_codec::topic::{TopicFilter, TopicName};
use culex_codec::{
    check_frame, decode_packet, Packet, PacketId, Properties, Protocol, QoS, Seq,
    SubscriptionOptions,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut port: u16 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1883);
    let pairs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let secs: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let qos = match args.get(4).map(String::as_str) {
        Some("1") => QoS::AtLeastOnce,
        _ => QoS::AtMostOnce,
    };
    let inproc = args.get(5).is_some_and(|a| a == "inproc");
    if args.get(4).is_some_and(|a| a == "idle") {
        let pid = args.get(5).cloned().unwrap_or_default();
        idle(port, pairs, &pid);
        return;
    }
    if args.get(4).is_some_and(|a| a == "latency") {
        latency(port, pairs, secs);
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let _broker = if inproc {
            let b = culex_broker::testing::start_local().await;
            port = b.port();
            Some(b)
        } else {
            None
        };
        let received = Arc::new(AtomicU64::new(0));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for i in 0..pairs {
            let topic = format!("bench/{i}");
            let mut sub = connect(port, &format!("sub{i}")).await;
            let filters = [(
                TopicFilter::new(&topic).unwrap(),
                SubscriptionOptions {
                    qos,
                    ..Default::default()
                },
            )];
            send(
                &mut sub,
                &Packet::Subscribe(Subscribe {
                    packet_id: PacketId::new(1).unwrap(),
                    properties: Properties::default(),
                    filters: Seq::Items(&filters),
                }),
            )
            .await;
            let received = received.clone();
            tasks.push(tokio::spawn(subscriber(sub, received)));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 0..pairs {
            let topic = format!("bench/{i}");
            let publ = connect(port, &format!("pub{i}")).await;
            tokio::spawn(publisher(publ, topic, qos, sent.clone(), stop.clone()));
        }
        let start = Instant::now();
        let mut last = 0;
        for _ in 0..secs {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = received.load(Ordering::Relaxed);
            println!("{:>10} msg/s delivered", now - last);
            last = now;
        }
        stop.store(true, Ordering::Relaxed);
        let total = received.load(Ordering::Relaxed);
        let s = sent.load(Ordering::Relaxed);
        println!(
            "total: sent {s}, delivered {total} ({:.0}/s, {:.4} of sent)",
            total as f64 / start.elapsed().as_secs_f64(),
            total as f64 / s.max(1) as f64
        );
        std::process::exit(0);
    });
}

async fn connect(port: u16, id: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.set_nodelay(true).unwrap();
    send(
        &mut s,
        &Packet::Connect(Connect {
            protocol: Protocol::V3_1_1,
            clean_start: true,
            keep_alive: 60,
            client_id: id,
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }),
    )
    .await;
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.unwrap();
    s
}

async fn send(s: &mut TcpStream, p: &Packet<'_>) {
    let mut out = Vec::new();
    p.encode(Protocol::V3_1_1, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
}

async fn subscriber(mut s: TcpStream, received: Arc<AtomicU64>) {
    let mut buf = Vec::with_capacity(1 << 16);
    let mut tmp = vec![0u8; 1 << 16];
    let mut acks = Vec::new();
    loop {
        let n = match s.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&tmp[..n]);
        let mut off = 0;
        let mut count = 0;
        while let Ok(Some(len)) = check_frame(&buf[off..], u32::MAX) {
            if let Ok(Packet::Publish(p)) = decode_packet(&buf[off..off + len], Protocol::V3_1_1) {
                count += 1;
                if let Some(id) = p.packet_id {
                    let ack = Packet::PubAck(PubResponse {
                        packet_id: id,
                        reason: culex_codec::ReasonCode::Success,
                        properties: Properties::default(),
                    });
                    ack.encode(Protocol::V3_1_1, &mut acks).unwrap();
                }
            }
            off += len;
        }
        buf.drain(..off);
        received.fetch_add(count, Ordering::Relaxed);
        if !acks.is_empty() {
            if s.write_all(&acks).await.is_err() {
                return;
            }
            acks.clear();
        }
    }
}

async fn publisher(
    s: TcpStream,
    topic: String,
    qos: QoS,
    sent: Arc<AtomicU64>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let (mut rd, mut wr) = s.into_split();
    let window = Arc::new(tokio::sync::Semaphore::new(64));
    if qos == QoS::AtLeastOnce {
        let window = window.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut tmp = vec![0u8; 1 << 16];
            loop {
                let n = match rd.read(&mut tmp).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&tmp[..n]);
                let mut off = 0;
                while let Ok(Some(len)) = check_frame(&buf[off..], u32::MAX) {
                    off += len;
                    window.add_permits(1);
                }
                buf.drain(..off);
            }
        });
    }
    let payload = [7u8; 64];
    let mut out = Vec::with_capacity(1 << 16);
    let mut id: u16 = 0;
    while !stop.load(Ordering::Relaxed) {
        out.clear();
        let batch = if qos == QoS::AtLeastOnce {
            let permit = window.acquire_many(16).await.unwrap();
            permit.forget();
            16
        } else {
            100
        };
        for _ in 0..batch {
            id = id.wrapping_add(1).max(1);
            let p = Packet::Publish(Publish {
                dup: false,
                qos,
                retain: false,
                topic: TopicName::new(&topic).unwrap(),
                packet_id: (qos != QoS::AtMostOnce).then(|| PacketId::new(id).unwrap()),
                properties: Properties::default(),
                payload: &payload,
            });
            p.encode(Protocol::V3_1_1, &mut out).unwrap();
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
        sent.fetch_add(batch as u64, Ordering::Relaxed);
    }
}

fn latency(port: u16, pairs: usize, secs: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let epoch = Instant::now();
        let samples = Arc::new(parking_lot::Mutex::new(Vec::<u64>::new()));
        for i in 0..pairs {
            let topic = format!("lat/{i}");
            let mut sub = connect(port, &format!("lsub{i}")).await;
            let filters = [(
                TopicFilter::new(&topic).unwrap(),
                SubscriptionOptions::default(),
            )];
            send(
                &mut sub,
                &Packet::Subscribe(Subscribe {
                    packet_id: PacketId::new(1).unwrap(),
                    properties: Properties::default(),
                    filters: Seq::Items(&filters),
                }),
            )
            .await;
            let samples = samples.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = vec![0u8; 1 << 16];
                loop {
                    let n = match sub.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let now = epoch.elapsed().as_nanos() as u64;
                    buf.extend_from_slice(&tmp[..n]);
                    let mut off = 0;
                    while let Ok(Some(len)) = check_frame(&buf[off..], u32::MAX) {
                        if let Ok(Packet::Publish(p)) =
                            decode_packet(&buf[off..off + len], Protocol::V3_1_1)
                        {
                            if let Some(Ok(stamp)) = p.payload.get(..8).map(<[u8; 8]>::try_from) {
                                samples
                                    .lock()
                                    .push(now.saturating_sub(u64::from_le_bytes(stamp)));
                            }
                        }
                        off += len;
                    }
                    buf.drain(..off);
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        for i in 0..pairs {
            let topic = format!("lat/{i}");
            let mut publ = connect(port, &format!("lpub{i}")).await;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                let mut payload = [0u8; 64];
                loop {
                    tick.tick().await;
                    let stamp = epoch.elapsed().as_nanos() as u64;
                    payload[..8].copy_from_slice(&stamp.to_le_bytes());
                    let p = Packet::Publish(Publish {
                        dup: false,
                        qos: QoS::AtMostOnce,
                        retain: false,
                        topic: TopicName::new(&topic).unwrap(),
                        packet_id: None,
                        properties: Properties::default(),
                        payload: &payload,
                    });
                    let mut out = Vec::new();
                    p.encode(Protocol::V3_1_1, &mut out).unwrap();
                    if publ.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.lock().clear();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let mut v = samples.lock().clone();
        v.sort_unstable();
        let pct = |p: f64| {
            v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
                / 1000
        };
        println!(
            "latency over {} messages: p50 {} us, p99 {} us, max {} us",
            v.len(),
            pct(0.5),
            pct(0.99),
            v.last().copied().unwrap_or(0) / 1000
        );
        std::process::exit(0);
    });
}

fn rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn idle(port: u16, n: usize, pid: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let before = rss_kb(pid);
        let start = Instant::now();
        let mut conns = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
            let batch: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let id = format!("idle{i}");
                    tokio::spawn(async move { connect(port, &id).await })
                })
                .collect();
            for b in batch {
                conns.push(b.await.unwrap());
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = rss_kb(pid);
        println!(
            "{n} connections in {elapsed:.2}s ({:.0}/s); broker RSS {before} kB -> {after} kB: {:.0} B per connection",
            n as f64 / elapsed,
            (after.saturating_sub(before) * 1024) as f64 / n as f64
        );
        drop(conns);
        std::process::exit(0);
    });
}
