//! Access control: an [`AccessPolicy`] of roles and permissions, and the
//! principal a call acts as.
//!
//! With no policy the registry is open. With a policy, calls made through a
//! view bound to a principal ([`ModuleRegistry::as_principal`](crate::ModuleRegistry::as_principal))
//! are checked; anything not granted is refused with
//! [`crate::Error::PermissionDenied`] and audited as
//! `denied`. The registry used directly acts as the principal `system`, with
//! every permission. The principal travels with the call on its thread (and
//! into workflow worker threads), so a script or a workflow run by a
//! principal has that principal's permissions, never more.
//!
//! ```
//! use module_registry::{AccessPolicy, ModuleConfig, ModuleRegistry, Permission};
//!
//! let registry = ModuleRegistry::new();
//! let mut policy = AccessPolicy::new();
//! policy.grant("reader", [Permission::Discover, Permission::Create], "*")?;
//! policy.grant("publisher", [Permission::Register], "team-*")?;
//! policy.assign("alice", "reader").assign("alice", "publisher");
//! registry.set_policy(Some(policy))?;
//!
//! let alice = registry.as_principal("alice");
//! alice.register(ModuleConfig::new().with_name("team-tool"))?;
//! let denied = alice.register(ModuleConfig::new().with_name("other-tool")).unwrap_err();
//! assert!(denied.to_string().contains("\"alice\" may not register \"other-tool\""));
//! # Ok::<(), module_registry::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a principal may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Find modules: `discover`, `list`, `get`.
    Discover,
    /// Build instances: `create`, and running workflows' steps.
    Create,
    /// Add or replace modules (scripts included).
    Register,
    /// Remove modules.
    Unregister,
    /// Everything, including changing the policy and the registry's settings.
    Admin,
}

impl Permission {
    /// The permission's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Discover => "discover",
            Permission::Create => "create",
            Permission::Register => "register",
            Permission::Unregister => "unregister",
            Permission::Admin => "admin",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Permission {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "discover" => Permission::Discover,
            "create" => Permission::Create,
            "register" => Permission::Register,
            "unregister" => Permission::Unregister,
            "admin" => Permission::Admin,
            other => {
                return Err(Error::InvalidConfig {
                    name: other.to_string(),
                    reason:
                        "unknown permission; use discover, create, register, unregister or admin"
                            .into(),
                })
            }
        })
    }
}

/// Permissions on the modules whose names match a glob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// What is allowed.
    pub permissions: Vec<Permission>,
    /// A glob on module names (`*`, `team-*`, `text-?ncode`).
    pub modules: String,
    #[serde(skip)]
    pattern: Option<glob::Pattern>,
}

impl Grant {
    fn new(permissions: Vec<Permission>, modules: &str) -> Result<Self> {
        let pattern = glob::Pattern::new(modules).map_err(|e| Error::InvalidConfig {
            name: modules.to_string(),
            reason: format!("invalid module pattern: {e}"),
        })?;
        Ok(Grant {
            permissions,
            modules: modules.to_string(),
            pattern: Some(pattern),
        })
    }

    fn allows(&self, permission: Permission, module: Option<&str>) -> bool {
        let has = self
            .permissions
            .iter()
            .any(|p| *p == permission || *p == Permission::Admin);
        match module {
            Some(m) => has && self.pattern.as_ref().is_some_and(|p| p.matches(m)),
            // Registry-wide administration (policy, limits, settings, audit)
            // needs an unscoped grant: `admin` on `team-*` administers the
            // `team-*` modules, not the registry.
            None if permission == Permission::Admin => has && self.modules == "*",
            None => has,
        }
    }
}

impl PartialEq for Grant {
    /// Grants are equal when they allow the same permissions on the same
    /// glob (the compiled glob follows from the text).
    fn eq(&self, other: &Self) -> bool {
        self.permissions == other.permissions && self.modules == other.modules
    }
}

/// Roles (each a list of grants) and the roles of each principal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccessPolicy {
    roles: BTreeMap<String, Vec<Grant>>,
    principals: BTreeMap<String, Vec<String>>,
}

