//! Tokens to [`Query`]: fields and operators are looked up, values are checked against
//! their field, and every error points at the token it is about.

use super::constraint::{Constraint, Op};
use super::error::QueryError;
use super::field::{CONTROL_NAMES, Field, suggest};
use super::lexer::{Token, TokenKind, lex};
use super::sort::SortKey;
use super::value::{Value, parse_value};
use super::{MAX_CONSTRAINTS, MAX_LIMIT, MAX_LIST_VALUES, MAX_QUERY_BYTES, Query};

/// Parses a whole query.
pub(crate) fn parse(input: &str) -> Result<Query, QueryError> {
    let too_long = |what: &str, len: usize| {
        let message = format!("{what} is {len} bytes; the most is {MAX_QUERY_BYTES}");
        Err(QueryError::new(message, 0, input.len()))
    };
    if input.len() > MAX_QUERY_BYTES {
        return too_long("the query", input.len());
    }
    let tokens = lex(input)?;
    let mut parser = Parser {
        input,
        tokens: tokens.into_iter().peekable(),
        query: Query::default(),
        seen: Seen::default(),
    };
    while let Some(name) = parser.tokens.next() {
        parser.clause(name)?;
    }
    // Canonical text can be longer than the input (`gpu=x` → `gpu_name=x`); refusing a
    // query whose canonical text is over the limit keeps `parse(q.to_string()) == q`.
    let canonical = parser.query.to_string().len();
    if canonical > MAX_QUERY_BYTES {
        return too_long("the query written out in full", canonical);
    }
    Ok(parser.query)
}

struct Parser<'a> {
    input: &'a str,
    tokens: std::iter::Peekable<std::vec::IntoIter<Token>>,
    query: Query,
    seen: Seen,
}

/// Which control words a query has set already (each may appear once).
#[derive(Default)]
struct Seen {
    sort: bool,
    limit: bool,
    offset: bool,
}

