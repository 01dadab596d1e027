//! Modules written in Python: a function (called as `handler(input)`, or
//! `handler(input, config)` when it takes a second parameter) or a class (built once per instance, then `process`, optional `init(config)`
//! and `shutdown()`). Each call takes the GIL for itself only.

use std::sync::{Arc, Weak};

use module_registry::CodeId;
use module_registry::{
    BoxError, Error, Factory, FactoryFn, Implementation, Module, ModuleConfig, ModuleContext,
    PythonCode, Value,
};
use parking_lot::Mutex;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use crate::config::PyModuleConfig;
use crate::conversion::{py_to_value, value_to_py};
use crate::instance::PyModuleInstance;

/// The factory and implementation record made for the last function
/// registered, so that one function registered under many names shares
/// them. They are held weakly: while the factory is alive it holds the
/// function, so the address still names that very object.
static LAST_FUNCTION: Mutex<Option<SharedParts>> = Mutex::new(None);

type SharedParts = (usize, Weak<FactoryFn>, Weak<PythonCode>);

/// A Python exception carried through the core, with its text taken while
/// the GIL was held: showing it later (in a report, the audit log, a
/// workflow error) never takes the GIL, which a thread must not do once the
/// interpreter exits. The binding hands `err` back to Python as itself.
pub(crate) struct PyException {
    pub(crate) err: PyErr,
    text: String,
}

impl PyException {
    fn new(py: Python<'_>, err: PyErr) -> Self {
        // The text pyo3 gives a `PyErr` (`TypeName: str`), taken now.
        let value = err.value(py);
        let name = value
            .get_type()
            .qualname()
            .map_or_else(|_| "Exception".to_string(), |n| n.to_string());
        let text = match value.str() {
            Ok(s) => format!("{name}: {}", s.to_string_lossy()),
            Err(_) => format!("{name}: <exception str() failed>"),
        };
        PyException { err, text }
    }
}

impl std::fmt::Display for PyException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::fmt::Debug for PyException {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PyException({:?})", self.text)
    }
}

impl std::error::Error for PyException {}

/// A Python exception as a core error, made with the GIL held:
/// `KeyboardInterrupt` and `SystemExit` are stop requests
/// ([`Error::Interrupted`]), which workflows do not retry, skip or replace;
/// anything else is carried as it is.
fn external_in(py: Python<'_>, err: PyErr) -> Error {
    let stop = err.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py)
        || err.is_instance_of::<pyo3::exceptions::PySystemExit>(py);
    let carried = PyException::new(py, err);
    if stop {
        Error::interrupted(carried)
    } else {
        Error::external(carried)
    }
}

/// [`external_in`], taking the GIL for it; once the interpreter exits, the
/// exception is carried without its text.
fn external(err: PyErr) -> Error {
    let mut slot = Some(err);
    if let Some(Some(error)) =
        crate::threads::try_attach(|py| slot.take().map(|err| external_in(py, err)))
    {
        return error;
    }
    match slot.take() {
        Some(err) => Error::external(PyException {
            err,
            text: "a Python exception (not shown: the interpreter is exiting)".into(),
        }),
        None => Error::invalid_input("a Python exception was lost"),
    }
}

/// [`external`], boxed as module code returns it.
fn boxed(err: PyErr) -> BoxError {
    external(err).into()
}

