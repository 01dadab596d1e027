//! Instance pools (`registry.pool`), workflow steps on pools, cancelling
//! runs, and (feature `watch`) script folders reloaded as files change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use module_registry::live::{PoolOptions, Strategy};
use module_registry::{CapabilityQuery, Error, Module, ModuleRegistry, Value};

use crate::common::config;

/// A module whose instances each count their own calls and say which
/// instance they are; `busy` tells whether two calls ever overlapped on
/// one instance.
struct Tally {
    id: usize,
    calls: AtomicUsize,
    inside: AtomicBool,
    overlapped: Arc<AtomicBool>,
}

impl Module for Tally {
    fn process(&self, input: Value) -> std::result::Result<Value, module_registry::BoxError> {
        if self.inside.swap(true, Ordering::SeqCst) {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        if let Value::Int(ms) = input {
            std::thread::sleep(Duration::from_millis(ms as u64));
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inside.store(false, Ordering::SeqCst);
        Ok(Value::Int(self.id as i64))
    }
}

fn tally_registry(overlapped: &Arc<AtomicBool>) -> ModuleRegistry {
    let registry = ModuleRegistry::new();
    let ids = Arc::new(AtomicUsize::new(0));
    let overlapped = overlapped.clone();
    registry
        .register(config("tally", "1.0.0", &["count"]).with_factory(move |_| {
            Ok(Box::new(Tally {
                id: ids.fetch_add(1, Ordering::SeqCst),
                calls: AtomicUsize::new(0),
                inside: AtomicBool::new(false),
                overlapped: overlapped.clone(),
            }) as Box<dyn Module>)
        }))
        .unwrap();
    registry
}

#[test]
fn round_robin_spreads_calls_over_every_instance() {
    let overlapped = Arc::new(AtomicBool::new(false));
    let registry = tally_registry(&overlapped);
    let pool = registry.pool("tally", PoolOptions::new(4)).unwrap();
    assert_eq!(pool.len(), 4);
    let mut seen = HashMap::new();
    for _ in 0..40 {
        let Value::Int(id) = pool.process(Value::Null).unwrap() else {
            panic!("not an id")
        };
        *seen.entry(id).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.values().all(|&n| n == 10), "{seen:?}");
    let stats = pool.stats();
    assert_eq!(stats.len(), 4);
    assert!(stats
        .iter()
        .all(|s| s.calls == 10 && s.state == "idle" && s.provider == "tally@1.0.0"));
}

#[test]
fn concurrent_calls_never_share_an_instance() {
    let overlapped = Arc::new(AtomicBool::new(false));
    let registry = tally_registry(&overlapped);
    for strategy in [Strategy::RoundRobin, Strategy::LeastBusy] {
        let pool = registry
            .pool("tally", PoolOptions::new(3).strategy(strategy))
            .unwrap();
        let barrier = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..5 {
                        pool.process(Value::Int(2)).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total: u64 = pool.stats().iter().map(|s| s.calls).sum();
        assert_eq!(total, 40);
        assert!(
            pool.stats().iter().all(|s| s.calls > 0),
            "{strategy}: {:?}",
            pool.stats()
        );
    }
    assert!(
        !overlapped.load(Ordering::SeqCst),
        "two calls ran on one instance at once"
    );
}

/// A registry with a provider `bad` of capability `echo` that fails while
/// `failing` is set, and a provider `good` that answers.
fn flaky(failing: &Arc<AtomicBool>) -> ModuleRegistry {
    let registry = ModuleRegistry::new();
    let failing = failing.clone();
    registry
        .register(config("bad", "1.0.0", &["echo"]).with_handler(move |v| {
            if failing.load(Ordering::SeqCst) {
                Err(Error::invalid_input("bad is down").into())
            } else {
                Ok(Value::List(vec!["bad".into(), v]))
            }
        }))
        .unwrap();
    registry
        .register(
            config("good", "1.0.0", &["echo"])
                .with_handler(|v| Ok(Value::List(vec!["good".into(), v]))),
        )
        .unwrap();
    registry
}

#[test]
fn a_query_pools_every_provider_and_fails_over() {
    let failing = Arc::new(AtomicBool::new(true));
    let registry = flaky(&failing);
    let query = CapabilityQuery::new().with_required_capabilities(["echo"]);
    let pool = registry
        .pool(query.clone(), PoolOptions::new(2).retries(1))
        .unwrap();
    assert_eq!(pool.len(), 4);
    let mut providers = pool.providers();
    providers.sort();
    assert_eq!(providers, ["bad@1.0.0", "good@1.0.0"]);
    // Every call succeeds: a failure on `bad` is retried on `good`.
    for i in 0..4 {
        let out = pool.process(Value::Int(i)).unwrap();
        assert_eq!(out, Value::List(vec!["good".into(), Value::Int(i)]));
    }
    let failures: u64 = pool.stats().iter().map(|s| s.failures).sum();
    assert!(failures >= 1);
    // Without retries the module's failure comes back as it is.
    let strict = registry.pool(query, PoolOptions::new(1)).unwrap();
    let outcomes: Vec<_> = (0..4).map(|_| strict.process(Value::Null)).collect();
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(Error::ModuleFailed { module, .. }) if module == "bad")));
}

