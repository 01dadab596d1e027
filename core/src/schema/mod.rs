//! [`Schema`]: the type of the values a module takes and gives.
//!
//! A schema is one of `any`, `null`, `bool`, `int`, `float`, `str`,
//! `bytes`, `list[T]`, `map[str, T]`, a record (`{title: str, tags?:
//! list[str]}`, closed, or open to other fields with `...` at the end), a
//! union (`int | null`), a literal (`"fast"`, `1`, `true`) or `opaque`
//! (`opaque[pandas.core.frame.DataFrame]` names the host class).
//!
//! It has two text forms, both read and written here: the compact type
//! expression ([`Schema::parse`], `Display`; printing is canonical, so
//! two texts are equal when their types are) and JSON Schema draft 2020-12
//! ([`Schema::to_json_schema`], [`Schema::from_json_schema`]). A value is
//! checked with [`Schema::accepts`] and [`Schema::validate`]; whether one
//! type can be used where another is expected is
//! [`Schema::is_assignable_to`].
//!
//! ```
//! use module_registry::{Schema, Value};
//!
//! let post = Schema::parse("{title: str, tags?: list[str]}")?;
//! assert_eq!(post.to_string(), "{tags?: list[str], title: str}");
//! assert!(post.accepts(&Value::from_iter([("title", Value::from("hello"))])));
//! let err = post
//!     .validate(&Value::from_iter([("title", Value::from(1))]))
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "value at $.title does not fit: expected str, found int");
//! assert!(Schema::parse("int")?.is_assignable_to(&Schema::parse("float | null")?));
//! # Ok::<(), module_registry::Error>(())
//! ```
//!
//! Bounded: a type nests at most [`MAX_DEPTH`] levels and holds at most
//! [`MAX_NODES`] nodes; past either, building, parsing or reading JSON
//! Schema is an [`Error::InvalidSchema`], never a deep recursion.

mod assign;
mod check;
mod json_schema;
mod parse;
mod print;
mod validate;

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

pub use assign::Mismatch;
pub use check::Validation;
pub use validate::{set_opaque_check, OpaqueCheck};

/// How deep a type may nest (`list[list[str]]` is 3 deep).
pub const MAX_DEPTH: usize = 64;

/// How many nodes a type may hold (each type name, list, map, record,
/// field type, union and literal counts one).
pub const MAX_NODES: usize = 10_000;

/// A literal value a type can be: a string, an integer or a boolean.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Literal {
    /// `true` or `false`.
    Bool(bool),
    /// An integer, such as `1` or `-3`.
    Int(i64),
    /// A string, such as `"fast"`.
    Str(String),
}

/// A field of a record type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Field {
    /// The field's type.
    pub schema: Schema,
    /// Whether the field must be present (`title: str`) or may be absent
    /// (`tags?: list[str]`).
    pub required: bool,
}

/// A record type: named fields, closed (no other field allowed) or open.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    /// The fields, by name (so in a stable order).
    pub fields: BTreeMap<String, Field>,
    /// Whether fields the record does not name are allowed (`...`).
    pub open: bool,
}

/// What a [`Schema`] is. Its variants are declared in the order union
/// members print (`int | null`: null last).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SchemaKind {
    /// Any value.
    Any,
    /// `true` or `false`.
    Bool,
    /// An integer.
    Int,
    /// A float (an integer fits too).
    Float,
    /// Text.
    Str,
    /// Raw bytes.
    Bytes,
    /// A list of values of one type.
    List(Schema),
    /// A map from strings to values of one type.
    Map(Schema),
    /// A record of named fields.
    Record(Record),
    /// One literal value.
    Literal(Literal),
    /// A host object, optionally naming its class (`module.qualname`).
    Opaque(Option<String>),
    /// Values of any of two or more types; flat, sorted, without repeats.
    Union(Vec<Schema>),
    /// No value (`null`).
    Null,
}

