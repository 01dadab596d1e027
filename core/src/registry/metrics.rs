//! The registry's metrics: reading them ([`ModuleRegistry::metrics`]),
//! turning counting off and on, merging counts made elsewhere, and the
//! counters each created instance keeps.

use std::sync::Arc;

use super::{ModuleRegistry, RegistryView};
use crate::access::Permission;
use crate::error::Result;
use crate::info::ModuleInfo;
use crate::metrics::{self, Gauges, Metrics, MetricsSnapshot, ModuleMetrics};

impl ModuleRegistry {
    /// What the registry counted: module calls, workflow runs and steps, the
    /// cache, pools, watchers, denials and the registrations by kind (see
    /// [`MetricsSnapshot`]; [`MetricsSnapshot::to_prometheus`] writes it in
    /// the Prometheus text format). Under a policy, needs `admin` on `*`.
    pub fn metrics(&self) -> Result<MetricsSnapshot> {
        self.authorize(Permission::Admin, "metrics", None)?;
        Ok(self.inner.metrics.snapshot(self.module_gauges()))
    }

    /// Turns counting off (`false`) or back on; what was counted is kept.
    /// Under a policy, needs `admin` on `*`.
    pub fn set_metrics(&self, enabled: bool) -> Result<()> {
        self.authorize(Permission::Admin, "set_metrics", None)?;
        self.inner.metrics.set_enabled(enabled);
        Ok(())
    }

    /// Adds counts made elsewhere (a batch's workers, each on a copy of this
    /// registry: see [`MetricsSnapshot::since`]) to this registry's
    /// counters and histograms. Refuses a snapshot naming a metric or
    /// labels this crate does not define, adding nothing.
    pub fn merge_metrics(&self, counts: &MetricsSnapshot) -> Result<()> {
        self.authorize(Permission::Admin, "merge_metrics", None)?;
        self.inner.metrics.merge(counts)
    }

    /// What this registry counted since the last call (since it was made,
    /// the first time): counters and histograms, no gauges, each count
    /// returned once. A copy of a registry on an executor's worker hands it
    /// back with each chunk it ran, for the owner to
    /// [`merge_metrics`](Self::merge_metrics). Under a policy, needs `admin` on `*`.
    pub fn take_metrics_delta(&self) -> Result<MetricsSnapshot> {
        self.authorize(Permission::Admin, "metrics", None)?;
        Ok(self.inner.metrics.take_delta())
    }

    /// The registry's metrics store (the layers above count into it).
    pub(crate) fn metrics_store(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The counters an instance of `info` keeps (found once, at create time).
    pub(crate) fn module_metrics(&self, info: &ModuleInfo) -> Arc<ModuleMetrics> {
        let implementation = implementation_label(info.config().implementation());
        self.inner
            .metrics
            .module(info.name(), info.version_text(), implementation)
    }

    /// `module_registry_modules{kind,implementation}`.
    fn module_gauges(&self) -> Gauges {
        let mut counts: std::collections::BTreeMap<(&'static str, &'static str), u64> =
            Default::default();
        {
            let state = self.inner.state.read();
            for info in state.slots.iter().flatten() {
                let kind = info.kind().as_str();
                let implementation = implementation_label(info.config().implementation());
                *counts.entry((kind, implementation)).or_insert(0) += 1;
            }
        }
        counts
            .into_iter()
            .map(|((k, i), n)| (metrics::MODULES, vec![k.to_string(), i.to_string()], n))
            .collect()
    }
}

impl RegistryView {
    /// [`ModuleRegistry::metrics`] as this principal (needs `admin` on `*`).
    pub fn metrics(&self) -> Result<MetricsSnapshot> {
        self.with(ModuleRegistry::metrics)
    }

    /// [`ModuleRegistry::set_metrics`] as this principal (needs `admin` on `*`).
    pub fn set_metrics(&self, enabled: bool) -> Result<()> {
        self.with(|r| r.set_metrics(enabled))
    }
}

/// The `implementation` label of a registration (`native` for a factory
/// given in code; `none` for a declaration, which is never called).
fn implementation_label(implementation: &crate::config::Implementation) -> &'static str {
    use crate::config::Implementation;
    match implementation {
        Implementation::Rhai(_) => "script",
        Implementation::Python(_) => "python",
        Implementation::Declaration => "none",
        Implementation::Native | Implementation::Custom => "native",
    }
}
