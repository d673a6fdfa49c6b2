//! Jobs: the provider's lifecycle state machine and billing ([`lifecycle`]), the runner
//! that performs its effects on the container runtime ([`runner`]) and follows image pulls
//! ([`pull_watch`]), the bounded log and metrics buffers both sides keep ([`books`]), and
//! the consumer's meter of a rental ([`usage`]), which judges the provider's usage reports.

pub mod books;
pub mod lifecycle;
pub mod pull_watch;
pub mod runner;
pub mod usage;

pub use books::{LogBook, MetricsBook};
pub use lifecycle::{Effect, Input, Job, Meter};
pub use runner::{RunnerHandle, RunnerScope, spawn};