#[test]
fn a_failing_provider_rests_then_comes_back() {
    let failing = Arc::new(AtomicBool::new(true));
    let registry = flaky(&failing);
    let pool = registry
        .pool(
            "bad",
            PoolOptions::new(2).cooldown(Duration::from_millis(200)),
        )
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            pool.process(Value::Null),
            Err(Error::ModuleFailed { .. })
        ));
    }
    // Five failures in a row: the circuit is open.
    assert!(
        pool.stats().iter().all(|s| s.state == "cooling-down"),
        "{:?}",
        pool.stats()
    );
    let err = pool.process(Value::Null).unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.report().contains("cooling down"), "{err}");
    failing.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(250));
    // After the cool-down one call tries it again, and success closes it.
    assert_eq!(
        pool.process(Value::Int(1)).unwrap(),
        Value::List(vec!["bad".into(), Value::Int(1)])
    );
    assert!(pool.stats().iter().all(|s| s.state == "idle"));
}

#[test]
fn closing_a_pool_shuts_each_instance_down_once() {
    let counters = Arc::new(crate::common::Counters::default());
    let registry = ModuleRegistry::new();
    registry
        .register(crate::common::recorded("rec", "1.0.0", &counters))
        .unwrap();
    let pool = registry.pool("rec", PoolOptions::new(3)).unwrap();
    assert_eq!(counters.inits.load(Ordering::SeqCst), 3);
    pool.process(Value::Null).unwrap();
    let clone = pool.clone();
    pool.close().unwrap();
    clone.close().unwrap();
    drop(pool);
    drop(clone);
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 3);
    // A pool dropped without close shuts down too, once.
    let other = registry.pool("rec", PoolOptions::new(2)).unwrap();
    drop(other);
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 5);
}

#[test]
fn a_closed_pool_refuses_calls_and_bad_options_are_typed_errors() {
    let registry = ModuleRegistry::with_native_modules();
    let pool = registry.pool("identity", PoolOptions::new(1)).unwrap();
    pool.close().unwrap();
    assert!(matches!(pool.process(1i64), Err(Error::Unavailable { .. })));
    for size in [0, 1_000_000] {
        let err = registry
            .pool("identity", PoolOptions::new(size))
            .unwrap_err();
        assert!(err.report().contains("size"), "{err}");
    }
    assert!(registry
        .pool("identity", PoolOptions::new(1).cooldown(Duration::ZERO))
        .is_err());
    assert!(matches!(
        registry.pool("nope", PoolOptions::new(1)),
        Err(Error::NotFound { .. })
    ));
    let none = CapabilityQuery::new().with_required_capabilities(["no-such-capability"]);
    assert!(matches!(
        registry.pool(none, PoolOptions::new(1)),
        Err(Error::NotFound { .. })
    ));
    assert!("fastest".parse::<Strategy>().is_err());
}

