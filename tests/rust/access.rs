//! Access control: policies, principals and views, also through scripts and
//! workflow threads; and integrity pins on scripts.

use module_registry::{
    AccessPolicy, CapabilityQuery, Error, Module, ModuleConfig, ModuleRegistry, Outcome,
    Permission, Result, ScriptLimits, Value, Workflow, WorkflowStep,
};

use crate::common::{policy, temp};

fn denied(result: Result<impl std::fmt::Debug>) -> (String, String, String) {
    match result.map(|_| ()).unwrap_err() {
        Error::PermissionDenied {
            principal,
            operation,
            module,
        } => (principal, operation, module),
        Error::Workflow {
            source: Some(s), ..
        } => denied(Err::<(), _>(*s)),
        Error::Script { message, .. } => ("(in script)".into(), message, String::new()),
        other => panic!("expected a denial, got {other}"),
    }
}

#[test]
fn without_a_policy_everyone_may_do_everything() {
    let r = ModuleRegistry::with_native_modules();
    let guest = r.as_principal("guest");
    guest
        .register(ModuleConfig::new().with_name("anything"))
        .unwrap();
    assert!(guest.create("identity").is_ok());
    assert_eq!(r.audit_events().last().unwrap().principal, "guest");
}

#[test]
fn a_policy_checks_every_call_through_a_view() {
    let r = ModuleRegistry::with_native_modules();
    r.set_policy(Some(policy())).unwrap();
    let alice = r.as_principal("alice");
    let bob = r.as_principal("bob");

    alice
        .register(ModuleConfig::new().with_name("team-tool").with_handler(Ok))
        .unwrap();
    assert_eq!(
        denied(alice.register(ModuleConfig::new().with_name("other-tool"))),
        ("alice".into(), "register".into(), "other-tool".into())
    );
    assert!(denied(bob.register(ModuleConfig::new().with_name("team-x"))).1 == "register");
    assert!(alice.create("text-encode").is_ok());
    assert_eq!(denied(alice.create("sha256")).2, "sha256");
    // The builder is the same create: sharing dependencies grants nothing.
    let built = alice.with(|r| {
        r.instance("sha256")
            .version("^1")
            .share_dependencies(true)
            .create()
    });
    assert_eq!(denied(built).1, "create");
    assert_eq!(denied(bob.create("text-encode")).0, "bob");
    assert!(denied(alice.unregister("identity", "1.0.0")).1 == "unregister");
    alice.unregister("team-tool", "0.1.0").unwrap();
    // Discovery is allowed to both; unknown principals get nothing at all.
    assert!(!bob.list().is_empty());
    assert!(bob.discover(&CapabilityQuery::new()).is_ok());
    let stranger = r.as_principal("stranger");
    assert!(stranger.list().is_empty());
    assert_eq!(
        denied(stranger.discover(&CapabilityQuery::new())).1,
        "discover"
    );
    assert!(stranger.get("identity").is_none());
    // Admin operations.
    assert_eq!(denied(alice.with(|r| r.set_policy(None))).1, "set_policy");
    assert!(
        denied(bob.with(|r| r.set_script_limits(ScriptLimits::unlimited()))).1
            == "set_script_limits"
    );
    r.as_principal("root")
        .with(|r| r.set_workflow_orchestration(true))
        .unwrap();
    // The registry used directly is the system: everything is allowed.
    r.register(ModuleConfig::new().with_name("system-tool"))
        .unwrap();
    // Denials are audited with the principal, operation and module.
    let denials: Vec<_> = r
        .audit_events()
        .into_iter()
        .filter(|e| e.outcome == Outcome::Denied)
        .collect();
    assert!(denials
        .iter()
        .any(|e| e.principal == "alice" && e.operation == "register" && e.module == "other-tool"));
    assert!(denials
        .iter()
        .any(|e| e.principal == "bob" && e.operation == "create" && e.module == "text-encode"));
}

