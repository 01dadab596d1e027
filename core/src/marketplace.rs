//! The plugin marketplace: a catalogue of the plugins flagged for listing.
//!
//! Switched on with [`ModuleRegistry::with_plugin_marketplace`](crate::ModuleRegistry::with_plugin_marketplace).
//! A plugin is listed when its metadata has `marketplace = "true"`; such a
//! plugin must then also carry the listing fields [`LISTING_FIELDS`].

use crate::config::ModuleConfig;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;

/// The metadata every listed plugin must carry.
pub const LISTING_FIELDS: [&str; 2] = ["description", "license_type"];

pub(crate) fn validate_listing(config: &ModuleConfig) -> Result<()> {
    if config.metadata().get("marketplace").map(String::as_str) != Some("true") {
        return Ok(());
    }
    let missing: Vec<&str> = LISTING_FIELDS
        .iter()
        .copied()
        .filter(|f| {
            config
                .metadata()
                .get(*f)
                .is_none_or(|v| v.trim().is_empty())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            name: config.name().to_string(),
            reason: format!(
                "a marketplace plugin needs non-empty metadata {}",
                missing.join(" and ")
            ),
        })
    }
}

/// A snapshot of the marketplace catalogue, by name then version descending.
#[derive(Debug, Clone)]
pub struct PluginMarketplace {
    plugins: Vec<ModuleInfo>,
}

impl PluginMarketplace {
    pub(crate) fn new(plugins: Vec<ModuleInfo>) -> Self {
        PluginMarketplace { plugins }
    }

    /// Every listed plugin.
    pub fn plugins(&self) -> &[ModuleInfo] {
        &self.plugins
    }

    /// How many listings.
    pub fn len(&self) -> usize {
        self.plugins.len()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// The listings under one licence (`license_type` metadata).
    pub fn by_license(&self, license_type: &str) -> Vec<ModuleInfo> {
        self.plugins
            .iter()
            .filter(|p| {
                p.metadata()
                    .get("license_type")
                    .is_some_and(|l| l == license_type)
            })
            .cloned()
            .collect()
    }

    /// The licence types on offer, sorted, without duplicates.
    pub fn licenses(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .plugins
            .iter()
            .filter_map(|p| p.metadata().get("license_type").cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The listings whose name or description contains `text` (case-insensitive).
    pub fn search(&self, text: &str) -> Vec<ModuleInfo> {
        let needle = text.to_lowercase();
        self.plugins
            .iter()
            .filter(|p| {
                p.name().contains(&needle)
                    || p.metadata()
                        .get("description")
                        .is_some_and(|d| d.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect()
    }
}
