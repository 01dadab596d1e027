//! The crate as an embedder uses it: module code returns any error through
//! `?`, errors print each level once and lead to the module's own error,
//! factories get their dependencies, and `InstanceBuilder` shares them.

use std::num::ParseIntError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use module_registry::{
    BoxError, Error, FnModule, Module, ModuleConfig, ModuleContext, ModuleInstance, ModuleRegistry,
    Value,
};

/// Every level of `err`'s chain, as `anyhow` walks it.
fn chain(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut levels = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(e) = cause {
        levels.push(e.to_string());
        cause = e.source();
    }
    levels
}

fn parser(name: &str) -> ModuleConfig {
    ModuleConfig::new()
        .with_name(name)
        .with_handler(|input: Value| {
            let text: String = input.try_into()?;
            let n: i64 = text.trim().parse()?;
            Ok(Value::from(n * 2))
        })
}

#[test]
fn question_mark_takes_any_error_and_each_level_prints_once() {
    let registry = ModuleRegistry::new();
    registry.register(parser("parse")).unwrap();
    let instance = registry.create("parse").unwrap();
    assert_eq!(instance.process(" 21 ").unwrap(), Value::from(42i64));

    let err = instance.process("twenty").unwrap_err();
    assert_eq!(err.to_string(), "module parse@0.1.0 failed in process");
    let levels = chain(&err);
    assert_eq!(
        levels,
        [
            "module parse@0.1.0 failed in process",
            "invalid digit found in string"
        ]
    );
    assert_eq!(err.report(), levels.join(": "));
    // The module's own error, as it returned it, at the end of the chain.
    assert!(err.root_cause().downcast_ref::<ParseIntError>().is_some());
    assert_eq!(err.root_cause().code(), "external");

    // A value of the wrong kind fails at `try_into`, with the crate's own error.
    let err = instance.process(3i64).unwrap_err();
    assert!(
        matches!(err.root_cause(), Error::InvalidInput { .. }),
        "{err}"
    );
    assert!(
        err.report().contains("expected a string, found int"),
        "{err:?}"
    );
}

#[cfg(feature = "workflows")]
#[test]
fn a_workflow_error_leads_to_the_module_error_without_repeating_it() {
    let registry = ModuleRegistry::new();
    registry.register(parser("parse")).unwrap();
    let wf = module_registry::Workflow::new("w")
        .step(module_registry::WorkflowStep::module("p", "parse"));
    let err = registry.run_workflow(&wf, "x").unwrap_err();
    let levels = chain(&err);
    assert_eq!(levels.len(), 3, "{levels:?}");
    assert!(
        levels[0].starts_with("workflow \"w\", step \"p\""),
        "{levels:?}"
    );
    assert_eq!(levels[1], "module parse@0.1.0 failed in process");
    assert_eq!(levels[2], "invalid digit found in string");
    // No level repeats the text of the one below it.
    for pair in levels.windows(2) {
        assert!(!pair[0].contains(&pair[1]), "{levels:?}");
    }
    assert!(err.root_cause().downcast_ref::<ParseIntError>().is_some());
}

#[test]
fn io_and_panics_keep_one_level_each() {
    let registry = ModuleRegistry::new();
    registry
        .register(ModuleConfig::new().with_name("reader").with_handler(|_| {
            let text = std::fs::read_to_string("/nonexistent/module-registry/file")?;
            Ok(Value::from(text))
        }))
        .unwrap();
    let err = registry.create("reader").unwrap().process(()).unwrap_err();
    let own = err.root_cause().downcast_ref::<std::io::Error>().unwrap();
    assert_eq!(own.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(chain(&err).len(), 2, "{:?}", chain(&err));

    registry
        .register(
            ModuleConfig::new()
                .with_name("panics")
                .with_handler(|_| panic!("at the disco")),
        )
        .unwrap();
    let err = registry.create("panics").unwrap().process(()).unwrap_err();
    assert_eq!(
        err.report(),
        "module panics@0.1.0 failed in process: panic: at the disco"
    );
}

/// A module whose factory takes its dependency and a typed config.
struct Greeter {
    store: Arc<ModuleInstance>,
    greeting: String,
}

impl Module for Greeter {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let name: String = input.try_into()?;
        let count: i64 = self.store.process(name.clone())?.try_into()?;
        Ok(Value::from(format!("{}, {name} (#{count})", self.greeting)))
    }
}

