//! The JSON API under `/api/`: what the page shows, for scripts too.
//!
//! Reads go through the core's read-only views, actions through its owner
//! API; every action is logged (and shown in the live log) with who did it.
//! Lists are pages: at most [`MAX_PAGE`] items after a cursor (the last
//! key of the previous page), with `more` saying whether others follow.

use std::sync::atomic::Ordering;
use std::time::Instant;

use base64::Engine;
use culex_codec::topic::TopicFilter;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::events::unix_ms;
use super::process::ProcessStats;
use super::request::{Call, Reply};
use super::shared::Admin;
use crate::core::drops::Drops;
use crate::core::observe::{ClientInfo, ClientQuery, SubscriptionInfo};
use crate::core::stats::{protocol_label, PROTOCOLS};
use crate::core::topics::{Sample, TopicRow};

/// The most items a page holds.
pub(crate) const MAX_PAGE: u64 = 500;
/// The most payload bytes a retained message's read returns.
const MAX_PAYLOAD: usize = 1 << 20;

/// Dispatches `/api/…`.
pub(crate) fn route(admin: &Admin, call: &Call<'_>) -> Reply {
    let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
    let get = matches!(*call.method, Method::GET | Method::HEAD);
    let reply = match (segments.as_slice(), call.method) {
        (["overview"], _) if get => overview(admin),
        (["stats"], _) if get => stats(admin, call),
        (["log"], _) if get => log(admin, call),
        (["clients"], _) if get => clients(admin, call),
        (["clients", id], _) if get => client(admin, id),
        (["clients", id, "kick"], &Method::POST) => kick(admin, call, id),
        (["clients", id, "subscriptions"], &Method::DELETE) => unsubscribe(admin, call, id),
        (["subscriptions"], _) if get => subscriptions(admin, call),
        (["retained"], _) if get => retained(admin, call),
        (["retained", "message"], _) if get => retained_message(admin, call),
        (["retained", "message"], &Method::DELETE) => delete_retained(admin, call),
        (["topics"], _) if get => topics(admin, call),
        (["topic"], _) if get => topic(admin, call),
        (["clients", _, "kick"], _) => Err(Reply::Method("POST")),
        (["clients", _, "subscriptions"], _) => Err(Reply::Method("DELETE")),
        (["retained", "message"], _) => Err(Reply::Method("GET, HEAD, DELETE")),
        _ => Err(Reply::error(StatusCode::NOT_FOUND, "no such API route")),
    };
    reply.unwrap_or_else(|e| e)
}

type Answer = Result<Reply, Reply>;

fn ok(value: Value) -> Answer {
    Ok(Reply::Json(StatusCode::OK, value))
}

fn bad(why: impl Into<String>) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, why)
}

fn not_found(why: impl Into<String>) -> Reply {
    Reply::error(StatusCode::NOT_FOUND, why)
}

fn number(call: &Call<'_>, key: &str, default: u64) -> Result<u64, Reply> {
    call.query
        .number(key, default)
        .ok_or_else(|| bad(format!("{key} must be a number")))
}

fn limit(call: &Call<'_>) -> Result<usize, Reply> {
    let n = number(call, "limit", 100)?.clamp(1, MAX_PAGE);
    Ok(usize::try_from(n).unwrap_or(100))
}

fn required<'a>(call: &'a Call<'_>, key: &str) -> Result<&'a str, Reply> {
    call.query
        .get(key)
        .ok_or_else(|| bad(format!("{key} is required")))
}

/// Instants as milliseconds since the Unix epoch.
struct Clock {
    now: Instant,
    unix_ms: u64,
}

