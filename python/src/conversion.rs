//! `Value` <-> Python objects.
//!
//! `None bool int float str bytes list tuple dict` convert to their `Value`,
//! and so do subclasses of `bool int float str bytes` (an `IntEnum`, a
//! `class Name(str)`: as the base type, reading the stored value, never
//! calling `__str__` or `__index__`) and numpy scalars (`numpy.bool_`, the
//! integer and floating types: their exact Python value; `numpy.str_` and
//! `numpy.bytes_` are subclasses of `str` and `bytes`), recognised without
//! importing numpy. What comes back to Python is the base type (`str`, not
//! `Name`; `int`, not `numpy.int64`). An int outside 64 bits (a
//! `numpy.uint64` too), a `numpy.longdouble` (which a float would round), a
//! dict with a key that is not a str, and every other object (a list or
//! dict subclass, a set, a numpy array, `Decimal`, `datetime`) travel as an
//! opaque handle and come back as the very same object.

use std::sync::Arc;

use module_registry::{Opaque, Value, ValueMap};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};

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
        return Ok(Value::Str(text_of(s)?));
    }
    if let Ok(b) = obj.cast_exact::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    if let Ok(l) = obj.cast_exact::<PyList>() {
        let mut out = Vec::with_capacity(l.len());
        for (i, item) in l.iter().enumerate() {
            out.push(to_value(&item, depth + 1).map_err(|e| within(e, || format!("[{i}]")))?);
        }
        return Ok(Value::List(out));
    }
    if let Ok(t) = obj.cast_exact::<PyTuple>() {
        let mut out = Vec::with_capacity(t.len());
        for (i, item) in t.iter().enumerate() {
            out.push(to_value(&item, depth + 1).map_err(|e| within(e, || format!("[{i}]")))?);
        }
        return Ok(Value::List(out));
    }
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        return dict_to_value(obj, d, depth);
    }
    if let Ok(o) = obj.cast_exact::<PyOpaqueValue>() {
        return Ok(Value::Opaque(o.get().inner.clone()));
    }
    subclass_or_numpy(obj)
}

/// What a lone-surrogate refusal's message holds, before its place.
const LONE_SURROGATE: &str = "holds a lone surrogate, which no UTF-8 text can hold";

/// A str's text. One holding a lone surrogate (`"\ud800"`, from
/// `surrogateescape` decoding, say) is a `ValidationError` naming the
/// character, its index and where the str sits in the value (`at $[0]["a"]`),
/// with Python's `UnicodeEncodeError` as its cause.
fn text_of(s: &Bound<'_, PyString>) -> PyResult<String> {
    let cause = match s.to_cow() {
        Ok(text) => return Ok(text.into_owned()),
        Err(cause) => cause,
    };
    let py = s.py();
    let start = cause
        .value(py)
        .getattr("start")
        .and_then(|v| v.extract::<usize>());
    let shown = start
        .ok()
        .and_then(|i| {
            let c = s.get_item(i).ok()?.repr().ok()?.to_cow().ok()?.into_owned();
            Some(format!(" ({c} at index {i})"))
        })
        .unwrap_or_default();
    let err = crate::errors::to_pyerr(module_registry::Error::invalid_input(format!(
        "a str{shown} {LONE_SURROGATE}, so it cannot be a module value (encode it with \
         errors=\"surrogatepass\" or fix the text) at $"
    )));
    err.set_cause(py, Some(cause));
    Err(err)
}

/// `err` from converting the item at `step` of a list or dict: a lone
/// surrogate's refusal gets the step added to the place it names.
fn within(err: PyErr, step: impl FnOnce() -> String) -> PyErr {
    Python::attach(|py| {
        // Only this refusal is placed: any other error passes unchanged.
        let message = err.value(py).str().ok().map(|m| m.to_string());
        let Some(message) = message.filter(|m| m.contains(LONE_SURROGATE)) else {
            return err;
        };
        let Some(at) = message.rfind(" at $") else {
            return err;
        };
        // The class's own prefix (`invalid input: `) is added again below.
        let body = message[..at].trim_start_matches("invalid input: ");
        let placed = format!("{body} at ${}{}", step(), &message[at + 5..]);
        let new = crate::errors::to_pyerr(module_registry::Error::invalid_input(placed));
        new.set_cause(py, err.cause(py));
        new
    })
}

