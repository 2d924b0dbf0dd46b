//! The protocol layer driven without a socket, on a simulated clock.
//!
//! [`Sim`] is a broker made of the core and one protocol `Connection` per
//! client, stepped by hand: a client's bytes go into its connection's
//! input, what the connections write comes back as the client's input,
//! wakes are flags, and time passes only when told to
//! ([`Sim::advance`], or a read that waits). The raw test client
//! ([`super::raw`]) runs on it through [`SimWire`], so a test reads as it
//! would over TCP; nothing here sleeps, and every run is the same. The
//! protocol's unit tests and the broker's fuzz target use it.
#![allow(clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use parking_lot::RwLock;

use crate::auth::Policy;
use crate::config::Config;
use crate::core::cluster::LocalCluster;
use crate::core::store::MemoryStore;
use crate::core::wake::Waker;
use crate::core::{Core, NoEvents};
use crate::protocol::{ClaimOutcome, Close, Connection, Handshake};
use crate::testing::raw::{Read, Wire};

/// Simulated time advances in steps of at most this, running timeouts and
/// housekeeping at each.
const STEP: Duration = Duration::from_millis(100);

thread_local! {
    /// The simulations of this test's thread, by the "port" clients open.
    static SIMS: RefCell<HashMap<u16, Rc<Hub>>> = RefCell::new(HashMap::new());
    static NEXT_PORT: Cell<u16> = const { Cell::new(1) };
}

/// A simulated broker; clients reach it with `Raw::connect(sim.port(), …)`.
pub struct Sim {
    port: u16,
    hub: Rc<Hub>,
}

struct Hub {
    core: Arc<Core>,
    now: Cell<Instant>,
    endpoints: RefCell<Vec<Endpoint>>,
}

/// One client's connection and the bytes in flight both ways.
struct Endpoint {
    conn: Option<Connection>,
    waker: Arc<SimWaker>,
    to_server: BytesMut,
    to_client: BytesMut,
    accepted: bool,
    wait_until: Option<Instant>,
    /// The client closed its side.
    client_closed: bool,
}

impl Sim {
    /// A broker with the test config (anonymous clients allowed).
    pub fn start() -> Sim {
        Sim::start_with(crate::testing::local_config())
    }

    /// A broker with `config`.
    pub fn start_with(config: Config) -> Sim {
        let policies = (0..config.listeners.len().max(1))
            .map(|i| {
                let policy = Policy::load(config.security_of(i)).expect("policy files");
                Arc::new(RwLock::new(Arc::new(policy)))
            })
            .collect();
        let core = Arc::new(Core::new(
            config,
            policies,
            Arc::new(MemoryStore),
            Arc::new(LocalCluster),
            Arc::new(NoEvents),
        ));
        let hub = Rc::new(Hub {
            core,
            now: Cell::new(Instant::now()),
            endpoints: RefCell::new(Vec::new()),
        });
        let port = NEXT_PORT.with(|p| {
            let port = p.get();
            p.set(port.wrapping_add(1));
            port
        });
        SIMS.with(|s| s.borrow_mut().insert(port, hub.clone()));
        Sim { port, hub }
    }

    /// The key clients connect with.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Lets `d` of simulated time pass.
    pub fn advance(&self, d: Duration) {
        self.hub.advance(d);
    }

    /// The broker's state (its owner API and read-only views).
    pub fn core(&self) -> &Arc<Core> {
        &self.hub.core
    }

    /// The simulated time now.
    pub fn now(&self) -> Instant {
        self.hub.now.get()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        SIMS.with(|s| s.borrow_mut().remove(&self.port));
    }
}

impl Hub {
    /// Runs every connection until none has anything left to do now.
    fn settle(&self) {
        for _ in 0..10_000 {
            let now = self.now.get();
            let mut progress = false;
            for ep in self.endpoints.borrow_mut().iter_mut() {
                progress |= ep.step(now);
            }
            if !progress {
                return;
            }
        }
        panic!("the simulation does not settle");
    }

    fn advance(&self, d: Duration) {
        let target = self.now.get() + d;
        self.settle();
        while self.now.get() < target {
            let next = (self.now.get() + STEP).min(target);
            self.now.set(next);
            self.core.handle_timeout(next);
            self.settle();
        }
    }
}

impl Endpoint {
    /// One round of the runtime's work for this connection; whether
    /// anything happened.
    fn step(&mut self, now: Instant) -> bool {
        if self.conn.is_none() {
            return false;
        }
        let before = (self.to_server.len(), self.to_client.len());
        let woken = self.waker.woken.swap(false, Ordering::AcqRel);
        let result = drive(self, now);
        let progress = woken || before != (self.to_server.len(), self.to_client.len());
        match result {
            Ok(()) => progress,
            Err(close) => {
                if let Some(mut conn) = self.conn.take() {
                    conn.close(&close, now, &mut self.to_client);
                }
                true
            }
        }
    }
}

