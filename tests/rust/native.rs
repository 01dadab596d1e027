//! Native modules found at compile time, and the ones that ship.

use module_registry::{
    native_module, Error, Module, ModuleContext, ModuleKind, ModuleRegistry, NativeModule, Result,
    Value,
};

struct Reverse;
impl Module for Reverse {
    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        Ok(Value::Str(
            input.as_str().unwrap_or_default().chars().rev().collect(),
        ))
    }
}
fn reverse(_: &ModuleContext) -> std::result::Result<Box<dyn Module>, module_registry::BoxError> {
    Ok(Box::new(Reverse))
}

// Declared here, in the test crate: found without being listed anywhere.
native_module!(NativeModule::new("test-reverse", "0.2.0", reverse)
    .with_capabilities(&["text", "reverse"])
    .with_metadata(&[("origin", "integration-test")]));

native_module!(NativeModule::new("test-plugin", "1.0.0", reverse)
    .as_plugin()
    .with_dependencies(&[("identity", "^1")]));

fn run(registry: &ModuleRegistry, name: &str, input: impl Into<Value>) -> Result<Value> {
    registry.create(name)?.process(input)
}

fn run_with(
    registry: &ModuleRegistry,
    name: &str,
    config: Value,
    input: impl Into<Value>,
) -> Result<Value> {
    registry
        .create_with(ModuleKind::Module, name, None, config)?
        .process(input)
}

fn cfg(pairs: &[(&str, Value)]) -> Value {
    pairs.iter().cloned().collect()
}

#[test]
fn every_linked_native_module_is_registered() {
    let registry = ModuleRegistry::with_native_modules();
    let mut names = vec![
        "identity",
        "json-encode",
        "json-decode",
        "text-encode",
        "text-decode",
        "sha256",
        "base64-encode",
        "base64-decode",
        "test-reverse",
    ];
    if cfg!(feature = "compression") {
        names.extend(["gzip-compress", "gzip-decompress"]);
    }
    for name in names {
        let info = registry
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert!(info.has_implementation());
        assert_eq!(info.metadata()["implementation"], "native");
    }
    assert_eq!(
        run(&registry, "test-reverse", "abc").unwrap(),
        Value::from("cba")
    );
    assert_eq!(
        registry.get("test-reverse").unwrap().metadata()["origin"],
        "integration-test"
    );
    let plugin = registry.get_plugin("test-plugin").unwrap();
    assert_eq!(plugin.dependencies()["identity"], "^1");
    assert_eq!(
        registry
            .create_plugin("test-plugin")
            .unwrap()
            .dependencies()[0]
            .name(),
        "identity"
    );
    // Registering them all again is refused by name and version.
    assert!(matches!(
        registry.register_native_modules(),
        Err(Error::AlreadyRegistered { .. })
    ));
    assert!(
        ModuleRegistry::new()
            .register_native_modules()
            .unwrap()
            .len()
            >= if cfg!(feature = "compression") {
                12
            } else {
                10
            }
    );
}

#[test]
fn identity_returns_its_input() {
    let r = ModuleRegistry::with_native_modules();
    let v: Value = [("a", Value::List(vec![1i64.into(), Value::Null]))]
        .into_iter()
        .collect();
    assert_eq!(run(&r, "identity", v.clone()).unwrap(), v);
    assert!(r.get("identity").unwrap().has_capability("identity"));
}

