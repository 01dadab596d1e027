//! Metrics: module calls by outcome, workflow runs and steps, the cache,
//! denials, pools, the text format and its escaping, counting off, merging.

use std::sync::Arc;

use module_registry::live::PoolOptions;
use module_registry::{
    AccessPolicy, CacheSettings, ModuleConfig, ModuleRegistry, Permission, Value, Workflow,
    WorkflowStep,
};

const CALLS: &str = "module_registry_module_calls_total";

fn registry() -> ModuleRegistry {
    let r = ModuleRegistry::new();
    r.register(
        ModuleConfig::new()
            .with_name("halve")
            .with_version("1.0.0")
            .with_handler(|v| match v.as_int() {
                Some(n) if n % 2 == 0 => Ok(Value::from(n / 2)),
                _ => Err("odd".into()),
            }),
    )
    .unwrap();
    r
}

#[test]
fn calls_are_counted_per_outcome_with_their_durations() {
    let r = registry();
    let halve = r.create("halve").unwrap();
    for n in [2i64, 4, 6, 1] {
        let _ = halve.process(n);
    }
    let m = r.metrics().unwrap();
    let ok = [("module", "halve"), ("version", "1.0.0"), ("outcome", "ok")];
    assert_eq!(m.value(CALLS, &ok), 3);
    assert_eq!(
        m.value(
            CALLS,
            &[("outcome", "failed"), ("implementation", "native")]
        ),
        1
    );
    assert_eq!(
        m.value(
            "module_registry_module_call_duration_seconds",
            &[("module", "halve")]
        ),
        4
    );
    let text = m.to_prometheus();
    assert!(text.contains(
        "module_registry_module_calls_total{module=\"halve\",version=\"1.0.0\",implementation=\"native\",outcome=\"ok\"} 3"
    ), "{text}");
    assert!(text.contains("module_registry_module_call_duration_seconds_count{module=\"halve\",version=\"1.0.0\",implementation=\"native\"} 4"));
    assert!(text.contains("le=\"+Inf\"} 4"));
    assert!(text.contains("module_registry_modules{kind=\"module\",implementation=\"native\"} 1"));
}

#[test]
fn sixteen_threads_keep_exact_counts() {
    let r = registry();
    let halve = Arc::new(r.create("halve").unwrap());
    std::thread::scope(|s| {
        for _ in 0..16 {
            let halve = halve.clone();
            s.spawn(move || {
                for n in 0..1000i64 {
                    let _ = halve.process(n);
                }
            });
        }
    });
    let m = r.metrics().unwrap();
    assert_eq!(m.value(CALLS, &[("outcome", "ok")]), 8000);
    assert_eq!(m.value(CALLS, &[("outcome", "failed")]), 8000);
}

#[test]
fn counting_off_keeps_what_was_counted_and_on_resumes() {
    let r = registry();
    let halve = r.create("halve").unwrap();
    halve.process(2i64).unwrap();
    r.set_metrics(false).unwrap();
    halve.process(2i64).unwrap();
    let off = r.metrics().unwrap();
    assert!(!off.enabled);
    assert_eq!(off.value(CALLS, &[]), 1);
    r.set_metrics(true).unwrap();
    halve.process(2i64).unwrap();
    assert_eq!(r.metrics().unwrap().value(CALLS, &[]), 2);
}

#[test]
fn only_modules_that_were_called_have_series() {
    let r = ModuleRegistry::new();
    for i in 0..2000 {
        r.register(
            ModuleConfig::new()
                .with_name(format!("m{i}"))
                .with_version("1.0.0")
                .with_handler(Ok),
        )
        .unwrap();
    }
    r.create("m7").unwrap().process(1i64).unwrap();
    let _never_called = r.create("m8").unwrap();
    let m = r.metrics().unwrap();
    assert_eq!(m.family(CALLS).unwrap().samples.len(), 1);
    assert_eq!(
        m.value("module_registry_modules", &[("kind", "module")]),
        2000
    );
}

