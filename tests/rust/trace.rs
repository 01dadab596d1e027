//! Spans through the `tracing` facade (feature `tracing`): names,
//! attributes, parents (across the workflow's worker pool), failures and
//! retries, read by a recording subscriber set for each test's scope.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use module_registry::{Error, ModuleConfig, ModuleRegistry, Value, Workflow, WorkflowStep};
use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::with_default;
use tracing::{Event, Metadata, Subscriber};

/// Ids unique across every recorder of the process (tests run at once).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The spans entered on this thread, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Debug)]
struct SpanRec {
    id: u64,
    name: &'static str,
    parent: Option<u64>,
    fields: HashMap<String, String>,
    events: Vec<EventRec>,
    meta: &'static Metadata<'static>,
}

#[derive(Clone, Debug)]
struct EventRec {
    name: &'static str,
    fields: HashMap<String, String>,
}

impl SpanRec {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

/// Keeps every span and event it is shown.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<HashMap<u64, SpanRec>>>);

impl Recorder {
    fn current(&self) -> Option<u64> {
        let spans = self.0.lock();
        STACK.with(|s| {
            s.borrow()
                .iter()
                .rev()
                .find(|id| spans.contains_key(id))
                .copied()
        })
    }

    fn spans(&self) -> Vec<SpanRec> {
        let mut all: Vec<SpanRec> = self.0.lock().values().cloned().collect();
        all.sort_by_key(|s| s.id);
        all
    }

    fn named(&self, otel_name: &str) -> Vec<SpanRec> {
        self.spans()
            .into_iter()
            .filter(|s| s.field("otel.name") == Some(otel_name))
            .collect()
    }

    fn one(&self, otel_name: &str) -> SpanRec {
        let found = self.named(otel_name);
        assert_eq!(found.len(), 1, "{otel_name}: {:#?}", self.spans());
        found.into_iter().next().unwrap()
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let parent = if attrs.is_root() {
            None
        } else if let Some(p) = attrs.parent() {
            Some(p.into_u64())
        } else {
            self.current()
        };
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().insert(
            id,
            SpanRec {
                id,
                name: attrs.metadata().name(),
                parent,
                fields,
                events: Vec::new(),
                meta: attrs.metadata(),
            },
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        if let Some(s) = self.0.lock().get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut s.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let parent = event.parent().map(Id::into_u64).or_else(|| {
            if event.is_root() {
                None
            } else {
                self.current()
            }
        });
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        if let Some(span) = parent.and_then(|p| self.0.lock().get_mut(&p).map(|_| p)) {
            let name = event.metadata().name();
            let mut spans = self.0.lock();
            spans
                .get_mut(&span)
                .unwrap()
                .events
                .push(EventRec { name, fields });
        }
    }

    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(at) = s.iter().rposition(|id| *id == span.into_u64()) {
                s.remove(at);
            }
        });
    }

    fn current_span(&self) -> tracing_core::span::Current {
        match self.current() {
            Some(id) => {
                let meta = self.0.lock()[&id].meta;
                tracing_core::span::Current::new(Id::from_u64(id), meta)
            }
            None => tracing_core::span::Current::none(),
        }
    }
}

fn registry() -> ModuleRegistry {
    let r = ModuleRegistry::new();
    r.register(
        ModuleConfig::new()
            .with_name("add-one")
            .with_version("1.2.0")
            .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) + 1))),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("boom")
            .with_handler(|_| Err(Error::invalid_input("always fails").into())),
    )
    .unwrap();
    r
}

#[test]
fn a_run_is_one_span_with_a_child_per_step_under_the_callers_span() {
    let r = registry();
    // Two independent steps run on the worker pool's threads, then a third.
    let wf = Workflow::new("traced")
        .step(WorkflowStep::module("a", "add-one").after([]))
        .step(WorkflowStep::module("b", "add-one").after([]))
        .step(WorkflowStep::module("c", "add-one").after(["a", "b"]));
    let rec = Recorder::default();
    with_default(rec.clone(), || {
        tracing::info_span!("caller").in_scope(|| r.run_workflow(&wf, 1i64).unwrap());
    });
    let caller = rec
        .spans()
        .into_iter()
        .find(|s| s.name == "caller")
        .unwrap();
    let run = rec.one("run workflow traced");
    assert_eq!(run.name, "run workflow");
    assert_eq!(run.parent, Some(caller.id));
    assert_eq!(run.field("module_registry.workflow.name"), Some("traced"));
    assert_eq!(run.field("otel.status_code"), None);
    for step in ["a", "b", "c"] {
        let span = rec.one(&format!("run step {step}"));
        assert_eq!(span.parent, Some(run.id), "{step}");
        assert_eq!(span.field("module_registry.step.id"), Some(step));
        assert_eq!(span.field("module_registry.step.outcome"), Some("ok"));
        assert_eq!(span.field("module_registry.step.attempts"), Some("1"));
        assert_eq!(span.field("module_registry.step.cache"), Some("off"));
        let calls: Vec<SpanRec> = rec
            .named("call module add-one")
            .into_iter()
            .filter(|c| c.parent == Some(span.id))
            .collect();
        assert_eq!(calls.len(), 1, "{step}");
        assert_eq!(
            calls[0].field("module_registry.module.name"),
            Some("add-one")
        );
        assert_eq!(
            calls[0].field("module_registry.module.version"),
            Some("1.2.0")
        );
        assert_eq!(
            calls[0].field("module_registry.module.kind"),
            Some("module")
        );
    }
    // Nothing else: one run, three steps, three calls (and the caller).
    assert_eq!(rec.spans().len(), 1 + 1 + 3 + 3);
}

