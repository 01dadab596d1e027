//! `Schema`: the core's type of values, seen from Python. It converts and
//! delegates: parsing, printing, JSON Schema, assignability and validation
//! are the core's (`module_registry::schema`). It also tells the core which
//! Python class an opaque value is an instance of (subclasses included).

use module_registry::schema::set_opaque_check;
use module_registry::{Opaque, Schema};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

use crate::conversion::{py_to_value, PyHandle};
use crate::errors::to_pyerr;

/// A type of values: `Schema("list[str]")`, `Schema("{title: str, tags?:
/// list[str]}")`. Compares, hashes and pickles by its canonical text.
#[pyclass(name = "Schema", module = "module_registry._core", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PySchema {
    pub inner: Schema,
}

impl PySchema {
    /// A `Schema` or the text of one, as arguments take it.
    pub fn from_arg(arg: &Bound<'_, PyAny>) -> PyResult<Schema> {
        if let Ok(schema) = arg.cast::<PySchema>() {
            return Ok(schema.get().inner.clone());
        }
        if let Ok(text) = arg.cast::<PyString>() {
            return Schema::parse(text.to_str()?).map_err(to_pyerr);
        }
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a type is a Schema or a type expression (str), not {}",
            arg.get_type().name()?
        )))
    }
}

#[pymethods]
impl PySchema {
    #[new]
    fn new(text: &str) -> PyResult<Self> {
        Schema::parse(text)
            .map(|inner| PySchema { inner })
            .map_err(to_pyerr)
    }

    fn __str__(&self) -> String {
        self.inner.to_string()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let text = PyString::new(py, &self.inner.to_string()).repr()?;
        Ok(format!("Schema({text})"))
    }

    /// Whether `value` fits this type.
    fn accepts(&self, value: &Bound<'_, PyAny>) -> PyResult<bool> {
        let value = py_to_value(value)?;
        Ok(self.inner.accepts(&value))
    }

    /// Raises `SchemaError` (with `path`, `expected`, `found`) when `value`
    /// does not fit this type.
    fn validate(&self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = py_to_value(value)?;
        self.inner.validate(&value).map_err(to_pyerr)
    }

    /// Whether a value of this type can be used where `other` is expected.
    fn is_assignable_to(&self, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.is_assignable_to(&PySchema::from_arg(other)?))
    }

    /// This type as a JSON Schema (draft 2020-12).
    fn to_json_schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.inner.to_json_schema().to_string();
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Reads a JSON Schema (a dict, as `json.loads` or pydantic give it);
    /// a keyword the type cannot express raises `SchemaError` naming it.
    #[classmethod]
    fn from_json_schema(_cls: &Bound<'_, PyType>, schema: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = schema.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item("allow_nan", false)?;
        let not_json = |reason: String| {
            to_pyerr(module_registry::Error::InvalidSchema {
                schema: String::new(),
                reason: format!("a JSON Schema is JSON: {reason}"),
            })
        };
        let text: String = py
            .import("json")?
            .call_method("dumps", (schema,), Some(&kwargs))
            .map_err(|e| not_json(e.to_string()))?
            .extract()?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| not_json(e.to_string()))?;
        Schema::from_json_schema(&json)
            .map(|inner| PySchema { inner })
            .map_err(to_pyerr)
    }

    fn __reduce__<'py>(&self, py: Python<'py>) -> (Bound<'py, PyType>, (String,)) {
        (py.get_type::<PySchema>(), (self.inner.to_string(),))
    }
}

/// Whether the Python object behind `value` is an instance of the class
/// named `module.qualname` (or `qualname` for builtins), subclasses
/// included; `None` for opaque values that are not Python objects.
fn is_instance_of(value: &Opaque, class: &str) -> Option<bool> {
    let handle = value.downcast_ref::<PyHandle>()?;
    crate::threads::try_attach(|py| {
        let object = handle.0.bind(py);
        let mro = object.get_type().mro();
        mro.iter().any(|base| {
            let Ok(base) = base.cast::<PyType>() else {
                return false;
            };
            match (base.module(), base.qualname()) {
                (Ok(m), Ok(q)) if m.to_str().ok() == Some("builtins") => q == class,
                (Ok(m), Ok(q)) => format!("{m}.{q}") == class,
                _ => false,
            }
        })
    })
}

/// Installs the opaque check (once per process).
pub fn install_opaque_check() {
    set_opaque_check(is_instance_of);
}
