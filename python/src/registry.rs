//! `ModuleRegistry`, `ModuleInfo`, `ModuleInstance` and `AuditEvent` for Python.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use module_registry::{
    AuditEvent, CapabilityQuery, Implementation, ModuleInfo, ModuleInstance, ModuleKind,
    ModuleRegistry, Value,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFrozenSet, PyString, PyTuple};

use crate::access::PyAccessPolicy;
use crate::config::{extract_config, extract_str_map, extract_strings, extract_type, PyModuleType};
use crate::conversion::{py_to_value, value_to_py};
use crate::errors::to_pyerr;
use crate::modules::with_python_handler;
use crate::query::{PyCapabilityQuery, PyPluginDiscoveryQuery, PyServiceDiscoveryQuery};
use crate::script::PyScriptLimits;
use crate::workflow::{PyWorkflow, PyWorkflowResult};

fn parse_kind(kind: &str) -> PyResult<ModuleKind> {
    kind.parse::<ModuleKind>().map_err(to_pyerr)
}

/// A registered module or plugin (read-only). Discovery, `get`, `list` and
/// `versions` hand out one object per registration, so the same registration
/// is the same object; it can be weakly referenced.
#[pyclass(name = "ModuleInfo", module = "module_registry._core", frozen, weakref)]
pub struct PyModuleInfo {
    pub inner: ModuleInfo,
}

#[pymethods]
impl PyModuleInfo {
    /// The name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The version, as text.
    #[getter]
    fn version(&self) -> &str {
        self.inner.version_text()
    }

    /// The type.
    #[getter(r#type)]
    fn module_type(&self) -> PyModuleType {
        self.inner.module_type().clone().into()
    }

    /// `"module"` or `"plugin"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind().as_str()
    }

    /// The capabilities.
    #[getter]
    fn capabilities<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.inner.capabilities().iter().map(|c| &**c))
    }

    /// The metadata.
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.metadata() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// The dependencies: name -> requirement.
    #[getter]
    fn dependencies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.dependencies() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// Whether it can be created (it is not a declaration only).
    #[getter]
    fn has_implementation(&self) -> bool {
        self.inner.has_implementation()
    }

    fn __repr__(&self) -> String {
        let caps: Vec<&str> = self.inner.capabilities().iter().map(|c| &**c).collect();
        format!(
            "ModuleInfo(name={:?}, version=\"{}\", kind=\"{}\", type={}, capabilities={:?})",
            self.inner.name(),
            self.inner.version(),
            self.inner.kind(),
            self.inner.module_type(),
            caps
        )
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<PyModuleInfo>()
            .is_ok_and(|o| o.get().inner == self.inner)
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (self.inner.kind(), self.inner.name(), self.inner.version()).hash(&mut h);
        h.finish()
    }
}

fn infos(list: Vec<ModuleInfo>) -> Vec<PyModuleInfo> {
    list.into_iter()
        .map(|inner| PyModuleInfo { inner })
        .collect()
}

/// A built module. Use it as a context manager, or call `close()`.
#[pyclass(name = "ModuleInstance", module = "module_registry._core", frozen)]
pub struct PyModuleInstance {
    inner: ModuleInstance,
    gil: GilPolicy,
}

/// When `process` releases the GIL.
#[derive(Clone, Copy, PartialEq)]
enum GilPolicy {
    /// Python modules need the GIL anyway: keep it.
    Keep,
    /// Native modules shipped with the crate: release it only for inputs
    /// large enough for the work to outweigh the hand-over (~0.1-0.2 µs).
    ReleaseForLargeInputs,
    /// Scripts and other Rust modules may run long: always release it.
    Release,
}

/// Inputs at least this large (bytes or str) are processed without the GIL
/// by the shipped native modules.
const LARGE_INPUT: usize = 16 * 1024;

