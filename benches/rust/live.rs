//! Live modules: what a pool adds to a call, and how soon a reloaded
//! script is what `create` builds.
//!
//! Run: `cargo bench -p module-registry --bench live`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use module_registry::{ModuleRegistry, PoolOptions, Value};

fn pools(c: &mut Criterion) {
    let registry = ModuleRegistry::with_native_modules();
    let instance = registry.create("identity").unwrap();
    let pool = registry.pool("identity", PoolOptions::new(4)).unwrap();
    let mut group = c.benchmark_group("pool");
    group.bench_function("instance.process, native identity", |b| {
        b.iter(|| instance.process_value(Value::Int(1)).unwrap())
    });
    group.bench_function("pool.process, native identity (4 instances)", |b| {
        b.iter(|| pool.process_value(Value::Int(1)).unwrap())
    });
    group.finish();
}

/// From the end of a file's write to the first `create` that runs the new
/// code (the watcher debounces for 50 ms, so that editors' several writes
/// make one reload).
fn reload(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("mr-bench-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hot.rhai");
    let text = |n: u64| {
        format!(
            "const MODULE = #{{ name: \"hot\", version: \"1.0.0\" }};\nfn process(x) {{ {n} }}\n"
        )
    };
    std::fs::write(&file, text(0)).unwrap();
    let registry = ModuleRegistry::new();
    let watcher = registry.watch_scripts(&dir, |_| {}).unwrap();
    let mut n = 0u64;
    let mut group = c.benchmark_group("reload");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("write to visible in create", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let tmp = dir.join("hot.rhai.tmp");
                std::fs::write(&tmp, text(n)).unwrap();
                std::fs::rename(&tmp, &file).unwrap();
                let written = Instant::now();
                let want = Value::Int(n as i64);
                loop {
                    let now = registry.create("hot").and_then(|i| i.process(()));
                    if now.as_ref().ok() == Some(&want) {
                        break;
                    }
                    assert!(written.elapsed() < Duration::from_secs(5), "no reload");
                    std::thread::sleep(Duration::from_micros(500));
                }
                total += written.elapsed();
            }
            total
        })
    });
    group.finish();
    watcher.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, pools, reload);
criterion_main!(benches);
