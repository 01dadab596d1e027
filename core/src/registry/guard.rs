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

    /// Puts `policy` in force, its principals already checked (a
    /// manifest's, applied with its modules).
    pub(crate) fn put_checked_policy(&self, policy: AccessPolicy) {
        *self.inner.policy.write() = Some(Arc::new(policy));
    }

    /// The access policy in force, if any.
    pub fn policy(&self) -> Option<AccessPolicy> {
        self.inner.policy.read().as_deref().cloned()
    }

    /// A view of this registry whose every call acts as `principal` and is
    /// checked against the policy.
    ///
    /// # Panics
    ///
    /// When `principal` is reserved (`system` or empty: see
    /// [`access::check_principal`]); for a name that comes from outside
    /// the program, use [`try_as_principal`](Self::try_as_principal).
    #[track_caller]
    pub fn as_principal(&self, principal: impl Into<String>) -> RegistryView {
        match self.try_as_principal(principal) {
            Ok(view) => view,
            Err(e) => panic!("ModuleRegistry::as_principal: {e}"),
        }
    }

    /// [`as_principal`](Self::as_principal), refusing a reserved name
    /// (`system` or empty) with [`Error::InvalidConfig`].
    pub fn try_as_principal(&self, principal: impl Into<String>) -> Result<RegistryView> {
        let principal = principal.into();
        access::check_principal(&principal)?;
        Ok(RegistryView::new(self.clone(), Arc::from(principal)))
    }

    /// Whether an access policy is set (without one, everyone may do
    /// anything, so what was decided for one caller holds for every caller).
    #[cfg(feature = "workflows")]
    pub(crate) fn has_policy(&self) -> bool {
        self.inner.policy.read().is_some()
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
        (self.inner.metrics).add(crate::metrics::DENIALS, &[operation], 1);
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
