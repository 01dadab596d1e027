//! Checking a [`Value`] against a [`Schema`]: [`Schema::accepts`] and
//! [`Schema::validate`], whose error says where (`$.tags[2]`), what was
//! expected and what was found. The walk follows the schema, so it
//! recurses at most [`MAX_DEPTH`](super::MAX_DEPTH) deep whatever the value.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::{Literal, Record, Schema, SchemaKind};
use crate::error::{Error, Result};
use crate::value::{Opaque, Value};

/// How a binding says whether an opaque value is an instance of a class
/// (`module.qualname`, subclasses included): `Some(answer)` for the values
/// it made, `None` to leave it to the default, which compares the class
/// name with the value's [`Opaque::type_name`].
pub type OpaqueCheck = fn(&Opaque, &str) -> Option<bool>;

static OPAQUE_CHECK: OnceLock<OpaqueCheck> = OnceLock::new();

/// Installs the process's [`OpaqueCheck`] (once; a binding does it when it
/// loads). Returns `false`, changing nothing, when one is already set.
pub fn set_opaque_check(check: OpaqueCheck) -> bool {
    OPAQUE_CHECK.set(check).is_ok()
}

fn opaque_is(value: &Opaque, class: &str) -> bool {
    OPAQUE_CHECK
        .get()
        .and_then(|check| check(value, class))
        .unwrap_or_else(|| value.type_name() == class)
}

/// One step of the path to a value.
enum Step<'a> {
    Index(usize),
    Key(&'a str),
}

fn path_text(path: &[Step<'_>]) -> String {
    let mut text = String::from("$");
    for step in path {
        match step {
            Step::Index(i) => {
                let _ = write!(text, "[{i}]");
            }
            Step::Key(k) => push_key(&mut text, k),
        }
    }
    text
}

pub(super) fn push_key(text: &mut String, key: &str) {
    if is_plain_key(key) {
        let _ = write!(text, ".{key}");
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_default();
        let _ = write!(text, "[{quoted}]");
    }
}

fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What a value is, as an error says it: its type, or for a string, an
/// integer or a boolean checked against literals, the value itself.
fn found(value: &Value, expected: &Schema) -> String {
    let literal_expected = match expected.kind() {
        SchemaKind::Literal(_) => true,
        SchemaKind::Union(m) => m.iter().any(|s| matches!(s.kind(), SchemaKind::Literal(_))),
        _ => false,
    };
    match value {
        Value::Str(s) if literal_expected => {
            super::parse::excerpt(&Literal::Str(s.clone()).to_string())
        }
        Value::Int(i) if literal_expected => i.to_string(),
        Value::Bool(b) if literal_expected => b.to_string(),
        Value::Opaque(o) => format!("opaque[{}]", o.type_name()),
        other => other.type_name().to_string(),
    }
}

impl Schema {
    /// Whether `value` fits this type.
    pub fn accepts(&self, value: &Value) -> bool {
        match (self.kind(), value) {
            (SchemaKind::Any, _)
            | (SchemaKind::Null, Value::Null)
            | (SchemaKind::Bool, Value::Bool(_))
            | (SchemaKind::Int, Value::Int(_))
            | (SchemaKind::Float, Value::Float(_) | Value::Int(_))
            | (SchemaKind::Str, Value::Str(_))
            | (SchemaKind::Bytes, Value::Bytes(_))
            | (SchemaKind::Opaque(None), Value::Opaque(_)) => true,
            (SchemaKind::Opaque(Some(class)), Value::Opaque(o)) => opaque_is(o, class),
            (SchemaKind::Literal(literal), value) => literal_is(literal, value),
            (SchemaKind::List(item), Value::List(items)) => items.iter().all(|v| item.accepts(v)),
            (SchemaKind::Map(of), Value::Map(map)) => map.values().all(|v| of.accepts(v)),
            (SchemaKind::Record(record), Value::Map(map)) => {
                record_fields_present(record, map)
                    && map.iter().all(|(k, v)| match record.fields.get(k) {
                        Some(field) => field.schema.accepts(v),
                        None => record.open,
                    })
            }
            (SchemaKind::Union(members), value) => members.iter().any(|m| m.accepts(value)),
            _ => false,
        }
    }

    /// Checks `value` against this type: an [`Error::SchemaMismatch`]
    /// naming the path to the first part that does not fit (`$.tags[2]`),
    /// the type expected there and what was found.
    pub fn validate(&self, value: &Value) -> Result<()> {
        let mut path = Vec::new();
        self.check(value, &mut path)
    }

    fn check<'v>(&self, value: &'v Value, path: &mut Vec<Step<'v>>) -> Result<()> {
        let mismatch = |expected: String, found: String, path: &[Step<'_>]| Error::SchemaMismatch {
            path: path_text(path),
            expected,
            found,
            call: None,
        };
        match (self.kind(), value) {
            (SchemaKind::List(item), Value::List(items)) => {
                for (i, v) in items.iter().enumerate() {
                    path.push(Step::Index(i));
                    item.check(v, path)?;
                    path.pop();
                }
                Ok(())
            }
            (SchemaKind::Map(of), Value::Map(map)) => {
                for (k, v) in map {
                    path.push(Step::Key(k));
                    of.check(v, path)?;
                    path.pop();
                }
                Ok(())
            }
            (SchemaKind::Record(record), Value::Map(map)) => {
                for (name, field) in &record.fields {
                    if field.required && !map.contains_key(name) {
                        let mut at = path_text(path);
                        push_key(&mut at, name);
                        return Err(Error::SchemaMismatch {
                            path: at,
                            expected: field.schema.to_string(),
                            found: "nothing".into(),
                            call: None,
                        });
                    }
                }
                for (k, v) in map {
                    path.push(Step::Key(k));
                    match record.fields.get(k) {
                        Some(field) => field.schema.check(v, path)?,
                        None if record.open => {}
                        None => {
                            let expected = "no such field (the record is closed)".to_string();
                            return Err(mismatch(expected, found(v, self), path));
                        }
                    }
                    path.pop();
                }
                Ok(())
            }
            _ if self.accepts(value) => Ok(()),
            _ => Err(mismatch(self.to_string(), found(value, self), path)),
        }
    }
}

fn record_fields_present(record: &Record, map: &crate::value::ValueMap) -> bool {
    record
        .fields
        .iter()
        .all(|(name, field)| !field.required || map.contains_key(name))
}

fn literal_is(literal: &Literal, value: &Value) -> bool {
    match (literal, value) {
        (Literal::Bool(a), Value::Bool(b)) => a == b,
        (Literal::Int(a), Value::Int(b)) => a == b,
        (Literal::Str(a), Value::Str(b)) => a == b,
        _ => false,
    }
}
