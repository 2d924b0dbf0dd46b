//! Integration tests of the `culex` binary.

mod tools;
