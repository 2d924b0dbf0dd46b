//! The topic tree as the dashboard shows it: each topic that carried a
//! message while someone watched, message counts per node, and the last
//! few messages of each topic.
//!
//! Routing feeds it only while it is watched (`Core::watch_topics`): otherwise
//! the message path pays one relaxed load of a flag that never changes.
//! It is bounded: at most [`MAX_NODES`] nodes (messages to topics past that
//! are counted as untracked), and each topic keeps at most [`HISTORY`]
//! samples, [`HISTORY_BYTES`] of payload in all, each cut to
//! [`SAMPLE_BYTES`]; once the samples before each topic's latest hold
//! [`OLDER_BUDGET`] bytes in all, topics keep only their latest (so the
//! view stays under about 100 MB however it is fed, and a few MB for
//! 10,000 sensor topics). Payloads are copied into the samples: a payload is a
//! slice of the read buffer it arrived in, and keeping it would keep that
//! whole buffer alive.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use culex_codec::QoS;
use parking_lot::Mutex;

use super::message::Message;

/// The most nodes (topic levels) the view holds.
pub const MAX_NODES: usize = 50_000;
/// The most payload bytes a sample keeps.
pub const SAMPLE_BYTES: usize = 1024;
/// The most samples a topic keeps.
pub const HISTORY: usize = 12;
/// The most payload bytes of one topic's samples together (the latest
/// sample is always kept).
pub const HISTORY_BYTES: usize = 2048;
/// The most payload bytes of every topic's samples but the latest, together.
pub const OLDER_BUDGET: usize = 32 << 20;

/// One message of a topic, as the view keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The payload, cut to [`SAMPLE_BYTES`].
    pub payload: Bytes,
    /// The payload's full size.
    pub size: usize,
    /// QoS as published.
    pub qos: QoS,
    /// RETAIN as published.
    pub retain: bool,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// Messages published to this topic.
    messages: u64,
    /// Messages published to this topic or below it.
    total: u64,
    /// The view's sequence number when something at or below last changed.
    changed: u64,
    /// The topic's latest samples, oldest first (unallocated while empty).
    samples: VecDeque<Sample>,
}

/// Levels are dropped one after another, not by recursion.
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Node> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, n)| n));
        }
    }
}

/// One child of a node, as [`TopicView::children`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRow {
    /// The level's name.
    pub name: String,
    /// Messages published to this topic.
    pub messages: u64,
    /// Messages published to this topic or below it.
    pub total: u64,
    /// Its children.
    pub children: usize,
    /// The sequence number of its last change.
    pub changed: u64,
    /// The topic's latest message.
    pub last: Option<Sample>,
}

/// A page of one node's children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPage {
    /// The view's sequence number now: ask for changes since it next time.
    pub seq: u64,
    /// The node itself (its name is the last level of the path).
    pub node: TopicRow,
    /// Children that changed after `since`, by name, after the cursor.
    pub rows: Vec<TopicRow>,
    /// Whether more such children follow the last row.
    pub more: bool,
}

/// One topic with its samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDetail {
    /// Counts, children and latest message of the topic.
    pub row: TopicRow,
    /// Its samples, oldest first.
    pub samples: Vec<Sample>,
}

/// Counts, samples and the tree's shape (see the module docs).
#[derive(Debug, Default)]
pub struct TopicView {
    root: Node,
    nodes: usize,
    seq: u64,
    untracked: u64,
    /// Payload bytes of the samples that are not a topic's latest.
    older_bytes: usize,
}

impl TopicView {
    /// An empty view.
    pub fn new() -> TopicView {
        TopicView::default()
    }

    /// An empty view whose sequence numbers continue after `seq` (those
    /// of an earlier view): a reader asking for changes since a number of
    /// the earlier view is sent everything of this one.
    pub fn continuing(seq: u64) -> TopicView {
        TopicView {
            seq,
            ..TopicView::default()
        }
    }

    /// Adds a message: counted when `count` (a retained message seeding a
    /// new view is shown but not counted).
    pub fn record(&mut self, msg: &Message, count: bool) {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut budget = MAX_NODES.saturating_sub(self.nodes);
        let mut node = &mut self.root;
        let mut complete = true;
        for level in msg.topic.split('/') {
            if count {
                node.total = node.total.saturating_add(1);
            }
            node.changed = seq;
            if node.children.contains_key(level) {
                match node.children.get_mut(level) {
                    Some(child) => node = child,
                    None => return,
                }
                continue;
            }
            if budget == 0 {
                complete = false;
                break;
            }
            budget -= 1;
            self.nodes += 1;
            node = node.children.entry(Box::from(level)).or_default();
        }
        if !complete {
            self.untracked = self.untracked.saturating_add(u64::from(count));
            return;
        }
        if count {
            node.total = node.total.saturating_add(1);
            node.messages = node.messages.saturating_add(1);
        }
        node.changed = seq;
        let room = self.older_bytes < OLDER_BUDGET;
        let (added, freed) = push_sample(&mut node.samples, msg, room);
        self.older_bytes = (self.older_bytes + added).saturating_sub(freed);
    }

