//! The protocol's rules, tested without a socket on the simulation of
//! `testing::sim`.

mod acl;
mod admin;
mod basic;
mod problem_info;
mod shared;
mod v5;
mod v5_more;

pub use crate::testing::sim::Sim;

/// The raw test client on the simulation.
pub type Raw = crate::testing::raw::Raw<crate::testing::sim::SimWire>;
