//! The `virt` board's hardware, and with it every `unsafe` block of the
//! firmware: the UART, the test device that ends QEMU, the machine timer,
//! the device tree QEMU hands over, memory handed out once from statics, and
//! the virtio-net card with the memory it shares with the device.
//!
//! Everything here runs on one hart with interrupts globally off (the timer
//! interrupt only wakes `wfi`), which is what makes the plain load-then-store
//! flags below sound: riscv32imc has no atomic read-modify-write.

use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// The NS16550A UART: receive/transmit register at 0, line status at 5.
const UART: usize = 0x1000_0000;
const UART_LSR: usize = UART + 5;
const LSR_DATA_READY: u8 = 0x01;
const LSR_TX_EMPTY: u8 = 0x20;
/// The sifive_test device: a write ends QEMU with a status.
const TEST_DEVICE: usize = 0x0010_0000;
/// The CLINT's `mtimecmp` of hart 0.
const MTIMECMP: usize = 0x0200_4000;
/// The board's eight virtio-mmio slots, one page each.
const VIRTIO_MMIO: usize = 0x1000_1000;
const VIRTIO_SLOTS: usize = 8;
/// `mtime` ticks per millisecond: the board's timebase is 10 MHz.
const TICKS_PER_MS: u64 = 10_000;

/// Writes bytes to the UART (QEMU's standard output).
pub fn uart_write(bytes: &[u8]) {
    for &byte in bytes {
        // SAFETY: UART is the board's 16550 register block, mapped for the
        // whole run; byte accesses to its line status and transmit registers
        // affect nothing but the device.
        unsafe {
            while ptr::read_volatile(UART_LSR as *const u8) & LSR_TX_EMPTY == 0 {}
            ptr::write_volatile(UART as *mut u8, byte);
        }
    }
}

/// The next byte typed on the UART (QEMU's standard input), if any.
pub fn uart_read() -> Option<u8> {
    // SAFETY: as in `uart_write`; reading the receive register only when the
    // line status says a byte is there.
    unsafe {
        if ptr::read_volatile(UART_LSR as *const u8) & LSR_DATA_READY == 0 {
            return None;
        }
        Some(ptr::read_volatile(UART as *const u8))
    }
}

/// Whether a byte waits on the UART.
pub fn uart_ready() -> bool {
    // SAFETY: as in `uart_write`.
    unsafe { ptr::read_volatile(UART_LSR as *const u8) & LSR_DATA_READY != 0 }
}

/// `core::fmt` onto the UART, for `write!`.
pub struct Uart;

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        uart_write(s.as_bytes());
        Ok(())
    }
}

/// Ends QEMU with exit status `code` through the test device.
pub fn exit(code: u16) -> ! {
    // sifive_test: 0x5555 passes; 0x3333 with the status in the upper half fails.
    let value = if code == 0 {
        0x5555
    } else {
        (u32::from(code) << 16) | 0x3333
    };
    // SAFETY: TEST_DEVICE is the board's sifive_test register; the write
    // ends the emulation and touches no memory.
    unsafe { ptr::write_volatile(TEST_DEVICE as *mut u32, value) };
    loop {
        riscv::asm::wfi();
    }
}

/// Milliseconds since the board was reset.
pub fn now_ms() -> u64 {
    riscv::register::time::read64() / TICKS_PER_MS
}

/// Lets the machine timer wake `wfi`. Interrupts stay off globally, so no
/// trap handler ever runs: the pending bit only ends the wait.
pub fn start_timer() {
    // SAFETY: setting MTIE in `mie` has no effect while `mstatus.MIE` is
    // clear, which riscv-rt leaves it and this firmware never changes.
    unsafe { riscv::register::mie::set_mtimer() };
}

/// Sleeps (the host's CPU too) until `ms` after reset, or returns at once if
/// that has passed.
pub fn sleep_until_ms(ms: u64) {
    let ticks = ms.saturating_mul(TICKS_PER_MS);
    let low = MTIMECMP as *mut u32;
    let high = (MTIMECMP + 4) as *mut u32;
    // SAFETY: MTIMECMP is hart 0's compare register in the CLINT. The high
    // word goes to its maximum first so that no intermediate value fires.
    unsafe {
        ptr::write_volatile(high, u32::MAX);
        ptr::write_volatile(low, ticks as u32);
        ptr::write_volatile(high, (ticks >> 32) as u32);
    }
    riscv::asm::wfi();
}

extern "C" {
    // riscv-rt's symbols: the top of the stack, and the stack size memory.x
    // reserves (its address is the value).
    static _stack_start: u8;
    static _hart_stack_size: u8;
}

/// What an untouched stack word holds after [`paint_stack`].
const STACK_PAINT: u32 = 0x57ac_57ac;

fn stack_range() -> (usize, usize) {
    let top = ptr::addr_of!(_stack_start) as usize;
    let size = ptr::addr_of!(_hart_stack_size) as usize;
    (top.saturating_sub(size) & !3, top)
}

