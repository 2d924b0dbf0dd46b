//! Shared subscriptions and their members' state.

use std::time::Duration;

use super::Sim;
use crate::testing::local_config;
use culex_codec::{Packet, QoS};

use super::Raw;

const SHORT: Duration = Duration::from_millis(300);

/// Takes the publishes `c` receives until it is quiet, acknowledging QoS 1.
fn drain(c: &mut Raw, ack: bool) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    for _ in 0..1000 {
        let Some(f) = c.try_recv(SHORT) else { break };
        let g = f.publish();
        if ack {
            if let Some(id) = g.id {
                c.ack(Packet::PubAck, id);
            }
        }
        got.push(g.payload);
    }
    got
}

/// Sends DISCONNECT and waits until the broker closed the connection, so
/// that the session is detached before the test goes on.
fn go_offline(mut c: Raw) {
    c.send(&Packet::Disconnect(culex_codec::packet::Disconnect {
        reason: culex_codec::ReasonCode::Success,
        properties: culex_codec::Properties::default(),
    }));
    assert!(
        c.is_closed_within(Duration::from_secs(5)),
        "broker closed it"
    );
}

/// A persistent member (clean session 0) that goes offline keeps its session,
/// but the group's new messages skip it: each goes to an online member
/// (round-robin over online members, 5.0 §4.8.2). When it comes back it finds
/// none of them queued for it.
#[test]
fn offline_persistent_member_is_skipped() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut a, _) = Raw::connect(port, "share-away", false);
    let (mut b, _) = Raw::connect(port, "share-here", true);
    let (mut c, _) = Raw::connect(port, "share-there", true);
    for m in [&mut a, &mut b, &mut c] {
        assert_eq!(m.subscribe(&[("$share/g/job", QoS::AtLeastOnce)]), vec![1]);
    }
    go_offline(a); // session (and its subscription) kept
    let (mut publ, _) = Raw::connect(port, "share-pub", true);
    for i in 0..10u16 {
        let payload = format!("{i}");
        publ.publish_acked("job", payload.as_bytes(), QoS::AtLeastOnce, false, i + 1);
    }
    let (got_b, got_c) = (drain(&mut b, true), drain(&mut c, true));
    assert_eq!(
        got_b.len() + got_c.len(),
        10,
        "every message to an online member"
    );
    assert_eq!(
        (got_b.len(), got_c.len()),
        (5, 5),
        "round-robin over online members"
    );
    let (mut a, present) = Raw::connect(port, "share-away", false);
    assert!(present);
    assert!(
        drain(&mut a, true).is_empty(),
        "nothing was queued for the offline member"
    );
}

/// Even when every online member's in-flight window is full, a new message
/// is queued with an online member, not with the offline one: the offline
/// member gets nothing on its return, the online one everything once it acks.
#[test]
fn offline_member_skipped_when_online_windows_are_full() {
    let mut config = local_config();
    config.limits.max_inflight_messages = Some(1);
    let broker = Sim::start_with(config);
    let port = broker.port();
    let (mut a, _) = Raw::connect(port, "full-away", false);
    let (mut b, _) = Raw::connect(port, "full-here", true);
    for m in [&mut a, &mut b] {
        assert_eq!(m.subscribe(&[("$share/g/w", QoS::AtLeastOnce)]), vec![1]);
    }
    go_offline(a);
    let (mut publ, _) = Raw::connect(port, "full-pub", true);
    for i in 0..6u16 {
        let payload = format!("{i}");
        publ.publish_acked("w", payload.as_bytes(), QoS::AtLeastOnce, false, i + 1);
    }
    // b's window (1) is full after the first message; it acks as it goes.
    let got_b = drain(&mut b, true);
    let (mut a, present) = Raw::connect(port, "full-away", false);
    assert!(present);
    let got_a = drain(&mut a, true);
    assert!(got_a.is_empty(), "queued for the offline member: {got_a:?}");
    assert_eq!(got_b.len(), 6);
}