#[test]
fn workflows_steps_and_the_cache_are_counted() {
    let r = registry();
    r.set_cache(CacheSettings::default()).unwrap();
    let wf = Workflow::new("w").step(WorkflowStep::module("half", "halve").cache(true));
    r.run_workflow(&wf, 4i64).unwrap();
    r.run_workflow(&wf, 4i64).unwrap(); // a hit: the module is not called
    assert!(r.run_workflow(&wf, 3i64).is_err());
    let m = r.metrics().unwrap();
    assert_eq!(
        m.value(
            "module_registry_workflow_runs_total",
            &[("workflow", "w"), ("outcome", "ok")]
        ),
        2
    );
    assert_eq!(
        m.value(
            "module_registry_workflow_runs_total",
            &[("outcome", "failed")]
        ),
        1
    );
    let steps = "module_registry_step_runs_total";
    assert_eq!(m.value(steps, &[("step", "half"), ("status", "ok")]), 1);
    assert_eq!(m.value(steps, &[("status", "cached")]), 1);
    assert_eq!(m.value(steps, &[("status", "failed")]), 1);
    assert_eq!(
        m.value("module_registry_step_duration_seconds", &[("step", "half")]),
        3
    );
    let cache = "module_registry_cache_requests_total";
    assert_eq!(m.value(cache, &[("result", "hit")]), 1);
    assert_eq!(m.value(cache, &[("result", "miss")]), 2);
    // The step's module calls count; the cache hit does not.
    assert_eq!(m.value(CALLS, &[("module", "halve")]), 2);
}