impl PyModuleInstance {
    fn new(inner: ModuleInstance) -> Self {
        let gil = match inner.info().implementation() {
            Implementation::Python(_) => GilPolicy::Keep,
            Implementation::Native => GilPolicy::ReleaseForLargeInputs,
            _ if inner
                .info()
                .metadata()
                .get("implementation")
                .is_some_and(|i| i == "python") =>
            {
                GilPolicy::Keep
            }
            _ => GilPolicy::Release,
        };
        PyModuleInstance { inner, gil }
    }
}

fn is_large(value: &Value) -> bool {
    match value {
        Value::Bytes(b) => b.len() >= LARGE_INPUT,
        Value::Str(s) => s.len() >= LARGE_INPUT,
        Value::List(l) => !l.is_empty(),
        Value::Map(m) => !m.is_empty(),
        _ => false,
    }
}

#[pymethods]
impl PyModuleInstance {
    /// Run the module on `value` and return its output.
    fn process<'py>(
        &self,
        py: Python<'py>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = py_to_value(value)?;
        let release = match self.gil {
            GilPolicy::Keep => false,
            GilPolicy::ReleaseForLargeInputs => is_large(&input),
            GilPolicy::Release => true,
        };
        let out = if release {
            py.detach(|| self.inner.process_value(input))
        } else {
            self.inner.process_value(input)
        };
        value_to_py(py, out.map_err(to_pyerr)?)
    }

    /// Shut the module down (once; later calls do nothing).
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.close()).map_err(to_pyerr)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// The module's name.
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }

    /// The module's version.
    #[getter]
    fn version(&self) -> String {
        self.inner.version().to_string()
    }

    /// `"created"`, `"initialized"`, `"running"`, `"stopped"` or `"failed"`.
    #[getter]
    fn state(&self) -> &'static str {
        self.inner.state().as_str()
    }

    /// Whether `close()` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The registration it was built from.
    #[getter]
    fn info(&self) -> PyModuleInfo {
        PyModuleInfo {
            inner: self.inner.info().clone(),
        }
    }

    /// Names of the dependency instances built for it, in build order.
    #[getter]
    fn dependencies(&self) -> Vec<String> {
        self.inner
            .dependencies()
            .iter()
            .map(|d| d.name().to_string())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "<ModuleInstance {}@{} {}>",
            self.inner.name(),
            self.inner.version(),
            self.inner.state()
        )
    }
}

/// One audited operation.
#[pyclass(name = "AuditEvent", module = "module_registry._core", frozen, get_all)]
pub struct PyAuditEvent {
    /// Position in the registry's sequence of events.
    sequence: u64,
    /// Seconds since the Unix epoch.
    time: f64,
    /// The operation (`register`, `unregister`, `create`, ...).
    operation: String,
    /// Who did it.
    principal: String,
    /// `"module"` or `"plugin"`.
    kind: &'static str,
    /// The module concerned.
    module: String,
    /// Its version, when known.
    version: Option<String>,
    /// `"ok"`, `"denied"` or `"error"`.
    outcome: &'static str,
    /// The error message of a failure.
    detail: Option<String>,
}

#[pymethods]
impl PyAuditEvent {
    fn __repr__(&self) -> String {
        format!(
            "AuditEvent(operation={:?}, module={:?}, version={:?}, outcome={:?})",
            self.operation, self.module, self.version, self.outcome
        )
    }
}

impl From<AuditEvent> for PyAuditEvent {
    fn from(e: AuditEvent) -> Self {
        PyAuditEvent {
            sequence: e.sequence,
            time: e
                .time
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            operation: e.operation,
            principal: e.principal,
            kind: e.kind.as_str(),
            module: e.module,
            version: e.version,
            outcome: e.outcome.as_str(),
            detail: e.detail,
        }
    }
}

/// The registry of modules and plugins. Safe to share between threads.
#[pyclass(
    name = "ModuleRegistry",
    module = "module_registry._core",
    frozen,
    subclass
)]
pub struct PyModuleRegistry {
    pub inner: ModuleRegistry,
    objects: InfoObjects,
}

