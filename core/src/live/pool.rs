//! Instance pools: several instances of one module, or of every provider of
//! a capability, behind one `process` that is safe to call from many
//! threads. Each call takes a free instance to itself (a stateful module
//! gets real parallelism without sharing its state), failed calls are
//! retried on another instance (of another provider when there is one), and
//! a provider that keeps failing is rested for a while (a circuit breaker).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::instance::ModuleInstance;
use crate::kind::ModuleKind;
use crate::registry::ModuleRegistry;
use crate::value::Value;

pub use super::options::{
    PoolOptions, PoolTarget, Strategy, FAILURES_TO_OPEN, MAX_POOL_RETRIES, MAX_POOL_SIZE,
};

thread_local! {
    /// The pools (by address) this thread is running an instance of: a
    /// module that calls its own pool must not wait for itself.
    static HOLDING: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Marks this thread as running an instance of the pool at `address` until dropped.
struct Holding(usize);

impl Holding {
    fn new(address: usize) -> Self {
        HOLDING.with(|h| h.borrow_mut().push(address));
        Holding(address)
    }

    fn held(address: usize) -> bool {
        HOLDING.with(|h| h.borrow().contains(&address))
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        HOLDING.with(|h| {
            let mut h = h.borrow_mut();
            if let Some(at) = h.iter().rposition(|&a| a == self.0) {
                h.remove(at);
            }
        });
    }
}

/// One instance of a pool and its counters.
struct Slot {
    instance: ModuleInstance,
    provider: usize,
    busy: AtomicBool,
    calls: AtomicU64,
    failures: AtomicU64,
}

/// One provider (a module version) of a pool, and its circuit.
struct Provider {
    label: String,
    info: ModuleInfo,
    running: AtomicUsize,
    /// Failures in a row.
    streak: AtomicU32,
    /// While the circuit is open: until when, in nanoseconds after the
    /// pool's epoch; 0 when closed.
    open_until: AtomicU64,
}

impl Provider {
    /// The provider `instance` is of, its circuit closed.
    fn of(instance: &ModuleInstance) -> Self {
        Provider {
            label: format!("{}@{}", instance.name(), instance.info().version_text()),
            info: instance.info().clone(),
            running: AtomicUsize::new(0),
            streak: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
        }
    }
}

pub(super) struct Inner {
    pub(super) label: String,
    slots: Vec<Slot>,
    providers: Vec<Provider>,
    strategy: Strategy,
    retries: u32,
    cooldown: Duration,
    epoch: Instant,
    next: AtomicUsize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    pub(super) closed: AtomicBool,
}

/// Several instances behind one thread-safe `process`. Clones share the
/// pool; `close` (or dropping the last clone) shuts every instance down once.
#[derive(Clone)]
pub struct InstancePool {
    pub(super) inner: Arc<Inner>,
}

/// One instance's line in [`InstancePool::stats`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSlotStats {
    /// `name@version` of the instance's module.
    pub provider: String,
    /// Calls it ran.
    pub calls: u64,
    /// Calls of it that failed.
    pub failures: u64,
    /// `"idle"`, `"busy"`, `"cooling-down"` (its provider's circuit is
    /// open) or `"closed"`.
    pub state: &'static str,
}

impl fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstancePool")
            .field("target", &self.inner.label)
            .field("size", &self.inner.slots.len())
            .field("strategy", &self.inner.strategy)
            .finish()
    }
}

impl ModuleRegistry {
    /// A pool of instances of `target` (a module name, or a
    /// [`CapabilityQuery`](crate::CapabilityQuery): then `options.size` instances of every provider
    /// it discovers). Every instance is created now; if one cannot be, those
    /// built are closed and the error is returned.
    ///
    /// ```
    /// use module_registry::{live::PoolOptions, ModuleRegistry, Value};
    ///
    /// let registry = ModuleRegistry::with_native_modules();
    /// let pool = registry.pool("identity", PoolOptions::new(2))?;
    /// assert_eq!(pool.process("hi")?, Value::from("hi"));
    /// assert_eq!(pool.len(), 2);
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn pool(
        &self,
        target: impl Into<PoolTarget>,
        options: PoolOptions,
    ) -> Result<InstancePool> {
        options.validate()?;
        let target = target.into();
        let (label, infos) = self.pool_members(&target, &options)?;
        let (slots, providers) = self.build_slots(&target, &options, infos)?;
        let inner = Arc::new(Inner {
            label,
            slots,
            providers,
            strategy: options.strategy,
            retries: options.retries,
            cooldown: options.cooldown,
            epoch: Instant::now(),
            next: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            closed: AtomicBool::new(false),
        });
        Ok(super::gauges::watched(self, InstancePool { inner }))
    }

