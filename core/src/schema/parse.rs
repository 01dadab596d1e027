//! The compact type expression, read:
//!
//! ```text
//! type    = member { "|" member }
//! member  = "any" | "null" | "bool" | "int" | "float" | "str" | "bytes"
//!         | "list" "[" type "]" | "map" "[" "str" "," type "]"
//!         | "{" [ field { "," field } [ "," "..." ] | "..." ] [ "," ] "}"
//!         | string | integer | "true" | "false"
//!         | "opaque" [ "[" class "]" ]
//! field   = ( name | string ) [ "?" ] ":" type
//! ```
//!
//! Strings are JSON strings; names are `[A-Za-z_][A-Za-z0-9_]*`; a class is
//! `[A-Za-z0-9_.:<>]+`. Whitespace may go between any two tokens. The
//! parser recurses once per bracket and stops at [`MAX_DEPTH`], and counts
//! nodes as it goes, stopping at [`MAX_NODES`]: no input makes it recurse
//! deeper or work longer than those bounds allow.

use super::{Literal, Schema, MAX_DEPTH, MAX_NODES};
use crate::error::{Error, Result};

/// How much of a refused text an error quotes.
const EXCERPT: usize = 80;

/// The first [`EXCERPT`] characters of `text` (what an error names).
pub(super) fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Checks an opaque type's class name.
pub(super) fn check_class_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:<>".contains(c));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidSchema {
            schema: format!("opaque[{}]", excerpt(name)),
            reason: "a class name is letters, digits and `_ . : < >` (module.qualname)".into(),
        })
    }
}

pub(super) fn parse(text: &str) -> Result<Schema> {
    let mut parser = Parser {
        text,
        pos: 0,
        nodes: 0,
    };
    let schema = parser.union(0)?;
    parser.skip_ws();
    match parser.peek() {
        None => Ok(schema),
        Some(c) => Err(parser.error(format!("unexpected {c:?}"))),
    }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    nodes: usize,
}