/// The `ModuleInfo` objects handed out by discovery and listing: one per
/// registration, made once, because making a Python object costs more than
/// finding the module (about 800 instructions against 100).
///
/// Keyed by [`ModuleInfo::registration_key`], which stays unique while the
/// cached object holds its registration. Objects of registrations that are
/// gone are dropped when the cache grows past twice the registry's size.
#[derive(Default)]
struct InfoObjects(parking_lot::Mutex<hashbrown::HashMap<usize, Py<PyModuleInfo>>>);

impl InfoObjects {
    fn get(
        &self,
        py: Python<'_>,
        registry: &ModuleRegistry,
        list: Vec<ModuleInfo>,
    ) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let mut out = Vec::with_capacity(list.len());
        {
            let cache = self.0.lock();
            for info in &list {
                match cache.get(&info.registration_key()) {
                    Some(object) => out.push(object.clone_ref(py)),
                    None => break,
                }
            }
        }
        if out.len() == list.len() {
            return Ok(out);
        }
        // New objects are made without the lock held: allocating may run the
        // garbage collector, and with it arbitrary Python code.
        let mut made = Vec::new();
        for info in list.into_iter().skip(out.len()) {
            let key = info.registration_key();
            let cached = self.0.lock().get(&key).map(|o| o.clone_ref(py));
            let object = match cached {
                Some(object) => object,
                None => {
                    let object = Py::new(py, PyModuleInfo { inner: info })?;
                    made.push((key, object.clone_ref(py)));
                    object
                }
            };
            out.push(object);
        }
        let dropped = {
            let mut cache = self.0.lock();
            for (key, object) in made {
                cache.entry(key).or_insert(object);
            }
            if cache.len() > 2 * registry.len() + 64 {
                cache
                    .extract_if(|_, o| !registry.is_registered(&o.get().inner))
                    .collect::<Vec<_>>()
            } else {
                Vec::new()
            }
        };
        drop(dropped); // outside the lock: dropping may run Python code
        Ok(out)
    }

    fn forget(&self, removed: &[ModuleInfo]) {
        let dropped: Vec<_> = {
            let mut cache = self.0.lock();
            removed
                .iter()
                .filter_map(|info| cache.remove(&info.registration_key()))
                .collect()
        };
        drop(dropped);
    }
}

impl PyModuleRegistry {
    fn register_kind(
        &self,
        config: &Bound<'_, PyAny>,
        handler: Option<&Bound<'_, PyAny>>,
        kind: Option<ModuleKind>,
        replace: bool,
    ) -> PyResult<PyModuleInfo> {
        let mut cfg = extract_config(config)?;
        if let Some(k) = kind {
            cfg = cfg.with_kind(k);
        }
        if let Some(h) = handler.filter(|h| !h.is_none()) {
            cfg = with_python_handler(cfg, h)?;
        }
        let inner = self.inner.register_config(cfg, replace).map_err(to_pyerr)?;
        Ok(PyModuleInfo { inner })
    }

    fn create_kind(
        &self,
        py: Python<'_>,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyModuleInstance> {
        let config = config.map(py_to_value).transpose()?.unwrap_or(Value::Null);
        let instance = py
            .detach(|| self.inner.create_with(kind, name, version, config))
            .map_err(to_pyerr)?;
        Ok(PyModuleInstance::new(instance))
    }

    fn run_query(&self, py: Python<'_>, query: CapabilityQuery) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let found = py
            .detach(|| self.inner.discover(&query))
            .map_err(to_pyerr)?;
        self.objects.get(py, &self.inner, found)
    }
}

#[pymethods]
impl PyModuleRegistry {
    #[new]
    #[pyo3(signature = (native_modules=false, script_limits=None))]
    fn new(
        native_modules: bool,
        script_limits: Option<PyRef<'_, PyScriptLimits>>,
    ) -> PyResult<Self> {
        let inner = if native_modules {
            ModuleRegistry::with_native_modules()
        } else {
            ModuleRegistry::new()
        };
        if let Some(limits) = script_limits {
            inner
                .set_script_limits(limits.to_core()?)
                .map_err(to_pyerr)?;
        }
        Ok(PyModuleRegistry {
            inner,
            objects: InfoObjects::default(),
        })
    }