/// Runs Python code `f` with the GIL (see `threads::attach`: the thread
/// keeps its Python thread state, and gives up once the interpreter exits).
/// Python code never runs on a script stack (a script calling a Python
/// module with no deadline to keep runs it where it is): CPython may judge
/// its own recursion by where the thread's stack is, so there it runs back
/// on this thread's own stack, below where the script left it (no thread
/// hop); only when that has under `MIN_THREAD_STACK_LEFT` left does it go
/// to this thread's helper thread (started once, then reused), acting as
/// the same principal.
pub(crate) fn attach<T: Send + 'static>(
    f: impl FnOnce(Python<'_>) -> PyResult<T> + Send,
) -> Result<T, BoxError> {
    // Refused once the interpreter exits: a core error, which (unlike a
    // Python exception) can be shown without the GIL.
    // Python's exceptions become core errors while the GIL is held.
    let run = move || match crate::threads::try_attach(|py| f(py).map_err(|e| external_in(py, e))) {
        Some(out) => out.map_err(BoxError::from),
        None => Err(crate::threads::exiting_error().into()),
    };
    if !module_registry::script::running_on_script_stack() {
        return run();
    }
    match module_registry::script::on_thread_stack(run) {
        Ok(out) => out,
        Err(run) => {
            let caller = module_registry::access::Caller::current();
            crate::threads::on_helper(move || caller.enter(run)).map_err(boxed)?
        }
    }
}

/// The stable digest of an opaque Python object for the step cache: what
/// its `__module_registry_token__()` returns (bytes, or text as UTF-8).
/// `None` (the step is `unhashable`) when it has no such method, or the
/// method fails or returns something else: never an error.
pub fn python_token(object: &module_registry::Opaque) -> Option<Vec<u8>> {
    let handle = object.downcast_ref::<crate::conversion::PyHandle>()?;
    attach(|py| {
        let obj = handle.0.bind(py);
        let Ok(method) = obj.getattr("__module_registry_token__") else {
            return Ok(None);
        };
        let token = method.call0()?;
        if let Ok(bytes) = token.cast::<pyo3::types::PyBytes>() {
            return Ok(Some(bytes.as_bytes().to_vec()));
        }
        if let Ok(text) = token.cast::<pyo3::types::PyString>() {
            return Ok(Some(text.to_cow()?.as_bytes().to_vec()));
        }
        Ok(None)
    })
    .ok()
    .flatten()
}

/// The digest of a Python module's code for the step cache: what the
/// package's `code_digest` hook (`_digest.code_digest`) gives for its handler (bytecode,
/// constants, names, nested code, defaults, closure values, the globals it
/// reads, a callable object's class and state). `Unknown` for code that is
/// not a Python handler; `Unhashable` when the digest fails (state with no
/// stable digest), so that the step is not cached rather than served an
/// output of other code.
pub fn python_code_digest(info: &module_registry::ModuleInfo) -> CodeId {
    let Implementation::Python(code) = info.implementation() else {
        return CodeId::Unknown;
    };
    let Some(handler) = code
        .origin
        .as_ref()
        .and_then(|o| o.downcast_ref::<PythonHandler>())
    else {
        return CodeId::Unknown;
    };
    let digest = attach(|py| {
        crate::hooks::hook(py, crate::hooks::Hook::CodeDigest)?
            .call1((handler.0.bind(py),))?
            .extract::<String>()
    });
    match digest {
        Ok(digest) => CodeId::Digest(digest),
        Err(e) => CodeId::Unhashable(e.to_string()),
    }
}

/// A module that calls one Python function: `func(input)`, or
/// `func(input, config)` when the function takes a second parameter.
pub struct PyFunctionModule {
    func: Py<PyAny>,
    /// The instance's config, converted once, when the function takes it.
    config: Option<Py<PyAny>>,
}

impl Module for PyFunctionModule {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        attach(|py| {
            let arg = value_to_py(py, input)?;
            let func = self.func.bind(py);
            let out = match &self.config {
                Some(config) => func.call1((arg, config.bind(py)))?,
                None => func.call1((arg,))?,
            };
            py_to_value(&crate::aio::settle(out)?)
        })
    }
}

/// Whether (and how) a function module takes its config: as its second
/// positional parameter, whatever its name. Read once, when the function
/// is registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ConfigParameter {
    /// `f(input)`: a config given to it is refused.
    None,
    /// `f(input, config)`: always passed (`None` when there is none).
    Required,
    /// `f(input, config=...)` or `f(*args)`: passed when there is one.
    Optional,
}

