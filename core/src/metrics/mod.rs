//! Metrics: counters and histograms kept per registry, always on and
//! nearly free (lock-free counters on the call path), read as a
//! [`MetricsSnapshot`] and written in the Prometheus text format.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the store ([`Metrics`]), a registration's call counters ([`ModuleMetrics`]), the timer of one call, the metric definitions |
//! | `histogram.rs` | the fixed exponential buckets, atomic and plain |
//! | `snapshot.rs` | [`MetricsSnapshot`]: families and samples, the text format, deltas |
//!
//! A module's counters are found when an instance is created and kept in
//! the instance, so `process` hashes nothing; a registration that was never
//! created has none (a registry of 100,000 modules keeps metrics for the ones
//! it calls). Counting can be turned off ([`Metrics::set_enabled`]); what was
//! counted is kept.

mod histogram;
mod snapshot;

use std::collections::BTreeMap;

use hashbrown::{Equivalent, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

pub use histogram::{HistogramValue, BUCKET_BOUNDS_SECONDS};
pub use snapshot::{CallSummary, MetricFamily, MetricKind, MetricsSnapshot, Sample, SampleValue};

use histogram::AtomicHistogram;

/// One metric family: its name, type, help text and label names.
#[derive(Debug)]
pub(crate) struct Def {
    pub name: &'static str,
    pub kind: MetricKind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

macro_rules! defs {
    ($($id:ident = $name:literal, $kind:ident, [$($l:literal),*], $help:literal;)*) => {
        $(pub(crate) const $id: &Def = &Def {
            name: $name, kind: MetricKind::$kind, help: $help, labels: &[$($l),*],
        };)*
        /// Every family, in the order the text format lists them.
        pub(crate) const DEFS: &[&Def] = &[$($id),*];
    };
}

defs! {
    MODULE_CALLS = "module_registry_module_calls_total", Counter,
        ["module", "version", "implementation", "outcome"], "Calls of module instances' process, by outcome.";
    MODULE_DURATION = "module_registry_module_call_duration_seconds", Histogram,
        ["module", "version", "implementation"], "How long module calls took.";
    WORKFLOW_RUNS = "module_registry_workflow_runs_total", Counter,
        ["workflow", "outcome"], "Workflow runs, by outcome.";
    STEP_RUNS = "module_registry_step_runs_total", Counter,
        ["workflow", "step", "status"], "Workflow steps run, by status.";
    STEP_DURATION = "module_registry_step_duration_seconds", Histogram,
        ["workflow", "step"], "How long workflow steps took.";
    CACHE_REQUESTS = "module_registry_cache_requests_total", Counter,
        ["result"], "Step cache lookups, by result.";
    POOL_INSTANCES = "module_registry_pool_instances", Gauge,
        ["pool", "state"], "Instances of live pools, by state (resting: its provider's circuit is open).";
    RELOADS = "module_registry_reloads_total", Counter,
        ["outcome"], "What script watchers did, by outcome.";
    DENIALS = "module_registry_denials_total", Counter,
        ["operation"], "Calls refused by the access policy, by operation.";
    MODULES = "module_registry_modules", Gauge,
        ["kind", "implementation"], "Registered modules and plugins.";
}

/// The `result` labels of the cache's lookups.
const CACHE_RESULTS: [&str; 3] = ["hit", "miss", "unhashable"];

/// Where `def` is in [`DEFS`].
fn position(def: &Def) -> usize {
    DEFS.iter()
        .position(|d| d.name == def.name)
        .expect("a known family")
}

/// The definition named `name`.
pub(crate) fn def_named(name: &str) -> Option<&'static Def> {
    DEFS.iter().copied().find(|d| d.name == name)
}

/// How one call of `process` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// It returned a value.
    Ok,
    /// It failed.
    Failed,
    /// It ran past its step's timeout (the caller stopped waiting) or hit a time limit.
    Timeout,
}

impl CallOutcome {
    const ALL: [CallOutcome; 3] = [CallOutcome::Ok, CallOutcome::Failed, CallOutcome::Timeout];

