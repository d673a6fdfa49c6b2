//! The JSON bodies of the Live and Query APIs (SPEC §6), parsed tolerantly and served
//! exactly (the devnet serializes these same types).
//!
//! The services are grpc-gateway: fields are lowerCamelCase, 64-bit integers are JSON
//! strings, 32-bit ones numbers, defaults are emitted. Parsing accepts 64-bit values as
//! strings or numbers, missing fields as defaults, and both the bare and the wrapped
//! (`{"transaction": …}`) transaction body; serializing writes what the real service does.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// `GET /live/v1/tick-info`, inside `{"tickInfo": …}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TickInfo {
    /// The current tick.
    #[serde(deserialize_with = "flex")]
    pub tick: u32,
    /// Duration of the last tick, seconds.
    #[serde(deserialize_with = "flex")]
    pub duration: u32,
    /// The current epoch.
    #[serde(deserialize_with = "flex")]
    pub epoch: u32,
    /// The epoch's first tick.
    #[serde(deserialize_with = "flex")]
    pub initial_tick: u32,
}

/// `GET /live/v1/balances/{id}`, inside `{"balance": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Balance {
    /// The identity.
    pub id: String,
    /// `incomingAmount - outgoingAmount`.
    #[serde(serialize_with = "as_string", deserialize_with = "flex")]
    pub balance: i64,
    /// The tick the figures are valid for.
    #[serde(deserialize_with = "flex")]
    pub valid_for_tick: u32,
    /// Tick of the newest incoming transfer.
    #[serde(deserialize_with = "flex")]
    pub latest_incoming_transfer_tick: u32,
    /// Tick of the newest outgoing transfer.
    #[serde(deserialize_with = "flex")]
    pub latest_outgoing_transfer_tick: u32,
    /// Everything ever received.
    #[serde(serialize_with = "as_string", deserialize_with = "flex")]
    pub incoming_amount: i64,
    /// Everything ever sent.
    #[serde(serialize_with = "as_string", deserialize_with = "flex")]
    pub outgoing_amount: i64,
    /// Count of incoming transfers.
    #[serde(deserialize_with = "flex")]
    pub number_of_incoming_transfers: u32,
    /// Count of outgoing transfers.
    #[serde(deserialize_with = "flex")]
    pub number_of_outgoing_transfers: u32,
}

/// `POST /live/v1/broadcast-transaction` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Broadcast {
    /// Peers that accepted it.
    #[serde(deserialize_with = "flex")]
    pub peers_broadcasted: i32,
    /// The base64 sent.
    pub encoded_transaction: String,
    /// The transaction id (60 lowercase letters).
    pub transaction_id: String,
}

/// `GET /query/v1/getLastProcessedTick`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LastProcessedTick {
    /// The newest tick the archive has processed.
    #[serde(deserialize_with = "flex")]
    pub tick_number: u32,
    /// Its epoch.
    #[serde(deserialize_with = "flex")]
    pub epoch: u32,
    /// First tick of the current processed interval.
    #[serde(deserialize_with = "flex")]
    pub interval_initial_tick: u32,
    /// Newest tick whose event logs are processed.
    #[serde(deserialize_with = "flex")]
    pub last_processed_log_tick: u32,
}

/// One processed interval of `GET /query/v1/getProcessedTickIntervals`; ticks between
/// intervals were skipped and include nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TickInterval {
    /// Epoch.
    #[serde(deserialize_with = "flex")]
    pub epoch: u32,
    /// First processed tick.
    #[serde(deserialize_with = "flex")]
    pub first_tick: u32,
    /// Last processed tick.
    #[serde(deserialize_with = "flex")]
    pub last_tick: u32,
}

impl TickInterval {
    /// Whether `tick` lies in this interval.
    pub fn contains(&self, tick: u32) -> bool {
        (self.first_tick..=self.last_tick).contains(&tick)
    }
}

/// The wrapped form of the intervals response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TickIntervals {
    /// The intervals, oldest first.
    pub processed_tick_intervals: Vec<TickInterval>,
}

