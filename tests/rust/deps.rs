//! Dependency resolution and building dependencies first.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use module_registry::{
    Error, Module, ModuleContext, ModuleKind, ModuleRegistry, PluginConfig, Value,
};

use crate::common::{config, recorded, Counters};

#[test]
fn dependencies_are_built_first_and_shut_down_last() {
    let counters = Arc::new(Counters::default());
    let r = ModuleRegistry::new();
    r.register(
        recorded("app", "1.0.0", &counters)
            .with_dependency("db", "^1")
            .with_dependency("log", "*"),
    )
    .unwrap();
    r.register(recorded("db", "1.0.0", &counters).with_dependency("log", "^2"))
        .unwrap();
    r.register(recorded("db", "1.4.0", &counters).with_dependency("log", "^2"))
        .unwrap();
    r.register(recorded("db", "2.0.0", &counters)).unwrap();
    r.register(recorded("log", "2.1.0", &counters)).unwrap();
    r.register(recorded("log", "1.0.0", &counters)).unwrap();

    let resolution = r.resolve(ModuleKind::Module, "app", None).unwrap();
    assert_eq!(resolution.labels(), ["log@2.1.0", "db@1.4.0", "app@1.0.0"]);
    assert_eq!(resolution.root().name(), "app");

    let app = r.create("app").unwrap();
    assert_eq!(*counters.init_order.lock(), ["log", "db", "app"]);
    assert_eq!(app.dependencies().len(), 2);
    // `log` is shared by app and db: one instance.
    assert_eq!(counters.inits.load(Ordering::SeqCst), 3);
    app.close().unwrap();
    assert_eq!(*counters.shutdown_order.lock(), ["app", "db", "log"]);
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 3);
}

struct UsesDep {
    dep: parking_lot::Mutex<Option<Arc<module_registry::ModuleInstance>>>,
}

impl Module for UsesDep {
    fn init(&self, ctx: &ModuleContext) -> std::result::Result<(), module_registry::BoxError> {
        *self.dep.lock() = ctx.dependency("upper").cloned();
        Ok(())
    }
    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        let dep = self.dep.lock().clone().expect("dependency given in init");
        let upper = dep.process(input)?;
        Ok(Value::Str(format!(
            "<{}>",
            upper.as_str().unwrap_or_default()
        )))
    }
}

#[test]
fn a_module_uses_its_dependency_through_the_context() {
    let r = ModuleRegistry::new();
    r.register(
        config("upper", "1.0.0", &[])
            .with_handler(|v| Ok(Value::Str(v.as_str().unwrap_or("").to_uppercase()))),
    )
    .unwrap();
    r.register(
        config("wrap", "1.0.0", &[])
            .with_dependency("upper", "^1")
            .with_factory(|_| {
                Ok(Box::new(UsesDep {
                    dep: Default::default(),
                }) as Box<dyn Module>)
            }),
    )
    .unwrap();
    assert_eq!(
        r.create("wrap").unwrap().process("hi").unwrap(),
        Value::from("<HI>")
    );
}