impl AccessPolicy {
    /// A policy granting nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Give `role` the `permissions` on modules whose names match `modules`.
    pub fn grant<I>(&mut self, role: &str, permissions: I, modules: &str) -> Result<&mut Self>
    where
        I: IntoIterator<Item = Permission>,
    {
        let grant = Grant::new(permissions.into_iter().collect(), modules)?;
        self.roles.entry(role.to_string()).or_default().push(grant);
        Ok(self)
    }

    /// Give `principal` the role `role`.
    pub fn assign(&mut self, principal: &str, role: &str) -> &mut Self {
        let roles = self.principals.entry(principal.to_string()).or_default();
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_string());
        }
        self
    }

    /// Whether `principal` has `permission` on `module` (on some module when
    /// `None`; for [`Permission::Admin`], `None` means the registry as a whole
    /// and needs a grant on `"*"`).
    pub fn allows(&self, principal: &str, permission: Permission, module: Option<&str>) -> bool {
        self.principals.get(principal).is_some_and(|roles| {
            roles.iter().any(|role| {
                self.roles
                    .get(role)
                    .is_some_and(|grants| grants.iter().any(|g| g.allows(permission, module)))
            })
        })
    }

    /// Refuses a policy giving roles to a name no view may act as
    /// ([`check_principal`]).
    pub(crate) fn check_principals(&self) -> Result<()> {
        self.principals
            .keys()
            .try_for_each(|principal| check_principal(principal))
    }

    /// The roles of `principal`.
    pub fn roles_of(&self, principal: &str) -> &[String] {
        self.principals.get(principal).map_or(&[], Vec::as_slice)
    }

    /// The policy as JSON (what manifests record).
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string(self)?)
    }

    /// A policy from [`to_json`](Self::to_json)'s form, its globs checked.
    pub fn from_json(text: &str) -> Result<Self> {
        let policy: AccessPolicy =
            serde_json::from_str(text).map_err(|e| crate::error::Error::Serialization {
                message: format!("invalid access policy: {e}"),
            })?;
        policy.compiled()
    }

    /// Recompiles the globs after deserialising, and refuses reserved
    /// principals ([`check_principal`]).
    pub(crate) fn compiled(mut self) -> Result<Self> {
        self.check_principals()?;
        for grants in self.roles.values_mut() {
            for g in grants.iter_mut() {
                *g = Grant::new(std::mem::take(&mut g.permissions), &g.modules)?;
            }
        }
        Ok(self)
    }
}

/// The name the audit log gives the registry acting for itself (no view);
/// no policy may give it roles, and no view may take it.
pub const SYSTEM: &str = "system";

/// The one rule on principals' names, wherever a name enters (a view, a
/// policy's assignments, the bindings' "call as"): `system` is the
/// registry itself (what the audit log names it) and the empty name is
/// no one, so neither may be taken or given roles.
///
/// ```
/// use module_registry::access::check_principal;
///
/// assert!(check_principal("alice").is_ok());
/// assert!(check_principal("system").is_err());
/// assert!(check_principal("").is_err());
/// ```
pub fn check_principal(principal: &str) -> Result<()> {
    if !principal.is_empty() && principal != SYSTEM {
        return Ok(());
    }
    Err(Error::InvalidConfig {
        name: format!("principal {principal:?}"),
        reason: format!(
            "the name is reserved: {SYSTEM:?} is the registry itself (which needs no grant) and \"\" is no one; a principal needs a name of its own"
        ),
    })
}

/// Runs `f` acting as `principal` when its name may be taken
/// ([`check_principal`]): what a binding's "call as" uses.
pub fn act_as<T>(principal: &str, f: impl FnOnce() -> T) -> Result<T> {
    check_principal(principal)?;
    Ok(with_principal(Some(Arc::from(principal)), f))
}

thread_local! {
    static PRINCIPAL: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// The principal the current call acts as (`None`: the registry itself, `system`).
pub fn current_principal() -> Option<Arc<str>> {
    PRINCIPAL.with(|p| p.borrow().clone())
}

/// Runs `f` acting as `principal` (`None`: as the system), restoring the
/// previous principal after.
pub fn with_principal<T>(principal: Option<Arc<str>>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<str>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            PRINCIPAL.with(|p| *p.borrow_mut() = previous);
        }
    }
    let previous = PRINCIPAL.with(|p| std::mem::replace(&mut *p.borrow_mut(), principal));
    let _restore = Restore(previous);
    f()
}

