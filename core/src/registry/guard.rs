//! Access checks: the policy in force, the current principal, and the
//! `denied` audit events of refused calls.

use std::sync::Arc;

use super::{ModuleRegistry, RegistryView};
use crate::access::{self, AccessPolicy, Permission};
use crate::audit::Outcome;
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::kind::ModuleKind;

impl ModuleRegistry {
    /// Set (or, with `None`, remove) the access policy. Needs `admin`.
    pub fn set_policy(&self, policy: Option<AccessPolicy>) -> Result<()> {
        self.authorize(Permission::Admin, "set_policy", None)?;
        if let Some(p) = &policy {
            p.check_principals()?;
        }
        *self.inner.policy.write() = policy.map(Arc::new);
        Ok(())
    }

    /// The access policy in force, if any.
    pub fn policy(&self) -> Option<AccessPolicy> {
        self.inner.policy.read().as_deref().cloned()
    }

    /// A view of this registry whose every call acts as `principal` and is
    /// checked against the policy.
    pub fn as_principal(&self, principal: impl Into<String>) -> RegistryView {
        RegistryView::new(self.clone(), Arc::from(principal.into()))
    }

    /// Whether the current principal may do `permission` on `module` (on
    /// some module when `None`). The system, and everyone when there is no
    /// policy, may do anything.
    pub(crate) fn allowed(&self, permission: Permission, module: Option<&str>) -> bool {
        let Some(principal) = access::current_principal() else {
            return true;
        };
        match self.inner.policy.read().as_deref() {
            None => true,
            Some(policy) => policy.allows(&principal, permission, module),
        }
    }

    /// [`allowed`](Self::allowed), or [`Error::PermissionDenied`] recorded as a `denied` audit event.
    pub(crate) fn authorize(
        &self,
        permission: Permission,
        operation: &str,
        module: Option<&str>,
    ) -> Result<()> {
        if self.allowed(permission, module) {
            return Ok(());
        }
        let principal = access::current_principal()
            .map_or_else(|| access::SYSTEM.to_string(), |p| p.to_string());
        let module = module.unwrap_or("*");
        let error = Error::PermissionDenied {
            principal,
            operation: operation.to_string(),
            module: module.to_string(),
        };
        self.inner.audit.push(
            operation,
            ModuleKind::Module,
            module,
            None,
            Outcome::Denied,
            Some(error.report()),
        );
        Err(error)
    }

    /// Keeps the registrations the current principal may discover.
    pub(super) fn visible(&self, mut infos: Vec<ModuleInfo>) -> Vec<ModuleInfo> {
        if access::current_principal().is_some() && self.inner.policy.read().is_some() {
            infos.retain(|i| self.allowed(Permission::Discover, Some(i.name())));
        }
        infos
    }
}