/// What the serve loop does for one connection, in its order.
fn drive(ep: &mut Endpoint, now: Instant) -> Result<(), Close> {
    let Some(conn) = ep.conn.as_mut() else {
        return Ok(());
    };
    if !ep.accepted {
        if ep.wait_until.is_some_and(|t| t > now) {
            return Ok(());
        }
        match conn.handle_connect(now, &mut ep.to_server, &mut ep.to_client)? {
            Handshake::Accepted => ep.accepted = true,
            Handshake::WaitUntil(at) => ep.wait_until = Some(at),
            Handshake::Incomplete if ep.client_closed => return Err(Close::Closed),
            Handshake::Incomplete => {}
            // A simulation is one node: its claims need no cluster.
            Handshake::Claim(_) => conn.set_cluster_claim(ClaimOutcome::Ready),
        }
        if !ep.accepted {
            return Ok(());
        }
    }
    conn.handle_wake(now, &mut ep.to_server, &mut ep.to_client)?;
    if !ep.to_server.is_empty() {
        conn.handle_input(now, &mut ep.to_server, &mut ep.to_client)?;
    }
    if conn.poll_timeout().is_some_and(|at| at <= now) {
        conn.handle_timeout(now, &mut ep.to_server, &mut ep.to_client)?;
    }
    conn.release_acks(&mut ep.to_client)?;
    while conn.poll_transmit(now, &mut ep.to_client, usize::MAX) {}
    if ep.client_closed {
        return Err(Close::Closed);
    }
    Ok(())
}

/// A client's end of a simulated connection.
pub struct SimWire {
    hub: Rc<Hub>,
    index: usize,
}

impl Wire for SimWire {
    fn open(port: u16) -> SimWire {
        let hub = SIMS
            .with(|s| s.borrow().get(&port).cloned())
            .expect("no simulated broker with that port");
        let waker = Arc::new(SimWaker::default());
        let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
        let conn = Connection::new(hub.core.clone(), 0, peer, waker.clone(), hub.now.get());
        let mut endpoints = hub.endpoints.borrow_mut();
        endpoints.push(Endpoint {
            conn: Some(conn),
            waker,
            to_server: BytesMut::new(),
            to_client: BytesMut::new(),
            accepted: false,
            wait_until: None,
            client_closed: false,
        });
        let index = endpoints.len() - 1;
        drop(endpoints);
        SimWire { hub, index }
    }

    fn write(&mut self, bytes: &[u8]) -> bool {
        let mut endpoints = self.hub.endpoints.borrow_mut();
        let ep = &mut endpoints[self.index];
        if ep.conn.is_none() {
            return false;
        }
        ep.to_server.extend_from_slice(bytes);
        true
    }

    fn read(&mut self, wait: Duration) -> Read {
        self.hub.settle();
        if let Some(read) = self.take() {
            return read;
        }
        // Nothing yet: time passes, up to `wait`, until something comes.
        let target = self.hub.now.get() + wait;
        while self.hub.now.get() < target {
            self.hub.advance((target - self.hub.now.get()).min(STEP));
            if let Some(read) = self.take() {
                return read;
            }
        }
        Read::Nothing
    }
}

impl SimWire {
    /// What the broker sent, or that it closed.
    fn take(&mut self) -> Option<Read> {
        let mut endpoints = self.hub.endpoints.borrow_mut();
        let ep = &mut endpoints[self.index];
        if !ep.to_client.is_empty() {
            return Some(Read::Bytes(ep.to_client.split().to_vec()));
        }
        ep.conn.is_none().then_some(Read::Closed)
    }
}

impl Drop for SimWire {
    fn drop(&mut self) {
        if let Ok(mut endpoints) = self.hub.endpoints.try_borrow_mut() {
            endpoints[self.index].client_closed = true;
        }
        self.hub.settle();
    }
}

/// A connection's waker in the simulation: flags the next step reads.
#[derive(Debug, Default)]
struct SimWaker {
    woken: AtomicBool,
    kicked: AtomicBool,
    resume: AtomicBool,
}

impl Waker for SimWaker {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
    }
    fn kick(&self) {
        self.kicked.store(true, Ordering::Release);
        self.wake();
    }
    fn resume(&self) {
        self.resume.store(true, Ordering::Release);
        self.wake();
    }
    fn is_kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }
    fn take_resume(&self) -> bool {
        self.resume.swap(false, Ordering::AcqRel)
    }
}