#[test]
fn a_factory_failing_midway_closes_what_was_built() {
    let counters = Arc::new(crate::common::Counters::default());
    let built = Arc::new(AtomicUsize::new(0));
    let registry = ModuleRegistry::new();
    let (c, b) = (counters.clone(), built.clone());
    registry
        .register(
            config("third-fails", "1.0.0", &[]).with_factory(move |cfg| {
                if b.fetch_add(1, Ordering::SeqCst) == 2 {
                    return Err(Error::invalid_input("no more").into());
                }
                Ok(Box::new(crate::common::Recorder {
                    name: cfg.info().name().to_string(),
                    counters: c.clone(),
                    deps: Default::default(),
                }) as Box<dyn Module>)
            }),
        )
        .unwrap();
    assert!(registry.pool("third-fails", PoolOptions::new(4)).is_err());
    assert_eq!(counters.inits.load(Ordering::SeqCst), 2);
    assert_eq!(counters.shutdowns.load(Ordering::SeqCst), 2);
}

#[test]
fn the_size_bound_holds_for_every_instance_of_a_pool_together() {
    let registry = ModuleRegistry::new();
    let built = Arc::new(AtomicUsize::new(0));
    for p in 0..3 {
        let b = built.clone();
        registry
            .register(
                config(&format!("p{p}"), "1.0.0", &["wide"]).with_factory(move |_| {
                    b.fetch_add(1, Ordering::SeqCst);
                    Ok(Box::new(module_registry::FnModule::new(Ok)) as Box<dyn Module>)
                }),
            )
            .unwrap();
    }
    let query = CapabilityQuery::new().with_required_capabilities(["wide"]);
    // 3 providers of 400 each would be 1,200 instances: refused before any is built.
    let err = registry
        .pool(query.clone(), PoolOptions::new(400))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.report().contains("at most 1024 instances"), "{err}");
    assert_eq!(built.load(Ordering::SeqCst), 0);
    // 3 of 341 fit.
    let pool = registry.pool(query, PoolOptions::new(341)).unwrap();
    assert_eq!(pool.len(), 1023);
    pool.close().unwrap();
}

#[cfg(feature = "workflows")]
mod workflows {
    use super::*;
    use module_registry::{CancelToken, StepStatus, Workflow, WorkflowStep};

    #[test]
    fn a_pooled_step_runs_a_batch_that_wide() {
        let overlapped = Arc::new(AtomicBool::new(false));
        let registry = tally_registry(&overlapped);
        let workflow = Workflow::new("wide").step(WorkflowStep::module("t", "tally").pool(4));
        let inputs: Vec<Value> = (0..16).map(|_| Value::Int(30)).collect();
        let results = registry.run_workflow_batch(&workflow, inputs).unwrap();
        let ids: std::collections::HashSet<String> =
            results.iter().map(|r| format!("{:?}", r.output)).collect();
        assert_eq!(ids.len(), 4, "every instance of the pool took inputs");
        assert!(!overlapped.load(Ordering::SeqCst));
        // Four at a time, counted (no clock): each call waits until four
        // calls have been inside at once (a hang guard of 30 s only), and
        // never more than four are.
        let meeting = Arc::new((
            parking_lot::Mutex::new((0usize, 0usize)),
            parking_lot::Condvar::new(),
        ));
        let m = meeting.clone();
        registry
            .register(config("meet", "1.0.0", &[]).with_handler(move |v| {
                let (lock, cv) = &*m;
                let mut g = lock.lock();
                g.0 += 1;
                g.1 = g.1.max(g.0);
                cv.notify_all();
                let guard = std::time::Instant::now() + Duration::from_secs(30);
                while g.1 < 4 && !cv.wait_until(&mut g, guard).timed_out() {}
                g.0 -= 1;
                Ok(v)
            }))
            .unwrap();
        let wide = Workflow::new("meet").step(WorkflowStep::module("m", "meet").pool(4));
        let results = registry
            .run_workflow_batch(&wide, (0..16).map(Value::Int).collect::<Vec<_>>())
            .unwrap();
        assert_eq!(results.len(), 16);
        assert_eq!(meeting.0.lock().1, 4, "four inputs ran at once, no more");
        assert!(Workflow::from_toml(&workflow.to_toml().unwrap()).unwrap() == workflow);
        let bad = Workflow::new("bad").step(WorkflowStep::module("t", "tally").pool(0));
        let err = registry.check_workflow(&bad).unwrap_err();
        assert!(err.report().contains("pool"), "{err}");
    }

