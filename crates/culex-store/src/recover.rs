//! Opening a store whatever state it is in: restore what is readable, set
//! aside what is not, and say so.

use std::fmt;
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use redb::{Database, DatabaseError, Durability, ReadOnlyDatabase, StorageError};

use crate::engine::{self, BadRecord, ReadBack};
use crate::record::{StoredMessage, StoredSession};
use crate::StoreError;

/// The state found in a store when it was opened.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Retained messages, ordered by topic.
    pub retained: Vec<StoredMessage>,
    /// Sessions, ordered by client id, each with its subscriptions, queue
    /// (oldest first), in-flight state and delayed will.
    pub sessions: Vec<StoredSession>,
    /// What had to be set aside to start; empty for a healthy store.
    pub warnings: Vec<Warning>,
}

/// Something damaged that was set aside while opening a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The store file could not be opened or read completely. It was moved
    /// to `moved_to`, and a fresh store holds the `salvaged` records that
    /// could still be read from it.
    FileSetAside {
        /// Where the damaged file now is.
        moved_to: PathBuf,
        /// What the engine reported.
        reason: String,
        /// How many records were carried over into the fresh store.
        salvaged: usize,
    },
    /// The file failed its integrity check and the engine repaired it; the
    /// last commits before the damage may be lost.
    Repaired,
    /// Records of one table could not be decoded. They were removed from the
    /// store and written (as hex) to `moved_to`.
    RecordsSetAside {
        /// The table they were in.
        table: &'static str,
        /// How many.
        count: usize,
        /// The side file holding them.
        moved_to: PathBuf,
        /// Why the first of them could not be decoded.
        first_error: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::FileSetAside {
                moved_to,
                reason,
                salvaged,
            } => write!(
                f,
                "damaged store file moved to {} ({reason}); {salvaged} readable records kept",
                moved_to.display()
            ),
            Warning::Repaired => write!(
                f,
                "store file failed its integrity check and was repaired; recent changes may be lost"
            ),
            Warning::RecordsSetAside {
                table,
                count,
                moved_to,
                first_error,
            } => write!(
                f,
                "{count} unreadable {table} records set aside in {} (first: {first_error})",
                moved_to.display()
            ),
        }
    }
}

/// How opening the file failed.
enum OpenFailure {
    /// Another process holds it.
    Locked,
    /// The file system refused (permissions, missing directory, …): moving
    /// the file aside would not help.
    Io(std::io::Error),
    /// The file is damaged.
    Damaged(String),
}

/// The engine's page cache. The broker keeps its working state in memory
/// and reads the store only at start-up, so a large cache (redb's default is
/// 1 GiB) would only double the memory of a big retained set.
const CACHE_BYTES: usize = 64 << 20;

fn try_open(path: &Path) -> Result<Database, OpenFailure> {
    match catch_unwind(|| Database::builder().set_cache_size(CACHE_BYTES).create(path)) {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch)) => {
            Err(OpenFailure::Locked)
        }
        Ok(Err(DatabaseError::Storage(StorageError::Io(e))))
            if matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ReadOnlyFilesystem
                    | std::io::ErrorKind::StorageFull
                    | std::io::ErrorKind::IsADirectory
            ) =>
        {
            Err(OpenFailure::Io(e))
        }
        Ok(Err(e)) => Err(OpenFailure::Damaged(e.to_string())),
        Err(panic) => Err(OpenFailure::Damaged(panic_message(&panic))),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("engine panicked: {what}")
}

fn open_error(path: &Path, failure: OpenFailure) -> StoreError {
    match failure {
        OpenFailure::Locked => StoreError::Locked(path.to_path_buf()),
        OpenFailure::Io(source) => StoreError::Io {
            path: path.to_path_buf(),
            source,
        },
        OpenFailure::Damaged(message) => StoreError::Engine {
            path: path.to_path_buf(),
            message,
        },
    }
}