#[test]
fn label_values_are_escaped() {
    let r = registry();
    let name = "a \"quoted\"\nname \\ here";
    let wf = Workflow::new(name).step(WorkflowStep::module("s", "halve"));
    r.run_workflow(&wf, 2i64).unwrap();
    let text = r.metrics().unwrap().to_prometheus();
    assert!(
        text.contains(r#"module_registry_workflow_runs_total{workflow="a \"quoted\"\nname \\ here",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("name ")));
}

#[test]
fn denials_are_counted_and_reading_needs_admin() {
    let r = registry();
    let mut p = AccessPolicy::new();
    p.grant("reader", [Permission::Discover], "*").unwrap();
    p.grant("root", [Permission::Admin], "*").unwrap();
    p.assign("carol", "reader").assign("ops", "root");
    r.set_policy(Some(p)).unwrap();
    let carol = r.as_principal("carol");
    assert!(carol.create("halve").is_err());
    assert!(carol.metrics().is_err());
    assert!(carol.set_metrics(false).is_err());
    let m = r.as_principal("ops").metrics().unwrap();
    let denials = "module_registry_denials_total";
    assert_eq!(m.value(denials, &[("operation", "create")]), 1);
    assert_eq!(m.value(denials, &[("operation", "metrics")]), 1);
    assert_eq!(m.value(denials, &[("operation", "set_metrics")]), 1);
}

#[test]
fn pools_report_their_instances_by_state() {
    let r = registry();
    let pool = r.pool("halve", PoolOptions::new(3)).unwrap();
    pool.process(2i64).unwrap();
    let m = r.metrics().unwrap();
    let gauge = "module_registry_pool_instances";
    assert_eq!(
        m.value(gauge, &[("pool", "pool of halve"), ("state", "idle")]),
        3
    );
    assert_eq!(m.value(gauge, &[("state", "busy")]), 0);
    pool.close().unwrap();
    assert_eq!(r.metrics().unwrap().value(gauge, &[]), 0);
}

#[test]
fn counts_made_elsewhere_merge() {
    let driver = registry();
    let worker = registry();
    let before = worker.metrics().unwrap();
    let halve = worker.create("halve").unwrap();
    halve.process(2i64).unwrap();
    let _ = halve.process(1i64);
    let delta = worker.metrics().unwrap().since(&before);
    driver.merge_metrics(&delta).unwrap();
    driver.merge_metrics(&delta).unwrap();
    let m = driver.metrics().unwrap();
    assert_eq!(m.value(CALLS, &[("outcome", "ok")]), 2);
    assert_eq!(m.value(CALLS, &[("outcome", "failed")]), 2);
    assert_eq!(
        m.value("module_registry_module_call_duration_seconds", &[]),
        4
    );
    // A snapshot naming a metric this crate does not define is refused.
    let mut bad = delta.clone();
    bad.families[0].name = "module_registry_nonsense".into();
    assert!(driver.merge_metrics(&bad).is_err());
}

#[test]
fn a_delta_returns_each_count_once() {
    let r = registry();
    let halve = r.create("halve").unwrap();
    halve.process(2i64).unwrap();
    let first = r.take_metrics_delta().unwrap();
    assert_eq!(first.value(CALLS, &[]), 1);
    assert!(
        first.family("module_registry_modules").is_none(),
        "no gauges"
    );
    assert_eq!(r.take_metrics_delta().unwrap().value(CALLS, &[]), 0);
    halve.process(4i64).unwrap();
    let _ = halve.process(3i64);
    let third = r.take_metrics_delta().unwrap();
    assert_eq!(third.value(CALLS, &[("outcome", "ok")]), 1);
    assert_eq!(third.value(CALLS, &[("outcome", "failed")]), 1);
    // The registry's own snapshot still has everything.
    assert_eq!(r.metrics().unwrap().value(CALLS, &[]), 3);
}

#[test]
fn calls_by_module_sums_versions_and_estimates_the_median() {
    let r = registry();
    r.register(
        ModuleConfig::new()
            .with_name("halve")
            .with_version("2.0.0")
            .with_handler(Ok),
    )
    .unwrap();
    let old = r.create_version("halve", "=1.0.0").unwrap();
    let new = r.create("halve").unwrap();
    old.process(2i64).unwrap();
    let _ = old.process(1i64);
    new.process(1i64).unwrap();
    let by_module = r.metrics().unwrap().calls_by_module();
    let halve = by_module["halve"];
    assert_eq!((halve.calls, halve.failures), (3, 1));
    let median = halve.median_seconds.unwrap();
    assert!(median > 0.0 && median < 67.0, "{median}");
    assert_eq!(by_module.len(), 1);
}

#[test]
fn the_median_is_interpolated_within_its_bucket() {
    use module_registry::metrics::{HistogramValue, BUCKET_BOUNDS_SECONDS};
    let mut buckets = vec![0; BUCKET_BOUNDS_SECONDS.len() + 1];
    buckets[1] = 4; // four calls between 1 µs and 4 µs
    let h = HistogramValue { buckets, sum: 1e-5 };
    let median = h.median().unwrap();
    assert!((median - 2.5e-6).abs() < 1e-12, "{median}");
    let empty = HistogramValue {
        buckets: vec![0; BUCKET_BOUNDS_SECONDS.len() + 1],
        sum: 0.0,
    };
    assert_eq!(empty.median(), None);
}

#[test]
fn worker_counts_merge_into_the_metrics_and_the_cache_stats() {
    let driver = registry();
    driver.set_cache(CacheSettings::default()).unwrap();
    let worker = registry();
    worker.set_cache(CacheSettings::default()).unwrap();
    let wf = Workflow::new("w").step(WorkflowStep::module("half", "halve").cache(true));
    worker.run_workflow(&wf, 4i64).unwrap();
    worker.run_workflow(&wf, 4i64).unwrap();
    worker.run_workflow(&wf, 4i64).unwrap();
    let delta = worker.take_metrics_delta().unwrap();
    driver.merge_worker_metrics(&delta).unwrap();
    let stats = driver.cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (2, 1));
    let m = driver.metrics().unwrap();
    assert_eq!(
        m.value("module_registry_cache_requests_total", &[("result", "hit")]),
        2
    );
    assert_eq!(
        m.value("module_registry_workflow_runs_total", &[("outcome", "ok")]),
        3
    );
    assert_eq!(m.value(CALLS, &[("module", "halve")]), 1);
}
