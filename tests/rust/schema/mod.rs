//! `Schema`: the compact type expression (parse, canonical print), JSON
//! Schema out and in, assignability and validation, and the bounds.

use module_registry::schema::{Literal, SchemaKind, MAX_DEPTH, MAX_NODES};
use module_registry::{Error, ErrorKind, Schema, Value};
use proptest::prelude::*;

mod declarations;
mod json;

fn t(text: &str) -> Schema {
    Schema::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn reason(text: &str) -> String {
    match Schema::parse(text) {
        Err(Error::InvalidSchema { reason, .. }) => reason,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn every_form_parses_and_prints_canonically() {
    for (text, canonical) in [
        ("any", "any"),
        ("null", "null"),
        ("bool", "bool"),
        ("int", "int"),
        ("float", "float"),
        ("str", "str"),
        ("bytes", "bytes"),
        ("list[str]", "list[str]"),
        ("list[ list[ int ] ]", "list[list[int]]"),
        ("map[str,float]", "map[str, float]"),
        ("null | int", "int | null"),
        ("str | int | str", "int | str"),
        (
            "{title: str, tags?: list[str]}",
            "{tags?: list[str], title: str}",
        ),
        ("{b: int, a: int, ...}", "{a: int, b: int, ...}"),
        ("{...}", "{...}"),
        ("{}", "{}"),
        ("{a: int,}", "{a: int}"),
        (
            "{\"my key\": int, \"ok\": str}",
            "{\"my key\": int, ok: str}",
        ),
        ("\"slow\" | \"fast\"", "\"fast\" | \"slow\""),
        ("2 | 1 | -3", "-3 | 1 | 2"),
        ("true | false", "false | true"),
        ("\"a\\\"b\"", "\"a\\\"b\""),
        ("opaque", "opaque"),
        (
            "opaque[ pandas.core.frame.DataFrame ]",
            "opaque[pandas.core.frame.DataFrame]",
        ),
        ("opaque[my_crate::Frame]", "opaque[my_crate::Frame]"),
        ("int | any", "any"),
        ("list[int | null] | null", "list[int | null] | null"),
        ("{a: {b: map[str, bytes]}}", "{a: {b: map[str, bytes]}}"),
        ("\n int\t|\n str ", "int | str"),
    ] {
        let schema = t(text);
        assert_eq!(schema.to_string(), canonical, "{text}");
        assert_eq!(t(canonical), schema, "{text}");
        assert_eq!(canonical.parse::<Schema>().ok(), Some(schema));
    }
}

#[test]
fn equal_types_print_the_same_text() {
    assert_eq!(
        t("{a: int | str, b?: null}"),
        t("{ b?: null, a: str | int }")
    );
    assert_ne!(t("{a: int}"), t("{a: int, ...}"));
    assert_ne!(t("{a: int}"), t("{a?: int}"));
    assert_ne!(t("1"), t("int"));
    assert_ne!(t("\"1\""), t("1"));
}

#[test]
fn bad_expressions_are_typed_errors_that_say_what_and_where() {
    let cases = [
        ("", "expected a type, found the end at column 1"),
        ("lst[str]", "unknown type \"lst\" at column 1"),
        ("string", "did you mean str?"),
        (
            "list[str",
            "expected ']' to close list[, found the end at column 9",
        ),
        ("list str", "expected '[' after list"),
        ("map[int, str]", "map keys are str"),
        ("int |", "expected a type, found the end"),
        ("int str", "unexpected 's' at column 5"),
        ("{a int}", "expected ':' after a field name"),
        ("{a: int, a: str}", "names field \"a\" twice"),
        ("{..., a: int}", "after `...`"),
        ("1.5", "no floats"),
        ("99999999999999999999", "invalid integer"),
        ("\"open", "unterminated string"),
        ("opaque[a b]", "a class name is"),
        ("opaque[", "expected ']' to close opaque["),
        ("{3: int}", "expected a field name"),
    ];
    for (text, expected) in cases {
        let got = reason(text);
        assert!(got.contains(expected), "{text:?}: {got}");
        let err = Schema::parse(text).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSchema);
        assert_eq!(err.code(), "invalid_schema");
    }
    let err = Schema::parse("lst[str]").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type \"lst[str]\": unknown type \"lst\" at column 1"
    );
}

#[test]
fn nesting_and_size_are_bounded() {
    let nest = |n: usize| format!("{}int{}", "list[".repeat(n - 1), "]".repeat(n - 1));
    assert_eq!(t(&nest(MAX_DEPTH)).depth(), MAX_DEPTH);
    assert!(reason(&nest(MAX_DEPTH + 1)).contains("deeper than 64"));
    // 10,000 deep: refused at 64, never a stack overflow.
    assert!(reason(&nest(10_000)).contains("deeper than 64"));
    let records = format!("{}int{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    assert!(reason(&records).contains("deeper than 64"));
    // A million union members: refused once past 10,000 nodes.
    let wide = vec!["1"; 1_000_000].join(" | ");
    assert!(reason(&wide).contains("more than 10000 nodes"));
    let wide_ok: Vec<String> = (0..(MAX_NODES as i64 - 1)).map(|i| i.to_string()).collect();
    assert_eq!(t(&wide_ok.join("|")).node_count(), MAX_NODES);
    let fields: Vec<String> = (0..MAX_NODES).map(|i| format!("f{i}: int")).collect();
    assert!(reason(&format!("{{{}}}", fields.join(", "))).contains("nodes"));
}

#[test]
fn built_schemas_match_parsed_ones() -> module_registry::Result<()> {
    let built = Schema::record(
        [
            ("title", Schema::str(), true),
            ("tags", Schema::list(Schema::str())?, false),
        ],
        true,
    )?;
    assert_eq!(built, t("{title: str, tags?: list[str], ...}"));
    assert_eq!(Schema::default(), Schema::any());
    let u = Schema::union([Schema::literal(Literal::Str("x".into())), Schema::null()])?;
    assert!(matches!(u.kind(), SchemaKind::Union(m) if m.len() == 2));
    assert!(Schema::opaque_of("bad name").is_err());
    assert_eq!(
        serde_json::to_string(&built)?,
        "\"{tags?: list[str], title: str, ...}\""
    );
    let back: Schema = serde_json::from_str("\"int | null\"")?;
    assert_eq!(back, t("int | null"));
    assert!(serde_json::from_str::<Schema>("\"nope\"").is_err());
    Ok(())
}

#[test]
fn assignability_follows_the_documented_rules() {
    let yes = [
        ("str", "str"),
        ("any", "int"),
        ("int", "any"),
        ("int", "float"),
        ("\"fast\"", "str"),
        ("\"fast\" | \"slow\"", "str"),
        ("1 | 2", "int"),
        ("1", "float"),
        ("true", "bool"),
        ("\"fast\"", "\"fast\" | \"slow\""),
        ("int", "int | null"),
        ("int | null", "float | null"),
        ("null", "str | null"),
        ("list[int]", "list[float]"),
        ("map[str, int]", "map[str, int | str]"),
        ("{a: int, b: str}", "{a: float, ...}"),
        ("{a: int}", "{a: int, b?: str}"),
        ("{a: int, b: str}", "{a: int, b?: str}"),
        ("{a: int, ...}", "{a: int, b?: any, ...}"),
        ("{a: int, ...}", "{...}"),
        ("opaque[x.Y]", "opaque[x.Y]"),
        ("opaque[x.Y]", "opaque"),
        ("{}", "{}"),
    ];
    for (from, to) in yes {
        assert!(t(from).is_assignable_to(&t(to)), "{from} -> {to}");
    }
    let no = [
        ("float", "int"),
        ("bool", "int"),
        ("int", "bool"),
        ("str", "\"fast\""),
        ("\"slow\"", "\"fast\""),
        ("int", "str"),
        ("int | str", "int"),
        ("int | null", "int"),
        ("str", "bytes"),
        ("bytes", "str"),
        ("list[float]", "list[int]"),
        ("list[int]", "map[str, int]"),
        ("{a: int, b: str}", "{a: int}"),
        ("{a: int, ...}", "{a: int}"),
        ("{a?: int}", "{a: int}"),
        ("{b: int}", "{a: int}"),
        ("{a: str}", "{a: int, ...}"),
        ("{a: int, ...}", "{a: int, b?: str, ...}"),
        ("{a: int}", "map[str, int]"),
        ("map[str, int]", "{...}"),
        ("opaque", "opaque[x.Y]"),
        ("opaque[x.Y]", "opaque[x.Z]"),
        ("null", "int"),
        ("1", "2"),
        ("1", "str"),
        ("\"1\"", "int"),
    ];
    for (from, to) in no {
        assert!(!t(from).is_assignable_to(&t(to)), "{from} -/-> {to}");
    }
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())))
}

