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
#[derive(Clone)]
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

    /// Whether the module call running on this thread was cancelled (its
    /// step timed out, its run was cancelled, its async call's future was
    /// dropped): the same as [`call_cancelled`](crate::call_cancelled), at
    /// hand where a factory's closure keeps its context.
    pub fn is_cancelled(&self) -> bool {
        crate::cancel::call_cancelled()
    }

    /// Every dependency instance by name.
    pub fn dependencies(&self) -> &IndexMap<String, Arc<ModuleInstance>> {
        &self.dependencies
    }
}

/// A module made of a typed function ([`ModuleConfig::typed`](crate::ModuleConfig::typed)):
/// each input is deserialized into `In`, each output serialized from `Out`.
struct TypedModule<In, Out, F> {
    handler: Arc<F>,
    context: ModuleContext,
    types: std::marker::PhantomData<fn(In) -> Out>,
}

impl<In, Out, F> Module for TypedModule<In, Out, F>
where
    In: serde::de::DeserializeOwned + 'static,
    Out: serde::Serialize + 'static,
    F: Fn(In, &ModuleContext) -> Result<Out, BoxError> + Send + Sync + 'static,
{
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let typed: In = decode_input(&self.context, &input)?;
        let out = (self.handler)(typed, &self.context)?;
        Ok(crate::value::to_value(&out)?)
    }
}

/// `input` as `In`, or an error naming the module, the path inside the
/// value and what did not fit.
fn decode_input<In: serde::de::DeserializeOwned>(
    context: &ModuleContext,
    input: &Value,
) -> crate::error::Result<In> {
    let info = context.info();
    let json = input.to_json().map_err(|e| {
        crate::error::Error::invalid_input(format!(
            "{}@{} takes a typed input: {}",
            info.name(),
            info.version(),
            e.report()
        ))
    })?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        crate::error::Error::invalid_input(format!(
            "{}@{}: the input does not fit{}: {}",
            info.name(),
            info.version(),
            if path == "." {
                String::new()
            } else {
                format!(" at {path}")
            },
            e.inner()
        ))
    })
}

macro_rules! typed_builder {
    ($($config:ty),*) => {$(
        impl $config {
            /// Builds the module from a typed function: each input is
            /// deserialized into `In` (through serde; a value that does not
            /// fit fails the call with the path of what did not fit), the
            /// output serialized from `Out`; the function gets the module's
            /// [`ModuleContext`] (config, dependencies,
            /// [`is_cancelled`](ModuleContext::is_cancelled)) with each call.
            /// Inputs go through their JSON form, so bytes and opaque values
            /// are refused: take `Value` with
            /// [`with_handler`](Self::with_handler) for those.
            ///
            /// ```
            /// use module_registry::{ModuleConfig, ModuleRegistry, Value};
            ///
            /// #[derive(serde::Deserialize)]
            /// struct Line { text: String, #[serde(default)] upper: bool }
            /// #[derive(serde::Serialize)]
            /// struct Count { words: usize, first: Option<String> }
            ///
            /// let registry = ModuleRegistry::new();
            /// registry.register(ModuleConfig::new().with_name("words").typed(|line: Line, _ctx| {
            ///     let text = if line.upper { line.text.to_uppercase() } else { line.text };
            ///     Ok(Count { words: text.split_whitespace().count(), first: text.split_whitespace().next().map(String::from) })
            /// }))?;
            /// let words = registry.create("words")?;
            /// let out = words.process(serde_json::json!({"text": "hello typed world", "upper": true}))?;
            /// assert_eq!(out["words"], Value::Int(3));
            /// assert_eq!(out["first"], Value::from("HELLO"));
            /// let err = words.process(serde_json::json!({"text": 7})).unwrap_err();
            /// assert!(err.report().contains("text"), "{}", err.report());
            /// # Ok::<(), module_registry::Error>(())
            /// ```
            ///
            /// The input type must be deserializable (and the output
            /// serializable); a plain Rust type is refused at compile time:
            ///
            /// ```compile_fail
            /// struct NotSerde(u8);
            /// let config = module_registry::ModuleConfig::new()
            ///     .with_name("x")
            ///     .typed(|input: NotSerde, _ctx| Ok(input.0)); // error: NotSerde is not Deserialize
            /// ```
            pub fn typed<In, Out, F>(self, handler: F) -> Self
            where
                In: serde::de::DeserializeOwned + 'static,
                Out: serde::Serialize + 'static,
                F: Fn(In, &ModuleContext) -> Result<Out, BoxError> + Send + Sync + 'static,
            {
                let handler = Arc::new(handler);
                self.with_factory(move |context: &ModuleContext| {
                    Ok(Box::new(TypedModule::<In, Out, F> {
                        handler: handler.clone(),
                        context: context.clone(),
                        types: std::marker::PhantomData,
                    }) as Box<dyn Module>)
                })
            }
        }
    )*};
}

typed_builder!(crate::config::ModuleConfig, crate::config::PluginConfig);
