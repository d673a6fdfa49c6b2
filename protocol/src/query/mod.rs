//! The offer query language, one parser for the CLI, the REST API (`GET /api/v1/offers?q=`)
//! and the console's filter bar, in the style of `vastai search offers`:
//!
//! ```text
//! gpu_name=RTX_4090 num_gpus>=2 gpu_ram>=24 price<=1500 cuda>=12.2 location in [DE,FR]
//! reliability>=0.95 simulated=false sort=-reliability limit=20 offset=40
//! ```
//!
//! Parts: `lexer` (tokens with byte spans) → `parser` ([`Query`], or a
//! [`QueryError`] pointing at the offending token) → evaluation ([`Constraint::check`],
//! [`Query::matches`], [`Query::compare`], [`Query::page`]) over [`OfferFacts`] (an offer
//! and its provider's reliability) → [`explain`] (what each constraint excluded, near
//! misses). Values are normalised when parsed, so evaluation never allocates.
//!
//! # Grammar
//!
//! ```text
//! query      = { clause } ;                       (* clauses are separated by whitespace *)
//! clause     = constraint | sort | limit | offset ;
//! constraint = field op value | field ( "in" | "notin" | "=" | "!=" ) list ;
//! op         = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" ;
//! list       = "[" value { "," value } "]" ;      (* `=` with a list means `in` *)
//! value      = word | '"' { char | '\"' | '\\' } '"' ;
//! word       = a run of characters other than whitespace and = ! < > [ ] , " ;
//! sort       = "sort" "=" key { "," key } ;       key = [ "-" | "+" ] sortable_field ;
//! limit      = "limit" "=" 1..1000 ;              offset = "offset" "=" 0.. ;
//! ```
//!
//! Spaces around operators and inside lists are allowed (`location in [DE, FR]`). Field
//! names, `in`, `notin`, `true` and `false` are case-insensitive. All constraints must hold.
//!
//! # Fields
//!
//! | field | aliases | kind | meaning |
//! |---|---|---|---|
//! | `gpu_name` | `gpu`, `model` | text | GPU model; `=` means the model contains the words, in order |
//! | `num_gpus` | `gpu_count` | integer | GPUs in the offer |
//! | `gpu_ram` | `vram` | decimal | VRAM per GPU, GiB |
//! | `price` | | integer | QU per GPU-hour |
//! | `total_price` | | integer | QU per hour for all the GPUs (price × num_gpus) |
//! | `cuda` | `cuda_version` | version | highest CUDA version (12.10 > 12.2; `12` is 12.0) |
//! | `compute_cap` | `compute_capability` | version | compute capability, e.g. 8.9 |
//! | `driver` | `driver_version` | text | driver; `=` matches leading parts (`550` ⊂ `550.54.15`) |
//! | `location` | `country` | country | ISO 3166-1 alpha-2 code, any case |
//! | `region` | | text | provider's region, whole value; unknown when not given |
//! | `reliability` | | decimal | 0 to 1; unknown (fails every test) without a record |
//! | `simulated` | | bool | simulated GPUs (testnet) |
//! | `cpu_cores` | `cpus` | integer | CPU cores |
//! | `ram` | | decimal | RAM, GiB |
//! | `disk` | | decimal | disk, GiB |
//! | `provider` | `node` | node id | provider's node id (base58 peer id) |
//! | `max_duration` | | decimal | longest rental, hours |
//! | `pcie` | `pcie_gen` | integer | PCIe generation; unknown when not reported |
//! | `nvlink` | | bool | NVLink; unknown when not reported |
//!
//! Text is compared word by word, where a word is a run of letters and digits, ignoring
//! case: `RTX_4090`, `"RTX 4090"` and `rtx-4090` are the same value, and `RTX_4090` matches
//! `NVIDIA GeForce RTX 4090` while `RTX_409` does not. Text, country, node and bool fields
//! take `= != in notin`; the others also `< <= > >=`. A constraint on a value the offer
//! does not have (unknown reliability, region, PCIe or NVLink) never holds, `!=` included.
//!
//! Sortable: `price total_price num_gpus gpu_ram reliability cuda compute_cap cpu_cores ram
//! disk location max_duration`. After the query's keys come `price`, then `-reliability`
//! (unless already sorted on), then provider and offer id. Unknown reliability sorts last
//! either way. Without `limit` a page holds [`DEFAULT_LIMIT`] offers.

mod constraint;
mod error;
mod explain;
mod facts;
mod field;
mod lexer;
mod parser;
mod sort;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use constraint::{Constraint, Failure, Op};
pub use error::QueryError;
pub use explain::{ConstraintReport, Explanation, MAX_NEAR_MISSES, NearMiss, explain};
pub use facts::OfferFacts;
pub use field::{Field, FieldKind};
pub use sort::{DEFAULT_SORT, Page, SortKey};
pub use value::{Text, Value};

/// Offers on a page when the query sets no `limit`.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest `limit` a query may set.
pub const MAX_LIMIT: u32 = 1000;
/// The longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// The most constraints in one query.
pub const MAX_CONSTRAINTS: usize = 64;
/// The most values in one `in` / `notin` list.
pub const MAX_LIST_VALUES: usize = 64;

/// A parsed query. `Query::default()` matches every offer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Tests that must all hold, in the order written.
    pub constraints: Vec<Constraint>,
    /// Sort keys, most significant first; [`DEFAULT_SORT`] follows them.
    pub sort: Vec<SortKey>,
    /// Page size; `None` means [`DEFAULT_LIMIT`].
    pub limit: Option<u32>,
    /// Matching offers to skip before the page.
    pub offset: u32,
}

impl Query {
    /// Parses query text; an empty text is [`Query::default`].
    pub fn parse(input: &str) -> Result<Self, QueryError> {
        parser::parse(input)
    }

    /// Whether the offer passes every constraint.
    pub fn matches(&self, facts: &OfferFacts<'_>) -> bool {
        self.constraints.iter().all(|c| c.check(facts))
    }
}

impl FromStr for Query {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Query {
    /// Canonical text that parses back to an equal query: canonical field names,
    /// constraints in order, then `sort=`, `limit=`, `offset=` when set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for constraint in &self.constraints {
            write!(f, "{sep}{constraint}")?;
            sep = " ";
        }
        for (i, key) in self.sort.iter().enumerate() {
            let prefix = if i == 0 {
                format!("{sep}sort=")
            } else {
                ",".to_owned()
            };
            write!(f, "{prefix}{key}")?;
            sep = " ";
        }
        if let Some(limit) = self.limit {
            write!(f, "{sep}limit={limit}")?;
            sep = " ";
        }
        if self.offset != 0 {
            write!(f, "{sep}offset={}", self.offset)?;
        }
        Ok(())
    }
}

/// A query travels as its canonical text (saved searches, API bodies).
impl Serialize for Query {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Query {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Query::parse(&text).map_err(serde::de::Error::custom)
    }
}
