//! Workflows type-checked before anything runs (issue 30, item 3) and
//! discovery by type (item 5).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use module_registry::{
    CapabilityQuery, Error, ErrorKind, FnModule, Module, ModuleConfig, ModuleRegistry, Schema,
    Value, Workflow, WorkflowStep,
};

fn t(text: &str) -> Schema {
    Schema::parse(text).unwrap()
}

/// A registry with `word-count: str -> int` and `slugify: str -> str`,
/// counting calls.
fn typed_registry(calls: &Arc<AtomicUsize>) -> ModuleRegistry {
    let registry = ModuleRegistry::new();
    let c = calls.clone();
    registry
        .register(
            ModuleConfig::new()
                .with_name("word-count")
                .with_version("1.0.0")
                .with_input(t("str"))
                .with_output(t("int"))
                .add_capabilities(["count"])
                .with_handler(move |v| {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(Value::from(
                        v.as_str().unwrap_or("").split_whitespace().count() as i64,
                    ))
                }),
        )
        .unwrap();
    let c = calls.clone();
    registry
        .register(
            ModuleConfig::new()
                .with_name("slugify")
                .with_version("1.0.0")
                .with_input(t("str"))
                .with_output(t("str"))
                .add_capabilities(["slug"])
                .with_handler(move |v| {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(Value::from(v.as_str().unwrap_or("").to_lowercase()))
                }),
        )
        .unwrap();
    registry
}

#[test]
fn a_mistyped_edge_is_refused_before_any_step_runs() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = typed_registry(&calls);
    let wf = Workflow::new("posts")
        .step(WorkflowStep::module("count", "word-count"))
        .step(WorkflowStep::module("slug", "slugify"));
    let err = registry.check_workflow(&wf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkflowType);
    assert_eq!(
        err.to_string(),
        "workflow \"posts\": step \"slug\" (slugify@1.0.0) takes str, but step \"count\" (word-count@1.0.0) gives int"
    );
    match &err {
        Error::WorkflowType(e) => {
            assert_eq!(
                (e.step.as_str(), e.module.as_str()),
                ("slug", "slugify@1.0.0")
            );
            assert_eq!(e.producer.as_deref(), Some("count"));
            assert_eq!(
                (e.path.as_str(), e.expected.as_str(), e.found.as_str()),
                ("$", "str", "int")
            );
        }
        other => panic!("not a type error: {other:?}"),
    }
    // A batch is refused whole: no input runs.
    let inputs: Vec<Value> = (0..100).map(|i| Value::from(format!("a b {i}"))).collect();
    let err = registry
        .run_workflow_each(&wf, inputs, true, |_, _| {})
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkflowType);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn a_correct_workflow_runs_unchanged() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = typed_registry(&calls);
    let wf = Workflow::new("posts")
        .with_input(t("str"))
        .step(WorkflowStep::module("slug", "slugify"))
        .step(WorkflowStep::module("count", "word-count"));
    registry.check_workflow(&wf).unwrap();
    let out = registry.run_workflow(&wf, "Hello Typed World").unwrap();
    assert_eq!(out.output, Value::from(3));
}

#[test]
fn the_workflow_input_type_is_checked() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = typed_registry(&calls);
    let wf = Workflow::new("w")
        .with_input(t("int"))
        .step(WorkflowStep::module("slug", "slugify").after_input());
    let err = registry.check_workflow(&wf).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("step \"slug\" (slugify@1.0.0) takes str, but the workflow input is int"),
        "{err}"
    );
    // The file form carries it.
    let text = wf.to_toml().unwrap();
    assert!(text.contains("input = \"int\""), "{text}");
    assert_eq!(Workflow::from_toml(&text).unwrap(), wf);
    assert!(Workflow::from_toml(
        "name = \"w\"\ninput = \"list[\"\n[[steps]]\nid = \"a\"\nmodule = \"x\"\n"
    )
    .is_err());
}