struct Node {
    kind: SchemaKind,
    depth: usize,
    nodes: usize,
}

/// A type of values; see the [module documentation](self). Cheap to clone
/// (shared); compares, orders and hashes by its structure.
#[derive(Clone)]
pub struct Schema(Arc<Node>);

fn too_big(what: String) -> Error {
    Error::InvalidSchema {
        schema: String::new(),
        reason: what,
    }
}

impl Schema {
    fn leaf(kind: SchemaKind) -> Schema {
        Schema(Arc::new(Node {
            kind,
            depth: 1,
            nodes: 1,
        }))
    }

    /// A node over `children`, checked against the bounds.
    fn node<'a>(kind: SchemaKind, children: impl Iterator<Item = &'a Schema>) -> Result<Schema> {
        let (mut depth, mut nodes) = (0usize, 1usize);
        for child in children {
            depth = depth.max(child.0.depth);
            nodes = nodes.saturating_add(child.0.nodes);
        }
        let depth = if matches!(kind, SchemaKind::Union(_)) {
            depth
        } else {
            depth + 1
        };
        if depth > MAX_DEPTH {
            return Err(too_big(format!(
                "the type nests deeper than {MAX_DEPTH} levels"
            )));
        }
        if nodes > MAX_NODES {
            return Err(too_big(format!("the type has more than {MAX_NODES} nodes")));
        }
        Ok(Schema(Arc::new(Node { kind, depth, nodes })))
    }

    /// `any`: every value.
    pub fn any() -> Schema {
        Schema::leaf(SchemaKind::Any)
    }
    /// `null`.
    pub fn null() -> Schema {
        Schema::leaf(SchemaKind::Null)
    }
    /// `bool`.
    pub fn bool() -> Schema {
        Schema::leaf(SchemaKind::Bool)
    }
    /// `int`.
    pub fn int() -> Schema {
        Schema::leaf(SchemaKind::Int)
    }
    /// `float`.
    pub fn float() -> Schema {
        Schema::leaf(SchemaKind::Float)
    }
    /// `str`.
    pub fn str() -> Schema {
        Schema::leaf(SchemaKind::Str)
    }
    /// `bytes`.
    pub fn bytes() -> Schema {
        Schema::leaf(SchemaKind::Bytes)
    }
    /// `opaque`: any host object.
    pub fn opaque() -> Schema {
        Schema::leaf(SchemaKind::Opaque(None))
    }
    /// `opaque[name]`: a host object of the class `name` (`module.qualname`,
    /// or a Rust type path) or of a subclass.
    pub fn opaque_of(name: &str) -> Result<Schema> {
        parse::check_class_name(name)?;
        Ok(Schema::leaf(SchemaKind::Opaque(Some(name.to_string()))))
    }
    /// A literal: the one value `literal`.
    pub fn literal(literal: Literal) -> Schema {
        Schema::leaf(SchemaKind::Literal(literal))
    }
    /// `list[item]`.
    pub fn list(item: Schema) -> Result<Schema> {
        let children = [item.clone()];
        Schema::node(SchemaKind::List(item), children.iter())
    }
    /// `map[str, value]`.
    pub fn map(value: Schema) -> Result<Schema> {
        let children = [value.clone()];
        Schema::node(SchemaKind::Map(value), children.iter())
    }

    /// A record of `(name, type, required)` fields, open to other fields
    /// when `open`. A name given twice is an error.
    pub fn record<N: Into<String>>(
        fields: impl IntoIterator<Item = (N, Schema, bool)>,
        open: bool,
    ) -> Result<Schema> {
        let mut map = BTreeMap::new();
        for (name, schema, required) in fields {
            let name = name.into();
            if map.contains_key(&name) {
                return Err(too_big(format!("the record names field {name:?} twice")));
            }
            map.insert(name, Field { schema, required });
        }
        let record = Record { fields: map, open };
        let children: Vec<Schema> = record.fields.values().map(|f| f.schema.clone()).collect();
        Schema::node(SchemaKind::Record(record), children.iter())
    }

    /// The union of `members`: nested unions are flattened, repeats
    /// dropped, members sorted; a union holding `any` is `any`, and a union
    /// of one member is that member. No member is an error.
    pub fn union(members: impl IntoIterator<Item = Schema>) -> Result<Schema> {
        let mut flat = Vec::new();
        for member in members {
            match member.kind() {
                SchemaKind::Union(inner) => flat.extend(inner.iter().cloned()),
                SchemaKind::Any => return Ok(Schema::any()),
                _ => flat.push(member),
            }
            if flat.len() > MAX_NODES {
                return Err(too_big(format!("the type has more than {MAX_NODES} nodes")));
            }
        }
        flat.sort();
        flat.dedup();
        match flat.len() {
            0 => Err(too_big("a union needs at least one member".to_string())),
            1 => Ok(flat.pop().unwrap_or_else(Schema::any)),
            _ => {
                let children = flat.clone();
                Schema::node(SchemaKind::Union(flat), children.iter())
            }
        }
    }

    /// Reads a type expression (`list[str]`, `{title: str, ...}`, `int |
    /// null`); see "Typed interfaces" in `docs/reference/values.md` for the grammar.
    pub fn parse(text: &str) -> Result<Schema> {
        parse::parse(text)
    }

    /// What this type is.
    pub fn kind(&self) -> &SchemaKind {
        &self.0.kind
    }

    /// Whether this is `any`.
    pub fn is_any(&self) -> bool {
        matches!(self.kind(), SchemaKind::Any)
    }

    /// How deep the type nests (a name is 1).
    pub fn depth(&self) -> usize {
        self.0.depth
    }

    /// How many nodes the type holds.
    pub fn node_count(&self) -> usize {
        self.0.nodes
    }
}

