//! The registry: [`ModuleRegistry`], the shared, thread-safe facade over the
//! store of declarations and its indexes.
//!
//! | file | owns |
//! |---|---|
//! | `store.rs` | slots, the name tables, version selection |
//! | `index.rs` | the capability index (postings and pairs) |
//! | `guard.rs` | access checks against the [`AccessPolicy`] |
//! | `register.rs` | registering and removing declarations |
//! | `lookup.rs` | finding, listing, discovering, resolving, the audit log |
//! | `create.rs` | building instances, dependencies first |
//! | `view.rs` | [`RegistryView`], the registry acting as one principal |
//!
//! This layer knows nothing of scripts or workflows: those layers add their
//! methods to `ModuleRegistry` from their own modules, and keep their state
//! in the registry's [extensions](ModuleRegistry::extension).

mod builder;
mod create;
mod guard;
mod index;
mod lookup;
mod metrics;
mod register;
mod store;
#[cfg(test)]
mod tests;
mod view;

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering as AtomicOrdering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::access::{AccessPolicy, Permission};
use crate::audit::AuditLog;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::native;

pub use builder::RegistryBuilder;
pub use create::InstanceBuilder;
pub(crate) use register::Replace;
pub use view::RegistryView;

use self::store::State;

struct Inner {
    state: RwLock<State>,
    /// Bumped after every change of `state` (see [`ModuleRegistry::generation`]).
    generation: std::sync::atomic::AtomicU64,
    audit: Arc<AuditLog>,
    workflow_orchestration: AtomicBool,
    plugin_marketplace: AtomicBool,
    policy: RwLock<Option<Arc<AccessPolicy>>>,
    /// State the layers above keep per registry (the script host, ...),
    /// one value per type.
    extensions: RwLock<Vec<Arc<dyn Any + Send + Sync>>>,
    /// What is counted (`metrics()`).
    metrics: Arc<crate::metrics::Metrics>,
    /// The [`Validation`](crate::schema::Validation) mode as its byte,
    /// shared with every instance built (so a change applies to them too).
    validation: Arc<AtomicU8>,
}

/// The store locked for a change; bumps the registry's generation when dropped.
struct StateWrite<'a> {
    guard: parking_lot::RwLockWriteGuard<'a, State>,
    generation: &'a std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for StateWrite<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.guard
    }
}

impl std::ops::DerefMut for StateWrite<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.guard
    }
}

impl Drop for StateWrite<'_> {
    fn drop(&mut self) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// The registry of modules and plugins.
///
/// Cheap to clone (clones share one registry), `Send + Sync`, and every
/// method takes `&self`: reads never block each other, and no lock is held
/// while module code (factories, hooks, `process`) runs, so modules may call
/// back into the registry.
///
/// ```
/// use module_registry::{CapabilityQuery, ModuleConfig, ModuleRegistry, Value};
///
/// let registry = ModuleRegistry::with_native_modules(); // sha256, gzip, json, ...
/// registry.register(
///     ModuleConfig::new()
///         .with_name("shout")
///         .with_version("1.2.0")
///         .add_capability("text")
///         .with_dependency("text-decode", "^1")
///         .with_handler(|input| Ok(Value::from(input.as_str().unwrap_or_default().to_uppercase()))),
/// )?;
/// // Shared between threads: clones are handles on one registry.
/// let worker = registry.clone();
/// let out = std::thread::spawn(move || worker.create_version("shout", "^1")?.process("hi"))
///     .join()
///     .unwrap()?;
/// assert_eq!(out, Value::from("HI"));
/// let text = registry.discover_capabilities(CapabilityQuery::new().with_required_capabilities(["text"]))?;
/// assert_eq!(text[0].name(), "shout");
/// let plan = registry.resolve(module_registry::ModuleKind::Module, "shout", None)?; // dependencies first
/// assert_eq!(plan.modules()[0].name(), "text-decode");
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Clone)]
pub struct ModuleRegistry {
    inner: Arc<Inner>,
}