#[test]
fn fan_in_is_a_record_keyed_by_step_id_and_paths_are_named() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("join")
                .with_version("1.0.0")
                .with_input(t("{count: int, slug: int}"))
                .with_handler(Ok),
        )
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    for config in [
        typed_registry(&calls).get("word-count"),
        typed_registry(&calls).get("slugify"),
    ] {
        registry.register(config.unwrap().config().clone()).unwrap();
    }
    let wf = Workflow::new("w")
        .step(WorkflowStep::module("count", "word-count").after_input())
        .step(WorkflowStep::module("slug", "slugify").after_input())
        .step(WorkflowStep::module("j", "join").after(["count", "slug"]));
    let err = registry.check_workflow(&wf).unwrap_err();
    let Error::WorkflowType(e) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (e.path.as_str(), e.expected.as_str(), e.found.as_str()),
        ("$.slug", "int", "str")
    );
    assert_eq!(e.producer, None);
    assert!(
        err.to_string()
            .contains("but steps \"count\", \"slug\" give {count: int, slug: str}"),
        "{err}"
    );
}

#[test]
fn untyped_modules_and_any_pass() {
    let registry = ModuleRegistry::with_native_modules();
    registry
        .register(
            ModuleConfig::new()
                .with_name("loose")
                .with_version("1.0.0")
                .with_handler(Ok),
        )
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    registry
        .register(
            typed_registry(&calls)
                .get("slugify")
                .unwrap()
                .config()
                .clone(),
        )
        .unwrap();
    // int -> any -> str: `any` both ways.
    let wf = Workflow::new("w")
        .with_input(t("int"))
        .step(WorkflowStep::module("a", "loose"))
        .step(WorkflowStep::module("b", "slugify"));
    registry.check_workflow(&wf).unwrap();
}

#[test]
fn shipped_natives_are_typed_and_their_chains_still_check() {
    let registry = ModuleRegistry::with_native_modules();
    let sha = registry.get("sha256").unwrap();
    assert_eq!(sha.input().to_string(), "str | bytes");
    let ok = Workflow::pipeline(
        "pack",
        ["gzip-compress", "gzip-decompress", "text-decode", "sha256"],
    );
    registry.check_workflow(&ok).unwrap();
    let bad = Workflow::pipeline("bad", ["text-decode", "gzip-decompress"]);
    let err = registry.check_workflow(&bad).unwrap_err();
    assert!(
        err.to_string()
            .contains("takes bytes, but step \"text-decode\" (text-decode@1.0.0) gives str"),
        "{err}"
    );
}

#[test]
fn fallbacks_and_skips_count_where_the_output_goes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = typed_registry(&calls);
    registry
        .register(
            ModuleConfig::new()
                .with_name("bytes-out")
                .with_version("1.0.0")
                .with_output(t("bytes"))
                .with_handler(Ok),
        )
        .unwrap();
    // The fallback gives bytes where a str is taken.
    let wf = Workflow::new("w")
        .step(WorkflowStep::module("slug", "slugify").fallback("bytes-out"))
        .step(WorkflowStep::module("count", "word-count"));
    let err = registry.check_workflow(&wf).unwrap_err();
    assert!(err.to_string().contains("gives str | bytes"), "{err}");
    // With skip, the step may pass its input on: an int into a str taker.
    let wf = Workflow::new("w")
        .with_input(t("str"))
        .step(WorkflowStep::module("a", "slugify"))
        .step(WorkflowStep::module("b", "word-count").skip_on_error())
        .step(WorkflowStep::module("c", "slugify"));
    let err = registry.check_workflow(&wf).unwrap_err();
    assert!(
        err.to_string().contains("gives str | int") || err.to_string().contains("gives int | str"),
        "{err}"
    );
}

