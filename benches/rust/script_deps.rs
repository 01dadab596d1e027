//! `this.deps`: a script module calling a native dependency through
//! `this.deps` against the same script calling the native instance through
//! a function its host registered (the direct way), 1,000 calls per
//! `process`; and loading the shipped scripts (compiled with strict variables).
//!
//! Run: `cargo bench -p module-registry --bench script_deps`

use criterion::{criterion_group, criterion_main, Criterion};
use module_registry::{ModuleRegistry, Value};

const CALLS: i64 = 1000;

fn deps(c: &mut Criterion) {
    let registry = ModuleRegistry::with_native_modules();
    let native = std::sync::Arc::new(registry.create("identity").unwrap());
    registry
        .register_script_functions(move |engine: &mut module_registry::rhai::Engine| {
            let native = native.clone();
            engine.register_fn("direct_identity", move |x: i64| -> i64 {
                native
                    .process_value(Value::Int(x))
                    .ok()
                    .and_then(|v| v.as_int())
                    .unwrap_or(0)
            });
        })
        .unwrap();
    registry
        .register_script(
            r#"const MODULE = #{ name: "via-deps", version: "1.0.0", dependencies: #{ identity: "*" } };
fn process(n) { let s = 0; for i in 0..n { s += this.deps["identity"].process(i); } s }"#,
        )
        .unwrap();
    registry
        .register_script(
            r#"const MODULE = #{ name: "via-host", version: "1.0.0" };
fn process(n) { let s = 0; for i in 0..n { s += direct_identity(i); } s }"#,
        )
        .unwrap();
    let via_deps = registry.create("via-deps").unwrap();
    let via_host = registry.create("via-host").unwrap();
    let mut group = c.benchmark_group("1000 calls of a native dependency");
    group.bench_function("through this.deps", |b| {
        b.iter(|| via_deps.process_value(Value::Int(CALLS)).unwrap())
    });
    group.bench_function("through a host function", |b| {
        b.iter(|| via_host.process_value(Value::Int(CALLS)).unwrap())
    });
    group.finish();
}

fn load(c: &mut Criterion) {
    c.bench_function("load the shipped scripts", |b| {
        b.iter(|| ModuleRegistry::new().load_bundled_scripts().unwrap())
    });
}

criterion_group!(benches, deps, load);
criterion_main!(benches);