/// Fills the part of the reserved stack that is still unused with a
/// pattern, so that [`stack_peak`] can tell how deep the stack has gone.
pub fn paint_stack() {
    let (bottom, _) = stack_range();
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; no memory is touched.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp) };
    // Stay clear of this function's own frame.
    let end = sp.saturating_sub(256) & !3;
    let mut at = bottom;
    while at < end {
        // SAFETY: [bottom, end) is stack memory below the stack pointer: no
        // frame uses it yet and nothing refers to it (RISC-V has no red zone).
        unsafe { ptr::write_volatile(at as *mut u32, STACK_PAINT) };
        at += 4;
    }
}

/// The most stack used since [`paint_stack`], in bytes: the reserved size
/// if all of it was touched.
pub fn stack_peak() -> usize {
    let (bottom, top) = stack_range();
    let mut at = bottom;
    // SAFETY: [bottom, top) is the stack region memory.x reserves; reading
    // words of it, used or not, is sound.
    while at < top && unsafe { ptr::read_volatile(at as *const u32) } == STACK_PAINT {
        at += 4;
    }
    top - at
}

/// The flattened device tree whose address QEMU's boot ROM passed in `a1`.
pub fn device_tree(addr: usize) -> Option<&'static [u8]> {
    const MAGIC: [u8; 4] = [0xd0, 0x0d, 0xfe, 0xed];
    const MAX_SIZE: usize = 1 << 20;
    if addr == 0 || !addr.is_multiple_of(8) {
        return None;
    }
    // SAFETY: QEMU puts the blob in RAM outside this image (at the top of
    // the board's memory) and nothing writes to it; the header is read
    // first, and its total size trusted only after the magic number and
    // within a bound.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, 8) };
    let (magic, size) = header.split_at(4);
    let size = u32::from_be_bytes(size.try_into().ok()?) as usize;
    if magic != MAGIC || !(8..=MAX_SIZE).contains(&size) {
        return None;
    }
    // SAFETY: as above, for the size the header gives.
    Some(unsafe { core::slice::from_raw_parts(addr as *const u8, size) })
}

/// A static handed out once as `&'static mut`: the firmware's buffers live
/// in `.bss`, so the linker (and `size`) account for them, and no allocator
/// is needed.
pub struct Static<T> {
    taken: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reachable only through the single `&mut` that `take`
// hands out.
unsafe impl<T: Send> Sync for Static<T> {}

impl<T> Static<T> {
    /// A static holding `value`.
    pub const fn new(value: T) -> Static<T> {
        Static {
            taken: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    /// The value, the first time; `None` after.
    // A `&mut` from `&self` is the point: `taken` makes it unique.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        // One hart and no interrupt handlers: nothing runs between the load
        // and the store (see the module's comment).
        if self.taken.load(Ordering::Acquire) {
            return None;
        }
        self.taken.store(true, Ordering::Release);
        // SAFETY: `taken` was false and now is true, so this is the one and
        // only reference ever made to the value.
        Some(unsafe { &mut *self.value.get() })
    }
}

/// Descriptors per virtqueue.
const QUEUE_SIZE: usize = 16;
/// Receive buffers the card owns at any time.
const RX_BUFFERS: usize = 4;
/// One received frame: the virtio-net header (up to 12 bytes) and an
/// Ethernet frame of up to 1514 bytes.
const RX_BUFFER_LEN: usize = 1526;

/// The receive buffers lent to the card.
pub type RxBuffers = [[u8; RX_BUFFER_LEN]; RX_BUFFERS];

/// An empty set of receive buffers, for a [`Static`].
pub const NO_RX_BUFFERS: RxBuffers = [[0; RX_BUFFER_LEN]; RX_BUFFERS];

/// Pages for the virtqueues, shared with the device.
const DMA_PAGES: usize = 4;

#[repr(C, align(4096))]
struct DmaPages([[u8; PAGE_SIZE]; DMA_PAGES]);

/// The virtqueues' memory: pages handed out in order and never returned,
/// since the card lives as long as the firmware.
struct DmaPool(UnsafeCell<DmaPages>);

// SAFETY: pages are handed out at most once each (see `dma_alloc`).
unsafe impl Sync for DmaPool {}

static DMA: DmaPool = DmaPool(UnsafeCell::new(DmaPages([[0; PAGE_SIZE]; DMA_PAGES])));
/// The first page of [`DMA`] not handed out yet.
static DMA_NEXT: AtomicUsize = AtomicUsize::new(0);

/// virtio-drivers' view of this machine: no MMU (M-mode), so addresses are
/// physical and sharing a buffer with the device is the identity.
pub struct BoardHal;

// SAFETY: `dma_alloc` returns page-aligned pages of a static pool, each at
// most once, zeroed since `.bss` is and never reused; `share` returns the
// buffer's own address, which the device can reach since there is no MMU.
unsafe impl Hal for BoardHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        // One hart and no interrupt handlers (see the module's comment).
        let first = DMA_NEXT.load(Ordering::Acquire);
        let end = first.saturating_add(pages);
        if pages == 0 || end > DMA_PAGES {
            // Address 0 tells virtio-drivers the allocation failed.
            return (0, NonNull::dangling());
        }
        DMA_NEXT.store(end, Ordering::Release);
        let start = DMA.0.get().cast::<u8>().wrapping_add(first * PAGE_SIZE);
        match NonNull::new(start) {
            Some(start) => (start.as_ptr() as usize as PhysAddr, start),
            None => (0, NonNull::dangling()),
        }
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        // Never returned: the card is never dropped.
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        // Identity mapped; virtio-drivers asks only for PCI BARs, which the
        // MMIO transport has none of.
        NonNull::new(paddr as usize as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// Why the network card could not be brought up.
pub enum CardError {
    /// No virtio-mmio slot holds a network device (QEMU needs
    /// `-device virtio-net-device`).
    NotFound,
    /// The device refused to initialise.
    Virtio(virtio_drivers::Error),
}

impl fmt::Debug for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardError::NotFound => f.write_str("no virtio network device"),
            CardError::Virtio(e) => write!(f, "virtio-net: {e}"),
        }
    }
}

