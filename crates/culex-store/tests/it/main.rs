//! Integration tests of culex-store: records through close and reopen,
//! group commit and durability modes, kill -9 crash safety, damaged files,
//! restore of many retained messages, and the dump.

mod crash;
mod damaged;
mod dump;
mod durability;
mod restore;
mod roundtrip;

use bytes::Bytes;
use culex_store::{Qos, StoredMessage, StoredProps};

/// A plain message on `topic` carrying `payload`.
pub fn msg(topic: &str, payload: &str, qos: Qos, retain: bool) -> StoredMessage {
    StoredMessage {
        topic: topic.to_owned(),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        props: None,
        received_unix_ms: 1_764_000_000_000,
        origin: None,
    }
}

/// A message with every MQTT 5.0 property set.
pub fn msg_with_props(topic: &str) -> StoredMessage {
    StoredMessage {
        props: Some(StoredProps {
            payload_format_indicator: Some(1),
            message_expiry_interval: Some(3600),
            content_type: Some("application/json".into()),
            response_topic: Some("reply/here".into()),
            correlation_data: Some(Bytes::from_static(&[0, 1, 2, 255])),
            user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
        }),
        origin: Some("publisher-7".into()),
        ..msg(topic, "{\"t\":21.5}", Qos::ExactlyOnce, true)
    }
}

/// A store path inside a fresh temporary directory.
pub fn temp_store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("culex.db");
    (dir, path)
}