    /// The sequence number of the last change.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Nodes in the view.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Messages to topics the view had no room for.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// The children of the node at `path` (`None`: the root) that changed
    /// after `since`, by name, those after `after`, at most `limit`.
    pub fn children(
        &self,
        path: Option<&str>,
        since: u64,
        after: Option<&str>,
        limit: usize,
    ) -> Option<TopicPage> {
        let node = self.find(path)?;
        let name = path.map_or("", |p| p.rsplit('/').next().unwrap_or(p));
        let mut rows: Vec<(&str, &Node)> = node
            .children
            .iter()
            .filter(|(n, c)| c.changed > since && after.is_none_or(|a| &***n > a))
            .map(|(n, c)| (&**n, c))
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let more = rows.len() > limit;
        rows.truncate(limit);
        Some(TopicPage {
            seq: self.seq,
            node: row(name, node),
            rows: rows.into_iter().map(|(n, c)| row(n, c)).collect(),
            more,
        })
    }

    /// The topic `topic`, with its samples.
    pub fn topic(&self, topic: &str) -> Option<TopicDetail> {
        let node = self.find(Some(topic))?;
        let name = topic.rsplit('/').next().unwrap_or(topic);
        Some(TopicDetail {
            row: row(name, node),
            samples: node.samples.iter().cloned().collect(),
        })
    }

    fn find(&self, path: Option<&str>) -> Option<&Node> {
        let mut node = &self.root;
        if let Some(path) = path {
            for level in path.split('/') {
                node = node.children.get(level)?;
            }
        }
        Some(node)
    }
}

fn row(name: &str, node: &Node) -> TopicRow {
    TopicRow {
        name: name.to_owned(),
        messages: node.messages,
        total: node.total,
        children: node.children.len(),
        changed: node.changed,
        last: node.samples.back().cloned(),
    }
}

/// Appends `msg` to a topic's samples, then drops the oldest ones past
/// [`HISTORY`] or [`HISTORY_BYTES`], or all but the latest without `room`.
/// Returns the bytes that became older samples (the previous latest) and
/// those dropped from the older ones.
fn push_sample(samples: &mut VecDeque<Sample>, msg: &Message, room: bool) -> (usize, usize) {
    let added = samples.back().map_or(0, |s| s.payload.len());
    let kept = msg.payload.len().min(SAMPLE_BYTES);
    samples.push_back(Sample {
        payload: Bytes::copy_from_slice(msg.payload.get(..kept).unwrap_or_default()),
        size: msg.payload.len(),
        qos: msg.qos,
        retain: msg.retain,
        at: msg.received,
    });
    let (max, max_bytes) = if room {
        (HISTORY, HISTORY_BYTES)
    } else {
        (1, 0)
    };
    let mut bytes: usize = samples.iter().map(|s| s.payload.len()).sum();
    let mut freed = 0;
    while samples.len() > 1 && (samples.len() > max || bytes > max_bytes) {
        if let Some(old) = samples.pop_front() {
            bytes -= old.payload.len();
            freed += old.payload.len();
        }
    }
    (added, freed)
}

/// Who watches the topic view, and the view while anyone does.
#[derive(Debug, Default)]
pub(crate) struct TopicWatch {
    /// Read by routing for every message: set only while watched.
    active: AtomicBool,
    watchers: AtomicUsize,
    /// The last sequence number of the last view dropped.
    last_seq: AtomicU64,
    /// Locked alone, briefly: by routing while watched, by readers.
    view: Mutex<Option<TopicView>>,
}

impl TopicWatch {
    /// Whether routing must feed the view (one relaxed load).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// One more watcher; `Some(view)` to fill when this is the first, for
    /// the caller to seed (with no lock of the core held) and put in place
    /// with [`TopicWatch::install`].
    pub fn start(&self) -> Option<TopicView> {
        let first = self.watchers.fetch_add(1, Ordering::AcqRel) == 0;
        first.then(|| TopicView::continuing(self.last_seq.load(Ordering::Acquire)))
    }

    /// Puts a first watcher's seeded view in place and starts feeding it.
    pub fn install(&self, view: TopicView) {
        let mut slot = self.view.lock();
        if self.watchers.load(Ordering::Acquire) > 0 && slot.is_none() {
            *slot = Some(view);
            self.active.store(true, Ordering::Relaxed);
        }
    }

    /// One watcher fewer; the last one takes the view away.
    pub fn stop(&self) {
        let mut slot = self.view.lock();
        let before = self.watchers.fetch_sub(1, Ordering::AcqRel);
        if before <= 1 {
            self.watchers.store(0, Ordering::Release);
            self.active.store(false, Ordering::Relaxed);
            if let Some(view) = slot.take() {
                self.last_seq.store(view.seq, Ordering::Release);
            }
        }
    }