#[test]
fn configs_are_checked_against_the_config_type() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("threshold")
                .with_version("1.0.0")
                .with_config_type(t("{threshold: float}"))
                // A factory: the module is given its config (a handler is not).
                .with_factory(|_| Ok(Box::new(FnModule::new(Ok)) as Box<dyn Module>)),
        )
        .unwrap();
    let missing = Workflow::new("w").step(WorkflowStep::module("a", "threshold"));
    let err = registry.check_workflow(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkflowType);
    assert!(err.to_string().contains("no config is given"), "{err}");
    let wrong = Workflow::new("w").step(
        WorkflowStep::module("a", "threshold").config(Value::from_iter([("threshold", "high")])),
    );
    let err = registry.check_workflow(&wrong).unwrap_err();
    assert!(
        err.to_string()
            .contains("at $.threshold: expected float, found str"),
        "{err}"
    );
    let right = Workflow::new("w")
        .step(WorkflowStep::module("a", "threshold").config(Value::from_iter([("threshold", 1)])));
    registry.check_workflow(&right).unwrap();
}

#[test]
fn capabilities_choose_only_among_fitting_providers() {
    let registry = ModuleRegistry::new();
    for (version, input) in [("1.0.0", "str"), ("2.0.0", "bytes")] {
        registry
            .register(
                ModuleConfig::new()
                    .with_name("hasher")
                    .with_version(version)
                    .with_input(t(input))
                    .add_capabilities(["hash"])
                    .with_handler(move |_| Ok(Value::from(version))),
            )
            .unwrap();
    }
    let wf = Workflow::new("w")
        .with_input(t("str"))
        .step(WorkflowStep::capabilities("h", ["hash"]));
    let out = registry.run_workflow(&wf, "x").unwrap();
    assert_eq!(out.output, Value::from("1.0.0"));
    let none = Workflow::new("w")
        .with_input(t("int"))
        .step(WorkflowStep::capabilities("h", ["hash"]));
    let err = registry.check_workflow(&none).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WorkflowType);
    assert!(
        err.to_string()
            .contains("no provider of its capabilities takes it"),
        "{err}"
    );
}

#[test]
fn discovery_by_type() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = typed_registry(&calls);
    registry
        .register(
            ModuleConfig::new()
                .with_name("loose")
                .with_version("1.0.0")
                .with_handler(Ok),
        )
        .unwrap();
    let names = |q: CapabilityQuery| -> Vec<String> {
        registry
            .discover(&q)
            .unwrap()
            .iter()
            .map(|i| i.name().to_string())
            .collect()
    };
    // Taking a str: both typed ones and the untyped one (it takes anything).
    assert_eq!(
        names(CapabilityQuery::new().with_input(t("str"))),
        ["loose", "slugify", "word-count"]
    );
    // Giving something assignable to float: only word-count (an undeclared output does not count).
    assert_eq!(
        names(
            CapabilityQuery::new()
                .with_input(t("str"))
                .with_output(t("float"))
        ),
        ["word-count"]
    );
    assert_eq!(
        names(CapabilityQuery::new().with_output(t("int"))),
        ["word-count"]
    );
    assert!(names(
        CapabilityQuery::new()
            .with_input(t("bytes"))
            .with_output(t("str"))
    )
    .is_empty());
    // With capabilities, through their index.
    assert_eq!(
        names(
            CapabilityQuery::new()
                .with_required_capabilities(["slug"])
                .with_output(t("str"))
        ),
        ["slugify"]
    );
    // Unregistering keeps the type index in step.
    registry.unregister("word-count", "1.0.0").unwrap();
    assert!(names(CapabilityQuery::new().with_output(t("int"))).is_empty());
}

/// `liar: str -> int` that returns its input (a str).
fn liar_registry() -> ModuleRegistry {
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("liar")
                .with_version("1.0.0")
                .with_input(t("str"))
                .with_output(t("{tags: list[str]}"))
                .with_handler(|v| {
                    Ok(Value::from_iter([(
                        "tags",
                        Value::List(vec![Value::from("a"), Value::from("b"), v]),
                    )]))
                }),
        )
        .unwrap();
    registry
}

