//! Values as an embedder uses them: conversions, typed configs, re-exports.

use std::collections::HashMap;

use module_registry::{
    from_value, to_value, Module, ModuleConfig, ModuleContext, ModuleRegistry, Value,
};
use parking_lot::Mutex;

#[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
struct GreeterConfig {
    greeting: String,
    #[serde(default)]
    shout: bool,
}

#[derive(Default)]
struct Greeter(Mutex<Option<GreeterConfig>>);

impl Module for Greeter {
    fn init(&self, context: &ModuleContext) -> std::result::Result<(), module_registry::BoxError> {
        // A module reads its config into a typed struct.
        *self.0.lock() = Some(from_value(context.config().clone())?);
        Ok(())
    }

    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        let name = String::try_from(input)?;
        let config = self.0.lock();
        let config = config.as_ref().expect("initialised");
        let text = format!("{}, {name}", config.greeting);
        Ok(Value::from(if config.shout {
            text.to_uppercase()
        } else {
            text
        }))
    }
}

#[test]
fn a_module_reads_its_config_into_a_struct() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("greeter")
                .with_factory(|_| Ok(Box::new(Greeter::default()) as Box<dyn Module>)),
        )
        .unwrap();
    let config = to_value(&GreeterConfig {
        greeting: "hello".into(),
        shout: true,
    })
    .unwrap();
    let greeter = registry
        .create_with(module_registry::ModuleKind::Module, "greeter", None, config)
        .unwrap();
    assert_eq!(greeter.process("ada").unwrap(), Value::from("HELLO, ADA"));
    // A wrong input kind is a typed error naming what was expected.
    let err = greeter.process(3i64).unwrap_err();
    assert!(
        err.report().contains("expected a string, found int"),
        "{err}"
    );
    // A config missing a field fails in init, naming the field.
    let bad = registry.create_with(
        module_registry::ModuleKind::Module,
        "greeter",
        None,
        Value::from(HashMap::from([("shout".to_string(), true)])),
    );
    assert!(bad.unwrap_err().report().contains("greeting"));
}

