//! Damaged stores never prevent start-up: what is damaged is set aside and
//! reported, what is readable is kept.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use culex_store::{
    Durability, DurableStore, Qos, QueuedMessage, Recovered, StoredMessage, Warning,
};

use crate::{msg, temp_store};

const N: usize = 3000;

fn written(i: usize) -> StoredMessage {
    msg(
        &format!("t/{i:05}"),
        &format!("payload {i}"),
        Qos::AtLeastOnce,
        true,
    )
}

fn fill(path: &Path) {
    let (store, _) = DurableStore::open(path, Durability::Sync).unwrap();
    for i in 0..N {
        store.retained_set(written(i));
    }
    store.session_put("s", Some(60));
    store.queued_add(
        "s",
        QueuedMessage {
            qos: Qos::AtLeastOnce,
            message: msg("q", "1", Qos::AtLeastOnce, false),
        },
    );
    store.close().unwrap();
}

/// Everything restored is something that was written: damage never turns
/// into garbage records.
fn assert_only_written(r: &Recovered) {
    let all: BTreeSet<_> = (0..N).map(|i| format!("{:?}", written(i))).collect();
    for m in &r.retained {
        assert!(all.contains(&format!("{m:?}")), "unexpected record {m:?}");
    }
}

/// The store still works after recovery: a write survives a reopen, and the
/// fresh store is healthy.
fn assert_usable(path: &Path, store: DurableStore) {
    let t = store.retained_set(msg("after/recovery", "ok", Qos::AtLeastOnce, true));
    store.wait_durable(t).unwrap();
    store.close().unwrap();
    let (_store, r) = DurableStore::open(path, Durability::Sync).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.retained.iter().any(|m| m.topic == "after/recovery"));
}

fn set_aside_file(r: &Recovered) -> Option<(&Path, usize)> {
    r.warnings.iter().find_map(|w| match w {
        Warning::FileSetAside {
            moved_to, salvaged, ..
        } => Some((moved_to.as_path(), *salvaged)),
        _ => None,
    })
}

#[test]
fn truncated_file_is_set_aside_and_start_up_succeeds() {
    let (_dir, path) = temp_store();
    fill(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();

    let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    let (moved, salvaged) = set_aside_file(&r).unwrap_or_else(|| panic!("{:?}", r.warnings));
    assert_eq!(
        std::fs::metadata(moved).unwrap().len(),
        len / 2,
        "damaged file kept aside"
    );
    assert!(moved
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("culex.db.damaged-"));
    assert_eq!(
        salvaged,
        r.retained.len() + r.sessions.iter().map(|s| 1 + s.queued.len()).sum::<usize>()
    );
    assert_only_written(&r);
    assert!(r.warnings.iter().all(|w| !w.to_string().is_empty()));
    assert_usable(&path, store);
}

#[test]
fn corrupted_bytes_are_detected_and_set_aside() {
    let (_dir, path) = temp_store();
    fill(&path);
    let len = std::fs::metadata(&path).unwrap().len();
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    // Scribble over the middle of every page after the header.
    let mut offset = 4096 + 2000;
    while offset + 16 < len {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(&[0xa5; 16]).unwrap();
        offset += 4096;
    }
    f.sync_all().unwrap();
    drop(f);

    let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert!(!r.warnings.is_empty(), "corruption went unnoticed");
    assert_only_written(&r);
    assert_usable(&path, store);
}

#[test]
fn a_file_that_is_not_a_store_is_set_aside() {
    let (_dir, path) = temp_store();
    std::fs::write(
        &path,
        b"this is mosquitto.db, or a text file, or anything else\n".repeat(200),
    )
    .unwrap();
    let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    let (moved, salvaged) = set_aside_file(&r).unwrap_or_else(|| panic!("{:?}", r.warnings));
    assert_eq!(salvaged, 0);
    assert!(std::fs::read(moved)
        .unwrap()
        .starts_with(b"this is mosquitto.db"));
    assert!(r.retained.is_empty() && r.sessions.is_empty());
    assert_usable(&path, store);
}

#[test]
fn undecodable_records_are_set_aside_and_the_rest_kept() {
    let (_dir, path) = temp_store();
    fill(&path);
    {
        // Write records this version cannot decode straight into the engine.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("retained");
            let mut t = txn.open_table(def).unwrap();
            t.insert(b"t/00007".as_slice(), [9u8, 1, 2].as_slice())
                .unwrap();
            t.insert(b"bad/truncated".as_slice(), [1u8, 1].as_slice())
                .unwrap();
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("queued");
            let mut t = txn.open_table(def).unwrap();
            t.insert([0u8, 40, b'x'].as_slice(), [1u8].as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert_eq!(
        r.retained.len(),
        N - 1,
        "all but the overwritten record kept"
    );
    assert!(!r.retained.iter().any(|m| m.topic == "t/00007"));
    assert_only_written(&r);
    assert_eq!(r.sessions.len(), 1);
    assert_eq!(r.sessions[0].queued.len(), 1);
    let mut tables = Vec::new();
    for w in &r.warnings {
        match w {
            Warning::RecordsSetAside {
                table,
                count,
                moved_to,
                first_error,
            } => {
                tables.push((*table, *count));
                assert!(!first_error.is_empty());
                let side = std::fs::read_to_string(moved_to).unwrap();
                assert!(side.contains(table), "{side}");
            }
            other => panic!("unexpected warning {other}"),
        }
    }
    tables.sort_unstable();
    assert_eq!(tables, vec![("queued", 1), ("retained", 2)]);
    assert_usable(&path, store);
}

#[test]
fn an_empty_file_starts_an_empty_store() {
    let (_dir, path) = temp_store();
    std::fs::write(&path, b"").unwrap();
    let (store, r) = DurableStore::open(&path, Durability::Sync).unwrap();
    assert!(r.retained.is_empty() && r.sessions.is_empty());
    assert_usable(&path, store);
}
