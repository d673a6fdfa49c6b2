//! Fuzzes `qubix_protocol::fuzzing::receipt` (see that module). Run with `scripts/fuzz receipt`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qubix_protocol::fuzzing::receipt(data));
