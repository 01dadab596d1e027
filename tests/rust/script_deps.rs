//! `this.deps`: script modules calling the dependencies they declare.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use module_registry::{Error, ModuleConfig, ModuleRegistry, ScriptLimits, Value};

use crate::common::temp;

/// The three-module log task of issue 29: `log-parse` parses lines,
/// `log-stats` counts levels through `this.deps["log-parse"]`, `log-report`
/// formats with a library it imports and calls `log-stats`. No host code.
pub fn write_log_task(name: &str) -> std::path::PathBuf {
    let dir = temp(name);
    let files = [
        (
            "log-parse.rhai",
            r#"const MODULE = #{ name: "log-parse", version: "1.2.0" };
fn process(line) {
    let parts = line.split(" ");
    #{ level: parts[0], text: line.sub_string(parts[0].len() + 1) }
}
"#,
        ),
        (
            "log-stats.rhai",
            r#"const MODULE = #{ name: "log-stats", version: "1.0.0", dependencies: #{ "log-parse": "^1" } };
fn process(lines) {
    let counts = #{};
    for line in lines {
        let record = this.deps["log-parse"].process(line);
        counts[record.level] = (counts[record.level] ?? 0) + 1;
    }
    counts
}
"#,
        ),
        ("fmt.rhai", "fn pair(k, v) { `${k}=${v}` }\n"),
        (
            "log-report.rhai",
            r#"import "fmt" as fmt;
const MODULE = #{ name: "log-report", version: "1.0.0", dependencies: #{ "log-stats": "^1" } };
fn process(lines) {
    let counts = this.deps["log-stats"].process(lines);
    let keys = counts.keys();
    keys.sort();
    let out = [];
    for k in keys { out.push(fmt::pair(k, counts[k])); }
    out.reduce(|acc, s| if acc == () { s } else { acc + ", " + s })
}
"#,
        ),
    ];
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    dir
}

#[test]
fn the_three_module_log_task_runs_with_this_deps_and_no_host_code() {
    let dir = write_log_task("log-task");
    let registry = ModuleRegistry::new();
    registry.load_scripts(&dir).unwrap();
    let lines = Value::List(
        [
            "ERROR disk full",
            "INFO started",
            "ERROR again",
            "WARN slow",
        ]
        .into_iter()
        .map(Value::from)
        .collect(),
    );
    let out = registry
        .create("log-report")
        .unwrap()
        .process(lines)
        .unwrap();
    assert_eq!(out, Value::from("ERROR=2, INFO=1, WARN=1"));
}

fn counting(registry: &ModuleRegistry, name: &str) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    registry
        .register(
            ModuleConfig::new()
                .with_name(name)
                .with_version("1.0.0")
                .with_factory(move |context| {
                    let seen = seen.clone();
                    let add = context.config().as_int().unwrap_or(1);
                    Ok(Box::new(module_registry::FnModule::new(move |v| {
                        seen.fetch_add(1, Ordering::SeqCst);
                        Ok(Value::Int(v.as_int().unwrap_or(0) + add))
                    })) as Box<dyn module_registry::Module>)
                }),
        )
        .unwrap();
    calls
}

#[test]
fn a_dependency_is_reached_in_init_process_and_shutdown_even_when_the_module_defines_process() {
    let registry = ModuleRegistry::new();
    let calls = counting(&registry, "adder");
    registry
        .register_script(
            r#"const MODULE = #{ name: "user", version: "1.0.0", dependencies: #{ adder: "^1" } };
fn init(config) { this.first = this.deps["adder"].process(100); }
fn process(x) {
    let d = this.deps["adder"];
    [this.first, d.process(x), d.name, d.version, this.deps.keys()]
}
fn shutdown() { this.deps["adder"].process(0); }
"#,
        )
        .unwrap();
    let user = registry.create("user").unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "init called the dependency"
    );
    let out = user.process(1i64).unwrap();
    assert_eq!(
        out,
        Value::List(vec![
            Value::Int(101),
            Value::Int(2),
            Value::from("adder"),
            Value::from("1.0.0"),
            Value::List(vec![Value::from("adder")]),
        ])
    );
    user.close().unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "shutdown called it too");
}

#[test]
fn dependency_configs_and_shared_dependencies_are_honoured() {
    let registry = ModuleRegistry::new();
    let calls = counting(&registry, "adder");
    registry
        .register_script(
            r#"const MODULE = #{ name: "user", version: "1.0.0", dependencies: #{ adder: "^1" } };
fn process(x) { this.deps["adder"].process(x) }
"#,
        )
        .unwrap();
    let configured = registry
        .instance("user")
        .dependency_config("adder", 40i64)
        .create()
        .unwrap();
    assert_eq!(configured.process(2i64).unwrap(), Value::Int(42));
    let a = registry
        .instance("user")
        .share_dependencies(true)
        .create()
        .unwrap();
    let b = registry
        .instance("user")
        .share_dependencies(true)
        .create()
        .unwrap();
    a.process(0i64).unwrap();
    b.process(0i64).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Shared: one dependency for both, still open while `b` holds it.
    a.close().unwrap();
    assert_eq!(b.process(1i64).unwrap(), Value::Int(2));
}

