//! Registry operations at scale: register, get, discover (1-3 required
//! capabilities, any-of, none-of) at N = 100 .. 100,000 modules with about
//! three capabilities each from a vocabulary of 200, create, dependency
//! resolution of a 50-module tree, and memory per registered module.
//!
//! Run: `cargo bench -p module-registry --bench registry`
//! The memory figures are printed and written to `target/criterion/memory.json`.

#![allow(unsafe_code)] // the counting allocator below

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use module_registry::{CapabilityQuery, ModuleConfig, ModuleKind, ModuleRegistry};

/// Counts live heap bytes, to measure memory per module.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A small deterministic generator (xorshift), so every run builds the same registry.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const SIZES: [usize; 4] = [100, 1_000, 10_000, 100_000];
const VOCABULARY: u64 = 200;
/// Modules holding the capability pair `needle-a` + `needle-b`, whatever N.
const NEEDLES: usize = 10;

/// N modules with three random capabilities each, plus `NEEDLES` modules
/// that also have `needle-a` and `needle-b`.
fn populate(n: usize) -> ModuleRegistry {
    let registry = ModuleRegistry::builder().audit_capacity(0).build().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..n {
        let mut config = ModuleConfig::new()
            .with_name(format!("module-{i}"))
            .with_version("1.0.0");
        for _ in 0..3 {
            config = config.add_capability(format!("cap-{}", rng.next() % VOCABULARY));
        }
        if i % (n / NEEDLES).max(1) == 0 {
            config = config.add_capability("needle-a").add_capability("needle-b");
        }
        registry.register(config).unwrap();
    }
    registry
}

fn discovery(c: &mut Criterion) {
    let mut group = c.benchmark_group("discover");
    for n in SIZES {
        let registry = populate(n);
        let queries = [
            (
                "1 required",
                CapabilityQuery::new().with_required_capabilities(["cap-7"]),
            ),
            (
                "2 required",
                CapabilityQuery::new().with_required_capabilities(["cap-7", "cap-11"]),
            ),
            (
                "3 required",
                CapabilityQuery::new().with_required_capabilities(["cap-7", "cap-11", "cap-13"]),
            ),
            (
                "2 required, fixed matches",
                CapabilityQuery::new().with_required_capabilities(["needle-a", "needle-b"]),
            ),
            (
                "any-of 2",
                CapabilityQuery::new().with_any_capabilities(["cap-7", "cap-11"]),
            ),
            (
                "2 required, none-of 1",
                CapabilityQuery::new()
                    .with_required_capabilities(["cap-7", "cap-11"])
                    .with_excluded_capabilities(["cap-13"]),
            ),
        ];
        for (label, query) in queries {
            let found = registry.discover(&query).unwrap().len();
            if label.contains("fixed") {
                assert_eq!(found, NEEDLES.min(n));
            }
            group.bench_with_input(BenchmarkId::new(label, n), &query, |b, q| {
                b.iter(|| registry.discover(q).unwrap())
            });
        }
    }
    group.finish();
}

fn operations(c: &mut Criterion) {
    let mut group = c.benchmark_group("operations");
    let registry = populate(10_000);
    // Registration into a registry of 10,000 modules: each sample registers
    // its modules (configs built beforehand, outside the timing) and removes
    // them again after, so the registry stays near its size.
    let mut round = 0u64;
    group.bench_function("register", |b| {
        b.iter_custom(|iters| {
            round += 1;
            let configs: Vec<ModuleConfig> = (0..iters)
                .map(|i| {
                    ModuleConfig::new()
                        .with_name(format!("new-{round}-{i}"))
                        .add_capability("cap-1")
                        .add_capability("cap-2")
                        .add_capability("cap-3")
                })
                .collect();
            let start = std::time::Instant::now();
            for config in configs {
                registry.register(config).unwrap();
            }
            let elapsed = start.elapsed();
            for i in 0..iters {
                registry
                    .unregister(&format!("new-{round}-{i}"), "0.1.0")
                    .unwrap();
            }
            elapsed
        })
    });
    group.bench_function("get", |b| b.iter(|| registry.get("module-5000").unwrap()));
    let natives = ModuleRegistry::with_native_modules();
    group.bench_function("create native", |b| {
        b.iter(|| natives.create("identity").unwrap())
    });
    natives
        .register_script(r#"const MODULE = #{ name: "script-identity" }; fn process(x) { x }"#)
        .unwrap();
    group.bench_function("create script", |b| {
        b.iter(|| natives.create("script-identity").unwrap())
    });

    // A 50-module dependency tree: module i depends on i+1..i+3, two versions each.
    let tree = ModuleRegistry::new();
    for i in 0..50 {
        for v in ["1.0.0", "1.1.0"] {
            let mut config = ModuleConfig::new()
                .with_name(format!("m{i}"))
                .with_version(v);
            for j in (i + 1)..(i + 4).min(50) {
                config = config.with_dependency(format!("m{j}"), "^1");
            }
            tree.register(config).unwrap();
        }
    }
    group.bench_function("resolve 50-module tree", |b| {
        b.iter(|| tree.resolve(ModuleKind::Module, "m0", None).unwrap())
    });
    group.finish();
}

fn memory(_: &mut Criterion) {
    let mut lines = Vec::new();
    for n in SIZES {
        let before = LIVE.load(Ordering::Relaxed);
        let registry = populate(n);
        let after = LIVE.load(Ordering::Relaxed);
        let per = (after - before) as f64 / (n + NEEDLES) as f64;
        println!("memory: {n} modules -> {per:.0} bytes per module");
        lines.push(format!("\"{n}\": {per:.1}"));
        drop(registry);
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("memory.json"),
        format!("{{{}}}\n", lines.join(", ")),
    );
}

criterion_group!(benches, discovery, operations, memory);
criterion_main!(benches);