    /// `"ok"`, `"failed"` or `"timeout"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::Failed => "failed",
            CallOutcome::Timeout => "timeout",
        }
    }
}

/// The call counters of one registration (name, version, implementation).
#[derive(Debug)]
pub struct ModuleMetrics {
    on: Arc<AtomicBool>,
    name: String,
    version: String,
    implementation: &'static str,
    calls: [AtomicU64; 3],
    duration: AtomicHistogram,
}

impl ModuleMetrics {
    /// Counts one call that took `elapsed`.
    pub fn record(&self, outcome: CallOutcome, elapsed: Duration) {
        self.calls[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.duration.observe(elapsed);
    }

    /// Calls counted, per outcome (`ok`, `failed`, `timeout`).
    pub fn calls(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.calls[i].load(Ordering::Relaxed))
    }
}

/// The timer of one call: started only when counting is on.
pub(crate) struct CallTimer<'a>(Option<(&'a ModuleMetrics, Instant)>);

impl<'a> CallTimer<'a> {
    #[inline]
    pub(crate) fn start(metrics: Option<&'a ModuleMetrics>) -> Self {
        CallTimer(match metrics {
            Some(m) if m.on.load(Ordering::Relaxed) => Some((m, Instant::now())),
            _ => None,
        })
    }

    /// Counts the call: `timed_out` when its caller stopped waiting for it.
    #[inline]
    pub(crate) fn finish<T>(self, result: &crate::error::Result<T>) {
        if let Some((m, start)) = self.0 {
            let elapsed = start.elapsed();
            m.record(outcome_of(result), elapsed);
        }
    }
}

fn outcome_of<T>(result: &crate::error::Result<T>) -> CallOutcome {
    // A call whose token was cancelled was abandoned at its step's timeout.
    let abandoned = crate::cancel::call_cancelled();
    match result {
        Ok(_) if abandoned => CallOutcome::Timeout,
        Ok(_) => CallOutcome::Ok,
        Err(e) if abandoned || is_timeout(e) => CallOutcome::Timeout,
        Err(_) => CallOutcome::Failed,
    }
}

fn is_timeout(e: &crate::error::Error) -> bool {
    use crate::error::{Error, ErrorKind};
    match e {
        Error::ModuleFailed { source, .. } => is_timeout(source),
        other => other.kind() == ErrorKind::Timeout,
    }
}

type Key = (&'static str, Box<[String]>);
/// A registration: name, version, implementation.
type ModuleKey = (String, String, &'static str);

/// A [`ModuleKey`] borrowed for a lookup: hashes as the tuple does (fields
/// in order), so it finds the owned key without making one.
#[derive(Hash)]
struct BorrowedKey<'a>(&'a str, &'a str, &'a str);

impl Equivalent<ModuleKey> for BorrowedKey<'_> {
    fn equivalent(&self, key: &ModuleKey) -> bool {
        self.0 == key.0 && self.1 == key.1 && self.2 == key.2
    }
}
/// Gauge samples: a family, its label values, the value.
pub(crate) type Gauges = Vec<(&'static Def, Vec<String>, u64)>;
/// A source of gauge samples; `false` once what it reads is gone.
type Source = Box<dyn Fn(&mut Gauges) -> bool + Send + Sync>;

/// What a step run is counted as, in the order its samples are printed.
const STEP_OUTCOMES: [&str; 6] = ["cached", "cancelled", "failed", "fallback", "ok", "skipped"];

/// A step's runs by outcome and its durations (lock-free); a plan keeps
/// its steps' ([`Metrics::step_handle`]), so counting a run looks nothing up.
#[derive(Default)]
pub(crate) struct StepMetrics {
    runs: [AtomicU64; STEP_OUTCOMES.len()],
    duration: AtomicHistogram,
}

impl StepMetrics {
    fn add(&self, outcome: usize, n: u64, took: Option<Duration>) {
        self.runs[outcome].fetch_add(n, Ordering::Relaxed);
        if let Some(took) = took {
            self.duration.observe(took);
        }
    }
}

/// A registry's metrics: the module counters, the labelled counters and
/// histograms of workflows, the cache, watchers and access control, and
/// the sources of gauges read when a snapshot is taken.
pub struct Metrics {
    on: Arc<AtomicBool>,
    modules: RwLock<HashMap<ModuleKey, Arc<ModuleMetrics>>>,
    /// Each step's counters by workflow and step id: found with borrowed
    /// keys, so counting a step allocates nothing once it has run before.
    steps: RwLock<HashMap<String, HashMap<String, Arc<StepMetrics>>>>,
    counters: Mutex<BTreeMap<Key, u64>>,
    /// Step cache lookups: hit, miss, unhashable.
    cache: [AtomicU64; 3],
    histograms: Mutex<BTreeMap<Key, histogram::Plain>>,
    sources: Mutex<Vec<Source>>,
    /// What [`Metrics::take_delta`] returned last (the counts it was taken at).
    baseline: Mutex<Option<MetricsSnapshot>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            on: Arc::new(AtomicBool::new(true)),
            modules: RwLock::default(),
            steps: RwLock::default(),
            counters: Mutex::default(),
            cache: Default::default(),
            histograms: Mutex::default(),
            sources: Mutex::default(),
            baseline: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("enabled", &self.enabled())
            .field("modules", &self.modules.read().len())
            .finish()
    }
}

