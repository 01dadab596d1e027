//! The compact type expression, written: canonical, so that
//! `parse(print(t)) == t` and two types print the same text exactly when
//! they are equal (fields by name, union members in the order of
//! [`SchemaKind`]'s variants, `null` last).

use std::fmt;

use super::{Literal, Record, Schema, SchemaKind};

impl fmt::Display for Schema {
    /// The canonical type expression (`{tags?: list[str], title: str}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            SchemaKind::Any => f.write_str("any"),
            SchemaKind::Null => f.write_str("null"),
            SchemaKind::Bool => f.write_str("bool"),
            SchemaKind::Int => f.write_str("int"),
            SchemaKind::Float => f.write_str("float"),
            SchemaKind::Str => f.write_str("str"),
            SchemaKind::Bytes => f.write_str("bytes"),
            SchemaKind::List(item) => write!(f, "list[{item}]"),
            SchemaKind::Map(value) => write!(f, "map[str, {value}]"),
            SchemaKind::Record(record) => write_record(f, record),
            SchemaKind::Literal(literal) => write!(f, "{literal}"),
            SchemaKind::Opaque(None) => f.write_str("opaque"),
            SchemaKind::Opaque(Some(class)) => write!(f, "opaque[{class}]"),
            SchemaKind::Union(members) => {
                for (i, member) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{member}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Literal {
    /// `true`, `1`, `"fast"` (a JSON string).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Str(s) => write_string(f, s),
        }
    }
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    // A String always serialises.
    let quoted = serde_json::to_string(s).map_err(|_| fmt::Error)?;
    f.write_str(&quoted)
}

/// Whether a field name can be written bare (`title`) rather than quoted.
fn is_bare_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn write_record(f: &mut fmt::Formatter<'_>, record: &Record) -> fmt::Result {
    f.write_str("{")?;
    for (i, (name, field)) in record.fields.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_bare_name(name) {
            f.write_str(name)?;
        } else {
            write_string(f, name)?;
        }
        let mark = if field.required { "" } else { "?" };
        write!(f, "{mark}: {}", field.schema)?;
    }
    match (record.open, record.fields.is_empty()) {
        (true, true) => f.write_str("...")?,
        (true, false) => f.write_str(", ...")?,
        (false, _) => {}
    }
    f.write_str("}")
}