#[test]
fn discovery_is_scoped_to_module_patterns() {
    let r = ModuleRegistry::with_native_modules();
    let mut p = AccessPolicy::new();
    p.grant("text-only", [Permission::Discover], "text-*")
        .unwrap();
    p.assign("carol", "text-only");
    r.set_policy(Some(p)).unwrap();
    let carol = r.as_principal("carol");
    let names: Vec<String> = carol.list().iter().map(|i| i.name().to_string()).collect();
    assert_eq!(names, ["text-decode", "text-encode"]);
    let found = carol
        .discover(&CapabilityQuery::new().with_required_capabilities(["encode"]))
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(carol.get("sha256").is_none());
}

#[test]
fn scripts_and_workflows_run_with_the_principals_permissions() {
    let r = ModuleRegistry::with_native_modules();
    r.set_policy(Some(policy())).unwrap();
    let alice = r.as_principal("alice");
    // Allowed inside the script: text-*.
    assert_eq!(
        alice
            .run_script(r#"registry.create("text-encode").process("hi")"#, ())
            .unwrap(),
        Value::Bytes(b"hi".to_vec())
    );
    // Not allowed: the script cannot do more than alice.
    let err = alice
        .run_script(r#"registry.create("sha256").process("hi")"#, ())
        .unwrap_err();
    assert!(
        err.report().contains("\"alice\" may not create \"sha256\""),
        "{err}"
    );
    // Workflows: every step's module needs create, also on worker threads.
    let ok = Workflow::new("w")
        .step(WorkflowStep::module("a", "text-encode").after([]))
        .step(WorkflowStep::module("b", "text-encode").after([]));
    assert!(alice.run_workflow(&ok, "x").is_ok());
    let bad = Workflow::new("w").step(WorkflowStep::module("a", "sha256"));
    assert_eq!(denied(alice.run_workflow(&bad, "x")).2, "sha256");
    // A module calling back into the registry from a parallel step still acts as alice.
    let inner = r.clone();
    r.register(
        ModuleConfig::new()
            .with_name("text-sneaky")
            .with_factory(move |_| {
                let inner = inner.clone();
                Ok(Box::new(module_registry::FnModule::new(move |v| {
                    Ok(inner.create("sha256")?.process_value(v)?)
                })) as Box<dyn Module>)
            }),
    )
    .unwrap();
    let sneaky = Workflow::new("w")
        .step(WorkflowStep::module("a", "text-sneaky").after([]))
        .step(WorkflowStep::module("b", "text-encode").after([]));
    let err = alice.run_workflow(&sneaky, "x").unwrap_err();
    assert!(err.report().contains("may not create \"sha256\""), "{err}");
    assert!(r.run_workflow(&sneaky, "x").is_ok(), "the system may");
}

#[test]
fn pinned_scripts_refuse_a_mismatch_and_register_nothing() {
    let source = r#"const MODULE = #{ name: "pinned", version: "1.0.0" }; fn process(x) { x }"#;
    let digest = module_registry::native::sha256_hex(source.as_bytes());
    let r = ModuleRegistry::new();
    let wrong = "0".repeat(64);
    let err = r.register_script_pinned(source, Some(&wrong)).unwrap_err();
    assert!(
        matches!(&err, Error::Integrity { expected, actual, .. } if *expected == wrong && *actual == digest),
        "{err}"
    );
    assert!(r.is_empty());
    assert!(matches!(
        r.register_script_pinned(source, Some("abc")),
        Err(Error::InvalidConfig { .. })
    ));
    r.register_script_pinned(source, Some(&digest.to_uppercase()))
        .unwrap();
    assert_eq!(r.len(), 1);

    let dir = temp("pins");
    let file = dir.join("pinned.rhai");
    std::fs::write(&file, source).unwrap();
    let fresh = ModuleRegistry::new();
    assert!(matches!(
        fresh.load_script_pinned(&file, Some(&wrong)),
        Err(Error::Integrity { .. })
    ));
    assert!(fresh.is_empty());
    fresh.load_script_pinned(&file, Some(&digest)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn registry_wide_administration_needs_an_unscoped_grant() {
    let r = ModuleRegistry::with_native_modules();
    let mut p = policy();
    p.grant("team-admin", [Permission::Admin], "team-*")
        .unwrap();
    p.assign("carol", "team-admin");
    r.set_policy(Some(p)).unwrap();
    let carol = r.as_principal("carol");
    // Admin on team-* covers those modules...
    carol
        .register(ModuleConfig::new().with_name("team-tool").with_handler(Ok))
        .unwrap();
    assert!(carol.create("team-tool").is_ok());
    // ...not the registry: policy, limits, settings, the audit file.
    assert_eq!(denied(carol.with(|r| r.set_policy(None))).1, "set_policy");
    assert_eq!(
        denied(carol.with(|r| r.set_script_limits(ScriptLimits::unlimited()))).1,
        "set_script_limits"
    );
    assert_eq!(
        denied(carol.with(|r| r.set_workflow_orchestration(false))).1,
        "set_workflow_orchestration"
    );
    assert!(r.policy().is_some(), "the policy is still in force");
    // The unscoped administrator may.
    r.as_principal("root")
        .with(|r| r.set_script_limits(ScriptLimits::default()))
        .unwrap();
}

#[test]
fn a_principal_learns_nothing_of_modules_it_may_not_discover() {
    let r = ModuleRegistry::with_native_modules();
    r.register(
        ModuleConfig::new()
            .with_name("text-report")
            .with_dependency("secret-store", "^1")
            .with_handler(Ok),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("secret-store")
            .with_version("1.0.0")
            .with_metadata("dsn", "postgres://admin:hunter2@db")
            .with_handler(Ok),
    )
    .unwrap();
    let mut p = AccessPolicy::new();
    p.grant("reader", [Permission::Discover], "text-*").unwrap();
    p.grant("root", [Permission::Admin], "*").unwrap();
    p.assign("bob", "reader").assign("root", "root");
    r.set_policy(Some(p)).unwrap();
    let bob = r.as_principal("bob");
    // resolve shows the whole tree: a hidden dependency is a denial.
    let (who, operation, module) =
        denied(bob.with(|r| r.resolve(module_registry::ModuleKind::Module, "text-report", None)));
    assert_eq!(
        (who.as_str(), operation.as_str(), module.as_str()),
        ("bob", "resolve", "secret-store")
    );
    assert_eq!(
        denied(bob.with(|r| r.resolve(module_registry::ModuleKind::Module, "secret-store", None)))
            .2,
        "secret-store"
    );
    // contains, a script's len and the audit log see only what bob may discover.
    assert!(!bob.with(|r| r.contains("secret-store")));
    assert!(bob.with(|r| r.contains("text-report")));
    let visible = bob.list().len() as i64;
    assert_eq!(
        bob.run_script("registry.len()", ()).unwrap(),
        Value::Int(visible)
    );
    assert!(bob
        .with(|r| r.audit_events())
        .iter()
        .all(|e| e.module.starts_with("text-")));
    assert!(r.audit_events().iter().any(|e| e.module == "secret-store"));
    // The administrator resolves it.
    assert_eq!(
        r.as_principal("root")
            .with(|r| r.resolve(module_registry::ModuleKind::Module, "text-report", None))
            .unwrap()
            .modules()
            .len(),
        2
    );
}

#[test]
fn system_is_reserved_and_clearing_the_audit_log_needs_admin() {
    let registry = ModuleRegistry::new();
    let mut impostor = policy();
    impostor.assign("system", "root");
    let err = registry.set_policy(Some(impostor)).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains("reserved")),
        "{err}"
    );
    assert!(registry.policy().is_none());
    registry.set_policy(Some(policy())).unwrap();
    registry
        .register(ModuleConfig::new().with_name("m"))
        .unwrap();
    let before = registry.audit_events().len();
    let (principal, operation, _) =
        denied(registry.as_principal("alice").with(|r| r.clear_audit()));
    assert_eq!(
        (principal.as_str(), operation.as_str()),
        ("alice", "clear_audit")
    );
    assert!(
        registry.audit_events().len() > before,
        "the denial is recorded, nothing cleared"
    );
    registry
        .as_principal("root")
        .with(|r| r.clear_audit())
        .unwrap();
    let events = registry.audit_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].operation, "clear_audit");
    assert_eq!(events[0].principal, "root");
}

