//! `ModuleRegistry` for Python: registering, finding, discovering and
//! creating. The script, workflow, access, audit and manifest methods of the
//! same class live beside those domains (`script.rs`, `workflow.rs`, ...).

use module_registry::{CapabilityQuery, ModuleInfo, ModuleKind, ModuleRegistry, Value};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::config::{extract_config, extract_str_map, extract_strings, extract_type};
use crate::conversion::py_to_value;
use crate::errors::to_pyerr;
use crate::info::{infos, PyModuleInfo};
use crate::instance::PyModuleInstance;
use crate::modules::with_python_handler;
use crate::query::{PyCapabilityQuery, PyPluginDiscoveryQuery, PyServiceDiscoveryQuery};
use crate::script::PyScriptLimits;
use crate::threads::Detach;

pub(crate) fn parse_kind(kind: &str) -> PyResult<ModuleKind> {
    kind.parse::<ModuleKind>().map_err(to_pyerr)
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

    #[allow(clippy::too_many_arguments)]
    fn create_kind(
        &self,
        py: Python<'_>,
        kind: ModuleKind,
        name: &str,
        version: Option<&str>,
        config: Option<&Bound<'_, PyAny>>,
        share_dependencies: bool,
        dependency_configs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyModuleInstance> {
        let config = config.map(py_to_value).transpose()?.unwrap_or(Value::Null);
        let dep_configs = crate::conversion::dependency_configs(dependency_configs)?;
        let instance = py
            .detach_gated(|| {
                let mut builder = self
                    .inner
                    .instance(name)
                    .config(config)
                    .share_dependencies(share_dependencies);
                if kind == ModuleKind::Plugin {
                    builder = builder.plugin();
                }
                if let Some(version) = version {
                    builder = builder.version(version);
                }
                for (dep, value) in dep_configs {
                    builder = builder.dependency_config(dep, value);
                }
                builder.create()
            })
            .map_err(to_pyerr)?;
        Ok(PyModuleInstance::new(instance))
    }

    /// The one discovery path: every discovery method and `discover(...)`
    /// end here.
    fn run_query(&self, py: Python<'_>, query: &PyCapabilityQuery) -> PyResult<Py<PyAny>> {
        let query = &query.inner;
        let found = py
            .detach_gated(|| self.inner.discover(query))
            .map_err(to_pyerr)?;
        crate::info::module_list(py, self.objects.get(py, &self.inner, found)?)
    }
}

#[pymethods]
impl PyModuleRegistry {
    #[new]
    #[pyo3(signature = (native_modules=false, script_limits=None, bundled_scripts=false))]
    fn new(
        native_modules: bool,
        script_limits: Option<PyRef<'_, PyScriptLimits>>,
        bundled_scripts: bool,
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
        // Opaque Python objects in cached steps' inputs are digested by
        // their `__module_registry_token__()`.
        inner.set_opaque_token(std::sync::Arc::new(crate::modules::python_token));
        // Python modules are known in cache keys by their code's digest.
        inner.set_code_digest(std::sync::Arc::new(crate::modules::python_code_digest));
        if bundled_scripts {
            // Compiled in: the same files as `module_registry.bundled_scripts()`.
            inner.load_bundled_scripts().map_err(to_pyerr)?;
        }
        Ok(PyModuleRegistry {
            inner,
            objects: InfoObjects::default(),
        })
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

    /// Call `f()`; return its result and what this thread registered on this
    /// registry meanwhile (other threads' registrations are not included).
    fn _recording_registrations(
        &self,
        f: &Bound<'_, PyAny>,
    ) -> PyResult<(Py<PyAny>, Vec<PyModuleInfo>)> {
        let (out, registered) = self.inner.recording_registrations(|| f.call0());
        Ok((out?.unbind(), infos(registered)))
    }

    /// Remove the registration `info` describes if it is still that very
    /// registration; whether it was removed.
    fn _unregister_exact(&self, info: PyRef<'_, PyModuleInfo>) -> PyResult<bool> {
        let removed = self.inner.unregister_exact(&info.inner).map_err(to_pyerr)?;
        if removed {
            self.objects.forget(std::slice::from_ref(&info.inner));
        }
        Ok(removed)
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
    fn versions(&self, py: Python<'_>, name: &str, kind: &str) -> PyResult<Py<PyAny>> {
        let found = self.inner.versions(parse_kind(kind)?, name);
        crate::info::module_list(py, self.objects.get(py, &self.inner, found)?)
    }

    /// Every registration, by name then version descending.
    fn list(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let all = py.detach_gated(|| self.inner.list());
        crate::info::module_list(py, self.objects.get(py, &self.inner, all)?)
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
    ) -> PyResult<Py<PyAny>> {
        self.run_query(py, &query)
    }

    /// Modules matching a service query (`discover_capabilities` for services).
    fn discover_services(
        &self,
        py: Python<'_>,
        query: PyRef<'_, PyServiceDiscoveryQuery>,
    ) -> PyResult<Py<PyAny>> {
        self.run_query(py, query.as_super())
    }

    /// Plugins matching a plugin query (`discover_capabilities` for plugins).
    fn discover_plugins(
        &self,
        py: Python<'_>,
        query: PyRef<'_, PyPluginDiscoveryQuery>,
    ) -> PyResult<Py<PyAny>> {
        self.run_query(py, query.as_super())
    }

    /// Discovery in one call: all of `capabilities`, any of `any`, none of
    /// `exclude`, and optionally a type, a version requirement, metadata
    /// equality, a kind ("module" or "plugin"), and the types of values the
    /// module takes (`input`) and gives (`output`).
    #[pyo3(
        signature = (capabilities=None, any=None, exclude=None, r#type=None, version=None, metadata=None, kind=None, input=None, output=None),
        text_signature = "(self, /, capabilities=None, any=None, exclude=None, type=None, version=None, metadata=None, kind=None, input=None, output=None)"
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
        input: Option<&Bound<'_, PyAny>>,
        output: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let mut q = CapabilityQuery::new();
        if let Some(t) = input {
            q = q.with_input(crate::schema::PySchema::from_arg(t)?);
        }
        if let Some(t) = output {
            q = q.with_output(crate::schema::PySchema::from_arg(t)?);
        }
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
        self.run_query(py, &PyCapabilityQuery { inner: q })
    }

    /// Create an instance of module `name` (highest version matching
    /// `version`), building its dependencies first. `config` is passed to the
    /// module's `init`; `dependency_configs` maps a dependency's name to the
    /// config it is built with. With `share_dependencies`, dependency
    /// instances still alive from earlier sharing creates are reused.
    #[pyo3(signature = (name, version=None, config=None, *, share_dependencies=false, dependency_configs=None))]
    fn create(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        config: Option<&Bound<'_, PyAny>>,
        share_dependencies: bool,
        dependency_configs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyModuleInstance> {
        self.create_kind(
            py,
            ModuleKind::Module,
            name,
            version,
            config,
            share_dependencies,
            dependency_configs,
        )
    }

    /// Create an instance of plugin `name` (see `create`).
    #[pyo3(signature = (name, version=None, config=None, *, share_dependencies=false, dependency_configs=None))]
    fn create_plugin(
        &self,
        py: Python<'_>,
        name: &str,
        version: Option<&str>,
        config: Option<&Bound<'_, PyAny>>,
        share_dependencies: bool,
        dependency_configs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<PyModuleInstance> {
        self.create_kind(
            py,
            ModuleKind::Plugin,
            name,
            version,
            config,
            share_dependencies,
            dependency_configs,
        )
    }

    /// What is checked of the values modules receive and return, against
    /// their declared types: "off" (the default), "inputs" (each value a
    /// module is given) or "all" (also what it returns). A value that does
    /// not fit raises SchemaError naming the module. Returns the registry.
    fn set_validation(slf: Py<Self>, mode: &str) -> PyResult<Py<Self>> {
        let mode = mode
            .parse::<module_registry::Validation>()
            .map_err(to_pyerr)?;
        slf.get().inner.set_validation(mode).map_err(to_pyerr)?;
        Ok(slf)
    }

    /// The validation mode: "off", "inputs" or "all".
    #[getter]
    fn validation(&self) -> &'static str {
        self.inner.validation().as_str()
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

    /// The marketplace catalogue: plugins with metadata `marketplace = "true"`.
    fn plugin_marketplace(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let market = self.inner.plugin_marketplace().map_err(to_pyerr)?;
        let objects = infos(market.plugins().to_vec())
            .into_iter()
            .map(|i| Py::new(py, i))
            .collect::<PyResult<Vec<_>>>()?;
        crate::info::module_list(py, objects)
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