thread_local! {
    static AMBIENT: RefCell<Option<Ambient>> = const { RefCell::new(None) };
}

/// A value a binding attaches to a call, which travels with it to every
/// thread the call's work runs on (workflow branches, timed steps, helper
/// threads), as the principal does: the Python binding passes the event
/// loop an `async def` module is awaited on. The core never looks inside.
pub type Ambient = Arc<dyn std::any::Any + Send + Sync>;

/// The [`Ambient`] value of the current call, if any.
pub fn ambient() -> Option<Ambient> {
    AMBIENT.with(|a| a.borrow().clone())
}

/// Runs `f` with `value` as the call's [`Ambient`] value, restoring the
/// previous one after.
pub fn with_ambient<T>(value: Option<Ambient>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Ambient>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            AMBIENT.with(|a| *a.borrow_mut() = previous);
        }
    }
    let previous = AMBIENT.with(|a| std::mem::replace(&mut *a.borrow_mut(), value));
    let _restore = Restore(previous);
    f()
}

/// Who a call acts as and what travels with it: taken on the thread that
/// hands work off, entered on the thread that does it.
#[derive(Clone, Default)]
pub struct Caller {
    principal: Option<Arc<str>>,
    ambient: Option<Ambient>,
    /// The `tracing` subscriber and span current there (feature `tracing`).
    span: crate::trace::Parent,
}

impl Caller {
    /// The current thread's principal and ambient value.
    pub fn current() -> Self {
        Caller {
            principal: current_principal(),
            ambient: ambient(),
            span: crate::trace::Parent::current(),
        }
    }

    /// This caller without its `tracing` span (its subscriber stays), for
    /// a thread that outlives the call that starts it: a span held there
    /// would not end until the thread does.
    pub fn without_span(self) -> Self {
        Caller {
            span: self.span.without_span(),
            ..self
        }
    }

    /// Runs `f` as this caller.
    pub fn enter<T>(self, f: impl FnOnce() -> T) -> T {
        let Caller {
            principal,
            ambient,
            span,
        } = self;
        span.scope(|| with_principal(principal, || with_ambient(ambient, f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_match_globs_and_admin_implies_all() {
        let mut p = AccessPolicy::new();
        p.grant("r", [Permission::Discover], "*").unwrap();
        p.grant("w", [Permission::Register], "team-*").unwrap();
        p.grant("root", [Permission::Admin], "*").unwrap();
        p.assign("alice", "r")
            .assign("alice", "w")
            .assign("bob", "root");
        assert!(p.allows("alice", Permission::Discover, Some("anything")));
        assert!(p.allows("alice", Permission::Register, Some("team-x")));
        assert!(!p.allows("alice", Permission::Register, Some("other")));
        assert!(p.allows("alice", Permission::Register, None));
        assert!(!p.allows("alice", Permission::Create, None));
        assert!(p.allows("bob", Permission::Unregister, Some("x")));
        assert!(!p.allows("carol", Permission::Discover, None));
        assert!(p.grant("x", [Permission::Create], "[").is_err());
        assert!("write".parse::<Permission>().is_err());
    }

    #[test]
    fn the_principal_is_scoped_to_the_call() {
        assert!(current_principal().is_none());
        with_principal(Some("a".into()), || {
            assert_eq!(current_principal().as_deref(), Some("a"));
            with_principal(None, || assert!(current_principal().is_none()));
            assert_eq!(current_principal().as_deref(), Some("a"));
        });
        assert!(current_principal().is_none());
    }

    #[test]
    fn the_caller_travels_to_another_thread() {
        let value: Ambient = Arc::new(7u32);
        let caller = with_principal(Some("a".into()), || {
            with_ambient(Some(value), Caller::current)
        });
        assert!(ambient().is_none());
        let seen = std::thread::spawn(move || {
            caller.enter(|| {
                (
                    current_principal().map(|p| p.to_string()),
                    ambient().and_then(|a| a.downcast_ref::<u32>().copied()),
                )
            })
        })
        .join()
        .unwrap();
        assert_eq!(seen, (Some("a".to_string()), Some(7)));
    }
}
