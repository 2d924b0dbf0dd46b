//! `culex store dump` prints what the store holds.

use std::process::ExitCode;

use culex_store::{dump, store_main, Durability, DurableStore, OutboundPhase, Qos, QueuedMessage};

use crate::{msg, msg_with_props, temp_store};

#[test]
fn dump_lists_every_record() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    store.retained_set(msg_with_props("home/temp"));
    store.retained_set(msg("bin", "\u{0}\u{1}", Qos::AtMostOnce, true));
    store.session_put("dev-1", None);
    store.subscription_put("dev-1", "home/#", 1, Some(3));
    store.queued_add(
        "dev-1",
        QueuedMessage {
            qos: Qos::AtLeastOnce,
            message: msg("home/door", "open", Qos::AtLeastOnce, false),
        },
    );
    store.outbound_put("dev-1", 12, OutboundPhase::AwaitingComp, None);
    store.inbound_qos2("dev-1", 4, true);
    store.close().unwrap();

    let mut out = Vec::new();
    dump(&path, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    for needle in [
        "Retained messages: 2",
        "'home/temp' qos 2 retain 1",
        "content-type 'application/json'",
        "user 'a'='1' user 'a'='2'",
        "payload (2 bytes) 0x0001",
        "Sessions: 1",
        "Client 'dev-1': expiry never",
        "Subscription 'home/#': qos 1, options 0x01, identifier 3",
        "Queued #1 (deliver at qos 1): 'home/door' qos 1 retain 0",
        "payload (4 bytes) 'open'",
        "Outbound mid 12: awaiting PUBCOMP",
        "Inbound QoS 2 mid 4: awaiting PUBREL",
        "Summary: 2 retained, 1 sessions, 1 subscriptions, 1 queued, 2 in flight, 0 unreadable",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn dump_fails_cleanly_on_a_missing_or_locked_store() {
    let (_dir, path) = temp_store();
    let mut out = Vec::new();
    assert!(dump(&path, &mut out).is_err(), "missing file");
    let (_store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    let err = dump(&path, &mut out).unwrap_err();
    assert!(matches!(err, culex_store::StoreError::Locked(_)), "{err}");
}

#[test]
fn store_main_handles_dump_and_refuses_anything_else() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    store.close().unwrap();
    assert_eq!(
        store_main(vec!["dump".into(), path.clone().into()]),
        ExitCode::SUCCESS
    );
    assert_eq!(store_main(vec!["dump".into()]), ExitCode::FAILURE);
    assert_eq!(
        store_main(vec!["load".into(), path.into()]),
        ExitCode::FAILURE
    );
    assert_eq!(store_main(vec![]), ExitCode::FAILURE);
}

#[test]
fn dump_reads_a_store_left_by_a_killed_process() {
    let (_dir, path) = temp_store();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_culex-store-crash-writer"))
        .arg(&path)
        .arg("0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first acknowledged step, then kill -9.
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    assert!(line.starts_with("ok 0 "), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut out = Vec::new();
    dump(&path, &mut out).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the dump changes nothing"
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("not closed cleanly"), "{text}");
    assert!(text.contains("'r/0/0' qos 1 retain 1"), "{text}");
    assert!(text.contains("Client 'c0'"), "{text}");
}