#[test]
fn reading_script_files_is_for_administrators() {
    let dir = temp("file-read");
    std::fs::write(dir.join("hello.rhai"), "40 + 2").unwrap();
    std::fs::write(dir.join("plain"), "secret text").unwrap();
    let registry = ModuleRegistry::new();
    registry.set_policy(Some(policy())).unwrap();
    let script = dir.join("hello.rhai").display().to_string();
    let alice = registry.as_principal("alice");
    let (_, operation, _) = denied(alice.run_script_file(&script, ()));
    assert_eq!(operation, "run_script");
    let (_, operation, _) = denied(alice.with(|r| r.run_script_source_or_path(&script, ())));
    assert_eq!(operation, "run_script");
    let (_, operation, _) = denied(alice.load_script(&script));
    assert_eq!(operation, "load_script");
    let (_, operation, _) = denied(alice.with(|r| r.load_scripts(&dir)));
    assert_eq!(operation, "load_scripts");
    // A path not ending in .rhai is source text to her: whether the file
    // exists makes no difference she can see.
    let plain = dir.join("plain").display().to_string();
    let missing = dir.join("missing").display().to_string();
    let said = |p: &str| match alice.with(|r| r.run_script_source_or_path(p, ())) {
        Err(Error::Script { message, .. }) => message,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        said(&plain).replace(&plain, ""),
        said(&missing).replace(&missing, "")
    );
    // Administrators and the registry itself read files.
    assert_eq!(
        registry
            .as_principal("root")
            .run_script_file(&script, ())
            .unwrap(),
        Value::Int(42)
    );
    assert_eq!(
        registry.run_script_file(&script, ()).unwrap(),
        Value::Int(42)
    );
    assert_eq!(
        registry.run_script_source_or_path(&script, ()).unwrap(),
        Value::Int(42)
    );
    // Source text is never taken for a path: a script's text that names a
    // file is evaluated as text (here, a syntax error), never read.
    assert!(matches!(
        registry.run_script(&script, ()),
        Err(Error::Script { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_view_may_not_take_a_reserved_name() {
    // The one rule (`access::check_principal`), used by views, policies and
    // the bindings' "call as".
    let registry = ModuleRegistry::new();
    for name in ["system", ""] {
        let err = registry.try_as_principal(name).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains("reserved")),
            "{err}"
        );
        assert!(module_registry::access::check_principal(name).is_err());
        let ran = module_registry::access::act_as(name, || unreachable!("ran as {name:?}"));
        assert!(ran.is_err());
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| registry.as_principal(name)));
        assert!(panicked.is_err(), "as_principal({name:?}) made a view");
        // A policy read from JSON is refused too, before it is used.
        let text = format!(r#"{{"roles":{{}},"principals":{{"{name}":["root"]}}}}"#);
        assert!(AccessPolicy::from_json(&text).is_err());
    }
    assert_eq!(registry.try_as_principal("ann").unwrap().principal(), "ann");
    assert_eq!(
        module_registry::access::act_as("ann", || {
            module_registry::access::current_principal().map(|p| p.to_string())
        })
        .unwrap()
        .as_deref(),
        Some("ann")
    );
}
