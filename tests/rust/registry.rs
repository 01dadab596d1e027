//! Declaring, registering, replacing and unregistering.

use module_registry::{
    Error, ModuleConfig, ModuleKind, ModuleRegistry, ModuleType, Outcome, PluginConfig, PluginType,
    Value,
};

use crate::common::config;

#[test]
fn seed_builder_forms_register() {
    let registry = ModuleRegistry::new();
    let config = ModuleConfig::new()
        .with_name("data-processor")
        .with_version("1.0.0")
        .with_type(ModuleType::DataProcessor)
        .add_capability("processing");
    let info = registry.register(config).unwrap();
    assert_eq!(info.name(), "data-processor");
    assert_eq!(info.version(), &semver::Version::new(1, 0, 0));
    assert_eq!(info.module_type(), &ModuleType::DataProcessor);
    assert!(info.has_capability("processing"));
    assert_eq!(info.kind(), ModuleKind::Module);
    assert!(!info.has_implementation());

    // The loop form from the seed, with `config = config.add_capability(..)`.
    let mut config = ModuleConfig::new()
        .with_name("auth-module")
        .with_version("1.0.0")
        .with_type(ModuleType::Security)
        .with_metadata("description", "auth");
    for capability in ["authentication", "authorization"] {
        config = config.add_capability(capability);
    }
    let info = registry.register(config).unwrap();
    let caps: Vec<&str> = info.capabilities().iter().map(|c| &**c).collect();
    assert_eq!(caps, ["authentication", "authorization"]);
    assert_eq!(info.metadata()["description"], "auth");
    assert_eq!(registry.len(), 2);
}

#[test]
fn versions_live_side_by_side_and_the_highest_release_wins() {
    let registry = ModuleRegistry::new();
    for v in ["1.0.0", "1.2.0", "2.0.0-beta.1", "1.10.0"] {
        registry.register(config("m", v, &[])).unwrap();
    }
    assert_eq!(registry.len(), 4);
    assert_eq!(registry.get("m").unwrap().version().to_string(), "1.10.0");
    let versions: Vec<String> = registry
        .versions(ModuleKind::Module, "m")
        .iter()
        .map(|i| i.version().to_string())
        .collect();
    assert_eq!(versions, ["2.0.0-beta.1", "1.10.0", "1.2.0", "1.0.0"]);
    // A requirement follows semver: pre-releases only when asked for by the same x.y.z.
    let find = |req| {
        registry
            .find(ModuleKind::Module, "m", Some(req))
            .map(|i| i.version().to_string())
    };
    assert_eq!(find("^1.1").unwrap(), "1.10.0");
    assert_eq!(find("~1.2").unwrap(), "1.2.0");
    assert_eq!(find(">=2.0.0-beta.0").unwrap(), "2.0.0-beta.1");
    assert!(matches!(find("^2"), Err(Error::NotFound { .. })));
    // Only pre-releases: the highest one is used.
    registry.register(config("p", "0.1.0-alpha", &[])).unwrap();
    registry.register(config("p", "0.1.0-beta", &[])).unwrap();
    assert_eq!(
        registry.get("p").unwrap().version().to_string(),
        "0.1.0-beta"
    );
}

#[test]
fn duplicates_are_refused_unless_replaced() {
    let registry = ModuleRegistry::new();
    registry
        .register(config("m", "1.0.0", &["a"]).with_handler(|_| Ok(Value::Int(1))))
        .unwrap();
    let err = registry.register(config("m", "1.0.0", &["b"])).unwrap_err();
    assert!(matches!(err, Error::AlreadyRegistered { .. }), "{err}");
    assert!(err.report().contains("m@1.0.0"), "{err}");
    // Unchanged: still the first registration.
    assert!(registry.get("m").unwrap().has_capability("a"));
    assert_eq!(registry.len(), 1);

    let old_instance = registry.create("m").unwrap();
    let info = registry
        .replace(config("m", "1.0.0", &["b"]).with_handler(|_| Ok(Value::Int(2))))
        .unwrap();
    assert!(info.has_capability("b"));
    assert_eq!(registry.len(), 1);
    assert_eq!(
        registry.create("m").unwrap().process(()).unwrap(),
        Value::Int(2)
    );
    // The instance built before keeps the code it was built with.
    assert_eq!(old_instance.process(()).unwrap(), Value::Int(1));
    // The index follows the replacement.
    let q = module_registry::CapabilityQuery::new().with_required_capabilities(["a"]);
    assert!(registry.discover(&q).unwrap().is_empty());
}

