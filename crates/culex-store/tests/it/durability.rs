//! Tickets, group commit, the two durability modes and mosquitto's options.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use culex_store::{Durability, DurabilityError, DurableStore, Qos, QueuedMessage};

use crate::{msg, temp_store};

#[test]
fn sync_mode_makes_a_ticket_durable_and_keeps_it() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    let t = store.retained_set(msg("a", "1", Qos::AtLeastOnce, true));
    store
        .wait_durable_timeout(t, Duration::from_secs(10))
        .unwrap();
    assert_eq!(store.is_durable(t), Some(Ok(())));
    // Dropping without close must not lose what was durable.
    drop(store);
    let (_store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(r.retained.len(), 1);
}

#[test]
fn tickets_grow_and_many_mutations_share_a_commit() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    let mut last = store.last_ticket();
    for i in 0..2000 {
        let t = store.queued_add(
            "c",
            QueuedMessage {
                qos: Qos::AtLeastOnce,
                message: msg("t", &i.to_string(), Qos::AtLeastOnce, false),
            },
        );
        assert!(t > last);
        last = t;
    }
    store
        .wait_durable_timeout(last, Duration::from_secs(20))
        .unwrap();
    let commits = store.commit_count();
    // Each commit is a flush (milliseconds); submitting takes microseconds,
    // so 2000 mutations share far fewer commits (group commit).
    assert!(
        (1..500).contains(&commits),
        "{commits} commits for 2000 mutations"
    );
    // Every commit is timed: the histogram counts as many.
    let latency = store.commit_latency();
    assert_eq!(latency.count, store.commit_count());
    assert!(latency.sum_us > 0);
    assert!(latency.cumulative.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn on_durable_calls_back_after_the_commit_and_at_once_when_already_durable() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    let (tx, rx) = mpsc::channel();
    let t = store.retained_set(msg("a", "1", Qos::AtLeastOnce, true));
    let tx1 = tx.clone();
    store.on_durable(t, move |r| tx1.send(("first", r)).unwrap());
    let (which, outcome) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!((which, outcome), ("first", Ok(())));
    assert_eq!(store.is_durable(t), Some(Ok(())));
    // Already durable: called on this thread before on_durable returns.
    store.on_durable(t, move |r| tx.send(("second", r)).unwrap());
    assert_eq!(rx.try_recv().unwrap(), ("second", Ok(())));
}

#[test]
fn periodic_mode_waits_for_its_window_unless_flushed() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Periodic(5_000)).unwrap();
    let t = store.retained_set(msg("a", "1", Qos::AtLeastOnce, true));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        store.is_durable(t),
        None,
        "not committed before the window ends"
    );
    assert_eq!(
        store.wait_durable_timeout(t, Duration::from_millis(100)),
        Err(DurabilityError::TimedOut)
    );
    let started = Instant::now();
    store.flush().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "flush commits at once"
    );
    assert_eq!(store.is_durable(t), Some(Ok(())));
}

#[test]
fn periodic_mode_commits_on_its_timer() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Periodic(100)).unwrap();
    let t = store.retained_set(msg("a", "1", Qos::AtLeastOnce, true));
    store
        .wait_durable_timeout(t, Duration::from_secs(10))
        .unwrap();
}

#[test]
fn close_commits_what_is_pending() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Periodic(60_000)).unwrap();
    store.retained_set(msg("a", "1", Qos::AtLeastOnce, true));
    store.session_put("c", Some(5));
    store.close().unwrap();
    let (_store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert_eq!((r.retained.len(), r.sessions.len()), (1, 1));
}

#[test]
fn a_second_open_of_the_same_store_is_refused_not_set_aside() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    let t = store.retained_set(msg("a", "1", Qos::AtLeastOnce, true));
    store.wait_durable(t).unwrap();
    let err = DurableStore::open(&path, Durability::Sync).unwrap_err();
    assert!(matches!(err, culex_store::StoreError::Locked(_)), "{err}");
    store.close().unwrap();
    let (_store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(r.retained.len(), 1);
    assert!(r.warnings.is_empty());
}

#[test]
fn mosquitto_autosave_options_map_onto_modes() {
    let table = [
        (None, None, Durability::Sync),
        (Some(0), None, Durability::Sync),
        (Some(1800), None, Durability::Periodic(1_800_000)),
        (Some(1800), Some(false), Durability::Periodic(1_800_000)),
        (Some(5), Some(true), Durability::Sync),
        (None, Some(true), Durability::Sync),
        (Some(u64::MAX), None, Durability::Periodic(u32::MAX)),
    ];
    for (interval, on_changes, want) in table {
        assert_eq!(
            Durability::from_mosquitto(interval, on_changes),
            want,
            "autosave_interval {interval:?}, autosave_on_changes {on_changes:?}"
        );
    }
    assert_eq!(Durability::default(), Durability::Sync);
}

#[test]
fn durability_parses_from_config_values() {
    assert_eq!("sync".parse(), Ok(Durability::Sync));
    assert_eq!("periodic 250".parse(), Ok(Durability::Periodic(250)));
    assert_eq!("periodic:5".parse(), Ok(Durability::Periodic(5)));
    for bad in [
        "",
        "periodic",
        "periodic 0",
        "periodic -1",
        "fast",
        "periodic 1ms",
    ] {
        assert!(bad.parse::<Durability>().is_err(), "{bad:?}");
    }
}

#[test]
fn store_path_follows_mosquittos_options() {
    use std::path::{Path, PathBuf};
    assert_eq!(
        culex_store::store_path(None, None),
        PathBuf::from("culex.db")
    );
    assert_eq!(
        culex_store::store_path(Some(Path::new("/var/lib/mosquitto/")), None),
        PathBuf::from("/var/lib/mosquitto/culex.db")
    );
    assert_eq!(
        culex_store::store_path(Some(Path::new("/data")), Some("state.db")),
        PathBuf::from("/data/state.db")
    );
}

#[test]
fn a_thread_can_tell_whether_it_submitted_anything() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Sync).unwrap();
    let before = DurableStore::submitted_by_this_thread();
    assert_eq!(DurableStore::submitted_by_this_thread(), before);
    store.retained_clear("x");
    store.session_put("c", None);
    assert_eq!(
        DurableStore::submitted_by_this_thread(),
        before.wrapping_add(2)
    );
    // Another thread's submissions do not count here.
    let other = std::thread::scope(|s| {
        s.spawn(|| {
            store.retained_clear("y");
            DurableStore::submitted_by_this_thread()
        })
        .join()
        .unwrap()
    });
    assert_eq!(other, 1);
    assert_eq!(
        DurableStore::submitted_by_this_thread(),
        before.wrapping_add(2)
    );
}

/// In `Periodic` mode a large batch is committed before its period ends, so
/// the mutations waiting in memory stay bounded while the disk keeps up.
#[test]
fn periodic_mode_commits_a_large_batch_early() {
    let (_dir, path) = temp_store();
    let (store, _) = DurableStore::open(&path, Durability::Periodic(60_000)).unwrap();
    let mut early = None;
    for i in 0..culex_store::EARLY_COMMIT_OPS + 100 {
        let t = store.retained_set(msg(&format!("t/{i}"), "1", Qos::AtMostOnce, true));
        if i + 1 == culex_store::EARLY_COMMIT_OPS {
            early = Some(t);
        }
        assert!(store.pending_len() <= culex_store::MAX_PENDING_OPS);
    }
    // Well inside the 60 s period.
    store
        .wait_durable_timeout(early.unwrap(), Duration::from_secs(10))
        .unwrap();
}
