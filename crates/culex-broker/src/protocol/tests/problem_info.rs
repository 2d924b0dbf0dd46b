//! Reason Strings, and a client that declines them (Request Problem Information 0).

use super::Sim;
use culex_codec::{Packet, Properties, Protocol, ReasonCode};

use super::Raw;
use crate::testing::raw::ConnectOpts;

fn v5<'a>(client_id: &'a str, problem_info: Option<u8>, auth: Option<&'a str>) -> ConnectOpts<'a> {
    ConnectOpts {
        client_id,
        protocol: Protocol::V5,
        properties: Properties {
            request_problem_information: problem_info,
            authentication_method: auth,
            ..Properties::default()
        },
        ..ConnectOpts::default()
    }
}

/// The CONNACK refusing an unsupported authentication method (0x8C) says
/// why in a Reason String, unless the client asked for no problem information.
#[test]
fn connack_refusal_carries_a_reason_string_unless_declined() {
    let broker = Sim::start();
    for (problem_info, expect_text) in [(None, true), (Some(1), true), (Some(0), false)] {
        let mut c = Raw::open(broker.port(), Protocol::V5);
        let opts = v5("refused", problem_info, Some("SCRAM-SHA-1"));
        c.send(&Packet::Connect(culex_codec::packet::Connect {
            bridge: false,
            protocol: opts.protocol,
            clean_start: true,
            keep_alive: 60,
            client_id: opts.client_id,
            will: None,
            username: None,
            password: None,
            properties: opts.properties,
        }));
        let f = c.recv();
        let Packet::ConnAck(ack) = f.packet() else {
            panic!("expected CONNACK");
        };
        assert_eq!(ack.reason, ReasonCode::BadAuthenticationMethod);
        let text = ack.properties.reason_string;
        assert_eq!(text.is_some(), expect_text, "{problem_info:?}: {text:?}");
        if let Some(t) = text {
            assert!(t.contains("authentication"), "{t}");
        }
    }
}

/// The DISCONNECT 0x82 for a protocol error (a second CONNECT,
/// [MQTT-3.1.0-2]) carries a Reason String, unless declined.
#[test]
fn protocol_error_disconnect_carries_a_reason_string_unless_declined() {
    let broker = Sim::start();
    for (problem_info, expect_text) in [(None, true), (Some(0), false)] {
        let (mut c, _, reason) = Raw::connect_with(broker.port(), v5("twice", problem_info, None));
        assert_eq!(reason, ReasonCode::Success);
        c.send(&Packet::Connect(culex_codec::packet::Connect {
            bridge: false,
            protocol: Protocol::V5,
            clean_start: true,
            keep_alive: 60,
            client_id: "twice",
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }));
        let f = c.recv();
        let Packet::Disconnect(d) = f.packet() else {
            panic!("expected DISCONNECT");
        };
        assert_eq!(d.reason, ReasonCode::ProtocolError);
        let text = d.properties.reason_string;
        assert_eq!(text.is_some(), expect_text, "{problem_info:?}: {text:?}");
    }
}