#[test]
fn values_are_accepted_by_their_types() {
    let cases: Vec<(&str, Value, bool)> = vec![
        ("any", Value::Null, true),
        ("null", Value::Null, true),
        ("null", Value::Int(0), false),
        ("bool", Value::Bool(true), true),
        ("int", Value::Bool(true), false),
        ("int", Value::Int(3), true),
        ("int", Value::Float(3.0), false),
        ("float", Value::Int(3), true),
        ("float", Value::Float(0.5), true),
        ("str", Value::from("x"), true),
        ("str", Value::Bytes(vec![1]), false),
        ("bytes", Value::Bytes(vec![1]), true),
        ("bytes", Value::from("x"), false),
        ("list[int]", Value::from(vec![1i64, 2]), true),
        ("list[int]", Value::from(vec!["a"]), false),
        ("list[any]", Value::List(vec![]), true),
        ("map[str, int]", map(&[("a", Value::Int(1))]), true),
        ("map[str, int]", map(&[("a", Value::from("x"))]), false),
        ("{a: int}", map(&[("a", Value::Int(1))]), true),
        ("{a: int}", map(&[]), false),
        ("{a?: int}", map(&[]), true),
        (
            "{a: int}",
            map(&[("a", Value::Int(1)), ("b", Value::Null)]),
            false,
        ),
        (
            "{a: int, ...}",
            map(&[("a", Value::Int(1)), ("b", Value::Null)]),
            true,
        ),
        ("\"fast\" | \"slow\"", Value::from("slow"), true),
        ("\"fast\" | \"slow\"", Value::from("medium"), false),
        ("1 | 2", Value::Int(2), true),
        ("1 | 2", Value::Float(2.0), false),
        ("true", Value::Bool(false), false),
        ("int | null", Value::Null, true),
        ("int | null", Value::from("x"), false),
        (
            "opaque",
            Value::Opaque(module_registry::Opaque::new(5u8)),
            true,
        ),
        (
            "opaque[u8]",
            Value::Opaque(module_registry::Opaque::new(5u8)),
            true,
        ),
        (
            "opaque[u16]",
            Value::Opaque(module_registry::Opaque::new(5u8)),
            false,
        ),
        ("opaque", Value::Int(5), false),
    ];
    for (schema, value, fits) in cases {
        let s = t(schema);
        assert_eq!(s.accepts(&value), fits, "{schema} {value}");
        assert_eq!(s.validate(&value).is_ok(), fits, "{schema} {value}");
    }
}

