//! The session map: every session by client id, sharded so that connects
//! do not contend on one lock, and what a session's mutex protects.
//!
//! A session changes hands by generation: a connecting client claims it by
//! bumping its generation under the map's shard lock, and whatever an old
//! connection does on leaving first checks its own generation under the
//! same locks ([`SessionRef`] carries it).

use ::core::net::SocketAddr;
use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use culex_codec::Protocol;
use parking_lot::Mutex;

use super::compact::{Moment, PeerAddr};
use super::lazy::Lazy;
use super::message::Message;
use super::session::{Session, SessionLimits};
use super::wake::{same, ConnWaker};

const SHARDS: usize = 32;

/// A session and the connection currently holding it.
#[derive(Debug)]
pub(crate) struct SessionHandle {
    pub(super) client_id: Arc<str>,
    pub(super) inner: Mutex<SessionInner>,
}

/// What a session's mutex protects.
#[derive(Debug)]
pub(super) struct SessionInner {
    pub session: Session,
    /// The connection holding the session, to wake or kick.
    pub conn: Option<ConnWaker>,
    /// Incremented at each takeover, so that an old connection leaving does
    /// not detach its successor.
    pub generation: u64,
    pub username: Option<Arc<str>>,
    pub listener: u32,
    /// Seconds the session outlives its connection; `None`: forever.
    pub expiry: Option<u32>,
    /// When a connection last took the session (while one holds it) or
    /// left it (while none does): one field for both, as only one is
    /// ever needed.
    pub since: Moment,
    /// Set once the session has been removed from the map.
    pub ended: bool,
    /// Publishers paused until this session drains (back-pressure).
    pub paused: Lazy<Vec<ConnWaker>>,
    /// The will of the connection holding the session, taken by whoever
    /// ends that connection: the connection leaving, a takeover, or
    /// shutdown. Boxed: most clients have none.
    pub will: Option<Box<Message>>,
    /// Its 5.0 Will Delay Interval, in seconds.
    pub will_delay: u32,
    /// What the last connection to claim the session said of itself, for
    /// the admin API (the protocol's connection is parked most of the time).
    pub peer: PeerAddr,
    pub protocol: Protocol,
    /// The keep-alive the client asked for, in seconds.
    pub keep_alive: u16,
    /// A connection has held the session (its peer, protocol and
    /// keep-alive are known).
    pub has_connected: bool,
    /// An administrator kicked the connection holding the session.
    pub kicked: bool,
}

impl SessionInner {
    /// The paused publishers that may resume now (see
    /// [`Session::can_resume`]); the caller resumes them with
    /// [`resume_all`] once the lock is released.
    pub fn take_resumable(&mut self) -> Vec<ConnWaker> {
        if self.paused.is_empty() || !(self.ended || self.session.can_resume()) {
            return Vec::new();
        }
        self.paused.take_all()
    }

    /// Registers `publisher` to be resumed when this session drains.
    pub fn pause(&mut self, publisher: &ConnWaker) {
        if !self.paused.iter().any(|p| same(p, publisher)) {
            self.paused.push(publisher.clone());
        }
    }
}

/// Resumes paused publishers.
pub(super) fn resume_all(paused: Vec<ConnWaker>) {
    for p in paused {
        p.resume();
    }
}

impl SessionHandle {
    fn new(client_id: Arc<str>, limits: SessionLimits) -> SessionHandle {
        SessionHandle {
            client_id,
            inner: Mutex::new(SessionInner {
                session: Session::new(limits),
                conn: None,
                generation: 0,
                username: None,
                listener: 0,
                expiry: Some(0),
                since: Moment::NONE,
                ended: false,
                paused: Lazy::new(),
                will: None,
                will_delay: 0,
                peer: PeerAddr::from(SocketAddr::from(([0, 0, 0, 0], 0))),
                protocol: Protocol::V3_1_1,
                keep_alive: 0,
                has_connected: false,
                kicked: false,
            }),
        }
    }
}

/// A connection's hold on its session: the session and the generation it
/// claimed. Operations through it do nothing once another connection has
/// claimed the session since.
#[derive(Debug, Clone)]
pub(crate) struct SessionRef {
    pub(super) handle: Arc<SessionHandle>,
    pub(super) generation: u64,
}