impl Clock {
    fn now() -> Clock {
        Clock {
            now: Instant::now(),
            unix_ms: unix_ms(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        let ago = self.now.saturating_duration_since(at).as_millis();
        self.unix_ms
            .saturating_sub(u64::try_from(ago).unwrap_or(u64::MAX))
    }
}

fn overview(admin: &Admin) -> Answer {
    let core = &admin.core;
    let stats = core.stats();
    let counts = core.counts();
    let process = ProcessStats::read();
    let listeners: Vec<Value> = stats
        .listeners()
        .iter()
        .zip(&admin.listeners)
        .map(|(l, name)| {
            let by: serde_json::Map<String, Value> = PROTOCOLS
                .iter()
                .map(|p| (protocol_label(*p).to_owned(), json!(l.connected(*p))))
                .collect();
            json!({ "listener": name, "connected": by })
        })
        .collect();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let store = core.store().metrics().map(|m| {
        json!({ "commits": m.commits, "pending": m.pending, "commit_seconds": m.commit_seconds })
    });
    ok(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "time_ms": unix_ms(),
        "start_time_ms": process.start_time_seconds.map(|s| (s * 1000.0) as u64),
        "https": admin.tls,
        "login": admin.auth.is_required(),
        "connected": counts.connected,
        "sessions": counts.sessions,
        "subscriptions": counts.subscriptions,
        "retained": counts.retained,
        "retained_bytes": counts.retained_bytes,
        "messages_in": stats.publish_received_total(),
        "messages_out": stats.publish_sent_total(),
        "bytes_in": load(&stats.bytes_received),
        "bytes_out": load(&stats.bytes_sent),
        "dropped": drops_json(&stats.drops()),
        "listeners": listeners,
        "store": store,
        "resident_bytes": process.resident_bytes,
        "cpu_seconds": process.cpu_seconds,
    }))
}

fn stats(admin: &Admin, call: &Call<'_>) -> Answer {
    let since = number(call, "since", 0)?;
    let samples: Vec<Value> = admin
        .samples_since(since)
        .iter()
        .map(|s| {
            json!({
                "seq": s.seq, "time_ms": s.unix_ms, "connected": s.connected,
                "messages_in": s.messages_in, "messages_out": s.messages_out,
                "bytes_in": s.bytes_in, "bytes_out": s.bytes_out,
                "dropped": s.dropped, "resident_bytes": s.resident_bytes,
            })
        })
        .collect();
    ok(json!({ "samples": samples }))
}

fn log(admin: &Admin, call: &Call<'_>) -> Answer {
    let since = number(call, "since", 0)?;
    let (entries, last) = admin.events.since(since, limit(call)?);
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({ "seq": e.seq, "time_ms": e.unix_ms, "kind": e.kind,
                    "client_id": e.client_id, "text": e.text })
        })
        .collect();
    ok(json!({ "last": last, "entries": entries }))
}

fn clients(admin: &Admin, call: &Call<'_>) -> Answer {
    let query = ClientQuery {
        search: call.query.get("search"),
        connected_only: matches!(call.query.get("connected"), Some("1" | "true")),
        after: call.query.get("after").filter(|a| !a.is_empty()),
        limit: limit(call)?,
    };
    let page = admin.core.client_page(&query);
    let clock = Clock::now();
    let clients: Vec<Value> = page
        .clients
        .iter()
        .map(|c| client_json(admin, c, &clock, false))
        .collect();
    ok(json!({ "matched": page.matched, "more": page.more, "clients": clients }))
}

fn client(admin: &Admin, id: &str) -> Answer {
    let info = admin
        .core
        .client(id)
        .ok_or_else(|| not_found("no such client"))?;
    ok(client_json(admin, &info, &Clock::now(), true))
}

fn kick(admin: &Admin, call: &Call<'_>, id: &str) -> Answer {
    if !admin.core.kick(id) {
        return Err(not_found("no client connected with that id"));
    }
    admin_action(admin, call, id, format!("kicked client {id}"));
    ok(json!({ "kicked": id }))
}

fn unsubscribe(admin: &Admin, call: &Call<'_>, id: &str) -> Answer {
    let filter = required(call, "filter")?;
    if !admin.core.remove_subscription(id, filter) {
        return Err(not_found("the client has no such subscription"));
    }
    let what = format!("removed subscription '{filter}' of client {id}");
    admin_action(admin, call, id, what);
    ok(json!({ "removed": filter, "client_id": id }))
}