fn config_parameter(func: &Bound<'_, PyAny>) -> PyResult<ConfigParameter> {
    // No signature to read (some builtins): a function of its input.
    let Some(parameters) = parameters(func)? else {
        return Ok(ConfigParameter::None);
    };
    let mut seen = 0;
    for p in &parameters {
        if p.kind == ParameterKind::VarPositional {
            return Ok(ConfigParameter::Optional);
        }
        if p.kind.is_positional() {
            seen += 1;
            if seen == 2 {
                return Ok(if p.has_default {
                    ConfigParameter::Optional
                } else {
                    ConfigParameter::Required
                });
            }
        }
    }
    Ok(ConfigParameter::None)
}

/// How a parameter is passed (`inspect.Parameter.kind`, whose values
/// these are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ParameterKind {
    PositionalOnly = 0,
    PositionalOrKeyword = 1,
    VarPositional = 2,
    KeywordOnly = 3,
    VarKeyword = 4,
}

impl ParameterKind {
    /// Filled by one positional argument.
    fn is_positional(self) -> bool {
        matches!(
            self,
            ParameterKind::PositionalOnly | ParameterKind::PositionalOrKeyword
        )
    }
}

/// One parameter of a signature, as the checks here read it.
struct Parameter {
    name: String,
    kind: ParameterKind,
    has_default: bool,
}

/// The parameters of `obj`'s `inspect.signature`, in order; `None` when it
/// has none to read (some builtins and extension types). The one walk of a
/// signature: each check above and below reads its result.
fn parameters(obj: &Bound<'_, PyAny>) -> PyResult<Option<Vec<Parameter>>> {
    let inspect = obj.py().import("inspect")?;
    let Ok(signature) = inspect.call_method1("signature", (obj,)) else {
        return Ok(None);
    };
    let empty = inspect.getattr("Parameter")?.getattr("empty")?;
    let mut out = Vec::new();
    for p in signature
        .getattr("parameters")?
        .call_method0("values")?
        .try_iter()?
    {
        let p = p?;
        let kind = match p.getattr("kind")?.extract::<u8>()? {
            0 => ParameterKind::PositionalOnly,
            1 => ParameterKind::PositionalOrKeyword,
            2 => ParameterKind::VarPositional,
            3 => ParameterKind::KeywordOnly,
            4 => ParameterKind::VarKeyword,
            other => {
                return Err(PyTypeError::new_err(format!(
                    "inspect.Parameter kind {other} is not one this version knows"
                )))
            }
        };
        out.push(Parameter {
            name: p.getattr("name")?.extract()?,
            kind,
            has_default: !p.getattr("default")?.is(&empty),
        });
    }
    Ok(Some(out))
}

/// The refusal of a config given to a function that cannot take one.
fn config_refused(name: &str) -> Error {
    Error::invalid_input(format!(
        "module {name} is a Python function of its input alone, so it would never see \
         its config: give the function a second parameter (def f(input, config)), or make \
         it a class whose init(config) gets it"
    ))
}

/// A module backed by an instance of a Python class.
pub struct PyObjectModule {
    obj: Py<PyAny>,
    /// Its `init` takes `dependencies` (a dict of the dependency instances).
    init_takes_dependencies: bool,
}

impl Module for PyObjectModule {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        attach(|py| {
            let obj = self.obj.bind(py);
            if obj.hasattr("init")? {
                let config = value_to_py(py, context.config().clone())?;
                let kwargs = PyDict::new(py);
                if self.init_takes_dependencies {
                    let dependencies = PyDict::new(py);
                    for (name, instance) in context.dependencies() {
                        let instance = PyModuleInstance::from_shared(instance.clone());
                        dependencies.set_item(name, Py::new(py, instance)?)?;
                    }
                    kwargs.set_item("dependencies", dependencies)?;
                }
                crate::aio::settle(obj.call_method("init", (config,), Some(&kwargs))?)?;
            }
            Ok(())
        })
    }

    fn process(&self, input: Value) -> Result<Value, BoxError> {
        attach(|py| {
            let arg = value_to_py(py, input)?;
            let out = crate::aio::settle(self.obj.bind(py).call_method1("process", (arg,))?)?;
            py_to_value(&out)
        })
    }

    fn shutdown(&self) -> Result<(), BoxError> {
        attach(|py| {
            // Dropping an instance runs this, also while the exception its
            // `process` raised is on its way out (`create(..).process(..)`):
            // set that exception aside, or calling Python would lose it.
            let pending = PyErr::take(py);
            let obj = self.obj.bind(py);
            let result = obj.hasattr("shutdown").and_then(|has| {
                if has {
                    crate::aio::settle(obj.call_method0("shutdown")?)?;
                }
                Ok(())
            });
            if let Some(error) = pending {
                error.restore(py);
            }
            result
        })
    }
}

