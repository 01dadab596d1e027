//! The step cache: hits, misses, what the key covers, what is never kept.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use module_registry::{
    CacheSettings, CacheStatus, CodeId, Error, FnModule, Module, ModuleConfig, ModuleRegistry,
    Value, Workflow, WorkflowStep,
};

use crate::common::temp;

/// A registry with `count` (counts its runs, doubles its input; built by a
/// factory, so it takes a config, which the cache key covers).
fn counting() -> (ModuleRegistry, Arc<AtomicUsize>) {
    let r = ModuleRegistry::with_native_modules();
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = runs.clone();
    r.register(
        ModuleConfig::new()
            .with_name("count")
            .with_factory(move |_| {
                let seen = seen.clone();
                Ok(Box::new(FnModule::new(move |v| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    match v {
                        Value::Opaque(_) => Ok(Value::Null),
                        other => Ok(Value::Int(other.as_int().unwrap_or(0) * 2)),
                    }
                })) as Box<dyn Module>)
            }),
    )
    .unwrap();
    (r, runs)
}

fn cached(module: &str) -> Workflow {
    Workflow::new("w").step(WorkflowStep::module("s", module).cache(true))
}

#[test]
fn a_cached_step_runs_once_per_input() {
    let (r, runs) = counting();
    let wf = cached("count");
    // No cache set: the step runs and says so.
    let first = r.run_workflow(&wf, 2i64).unwrap();
    assert_eq!(first.steps[0].cache, CacheStatus::Off);
    assert!(r.cache_stats().is_none());
    r.set_cache(CacheSettings::default()).unwrap();
    let miss = r.run_workflow(&wf, 2i64).unwrap();
    let hit = r.run_workflow(&wf, 2i64).unwrap();
    assert_eq!(
        (miss.steps[0].cache, hit.steps[0].cache),
        (CacheStatus::Miss, CacheStatus::Hit)
    );
    assert_eq!(hit.output, miss.output);
    assert_eq!(hit.steps[0].attempts, 0);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    // Another input, another config, or a step that does not ask: runs.
    assert_eq!(
        r.run_workflow(&wf, 3i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    let configured = Workflow::new("w").step(
        WorkflowStep::module("s", "count")
            .cache(true)
            .config(Value::from("other")),
    );
    assert_eq!(
        r.run_workflow(&configured, 2i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    let plain = Workflow::new("w").step(WorkflowStep::module("s", "count"));
    assert_eq!(
        r.run_workflow(&plain, 2i64).unwrap().steps[0].cache,
        CacheStatus::Off
    );
    let stats = r.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.entries), (1, 3, 3));
    r.clear_cache().unwrap();
    assert_eq!(r.cache_stats().unwrap(), Default::default());
    assert_eq!(
        r.run_workflow(&wf, 2i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    // Floats by their bits: 0.0 and -0.0 are two inputs.
    r.run_workflow(&wf, 0.0f64).unwrap();
    assert_eq!(
        r.run_workflow(&wf, -0.0f64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
}

#[test]
fn a_new_version_or_new_code_misses() {
    let (r, _) = counting();
    r.set_cache(CacheSettings::default()).unwrap();
    let dir = temp("cache-scripts");
    std::fs::write(dir.join("lib.rhai"), "fn twice(x) { x * 2 }").unwrap();
    let module = |version: &str| {
        format!("import \"lib\" as lib; const MODULE = #{{ name: \"s\", version: \"{version}\" }}; fn process(x) {{ lib::twice(x) }}")
    };
    std::fs::write(dir.join("s.rhai"), module("1.0.0")).unwrap();
    r.load_scripts(&dir).unwrap();
    let wf = cached("s");
    r.run_workflow(&wf, 5i64).unwrap();
    assert_eq!(
        r.run_workflow(&wf, 5i64).unwrap().steps[0].cache,
        CacheStatus::Hit
    );
    // The imported library changed (the module did not): a miss, and the new output.
    std::fs::write(dir.join("lib.rhai"), "fn twice(x) { x + x + 1 }").unwrap();
    r.load_scripts(&dir).unwrap();
    let after = r.run_workflow(&wf, 5i64).unwrap();
    assert_eq!(
        (after.steps[0].cache, after.output.clone()),
        (CacheStatus::Miss, Value::Int(11))
    );
    // A new version is another key too.
    std::fs::write(dir.join("s.rhai"), module("1.1.0")).unwrap();
    r.load_scripts(&dir).unwrap();
    assert_eq!(
        r.run_workflow(&wf, 5i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    // Code given at run time: a replaced registration is new code.
    let replaced = cached("count");
    r.run_workflow(&replaced, 1i64).unwrap();
    r.replace(
        ModuleConfig::new()
            .with_name("count")
            .with_handler(|_| Ok(Value::Int(-1))),
    )
    .unwrap();
    let out = r.run_workflow(&replaced, 1i64).unwrap();
    assert_eq!(
        (out.steps[0].cache, out.output),
        (CacheStatus::Miss, Value::Int(-1))
    );
}

#[test]
fn failures_opaque_inputs_and_uncacheable_modules_are_never_kept() {
    let (r, runs) = counting();
    r.set_cache(CacheSettings {
        memory_items: 2,
        ..Default::default()
    })
    .unwrap();
    let failures = Arc::new(AtomicUsize::new(0));
    let seen = failures.clone();
    r.register(
        ModuleConfig::new()
            .with_name("flaky")
            .with_handler(move |v| {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(Error::invalid_input("first call fails").into())
                } else {
                    Ok(v)
                }
            }),
    )
    .unwrap();
    assert!(r.run_workflow(&cached("flaky"), 1i64).is_err());
    assert_eq!(
        r.run_workflow(&cached("flaky"), 1i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    assert_eq!(
        r.run_workflow(&cached("flaky"), 1i64).unwrap().steps[0].cache,
        CacheStatus::Hit
    );
    let opaque = Value::Opaque(module_registry::value::Opaque::new(5_u8));
    let before = runs.load(Ordering::SeqCst);
    for _ in 0..2 {
        let out = r.run_workflow(&cached("count"), opaque.clone()).unwrap();
        assert_eq!(out.steps[0].cache, CacheStatus::Unhashable);
    }
    assert_eq!(runs.load(Ordering::SeqCst), before + 2);
    assert_eq!(r.cache_stats().unwrap().unhashable, 2);
    r.register(
        ModuleConfig::new()
            .with_name("fresh")
            .with_metadata("cacheable", "false")
            .with_handler(Ok),
    )
    .unwrap();
    assert_eq!(
        r.run_workflow(&cached("fresh"), 1i64).unwrap().steps[0].cache,
        CacheStatus::Off
    );
    // At most `memory_items` outputs are held.
    for n in 0..5i64 {
        r.run_workflow(&cached("count"), n).unwrap();
    }
    assert_eq!(r.cache_stats().unwrap().entries, 2);
    assert!(r
        .set_cache(CacheSettings {
            memory_items: 0,
            ..Default::default()
        })
        .is_err());
}

#[test]
fn workflow_files_and_policy() {
    let wf: Workflow = Workflow::from_toml(
        "name = \"w\"\n[[steps]]\nid = \"s\"\nmodule = \"count\"\ncache = true\n",
    )
    .unwrap();
    assert!(wf.steps[0].cache);
    assert!(wf.to_toml().unwrap().contains("cache = true"));
    assert!(!Workflow::pipeline("p", ["count"])
        .to_toml()
        .unwrap()
        .contains("cache"));
    let (r, _) = counting();
    r.set_policy(Some(crate::common::policy())).unwrap();
    let bob = r.as_principal("bob");
    assert!(matches!(
        bob.with(|r| r.set_cache(CacheSettings::default())),
        Err(Error::PermissionDenied { .. })
    ));
    assert!(matches!(
        bob.with(|r| r.clear_cache()),
        Err(Error::PermissionDenied { .. })
    ));
}

#[test]
fn scripts_mark_steps_cached_too() {
    let (r, runs) = counting();
    r.set_cache(CacheSettings::default()).unwrap();
    let script = r#"
        let wf = workflow("w");
        wf.step(#{ id: "s", "module": "count", cache: true });
        let a = registry.run_workflow(wf, 4);
        let b = registry.run_workflow(wf, 4);
        [a.steps[0].cache, b.steps[0].cache, b.output]
    "#;
    let out = r.run_script(script, Value::Null).unwrap();
    assert_eq!(
        out,
        Value::List(vec![Value::from("miss"), Value::from("hit"), Value::Int(8)])
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn opaque_inputs_with_a_token_are_cached() {
    let (r, runs) = counting();
    r.set_cache(CacheSettings::default()).unwrap();
    r.set_opaque_token(Arc::new(|o: &module_registry::value::Opaque| {
        o.downcast_ref::<u32>().map(|n| n.to_le_bytes().to_vec())
    }));
    let wf = cached("count");
    let seven = || Value::Opaque(module_registry::value::Opaque::new(7_u32));
    assert_eq!(
        r.run_workflow(&wf, seven()).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    assert_eq!(
        r.run_workflow(&wf, seven()).unwrap().steps[0].cache,
        CacheStatus::Hit
    );
    let eight = Value::Opaque(module_registry::value::Opaque::new(8_u32));
    assert_eq!(
        r.run_workflow(&wf, eight).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    // No token for this type: unhashable.
    let other = Value::Opaque(module_registry::value::Opaque::new("text"));
    assert_eq!(
        r.run_workflow(&wf, other).unwrap().steps[0].cache,
        CacheStatus::Unhashable
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[cfg(feature = "cache-disk")]
fn on_disk(dir: &std::path::Path, max_bytes: Option<u64>) -> CacheSettings {
    CacheSettings {
        path: Some(dir.to_path_buf()),
        max_bytes,
        ..CacheSettings::default()
    }
}

#[cfg(feature = "cache-disk")]
#[test]
fn the_disk_cache_outlives_the_registry() {
    let dir = temp("cache-disk");
    let _ = std::fs::remove_dir_all(&dir);
    let script = r#"const MODULE = #{ name: "inc", version: "1.0.0" }; fn process(x) { x + 1 }"#;
    let wf = cached("inc");
    {
        let r = ModuleRegistry::new();
        r.register_script(script).unwrap();
        r.set_cache(on_disk(&dir, None)).unwrap();
        assert_eq!(
            r.run_workflow(&wf, 1i64).unwrap().steps[0].cache,
            CacheStatus::Miss
        );
        let stats = r.cache_stats().unwrap();
        assert_eq!(stats.entries, 1);
        assert!(stats.bytes > 0);
    }
    // Another registry (as another process would): the same script, a hit.
    let r = ModuleRegistry::new();
    r.register_script(script).unwrap();
    r.set_cache(on_disk(&dir, None)).unwrap();
    let out = r.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(
        (out.steps[0].cache, out.output),
        (CacheStatus::Hit, Value::Int(2))
    );
    // Code known only by its registration stays in memory: a new registry misses.
    let (code, _) = counting();
    code.set_cache(on_disk(&dir, None)).unwrap();
    code.run_workflow(&cached("count"), 5i64).unwrap();
    let (again, _) = counting();
    again.set_cache(on_disk(&dir, None)).unwrap();
    assert_eq!(
        again.run_workflow(&cached("count"), 5i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    // ... unless it declares its code_version.
    let versioned = || {
        let r = ModuleRegistry::new();
        r.register(
            ModuleConfig::new()
                .with_name("v")
                .with_metadata("code_version", "7")
                .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) * 10))),
        )
        .unwrap();
        r.set_cache(on_disk(&dir, None)).unwrap();
        r
    };
    versioned().run_workflow(&cached("v"), 3i64).unwrap();
    let out = versioned().run_workflow(&cached("v"), 3i64).unwrap();
    assert_eq!(
        (out.steps[0].cache, out.output),
        (CacheStatus::Hit, Value::Int(30))
    );
    r.clear_cache().unwrap();
    assert_eq!(r.cache_stats().unwrap().entries, 0);
}

#[cfg(feature = "cache-disk")]
#[test]
fn a_damaged_cache_file_is_replaced_and_eviction_keeps_the_bound() {
    let dir = temp("cache-damaged");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(module_registry::cache::FILE_NAME);
    std::fs::write(&file, b"SQLite format 3\0 but then nothing more").unwrap();
    let r = ModuleRegistry::new();
    r.register_script(r#"const MODULE = #{ name: "blob", version: "1.0.0" }; fn process(n) { let s = ""; s.pad(n, 'x'); s }"#)
        .unwrap();
    r.set_cache(on_disk(&dir, Some(64 * 1024))).unwrap();
    assert!(
        std::fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .contains("damaged")),
        "the damaged file is set aside"
    );
    let wf = cached("blob");
    for n in 0..60i64 {
        r.run_workflow(&wf, 2000 + n).unwrap();
    }
    let stats = r.cache_stats().unwrap();
    assert!(stats.bytes <= 64 * 1024, "{stats:?}");
    assert!(stats.entries < 60, "older entries were dropped: {stats:?}");
    drop(r);
    // Closed, the file itself keeps within the bound (its own pages included).
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size <= 64 * 1024, "{size} bytes");
}

#[cfg(feature = "cache-disk")]
#[test]
fn code_given_at_run_time_with_a_digest_goes_to_disk() {
    let dir = temp("cache-digest");
    let _ = std::fs::remove_dir_all(&dir);
    let asked = Arc::new(AtomicUsize::new(0));
    let make = |digest: &'static str| {
        let (r, _) = counting();
        r.set_cache(on_disk(&dir, None)).unwrap();
        let seen = asked.clone();
        r.set_code_digest(Arc::new(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
            CodeId::Digest(digest.to_string())
        }));
        r
    };
    make("code-a").run_workflow(&cached("count"), 4i64).unwrap();
    let again = make("code-a");
    let out = again.run_workflow(&cached("count"), 4i64).unwrap();
    assert_eq!(
        (out.steps[0].cache, out.output),
        (CacheStatus::Hit, Value::Int(8))
    );
    again
        .run_workflow_batch(&cached("count"), [5i64, 6, 7, 8])
        .unwrap();
    // Once per run (a batch is one run), never per input.
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    // Other code under the same name and version: a miss.
    assert_eq!(
        make("code-b")
            .run_workflow(&cached("count"), 4i64)
            .unwrap()
            .steps[0]
            .cache,
        CacheStatus::Miss
    );
}

#[cfg(feature = "cache-disk")]
#[test]
fn one_output_larger_than_max_bytes_is_not_kept_and_the_rest_stays() {
    let dir = temp("cache-too-big");
    let _ = std::fs::remove_dir_all(&dir);
    let r = ModuleRegistry::new();
    r.register(
        ModuleConfig::new()
            .with_name("blob")
            .with_metadata("code_version", "1")
            .with_handler(|v| Ok(Value::Bytes(vec![1u8; v.as_int().unwrap_or(0) as usize]))),
    )
    .unwrap();
    r.set_cache(on_disk(&dir, Some(256 * 1024))).unwrap();
    let wf = cached("blob");
    for n in 1..=20i64 {
        r.run_workflow(&wf, n * 100).unwrap();
    }
    let before = r.cache_stats().unwrap();
    assert_eq!(before.entries, 20);
    // Larger than the whole bound: it emptied the cache; now it is not kept.
    r.run_workflow(&wf, 1_000_000i64).unwrap();
    // Large, but under the bound once the others' pages are counted: kept
    // only if it fits, never by emptying everything and itself.
    r.run_workflow(&wf, 150_000i64).unwrap();
    let after = r.cache_stats().unwrap();
    assert!(after.entries >= 20, "{before:?} then {after:?}");
    assert!(after.bytes <= 256 * 1024, "{after:?}");
    r.clear_cache().unwrap();
    // The outputs kept in memory are not what is checked: a fresh registry.
    drop(r);
    let fresh = ModuleRegistry::new();
    fresh
        .register(
            ModuleConfig::new()
                .with_name("blob")
                .with_metadata("code_version", "1")
                .with_handler(|v| Ok(Value::Bytes(vec![1u8; v.as_int().unwrap_or(0) as usize]))),
        )
        .unwrap();
    fresh.set_cache(on_disk(&dir, Some(256 * 1024))).unwrap();
    for n in 1..=20i64 {
        fresh.run_workflow(&wf, n * 100).unwrap();
    }
    fresh.run_workflow(&wf, 1_000_000i64).unwrap();
    let hits = (1..=20i64)
        .filter(|n| fresh.run_workflow(&wf, n * 100).unwrap().steps[0].cache == CacheStatus::Hit)
        .count();
    assert_eq!(hits, 20, "the other entries are still there");
}

#[test]
fn a_huge_memory_items_reserves_nothing_ahead() {
    let (r, _) = counting();
    for items in [100_000_000usize, 10_000_000_000, usize::MAX] {
        r.set_cache(CacheSettings {
            memory_items: items,
            ..CacheSettings::default()
        })
        .unwrap();
        r.run_workflow(&cached("count"), 1i64).unwrap();
        let hit = r.run_workflow(&cached("count"), 1i64).unwrap();
        assert_eq!(hit.steps[0].cache, CacheStatus::Hit);
    }
}

#[test]
fn the_key_covers_the_code_of_dependencies_transitively() {
    let r = ModuleRegistry::new();
    let leaf = |add: i64| {
        ModuleConfig::new()
            .with_name("leaf")
            .with_handler(move |v| Ok(Value::Int(v.as_int().unwrap_or(0) + add)))
    };
    r.register(leaf(1)).unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("middle")
            .with_dependency("leaf", "^0.1")
            .with_handler(Ok),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("top")
            .with_dependency("middle", "^0.1")
            .with_handler(Ok),
    )
    .unwrap();
    r.set_cache(CacheSettings::default()).unwrap();
    let digests = Arc::new(AtomicUsize::new(0));
    let version = digests.clone();
    // The binding's digest of the leaf's code changes as its code would.
    r.set_code_digest(Arc::new(move |info| {
        if info.name() == "leaf" {
            CodeId::Digest(format!("leaf-{}", version.load(Ordering::SeqCst)))
        } else {
            CodeId::Digest(info.name().to_string())
        }
    }));
    let wf = cached("top");
    assert_eq!(
        r.run_workflow(&wf, 1i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    assert_eq!(
        r.run_workflow(&wf, 1i64).unwrap().steps[0].cache,
        CacheStatus::Hit
    );
    digests.store(1, Ordering::SeqCst); // two levels down
    assert_eq!(
        r.run_workflow(&wf, 1i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
    // Without a digest, a dependency is known by its registration: a
    // replaced one misses.
    let plain = ModuleRegistry::new();
    plain.register(leaf(1)).unwrap();
    plain
        .register(
            ModuleConfig::new()
                .with_name("middle")
                .with_dependency("leaf", "^0.1")
                .with_handler(Ok),
        )
        .unwrap();
    plain.set_cache(CacheSettings::default()).unwrap();
    let wf = cached("middle");
    plain.run_workflow(&wf, 1i64).unwrap();
    assert_eq!(
        plain.run_workflow(&wf, 1i64).unwrap().steps[0].cache,
        CacheStatus::Hit
    );
    plain.replace(leaf(2)).unwrap();
    assert_eq!(
        plain.run_workflow(&wf, 1i64).unwrap().steps[0].cache,
        CacheStatus::Miss
    );
}

#[test]
fn code_without_a_stable_digest_is_never_cached() {
    let (r, runs) = counting();
    r.set_cache(CacheSettings::default()).unwrap();
    r.set_code_digest(Arc::new(|_| CodeId::Unhashable("holds a socket".into())));
    let wf = cached("count");
    for _ in 0..3 {
        let out = r.run_workflow(&wf, 2i64).unwrap();
        assert_eq!(
            (out.steps[0].cache, out.output),
            (CacheStatus::Unhashable, Value::Int(4))
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(r.cache_stats().unwrap().unhashable, 3);
}

#[test]
fn keys_of_look_alike_inputs_differ() {
    use module_registry::cache::step_key;
    let (r, _) = counting();
    let info = r.get("count").unwrap();
    let map = |pairs: &[(&str, i64)]| {
        Value::Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::Int(*v)))
                .collect(),
        )
    };
    let inputs = [
        Value::Int(1),
        Value::Float(1.0),
        Value::Bool(true),
        Value::from("1"),
        Value::Bytes(b"1".to_vec()),
        Value::List(vec![Value::Int(1)]),
        Value::Null,
        Value::Float(0.0),
        Value::Float(-0.0),
        Value::Float(f64::NAN),
        Value::Int(0),
        Value::Bool(false),
        Value::from(""),
        Value::Bytes(Vec::new()),
        Value::List(Vec::new()),
        map(&[]),
        map(&[("a", 1), ("b", 2)]),
        map(&[("b", 2), ("a", 1)]),
        Value::List(vec![Value::from("ab"), Value::from("c")]),
        Value::List(vec![Value::from("a"), Value::from("bc")]),
        Value::List(vec![Value::List(vec![Value::Int(1)]), Value::Int(2)]),
        Value::List(vec![Value::Int(1), Value::List(vec![Value::Int(2)])]),
    ];
    let keys: std::collections::HashSet<_> = inputs
        .iter()
        .map(|v| step_key(&info, &Value::Null, v, None, None).unwrap())
        .collect();
    assert_eq!(keys.len(), inputs.len());
    // The config and the input are told apart too.
    assert_ne!(
        step_key(&info, &Value::Int(1), &Value::Null, None, None),
        step_key(&info, &Value::Null, &Value::Int(1), None, None)
    );
    // And the code: two digests of the step's code, two keys.
    assert_ne!(
        step_key(&info, &Value::Null, &Value::Null, None, Some(b"a")),
        step_key(&info, &Value::Null, &Value::Null, None, Some(b"b"))
    );
}

#[cfg(not(feature = "cache-disk"))]
#[test]
fn a_cache_with_a_folder_needs_the_cache_disk_feature() {
    let (r, _) = counting();
    let dir = temp("no-cache-disk");
    let settings = CacheSettings {
        path: Some(dir.clone()),
        ..CacheSettings::default()
    };
    let err = r.set_cache(settings).unwrap_err();
    assert!(
        matches!(
            err,
            Error::FeatureDisabled {
                feature: "cache-disk",
                ..
            }
        ),
        "{err}"
    );
    // Nothing changed: no cache, no file; a cache in memory is fine.
    assert!(r.cache_settings().is_none());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    r.set_cache(CacheSettings::default()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