#[test]
fn an_undeclared_dependency_or_the_registry_is_unreachable() {
    let registry = ModuleRegistry::with_native_modules();
    registry
        .register_script(
            r#"const MODULE = #{ name: "nosy", version: "1.0.0" };
fn process(x) { this.deps["text-encode"].process(x) }
"#,
        )
        .unwrap();
    let err = registry.create("nosy").unwrap().process("x").unwrap_err();
    assert!(matches!(err.root_cause(), Error::Script { .. }), "{err}");
    let err = registry
        .register_script(
            r#"const MODULE = #{ name: "nosier", version: "1.0.0" };
fn process(x) { registry.create("text-encode").process(x) }
"#,
        )
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains("registry"), "{err}");
}

#[test]
fn replacing_or_changing_this_deps_changes_only_that_call() {
    let registry = ModuleRegistry::new();
    counting(&registry, "adder");
    registry
        .register_script(
            r#"const MODULE = #{ name: "vandal", version: "1.0.0", dependencies: #{ adder: "^1" } };
fn process(x) {
    let out = this.deps["adder"].process(x);
    this.deps["adder"].process = 5;
    this.deps = #{};
    out
}
"#,
        )
        .unwrap();
    let vandal = registry.create("vandal").unwrap();
    assert_eq!(vandal.process(1i64).unwrap(), Value::Int(2));
    assert_eq!(vandal.process(2i64).unwrap(), Value::Int(3));
}

#[test]
fn a_script_cannot_close_its_dependency() {
    let registry = ModuleRegistry::new();
    let calls = counting(&registry, "adder");
    registry
        .register_script(
            r#"const MODULE = #{ name: "closer", version: "1.0.0", dependencies: #{ adder: "^1" } };
fn process(x) {
    if x == 0 { this.deps["adder"].close(); }
    this.deps["adder"].process(x)
}
"#,
        )
        .unwrap();
    let closer = registry.create("closer").unwrap();
    assert!(closer.process(0i64).is_err());
    assert_eq!(closer.process(1i64).unwrap(), Value::Int(2));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_handle_kept_past_the_close_is_refused() {
    let registry = ModuleRegistry::new();
    counting(&registry, "adder");
    registry
        .register_script(
            r#"const MODULE = #{ name: "keeper", version: "1.0.0", dependencies: #{ adder: "^1" } };
fn process(x) { this.kept = this.deps["adder"]; this.kept }
"#,
        )
        .unwrap();
    let keeper = registry.create("keeper").unwrap();
    let handle = keeper.process(()).unwrap();
    let script = r#"input.process(1)"#;
    assert_eq!(
        registry.run_script(script, handle.clone()).unwrap(),
        Value::Int(2)
    );
    keeper.close().unwrap();
    let err = registry.run_script(script, handle).unwrap_err();
    assert!(
        err.to_string()
            .contains("after module \"keeper\" was closed"),
        "{err}"
    );
}

#[test]
fn a_dependency_cycle_through_script_modules_is_refused() {
    let registry = ModuleRegistry::new();
    for (name, dep) in [("ping", "pong"), ("pong", "ping")] {
        registry
            .register_script(&format!(
                r#"const MODULE = #{{ name: "{name}", version: "1.0.0", dependencies: #{{ "{dep}": "^1" }} }};
fn process(x) {{ this.deps["{dep}"].process(x) }}
"#
            ))
            .unwrap();
    }
    let err = registry.create("ping").map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::DependencyCycle { .. }), "{err}");
}

#[test]
fn a_dependency_runs_under_the_modules_deadline() {
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("slow")
                .with_version("1.0.0")
                .with_handler(|v| {
                    std::thread::sleep(std::time::Duration::from_secs(3));
                    Ok(v)
                }),
        )
        .unwrap();
    registry
        .set_script_limits(ScriptLimits {
            timeout: Some(std::time::Duration::from_millis(100)),
            ..ScriptLimits::default()
        })
        .unwrap();
    registry
        .register_script(
            r#"const MODULE = #{ name: "waiter", version: "1.0.0", dependencies: #{ slow: "^1" } };
fn process(x) { this.deps["slow"].process(x) }
"#,
        )
        .unwrap();
    let err = registry
        .create("waiter")
        .unwrap()
        .process(1i64)
        .unwrap_err();
    assert!(err.report().contains("timed out"), "{}", err.report());
}
