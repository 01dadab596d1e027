//! Workflows: definition, checks, execution, policies, files and pictures.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use module_registry::{
    Error, Module, ModuleConfig, ModuleRegistry, StepStatus, Value, Workflow, WorkflowStep,
};

fn registry() -> ModuleRegistry {
    let r = ModuleRegistry::with_native_modules();
    let add = |name: &str, n: i64| {
        ModuleConfig::new()
            .with_name(name)
            .add_capability("math")
            .with_handler(move |v| Ok(Value::Int(v.as_int().unwrap_or(0) + n)))
    };
    r.register(add("add-one", 1)).unwrap();
    r.register(add("add-ten", 10).with_version("2.0.0"))
        .unwrap();
    r.register(ModuleConfig::new().with_name("sum").with_handler(|v| {
        Ok(Value::Int(
            v.as_map()
                .map_or(0, |m| m.values().filter_map(Value::as_int).sum()),
        ))
    }))
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("boom")
            .with_handler(|_| Err(Error::invalid_input("always fails").into())),
    )
    .unwrap();
    r
}

#[test]
fn a_chain_runs_in_order_and_reports_each_step() {
    let r = registry();
    let wf = Workflow::new("chain")
        .step(WorkflowStep::module("a", "add-one"))
        .step(WorkflowStep::module("b", "add-ten"))
        .step(WorkflowStep::module("c", "add-one"));
    let result = r.run_workflow(&wf, 0i64).unwrap();
    assert_eq!(result.output, Value::Int(12));
    let ids: Vec<&str> = result.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let b = result.step("b").unwrap();
    assert_eq!(
        (b.module.as_str(), b.version.as_str(), b.status, b.attempts),
        ("add-ten", "2.0.0", StepStatus::Ok, 1)
    );
    assert!(result.steps[2].start >= result.steps[0].start);
    assert!(result.duration >= result.steps.iter().map(|s| s.duration).max().unwrap());
}

#[test]
fn inputs_fan_out_and_fan_in() {
    let r = registry();
    let wf = Workflow::new("diamond")
        .step(WorkflowStep::module("one", "add-one"))
        .step(WorkflowStep::module("ten", "add-ten").after([]))
        .step(WorkflowStep::module("both", "sum").after(["one", "ten"]))
        .step(WorkflowStep::module("again", "add-one").after(["one"]));
    let result = r
        .run_workflow(&wf.clone().with_output("both"), 5i64)
        .unwrap();
    assert_eq!(result.output, Value::Int(6 + 15));
    // By default both final steps ("both" and "again") are the output.
    let out = r.run_workflow(&wf, 5i64).unwrap().output;
    assert_eq!(out.get("both"), Some(&Value::Int(21)));
    assert_eq!(out.get("again"), Some(&Value::Int(7)));
}

#[test]
fn capability_steps_pick_the_highest_version() {
    let r = registry();
    let wf = Workflow::new("caps").step(WorkflowStep::capabilities("m", ["math"]));
    let result = r.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(result.steps[0].module, "add-ten");
    assert_eq!(result.output, Value::Int(11));
    let pinned =
        Workflow::new("caps").step(WorkflowStep::capabilities("m", ["math"]).version("^0.1"));
    assert_eq!(
        r.run_workflow(&pinned, 1i64).unwrap().steps[0].module,
        "add-one"
    );
}

#[test]
fn independent_branches_run_in_parallel() {
    // Each branch waits until the other has started: sequential execution would time out.
    let r = ModuleRegistry::new();
    let (tx_a, rx_a) = crossbeam_channel::bounded::<()>(1);
    let (tx_b, rx_b) = crossbeam_channel::bounded::<()>(1);
    let meet = |tx: crossbeam_channel::Sender<()>, rx: crossbeam_channel::Receiver<()>| {
        move |v: Value| {
            tx.send(()).unwrap();
            rx.recv_timeout(Duration::from_secs(10))
                .map_err(|_| Error::invalid_input("the other branch never started"))?;
            Ok(v)
        }
    };
    r.register(
        ModuleConfig::new()
            .with_name("left")
            .with_handler(meet(tx_a, rx_b)),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("right")
            .with_handler(meet(tx_b, rx_a)),
    )
    .unwrap();
    r.register(ModuleConfig::new().with_name("join").with_handler(Ok))
        .unwrap();
    let wf = Workflow::new("parallel")
        .step(WorkflowStep::module("l", "left").after([]))
        .step(WorkflowStep::module("r", "right").after([]))
        .step(WorkflowStep::module("j", "join").after(["l", "r"]));
    let result = r.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(
        result.output,
        [("l", 1i64), ("r", 1i64)].into_iter().collect::<Value>()
    );
    assert!(module_registry::workflow::worker_threads() >= 4);
}

