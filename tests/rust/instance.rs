//! Creating instances, their lifecycle, and failure isolation.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use module_registry::{
    Error, InstanceState, Module, ModuleConfig, ModuleKind, ModuleRegistry, Value,
};

use crate::common::{config, recorded, Counters};

#[test]
fn seed_create_and_process_bytes() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            config("data-processor", "1.0.0", &["processing"]).with_handler(|v| match v {
                Value::Bytes(b) => Ok(Value::Int(b.len() as i64)),
                other => Err(Error::invalid_input(format!(
                    "expected bytes, got {}",
                    other.type_name()
                ))
                .into()),
            }),
        )
        .unwrap();
    let instance = registry.create("data-processor").unwrap();
    let result = instance.process(b"input data").unwrap();
    assert_eq!(result, Value::Int(10));
}

#[test]
fn lifecycle_states_and_exactly_once_shutdown() {
    let counters = Arc::new(Counters::default());
    let registry = ModuleRegistry::new();
    registry
        .register(recorded("m", "1.0.0", &counters))
        .unwrap();
    let instance = registry.create("m").unwrap();
    assert_eq!(instance.state(), InstanceState::Initialized);
    assert_eq!(
        instance.process(1i64).unwrap(),
        Value::List(vec!["m".into(), 1i64.into()])
    );
    assert_eq!(instance.state(), InstanceState::Running);
    instance.close().unwrap();
    instance.close().unwrap();
    assert_eq!(instance.state(), InstanceState::Stopped);
    assert!(matches!(
        instance.process(1i64),
        Err(Error::InstanceClosed { .. })
    ));
    drop(instance);
    assert_eq!(counters.inits.load(Ordering::SeqCst), 1);
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 1);

    // Dropping without close shuts down once too.
    let instance = registry.create("m").unwrap();
    drop(instance);
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 2);
}

#[test]
fn create_picks_versions_and_reports_missing_ones() {
    let registry = ModuleRegistry::new();
    for v in ["1.0.0", "1.5.0", "2.0.0"] {
        let tag = v.to_string();
        registry
            .register(config("m", v, &[]).with_handler(move |_| Ok(Value::Str(tag.clone()))))
            .unwrap();
    }
    assert_eq!(
        registry.create("m").unwrap().process(()).unwrap(),
        Value::from("2.0.0")
    );
    assert_eq!(
        registry
            .create_version("m", "^1")
            .unwrap()
            .process(())
            .unwrap(),
        Value::from("1.5.0")
    );
    assert_eq!(
        registry
            .create_version("m", "<1.5")
            .unwrap()
            .version()
            .to_string(),
        "1.0.0"
    );
    let err = registry.create_version("m", "^3").unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { requirement: Some(r), .. } if r == "^3"),
        "{err}"
    );
    assert!(
        err.report().contains("^3") && err.report().contains("2.0.0, 1.5.0, 1.0.0"),
        "{err}"
    );
    assert!(matches!(
        registry.create_version("m", "bogus"),
        Err(Error::InvalidRequirement { .. })
    ));
    assert!(matches!(
        registry.create("nope"),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        registry.create_plugin("m"),
        Err(Error::NotFound {
            kind: ModuleKind::Plugin,
            ..
        })
    ));
}

#[test]
fn declarations_without_implementation_cannot_be_created() {
    let registry = ModuleRegistry::new();
    registry
        .register(config("record", "1.0.0", &["svc"]))
        .unwrap();
    let err = registry.create("record").unwrap_err();
    assert!(matches!(err, Error::NoImplementation { .. }), "{err}");
    assert!(err.report().contains("record@1.0.0"));
}

struct Panicky;
impl Module for Panicky {
    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        if input == Value::from("boom") {
            panic!("module exploded");
        }
        Ok(input)
    }
}

#[test]
fn a_panic_fails_the_call_not_the_registry() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            config("panicky", "1.0.0", &[])
                .with_factory(|_| Ok(Box::new(Panicky) as Box<dyn Module>)),
        )
        .unwrap();
    let instance = registry.create("panicky").unwrap();
    let err = instance.process("boom").unwrap_err();
    match &err {
        Error::ModuleFailed {
            module,
            operation,
            source,
            ..
        } => {
            assert_eq!(module, "panicky");
            assert_eq!(*operation, "process");
            assert!(
                matches!(**source, Error::Panic { ref message } if message == "module exploded")
            );
        }
        other => panic!("wrong error {other}"),
    }
    // The instance and the registry keep working.
    assert_eq!(instance.process("fine").unwrap(), Value::from("fine"));
    assert_eq!(registry.len(), 1);
    assert!(registry.create("panicky").is_ok());

    registry
        .register(config("bad-factory", "1.0.0", &[]).with_factory(|_| panic!("factory exploded")))
        .unwrap();
    let err = registry.create("bad-factory").unwrap_err();
    assert!(matches!(err.root_cause(), Error::Panic { .. }), "{err}");
}

struct FailingInit;
impl Module for FailingInit {
    fn init(
        &self,
        ctx: &module_registry::ModuleContext,
    ) -> std::result::Result<(), module_registry::BoxError> {
        Err(Error::invalid_input(format!("bad config {:?}", ctx.config())).into())
    }
    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        Ok(input)
    }
    fn shutdown(&self) -> std::result::Result<(), module_registry::BoxError> {
        panic!("shutdown must not run after a failed init");
    }
}

#[test]
fn a_failing_init_fails_create() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            config("f", "1.0.0", &[])
                .with_factory(|_| Ok(Box::new(FailingInit) as Box<dyn Module>)),
        )
        .unwrap();
    let err = registry
        .create_with(ModuleKind::Module, "f", None, Value::from("cfg"))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::ModuleFailed {
                operation: "init",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.report().contains("bad config"), "{err}");
}

#[test]
fn per_instance_config_reaches_init() {
    struct Prefix(parking_lot::Mutex<String>);
    impl Module for Prefix {
        fn init(
            &self,
            ctx: &module_registry::ModuleContext,
        ) -> std::result::Result<(), module_registry::BoxError> {
            *self.0.lock() = ctx
                .config()
                .get("prefix")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Ok(())
        }
        fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
            Ok(Value::Str(format!(
                "{}{}",
                self.0.lock(),
                input.as_str().unwrap_or("")
            )))
        }
    }
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("prefix")
                .with_factory(|_| Ok(Box::new(Prefix(Default::default())) as Box<dyn Module>)),
        )
        .unwrap();
    let cfg: Value = [("prefix", ">> ")].into_iter().collect();
    let inst = registry
        .create_with(ModuleKind::Module, "prefix", None, cfg)
        .unwrap();
    assert_eq!(inst.process("x").unwrap(), Value::from(">> x"));
}

#[test]
fn opaque_values_pass_through_uncopied() {
    let registry = ModuleRegistry::with_native_modules();
    let handle = module_registry::Opaque::new(vec![1u8; 1024]);
    let out = registry
        .create("identity")
        .unwrap()
        .process(Value::Opaque(handle.clone()))
        .unwrap();
    match out {
        Value::Opaque(o) => assert!(o.ptr_eq(&handle)),
        other => panic!("{other:?}"),
    }
}
#[cfg(all(feature = "scripts", feature = "workflows"))]
#[test]
fn failures_stay_inside_their_call_or_step() {
    struct Panics;
    impl Module for Panics {
        fn process(&self, _: Value) -> std::result::Result<Value, module_registry::BoxError> {
            panic!("native module panicked")
        }
    }
    use module_registry::{Workflow, WorkflowStep};

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
