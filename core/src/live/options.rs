//! How a pool is built: its target, size, strategy, retries and cool-down.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::query::CapabilityQuery;
use crate::value::Value;

/// Failures in a row after which a provider is rested for the cool-down.
pub const FAILURES_TO_OPEN: u32 = 5;

/// The largest pool, in instances (of every provider together: a pool over
/// a capability query holds `size` of each provider, at most this many in
/// all): instances are real objects (a script's engine and state, a Python
/// object), and a pool is not a way to allocate millions.
pub const MAX_POOL_SIZE: usize = 1024;

/// The most retries a pool may make of one call.
pub const MAX_POOL_RETRIES: u32 = 100;

/// How a pool picks the instance for a call among the free ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// In turn (`"round-robin"`).
    #[default]
    RoundRobin,
    /// The free instance whose provider has the fewest calls running, then
    /// the one with the fewest calls so far (`"least-busy"`).
    LeastBusy,
}

impl Strategy {
    /// `"round-robin"` or `"least-busy"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastBusy => "least-busy",
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "round-robin" => Ok(Strategy::RoundRobin),
            "least-busy" => Ok(Strategy::LeastBusy),
            other => Err(Error::invalid_input(format!(
                "unknown pool strategy {other:?} (expected \"round-robin\" or \"least-busy\")"
            ))),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a pool holds instances of.
#[derive(Clone, Debug)]
pub enum PoolTarget {
    /// The highest version of a module satisfying the requirement (any when `None`).
    Module {
        /// The module's name.
        name: String,
        /// A semver requirement such as `"^1"`.
        requirement: Option<String>,
    },
    /// Every module the query discovers: `size` instances of each.
    Query(CapabilityQuery),
    /// Exactly this registration.
    Registration(ModuleInfo),
}

impl From<ModuleInfo> for PoolTarget {
    fn from(info: ModuleInfo) -> Self {
        PoolTarget::Registration(info)
    }
}

impl From<&str> for PoolTarget {
    fn from(name: &str) -> Self {
        PoolTarget::Module {
            name: name.to_string(),
            requirement: None,
        }
    }
}

impl From<String> for PoolTarget {
    fn from(name: String) -> Self {
        PoolTarget::Module {
            name,
            requirement: None,
        }
    }
}

impl From<CapabilityQuery> for PoolTarget {
    fn from(query: CapabilityQuery) -> Self {
        PoolTarget::Query(query)
    }
}

/// How a pool is built and behaves; `PoolOptions::new(4)` is four instances,
/// round-robin, no retries, a 30 s cool-down, a null config.
#[derive(Clone, Debug)]
#[must_use]
pub struct PoolOptions {
    /// Instances per provider (all of them together at most [`MAX_POOL_SIZE`]).
    pub size: usize,
    /// How a free instance is picked.
    pub strategy: Strategy,
    /// How many times a failed call is tried again on another instance.
    pub retries: u32,
    /// How long a provider that failed [`FAILURES_TO_OPEN`] times in a row rests.
    pub cooldown: Duration,
    /// The config every instance is created with.
    pub config: Value,
    /// The configs of the instances' dependencies, by module name (see
    /// [`InstanceBuilder::dependency_config`](crate::InstanceBuilder::dependency_config)).
    pub dependency_configs: Vec<(String, Value)>,
}

impl PoolOptions {
    /// `size` instances per provider, and the defaults for the rest.
    pub fn new(size: usize) -> Self {
        PoolOptions {
            size,
            strategy: Strategy::RoundRobin,
            retries: 0,
            cooldown: Duration::from_secs(30),
            config: Value::Null,
            dependency_configs: Vec::new(),
        }
    }

    /// With this strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// With this many retries of a failed call.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// With this cool-down for a failing provider.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// With this config for every instance.
    pub fn config(mut self, config: impl Into<Value>) -> Self {
        self.config = config.into();
        self
    }

    /// With this config for dependency `name` of every instance.
    pub fn dependency_config(mut self, name: impl Into<String>, config: impl Into<Value>) -> Self {
        self.dependency_configs.push((name.into(), config.into()));
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.size == 0 || self.size > MAX_POOL_SIZE {
            return Err(Error::invalid_input(format!(
                "a pool's size must be between 1 and {MAX_POOL_SIZE}, not {}",
                self.size
            )));
        }
        if self.retries > MAX_POOL_RETRIES {
            return Err(Error::invalid_input(format!(
                "a pool's retries must be at most {MAX_POOL_RETRIES}, not {}",
                self.retries
            )));
        }
        if self.cooldown.is_zero() {
            return Err(Error::invalid_input("a pool's cooldown must be above zero"));
        }
        Ok(())
    }
}