    #[test]
    fn cancelling_skips_the_steps_not_started() {
        let registry = ModuleRegistry::new();
        let ran = Arc::new(AtomicUsize::new(0));
        let cancel = CancelToken::new();
        let (r, c) = (ran.clone(), cancel.clone());
        registry
            .register(config("slow", "1.0.0", &[]).with_handler(move |v| {
                r.fetch_add(1, Ordering::SeqCst);
                c.cancel(); // the host cancels while this step runs
                Ok(v)
            }))
            .unwrap();
        let workflow = Workflow::pipeline("three", ["slow", "slow", "slow"]);
        let result = registry
            .run_workflow_cancellable(&workflow, 1i64, &cancel)
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        let statuses: Vec<_> = result.steps.iter().map(|s| s.status).collect();
        assert_eq!(
            statuses,
            [StepStatus::Ok, StepStatus::Skipped, StepStatus::Skipped]
        );
        assert_eq!(
            result.steps[1].error.as_deref(),
            Some("cancelled before it started")
        );
        // Cancelled before it began: nothing runs.
        let result = registry
            .run_workflow_cancellable(&workflow, 1i64, &cancel)
            .unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert!(result.steps.iter().all(|s| s.status == StepStatus::Skipped));
    }
}

#[cfg(feature = "scripts")]
#[test]
fn scripts_use_pools() {
    let registry = ModuleRegistry::with_native_modules();
    let out = registry
        .run_script(
            r#"
            let p = registry.pool("identity", 2);
            let a = p.process("x");
            let q = registry.pool(["json"], #{ size: 1, strategy: "least-busy", retries: 1 });
            let stats = p.stats();
            [a, p.len, stats.len, stats[0].provider, q.len > 0]
            "#,
            (),
        )
        .unwrap();
    assert_eq!(
        out,
        Value::List(vec![
            "x".into(),
            Value::Int(2),
            Value::Int(2),
            "identity@1.0.0".into(),
            Value::Bool(true)
        ])
    );
    for bad in [
        r#"registry.pool("identity", 0)"#,
        r#"registry.pool(42, 1)"#,
        r#"registry.pool("identity", #{ strategy: "fastest" })"#,
        r#"registry.pool("identity", #{ colour: 1 })"#,
    ] {
        let err = registry.run_script(bad, ()).unwrap_err();
        assert!(matches!(err, Error::Script { .. }), "{bad}: {err}");
    }
}

#[test]
fn a_module_calling_its_own_full_pool_gets_an_error_not_a_hang() {
    use std::sync::OnceLock;

    for (size, answer_inside) in [(1usize, false), (2, true)] {
        let registry = ModuleRegistry::new();
        let own: Arc<OnceLock<module_registry::InstancePool>> = Arc::default();
        let pool_seen = own.clone();
        registry
            .register(config("selfish", "1.0.0", &[]).with_handler(move |v| {
                if v == Value::Int(0) {
                    return Ok(Value::from("inner"));
                }
                // Re-enters the pool this instance belongs to.
                let pool = pool_seen.get().expect("set");
                Ok(match pool.process(0i64) {
                    Ok(out) => out,
                    Err(e) => Value::from(format!("refused: {e}")),
                })
            }))
            .unwrap();
        let pool = registry.pool("selfish", PoolOptions::new(size)).unwrap();
        own.set(pool.clone()).ok();
        let out = pool.process(1i64).unwrap();
        if answer_inside {
            // Another instance was free: the inner call runs on it.
            assert_eq!(out, Value::from("inner"));
        } else {
            let text = out.as_str().unwrap().to_string();
            assert!(
                text.starts_with("refused") && text.contains("would wait for itself"),
                "{text}"
            );
        }
        // The pool is usable after.
        assert_eq!(pool.process(0i64).unwrap(), Value::from("inner"));
    }
}
