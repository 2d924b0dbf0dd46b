//! Test helper for the crash tests of culex-store (`tests/it/crash.rs`), not
//! a user tool: `culex-store-crash-writer PATH ROUND` opens the store at
//! PATH and writes records in a loop until it is killed, printing a line to
//! stdout for each record once it is durable. The test kills it with
//! SIGKILL at a random moment and checks that every printed record survived.
//!
//! Each step `i` writes, for client `c{ROUND}`, in this order:
//! - a queued QoS 1 message whose payload is `{ROUND}:{i}`;
//! - inbound QoS 2 packet id `(i % 100) + 1`, pending when `(i / 100)` is
//!   even and released otherwise, so that each id's state tells which steps
//!   committed;
//! - every 3rd step (`i % 3 == 2`), removes the oldest queued message;
//! - last, a retained message on `r/{ROUND}/{i}`, the step's marker.
//!
//! Printed lines: `ok ROUND I` once step I is durable.

use std::io::Write;
use std::process::ExitCode;

use bytes::Bytes;
use culex_store::{Durability, DurableStore, Qos, QueuedMessage, StoredMessage};

fn message(topic: String, payload: String, retain: bool) -> StoredMessage {
    StoredMessage {
        topic,
        payload: Bytes::from(payload),
        qos: Qos::AtLeastOnce,
        retain,
        props: None,
        received_unix_ms: culex_store::unix_ms_now(),
        origin: None,
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(round)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: culex-store-crash-writer PATH ROUND");
        return ExitCode::FAILURE;
    };
    let (store, recovered) = match DurableStore::open(path, Durability::Sync) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("open: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client = format!("c{round}");
    eprintln!(
        "opened with {} retained, {} warnings",
        recovered.retained.len(),
        recovered.warnings.len()
    );
    store.session_put(&client, None);
    let mut out = std::io::stdout().lock();
    // Bounded: the test kills it long before, and it must never run forever.
    for i in 0u64..1_000_000 {
        store.queued_add(
            &client,
            QueuedMessage {
                qos: Qos::AtLeastOnce,
                message: message(format!("q/{round}"), format!("{round}:{i}"), false),
            },
        );
        let pid = u16::try_from(i % 100).unwrap_or(0) + 1;
        store.inbound_qos2(&client, pid, (i / 100).is_multiple_of(2));
        if i % 3 == 2 {
            store.queued_remove_front(&client);
        }
        // Last, so that a stored r/ROUND/I proves every earlier op of step I.
        store.retained_set(message(
            format!("r/{round}/{i}"),
            format!("{round}:{i}"),
            true,
        ));
        let ticket = store.last_ticket();
        // Only every 4th step is awaited (and the first ones, so that
        // something is acknowledged early): commits hold several steps.
        if i % 4 == 3 || i < 4 {
            if let Err(e) = store.wait_durable(ticket) {
                eprintln!("durability: {e}");
                return ExitCode::FAILURE;
            }
            for j in i.saturating_sub(if i < 4 { 0 } else { 3 })..=i {
                let _ = writeln!(out, "ok {round} {j}");
            }
            let _ = out.flush();
        }
    }
    ExitCode::SUCCESS
}
