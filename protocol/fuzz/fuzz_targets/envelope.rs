//! Fuzzes `qubix_protocol::fuzzing::envelope` (see that module). Run with `scripts/fuzz envelope`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qubix_protocol::fuzzing::envelope(data));
