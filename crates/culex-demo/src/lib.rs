//! Simulated ESP32 boards and the browser demo of the MQTT tutorial.
//!
//! The tutorial ends with two boards, "blue" and "green", each lighting the
//! other's LED while its own button is pressed. This crate simulates them:
//!
//! - [`board`]: the board itself, a [`board::Pins`] (GPIO0 a push button wired
//!   active-low, GPIO2 an LED), the tutorial's program as a sans-IO
//!   [`board::Program`], and [`board::Board`], which runs that program on a
//!   thread of its own over culex's blocking client, as firmware would;
//! - [`device`]: `culex device`, one board as its own process, in the terminal;
//! - [`demo`]: `culex demo`, a broker, the boards and a web page ([`web`])
//!   that draws them live and shows the traffic on `+/btn/0` ([`monitor`]).
//!
//! Start at [`demo::Demo::start`] to run the whole thing in-process.
//!
//! From the command line:
//!
//! ```text
//! culex demo                                   # broker, blue and green, page on http://127.0.0.1:8080/
//! culex demo --boards blue,green,red           # three boards in a ring
//! culex demo --boards green:blue --mqtt 0.0.0.0:1883
//!                                              # green simulated; a real board "blue" joins over Wi-Fi
//! culex broker                                 # or mosquitto; then one board per terminal,
//! culex device --name blue --peer green        # space is the button, q quits
//! culex device --name green --peer blue
//! ```

mod args;
pub mod board;
pub mod demo;
pub mod device;
mod embedded;
mod firmware;
pub mod monitor;
pub mod web;

pub use args::ArgError;
pub use embedded::EmbeddedBroker;

/// Entry point of `culex device`; `args` excludes the program and command names.
pub fn device_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    device::main(args)
}

/// Entry point of `culex demo`; `args` excludes the program and command names.
pub fn demo_main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    demo::main(args)
}
