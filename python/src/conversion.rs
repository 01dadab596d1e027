//! `Value` <-> Python objects.
//!
//! `None bool int float str bytes list tuple dict` (exact types) convert to
//! their `Value`; an int outside 64 bits, a dict with non-str keys, a subclass
//! of any of these, and every other object travel as an opaque handle and come
//! back as the very same object.

use std::sync::Arc;

use module_registry::{Opaque, Value, ValueMap};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// How deeply lists and dicts may nest (also stops self-containing lists):
/// the core's limit, the same for every conversion.
pub use module_registry::value::MAX_DEPTH;

/// A Python object carried through the core untouched.
pub struct PyHandle(pub Py<PyAny>);

/// A Rust-side opaque value seen from Python: passes back in unchanged.
#[pyclass(name = "OpaqueValue", module = "module_registry._core", frozen)]
pub struct PyOpaqueValue {
    pub inner: Opaque,
}

#[pymethods]
impl PyOpaqueValue {
    fn __repr__(&self) -> String {
        format!(
            "<OpaqueValue {} {:p}>",
            self.inner.type_name(),
            Arc::as_ptr(self.inner.as_arc()) as *const ()
        )
    }
}

fn opaque(obj: &Bound<'_, PyAny>) -> Value {
    // Named after the Python class, so errors about it say what it is.
    let class = obj.get_type();
    let name = match (class.module(), class.qualname()) {
        (Ok(m), Ok(q)) if m != "builtins" => format!("Python {m}.{q}"),
        (_, Ok(q)) => format!("Python {q}"),
        _ => "a Python object".to_string(),
    };
    Value::Opaque(Opaque::named(
        Arc::new(PyHandle(obj.clone().unbind())),
        name,
    ))
}

/// Python object -> `Value`.
pub fn py_to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value(obj, 0)
}

fn to_value(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "value nests deeper than {MAX_DEPTH} levels (or contains itself)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast_exact::<PyInt>() {
        return Ok(i.extract::<i64>().map_or_else(|_| opaque(obj), Value::Int));
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(Value::Str(s.to_cow()?.into_owned()));
    }
    if let Ok(b) = obj.cast_exact::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        let mut out = Vec::with_capacity(l.len());
        for item in l.iter() {
            out.push(to_value(&item, depth + 1)?);
        }
        return Ok(Value::List(out));
    }
    if let Ok(t) = obj.cast_exact::<PyTuple>() {
        let mut out = Vec::with_capacity(t.len());
        for item in t.iter() {
            out.push(to_value(&item, depth + 1)?);
        }
        return Ok(Value::List(out));
    }
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        if !d
            .keys()
            .iter()
            .all(|k| k.is_exact_instance_of::<PyString>())
        {
            return Ok(opaque(obj));
        }
        let mut out = ValueMap::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k.cast_exact::<PyString>()?.to_cow()?.into_owned();
            out.insert(key, to_value(&v, depth + 1)?);
        }
        return Ok(Value::Map(out));
    }
    if let Ok(o) = obj.cast_exact::<PyOpaqueValue>() {
        return Ok(Value::Opaque(o.get().inner.clone()));
    }
    Ok(opaque(obj))
}

/// `Value` -> Python object.
pub fn value_to_py(py: Python<'_>, value: Value) -> PyResult<Bound<'_, PyAny>> {
    to_py(py, value, 0)
}

fn to_py(py: Python<'_>, value: Value, depth: usize) -> PyResult<Bound<'_, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "value nests deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => PyFloat::new(py, f).into_any(),
        Value::Str(s) => PyString::new(py, &s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, &b).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item, depth + 1)?)?;
            }
            list.into_any()
        }
        Value::Map(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, to_py(py, v, depth + 1)?)?;
            }
            dict.into_any()
        }
        Value::Opaque(o) => match o.downcast_ref::<PyHandle>() {
            Some(handle) => handle.0.clone_ref(py).into_bound(py),
            None => Bound::new(py, PyOpaqueValue { inner: o })?.into_any(),
        },
    })
}

/// Converts `value` to the core's value type and back: shows what a module
/// receives and what comes back out of one.
#[pyfunction]
pub fn _roundtrip<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    value_to_py(py, py_to_value(value)?)
}