#[test]
fn json_round_trips() {
    let r = ModuleRegistry::with_native_modules();
    let v: Value = [("b", Value::Int(1)), ("a", Value::Str("x".into()))]
        .into_iter()
        .collect();
    let text = run(&r, "json-encode", v.clone()).unwrap();
    assert_eq!(text, Value::from(r#"{"b":1,"a":"x"}"#));
    assert_eq!(run(&r, "json-decode", text).unwrap(), v);
    assert_eq!(
        run(&r, "json-decode", b"[1, 2.5]").unwrap(),
        Value::List(vec![1i64.into(), 2.5.into()])
    );
    let pretty = run_with(&r, "json-encode", cfg(&[("pretty", true.into())]), v).unwrap();
    assert!(pretty.as_str().unwrap().contains('\n'));
    let err = run(&r, "json-decode", "{oops").unwrap_err();
    assert!(
        err.report().contains("json-decode@1.0.0") && err.report().contains("line 1"),
        "{err}"
    );
    assert!(matches!(err.root_cause(), Error::InvalidInput { .. }));
    assert!(run(&r, "json-encode", b"raw").is_err());
    assert!(run_with(&r, "json-encode", cfg(&[("pretty", "yes".into())]), 1i64).is_err());
}

#[test]
fn text_encoding() {
    let r = ModuleRegistry::with_native_modules();
    assert_eq!(
        run(&r, "text-encode", "héllo").unwrap(),
        Value::Bytes("héllo".as_bytes().to_vec())
    );
    assert_eq!(
        run(&r, "text-decode", "héllo".as_bytes()).unwrap(),
        Value::from("héllo")
    );
    let err = run(&r, "text-decode", &[b'a', 0xff, b'b'][..]).unwrap_err();
    assert!(err.report().contains("offset 1"), "{err}");
    let lossy = run_with(
        &r,
        "text-decode",
        cfg(&[("errors", "replace".into())]),
        &[b'a', 0xff][..],
    )
    .unwrap();
    assert_eq!(lossy, Value::from("a\u{fffd}"));
    assert!(run(&r, "text-encode", 5i64).is_err());
    assert!(run_with(&r, "text-decode", cfg(&[("errors", "ignore".into())]), b"x").is_err());
}

#[test]
fn sha256_matches_the_standard_vectors() {
    let r = ModuleRegistry::with_native_modules();
    assert_eq!(
        run(&r, "sha256", "abc").unwrap(),
        Value::from("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        run(&r, "sha256", b"").unwrap(),
        Value::from("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    let raw = run_with(&r, "sha256", cfg(&[("output", "bytes".into())]), "abc").unwrap();
    assert_eq!(raw.as_bytes().unwrap().len(), 32);
    assert_eq!(raw.as_bytes().unwrap()[0], 0xba);
    assert!(run(&r, "sha256", 1.5).is_err());
}

#[cfg(feature = "compression")]
#[test]
fn gzip_round_trips_and_bounds_output() {
    let r = ModuleRegistry::with_native_modules();
    let data = "hello ".repeat(1000);
    let packed = run(&r, "gzip-compress", data.as_str()).unwrap();
    let packed_len = packed.as_bytes().unwrap().len();
    assert!(packed_len < 200, "compressed to {packed_len}");
    assert_eq!(
        run(&r, "gzip-decompress", packed.clone()).unwrap(),
        Value::Bytes(data.clone().into_bytes())
    );
    let fast = run_with(
        &r,
        "gzip-compress",
        cfg(&[("level", 1i64.into())]),
        data.as_str(),
    )
    .unwrap();
    assert_eq!(
        run(&r, "gzip-decompress", fast).unwrap(),
        Value::Bytes(data.into_bytes())
    );
    let err = run_with(
        &r,
        "gzip-decompress",
        cfg(&[("max_size", 100i64.into())]),
        packed,
    )
    .unwrap_err();
    assert!(err.report().contains("max_size"), "{err}");
    assert!(run(&r, "gzip-decompress", b"not gzip").is_err());
    assert!(run_with(&r, "gzip-compress", cfg(&[("level", 12i64.into())]), b"x").is_err());
    assert!(run_with(&r, "gzip-compress", Value::from("not a map"), b"x").is_err());
}

#[test]
fn base64_round_trips() {
    let r = ModuleRegistry::with_native_modules();
    assert_eq!(
        run(&r, "base64-encode", b"hi!").unwrap(),
        Value::from("aGkh")
    );
    assert_eq!(
        run(&r, "base64-decode", "aGkh").unwrap(),
        Value::Bytes(b"hi!".to_vec())
    );
    assert!(run(&r, "base64-decode", "***").is_err());
}

#[test]
fn json_is_exact_or_an_error() {
    let r = ModuleRegistry::with_native_modules();
    // An integer past i64 is refused, not rounded into a float.
    let err = run(&r, "json-decode", "[9223372036854775808]").unwrap_err();
    assert!(err.report().contains("does not fit"), "{err}");
    assert_eq!(
        run(
            &r,
            "json-decode",
            "[9223372036854775807, -9223372036854775808]"
        )
        .unwrap(),
        Value::List(vec![Value::Int(i64::MAX), Value::Int(i64::MIN)])
    );
    // NaN and infinities have no JSON form: an error, not `null`.
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = run(&r, "json-encode", Value::List(vec![Value::Float(f)])).unwrap_err();
        assert!(err.report().contains("no JSON form"), "{err}");
    }
    assert_eq!(
        run(&r, "json-encode", Value::Float(0.5)).unwrap(),
        Value::from("0.5")
    );
}

#[test]
fn every_native_given_an_opaque_value_names_its_type() {
    let r = ModuleRegistry::with_native_modules();
    let frame = || {
        Value::Opaque(module_registry::Opaque::named(
            std::sync::Arc::new(0u8),
            "Python pandas.DataFrame",
        ))
    };
    for name in r.list().iter().map(|i| i.name().to_string()) {
        if name == "identity" || name.starts_with("test-") {
            continue;
        }
        let err = run(&r, &name, frame()).unwrap_err();
        assert!(
            err.report().contains("Python pandas.DataFrame"),
            "{name}: {err}"
        );
    }
    // A typed config read from a value names it too.
    let err = String::try_from(frame()).unwrap_err();
    assert!(
        err.to_string()
            .contains("found opaque value (Python pandas.DataFrame)"),
        "{err}"
    );
}

#[test]
fn json_decode_refuses_integers_past_64_bits_naming_where() {
    let r = ModuleRegistry::with_native_modules();
    // Past u64, the parser reads a float: still refused, with its path.
    let err = run(
        &r,
        "json-decode",
        r#"{"a": 123456789012345678901234567890}"#,
    )
    .unwrap_err();
    let report = err.report();
    assert!(
        report.contains("123456789012345678901234567890 at $.a"),
        "{report}"
    );
    assert!(report.contains("does not fit"), "{report}");
    let err = run(
        &r,
        "json-decode",
        r#"{"x": "1234567890123456789012", "list": [1, {"deep key": [0, -99999999999999999999]}]}"#,
    )
    .unwrap_err();
    assert!(
        err.report()
            .contains(r#"-99999999999999999999 at $.list[1]["deep key"][1]"#),
        "{err}"
    );
    // u64 range, from bytes too.
    let err = run(
        &r,
        "json-decode",
        Value::Bytes(b"[0, 18446744073709551615]".to_vec()),
    )
    .unwrap_err();
    assert!(
        err.report().contains("18446744073709551615 at $[1]"),
        "{err}"
    );
    // Long digit runs in strings, floats written as floats: exact, no error.
    assert_eq!(
        run(
            &r,
            "json-decode",
            r#"["12345678901234567890123", 1e30, 1.5e300, 12345678901234567890.5]"#
        )
        .unwrap(),
        Value::List(vec![
            Value::from("12345678901234567890123"),
            Value::Float(1e30),
            Value::Float(1.5e300),
            Value::Float(12345678901234567890.5),
        ])
    );
    // Invalid JSON is reported as such, even beside a long integer.
    let err = run(&r, "json-decode", "[123456789012345678901234567890,").unwrap_err();
    assert!(err.report().contains("not valid JSON"), "{err}");
    // What encodes, decodes to the same value.
    let v = Value::from_iter([("max", Value::Int(i64::MAX)), ("min", Value::Int(i64::MIN))]);
    let text = run(&r, "json-encode", v.clone()).unwrap();
    assert_eq!(run(&r, "json-decode", text).unwrap(), v);
}

#[cfg(feature = "compression")]
#[test]
fn gzip_decompresses_every_member() {
    let r = ModuleRegistry::with_native_modules();
    let mut joined = match run(&r, "gzip-compress", "first, ").unwrap() {
        Value::Bytes(b) => b,
        other => panic!("{other:?}"),
    };
    match run(&r, "gzip-compress", "second").unwrap() {
        Value::Bytes(b) => joined.extend(b),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        run(&r, "gzip-decompress", joined).unwrap(),
        Value::Bytes(b"first, second".to_vec())
    );
}

// A typed module type, checked by the compiler.
native_module!(
    NativeModule::new("test-store", "1.0.0-beta.1+build.5", reverse)
        .with_type(module_registry::ModuleType::Storage)
);

#[test]
fn declarations_are_checked_and_typed() {
    let registry = ModuleRegistry::try_with_native_modules().unwrap();
    let store = registry.get("test-store").unwrap();
    assert_eq!(store.module_type(), &module_registry::ModuleType::Storage);
    assert_eq!(store.version_text(), "1.0.0-beta.1+build.5");
    // What a constant refuses at compile time, a call at run time refuses by panicking.
    for (name, version) in [
        ("Bad_Name", "1.0.0"),
        ("", "1.0.0"),
        ("ok", "1.0"),
        ("ok", "01.0.0"),
        ("ok", "1.0.0 "),
    ] {
        let made = std::panic::catch_unwind(|| NativeModule::new(name, version, reverse));
        assert!(made.is_err(), "{name:?} {version:?} accepted");
    }
    let custom = NativeModule::new("ok", "1.0.0", reverse).with_custom_type("Video");
    assert_eq!(
        custom.to_config().module_type(),
        &module_registry::ModuleType::custom("Video")
    );
}

#[test]
#[cfg(feature = "workflows")]
fn a_config_given_to_a_module_that_never_reads_one_is_refused() {
    use module_registry::{ModuleConfig, Workflow, WorkflowStep};
    let r = ModuleRegistry::with_native_modules();
    let config = Value::from_json(serde_json::json!({"a": 1}));
    let err = r
        .create_with(ModuleKind::Module, "identity", None, config.clone())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("identity@1.0.0 was given a config, but it takes no config"),
        "{err}"
    );
    // A Rust module declared without a config: refused at check time too.
    r.register(
        ModuleConfig::new()
            .with_name("plain")
            .with_version("1.0.0")
            .with_handler(Ok)
            .without_config(),
    )
    .unwrap();
    let wf = Workflow::new("w").step(WorkflowStep::module("s", "plain").config(config.clone()));
    let err = r.check_workflow(&wf).unwrap_err();
    assert!(err.to_string().contains("takes no config"), "{err}");
    // Null is no config; a native that reads one still gets it.
    assert!(r
        .create_with(ModuleKind::Module, "identity", None, Value::Null)
        .is_ok());
    let pretty = Value::from_json(serde_json::json!({"pretty": true}));
    assert!(r
        .create_with(ModuleKind::Module, "json-encode", None, pretty)
        .is_ok());
    // A handler sees no config, so it refuses one without being told.
    let handler = ModuleConfig::new().with_name("handler").with_handler(Ok);
    assert!(handler.ignores_config());
    r.register(handler).unwrap();
    let err = r
        .create_with(ModuleKind::Module, "handler", None, config.clone())
        .unwrap_err();
    assert!(err.to_string().contains("takes no config"), "{err}");
    // Setting a factory afterwards says again whether it reads a config.
    let again = ModuleConfig::new()
        .with_handler(Ok)
        .without_config()
        .with_factory(|_| {
            Ok(Box::new(module_registry::FnModule::new(Ok)) as Box<dyn module_registry::Module>)
        });
    assert!(!again.ignores_config());
}
