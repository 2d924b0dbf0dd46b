//! A do-nothing MQTT relay: the ceiling `culex bench` can measure here.
//!
//! It answers CONNECT and SUBSCRIBE, acknowledges QoS 1/2 publications at
//! once, and forwards each PUBLISH frame unchanged (same QoS, same packet id)
//! to the connections subscribed to exactly its topic. No sessions, no
//! retained messages, no wildcards, no bookkeeping: it exists to show how fast
//! the load generator itself is, not to be a broker.
//!
//! `cargo run --release -p culex-bench --example relay -- 1883`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use culex_codec::packet::{ConnAck, PubResponse, SubAck};
use culex_codec::{
    check_frame, decode_packet, Packet, PacketId, Properties, Protocol, QoS, ReasonCode, Seq,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Frames a connection may have queued before its publishers wait.
const QUEUE: usize = 4096;

#[derive(Default)]
struct Routes {
    topics: RwLock<HashMap<String, Vec<mpsc::Sender<Bytes>>>>,
    generation: AtomicU64,
}

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(1883);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!("relay listening on 127.0.0.1:{port}");
        let routes = Arc::new(Routes::default());
        loop {
            let (stream, _) = listener.accept().await?;
            let routes = routes.clone();
            tokio::spawn(async move {
                let _ = connection(stream, routes).await;
            });
        }
    })
}

async fn connection(stream: TcpStream, routes: Arc<Routes>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    // The writer coalesces everything queued into one write.
    tokio::spawn(async move {
        let mut out = BytesMut::with_capacity(64 * 1024);
        while let Some(frame) = rx.recv().await {
            out.extend_from_slice(&frame);
            while out.len() < 256 * 1024 {
                match rx.try_recv() {
                    Ok(frame) => out.extend_from_slice(&frame),
                    Err(_) => break,
                }
            }
            if writer.write_all(&out).await.is_err() {
                break;
            }
            out.clear();
        }
    });
    let mut protocol = Protocol::V3_1_1;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut cache: HashMap<String, Vec<mpsc::Sender<Bytes>>> = HashMap::new();
    let mut cache_generation = u64::MAX;
    let mut reply = BytesMut::new();
    loop {
        if reader.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        while let Ok(Some(len)) = check_frame(&buf, u32::MAX) {
            let frame = buf.split_to(len).freeze();
            let Ok(packet) = decode_packet(&frame, protocol) else {
                return Ok(());
            };
            reply.clear();
            let ok = |packet_id: PacketId| PubResponse {
                packet_id,
                reason: ReasonCode::Success,
                properties: Properties::default(),
            };
            let encoded = match packet {
                Packet::Connect(c) => {
                    protocol = c.protocol;
                    Packet::ConnAck(ConnAck {
                        session_present: false,
                        reason: ReasonCode::Success,
                        properties: Properties::default(),
                    })
                    .encode(protocol, &mut reply)
                }
                Packet::Subscribe(s) => {
                    let mut reasons = Vec::new();
                    let mut topics = routes.topics.write().unwrap_or_else(|e| e.into_inner());
                    for (filter, options) in s.filters.iter() {
                        topics
                            .entry(filter.as_str().to_string())
                            .or_default()
                            .push(tx.clone());
                        reasons.push(match options.qos {
                            QoS::AtMostOnce => ReasonCode::Success,
                            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                        });
                    }
                    routes.generation.fetch_add(1, Ordering::Release);
                    drop(topics);
                    Packet::SubAck(SubAck {
                        packet_id: s.packet_id,
                        properties: Properties::default(),
                        reasons: Seq::Items(&reasons),
                    })
                    .encode(protocol, &mut reply)
                }
                Packet::Publish(p) => {
                    let generation = routes.generation.load(Ordering::Acquire);
                    if generation != cache_generation {
                        cache = routes
                            .topics
                            .read()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone();
                        cache_generation = generation;
                    }
                    if let Some(subscribers) = cache.get(p.topic.as_str()) {
                        for subscriber in subscribers {
                            // A full queue pauses this publisher: no unbounded growth.
                            let _ = subscriber.send(frame.clone()).await;
                        }
                    }
                    match (p.qos, p.packet_id) {
                        (QoS::AtLeastOnce, Some(id)) => {
                            Packet::PubAck(ok(id)).encode(protocol, &mut reply)
                        }
                        (QoS::ExactlyOnce, Some(id)) => {
                            Packet::PubRec(ok(id)).encode(protocol, &mut reply)
                        }
                        _ => Ok(0),
                    }
                }
                Packet::PubRec(r) => Packet::PubRel(ok(r.packet_id)).encode(protocol, &mut reply),
                Packet::PubRel(r) => Packet::PubComp(ok(r.packet_id)).encode(protocol, &mut reply),
                Packet::PingReq => Packet::PingResp.encode(protocol, &mut reply),
                Packet::Disconnect(_) => return Ok(()),
                _ => Ok(0),
            };
            if matches!(encoded, Ok(n) if n > 0) && tx.send(reply.split().freeze()).await.is_err() {
                return Ok(());
            }
        }
    }
}
