//! [`Lazy`]: a collection one pointer wide that allocates nothing until it
//! is first given an element. Every session holds a few collections that
//! stay empty for most clients (QoS 2 ids, subscriptions, queues); as plain
//! `HashMap`s and `VecDeque`s they cost an idle connection 32 to 48 bytes
//! each.
//!
//! The methods mirror the standard ones the broker uses, so that a field can
//! change type without its users changing.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::iter::Flatten;
use std::ops::RangeBounds;
use std::option;

/// A collection allocated on first insertion. Once allocated it stays, so
/// that a busy session does not allocate it again and again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lazy<T>(Option<Box<T>>);

impl<T> Default for Lazy<T> {
    fn default() -> Self {
        Lazy(None)
    }
}

impl<T: Default> Lazy<T> {
    /// An empty collection (no allocation).
    pub const fn new() -> Self {
        Lazy(None)
    }

    fn inner(&self) -> Option<&T> {
        self.0.as_deref()
    }

    fn inner_mut(&mut self) -> Option<&mut T> {
        self.0.as_deref_mut()
    }

    fn force(&mut self) -> &mut T {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<T> Lazy<VecDeque<T>> {
    /// As [`VecDeque::push_back`].
    pub fn push_back(&mut self, value: T) {
        self.force().push_back(value);
    }

    /// As [`VecDeque::pop_front`].
    pub fn pop_front(&mut self) -> Option<T> {
        self.inner_mut()?.pop_front()
    }

    /// As [`VecDeque::front`].
    pub fn front(&self) -> Option<&T> {
        self.inner()?.front()
    }

    /// As [`VecDeque::back`].
    pub fn back(&self) -> Option<&T> {
        self.inner()?.back()
    }

    /// As [`VecDeque::len`].
    pub fn len(&self) -> usize {
        self.inner().map_or(0, VecDeque::len)
    }

    /// As [`VecDeque::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.inner().is_none_or(VecDeque::is_empty)
    }

    /// As [`VecDeque::iter`].
    pub fn iter(&self) -> Flatten<option::IntoIter<&VecDeque<T>>> {
        self.0.as_deref().into_iter().flatten()
    }

    /// As [`VecDeque::iter_mut`].
    pub fn iter_mut(&mut self) -> Flatten<option::IntoIter<&mut VecDeque<T>>> {
        self.0.as_deref_mut().into_iter().flatten()
    }

    /// As [`VecDeque::remove`].
    pub fn remove(&mut self, index: usize) -> Option<T> {
        self.inner_mut()?.remove(index)
    }

    /// As [`VecDeque::clear`].
    pub fn clear(&mut self) {
        if let Some(q) = self.inner_mut() {
            q.clear();
        }
    }

    /// As [`VecDeque::drain`].
    pub fn drain<R: RangeBounds<usize>>(&mut self, range: R) -> impl Iterator<Item = T> + '_ {
        self.inner_mut()
            .map(|q| q.drain(range))
            .into_iter()
            .flatten()
    }
}

impl<T> From<Vec<T>> for Lazy<VecDeque<T>> {
    fn from(v: Vec<T>) -> Self {
        if v.is_empty() {
            Lazy(None)
        } else {
            Lazy(Some(Box::new(v.into())))
        }
    }
}

impl<T> From<VecDeque<T>> for Lazy<VecDeque<T>> {
    fn from(v: VecDeque<T>) -> Self {
        if v.is_empty() {
            Lazy(None)
        } else {
            Lazy(Some(Box::new(v)))
        }
    }
}

impl<T> Lazy<Vec<T>> {
    /// As [`Vec::push`].
    pub fn push(&mut self, value: T) {
        self.force().push(value);
    }

    /// As `Vec::iter`.
    pub fn iter(&self) -> Flatten<option::IntoIter<&Vec<T>>> {
        self.0.as_deref().into_iter().flatten()
    }