    /// The limits scripts run under.
    #[getter]
    fn script_limits(&self) -> PyScriptLimits {
        self.inner.script_limits().into()
    }

    /// Change the limits scripts run under (for scripts loaded and instances created from now on).
    fn set_script_limits(&self, limits: PyRef<'_, PyScriptLimits>) -> PyResult<()> {
        self.inner
            .set_script_limits(limits.to_core()?)
            .map_err(to_pyerr)
    }

    /// Load one `.rhai` script module; returns its registration. With
    /// `sha256`, a file whose digest differs is refused (ValidationError).
    #[pyo3(signature = (path, sha256=None))]
    fn load_script(
        &self,
        py: Python<'_>,
        path: PathBuf,
        sha256: Option<&str>,
    ) -> PyResult<PyModuleInfo> {
        let inner = py
            .detach(|| self.inner.load_script_pinned(&path, sha256))
            .map_err(to_pyerr)?;
        Ok(PyModuleInfo { inner })
    }

    /// Load every `.rhai` script module of a folder (all or nothing).
    fn load_scripts(&self, py: Python<'_>, path: PathBuf) -> PyResult<Vec<PyModuleInfo>> {
        let loaded = py
            .detach(|| self.inner.load_scripts(&path))
            .map_err(to_pyerr)?;
        Ok(infos(loaded))
    }

    /// Register a script module given as source text (refused unless its
    /// SHA-256 is `sha256`, when given).
    #[pyo3(signature = (source, sha256=None))]
    fn register_script(
        &self,
        py: Python<'_>,
        source: &str,
        sha256: Option<&str>,
    ) -> PyResult<PyModuleInfo> {
        let inner = py
            .detach(|| self.inner.register_script_pinned(source, sha256))
            .map_err(to_pyerr)?;
        Ok(PyModuleInfo { inner })
    }

