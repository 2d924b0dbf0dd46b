//! The bare-metal code path (`EmbeddedIo` over `embedded-io` traits, array
//! buffers, a lent callback clock) against real brokers, over a TCP socket
//! dressed up as an embedded-io stream.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use culex_client::blocking::{Client, EmbeddedIo};
use culex_client::core::Millis;
use culex_client::QoS;

use crate::{Kind, TestBroker};

fn kind(_: std::io::Error) -> embedded_io::ErrorKind {
    embedded_io::ErrorKind::Other
}

/// A TCP stream seen through embedded-io, as a network stack would offer it.
struct Socket(TcpStream);

impl embedded_io::ErrorType for Socket {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, embedded_io::ErrorKind> {
        self.0.read(buf).map_err(kind)
    }
}

impl embedded_io::ReadReady for Socket {
    fn read_ready(&mut self) -> Result<bool, embedded_io::ErrorKind> {
        self.0.set_nonblocking(true).map_err(kind)?;
        let mut probe = [0u8; 1];
        let ready = match self.0.peek(&mut probe) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => return Err(kind(e)),
        };
        self.0.set_nonblocking(false).map_err(kind)?;
        Ok(ready)
    }
}

impl embedded_io::Write for Socket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, embedded_io::ErrorKind> {
        self.0.write(buf).map_err(kind)
    }
    fn flush(&mut self) -> Result<(), embedded_io::ErrorKind> {
        self.0.flush().map_err(kind)
    }
}

fn board_loop_over_embedded_io(kind: Kind) {
    let broker = TestBroker::start(kind, "");
    let socket = TcpStream::connect(("127.0.0.1", broker.port())).unwrap();
    let start = Instant::now();
    let clock = move || Millis(start.elapsed().as_millis() as u64);
    let mut rx = [0u8; 256];
    let mut tx = [0u8; 256];
    // Messages also arrive while publish() waits for its acknowledgements.
    let received: std::sync::Mutex<Vec<Vec<u8>>> = Default::default();
    let on_message = |_topic: &str, msg: &[u8]| received.lock().unwrap().push(msg.to_vec());
    {
        let mut c = Client::with_transport(
            "embedded-board",
            EmbeddedIo(Socket(socket)),
            clock,
            &mut rx[..],
            &mut tx[..],
        )
        .keepalive(60);
        c.set_callback(on_message);
        c.connect(true).unwrap();
        c.subscribe("board/#", QoS::ExactlyOnce).unwrap();
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            c.publish("board/btn", [b'0' + qos as u8], false, qos)
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while received.lock().unwrap().len() < 3 {
            assert!(Instant::now() < deadline, "messages did not arrive");
            c.check_msg().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        c.disconnect().unwrap();
    }
    assert_eq!(
        received.into_inner().unwrap(),
        [b"0".to_vec(), b"1".to_vec(), b"2".to_vec()]
    );
}

crate::on_both_brokers!(board_loop_over_embedded_io);
