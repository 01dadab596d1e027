//! Streaming batches: `iter_workflow_batch` and `WorkflowBatch`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use module_registry::{
    AccessPolicy, Error, Module, ModuleConfig, ModuleRegistry, Permission, Value, Workflow,
    WorkflowStep,
};

fn registry() -> ModuleRegistry {
    let r = ModuleRegistry::new();
    r.register(
        ModuleConfig::new()
            .with_name("double")
            .with_handler(|v| Ok(Value::Int(v.as_int().unwrap_or(0) * 2))),
    )
    .unwrap();
    r.register(
        ModuleConfig::new()
            .with_name("odd-only")
            .with_handler(|v| match v.as_int() {
                Some(n) if n % 2 == 1 => Ok(Value::Int(n)),
                _ => Err(Error::invalid_input("even").into()),
            }),
    )
    .unwrap();
    r
}

/// Counts the inputs an iterator has handed out.
fn counted(taken: &Rc<Cell<usize>>) -> impl Iterator<Item = Value> {
    let taken = taken.clone();
    (0i64..).map(move |i| {
        taken.set(taken.get() + 1);
        Value::Int(i)
    })
}

#[test]
fn an_endless_input_is_taken_a_window_at_a_time() {
    let r = registry();
    let taken = Rc::new(Cell::new(0));
    let wf = Workflow::pipeline("d", ["double"]);
    let firsts: Vec<Value> = r
        .iter_workflow_batch(&wf, counted(&taken))
        .unwrap()
        .take(3)
        .map(|o| o.map(|r| r.output))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(firsts, [Value::Int(0), Value::Int(2), Value::Int(4)]);
    assert_eq!(
        taken.get(),
        3,
        "a step without a pool runs one input at a time"
    );

    // A pooled step runs a window as wide as its pool (times a few per thread).
    let pooled = Workflow::new("p").step(WorkflowStep::module("d", "double").pool(4));
    let taken = Rc::new(Cell::new(0));
    let mut iter = r.iter_workflow_batch(&pooled, counted(&taken)).unwrap();
    assert_eq!(iter.batch().width(), 4);
    let outputs: Vec<Value> = iter.by_ref().take(100).map(|o| o.unwrap().output).collect();
    assert_eq!(
        outputs,
        (0..100).map(|i| Value::Int(i * 2)).collect::<Vec<_>>()
    );
    assert!(
        taken.get() >= 100 && taken.get() <= 100 + 64,
        "taken {}",
        taken.get()
    );
}

#[test]
fn the_iterator_stops_after_the_first_failure_unless_told_to_keep_going() {
    let r = registry();
    let wf = Workflow::pipeline("odd", ["odd-only"]);
    let outcomes: Vec<_> = r
        .iter_workflow_batch(&wf, [1i64, 3, 4, 5])
        .unwrap()
        .collect();
    assert_eq!(outcomes.len(), 3, "ends with the failed input");
    let err = outcomes[2].as_ref().unwrap_err();
    assert!(err.report().contains("input #2: "), "{err}");
    assert!(!err.report().contains("input #2: input #2"), "{err}");

    let all: Vec<_> = r
        .iter_workflow_batch(&wf, [1i64, 2, 3, 4])
        .unwrap()
        .keep_going(true)
        .collect();
    let failed: Vec<usize> = (0..4).filter(|&i| all[i].is_err()).collect();
    assert_eq!(failed, [1, 3]);
    assert_eq!(all[2].as_ref().unwrap().output, Value::Int(3));

    // A workflow that cannot be planned fails before any input is taken.
    let missing = Workflow::pipeline("missing", ["no-such-module"]);
    assert!(r.iter_workflow_batch(&missing, [1i64]).is_err());
}

struct Flagged(Arc<AtomicBool>);

impl Module for Flagged {
    fn process(&self, input: Value) -> Result<Value, module_registry::BoxError> {
        Ok(input)
    }
    fn shutdown(&self) -> Result<(), module_registry::BoxError> {
        self.0.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn one_set_of_instances_closed_when_the_iterator_is_dropped() {
    let r = ModuleRegistry::new();
    let (built, closed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let (b, c) = (built.clone(), closed.clone());
    r.register(
        ModuleConfig::new()
            .with_name("flagged")
            .with_factory(move |_| {
                b.fetch_add(1, Ordering::SeqCst);
                Ok(Box::new(Flagged(c.clone())) as Box<dyn Module>)
            }),
    )
    .unwrap();
    let wf = Workflow::pipeline("f", ["flagged"]);
    let mut iter = r
        .iter_workflow_batch(&wf, (0i64..).map(Value::Int))
        .unwrap();
    for _ in 0..50 {
        iter.next().unwrap().unwrap();
    }
    assert_eq!(
        built.load(Ordering::SeqCst),
        1,
        "one instance for the whole batch"
    );
    assert!(!closed.load(Ordering::SeqCst));
    drop(iter);
    assert!(
        closed.load(Ordering::SeqCst),
        "dropping the iterator closes its instances"
    );
    let runs = r
        .audit_events()
        .iter()
        .filter(|e| e.operation == "run_workflow")
        .count();
    assert_eq!(runs, 1, "the batch is recorded once");
}

#[test]
fn a_workflow_batch_runs_windows_numbered_from_their_first_index() {
    let r = registry();
    let wf = Workflow::pipeline("odd", ["odd-only"]);
    let mut batch = r.start_workflow_batch(&wf, true, None).unwrap();
    let first = batch
        .run(vec![Value::Int(1), Value::Int(3)], 0, |_, _| {})
        .unwrap();
    assert!(first.iter().all(Result::is_ok));
    let second = batch
        .run(vec![Value::Int(5), Value::Int(6)], 2, |_, _| {})
        .unwrap();
    let err = second[1].as_ref().unwrap_err();
    assert!(err.report().contains("input #3: "), "{err}");
    assert!(!batch.stopped(), "keep_going: the batch goes on");
    batch.finish();
    assert!(batch.stopped());
    assert!(batch
        .run(vec![Value::Int(7)], 4, |_, _| {})
        .unwrap()
        .is_empty());
}

#[test]
fn a_views_batch_runs_as_its_principal_on_every_window() {
    let r = registry();
    r.register(ModuleConfig::new().with_name("who").with_handler(|_| {
        Ok(Value::from(
            module_registry::access::current_principal()
                .map_or("system".to_string(), |p| p.to_string()),
        ))
    }))
    .unwrap();
    let mut policy = AccessPolicy::new();
    policy
        .grant("user", [Permission::Discover, Permission::Create], "*")
        .unwrap();
    policy.assign("alice", "user");
    r.set_policy(Some(policy)).unwrap();
    let wf = Workflow::pipeline("w", ["who"]);
    let view = r.as_principal("alice");
    let iter = view
        .iter_workflow_batch(&wf, (0i64..5).map(Value::Int))
        .unwrap();
    // Advanced outside the view's call: each run still acts as alice.
    let seen: Vec<Value> = iter.map(|o| o.unwrap().output).collect();
    assert_eq!(seen, vec![Value::from("alice"); 5]);
    let nobody = r.as_principal("mallory");
    assert!(
        nobody.iter_workflow_batch(&wf, [1i64]).is_err(),
        "no grant, no batch"
    );
}
