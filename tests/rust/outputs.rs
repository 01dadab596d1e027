//! Every output of a run (`WorkflowResult::outputs`, `StepReport::output`)
//! and the configs a step gives its module's dependencies
//! (`WorkflowStep::dependency_config`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use module_registry::{
    CacheSettings, CacheStatus, ErrorKind, FnModule, ModuleConfig, ModuleRegistry, OnError,
    StepStatus, Value, Workflow, WorkflowStep,
};

fn registry() -> ModuleRegistry {
    let r = ModuleRegistry::with_native_modules();
    r.register(
        ModuleConfig::new()
            .with_name("fail")
            .with_handler(|_| Err("no".into())),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("text-upper")
            .with_handler(|v| Ok(Value::from(v.as_str().unwrap_or_default().to_uppercase()))),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("text-length")
            .with_handler(|v| {
                Ok(Value::from(
                    v.as_str().unwrap_or_default().chars().count() as i64
                ))
            }),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("double")
            .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) * 2))),
    )
    .unwrap();
    r
}

/// `db` answers with its config's `url`; `app` asks `db`, and counts how
/// often it runs.
fn with_dependency(calls: Arc<AtomicU32>) -> ModuleRegistry {
    let r = ModuleRegistry::new();
    r.register(
        ModuleConfig::new()
            .with_name("db")
            .with_version("1.0.0")
            .with_factory(|ctx| {
                let url = ctx.config().get("url").cloned().unwrap_or(Value::Null);
                Ok(Box::new(FnModule::new(move |_| Ok(url.clone()))))
            }),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("app")
            .with_version("1.0.0")
            .with_dependency("db", "^1")
            .with_factory(move |ctx| {
                let db = ctx.require("db")?;
                let calls = calls.clone();
                Ok(Box::new(FnModule::new(move |input| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let url = db.process(())?;
                    Ok(Value::from_iter([("input", input), ("url", url)]))
                })))
            }),
    )
    .unwrap();
    r
}

#[test]
fn every_step_of_a_fan_out_and_fan_in_gives_its_output_in_run_order() {
    let r = registry();
    let wf = Workflow::new("fan")
        .step(WorkflowStep::module("upper", "text-upper"))
        .step(WorkflowStep::module("len", "text-length").after_input())
        .step(WorkflowStep::module("join", "identity").after(["upper", "len"]));
    let result = r.run_workflow(&wf, "abc").unwrap();
    let outputs = result.outputs();
    let ids: Vec<&str> = outputs.iter().map(|(id, _)| *id).collect();
    // The join starts after both branches, whatever order they ran in.
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], "join");
    assert_eq!(
        result.step("upper").unwrap().output(),
        Some(&Value::from("ABC"))
    );
    assert_eq!(result.step("len").unwrap().output(), Some(&Value::from(3)));
    let join = Value::from_iter([("upper", Value::from("ABC")), ("len", Value::from(3))]);
    assert_eq!(result.step("join").unwrap().output(), Some(&join));
    assert_eq!(result.output, join);
    // Starts are in order.
    let starts: Vec<_> = ids
        .iter()
        .map(|id| result.step(id).unwrap().start)
        .collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{starts:?}");
}

#[test]
fn a_chain_keeps_each_steps_own_output_untouched_by_later_steps() {
    let r = registry();
    let mut wf = Workflow::new("chain");
    for i in 0..50 {
        wf = wf.step(WorkflowStep::module(format!("d{i}"), "double"));
    }
    let result = r.run_workflow(&wf, 1i64).unwrap();
    let outputs = result.outputs();
    assert_eq!(outputs.len(), 50);
    for (i, (id, v)) in outputs.iter().enumerate() {
        assert_eq!(*id, format!("d{i}"));
        assert_eq!(**v, Value::Int(2i64 << i));
    }
    assert_eq!(result.output, Value::Int(2i64 << 49));
}

#[test]
fn a_skipped_step_has_no_output_and_a_fallback_gives_the_fallbacks() {
    let r = registry();
    let wf = Workflow::new("policies")
        .step(WorkflowStep::module("skip", "fail").on_error(OnError::Skip))
        .step(
            WorkflowStep::module("fb", "fail")
                .fallback("text-upper")
                .after_input(),
        )
        .step(WorkflowStep::module("end", "identity").after(["skip", "fb"]));
    let result = r.run_workflow(&wf, "x").unwrap();
    let skip = result.step("skip").unwrap();
    assert_eq!(skip.status, StepStatus::Skipped);
    assert_eq!(skip.output(), None);
    let fb = result.step("fb").unwrap();
    assert_eq!(fb.status, StepStatus::Fallback);
    assert_eq!(fb.output(), Some(&Value::from("X")));
    let ids: Vec<&str> = result.outputs().iter().map(|(id, _)| *id).collect();
    assert!(!ids.contains(&"skip"), "{ids:?}");
    assert_eq!(ids.len(), 2);
    // The skipped step still handed its input on.
    assert_eq!(result.output.get("skip"), Some(&Value::from("x")));
}

