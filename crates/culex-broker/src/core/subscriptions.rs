//! The subscription tree: topic filters by level, matched against topic
//! names by the rules of [MQTT 3.1.1, 4.7] / [MQTT 5.0, 4.7].
//!
//! Generic over the subscriber key so that it is tested on its own; the
//! runtime keys it by session. It is read-locked for the length of one match
//! per publish and write-locked by SUBSCRIBE/UNSUBSCRIBE.
//!
//! Shared subscriptions (`$share/GROUP/FILTER`, [MQTT 5.0, 4.8.2]) live at
//! their filter's node as groups: each message goes to one member, chosen
//! round-robin among the members the caller says are available.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use culex_codec::{QoS, SubscriptionOptions};
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One subscription in the tree.
#[derive(Debug, Clone)]
struct Entry<K> {
    key: K,
    options: SubscriptionOptions,
    id: Option<u32>,
}

/// FNV-1a from a per-process random seed: topic levels are short and SipHash
/// showed up in profiles; the seed keeps collisions hard to craft.
#[derive(Debug, Clone, Copy)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct FnvBuild(u64);

impl Default for FnvBuild {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let seed = *SEED.get_or_init(|| {
            use std::hash::BuildHasher;
            std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
        });
        FnvBuild(0xcbf2_9ce4_8422_2325 ^ seed)
    }
}

impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(self.0)
    }
}

type FastMap<K, V> = HashMap<K, V, FnvBuild>;

#[derive(Debug)]
struct Node<K> {
    children: FastMap<Box<str>, Node<K>>,
    /// Subscriptions whose filter ends at this node.
    exact: Vec<Entry<K>>,
    /// Subscriptions of `…/#` one level above: they match this node's level
    /// and everything below it [MQTT-4.7.1-2].
    multi: Vec<Entry<K>>,
    /// Shared-subscription groups whose filter ends here.
    exact_groups: Vec<Group<K>>,
    /// Shared-subscription groups of `…/#` one level above.
    multi_groups: Vec<Group<K>>,
}

/// The members of one `$share/GROUP/FILTER`.
#[derive(Debug)]
struct Group<K> {
    name: Arc<str>,
    members: Vec<Entry<K>>,
    next: AtomicUsize,
}

impl<K> Default for Node<K> {
    fn default() -> Self {
        Node {
            children: FastMap::default(),
            exact: Vec::new(),
            multi: Vec::new(),
            exact_groups: Vec::new(),
            multi_groups: Vec::new(),
        }
    }
}

/// Levels are dropped one after another, not by recursion: a filter of
/// thousands of levels must not overflow the stack when it goes.
impl<K> Drop for Node<K> {
    fn drop(&mut self) {
        let mut stack: Vec<Node<K>> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut node) = stack.pop() {
            stack.extend(node.children.drain().map(|(_, n)| n));
        }
    }
}

impl<K> Node<K> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.exact.is_empty()
            && self.multi.is_empty()
            && self.exact_groups.is_empty()
            && self.multi_groups.is_empty()
    }
}

/// Splits `$share/GROUP/FILTER` into the group and the filter.
pub fn split_shared(filter: &str) -> (Option<&str>, &str) {
    match filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((group, f)) => (Some(group), f),
        None => (None, filter),
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
    /// For a shared subscription, its whole `$share/GROUP/FILTER` (never
    /// merged with other matches).
    pub share: Option<Arc<str>>,
}

