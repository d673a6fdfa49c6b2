//! Jobs on the provider: the lifecycle state machine and its billing.

pub mod lifecycle;

pub use lifecycle::{Effect, Input, Job, Meter};