#[test]
fn every_kind_of_bad_input_is_a_typed_error_and_changes_nothing() {
    let registry = ModuleRegistry::new();
    registry.register(config("ok", "1.0.0", &["x"])).unwrap();
    let before = registry.list();
    let cases: Vec<(ModuleConfig, &str)> = vec![
        (ModuleConfig::new(), "invalid_config"),
        (config("Bad", "1.0.0", &[]), "invalid_name"),
        (config("bad name", "1.0.0", &[]), "invalid_name"),
        (config(&"a".repeat(129), "1.0.0", &[]), "invalid_name"),
        (config("m", "1.0", &[]), "invalid_version"),
        (config("m", "one", &[]), "invalid_version"),
        (config("m", "1.0.0", &["Caps"]), "invalid_name"),
        (config("m", "1.0.0", &[""]), "invalid_name"),
        (
            config("m", "1.0.0", &[]).with_dependency("dep", "~~1"),
            "invalid_requirement",
        ),
        (
            config("m", "1.0.0", &[]).with_dependency("Dep", "^1"),
            "invalid_name",
        ),
        (
            config("m", "1.0.0", &[]).with_dependency("m", "^1"),
            "invalid_config",
        ),
        (
            config("m", "1.0.0", &[]).with_metadata("", "v"),
            "invalid_name",
        ),
        (
            config("m", "1.0.0", &[]).with_type(ModuleType::Custom(" ".into())),
            "invalid_config",
        ),
        (config("ok", "1.0.0", &[]), "already_registered"),
    ];
    for (cfg, code) in cases {
        let shown = format!("{cfg:?}");
        let err = registry.register(cfg).unwrap_err();
        assert_eq!(err.code(), code, "{shown}: {err}");
        assert!(!err.report().is_empty());
    }
    assert_eq!(registry.list(), before);
    assert_eq!(registry.len(), 1);
    // Messages say what was wrong and where.
    let err = registry.register(config("m", "1.x.0", &[])).unwrap_err();
    assert!(
        err.report().contains("\"1.x.0\"") && err.report().contains("\"m\""),
        "{err}"
    );
    let err = registry
        .register(config("m", "1.0.0", &["Caps"]))
        .unwrap_err();
    assert!(err.report().contains("capability \"Caps\""), "{err}");
}

#[test]
fn unregister_removes_exactly_one_version() {
    let registry = ModuleRegistry::new();
    registry.register(config("m", "1.0.0", &["x"])).unwrap();
    registry.register(config("m", "2.0.0", &["x"])).unwrap();
    let removed = registry.unregister("m", "2.0.0").unwrap();
    assert_eq!(removed.version().to_string(), "2.0.0");
    assert_eq!(registry.get("m").unwrap().version().to_string(), "1.0.0");
    let err = registry.unregister("m", "3.0.0").unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { available, .. } if available == &["1.0.0"]),
        "{err}"
    );
    assert!(matches!(
        registry.unregister("m", "x"),
        Err(Error::InvalidVersion { .. })
    ));
    assert!(matches!(
        registry.unregister("nope", "1.0.0"),
        Err(Error::NotFound { .. })
    ));
    registry.register(config("m", "3.0.0", &[])).unwrap();
    let removed = registry.remove(ModuleKind::Module, "m", None).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(registry.is_empty());
    assert!(!registry.contains("m"));
}