impl Parser<'_> {
    fn error<T>(&self, message: impl Into<String>, token: &Token) -> Result<T, QueryError> {
        Err(QueryError::new(message, token.start, token.end))
    }

    fn at_end<T>(&self, message: impl Into<String>) -> Result<T, QueryError> {
        Err(QueryError::new(message, self.input.len(), self.input.len()))
    }

    /// One `name op value` clause, starting at its name.
    fn clause(&mut self, name: Token) -> Result<(), QueryError> {
        let text = name.text(self.input);
        if name.kind != TokenKind::Word {
            return self.error(
                format!("expected a field name such as `price`, found `{text}`"),
                &name,
            );
        }
        let lower = text.to_ascii_lowercase();
        if CONTROL_NAMES.contains(&lower.as_str()) {
            return self.control(&lower, name);
        }
        match Field::from_name(text) {
            Some(field) => self.constraint(field, name),
            None => self.error(unknown_field(text), &name),
        }
    }

    /// The operator after `name`.
    fn op(&mut self, name: &Token) -> Result<(Op, Token), QueryError> {
        let field = name.text(self.input);
        let Some(token) = self.tokens.next() else {
            return self.error(
                format!("`{field}` needs an operator and a value, e.g. `{field}=…`"),
                name,
            );
        };
        let op = match &token.kind {
            TokenKind::Op(op) => Some(*op),
            TokenKind::Word => match token.text(self.input).to_ascii_lowercase().as_str() {
                "in" => Some(Op::In),
                "notin" => Some(Op::NotIn),
                _ => None,
            },
            _ => None,
        };
        match op {
            Some(op) => Ok((op, token)),
            None => {
                let found = token.text(self.input);
                let message = format!(
                    "expected an operator (= != < <= > >= in notin) after `{field}`, found `{found}`"
                );
                self.error(message, &token)
            }
        }
    }

    fn constraint(&mut self, field: Field, name: Token) -> Result<(), QueryError> {
        if self.query.constraints.len() >= MAX_CONSTRAINTS {
            return self.error(
                format!("a query may have at most {MAX_CONSTRAINTS} constraints"),
                &name,
            );
        }
        let (mut op, op_token) = self.op(&name)?;
        if op.is_ordering() && !field.kind().is_ordered() {
            let message = format!(
                "`{field}` cannot be ordered with `{op}`; use =, !=, in or notin, e.g. {}",
                field.example()
            );
            return self.error(message, &op_token);
        }
        let is_list = self
            .tokens
            .peek()
            .is_some_and(|t| t.kind == TokenKind::Open);
        let values = self.values(field, op, &op_token, is_list)?;
        // `=` and `!=` with a list mean `in` and `notin`.
        op = match op {
            Op::Eq if is_list => Op::In,
            Op::Ne if is_list => Op::NotIn,
            op => op,
        };
        self.query
            .constraints
            .push(Constraint { field, op, values });
        Ok(())
    }

    /// The value after an operator, or the list when `is_list` (the next token is `[`).
    fn values(
        &mut self,
        field: Field,
        op: Op,
        op_token: &Token,
        is_list: bool,
    ) -> Result<Vec<Value>, QueryError> {
        match (op, is_list) {
            (Op::In | Op::NotIn | Op::Eq | Op::Ne, true) => self.list(field, op_token),
            (Op::In | Op::NotIn, false) => {
                let message =
                    format!("`{op}` takes a list in brackets, e.g. location {op} [DE,FR]");
                self.error(message, op_token)
            }
            (_, true) => self.error(
                format!("`{op}` takes one value; use `in` for a list"),
                op_token,
            ),
            (_, false) => Ok(vec![self.value(field, op_token)?]),
        }
    }

    /// The token after `after`, which must be a word or a quoted string; returns its text.
    fn value_token(&mut self, after: &Token) -> Result<(String, Token), QueryError> {
        let Some(token) = self.tokens.next() else {
            return self.at_end(format!(
                "expected a value after `{}`",
                after.text(self.input)
            ));
        };
        match &token.kind {
            TokenKind::Word => Ok((token.text(self.input).to_owned(), token)),
            TokenKind::Quoted(text) => Ok((text.clone(), token)),
            _ => {
                let found = token.text(self.input);
                self.error(
                    format!(
                        "expected a value after `{}`, found `{found}`",
                        after.text(self.input)
                    ),
                    &token,
                )
            }
        }
    }

    fn value(&mut self, field: Field, after: &Token) -> Result<Value, QueryError> {
        let (text, token) = self.value_token(after)?;
        parse_value(field, &text).or_else(|message| self.error(message, &token))
    }

    /// `[v, v, …]` after an operator; the caller has seen the `[`.
    fn list(&mut self, field: Field, op: &Token) -> Result<Vec<Value>, QueryError> {
        let Some(open) = self.tokens.next() else {
            return self.at_end("expected `[`");
        };
        if self
            .tokens
            .peek()
            .is_some_and(|t| t.kind == TokenKind::Close)
        {
            let end = self.tokens.next().map_or(open.end, |t| t.end);
            let message = format!(
                "empty list: give at least one value, e.g. {}",
                field.example()
            );
            return Err(QueryError::new(message, open.start, end));
        }
        let mut values = Vec::new();
        let mut after = open;
        loop {
            if values.len() >= MAX_LIST_VALUES {
                return self.error(
                    format!("a list may have at most {MAX_LIST_VALUES} values"),
                    &after,
                );
            }
            values.push(self.value(field, &after)?);
            match self.tokens.next() {
                Some(t) if t.kind == TokenKind::Comma => after = t,
                Some(t) if t.kind == TokenKind::Close => return Ok(values),
                Some(t) => {
                    let found = t.text(self.input);
                    return self.error(
                        format!("expected `,` or `]` in the list, found `{found}`"),
                        &t,
                    );
                }
                None => {
                    let message = format!("unclosed list after `{}`: add `]`", op.text(self.input));
                    return self.at_end(message);
                }
            }
        }
    }

    /// `sort=…`, `limit=N` or `offset=N`.
    fn control(&mut self, name: &str, token: Token) -> Result<(), QueryError> {
        let already = match name {
            "sort" => std::mem::replace(&mut self.seen.sort, true),
            "limit" => std::mem::replace(&mut self.seen.limit, true),
            _ => std::mem::replace(&mut self.seen.offset, true),
        };
        if already {
            return self.error(format!("`{name}` is given twice; keep one"), &token);
        }
        let (op, op_token) = self.op(&token)?;
        if op != Op::Eq {
            return self.error(
                format!("`{name}` takes `=`, e.g. {}", control_example(name)),
                &op_token,
            );
        }
        match name {
            "sort" => self.sort(&op_token),
            "limit" => {
                let limit = self.count(name, &op_token, 1)?;
                self.query.limit = Some(limit);
                Ok(())
            }
            _ => {
                self.query.offset = self.count(name, &op_token, 0)?;
                Ok(())
            }
        }
    }

    /// A number for `limit` (from 1 to [`MAX_LIMIT`]) or `offset` (from 0).
    fn count(&mut self, name: &str, after: &Token, min: u32) -> Result<u32, QueryError> {
        let (text, token) = self.value_token(after)?;
        let max = if name == "limit" { MAX_LIMIT } else { u32::MAX };
        let in_range = Some(&text)
            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|n| (min..=max).contains(n));
        match in_range {
            Some(n) => Ok(n),
            None => self.error(
                format!("`{name}` must be a whole number from {min} to {max}; found `{text}`"),
                &token,
            ),
        }
    }

    /// `key[,key…]` where a key is a sortable field, `-` in front for descending.
    fn sort(&mut self, after: &Token) -> Result<(), QueryError> {
        let mut after = after.clone();
        loop {
            let (text, token) = self.value_token(&after)?;
            let key = self.sort_key(&text, &token)?;
            if self.query.sort.iter().any(|k| k.field == key.field) {
                return self.error(
                    format!("`{}` is sorted on twice; keep one", key.field),
                    &token,
                );
            }
            self.query.sort.push(key);
            match self.tokens.peek() {
                Some(t) if t.kind == TokenKind::Comma => {
                    after = self.tokens.next().unwrap_or(token)
                }
                _ => return Ok(()),
            }
        }
    }

    fn sort_key(&self, text: &str, token: &Token) -> Result<SortKey, QueryError> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        match Field::from_name(name) {
            Some(field) if field.is_sortable() => Ok(SortKey { field, descending }),
            Some(field) => {
                let sortable: Vec<&str> = Field::ALL
                    .iter()
                    .filter(|f| f.is_sortable())
                    .map(|f| f.name())
                    .collect();
                self.error(
                    format!(
                        "cannot sort by `{field}`; sortable: {}",
                        sortable.join(", ")
                    ),
                    token,
                )
            }
            None => self.error(unknown_field(name), token),
        }
    }
}

fn control_example(name: &str) -> &'static str {
    match name {
        "sort" => "sort=-reliability or sort=price,-reliability",
        "limit" => "limit=20",
        _ => "offset=40",
    }
}

/// The message for a word that names no field, with the closest name when there is one.
fn unknown_field(word: &str) -> String {
    let looks_like_name = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !looks_like_name {
        return format!(
            "expected a field name such as `price`, found `{word}`; \
             inside a value write a space as `_` or quote the value: gpu_name=\"RTX 4090\""
        );
    }
    match suggest(word) {
        Some(name) => format!("unknown field `{word}`; did you mean `{name}`?"),
        None => {
            let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
            format!("unknown field `{word}`; fields: {}", names.join(", "))
        }
    }
}
