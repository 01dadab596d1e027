//! Workflow overhead: a 10-step chain of the trivial `identity` module,
//! against calling the same ten instances directly; the step cache; drawing
//! a big workflow.
//!
//! Run: `cargo bench -p module-registry --bench workflows`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use module_registry::{ModuleRegistry, Value, Workflow};

const STEPS: usize = 10;

fn workflows(c: &mut Criterion) {
    let registry = ModuleRegistry::with_native_modules();
    let wf: Workflow = registry.pipeline(std::iter::repeat_n("identity", STEPS));
    let instances: Vec<_> = (0..STEPS)
        .map(|_| registry.create("identity").unwrap())
        .collect();
    let mut group = c.benchmark_group("10-step identity chain");
    group.bench_function("direct process calls", |b| {
        b.iter(|| {
            let mut v = Value::Int(1);
            for i in &instances {
                v = i.process_value(v).unwrap();
            }
            v
        })
    });
    group.bench_function("run_workflow (check, build, run, close)", |b| {
        b.iter(|| registry.run_workflow(&wf, 1i64).unwrap().output)
    });
    // Per-run cost with the instances reused across a batch of 100 inputs.
    group.bench_function("run_workflow_batch, per 100 runs", |b| {
        b.iter_batched(
            || (0..100i64).map(Value::Int).collect::<Vec<_>>(),
            |inputs| registry.run_workflow_batch(&wf, inputs).unwrap().len(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// The step cache: a memory hit beside the cost of the key alone, hashing a
/// 1 MiB input, and a 10-step chain of 100 µs steps re-run fully cached.
fn cache(c: &mut Criterion) {
    use module_registry::{CacheSettings, ModuleConfig, WorkflowStep};
    use std::time::{Duration, Instant};

    let registry = ModuleRegistry::with_native_modules();
    registry.set_cache(CacheSettings::default()).unwrap();
    registry
        .register(ModuleConfig::new().with_name("busy").with_handler(|v| {
            let until = Instant::now() + Duration::from_micros(100);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
            Ok(v)
        }))
        .unwrap();
    let small = Value::from("a small input of some forty bytes or so");
    let identity = registry.get("identity").unwrap();
    let one =
        |cache: bool| Workflow::new("one").step(WorkflowStep::module("s", "identity").cache(cache));
    let (cached, plain) = (one(true), one(false));
    registry.run_workflow(&cached, small.clone()).unwrap();
    let mut group = c.benchmark_group("cache");
    group.bench_function("key of a small input", |b| {
        b.iter(|| module_registry::cache::step_key(&identity, &Value::Null, &small, None, None))
    });
    group.bench_function("1-step workflow, uncached", |b| {
        b.iter(|| registry.run_workflow(&plain, small.clone()).unwrap().output)
    });
    group.bench_function("1-step workflow, memory hit", |b| {
        b.iter(|| {
            registry
                .run_workflow(&cached, small.clone())
                .unwrap()
                .output
        })
    });
    let big = Value::Bytes(vec![7u8; 1 << 20]);
    group.bench_function("key of a 1 MiB bytes input", |b| {
        b.iter(|| module_registry::cache::step_key(&identity, &Value::Null, &big, None, None))
    });
    let chain = |cache: bool| {
        (0..10).fold(Workflow::new("busy"), |wf, n| {
            wf.step(WorkflowStep::module(format!("s{n}"), "busy").cache(cache))
        })
    };
    let (busy_cached, busy_plain) = (chain(true), chain(false));
    registry.run_workflow(&busy_cached, 1i64).unwrap();
    group.bench_function("10 steps of 100 us, uncached", |b| {
        b.iter(|| registry.run_workflow(&busy_plain, 1i64).unwrap().output)
    });
    group.bench_function("10 steps of 100 us, all cached", |b| {
        b.iter(|| registry.run_workflow(&busy_cached, 1i64).unwrap().output)
    });
    // A disk hit: one output in memory, so two alternating inputs are read
    // back from the file each time.
    let dir = std::env::temp_dir().join(format!("mr-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let disk = ModuleRegistry::new();
    disk.register_script(
        r#"const MODULE = #{ name: "kib", version: "1.0.0" }; fn process(x) { let s = ""; s.pad(1024, 'x'); s }"#,
    )
    .unwrap();
    disk.set_cache(CacheSettings {
        memory_items: 1,
        path: Some(dir.clone()),
        max_bytes: None,
    })
    .unwrap();
    let kib = Workflow::new("kib").step(WorkflowStep::module("s", "kib").cache(true));
    let kib_plain = Workflow::new("kib").step(WorkflowStep::module("s", "kib"));
    for n in 0..2i64 {
        disk.run_workflow(&kib, n).unwrap();
    }
    let mut n = 0i64;
    group.bench_function("1-step workflow, disk hit (1 KiB output)", |b| {
        b.iter(|| {
            n = 1 - n;
            disk.run_workflow(&kib, n).unwrap().output
        })
    });
    group.bench_function("1-step workflow, uncached (1 KiB output)", |b| {
        b.iter(|| disk.run_workflow(&kib_plain, 0i64).unwrap().output)
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Drawing a 1,000-step workflow of 500 parallel two-step branches as SVG:
/// the static picture and a run's (layout and rendering, no I/O).
fn pictures(c: &mut Criterion) {
    #[cfg(feature = "pictures")]
    {
        use module_registry::WorkflowStep;
        let mut wf = Workflow::new("wide");
        for b in 0..500 {
            wf.add_step(WorkflowStep::module(format!("a{b}"), "identity").after([]));
            wf.add_step(WorkflowStep::module(format!("b{b}"), "identity").after([format!("a{b}")]));
        }
        let registry = ModuleRegistry::with_native_modules();
        let result = registry.run_workflow(&wf, 1i64).unwrap();
        let mut group = c.benchmark_group("pictures");
        group.sample_size(20);
        group.bench_function("1000 steps in 500 branches, workflow", |b| {
            b.iter(|| wf.to_svg().unwrap().len())
        });
        group.bench_function("1000 steps in 500 branches, run", |b| {
            b.iter(|| result.to_svg(&wf).unwrap().len())
        });
        group.finish();
    }
    #[cfg(not(feature = "pictures"))]
    let _ = c;
}

criterion_group!(benches, workflows, cache, pictures);
criterion_main!(benches);