#[test]
fn a_failing_step_and_its_run_are_errors_with_the_modules_error() {
    let r = registry();
    let wf = Workflow::new("failing")
        .step(WorkflowStep::module("first", "add-one"))
        .step(WorkflowStep::module("bad", "boom"));
    let rec = Recorder::default();
    let err = with_default(rec.clone(), || r.run_workflow(&wf, 1i64).unwrap_err());
    let run = rec.one("run workflow failing");
    assert_eq!(run.parent, None);
    assert_eq!(run.field("otel.status_code"), Some("ERROR"));
    assert_eq!(run.field("error.type"), Some(err.kind().code()));
    let bad = rec.one("run step bad");
    assert_eq!(bad.parent, Some(run.id));
    assert_eq!(bad.field("otel.status_code"), Some("ERROR"));
    assert_eq!(bad.field("module_registry.step.outcome"), Some("failed"));
    assert!(bad.field("error.type").is_some());
    let exception = bad.events.iter().find(|e| e.name == "exception").unwrap();
    assert!(
        exception.fields["exception.message"].contains("always fails"),
        "{exception:?}"
    );
    let first = rec.one("run step first");
    assert_eq!(first.field("otel.status_code"), None);
    // The module call itself failed too.
    let call = rec.one("call module boom");
    assert_eq!(call.parent, Some(bad.id));
    assert_eq!(call.field("otel.status_code"), Some("ERROR"));
}

#[test]
fn retries_are_events_on_one_step_span() {
    let r = ModuleRegistry::new();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    r.register(
        ModuleConfig::new()
            .with_name("flaky")
            .with_handler(move |v| {
                if c.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Error::invalid_input("not yet").into())
                } else {
                    Ok(v)
                }
            }),
    )
    .unwrap();
    let wf = Workflow::new("retry").step(WorkflowStep::module("f", "flaky").retries(2));
    let rec = Recorder::default();
    with_default(rec.clone(), || r.run_workflow(&wf, "x").unwrap());
    let step = rec.one("run step f");
    assert_eq!(step.field("module_registry.step.attempts"), Some("3"));
    assert_eq!(step.field("module_registry.step.outcome"), Some("ok"));
    assert_eq!(step.field("otel.status_code"), None);
    let retries: Vec<&EventRec> = step.events.iter().filter(|e| e.name == "retry").collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0].fields["module_registry.step.attempts"], "1");
    assert!(retries[1].fields["exception.message"].contains("not yet"));
    // One call span per attempt, all under the one step span.
    let attempts = rec.named("call module flaky");
    assert_eq!(attempts.len(), 3);
    assert!(attempts.iter().all(|a| a.parent == Some(step.id)));
}

#[test]
fn a_direct_call_is_a_call_module_span_with_the_principal() {
    let r = registry();
    let rec = Recorder::default();
    with_default(rec.clone(), || {
        let instance = r.create("add-one").unwrap();
        assert_eq!(instance.process(1i64).unwrap(), Value::Int(2));
        let boom = r.as_principal("alice").create("boom").unwrap();
        module_registry::access::with_principal(Some("alice".into()), || boom.process(1i64))
            .unwrap_err();
    });
    let ok = rec.one("call module add-one");
    assert_eq!(ok.name, "call module");
    assert_eq!(ok.field("module_registry.principal"), None);
    assert_eq!(ok.field("otel.status_code"), None);
    let failed = rec.one("call module boom");
    assert_eq!(failed.field("module_registry.principal"), Some("alice"));
    assert_eq!(failed.field("otel.status_code"), Some("ERROR"));
    assert!(failed.events.iter().any(|e| e.name == "exception"));
}

#[test]
fn without_a_subscriber_runs_are_unchanged() {
    let r = registry();
    let wf = Workflow::new("plain").step(WorkflowStep::module("a", "add-one"));
    assert_eq!(r.run_workflow(&wf, 1i64).unwrap().output, Value::Int(2));
}

#[test]
fn each_input_of_a_batch_is_a_run_under_the_callers_span() {
    let r = registry();
    let wf = Workflow::new("batched")
        .step(WorkflowStep::module("a", "add-one"))
        .step(WorkflowStep::module("b", "add-one"));
    let rec = Recorder::default();
    let results = with_default(rec.clone(), || {
        tracing::info_span!("caller")
            .in_scope(|| r.run_workflow_batch(&wf, [1i64, 2, 3, 4]).unwrap())
    });
    assert_eq!(results.len(), 4);
    let caller = rec
        .spans()
        .into_iter()
        .find(|s| s.name == "caller")
        .unwrap();
    let runs = rec.named("run workflow batched");
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|run| run.parent == Some(caller.id)));
    let steps = rec.named("run step a");
    assert_eq!(steps.len(), 4);
    let run_ids: Vec<u64> = runs.iter().map(|run| run.id).collect();
    assert!(steps
        .iter()
        .all(|s| s.parent.is_some_and(|p| run_ids.contains(&p))));
}