fn subscriptions(admin: &Admin, call: &Call<'_>) -> Answer {
    let after = match (
        call.query.get("after_filter"),
        call.query.get("after_client"),
    ) {
        (Some(f), Some(c)) => Some((f, c)),
        _ => None,
    };
    let search = call.query.get("search").filter(|s| !s.is_empty());
    let (page, more) = admin.core.subscription_page(search, after, limit(call)?);
    let subs: Vec<Value> = page.iter().map(subscription_json).collect();
    ok(json!({ "more": more, "subscriptions": subs }))
}

fn retained(admin: &Admin, call: &Call<'_>) -> Answer {
    let filter = call
        .query
        .get("filter")
        .filter(|f| !f.is_empty())
        .unwrap_or("#");
    if TopicFilter::new(filter).is_err() || filter.starts_with("$share/") {
        return Err(bad("filter is not a valid topic filter"));
    }
    let after = call.query.get("after").filter(|a| !a.is_empty());
    let clock = Clock::now();
    let page = admin
        .core
        .retained_page(filter, after, limit(call)?, clock.now);
    let messages: Vec<Value> = page
        .messages
        .iter()
        .map(|m| {
            let preview = m
                .payload
                .get(..m.payload.len().min(256))
                .unwrap_or_default();
            let mut v = payload_json(preview, m.payload.len());
            set(&mut v, "topic", json!(&*m.topic));
            set(&mut v, "qos", json!(m.qos as u8));
            set(&mut v, "time_ms", json!(clock.ms(m.received)));
            v
        })
        .collect();
    ok(json!({ "matched": page.matched, "more": page.more, "messages": messages }))
}

fn retained_message(admin: &Admin, call: &Call<'_>) -> Answer {
    let topic = required(call, "topic")?;
    let msg = admin
        .core
        .retained(topic)
        .ok_or_else(|| not_found("no retained message on that topic"))?;
    let shown = msg
        .payload
        .get(..msg.payload.len().min(MAX_PAYLOAD))
        .unwrap_or_default();
    let mut v = payload_json(shown, msg.payload.len());
    set(&mut v, "topic", json!(&*msg.topic));
    set(&mut v, "qos", json!(msg.qos as u8));
    set(&mut v, "time_ms", json!(Clock::now().ms(msg.received)));
    ok(v)
}

fn delete_retained(admin: &Admin, call: &Call<'_>) -> Answer {
    let topic = required(call, "topic")?;
    if !admin.core.delete_retained(topic) {
        return Err(not_found("no retained message on that topic"));
    }
    admin_action(
        admin,
        call,
        "",
        format!("deleted the retained message of '{topic}'"),
    );
    ok(json!({ "deleted": topic }))
}

fn topics(admin: &Admin, call: &Call<'_>) -> Answer {
    admin.touch_topics();
    let path = call.query.get("path");
    let since = number(call, "since", 0)?;
    let after = call.query.get("after").filter(|a| !a.is_empty());
    let clock = Clock::now();
    let (nodes, untracked) = admin.core.topic_tree_size();
    let Some(page) = admin.core.topic_children(path, since, after, limit(call)?) else {
        // Nothing published there since watching began.
        return ok(json!({ "seq": 0, "node": null, "rows": [], "more": false,
                          "nodes": nodes, "untracked": untracked }));
    };
    let rows: Vec<Value> = page.rows.iter().map(|r| row_json(r, &clock)).collect();
    ok(json!({
        "seq": page.seq, "node": row_json(&page.node, &clock), "rows": rows,
        "more": page.more, "nodes": nodes, "untracked": untracked,
    }))
}

fn topic(admin: &Admin, call: &Call<'_>) -> Answer {
    admin.touch_topics();
    let topic = required(call, "topic")?;
    let clock = Clock::now();
    let detail = admin
        .core
        .topic(topic)
        .ok_or_else(|| not_found("no message on that topic since the page started watching"))?;
    let samples: Vec<Value> = detail
        .samples
        .iter()
        .map(|s| sample_json(s, &clock))
        .collect();
    let mut v = row_json(&detail.row, &clock);
    set(&mut v, "topic", json!(topic));
    set(&mut v, "samples", json!(samples));
    set(
        &mut v,
        "retained",
        json!(admin.core.retained(topic).is_some()),
    );
    ok(v)
}

