//! The subscription tree: topic filters by level, matched against topic
//! names by the rules of [MQTT 3.1.1, 4.7] / [MQTT 5.0, 4.7].
//!
//! Generic over the subscriber key so that it is tested on its own; the
//! runtime keys it by session. It is read-locked for the length of one match
//! per publish and write-locked by SUBSCRIBE/UNSUBSCRIBE.

use std::collections::HashMap;
use std::hash::Hash;

use culex_codec::{QoS, SubscriptionOptions};

/// One subscription in the tree.
#[derive(Debug, Clone)]
struct Entry<K> {
    key: K,
    options: SubscriptionOptions,
    id: Option<u32>,
}

#[derive(Debug)]
struct Node<K> {
    children: HashMap<Box<str>, Node<K>>,
    /// Subscriptions whose filter ends at this node.
    exact: Vec<Entry<K>>,
    /// Subscriptions of `…/#` one level above: they match this node's level
    /// and everything below it [MQTT-4.7.1-2].
    multi: Vec<Entry<K>>,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            exact: Vec::new(),
            multi: Vec::new(),
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.exact.is_empty() && self.multi.is_empty()
    }
}

/// A subscriber matched by a topic: one per key, overlapping subscriptions
/// merged at the highest QoS [MQTT-3.3.5-1], every subscription identifier kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match<K> {
    /// The subscriber.
    pub key: K,
    /// The highest QoS among its matching subscriptions.
    pub qos: QoS,
    /// Options of the first matching subscription (no-local, retain as published).
    pub options: SubscriptionOptions,
    /// Subscription identifiers of all matching subscriptions.
    pub ids: Vec<u32>,
}

/// Topic filters and their subscribers.
#[derive(Debug)]
pub struct SubscriptionTree<K> {
    root: Node<K>,
    count: usize,
}

impl<K> Default for SubscriptionTree<K> {
    fn default() -> Self {
        SubscriptionTree {
            root: Node::default(),
            count: 0,
        }
    }
}

impl<K: Clone + Eq + Hash> SubscriptionTree<K> {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds or replaces `key`'s subscription to `filter` (a validated filter
    /// without any `$share/` prefix). Returns `true` when it is new; an
    /// existing one is replaced [MQTT-3.8.4-3].
    pub fn subscribe(
        &mut self,
        filter: &str,
        key: K,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> bool {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        let mut list = None;
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                list = Some(&mut node.multi);
                break;
            }
            node = node.children.entry(Box::from(level)).or_default();
        }
        let list = match list {
            Some(l) => l,
            None => &mut node.exact,
        };
        let entry = Entry { key, options, id };
        if let Some(existing) = list.iter_mut().find(|e| e.key == entry.key) {
            *existing = entry;
            false
        } else {
            list.push(entry);
            self.count += 1;
            true
        }
    }

    /// Removes `key`'s subscription to `filter`; `true` when it existed.
    pub fn unsubscribe(&mut self, filter: &str, key: &K) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove(&mut self.root, &levels, key);
        if removed {
            self.count = self.count.saturating_sub(1);
        }
        removed
    }

    /// Every subscriber of `topic`, one entry per key, appended to `out`.
    pub fn matches(&self, topic: &str, out: &mut Vec<Match<K>>) {
        let levels: Vec<&str> = topic.split('/').collect();
        // A filter starting with a wildcard never matches a `$` topic [MQTT-4.7.2-1].
        let dollar = topic.starts_with('$');
        let start = out.len();
        collect(&self.root, &levels, 0, dollar, out, start);
    }
}

fn remove<K: Eq>(node: &mut Node<K>, levels: &[&str], key: &K) -> bool {
    match levels {
        [] => take_entry(&mut node.exact, key),
        ["#"] => take_entry(&mut node.multi, key),
        [first, rest @ ..] => {
            let Some(child) = node.children.get_mut(*first) else {
                return false;
            };
            let removed = remove(child, rest, key);
            if child.is_empty() {
                node.children.remove(*first);
            }
            removed
        }
    }
}

fn take_entry<K: Eq>(list: &mut Vec<Entry<K>>, key: &K) -> bool {
    match list.iter().position(|e| e.key == *key) {
        Some(pos) => {
            list.swap_remove(pos);
            true
        }
        None => false,
    }
}

