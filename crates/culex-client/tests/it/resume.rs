//! The async client resuming a session against a scripted server, which can
//! drop the connection exactly where the test needs it.

use std::time::Duration;

use culex_client::asynch::{connect, Event, Options, Reconnect};
use culex_client::codec::{decode, Packet, Protocol};
use culex_client::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// Reads one whole packet; returns its bytes.
async fn read_frame(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if let Some(len) = culex_client::codec::check_frame(buf, u32::MAX).unwrap() {
            return buf.drain(..len).collect();
        }
        let mut chunk = [0u8; 1024];
        let n = timeout(WAIT, s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "client closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Decodes one 3.1.1 packet the client sent.
fn packet(frame: &[u8]) -> Packet<'_> {
    decode(frame, Protocol::V3_1_1, u32::MAX)
        .unwrap()
        .unwrap()
        .0
}

async fn accept(listener: &TcpListener) -> (TcpStream, bool) {
    let (mut s, _) = timeout(WAIT, listener.accept()).await.unwrap().unwrap();
    let mut buf = Vec::new();
    let frame = read_frame(&mut s, &mut buf).await;
    let clean = match packet(&frame) {
        Packet::Connect(c) => c.clean_start,
        other => panic!("expected CONNECT, got {other:?}"),
    };
    (s, clean)
}

#[tokio::test]
async fn unacknowledged_publish_and_pubrel_are_resent_on_a_resumed_session() {
    // [MQTT-4.4.0-1]: on reconnect with a session, the client re-sends
    // unacknowledged PUBLISH packets (with DUP) and PUBREL packets.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut o = Options::new("resumer", "127.0.0.1", port);
    o.clean_start = false;
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(50),
    });
    let (client, mut events) = connect(o);

    // First connection: take a QoS 1 and a QoS 2 message, acknowledge
    // neither completely, then drop the link.
    let (mut s, clean) = accept(&listener).await;
    assert!(!clean);
    s.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
    let q1 = client
        .publish("r/1", "one", QoS::AtLeastOnce, false)
        .await
        .unwrap();
    let q2 = client
        .publish("r/2", "two", QoS::ExactlyOnce, false)
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let frame = read_frame(&mut s, &mut buf).await;
        match packet(&frame) {
            Packet::Publish(p) => {
                assert!(!p.dup);
                ids.push((p.qos, p.packet_id.unwrap().get()));
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    let q2_id = ids.iter().find(|(q, _)| *q == QoS::ExactlyOnce).unwrap().1;
    let q1_id = ids.iter().find(|(q, _)| *q == QoS::AtLeastOnce).unwrap().1;
    let [hi, lo] = q2_id.to_be_bytes();
    s.write_all(&[0x50, 0x02, hi, lo]).await.unwrap(); // PUBREC
    let frame = read_frame(&mut s, &mut buf).await;
    assert_eq!(frame, [0x62, 0x02, hi, lo], "PUBREL");
    drop(s);

    // Second connection: the session is there. Expect the QoS 1 PUBLISH again
    // with DUP and the same id, and the PUBREL again, not the QoS 2 PUBLISH.
    let (mut s, clean) = accept(&listener).await;
    assert!(!clean, "reconnects keep the session");
    s.write_all(&[0x20, 0x02, 0x01, 0x00]).await.unwrap(); // session present
    let mut buf = Vec::new();
    let mut saw_publish = false;
    let mut saw_pubrel = false;
    for _ in 0..2 {
        let frame = read_frame(&mut s, &mut buf).await;
        match packet(&frame) {
            Packet::Publish(p) => {
                assert!(p.dup, "[MQTT-3.3.1-1] re-sent with DUP");
                assert_eq!(p.packet_id.unwrap().get(), q1_id);
                assert_eq!(p.payload, b"one");
                saw_publish = true;
            }
            Packet::PubRel(r) => {
                assert_eq!(r.packet_id.get(), q2_id);
                saw_pubrel = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(saw_publish && saw_pubrel);
    let [h1, l1] = q1_id.to_be_bytes();
    s.write_all(&[0x40, 0x02, h1, l1]).await.unwrap(); // PUBACK
    s.write_all(&[0x70, 0x02, hi, lo]).await.unwrap(); // PUBCOMP
    timeout(WAIT, q1).await.unwrap().unwrap();
    timeout(WAIT, q2).await.unwrap().unwrap();
    // Both connections were reported.
    let mut connects = 0;
    while let Ok(Some(event)) = timeout(Duration::from_millis(100), events.recv()).await {
        if matches!(event, Event::Connected(_)) {
            connects += 1;
        }
    }
    assert_eq!(connects, 2);
}

#[tokio::test]
async fn incoming_messages_are_acknowledged_as_the_application_takes_them() {
    // Flow control: PUBACK goes out only once a message is in the events
    // channel, so the server's in-flight window paces a slow application.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut o = Options::new("paced", "127.0.0.1", port);
    o.event_capacity = 1;
    o.reconnect = None;
    let (_client, mut events) = connect(o);
    let (mut s, _) = accept(&listener).await;
    s.write_all(&[0x20, 0x02, 0x00, 0x00]).await.unwrap();
    assert!(matches!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(Event::Connected(_))
    ));
    // Three QoS 1 messages, ids 1..=3, topic "t", payload "x".
    for id in 1..=3u8 {
        s.write_all(&[0x32, 0x06, 0x00, 0x01, b't', 0x00, id, b'x'])
            .await
            .unwrap();
    }
    // The channel holds one message: exactly one PUBACK, for id 1.
    let mut buf = Vec::new();
    assert_eq!(read_frame(&mut s, &mut buf).await, [0x40, 0x02, 0x00, 0x01]);
    let mut more = [0u8; 4];
    let early = timeout(Duration::from_millis(300), s.read(&mut more)).await;
    assert!(
        early.is_err(),
        "acknowledged before the application took the message"
    );
    // The application takes one; the next moves into the channel and is acknowledged.
    assert!(matches!(events.recv().await, Some(Event::Message(_))));
    assert_eq!(read_frame(&mut s, &mut buf).await, [0x40, 0x02, 0x00, 0x02]);
    assert!(matches!(events.recv().await, Some(Event::Message(_))));
    assert_eq!(read_frame(&mut s, &mut buf).await, [0x40, 0x02, 0x00, 0x03]);
}