fn mismatch(schema: &str, value: &Value) -> (String, String, String) {
    match t(schema).validate(value) {
        Err(Error::SchemaMismatch {
            path,
            expected,
            found,
            ..
        }) => (path, expected, found),
        other => panic!("{schema} {value}: {other:?}"),
    }
}

#[test]
fn a_mismatch_names_the_path_the_expected_type_and_what_was_found() {
    let post = map(&[
        ("title", Value::from("hi")),
        (
            "tags",
            Value::List(vec![Value::from("a"), Value::from("b"), Value::Int(3)]),
        ),
    ]);
    let schema = "{title: str, tags?: list[str]}";
    assert_eq!(
        mismatch(schema, &post),
        ("$.tags[2]".into(), "str".into(), "int".into())
    );
    let err = t(schema).validate(&post).unwrap_err();
    assert_eq!(
        err.to_string(),
        "value at $.tags[2] does not fit: expected str, found int"
    );
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
    assert_eq!(
        mismatch(schema, &map(&[])),
        ("$.title".into(), "str".into(), "nothing".into())
    );
    let extra = map(&[("title", Value::from("x")), ("my key", Value::Int(1))]);
    let (path, expected, found) = mismatch(schema, &extra);
    assert_eq!((path.as_str(), found.as_str()), ("$[\"my key\"]", "int"));
    assert!(expected.contains("closed"), "{expected}");
    assert_eq!(
        mismatch(schema, &Value::from("x")),
        ("$".into(), schema_text(schema), "str".into())
    );
    let speed = mismatch(
        "{speed: \"fast\" | \"slow\"}",
        &map(&[("speed", Value::from("medium"))]),
    );
    assert_eq!(
        speed,
        (
            "$.speed".into(),
            "\"fast\" | \"slow\"".into(),
            "\"medium\"".into()
        )
    );
    let nested = mismatch(
        "map[str, list[int | null]]",
        &map(&[("k", Value::List(vec![Value::Null, Value::Bool(true)]))]),
    );
    assert_eq!(
        nested,
        ("$.k[1]".into(), "int | null".into(), "bool".into())
    );
    let opaque = mismatch("int", &Value::Opaque(module_registry::Opaque::new(1u8)));
    assert_eq!(opaque.2, "opaque[u8]");
}