#[derive(serde::Deserialize)]
struct GreeterConfig {
    greeting: String,
}

/// A `store` counting the names it sees, its shutdowns counted in `closed`.
fn store(built: &Arc<AtomicUsize>, closed: &Arc<AtomicUsize>) -> ModuleConfig {
    struct Store {
        seen: AtomicUsize,
        closed: Arc<AtomicUsize>,
    }
    impl Module for Store {
        fn process(&self, _: Value) -> Result<Value, BoxError> {
            Ok(Value::from(
                self.seen.fetch_add(1, Ordering::SeqCst) as i64 + 1,
            ))
        }
        fn shutdown(&self) -> Result<(), BoxError> {
            self.closed.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }
    let (built, closed) = (built.clone(), closed.clone());
    ModuleConfig::new()
        .with_name("store")
        .with_version("1.4.0")
        .with_factory(move |context: &ModuleContext| {
            if context.config().get("fail").is_some() {
                return Err("the store refuses this config".into());
            }
            built.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(Store {
                seen: AtomicUsize::new(0),
                closed: closed.clone(),
            }))
        })
}

fn greeter() -> ModuleConfig {
    ModuleConfig::new()
        .with_name("greeter")
        .with_version("1.2.0")
        .with_dependency("store", "^1")
        .with_factory(|context| {
            let config: GreeterConfig = module_registry::from_value(context.config().clone())?;
            Ok(Box::new(Greeter {
                store: context.require("store")?,
                greeting: config.greeting,
            }))
        })
}

#[test]
fn factories_get_their_config_and_dependencies() {
    let (built, closed) = (Arc::default(), Arc::default());
    let registry = ModuleRegistry::new();
    registry.register(store(&built, &closed)).unwrap();
    registry.register(greeter()).unwrap();
    let hello = registry
        .instance("greeter")
        .version("^1")
        .config(Value::from_iter([("greeting", "hello")]))
        .create()
        .unwrap();
    assert_eq!(
        hello.process("ada").unwrap(),
        Value::from("hello, ada (#1)")
    );
    assert_eq!(
        hello.process("bob").unwrap(),
        Value::from("hello, bob (#2)")
    );

    // A config the factory cannot read: a typed error naming the field, at create.
    let err = registry
        .instance("greeter")
        .config(Value::from_iter([("greting", "hello")]))
        .create()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ModuleFailed {
                operation: "factory",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.report().contains("greeting"), "{}", err.report());
    // The dependency built for it was closed again.
    assert_eq!(built.load(Ordering::SeqCst), 2);
    assert_eq!(closed.load(Ordering::SeqCst), 1);

    // Asking for a dependency the module did not declare names the ones it did.
    let registry2 = ModuleRegistry::new();
    registry2.register(store(&built, &closed)).unwrap();
    registry2
        .register(
            ModuleConfig::new()
                .with_name("nosy")
                .with_dependency("store", "^1")
                .with_factory(|context| {
                    context.require("secrets")?;
                    Ok(Box::new(FnModule::new(Ok)))
                }),
        )
        .unwrap();
    let err = registry2.create("nosy").unwrap_err();
    assert!(
        err.report()
            .contains("no dependency named \"secrets\" (declared: store)"),
        "{}",
        err.report()
    );
}

#[test]
fn dependency_configs_reach_the_dependency() {
    let (built, closed) = (Arc::default(), Arc::default());
    let registry = ModuleRegistry::new();
    registry.register(store(&built, &closed)).unwrap();
    registry.register(greeter()).unwrap();
    let err = registry
        .instance("greeter")
        .config(Value::from_iter([("greeting", "hi")]))
        .dependency_config("store", Value::from_iter([("fail", true)]))
        .create()
        .unwrap_err();
    assert!(
        err.report()
            .contains("store@1.4.0 failed in factory: the store refuses this config"),
        "{}",
        err.report()
    );
}