    /// As [`Vec::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.inner().is_none_or(Vec::is_empty)
    }

    /// As [`Vec::len`].
    pub fn len(&self) -> usize {
        self.inner().map_or(0, Vec::len)
    }

    /// The elements, leaving it empty (and unallocated).
    pub fn take_all(&mut self) -> Vec<T> {
        self.0.take().map(|v| *v).unwrap_or_default()
    }
}

impl<K: Hash + Eq, V> Lazy<HashMap<K, V>> {
    /// As [`HashMap::insert`].
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.force().insert(key, value)
    }

    /// As [`HashMap::remove`]; the map is freed when it becomes empty.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.inner_mut()?;
        let removed = map.remove(key);
        if map.is_empty() {
            self.0 = None;
        }
        removed
    }

    /// As [`HashMap::get`].
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.as_deref()?.get(key)
    }

    /// As [`HashMap::contains_key`].
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).is_some()
    }

    /// As [`HashMap::keys`].
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.as_deref().into_iter().flat_map(HashMap::keys)
    }

    /// As [`HashMap::iter`].
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.as_deref().into_iter().flatten()
    }

    /// As [`HashMap::len`].
    pub fn len(&self) -> usize {
        self.0.as_deref().map_or(0, HashMap::len)
    }

    /// As [`HashMap::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// As [`HashMap::drain`]; the map is freed.
    pub fn drain(&mut self) -> impl Iterator<Item = (K, V)> {
        self.0.take().into_iter().flat_map(|m| *m)
    }
}

impl<K: Hash + Eq> Lazy<HashSet<K>> {
    /// As [`HashSet::insert`].
    pub fn insert(&mut self, key: K) -> bool {
        self.force().insert(key)
    }

    /// As [`HashSet::remove`]; the set is freed when it becomes empty.
    pub fn remove<Q>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let Some(set) = self.inner_mut() else {
            return false;
        };
        let removed = set.remove(key);
        if set.is_empty() {
            self.0 = None;
        }
        removed
    }

    /// As [`HashSet::contains`].
    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.as_deref().is_some_and(|s| s.contains(key))
    }

    /// As [`HashSet::len`].
    pub fn len(&self) -> usize {
        self.0.as_deref().map_or(0, HashSet::len)
    }

    /// As [`HashSet::drain`]; the set is freed.
    pub fn drain(&mut self) -> impl Iterator<Item = K> {
        self.0.take().into_iter().flat_map(|s| *s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deque_behaves_like_vecdeque() {
        let mut q: Lazy<VecDeque<u32>> = Lazy::new();
        assert!(q.is_empty());
        assert_eq!(q.pop_front(), None);
        assert_eq!(q.drain(..).count(), 0);
        q.push_back(1);
        q.push_back(2);
        q.push_back(3);
        assert_eq!(q.front(), Some(&1));
        assert_eq!(q.remove(1), Some(2));
        for x in q.iter_mut() {
            *x *= 10;
        }
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), vec![10, 30]);
        assert_eq!(q.drain(..).collect::<Vec<_>>(), vec![10, 30]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn map_and_set_free_themselves_when_emptied() {
        let mut m: Lazy<HashMap<String, u8>> = Lazy::new();
        assert_eq!(m.insert("a".into(), 1), None);
        assert_eq!(m.get("a"), Some(&1));
        assert_eq!(m.keys().count(), 1);
        assert_eq!(m.remove("a"), Some(1));
        assert!(m.0.is_none());
        m.insert("b".into(), 2);
        assert_eq!(m.drain().collect::<Vec<_>>(), vec![("b".to_owned(), 2)]);
        assert!(m.is_empty());

        let mut s: Lazy<HashSet<u16>> = Lazy::new();
        assert!(s.insert(7));
        assert!(!s.insert(7));
        assert!(s.contains(&7));
        assert!(s.remove(&7));
        assert!(s.0.is_none());
        assert!(!s.remove(&7));
    }
}
