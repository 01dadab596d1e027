//! What scripts print (`print`, `debug`) and where it goes; `assert` and
//! `assert_eq`; functions of values added with `register_script_function`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use module_registry::script::{ScriptOutput, ScriptOutputKind};
use module_registry::{Error, ModuleRegistry, ScriptLimits, Value};
use parking_lot::Mutex;

/// One line as a hook saw it: kind, text, module, script, line, column.
type Line = (
    ScriptOutputKind,
    String,
    Option<String>,
    Option<String>,
    Option<usize>,
    Option<usize>,
);

fn owned(out: &ScriptOutput<'_>) -> Line {
    (
        out.kind,
        out.text.to_string(),
        out.module.map(str::to_string),
        out.script.map(str::to_string),
        out.line,
        out.column,
    )
}

/// A registry whose script output is collected.
fn collecting() -> (ModuleRegistry, Arc<Mutex<Vec<Line>>>) {
    let registry = ModuleRegistry::new();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    registry
        .set_script_output(move |out| seen.lock().push(owned(out)))
        .unwrap();
    (registry, lines)
}

fn message(result: module_registry::Result<impl std::fmt::Debug>) -> (Option<usize>, String) {
    match result.map(|_| ()).unwrap_err().root_cause() {
        Error::Script { line, message, .. } => (*line, message.clone()),
        other => panic!("expected a script error, got {other}"),
    }
}

#[test]
fn print_and_debug_reach_the_hook_with_module_script_and_position() {
    let dir = crate::common::temp("output-module");
    std::fs::write(
        dir.join("util.rhai"),
        "fn shout(x) {\n    print(x + \"!\");\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("greeter.rhai"),
        "import \"util\" as util;\nconst MODULE = #{ name: \"greeter\", version: \"1.0.0\" };\nfn process(x) {\n  print(`hello ${x}`);\n    debug(x);\n  util::shout(x);\n  x\n}\n",
    )
    .unwrap();
    let (registry, lines) = collecting();
    registry.load_scripts(&dir).unwrap();
    let label = dir.join("greeter.rhai").display().to_string();
    registry.create("greeter").unwrap().process("bob").unwrap();
    let module = Some("greeter".to_string());
    assert_eq!(
        *lines.lock(),
        [
            (
                ScriptOutputKind::Print,
                "hello bob".into(),
                module.clone(),
                Some(label.clone()),
                Some(4),
                Some(3)
            ),
            (
                ScriptOutputKind::Debug,
                "\"bob\"".into(),
                module.clone(),
                Some(label),
                Some(5),
                Some(5)
            ),
            // Inside an imported library: the library is the script, the module the one running.
            (
                ScriptOutputKind::Print,
                "bob!".into(),
                module,
                Some("util".into()),
                Some(2),
                Some(5)
            ),
        ]
    );
    lines.lock().clear();
    // An orchestration script runs in no module.
    registry.run_script("\nprint(1 + 1)", ()).unwrap();
    assert_eq!(
        *lines.lock(),
        [(
            ScriptOutputKind::Print,
            "2".into(),
            None,
            Some("<script>".into()),
            Some(2),
            Some(1)
        )]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn print_shows_every_type_as_rhai_does() {
    let (registry, lines) = collecting();
    registry
        .run_script(
            r#"print(); print(()); print("s"); print('c'); print(true); print(42); print(1.5);
               print([1, "a"]); print(#{k: 1}); print(blob(2)); print(registry.contains("x"));"#,
            (),
        )
        .unwrap();
    let texts: Vec<String> = lines.lock().iter().map(|l| l.1.clone()).collect();
    assert_eq!(
        texts,
        [
            "",
            "",
            "s",
            "c",
            "true",
            "42",
            "1.5",
            "[1, \"a\"]",
            "#{\"k\": 1}",
            "[0000]",
            "false"
        ]
    );
}

#[test]
fn the_hook_is_per_registry_reaches_instances_built_before_and_may_panic() {
    let registry = ModuleRegistry::new();
    registry
        .register_script("const MODULE = #{ name: \"talker\" };\nfn process(x) { print(x); x }")
        .unwrap();
    let before = registry.create("talker").unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    registry
        .set_script_output(move |out| {
            c.fetch_add(1, Ordering::SeqCst);
            if out.text == "boom" {
                panic!("a careless hook");
            }
        })
        .unwrap();
    before.process("one").unwrap();
    // A hook that panics loses the line, not the call.
    assert_eq!(before.process("boom").unwrap(), Value::from("boom"));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    // Setting it is an administrator's act.
    registry.set_policy(Some(crate::common::policy())).unwrap();
    let denied = registry
        .as_principal("alice")
        .with(|r| r.set_script_output(|_| {}));
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
}

/// The process's hook and the `log` crate: one test, as both are global.
#[test]
fn without_a_hook_output_goes_to_the_process_hook_then_to_log() {
    /// Level, target, message, file, line.
    type Record = (log::Level, String, String, Option<String>, Option<u32>);
    struct Collect(Mutex<Vec<Record>>);
    impl log::Log for Collect {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            self.0.lock().push((
                record.level(),
                record.target().to_string(),
                record.args().to_string(),
                record.file().map(str::to_string),
                record.line(),
            ));
        }
        fn flush(&self) {}
    }
    static LOGGER: std::sync::OnceLock<&'static Collect> = std::sync::OnceLock::new();
    let logger = *LOGGER.get_or_init(|| Box::leak(Box::new(Collect(Mutex::new(Vec::new())))));
    log::set_logger(logger).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let registry = ModuleRegistry::new();
    registry
        .run_script("print(\"to log\");\ndebug(1)", ())
        .unwrap();
    let ours: Vec<_> = logger
        .0
        .lock()
        .iter()
        .filter(|r| r.1 == "module_registry::script")
        .cloned()
        .collect();
    assert_eq!(
        ours,
        [
            (
                log::Level::Info,
                "module_registry::script".into(),
                "to log".into(),
                Some("<script>".into()),
                Some(1)
            ),
            (
                log::Level::Debug,
                "module_registry::script".into(),
                "1".into(),
                Some("<script>".into()),
                Some(2)
            ),
        ]
    );
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    module_registry::script::set_default_script_output(Some(Arc::new(
        move |_: &ScriptOutput<'_>| {
            s.fetch_add(1, Ordering::SeqCst);
        },
    )));
    registry.run_script("print(1); print(2)", ()).unwrap();
    module_registry::script::set_default_script_output(None);
    assert_eq!(seen.load(Ordering::SeqCst), 2);
}

#[test]
fn a_print_flood_under_the_operation_limit_holds_no_memory() {
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            max_operations: Some(10_000_000),
            max_memory: Some(256 * 1024),
            timeout: None,
            ..ScriptLimits::default()
        })
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    registry
        .set_script_output(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    registry
        .run_script("for i in 0..1000000 { print(`line ${i}`); } 0", ())
        .unwrap();
    assert_eq!(count.load(Ordering::Relaxed), 1_000_000);
}