/// Attaches a Python handler to a config: a class is constructed per
/// instance (with the config when its `__init__` takes it), anything else
/// callable is called on every `process`. The handler is kept as the
/// implementation's origin, so that the registry can be pickled.
pub fn with_python_handler(
    config: ModuleConfig,
    handler: &Bound<'_, PyAny>,
) -> PyResult<ModuleConfig> {
    let (factory, code) = handler_parts(handler)?;
    Ok(config
        .with_shared_factory(factory)
        .with_implementation(Implementation::Python(code)))
}

/// The Python object a module was registered with (its [`PythonCode`]'s origin).
struct PythonHandler(Py<PyAny>);

/// The Python object `config` was registered with, if it is a Python module.
pub fn python_handler<'py>(py: Python<'py>, config: &ModuleConfig) -> Option<Bound<'py, PyAny>> {
    let Implementation::Python(code) = config.implementation() else {
        return None;
    };
    let handler = code.origin.as_ref()?.downcast_ref::<PythonHandler>()?;
    Some(handler.0.bind(py).clone())
}

/// `module:qualified.name` when `obj` can be imported back by that path.
fn import_path(obj: &Bound<'_, PyAny>) -> Option<String> {
    let module: String = obj.getattr("__module__").ok()?.extract().ok()?;
    let qualname: String = obj.getattr("__qualname__").ok()?.extract().ok()?;
    (!qualname.contains('<') && module != "__main__").then(|| format!("{module}:{qualname}"))
}

/// A `TypeError` for an async generator handler: its call would return a
/// generator nothing iterates, not the module's output. (`async def`
/// handlers are awaited: see `aio::settle`.)
fn refuse_async(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    let inspect = obj.py().import("inspect")?;
    if inspect
        .call_method1("isasyncgenfunction", (obj,))?
        .is_truthy()?
    {
        return Err(PyTypeError::new_err(format!(
            "{what} is an async generator; a module handler returns one output \
             (a function, or an async def awaited for its result)"
        )));
    }
    Ok(())
}

/// Whether `cls.init` takes the dependency instances: it has a parameter
/// named `dependencies` (or `**kwargs`).
fn init_takes_dependencies(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let Ok(init) = cls.getattr("init") else {
        return Ok(false);
    };
    Ok(parameters(&init)?.is_some_and(|parameters| {
        parameters.iter().any(|p| {
            p.kind == ParameterKind::VarKeyword
                || (p.name == "dependencies" && p.kind != ParameterKind::PositionalOnly)
        })
    }))
}

/// Whether building an instance of `cls` takes the module's config: its
/// constructor accepts one positional argument (a class whose `__init__`
/// takes none is built without it).
fn takes_an_argument(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = cls.py();
    let object_init = py.get_type::<pyo3::types::PyAny>().getattr("__init__")?;
    if cls.getattr("__init__")?.is(&object_init) {
        return Ok(false);
    }
    // No signature to read (some extension types): pass the config.
    Ok(parameters(cls)?.is_none_or(|parameters| {
        parameters
            .iter()
            .any(|p| p.kind.is_positional() || p.kind == ParameterKind::VarPositional)
    }))
}

