//! Manifests: a registry exported and rebuilt exactly.

use module_registry::{
    Error, ManifestOptions, ModuleConfig, ModuleRegistry, Permission, PluginConfig, ScriptLimits,
    Value,
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
    let r = ModuleRegistry::builder()
        .native_modules()
        .plugin_marketplace(true)
        .workflow_orchestration(false)
        .audit_capacity(77)
        .build()
        .unwrap();
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

    // The scripts a script imports travel in the manifest: no file is read.
    assert!(
        text.contains("fn twice(x)"),
        "the imported library is recorded"
    );
    let back = ModuleRegistry::from_manifest(&text).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        back.create("doubler").unwrap().process(2i64).unwrap(),
        Value::Int(4)
    );
    // A changed import is refused as a changed script is.
    let tampered_import = text.replace("x * 2", "x * 3");
    assert!(matches!(
        ModuleRegistry::from_manifest(&tampered_import),
        Err(Error::Integrity { .. })
    ));
    // A manifest without recorded imports (written before they were
    // recorded) reads them from the script's folder, only when the reader
    // names that folder.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("lib.rhai"), "fn twice(x) { x * 2 }").unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    for entry in json["modules"].as_array_mut().unwrap() {
        if let Some(implementation) = entry["implementation"].as_object_mut() {
            implementation.remove("imports");
        }
    }
    let older = serde_json::to_string(&json).unwrap();
    let err = ModuleRegistry::from_manifest(&older).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { name, reason } if name == "doubler" && reason.contains("script folders")),
        "{err}"
    );
    let options = ManifestOptions {
        script_folders: vec![dir.clone()],
        ..ManifestOptions::default()
    };
    let from_folder = ModuleRegistry::from_manifest_with(&older, &options).unwrap();
    assert_eq!(
        from_folder.export_manifest().unwrap(),
        text,
        "read from the folder, the imports are recorded again"
    );
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
        err.report().contains("closure") && err.report().contains("custom"),
        "{err}"
    );
    // A tampered script is refused.
    let tampered = text.replace("x + 1", "x + 2");
    assert!(matches!(
        ModuleRegistry::from_manifest_with(&tampered, &options),
        Err(Error::Integrity { .. })
    ));
    assert!(ModuleRegistry::from_manifest("{").is_err());
    assert!(
        ModuleRegistry::from_manifest(&text.replace("\"format\": 1", "\"format\": 99")).is_err()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// What a registry holds, for before/after comparisons.
fn snapshot(r: &ModuleRegistry) -> (Vec<String>, ScriptLimits, bool, usize) {
    (
        r.list().iter().map(|i| format!("{i:?}")).collect(),
        r.script_limits(),
        r.policy().is_some(),
        r.audit_log().capacity(),
    )
}

#[test]
fn a_manifest_failing_on_its_last_entry_changes_nothing() {
    let source = ModuleRegistry::builder()
        .native_modules()
        .audit_capacity(50)
        .build()
        .unwrap();
    source
        .set_script_limits(ScriptLimits {
            max_operations: Some(777),
            ..ScriptLimits::default()
        })
        .unwrap();
    source.set_policy(Some(policy())).unwrap();
    source
        .register(
            ModuleConfig::new()
                .with_name("zz-last")
                .with_version("1.0.0"),
        )
        .unwrap();
    let text = source.export_manifest().unwrap();

    let target = ModuleRegistry::new();
    target
        .register(ModuleConfig::new().with_name("keep").with_handler(Ok))
        .unwrap();
    let before = snapshot(&target);
    let events_before = target.audit_events().len();
    for (broken, what) in [
        // The last module: a name the registry refuses.
        (text.replace("\"zz-last\"", "\"ZZ Last\""), "ZZ Last"),
        // A native module this program does not link.
        (text.replace("\"identity\"", "\"not-linked\""), "not-linked"),
        // Limits that cannot hold.
        (
            text.replace("\"max_operations\": 777", "\"max_operations\": 0"),
            "max_operations",
        ),
        // A Python module no resolver may import.
        (
            text.replace(
                "\"kind\": \"declaration\"",
                "\"kind\": \"python\", \"import_path\": \"os:system\"",
            ),
            "allow_imports",
        ),
        // A policy giving roles to the registry itself, or to no one: refused
        // before any module is registered or any setting applied.
        (text.replace("\"bob\": [", "\"system\": ["), "reserved"),
        (text.replace("\"bob\": [", "\"\": ["), "reserved"),
    ] {
        assert_ne!(broken, text, "{what}: the manifest was changed");
        let err = target.load_manifest(&broken, |c, _| Ok(c)).unwrap_err();
        assert!(err.report().contains(what), "{what}: {err}");
        assert_eq!(
            snapshot(&target),
            before,
            "{what}: the registry is as it was"
        );
    }
    // Only the failures were added to the audit history; nothing was wiped.
    assert!(target.audit_events().len() >= events_before);
    // The intact manifest applies whole.
    target.load_manifest(&text, |c, _| Ok(c)).unwrap();
    assert_eq!(target.script_limits().max_operations, Some(777));
    assert!(target.get("zz-last").is_some() && target.get("keep").is_some());
}

#[test]
fn python_entries_are_resolved_only_when_allowed_and_after_every_check() {
    let text = r#"{"format": 1, "settings": {"workflow_orchestration": true, "plugin_marketplace": false,
        "audit_capacity": 100, "script_limits": {"max_operations": null, "max_call_depth": null,
        "max_expr_depth": null, "max_string_size": null, "max_array_size": null, "max_map_size": null,
        "timeout_ms": null}},
      "modules": [
        {"kind": "module", "name": "a", "version": "1.0.0", "type": "x", "capabilities": [], "metadata": {},
         "dependencies": {}, "implementation": {"kind": "python", "import_path": "myapp.mods:a"}},
        {"kind": "module", "name": "b", "version": "1.0.0", "type": "x", "capabilities": [], "metadata": {},
         "dependencies": {}, "implementation": {"kind": "python", "import_path": "myapplication:b"}}]}"#;
    let resolved = std::cell::RefCell::new(Vec::new());
    let resolve = |c: ModuleConfig, path: Option<&str>| {
        resolved.borrow_mut().push(path.unwrap().to_string());
        Ok(c.with_handler(Ok))
    };
    let r = ModuleRegistry::new();
    let options = ManifestOptions {
        allow_imports: vec!["myapp".into()],
        ..ManifestOptions::default()
    };
    // `myapplication` is not under `myapp`: refused before `a` is resolved.
    let err = r.load_manifest_with(text, &options, resolve).unwrap_err();
    assert!(err.report().contains("myapplication"), "{err}");
    assert!(resolved.borrow().is_empty() && r.is_empty());
    let options = ManifestOptions {
        allow_imports: vec!["myapp".into(), "myapplication".into()],
        ..ManifestOptions::default()
    };
    r.load_manifest_with(text, &options, resolve).unwrap();
    assert_eq!(*resolved.borrow(), ["myapp.mods:a", "myapplication:b"]);
    assert_eq!(r.len(), 2);
}