impl SessionRef {
    /// The client id.
    pub fn client_id(&self) -> &Arc<str> {
        &self.handle.client_id
    }

    /// The session itself, to keep while parked.
    pub fn handle(&self) -> &Arc<SessionHandle> {
        &self.handle
    }
}

/// A session as a subscription-tree key: compared by identity.
#[derive(Debug, Clone)]
pub(crate) struct SessionKey(pub(super) Arc<SessionHandle>);

impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for SessionKey {}
impl Hash for SessionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

/// A session in the map, hashed and compared by its client id, so that the
/// map needs no key of its own: 8 bytes a session rather than 24.
#[derive(Debug, Clone)]
pub(super) struct Entry(Arc<SessionHandle>);

impl Entry {
    /// Whether this is the session `handle`.
    pub fn is(&self, handle: &Arc<SessionHandle>) -> bool {
        Arc::ptr_eq(&self.0, handle)
    }
}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.0.client_id == other.0.client_id
    }
}
impl Eq for Entry {}
impl Hash for Entry {
    /// As the client id's `str` hashes, as `Borrow` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.client_id.as_ref().hash(state);
    }
}

type Shard = Mutex<HashSet<Entry>>;

/// Sessions by client id.
pub(super) struct Sessions {
    shards: Vec<Shard>,
    /// Never used: `shard` indexes within bounds, but avoids a panic path.
    fallback: Shard,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions {
            shards: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            fallback: Mutex::new(HashSet::new()),
        }
    }

    pub fn shard(&self, client_id: &str) -> &Shard {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        client_id.hash(&mut h);
        let i = (h.finish() as usize) % SHARDS;
        self.shards.get(i).unwrap_or(&self.fallback)
    }

    /// The session of `client_id` and whether it already existed.
    pub fn get_or_create(
        &self,
        client_id: &Arc<str>,
        limits: SessionLimits,
    ) -> (Arc<SessionHandle>, bool) {
        self.find_or_insert(client_id, limits, |_| {})
    }

    /// The session of a connecting client: the one in the map, or a new
    /// one. Its generation is bumped at once, under the map's lock: an old
    /// connection ending the session (`Core::end_session` checks the
    /// generation under the same lock) either did so already, and the
    /// session is no longer in the map, or now leaves it alone. Without
    /// this, a session found here could be ended before the new connection
    /// took it over, and the client would be attached to a session nobody
    /// can reach.
    pub fn claim(&self, client_id: &Arc<str>, limits: SessionLimits) -> (Arc<SessionHandle>, bool) {
        self.find_or_insert(client_id, limits, |h| {
            let mut inner = h.inner.lock();
            inner.generation = inner.generation.wrapping_add(1);
        })
    }

    /// The session of `client_id`, after `existing` ran on it under the
    /// map's lock, or a new one; and whether it already existed.
    fn find_or_insert(
        &self,
        client_id: &Arc<str>,
        limits: SessionLimits,
        existing: impl FnOnce(&SessionHandle),
    ) -> (Arc<SessionHandle>, bool) {
        let mut shard = self.shard(client_id).lock();
        if let Some(Entry(h)) = shard.get(&**client_id) {
            existing(h);
            return (h.clone(), true);
        }
        let h = Arc::new(SessionHandle::new(client_id.clone(), limits));
        shard.insert(Entry(h.clone()));
        (h, false)
    }

    /// The session of `client_id`, if there is one.
    pub fn get(&self, client_id: &str) -> Option<Arc<SessionHandle>> {
        self.shard(client_id)
            .lock()
            .get(client_id)
            .map(|e| e.0.clone())
    }

    /// Every session.
    pub fn all(&self) -> Vec<Arc<SessionHandle>> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().iter().map(|e| e.0.clone()).collect::<Vec<_>>())
            .collect()
    }

    /// How many sessions there are.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}
#[cfg(test)]
mod tests {
    /// Every client holds one session handle, in an `Arc` (16 bytes more):
    /// it must fit jemalloc's 256-byte size class, or each idle client
    /// pays the next class, 64 bytes more.
    #[test]
    fn a_session_handle_fits_its_allocation_class() {
        let arc = std::mem::size_of::<super::SessionHandle>() + 16;
        assert!(arc <= 256, "Arc<SessionHandle> is {arc} bytes");
    }
}
