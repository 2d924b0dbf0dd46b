//! `culex store dump PATH`: the store's contents as text, in the spirit of
//! mosquitto_db_dump. Opens the file read-only and changes nothing, not even
//! damaged records (it lists them instead).

use std::ffi::OsString;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use redb::{DatabaseError, ReadOnlyDatabase};

use crate::engine;
use crate::record::{OutboundPhase, QueuedMessage, StoredMessage, StoredProps};
use crate::StoreError;

/// Payload bytes shown before a dump elides the rest.
const PAYLOAD_SHOWN: usize = 256;

/// Prints every record of the store at `path` to `out`, then a summary line.
/// Fails when the file cannot be opened (missing, locked by a running
/// broker, or too damaged to open); records that cannot be decoded are
/// listed as such.
pub fn dump(path: &Path, out: &mut impl Write) -> Result<(), StoreError> {
    let db = match catch_unwind(|| ReadOnlyDatabase::open(path)) {
        Ok(Ok(db)) => db,
        Ok(Err(DatabaseError::RepairAborted)) => {
            // Not closed cleanly (the broker was killed): the engine must
            // repair before reading, which a read-only open cannot do.
            // Repair a copy and leave the original as it is.
            return dump_repaired_copy(path, out);
        }
        Ok(Err(DatabaseError::DatabaseAlreadyOpen)) => {
            return Err(StoreError::Locked(path.to_path_buf()))
        }
        Ok(Err(DatabaseError::Storage(redb::StorageError::Io(source)))) => {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(Err(e)) => {
            return Err(StoreError::Engine {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
        }
        Err(_) => {
            return Err(StoreError::Engine {
                path: path.to_path_buf(),
                message: "the engine could not open the file".into(),
            })
        }
    };
    let rb = read(&db);
    write_dump(path, &rb, out, "").map_err(|source| StoreError::Io {
        path: PathBuf::from("<output>"),
        source,
    })
}

fn dump_repaired_copy(path: &Path, out: &mut impl Write) -> Result<(), StoreError> {
    let copy = std::env::temp_dir().join(format!(
        "culex-store-dump-{}-{}.db",
        std::process::id(),
        crate::unix_ms_now()
    ));
    let io = |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::copy(path, &copy).map_err(io)?;
    let result = match catch_unwind(|| redb::Database::create(&copy)) {
        Ok(Ok(db)) => {
            let rb = read(&db);
            drop(db);
            write_dump(
                path,
                &rb,
                out,
                " (not closed cleanly; read from a repaired copy)",
            )
            .map_err(|source| StoreError::Io {
                path: PathBuf::from("<output>"),
                source,
            })
        }
        Ok(Err(e)) => Err(StoreError::Engine {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
        Err(_) => Err(StoreError::Engine {
            path: path.to_path_buf(),
            message: "the engine could not repair a copy of the file".into(),
        }),
    };
    let _ = std::fs::remove_file(&copy);
    result
}

fn read(db: &impl redb::ReadableDatabase) -> engine::ReadBack {
    catch_unwind(AssertUnwindSafe(|| engine::read_all(db))).unwrap_or_else(|_| engine::ReadBack {
        engine_errors: vec!["the engine panicked while reading".into()],
        ..engine::ReadBack::default()
    })
}

fn write_dump(
    path: &Path,
    rb: &engine::ReadBack,
    out: &mut impl Write,
    note: &str,
) -> std::io::Result<()> {
    writeln!(out, "Store: {}{note}", path.display())?;
    writeln!(out)?;
    writeln!(out, "Retained messages: {}", rb.retained.len())?;
    for m in &rb.retained {
        write!(out, "  ")?;
        write_message(out, m)?;
    }
    writeln!(out)?;
    writeln!(out, "Sessions: {}", rb.sessions.len())?;
    for s in rb.sessions.values() {
        let expiry = match s.expiry_interval {
            Some(secs) => format!("{secs} s"),
            None => "never".into(),
        };
        write!(
            out,
            "  Client '{}': expiry {expiry}",
            s.client_id.escape_debug()
        )?;
        if s.has_record {
            writeln!(out, ", updated {}", s.updated_unix_ms)?;
        } else {
            writeln!(out, " (no session record)")?;
        }
        for sub in &s.subscriptions {
            write!(
                out,
                "    Subscription '{}': qos {}, options 0x{:02x}",
                sub.filter.escape_debug(),
                sub.options & 0b11,
                sub.options
            )?;
            match sub.identifier {
                Some(id) => writeln!(out, ", identifier {id}")?,
                None => writeln!(out)?,
            }
        }
        for (i, q) in s.queued.iter().enumerate() {
            write!(
                out,
                "    Queued #{} (deliver at qos {}): ",
                i + 1,
                q.qos.as_u8()
            )?;
            write_message(out, &q.message)?;
        }
        for o in &s.outbound {
            let phase = match o.phase {
                OutboundPhase::AwaitingAck => "awaiting PUBACK/PUBREC",
                OutboundPhase::AwaitingComp => "awaiting PUBCOMP",
            };
            write!(out, "    Outbound mid {}: {phase}", o.packet_id)?;
            match &o.message {
                Some(QueuedMessage { qos, message }) => {
                    write!(out, ", qos {}: ", qos.as_u8())?;
                    write_message(out, message)?;
                }
                None => writeln!(out)?,
            }
        }
        for id in &s.inbound_qos2 {
            writeln!(out, "    Inbound QoS 2 mid {id}: awaiting PUBREL")?;
        }
        if let Some(w) = &s.will {
            write!(
                out,
                "    Delayed will, publish at {}: ",
                w.publish_at_unix_ms
            )?;
            write_message(out, &w.message)?;
        }
    }
    if !rb.bad.is_empty() {
        writeln!(out)?;
        writeln!(out, "Unreadable records: {}", rb.bad.len())?;
        for b in &rb.bad {
            writeln!(
                out,
                "  {}: {} ({} key bytes, {} value bytes)",
                b.table,
                b.error,
                b.key.len(),
                b.value.len()
            )?;
        }
    }
    for e in &rb.engine_errors {
        writeln!(out, "Engine error: {e}")?;
    }
    writeln!(out)?;
    let queued: usize = rb.sessions.values().map(|s| s.queued.len()).sum();
    let subs: usize = rb.sessions.values().map(|s| s.subscriptions.len()).sum();
    let inflight: usize = rb
        .sessions
        .values()
        .map(|s| s.outbound.len() + s.inbound_qos2.len())
        .sum();
    writeln!(
        out,
        "Summary: {} retained, {} sessions, {subs} subscriptions, {queued} queued, {inflight} in flight, {} unreadable",
        rb.retained.len(),
        rb.sessions.len(),
        rb.bad.len() + rb.engine_errors.len()
    )
}

fn write_message(out: &mut impl Write, m: &StoredMessage) -> std::io::Result<()> {
    write!(
        out,
        "'{}' qos {} retain {} received {}",
        m.topic.escape_debug(),
        m.qos.as_u8(),
        u8::from(m.retain),
        m.received_unix_ms
    )?;
    if let Some(origin) = &m.origin {
        write!(out, " from '{}'", origin.escape_debug())?;
    }
    if let Some(p) = &m.props {
        write_props(out, p)?;
    }
    write!(out, " payload ({} bytes) ", m.payload.len())?;
    write_payload(out, &m.payload)?;
    writeln!(out)
}

fn write_props(out: &mut impl Write, p: &StoredProps) -> std::io::Result<()> {
    if let Some(v) = p.payload_format_indicator {
        write!(out, " format {v}")?;
    }
    if let Some(v) = p.message_expiry_interval {
        write!(out, " expiry {v} s")?;
    }
    if let Some(v) = &p.content_type {
        write!(out, " content-type '{}'", v.escape_debug())?;
    }
    if let Some(v) = &p.response_topic {
        write!(out, " response-topic '{}'", v.escape_debug())?;
    }
    if let Some(v) = &p.correlation_data {
        write!(out, " correlation ")?;
        write_payload(out, v)?;
    }
    for (k, v) in &p.user_properties {
        write!(out, " user '{}'='{}'", k.escape_debug(), v.escape_debug())?;
    }
    Ok(())
}

/// Text payloads quoted and escaped, binary ones in hex; long ones cut.
fn write_payload(out: &mut impl Write, payload: &[u8]) -> std::io::Result<()> {
    let shown = payload.get(..PAYLOAD_SHOWN).unwrap_or(payload);
    let elided = if shown.len() < payload.len() {
        "..."
    } else {
        ""
    };
    match std::str::from_utf8(shown) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t') =>
        {
            write!(out, "'{}'{elided}", text.escape_debug())
        }
        _ => {
            write!(out, "0x")?;
            for b in shown {
                write!(out, "{b:02x}")?;
            }
            write!(out, "{elided}")
        }
    }
}

const USAGE: &str = "Usage: culex store dump PATH\n\n\
    dump PATH  print the contents of the culex store file PATH (read-only)\n";

/// `culex store …`: `args` are the words after `culex store`. Handles
/// `dump PATH`; prints usage and returns 1 for anything else, and 1 when
/// the store cannot be read.
pub fn store_main(args: Vec<OsString>) -> ExitCode {
    let words: Vec<&std::ffi::OsStr> = args.iter().map(OsString::as_os_str).collect();
    match words.as_slice() {
        [cmd, path] if *cmd == "dump" => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let result = dump(Path::new(path), &mut out).and_then(|()| {
                out.flush().map_err(|source| StoreError::Io {
                    path: PathBuf::from("<output>"),
                    source,
                })
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    drop(out);
                    eprintln!("Error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        [h] if *h == "--help" || *h == "-h" || *h == "help" => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprint!("{USAGE}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_print_as_text_or_hex_and_are_cut() {
        let mut out = Vec::new();
        write_payload(&mut out, b"hi 'x'").unwrap();
        assert_eq!(out, b"'hi \\'x\\''");
        out.clear();
        write_payload(&mut out, &[0, 255]).unwrap();
        assert_eq!(out, b"0x00ff");
        out.clear();
        write_payload(&mut out, &[b'a'; PAYLOAD_SHOWN + 1]).unwrap();
        assert!(out.ends_with(b"a'..."));
    }
}
