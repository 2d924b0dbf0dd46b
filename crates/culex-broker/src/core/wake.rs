//! How the core reaches a connection, whatever drives it.
//!
//! The core keeps, for each attached session, the [`Waker`] of the
//! connection holding it, and uses it to say that deliveries are ready, that
//! another connection took the session over, or that a session this
//! connection's publishes were paused for has drained. The runtime
//! implements it (a task's notification, or the parker's); the core never
//! names the runtime.

use std::sync::Arc;

/// A connection as the core sees it.
pub trait Waker: Send + Sync + std::fmt::Debug {
    /// Something became ready for the connection.
    fn wake(&self);
    /// Another connection took the session over [MQTT-3.1.4-2]: the
    /// connection must close. Sets the flag, then wakes.
    fn kick(&self);
    /// A session this connection's publishes were paused for has drained
    /// (back-pressure). Sets the flag, then wakes.
    fn resume(&self);
    /// Whether [`Waker::kick`] was called.
    fn is_kicked(&self) -> bool;
    /// Whether [`Waker::resume`] was called since the last call; clears it.
    fn take_resume(&self) -> bool;
}

/// A connection's waker, shared by the sessions it reaches.
pub type ConnWaker = Arc<dyn Waker>;

/// Whether two wakers are the same connection.
pub fn same(a: &ConnWaker, b: &ConnWaker) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