    /// The pool's label and its providers: the registrations a query finds
    /// (at least one, and at most [`MAX_POOL_SIZE`] instances in all), the
    /// one given, or `None` for a name (its version is chosen by the first
    /// instance built).
    fn pool_members(
        &self,
        target: &PoolTarget,
        options: &PoolOptions,
    ) -> Result<(String, Vec<Option<ModuleInfo>>)> {
        Ok(match target {
            PoolTarget::Module { name, requirement } => (
                match requirement {
                    Some(r) => format!("pool of {name} {r}"),
                    None => format!("pool of {name}"),
                },
                vec![None],
            ),
            PoolTarget::Query(query) => {
                let found = self.discover(query)?;
                if found.is_empty() {
                    return Err(Error::NotFound {
                        kind: query.kind.unwrap_or(ModuleKind::Module),
                        name: format!("any module matching {query:?}"),
                        requirement: query.version_req.clone(),
                        available: Vec::new(),
                    });
                }
                // The bound holds for the whole pool: `size` of every provider.
                let total = found.len().saturating_mul(options.size);
                if total > MAX_POOL_SIZE {
                    return Err(Error::invalid_input(format!(
                        "a pool holds at most {MAX_POOL_SIZE} instances: {} providers match \
                         {query:?}, and {} of each would be {total} (ask for fewer, or narrow \
                         the query)",
                        found.len(),
                        options.size
                    )));
                }
                (
                    format!("pool of {} providers", found.len()),
                    found.into_iter().map(Some).collect(),
                )
            }
            PoolTarget::Registration(info) => (format!("pool of {info}"), vec![Some(info.clone())]),
        })
    }

    /// `options.size` instances of each provider, and the providers; every
    /// instance built is closed again when one fails.
    fn build_slots(
        &self,
        target: &PoolTarget,
        options: &PoolOptions,
        infos: Vec<Option<ModuleInfo>>,
    ) -> Result<(Vec<Slot>, Vec<Provider>)> {
        let mut slots: Vec<Slot> = Vec::new();
        let mut providers: Vec<Provider> = Vec::new();
        for mut info in infos {
            for _ in 0..options.size {
                let built = match (&info, target) {
                    (Some(info), _) => self.instantiate_with_dependencies(
                        info.clone(),
                        options.config.clone(),
                        &options.dependency_configs,
                    ),
                    (None, PoolTarget::Module { name, requirement }) => self
                        .create_with_dependencies(
                            ModuleKind::Module,
                            name,
                            requirement.as_deref(),
                            options.config.clone(),
                            &options.dependency_configs,
                        ),
                    (None, _) => unreachable!("only a name is looked up"),
                };
                let instance = match built {
                    Ok(instance) => instance,
                    Err(e) => {
                        for slot in slots.iter().rev() {
                            let _ = slot.instance.close();
                        }
                        return Err(e);
                    }
                };
                // The first instance of a name fixes the version: the
                // others are of that very registration.
                let provider = match slots.last() {
                    Some(last)
                        if info.is_some()
                            && last.instance.info().same_registration(instance.info()) =>
                    {
                        last.provider
                    }
                    _ => {
                        providers.push(Provider::of(&instance));
                        providers.len() - 1
                    }
                };
                info.get_or_insert_with(|| instance.info().clone());
                slots.push(Slot {
                    instance,
                    provider,
                    busy: AtomicBool::new(false),
                    calls: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                });
            }
        }
        Ok((slots, providers))
    }
}

/// Whether a call's failure is the module's own (worth another instance).
fn retryable(error: &Error) -> bool {
    matches!(error, Error::ModuleFailed { .. } | Error::Panic { .. })
        && error.interruption().is_none()
}

impl Inner {
    fn address(&self) -> usize {
        self as *const Inner as usize
    }

    fn now(&self) -> u64 {
        (self.epoch.elapsed().as_nanos() as u64).max(1)
    }