/// Opens `path`, restores it, sets aside what is damaged. Returns the open
/// database, what it holds, and the next queued-message sequence number.
pub(crate) fn open_and_recover(path: &Path) -> Result<(Database, Recovered, u64), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut warnings = Vec::new();
    let mut db = match try_open(path) {
        Ok(db) => db,
        Err(OpenFailure::Damaged(reason)) => {
            // The engine cannot even open it: try to read it read-only before
            // giving up on its contents.
            let (db, warning) = set_aside_and_salvage(path, reason, None)?;
            warnings.push(warning);
            db
        }
        Err(other) => return Err(open_error(path, other)),
    };
    // Page checksums are verified on every start, so that corruption is found
    // here rather than as garbage later.
    match catch_unwind(AssertUnwindSafe(|| db.check_integrity())) {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => warnings.push(Warning::Repaired),
        Ok(Err(e)) => {
            drop(db);
            let (fresh, warning) = set_aside_and_salvage(path, e.to_string(), None)?;
            warnings.push(warning);
            db = fresh;
        }
        Err(panic) => {
            drop(db);
            let (fresh, warning) = set_aside_and_salvage(path, panic_message(&panic), None)?;
            warnings.push(warning);
            db = fresh;
        }
    }
    let mut rb = read_tolerantly(&db);
    if !rb.engine_errors.is_empty() {
        drop(db);
        let reason = rb.engine_errors.join("; ");
        let (fresh, warning) = set_aside_and_salvage(path, reason, Some(&rb))?;
        warnings.push(warning);
        db = fresh;
    }
    if !rb.bad.is_empty() {
        let side = side_file_path(path);
        write_bad_records(&side, &rb.bad).map_err(|source| StoreError::Io {
            path: side.clone(),
            source,
        })?;
        let run = || -> Result<(), engine::EngineError> {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            engine::remove_bad(&txn, &rb.bad)?;
            txn.commit()?;
            Ok(())
        };
        run().map_err(|e| engine_error(path, e))?;
        for (_, table) in engine::TABLES {
            let mut of_table = rb.bad.iter().filter(|b| b.table == table);
            if let Some(first) = of_table.next() {
                warnings.push(Warning::RecordsSetAside {
                    table,
                    count: 1 + of_table.count(),
                    moved_to: side.clone(),
                    first_error: first.error.to_string(),
                });
            }
        }
    }
    let run = || -> Result<(), engine::EngineError> {
        let txn = db.begin_write()?;
        engine::create_tables(&txn)?;
        txn.commit()?;
        Ok(())
    };
    run().map_err(|e| engine_error(path, e))?;
    let next_seq = rb.next_seq;
    let recovered = Recovered {
        retained: std::mem::take(&mut rb.retained),
        sessions: std::mem::take(&mut rb.sessions).into_values().collect(),
        warnings,
    };
    Ok((db, recovered, next_seq))
}

fn engine_error(path: &Path, e: engine::EngineError) -> StoreError {
    StoreError::Engine {
        path: path.to_path_buf(),
        message: e.0,
    }
}

/// Reads everything, turning an engine panic into an engine error.
fn read_tolerantly(db: &impl redb::ReadableDatabase) -> ReadBack {
    catch_unwind(AssertUnwindSafe(|| engine::read_all(db))).unwrap_or_else(|panic| ReadBack {
        engine_errors: vec![panic_message(&panic)],
        ..ReadBack::default()
    })
}

/// Moves the damaged file at `path` aside, creates a fresh store there and
/// carries into it what can still be read: `known` when the caller already
/// read it, otherwise whatever a read-only open of the moved file yields.
fn set_aside_and_salvage(
    path: &Path,
    reason: String,
    known: Option<&ReadBack>,
) -> Result<(Database, Warning), StoreError> {
    let moved_to = set_aside(path, "")?;
    let salvaged_here;
    let salvage = match known {
        Some(rb) => rb,
        None => {
            salvaged_here = match catch_unwind(|| ReadOnlyDatabase::open(&moved_to)) {
                Ok(Ok(old)) => read_tolerantly(&old),
                _ => ReadBack::default(),
            };
            &salvaged_here
        }
    };
    let db = try_open(path).map_err(|f| open_error(path, f))?;
    let run = || -> Result<(), engine::EngineError> {
        let txn = db.begin_write()?;
        engine::create_tables(&txn)?;
        engine::write_all(&txn, salvage)?;
        txn.commit()?;
        Ok(())
    };
    run().map_err(|e| engine_error(path, e))?;
    Ok((
        db,
        Warning::FileSetAside {
            moved_to,
            reason,
            salvaged: salvage.record_count(),
        },
    ))
}

/// A free name `NAME.damaged-UNIXSECS[-N]SUFFIX` beside `path`.
fn damaged_name(path: &Path, suffix: &str) -> PathBuf {
    let secs = crate::unix_ms_now() / 1000;
    let base = path
        .file_name()
        .map_or_else(|| "store".to_owned(), |n| n.to_string_lossy().into_owned());
    let mut n = 0u32;
    loop {
        let name = if n == 0 {
            format!("{base}.damaged-{secs}{suffix}")
        } else {
            format!("{base}.damaged-{secs}-{n}{suffix}")
        };
        let candidate = path.with_file_name(name);
        if !candidate.exists() {
            return candidate;
        }
        n = n.saturating_add(1);
    }
}

/// Moves the store file aside; returns where it went.
fn set_aside(path: &Path, suffix: &str) -> Result<PathBuf, StoreError> {
    let to = damaged_name(path, suffix);
    std::fs::rename(path, &to).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(to)
}

fn side_file_path(path: &Path) -> PathBuf {
    damaged_name(path, ".records")
}

fn hex(b: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        let _ = write!(s, "{byte:02x}");
    }
    s
}

/// Writes undecodable records as text, one per line, and syncs the file
/// before they are removed from the store.
fn write_bad_records(side: &Path, bad: &[BadRecord]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(side)?;
    writeln!(f, "# culex store: records that could not be decoded")?;
    writeln!(f, "# table<TAB>error<TAB>key (hex)<TAB>value (hex)")?;
    for b in bad {
        writeln!(
            f,
            "{}\t{}\t{}\t{}",
            b.table,
            b.error,
            hex(&b.key),
            hex(&b.value)
        )?;
    }
    f.sync_all()
}
