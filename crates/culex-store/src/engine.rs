//! The redb side: table layout, applying a batch of mutations in one write
//! transaction, and reading everything back tolerantly.

use std::collections::BTreeMap;

use redb::{ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::record::{
    self, client_prefix, split_client_key, DecodeError, QueuedMessage, SessionValue, StoredMessage,
    StoredSession, StoredSubscription,
};
use crate::Op;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Topic → retained message.
pub(crate) const RETAINED: Def = TableDefinition::new("retained");
/// Client id → session record.
pub(crate) const SESSIONS: Def = TableDefinition::new("sessions");
/// Client prefix + filter → subscription options and identifier.
pub(crate) const SUBSCRIPTIONS: Def = TableDefinition::new("subscriptions");
/// Client prefix + sequence number (u64 BE) → queued message.
pub(crate) const QUEUED: Def = TableDefinition::new("queued");
/// Client prefix + packet id (u16 BE) → outbound phase and message.
pub(crate) const OUTBOUND: Def = TableDefinition::new("outbound");
/// Client prefix + packet id (u16 BE) → marker: inbound QoS 2 awaiting PUBREL.
pub(crate) const INBOUND: Def = TableDefinition::new("inbound_qos2");
/// Client id → delayed will.
pub(crate) const WILLS: Def = TableDefinition::new("wills");

/// Every table, with its name for reports.
pub(crate) const TABLES: [(Def, &str); 7] = [
    (RETAINED, "retained"),
    (SESSIONS, "sessions"),
    (SUBSCRIPTIONS, "subscriptions"),
    (QUEUED, "queued"),
    (OUTBOUND, "outbound"),
    (INBOUND, "inbound_qos2"),
    (WILLS, "wills"),
];

/// The error of any engine call, as text (the engine's error types differ per
/// call and are only ever reported).
#[derive(Debug, Clone)]
pub(crate) struct EngineError(pub(crate) String);

impl<E: Into<redb::Error>> From<E> for EngineError {
    fn from(e: E) -> EngineError {
        EngineError(e.into().to_string())
    }
}

/// The smallest key greater than every key starting with `prefix`, `None`
/// when there is none (the prefix is all 0xFF).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != u8::MAX {
            end.push(last.saturating_add(1));
            return Some(end);
        }
    }
    None
}

fn remove_prefix(
    t: &mut Table<'_, &'static [u8], &'static [u8]>,
    prefix: &[u8],
) -> Result<(), EngineError> {
    match prefix_end(prefix) {
        Some(end) => t.retain_in(prefix..end.as_slice(), |_, _| false)?,
        None => t.retain_in(prefix.., |_, _| false)?,
    }
    Ok(())
}

/// Creates every table, so that readers find them all.
pub(crate) fn create_tables(txn: &WriteTransaction) -> Result<(), EngineError> {
    for (def, _) in TABLES {
        txn.open_table(def)?;
    }
    Ok(())
}