fn schema_text(text: &str) -> String {
    t(text).to_string()
}

#[test]
fn a_deep_value_under_any_is_not_walked() {
    let mut deep = Value::Null;
    for _ in 0..100_000 {
        deep = Value::List(vec![deep]);
    }
    assert!(t("list[any]").accepts(&deep));
    assert!(t("list[list[any]]").validate(&deep).is_ok());
    assert!(!t("list[list[int]]").accepts(&deep));
    // Dropping a 100,000-deep value recurses; unwind it by hand.
    while let Value::List(mut items) = deep {
        deep = items.pop().unwrap_or(Value::Null);
    }
}

/// Any schema, up to a few levels deep.
fn arb_schema() -> impl Strategy<Value = Schema> {
    let leaf = prop_oneof![
        Just(Schema::any()),
        Just(Schema::null()),
        Just(Schema::bool()),
        Just(Schema::int()),
        Just(Schema::float()),
        Just(Schema::str()),
        Just(Schema::bytes()),
        Just(Schema::opaque()),
        "[a-z][a-z0-9_.]{0,8}".prop_map(|n| Schema::opaque_of(&n).unwrap()),
        any::<i64>().prop_map(|i| Schema::literal(Literal::Int(i))),
        any::<bool>().prop_map(|b| Schema::literal(Literal::Bool(b))),
        "\\PC{0,6}".prop_map(|s| Schema::literal(Literal::Str(s))),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Schema::list(s).unwrap()),
            inner.clone().prop_map(|s| Schema::map(s).unwrap()),
            prop::collection::vec(inner.clone(), 1..5).prop_map(|m| Schema::union(m).unwrap()),
            (
                prop::collection::btree_map("\\PC{0,5}", (inner, any::<bool>()), 0..5),
                any::<bool>()
            )
                .prop_map(|(fields, open)| {
                    let fields = fields.into_iter().map(|(n, (s, r))| (n, s, r));
                    Schema::record(fields, open).unwrap()
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn printing_and_json_schema_round_trip(schema in arb_schema()) {
        let text = schema.to_string();
        let parsed = Schema::parse(&text).unwrap();
        prop_assert_eq!(&parsed, &schema, "{}", text);
        prop_assert_eq!(parsed.to_string(), text);
        let json = schema.to_json_schema();
        let back = Schema::from_json_schema(&json).unwrap();
        prop_assert_eq!(&back, &schema, "{}", json);
        // Through JSON text too (what files and other tools carry).
        let reread: serde_json::Value = serde_json::from_str(&json.to_string()).unwrap();
        prop_assert_eq!(Schema::from_json_schema(&reread).unwrap(), schema);
    }

    #[test]
    fn assignability_is_reflexive_and_any_is_top(schema in arb_schema()) {
        prop_assert!(schema.is_assignable_to(&schema));
        prop_assert!(schema.is_assignable_to(&Schema::any()));
        prop_assert!(Schema::any().is_assignable_to(&schema));
        let with_null = Schema::union([schema.clone(), Schema::null()]).unwrap();
        prop_assert!(schema.is_assignable_to(&with_null));
    }
}