#[test]
fn shared_dependencies_are_built_once_and_outlive_each_dependent() {
    let (built, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let registry = ModuleRegistry::new();
    registry.register(store(&built, &closed)).unwrap();
    registry.register(greeter()).unwrap();
    let shared = || {
        registry
            .instance("greeter")
            .config(Value::from_iter([("greeting", "hi")]))
            .share_dependencies(true)
            .create()
            .unwrap()
    };
    let a = shared();
    let b = shared();
    assert_eq!(built.load(Ordering::SeqCst), 1, "one store for both");
    assert!(Arc::ptr_eq(&a.dependencies()[0], &b.dependencies()[0]));
    assert_eq!(a.process("ada").unwrap(), Value::from("hi, ada (#1)"));
    assert_eq!(b.process("bob").unwrap(), Value::from("hi, bob (#2)"));

    // Closing one dependent leaves the shared store serving the other.
    a.close().unwrap();
    assert_eq!(closed.load(Ordering::SeqCst), 0);
    assert_eq!(b.process("cy").unwrap(), Value::from("hi, cy (#3)"));

    // A create that does not share builds its own, closed with it.
    let own = registry
        .instance("greeter")
        .config(Value::from_iter([("greeting", "yo")]))
        .create()
        .unwrap();
    assert_eq!(built.load(Ordering::SeqCst), 2);
    own.close().unwrap();
    assert_eq!(closed.load(Ordering::SeqCst), 1);

    // The shared store shuts down once its last dependent is gone ...
    drop(a);
    drop(b);
    assert_eq!(closed.load(Ordering::SeqCst), 2);
    // ... and the next shared create builds a new one.
    let c = shared();
    assert_eq!(built.load(Ordering::SeqCst), 3);
    assert_eq!(c.process("di").unwrap(), Value::from("hi, di (#1)"));

    // A store re-registered in place is not the one shared before.
    registry.replace(store(&built, &closed)).unwrap();
    let d = shared();
    assert_eq!(built.load(Ordering::SeqCst), 4);
    assert!(!Arc::ptr_eq(&c.dependencies()[0], &d.dependencies()[0]));

    // A shared store someone closed is not handed out again.
    d.dependencies()[0].close().unwrap();
    let e = shared();
    assert_eq!(built.load(Ordering::SeqCst), 5);
    assert_eq!(e.process("eve").unwrap(), Value::from("hi, eve (#1)"));
}

#[test]
fn the_builder_checks_what_it_is_given() {
    let registry = ModuleRegistry::new();
    registry.register(parser("parse")).unwrap();
    let err = registry
        .instance("parse")
        .version("not a version")
        .create()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequirement { .. }), "{err}");
    let err = registry
        .instance("parse")
        .version("^2")
        .create()
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let err = registry.instance("parse").plugin().create().unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let events = registry.audit_events();
    let creates = events.iter().filter(|e| e.operation == "create").count();
    assert_eq!(creates, 3, "each refused create is audited");
}

#[test]
fn shared_creates_racing_on_many_threads_all_work_and_all_shut_down() {
    let (built, closed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let registry = ModuleRegistry::new();
    registry.register(store(&built, &closed)).unwrap();
    registry.register(greeter()).unwrap();
    let instances: Vec<ModuleInstance> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    (0..25)
                        .map(|_| {
                            let instance = registry
                                .instance("greeter")
                                .config(Value::from_iter([("greeting", "hi")]))
                                .share_dependencies(true)
                                .create()
                                .unwrap();
                            instance.process("x").unwrap();
                            instance
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(instances.len(), 200);
    // Racing creates may each build one store, never one per create.
    let stores = built.load(Ordering::SeqCst);
    assert!((1..=8).contains(&stores), "{stores} stores for 200 creates");
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "nothing closed while in use"
    );
    drop(instances);
    assert_eq!(
        closed.load(Ordering::SeqCst),
        stores,
        "every store shut down once"
    );
}

// ----- typed config (ModuleContext::config_as) -------------------------------

#[derive(serde::Deserialize, Default, Debug, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct GeoConfig {
    country: String,
    precision: u8,
    tags: Vec<String>,
}

fn geo_registry() -> ModuleRegistry {
    fn make(context: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
        let config: GeoConfig = context.config_as()?;
        Ok(Box::new(FnModule::new(move |_| {
            Ok(Value::from(format!(
                "{}/{}/{}",
                config.country,
                config.precision,
                config.tags.join("+")
            )))
        })))
    }
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("geo")
                .with_version("1.2.0")
                .with_factory(make),
        )
        .unwrap();
    registry
}

