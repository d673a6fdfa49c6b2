//! Cross-module tests: every vector of SPEC §9 (A–E), extra vectors generated with
//! `model.py`, and property tests.

mod key_vectors;
mod model_vectors;
mod properties;
mod signature_vectors;
mod support;
mod tx_errors;
mod tx_vectors;