/// Logs an administrator's action in mosquitto's manner and in the live log.
fn admin_action(admin: &Admin, call: &Call<'_>, client_id: &str, what: String) {
    let line = format!("Admin {} from {}: {what}.", call.who, call.peer.ip());
    tracing::info!("{line}");
    admin.events.push("admin", client_id, line);
}

fn client_json(admin: &Admin, c: &ClientInfo, clock: &Clock, full: bool) -> Value {
    let listener = admin.listeners.get(c.listener).cloned();
    let mut v = json!({
        "client_id": &*c.client_id,
        "connected": c.connected,
        "username": c.username.as_deref(),
        "listener": listener,
        "address": c.address.map(|a| a.to_string()),
        "protocol": protocol_label(c.protocol),
        "keep_alive": c.keep_alive,
        "connected_at_ms": c.connected_at.map(|t| clock.ms(t)),
        "disconnected_at_ms": c.disconnected_at.map(|t| clock.ms(t)),
        "session_expiry": c.expiry,
        "inflight": c.inflight,
        "queued": c.queued,
        "dropped": c.drops.total(),
        "subscription_count": c.subscriptions.len(),
    });
    if full {
        set(&mut v, "drops", drops_json(&c.drops));
        let will = c.will.as_ref().map(|w| {
            json!({ "topic": &*w.topic, "qos": w.qos as u8, "retain": w.retain,
                    "payload_bytes": w.payload_len, "delay": w.delay })
        });
        set(&mut v, "will", will.unwrap_or(Value::Null));
        let subscriptions = c.subscriptions.iter().map(subscription_json).collect();
        set(&mut v, "subscriptions", subscriptions);
    }
    v
}

fn subscription_json(s: &SubscriptionInfo) -> Value {
    json!({
        "client_id": &*s.client_id,
        "filter": s.filter,
        "qos": s.options.qos as u8,
        "no_local": s.options.no_local,
        "retain_as_published": s.options.retain_as_published,
        "retain_handling": s.options.retain_handling as u8,
        "id": s.id,
    })
}

fn drops_json(drops: &Drops) -> Value {
    let mut map: serde_json::Map<String, Value> = drops
        .iter()
        .map(|(r, n)| (r.label().to_owned(), json!(n)))
        .collect();
    map.insert("total".into(), json!(drops.total()));
    Value::Object(map)
}

fn row_json(r: &TopicRow, clock: &Clock) -> Value {
    json!({
        "name": r.name, "messages": r.messages, "total": r.total,
        "children": r.children, "changed": r.changed,
        "last": r.last.as_ref().map(|s| sample_json(s, clock)),
    })
}

fn sample_json(s: &Sample, clock: &Clock) -> Value {
    let mut v = payload_json(&s.payload, s.size);
    set(&mut v, "qos", json!(s.qos as u8));
    set(&mut v, "retain", json!(s.retain));
    set(&mut v, "time_ms", json!(clock.ms(s.at)));
    v
}

/// A payload (or its first part) as text when it is UTF-8 — a cut in the
/// middle of a character is dropped — else as base64.
fn payload_json(shown: &[u8], size: usize) -> Value {
    let truncated = shown.len() < size;
    let text = match std::str::from_utf8(shown) {
        Ok(t) => Some(t),
        Err(e) if truncated && e.error_len().is_none() => {
            std::str::from_utf8(shown.get(..e.valid_up_to()).unwrap_or_default()).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(t) => json!({ "size": size, "truncated": truncated, "text": t }),
        None => json!({
            "size": size, "truncated": truncated,
            "base64": base64::engine::general_purpose::STANDARD.encode(shown),
        }),
    }
}

/// Sets `key` of a JSON object.
fn set(v: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = v {
        map.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_text_or_base64() {
        assert_eq!(payload_json(b"21.5", 4)["text"], "21.5");
        let v = payload_json(&[0xff, 0], 2);
        assert_eq!(v["base64"], "/wA=");
        // "é" cut in half by the preview: the half is left out.
        let v = payload_json(&"aé".as_bytes()[..2], 3);
        assert_eq!(v["text"], "a");
        assert_eq!(v["truncated"], true);
    }
}
