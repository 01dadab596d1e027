//! `AccessPolicy` and acting as a principal, for Python.

use module_registry::access::{act_as, with_principal, Permission};
use module_registry::AccessPolicy;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::config::extract_strings;
use crate::errors::to_pyerr;
use crate::registry::PyModuleRegistry;

/// Roles of permissions (`discover`, `create`, `register`, `unregister`,
/// `admin`) on module-name globs, and the roles of each principal.
/// `grant` and `assign` return the policy, so calls chain.
#[pyclass(name = "AccessPolicy", module = "module_registry._core")]
#[derive(Clone, Default)]
pub struct PyAccessPolicy {
    pub inner: AccessPolicy,
}

#[pymethods]
impl PyAccessPolicy {
    /// Its roles' grants and its principals' roles, as tables (in a notebook).
    fn _repr_html_(slf: &Bound<'_, Self>) -> PyResult<String> {
        crate::result::display(slf.py(), "policy_html", slf.as_any())
    }

    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Give `role` the `permissions` on modules whose names match the glob `modules`.
    #[pyo3(signature = (role, permissions, modules="*"))]
    fn grant<'py>(
        mut slf: PyRefMut<'py, Self>,
        role: &str,
        permissions: &Bound<'py, PyAny>,
        modules: &str,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let perms = extract_strings(permissions, "permissions")?
            .iter()
            .map(|p| p.parse::<Permission>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_pyerr)?;
        slf.inner.grant(role, perms, modules).map_err(to_pyerr)?;
        Ok(slf)
    }

    /// Give `principal` the role `role`.
    fn assign<'py>(
        mut slf: PyRefMut<'py, Self>,
        principal: &str,
        role: &str,
    ) -> PyRefMut<'py, Self> {
        slf.inner.assign(principal, role);
        slf
    }

    /// Whether `principal` may do `permission` on `module` (on some module when None).
    #[pyo3(signature = (principal, permission, module=None))]
    fn allows(&self, principal: &str, permission: &str, module: Option<&str>) -> PyResult<bool> {
        let p = permission.parse::<Permission>().map_err(to_pyerr)?;
        Ok(self.inner.allows(principal, p, module))
    }

    /// The roles of `principal`.
    fn roles_of(&self, principal: &str) -> Vec<String> {
        self.inner.roles_of(principal).to_vec()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Self>()
            .is_ok_and(|o| o.borrow().inner == self.inner)
    }

    /// Pickled as JSON (the form manifests record).
    fn __getstate__(&self) -> PyResult<String> {
        self.inner.to_json().map_err(to_pyerr)
    }

    fn __setstate__(&mut self, state: &str) -> PyResult<()> {
        self.inner = AccessPolicy::from_json(state).map_err(to_pyerr)?;
        Ok(())
    }
}

/// Calls `func(*args, **kwargs)` acting as `principal`: every registry call
/// it makes (on this thread) is checked against the registry's policy. A
/// reserved name (`system`, `""`) is refused (`ValidationError`).
#[pyfunction]
#[pyo3(signature = (principal, func, *args, **kwargs))]
pub fn call_as<'py>(
    principal: &str,
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    act_as(principal, || func.call(args, kwargs)).map_err(to_pyerr)?
}

/// Raises `ValidationError` when `principal` may not be taken by a view
/// (`system`, the registry itself, or the empty name): the core's rule.
#[pyfunction]
pub fn check_principal(principal: &str) -> PyResult<()> {
    module_registry::access::check_principal(principal).map_err(to_pyerr)
}

/// The principal the calling thread acts as (None: the registry's owner).
#[pyfunction]
pub fn _current_principal() -> Option<String> {
    module_registry::access::current_principal().map(|p| p.to_string())
}

/// Call `func(*args, **kwargs)` as the registry's owner (no principal):
/// what a batch needs to pickle the registry of a view, whose work then
/// runs as the view's principal on the workers.
#[pyfunction]
#[pyo3(signature = (func, *args, **kwargs))]
pub fn _as_owner<'py>(
    func: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    with_principal(None, || func.call(args, kwargs))
}

#[pymethods]
impl PyModuleRegistry {
    /// Set (or with None remove) the access policy. Needs `admin`.
    fn set_policy(&self, policy: Option<PyRef<'_, PyAccessPolicy>>) -> PyResult<()> {
        self.inner
            .set_policy(policy.map(|p| p.inner.clone()))
            .map_err(to_pyerr)
    }
}