#[test]
fn a_cache_hit_gives_the_cached_output() {
    let r = registry();
    r.set_cache(CacheSettings::default()).unwrap();
    let wf = Workflow::new("cached").step(WorkflowStep::module("up", "text-upper").cache(true));
    let _ = r.run_workflow(&wf, "abc").unwrap();
    let hit = r.run_workflow(&wf, "abc").unwrap();
    let step = hit.step("up").unwrap();
    assert_eq!(step.cache, CacheStatus::Hit);
    assert_eq!(step.output(), Some(&Value::from("ABC")));
    assert_eq!(hit.outputs(), vec![("up", &Value::from("ABC"))]);
}

#[test]
fn a_step_gives_its_modules_dependency_a_config() {
    let calls = Arc::new(AtomicU32::new(0));
    let r = with_dependency(calls.clone());
    let wf = Workflow::new("deps").step(
        WorkflowStep::module("app", "app")
            .dependency_config("db", Value::from_iter([("url", "sqlite://a.db")])),
    );
    let out = r.run_workflow(&wf, 1i64).unwrap().output;
    assert_eq!(out.get("url"), Some(&Value::from("sqlite://a.db")));
    // Without it the dependency gets Null, as before.
    let plain = Workflow::new("plain").step(WorkflowStep::module("app", "app"));
    let out = r.run_workflow(&plain, 1i64).unwrap().output;
    assert_eq!(out.get("url"), Some(&Value::Null));
    // On a pool too.
    let pooled = Workflow::new("pooled").step(
        WorkflowStep::module("app", "app")
            .pool(2)
            .dependency_config("db", Value::from_iter([("url", "pg://b")])),
    );
    let results = r
        .run_workflow_batch(&pooled, vec![Value::Int(1), Value::Int(2)])
        .unwrap();
    for result in results {
        assert_eq!(result.output.get("url"), Some(&Value::from("pg://b")));
    }
}

#[test]
fn a_dependency_config_for_no_dependency_is_refused_before_any_step_runs() {
    let calls = Arc::new(AtomicU32::new(0));
    let r = with_dependency(calls.clone());
    let wf = Workflow::new("typo")
        .step(WorkflowStep::module("first", "app"))
        .step(WorkflowStep::module("second", "app").dependency_config("dbb", Value::Null));
    let err = r.run_workflow(&wf, 1i64).unwrap_err();
    let report = err.report();
    assert!(report.contains("\"dbb\""), "{report}");
    assert!(
        report.contains("not one of its dependencies (db)"),
        "{report}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no step ran");
    // A module without dependencies takes none either; the same rule for a
    // single create.
    let err = r
        .instance("db")
        .dependency_config("x", Value::Null)
        .create()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.report().contains("it has none"), "{}", err.report());
}

#[test]
fn the_cache_key_covers_the_dependencies_configs() {
    let calls = Arc::new(AtomicU32::new(0));
    let r = with_dependency(calls.clone());
    r.set_cache(CacheSettings::default()).unwrap();
    let wf = |url: &str| {
        Workflow::new("c").step(
            WorkflowStep::module("app", "app")
                .cache(true)
                .dependency_config("db", Value::from_iter([("url", url)])),
        )
    };
    let a = r.run_workflow(&wf("a"), 1i64).unwrap();
    let b = r.run_workflow(&wf("b"), 1i64).unwrap();
    assert_eq!(b.step("app").unwrap().cache, CacheStatus::Miss);
    assert_eq!(b.output.get("url"), Some(&Value::from("b")));
    let again = r.run_workflow(&wf("a"), 1i64).unwrap();
    assert_eq!(again.step("app").unwrap().cache, CacheStatus::Hit);
    assert_eq!(again.output, a.output);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn dependency_configs_travel_in_the_file_forms() {
    let wf = Workflow::new("files").step(
        WorkflowStep::module("app", "app")
            .dependency_config("db", Value::from_iter([("url", "sqlite://x")])),
    );
    let toml = wf.to_toml().unwrap();
    assert!(toml.contains("dependency_configs"), "{toml}");
    assert_eq!(Workflow::from_toml(&toml).unwrap(), wf);
    assert_eq!(Workflow::from_json(&wf.to_json().unwrap()).unwrap(), wf);
    let toml = r#"
        name = "from-file"
        [[steps]]
        id = "app"
        module = "app"
        dependency_configs = { db = { url = "mysql://y" } }
    "#;
    let wf = Workflow::from_toml(toml).unwrap();
    let r = with_dependency(Arc::new(AtomicU32::new(0)));
    let out = r.run_workflow(&wf, 1i64).unwrap().output;
    assert_eq!(out.get("url"), Some(&Value::from("mysql://y")));
}

#[cfg(feature = "scripts")]
#[test]
fn scripts_see_every_output_and_give_dependency_configs() {
    let r = with_dependency(Arc::new(AtomicU32::new(0)));
    let script = r#"
        let wf = workflow("s");
        wf.step(#{ id: "app", "module": "app", dependency_configs: #{ db: #{ url: "s://z" } } });
        wf.step(#{ id: "again", "module": "app", after: [] });
        let run = registry.run_workflow(wf, 5);
        [run.outputs.app.url, run.steps[0].output.url, run.outputs.again.url, run.outputs.len()]
    "#;
    let out = r.run_script(script, ()).unwrap();
    assert_eq!(
        out,
        Value::List(vec![
            Value::from("s://z"),
            Value::from("s://z"),
            Value::Null,
            Value::Int(2)
        ])
    );
}
