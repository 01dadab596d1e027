//! The parts of reading a JSON Schema: references, combinators, literals,
//! typed schemas and objects.

use serde_json::{Map, Value as Json};

use super::{Reader, EXTENSION};
use crate::error::Result;
use crate::schema::{Literal, Schema, SchemaKind, MAX_NODES};

/// What `type` names, in JSON Schema's words.
const TYPE_NAMES: [&str; 7] = [
    "null", "boolean", "integer", "number", "string", "array", "object",
];

impl<'a> Reader<'a> {
    pub(super) fn reference(&self, target: &Json, at: &str, depth: usize) -> Result<Schema> {
        let Some(target) = target.as_str() else {
            return Err(self.fail(at, "\"$ref\" is a string"));
        };
        let Some(pointer) = target.strip_prefix('#') else {
            return Err(self.fail(
                at,
                format!("only local references (#/...) are read, not {target:?}"),
            ));
        };
        if self.refs.iter().any(|r| r == target) {
            let mut chain = self.refs.clone();
            chain.push(target.to_string());
            return Err(self.fail(at, format!("\"$ref\" loop: {}", chain.join(" -> "))));
        }
        let Some(found) = self.root.pointer(pointer) else {
            return Err(self.fail(at, format!("\"$ref\" {target:?} points to nothing")));
        };
        let mut inner = Reader {
            root: self.root,
            refs: self.refs.clone(),
        };
        inner.refs.push(target.to_string());
        inner.read(found, target, depth + 1)
    }

    pub(super) fn opaque(&self, text: &Json, at: &str) -> Result<Schema> {
        let schema = text
            .as_str()
            .map(Schema::parse)
            .transpose()
            .map_err(|e| self.fail(at, format!("{EXTENSION:?}: {e}")))?;
        match schema {
            Some(s) if matches!(s.kind(), SchemaKind::Opaque(_)) => Ok(s),
            _ => Err(self.fail(
                at,
                format!("{EXTENSION:?} is \"opaque\" or \"opaque[class]\""),
            )),
        }
    }

    fn list_of(&self, json: &'a Json, at: &str) -> Result<&'a Vec<Json>> {
        match json.as_array() {
            Some(items) if items.len() > MAX_NODES => {
                Err(self.fail(at, format!("more than {MAX_NODES} entries")))
            }
            Some(items) if !items.is_empty() => Ok(items),
            _ => Err(self.fail(at, "expected a non-empty array")),
        }
    }

    pub(super) fn combine(
        &self,
        key: &str,
        json: &'a Json,
        at: &str,
        depth: usize,
    ) -> Result<Schema> {
        let members = self.list_of(json, at)?;
        if key == "allOf" && members.len() != 1 {
            return Err(self.fail(at, "\"allOf\" of more than one schema cannot be expressed"));
        }
        let mut read = Vec::with_capacity(members.len());
        for (i, member) in members.iter().enumerate() {
            read.push(self.read(member, &format!("{at}/{i}"), depth)?);
        }
        Schema::union(read).map_err(|e| self.fail(at, e.to_string()))
    }

    /// The names `type` gives, checked; `None` when absent.
    pub(super) fn types(
        &self,
        object: &Map<String, Json>,
        at: &str,
    ) -> Result<Option<Vec<&'static str>>> {
        let Some(json) = object.get("type") else {
            return Ok(None);
        };
        let names: Vec<&str> = match json {
            Json::String(name) => vec![name.as_str()],
            Json::Array(names) if !names.is_empty() => names
                .iter()
                .map(|n| {
                    n.as_str()
                        .ok_or_else(|| self.fail(at, "\"type\" names are strings"))
                })
                .collect::<Result<_>>()?,
            _ => return Err(self.fail(at, "\"type\" is a string or a non-empty array")),
        };
        for name in &names {
            if !TYPE_NAMES.contains(name) {
                return Err(self.fail(at, format!("unknown \"type\" {name:?}")));
            }
        }
        Ok(Some(names.into_iter().map(type_name).collect()))
    }

    pub(super) fn literals(
        &self,
        object: &Map<String, Json>,
        types: Option<&[&str]>,
        at: &str,
    ) -> Result<Schema> {
        let values: Vec<&Json> = match (object.get("const"), object.get("enum")) {
            (Some(_), Some(_)) => {
                return Err(self.fail(at, "\"const\" beside \"enum\" cannot be expressed"))
            }
            (Some(one), None) => vec![one],
            (None, Some(many)) => self.list_of(many, &format!("{at}/enum"))?.iter().collect(),
            (None, None) => Vec::new(),
        };
        for key in object.keys() {
            if !matches!(key.as_str(), "const" | "enum" | "type")
                && super::KNOWN.contains(&key.as_str())
            {
                return Err(self.fail(at, format!("{key:?} beside literals cannot be expressed")));
            }
        }
        let mut members = Vec::with_capacity(values.len());
        for value in values {
            let (schema, kind) = match value {
                Json::Null => (Schema::null(), "null"),
                Json::Bool(b) => (Schema::literal(Literal::Bool(*b)), "boolean"),
                Json::String(s) => (Schema::literal(Literal::Str(s.clone())), "string"),
                Json::Number(n) => match n.as_i64() {
                    Some(i) => (Schema::literal(Literal::Int(i)), "integer"),
                    None => return Err(self.fail(at, format!("the literal {n} is not an integer (float literals cannot be expressed)"))),
                },
                other => return Err(self.fail(at, format!("the literal {other} is not a string, an integer, a boolean or null"))),
            };
            if let Some(types) = types {
                let fits =
                    types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
                if !fits {
                    return Err(self.fail(
                        at,
                        format!("the literal {value} is not of \"type\" {types:?}"),
                    ));
                }
            }
            members.push(schema);
        }
        Schema::union(members).map_err(|e| self.fail(at, e.to_string()))
    }