#[test]
fn assert_and_assert_eq_fail_at_the_call_with_the_values() {
    let registry = ModuleRegistry::new();
    let ok = r#"assert(true); assert(1 < 2, "ordered"); assert_eq(1, 1); assert_eq(1, 1.0);
                assert_eq([1, #{a: "x"}], [1, #{a: "x"}], "same"); assert_eq((), ()); 1"#;
    assert_eq!(registry.run_script(ok, ()).unwrap(), Value::Int(1));
    let (line, text) = message(registry.run_script("let x = 1;\nassert(x > 1, \"x is big\")", ()));
    assert_eq!(
        (line, text.as_str()),
        (Some(2), "Runtime error: assertion failed: x is big")
    );
    let (line, text) = message(registry.run_script("\n\nassert(false)", ()));
    assert_eq!(line, Some(3));
    assert!(
        text.ends_with("assertion failed: the condition is false"),
        "{text}"
    );
    let (_, text) = message(registry.run_script(r#"assert_eq(#{a: 1}, #{a: "1"})"#, ()));
    assert!(
        text.ends_with(r#"assertion failed: left == right (left: #{"a": 1}, right: #{"a": "1"})"#),
        "{text}"
    );
    let (_, text) = message(registry.run_script(r#"assert_eq("a", 1, "mixed")"#, ()));
    assert!(
        text.ends_with(r#"assertion failed: mixed (left: "a", right: 1)"#),
        "{text}"
    );
    // In a script module too, at its line.
    registry
        .register_script("const MODULE = #{ name: \"checked\" };\nfn process(x) {\n  assert(x != 0, \"zero\");\n  x }")
        .unwrap();
    let (line, text) = message(registry.create("checked").unwrap().process(0i64));
    assert_eq!(line, Some(3));
    assert!(text.ends_with("assertion failed: zero"), "{text}");
}

#[test]
fn a_function_of_values_takes_any_number_of_arguments() {
    let registry = ModuleRegistry::new();
    registry
        .register_script_function("args", |args| Ok(Value::List(args)))
        .unwrap();
    assert_eq!(
        registry.run_script("args()", ()).unwrap(),
        Value::List(vec![])
    );
    assert_eq!(
        registry
            .run_script(r#"args(1, "b", [2.5], #{k: ()})"#, ())
            .unwrap(),
        Value::List(vec![
            Value::Int(1),
            Value::from("b"),
            Value::List(vec![Value::Float(2.5)]),
            [("k", Value::Null)].into_iter().collect(),
        ])
    );
    let sixteen = (1..=16)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let out = registry
        .run_script(&format!("args({sixteen}).len()"), ())
        .unwrap();
    assert_eq!(out, Value::Int(16));
    // Past the most, no function matches.
    let (_, text) = message(registry.run_script(&format!("args({sixteen}, 17)"), ()));
    assert!(text.contains("Function not found"), "{text}");
    // Script modules see it, and a later registration replaces it.
    registry
        .register_script("const MODULE = #{ name: \"user\" };\nfn process(x) { args(x, x) }")
        .unwrap();
    assert_eq!(
        registry.create("user").unwrap().process(3i64).unwrap(),
        Value::List(vec![Value::Int(3), Value::Int(3)])
    );
    registry
        .register_script_function("args", |args| Ok(Value::Int(args.len() as i64)))
        .unwrap();
    assert_eq!(
        registry.create("user").unwrap().process(3i64).unwrap(),
        Value::Int(2)
    );
}

#[test]
fn a_function_of_values_that_fails_or_blocks_fails_the_script() {
    let registry = ModuleRegistry::new();
    registry
        .register_script_function("broken", |_| Err(Error::invalid_input("no such thing")))
        .unwrap();
    let (line, text) = message(registry.run_script("let a = 1;\nbroken(a)", ()));
    assert_eq!(line, Some(2));
    assert!(
        text.contains("broken(): invalid input: no such thing"),
        "{text}"
    );
    // Blocking past the script's deadline: the script ends as timed out.
    registry
        .set_script_limits(ScriptLimits {
            timeout: Some(Duration::from_millis(200)),
            ..ScriptLimits::default()
        })
        .unwrap();
    registry
        .register_script_function("stuck", |_| {
            std::thread::sleep(Duration::from_secs(3));
            Ok(Value::Null)
        })
        .unwrap();
    let (_, text) = message(registry.run_script("stuck()", ()));
    assert!(text.starts_with("timed out"), "{text}");
}

#[test]
fn arguments_handed_to_a_function_on_another_thread_are_not_held_by_the_script() {
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            // A deadline: each call runs on the helper thread, which frees the arguments.
            timeout: Some(Duration::from_secs(600)),
            max_memory: Some(1024 * 1024),
            ..ScriptLimits::default()
        })
        .unwrap();
    registry
        .register_script_function("size", |args| Ok(Value::Int(args.len() as i64)))
        .unwrap();
    let out = registry
        .run_script(
            &format!(
                r#"let s = "{}"; let n = 0; for i in 0..20000 {{ n += size(s, s); }} n"#,
                "x".repeat(200)
            ),
            (),
        )
        .unwrap();
    assert_eq!(out, Value::Int(40_000));
}

#[test]
fn a_function_of_values_needs_a_name_and_an_administrator() {
    let registry = ModuleRegistry::new();
    for bad in ["", "1x", "a-b", "fn", "let", "print", "eval", "this", "x y"] {
        let err = registry
            .register_script_function(bad, |_| Ok(Value::Null))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
    }
    registry
        .register_script_function("_ok2", |_| Ok(Value::Null))
        .unwrap();
    registry.set_policy(Some(crate::common::policy())).unwrap();
    let denied = registry
        .as_principal("alice")
        .with(|r| r.register_script_function("f", |_| Ok(Value::Null)));
    assert!(
        matches!(denied, Err(Error::PermissionDenied { .. })),
        "{denied:?}"
    );
}