fn collect<K: Clone + Eq + Hash>(
    node: &Node<K>,
    levels: &[&str],
    depth: usize,
    dollar: bool,
    out: &mut Vec<Match<K>>,
    start: usize,
) {
    let wildcards_allowed = !(dollar && depth == 0);
    if wildcards_allowed {
        for e in &node.multi {
            add(out, start, e);
        }
    }
    let Some((level, rest)) = levels.split_first() else {
        for e in &node.exact {
            add(out, start, e);
        }
        return;
    };
    if let Some(child) = node.children.get(*level) {
        collect(child, rest, depth + 1, dollar, out, start);
    }
    if wildcards_allowed && *level != "+" {
        if let Some(child) = node.children.get("+") {
            collect(child, rest, depth + 1, dollar, out, start);
        }
    }
}

fn add<K: Clone + Eq>(out: &mut Vec<Match<K>>, start: usize, e: &Entry<K>) {
    let existing = out
        .get_mut(start..)
        .and_then(|tail| tail.iter_mut().find(|m| m.key == e.key));
    match existing {
        Some(m) => {
            m.qos = m.qos.max(e.options.qos);
            m.ids.extend(e.id);
        }
        None => out.push(Match {
            key: e.key.clone(),
            qos: e.options.qos,
            options: e.options,
            ids: e.id.into_iter().collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    fn tree(filters: &[(&str, u32, QoS)]) -> SubscriptionTree<u32> {
        let mut t = SubscriptionTree::new();
        for (f, k, q) in filters {
            t.subscribe(f, *k, opts(*q), None);
        }
        t
    }

    fn who(t: &SubscriptionTree<u32>, topic: &str) -> Vec<(u32, QoS)> {
        let mut out = Vec::new();
        t.matches(topic, &mut out);
        let mut v: Vec<_> = out.into_iter().map(|m| (m.key, m.qos)).collect();
        v.sort();
        v
    }

    use QoS::{AtLeastOnce as Q1, AtMostOnce as Q0, ExactlyOnce as Q2};

    /// Table of filters against topics, by [MQTT-4.7.1-2], [MQTT-4.7.1-3], [MQTT-4.7.2-1].
    #[test]
    fn matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
            ("a/+", "a/b", true),
            ("a/+", "a/b/c", false),
            ("a/+", "a/", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "a/b", true),
            ("#", "/a", true),
            ("+/+", "/a", true),
            ("+", "$SYS", false),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("$SYS/+", "$SYS/x", true),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a/b/d", false),
            ("+/+/#", "a/b", true),
            ("é/+", "é/x", true),
            ("a//b", "a//b", true),
            ("a/+/b", "a//b", true),
        ];
        for (filter, topic, expect) in cases {
            let t = tree(&[(filter, 1, Q0)]);
            assert_eq!(!who(&t, topic).is_empty(), *expect, "{filter} vs {topic}");
        }
    }

    /// Overlapping subscriptions give one match at the highest QoS [MQTT-3.3.5-1].
    #[test]
    fn overlapping_merge_at_highest_qos() {
        let t = tree(&[("a/#", 1, Q0), ("a/+", 1, Q2), ("a/b", 1, Q1), ("#", 2, Q1)]);
        assert_eq!(who(&t, "a/b"), vec![(1, Q2), (2, Q1)]);
    }

    #[test]
    fn subscription_ids_are_collected() {
        let mut t = SubscriptionTree::new();
        t.subscribe("a/#", 1u32, opts(Q1), Some(7));
        t.subscribe("a/b", 1u32, opts(Q0), Some(9));
        let mut out = Vec::new();
        t.matches("a/b", &mut out);
        let mut ids = out[0].ids.clone();
        ids.sort();
        assert_eq!(ids, vec![7, 9]);
    }

    /// A repeated SUBSCRIBE replaces the subscription [MQTT-3.8.4-3].
    #[test]
    fn resubscribe_replaces_and_unsubscribe_prunes() {
        let mut t = tree(&[("a/b", 1, Q0)]);
        assert!(!t.subscribe("a/b", 1, opts(Q2), None));
        assert_eq!(t.len(), 1);
        assert_eq!(who(&t, "a/b"), vec![(1, Q2)]);
        assert!(t.unsubscribe("a/b", &1));
        assert!(!t.unsubscribe("a/b", &1));
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "empty nodes are pruned");
        t.subscribe("x/#", 3, opts(Q0), None);
        assert!(t.unsubscribe("x/#", &3));
        assert!(t.root.is_empty());
    }
}