/// A shared group a topic matched, with every member (each as a
/// [`Match`] naming the group), for a caller that picks one per message
/// itself; `turn` is the group's turn, taken for this caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMatch<K> {
    /// Every member, in the group's order.
    pub members: Vec<Match<K>>,
    /// The group's turn when it matched (see [`pick_turn`]).
    pub turn: usize,
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

    /// Adds or replaces `key`'s subscription to `filter` (validated; may be
    /// `$share/GROUP/FILTER`). Returns `true` when it is new; an existing one
    /// is replaced [MQTT-3.8.4-3].
    pub fn subscribe(
        &mut self,
        filter: &str,
        key: K,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) -> bool {
        let full = filter;
        let (group, filter) = split_shared(full);
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        let mut multi = false;
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                multi = true;
                break;
            }
            node = node.children.entry(Box::from(level)).or_default();
        }
        let entry = Entry { key, options, id };
        let list = match group {
            None if multi => &mut node.multi,
            None => &mut node.exact,
            Some(_) => {
                // Groups are keyed by the whole `$share/GROUP/FILTER`.
                let name = full;
                let groups = if multi {
                    &mut node.multi_groups
                } else {
                    &mut node.exact_groups
                };
                let pos = match groups.iter().position(|g| &*g.name == name) {
                    Some(pos) => pos,
                    None => {
                        groups.push(Group {
                            name: Arc::from(name),
                            members: Vec::new(),
                            next: AtomicUsize::new(0),
                        });
                        groups.len() - 1
                    }
                };
                match groups.get_mut(pos) {
                    Some(g) => &mut g.members,
                    None => return false,
                }
            }
        };
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
    /// Levels left empty are pruned. Neither walk recurses per level.
    pub fn unsubscribe(&mut self, filter: &str, key: &K) -> bool {
        let (group, plain) = split_shared(filter);
        let group = group.map(|_| filter);
        let mut levels: Vec<&str> = plain.split('/').collect();
        let multi = levels.last() == Some(&"#");
        if multi {
            levels.pop();
        }
        let mut node = &mut self.root;
        for level in &levels {
            match node.children.get_mut(*level) {
                Some(child) => node = child,
                None => return false,
            }
        }
        let removed = match (group, multi) {
            (None, false) => take_entry(&mut node.exact, key),
            (None, true) => take_entry(&mut node.multi, key),
            (Some(g), false) => take_member(&mut node.exact_groups, g, key),
            (Some(g), true) => take_member(&mut node.multi_groups, g, key),
        };
        if removed {
            self.count = self.count.saturating_sub(1);
            prune(&mut self.root, &levels);
        }
        removed
    }

    /// The members of a shared group (for re-routing a leaving member's messages).
    pub fn group_members(&self, shared_filter: &str) -> Vec<K> {
        let (Some(_), filter) = split_shared(shared_filter) else {
            return Vec::new();
        };
        let group = shared_filter;
        let mut node = &self.root;
        let mut levels = filter.split('/').peekable();
        let mut multi = false;
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                multi = true;
                break;
            }
            match node.children.get(level) {
                Some(child) => node = child,
                None => return Vec::new(),
            }
        }
        let groups = if multi {
            &node.multi_groups
        } else {
            &node.exact_groups
        };
        groups
            .iter()
            .find(|g| &*g.name == group)
            .map(|g| g.members.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default()
    }

    /// Every subscriber of `topic`, one entry per key, appended to `out`.
    pub fn matches(&self, topic: &str, out: &mut Vec<Match<K>>) {
        self.matches_with(topic, out, &|_| true);
    }

    /// As [`SubscriptionTree::matches`]; each shared group contributes one
    /// member, the next in turn for which `available` holds (or the next in
    /// turn when none does).
    pub fn matches_with(
        &self,
        topic: &str,
        out: &mut Vec<Match<K>>,
        available: &dyn Fn(&K) -> bool,
    ) {
        self.matches_ranked(topic, out, &|k| if available(k) { READY } else { 0 });
    }

    /// As [`SubscriptionTree::matches`]; each shared group contributes one
    /// member: the next in turn among those of the highest `rank` (e.g. 2:
    /// ready for a message now, 1: online but its window is full, 0:
    /// offline), so that an offline member is only chosen when every member
    /// is offline. The group's turn moves past the member chosen.
    pub fn matches_ranked(&self, topic: &str, out: &mut Vec<Match<K>>, rank: &dyn Fn(&K) -> u8) {
        self.walk(topic, out, rank, None);
    }

    /// As [`SubscriptionTree::matches`], except that each shared group
    /// goes to `groups` whole, for the caller to pick a member per message
    /// (see [`pick_turn`]); each group's turn moves on by one.
    pub fn matches_grouped(
        &self,
        topic: &str,
        out: &mut Vec<Match<K>>,
        groups: &mut Vec<GroupMatch<K>>,
    ) {
        self.walk(topic, out, &|_| READY, Some(groups));
    }

    fn walk(
        &self,
        topic: &str,
        out: &mut Vec<Match<K>>,
        rank: &dyn Fn(&K) -> u8,
        groups: Option<&mut Vec<GroupMatch<K>>>,
    ) {
        let dollar = topic.starts_with('$');
        let start = out.len();
        let mut cx = Collect {
            out,
            start,
            rank,
            groups,
        };
        collect(&self.root, topic, dollar, &mut cx);
    }
}

