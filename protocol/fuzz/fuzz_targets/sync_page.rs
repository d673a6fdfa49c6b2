//! Fuzzes `qubix_protocol::fuzzing::sync_page` (see that module). Run with `scripts/fuzz sync_page`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qubix_protocol::fuzzing::sync_page(data));
