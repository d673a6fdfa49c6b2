//! One test on one field (`price<=1500`): evaluation against an offer, and the reason an
//! offer failed it.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::QueryError;
use super::facts::{Actual, OfferFacts, actual};
use super::field::Field;
use super::value::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// `=`: equal to (for `gpu_name`: contains the words).
    Eq,
    /// `!=`: not equal to.
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `in [a,b]`: equal to one of the values.
    In,
    /// `notin [a,b]`: equal to none of the values.
    NotIn,
}

impl Op {
    /// How the operator is written.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "notin",
        }
    }

    /// Whether the operator orders values (`< <= > >=`).
    pub fn is_ordering(self) -> bool {
        matches!(self, Op::Lt | Op::Le | Op::Gt | Op::Ge)
    }

    /// Whether the operator takes a list (`in`, `notin`).
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::NotIn)
    }

    fn accepts(self, order: Ordering) -> bool {
        match self {
            Op::Lt => order.is_lt(),
            Op::Le => order.is_le(),
            Op::Gt => order.is_gt(),
            Op::Ge => order.is_ge(),
            Op::Eq | Op::In => order.is_eq(),
            Op::Ne | Op::NotIn => order.is_ne(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// One test on one field of an offer. Built by the parser, which checks that the values
/// suit the field and the operator: one value, or a non-empty list for `in` / `notin`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    pub(crate) field: Field,
    pub(crate) op: Op,
    pub(crate) values: Vec<Value>,
}

/// Why an offer failed a constraint, for explain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The constraint, in canonical text: `price<=1500`.
    pub constraint: String,
    /// The offer's value, with its unit: `1800 QU`, or `unknown`.
    pub actual: String,
    /// A sentence: `price is 1800 QU, wanted <= 1500`, or `no reliability record yet`.
    pub reason: String,
}

impl Constraint {
    /// The field tested.
    pub fn field(&self) -> Field {
        self.field
    }

    /// The operator.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The value, or the list for `in` / `notin`.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Whether the offer passes. An unknown value (no reliability record, no region, PCIe
    /// or NVLink not reported) passes no test, `!=` and `notin` included.
    pub fn check(&self, facts: &OfferFacts<'_>) -> bool {
        let actual = actual(self.field, facts);
        if actual == Actual::Unknown {
            return false;
        }
        match self.op {
            Op::Eq | Op::In => self.values.iter().any(|v| self.equals(&actual, v)),
            Op::Ne | Op::NotIn => !self.values.iter().any(|v| self.equals(&actual, v)),
            Op::Lt | Op::Le | Op::Gt | Op::Ge => {
                !self.values.is_empty()
                    && self
                        .values
                        .iter()
                        .all(|v| order(&actual, v).is_some_and(|o| self.op.accepts(o)))
            }
        }
    }

    /// Why the offer fails this constraint, or `None` when it passes.
    pub fn failure(&self, facts: &OfferFacts<'_>) -> Option<Failure> {
        if self.check(facts) {
            return None;
        }
        let actual = actual(self.field, facts);
        let field = self.field;
        let (shown, reason) = match actual {
            Actual::Unknown if field == Field::Reliability => {
                ("unknown".to_owned(), "no reliability record yet".to_owned())
            }
            Actual::Unknown => (
                "unknown".to_owned(),
                format!("the offer does not give {field}"),
            ),
            known => {
                let shown = format!("{known}{}", field.unit());
                let reason = format!("{field} is {shown}, wanted {}", self.wanted());
                (shown, reason)
            }
        };
        Some(Failure {
            constraint: self.to_string(),
            actual: shown,
            reason,
        })
    }

    /// What the constraint asks for, in words: `<= 1500`, `one of [DE,FR]`.
    fn wanted(&self) -> String {
        let list = self.list();
        match self.op {
            Op::Eq => list,
            Op::Ne => format!("anything but {list}"),
            Op::In => format!("one of {list}"),
            Op::NotIn => format!("none of {list}"),
            op => format!("{op} {list}"),
        }
    }

    /// The values as written in the query: `1500`, or `[DE,FR]` for a list.
    fn list(&self) -> String {
        let items: Vec<String> = self.values.iter().map(Value::to_string).collect();
        if self.op.takes_list() {
            format!("[{}]", items.join(","))
        } else {
            items.join(",")
        }
    }

    fn equals(&self, actual: &Actual<'_>, value: &Value) -> bool {
        match (actual, value) {
            (Actual::Text(a), Value::Text(t)) => match self.field {
                Field::GpuName => t.is_in(a),
                Field::Driver => t.is_prefix_of(a),
                _ => t.is_same_as(a),
            },
            (Actual::Text(a), Value::Country(code)) => a.eq_ignore_ascii_case(code),
            (Actual::Node(a), Value::Node(b)) => a == b,
            (Actual::Bool(a), Value::Bool(b)) => a == b,
            _ => order(actual, value).is_some_and(Ordering::is_eq),
        }
    }
}

/// How a numeric or version value of an offer compares with a query value.
fn order(actual: &Actual<'_>, value: &Value) -> Option<Ordering> {
    match (actual, value) {
        (Actual::Integer(a), Value::Integer(b)) => Some(a.cmp(b)),
        (Actual::Decimal(a), Value::Decimal(b)) => a.partial_cmp(b),
        (Actual::Version(a), Value::Version(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

impl fmt::Display for Constraint {
    /// Canonical text that parses back to an equal constraint: `price<=1500`,
    /// `location in [DE,FR]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op.takes_list() {
            write!(f, "{} {} [", self.field, self.op)?;
            for (i, value) in self.values.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                write!(f, "{sep}{value}")?;
            }
            f.write_str("]")
        } else {
            let value = self
                .values
                .first()
                .map(Value::to_string)
                .unwrap_or_default();
            write!(f, "{}{}{value}", self.field, self.op)
        }
    }
}

impl FromStr for Constraint {
    type Err = QueryError;

    /// Parses one constraint, such as `cuda>=12.2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let query = super::Query::parse(s)?;
        match <[Constraint; 1]>::try_from(query.constraints) {
            Ok([constraint])
                if query.sort.is_empty() && query.limit.is_none() && query.offset == 0 =>
            {
                Ok(constraint)
            }
            _ => Err(QueryError::new(
                "expected exactly one constraint, e.g. price<=1500",
                0,
                s.len(),
            )),
        }
    }
}
