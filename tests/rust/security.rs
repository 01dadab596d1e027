//! Access control, the audit file, integrity pins, isolation and manifests.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use module_registry::{
    AccessPolicy, AuditLog, CapabilityQuery, Error, Module, ModuleConfig, ModuleRegistry, Outcome,
    Permission, PluginConfig, Result, ScriptLimits, Value, Workflow, WorkflowStep,
};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mr-security-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn policy() -> AccessPolicy {
    let mut p = AccessPolicy::new();
    p.grant("reader", [Permission::Discover], "*").unwrap();
    p.grant("runner", [Permission::Create], "text-*").unwrap();
    p.grant(
        "publisher",
        [Permission::Register, Permission::Unregister],
        "team-*",
    )
    .unwrap();
    p.grant("root", [Permission::Admin], "*").unwrap();
    p.assign("alice", "reader")
        .assign("alice", "runner")
        .assign("alice", "publisher");
    p.assign("bob", "reader");
    p.assign("root", "root");
    p
}

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
        err.to_string()
            .contains("\"alice\" may not create \"sha256\""),
        "{err}"
    );
    // Workflows: every step's module needs create, also on worker threads.
    let ok = Workflow::new("w")
        .step(WorkflowStep::module("a", "text-encode").after(Vec::<String>::new()))
        .step(WorkflowStep::module("b", "text-encode").after(Vec::<String>::new()));
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
                    inner.create("sha256")?.process_value(v)
                })) as Box<dyn Module>)
            }),
    )
    .unwrap();
    let sneaky = Workflow::new("w")
        .step(WorkflowStep::module("a", "text-sneaky").after(Vec::<String>::new()))
        .step(WorkflowStep::module("b", "text-encode").after(Vec::<String>::new()));
    let err = alice.run_workflow(&sneaky, "x").unwrap_err();
    assert!(
        err.to_string().contains("may not create \"sha256\""),
        "{err}"
    );
    assert!(r.run_workflow(&sneaky, "x").is_ok(), "the system may");
}