/// A QoS 2 message a member received but did not acknowledge stays with
/// that member: when its session ends, the message is not sent to another
/// member of the group [MQTT-4.8.2-5] (unlike QoS 1, which may be).
#[test]
fn unacknowledged_qos2_is_not_handed_to_another_member() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut a, _) = Raw::connect(port, "q2-a", true);
    let (mut b, _) = Raw::connect(port, "q2-b", true);
    for m in [&mut a, &mut b] {
        assert_eq!(m.subscribe(&[("$share/g/q2", QoS::ExactlyOnce)]), vec![2]);
    }
    let (mut publ, _) = Raw::connect(port, "q2-pub", true);
    publ.publish_acked("q2", b"once", QoS::ExactlyOnce, false, 1);
    let mut members = vec![a, b];
    let first = members[0].try_recv(SHORT);
    let (got, receiver) = match first {
        Some(f) => (f.publish(), 0),
        None => (members[1].recv().publish(), 1),
    };
    assert_eq!(
        (got.qos, &got.payload[..]),
        (QoS::ExactlyOnce, &b"once"[..])
    );
    // The receiving member leaves without PUBREC (clean session: it ends).
    let mut other = members.swap_remove(1 - receiver);
    drop(members);
    let received = std::iter::from_fn(|| other.try_recv(SHORT)).count();
    assert_eq!(received, 0, "the other member got the QoS 2 message");
}

/// A publisher that repeats its topic keeps the group it matched, and
/// picks a member per message: members who join since share the next
/// messages in turn, one who unsubscribes gets no more [MQTT-3.10.4-2], and
/// a plain subscriber of the same topic gets every message throughout
/// [MQTT-4.8.2-2]. Once the group has no member left, only the plain
/// subscriber receives.
#[test]
fn a_repeated_topic_follows_the_group_as_it_changes() {
    let broker = Sim::start();
    let port = broker.port();
    let (mut plain, _) = Raw::connect(port, "follow-plain", true);
    assert_eq!(plain.subscribe(&[("job/1", QoS::AtLeastOnce)]), vec![1]);
    let (mut a, _) = Raw::connect(port, "follow-a", true);
    assert_eq!(
        a.subscribe(&[("$share/g/job/+", QoS::AtLeastOnce)]),
        vec![1]
    );
    let (mut publ, _) = Raw::connect(port, "follow-pub", true);
    let mut id = 0u16;
    let mut send = |publ: &mut Raw, n: usize| {
        for _ in 0..n {
            id += 1;
            let payload = format!("{id}");
            publ.publish_acked("job/1", payload.as_bytes(), QoS::AtLeastOnce, false, id);
        }
    };
    send(&mut publ, 2);
    assert_eq!(drain(&mut a, true).len(), 2);
    assert_eq!(drain(&mut plain, true).len(), 2);

    let (mut b, _) = Raw::connect(port, "follow-b", true);
    assert_eq!(
        b.subscribe(&[("$share/g/job/+", QoS::AtLeastOnce)]),
        vec![1]
    );
    send(&mut publ, 4);
    let (got_a, got_b) = (drain(&mut a, true), drain(&mut b, true));
    assert_eq!((got_a.len(), got_b.len()), (2, 2), "{got_a:?} {got_b:?}");
    assert_eq!(drain(&mut plain, true).len(), 4);

    let filters = [culex_codec::topic::TopicFilter::new("$share/g/job/+").unwrap()];
    a.send(&Packet::Unsubscribe(culex_codec::packet::Unsubscribe {
        packet_id: crate::testing::raw::pid(9),
        properties: culex_codec::Properties::default(),
        filters: culex_codec::Seq::Items(&filters),
    }));
    assert!(matches!(a.recv().packet(), Packet::UnsubAck(_)));
    send(&mut publ, 3);
    assert_eq!(drain(&mut b, true).len(), 3);
    assert!(drain(&mut a, true).is_empty(), "unsubscribed");
    assert_eq!(drain(&mut plain, true).len(), 3);

    // b's session ends with its connection: the group is empty.
    b.disconnect();
    send(&mut publ, 2);
    assert_eq!(drain(&mut plain, true).len(), 2);
}