#[test]
fn config_as_takes_no_config_as_the_default_and_fills_a_partial_one() {
    let registry = geo_registry();
    assert_eq!(
        registry.create("geo").unwrap().process(()).unwrap(),
        Value::from("/0/")
    );
    let partial: Value = serde_json::json!({"country": "fr", "tags": ["a", "b"]}).into();
    let out = registry
        .instance("geo")
        .config(partial)
        .create()
        .unwrap()
        .process(())
        .unwrap();
    assert_eq!(out, Value::from("fr/0/a+b"));
}

#[test]
fn config_as_names_the_module_and_the_field_path() {
    let registry = geo_registry();
    let wrong: Value = serde_json::json!({"tags": ["a", 7]}).into();
    let err = registry.instance("geo").config(wrong).create().unwrap_err();
    let text = err.report();
    assert!(
        matches!(err.root_cause(), Error::InvalidConfig { .. }),
        "{err:?}"
    );
    assert!(text.contains("geo@1.2.0"), "{text}");
    assert!(text.contains("tags[1]"), "{text}");
    // Out of range for the field's type, and an unknown field.
    let big: Value = serde_json::json!({"precision": 300}).into();
    let text = registry
        .instance("geo")
        .config(big)
        .create()
        .unwrap_err()
        .report();
    assert!(text.contains("precision"), "{text}");
    let unknown: Value = serde_json::json!({"contry": "fr"}).into();
    let text = registry
        .instance("geo")
        .config(unknown)
        .create()
        .unwrap_err()
        .report();
    assert!(text.contains("contry"), "{text}");
    // A config that is not a map at all, and one with bytes (no JSON form).
    let text = registry
        .instance("geo")
        .config(Value::Int(3))
        .create()
        .unwrap_err()
        .report();
    assert!(
        text.contains("geo@1.2.0") && text.contains("does not fit"),
        "{text}"
    );
    let bytes: Value = [("country", Value::Bytes(vec![1]))].into_iter().collect();
    let text = registry
        .instance("geo")
        .config(bytes)
        .create()
        .unwrap_err()
        .report();
    assert!(text.contains("bytes"), "{text}");
}

#[test]
fn from_value_takes_a_reference_without_a_clone() {
    let value: Value = serde_json::json!({"country": "jp", "precision": 3}).into();
    let config: GeoConfig = module_registry::from_value(&value).unwrap();
    assert_eq!((config.country.as_str(), config.precision), ("jp", 3));
    // The value is still there to use.
    assert_eq!(value["country"], Value::from("jp"));
    let owned: GeoConfig = module_registry::from_value(value).unwrap();
    assert_eq!(owned.precision, 3);
}

// ----- only the program's own natives ----------------------------------------

fn host_echo(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::new(FnModule::new(Ok)))
}

module_registry::native_module!(module_registry::NativeModule::new(
    "test-host-echo",
    "1.0.0",
    host_echo
)
.with_capabilities(&["text"]));

