//! The two vocabularies every record uses: [`ModuleKind`] (which namespace)
//! and [`ModuleType`] (what a module is for). Parsing them from text, with
//! typed errors, is in [`validate`](crate::validate).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Which of the registry's two namespaces an entry lives in.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    /// A module ([`ModuleConfig`](crate::ModuleConfig)).
    #[default]
    Module,
    /// A plugin ([`PluginConfig`](crate::PluginConfig)).
    Plugin,
}

impl ModuleKind {
    /// `"module"` or `"plugin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleKind::Module => "module",
            ModuleKind::Plugin => "plugin",
        }
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a module is for. The named variants are the common roles; anything
/// else is `Custom`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ModuleType {
    /// Transforms data.
    #[default]
    DataProcessor,
    /// Authentication, authorization, cryptography.
    Security,
    /// Talks over a network (gateways, services).
    Network,
    /// Stores and retrieves data.
    Storage,
    /// Computation.
    Compute,
    /// Analysis and reporting.
    Analytics,
    /// Metrics, logging, alerting.
    Monitoring,
    /// Connects to other systems.
    Integration,
    /// Any other role, by name.
    Custom(String),
}

/// Plugins use the same vocabulary of types as modules.
pub type PluginType = ModuleType;

pub(crate) static NAMED_TYPES: [(ModuleType, &str); 8] = [
    (ModuleType::DataProcessor, "DataProcessor"),
    (ModuleType::Security, "Security"),
    (ModuleType::Network, "Network"),
    (ModuleType::Storage, "Storage"),
    (ModuleType::Compute, "Compute"),
    (ModuleType::Analytics, "Analytics"),
    (ModuleType::Monitoring, "Monitoring"),
    (ModuleType::Integration, "Integration"),
];

impl ModuleType {
    /// The type's name: `"DataProcessor"`, ..., or the custom name.
    pub fn name(&self) -> &str {
        match self {
            ModuleType::Custom(s) => s,
            named => NAMED_TYPES
                .iter()
                .find(|(t, _)| t == named)
                .map(|(_, n)| *n)
                .unwrap_or("Custom"),
        }
    }

    /// The type with this name: a named variant when the name is one of theirs
    /// (so `custom("Security") == ModuleType::Security`), `Custom` otherwise.
    pub fn custom(name: impl Into<String>) -> Self {
        let name = name.into();
        NAMED_TYPES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(t, _)| t.clone())
            .unwrap_or(ModuleType::Custom(name))
    }

    /// Every named (non-custom) type.
    pub fn named() -> impl Iterator<Item = ModuleType> {
        NAMED_TYPES.iter().map(|(t, _)| t.clone())
    }
}

impl fmt::Display for ModuleType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ModuleType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ModuleType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
