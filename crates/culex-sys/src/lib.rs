//! The socket options culex needs that no safe crate offers.
//!
//! `unsafe` is forbidden in every other crate of the workspace. Here it is
//! denied, and allowed on one call: `setsockopt` with an integer, for
//! `TCP_DEFER_ACCEPT`, which neither socket2, rustix nor nix expose (std's
//! `TcpStreamExt::set_deferaccept` is not stable). Everything else goes
//! through those crates.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// Asks Linux to hand a listening TCP socket's connections to `accept`
/// only once the client has sent something (`TCP_DEFER_ACCEPT`, tcp(7)),
/// or, for a client that stays silent, once `seconds` of retransmitted
/// SYN-ACKs have passed. MQTT clients speak first (CONNECT, a TLS
/// ClientHello, a PROXY header, an HTTP upgrade), so the accepted socket
/// usually holds its first bytes already. Elsewhere than Linux, it does
/// nothing.
pub fn set_tcp_defer_accept(socket: impl AsFd, seconds: u32) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
        let fd = socket.as_fd().as_raw_fd();
        let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `fd` is borrowed from a live descriptor for the whole
        // call, and the option value is a `c_int` on the stack whose
        // address and exact size are passed; the kernel only reads it.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                std::ptr::from_ref(&value).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (socket.as_fd(), seconds);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// The option reaches the kernel: a client that has only completed the
    /// handshake is not accepted, one that has sent a byte is, with the
    /// byte already there.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_silent_client_waits_and_a_speaking_one_is_accepted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        set_tcp_defer_accept(&listener, 5).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let _silent = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "a client that sent nothing is held back"
        );
        let mut speaking = TcpStream::connect(addr).unwrap();
        speaking.write_all(&[0x10]).unwrap();
        let mut accepted = None;
        for _ in 0..100 {
            match listener.accept() {
                Ok((socket, _)) => {
                    accepted = Some(socket);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
        let mut accepted = accepted.expect("the client that spoke is accepted");
        accepted.set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(accepted.read(&mut byte).unwrap(), 1, "its byte is there");
        assert_eq!(byte, [0x10]);
    }
}
