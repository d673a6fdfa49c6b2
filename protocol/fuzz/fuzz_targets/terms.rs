//! Fuzzes `qubix_protocol::fuzzing::terms` (see that module). Run with `scripts/fuzz terms`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qubix_protocol::fuzzing::terms(data));
