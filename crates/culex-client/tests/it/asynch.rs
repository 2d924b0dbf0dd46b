//! The async client against Debian's mosquitto.

use std::time::Duration;

use bytes::Bytes;
use culex_client::asynch::{
    connect, ClientError, Event, Events, Message, Options, PublishProperties, Reconnect,
    SubscribeProperties,
};
use culex_client::codec::{ReasonCode, SubscriptionOptions};
use culex_client::{Protocol, QoS};
use tokio::time::timeout;

use crate::{Kind, RestartableBroker, TestBroker};

const WAIT: Duration = Duration::from_secs(5);

/// Options with a client id unique to the broker kind, so that the two
/// runs of a test never share a session even if their brokers were mixed up.
fn options(kind: Kind, id: &str, port: u16) -> Options {
    let mut o = Options::new(format!("{id}-{kind:?}"), "127.0.0.1", port);
    o.reconnect = Some(Reconnect {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(300),
    });
    o
}

/// The next event that is not a message... or a message: whatever comes.
async fn next(events: &mut Events) -> Event {
    timeout(WAIT, events.recv())
        .await
        .expect("event in time")
        .expect("event loop alive")
}

async fn connected(events: &mut Events) -> culex_client::asynch::ConnAckInfo {
    loop {
        match next(events).await {
            Event::Connected(info) => return info,
            Event::Disconnected { error, .. } => panic!("connection failed: {error:?}"),
            _ => {}
        }
    }
}

/// The next CONNACK, skipping the report of the lost connection before it.
async fn reconnected(events: &mut Events) -> culex_client::asynch::ConnAckInfo {
    loop {
        if let Event::Connected(info) = next(events).await {
            return info;
        }
    }
}

async fn next_message(events: &mut Events) -> Message {
    loop {
        if let Event::Message(m) = next(events).await {
            return m;
        }
    }
}

async fn publish_subscribe_all_qos_levels(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let (client, mut events) = connect(options(kind, "a-1", broker.port()));
    connected(&mut events).await;
    let granted = client
        .subscribe("x/#", QoS::ExactlyOnce)
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(granted, [culex_client::codec::ReasonCode::GrantedQoS2]);
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
        let token = client
            .publish(format!("x/{}", qos as u8), "p", qos, false)
            .await
            .unwrap();
        token.await.unwrap();
        let m = next_message(&mut events).await;
        assert_eq!(
            (m.topic.as_str(), m.qos, &m.payload[..]),
            (&*format!("x/{}", qos as u8), qos, &b"p"[..])
        );
    }
    client.disconnect().await.unwrap();
    // After disconnect the loop ends and the events channel closes.
    loop {
        match timeout(WAIT, events.recv()).await.unwrap() {
            None => break,
            Some(_) => continue,
        }
    }
    assert_eq!(
        client
            .publish("x/1", "late", QoS::AtMostOnce, false)
            .await
            .err(),
        Some(ClientError::Closed)
    );
}

