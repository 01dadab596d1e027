//! Manifests: a registry exported and rebuilt exactly.

use module_registry::{
    Error, ModuleConfig, ModuleRegistry, Permission, PluginConfig, ScriptLimits, Value,
};

use crate::common::{policy, temp};

#[test]
fn manifests_rebuild_the_registry_exactly() {
    let dir = temp("manifest");
    std::fs::write(dir.join("lib.rhai"), "fn twice(x) { x * 2 }").unwrap();
    std::fs::write(
        dir.join("doubler.rhai"),
        "import \"lib\" as lib;\nconst MODULE = #{ name: \"doubler\", version: \"1.2.0\", capabilities: [\"math\"] };\nfn process(x) { lib::twice(x) }",
    )
    .unwrap();
    let r = ModuleRegistry::with_native_modules()
        .with_plugin_marketplace(true)
        .with_workflow_orchestration(false)
        .with_audit_capacity(77);
    r.set_script_limits(ScriptLimits {
        max_operations: Some(12345),
        ..ScriptLimits::default()
    })
    .unwrap();
    r.load_scripts(&dir).unwrap();
    r.register_script(
        r#"const MODULE = #{ name: "inline", metadata: #{ a: "b" } }; fn process(x) { x + 1 }"#,
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("record")
            .with_version("3.0.0")
            .with_dependency("identity", "^1")
            .with_metadata("k", "v"),
    )
    .unwrap();
    r.register_plugin(
        PluginConfig::new()
            .with_name("listed")
            .with_metadata("marketplace", "true")
            .with_metadata("description", "d")
            .with_metadata("license_type", "mit"),
    )
    .unwrap();
    r.set_policy(Some(policy())).unwrap();
    let text = r.export_manifest().unwrap();

    let back = ModuleRegistry::from_manifest(&text).unwrap();
    let describe =
        |r: &ModuleRegistry| -> Vec<String> { r.list().iter().map(|i| format!("{i:?}")).collect() };
    assert_eq!(describe(&back), describe(&r));
    assert_eq!(back.script_limits(), r.script_limits());
    assert!(back.plugin_marketplace_enabled() && !back.workflow_orchestration_enabled());
    assert_eq!(back.audit_log().capacity(), 77);
    assert!(back
        .policy()
        .unwrap()
        .allows("alice", Permission::Create, Some("text-x")));
    assert_eq!(
        back.create("doubler").unwrap().process(21i64).unwrap(),
        Value::Int(42)
    );
    assert_eq!(
        back.create("inline").unwrap().process(1i64).unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        back.create("sha256").unwrap().process("abc").unwrap(),
        r.create("sha256").unwrap().process("abc").unwrap()
    );
    assert!(matches!(
        back.create("record"),
        Err(Error::NoImplementation { .. })
    ));
    assert_eq!(
        back.export_manifest().unwrap(),
        text,
        "a second round trip is identical"
    );

    // Code-built factories cannot travel in a manifest, and say so.
    let code = ModuleRegistry::new();
    code.register(ModuleConfig::new().with_name("closure").with_handler(Ok))
        .unwrap();
    let err = ModuleRegistry::from_manifest(&code.export_manifest().unwrap()).unwrap_err();
    assert!(
        err.to_string().contains("closure") && err.to_string().contains("custom"),
        "{err}"
    );
    // A tampered script is refused.
    let tampered = text.replace("x + 1", "x + 2");
    assert!(matches!(
        ModuleRegistry::from_manifest(&tampered),
        Err(Error::Integrity { .. })
    ));
    assert!(ModuleRegistry::from_manifest("{").is_err());
    assert!(
        ModuleRegistry::from_manifest(&text.replace("\"format\": 1", "\"format\": 99")).is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
