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

/// Where a type does not fit another ([`Schema::mismatch`]): the path
/// inside the value (`$`, `$.tags[*]`: `[*]` is every item of a list, `.*`
/// every value of a map) and the two types there, as type expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Where inside the value.
    pub path: String,
    /// The type expected there (`no field` where a closed record names none).
    pub expected: String,
    /// The type given there (`no field` where a required field is missing,
    /// `optional T` where it may be missing).
    pub found: String,
}

impl Schema {
    /// Why this type cannot be used where `to` is expected: the first place
    /// inside the value where they differ, or `None` when it can.
    ///
    /// ```
    /// use module_registry::Schema;
    ///
    /// let t = |s: &str| Schema::parse(s).unwrap();
    /// let why = t("{tags: list[int]}").mismatch(&t("{tags: list[str]}")).unwrap();
    /// assert_eq!((why.path.as_str(), why.expected.as_str(), why.found.as_str()), ("$.tags[*]", "str", "int"));
    /// assert!(t("int").mismatch(&t("float")).is_none());
    /// ```
    pub fn mismatch(&self, to: &Schema) -> Option<Mismatch> {
        if self.is_assignable_to(to) {
            return None;
        }
        let mut path = String::from("$");
        Some(self.mismatch_at(to, &mut path))
    }

    /// The mismatch of `self` (not assignable) to `to`, at `path`.
    fn mismatch_at(&self, to: &Schema, path: &mut String) -> Mismatch {
        let here = |path: &str, expected: String, found: String| Mismatch {
            path: path.to_string(),
            expected,
            found,
        };
        let len = path.len();
        let inner = match (self.kind(), to.kind()) {
            (SchemaKind::List(a), SchemaKind::List(b)) => {
                path.push_str("[*]");
                Some(a.mismatch_at(b, path))
            }
            (SchemaKind::Map(a), SchemaKind::Map(b)) => {
                path.push_str(".*");
                Some(a.mismatch_at(b, path))
            }
            (SchemaKind::Record(a), SchemaKind::Record(b)) => record_mismatch(a, b, path),
            _ => None,
        };
        path.truncate(len);
        inner.unwrap_or_else(|| here(path, to.to_string(), self.to_string()))
    }
}

/// The first field where record `from` does not fit `to`; `None` when the
/// difference is the records' openness.
fn record_mismatch(from: &Record, to: &Record, path: &mut String) -> Option<Mismatch> {
    let len = path.len();
    let at = |path: &mut String, name: &str, expected: String, found: String| {
        super::validate::push_key(path, name);
        let m = Mismatch {
            path: path.clone(),
            expected,
            found,
        };
        path.truncate(len);
        m
    };
    for (name, want) in &to.fields {
        match from.fields.get(name) {
            Some(have) if !have.schema.is_assignable_to(&want.schema) => {
                super::validate::push_key(path, name);
                let m = have.schema.mismatch_at(&want.schema, path);
                path.truncate(len);
                return Some(m);
            }
            Some(have) if want.required && !have.required => {
                let found = format!("optional {}", have.schema);
                return Some(at(path, name, want.schema.to_string(), found));
            }
            None if want.required => {
                return Some(at(path, name, want.schema.to_string(), "no field".into()));
            }
            _ => {}
        }
    }
    if !to.open {
        if let Some((name, have)) = from
            .fields
            .iter()
            .find(|(n, _)| !to.fields.contains_key(*n))
        {
            return Some(at(path, name, "no field".into(), have.schema.to_string()));
        }
    }
    None
}