async fn publishing_from_inside_the_handler_does_not_deadlock(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    // Tiny queues make a deadlock likely if the loop ever waited on us.
    let mut o = options(kind, "echo", broker.port());
    o.request_capacity = 1;
    o.event_capacity = 1;
    let (client, mut events) = connect(o);
    connected(&mut events).await;
    client
        .subscribe("echo/in", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();

    let (counter, mut counter_events) = connect(options(kind, "counter", broker.port()));
    connected(&mut counter_events).await;
    counter
        .subscribe("echo/out", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();

    const N: usize = 200;
    let publisher = client.clone();
    tokio::spawn(async move {
        for i in 0..N {
            publisher
                .publish("echo/in", i.to_string(), QoS::AtLeastOnce, false)
                .await
                .unwrap();
        }
    });
    // The handler: every message is answered with a publish from this task.
    let handler = tokio::spawn(async move {
        let mut seen = 0;
        while seen < N {
            if let Event::Message(m) = next(&mut events).await {
                client
                    .publish("echo/out", m.payload, QoS::AtLeastOnce, false)
                    .await
                    .unwrap();
                seen += 1;
            }
        }
    });
    let mut got = 0;
    while got < N {
        next_message(&mut counter_events).await;
        got += 1;
    }
    timeout(WAIT, handler).await.unwrap().unwrap();
}

#[tokio::test]
async fn back_pressure_is_visible_to_the_caller() {
    // A server that accepts TCP but never answers CONNECT: the loop cannot
    // take requests, so the bounded queue fills up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _server = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut o = options(Kind::Culex, "bp", port);
    o.request_capacity = 3;
    let (client, _events) = connect(o);
    let mut accepted = 0;
    let mut full = false;
    for i in 0..10 {
        match client.try_publish(Message::new("t", format!("{i}"), QoS::AtLeastOnce, false)) {
            Ok(_) => accepted += 1,
            Err(ClientError::Full) => {
                full = true;
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(full, "queue never reported full");
    assert!(accepted <= 4, "accepted {accepted} with a queue of 3");
    // The waiting variant waits instead of failing.
    let waiting = timeout(
        Duration::from_millis(300),
        client.publish("t", "more", QoS::AtLeastOnce, false),
    )
    .await;
    assert!(waiting.is_err(), "publish should wait for room");
}

async fn reconnect_restores_subscriptions(kind: Kind) {
    let mut broker = RestartableBroker::start(kind);
    let (client, mut events) = connect(options(kind, "restore", broker.port()));
    assert!(!connected(&mut events).await.session_present);
    client
        .subscribe("keep/#", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();

    broker.kill();
    broker.restart();
    // The loop reports the loss, reconnects with a fresh session...
    let info = reconnected(&mut events).await;
    assert!(!info.session_present);

    // ...and re-subscribes: a message published now arrives. The restore
    // SUBSCRIBE may still be in flight, so publish until one arrives.
    let (p, mut pe) = connect(options(kind, "restore-pub", broker.port()));
    connected(&mut pe).await;
    let got = timeout(WAIT, async {
        loop {
            p.publish("keep/a", "back", QoS::AtLeastOnce, false)
                .await
                .unwrap()
                .await
                .unwrap();
            if let Ok(Some(Event::Message(m))) =
                timeout(Duration::from_millis(200), events.recv()).await
            {
                return m;
            }
        }
    })
    .await
    .expect("subscription restored");
    assert_eq!(got.topic, "keep/a");
}

async fn unacknowledged_qos1_is_resent_after_reconnect(kind: Kind) {
    let mut broker = RestartableBroker::start(kind);
    let (sub, mut sub_events) = connect(options(kind, "resend-sub", broker.port()));
    connected(&mut sub_events).await;

    let mut o = options(kind, "resend-pub", broker.port());
    o.clean_start = false;
    let (client, mut events) = connect(o);
    connected(&mut events).await;
    // The broker dies; a QoS 1 publish made now cannot be acknowledged.
    broker.kill();
    let token = client
        .publish("resend/t", "survives", QoS::AtLeastOnce, true)
        .await
        .unwrap();
    broker.restart();
    // The subscriber reconnects too and subscribes on the new broker; the
    // message is retained, so the order of the two reconnects does not matter.
    reconnected(&mut sub_events).await;
    sub.subscribe("resend/t", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();
    // The publisher reconnects; the message goes out and is acknowledged.
    timeout(Duration::from_secs(8), token)
        .await
        .expect("acknowledged in time")
        .unwrap();
    let m = timeout(WAIT, next_message(&mut sub_events)).await.unwrap();
    assert_eq!(&m.payload[..], b"survives");
}

async fn mqtt5_properties_pass_through(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut o = options(kind, "v5", broker.port());
    o.protocol = Protocol::V5;
    let (client, mut events) = connect(o);
    let info = connected(&mut events).await;
    // mosquitto announces its limits in CONNACK.
    assert!(
        info.topic_alias_maximum.is_some()
            || info.receive_maximum.is_some()
            || info.retain_available.is_none()
    );
    client
        .subscribe("v5/req", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(60),
        content_type: Some("text/plain".into()),
        response_topic: Some("v5/resp".into()),
        correlation_data: Some(Bytes::from_static(b"\x01\x02")),
        user_properties: vec![
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
            ("a".into(), "3".into()),
        ],
        subscription_identifiers: vec![],
    };
    let msg =
        Message::new("v5/req", "hello", QoS::AtLeastOnce, false).with_properties(props.clone());
    client.publish_message(msg).await.unwrap().await.unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(
        m.properties.user_properties, props.user_properties,
        "order kept"
    );
    assert_eq!(m.properties.response_topic, props.response_topic);
    assert_eq!(m.properties.correlation_data, props.correlation_data);
    assert_eq!(m.properties.content_type, props.content_type);
    assert_eq!(m.properties.payload_format_indicator, Some(1));
    assert!(m
        .properties
        .message_expiry_interval
        .is_some_and(|s| s <= 60));
}

async fn refused_connection_is_reported(kind: Kind) {
    let broker = TestBroker::start(kind, "allow_anonymous false");
    let mut o = options(kind, "refused", broker.port());
    o.reconnect = None;
    let (_client, mut events) = connect(o);
    match next(&mut events).await {
        Event::Disconnected {
            reason: Some(code), ..
        } => assert!(code.is_error()),
        other => panic!("expected refusal, got {other:?}"),
    }
    assert!(
        timeout(WAIT, events.recv()).await.unwrap().is_none(),
        "loop ends without reconnect"
    );
}

/// culex only: mosquitto 2.0.11 closes the old connection without a DISCONNECT.
#[tokio::test]
async fn server_disconnect_reason_is_visible_culex() {
    server_disconnect_reason_is_visible(Kind::Culex).await
}

async fn server_disconnect_reason_is_visible(kind: Kind) {
    // [MQTT-3.1.4-3]: a second connection with the same client id takes the
    // session over; a 5.0 client is told why with DISCONNECT 0x8E.
    let broker = TestBroker::start(kind, "");
    let mut o = options(kind, "twin", broker.port());
    o.protocol = Protocol::V5;
    o.reconnect = None;
    let (_first, mut first_events) = connect(o.clone());
    connected(&mut first_events).await;
    let (_second, mut second_events) = connect(o);
    connected(&mut second_events).await;
    loop {
        match next(&mut first_events).await {
            Event::Disconnected { reason, .. } => {
                assert_eq!(reason, Some(ReasonCode::SessionTakenOver));
                break;
            }
            Event::Connected(_) => panic!("reconnected without reconnect"),
            _ => {}
        }
    }
}

async fn subscription_identifiers_come_back_with_messages(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut o = options(kind, "subid", broker.port());
    o.protocol = Protocol::V5;
    let (client, mut events) = connect(o);
    connected(&mut events).await;
    let props = SubscribeProperties {
        subscription_identifier: Some(42),
        user_properties: vec![],
    };
    let filters = vec![(
        "sid/#".to_string(),
        SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..Default::default()
        },
    )];
    client
        .subscribe_with(filters, props)
        .await
        .unwrap()
        .await
        .unwrap();
    client
        .publish("sid/x", "1", QoS::AtLeastOnce, false)
        .await
        .unwrap()
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert_eq!(m.properties.subscription_identifiers, [42]);
}

async fn session_resume_delivers_queued_messages(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let mut o = options(kind, "resume", broker.port());
    o.clean_start = false;
    let (client, mut events) = connect(o.clone());
    connected(&mut events).await;
    client
        .subscribe("later/#", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();
    client.disconnect().await.unwrap();

    let (p, mut pe) = connect(options(kind, "resume-pub", broker.port()));
    connected(&mut pe).await;
    for i in 0..3 {
        p.publish(format!("later/{i}"), "q", QoS::AtLeastOnce, false)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (_client, mut events) = connect(o);
    assert!(connected(&mut events).await.session_present);
    for i in 0..3 {
        assert_eq!(next_message(&mut events).await.topic, format!("later/{i}"));
    }
}

async fn automatic_pings_keep_an_idle_connection(kind: Kind) {
    // [MQTT-3.1.2-23]: the client sends PINGREQ when idle for a keepalive;
    // a broker drops a silent client after 1.5 keepalives.
    let broker = TestBroker::start(kind, "");
    let mut o = options(kind, "idle", broker.port());
    o.keep_alive = 1;
    o.reconnect = None;
    let (client, mut events) = connect(o);
    connected(&mut events).await;
    let quiet = timeout(Duration::from_millis(2_600), events.recv()).await;
    assert!(quiet.is_err(), "idle connection reported {quiet:?}");
    client
        .subscribe("idle/t", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn disconnect_returns_while_events_are_unread(kind: Kind) {
    // The task that would read the events awaits disconnect(): the loop must
    // not wait for it to read them first.
    let broker = TestBroker::start(kind, "");
    let mut o = options(kind, "busy", broker.port());
    o.event_capacity = 1;
    let (client, mut events) = connect(o);
    connected(&mut events).await;
    client
        .subscribe("busy/t", QoS::AtLeastOnce)
        .await
        .unwrap()
        .await
        .unwrap();
    for i in 0..5 {
        client
            .publish("busy/t", format!("{i}"), QoS::AtLeastOnce, false)
            .await
            .unwrap()
            .await
            .unwrap();
    }
    timeout(WAIT, client.disconnect())
        .await
        .expect("disconnect returned")
        .unwrap();
    let mut messages = 0;
    while let Some(event) = timeout(WAIT, events.recv()).await.unwrap() {
        if matches!(event, Event::Message(_)) {
            messages += 1;
        }
    }
    assert_eq!(messages, 5, "held-back messages are still handed over");
}

crate::on_both_brokers_async!(
    publish_subscribe_all_qos_levels,
    publishing_from_inside_the_handler_does_not_deadlock,
    reconnect_restores_subscriptions,
    unacknowledged_qos1_is_resent_after_reconnect,
    mqtt5_properties_pass_through,
    refused_connection_is_reported,
    subscription_identifiers_come_back_with_messages,
    session_resume_delivers_queued_messages,
    automatic_pings_keep_an_idle_connection,
    disconnect_returns_while_events_are_unread,
);
