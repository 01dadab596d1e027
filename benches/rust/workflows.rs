//! Workflow overhead: a 10-step chain of the trivial `identity` module,
//! against calling the same ten instances directly.
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

criterion_group!(benches, workflows);
criterion_main!(benches);
