//! Retained messages, indexed by topic level so that a wildcard subscribe
//! visits only the part of the tree its filter can match, not every
//! retained message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::message::Message;

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    message: Option<Arc<Message>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// The retained message of each topic.
#[derive(Debug, Default)]
pub struct RetainedTree {
    root: Node,
    count: usize,
}

impl RetainedTree {
    /// An empty store.
    pub fn new() -> RetainedTree {
        RetainedTree::default()
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sets the retained message of its topic, replacing any older one
    /// [MQTT-3.3.1-5].
    pub fn insert(&mut self, msg: Arc<Message>) {
        let mut node = &mut self.root;
        for level in msg.topic.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        if node.message.replace(msg).is_none() {
            self.count += 1;
        }
    }

    /// Clears the retained message of `topic`; `true` when there was one.
    pub fn remove(&mut self, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        let removed = remove(&mut self.root, &levels);
        if removed {
            self.count = self.count.saturating_sub(1);
        }
        removed
    }

    /// The retained message of `topic`.
    pub fn get(&self, topic: &str) -> Option<&Arc<Message>> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref()
    }

    /// The unexpired retained messages matching `filter` (a validated filter
    /// without `$share/`), by the matching rules of [MQTT-4.7.1-2],
    /// [MQTT-4.7.1-3] and [MQTT-4.7.2-1].
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        let levels: Vec<&str> = filter.split('/').collect();
        let mut out = Vec::new();
        collect(&self.root, &levels, true, now, &mut out);
        out
    }
}

fn remove(node: &mut Node, levels: &[&str]) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.message.take().is_some();
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove(child, rest);
    if child.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn collect(node: &Node, levels: &[&str], root: bool, now: Instant, out: &mut Vec<Arc<Message>>) {
    let Some((level, rest)) = levels.split_first() else {
        if let Some(m) = &node.message {
            if !m.is_expired(now) {
                out.push(m.clone());
            }
        }
        return;
    };
    // Wildcards at the first level skip `$` topics [MQTT-4.7.2-1].
    let visible = |name: &str| !(root && name.starts_with('$'));
    match *level {
        "#" => {
            // `#` also matches the parent level itself [MQTT-4.7.1-2].
            if !root {
                if let Some(m) = &node.message {
                    if !m.is_expired(now) {
                        out.push(m.clone());
                    }
                }
            }
            for (name, child) in &node.children {
                if visible(name) {
                    all(child, now, out);
                }
            }
        }
        "+" => {
            for (name, child) in &node.children {
                if visible(name) {
                    collect(child, rest, false, now, out);
                }
            }
        }
        exact => {
            if let Some(child) = node.children.get(exact) {
                collect(child, rest, false, now, out);
            }
        }
    }
}

fn all(node: &Node, now: Instant, out: &mut Vec<Arc<Message>>) {
    if let Some(m) = &node.message {
        if !m.is_expired(now) {
            out.push(m.clone());
        }
    }
    for child in node.children.values() {
        all(child, now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use culex_codec::QoS;

    fn store(topics: &[&str]) -> RetainedTree {
        let now = Instant::now();
        let mut t = RetainedTree::new();
        for topic in topics {
            t.insert(Arc::new(Message::new(
                topic,
                "x",
                QoS::AtMostOnce,
                true,
                now,
            )));
        }
        t
    }

    fn found(t: &RetainedTree, filter: &str) -> Vec<String> {
        let mut v: Vec<String> = t
            .matching(filter, Instant::now())
            .iter()
            .map(|m| m.topic.to_string())
            .collect();
        v.sort();
        v
    }

    /// The same table as the subscription matcher, from the retained side.
    #[test]
    fn matching_agrees_with_the_topic_rules() {
        let topics = [
            "a", "a/b", "a/b/c", "a//b", "/a", "$SYS/x", "$SYS/x/y", "b/é",
        ];
        let t = store(&topics);
        let filters = [
            "#", "+", "a/#", "a/+", "+/+", "/+", "a/+/c", "$SYS/#", "$SYS/+", "+/x", "a//b",
            "a/+/b", "b/+",
        ];
        for filter in filters {
            let mut expect: Vec<String> = topics
                .iter()
                .filter(|t| culex_codec::topic::matches(filter, t))
                .map(|t| t.to_string())
                .collect();
            expect.sort();
            assert_eq!(found(&t, filter), expect, "{filter}");
        }
    }

    #[test]
    fn replace_remove_and_prune() {
        let mut t = store(&["a/b", "a/b"]);
        assert_eq!(t.len(), 1);
        assert!(t.get("a/b").is_some());
        assert!(t.remove("a/b"));
        assert!(!t.remove("a/b"));
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "empty levels pruned");
    }
}
