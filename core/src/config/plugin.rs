//! [`PluginConfig`]: a module declaration in the plugin namespace.

#[allow(clippy::wildcard_imports)]
use super::*; // what `builder_methods!` names

/// The declaration of a plugin: the same fields and builders as
/// [`ModuleConfig`], registered in the registry's plugin namespace with
/// [`register_plugin`](crate::ModuleRegistry::register_plugin).
#[derive(Clone, Debug, PartialEq)]
#[must_use = "builder methods return the changed value; use it"]
pub struct PluginConfig {
    inner: ModuleConfig,
}

impl Default for PluginConfig {
    fn default() -> Self {
        PluginConfig {
            inner: ModuleConfig {
                kind: ModuleKind::Plugin,
                ..ModuleConfig::default()
            },
        }
    }
}

impl PluginConfig {
    /// An empty plugin declaration.
    pub fn new() -> Self {
        Self::default()
    }

    builder_methods!(.inner);

    /// The declaration as a [`ModuleConfig`] of kind `Plugin`.
    pub fn into_module_config(self) -> ModuleConfig {
        self.inner
    }
}

impl From<PluginConfig> for ModuleConfig {
    fn from(p: PluginConfig) -> Self {
        p.into_module_config()
    }
}