impl Metrics {
    /// Whether counting is on.
    pub fn enabled(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Turns counting on or off; what was counted is kept.
    pub fn set_enabled(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    /// The counters of the registration `name@version` (made on first use).
    pub fn module(
        &self,
        name: &str,
        version: &str,
        implementation: &'static str,
    ) -> Arc<ModuleMetrics> {
        // Found with the borrowed key (no allocation, no SipHash): this runs
        // at every `create`, so once per step of every workflow run.
        if let Some(found) = self
            .modules
            .read()
            .get(&BorrowedKey(name, version, implementation))
        {
            return found.clone();
        }
        self.modules
            .write()
            .entry((name.to_string(), version.to_string(), implementation))
            .or_insert_with(|| {
                Arc::new(ModuleMetrics {
                    on: self.on.clone(),
                    name: name.to_string(),
                    version: version.to_string(),
                    implementation,
                    calls: Default::default(),
                    duration: AtomicHistogram::default(),
                })
            })
            .clone()
    }

    /// Adds `n` to the counter `def` with `labels` (its label values, in
    /// `def`'s order). Nothing while counting is off.
    pub(crate) fn add(&self, def: &'static Def, labels: &[&str], n: u64) {
        if self.enabled() {
            self.add_always(def, labels, n);
        }
    }

    fn add_always(&self, def: &'static Def, labels: &[&str], n: u64) {
        debug_assert_eq!(labels.len(), def.labels.len(), "{}", def.name);
        let key = (def.name, labels.iter().map(|l| l.to_string()).collect());
        *self.counters.lock().entry(key).or_insert(0) += n;
    }

    /// The counters of `step` of `workflow` (made on first use): for a plan
    /// to keep, with [`Metrics::id`] to know the store they belong to.
    pub(crate) fn step_handle(&self, workflow: &str, step: &str) -> Arc<StepMetrics> {
        if let Some(m) = self.steps.read().get(workflow).and_then(|s| s.get(step)) {
            return m.clone();
        }
        self.steps
            .write()
            .entry(workflow.to_owned())
            .or_default()
            .entry(step.to_owned())
            .or_default()
            .clone()
    }

    /// This store's identity (its address), for a kept handle to check.
    #[cfg(feature = "workflows")]
    pub(crate) fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    fn with_step(&self, workflow: &str, step: &str, f: impl FnOnce(&StepMetrics)) {
        f(&self.step_handle(workflow, step));
    }

    /// Counts a run of a step, by its kept counters (see [`Metrics::step_ran`]).
    #[cfg(feature = "workflows")]
    pub(crate) fn step_ran_at(&self, m: &StepMetrics, outcome: &str, took: Option<Duration>) {
        if self.enabled() {
            if let Some(i) = STEP_OUTCOMES.iter().position(|o| *o == outcome) {
                m.add(i, 1, took);
            }
        }
    }

    /// Counts a run of `step` of `workflow` as `outcome` (`ok`, `failed`,
    /// `skipped`, `fallback`, `cached`, `cancelled`), with its duration
    /// when it ran.
    #[cfg(feature = "workflows")]
    pub(crate) fn step_ran(
        &self,
        workflow: &str,
        step: &str,
        outcome: &str,
        took: Option<Duration>,
    ) {
        if self.enabled() {
            self.add_step(workflow, step, outcome, 1, took);
        }
    }

    /// False for an outcome that is not a step's.
    fn add_step(
        &self,
        workflow: &str,
        step: &str,
        outcome: &str,
        n: u64,
        took: Option<Duration>,
    ) -> bool {
        let Some(i) = STEP_OUTCOMES.iter().position(|o| *o == outcome) else {
            return false;
        };
        self.with_step(workflow, step, |m| m.add(i, n, took));
        true
    }

    /// Counts a step cache lookup: `result` is `"hit"`, `"miss"` or `"unhashable"`.
    pub fn count_cache(&self, result: &str) {
        if self.enabled() {
            if let Some(i) = CACHE_RESULTS.iter().position(|r| *r == result) {
                self.cache[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds a source of gauge samples, read at every snapshot until it
    /// returns `false` (what it reads is gone).
    pub(crate) fn add_source(&self, source: impl Fn(&mut Gauges) -> bool + Send + Sync + 'static) {
        let mut sources = self.sources.lock();
        if sources.len() >= 64 && sources.len().is_power_of_two() {
            // Pools made and dropped with no snapshot between: forget the gone ones.
            let mut scratch = Gauges::new();
            sources.retain(|source| source(&mut scratch));
        }
        sources.push(Box::new(source));
    }

    /// Everything counted, with `gauges` (the registry's own) and those of
    /// the sources.
    pub(crate) fn snapshot(&self, mut gauges: Gauges) -> MetricsSnapshot {
        self.sources.lock().retain(|source| source(&mut gauges));
        let mut modules: Vec<Arc<ModuleMetrics>> = self.modules.read().values().cloned().collect();
        modules.sort_by(|a, b| {
            (&a.name, &a.version, a.implementation).cmp(&(&b.name, &b.version, b.implementation))
        });
        let mut families: Vec<MetricFamily> = DEFS.iter().map(|d| MetricFamily::of(d)).collect();
        for m in &modules {
            let calls = m.calls();
            let count = m.duration.count();
            if count == 0 && calls.iter().all(|&c| c == 0) {
                continue; // created, never called
            }
            let labels = [m.name.as_str(), m.version.as_str(), m.implementation];
            let at = position(MODULE_CALLS);
            for outcome in CallOutcome::ALL {
                let c = calls[outcome as usize];
                if c > 0 {
                    let mut l = labels.to_vec();
                    l.push(outcome.as_str());
                    families[at].push(MODULE_CALLS, &l, SampleValue::Count(c));
                }
            }
            let at = position(MODULE_DURATION);
            families[at].push(
                MODULE_DURATION,
                &labels,
                SampleValue::Histogram(m.duration.value()),
            );
        }
        for (result, n) in CACHE_RESULTS.iter().zip(&self.cache) {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                families[position(CACHE_REQUESTS)].push(
                    CACHE_REQUESTS,
                    &[result],
                    SampleValue::Count(n),
                );
            }
        }
        {
            let steps = self.steps.read();
            let mut each: Vec<(&String, &String, &Arc<StepMetrics>)> = steps
                .iter()
                .flat_map(|(w, s)| s.iter().map(move |(id, m)| (w, id, m)))
                .collect();
            each.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (workflow, step, m) in each {
                for (outcome, n) in STEP_OUTCOMES.iter().zip(&m.runs) {
                    let n = n.load(Ordering::Relaxed);
                    if n > 0 {
                        families[position(STEP_RUNS)].push(
                            STEP_RUNS,
                            &[workflow, step, outcome],
                            SampleValue::Count(n),
                        );
                    }
                }
                if m.duration.count() > 0 {
                    families[position(STEP_DURATION)].push(
                        STEP_DURATION,
                        &[workflow, step],
                        SampleValue::Histogram(m.duration.value()),
                    );
                }
            }
        }
        for ((name, labels), &n) in self.counters.lock().iter() {
            let def = def_named(name).expect("counters are of known families");
            let at = position(def);
            let l: Vec<&str> = labels.iter().map(String::as_str).collect();
            families[at].push(def, &l, SampleValue::Count(n));
        }
        for ((name, labels), h) in self.histograms.lock().iter() {
            let def = def_named(name).expect("histograms are of known families");
            let at = position(def);
            let l: Vec<&str> = labels.iter().map(String::as_str).collect();
            families[at].push(def, &l, SampleValue::Histogram(h.value()));
        }
        gauges.sort_by(|a, b| (a.0.name, &a.1).cmp(&(b.0.name, &b.1)));
        for (def, labels, n) in gauges {
            let at = position(def);
            let l: Vec<&str> = labels.iter().map(String::as_str).collect();
            families[at].push(def, &l, SampleValue::Count(n));
        }
        MetricsSnapshot {
            enabled: self.enabled(),
            families,
        }
    }

    /// What was counted since the last call (since the store was made, the
    /// first time): counters and histograms, no gauges. Two calls never
    /// return the same count twice.
    pub(crate) fn take_delta(&self) -> MetricsSnapshot {
        let mut baseline = self.baseline.lock();
        let now = self.snapshot(Vec::new());
        let empty = MetricsSnapshot {
            enabled: now.enabled,
            families: Vec::new(),
        };
        let delta = now.since(baseline.as_ref().unwrap_or(&empty));
        *baseline = Some(now);
        delta
    }

    /// Adds the counters and histograms of `other` (counts made elsewhere:
    /// on an executor's workers, from a copy of this registry) to these,
    /// whether counting is on or off. Gauges are not added.
    pub fn merge(&self, other: &MetricsSnapshot) -> crate::error::Result<()> {
        other.check()?;
        for family in &other.families {
            let def = def_named(&family.name).expect("checked");
            for sample in &family.samples {
                let labels: Vec<&str> = def
                    .labels
                    .iter()
                    .map(|l| sample.label(l).unwrap_or_default())
                    .collect();
                match (&sample.value, def.kind) {
                    (SampleValue::Count(n), MetricKind::Counter) => {
                        self.merge_count(def, &labels, *n)
                    }
                    (SampleValue::Histogram(h), MetricKind::Histogram) => {
                        self.merge_histogram(def, &labels, h)
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn merge_count(&self, def: &'static Def, labels: &[&str], n: u64) {
        if def.name == MODULE_CALLS.name {
            let implementation = implementation_named(labels[2]);
            let m = self.module(labels[0], labels[1], implementation);
            let outcome = CallOutcome::ALL
                .into_iter()
                .find(|o| o.as_str() == labels[3]);
            if let Some(o) = outcome {
                m.calls[o as usize].fetch_add(n, Ordering::Relaxed);
            }
        } else if def.name == CACHE_REQUESTS.name {
            if let Some(i) = CACHE_RESULTS.iter().position(|r| *r == labels[0]) {
                self.cache[i].fetch_add(n, Ordering::Relaxed);
            }
        } else if !(def.name == STEP_RUNS.name
            && self.add_step(labels[0], labels[1], labels[2], n, None))
        {
            self.add_always(def, labels, n);
        }
    }

    fn merge_histogram(&self, def: &'static Def, labels: &[&str], h: &HistogramValue) {
        if def.name == MODULE_DURATION.name {
            let m = self.module(labels[0], labels[1], implementation_named(labels[2]));
            m.duration.add(h);
        } else if def.name == STEP_DURATION.name {
            self.with_step(labels[0], labels[1], |m| m.duration.add(h));
        } else {
            let key = (def.name, labels.iter().map(|l| l.to_string()).collect());
            self.histograms.lock().entry(key).or_default().add(h);
        }
    }
}

fn implementation_named(label: &str) -> &'static str {
    ["native", "script", "python", "none"]
        .into_iter()
        .find(|l| *l == label)
        .unwrap_or("native")
}
