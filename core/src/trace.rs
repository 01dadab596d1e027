//! Spans of runs, steps and module calls through the `tracing` facade
//! (feature `tracing`). Nothing is installed here: an embedder adds its own
//! subscriber (or `tracing-opentelemetry`); with none, a span is one
//! relaxed load of `tracing`'s global level and nothing is formatted.
//!
//! The names are a contract (issue 31): spans `run workflow {workflow}`,
//! `run step {step}` and `call module {module}` (the static `tracing` name
//! is the verb and object, `otel.name` the full name), attributes in the
//! `module_registry.` namespace, a failure as `otel.status_code = "ERROR"`
//! with `error.type` and an `exception` event; a failed attempt that is
//! retried is a `retry` event on its step's span.
//!
//! Without the feature every item here is a unit that does nothing, so the
//! places that make spans need no `cfg` of their own.

use std::sync::Arc;

use crate::error::Error;

/// Who a call acts as, asked only when a span is recorded
/// (`access::current_principal`: this module sits below `access`).
pub(crate) type Principal<'a> = &'a dyn Fn() -> Option<Arc<str>>;

#[cfg(feature = "tracing")]
mod on {
    use super::{Error, Principal};
    use tracing::field::Empty;
    use tracing::{dispatcher, Dispatch, Level, Span};

    /// The subscriber and span current on the thread that hands work off,
    /// both entered where the work runs (carried by
    /// [`crate::access::Caller`]): a subscriber set for a scope
    /// (`tracing::subscriber::with_default`) sees the steps run on the
    /// worker pool too. Before any subscriber was ever set it is empty and
    /// costs one relaxed load.
    #[derive(Clone, Default)]
    pub struct Parent(Option<(Dispatch, Span)>);

    impl Parent {
        /// The current subscriber and span, if a subscriber was ever set.
        pub fn current() -> Self {
            if !dispatcher::has_been_set() {
                return Parent(None);
            }
            Parent(Some((
                dispatcher::get_default(Dispatch::clone),
                Span::current(),
            )))
        }

        /// The subscriber alone, for work that outlives the current span
        /// (a watcher's thread): the span ends when its caller leaves it.
        pub fn without_span(self) -> Self {
            Parent(self.0.map(|(dispatch, _)| (dispatch, Span::none())))
        }

        /// Runs `f` with this subscriber, inside this span.
        pub fn scope<T>(self, f: impl FnOnce() -> T) -> T {
            match self.0 {
                Some((dispatch, span)) => dispatcher::with_default(&dispatch, || span.in_scope(f)),
                None => f(),
            }
        }
    }

    fn principal(span: &Span, principal: Principal<'_>) {
        if let Some(p) = principal() {
            span.record("module_registry.principal", &*p);
        }
    }

    fn failed(span: &Span, error: &Error) {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", error.kind().code());
        span.in_scope(|| {
            tracing::event!(name: "exception", Level::ERROR,
                exception.r#type = error.kind().code(),
                exception.message = %error.report())
        });
    }

