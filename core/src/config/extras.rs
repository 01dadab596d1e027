//! What most declarations leave empty, kept apart so that a plain
//! declaration stays small: metadata (shared until changed), factory and
//! implementation, and, boxed once more, a custom type and dependencies.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Factory, Implementation};
use crate::kind::ModuleType;

#[derive(Clone, Default)]
pub(crate) struct Extras {
    /// Shared until changed: declarations whose only metadata is the
    /// implementation label all point at one map.
    pub(super) metadata: Arc<BTreeMap<String, String>>,
    pub(super) factory: Option<Factory>,
    pub(super) implementation: Implementation,
    /// A custom type and dependencies, boxed once more: most modules with
    /// an implementation have neither.
    pub(super) rare: Option<Box<Rare>>,
    /// The module never sees an instance config (its factory and `init`
    /// ignore it), so one given to it is refused.
    pub(super) ignores_config: bool,
}

#[derive(Clone, Default)]
pub(super) struct Rare {
    pub(super) custom_type: Option<ModuleType>,
    pub(super) dependencies: BTreeMap<String, String>,
    /// The dependencies' requirements, parsed (in the map's order) when the
    /// config is validated.
    pub(super) requirements: Box<[semver::VersionReq]>,
    /// The declared input, output and config types.
    pub(super) types: super::types::Types,
}

impl Rare {
    pub(super) fn is_empty(&self) -> bool {
        self.custom_type.is_none() && self.dependencies.is_empty() && self.types.is_empty()
    }
}

/// A metadata map shared between declarations until one of them changes it.
type SharedMap = Arc<BTreeMap<String, String>>;

/// The metadata maps holding only an implementation label, one per label.
fn label_only(label: &'static str) -> SharedMap {
    static MAPS: std::sync::OnceLock<[(&'static str, SharedMap); 3]> = std::sync::OnceLock::new();
    let maps = MAPS.get_or_init(|| {
        ["native", "rhai", "python"].map(|l| {
            (
                l,
                Arc::new(BTreeMap::from([(
                    "implementation".to_string(),
                    l.to_string(),
                )])),
            )
        })
    });
    maps.iter()
        .find(|(l, _)| *l == label)
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| {
            Arc::new(BTreeMap::from([(
                "implementation".to_string(),
                label.to_string(),
            )]))
        })
}

impl Extras {
    /// Sets the `implementation` metadata label, sharing one map between
    /// every declaration that has no other metadata.
    pub(super) fn set_label(&mut self, label: &'static str) {
        let only_label = self.metadata.keys().all(|k| k == "implementation");
        if only_label {
            self.metadata = label_only(label);
        } else {
            Arc::make_mut(&mut self.metadata).insert("implementation".into(), label.into());
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rare.is_none()
            && self.metadata.is_empty()
            && self.factory.is_none()
            && self.implementation == Implementation::Declaration
            && !self.ignores_config
    }

    /// Set with `without_config`, or Python code that would never see a config.
    pub(super) fn refuses_config(&self) -> bool {
        self.ignores_config
            || matches!(&self.implementation, Implementation::Python(code) if code.ignores_config)
    }

    pub(super) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }
}

impl super::ModuleConfig {
    /// The module reads no instance config: one given to it is refused (when
    /// a workflow is checked, when an instance is built), not silently
    /// ignored. Setting a factory afterwards clears this.
    pub fn without_config(mut self) -> Self {
        self.extras_mut().ignores_config = true;
        self
    }

    /// Whether a config given to it is refused: declared
    /// [`without_config`](Self::without_config), or Python code that would
    /// never see one.
    pub fn ignores_config(&self) -> bool {
        self.extras.as_ref().is_some_and(|e| e.refuses_config())
    }
}
