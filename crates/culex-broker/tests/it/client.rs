//! The raw test client over TCP (`culex_broker::testing::raw`).

pub use culex_broker::testing::raw::{pid, ConnectOpts};

/// The raw client on a real socket.
pub type Raw = culex_broker::testing::raw::Raw<culex_broker::testing::raw::Tcp>;