    /// Whether `provider` may take calls (its circuit is closed, or its
    /// cool-down is over: then one call tries it again).
    fn available(&self, provider: usize) -> bool {
        let until = self.providers[provider].open_until.load(Ordering::Acquire);
        until == 0 || self.now() >= until
    }

    /// Takes a free slot of an available provider, preferring one of a
    /// provider other than `avoid`.
    fn try_take(&self, avoid: Option<usize>) -> Option<usize> {
        let n = self.slots.len();
        for pass in 0..2 {
            let skip = |p: usize| pass == 0 && avoid == Some(p) && self.providers.len() > 1;
            match self.strategy {
                Strategy::RoundRobin => {
                    let start = self.next.fetch_add(1, Ordering::Relaxed);
                    for k in 0..n {
                        let i = (start + k) % n;
                        let slot = &self.slots[i];
                        if !slot.busy.load(Ordering::Relaxed)
                            && !skip(slot.provider)
                            && self.available(slot.provider)
                            && slot
                                .busy
                                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                                .is_ok()
                        {
                            return Some(i);
                        }
                    }
                }
                Strategy::LeastBusy => loop {
                    let best = (0..n)
                        .filter(|&i| {
                            let slot = &self.slots[i];
                            !slot.busy.load(Ordering::Relaxed)
                                && !skip(slot.provider)
                                && self.available(slot.provider)
                        })
                        .min_by_key(|&i| {
                            let slot = &self.slots[i];
                            (
                                self.providers[slot.provider]
                                    .running
                                    .load(Ordering::Relaxed),
                                slot.calls.load(Ordering::Relaxed),
                            )
                        });
                    let Some(i) = best else { break };
                    if self.slots[i]
                        .busy
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Some(i);
                    }
                },
            }
            if avoid.is_none() {
                break;
            }
        }
        None
    }

    /// The error when every provider rests.
    fn all_resting(&self) -> Option<Error> {
        let now = self.now();
        let mut soonest = u64::MAX;
        for p in &self.providers {
            let until = p.open_until.load(Ordering::Acquire);
            if until == 0 || now >= until {
                return None;
            }
            soonest = soonest.min(until - now);
        }
        Some(Error::Unavailable {
            subject: self.label.clone(),
            reason: format!(
                "every provider failed {FAILURES_TO_OPEN} times in a row and is cooling down \
                 (the first comes back in {:.1} s)",
                Duration::from_nanos(soonest).as_secs_f64()
            ),
        })
    }

    fn closed_error(&self) -> Error {
        Error::Unavailable {
            subject: self.label.clone(),
            reason: "the pool is closed".to_string(),
        }
    }

    /// A free slot, waiting for one when all are busy.
    fn acquire(&self, avoid: Option<usize>) -> Result<usize> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(self.closed_error());
            }
            if let Some(i) = self.try_take(avoid) {
                return Ok(i);
            }
            if let Some(e) = self.all_resting() {
                return Err(e);
            }
            if Holding::held(self.address()) {
                // Called from inside one of this pool's instances: waiting
                // could be waiting for that very call to end.
                return Err(Error::Unavailable {
                    subject: self.label.clone(),
                    reason: "every instance is busy, and this call comes from inside one of them \
                             (a module calling its own pool would wait for itself)"
                        .to_string(),
                });
            }
            let mut guard = self.lock.lock();
            self.waiters.fetch_add(1, Ordering::SeqCst);
            // Checked again under the lock: a release now must notify us.
            let taken = self.try_take(avoid);
            if taken.is_none() && !self.closed.load(Ordering::Acquire) {
                // A slot resting behind an open circuit frees no one: look again soon.
                self.freed.wait_for(&mut guard, Duration::from_millis(20));
            }
            self.waiters.fetch_sub(1, Ordering::SeqCst);
            drop(guard);
            if let Some(i) = taken {
                return Ok(i);
            }
        }
    }

    fn release(&self, i: usize) {
        self.slots[i].busy.store(false, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.freed.notify_one();
        }
    }

    /// Notes the outcome of a call on slot `i` for its provider's circuit.
    fn note(&self, i: usize, ok: bool) {
        let slot = &self.slots[i];
        let provider = &self.providers[slot.provider];
        slot.calls.fetch_add(1, Ordering::Relaxed);
        if ok {
            if provider.streak.load(Ordering::Relaxed) != 0 {
                provider.streak.store(0, Ordering::Relaxed);
                provider.open_until.store(0, Ordering::Release);
            }
            return;
        }
        slot.failures.fetch_add(1, Ordering::Relaxed);
        let streak = provider.streak.fetch_add(1, Ordering::AcqRel) + 1;
        if streak >= FAILURES_TO_OPEN {
            let until = self.now() + self.cooldown.as_nanos().min(u64::MAX as u128 / 2) as u64;
            provider.open_until.store(until, Ordering::Release);
        }
    }
}