#[test]
fn retries_allow_n_plus_one_attempts() {
    let r = ModuleRegistry::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    r.register(
        ModuleConfig::new()
            .with_name("flaky")
            .with_handler(move |v| {
                if c.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Error::invalid_input("not yet").into())
                } else {
                    Ok(v)
                }
            }),
    )
    .unwrap();
    let wf = Workflow::new("retry").step(WorkflowStep::module("f", "flaky").retries(2));
    let result = r.run_workflow(&wf, "x").unwrap();
    assert_eq!(result.steps[0].attempts, 3);
    assert!(result.steps[0]
        .error
        .as_deref()
        .unwrap()
        .contains("not yet"));
    calls.store(0, Ordering::SeqCst);
    let short = Workflow::new("retry").step(WorkflowStep::module("f", "flaky").retries(1));
    let err = r.run_workflow(&short, "x").unwrap_err();
    assert!(err.report().contains("after 2 attempts"), "{err}");
}

#[test]
fn a_timeout_fails_the_step_at_its_deadline() {
    let r = ModuleRegistry::new();
    r.register(ModuleConfig::new().with_name("slow").with_handler(|v| {
        std::thread::sleep(Duration::from_secs(3));
        Ok(v)
    }))
    .unwrap();
    let wf = Workflow::new("deadline")
        .step(WorkflowStep::module("s", "slow").timeout(std::time::Duration::from_millis(100)));
    let start = Instant::now();
    let err = r.run_workflow(&wf, 1i64).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the run did not wait for the module"
    );
    assert!(
        matches!(&err, Error::Workflow { step: Some(s), .. } if s == "s"),
        "{err}"
    );
    assert!(err.report().contains("timed out after 100 ms"), "{err}");
    // A timed-out step can still be skipped.
    let skip = Workflow::new("deadline").step(
        WorkflowStep::module("s", "slow")
            .timeout(std::time::Duration::from_millis(50))
            .skip_on_error(),
    );
    let result = r.run_workflow(&skip, 7i64).unwrap();
    assert_eq!(result.output, Value::Int(7));
    assert_eq!(result.steps[0].status, StepStatus::Skipped);
}

#[test]
fn error_policies() {
    let r = registry();
    // fail: the error names the step and keeps the module's error.
    let wf = Workflow::new("policies")
        .step(WorkflowStep::module("first", "add-one"))
        .step(WorkflowStep::module("bad", "boom"))
        .step(WorkflowStep::module("last", "add-one"));
    let err = r.run_workflow(&wf, 1i64).unwrap_err();
    match &err {
        Error::Workflow {
            workflow,
            step,
            source,
            ..
        } => {
            assert_eq!(workflow, "policies");
            assert_eq!(step.as_deref(), Some("bad"));
            let source = source.as_deref().unwrap();
            assert!(matches!(source, Error::ModuleFailed { module, .. } if module == "boom"));
            assert!(matches!(source.root_cause(), Error::InvalidInput { .. }));
        }
        other => panic!("{other}"),
    }
    // skip: the step's input passes through.
    let wf = Workflow::new("policies")
        .step(WorkflowStep::module("first", "add-one"))
        .step(WorkflowStep::module("bad", "boom").skip_on_error())
        .step(WorkflowStep::module("last", "add-one"));
    let result = r.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(result.output, Value::Int(3));
    assert_eq!(result.step("bad").unwrap().status, StepStatus::Skipped);
    assert!(result
        .step("bad")
        .unwrap()
        .error
        .as_deref()
        .unwrap()
        .contains("always fails"));
    // fallback: another module runs on the same input.
    let wf = Workflow::new("policies")
        .step(WorkflowStep::module("first", "add-one"))
        .step(WorkflowStep::module("bad", "boom").fallback("add-ten"));
    let result = r.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(result.output, Value::Int(12));
    let bad = result.step("bad").unwrap();
    assert_eq!(
        (bad.status, bad.module.as_str()),
        (StepStatus::Fallback, "add-ten")
    );
    // A failing fallback fails the step.
    let wf = Workflow::new("policies").step(WorkflowStep::module("bad", "boom").fallback("boom"));
    assert!(r.run_workflow(&wf, 1i64).is_err());
}

