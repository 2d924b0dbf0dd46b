//! Integration tests of culex-transport through its public interface.

mod idle;
