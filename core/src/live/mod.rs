//! Live modules: instance pools. [`InstancePool`] spreads calls over
//! several instances (of one module, or of every provider of a
//! capability), retries failures on another instance and rests a provider
//! that keeps failing. Workflow steps (`pool = N`) and scripts
//! (`registry.pool(...)`) use it; script folders reloaded as their files
//! change are the script layer's (`script::watch`).
//!
//! This layer uses the registry through its API; the registry does not
//! know it.

mod gauges;
mod options;
pub mod pool;

pub use pool::{InstancePool, PoolOptions, PoolSlotStats, PoolTarget, Strategy};