    /// Adds a routed message (while active).
    pub fn record(&self, msg: &Message) {
        if let Some(view) = self.view.lock().as_mut() {
            view.record(msg, true);
        }
    }

    /// Runs `f` on the view, if anyone watches.
    pub fn read<R>(&self, f: impl FnOnce(&TopicView) -> R) -> Option<R> {
        self.view.lock().as_ref().map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str) -> Message {
        Message::new(
            topic,
            payload.to_owned(),
            QoS::AtMostOnce,
            false,
            Instant::now(),
        )
    }

    #[test]
    fn counts_per_node_and_deltas() {
        let mut v = TopicView::new();
        v.record(&msg("a/b", "1"), true);
        v.record(&msg("a/b", "2"), true);
        v.record(&msg("a/c", "x"), true);
        let seq = v.seq();
        v.record(&msg("d", "y"), true);
        let root = v.children(None, 0, None, 10).unwrap();
        assert_eq!(root.node.total, 4);
        let names: Vec<_> = root.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "d"]);
        assert_eq!(root.rows[0].total, 3);
        assert_eq!(root.rows[0].messages, 0);
        let a = v.children(Some("a"), 0, None, 10).unwrap();
        assert_eq!(a.rows[0].messages, 2);
        assert_eq!(a.rows[0].last.as_ref().unwrap().payload, "2");
        // Only `d` changed since `seq`.
        let delta = v.children(None, seq, None, 10).unwrap();
        assert_eq!(delta.rows.len(), 1);
        assert_eq!(delta.rows[0].name, "d");
        // Paging by name.
        let page = v.children(Some("a"), 0, None, 1).unwrap();
        assert!(page.more);
        let next = v.children(Some("a"), 0, Some("b"), 1).unwrap();
        assert_eq!(next.rows[0].name, "c");
        assert!(!next.more);
        let detail = v.topic("a/b").unwrap();
        assert_eq!(detail.samples.len(), 2);
        assert!(v.topic("a/x").is_none());
    }

    #[test]
    fn samples_and_nodes_are_bounded() {
        let mut v = TopicView::new();
        for i in 0..100 {
            v.record(&msg("t", &i.to_string()), true);
        }
        let t = v.topic("t").unwrap();
        assert_eq!(t.samples.len(), HISTORY);
        assert_eq!(t.row.messages, 100);
        let big = "x".repeat(3000);
        v.record(&msg("big", &big), true);
        let b = v.topic("big").unwrap();
        assert_eq!(b.samples[0].payload.len(), SAMPLE_BYTES);
        assert_eq!(b.samples[0].size, 3000);
        for _ in 0..10 {
            v.record(&msg("big", &big), true);
        }
        let total: usize = v
            .topic("big")
            .unwrap()
            .samples
            .iter()
            .map(|s| s.payload.len())
            .sum();
        assert!(total <= HISTORY_BYTES);
        let sizes = |topic: &str| -> Vec<usize> {
            let d = v.topic(topic).unwrap();
            d.samples.iter().map(|s| s.payload.len()).collect()
        };
        let older: usize = [sizes("t"), sizes("big")]
            .iter()
            .map(|s| s.iter().sum::<usize>() - s.last().unwrap())
            .sum();
        assert_eq!(v.older_bytes, older, "older bytes tracked");
        // Past the budget, topics keep their latest sample only.
        v.older_bytes = OLDER_BUDGET;
        v.record(&msg("t", "x"), true);
        assert_eq!(v.topic("t").unwrap().samples.len(), 1);
        for i in 0..MAX_NODES + 10 {
            v.record(&msg(&format!("many/{i}"), "1"), true);
        }
        assert_eq!(v.nodes(), MAX_NODES);
        assert!(v.untracked() > 0);
    }

    #[test]
    fn the_last_watcher_drops_the_view() {
        let w = TopicWatch::default();
        assert!(!w.is_active());
        let view = w.start().unwrap();
        assert!(w.start().is_none());
        w.install(view);
        assert!(w.is_active());
        w.record(&msg("a", "1"));
        w.stop();
        assert!(w.is_active());
        assert_eq!(w.read(|v| v.seq()), Some(1));
        w.stop();
        assert!(!w.is_active());
        assert_eq!(w.read(|v| v.seq()), None);
        // A new view numbers its changes after the old one's.
        let view = w.start().unwrap();
        w.install(view);
        w.record(&msg("b", "1"));
        assert_eq!(w.read(|v| v.seq()), Some(2));
        let page = w.read(|v| v.children(None, 1, None, 10)).flatten().unwrap();
        assert_eq!(page.rows.len(), 1, "news for a reader of the old view");
    }
}
