//! Sharing one registry between threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use module_registry::{CapabilityQuery, Module, ModuleRegistry, Value};

use crate::common::config;

fn assert_send_sync<T: Send + Sync + Clone>() {}

#[test]
fn the_registry_is_send_sync_and_clones_share_state() {
    assert_send_sync::<ModuleRegistry>();
    let a = ModuleRegistry::new();
    let b = a.clone();
    a.register(config("m", "1.0.0", &[])).unwrap();
    assert_eq!(b.len(), 1);
}

#[test]
fn discover_and_create_while_others_register() {
    let registry = ModuleRegistry::with_native_modules();
    let done = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let r = registry.clone();
            thread::spawn(move || {
                for i in 0..300 {
                    let name = format!("w{w}-m{i}");
                    r.register(
                        config(
                            &name,
                            "1.0.0",
                            &["bulk", if i % 2 == 0 { "even" } else { "odd" }],
                        )
                        .with_handler(Ok),
                    )
                    .unwrap();
                    if i % 3 == 0 {
                        r.unregister(&name, "1.0.0").unwrap();
                    }
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let r = registry.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut rounds = 0;
                while !done.load(Ordering::Relaxed) || rounds < 10 {
                    let found = r
                        .discover(
                            &CapabilityQuery::new().with_required_capabilities(["bulk", "even"]),
                        )
                        .unwrap();
                    // Always sorted and consistent.
                    assert!(found.windows(2).all(|w| w[0].name() < w[1].name()));
                    assert!(found.iter().all(|i| i.has_capability("even")));
                    let inst = r.create("identity").unwrap();
                    assert_eq!(inst.process(rounds).unwrap(), Value::Int(rounds as i64));
                    rounds += 1;
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    // 2 writers x 300, a third of them removed again, plus the native modules.
    let bulk = registry
        .discover(&CapabilityQuery::new().with_required_capabilities(["bulk"]))
        .unwrap();
    assert_eq!(bulk.len(), 2 * 200);
}

struct CallsBack {
    registry: ModuleRegistry,
}

impl Module for CallsBack {
    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        // No registry lock is held while module code runs: this must not deadlock.
        self.registry
            .register(config("made-inside", "1.0.0", &[]).with_handler(Ok))?;
        let n = self.registry.discover(&CapabilityQuery::new())?.len();
        let echoed = self.registry.create("made-inside")?.process(input)?;
        Ok(Value::List(vec![Value::Int(n as i64), echoed]))
    }
}

#[test]
fn modules_may_call_back_into_the_registry() {
    let registry = ModuleRegistry::new();
    let inner = registry.clone();
    registry
        .register(config("caller", "1.0.0", &[]).with_factory(move |_| {
            Ok(Box::new(CallsBack {
                registry: inner.clone(),
            }) as Box<dyn Module>)
        }))
        .unwrap();
    let out = registry.create("caller").unwrap().process("x").unwrap();
    assert_eq!(out, Value::List(vec![Value::Int(2), Value::from("x")]));
}

#[test]
fn one_instance_processes_from_many_threads() {
    let registry = ModuleRegistry::with_native_modules();
    let inst = Arc::new(registry.create("sha256").unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let inst = inst.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let out = inst.process(format!("{t}-{i}")).unwrap();
                    assert_eq!(out.as_str().unwrap().len(), 64);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
#[cfg(feature = "scripts")]
#[test]
fn concurrent_stress_leaves_a_consistent_registry_and_log() {
    use module_registry::{AuditLog, ModuleConfig, Outcome};
    use std::time::{Duration, Instant};

    use crate::common::temp;

    let dir = temp("stress");
    let path = dir.join("audit.jsonl");
    let r = ModuleRegistry::builder()
        .native_modules()
        .audit_capacity(0)
        .build()
        .unwrap();
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
