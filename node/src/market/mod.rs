//! The market: the offer book and its query indexes, the judging of gossip and sync pages,
//! and rate limits.

pub mod book;
pub mod gossip;
mod index;
mod plan;
pub mod rate;
#[cfg(test)]
mod search_props;

pub use book::{BookLimits, Inserted, OfferBook, OfferKey};
pub use gossip::{Change, Verdict, judge_gossip, judge_offer};
pub use rate::RateLimiter;