    /// `call module {module}` of `(name, version, kind)`, entered until it
    /// is dropped.
    pub fn call_module(
        (name, version, kind): (&str, &str, &str),
        who: Principal<'_>,
    ) -> tracing::span::EnteredSpan {
        let span = tracing::info_span!(target: "module_registry", "call module",
            otel.name = %format_args!("call module {name}"),
            module_registry.module.name = name,
            module_registry.module.version = version,
            module_registry.module.kind = kind,
            module_registry.principal = Empty,
            otel.status_code = Empty,
            error.r#type = Empty);
        if !span.is_disabled() {
            principal(&span, who);
        }
        span.entered()
    }

    /// Marks the current `call module` span failed.
    pub fn call_failed(error: &Error) {
        let span = Span::current();
        if !span.is_disabled() {
            failed(&span, error);
        }
    }

    /// `run workflow {workflow}` around `f`; an `Err` marks it failed.
    #[cfg_attr(not(feature = "workflows"), allow(dead_code))]
    pub fn run_workflow<T>(
        workflow: &str,
        who: Principal<'_>,
        f: impl FnOnce() -> crate::Result<T>,
    ) -> crate::Result<T> {
        let span = tracing::info_span!(target: "module_registry", "run workflow",
            otel.name = %format_args!("run workflow {workflow}"),
            module_registry.workflow.name = workflow,
            module_registry.principal = Empty,
            otel.status_code = Empty,
            error.r#type = Empty);
        if span.is_disabled() {
            return f();
        }
        principal(&span, who);
        let out = span.in_scope(f);
        if let Err(e) = &out {
            failed(&span, e);
        }
        out
    }

    /// `run step {step}` around `f`, given `(outcome, attempts, cache, error)`
    /// of what it returns.
    #[cfg_attr(not(feature = "workflows"), allow(dead_code))]
    pub fn run_step<T>(
        step: &str,
        f: impl FnOnce() -> T,
        about: impl FnOnce(&T) -> (&'static str, u32, &'static str, Option<&Error>),
    ) -> T {
        let span = tracing::info_span!(target: "module_registry", "run step",
            otel.name = %format_args!("run step {step}"),
            module_registry.step.id = step,
            module_registry.step.attempts = Empty,
            module_registry.step.cache = Empty,
            module_registry.step.outcome = Empty,
            otel.status_code = Empty,
            error.r#type = Empty);
        if span.is_disabled() {
            return f();
        }
        let out = span.in_scope(f);
        let (outcome, attempts, cache, error) = about(&out);
        span.record("module_registry.step.attempts", attempts);
        span.record("module_registry.step.cache", cache);
        span.record("module_registry.step.outcome", outcome);
        if let (Some(e), "failed") = (error, outcome) {
            failed(&span, e);
        }
        out
    }

    /// A failed attempt of the current step, which will be retried.
    #[cfg_attr(not(feature = "workflows"), allow(dead_code))]
    pub fn retry(attempt: u32, error: &Error) {
        tracing::event!(name: "retry", Level::INFO,
            module_registry.step.attempts = attempt,
            error.r#type = error.kind().code(),
            exception.message = %error.report());
    }
}

#[cfg(not(feature = "tracing"))]
mod on {
    use super::{Error, Principal};

    /// Nothing to carry without the feature.
    #[derive(Clone, Default)]
    pub struct Parent;

    impl Parent {
        /// Nothing.
        pub fn current() -> Self {
            Parent
        }

        /// Nothing.
        pub fn without_span(self) -> Self {
            self
        }

        /// Runs `f`.
        pub fn scope<T>(self, f: impl FnOnce() -> T) -> T {
            f()
        }
    }

    /// What `call_module` gives without the feature: nothing to enter.
    pub struct NoSpan;

    /// Nothing.
    pub fn call_module(_: (&str, &str, &str), _: Principal<'_>) -> NoSpan {
        NoSpan
    }

    /// Nothing.
    pub fn call_failed(_: &Error) {}

    /// Runs `f`.
    #[cfg_attr(not(feature = "workflows"), allow(dead_code))]
    pub fn run_workflow<T>(
        _: &str,
        _: Principal<'_>,
        f: impl FnOnce() -> crate::Result<T>,
    ) -> crate::Result<T> {
        f()
    }

    /// Runs `f`.
    #[cfg_attr(not(feature = "workflows"), allow(dead_code))]
    pub fn run_step<T>(
        _: &str,
        f: impl FnOnce() -> T,
        _: impl FnOnce(&T) -> (&'static str, u32, &'static str, Option<&Error>),
    ) -> T {
        f()
    }

    /// Nothing.
    #[cfg_attr(not(feature = "workflows"), allow(dead_code))]
    pub fn retry(_: u32, _: &Error) {}
}

pub(crate) use on::*;