    pub(super) fn typed(
        &self,
        object: &'a Map<String, Json>,
        types: &[&str],
        at: &str,
        depth: usize,
    ) -> Result<Schema> {
        let owner = |key: &str| match key {
            "items" => Some("array"),
            "properties" | "required" | "additionalProperties" => Some("object"),
            "contentEncoding" | "format" => Some("string"),
            _ => None,
        };
        for key in object.keys() {
            if let Some(needs) = owner(key) {
                if !types.contains(&needs) {
                    return Err(self.fail(at, format!("{key:?} needs \"type\" {needs:?}")));
                }
            }
        }
        let mut members = Vec::with_capacity(types.len());
        for name in types {
            members.push(match *name {
                "null" => Schema::null(),
                "boolean" => Schema::bool(),
                "integer" => Schema::int(),
                "number" => Schema::float(),
                "string" => self.string(object, at)?,
                "array" => {
                    let item = match object.get("items") {
                        Some(items) => self.read(items, &format!("{at}/items"), depth + 1)?,
                        None => Schema::any(),
                    };
                    Schema::list(item).map_err(|e| self.fail(at, e.to_string()))?
                }
                _ => self.object(object, at, depth)?,
            });
        }
        Schema::union(members).map_err(|e| self.fail(at, e.to_string()))
    }

    fn string(&self, object: &Map<String, Json>, at: &str) -> Result<Schema> {
        let encoding = object.get("contentEncoding");
        let format = object.get("format");
        match (
            encoding.and_then(Json::as_str),
            format.and_then(Json::as_str),
        ) {
            (Some("base64"), None) | (None, Some("binary")) => Ok(Schema::bytes()),
            (None, None) if encoding.is_none() && format.is_none() => Ok(Schema::str()),
            _ if format.is_some() => Err(self.fail(
                at,
                format!(
                    "\"format\" {} cannot be expressed (only \"binary\", as bytes)",
                    format.unwrap_or(&Json::Null)
                ),
            )),
            _ => Err(self.fail(
                at,
                "\"contentEncoding\" other than \"base64\" cannot be expressed",
            )),
        }
    }

    fn object(&self, object: &'a Map<String, Json>, at: &str, depth: usize) -> Result<Schema> {
        let additional = object.get("additionalProperties");
        let Some(properties) = object.get("properties") else {
            if object.contains_key("required") {
                return Err(self.fail(
                    at,
                    "\"required\" without \"properties\" cannot be expressed",
                ));
            }
            let value = match additional {
                None | Some(Json::Bool(true)) => Schema::any(),
                Some(Json::Bool(false)) => {
                    return Schema::record(Vec::<(String, Schema, bool)>::new(), false)
                        .map_err(|e| self.fail(at, e.to_string()))
                }
                Some(schema) => {
                    self.read(schema, &format!("{at}/additionalProperties"), depth + 1)?
                }
            };
            return Schema::map(value).map_err(|e| self.fail(at, e.to_string()));
        };
        let open = match additional {
            None | Some(Json::Bool(true)) => true,
            Some(Json::Bool(false)) => false,
            Some(_) => return Err(self.fail(
                at,
                "\"additionalProperties\" with a schema beside \"properties\" cannot be expressed",
            )),
        };
        let Some(properties) = properties.as_object() else {
            return Err(self.fail(at, "\"properties\" is an object"));
        };
        if properties.len() > MAX_NODES {
            return Err(self.fail(at, format!("more than {MAX_NODES} properties")));
        }
        let required = self.required(object, properties, at)?;
        let mut fields = Vec::with_capacity(properties.len());
        for (name, schema) in properties {
            let pointer = format!(
                "{at}/properties/{}",
                name.replace('~', "~0").replace('/', "~1")
            );
            let field = self.read(schema, &pointer, depth + 1)?;
            fields.push((name.clone(), field, required.contains(&name.as_str())));
        }
        Schema::record(fields, open).map_err(|e| self.fail(at, e.to_string()))
    }

    fn required(
        &self,
        object: &'a Map<String, Json>,
        properties: &Map<String, Json>,
        at: &str,
    ) -> Result<Vec<&'a str>> {
        let Some(json) = object.get("required") else {
            return Ok(Vec::new());
        };
        let names = json
            .as_array()
            .ok_or_else(|| self.fail(at, "\"required\" is an array"))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match name.as_str() {
                Some(n) if properties.contains_key(n) => out.push(n),
                Some(n) => {
                    return Err(self.fail(
                        at,
                        format!("\"required\" names {n:?}, which \"properties\" does not define"),
                    ))
                }
                None => return Err(self.fail(at, "\"required\" names are strings")),
            }
        }
        Ok(out)
    }
}

/// `name` as the `'static` entry of [`TYPE_NAMES`] it equals.
fn type_name(name: &str) -> &'static str {
    TYPE_NAMES
        .iter()
        .find(|t| **t == name)
        .copied()
        .unwrap_or("object")
}