impl Default for ModuleRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ModuleRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleRegistry")
            .field("len", &self.len())
            .field(
                "workflow_orchestration",
                &self.workflow_orchestration_enabled(),
            )
            .field("plugin_marketplace", &self.plugin_marketplace_enabled())
            .finish()
    }
}
impl ModuleRegistry {
    /// An empty registry: workflow orchestration on, plugin marketplace off.
    pub fn new() -> Self {
        ModuleRegistry {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                generation: std::sync::atomic::AtomicU64::new(0),
                audit: Arc::new(AuditLog::default()),
                workflow_orchestration: AtomicBool::new(true),
                plugin_marketplace: AtomicBool::new(false),
                policy: RwLock::new(None),
                extensions: RwLock::new(Vec::new()),
                metrics: Arc::default(),
                validation: Arc::new(AtomicU8::new(0)),
            }),
        }
    }

    /// A registry holding every native module linked into the program (see
    /// [`native_module!`](crate::native_module)).
    ///
    /// # Panics
    /// When a declaration is wrong in a way the compiler could not see (two
    /// declarations of one name and version, an invalid capability or
    /// dependency), with the report of
    /// [`try_with_native_modules`](Self::try_with_native_modules), which
    /// returns it instead.
    ///
    /// A native module is found only if its crate is linked: a plugin crate
    /// that nothing in the program references is left out by the linker;
    /// reference it with `use plugin_crate as _;`.
    pub fn with_native_modules() -> Self {
        Self::try_with_native_modules().unwrap_or_else(|e| panic!("{}", e.report()))
    }

    /// A registry holding every native module linked into the program, or
    /// an error listing every declaration that cannot be registered (all of
    /// them, not only the first).
    pub fn try_with_native_modules() -> Result<Self> {
        Self::registry_of_natives(native::configs()?)
    }

    /// A registry holding only the native modules declared in the named
    /// crates (names as `module_path!()` spells them: `my_crate`, with
    /// underscores), without this crate's built-ins unless
    /// `"module_registry"` is named too.
    ///
    /// ```
    /// use module_registry::ModuleRegistry;
    /// // A doctest is its own crate: it declares no natives, so this is empty.
    /// let registry = ModuleRegistry::with_crate_native_modules(&["my_host"]);
    /// assert!(registry.list().is_empty());
    /// let builtins = ModuleRegistry::with_crate_native_modules(&["module_registry"]);
    /// assert!(builtins.get("sha256").is_some());
    /// ```
    ///
    /// # Panics
    /// As [`with_native_modules`](Self::with_native_modules), with the report
    /// of [`try_with_crate_native_modules`](Self::try_with_crate_native_modules).
    pub fn with_crate_native_modules(crates: &[&str]) -> Self {
        Self::try_with_crate_native_modules(crates).unwrap_or_else(|e| panic!("{}", e.report()))
    }

    /// [`with_crate_native_modules`](Self::with_crate_native_modules),
    /// returning every declaration that cannot be registered as an error.
    pub fn try_with_crate_native_modules(crates: &[&str]) -> Result<Self> {
        Self::registry_of_natives(native::configs_where(|m| crates.contains(&m.crate_name()))?)
    }

    pub(super) fn registry_of_natives(configs: Vec<crate::config::ModuleConfig>) -> Result<Self> {
        let registry = Self::new();
        let mut problems = Vec::new();
        for config in configs {
            let what = format!("{}@{}", config.name(), config.version());
            if let Err(e) = registry.register_config(config, false) {
                problems.push(format!("{what}: {}", e.report()));
            }
        }
        if problems.is_empty() {
            Ok(registry)
        } else {
            Err(Error::invalid_input(format!(
                "native modules that cannot be registered: {}",
                problems.join("; ")
            )))
        }
    }

    /// Registers every native module linked into the program, failing on the
    /// first error (already registered, invalid declaration).
    pub fn register_native_modules(&self) -> Result<Vec<ModuleInfo>> {
        native::configs()?
            .into_iter()
            .map(|config| self.register_config(config, false))
            .collect()
    }

    /// Switch workflow orchestration on or off (on by default) on the
    /// registry being built. When off, [`orchestrate`](Self::orchestrate)
    /// (and every other way of running a chain of modules through the
    /// registry) fails with [`Error::FeatureDisabled`]; registering,
    /// discovering and creating single modules still work.
    ///
    /// # Panics
    /// When another handle shares the registry (a clone, a view, a pool, a
    /// watcher): `with_*` builds a registry and never changes one that
    /// others use. Switch a shared registry with
    /// [`set_workflow_orchestration`](Self::set_workflow_orchestration).
    ///
    /// ```
    /// use module_registry::ModuleRegistry;
    ///
    /// let locked = ModuleRegistry::new().with_workflow_orchestration(false);
    /// assert!(!locked.workflow_orchestration_enabled());
    /// let shared = locked.clone();
    /// shared.set_workflow_orchestration(true)?; // both handles see it
    /// assert!(locked.workflow_orchestration_enabled());
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    #[deprecated(
        since = "0.1.0",
        note = "set it when the registry is made, `ModuleRegistry::builder().workflow_orchestration(..).build()`, or on a shared registry with `set_workflow_orchestration`"
    )]
    pub fn with_workflow_orchestration(self, enabled: bool) -> Self {
        self.assert_unshared("with_workflow_orchestration", "set_workflow_orchestration");
        self.inner
            .workflow_orchestration
            .store(enabled, AtomicOrdering::Release);
        self
    }

    /// See [`with_workflow_orchestration`](Self::with_workflow_orchestration).
    pub fn set_workflow_orchestration(&self, enabled: bool) -> Result<()> {
        self.authorize(Permission::Admin, "set_workflow_orchestration", None)?;
        self.inner
            .workflow_orchestration
            .store(enabled, AtomicOrdering::Release);
        Ok(())
    }

    /// Whether workflow orchestration is on.
    pub fn workflow_orchestration_enabled(&self) -> bool {
        self.inner
            .workflow_orchestration
            .load(AtomicOrdering::Acquire)
    }

    /// What is checked of the values modules receive and return, against
    /// their declared types (off by default): [`Validation::Inputs`](crate::Validation::Inputs)
    /// checks each value a module is given, [`Validation::All`](crate::Validation::All)
    /// also what it returns; a value that does not fit is an
    /// [`Error::SchemaMismatch`] naming the module. Applies to the
    /// instances already built too. Needs [`Permission::Admin`].
    ///
    /// ```
    /// use module_registry::{ModuleConfig, ModuleRegistry, Schema, Validation, Value};
    ///
    /// let registry = ModuleRegistry::new();
    /// registry.register(
    ///     ModuleConfig::new()
    ///         .with_name("liar")
    ///         .with_version("1.0.0")
    ///         .with_input(Schema::parse("str")?)
    ///         .with_output(Schema::parse("int")?)
    ///         .with_handler(|v| Ok(v)),
    /// )?;
    /// let liar = registry.create("liar")?;
    /// assert_eq!(liar.process("x")?, Value::from("x")); // off: unchecked
    /// registry.set_validation(Validation::All)?;
    /// let err = liar.process("x").unwrap_err();
    /// assert_eq!(err.to_string(), "module \"liar@1.0.0\": its output at $ does not fit: expected int, found str");
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn set_validation(&self, mode: crate::schema::Validation) -> Result<()> {
        self.authorize(Permission::Admin, "set_validation", None)?;
        self.inner
            .validation
            .store(mode as u8, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// The validation mode ([`set_validation`](Self::set_validation)).
    pub fn validation(&self) -> crate::schema::Validation {
        crate::schema::Validation::from_u8(self.inner.validation.load(AtomicOrdering::Relaxed))
    }

    /// Switch the plugin marketplace on or off (off by default). When on,
    /// a plugin registered with metadata `marketplace = "true"` must also
    /// carry `description` and `license_type` metadata (else
    /// [`Error::InvalidConfig`]), and [`plugin_marketplace`](Self::plugin_marketplace)
    /// lists those plugins. When off, `plugin_marketplace` fails with
    /// [`Error::FeatureDisabled`].
    ///
    /// # Panics
    /// When another handle shares the registry (see
    /// [`with_workflow_orchestration`](Self::with_workflow_orchestration));
    /// use [`set_plugin_marketplace`](Self::set_plugin_marketplace) there.
    #[deprecated(
        since = "0.1.0",
        note = "set it when the registry is made, `ModuleRegistry::builder().plugin_marketplace(..).build()`, or on a shared registry with `set_plugin_marketplace`"
    )]
    pub fn with_plugin_marketplace(self, enabled: bool) -> Self {
        self.assert_unshared("with_plugin_marketplace", "set_plugin_marketplace");
        self.inner
            .plugin_marketplace
            .store(enabled, AtomicOrdering::Release);
        self
    }

    /// See [`with_plugin_marketplace`](Self::with_plugin_marketplace).
    pub fn set_plugin_marketplace(&self, enabled: bool) -> Result<()> {
        self.authorize(Permission::Admin, "set_plugin_marketplace", None)?;
        self.inner
            .plugin_marketplace
            .store(enabled, AtomicOrdering::Release);
        Ok(())
    }

    /// Whether the plugin marketplace is on.
    pub fn plugin_marketplace_enabled(&self) -> bool {
        self.inner.plugin_marketplace.load(AtomicOrdering::Acquire)
    }

    /// Keep at most `capacity` audit events (default
    /// [`DEFAULT_AUDIT_CAPACITY`](crate::audit::DEFAULT_AUDIT_CAPACITY)).
    ///
    /// # Panics
    /// When another handle shares the registry (see
    /// [`with_workflow_orchestration`](Self::with_workflow_orchestration));
    /// use [`set_audit_capacity`](Self::set_audit_capacity) there.
    #[deprecated(
        since = "0.1.0",
        note = "set it when the registry is made, `ModuleRegistry::builder().audit_capacity(..).build()`, or on a shared registry with `set_audit_capacity`"
    )]
    pub fn with_audit_capacity(self, capacity: usize) -> Self {
        self.assert_unshared("with_audit_capacity", "set_audit_capacity");
        self.inner.audit.set_capacity(capacity);
        self
    }

    /// Keep at most `capacity` audit events from now on, on a registry
    /// others may share. Under a policy, needs `admin` on `*`.
    pub fn set_audit_capacity(&self, capacity: usize) -> Result<()> {
        self.authorize(Permission::Admin, "set_audit_capacity", None)?;
        self.inner.audit.set_capacity(capacity);
        Ok(())
    }

    /// Whether this is the only handle on the registry.
    fn is_unshared(&self) -> bool {
        Arc::strong_count(&self.inner) == 1 && Arc::weak_count(&self.inner) == 0
    }

    /// `with_*` builds a registry: on one others share, it would change
    /// theirs too.
    #[track_caller]
    fn assert_unshared(&self, with: &str, set: &str) {
        assert!(
            self.is_unshared(),
            "ModuleRegistry::{with} on a registry other handles share (clones, views, pools, \
             watchers) would change it for them too; use ModuleRegistry::{set} on a shared registry"
        );
    }

    /// Sets the registry-wide settings a manifest carries, unchecked.
    pub(crate) fn apply_settings(
        &self,
        orchestration: bool,
        marketplace: bool,
        audit_capacity: usize,
        validation: crate::schema::Validation,
    ) {
        self.inner
            .validation
            .store(validation as u8, AtomicOrdering::Relaxed);
        self.inner
            .workflow_orchestration
            .store(orchestration, AtomicOrdering::Release);
        self.inner
            .plugin_marketplace
            .store(marketplace, AtomicOrdering::Release);
        self.inner.audit.set_capacity(audit_capacity);
    }

    /// [`Error::FeatureDisabled`] unless workflow orchestration is on: every
    /// way of running a chain of modules checks this first.
    #[cfg(any(feature = "scripts", feature = "workflows"))]
    pub(crate) fn require_orchestration(&self) -> Result<()> {
        if self.workflow_orchestration_enabled() {
            Ok(())
        } else {
            Err(crate::error::Error::FeatureDisabled {
                feature: "workflow orchestration",
                hint: "ModuleRegistry::with_workflow_orchestration(true)",
            })
        }
    }

    /// A number that changes after every change of what is registered:
    /// what was planned against one generation (a workflow's modules) holds
    /// while it is unchanged.
    #[cfg(feature = "workflows")]
    pub(crate) fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The store, to change: the generation moves on when the change is
    /// done, before the lock is released (a reader that saw the old
    /// generation planned against the old store or a newer one).
    fn state_mut(&self) -> StateWrite<'_> {
        StateWrite {
            guard: self.inner.state.write(),
            generation: &self.inner.generation,
        }
    }

    /// The registry's one value of type `T`, made with `T::default()` on
    /// first use. The layers above the registry (scripts, ...) keep their
    /// per-registry state here, so the registry need not know their types.
    pub fn extension<T: Any + Default + Send + Sync>(&self) -> Arc<T> {
        let find = |list: &[Arc<dyn Any + Send + Sync>]| {
            list.iter()
                .find(|e| e.as_ref().is::<T>())
                .map(|e| e.clone().downcast::<T>().expect("checked by is::<T>"))
        };
        if let Some(found) = find(&self.inner.extensions.read()) {
            return found;
        }
        let mut list = self.inner.extensions.write();
        if let Some(found) = find(&list) {
            return found;
        }
        let made = Arc::new(T::default());
        list.push(made.clone());
        made
    }
}