#[test]
fn invalid_workflows_are_rejected_before_any_step_runs() {
    let r = registry();
    let ran = Arc::new(AtomicU32::new(0));
    let c = ran.clone();
    r.register(
        ModuleConfig::new()
            .with_name("counted")
            .with_handler(move |v| {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(v)
            }),
    )
    .unwrap();
    r.register(ModuleConfig::new().with_name("declared-only"))
        .unwrap();
    let first = || WorkflowStep::module("first", "counted");
    let cases: Vec<(Workflow, &str, Option<&str>)> = vec![
        (Workflow::new("w"), "at least one step", None),
        (
            Workflow::new("w")
                .step(first())
                .step(WorkflowStep::module("first", "counted")),
            "used twice",
            Some("first"),
        ),
        (
            Workflow::new("w")
                .step(first())
                .step(WorkflowStep::module("x", "counted").after(["nope"])),
            "unknown step \"nope\"",
            Some("x"),
        ),
        (
            Workflow::new("w")
                .step(first())
                .step(WorkflowStep::module("x", "ghost")),
            "no module named \"ghost\"",
            Some("x"),
        ),
        (
            Workflow::new("w")
                .step(first())
                .step(WorkflowStep::module("x", "counted").version("^9")),
            "^9",
            Some("x"),
        ),
        (
            Workflow::new("w")
                .step(first())
                .step(WorkflowStep::capabilities("x", ["no-such-cap"])),
            "no module",
            Some("x"),
        ),
        (
            Workflow::new("w")
                .step(first())
                .step(WorkflowStep::module("x", "declared-only")),
            "without an implementation",
            Some("x"),
        ),
        (
            Workflow::new("w")
                .step(first().after(["second"]))
                .step(WorkflowStep::module("second", "counted").after(["first"])),
            "cycle",
            Some("first"),
        ),
        (
            Workflow::new("w").step(first()).with_output("zzz"),
            "output names an unknown step",
            None,
        ),
        (
            Workflow::new("w").step(WorkflowStep {
                fallback: Some("x".into()),
                ..first()
            }),
            "on_error is not",
            Some("first"),
        ),
        (
            Workflow::new("w").step(WorkflowStep {
                on_error: module_registry::OnError::Fallback,
                ..first()
            }),
            "needs a fallback",
            Some("first"),
        ),
        (
            Workflow::new("w").step(first().fallback("ghost")),
            "fallback module",
            Some("first"),
        ),
        (
            Workflow::new("w").step(WorkflowStep {
                id: "Bad Id".into(),
                ..first()
            }),
            "step id",
            Some("Bad Id"),
        ),
        (
            Workflow::new("w").step(WorkflowStep {
                id: "x".into(),
                ..Default::default()
            }),
            "give a module",
            Some("x"),
        ),
    ];
    for (wf, expected, step) in cases {
        let err = r.run_workflow(&wf, 1i64).unwrap_err();
        match &err {
            Error::Workflow { step: s, .. } => assert_eq!(s.as_deref(), step, "{err}"),
            other => panic!("expected a workflow error, got {other}"),
        }
        assert!(
            err.report().contains(expected),
            "{expected:?} not in: {err}"
        );
        assert!(r.check_workflow(&wf).is_err());
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0, "no step ran");
}

