//! The board's network: smoltcp on the virtio-net card with a static
//! address, and culex's blocking-client [`Transport`] on one TCP socket.
//!
//! QEMU's user network is 10.0.2.0/24. The board takes 10.0.2.15; the broker
//! is always 10.0.2.100:1883, a `guestfwd` that QEMU turns into a connection
//! to whatever port the host chose. Every wait here is bounded, and the hart
//! sleeps (`wfi` on the machine timer) between polls of the card.

use core::fmt;

use culex_client::blocking::Transport;
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

use crate::hw::{self, NetCard, RxBuffers, NO_RX_BUFFERS};

/// The board's static address in QEMU's user network.
pub const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const PREFIX_LEN: u8 = 24;
/// QEMU's user-network gateway.
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);
/// The guestfwd address that leads to the broker on the host.
pub const BROKER: Ipv4Address = Ipv4Address::new(10, 0, 2, 100);
/// The broker's port at that address.
pub const BROKER_PORT: u16 = 1883;

/// How long opening the TCP connection may take.
const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// How long a write may wait for room in the socket's buffer.
const WRITE_TIMEOUT_MS: u64 = 5_000;
/// How long a polite close waits for the broker's FIN.
const FINISH_TIMEOUT_MS: u64 = 500;
/// Unacknowledged data for this long means the link is dead.
const TCP_TIMEOUT_MS: u64 = 10_000;
/// The card raises no interrupt this firmware listens to, so the hart wakes
/// at least this often to look for frames.
const POLL_EVERY_MS: u64 = 2;
/// Ethernet frame without the FCS.
const MTU: usize = 1514;
const TCP_BUFFER: usize = 1024;

/// Every buffer the network needs, in one static (all zeros, so in `.bss`).
pub struct NetBuffers {
    rx: RxBuffers,
    frame_in: [u8; MTU],
    frame_out: [u8; MTU],
    tcp_rx: [u8; TCP_BUFFER],
    tcp_tx: [u8; TCP_BUFFER],
}

impl NetBuffers {
    /// Empty buffers, for a [`hw::Static`].
    pub const fn new() -> NetBuffers {
        NetBuffers {
            rx: NO_RX_BUFFERS,
            frame_in: [0; MTU],
            frame_out: [0; MTU],
            tcp_rx: [0; TCP_BUFFER],
            tcp_tx: [0; TCP_BUFFER],
        }
    }
}

/// Why the network could not carry the MQTT connection. Its `Debug` is a
/// sentence, since the client's errors show their transport's that way.
pub enum NetError {
    /// The card is missing or did not start.
    Card(hw::CardError),
    /// smoltcp refused to open the socket.
    Connect(tcp::ConnectError),
    /// The connection was refused or reset before it was established.
    Refused,
    /// A bounded wait ran out.
    Timeout,
    /// The connection is gone.
    Closed,
}

impl fmt::Debug for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::Card(e) => write!(f, "{e:?}"),
            NetError::Connect(e) => write!(f, "cannot open the socket: {e}"),
            NetError::Refused => f.write_str("connection refused"),
            NetError::Timeout => f.write_str("timed out"),
            NetError::Closed => f.write_str("connection closed"),
        }
    }
}

/// smoltcp, the card and the one TCP socket to the broker.
pub struct Net {
    iface: Interface,
    card: Card,
    sockets: SocketSet<'static>,
    tcp: SocketHandle,
    next_port: u16,
}

impl Net {
    /// Brings up the card and the interface with the static address.
    pub fn new(
        buffers: &'static mut NetBuffers,
        sockets: &'static mut [SocketStorage<'static>; 1],
    ) -> Result<Net, NetError> {
        let NetBuffers {
            rx,
            frame_in,
            frame_out,
            tcp_rx,
            tcp_tx,
        } = buffers;
        let card = NetCard::find(rx).map_err(NetError::Card)?;
        let mut card = Card {
            card,
            frame_in,
            frame_out,
        };
        let now = hw::now_ms();
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(card.card.mac())));
        // Initial sequence numbers and the first local port vary with the
        // boot time; a fixed seed is enough for the emulator.
        config.random_seed = now ^ 0x9e37_79b9_7f4a_7c15;
        let mut iface = Interface::new(config, &mut card, instant(now));
        iface.update_ip_addrs(|addrs| {
            let _ = addrs.push(IpCidr::new(ADDRESS.into(), PREFIX_LEN));
        });
        let _ = iface.routes_mut().add_default_ipv4_route(GATEWAY);
        let mut sockets = SocketSet::new(&mut sockets[..]);
        let mut socket = tcp::Socket::new(
            tcp::SocketBuffer::new(&mut tcp_rx[..]),
            tcp::SocketBuffer::new(&mut tcp_tx[..]),
        );
        socket.set_timeout(Some(smoltcp::time::Duration::from_millis(TCP_TIMEOUT_MS)));
        // MQTT packets are small and each is written whole: send at once.
        socket.set_nagle_enabled(false);
        let tcp = sockets.add(socket);
        Ok(Net {
            iface,
            card,
            sockets,
            tcp,
            next_port: 49152 + (now % 8192) as u16,
        })
    }

    /// The card's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.card.card.mac()
    }

    /// Sleeps until `deadline_ms`, keeping the network going, and returns
    /// early when data arrives on the socket or a byte on the UART.
    pub fn idle_until(&mut self, deadline_ms: u64) {
        self.wait(deadline_ms, |socket| socket.can_recv() || hw::uart_ready());
    }

    /// Polls the interface and sleeps until `ready` holds for the socket or
    /// `deadline_ms` passes; returns whether `ready` held.
    fn wait(&mut self, deadline_ms: u64, mut ready: impl FnMut(&tcp::Socket<'_>) -> bool) -> bool {
        loop {
            let now = hw::now_ms();
            self.iface
                .poll(instant(now), &mut self.card, &mut self.sockets);
            if ready(self.sockets.get::<tcp::Socket<'_>>(self.tcp)) {
                return true;
            }
            if now >= deadline_ms {
                return false;
            }
            let next_poll = self
                .iface
                .poll_delay(instant(now), &self.sockets)
                .map_or(u64::MAX, |d| now.saturating_add(d.total_millis()));
            let wake = deadline_ms
                .min(next_poll)
                .min(now.saturating_add(POLL_EVERY_MS));
            hw::sleep_until_ms(wake);
        }
    }

    fn socket(&mut self) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket<'static>>(self.tcp)
    }

    fn poll(&mut self) {
        self.iface
            .poll(instant(hw::now_ms()), &mut self.card, &mut self.sockets);
    }

    /// A fresh local port for each connection, so that the previous one's
    /// leftovers in QEMU's NAT cannot be mistaken for the new one.
    fn local_port(&mut self) -> u16 {
        let port = self.next_port;
        self.next_port = if port >= 65534 { 49152 } else { port + 1 };
        port
    }
}

