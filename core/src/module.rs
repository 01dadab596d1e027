//! The [`Module`] trait (a module's behaviour), [`FnModule`] (a module made
//! of one function) and [`ModuleContext`] (what `init` is given).

use std::sync::Arc;

use indexmap::IndexMap;

use crate::error::BoxError;
use crate::info::ModuleInfo;
pub use crate::instance::{InstanceState, ModuleInstance};
use crate::value::Value;

/// A module's behaviour. Implement `process`; `init` and `shutdown` are optional.
///
/// Every method takes `&self`: an instance may be called from several threads
/// at once, so per-instance state lives behind a lock or an atomic. Each
/// returns any error through `?` ([`BoxError`]); the registry reports it as
/// [`Error::ModuleFailed`](crate::Error::ModuleFailed) naming the module,
/// with the module's own error as its source. A panic is caught and
/// reported the same way.
///
/// ```
/// use module_registry::{BoxError, Module, ModuleConfig, ModuleRegistry, Value};
///
/// struct Scale(f64);
///
/// impl Module for Scale {
///     fn process(&self, input: Value) -> Result<Value, BoxError> {
///         let x: f64 = input.try_into()?;
///         Ok(Value::from(x * self.0))
///     }
/// }
///
/// let registry = ModuleRegistry::new();
/// registry.register(
///     ModuleConfig::new()
///         .with_name("scale")
///         .with_version("1.0.0")
///         .with_factory(|context| {
///             let factor = context.config().get("factor").and_then(Value::as_float);
///             Ok(Box::new(Scale(factor.unwrap_or(2.0))))
///         }),
/// )?;
/// let doubled = registry.create("scale")?.process(21.0)?;
/// assert_eq!(doubled, Value::from(42.0));
/// let tripled = registry
///     .instance("scale")
///     .config(module_registry::to_value(&serde_json::json!({"factor": 3.0}))?)
///     .create()?;
/// assert_eq!(tripled.process(2.0)?, Value::from(6.0));
/// # Ok::<(), module_registry::Error>(())
/// ```
pub trait Module: Send + Sync {
    /// Called once, before the first `process`, with the per-instance config
    /// and the instances of the module's dependencies (which the factory
    /// was given too).
    fn init(&self, _context: &ModuleContext) -> Result<(), BoxError> {
        Ok(())
    }

    /// Turns an input into an output.
    fn process(&self, input: Value) -> Result<Value, BoxError>;

    /// Called exactly once when the instance is closed or dropped.
    fn shutdown(&self) -> Result<(), BoxError> {
        Ok(())
    }
}

/// What a module's handler is: a function of the input.
pub type Handler = dyn Fn(Value) -> Result<Value, BoxError> + Send + Sync;

/// A module made of one function.
pub struct FnModule {
    handler: Arc<Handler>,
}

impl FnModule {
    /// Wrap a function.
    pub fn new<F: Fn(Value) -> Result<Value, BoxError> + Send + Sync + 'static>(f: F) -> Self {
        FnModule {
            handler: Arc::new(f),
        }
    }

    /// Wrap a shared function.
    pub fn from_arc(handler: Arc<Handler>) -> Self {
        FnModule { handler }
    }
}

impl Module for FnModule {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        (self.handler)(input)
    }
}

/// What a module's factory and its `init` get: its declaration, its
/// per-instance config and its dependencies' instances (built before it,
/// shut down after it).
pub struct ModuleContext {
    info: ModuleInfo,
    config: Value,
    dependencies: IndexMap<String, Arc<ModuleInstance>>,
}

impl ModuleContext {
    pub(crate) fn new(
        info: ModuleInfo,
        config: Value,
        dependencies: IndexMap<String, Arc<ModuleInstance>>,
    ) -> Self {
        ModuleContext {
            info,
            config,
            dependencies,
        }
    }

    /// The module's own registered declaration.
    pub fn info(&self) -> &ModuleInfo {
        &self.info
    }

    /// The per-instance config (`Value::Null` when none was given).
    pub fn config(&self) -> &Value {
        &self.config
    }

    /// The per-instance config as a typed struct: no config (`Null`) is
    /// `T::default()`, a partial map fills the rest from `#[serde(default)]`.
    /// A config that does not fit is an [`Error::InvalidConfig`](crate::Error::InvalidConfig)
    /// naming the module and the path of the field that failed.
    ///
    /// ```
    /// use module_registry::{BoxError, FnModule, Module, ModuleConfig, ModuleContext, ModuleRegistry, Value};
    ///
    /// #[derive(serde::Deserialize, Default)]
    /// #[serde(default)]
    /// struct Geo { country: String, precision: u8 }
    ///
    /// fn make(context: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    ///     let geo: Geo = context.config_as()?;
    ///     Ok(Box::new(FnModule::new(move |_| Ok(Value::from(format!("{}/{}", geo.country, geo.precision))))))
    /// }
    ///
    /// let registry = ModuleRegistry::new();
    /// registry.register(ModuleConfig::new().with_name("geo").with_version("1.0.0").with_factory(make))?;
    /// assert_eq!(registry.create("geo")?.process(())?, Value::from("/0"));
    /// let partial = [("country", "fr")].into_iter().collect::<Value>();
    /// assert_eq!(registry.instance("geo").config(partial).create()?.process(())?, Value::from("fr/0"));
    ///
    /// let wrong = [("precision", "high")].into_iter().collect::<Value>();
    /// let error = registry.instance("geo").config(wrong).create().unwrap_err();
    /// assert!(error.report().contains("precision"), "{}", error.report());
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn config_as<T: serde::de::DeserializeOwned + Default>(&self) -> crate::error::Result<T> {
        if self.config.is_null() {
            return Ok(T::default());
        }
        let module = format!("{}@{}", self.info.name(), self.info.version());
        let json = self
            .config
            .to_json()
            .map_err(|e| crate::error::Error::InvalidConfig {
                name: module.clone(),
                reason: format!("its config {}", e.report()),
            })?;
        serde_path_to_error::deserialize(json).map_err(|e| {
            let path = e.path().to_string();
            crate::error::Error::InvalidConfig {
                name: module,
                reason: if path == "." {
                    format!("its config does not fit: {}", e.inner())
                } else {
                    format!("its config does not fit at {path}: {}", e.inner())
                },
            }
        })
    }

    /// The instance of dependency `name`, if the module declared it.
    pub fn dependency(&self, name: &str) -> Option<&Arc<ModuleInstance>> {
        self.dependencies.get(name)
    }

    /// The instance of dependency `name`, or an error saying the module
    /// declares no such dependency: for a factory, `context.require("db")?`.
    pub fn require(&self, name: &str) -> crate::error::Result<Arc<ModuleInstance>> {
        self.dependencies
            .get(name)
            .cloned()
            .ok_or_else(|| crate::error::Error::InvalidConfig {
                name: self.info.name().to_string(),
                reason: format!(
                    "it declares no dependency named {name:?} (declared: {})",
                    if self.dependencies.is_empty() {
                        "none".to_string()
                    } else {
                        self.dependencies
                            .keys()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            })
    }

    /// Every dependency instance by name.
    pub fn dependencies(&self) -> &IndexMap<String, Arc<ModuleInstance>> {
        &self.dependencies
    }
}
