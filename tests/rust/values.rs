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
