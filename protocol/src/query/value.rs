//! Values in constraints: checked against their field's kind when parsed and normalised
//! then (lower-cased words, upper-cased country codes, decoded node ids), so evaluating a
//! constraint against an offer never allocates.

use std::fmt;
use std::str::FromStr;

use crate::ids::NodeId;
use crate::offer::Version;

use super::field::{Field, FieldKind};
use super::lexer::is_word_char;

/// A value in a constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A whole number (`price`, `num_gpus`, `cpu_cores`, `pcie`, `total_price`).
    Integer(u64),
    /// A decimal number (`gpu_ram`, `ram`, `disk`, `max_duration`, `reliability`).
    Decimal(f64),
    /// A `major.minor` version (`cuda`, `compute_cap`); `12` means `12.0`.
    Version(Version),
    /// `true` or `false` (`simulated`, `nvlink`).
    Bool(bool),
    /// Text compared word by word (`gpu_name`, `driver`, `region`).
    Text(Text),
    /// An ISO country code, upper case (`location`).
    Country(String),
    /// A node id (`provider`).
    Node(NodeId),
}

impl fmt::Display for Value {
    /// Writes the value so that it parses back to itself.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(n) => write!(f, "{n}"),
            Value::Decimal(x) => write!(f, "{x}"),
            Value::Version(v) => write!(f, "{v}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(text) => write_text(f, text.as_str()),
            Value::Country(code) => f.write_str(code),
            Value::Node(id) => write!(f, "{id}"),
        }
    }
}

/// Writes `text` bare when it lexes back as one word, else quoted with `"` and `\` escaped.
fn write_text(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    if !text.is_empty() && text.chars().all(is_word_char) {
        return f.write_str(text);
    }
    f.write_str("\"")?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// A text value as typed, with its words lower-cased. Words are the runs of letters and
/// digits, so `RTX_4090`, `"rtx 4090"` and `RTX-4090` all have the words `rtx`, `4090`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    raw: String,
    words: Vec<String>,
}

impl Text {
    /// Splits `raw` into lower-cased words.
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let words = words_of(&raw)
            .map(|w| w.chars().flat_map(char::to_lowercase).collect())
            .collect();
        Self { raw, words }
    }

    /// The text as typed.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The lower-cased words.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Whether this text's words appear in `actual`, consecutively (`RTX_4090` is in
    /// `NVIDIA GeForce RTX 4090`; `RTX_409` is not).
    pub(crate) fn is_in(&self, actual: &str) -> bool {
        let mut rest = words_of(actual);
        loop {
            if starts_with(rest.clone(), &self.words) {
                return true;
            }
            if rest.next().is_none() {
                return false;
            }
        }
    }

    /// Whether `actual` begins with this text's words (`550` begins `550.54.15`).
    pub(crate) fn is_prefix_of(&self, actual: &str) -> bool {
        starts_with(words_of(actual), &self.words)
    }

    /// Whether `actual` has exactly this text's words (`eu_central` is `EU-Central`).
    pub(crate) fn is_same_as(&self, actual: &str) -> bool {
        let mut rest = words_of(actual);
        starts_with(&mut rest, &self.words) && rest.next().is_none()
    }
}

fn is_separator(c: char) -> bool {
    !c.is_alphanumeric()
}

fn is_nonempty(word: &&str) -> bool {
    !word.is_empty()
}

fn words_of(s: &str) -> impl Iterator<Item = &str> + Clone {
    s.split(is_separator as fn(char) -> bool)
        .filter(is_nonempty as fn(&&str) -> bool)
}

fn starts_with<'a>(mut actual: impl Iterator<Item = &'a str>, wanted: &[String]) -> bool {
    wanted
        .iter()
        .all(|w| actual.next().is_some_and(|a| word_eq(a, w)))
}

/// `actual` equals `lower` (already lower-cased) ignoring case.
fn word_eq(actual: &str, lower: &str) -> bool {
    if actual.is_ascii() {
        actual.eq_ignore_ascii_case(lower)
    } else {
        actual
            .chars()
            .flat_map(char::to_lowercase)
            .eq(lower.chars())
    }
}

/// Parses `text` as a value of `field`, or says what the field wants.
pub(crate) fn parse_value(field: Field, text: &str) -> Result<Value, String> {
    let value = match field.kind() {
        FieldKind::Integer => Value::Integer(parse_integer(field, text)?),
        FieldKind::Decimal => Value::Decimal(parse_decimal(field, text)?),
        FieldKind::Version => Value::Version(parse_version(field, text)?),
        FieldKind::Bool => Value::Bool(parse_bool(field, text)?),
        FieldKind::Text => Value::Text(parse_text(field, text)?),
        FieldKind::Country => Value::Country(parse_country(text)?),
        FieldKind::Node => Value::Node(NodeId::from_str(text).map_err(|e| e.to_string())?),
    };
    Ok(value)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_decimal(s: &str) -> bool {
    match s.split_once('.') {
        Some((whole, fraction)) => is_digits(whole) && is_digits(fraction),
        None => is_digits(s),
    }
}

fn wrong(field: Field, wanted: &str, text: &str) -> String {
    if text.strip_prefix('-').is_some_and(is_decimal) {
        return format!("`{field}` cannot be negative, e.g. {}", field.example());
    }
    format!(
        "`{field}` needs {wanted}, e.g. {}; found `{text}`",
        field.example()
    )
}

fn parse_integer(field: Field, text: &str) -> Result<u64, String> {
    if !is_digits(text) {
        return Err(wrong(field, "a whole number", text));
    }
    text.parse()
        .map_err(|_| format!("`{text}` is too large for `{field}`"))
}

fn parse_decimal(field: Field, text: &str) -> Result<f64, String> {
    if !is_decimal(text) {
        return Err(wrong(field, "a number", text));
    }
    let x: f64 = text.parse().map_err(|_| wrong(field, "a number", text))?;
    if !x.is_finite() {
        return Err(format!("`{text}` is too large for `{field}`"));
    }
    if field == Field::Reliability && x > 1.0 {
        return Err(format!(
            "`reliability` is a share from 0 to 1, e.g. reliability>=0.95; found `{text}`"
        ));
    }
    Ok(x)
}

fn parse_version(field: Field, text: &str) -> Result<Version, String> {
    let (major, minor) = text.split_once('.').unwrap_or((text, "0"));
    let wanted = "a version such as 12.2";
    if !is_digits(major) || !is_digits(minor) {
        return Err(wrong(field, wanted, text));
    }
    let too_large = |_| format!("`{text}` is too large for `{field}`: parts go up to 65535");
    Ok(Version::new(
        major.parse().map_err(too_large)?,
        minor.parse().map_err(too_large)?,
    ))
}

fn parse_bool(field: Field, text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(wrong(field, "`true` or `false`", text))
    }
}

fn parse_text(field: Field, text: &str) -> Result<Text, String> {
    let value = Text::new(text);
    if value.words().is_empty() {
        return Err(wrong(field, "a value with letters or digits", text));
    }
    Ok(value)
}

fn parse_country(text: &str) -> Result<String, String> {
    if text.len() == 2 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(text.to_ascii_uppercase());
    }
    Err(format!(
        "`location` is a two-letter ISO country code such as DE or FR; found `{text}`"
    ))
}