impl<'a> Parser<'a> {
    fn error(&self, reason: String) -> Error {
        let column = self.text[..self.pos].chars().count() + 1;
        Error::InvalidSchema {
            schema: excerpt(self.text),
            reason: format!("{reason} at column {column}"),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Skips whitespace and takes `c` if it comes next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, after: &str) -> Result<()> {
        if self.eat(c) {
            return Ok(());
        }
        let found = match self.peek() {
            Some(f) => format!("{f:?}"),
            None => "the end".to_string(),
        };
        Err(self.error(format!("expected {c:?} {after}, found {found}")))
    }

    fn count(&mut self) -> Result<()> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.error(format!("the type has more than {MAX_NODES} nodes")));
        }
        Ok(())
    }

    /// `member | member ...`, inside `depth` brackets.
    fn union(&mut self, depth: usize) -> Result<Schema> {
        let first = self.member(depth)?;
        if !self.eat('|') {
            return Ok(first);
        }
        let mut members = vec![first];
        loop {
            members.push(self.member(depth)?);
            if !self.eat('|') {
                break;
            }
        }
        self.count()?;
        Schema::union(members).map_err(|e| self.error(reason_of(e)))
    }

    fn member(&mut self, depth: usize) -> Result<Schema> {
        if depth >= MAX_DEPTH {
            return Err(self.error(format!("the type nests deeper than {MAX_DEPTH} levels")));
        }
        self.count()?;
        self.skip_ws();
        match self.peek() {
            Some('"') => Ok(Schema::literal(Literal::Str(self.string()?))),
            Some(c) if c == '-' || c.is_ascii_digit() => self.integer(),
            Some('{') => self.record(depth),
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let start = self.pos;
                let name = self.name();
                self.named(name, start, depth)
            }
            Some(c) => Err(self.error(format!("expected a type, found {c:?}"))),
            None => Err(self.error("expected a type, found the end".into())),
        }
    }

    fn named(&mut self, name: &str, start: usize, depth: usize) -> Result<Schema> {
        Ok(match name {
            "any" => Schema::any(),
            "null" => Schema::null(),
            "bool" => Schema::bool(),
            "int" => Schema::int(),
            "float" => Schema::float(),
            "str" => Schema::str(),
            "bytes" => Schema::bytes(),
            "true" => Schema::literal(Literal::Bool(true)),
            "false" => Schema::literal(Literal::Bool(false)),
            "list" => {
                self.expect('[', "after list")?;
                let item = self.union(depth + 1)?;
                self.expect(']', "to close list[")?;
                Schema::list(item).map_err(|e| self.error(reason_of(e)))?
            }
            "map" => {
                self.expect('[', "after map")?;
                self.skip_ws();
                if self.name() != "str" {
                    return Err(self.error("map keys are str: write map[str, T]".into()));
                }
                self.expect(',', "after map[str")?;
                let value = self.union(depth + 1)?;
                self.expect(']', "to close map[")?;
                Schema::map(value).map_err(|e| self.error(reason_of(e)))?
            }
            "opaque" => self.opaque()?,
            other => {
                self.pos = start;
                return Err(self.error(format!("unknown type {other:?}{}", hint(other))));
            }
        })
    }

    /// `[A-Za-z_][A-Za-z0-9_]*` at the current position (may be empty).
    fn name(&mut self) -> &'a str {
        let rest: &'a str = &self.text[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn opaque(&mut self) -> Result<Schema> {
        if !self.eat('[') {
            return Ok(Schema::opaque());
        }
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let Some(end) = rest.find(']') else {
            return Err(self.error("expected ']' to close opaque[".into()));
        };
        let name = rest[..end].trim();
        let schema = Schema::opaque_of(name).map_err(|e| self.error(reason_of(e)))?;
        self.pos += end + 1;
        Ok(schema)
    }

    /// A JSON string at the current position (which is `"`).
    fn string(&mut self) -> Result<String> {
        let rest = &self.text[self.pos..];
        let mut escaped = false;
        for (i, c) in rest.char_indices().skip(1) {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    let text: String = serde_json::from_str(&rest[..=i])
                        .map_err(|e| self.error(format!("invalid string: {e}")))?;
                    self.pos += i + 1;
                    return Ok(text);
                }
                _ => {}
            }
        }
        Err(self.error("unterminated string".into()))
    }

    fn integer(&mut self) -> Result<Schema> {
        let rest = &self.text[self.pos..];
        let sign = usize::from(rest.starts_with('-'));
        let len = sign
            + rest[sign..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - sign);
        if matches!(rest[len..].chars().next(), Some('.' | 'e' | 'E')) {
            return Err(
                self.error("a literal is a string, an integer or a boolean (no floats)".into())
            );
        }
        let value: i64 = rest[..len]
            .parse()
            .map_err(|_| self.error(format!("invalid integer {:?}", excerpt(&rest[..len]))))?;
        self.pos += len;
        Ok(Schema::literal(Literal::Int(value)))
    }

    fn record(&mut self, depth: usize) -> Result<Schema> {
        self.pos += 1; // '{'
        let mut fields = Vec::new();
        let mut open = false;
        while !self.eat('}') {
            if self.text[self.pos..].starts_with("...") {
                self.pos += 3;
                open = true;
                self.eat(',');
                self.expect('}', "after `...` (it ends a record)")?;
                break;
            }
            fields.push(self.field(depth)?);
            if !self.eat(',') {
                self.expect('}', "or ',' after a field")?;
                break;
            }
        }
        Schema::record(fields, open).map_err(|e| self.error(reason_of(e)))
    }

    fn field(&mut self, depth: usize) -> Result<(String, Schema, bool)> {
        self.skip_ws();
        let name = match self.peek() {
            Some('"') => self.string()?,
            Some(c) if c.is_ascii_alphabetic() || c == '_' => self.name().to_string(),
            _ => return Err(self.error("expected a field name, `...` or '}'".into())),
        };
        let required = !self.eat('?');
        self.expect(':', "after a field name")?;
        let schema = self.union(depth + 1)?;
        Ok((name, schema, required))
    }
}

/// The reason of an [`Error::InvalidSchema`] (what a builder refused).
fn reason_of(error: Error) -> String {
    match error {
        Error::InvalidSchema { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// A suggestion for names from other languages.
fn hint(name: &str) -> &'static str {
    match name {
        "string" | "String" | "text" => " (did you mean str?)",
        "integer" | "i64" | "number" => " (did you mean int or float?)",
        "boolean" | "True" | "False" => " (did you mean bool, true or false?)",
        "None" | "nil" | "none" => " (did you mean null?)",
        "dict" | "object" => " (did you mean map[str, T] or a record {...}?)",
        "array" | "tuple" | "Vec" => " (did you mean list[T]?)",
        _ => "",
    }
}