/// The factory and the implementation record of `handler`. One function
/// registered under many names shares both (the last function's are kept).
fn handler_parts(handler: &Bound<'_, PyAny>) -> PyResult<(Factory, Arc<PythonCode>)> {
    let code = |ignores_config: bool| {
        Arc::new(PythonCode {
            import_path: import_path(handler).map(Into::into),
            origin: Some(Arc::new(PythonHandler(handler.clone().unbind()))),
            ignores_config,
        })
    };
    if let Ok(cls) = handler.cast::<PyType>() {
        let (factory, has_init) = class_factory(cls)?;
        return Ok((factory, code(!has_init)));
    }
    if handler.is_callable() {
        let key = handler.as_ptr() as usize;
        if let Some(shared) = LAST_FUNCTION
            .lock()
            .as_ref()
            .filter(|(k, ..)| *k == key)
            .and_then(|(_, factory, code)| Some((factory.upgrade()?, code.upgrade()?)))
        {
            return Ok(shared);
        }
        let (factory, parameter) = function_factory(handler)?;
        let code = code(parameter == ConfigParameter::None);
        *LAST_FUNCTION.lock() = Some((key, Arc::downgrade(&factory), Arc::downgrade(&code)));
        return Ok((factory, code));
    }
    Err(PyTypeError::new_err(format!(
        "handler must be a function or a class, not {}",
        handler.get_type().name()?
    )))
}

/// The factory of a module class (checked: it has a synchronous `process`),
/// and whether it has an `init` (only `init(config)` sees an instance's
/// config; the constructor gets the module's declaration, when it takes an
/// argument). Without `init`, a config is refused.
fn class_factory(cls: &Bound<'_, PyType>) -> PyResult<(Factory, bool)> {
    if !cls.hasattr("process")? {
        return Err(PyTypeError::new_err(format!(
            "module class {} has no process(input) method",
            cls.name()?
        )));
    }
    refuse_async(
        &cls.getattr("process")?,
        &format!("{}.process", cls.name()?),
    )?;
    let takes_config = takes_an_argument(cls)?;
    let init_takes_dependencies = init_takes_dependencies(cls)?;
    let has_init = cls.hasattr("init")?;
    let cls: Py<PyAny> = cls.clone().into_any().unbind();
    let factory: Factory = Arc::new(move |context: &ModuleContext| {
        if !has_init && !context.config().is_null() {
            return Err(Error::invalid_input(format!(
                "module {} is a class without init(config), so it would never see its \
                 config: give it an init(self, config) method",
                context.info().name()
            ))
            .into());
        }
        attach(|py| {
            let cls = cls.bind(py);
            let obj = if takes_config {
                cls.call1((PyModuleConfig {
                    inner: context.info().config().clone(),
                },))?
            } else {
                cls.call0()?
            };
            Ok(Box::new(PyObjectModule {
                obj: obj.unbind(),
                init_takes_dependencies,
            }) as Box<dyn Module>)
        })
    });
    Ok((factory, has_init))
}

/// The factory of a module function (checked: not an async generator), and
/// how it takes its config.
fn function_factory(handler: &Bound<'_, PyAny>) -> PyResult<(Factory, ConfigParameter)> {
    refuse_async(handler, "the handler")?;
    let parameter = config_parameter(handler)?;
    let func: Py<PyAny> = handler.clone().unbind();
    let factory: Factory = Arc::new(move |context: &ModuleContext| {
        let config = context.config();
        let pass = match parameter {
            ConfigParameter::None if !config.is_null() => {
                return Err(config_refused(context.info().name()).into())
            }
            ConfigParameter::None => false,
            ConfigParameter::Required => true,
            ConfigParameter::Optional => !config.is_null(),
        };
        let (func, config) = attach(|py| {
            let config = match pass {
                true => Some(value_to_py(py, config.clone())?.unbind()),
                false => None,
            };
            Ok((func.clone_ref(py), config))
        })?;
        Ok(Box::new(PyFunctionModule { func, config }) as Box<dyn Module>)
    });
    Ok((factory, parameter))
}