#[test]
fn missing_dependencies_name_the_chain() {
    let r = ModuleRegistry::new();
    r.register(config("a", "1.0.0", &[]).with_dependency("b", "^1"))
        .unwrap();
    r.register(config("b", "1.2.0", &[]).with_dependency("c", ">=2"))
        .unwrap();
    r.register(config("c", "1.0.0", &[])).unwrap();
    let err = r.create("a").unwrap_err();
    match &err {
        Error::MissingDependency {
            dependency,
            chain,
            available,
            ..
        } => {
            assert_eq!(dependency, "c");
            assert_eq!(chain, &["a@1.0.0", "b@1.2.0"]);
            assert_eq!(available, &["1.0.0"]);
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(err.report().contains("a@1.0.0 -> b@1.2.0"), "{err}");

    r.register(config("x", "1.0.0", &[]).with_dependency("ghost", "*"))
        .unwrap();
    let err = r.create("x").unwrap_err();
    assert!(
        matches!(&err, Error::MissingDependency { available, .. } if available.is_empty()),
        "{err}"
    );
    assert!(err.report().contains("no module of that name"), "{err}");
}

#[test]
fn conflicts_backtrack_then_report_both_chains() {
    let r = ModuleRegistry::new();
    r.register(
        config("app", "1.0.0", &[])
            .with_dependency("lib", "^1")
            .with_dependency("tool", "*"),
    )
    .unwrap();
    r.register(config("lib", "1.0.0", &[])).unwrap();
    r.register(config("lib", "2.0.0", &[])).unwrap();
    r.register(config("tool", "2.0.0", &[]).with_dependency("lib", "^2"))
        .unwrap();
    r.register(config("tool", "1.0.0", &[]).with_dependency("lib", "^1"))
        .unwrap();
    // tool 2.0.0 needs lib ^2, which conflicts: the resolver falls back to tool 1.0.0.
    let resolution = r.resolve(ModuleKind::Module, "app", None).unwrap();
    assert_eq!(
        resolution.labels(),
        ["lib@1.0.0", "tool@1.0.0", "app@1.0.0"]
    );

    r.unregister("tool", "1.0.0").unwrap();
    let err = r.resolve(ModuleKind::Module, "app", None).unwrap_err();
    match &err {
        Error::VersionConflict {
            dependency,
            requirements,
        } => {
            assert_eq!(dependency, "lib");
            assert_eq!(requirements.len(), 2);
            assert!(
                requirements[0].contains("^1") && requirements[0].contains("app@1.0.0"),
                "{err}"
            );
            assert!(
                requirements[1].contains("^2")
                    && requirements[1].contains("app@1.0.0 -> tool@2.0.0"),
                "{err}"
            );
        }
        other => panic!("wrong error: {other}"),
    }
}

#[test]
fn cycles_are_detected_with_their_path() {
    let r = ModuleRegistry::new();
    r.register(
        config("a", "1.0.0", &[])
            .with_dependency("b", "*")
            .with_handler(Ok),
    )
    .unwrap();
    r.register(config("b", "1.0.0", &[]).with_dependency("c", "*"))
        .unwrap();
    r.register(config("c", "1.0.0", &[]).with_dependency("a", "*"))
        .unwrap();
    let err = r.create("a").unwrap_err();
    match &err {
        Error::DependencyCycle { cycle } => {
            assert_eq!(cycle, &["a@1.0.0", "b@1.0.0", "c@1.0.0", "a@1.0.0"])
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(err
        .to_string()
        .contains("a@1.0.0 -> b@1.0.0 -> c@1.0.0 -> a@1.0.0"));
}

#[test]
fn a_failing_dependency_closes_what_was_built() {
    let counters = Arc::new(Counters::default());
    let r = ModuleRegistry::new();
    r.register(recorded("base", "1.0.0", &counters)).unwrap();
    r.register(
        config("broken", "1.0.0", &[])
            .with_dependency("base", "*")
            .with_factory(|_| Err(Error::invalid_input("cannot build").into())),
    )
    .unwrap();
    r.register(recorded("top", "1.0.0", &counters).with_dependency("broken", "*"))
        .unwrap();
    let err = r.create("top").unwrap_err();
    assert!(
        matches!(&err, Error::ModuleFailed { module, operation: "factory", .. } if module == "broken"),
        "{err}"
    );
    assert_eq!(counters.inits.load(Ordering::SeqCst), 1);
    assert_eq!(
        counters.shutdowns.load(Ordering::SeqCst),
        1,
        "base was shut down"
    );
}

#[test]
fn plugins_may_depend_on_modules() {
    let r = ModuleRegistry::new();
    r.register(config("core-lib", "1.0.0", &[]).with_handler(Ok))
        .unwrap();
    r.register_plugin(
        PluginConfig::new()
            .with_name("ext")
            .with_version("1.0.0")
            .with_dependency("core-lib", "^1")
            .with_handler(Ok),
    )
    .unwrap();
    let ext = r.create_plugin("ext").unwrap();
    assert_eq!(ext.dependencies()[0].name(), "core-lib");
}

#[test]
fn a_wide_tree_resolves() {
    // 50 modules: m0 depends on m1..m7, each mi on m(i+1)..m(i+3), versions 1.0.0 and 1.1.0.
    let r = ModuleRegistry::new();
    for i in 0..50 {
        for v in ["1.0.0", "1.1.0"] {
            let mut cfg = config(&format!("m{i}"), v, &[]).with_handler(Ok);
            for j in (i + 1)..(i + 4).min(50) {
                cfg = cfg.with_dependency(format!("m{j}"), "^1");
            }
            r.register(cfg).unwrap();
        }
    }
    let res = r.resolve(ModuleKind::Module, "m0", None).unwrap();
    assert_eq!(res.len(), 50);
    assert!(res
        .modules()
        .iter()
        .all(|m| m.version().to_string() == "1.1.0"));
    // Build order respects every edge.
    for (i, _) in res.modules().iter().enumerate() {
        for (_, j) in res.dependencies_of(i) {
            assert!(*j < i);
        }
    }
    let inst = r.create("m0").unwrap();
    assert_eq!(inst.dependencies().len(), 49);
}

mod properties {
    use module_registry::{Error, ModuleConfig, ModuleKind, ModuleRegistry};
    use proptest::prelude::*;

    const REQS: [&str; 4] = ["^1", "^2", "*", ">=1.5"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Whatever the graph, a resolution picks one version per module,
        /// satisfies every requirement, and orders dependencies first; a
        /// failure is one of the dependency errors.
        #[test]
        fn resolutions_satisfy_every_requirement(
            graph in prop::collection::btree_map(0..7usize, prop::collection::btree_map(0..7usize, 0..4usize, 0..3), 0..7)
        ) {
            let registry = ModuleRegistry::new();
            for (node, deps) in &graph {
                for version in ["1.0.0", "1.5.0", "2.0.0"] {
                    let mut config = ModuleConfig::new().with_name(format!("n{node}")).with_version(version);
                    for (dep, req) in deps {
                        if dep != node {
                            config = config.with_dependency(format!("n{dep}"), REQS[*req]);
                        }
                    }
                    registry.register(config).unwrap();
                }
            }
            for node in graph.keys() {
                match registry.resolve(ModuleKind::Module, &format!("n{node}"), None) {
                    Ok(resolution) => {
                        let modules = resolution.modules();
                        prop_assert_eq!(modules.last().unwrap().name(), format!("n{node}"));
                        let mut names: Vec<&str> = modules.iter().map(|m| m.name()).collect();
                        names.sort_unstable();
                        names.dedup();
                        prop_assert_eq!(names.len(), modules.len(), "one version per module");
                        for (i, module) in modules.iter().enumerate() {
                            for (dep, req) in module.dependency_requirements() {
                                let j = modules.iter().position(|m| m.name() == dep).expect("dependency resolved");
                                prop_assert!(j < i, "dependencies come first");
                                prop_assert!(req.matches(modules[j].version()), "{}@{} does not satisfy {}", dep, modules[j].version(), req);
                            }
                        }
                    }
                    Err(Error::MissingDependency { .. } | Error::VersionConflict { .. } | Error::DependencyCycle { .. }) => {}
                    Err(other) => prop_assert!(false, "unexpected error {}", other),
                }
            }
        }
    }
}
