//! The `qubix` binary.
fn main() {}