impl InstancePool {
    /// Runs one free instance on `input`; waits while every instance is
    /// busy. A call that fails inside the module is tried again on another
    /// instance (of another provider when there is one), up to the pool's
    /// `retries`; the last error is returned.
    pub fn process(&self, input: impl Into<Value>) -> Result<Value> {
        self.process_value(input.into())
    }

    /// [`process`](Self::process) without the conversion.
    pub fn process_value(&self, input: Value) -> Result<Value> {
        let inner = &*self.inner;
        let mut avoid = None;
        let mut attempts = 0;
        let mut input = Some(input);
        loop {
            let i = inner.acquire(avoid)?;
            let slot = &inner.slots[i];
            let provider = &inner.providers[slot.provider];
            let arg = if attempts < inner.retries {
                input.clone().unwrap_or_default()
            } else {
                input.take().unwrap_or_default()
            };
            provider.running.fetch_add(1, Ordering::Relaxed);
            let result = {
                let _holding = Holding::new(inner.address());
                slot.instance.process_value(arg)
            };
            provider.running.fetch_sub(1, Ordering::Relaxed);
            let failed = result.as_ref().err().is_some_and(retryable);
            inner.note(i, !failed);
            inner.release(i);
            match result {
                Err(e) if failed && attempts < inner.retries => {
                    let _ = e;
                    attempts += 1;
                    avoid = Some(slot.provider);
                }
                other => return other,
            }
        }
    }

    /// How many instances the pool holds.
    pub fn len(&self) -> usize {
        self.inner.slots.len()
    }

    /// Whether the pool holds no instance (never true for a pool that was built).
    pub fn is_empty(&self) -> bool {
        self.inner.slots.is_empty()
    }

    /// `name@version` of each provider, in the order they were built.
    pub fn providers(&self) -> Vec<String> {
        self.inner
            .providers
            .iter()
            .map(|p| p.label.clone())
            .collect()
    }

    /// The registration of each provider, in the order they were built.
    pub fn provider_infos(&self) -> Vec<ModuleInfo> {
        self.inner
            .providers
            .iter()
            .map(|p| p.info.clone())
            .collect()
    }

    /// The pool's strategy.
    pub fn strategy(&self) -> Strategy {
        self.inner.strategy
    }

    /// One line per instance: provider, calls, failures and state.
    pub fn stats(&self) -> Vec<PoolSlotStats> {
        let inner = &*self.inner;
        let closed = inner.closed.load(Ordering::Acquire);
        inner
            .slots
            .iter()
            .map(|slot| PoolSlotStats {
                provider: inner.providers[slot.provider].label.clone(),
                calls: slot.calls.load(Ordering::Relaxed),
                failures: slot.failures.load(Ordering::Relaxed),
                state: if closed || slot.instance.is_closed() {
                    "closed"
                } else if slot.busy.load(Ordering::Relaxed) {
                    "busy"
                } else if !inner.available(slot.provider) {
                    "cooling-down"
                } else {
                    "idle"
                },
            })
            .collect()
    }

    /// Whether [`close`](Self::close) has run.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Shuts every instance down, once (later calls do nothing); calls
    /// running finish first (each instance shuts down after its last call),
    /// calls after this are [`Error::Unavailable`]. Returns the first
    /// shutdown error.
    pub fn close(&self) -> Result<()> {
        let inner = &*self.inner;
        if inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        {
            let _guard = inner.lock.lock();
            inner.freed.notify_all();
        }
        let mut first = None;
        for slot in inner.slots.iter().rev() {
            if let Err(e) = slot.instance.close() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Each instance's own drop closes it, once.
        self.closed.store(true, Ordering::Release);
    }
}