    /// Run an orchestration script (a path to a `.rhai` file, or source text)
    /// with `registry` and `input` bound; returns its last expression.
    #[pyo3(signature = (source_or_path, input=None))]
    fn run_script<'py>(
        &self,
        py: Python<'py>,
        source_or_path: &Bound<'py, PyAny>,
        input: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text: String = match source_or_path.extract::<PathBuf>() {
            Ok(p) if !source_or_path.is_instance_of::<PyString>() => {
                p.to_string_lossy().into_owned()
            }
            _ => source_or_path.extract::<String>()?,
        };
        let input = input.map(py_to_value).transpose()?.unwrap_or(Value::Null);
        let out = py
            .detach(|| self.inner.run_script(&text, input))
            .map_err(to_pyerr)?;
        value_to_py(py, out)
    }

    /// Register a module. `handler` is a function (called as `handler(input)`)
    /// or a class (built per instance); without one, the config is a
    /// declaration that can be discovered but not created.
    #[pyo3(signature = (config, handler=None))]
    fn register(
        &self,
        config: &Bound<'_, PyAny>,
        handler: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyModuleInfo> {
        self.register_kind(config, handler, None, false)
    }

    /// Register a plugin (a `PluginConfig`, or a `ModuleConfig` registered as a plugin).
    #[pyo3(signature = (config, handler=None))]
    fn register_plugin(
        &self,
        config: &Bound<'_, PyAny>,
        handler: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyModuleInfo> {
        self.register_kind(config, handler, Some(ModuleKind::Plugin), false)
    }

    /// Register, replacing an existing registration of the same name and version.
    #[pyo3(signature = (config, handler=None))]
    fn replace(
        &self,
        config: &Bound<'_, PyAny>,
        handler: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyModuleInfo> {
        self.register_kind(config, handler, None, true)
    }

    /// Remove `version` of module `name`, or every version when `version` is None.
    #[pyo3(signature = (name, version=None, kind="module"))]
    fn unregister(
        &self,
        name: &str,
        version: Option<&str>,
        kind: &str,
    ) -> PyResult<Vec<PyModuleInfo>> {
        let removed = self
            .inner
            .remove(parse_kind(kind)?, name, version)
            .map_err(to_pyerr)?;
        self.objects.forget(&removed);
        Ok(infos(removed))
    }

    /// Remove `version` of plugin `name`, or every version when `version` is None.
    #[pyo3(signature = (name, version=None))]
    fn unregister_plugin(&self, name: &str, version: Option<&str>) -> PyResult<Vec<PyModuleInfo>> {
        self.unregister(name, version, "plugin")
    }

    /// The highest version of `name` matching `version` (a requirement such as
    /// "^1"; default: the highest release), or None.
    #[pyo3(signature = (name, version=None, kind="module"))]
    fn get(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        kind: &str,
    ) -> PyResult<Option<Py<PyModuleInfo>>> {
        let found = self
            .inner
            .get_matching(parse_kind(kind)?, name, version)
            .map_err(to_pyerr)?;
        let objects = self
            .objects
            .get(py, &self.inner, found.into_iter().collect())?;
        Ok(objects.into_iter().next())
    }

    /// Like `get`, for plugins.
    #[pyo3(signature = (name, version=None))]
    fn get_plugin(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
    ) -> PyResult<Option<Py<PyModuleInfo>>> {
        self.get(py, name, version, "plugin")
    }

    /// Every version of `name`, highest first.
    #[pyo3(signature = (name, kind="module"))]
    fn versions(&self, py: Python<'_>, name: &str, kind: &str) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let found = self.inner.versions(parse_kind(kind)?, name);
        self.objects.get(py, &self.inner, found)
    }

    /// Every registration, by name then version descending.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let all = py.detach(|| self.inner.list());
        self.objects.get(py, &self.inner, all)
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __contains__(&self, name: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(match name.cast::<PyString>() {
            Ok(s) => self.inner.contains(&s.to_cow()?),
            Err(_) => false,
        })
    }

    /// Modules and plugins matching `query`, by name then version descending.
    fn discover_capabilities(
        &self,
        py: Python<'_>,
        query: PyRef<'_, PyCapabilityQuery>,
    ) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let q = query.inner.clone();
        drop(query);
        self.run_query(py, q)
    }

    /// Modules matching a service query.
    fn discover_services(
        &self,
        py: Python<'_>,
        query: PyRef<'_, PyServiceDiscoveryQuery>,
    ) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let q = query.inner.clone();
        drop(query);
        self.run_query(py, q)
    }

    /// Plugins matching a plugin query.
    fn discover_plugins(
        &self,
        py: Python<'_>,
        query: PyRef<'_, PyPluginDiscoveryQuery>,
    ) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let q = query.inner.clone();
        drop(query);
        self.run_query(py, q)
    }

    /// Discovery in one call: all of `capabilities`, any of `any`, none of
    /// `exclude`, and optionally a type, a version requirement, metadata
    /// equality and a kind ("module" or "plugin").
    #[pyo3(
        signature = (capabilities=None, any=None, exclude=None, r#type=None, version=None, metadata=None, kind=None),
        text_signature = "(self, /, capabilities=None, any=None, exclude=None, type=None, version=None, metadata=None, kind=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn discover(
        &self,
        py: Python<'_>,
        capabilities: Option<&Bound<'_, PyAny>>,
        any: Option<&Bound<'_, PyAny>>,
        exclude: Option<&Bound<'_, PyAny>>,
        r#type: Option<&Bound<'_, PyAny>>,
        version: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        kind: Option<&str>,
    ) -> PyResult<Vec<Py<PyModuleInfo>>> {
        let mut q = CapabilityQuery::new();
        if let Some(c) = capabilities {
            q = q.with_required_capabilities(extract_strings(c, "capabilities")?);
        }
        if let Some(c) = any {
            q = q.with_any_capabilities(extract_strings(c, "any")?);
        }
        if let Some(c) = exclude {
            q = q.with_excluded_capabilities(extract_strings(c, "exclude")?);
        }
        if let Some(t) = r#type {
            q = q.with_type(extract_type(t)?);
        }
        if let Some(v) = version {
            q = q.with_version_req(v);
        }
        if let Some(m) = metadata {
            for (k, v) in extract_str_map(m, "metadata")? {
                q = q.with_metadata(k, v);
            }
        }
        if let Some(k) = kind {
            q = q.with_kind(parse_kind(k)?);
        }
        self.run_query(py, q)
    }

    /// Create an instance of module `name` (highest version matching
    /// `version`), building its dependencies first. `config` is passed to the
    /// module's `init`.
    #[pyo3(signature = (name, version=None, config=None))]
    fn create(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyModuleInstance> {
        self.create_kind(py, ModuleKind::Module, name, version, config)
    }

    /// Create an instance of plugin `name`.
    #[pyo3(signature = (name, version=None, config=None))]
    fn create_plugin(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        config: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyModuleInstance> {
        self.create_kind(py, ModuleKind::Plugin, name, version, config)
    }

    /// The dependency tree of `name` resolved to concrete versions, in build
    /// order (dependencies first, `name` last).
    #[pyo3(signature = (name, version=None, kind="module"))]
    fn resolve(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        kind: &str,
    ) -> PyResult<Vec<PyModuleInfo>> {
        let kind = parse_kind(kind)?;
        let resolution = py
            .detach(|| self.inner.resolve(kind, name, version))
            .map_err(to_pyerr)?;
        Ok(infos(resolution.modules().to_vec()))
    }

    /// Switch workflow orchestration on or off; returns the registry.
    fn with_workflow_orchestration(slf: Py<Self>, enabled: bool) -> PyResult<Py<Self>> {
        slf.get()
            .inner
            .set_workflow_orchestration(enabled)
            .map_err(to_pyerr)?;
        Ok(slf)
    }

    /// Switch the plugin marketplace on or off; returns the registry.
    fn with_plugin_marketplace(slf: Py<Self>, enabled: bool) -> PyResult<Py<Self>> {
        slf.get()
            .inner
            .set_plugin_marketplace(enabled)
            .map_err(to_pyerr)?;
        Ok(slf)
    }

    /// Set (or with None remove) the access policy. Needs `admin`.
    fn set_policy(&self, policy: Option<PyRef<'_, PyAccessPolicy>>) -> PyResult<()> {
        self.inner
            .set_policy(policy.map(|p| p.inner.clone()))
            .map_err(to_pyerr)
    }

    /// Append every audit event from now on to `path` as JSON lines (None stops).
    #[pyo3(signature = (path))]
    fn set_audit_file(&self, path: Option<PathBuf>) -> PyResult<()> {
        self.inner.set_audit_file(path.as_deref()).map_err(to_pyerr)
    }

    /// Every declaration, script source and setting as JSON.
    fn export_manifest(&self) -> PyResult<String> {
        self.inner.export_manifest().map_err(to_pyerr)
    }

    /// Apply a manifest to this registry; `resolve(import_path)` returns the
    /// handler of each Python module (None for factories given in code).
    fn _load_manifest(&self, text: &str, resolve: &Bound<'_, PyAny>) -> PyResult<()> {
        self.inner
            .load_manifest(text, |config, import_path| {
                let handler = resolve
                    .call1((config.name(), import_path))
                    .map_err(module_registry::Error::external)?;
                with_python_handler(config, &handler).map_err(module_registry::Error::external)
            })
            .map_err(to_pyerr)
    }

    /// The marketplace catalogue: plugins with metadata `marketplace = "true"`.
    fn plugin_marketplace(&self) -> PyResult<Vec<PyModuleInfo>> {
        let market = self.inner.plugin_marketplace().map_err(to_pyerr)?;
        Ok(infos(market.plugins().to_vec()))
    }

    /// Run `modules` one after the other, each output feeding the next.
    fn orchestrate<'py>(
        &self,
        py: Python<'py>,
        modules: &Bound<'py, PyAny>,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let names = extract_strings(modules, "modules")?;
        let chain = names.into_iter().fold(
            module_registry::WorkflowOrchestration::new("python"),
            |c, n| c.step(n),
        );
        let input = py_to_value(input)?;
        let out = py
            .detach(|| self.inner.orchestrate(&chain, input))
            .map_err(to_pyerr)?;
        value_to_py(py, out)
    }

    /// Check a workflow against the registry without running it.
    fn check_workflow(&self, workflow: PyRef<'_, PyWorkflow>) -> PyResult<()> {
        self.inner.check_workflow(&workflow.inner).map_err(to_pyerr)
    }

    /// Run a workflow on `input`; returns a WorkflowResult. A failed run
    /// raises WorkflowError naming the step, with the module's error as `__cause__`.
    #[pyo3(signature = (workflow, input=None))]
    fn run_workflow(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        input: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyWorkflowResult> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let input = input.map(py_to_value).transpose()?.unwrap_or(Value::Null);
        let result = py
            .detach(|| self.inner.run_workflow(&wf, input))
            .map_err(to_pyerr)?;
        PyWorkflowResult::new(py, result)
    }

    /// Run a workflow on each input (one set of instances for the batch);
    /// results in input order. `on_progress(done, total)` is called after each run.
    #[pyo3(signature = (workflow, inputs, on_progress=None))]
    fn _run_workflow_batch(
        &self,
        py: Python<'_>,
        workflow: PyRef<'_, PyWorkflow>,
        inputs: &Bound<'_, PyAny>,
        on_progress: Option<Py<PyAny>>,
    ) -> PyResult<Vec<PyWorkflowResult>> {
        let wf = workflow.inner.clone();
        drop(workflow);
        let values = inputs
            .try_iter()?
            .map(|i| py_to_value(&i?))
            .collect::<PyResult<Vec<Value>>>()?;
        let results = py
            .detach(|| {
                self.inner
                    .run_workflow_batch_with_progress(&wf, values, |done, total| {
                        if let Some(cb) = &on_progress {
                            Python::attach(|py| {
                                if let Err(e) = cb.call1(py, (done, total)) {
                                    e.write_unraisable(py, None);
                                }
                            });
                        }
                    })
            })
            .map_err(to_pyerr)?;
        results
            .into_iter()
            .map(|r| PyWorkflowResult::new(py, r))
            .collect()
    }

    /// A workflow chaining `modules`, each step taking the previous output.
    #[pyo3(signature = (*modules))]
    fn pipeline(&self, modules: Vec<String>) -> PyWorkflow {
        PyWorkflow {
            inner: self.inner.pipeline(modules),
        }
    }

    /// The audit events kept (oldest first).
    fn audit_events(&self) -> Vec<PyAuditEvent> {
        self.inner
            .audit_events()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Names of every native module compiled into the extension.
    #[staticmethod]
    fn native_module_names() -> Vec<&'static str> {
        module_registry::native::native_modules()
            .into_iter()
            .map(|n| n.name)
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("<ModuleRegistry with {} registrations>", self.inner.len())
    }
}

/// Converts `value` to the core's value type and back: shows what a module
/// receives and what comes back out of one.
#[pyfunction]
pub fn roundtrip<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    value_to_py(py, py_to_value(value)?)
}

/// Read an audit file written by `set_audit_file` back into events.
#[pyfunction]
pub fn read_audit_file(path: PathBuf) -> PyResult<Vec<PyAuditEvent>> {
    let events = module_registry::AuditLog::read_file(path).map_err(to_pyerr)?;
    Ok(events.into_iter().map(Into::into).collect())
}
