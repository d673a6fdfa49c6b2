//! Fuzzes `qubix_protocol::fuzzing::job_request` (see that module). Run with `scripts/fuzz job_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| qubix_protocol::fuzzing::job_request(data));
