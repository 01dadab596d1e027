//! Script limits: what each means, what is refused, and that every limit
//! holds on any thread without overflowing its stack (the process survives).

use std::thread;

use module_registry::{Error, ModuleRegistry, ScriptLimits, Value};

/// Runs `f` on a thread with a Rust spawned thread's default 2 MiB stack,
/// the smallest a caller is likely to have.
fn on_small_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the thread survives")
}

const BUILD: &str = "let a = []; for i in 0..3000 { a = [take(a)]; }";

#[test]
fn deep_data_printed_compared_and_dropped_inside_a_script_survives() {
    on_small_thread(|| {
        let registry = ModuleRegistry::new();
        // No deadline: what is tested is depth, not time (a debug build on a
        // loaded machine can take longer than the default 5 s).
        registry
            .set_script_limits(ScriptLimits {
                timeout: None,
                ..ScriptLimits::default()
            })
            .unwrap();
        // Printing, comparing, cloning and dropping recurse through every
        // level, inside Rhai: thousands of levels on a 2 MiB thread.
        let out = registry
            .run_script(
                &format!("{BUILD} let b = a; [a == b, a.to_string().len()]"),
                (),
            )
            .unwrap();
        assert_eq!(
            out,
            Value::List(vec![Value::Bool(true), Value::Int(3000 * 2 + 2)])
        );
        // Returned, it is too deep to convert: a typed error.
        let err = registry.run_script(&format!("{BUILD} a"), ()).unwrap_err();
        assert!(err.report().contains("nests deeper than 256"), "{err}");
    });
}

#[test]
fn an_instance_holding_deep_state_is_dropped_safely() {
    on_small_thread(|| {
        let registry = ModuleRegistry::new();
        registry
            .register_script(&format!(
                r#"const MODULE = #{{ name: "hoarder" }};
                fn process(x) {{ {BUILD} this.kept = a; 1 }}"#
            ))
            .unwrap();
        let instance = registry.create("hoarder").unwrap();
        assert_eq!(instance.process(()).unwrap(), Value::Int(1));
        drop(instance);
        assert!(registry.get("hoarder").is_some());
    });
}

fn recursion(depth: usize) -> String {
    format!("fn f(n) {{ if n == 0 {{ 0 }} else {{ 1 + f(n - 1) }} }} f({depth})")
}

#[test]
fn a_deep_call_limit_runs_on_a_stack_sized_for_it() {
    on_small_thread(|| {
        let registry = ModuleRegistry::new();
        registry
            .set_script_limits(ScriptLimits {
                max_call_depth: Some(2_000),
                max_expr_depth: Some(1_000),
                ..ScriptLimits::default()
            })
            .unwrap();
        assert_eq!(
            registry.run_script(&recursion(1_990), ()).unwrap(),
            Value::Int(1_990)
        );
        let err = registry.run_script(&recursion(2_100), ()).unwrap_err();
        assert!(err.report().contains("call stack overflow"), "{err}");
        // A deeply nested expression parses on the script stack too.
        let nested = format!("{}1{}", "(".repeat(450), ")".repeat(450));
        assert_eq!(registry.run_script(&nested, ()).unwrap(), Value::Int(1));
    });
}

#[test]
fn none_is_the_deepest_the_stack_holds_and_more_is_refused() {
    let limits = ScriptLimits::unlimited();
    assert_eq!(limits.call_depth(), module_registry::limits::MAX_CALL_DEPTH);
    on_small_thread(move || {
        let registry = ModuleRegistry::new();
        registry.set_script_limits(limits).unwrap();
        let err = registry.run_script(&recursion(100_000), ()).unwrap_err();
        assert!(err.report().contains("call stack overflow"), "{err}");
    });
    let registry = ModuleRegistry::new();
    let before = registry.script_limits();
    for (limits, says) in [
        (
            ScriptLimits {
                max_call_depth: Some(1_000_000),
                ..ScriptLimits::default()
            },
            "max_call_depth 1000000",
        ),
        (
            ScriptLimits {
                max_expr_depth: Some(100_000),
                ..ScriptLimits::default()
            },
            "max_expr_depth 100000",
        ),
    ] {
        let err = registry.set_script_limits(limits).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidConfig { reason, .. } if reason.contains(says)),
            "{err}"
        );
    }
    assert_eq!(registry.script_limits(), before);
}

