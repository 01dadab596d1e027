//! Registry settings from the seed: workflow orchestration and the plugin marketplace.
//! The seed's `with_*` calls are deprecated (`ModuleRegistry::builder()` sets
//! them now) and still tested here, as they still work.
#![allow(deprecated)]

use module_registry::{
    Error, ModuleRegistry, PluginConfig, PluginType, Value, WorkflowOrchestration,
};

use crate::common::config;

#[test]
fn orchestration_runs_a_chain_and_can_be_switched_off() {
    let registry = ModuleRegistry::with_native_modules();
    registry
        .register(
            config("shout", "1.0.0", &[])
                .with_handler(|v| Ok(Value::Str(v.as_str().unwrap_or("").to_uppercase()))),
        )
        .unwrap();
    let chain = WorkflowOrchestration::new("digest-of-shout")
        .step("text-decode")
        .step("shout")
        .step("sha256");
    assert_eq!(chain.modules(), ["text-decode", "shout", "sha256"]);
    let out = registry.orchestrate(&chain, b"abc").unwrap();
    // sha256("ABC")
    assert_eq!(
        out,
        Value::from("b5d4045c3f466fa91fe2cc6abe79232a1a57cdf104f7a26e716e0a1e2789df78")
    );

    // Every step is checked before any runs.
    let bad = WorkflowOrchestration::new("bad")
        .step("shout")
        .step("missing");
    let err = registry.orchestrate(&bad, "x").unwrap_err();
    assert!(
        matches!(&err, Error::Workflow { step: Some(s), .. } if s == "missing"),
        "{err}"
    );
    assert!(registry
        .orchestrate(&WorkflowOrchestration::new("empty"), "x")
        .is_err());

    let locked = ModuleRegistry::with_native_modules().with_workflow_orchestration(false);
    assert!(!locked.workflow_orchestration_enabled());
    let err = locked
        .orchestrate(&WorkflowOrchestration::new("w").step("identity"), 1i64)
        .unwrap_err();
    assert!(matches!(err, Error::FeatureDisabled { .. }), "{err}");
    // Single modules still work.
    assert_eq!(
        locked.create("identity").unwrap().process(1i64).unwrap(),
        Value::Int(1)
    );
}

fn listing(name: &str, license: Option<&str>) -> PluginConfig {
    let mut p = PluginConfig::new()
        .with_name(name)
        .with_version("1.0.0")
        .with_type(PluginType::DataProcessor)
        .with_metadata("description", format!("{name} plugin"))
        .with_metadata("marketplace", "true");
    if let Some(l) = license {
        p = p.with_metadata("license_type", l);
    }
    p
}

#[test]
fn the_marketplace_lists_flagged_plugins_and_checks_listings() {
    let off = ModuleRegistry::new();
    assert!(matches!(
        off.plugin_marketplace(),
        Err(Error::FeatureDisabled { .. })
    ));
    // Without the marketplace, listing fields are not required.
    off.register_plugin(listing("loose", None)).unwrap();

    let registry = ModuleRegistry::new().with_plugin_marketplace(true);
    registry
        .register_plugin(listing("premium-data-processor", Some("commercial")))
        .unwrap();
    registry
        .register_plugin(listing("open-source-encryption", Some("open-source")))
        .unwrap();
    registry
        .register_plugin(
            PluginConfig::new()
                .with_name("private")
                .with_version("1.0.0"),
        )
        .unwrap();
    let err = registry
        .register_plugin(listing("unlicensed", None))
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains("license_type")),
        "{err}"
    );
    assert!(registry.get_plugin("unlicensed").is_none());

    let market = registry.plugin_marketplace().unwrap();
    let names: Vec<&str> = market.plugins().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["open-source-encryption", "premium-data-processor"]);
    assert_eq!(market.licenses(), ["commercial", "open-source"]);
    assert_eq!(
        market.by_license("commercial")[0].name(),
        "premium-data-processor"
    );
    assert_eq!(market.search("ENCRYPTION").len(), 1);
}

#[test]
fn with_settings_never_change_a_registry_others_share() {
    // Building: the only handle, so `with_*` sets.
    let registry = ModuleRegistry::new()
        .with_workflow_orchestration(false)
        .with_plugin_marketplace(true)
        .with_audit_capacity(3);
    assert!(!registry.workflow_orchestration_enabled());
    assert!(registry.plugin_marketplace_enabled());
    // Shared (a clone, or a view holding it): `with_*` refuses, loudly,
    // and the registry the others use is unchanged.
    let clone = registry.clone();
    let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        clone.with_workflow_orchestration(true)
    }));
    let message = *refused.unwrap_err().downcast::<String>().unwrap();
    assert!(
        message.contains("use ModuleRegistry::set_workflow_orchestration"),
        "{message}"
    );
    assert!(!registry.workflow_orchestration_enabled());
    let view = registry.as_principal("alice");
    for attempt in [
        Box::new(|r: ModuleRegistry| drop(r.with_plugin_marketplace(false)))
            as Box<dyn Fn(ModuleRegistry)>,
        Box::new(|r: ModuleRegistry| drop(r.with_audit_capacity(100))),
    ] {
        let r = registry.clone();
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| attempt(r))).is_err());
    }
    assert!(registry.plugin_marketplace_enabled());
    drop(view);
    // `set_*` is how a shared registry changes, for every handle.
    let other = registry.clone();
    other.set_workflow_orchestration(true).unwrap();
    other.set_audit_capacity(1).unwrap();
    assert!(registry.workflow_orchestration_enabled());
    registry.create("nope").unwrap_err();
    registry.create("nope").unwrap_err();
    assert_eq!(registry.audit_events().len(), 1);
}

#[test]
fn the_builder_sets_what_is_fixed_at_construction_and_never_panics() {
    let registry = ModuleRegistry::builder()
        .crate_native_modules(&["module_registry"])
        .workflow_orchestration(false)
        .plugin_marketplace(true)
        .audit_capacity(2)
        .build()
        .unwrap();
    assert!(!registry.workflow_orchestration_enabled());
    assert!(registry.plugin_marketplace_enabled());
    assert!(registry.get("sha256").is_some());
    for _ in 0..5 {
        let _ = registry.create("identity").unwrap();
    }
    assert_eq!(registry.audit_log().events().len(), 2);
    assert_eq!(registry.audit_log().capacity(), 2);
    // The defaults: orchestration on, marketplace off, no modules.
    let plain = ModuleRegistry::builder().build().unwrap();
    assert!(plain.workflow_orchestration_enabled());
    assert!(!plain.plugin_marketplace_enabled());
    assert!(plain.list().is_empty());
    // A clone of a built registry is shared: settings change through set_*.
    let clone = registry.clone();
    clone.set_workflow_orchestration(true).unwrap();
    assert!(registry.workflow_orchestration_enabled());
}