/// A tree behind its lock, with a generation that moves on at every
/// change: what lets a publisher keep the subscribers of the topic it last
/// published to (see `route.rs`) and know when they may be stale.
#[derive(Debug)]
pub struct SharedTree<K> {
    tree: RwLock<SubscriptionTree<K>>,
    generation: AtomicU64,
}

impl<K> Default for SharedTree<K> {
    fn default() -> Self {
        SharedTree {
            tree: RwLock::new(SubscriptionTree::default()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K> SharedTree<K> {
    /// The tree, for a match or a look.
    pub fn read(&self) -> RwLockReadGuard<'_, SubscriptionTree<K>> {
        self.tree.read()
    }

    /// The tree, for a change: the generation moves on when the guard
    /// drops, before the lock is released.
    pub fn write(&self) -> TreeWriteGuard<'_, K> {
        TreeWriteGuard {
            tree: self.tree.write(),
            generation: &self.generation,
        }
    }

    /// Read before a match, so that a match made while the tree changed is
    /// kept under the older generation, and so is not trusted again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// Write access to a [`SharedTree`].
pub struct TreeWriteGuard<'a, K> {
    tree: RwLockWriteGuard<'a, SubscriptionTree<K>>,
    generation: &'a AtomicU64,
}

impl<K> std::ops::Deref for TreeWriteGuard<'_, K> {
    type Target = SubscriptionTree<K>;
    fn deref(&self) -> &SubscriptionTree<K> {
        &self.tree
    }
}

impl<K> std::ops::DerefMut for TreeWriteGuard<'_, K> {
    fn deref_mut(&mut self) -> &mut SubscriptionTree<K> {
        &mut self.tree
    }
}

