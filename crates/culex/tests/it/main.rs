//! Integration tests of the `culex` binary.

mod broker;
mod store;
mod tools;