/// Applies `ops` in order inside `txn`. `next_seq` numbers queued messages.
pub(crate) fn apply(
    txn: &WriteTransaction,
    ops: &[Op],
    next_seq: &mut u64,
) -> Result<(), EngineError> {
    let mut retained = txn.open_table(RETAINED)?;
    let mut sessions = txn.open_table(SESSIONS)?;
    let mut subs = txn.open_table(SUBSCRIPTIONS)?;
    let mut queued = txn.open_table(QUEUED)?;
    let mut outbound = txn.open_table(OUTBOUND)?;
    let mut inbound = txn.open_table(INBOUND)?;
    let mut wills = txn.open_table(WILLS)?;
    for op in ops {
        match op {
            Op::RetainedSet(m) => {
                retained.insert(m.topic.as_bytes(), record::encode_message(m).as_slice())?;
            }
            Op::RetainedClear(topic) => {
                retained.remove(topic.as_bytes())?;
            }
            Op::SessionPut { client_id, value } => {
                sessions.insert(
                    client_id.as_bytes(),
                    record::encode_session(*value).as_slice(),
                )?;
            }
            Op::SessionDelete(client_id) => {
                sessions.remove(client_id.as_bytes())?;
                wills.remove(client_id.as_bytes())?;
                let prefix = client_prefix(client_id);
                for t in [&mut subs, &mut queued, &mut outbound, &mut inbound] {
                    remove_prefix(t, &prefix)?;
                }
            }
            Op::SubscriptionPut {
                client_id,
                filter,
                options,
                identifier,
            } => {
                let mut k = client_prefix(client_id);
                k.extend_from_slice(filter.as_bytes());
                subs.insert(
                    k.as_slice(),
                    record::encode_subscription(*options, *identifier).as_slice(),
                )?;
            }
            Op::SubscriptionDelete { client_id, filter } => {
                let mut k = client_prefix(client_id);
                k.extend_from_slice(filter.as_bytes());
                subs.remove(k.as_slice())?;
            }
            Op::QueuedAdd { client_id, message } => {
                let mut k = client_prefix(client_id);
                k.extend_from_slice(&next_seq.to_be_bytes());
                *next_seq = next_seq.saturating_add(1);
                queued.insert(k.as_slice(), record::encode_queued(message).as_slice())?;
            }
            Op::QueuedRemoveFront(client_id) => {
                let prefix = client_prefix(client_id);
                let first = {
                    let mut range = match prefix_end(&prefix) {
                        Some(end) => queued.range(prefix.as_slice()..end.as_slice())?,
                        None => queued.range(prefix.as_slice()..)?,
                    };
                    match range.next() {
                        Some(kv) => Some(kv?.0.value().to_vec()),
                        None => None,
                    }
                };
                if let Some(k) = first {
                    queued.remove(k.as_slice())?;
                }
            }
            Op::OutboundPut {
                client_id,
                packet_id,
                phase,
                message,
            } => {
                let mut k = client_prefix(client_id);
                k.extend_from_slice(&packet_id.to_be_bytes());
                outbound.insert(
                    k.as_slice(),
                    record::encode_outbound(*phase, message.as_ref()).as_slice(),
                )?;
            }
            Op::OutboundDelete {
                client_id,
                packet_id,
            } => {
                let mut k = client_prefix(client_id);
                k.extend_from_slice(&packet_id.to_be_bytes());
                outbound.remove(k.as_slice())?;
            }
            Op::InboundQos2 {
                client_id,
                packet_id,
                pending,
            } => {
                let mut k = client_prefix(client_id);
                k.extend_from_slice(&packet_id.to_be_bytes());
                if *pending {
                    inbound.insert(k.as_slice(), record::encode_marker().as_slice())?;
                } else {
                    inbound.remove(k.as_slice())?;
                }
            }
            Op::WillPut { client_id, will } => {
                wills.insert(client_id.as_bytes(), record::encode_will(will).as_slice())?;
            }
            Op::WillDelete(client_id) => {
                wills.remove(client_id.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// A record that could not be decoded.
#[derive(Debug, Clone)]
pub(crate) struct BadRecord {
    pub(crate) table: &'static str,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Vec<u8>,
    pub(crate) error: DecodeError,
}

/// Everything read back from a store.
#[derive(Debug, Default)]
pub(crate) struct ReadBack {
    pub(crate) retained: Vec<StoredMessage>,
    pub(crate) sessions: BTreeMap<String, StoredSession>,
    /// Records whose value (or key) could not be decoded.
    pub(crate) bad: Vec<BadRecord>,
    /// Engine errors met while reading (the file is damaged): what was read
    /// before each error is kept.
    pub(crate) engine_errors: Vec<String>,
    /// One past the highest queued-message sequence number seen.
    pub(crate) next_seq: u64,
}

impl ReadBack {
    fn session(&mut self, client_id: String) -> &mut StoredSession {
        self.sessions
            .entry(client_id)
            .or_insert_with_key(|id| StoredSession {
                client_id: id.clone(),
                ..StoredSession::default()
            })
    }

    /// The number of records read back (good ones).
    pub(crate) fn record_count(&self) -> usize {
        self.retained.len()
            + self
                .sessions
                .values()
                .map(|s| {
                    usize::from(s.has_record)
                        + s.subscriptions.len()
                        + s.queued.len()
                        + s.outbound.len()
                        + s.inbound_qos2.len()
                        + usize::from(s.will.is_some())
                })
                .sum::<usize>()
    }
}

/// Reads every table of `db`. Never fails: engine errors and undecodable
/// records are collected in the result, and everything readable is kept.
pub(crate) fn read_all(db: &impl ReadableDatabase) -> ReadBack {
    let mut out = ReadBack::default();
    let txn = match db.begin_read() {
        Ok(t) => t,
        Err(e) => {
            out.engine_errors
                .push(format!("cannot read: {}", redb::Error::from(e)));
            return out;
        }
    };
    for (def, name) in TABLES {
        let table = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => continue,
            Err(e) => {
                out.engine_errors
                    .push(format!("table {name}: {}", redb::Error::from(e)));
                continue;
            }
        };
        let iter = match table.iter() {
            Ok(i) => i,
            Err(e) => {
                out.engine_errors
                    .push(format!("table {name}: {}", redb::Error::from(e)));
                continue;
            }
        };
        for kv in iter {
            let (k, v) = match kv {
                Ok((k, v)) => (k, v),
                Err(e) => {
                    out.engine_errors
                        .push(format!("table {name}: {}", redb::Error::from(e)));
                    break;
                }
            };
            let (key, value) = (k.value(), v.value());
            if let Err(error) = read_record(&mut out, name, key, value) {
                out.bad.push(BadRecord {
                    table: name,
                    key: key.to_vec(),
                    value: value.to_vec(),
                    error,
                });
            }
        }
    }
    out
}

fn utf8_key(key: &[u8], what: &'static str) -> Result<String, DecodeError> {
    std::str::from_utf8(key)
        .map(str::to_owned)
        .map_err(|_| DecodeError::Invalid(what))
}

fn u16_key(rest: &[u8]) -> Result<u16, DecodeError> {
    let b: [u8; 2] = rest
        .try_into()
        .map_err(|_| DecodeError::Invalid("packet id key"))?;
    match u16::from_be_bytes(b) {
        0 => Err(DecodeError::Invalid("packet id 0")),
        id => Ok(id),
    }
}

fn read_record(
    out: &mut ReadBack,
    table: &str,
    key: &[u8],
    value: &[u8],
) -> Result<(), DecodeError> {
    match table {
        "retained" => {
            let m = record::decode_message(value)?;
            if m.topic.as_bytes() != key {
                return Err(DecodeError::Invalid("retained key differs from topic"));
            }
            out.retained.push(m);
        }
        "sessions" => {
            let SessionValue {
                expiry_interval,
                updated_unix_ms,
            } = record::decode_session(value)?;
            let s = out.session(utf8_key(key, "client id")?);
            s.has_record = true;
            s.expiry_interval = expiry_interval;
            s.updated_unix_ms = updated_unix_ms;
        }
        "subscriptions" => {
            let (client, rest) = split_client_key(key)?;
            let filter = utf8_key(rest, "filter")?;
            let (options, identifier) = record::decode_subscription(value)?;
            out.session(client).subscriptions.push(StoredSubscription {
                filter,
                options,
                identifier,
            });
        }
        "queued" => {
            let (client, rest) = split_client_key(key)?;
            let b: [u8; 8] = rest
                .try_into()
                .map_err(|_| DecodeError::Invalid("sequence key"))?;
            let seq = u64::from_be_bytes(b);
            let q: QueuedMessage = record::decode_queued(value)?;
            out.next_seq = out.next_seq.max(seq.saturating_add(1));
            out.session(client).queued.push(q);
        }
        "outbound" => {
            let (client, rest) = split_client_key(key)?;
            let packet_id = u16_key(rest)?;
            let (phase, message) = record::decode_outbound(value)?;
            out.session(client).outbound.push(record::OutboundRecord {
                packet_id,
                phase,
                message,
            });
        }
        "inbound_qos2" => {
            let (client, rest) = split_client_key(key)?;
            let packet_id = u16_key(rest)?;
            record::decode_marker(value)?;
            out.session(client).inbound_qos2.push(packet_id);
        }
        _ => {
            let will = record::decode_will(value)?;
            out.session(utf8_key(key, "client id")?).will = Some(will);
        }
    }
    Ok(())
}

/// Writes everything in `rb` into the (empty) store behind `txn`: used to
/// carry what was readable from a damaged file into a fresh one.
pub(crate) fn write_all(txn: &WriteTransaction, rb: &ReadBack) -> Result<(), EngineError> {
    let mut ops = Vec::new();
    for m in &rb.retained {
        ops.push(Op::RetainedSet(m.clone()));
    }
    for s in rb.sessions.values() {
        let id = &s.client_id;
        if s.has_record {
            ops.push(Op::SessionPut {
                client_id: id.clone(),
                value: SessionValue {
                    expiry_interval: s.expiry_interval,
                    updated_unix_ms: s.updated_unix_ms,
                },
            });
        }
        for sub in &s.subscriptions {
            ops.push(Op::SubscriptionPut {
                client_id: id.clone(),
                filter: sub.filter.clone(),
                options: sub.options,
                identifier: sub.identifier,
            });
        }
        for q in &s.queued {
            ops.push(Op::QueuedAdd {
                client_id: id.clone(),
                message: q.clone(),
            });
        }
        for o in &s.outbound {
            ops.push(Op::OutboundPut {
                client_id: id.clone(),
                packet_id: o.packet_id,
                phase: o.phase,
                message: o.message.clone(),
            });
        }
        for &packet_id in &s.inbound_qos2 {
            ops.push(Op::InboundQos2 {
                client_id: id.clone(),
                packet_id,
                pending: true,
            });
        }
        if let Some(will) = &s.will {
            ops.push(Op::WillPut {
                client_id: id.clone(),
                will: will.clone(),
            });
        }
    }
    let mut seq = rb.next_seq;
    apply(txn, &ops, &mut seq)
}

/// Removes the undecodable records `bad` from the store behind `txn`.
pub(crate) fn remove_bad(txn: &WriteTransaction, bad: &[BadRecord]) -> Result<(), EngineError> {
    for (def, name) in TABLES {
        let mut t = txn.open_table(def)?;
        for b in bad.iter().filter(|b| b.table == name) {
            t.remove(b.key.as_slice())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(&[0, 3, b'a']), Some(vec![0, 3, b'b']));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn every_table_has_a_distinct_name() {
        let mut names: Vec<_> = TABLES.iter().map(|(_, n)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLES.len());
    }
}
