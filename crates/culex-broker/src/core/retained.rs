//! Retained messages, indexed by topic level so that a wildcard subscribe
//! visits only the part of the tree its filter can match, not every
//! retained message.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::message::Message;

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    message: Option<Arc<Message>>,
}

/// Levels are dropped one after another, not by recursion (a topic of
/// thousands of levels must not overflow the stack).
impl Drop for Node {
    fn drop(&mut self) {
        let mut stack: Vec<Node> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, n)| n));
        }
    }
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
    /// Payload bytes of the retained messages.
    bytes: usize,
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

    /// Payload bytes of the retained messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Sets the retained message of its topic, replacing any older one
    /// [MQTT-3.3.1-5].
    pub fn insert(&mut self, msg: Arc<Message>) {
        let mut node = &mut self.root;
        for level in msg.topic.split('/') {
            node = node.children.entry(Box::from(level)).or_default();
        }
        self.bytes = self.bytes.saturating_add(msg.payload.len());
        match node.message.replace(msg) {
            Some(old) => self.bytes = self.bytes.saturating_sub(old.payload.len()),
            None => self.count += 1,
        }
    }

    /// Clears the retained message of `topic`; `true` when there was one.
    /// Levels left empty are pruned, without recursion.
    pub fn remove(&mut self, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        let mut node = &mut self.root;
        for level in &levels {
            match node.children.get_mut(*level) {
                Some(child) => node = child,
                None => return false,
            }
        }
        let Some(old) = node.message.take() else {
            return false;
        };
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(old.payload.len());
        prune(&mut self.root, &levels);
        true
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
        collect(&self.root, &levels, now, &mut out);
        out
    }
}

/// Cuts the path of `levels` below the deepest node that holds anything
/// else, when the last node is empty.
fn prune(root: &mut Node, levels: &[&str]) {
    let mut cut = None;
    let mut node = &*root;
    for (depth, level) in levels.iter().enumerate() {
        let Some(child) = node.children.get(*level) else {
            return;
        };
        if depth == 0 || node.children.len() > 1 || node.message.is_some() {
            cut = Some(depth);
        }
        node = child;
    }
    let (Some(cut), true) = (cut, node.is_empty()) else {
        return;
    };
    let mut node = root;
    for level in levels.iter().take(cut) {
        match node.children.get_mut(*level) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(level) = levels.get(cut) {
        node.children.remove(*level);
    }
}

/// Collects the unexpired retained messages under `filter`'s levels, with an
/// explicit stack instead of recursion per level.
fn collect(root: &Node, levels: &[&str], now: Instant, out: &mut Vec<Arc<Message>>) {
    let push = |out: &mut Vec<Arc<Message>>, node: &Node| {
        if let Some(m) = &node.message {
            if !m.is_expired(now) {
                out.push(m.clone());
            }
        }
    };
    // (node, the filter's levels still to match, whether it is the root)
    let mut stack: Vec<(&Node, &[&str], bool)> = vec![(root, levels, true)];
    while let Some((node, levels, root)) = stack.pop() {
        let Some((level, rest)) = levels.split_first() else {
            push(out, node);
            continue;
        };
        // Wildcards at the first level skip `$` topics [MQTT-4.7.2-1].
        let visible = |name: &str| !(root && name.starts_with('$'));
        match *level {
            "#" => {
                // `#` also matches the parent level itself [MQTT-4.7.1-2].
                if !root {
                    push(out, node);
                }
                let mut below: Vec<&Node> = node
                    .children
                    .iter()
                    .filter(|(name, _)| visible(name))
                    .map(|(_, child)| child)
                    .collect();
                while let Some(n) = below.pop() {
                    push(out, n);
                    below.extend(n.children.values());
                }
            }
            "+" => {
                for (name, child) in &node.children {
                    if visible(name) {
                        stack.push((child, rest, false));
                    }
                }
            }
            exact => {
                if let Some(child) = node.children.get(exact) {
                    stack.push((child, rest, false));
                }
            }
        }
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

    /// Insert, match, remove (pruning every level) and drop a topic of
    /// 100,000 levels on a thread with a 64 KiB stack: nothing recurses.
    #[test]
    fn deep_topics_need_no_stack() {
        let run = || {
            let deep = "a/".repeat(100_000) + "x";
            let mut t = store(&[&deep, "a/b"]);
            assert_eq!(found(&t, "#").len(), 2);
            assert_eq!(found(&t, &("+/".repeat(100_000) + "+")), vec![deep.clone()]);
            assert!(t.remove(&deep));
            assert_eq!(found(&t, "#"), vec!["a/b".to_string()]);
            assert_eq!(t.root.children["a"].children.len(), 1, "pruned");
            let t2 = store(&[&deep]);
            drop(t2);
            drop(t);
        };
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }
}