#[test]
fn a_limit_of_zero_is_refused_not_unlimited() {
    let registry = ModuleRegistry::new();
    let with = |set: fn(&mut ScriptLimits)| {
        let mut limits = ScriptLimits::default();
        set(&mut limits);
        limits
    };
    let zeroes = [
        with(|l| l.max_operations = Some(0)),
        with(|l| l.max_expr_depth = Some(0)),
        with(|l| l.max_string_size = Some(0)),
        with(|l| l.max_array_size = Some(0)),
        with(|l| l.max_map_size = Some(0)),
        with(|l| l.max_memory = Some(0)),
        with(|l| l.timeout = Some(std::time::Duration::ZERO)),
    ];
    for limits in zeroes {
        let err = registry.set_script_limits(limits).unwrap_err();
        assert!(
            err.report().contains("of 0 would stop every script"),
            "{err}"
        );
    }
    assert_eq!(registry.script_limits(), ScriptLimits::default());
    // A call depth of zero means what it says: no script function may be called.
    registry
        .set_script_limits(ScriptLimits {
            max_call_depth: Some(0),
            ..ScriptLimits::default()
        })
        .unwrap();
    assert_eq!(registry.run_script("1 + 1", ()).unwrap(), Value::Int(2));
    let err = registry.run_script(&recursion(1), ()).unwrap_err();
    assert!(err.report().contains("call stack overflow"), "{err}");
}

#[test]
fn the_stack_a_script_needs_grows_with_its_limits() {
    let small = ScriptLimits {
        max_call_depth: Some(8),
        max_expr_depth: Some(16),
        max_array_size: Some(100),
        max_map_size: Some(100),
        ..ScriptLimits::default()
    };
    let default = ScriptLimits::default();
    assert!(small.stack_bytes() < default.stack_bytes());
    assert!(default.stack_bytes() < ScriptLimits::unlimited().stack_bytes());
    // Nesting is bounded by the size limits, else by the operations.
    assert_eq!(small.data_depth(), 200);
    let by_ops = ScriptLimits {
        max_array_size: None,
        max_operations: Some(500),
        ..small
    };
    assert_eq!(by_ops.data_depth(), 500);
}

#[test]
fn a_call_holding_more_memory_than_its_limit_ends() {
    assert!(module_registry::memory_limit_enforced());
    let registry = ModuleRegistry::new();
    registry
        .set_script_limits(ScriptLimits {
            max_memory: Some(64 << 20),
            ..ScriptLimits::default()
        })
        .unwrap();
    // Each string is within the string limit; the map grows by indexing,
    // which Rhai does not size-check: only the memory count stops it.
    let hoard = r#"let m = #{}; for i in 0..1000 { let s = "yy"; for j in 0..19 { s += s; } m["k" + i] = s; } m.len()"#;
    let err = registry.run_script(hoard, ()).unwrap_err();
    assert!(err.report().contains("out of memory"), "{err}");
    // Memory given back counts no more: a loop that drops what it makes runs.
    let churn = r#"let n = 0; for i in 0..200 { let s = "yy"; for j in 0..19 { s += s; } n += s.len(); } n"#;
    assert_eq!(
        registry.run_script(churn, ()).unwrap(),
        Value::Int(200 << 20)
    );
    // The same limit holds in a script module's calls.
    registry
        .register_script(&format!(
            "const MODULE = #{{ name: \"hoarder2\" }}; fn process(x) {{ {} }}",
            hoard
        ))
        .unwrap();
    let err = registry
        .create("hoarder2")
        .unwrap()
        .process(())
        .unwrap_err();
    assert!(err.report().contains("out of memory"), "{err}");
    // Without a memory limit (and a string limit, which Rhai applies to a
    // map's strings together when it checks), 80 MiB is held to the end.
    registry
        .set_script_limits(ScriptLimits {
            max_memory: None,
            max_string_size: None,
            ..ScriptLimits::default()
        })
        .unwrap();
    let small = hoard.replace("0..1000", "0..80");
    assert_eq!(registry.run_script(&small, ()).unwrap(), Value::Int(80));
}