fn mismatch_of(
    err: &Error,
) -> (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    match err {
        Error::SchemaMismatch {
            path,
            expected,
            found,
            call: Some(call),
        } => (
            path.clone(),
            expected.clone(),
            found.clone(),
            Some(call.module.clone()),
            call.step.clone(),
            Some(call.role.clone()),
        ),
        Error::Workflow {
            source: Some(inner),
            ..
        } => mismatch_of(inner),
        other => panic!("no schema mismatch in {other:?}"),
    }
}

#[test]
fn validation_catches_a_lying_module() {
    use module_registry::Validation;
    let registry = liar_registry();
    let liar = registry.create("liar").unwrap();
    // Off (the default): nothing is checked.
    assert_eq!(registry.validation(), Validation::Off);
    liar.process(Value::from(7)).unwrap();
    // Inputs: the int given is refused before the module runs.
    registry.set_validation(Validation::Inputs).unwrap();
    let err = liar.process(Value::from(7)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SchemaMismatch);
    assert_eq!(
        err.to_string(),
        "module \"liar@1.0.0\": its input at $ does not fit: expected str, found int"
    );
    // What it returns is not checked yet.
    liar.process("fine").unwrap();
    // All: the output too, with the path inside it.
    registry.set_validation(Validation::All).unwrap();
    liar.process("fine").unwrap();
    let liar_ints = ModuleRegistry::new();
    liar_ints
        .register(
            registry
                .get("liar")
                .unwrap()
                .config()
                .clone()
                .with_input(t("any")),
        )
        .unwrap();
    liar_ints.set_validation(Validation::All).unwrap();
    let err = liar_ints
        .create("liar")
        .unwrap()
        .process(Value::from(3))
        .unwrap_err();
    assert_eq!(
        mismatch_of(&err),
        (
            "$.tags[2]".into(),
            "str".into(),
            "int".into(),
            Some("liar@1.0.0".into()),
            None,
            Some("output".into())
        )
    );
    assert!("sometimes".parse::<Validation>().is_err());
    registry.set_validation(Validation::Off).unwrap();
    liar.process(Value::from(7)).unwrap();
}

#[test]
fn a_step_with_validate_checks_its_values_and_names_itself() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("liar")
                .with_version("1.0.0")
                .with_output(t("int"))
                .with_handler(Ok),
        )
        .unwrap();
    let wf = Workflow::new("w").step(WorkflowStep::module("s", "liar").validate(true));
    assert_eq!(
        registry.run_workflow(&wf, 5).unwrap().output,
        Value::from(5)
    );
    let err = registry.run_workflow(&wf, "five").unwrap_err();
    let (path, expected, found, module, step, role) = mismatch_of(&err);
    assert_eq!(
        (path.as_str(), expected.as_str(), found.as_str()),
        ("$", "int", "str")
    );
    assert_eq!(module.as_deref(), Some("liar@1.0.0"));
    assert_eq!(step.as_deref(), Some("s"));
    assert_eq!(role.as_deref(), Some("output"));
    assert!(
        format!("{err:?}").contains("module \"liar@1.0.0\" (step \"s\"): its output at $"),
        "{err:?}"
    );
    // The file form carries it; without it, the step is unchecked.
    assert!(wf.to_toml().unwrap().contains("validate = true"));
    let unchecked = Workflow::new("w").step(WorkflowStep::module("s", "liar"));
    registry.run_workflow(&unchecked, "five").unwrap();
}

