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
