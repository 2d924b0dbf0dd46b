//! Start-up with many retained messages stays quick.

use std::time::{Duration, Instant};

use culex_store::{Durability, DurableStore, Qos};

use crate::{msg, temp_store};

#[test]
fn hundred_thousand_retained_messages_restore_quickly() {
    const N: usize = 100_000;
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Periodic(1_000)).unwrap();
    for i in 0..N {
        store.retained_set(msg(
            &format!("site/{:03}/dev-{i:06}/temp", i % 1000),
            "21.5",
            Qos::AtMostOnce,
            true,
        ));
    }
    store.close().unwrap();
    let started = Instant::now();
    let (_store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    let took = started.elapsed();
    assert_eq!(r.retained.len(), N);
    assert!(r.warnings.is_empty());
    assert!(
        r.retained.windows(2).all(|w| w[0].topic < w[1].topic),
        "ordered by topic"
    );
    // Generous for a debug build on a loaded 2-core machine (release: ~60 ms).
    assert!(took < Duration::from_secs(20), "restore took {took:?}");
}
