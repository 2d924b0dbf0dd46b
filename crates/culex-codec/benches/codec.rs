//! Criterion benchmarks of the codec (filled in with the codec).
fn main() {}