/// A dict whose keys are all text (`str` or a subclass); any other key makes
/// the whole dict opaque.
fn dict_to_value(obj: &Bound<'_, PyAny>, d: &Bound<'_, PyDict>, depth: usize) -> PyResult<Value> {
    // A snapshot of the pairs first, taken with no Python code run while the
    // dict is walked (a type check and a reference each: nothing allocates a
    // Python object, so no finaliser can change the dict under the iterator);
    // converting the values, which may run Python code, comes after.
    let mut pairs = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        if !k.is_instance_of::<PyString>() {
            return Ok(opaque(obj));
        }
        pairs.push((k, v));
    }
    let mut out = ValueMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        // Checked above: a str or a subclass.
        let key = text_of(k.cast::<PyString>()?).map_err(|e| within(e, || " (a key)".into()))?;
        let value = to_value(&v, depth + 1).map_err(|e| within(e, || format!("[{key:?}]")))?;
        let (at, earlier) = out.insert_full(key, value);
        if earlier.is_some() {
            // Only str subclasses with their own `__eq__`/`__hash__` get here.
            let key = out.get_index(at).map_or("", |(k, _)| k.as_str());
            return Err(PyValueError::new_err(format!(
                "dict has two keys that are both the text {key:?} (a str subclass with its own __eq__ or __hash__); the keys of a map must differ"
            )));
        }
    }
    Ok(Value::Map(out))
}

/// numpy's scalar types, found once numpy has been imported (by the program).
struct Numpy {
    bool_: Py<PyType>,
    integer: Py<PyType>,
    floating: Py<PyType>,
    /// A signed integer type whose value is a duration: stays opaque.
    timedelta64: Py<PyType>,
    /// `numpy.generic.item`, called unbound: a subclass's own `item` never runs.
    item: Py<PyAny>,
}

fn numpy(py: Python<'_>) -> Option<&Numpy> {
    static NUMPY: PyOnceLock<Numpy> = PyOnceLock::new();
    if let Some(found) = NUMPY.get(py) {
        return Some(found);
    }
    // Never imported here: a numpy scalar exists only once numpy is loaded.
    // (Looked up in `sys.modules` until then: a dict read, no exception.)
    static MODULES: PyOnceLock<Option<Py<PyDict>>> = PyOnceLock::new();
    let modules = MODULES.get_or_init(py, || {
        let modules = py
            .import("sys")
            .and_then(|sys| sys.getattr("modules"))
            .ok()?;
        Some(modules.cast_into::<PyDict>().ok()?.unbind())
    });
    let module = modules.as_ref()?.bind(py).get_item("numpy").ok()??;
    let ty = |name: &str| -> Option<Py<PyType>> {
        Some(
            module
                .getattr(name)
                .ok()?
                .cast_into::<PyType>()
                .ok()?
                .unbind(),
        )
    };
    let found = Numpy {
        bool_: ty("bool_")?,
        integer: ty("integer")?,
        floating: ty("floating")?,
        timedelta64: ty("timedelta64")?,
        item: module
            .getattr("generic")
            .ok()?
            .getattr("item")
            .ok()?
            .unbind(),
    };
    Some(NUMPY.get_or_init(py, || found))
}

/// Subclasses of the scalar types (as the base type; `bool` first) and numpy
/// scalars; anything else is opaque.
fn subclass_or_numpy(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return Ok(i.extract::<i64>().map_or_else(|_| opaque(obj), Value::Int));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(text_of(s)?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(b.as_bytes().to_vec()));
    }
    let py = obj.py();
    let Some(np) = numpy(py) else {
        return Ok(opaque(obj));
    };
    let is = |t: &Py<PyType>| obj.is_instance(t.bind(py)).unwrap_or(false);
    let scalar = is(&np.bool_) || (is(&np.integer) && !is(&np.timedelta64)) || is(&np.floating);
    if !scalar {
        return Ok(opaque(obj));
    }
    // Its exact Python value: a bool, an int or a float (a longdouble gives
    // itself back, as no float holds it: opaque, as is an int past 64 bits).
    let item = np.item.bind(py).call1((obj,))?;
    if let Ok(b) = item.cast_exact::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = item.cast_exact::<PyInt>() {
        return Ok(i.extract::<i64>().map_or_else(|_| opaque(obj), Value::Int));
    }
    if let Ok(f) = item.cast_exact::<PyFloat>() {
        return Ok(Value::Float(f.value()));
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
            // Built at its length in one go (no append's regrowth).
            let items = items
                .into_iter()
                .map(|item| to_py(py, item, depth + 1))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
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

/// `dependency_configs={"db": {...}}` as the core takes it: module name to
/// config, every key a str.
pub(crate) fn dependency_configs(
    configs: Option<&Bound<'_, pyo3::types::PyDict>>,
) -> PyResult<Vec<(String, Value)>> {
    let mut out = Vec::new();
    if let Some(configs) = configs {
        for (dep, value) in configs.iter() {
            let dep: String = dep.extract().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "dependency_configs keys are module names (str), not {}",
                    dep.get_type()
                        .name()
                        .map_or_else(|_| "?".to_string(), |n| n.to_string())
                ))
            })?;
            out.push((dep, py_to_value(&value)?));
        }
    }
    Ok(out)
}
