//! The audit trail: one [`AuditEvent`] per register, unregister, create and
//! failure, kept in a bounded in-memory ring.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::ModuleKind;
use crate::error::Error;
use crate::registry::ModuleInfo;

/// How many events a registry keeps by default (the oldest are dropped first).
pub const DEFAULT_AUDIT_CAPACITY: usize = 10_000;

/// The principal of operations made on the registry directly.
pub const SYSTEM_PRINCIPAL: &str = "system";

/// How an audited operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It succeeded.
    Ok,
    /// It was refused for lack of permission.
    Denied,
    /// It failed.
    Error,
}

impl Outcome {
    /// `"ok"`, `"denied"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audited operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the registry's sequence of events (starts at 1, never reused).
    pub sequence: u64,
    /// When it happened.
    pub time: SystemTime,
    /// The operation (`register`, `unregister`, `create`, `process`, ...).
    pub operation: String,
    /// Who did it (`system` for direct calls).
    pub principal: String,
    /// Module or plugin.
    pub kind: ModuleKind,
    /// The module concerned.
    pub module: String,
    /// Its version, when known.
    pub version: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The error message for failures.
    pub detail: Option<String>,
}

/// The bounded log behind [`ModuleRegistry::audit_events`](crate::ModuleRegistry::audit_events).
#[derive(Debug)]
pub struct AuditLog {
    ring: Mutex<Ring>,
    sequence: AtomicU64,
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<AuditEvent>,
    capacity: usize,
}

impl Default for AuditLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_AUDIT_CAPACITY)
    }
}

impl AuditLog {
    /// A log keeping at most `capacity` events.
    pub fn with_capacity(capacity: usize) -> Self {
        AuditLog {
            ring: Mutex::new(Ring {
                events: VecDeque::new(),
                capacity,
            }),
            sequence: AtomicU64::new(0),
        }
    }

    /// Change how many events are kept (dropping the oldest if needed).
    pub fn set_capacity(&self, capacity: usize) {
        let mut ring = self.ring.lock();
        ring.capacity = capacity;
        while ring.events.len() > capacity {
            ring.events.pop_front();
        }
    }

    /// How many events are kept at most.
    pub fn capacity(&self) -> usize {
        self.ring.lock().capacity
    }

    /// Appends an event, dropping the oldest past capacity.
    pub fn push(
        &self,
        operation: &str,
        kind: ModuleKind,
        module: &str,
        version: Option<String>,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        let mut ring = self.ring.lock();
        if ring.capacity == 0 {
            self.sequence.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let event = AuditEvent {
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            time: SystemTime::now(),
            operation: operation.to_string(),
            principal: SYSTEM_PRINCIPAL.to_string(),
            kind,
            module: module.to_string(),
            version,
            outcome,
            detail,
        };
        if ring.events.len() >= ring.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event);
    }

    pub(crate) fn record(
        &self,
        outcome: Outcome,
        operation: &str,
        info: &ModuleInfo,
        detail: Option<String>,
    ) {
        self.push(
            operation,
            info.kind(),
            info.name(),
            Some(info.version().to_string()),
            outcome,
            detail,
        );
    }

    pub(crate) fn record_error(&self, operation: &str, info: &ModuleInfo, error: &Error) {
        self.record(Outcome::Error, operation, info, Some(error.to_string()));
    }

    /// A copy of the events kept, oldest first.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.ring.lock().events.iter().cloned().collect()
    }

    /// How many events were ever recorded (including those dropped).
    pub fn total(&self) -> u64 {
        self.sequence.load(Ordering::Relaxed)
    }

    /// Forget every kept event.
    pub fn clear(&self) {
        self.ring.lock().events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_ordered() {
        let log = AuditLog::with_capacity(3);
        for i in 0..5 {
            log.push(
                "register",
                ModuleKind::Module,
                &format!("m{i}"),
                None,
                Outcome::Ok,
                None,
            );
        }
        let events = log.events();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events.iter().map(|e| e.module.as_str()).collect::<Vec<_>>(),
            ["m2", "m3", "m4"]
        );
        assert_eq!(events[0].sequence, 3);
        assert_eq!(log.total(), 5);
        log.set_capacity(1);
        assert_eq!(log.events().len(), 1);
    }
}