impl<K> Drop for TreeWriteGuard<'_, K> {
    fn drop(&mut self) {
        // Runs before the field's guard releases the lock.
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// Removes the empty levels at the end of `levels`: finds the shallowest
/// node from which the rest of the path holds nothing else, then cuts the
/// path there.
fn prune<K>(root: &mut Node<K>, levels: &[&str]) {
    let mut cut = None;
    let mut node = &*root;
    for (depth, level) in levels.iter().enumerate() {
        let Some(child) = node.children.get(*level) else {
            return;
        };
        let only_path = node.children.len() == 1
            && node.exact.is_empty()
            && node.multi.is_empty()
            && node.exact_groups.is_empty()
            && node.multi_groups.is_empty();
        if !only_path || depth == 0 {
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

fn take_member<K: Eq>(groups: &mut Vec<Group<K>>, name: &str, key: &K) -> bool {
    let Some(pos) = groups.iter().position(|g| &*g.name == name) else {
        return false;
    };
    let Some(group) = groups.get_mut(pos) else {
        return false;
    };
    let removed = take_entry(&mut group.members, key);
    if group.members.is_empty() {
        groups.swap_remove(pos);
    }
    removed
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

struct Collect<'a, K> {
    out: &'a mut Vec<Match<K>>,
    start: usize,
    rank: &'a dyn Fn(&K) -> u8,
    /// Where whole groups go, instead of one member picked.
    groups: Option<&'a mut Vec<GroupMatch<K>>>,
}

/// Walks the tree along the levels of `topic` without recursion: the exact
/// level is followed at once, a `+` sibling waits on `pending` (which stays
/// unallocated unless the tree has `+` where this topic passes).
fn collect<K: Clone + Eq + Hash>(
    root: &Node<K>,
    topic: &str,
    dollar: bool,
    cx: &mut Collect<'_, K>,
) {
    let mut pending: Vec<(&Node<K>, Option<&str>, bool)> = Vec::new();
    // (node, the levels of the topic not yet matched, whether it is the root)
    let mut next = Some((root, Some(topic), true));
    while let Some((node, rest, at_root)) = next.take().or_else(|| pending.pop()) {
        // A filter starting with a wildcard never matches a `$` topic [MQTT-4.7.2-1].
        let wildcards_allowed = !(dollar && at_root);
        if wildcards_allowed {
            for e in &node.multi {
                add(cx, e);
            }
            for g in &node.multi_groups {
                pick(cx, g);
            }
        }
        let Some(remaining) = rest else {
            for e in &node.exact {
                add(cx, e);
            }
            for g in &node.exact_groups {
                pick(cx, g);
            }
            continue;
        };
        let (level, rest) = match remaining.split_once('/') {
            Some((level, rest)) => (level, Some(rest)),
            None => (remaining, None),
        };
        if wildcards_allowed && level != "+" {
            if let Some(child) = node.children.get("+") {
                pending.push((child, rest, false));
            }
        }
        if let Some(child) = node.children.get(level) {
            next = Some((child, rest, false));
        }
    }
}

fn add<K: Clone + Eq>(cx: &mut Collect<'_, K>, e: &Entry<K>) {
    let existing = cx.out.get_mut(cx.start..).and_then(|tail| {
        tail.iter_mut()
            .find(|m| m.share.is_none() && m.key == e.key)
    });
    match existing {
        Some(m) => {
            m.qos = m.qos.max(e.options.qos);
            m.ids.extend(e.id);
        }
        None => cx.out.push(Match {
            key: e.key.clone(),
            qos: e.options.qos,
            options: e.options,
            ids: e.id.into_iter().collect(),
            share: None,
        }),
    }
}

/// One member of a shared group, round-robin among the members of the
/// highest rank; the turn moves on past the member chosen, so skipped
/// members do not give their turns to their neighbour.
fn pick<K: Clone>(cx: &mut Collect<'_, K>, g: &Group<K>) {
    let member = |e: &Entry<K>| Match {
        key: e.key.clone(),
        qos: e.options.qos,
        options: e.options,
        ids: e.id.into_iter().collect(),
        share: Some(g.name.clone()),
    };
    if g.members.is_empty() {
        return;
    }
    let turn = g.next.fetch_add(1, Ordering::Relaxed);
    if let Some(groups) = cx.groups.as_deref_mut() {
        groups.push(GroupMatch {
            members: g.members.iter().map(member).collect(),
            turn,
        });
        return;
    }
    if let Some((i, skipped)) = pick_turn(&g.members, turn, |e| (cx.rank)(&e.key)) {
        if skipped > 0 {
            g.next.fetch_add(skipped, Ordering::Relaxed);
        }
        if let Some(e) = g.members.get(i) {
            cx.out.push(member(e));
        }
    }
}

/// The member of a shared group whose turn it is: from `turn`, the first
/// of rank [`READY`], else the first of the highest rank there is. Returns
/// its index and how many members it skipped: the turn moves on past the
/// member chosen, so that skipped members do not give their turns to their
/// neighbour. `None` when there are no members.
pub fn pick_turn<T>(members: &[T], turn: usize, rank: impl Fn(&T) -> u8) -> Option<(usize, usize)> {
    let n = members.len();
    if n == 0 {
        return None;
    }
    let start = turn % n;
    let mut best: Option<(usize, u8)> = None;
    for offset in 0..n {
        let Some(m) = members.get((start + offset) % n) else {
            continue;
        };
        let r = rank(m);
        if best.is_none_or(|(_, b)| r > b) {
            best = Some((offset, r));
        }
        if r >= READY {
            break;
        }
    }
    best.map(|(offset, _)| ((start + offset) % n, offset))
}

/// The rank of a shared-group member that can take a message at once.
pub const READY: u8 = 2;

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

    /// Shared subscriptions: one member per message, round-robin, skipping
    /// unavailable members (5.0 §4.8.2, a rule without a number); separate from ordinary subscriptions.
    #[test]
    fn shared_groups_round_robin() {
        let mut t = SubscriptionTree::new();
        for k in [1u32, 2, 3] {
            t.subscribe("$share/g/s/+", k, opts(Q1), None);
        }
        t.subscribe("s/#", 9, opts(Q0), None);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let mut out = Vec::new();
            t.matches("s/x", &mut out);
            let shared: Vec<_> = out
                .iter()
                .filter(|m| m.share.is_some())
                .map(|m| m.key)
                .collect();
            assert_eq!(shared.len(), 1);
            assert!(out.iter().any(|m| m.key == 9 && m.share.is_none()));
            seen.push(shared[0]);
        }
        seen.sort();
        assert_eq!(seen, vec![1, 1, 2, 2, 3, 3]);
        let mut out = Vec::new();
        t.matches_with("s/x", &mut out, &|k| *k == 3);
        assert!(out.iter().any(|m| m.key == 3 && m.share.is_some()));
        assert_eq!(t.group_members("$share/g/s/+").len(), 3);
        for k in [1u32, 2, 3] {
            assert!(t.unsubscribe("$share/g/s/+", &k));
        }
        assert!(t.unsubscribe("s/#", &9));
        assert!(t.root.is_empty());
    }

    /// Ranked picks (5.0 §4.8.2): an offline member (rank 0) is skipped and
    /// the others share the messages evenly; an online member with a full
    /// window (rank 1) is still preferred to an offline one.
    #[test]
    fn shared_groups_skip_offline_members_evenly() {
        let mut t = SubscriptionTree::new();
        for k in [1u32, 2, 3] {
            t.subscribe("$share/g/s", k, opts(Q1), None);
        }
        let pick = |rank: &dyn Fn(&u32) -> u8| {
            let mut seen = Vec::new();
            for _ in 0..6 {
                let mut out = Vec::new();
                t.matches_ranked("s", &mut out, rank);
                seen.extend(out.iter().map(|m| m.key));
            }
            seen.sort();
            seen
        };
        let offline_one = |k: &u32| if *k == 1 { 0 } else { READY };
        let (first, rest): (Vec<u32>, Vec<u32>) = pick(&offline_one).iter().partition(|k| **k == 1);
        assert!(first.is_empty());
        let twos = rest.iter().filter(|k| **k == 2).count();
        assert_eq!((twos, rest.len() - twos), (3, 3));
        assert_eq!(pick(&|k| u8::from(*k == 2)), vec![2; 6]);
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

    /// Walks over the tree never recurse per level: a 100,000-level filter
    /// is matched, removed (pruning every level) and dropped on a thread
    /// with a 64 KiB stack.
    #[test]
    fn deep_filters_need_no_stack() {
        let run = || {
            let deep = "a/".repeat(100_000) + "x";
            let plus = "+/".repeat(100_000) + "#";
            let mut t = SubscriptionTree::new();
            t.subscribe(&deep, 1u32, opts(Q0), None);
            t.subscribe(&plus, 2u32, opts(Q0), None);
            t.subscribe("a/#", 3u32, opts(Q0), None);
            assert_eq!(who(&t, &deep), vec![(1, Q0), (2, Q0), (3, Q0)]);
            assert!(t.unsubscribe(&deep, &1));
            assert!(t.unsubscribe("a/#", &3));
            assert_eq!(who(&t, &deep), vec![(2, Q0)]);
            t.subscribe(&deep, 1u32, opts(Q0), None);
            drop(t);
            let mut t = SubscriptionTree::new();
            t.subscribe(&deep, 1u32, opts(Q0), None);
            assert!(t.unsubscribe(&deep, &1));
            assert!(t.root.is_empty(), "every level pruned");
        };
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(run)
            .unwrap()
            .join()
            .unwrap();
    }

    /// Pruning stops at the deepest level still in use.
    #[test]
    fn pruning_keeps_shared_levels() {
        let mut t = tree(&[("a/b/c", 1, Q0), ("a/b", 2, Q0), ("a/x/y", 3, Q0)]);
        assert!(t.unsubscribe("a/b/c", &1));
        assert_eq!(who(&t, "a/b"), vec![(2, Q0)]);
        assert!(t.root.children["a"].children["b"].children.is_empty());
        assert!(t.unsubscribe("a/b", &2));
        assert!(!t.root.children["a"].children.contains_key("b"));
        assert_eq!(who(&t, "a/x/y"), vec![(3, Q0)]);
    }
}