#[test]
fn the_audit_file_gets_one_complete_line_per_event() {
    let dir = temp("audit");
    let path = dir.join("audit.jsonl");
    let r = ModuleRegistry::with_native_modules();
    r.set_audit_file(Some(&path)).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            thread::spawn(move || {
                for i in 0..50 {
                    let name = format!("t{t}-m{i}");
                    r.register(ModuleConfig::new().with_name(&name).with_handler(Ok))
                        .unwrap();
                    r.create(&name).unwrap();
                    r.unregister(&name, "0.1.0").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let _ = r.as_principal("eve").with(|r| r.create("nope"));
    r.set_audit_file(None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let events = AuditLog::read_file(&path).unwrap();
    assert_eq!(events.len(), 4 * 50 * 3 + 1);
    assert_eq!(text.lines().count(), events.len());
    assert!(
        events.windows(2).all(|w| w[0].sequence < w[1].sequence),
        "file order is event order"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (
            last.operation.as_str(),
            last.principal.as_str(),
            last.outcome
        ),
        ("create", "eve", Outcome::Error)
    );
    for op in ["register", "create", "unregister"] {
        assert_eq!(
            events
                .iter()
                .filter(|e| e.operation == op && e.outcome == Outcome::Ok)
                .count(),
            200,
            "{op}"
        );
    }
    // Appends, never truncates; a line cut short at the end (a killed process) is skipped.
    let r2 = ModuleRegistry::new();
    r2.set_audit_file(Some(&path)).unwrap();
    r2.register(ModuleConfig::new().with_name("later")).unwrap();
    assert_eq!(AuditLog::read_file(&path).unwrap().len(), 602);
    std::fs::write(&path, format!("{text}{{\"sequence\": 9, \"ti")).unwrap();
    assert_eq!(AuditLog::read_file(&path).unwrap().len(), 601);
    std::fs::write(&path, "not json\n").unwrap();
    assert!(AuditLog::read_file(&path)
        .unwrap_err()
        .to_string()
        .contains(":1:"));
    assert!(r
        .set_audit_file(Some(&dir.join("no/such/dir/a.jsonl")))
        .is_err());
    std::fs::remove_dir_all(&dir).unwrap();
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

struct Panics;
impl Module for Panics {
    fn process(&self, _: Value) -> Result<Value> {
        panic!("native module panicked")
    }
}

#[test]
fn failures_stay_inside_their_call_or_step() {
    let r = ModuleRegistry::with_native_modules();
    r.register(
        ModuleConfig::new()
            .with_name("panics")
            .with_factory(|_| Ok(Box::new(Panics) as Box<dyn Module>)),
    )
    .unwrap();
    r.register_script(
        r#"const MODULE = #{ name: "throws" }; fn process(x) { throw "script failed"; }"#,
    )
    .unwrap();
    let before = r.len();
    let healthy = r.create("sha256").unwrap();
    let panics = r.create("panics").unwrap();
    let throws = r.create("throws").unwrap();
    for _ in 0..3 {
        assert!(matches!(
            panics.process(1i64).unwrap_err().root_cause(),
            Error::Panic { .. }
        ));
        assert!(matches!(
            throws.process(1i64).unwrap_err().root_cause(),
            Error::Script { .. }
        ));
        assert_eq!(healthy.process("abc").unwrap().as_str().unwrap().len(), 64);
    }
    for module in ["panics", "throws"] {
        let wf = Workflow::new("w")
            .step(WorkflowStep::module("ok", "identity"))
            .step(WorkflowStep::module("bad", module));
        let err = r.run_workflow(&wf, 1i64).unwrap_err();
        assert!(
            matches!(&err, Error::Workflow { step: Some(s), .. } if s == "bad"),
            "{err}"
        );
    }
    assert_eq!(r.len(), before);
    assert!(r.create("identity").unwrap().process(5i64).is_ok());
}

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

#[test]
fn concurrent_stress_leaves_a_consistent_registry_and_log() {
    let dir = temp("stress");
    let path = dir.join("audit.jsonl");
    let r = ModuleRegistry::with_native_modules().with_audit_capacity(0);
    r.set_audit_file(Some(&path)).unwrap();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            thread::spawn(move || {
                let mut ok_ops = 0usize;
                let mut alive: Vec<String> = Vec::new();
                let mut i = 0;
                while Instant::now() < deadline {
                    i += 1;
                    let name = format!("s{t}-{i}");
                    r.register(
                        ModuleConfig::new()
                            .with_name(&name)
                            .add_capability("stress")
                            .with_handler(Ok),
                    )
                    .unwrap();
                    ok_ops += 1;
                    let inst = r.create(&name).unwrap();
                    ok_ops += 1;
                    assert_eq!(inst.process(i as i64).unwrap(), Value::Int(i as i64));
                    let _ = r
                        .discover(&CapabilityQuery::new().with_required_capabilities(["stress"]))
                        .unwrap();
                    r.register_script(&format!(
                        r#"const MODULE = #{{ name: "reload-{t}" }}; fn process(x) {{ {i} }}"#
                    ))
                    .unwrap();
                    ok_ops += 1;
                    if i % 2 == 0 {
                        r.unregister(&name, "0.1.0").unwrap();
                        ok_ops += 1;
                    } else {
                        alive.push(name);
                    }
                }
                (ok_ops, alive)
            })
        })
        .collect();
    let mut total_ok = 0;
    let mut alive = Vec::new();
    for w in workers {
        let (ops, names) = w.join().expect("no worker panicked or deadlocked");
        total_ok += ops;
        alive.extend(names);
    }
    r.set_audit_file(None).unwrap();
    // The registry holds exactly what the log of successful operations says.
    let stress = r
        .discover(&CapabilityQuery::new().with_required_capabilities(["stress"]))
        .unwrap();
    let mut found: Vec<String> = stress.iter().map(|i| i.name().to_string()).collect();
    found.sort();
    alive.sort();
    assert_eq!(found, alive);
    assert_eq!(
        r.len(),
        ModuleRegistry::with_native_modules().len() + alive.len() + 4
    );
    let events = AuditLog::read_file(&path).unwrap();
    let mut ops = std::collections::BTreeMap::new();
    for e in &events {
        *ops.entry(e.operation.clone()).or_insert(0) += 1;
    }
    assert_eq!(events.len(), total_ok, "one line per operation: {ops:?}");
    assert!(events.iter().all(|e| e.outcome == Outcome::Ok));
    std::fs::remove_dir_all(&dir).unwrap();
}