impl Default for Schema {
    /// `any`, what an undeclared type is.
    fn default() -> Self {
        Schema::any()
    }
}

impl PartialEq for Schema {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.kind == other.0.kind
    }
}
impl Eq for Schema {}

impl PartialOrd for Schema {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Schema {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.kind.cmp(&other.0.kind)
    }
}

impl Hash for Schema {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.kind.hash(state);
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schema({self})")
    }
}

impl FromStr for Schema {
    type Err = Error;
    fn from_str(text: &str) -> Result<Schema> {
        Schema::parse(text)
    }
}

impl Serialize for Schema {
    /// As its type expression.
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Schema {
    /// From a type expression.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Schema::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_are_flat_sorted_and_without_repeats() -> Result<()> {
        let inner = Schema::union([Schema::str(), Schema::null()])?;
        let u = Schema::union([Schema::null(), inner, Schema::int(), Schema::str()])?;
        let SchemaKind::Union(members) = u.kind() else {
            panic!("{u:?}")
        };
        assert_eq!(members, &[Schema::int(), Schema::str(), Schema::null()]);
        assert_eq!(Schema::union([Schema::int()])?, Schema::int());
        assert_eq!(
            Schema::union([Schema::int(), Schema::any()])?,
            Schema::any()
        );
        assert!(Schema::union([]).is_err());
        Ok(())
    }

    #[test]
    fn building_past_the_bounds_is_an_error() -> Result<()> {
        let mut s = Schema::int();
        for _ in 1..MAX_DEPTH {
            s = Schema::list(s)?;
        }
        assert_eq!(s.depth(), MAX_DEPTH);
        let err = Schema::list(s).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidSchema);
        let wide: Vec<Schema> = (0..MAX_NODES as i64)
            .map(|i| Schema::literal(Literal::Int(i)))
            .collect();
        assert!(Schema::union(wide).is_err());
        let dup = Schema::record(
            [("a", Schema::int(), true), ("a", Schema::str(), true)],
            false,
        );
        assert!(dup.unwrap_err().to_string().contains("twice"));
        Ok(())
    }
}
