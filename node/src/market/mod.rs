//! The market: the offer book, the judging of gossip and sync pages, and rate limits.

pub mod book;
pub mod gossip;
pub mod rate;

pub use book::{BookLimits, Inserted, OfferBook, OfferKey};
pub use gossip::{Change, Verdict, judge_gossip, judge_offer};
pub use rate::RateLimiter;