impl Transport for Net {
    type Error = NetError;

    fn open(&mut self) -> Result<(), NetError> {
        self.close();
        let port = self.local_port();
        let Net {
            iface,
            sockets,
            tcp,
            ..
        } = self;
        sockets
            .get_mut::<tcp::Socket<'static>>(*tcp)
            .connect(iface.context(), (BROKER, BROKER_PORT), port)
            .map_err(NetError::Connect)?;
        let deadline = hw::now_ms().saturating_add(CONNECT_TIMEOUT_MS);
        let settled = self.wait(deadline, |socket| {
            !matches!(
                socket.state(),
                tcp::State::SynSent | tcp::State::SynReceived
            )
        });
        match self.socket().state() {
            tcp::State::Established => Ok(()),
            _ => {
                self.close();
                Err(if settled {
                    NetError::Refused
                } else {
                    NetError::Timeout
                })
            }
        }
    }

    fn close(&mut self) {
        self.socket().abort();
        // Sends the RST.
        self.poll();
    }

    fn finish(&mut self) {
        self.socket().close();
        let deadline = hw::now_ms().saturating_add(FINISH_TIMEOUT_MS);
        self.wait(deadline, |socket| {
            matches!(socket.state(), tcp::State::Closed | tcp::State::TimeWait)
        });
        self.close();
    }

    fn read(&mut self, buf: &mut [u8], wait: Option<u64>) -> Result<Option<usize>, NetError> {
        let deadline = wait.map_or(u64::MAX, |ms| hw::now_ms().saturating_add(ms));
        self.wait(deadline, |socket| socket.can_recv() || !socket.may_recv());
        let socket = self.socket();
        if socket.can_recv() {
            return socket
                .recv_slice(buf)
                .map(Some)
                .map_err(|_| NetError::Closed);
        }
        if !socket.may_recv() {
            // The broker closed (FIN) or the connection is gone.
            return Ok(Some(0));
        }
        Ok(None)
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), NetError> {
        let deadline = hw::now_ms().saturating_add(WRITE_TIMEOUT_MS);
        let mut rest = buf;
        while !rest.is_empty() {
            let socket = self.socket();
            if !socket.may_send() {
                return Err(NetError::Closed);
            }
            let sent = socket.send_slice(rest).map_err(|_| NetError::Closed)?;
            rest = rest.get(sent..).unwrap_or_default();
            if rest.is_empty() {
                break;
            }
            if !self.wait(deadline, |socket| socket.can_send() || !socket.may_send()) {
                return Err(NetError::Timeout);
            }
        }
        // Puts the bytes on the wire now rather than at the next poll.
        self.poll();
        Ok(())
    }
}

fn instant(ms: u64) -> Instant {
    Instant::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The card as a smoltcp device. A received frame is copied out of the
/// card's buffer, so that the buffer goes straight back to the device and
/// the receive and transmit tokens borrow different things.
struct Card {
    card: NetCard,
    frame_in: &'static mut [u8; MTU],
    frame_out: &'static mut [u8; MTU],
}

impl Device for Card {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let frame_in = &mut *self.frame_in;
        let len = self.card.receive(|frame| {
            let len = frame.len().min(MTU);
            if let (Some(dst), Some(src)) = (frame_in.get_mut(..len), frame.get(..len)) {
                dst.copy_from_slice(src);
            }
            len
        })?;
        Some((
            Rx(frame_in.get(..len)?),
            Tx {
                card: &mut self.card,
                frame: self.frame_out,
            },
        ))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        Some(Tx {
            card: &mut self.card,
            frame: self.frame_out,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MTU;
        caps
    }
}

struct Rx<'a>(&'a [u8]);

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

struct Tx<'a> {
    card: &'a mut NetCard,
    frame: &'a mut [u8; MTU],
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let frame = &mut self.frame[..len.min(MTU)];
        let result = f(frame);
        // A frame the card refuses is lost, as on a wire; TCP sends it again.
        let _ = self.card.send(frame);
        result
    }
}
