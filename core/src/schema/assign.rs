//! Assignability: whether a value of one type can be used where another
//! is expected. The rules, and nothing else:
//!
//! - every type to itself; `any` both ways;
//! - `int` to `float`; `bool` is not an `int`;
//! - a literal to its base type (`"fast"` to `str`, `1` to `int` and so to
//!   `float`, `true` to `bool`) and to itself;
//! - a type to a union with an assignable member; a union when every
//!   member is assignable;
//! - records field by field: each field the target requires is required in
//!   the source and assignable; each field the target names and the source
//!   has is assignable; a field the source may leave out must be optional in
//!   the target; fields the target does not name (and an open source, which
//!   may carry any) only into an open target, and an open source lacking a
//!   field the target names optionally only when that field is `any`;
//! - `list` and `map` element by element;
//! - `opaque[X]` to `opaque[X]` and to `opaque`, not the reverse.

use super::{Literal, Record, Schema, SchemaKind};

impl Schema {
    /// Whether a value of this type can be used where `to` is expected.
    ///
    /// ```
    /// use module_registry::Schema;
    ///
    /// let t = |s: &str| Schema::parse(s).unwrap();
    /// assert!(t("int").is_assignable_to(&t("float")));
    /// assert!(!t("bool").is_assignable_to(&t("int")));
    /// assert!(t("\"fast\" | \"slow\"").is_assignable_to(&t("str")));
    /// assert!(t("{a: int, b: str}").is_assignable_to(&t("{a: float, ...}")));
    /// assert!(!t("{a: int, b: str}").is_assignable_to(&t("{a: float}")));
    /// ```
    pub fn is_assignable_to(&self, to: &Schema) -> bool {
        if self == to {
            return true;
        }
        match (self.kind(), to.kind()) {
            (SchemaKind::Any, _) | (_, SchemaKind::Any) => true,
            (SchemaKind::Union(members), _) => members.iter().all(|m| m.is_assignable_to(to)),
            (_, SchemaKind::Union(members)) => members.iter().any(|m| self.is_assignable_to(m)),
            (SchemaKind::Int, SchemaKind::Float) => true,
            (SchemaKind::Literal(literal), base) => literal_to(literal, base),
            (SchemaKind::List(a), SchemaKind::List(b))
            | (SchemaKind::Map(a), SchemaKind::Map(b)) => a.is_assignable_to(b),
            (SchemaKind::Record(a), SchemaKind::Record(b)) => record_to(a, b),
            (SchemaKind::Opaque(Some(_)), SchemaKind::Opaque(None)) => true,
            _ => false,
        }
    }
}

fn literal_to(literal: &Literal, to: &SchemaKind) -> bool {
    matches!(
        (literal, to),
        (Literal::Bool(_), SchemaKind::Bool)
            | (Literal::Int(_), SchemaKind::Int | SchemaKind::Float)
            | (Literal::Str(_), SchemaKind::Str)
    ) || matches!(to, SchemaKind::Literal(other) if other == literal)
}

fn record_to(from: &Record, to: &Record) -> bool {
    if from.open && !to.open {
        return false;
    }
    let named = to
        .fields
        .iter()
        .all(|(name, want)| match from.fields.get(name) {
            Some(have) => {
                (have.required || !want.required) && have.schema.is_assignable_to(&want.schema)
            }
            // An open source may carry the field with any type.
            None => !want.required && (!from.open || want.schema.is_any()),
        });
    named && (to.open || from.fields.keys().all(|name| to.fields.contains_key(name)))
}