#[test]
fn values_display_and_the_api_types_are_reexported() {
    let v = Value::from(vec!["a", "b"]);
    assert_eq!(v.to_string(), r#"["a", "b"]"#);
    let version: module_registry::semver::Version = "1.2.3".parse().unwrap();
    assert_eq!(version.major, 1);
    let mut map = module_registry::ValueMap::new();
    map.insert("k".into(), Value::from(1u8));
    let _: &module_registry::indexmap::IndexMap<String, Value> = &map;
    assert_eq!(Value::Map(map).to_string(), r#"{"k": 1}"#);
    #[cfg(feature = "scripts")]
    {
        let engine = module_registry::rhai::Engine::new();
        assert_eq!(engine.eval::<i64>("40 + 2").unwrap(), 42);
    }
}

// ----- indexing, JSON, integer widths ----------------------------------------

#[test]
fn values_index_like_serde_json() {
    let v: Value = serde_json::json!({"a": {"b": [10, 20]}, "s": "x"}).into();
    assert_eq!(v["a"]["b"][1], Value::Int(20));
    assert!(v["a"]["b"][2].is_null());
    assert!(v["missing"].is_null());
    assert!(v["s"]["deeper"].is_null());
    assert!(v[0].is_null());
    assert_eq!(Value::from(vec![1i64, 2])[0], Value::Int(1));
}

#[test]
fn json_values_convert_both_ways() {
    let j = serde_json::json!({"n": 1, "f": 1.5, "l": [true, null], "s": "t"});
    let v: Value = j.clone().into();
    let back: serde_json::Value = v.clone().try_into().unwrap();
    assert_eq!(back, j);
    let by_ref = serde_json::Value::try_from(&v).unwrap();
    assert_eq!(by_ref, j);
    assert!(serde_json::Value::try_from(Value::Bytes(vec![1])).is_err());
    assert!(serde_json::Value::try_from(Value::Float(f64::NAN)).is_err());
}

#[test]
fn every_integer_width_tries_from_a_value_with_range_errors() {
    let v = Value::Int(300);
    assert_eq!(u16::try_from(&v).unwrap(), 300);
    assert_eq!(i32::try_from(v.clone()).unwrap(), 300);
    assert_eq!(usize::try_from(&v).unwrap(), 300);
    assert_eq!(i128::try_from(&v).unwrap(), 300);
    let err = u8::try_from(&v).unwrap_err().to_string();
    assert!(err.contains("0 to 255") && err.contains("300"), "{err}");
    let err = usize::try_from(Value::Int(-1)).unwrap_err().to_string();
    assert!(err.contains("-1"), "{err}");
    assert!(i8::try_from(Value::from("3")).is_err());
    assert_eq!(f32::try_from(Value::Int(2)).unwrap(), 2.0);
}

#[test]
fn to_value_refuses_an_unsigned_integer_past_i64() {
    let err = to_value(&u64::MAX).unwrap_err();
    assert!(
        err.to_string()
            .contains("18446744073709551615 does not fit"),
        "{err}"
    );
    assert_eq!(to_value(&(i64::MAX as u64)).unwrap(), Value::Int(i64::MAX));
    assert!(Value::try_from_json(serde_json::json!([1, u64::MAX])).is_err());
    // The lenient form keeps its documented rounding.
    assert_eq!(
        Value::from_json(serde_json::json!(u64::MAX)),
        Value::Float(u64::MAX as f64)
    );
}

#[cfg(feature = "scripts")]
mod opaque_in_scripts {
    use module_registry::{ModuleRegistry, Opaque, Value};

    fn frame() -> Value {
        Value::Opaque(Opaque::named(
            std::sync::Arc::new(7u8),
            "Python numpy.ndarray",
        ))
    }

    /// A script using an opaque value as data fails naming its type; the
    /// word the value would have printed as never reaches a result.
    #[test]
    fn using_an_opaque_value_as_text_or_a_number_is_an_error_naming_its_type() {
        let r = ModuleRegistry::new();
        for (script, usage) in [
            ("`${input}`", "text"),
            ("let s = `a${input}b`; s.len()", "text"),
            ("input.to_string()", "text"),
            ("to_string(input)", "text"),
            ("input.to_debug()", "text"),
            ("print(input); 1", "text"),
            ("debug(input); 1", "text"),
            (r#""x" + input"#, "text"),
            (r#"input + "x""#, "text"),
            (r#"let s = "x"; s += input; s"#, "text"),
            ("'c' + input", "text"),
            (
                r#"let out = ""; for i in 0..3 { out += `${input}`; } out"#,
                "text",
            ),
            ("input + 1", "a number"),
            ("2.5 * input", "a number"),
            ("-input", "a number"),
            ("input == 1", "a value to compare"),
            (r#"input != "x""#, "a value to compare"),
            ("input < 3.0", "a value to compare"),
            ("true == input", "a value to compare"),
            // Inside a container printed whole, too.
            ("`${[input]}`", "text"),
            ("`${#{a: input}}`", "text"),
            // Caught by try/catch or not, the call fails.
            ("try { input.to_string() } catch { \"fallback\" }", "text"),
        ] {
            let err = r.run_script(script, frame()).unwrap_err();
            let report = err.report();
            assert!(
                report.contains(&format!(
                    "an opaque value (Python numpy.ndarray) was used as {usage}"
                )),
                "{script}: {report}"
            );
            assert!(
                matches!(err, module_registry::Error::Script { .. }),
                "{script}: {err:?}"
            );
        }
    }

    #[test]
    fn the_error_is_at_the_misuse_and_the_text_never_leaves_the_script() {
        let r = ModuleRegistry::with_native_modules();
        let err = r
            .run_script("let x = 1;\nlet s = `${input}`;\ns", frame())
            .unwrap_err();
        match &err {
            module_registry::Error::Script { line, .. } => assert_eq!(*line, Some(2), "{err}"),
            other => panic!("{other:?}"),
        }
        // Handed to a module before any progress check: refused at the call.
        let err = r
            .run_script(
                r#"registry.create("identity").process(`${input}`)"#,
                frame(),
            )
            .unwrap_err();
        assert!(err.report().contains("Python numpy.ndarray"), "{err}");
    }

    #[test]
    fn rhai_errors_about_the_opaque_type_say_what_it_is() {
        let r = ModuleRegistry::new();
        for script in [
            "input.len()",
            "if input { 1 }",
            "input.x",
            "let m = #{}; m[input] = 1;",
        ] {
            let err = r.run_script(script, frame()).unwrap_err();
            let report = err.report();
            assert!(!report.contains("OpaqueHandle"), "{script}: {report}");
            assert!(
                report.contains("cannot read; x.type_name names its type"),
                "{script}: {report}"
            );
        }
        // A script's own words are left alone.
        let err = r.run_script(r#"throw "Opaque words""#, ()).unwrap_err();
        assert!(!err.report().contains("x.type_name"), "{err}");
    }

    #[test]
    fn a_map_holding_an_opaque_value_has_no_json_text() {
        let r = ModuleRegistry::new();
        let err = r.run_script("#{a: input}.to_json()", frame()).unwrap_err();
        assert!(
            err.report()
                .contains("opaque value (Python numpy.ndarray) has no JSON form"),
            "{err}"
        );
        let err = r.run_script("#{a: 0.0 / 0.0}.to_json()", ()).unwrap_err();
        assert!(err.report().contains("no JSON form"), "{err}");
        // What has a JSON form is written as JSON (escaped as JSON escapes).
        let out = r
            .run_script(r#"#{b: [1, 2.5, "x\u0001"], a: #{ n: () }}.to_json()"#, ())
            .unwrap();
        assert_eq!(
            out,
            Value::from(r#"{"a":{"n":null},"b":[1,2.5,"x\u0001"]}"#)
        );
    }

    #[test]
    fn a_script_value_with_no_value_form_is_named_by_its_rhai_type() {
        let r = ModuleRegistry::with_native_modules();
        let out = r.run_script("Fn(\"f\")", ()).unwrap();
        let Value::Opaque(o) = &out else {
            panic!("{out:?}")
        };
        assert_eq!(o.type_name(), "Rhai Fn");
        let err = r.create("json-encode").unwrap().process(out).unwrap_err();
        assert!(err.report().contains("opaque value (Rhai Fn)"), "{err}");
    }

    #[test]
    fn opaque_values_passed_on_unchanged_keep_their_identity() {
        let r = ModuleRegistry::with_native_modules();
        let handle = Opaque::named(std::sync::Arc::new(1u8), "Python pandas.DataFrame");
        let script = r#"
            let same = input == input;
            let kept = #{ frame: input, list: [input], same: same, name: input.type_name, t: type_of(input) };
            let back = registry.create("identity").process(kept);
            back
        "#;
        let out = r.run_script(script, Value::Opaque(handle.clone())).unwrap();
        let Some(Value::Opaque(o)) = out.get("frame") else {
            panic!("{out:?}")
        };
        assert!(o.ptr_eq(&handle));
        let Some(Value::Opaque(o)) = out
            .get("list")
            .and_then(|l| l.as_list())
            .and_then(|l| l.first())
        else {
            panic!("{out:?}")
        };
        assert!(o.ptr_eq(&handle));
        assert_eq!(out.get("same"), Some(&Value::Bool(true)));
        assert_eq!(
            out.get("name"),
            Some(&Value::from("Python pandas.DataFrame"))
        );
        assert_eq!(out.get("t"), Some(&Value::from("Opaque")));
        // Two different objects are not equal; `()` is not an opaque value.
        let out = r
            .run_script(
                "input[0] == input[1] || input[0] == ()",
                Value::List(vec![frame(), frame()]),
            )
            .unwrap();
        assert_eq!(out, Value::Bool(false));
    }
}