#[test]
fn modules_and_plugins_have_separate_namespaces() {
    let registry = ModuleRegistry::new();
    registry
        .register(config("shared", "1.0.0", &["m"]))
        .unwrap();
    registry
        .register_plugin(
            PluginConfig::new()
                .with_name("shared")
                .with_version("1.0.0")
                .with_type(PluginType::Security)
                .add_capability("p"),
        )
        .unwrap();
    assert_eq!(registry.len(), 2);
    assert!(registry.get("shared").unwrap().has_capability("m"));
    let plugin = registry.get_plugin("shared").unwrap();
    assert!(plugin.has_capability("p"));
    assert_eq!(plugin.kind(), ModuleKind::Plugin);
    assert!(registry.unregister_plugin("shared", "1.0.0").is_ok());
    assert!(registry.get("shared").is_some());
    assert!(registry.get_plugin("shared").is_none());
}

#[test]
fn list_is_sorted_by_name_then_version_descending() {
    let registry = ModuleRegistry::new();
    for (n, v) in [
        ("b", "1.0.0"),
        ("a", "1.0.0"),
        ("b", "2.0.0"),
        ("a", "0.5.0"),
    ] {
        registry.register(config(n, v, &[])).unwrap();
    }
    let listed: Vec<String> = registry
        .list()
        .iter()
        .map(|i| format!("{}@{}", i.name(), i.version()))
        .collect();
    assert_eq!(listed, ["a@1.0.0", "a@0.5.0", "b@2.0.0", "b@1.0.0"]);
}

#[test]
fn audit_records_register_unregister_create_and_failures() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            config("m", "1.0.0", &[]).with_handler(|_| Err(Error::invalid_input("nope").into())),
        )
        .unwrap();
    let _ = registry.register(config("m", "1.0.0", &[]));
    let instance = registry.create("m").unwrap();
    let _ = instance.process(1i64);
    let _ = registry.create("missing");
    registry.unregister("m", "1.0.0").unwrap();
    let events = registry.audit_events();
    let summary: Vec<(String, Outcome)> = events
        .iter()
        .map(|e| (e.operation.clone(), e.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            ("register".to_string(), Outcome::Ok),
            ("register".to_string(), Outcome::Error),
            ("create".to_string(), Outcome::Ok),
            ("process".to_string(), Outcome::Error),
            ("create".to_string(), Outcome::Error),
            ("unregister".to_string(), Outcome::Ok),
        ]
    );
    assert!(events.iter().all(|e| e.principal == "system"));
    assert_eq!(events[0].module, "m");
    assert_eq!(events[0].version.as_deref(), Some("1.0.0"));
    assert!(events[3].detail.as_deref().unwrap().contains("nope"));
    assert!(events
        .windows(2)
        .all(|w| w[0].sequence < w[1].sequence && w[0].time <= w[1].time));

    // Bounded in memory.
    let small = ModuleRegistry::builder().audit_capacity(5).build().unwrap();
    for i in 0..20 {
        small
            .register(config(&format!("m{i}"), "1.0.0", &[]))
            .unwrap();
    }
    assert_eq!(small.audit_events().len(), 5);
    assert_eq!(small.audit_log().total(), 20);
    assert_eq!(small.audit_events()[0].module, "m15");
}

#[test]
fn extensions_hold_one_value_per_type_shared_by_clones() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counter(AtomicUsize);
    #[derive(Default)]
    struct Other(AtomicUsize);

    let registry = ModuleRegistry::new();
    let clone = registry.clone();
    registry
        .extension::<Counter>()
        .0
        .fetch_add(2, Ordering::Relaxed);
    clone
        .extension::<Counter>()
        .0
        .fetch_add(1, Ordering::Relaxed);
    assert_eq!(registry.extension::<Counter>().0.load(Ordering::Relaxed), 3);
    assert!(std::sync::Arc::ptr_eq(
        &registry.extension::<Counter>(),
        &clone.extension::<Counter>()
    ));
    // Another type is another value; another registry has its own.
    assert_eq!(registry.extension::<Other>().0.load(Ordering::Relaxed), 0);
    assert_eq!(
        ModuleRegistry::new()
            .extension::<Counter>()
            .0
            .load(Ordering::Relaxed),
        0
    );
    // Made once even when many threads ask at the same time.
    let fresh = ModuleRegistry::new();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let r = fresh.clone();
            std::thread::spawn(move || std::sync::Arc::as_ptr(&r.extension::<Counter>()) as usize)
        })
        .collect();
    let ptrs: std::collections::HashSet<usize> =
        handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(ptrs.len(), 1);
}