#[test]
fn with_crate_native_modules_takes_only_the_named_crates() {
    // This test binary is the crate `integration`.
    let own = ModuleRegistry::with_crate_native_modules(&["integration"]);
    // Its natives: host-echo here, and the test-* ones other test modules declare.
    let names: Vec<String> = own.list().iter().map(|m| m.name().to_string()).collect();
    assert!(names.contains(&"test-host-echo".to_string()), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("test-")), "{names:?}");
    // A query for the host's "text" modules finds its own, not the built-in text-* ones.
    let query = module_registry::CapabilityQuery::new().with_required_capabilities(["text"]);
    let found: Vec<String> = own
        .discover(&query)
        .unwrap()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    assert!(found.contains(&"test-host-echo".to_string()), "{found:?}");
    assert!(found.iter().all(|n| !n.starts_with("text-")), "{found:?}");
    assert!(
        ModuleRegistry::with_native_modules()
            .discover(query)
            .unwrap()
            .len()
            > 1
    );

    let builtins = module_registry::native::builtin_native_modules();
    assert!(builtins.contains(&"sha256") && builtins.contains(&"identity"));
    assert!(!builtins.contains(&"test-host-echo"));
    let all = ModuleRegistry::with_native_modules();
    for name in &builtins {
        assert!(all.get(name).is_some(), "{name}");
        assert!(own.get(name).is_none(), "{name}");
    }
    assert!(all.get("test-host-echo").is_some());
    let both = ModuleRegistry::with_crate_native_modules(&["integration", "module_registry"]);
    assert_eq!(both.list().len(), all.list().len());
    assert!(
        ModuleRegistry::try_with_crate_native_modules(&["nothing_here"])
            .unwrap()
            .list()
            .is_empty()
    );
}

// ----- cancellation seen by module code ---------------------------------------

#[cfg(feature = "workflows")]
#[test]
fn a_timed_out_step_sees_its_call_cancelled() {
    use module_registry::{call_cancelled, Workflow, WorkflowStep};
    let (tx, rx) = crossbeam_channel::bounded(1);
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("slow")
                .with_handler(move |_| {
                    for _ in 0..30_000 {
                        if call_cancelled() {
                            tx.send("cancelled").ok();
                            return Ok(Value::Null);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    tx.send("never").ok();
                    Ok(Value::Null)
                }),
        )
        .unwrap();
    let workflow = Workflow::new("slow")
        .step(WorkflowStep::module("s", "slow").timeout(std::time::Duration::from_millis(50)));
    let err = registry.run_workflow(&workflow, ()).unwrap_err();
    assert!(
        matches!(err.root_cause(), Error::Timeout { .. }),
        "{}",
        err.report()
    );
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(30)),
        Ok("cancelled")
    );
    // Each call starts uncancelled; outside a call, nothing is cancelled.
    assert!(!call_cancelled());
}

#[test]
fn typed_modules_decode_inputs_and_name_what_did_not_fit() {
    #[derive(serde::Deserialize)]
    struct Line {
        text: String,
        #[serde(default)]
        repeat: u8,
    }
    #[derive(serde::Serialize)]
    struct Out {
        text: String,
        cancelled: bool,
    }
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("typed")
                .with_version("2.0.0")
                .typed(|line: Line, ctx: &ModuleContext| {
                    Ok(Out {
                        text: line.text.repeat(usize::from(line.repeat.max(1))),
                        cancelled: ctx.is_cancelled(),
                    })
                }),
        )
        .unwrap();
    let typed = registry.create("typed").unwrap();
    let out = typed
        .process(serde_json::json!({"text": "ab", "repeat": 2}))
        .unwrap();
    assert_eq!(out["text"], Value::from("abab"));
    assert_eq!(out["cancelled"], Value::Bool(false));
    let err = typed.process(serde_json::json!({"repeat": 2})).unwrap_err();
    let text = err.report();
    assert!(
        text.contains("typed@2.0.0") && text.contains("text"),
        "{text}"
    );
    let err = typed
        .process(serde_json::json!({"text": "a", "repeat": 999}))
        .unwrap_err();
    assert!(err.report().contains("repeat"), "{}", err.report());
    let err = typed.process(Value::Bytes(vec![1])).unwrap_err();
    assert!(err.report().contains("bytes"), "{}", err.report());
}