#[test]
fn scripts_declare_types_and_discover_by_type() {
    let registry = ModuleRegistry::new();
    registry
        .register_script(
            r#"
            const MODULE = #{ name: "typed", version: "1.0.0", input: "str", output: "list[str]", config_type: "{sep?: str} | null" };
            fn process(input) { input.split(" ") }
            "#,
        )
        .unwrap();
    let info = registry.get("typed").unwrap();
    assert_eq!(
        (
            info.input().to_string(),
            info.output().to_string(),
            info.config_type().to_string()
        ),
        (
            "str".into(),
            "list[str]".into(),
            "{sep?: str} | null".into()
        )
    );
    let err = registry
        .register_script(
            r#"const MODULE = #{ name: "bad", version: "1.0.0", input: "list[" }; fn process(input) { input }"#,
        )
        .unwrap_err();
    assert!(err.to_string().contains("MODULE.input"), "{err}");
    assert!(registry.get("bad").is_none());
    let found = registry
        .run_script(
            r#"
            let a = registry.discover(#{ input: "str", output: "list[str]" });
            let b = registry.discover(#{ output: "int" });
            [a.len(), a[0].name, a[0].output, b.len()]
            "#,
            (),
        )
        .unwrap();
    assert_eq!(
        found,
        Value::List(vec![
            Value::from(1),
            Value::from("typed"),
            Value::from("list[str]"),
            Value::from(0)
        ])
    );
    let err = registry
        .run_script(r#"registry.discover(#{ inputs: "str" })"#, ())
        .unwrap_err();
    assert!(err.to_string().contains("unknown key \"inputs\""), "{err}");
}

#[test]
fn the_rhai_workflow_builder_takes_an_input_type() {
    let registry = ModuleRegistry::with_native_modules();
    let err = registry
        .run_script(
            r#"
            let w = workflow("w");
            w.input = "int";
            w.step(#{ id: "d", "module": "text-decode" });
            registry.run_workflow(w, 5)
            "#,
            (),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("(text-decode@1.0.0) takes str | bytes, but the workflow input is int"),
        "{err}"
    );
}

#[test]
fn manifests_carry_the_validation_mode_and_leave_it_out_when_off() {
    use module_registry::Validation;
    let registry = ModuleRegistry::with_native_modules();
    let off = registry.export_manifest().unwrap();
    assert!(!off.contains("validation"), "{off}");
    registry.set_validation(Validation::Inputs).unwrap();
    let on = registry.export_manifest().unwrap();
    assert!(
        on.contains("\"validation\"") && on.contains("\"inputs\""),
        "{on}"
    );
    let rebuilt = ModuleRegistry::from_manifest(&on).unwrap();
    assert_eq!(rebuilt.validation(), Validation::Inputs);
    assert_eq!(
        ModuleRegistry::from_manifest(&off).unwrap().validation(),
        Validation::Off
    );
}

#[cfg(feature = "pictures")]
#[test]
fn a_typed_picture_labels_each_edge_with_its_type() {
    let calls = Arc::new(AtomicUsize::new(0));
    let registry = typed_registry(&calls);
    let wf = Workflow::new("posts")
        .with_input(t("str"))
        .step(WorkflowStep::module("slug", "slugify"))
        .step(WorkflowStep::module("count", "word-count"));
    let svg = wf.to_svg_typed(&registry).unwrap();
    let labels: Vec<&str> = svg
        .split("<text class=\"edge-type\"")
        .skip(1)
        .map(|s| {
            s.split("<title>")
                .nth(1)
                .unwrap()
                .split("</title>")
                .next()
                .unwrap()
        })
        .collect();
    // input -> slug (str), slug -> count (str), count -> output (int).
    assert_eq!(labels, ["str", "str", "int"]);
    assert!(!wf.to_svg().unwrap().contains("edge-type"));
    let wrong = Workflow::new("posts")
        .step(WorkflowStep::module("count", "word-count"))
        .step(WorkflowStep::module("slug", "slugify"));
    assert_eq!(
        wrong.to_svg_typed(&registry).unwrap_err().kind(),
        ErrorKind::WorkflowType
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}