/// The virtio-net card, with [`RX_BUFFERS`] receive buffers always posted.
pub struct NetCard {
    raw: VirtIONetRaw<BoardHal, MmioTransport<'static>, QUEUE_SIZE>,
    buffers: &'static mut RxBuffers,
    /// The device's token for each posted buffer.
    tokens: [Option<u16>; RX_BUFFERS],
}

impl NetCard {
    /// Finds the first virtio network device on the board and posts the
    /// receive buffers.
    pub fn find(buffers: &'static mut RxBuffers) -> Result<NetCard, CardError> {
        for slot in 0..VIRTIO_SLOTS {
            let Some(header) = NonNull::new((VIRTIO_MMIO + slot * PAGE_SIZE) as *mut VirtIOHeader)
            else {
                continue;
            };
            // SAFETY: each slot is one page of virtio-mmio registers, mapped
            // for the whole run. Only the network slot's transport is kept,
            // and the loop ends there, so no two transports drive one device.
            let Ok(transport) = (unsafe { MmioTransport::new(header, PAGE_SIZE) }) else {
                continue;
            };
            if transport.device_type() != DeviceType::Network {
                continue;
            }
            let raw = VirtIONetRaw::new(transport).map_err(CardError::Virtio)?;
            let mut card = NetCard {
                raw,
                buffers,
                tokens: [None; RX_BUFFERS],
            };
            for index in 0..RX_BUFFERS {
                card.post(index).map_err(CardError::Virtio)?;
            }
            return Ok(card);
        }
        Err(CardError::NotFound)
    }

    /// The card's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.raw.mac_address()
    }

    /// Hands receive buffer `index` to the device.
    fn post(&mut self, index: usize) -> Result<(), virtio_drivers::Error> {
        let (Some(buffer), Some(token)) = (self.buffers.get_mut(index), self.tokens.get_mut(index))
        else {
            return Err(virtio_drivers::Error::InvalidParam);
        };
        // SAFETY: the buffer is 'static, and this card touches it again only
        // in `receive`, after the device has handed back its token.
        *token = Some(unsafe { self.raw.receive_begin(buffer) }?);
        Ok(())
    }

    /// Calls `f` with the next received Ethernet frame, if one has arrived,
    /// and posts its buffer again.
    pub fn receive<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let token = self.raw.poll_receive()?;
        let index = self.tokens.iter().position(|t| *t == Some(token))?;
        let buffer = self.buffers.get_mut(index)?;
        // SAFETY: `buffer` is the one posted with `token`, which the device
        // has now returned.
        let received = unsafe { self.raw.receive_complete(token, buffer) };
        if let Some(slot) = self.tokens.get_mut(index) {
            *slot = None;
        }
        let result = match received {
            Ok((header, len)) => buffer.get(header..header.saturating_add(len)).map(f),
            Err(_) => None,
        };
        // A buffer that cannot be posted again is lost, not fatal: the rest
        // keep the card receiving.
        let _ = self.post(index);
        result
    }

    /// Sends one Ethernet frame, waiting until the device has taken it.
    pub fn send(&mut self, frame: &[u8]) -> bool {
        self.raw.send(frame).is_ok()
    }
}

/// Prints the panic on the UART and ends QEMU with status 101.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let _ = fmt::Write::write_fmt(&mut Uart, format_args!("\npanic: {info}\n"));
    exit(101)
}

/// Prints an unexpected exception on the UART and ends QEMU with status 102
/// (riscv-rt's default would spin forever).
#[export_name = "ExceptionHandler"]
fn exception(_frame: &riscv_rt::TrapFrame) -> ! {
    let cause = riscv::register::mcause::read().bits();
    let at = riscv::register::mepc::read();
    let _ = fmt::Write::write_fmt(
        &mut Uart,
        format_args!("\nexception: mcause {cause:#x} at {at:#x}\n"),
    );
    exit(102)
}