// ----- builders take what you have -------------------------------------------

#[cfg(feature = "workflows")]
#[test]
fn after_takes_owned_borrowed_and_iterated_ids_and_on_error_takes_the_enum() {
    use module_registry::{OnError, Workflow, WorkflowStep};
    let id = String::from("a");
    let ids = vec![String::from("a"), String::from("b")];
    let strs = vec!["a", "b"];
    let forms: Vec<WorkflowStep> = vec![
        WorkflowStep::module("c", "identity").after([id.clone()]),
        WorkflowStep::module("c", "identity").after([&id]),
        WorkflowStep::module("c", "identity").after(&id),
        WorkflowStep::module("c", "identity").after(id.as_str()),
        WorkflowStep::module("c", "identity").after(&ids[..1]),
        WorkflowStep::module("c", "identity").after(ids.iter().take(1).map(String::as_str)),
        WorkflowStep::module("c", "identity").after(strs.iter().take(1).copied().map(String::from)),
    ];
    for step in forms {
        assert_eq!(
            step.after.as_deref(),
            Some(&["a".to_string()][..]),
            "{step:?}"
        );
    }
    let both = [
        WorkflowStep::module("c", "identity").after(&ids),
        WorkflowStep::module("c", "identity").after(ids.clone()),
        WorkflowStep::module("c", "identity").after(ids.iter()),
        WorkflowStep::module("c", "identity").after(ids.iter().cloned()),
        WorkflowStep::module("c", "identity").after(ids.clone().into_iter()),
        WorkflowStep::module("c", "identity").after(&strs),
        WorkflowStep::module("c", "identity").after(strs.iter()),
        WorkflowStep::module("c", "identity").after(["a", "b"]),
        WorkflowStep::module("c", "identity").after(&["a", "b"]),
    ];
    for step in both {
        assert_eq!(step.after.unwrap(), ["a", "b"]);
    }
    assert_eq!(
        WorkflowStep::module("c", "identity").after([]).after,
        Some(vec![])
    );
    assert_eq!(
        WorkflowStep::module("c", "identity").after_input().after,
        Some(vec![])
    );

    // on_error(OnError) as the shortcuts set it; a fallback policy without a
    // fallback module is refused when checked.
    let registry = ModuleRegistry::with_native_modules();
    registry
        .register(
            ModuleConfig::new()
                .with_name("boom")
                .with_handler(|_| Err("boom".into())),
        )
        .unwrap();
    let skip = Workflow::new("s").step(WorkflowStep::module("x", "boom").on_error(OnError::Skip));
    assert_eq!(
        registry.run_workflow(&skip, 5).unwrap().output,
        Value::Int(5)
    );
    let no_fallback =
        Workflow::new("f").step(WorkflowStep::module("x", "boom").on_error(OnError::Fallback));
    assert!(registry.check_workflow(&no_fallback).is_err());
    let fallback = Workflow::new("f").step(
        WorkflowStep::module("x", "boom")
            .fallback("identity")
            .on_error(OnError::Fallback),
    );
    assert_eq!(
        registry.run_workflow(&fallback, 6).unwrap().output,
        Value::Int(6)
    );
}

#[test]
fn debug_prints_the_chain_and_the_alternate_form_keeps_the_structure() {
    let registry = ModuleRegistry::new();
    registry.register(parser("parse")).unwrap();
    let err = registry
        .create("parse")
        .unwrap()
        .process("twelve")
        .unwrap_err();
    // What `fn main() -> module_registry::Result<()>` prints after "Error: ".
    let debug = format!("{err:?}");
    assert_eq!(debug, err.report());
    assert_eq!(
        debug,
        "module parse@0.1.0 failed in process: invalid digit found in string"
    );
    let structure = format!("{err:#?}");
    assert!(
        structure.contains(r#"code: "module_failed""#),
        "{structure}"
    );
    assert!(structure.contains("source: Some("), "{structure}");
    assert!(structure.contains(r#"code: "external""#), "{structure}");
}
