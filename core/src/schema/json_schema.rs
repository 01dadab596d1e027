//! JSON Schema (draft 2020-12), written and read, for interop with
//! pydantic, OpenAPI and editors.
//!
//! Written: `any` is `{}`, `bytes` is `{"type": "string", "contentEncoding":
//! "base64"}`, a closed record has `"additionalProperties": false`, literals
//! are `const` (a union of literals an `enum`), unions `anyOf`, and opaque
//! types the extension `{"x-module-registry": "opaque[...]"}`.
//!
//! Read: the same, plus `type` arrays, `enum`, `allOf` of one member,
//! `format: "binary"` strings (bytes, as OpenAPI writes them), an
//! `additionalProperties` schema without `properties` (a map) and local
//! `$ref`s (`#/$defs/...`, `#/definitions/...`). Annotations (`title`,
//! `description`, `default`, `examples`, `$comment`, `$schema`, `$id`) are
//! accepted and dropped; any other keyword is refused by name, as are
//! `$ref` loops: nothing is approximated.

use serde_json::{json, Map, Value as Json};

use super::{Literal, Schema, SchemaKind, MAX_DEPTH};
use crate::error::{Error, Result};

/// The dialect written at the root of every schema.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Keywords read and dropped: they describe, they do not constrain.
const ANNOTATIONS: [&str; 7] = [
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$schema",
    "$id",
];

/// The extension keyword an opaque type is written with.
const EXTENSION: &str = "x-module-registry";

impl Schema {
    /// This type as a JSON Schema (draft 2020-12), with `$schema` at its root.
    ///
    /// ```
    /// use module_registry::Schema;
    /// use serde_json::json;
    ///
    /// let tags = Schema::parse("list[str]")?;
    /// assert_eq!(
    ///     tags.to_json_schema(),
    ///     json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
    ///            "type": "array", "items": {"type": "string"}})
    /// );
    /// assert_eq!(Schema::from_json_schema(&tags.to_json_schema())?, tags);
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn to_json_schema(&self) -> Json {
        let mut out = write(self);
        if let Json::Object(map) = &mut out {
            let mut root = Map::new();
            root.insert("$schema".into(), Json::from(DIALECT));
            root.extend(std::mem::take(map));
            return Json::Object(root);
        }
        out
    }

    /// Reads a JSON Schema; a keyword the type cannot express is an
    /// [`Error::InvalidSchema`] naming it and where it is.
    pub fn from_json_schema(schema: &Json) -> Result<Schema> {
        let reader = Reader {
            root: schema,
            refs: Vec::new(),
        };
        reader.read(schema, "#", 0)
    }
}

fn write(schema: &Schema) -> Json {
    match schema.kind() {
        SchemaKind::Any => json!({}),
        SchemaKind::Null => json!({"type": "null"}),
        SchemaKind::Bool => json!({"type": "boolean"}),
        SchemaKind::Int => json!({"type": "integer"}),
        SchemaKind::Float => json!({"type": "number"}),
        SchemaKind::Str => json!({"type": "string"}),
        SchemaKind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
        SchemaKind::List(item) => json!({"type": "array", "items": write(item)}),
        SchemaKind::Map(value) => json!({"type": "object", "additionalProperties": write(value)}),
        SchemaKind::Record(record) => {
            let properties: Map<String, Json> = record
                .fields
                .iter()
                .map(|(name, field)| (name.clone(), write(&field.schema)))
                .collect();
            let required: Vec<&String> = record
                .fields
                .iter()
                .filter(|(_, f)| f.required)
                .map(|(name, _)| name)
                .collect();
            let mut out = json!({"type": "object", "properties": properties});
            if !required.is_empty() {
                out["required"] = json!(required);
            }
            if !record.open {
                out["additionalProperties"] = json!(false);
            }
            out
        }
        SchemaKind::Literal(literal) => json!({"const": literal_json(literal)}),
        SchemaKind::Opaque(_) => json!({ EXTENSION: schema.to_string() }),
        SchemaKind::Union(members) => {
            let literals: Option<Vec<Json>> = members
                .iter()
                .map(|m| match m.kind() {
                    SchemaKind::Literal(l) => Some(literal_json(l)),
                    _ => None,
                })
                .collect();
            match literals {
                Some(values) => json!({"enum": values}),
                None => json!({"anyOf": members.iter().map(write).collect::<Vec<_>>()}),
            }
        }
    }
}

fn literal_json(literal: &Literal) -> Json {
    match literal {
        Literal::Bool(b) => Json::from(*b),
        Literal::Int(i) => Json::from(*i),
        Literal::Str(s) => Json::from(s.as_str()),
    }
}

fn refused(root: &Json, at: &str, reason: String) -> Error {
    Error::InvalidSchema {
        schema: super::parse::excerpt(&root.to_string()),
        reason: format!("JSON Schema at {at}: {reason}"),
    }
}

struct Reader<'a> {
    root: &'a Json,
    /// The `$ref`s being read, outermost first (a loop is one seen twice).
    refs: Vec<String>,
}

impl<'a> Reader<'a> {
    fn fail(&self, at: &str, reason: impl Into<String>) -> Error {
        refused(self.root, at, reason.into())
    }

    fn read(&self, json: &'a Json, at: &str, depth: usize) -> Result<Schema> {
        if depth > MAX_DEPTH {
            return Err(self.fail(at, format!("the type nests deeper than {MAX_DEPTH} levels")));
        }
        let object = match json {
            Json::Bool(true) => return Ok(Schema::any()),
            Json::Bool(false) => return Err(self.fail(at, "the schema `false` admits no value")),
            Json::Object(object) => object,
            other => return Err(self.fail(at, format!("a schema is an object, not {other}"))),
        };
        let keys: Vec<&str> = object
            .keys()
            .map(String::as_str)
            .filter(|k| !ANNOTATIONS.contains(k) && !matches!(*k, "$defs" | "definitions"))
            .collect();
        for key in &keys {
            if !KNOWN.contains(key) {
                return Err(self.fail(at, format!("keyword {key:?} cannot be expressed as a type")));
            }
        }
        let alone = |key: &str| -> Result<()> {
            match keys.iter().find(|k| **k != key) {
                Some(other) => {
                    Err(self.fail(at, format!("{key:?} beside {other:?} cannot be expressed")))
                }
                None => Ok(()),
            }
        };
        if let Some(target) = object.get("$ref") {
            alone("$ref")?;
            return self.reference(target, at, depth);
        }
        if let Some(text) = object.get(EXTENSION) {
            alone(EXTENSION)?;
            return self.opaque(text, at);
        }
        for combinator in ["anyOf", "allOf"] {
            if let Some(members) = object.get(combinator) {
                alone(combinator)?;
                return self.combine(combinator, members, &format!("{at}/{combinator}"), depth);
            }
        }
        let types = self.types(object, at)?;
        if object.contains_key("enum") || object.contains_key("const") {
            return self.literals(object, types.as_deref(), at);
        }
        match types {
            None => {
                if let Some(key) = keys.first() {
                    return Err(self.fail(at, format!("{key:?} needs a \"type\"")));
                }
                Ok(Schema::any())
            }
            Some(types) => self.typed(object, &types, at, depth),
        }
    }
}

/// The keywords read (beside the annotations).
const KNOWN: [&str; 13] = [
    "type",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "const",
    "anyOf",
    "allOf",
    "$ref",
    "contentEncoding",
    "format",
    EXTENSION,
];

mod read;
