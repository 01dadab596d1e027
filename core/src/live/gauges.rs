//! `module_registry_pool_instances{pool,state}`: each open pool's
//! instances by state, read when the registry's metrics are.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::pool::Inner;
use super::InstancePool;
use crate::metrics::{Gauges, POOL_INSTANCES};
use crate::registry::ModuleRegistry;

/// `pool`, its instances reported in `registry`'s metrics until it is
/// closed or dropped (a weak handle: the metrics do not keep it alive).
pub(super) fn watched(registry: &ModuleRegistry, pool: InstancePool) -> InstancePool {
    let weak = Arc::downgrade(&pool.inner);
    registry
        .metrics_store()
        .add_source(move |out| gauges(&weak, out));
    pool
}

/// `idle`, `busy` and `resting` (the pool's `cooling-down`: its provider's
/// circuit is open); `false` once the pool is gone.
fn gauges(weak: &Weak<Inner>, out: &mut Gauges) -> bool {
    let Some(inner) = weak.upgrade().filter(|i| !i.closed.load(Ordering::Acquire)) else {
        return false;
    };
    let label = inner.label.clone();
    let pool = InstancePool { inner };
    let mut counts = [0u64; 3];
    for s in pool.stats() {
        if let Some(at) = ["idle", "busy", "cooling-down"]
            .iter()
            .position(|x| *x == s.state)
        {
            counts[at] += 1;
        }
    }
    for (state, n) in ["idle", "busy", "resting"].into_iter().zip(counts) {
        out.push((POOL_INSTANCES, vec![label.clone(), state.to_string()], n));
    }
    true
}
