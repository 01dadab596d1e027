//! Script costs: a trivial script module's `process` against a native one,
//! and the Rhai workloads in `benches/rhai/` run through the registry against
//! a bare `rhai::Engine`.
//!
//! Run: `cargo bench -p module-registry --bench scripts`

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use module_registry::{ModuleRegistry, ScriptLimits, Value};

fn workloads() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../benches/rhai");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("benches/rhai exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rhai"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn process(c: &mut Criterion) {
    let registry = ModuleRegistry::with_native_modules();
    registry
        .register_script(
            r#"const MODULE = #{ name: "script-identity", version: "1.0.0" }; fn process(x) { x }"#,
        )
        .unwrap();
    let script = registry.create("script-identity").unwrap();
    let native = registry.create("identity").unwrap();
    let mut group = c.benchmark_group("process");
    group.bench_function("native identity", |b| {
        b.iter(|| native.process_value(Value::Int(1)).unwrap())
    });
    group.bench_function("script identity", |b| {
        b.iter(|| script.process_value(Value::Int(1)).unwrap())
    });
    group.finish();
}

fn samples(c: &mut Criterion) {
    let bare = rhai::Engine::new();
    let guarded = ModuleRegistry::new();
    let no_clock = ModuleRegistry::new();
    no_clock
        .set_script_limits(ScriptLimits {
            timeout: None,
            ..ScriptLimits::default()
        })
        .unwrap();
    let unlimited = ModuleRegistry::new();
    unlimited
        .set_script_limits(ScriptLimits::unlimited())
        .unwrap();
    for (name, source) in workloads() {
        let mut group = c.benchmark_group(format!("rhai sample {name}"));
        group.sample_size(20);
        group.bench_function("bare rhai::Engine", |b| {
            b.iter(|| bare.eval::<rhai::Dynamic>(&source).unwrap())
        });
        group.bench_function("registry run_script (default limits)", |b| {
            b.iter(|| guarded.run_script(&source, ()).unwrap())
        });
        group.bench_function("registry run_script (default limits, no timeout)", |b| {
            b.iter(|| no_clock.run_script(&source, ()).unwrap())
        });
        group.bench_function("registry run_script (unlimited)", |b| {
            b.iter(|| unlimited.run_script(&source, ()).unwrap())
        });
        group.finish();
    }
}

/// Rhai's own benchmark scripts (its `scripts/` folder: primes, fibonacci,
/// speed_test, mat_mul), when a folder holding them is named by
/// `MR_RHAI_SCRIPTS` (they are not packaged with the crate; `make
/// bench-report` fetches none, it uses a folder if one is there). The
/// registry runs them with every limit on, each sized so the script fits:
/// what a user who trusts a heavy script would set.
fn rhai_scripts(c: &mut Criterion) {
    let Some(dir) = std::env::var_os("MR_RHAI_SCRIPTS").map(PathBuf::from) else {
        return;
    };
    let bare = rhai::Engine::new();
    let limited = ModuleRegistry::new();
    limited
        .set_script_limits(ScriptLimits {
            max_operations: Some(1_000_000_000),
            max_array_size: Some(2_000_000),
            timeout: Some(std::time::Duration::from_secs(60)),
            ..ScriptLimits::default()
        })
        .unwrap();
    for name in ["fibonacci", "primes", "speed_test", "mat_mul"] {
        let Ok(source) = std::fs::read_to_string(dir.join(format!("{name}.rhai"))) else {
            continue;
        };
        // Rhai's scripts print their timings: keep the output out of the way.
        let quiet = source.replace("print(", "debug_off(");
        let quiet = format!("fn debug_off(x) {{ }}\n{quiet}");
        let mut group = c.benchmark_group(format!("rhai script {name}"));
        group.sample_size(10);
        group.bench_function("bare rhai::Engine", |b| {
            b.iter(|| bare.eval::<rhai::Dynamic>(&quiet).unwrap())
        });
        group.bench_function("registry run_script (limits on)", |b| {
            b.iter(|| limited.run_script(&quiet, ()).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, process, samples, rhai_scripts);
criterion_main!(benches);
