//! Splits a query into tokens with their byte spans: words, quoted strings, operators,
//! brackets and commas. Whitespace only separates tokens.

use super::constraint::Op;
use super::error::QueryError;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A run of characters other than whitespace and `= ! < > [ ] , "`; its text is the
    /// input at the token's span.
    Word,
    /// A double-quoted string, unescaped (`\"` → `"`, `\\` → `\`).
    Quoted(String),
    /// `=` (or `==`), `!=`, `<`, `<=`, `>`, `>=`.
    Op(Op),
    /// `[`
    Open,
    /// `]`
    Close,
    /// `,`
    Comma,
}

/// A token and where it is in the input.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Token {
    /// The input text the token covers (quotes included for a quoted string).
    pub(crate) fn text<'a>(&self, input: &'a str) -> &'a str {
        input.get(self.start..self.end).unwrap_or("")
    }
}

/// Whether `c` can be part of a bare word.
pub(crate) fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '=' | '!' | '<' | '>' | '[' | ']' | ',' | '"')
}

/// The tokens of `input`, or an error at the first character that cannot start one.
pub(crate) fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut lexer = Lexer { input, pos: 0 };
    let mut tokens = Vec::new();
    while let Some(c) = lexer.peek() {
        let start = lexer.pos;
        if c.is_whitespace() {
            lexer.bump(c);
            continue;
        }
        let kind = match c {
            '[' => lexer.single(c, TokenKind::Open),
            ']' => lexer.single(c, TokenKind::Close),
            ',' => lexer.single(c, TokenKind::Comma),
            '"' => lexer.quoted()?,
            '=' | '!' | '<' | '>' => lexer.operator(c)?,
            _ => lexer.word(),
        };
        tokens.push(Token {
            kind,
            start,
            end: lexer.pos,
        });
    }
    Ok(tokens)
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.input.get(self.pos..)?.chars().next()
    }

    fn bump(&mut self, c: char) {
        self.pos += c.len_utf8();
    }

    /// Consumes `c` and, when the next character is `next`, that one too.
    fn bump_if_followed(&mut self, c: char, next: char) -> bool {
        self.bump(c);
        let followed = self.peek() == Some(next);
        if followed {
            self.bump(next);
        }
        followed
    }

    fn single(&mut self, c: char, kind: TokenKind) -> TokenKind {
        self.bump(c);
        kind
    }

    fn operator(&mut self, c: char) -> Result<TokenKind, QueryError> {
        let start = self.pos;
        let with_eq = self.bump_if_followed(c, '=');
        let op = match (c, with_eq) {
            ('=', _) => Op::Eq,
            ('!', true) => Op::Ne,
            ('<', false) => Op::Lt,
            ('<', true) => Op::Le,
            ('>', false) => Op::Gt,
            ('>', true) => Op::Ge,
            _ => {
                let message = "unexpected `!`; to exclude a value write `!=`, e.g. simulated!=true";
                return Err(QueryError::new(message, start, self.pos));
            }
        };
        Ok(TokenKind::Op(op))
    }

    fn word(&mut self) -> TokenKind {
        while let Some(c) = self.peek().filter(|&c| is_word_char(c)) {
            self.bump(c);
        }
        TokenKind::Word
    }

    fn quoted(&mut self) -> Result<TokenKind, QueryError> {
        let start = self.pos;
        self.bump('"');
        let mut text = String::new();
        while let Some(c) = self.peek() {
            self.bump(c);
            match c {
                '"' => return Ok(TokenKind::Quoted(text)),
                '\\' => match self.peek() {
                    Some(escaped) => {
                        self.bump(escaped);
                        text.push(escaped);
                    }
                    None => break,
                },
                _ => text.push(c),
            }
        }
        let message = "unterminated quote: close the value with `\"`, e.g. gpu_name=\"RTX 4090\"";
        Err(QueryError::new(message, start, self.input.len()))
    }
}
