//! `Schema` and JSON Schema: written as documented, read from what other
//! tools write, refused by name where the type cannot express it.

use module_registry::{Error, Schema};
use serde_json::json;

use super::t;

const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

#[test]
fn json_schema_is_written_as_documented() {
    let cases = [
        ("any", json!({})),
        ("null", json!({"type": "null"})),
        ("bool", json!({"type": "boolean"})),
        ("int", json!({"type": "integer"})),
        ("float", json!({"type": "number"})),
        ("str", json!({"type": "string"})),
        (
            "bytes",
            json!({"type": "string", "contentEncoding": "base64"}),
        ),
        (
            "list[str]",
            json!({"type": "array", "items": {"type": "string"}}),
        ),
        (
            "map[str, int]",
            json!({"type": "object", "additionalProperties": {"type": "integer"}}),
        ),
        (
            "{title: str, tags?: list[str]}",
            json!({"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}, "title": {"type": "string"}}, "required": ["title"], "additionalProperties": false}),
        ),
        (
            "{a?: int, ...}",
            json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
        ),
        ("\"fast\"", json!({"const": "fast"})),
        (
            "\"fast\" | \"slow\" | 1",
            json!({"enum": [1, "fast", "slow"]}),
        ),
        (
            "int | null",
            json!({"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        ),
        ("opaque", json!({"x-module-registry": "opaque"})),
        ("opaque[a.B]", json!({"x-module-registry": "opaque[a.B]"})),
    ];
    for (text, body) in cases {
        let mut expected = json!({"$schema": DIALECT});
        expected
            .as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        let schema = t(text);
        assert_eq!(schema.to_json_schema(), expected, "{text}");
        assert_eq!(
            Schema::from_json_schema(&expected).unwrap(),
            schema,
            "{text}"
        );
        assert_eq!(Schema::from_json_schema(&body).unwrap(), schema, "{text}");
    }
}

fn from_json(json: serde_json::Value) -> Schema {
    Schema::from_json_schema(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn refused(json: serde_json::Value) -> String {
    match Schema::from_json_schema(&json) {
        Err(Error::InvalidSchema { reason, .. }) => reason,
        other => panic!("{json}: {other:?}"),
    }
}

#[test]
fn json_schema_in_reads_what_others_write() {
    assert_eq!(from_json(json!(true)), t("any"));
    assert_eq!(
        from_json(json!({"type": ["string", "null"]})),
        t("str | null")
    );
    assert_eq!(
        from_json(json!({"type": "string", "enum": ["a", "b"]})),
        t("\"a\" | \"b\"")
    );
    assert_eq!(from_json(json!({"enum": ["a", null]})), t("\"a\" | null"));
    assert_eq!(from_json(json!({"type": "number", "const": 1})), t("1"));
    assert_eq!(
        from_json(json!({"type": "string", "format": "binary"})),
        t("bytes")
    );
    assert_eq!(from_json(json!({"type": "array"})), t("list[any]"));
    assert_eq!(from_json(json!({"type": "object"})), t("map[str, any]"));
    assert_eq!(
        from_json(json!({"type": "object", "additionalProperties": false})),
        t("{}")
    );
    assert_eq!(
        from_json(json!({"type": "object", "properties": {}})),
        t("{...}")
    );
    assert_eq!(from_json(json!({"allOf": [{"type": "integer"}]})), t("int"));
    // Annotations everywhere are accepted and dropped.
    let annotated = json!({
        "$schema": DIALECT, "$id": "urn:x", "title": "Post", "description": "d", "$comment": "c",
        "examples": [{}], "default": {},
        "type": "object", "required": ["title"],
        "properties": {"title": {"type": "string", "title": "Title", "default": "x"}},
    });
    assert_eq!(from_json(annotated), t("{title: str, ...}"));
    // Local references, as pydantic writes nested models.
    let nested = json!({
        "$defs": {"Tag": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"], "title": "Tag"}},
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}}, "main": {"$ref": "#/$defs/Tag", "description": "x"}},
        "required": ["tags"],
    });
    assert_eq!(
        from_json(nested),
        t("{main?: {name: str, ...}, tags: list[{name: str, ...}], ...}")
    );
    let old = json!({"definitions": {"N": {"type": "integer"}}, "$ref": "#/definitions/N"});
    assert_eq!(from_json(old), t("int"));
}

#[test]
fn json_schema_it_cannot_express_is_refused_by_name() {
    let cases = [
        (
            json!({"type": "string", "minLength": 1}),
            "keyword \"minLength\" cannot be expressed",
        ),
        (
            json!({"type": "object", "properties": {"a": {"type": "integer", "minimum": 0}}}),
            "at #/properties/a: keyword \"minimum\"",
        ),
        (json!({"oneOf": [{"type": "string"}]}), "\"oneOf\""),
        (
            json!({"type": "array", "prefixItems": [{"type": "string"}]}),
            "\"prefixItems\"",
        ),
        (json!({"patternProperties": {}}), "\"patternProperties\""),
        (
            json!({"type": "string", "format": "date-time"}),
            "\"format\" \"date-time\"",
        ),
        (
            json!({"type": "string", "contentEncoding": "base32"}),
            "\"contentEncoding\"",
        ),
        (
            json!({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}),
            "\"additionalProperties\" with a schema",
        ),
        (
            json!({"type": "integer", "items": {}}),
            "\"items\" needs \"type\" \"array\"",
        ),
        (
            json!({"type": "object", "properties": {}, "required": ["x"]}),
            "\"required\" names \"x\"",
        ),
        (json!({"type": "thing"}), "unknown \"type\" \"thing\""),
        (json!({"enum": [1.5]}), "float literals"),
        (json!({"enum": [[1]]}), "is not a string"),
        (json!({"type": "string", "enum": [1]}), "not of \"type\""),
        (
            json!({"allOf": [{"type": "string"}, {"type": "null"}]}),
            "\"allOf\" of more than one",
        ),
        (
            json!({"anyOf": [{"type": "string"}], "type": "string"}),
            "beside",
        ),
        (
            json!({"$ref": "http://example.com/s.json"}),
            "only local references",
        ),
        (json!({"$ref": "#/$defs/Nothing"}), "points to nothing"),
        (json!(false), "admits no value"),
        (json!(3), "a schema is an object"),
        (json!({"x-module-registry": "int"}), "is \"opaque\" or"),
        (json!({"x-other": 1}), "\"x-other\""),
        (json!({"nullable": true, "type": "string"}), "\"nullable\""),
    ];
    for (json, expected) in cases {
        let got = refused(json.clone());
        assert!(got.contains(expected), "{json}: {got}");
    }
}

#[test]
fn json_schema_ref_loops_and_blowups_are_refused() {
    let looped = json!({"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"});
    let got = refused(looped);
    assert!(
        got.contains("\"$ref\" loop: #/$defs/A -> #/$defs/B -> #/$defs/A"),
        "{got}"
    );
    let recursive = json!({"$defs": {"Tree": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}}}}, "$ref": "#/$defs/Tree"});
    assert!(refused(recursive).contains("loop"));
    assert!(refused(json!({"$ref": "#"})).contains("loop"));
    // Each definition uses the one before twice: 2^n nodes if expanded.
    let doubling = |n: usize| {
        let mut defs = serde_json::Map::new();
        defs.insert("d0".into(), json!({"type": "integer"}));
        for i in 1..n {
            let prev = format!("#/$defs/d{}", i - 1);
            defs.insert(
                format!("d{i}"),
                json!({"type": "object", "properties": {"a": {"$ref": prev}, "b": {"$ref": prev}}}),
            );
        }
        json!({"$defs": defs, "$ref": format!("#/$defs/d{}", n - 1)})
    };
    assert_eq!(from_json(doubling(8)).node_count(), 2usize.pow(8) - 1);
    assert!(refused(doubling(20)).contains("more than 10000 nodes"));
    assert!(refused(doubling(1000)).contains("deeper than 64"));
    let mut deep = json!({"type": "integer"});
    for _ in 0..1000 {
        deep = json!({"type": "array", "items": deep});
    }
    assert!(refused(deep).contains("deeper than 64"));
    let wide = json!({"enum": (0..1_000_000).collect::<Vec<i64>>()});
    assert!(refused(wide).contains("more than 10000"));
}