#[test]
fn files_round_trip_and_match_the_builder() {
    let toml_text = r#"
name = "report"
output = "digest"

[[steps]]
id = "decode"
module = "text-decode"

[[steps]]
id = "digest"
module = "sha256"
version = "^1"
after = ["decode"]
retries = 1
timeout_ms = 1000
config = { output = "hex" }

[[steps]]
id = "count"
capabilities = ["math"]
after = []
on_error = "fallback"
fallback = "identity"
"#;
    let from_toml = Workflow::from_toml(toml_text).unwrap();
    let built = Workflow::new("report")
        .with_output("digest")
        .step(WorkflowStep::module("decode", "text-decode"))
        .step(
            WorkflowStep::module("digest", "sha256")
                .version("^1")
                .after(["decode"])
                .retries(1)
                .timeout(std::time::Duration::from_millis(1000))
                .config([("output", "hex")].into_iter().collect::<Value>()),
        )
        .step(
            WorkflowStep::capabilities("count", ["math"])
                .after([])
                .fallback("identity"),
        );
    assert_eq!(from_toml, built);
    assert_eq!(
        Workflow::from_json(&built.to_json().unwrap()).unwrap(),
        built
    );
    assert_eq!(
        Workflow::from_toml(&built.to_toml().unwrap()).unwrap(),
        built
    );

    let dir = std::env::temp_dir().join(format!("mr-wf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["w.toml", "w.json"] {
        built.save(dir.join(file)).unwrap();
        assert_eq!(Workflow::load(dir.join(file)).unwrap(), built);
    }
    assert!(std::fs::read_to_string(dir.join("w.json"))
        .unwrap()
        .trim_start()
        .starts_with('{'));
    std::fs::write(
        dir.join("bad.toml"),
        "name = \"x\"\n[[steps]]\nid = \"a\"\nmodule = \"m\"\ncolour = 1\n",
    )
    .unwrap();
    let err = Workflow::load(dir.join("bad.toml")).unwrap_err();
    assert!(
        err.report().contains("bad.toml") && err.report().contains("colour"),
        "{err}"
    );
    assert!(matches!(
        Workflow::load(dir.join("missing.toml")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();

    let r = registry();
    let result = r.run_workflow(&from_toml, b"abc").unwrap();
    assert_eq!(
        result.output,
        Value::from("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
}

#[test]
fn the_rhai_form_equals_the_rust_form_and_runs() {
    let r = registry();
    let json = r
        .run_script(
            r#"
            let wf = workflow("report");
            wf.step(#{ id: "decode", "module": "text-decode" });
            wf.step(#{ id: "digest", "module": "sha256", after: ["decode"], retries: 1 });
            wf.output = "digest";
            wf.to_json()
            "#,
            (),
        )
        .unwrap();
    let from_rhai = Workflow::from_json(json.as_str().unwrap()).unwrap();
    let built = Workflow::new("report")
        .with_output("digest")
        .step(WorkflowStep::module("decode", "text-decode"))
        .step(
            WorkflowStep::module("digest", "sha256")
                .after(["decode"])
                .retries(1),
        );
    assert_eq!(from_rhai, built);
    let out = r
        .run_script(
            r#"
            let wf = workflow("inc");
            wf.step(#{ id: "a", "module": "add-one" });
            wf.step(#{ id: "b", "module": "add-ten" });
            registry.run_workflow(wf, input)
            "#,
            1i64,
        )
        .unwrap();
    assert_eq!(out.get("output"), Some(&Value::Int(12)));
    let steps = out.get("steps").unwrap().as_list().unwrap();
    assert_eq!(steps[1].get("module"), Some(&Value::from("add-ten")));
    assert_eq!(steps[1].get("status"), Some(&Value::from("ok")));
    let err = r
        .run_script(
            r#"let wf = workflow("w"); wf.step(#{ id: "a", colour: 1 }); wf"#,
            (),
        )
        .unwrap_err();
    assert!(err.report().contains("colour"), "{err}");
}

#[test]
fn a_workflow_mixes_native_script_and_rust_modules() {
    let r = registry();
    r.register_script(r#"const MODULE = #{ name: "shout" }; fn process(x) { x.to_upper() + "!" }"#)
        .unwrap();
    let wf = r.pipeline([
        "text-decode",
        "shout",
        "text-encode",
        "base64-encode",
        "add-nothing",
    ]);
    assert!(
        r.run_workflow(&wf, b"hi").is_err(),
        "add-nothing does not exist"
    );
    r.register(
        ModuleConfig::new()
            .with_name("add-nothing")
            .with_handler(Ok),
    )
    .unwrap();
    assert_eq!(
        r.run_workflow(&wf, b"hi").unwrap().output,
        Value::from("SEkh")
    );
    let twice = r.pipeline(["add-one", "add-one"]);
    assert_eq!(twice.steps[1].id, "add-one-2");
    assert_eq!(r.run_workflow(&twice, 0i64).unwrap().output, Value::Int(2));
}

#[test]
fn batches_reuse_instances_and_keep_input_order() {
    let r = registry();
    let before = r
        .audit_events()
        .iter()
        .filter(|e| e.operation == "create")
        .count();
    let wf = r.pipeline(["add-one", "add-ten"]);
    let mut seen = Vec::new();
    let results = r
        .run_workflow_batch_with_progress(&wf, (0..20i64).map(Value::Int), |done, total| {
            seen.push((done, total))
        })
        .unwrap();
    let outputs: Vec<Value> = results.iter().map(|r| r.output.clone()).collect();
    assert_eq!(
        outputs,
        (0..20i64).map(|i| Value::Int(i + 11)).collect::<Vec<_>>()
    );
    assert_eq!(seen.len(), 20);
    assert_eq!(seen.last(), Some(&(20, 20)));
    let created = r
        .audit_events()
        .iter()
        .filter(|e| e.operation == "create")
        .count()
        - before;
    assert_eq!(created, 2, "one instance per step for the whole batch");
    let err = r
        .run_workflow_batch(&r.pipeline(["boom"]), [1i64, 2])
        .unwrap_err();
    assert!(err.report().contains("input #0"), "{err}");
}

#[test]
fn pictures_show_every_step_and_edge() {
    let wf = Workflow::new("diamond")
        .step(WorkflowStep::module("one", "add-one"))
        .step(WorkflowStep::module("ten", "add-ten").after([]).retries(2))
        .step(
            WorkflowStep::module("both", "sum")
                .after(["one", "ten"])
                .fallback("identity"),
        );
    let mermaid = wf.to_mermaid().unwrap();
    assert!(mermaid.starts_with("flowchart LR"));
    for edge in [
        "wf_in --> one",
        "wf_in --> ten",
        "one --> both",
        "ten --> both",
        "both --> wf_out",
    ] {
        assert!(mermaid.contains(edge), "{edge} missing in\n{mermaid}");
    }
    assert!(mermaid.contains("retries: 2") && mermaid.contains("fallback: identity"));
    let dot = wf.to_dot().unwrap();
    assert!(dot.starts_with("digraph \"diamond\""));
    assert!(dot.contains("\"one\" -> \"both\";") && dot.contains("\"both\" -> \"(output)\";"));
    let svg = wf.to_svg().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"));
    for id in ["one", "ten", "both", "input", "output"] {
        assert!(svg.contains(id), "{id} missing from the SVG");
    }
    assert!(Workflow::new("empty").to_dot().is_err());
}

#[test]
fn orchestration_can_be_switched_off() {
    let r = registry();
    r.set_workflow_orchestration(false).unwrap();
    let err = r.run_workflow(&r.pipeline(["add-one"]), 1i64).unwrap_err();
    assert!(matches!(err, Error::FeatureDisabled { .. }));
    assert!(matches!(
        r.run_script("1", ()),
        Err(Error::FeatureDisabled { .. })
    ));
}

#[test]
fn a_stop_request_is_not_retried_skipped_or_replaced() {
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the user pressed Ctrl-C")
        }
    }
    impl std::error::Error for Stop {}

    let r = registry();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    r.register(
        ModuleConfig::new()
            .with_name("stops")
            .with_handler(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                Err(Error::interrupted(Stop).into())
            }),
    )
    .unwrap();
    for step in [
        WorkflowStep::module("s", "stops").retries(3),
        WorkflowStep::module("s", "stops")
            .retries(2)
            .skip_on_error(),
        WorkflowStep::module("s", "stops").fallback("add-one"),
    ] {
        calls.store(0, Ordering::SeqCst);
        let err = r
            .run_workflow(&Workflow::new("w").step(step), 1i64)
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one attempt, no retry");
        assert!(err.interruption().is_some(), "{err}");
        assert_eq!(err.code(), "workflow");
    }
    // An ordinary failure is still retried and skipped.
    let failures = Arc::new(AtomicU32::new(0));
    let f = failures.clone();
    r.register(
        ModuleConfig::new()
            .with_name("fails")
            .with_handler(move |_| {
                f.fetch_add(1, Ordering::SeqCst);
                Err(Error::invalid_input("no").into())
            }),
    )
    .unwrap();
    let wf = Workflow::new("w").step(
        WorkflowStep::module("f", "fails")
            .retries(2)
            .skip_on_error(),
    );
    let result = r.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(failures.load(Ordering::SeqCst), 3);
    assert_eq!(result.steps[0].status, StepStatus::Skipped);
}

/// A workflow of `width` parallel branches of `module`, joined.
fn fan_out(name: &str, width: usize, module: &str) -> Workflow {
    let mut wf = Workflow::new(name);
    for b in 0..width {
        wf = wf.step(WorkflowStep::module(format!("b{b}"), module).after([]));
    }
    let all: Vec<String> = (0..width).map(|b| format!("b{b}")).collect();
    wf.step(WorkflowStep::module("join", "identity").after(all))
}

#[test]
fn nested_parallel_workflows_do_not_starve_the_pool() {
    // Twice as many outer branches as pool threads, each running an inner
    // parallel workflow: every pool thread ends up waiting on inner
    // branches queued behind it. Waiting runs queued work, so it finishes.
    let registry = ModuleRegistry::with_native_modules();
    let inner_registry = registry.clone();
    let inner = fan_out("inner", 3, "identity");
    registry
        .register(
            ModuleConfig::new()
                .with_name("nests")
                .with_handler(move |input| Ok(inner_registry.run_workflow(&inner, input)?.output)),
        )
        .unwrap();
    let outer = fan_out(
        "outer",
        2 * module_registry::workflow::worker_threads(),
        "nests",
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            registry
                .run_workflow(&outer, Value::Int(7))
                .map(|r| r.steps.len()),
        );
    });
    let steps = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("nested parallel workflows finish (no pool starvation)")
        .unwrap();
    assert_eq!(steps, 2 * module_registry::workflow::worker_threads() + 1);
}

/// Blocks in `process` until released; records whether `shutdown` ever ran
/// while a call was in flight.
struct Stuck {
    release: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>,
    in_call: Arc<AtomicBool>,
    shutdown_during_call: Arc<AtomicBool>,
    shut_down: Arc<AtomicBool>,
}

impl Module for Stuck {
    fn process(&self, input: Value) -> Result<Value, module_registry::BoxError> {
        self.in_call.store(true, Ordering::SeqCst);
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(30));
        self.in_call.store(false, Ordering::SeqCst);
        Ok(input)
    }

    fn shutdown(&self) -> Result<(), module_registry::BoxError> {
        if self.in_call.load(Ordering::SeqCst) {
            self.shutdown_during_call.store(true, Ordering::SeqCst);
        }
        self.shut_down.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_timed_out_call_is_never_shut_down_under() {
    let registry = ModuleRegistry::with_native_modules();
    let (release, rx) = std::sync::mpsc::channel();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    let flags: [Arc<AtomicBool>; 3] = Default::default();
    let [in_call, during, shut_down] = flags.clone();
    registry
        .register(
            ModuleConfig::new()
                .with_name("stuck")
                .with_factory(move |_| {
                    Ok(Box::new(Stuck {
                        release: rx.clone(),
                        in_call: in_call.clone(),
                        shutdown_during_call: during.clone(),
                        shut_down: shut_down.clone(),
                    }) as Box<dyn Module>)
                }),
        )
        .unwrap();
    let wf = Workflow::new("t")
        .step(WorkflowStep::module("s", "stuck").timeout(std::time::Duration::from_millis(100)));
    let err = registry.run_workflow(&wf, Value::Int(1)).unwrap_err();
    assert!(err.report().contains("timed out"), "{err}");
    // The run is over and its instances closed, but the abandoned call still
    // runs: its shutdown waits for it.
    assert!(
        flags[0].load(Ordering::SeqCst),
        "the call is still in flight"
    );
    assert!(
        !flags[2].load(Ordering::SeqCst),
        "no shutdown under a running call"
    );
    release.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !flags[2].load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        flags[2].load(Ordering::SeqCst),
        "shut down once the call ended"
    );
    assert!(!flags[1].load(Ordering::SeqCst));
}

#[test]
fn a_run_is_not_held_up_by_another_runs_blocked_steps() {
    // Run A fills every pool thread (and queues more) with steps blocked
    // until released; run B, parallel, one branch timed, finishes meanwhile:
    // it runs its own queued branch itself and its timed branch starts at
    // once, and it never takes up A's work.
    let registry = ModuleRegistry::with_native_modules();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let gate = Arc::new(std::sync::Mutex::new(gate));
    let waiting = Arc::new(AtomicU32::new(0));
    let (g, w) = (gate.clone(), waiting.clone());
    registry
        .register(
            ModuleConfig::new()
                .with_name("blocked")
                .with_handler(move |v| {
                    w.fetch_add(1, Ordering::SeqCst);
                    let _ = g.lock().unwrap().recv_timeout(Duration::from_secs(60));
                    Ok(v)
                }),
        )
        .unwrap();
    let width = 2 * module_registry::workflow::worker_threads();
    let a = fan_out("a", width, "blocked");
    let a_registry = registry.clone();
    let a_run = std::thread::spawn(move || a_registry.run_workflow(&a, Value::Int(1)).is_ok());
    let deadline = Instant::now() + Duration::from_secs(30);
    while waiting.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let b = Workflow::new("b")
        .step(WorkflowStep::module("x", "identity").after([]))
        .step(
            WorkflowStep::module("y", "identity")
                .after([])
                .timeout(std::time::Duration::from_millis(5_000)),
        )
        .step(WorkflowStep::module("z", "identity").after(["x", "y"]));
    let (tx, rx) = std::sync::mpsc::channel();
    let b_registry = registry.clone();
    std::thread::spawn(move || {
        let _ = tx.send(
            b_registry
                .run_workflow(&b, Value::Int(2))
                .map(|r| r.steps.len()),
        );
    });
    let b_done = rx.recv_timeout(Duration::from_secs(30));
    for _ in 0..width {
        let _ = release.send(());
    }
    assert_eq!(
        b_done.expect("run B finished while A was blocked").unwrap(),
        3
    );
    assert!(a_run.join().unwrap());
}

#[test]
fn a_batch_can_give_each_input_its_own_outcome() {
    let r = registry();
    r.register(
        ModuleConfig::new()
            .with_name("odd-only")
            .with_handler(|v| match v.as_int() {
                Some(n) if n % 2 == 1 => Ok(Value::Int(n)),
                _ => Err(Error::invalid_input("even").into()),
            }),
    )
    .unwrap();
    let wf = Workflow::pipeline("odd", ["odd-only"]);
    let inputs: Vec<Value> = (0..5).map(Value::Int).collect();
    let all = r
        .run_workflow_each(&wf, inputs.clone(), true, |_, _| {})
        .unwrap();
    assert_eq!(all.len(), 5);
    let failed: Vec<usize> = (0..5).filter(|&i| all[i].is_err()).collect();
    assert_eq!(failed, [0, 2, 4]);
    assert_eq!(all[3].as_ref().unwrap().output, Value::Int(3));
    // Without keep_going the list ends at the first failure.
    let stopped = r
        .run_workflow_each(&wf, inputs.clone(), false, |_, _| {})
        .unwrap();
    assert_eq!(stopped.len(), 1);
    // The batch form says which input failed.
    let err = r.run_workflow_batch(&wf, inputs).unwrap_err();
    assert!(err.report().contains("input #0: "), "{err}");
    let err = Error::invalid_input("x").at_input(3);
    assert!(
        !err.report().contains("input #3"),
        "only workflow errors are renamed"
    );
    // A workflow that cannot be planned is the batch's error, not an input's.
    let missing = Workflow::pipeline("missing", ["no-such-module"]);
    assert!(r
        .run_workflow_each(&missing, vec![Value::Int(1)], true, |_, _| {})
        .is_err());
}

#[test]
fn several_final_steps_give_a_map_unless_output_names_one() {
    let r = registry();
    // Two branches on the input, neither read by another step.
    let wf = Workflow::new("two")
        .step(WorkflowStep::module("one", "add-one").after([]))
        .step(WorkflowStep::module("ten", "add-ten").after([]));
    r.check_workflow(&wf).unwrap();
    let result = r.run_workflow(&wf, 1i64).unwrap();
    let Value::Map(out) = &result.output else {
        panic!("not a map: {:?}", result.output)
    };
    assert_eq!(out.keys().collect::<Vec<_>>(), ["one", "ten"]);
    assert_eq!(
        (out["one"].clone(), out["ten"].clone()),
        (Value::Int(2), Value::Int(11))
    );
    // Naming one picks it.
    let picked = r
        .run_workflow(&wf.clone().with_output("ten"), 1i64)
        .unwrap();
    assert_eq!(picked.output, Value::Int(11));
    // Both final steps are drawn into the output.
    let edges = wf.edges().unwrap();
    assert!(edges.contains(&("one".into(), Workflow::OUTPUT.into())));
    assert!(edges.contains(&("ten".into(), Workflow::OUTPUT.into())));
    // The file forms say the same.
    let from_toml = Workflow::from_toml(&wf.to_toml().unwrap()).unwrap();
    assert_eq!(
        r.run_workflow(&from_toml, 1i64).unwrap().output,
        result.output
    );
    // A batch, and a step read by another, which is not final.
    let batch = r.run_workflow_batch(&wf, [1i64, 2]).unwrap();
    assert_eq!(batch[1].output.get("ten"), Some(&Value::Int(12)));
    let fed = wf
        .clone()
        .step(WorkflowStep::module("more", "add-one").after(["one"]));
    let out = r.run_workflow(&fed, 1i64).unwrap().output;
    assert_eq!(
        out.as_map().unwrap().keys().collect::<Vec<_>>(),
        ["ten", "more"]
    );
}

#[test]
fn a_chain_declared_last_to_first_returns_its_final_step() {
    let r = registry();
    // c <- b <- a, declared c, b, a: the final step is c, the first declared.
    let wf = Workflow::new("reversed")
        .step(WorkflowStep::module("c", "add-ten").after(["b"]))
        .step(WorkflowStep::module("b", "add-one").after(["a"]))
        .step(WorkflowStep::module("a", "add-one").after([]));
    assert_eq!(r.run_workflow(&wf, 0i64).unwrap().output, Value::Int(12));
    // 10,000 steps so declared: checked, run and drawn.
    let n = 10_000;
    let mut long = Workflow::new("long");
    for i in (0..n).rev() {
        let step = WorkflowStep::module(format!("s{i}"), "add-one");
        long.add_step(if i == 0 {
            step.after([])
        } else {
            step.after(vec![format!("s{}", i - 1)])
        });
    }
    assert_eq!(r.run_workflow(&long, 0i64).unwrap().output, Value::Int(n));
    assert_eq!(long.edges().unwrap().len(), n as usize + 1);
    assert!(long
        .to_dot()
        .unwrap()
        .contains("\"s9999\" -> \"(output)\";"));
}

#[test]
fn a_fan_in_of_many_steps_is_checked_once_per_name() {
    let r = registry();
    let n = 20_000;
    let mut wf = Workflow::new("wide");
    let ids: Vec<String> = (0..n).map(|i| format!("b{i}")).collect();
    for id in &ids {
        wf.add_step(WorkflowStep::module(id.clone(), "identity").after([]));
    }
    wf.add_step(WorkflowStep::module("sum", "sum").after(ids.clone()));
    let out = r.run_workflow(&wf, 1i64).unwrap().output;
    assert_eq!(out, Value::Int(n));
    let mut twice = ids.clone();
    twice.push("b7".into());
    let bad = wf.step(WorkflowStep::module("j", "sum").after(twice));
    let err = r.check_workflow(&bad).unwrap_err();
    assert!(err.report().contains("after names \"b7\" twice"), "{err}");
}

#[test]
fn steps_named_like_the_workflows_own_nodes_stay_nodes_of_their_own() {
    let wf = Workflow::new("ends")
        .step(WorkflowStep::module("input", "identity"))
        .step(WorkflowStep::module("output", "identity"))
        .step(WorkflowStep::module("end", "identity").after(["output"]));
    let edges = wf.edges().unwrap();
    assert_eq!(
        edges,
        [
            (Workflow::INPUT.to_string(), "input".to_string()),
            ("input".into(), "output".into()),
            ("output".into(), "end".into()),
            ("end".into(), Workflow::OUTPUT.into()),
        ]
    );
    let dot = wf.to_dot().unwrap();
    assert!(dot.contains("\"(input)\" -> \"input\";"), "{dot}");
    assert!(dot.contains("\"input\" -> \"output\";"), "{dot}");
    assert!(dot.contains("\"end\" -> \"(output)\";"), "{dot}");
    // Mermaid: the ends are wf_in and wf_out; `end` (a Mermaid word) is renamed.
    let mermaid = wf.to_mermaid().unwrap();
    for edge in [
        "wf_in --> input",
        "input --> output",
        "output --> end_2",
        "end_2 --> wf_out",
    ] {
        assert!(mermaid.contains(edge), "{edge} missing in\n{mermaid}");
    }
    assert!(!mermaid.contains("> end\n"), "{mermaid}");
    // a.b and a-b were both a_b: now two nodes.
    let dots = Workflow::new("dots")
        .step(WorkflowStep::module("a.b", "identity"))
        .step(WorkflowStep::module("a-b", "identity"));
    let mermaid = dots.to_mermaid().unwrap();
    assert!(
        mermaid.contains("wf_in --> a_b_0") && mermaid.contains("a_b_0 --> a_b_1"),
        "{mermaid}"
    );
    let svg = wf.to_svg().unwrap();
    // Two ends, three steps, four edges.
    assert_eq!(svg.matches("<g class=\"end\"").count(), 2, "{svg}");
    assert_eq!(svg.matches("<g class=\"step\"").count(), 3, "{svg}");
    assert_eq!(svg.matches("<path class=\"edge\"").count(), 4, "{svg}");
}

#[test]
fn a_cancelled_run_starts_no_more_attempts() {
    let r = registry();
    let cancel = module_registry::CancelToken::new();
    let calls = Arc::new(AtomicU32::new(0));
    let (c, k) = (calls.clone(), cancel.clone());
    r.register(
        ModuleConfig::new()
            .with_name("fails-and-cancels")
            .with_handler(move |_| {
                c.fetch_add(1, Ordering::SeqCst);
                k.cancel(); // the host cancels while the step is failing
                Err(Error::invalid_input("no").into())
            }),
    )
    .unwrap();
    let wf = Workflow::new("w").step(WorkflowStep::module("s", "fails-and-cancels").retries(50));
    let err = r.run_workflow_cancellable(&wf, 1i64, &cancel).unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(err.report().contains("after 1 attempt"), "{err}");
}

#[test]
fn retries_past_the_bound_and_a_zero_timeout_are_refused_at_check_time() {
    let r = registry();
    let many = Workflow::new("w").step(
        WorkflowStep::module("s", "add-one").retries(module_registry::workflow::MAX_RETRIES + 1),
    );
    let err = r.check_workflow(&many).unwrap_err();
    assert!(
        err.report().contains("retries must be at most 100"),
        "{err}"
    );
    let zero = Workflow::from_toml(
        "name = \"z\"\n[[steps]]\nid = \"s\"\nmodule = \"add-one\"\ntimeout_ms = 0\n",
    )
    .unwrap();
    let err = r.check_workflow(&zero).unwrap_err();
    assert!(err.report().contains("timeout of 0 ms"), "{err}");
    let err = r
        .pool(
            "add-one",
            module_registry::live::PoolOptions::new(1).retries(1000),
        )
        .unwrap_err();
    assert!(err.report().contains("at most 100"), "{err}");
}

#[cfg(feature = "pictures")]
#[test]
fn a_workflow_of_ten_thousand_steps_is_drawn_in_one_pass() {
    let n = 10_000;
    let mut wf = Workflow::new("long");
    for i in (0..n).rev() {
        let step = WorkflowStep::module(format!("s{i}"), "identity").version("<2");
        wf.add_step(if i == 0 {
            step.after([])
        } else {
            step.after(vec![format!("s{}", i - 1)])
        });
    }
    let svg = wf.to_svg().unwrap();
    // Every node (the two ends and each step) and every edge is drawn.
    assert_eq!(svg.matches("<rect").count(), n + 2);
    assert_eq!(svg.matches("<path class=\"edge\"").count(), n + 1);
    // Text is escaped (the requirement "<2").
    assert!(svg.contains("identity &lt;2") && !svg.contains("identity <2"));
    // A chain: one column per node, so as wide as n + 2 nodes and gaps.
    let width: f64 = svg
        .split("width=\"")
        .nth(1)
        .and_then(|w| w.split('"').next())
        .and_then(|w| w.parse().ok())
        .unwrap();
    assert!(width > ((n + 2) * (90 + 48)) as f64, "{}", &svg[..200]);
}

#[test]
fn a_run_after_a_change_to_the_registry_uses_what_is_registered_now() {
    let r = registry();
    let wf = Workflow::new("w").step(WorkflowStep::module("a", "add-one"));
    assert_eq!(r.run_workflow(&wf, 1i64).unwrap().output, Value::Int(2));
    r.replace(
        ModuleConfig::new()
            .with_name("add-one")
            .add_capability("math")
            .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) + 100))),
    )
    .unwrap();
    assert_eq!(r.run_workflow(&wf, 1i64).unwrap().output, Value::Int(101));
    // A capability step picks a higher version registered since.
    let caps = Workflow::new("c").step(WorkflowStep::capabilities("m", ["math"]));
    assert_eq!(
        r.run_workflow(&caps, 0i64).unwrap().steps[0].module,
        "add-ten"
    );
    r.register(
        ModuleConfig::new()
            .with_name("add-more")
            .with_version("3.0.0")
            .add_capability("math")
            .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) + 1000))),
    )
    .unwrap();
    let run = r.run_workflow(&caps, 0i64).unwrap();
    assert_eq!(
        (run.steps[0].module.as_str(), run.output),
        ("add-more", Value::Int(1000))
    );
    // Gone since the last run: the run is refused, naming the step.
    r.unregister("add-one", "0.1.0").unwrap();
    let err = r.run_workflow(&wf, 1i64).unwrap_err();
    assert!(
        err.report().contains("cannot use module \"add-one\""),
        "{err}"
    );
    assert!(r.check_workflow(&wf).is_err());
}

#[test]
fn a_policy_set_after_a_run_is_enforced_on_the_next() {
    use module_registry::{AccessPolicy, Permission};
    let r = registry();
    let wf = Workflow::new("w").step(WorkflowStep::module("a", "add-one"));
    r.check_workflow(&wf).unwrap();
    assert_eq!(r.run_workflow(&wf, 1i64).unwrap().output, Value::Int(2));
    let mut policy = AccessPolicy::new();
    policy
        .grant("reader", [Permission::Discover], "*")
        .unwrap()
        .assign("alice", "reader");
    r.set_policy(Some(policy)).unwrap();
    let alice = r.as_principal("alice");
    assert!(alice.run_workflow(&wf, 1i64).is_err());
}
