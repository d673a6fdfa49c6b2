//! Fuzzes `qubix_protocol::fuzzing::offer` (see that module). Run with `scripts/fuzz offer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qubix_protocol::fuzzing::offer(data));