#[test]
fn a_batch_registers_all_or_none() {
    let r = ModuleRegistry::new();
    r.register(ModuleConfig::new().with_name("taken").with_handler(Ok))
        .unwrap();
    let batch = |names: &[&str]| -> Vec<ModuleConfig> {
        names
            .iter()
            .map(|n| ModuleConfig::new().with_name(*n).with_handler(Ok))
            .collect()
    };
    assert!(matches!(
        r.register_all(batch(&["one", "two", "taken"])),
        Err(Error::AlreadyRegistered { .. })
    ));
    assert!(matches!(
        r.register_all(batch(&["one", "one"])),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        r.register_all(batch(&["one", "Bad Name"])),
        Err(Error::InvalidName { .. })
    ));
    assert_eq!(r.len(), 1);
    assert_eq!(r.register_all(batch(&["one", "two"])).unwrap().len(), 2);
    assert_eq!(r.len(), 3);
}

#[test]
fn a_fingerprint_follows_what_a_manifest_rebuilds() {
    let r = ModuleRegistry::with_native_modules();
    r.register_script(r#"const MODULE = #{ name: "s", version: "1.0.0" }; fn process(x) { x }"#)
        .unwrap();
    r.register(ModuleConfig::new().with_name("decl").add_capability("c"))
        .unwrap();
    let first = r.fingerprint().unwrap();
    assert_eq!(first.len(), 64);
    let rebuilt = ModuleRegistry::from_manifest(&r.export_manifest().unwrap()).unwrap();
    assert_eq!(rebuilt.fingerprint().unwrap(), first);
    r.create("s").unwrap(); // instances and the audit log are not part of it
    assert_eq!(r.fingerprint().unwrap(), first);
    r.register(ModuleConfig::new().with_name("decl").with_version("2.0.0"))
        .unwrap();
    assert_ne!(r.fingerprint().unwrap(), first);
    // Modules built by code given at run time are listed for a binding to carry.
    r.register(ModuleConfig::new().with_name("code").with_handler(Ok))
        .unwrap();
    let code: Vec<String> = r
        .code_modules()
        .unwrap()
        .iter()
        .map(|i| i.name().to_string())
        .collect();
    assert_eq!(code, ["code"]);
    // Both need admin, as the manifest does.
    r.set_policy(Some(policy())).unwrap();
    let bob = r.as_principal("bob");
    assert!(matches!(
        bob.with(|r| r.fingerprint()),
        Err(Error::PermissionDenied { .. })
    ));
    assert!(matches!(
        bob.with(|r| r.code_modules()),
        Err(Error::PermissionDenied { .. })
    ));
}

#[test]
fn a_policy_travels_as_json_and_compares_by_content() {
    let p = policy();
    let back = module_registry::AccessPolicy::from_json(&p.to_json().unwrap()).unwrap();
    assert_eq!(back, p);
    assert!(back.allows("alice", Permission::Create, Some("text-upper")));
    assert!(!back.allows("bob", Permission::Create, Some("text-upper")));
    assert!(matches!(
        module_registry::AccessPolicy::from_json(
            r#"{"roles": {"r": [{"permissions": ["create"], "modules": "["}]}, "principals": {}}"#
        ),
        Err(Error::InvalidConfig { .. })
    ));
    assert!(matches!(
        module_registry::AccessPolicy::from_json("[]"),
        Err(Error::Serialization { .. })
    ));
}

#[test]
fn a_detached_record_names_its_implementation_but_builds_nothing() {
    let r = ModuleRegistry::with_native_modules();
    let info = r.get("identity").unwrap();
    let detached = module_registry::ModuleInfo::detached(info.config().clone()).unwrap();
    assert_eq!(detached, info);
    assert!(detached.has_implementation());
    assert!(!detached.same_registration(&info));
    let plain = module_registry::ModuleInfo::detached(ModuleConfig::new().with_name("d")).unwrap();
    assert!(!plain.has_implementation());
    assert!(
        module_registry::ModuleInfo::detached(ModuleConfig::new().with_name("Bad Name")).is_err()
    );
    // Equal declarations compare equal; code (factory, origin) is not compared.
    let a = ModuleConfig::new().with_name("x").add_capability("c");
    let b = a.clone().with_handler(Ok);
    assert_ne!(a, b, "a handler makes it a custom implementation");
    // A Python object is compared by its import path, not by the object.
    let python = |origin: u8| {
        a.clone()
            .with_implementation(module_registry::Implementation::Python(
                std::sync::Arc::new(module_registry::PythonCode {
                    import_path: Some("pkg:f".into()),
                    origin: Some(std::sync::Arc::new(origin)),
                    ..Default::default()
                }),
            ))
    };
    assert_eq!(python(5), python(6));
    assert_ne!(python(5), a);
    let module_registry::Implementation::Python(code) = python(5).implementation().clone() else {
        unreachable!()
    };
    assert_eq!(
        code.origin.as_ref().and_then(|o| o.downcast_ref::<u8>()),
        Some(&5)
    );
    assert_ne!(a, a.clone().with_version("2.0.0"));
}