/// A transaction as the archive returns it (`POST /query/v1/getTransactionByHash`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChainTransaction {
    /// The id (60 lowercase letters).
    pub hash: String,
    /// Amount in QU.
    #[serde(serialize_with = "as_string", deserialize_with = "flex")]
    pub amount: u64,
    /// Source identity.
    pub source: String,
    /// Destination identity.
    pub destination: String,
    /// The tick it was included in.
    #[serde(deserialize_with = "flex")]
    pub tick_number: u32,
    /// Tick time, unix milliseconds.
    #[serde(serialize_with = "as_string", deserialize_with = "flex")]
    pub timestamp: u64,
    /// Input type (0 = plain transfer).
    #[serde(deserialize_with = "flex")]
    pub input_type: u32,
    /// Input size.
    #[serde(deserialize_with = "flex")]
    pub input_size: u32,
    /// Input, base64.
    pub input_data: String,
    /// Signature, base64.
    pub signature: String,
    /// Whether QU moved (false for insufficient balance or amount 0).
    pub money_flew: bool,
}

/// The error body of both APIs: `{"code", "message", "details"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ErrorBody {
    /// The gRPC status code (3 invalid argument, 5 not found, 13 internal).
    pub code: i32,
    /// What went wrong.
    pub message: String,
    /// Extra details (always empty here).
    pub details: Vec<serde_json::Value>,
}

/// `{"tickInfo": …}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct TickInfoBody {
    pub(crate) tick_info: TickInfo,
}

/// `{"balance": …}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct BalanceBody {
    pub(crate) balance: Balance,
}

/// A transaction body in either shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum TransactionBody {
    Wrapped { transaction: ChainTransaction },
    Bare(ChainTransaction),
}

impl TransactionBody {
    pub(crate) fn into_inner(self) -> ChainTransaction {
        match self {
            TransactionBody::Wrapped { transaction } | TransactionBody::Bare(transaction) => {
                transaction
            }
        }
    }
}

/// Intervals in either shape.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum IntervalsBody {
    Wrapped(TickIntervals),
    Bare(Vec<TickInterval>),
}

/// A number written as a JSON number or a decimal string.
pub(crate) fn flex<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i128> + Default,
{
    let value: i128 = match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i128::from(i),
            (None, Some(u)) => i128::from(u),
            _ => return Err(de::Error::custom(format!("{n} is not a whole number"))),
        },
        serde_json::Value::String(s) if s.is_empty() => 0,
        serde_json::Value::String(s) => s.trim().parse().map_err(de::Error::custom)?,
        serde_json::Value::Null => return Ok(T::default()),
        other => return Err(de::Error::custom(format!("expected a number, got {other}"))),
    };
    T::try_from(value).map_err(|_| de::Error::custom(format!("{value} is out of range")))
}

fn as_string<S: Serializer, T: ToString>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_parse_as_strings_or_numbers() {
        let text =
            r#"{"hash":"h","amount":"1000","tickNumber":"7","timestamp":5,"moneyFlew":true}"#;
        let tx: ChainTransaction = serde_json::from_str(text).unwrap();
        assert_eq!((tx.amount, tx.tick_number, tx.timestamp), (1000, 7, 5));
        let tx: ChainTransaction = serde_json::from_str(r#"{"amount":12}"#).unwrap();
        assert_eq!(tx.amount, 12);
        assert!(serde_json::from_str::<ChainTransaction>(r#"{"amount":"-1"}"#).is_err());
        assert!(serde_json::from_str::<ChainTransaction>(r#"{"amount":"x"}"#).is_err());
    }

    #[test]
    fn serializes_like_grpc_gateway() {
        let b = Balance {
            balance: 5,
            ..Balance::default()
        };
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["balance"], "5");
        assert_eq!(json["validForTick"], 0);
        assert_eq!(json["incomingAmount"], "0");
    }

    #[test]
    fn both_transaction_shapes_parse() {
        let bare: TransactionBody = serde_json::from_str(r#"{"hash":"a","amount":"3"}"#).unwrap();
        let wrapped: TransactionBody =
            serde_json::from_str(r#"{"transaction":{"hash":"a","amount":3}}"#).unwrap();
        assert_eq!(bare.into_inner(), wrapped.into_inner());
        let bare: IntervalsBody =
            serde_json::from_str(r#"[{"epoch":1,"firstTick":"2","lastTick":3}]"#).unwrap();
        assert!(matches!(bare, IntervalsBody::Bare(v) if v.len() == 1));
    }
}
