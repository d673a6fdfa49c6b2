//! A rogue node's misbehaviours, for the hostile test suite: the real node with some of its
//! honest checks switched off. Compiled only with the `rogue` feature, which only
//! qubix-testnet's dev-dependencies enable; no build of the `qubix` binary for use has it.

use serde::{Deserialize, Serialize};

/// What a rogue node does that an honest one never would (`[rogue]` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RogueConfig {
    /// Consumer: never countersign the provider's usage reports.
    pub withhold_receipts: bool,
    /// Provider: offer the payment terms configured, whatever their size.
    pub unchecked_payment: bool,
    /// Provider: report this much more billable time than was metered.
    pub report_extra_ms: u64,
}
