//! The tokio entry points (feature `tokio`): module code on the blocking
//! pool as the caller, `Send` futures, and dropping a future cancels the
//! call's token or the run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender};
use module_registry::access::{current_principal, with_principal};
use module_registry::{
    call_cancelled, BoxError, Module, ModuleConfig, ModuleContext, ModuleRegistry, Value, Workflow,
    WorkflowStep,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

#[test]
fn process_async_runs_off_the_async_thread_as_the_caller() {
    let registry = ModuleRegistry::new();
    registry
        .register(ModuleConfig::new().with_name("who").with_handler(|_| {
            Ok(Value::from(format!(
                "{:?} {}",
                std::thread::current().id(),
                current_principal().as_deref().unwrap_or("-")
            )))
        }))
        .unwrap();
    let who = Arc::new(registry.create("who").unwrap());
    let here = format!("{:?}", std::thread::current().id());
    let rt = runtime();
    // The principal is the one current when the call is made.
    let future = with_principal(Some("alice".into()), || who.process_async(()));
    let out = rt.block_on(future).unwrap();
    let text = out.as_str().unwrap().to_string();
    assert!(text.ends_with(" alice"), "{text}");
    assert!(
        !text.starts_with(&here),
        "ran on the runtime's own thread: {text}"
    );
    // The future is Send: it can be spawned.
    let spawned = rt.block_on(async move { tokio::spawn(who.process_async(())).await.unwrap() });
    assert!(spawned.unwrap().as_str().unwrap().ends_with(" -"));
}

#[test]
fn dropping_the_future_cancels_the_call() {
    let (seen_tx, seen_rx): (Sender<&str>, Receiver<&str>) = bounded(4);
    let (started_tx, started_rx) = bounded::<()>(1);
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("patient")
                .with_handler(move |_| {
                    started_tx.send(()).ok();
                    for _ in 0..10_000 {
                        if call_cancelled() {
                            seen_tx.send("cancelled").ok();
                            return Ok(Value::Null);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    seen_tx.send("never cancelled").ok();
                    Ok(Value::Null)
                }),
        )
        .unwrap();
    let patient = Arc::new(registry.create("patient").unwrap());
    let rt = runtime();
    let timed_out = rt.block_on(async {
        let call = patient.process_async(());
        let started = tokio::task::spawn_blocking(move || started_rx.recv().is_ok());
        tokio::select! {
            _ = call => false,
            ok = started => ok.unwrap(),
        }
    });
    assert!(timed_out, "the call ended before it was dropped");
    assert_eq!(
        seen_rx.recv_timeout(Duration::from_secs(30)),
        Ok("cancelled")
    );
    // A later call starts uncancelled.
    let (tx, rx) = bounded(1);
    registry
        .register(
            ModuleConfig::new()
                .with_name("probe")
                .with_handler(move |_| {
                    tx.send(call_cancelled()).ok();
                    Ok(Value::Null)
                }),
        )
        .unwrap();
    let probe = Arc::new(registry.create("probe").unwrap());
    rt.block_on(probe.process_async(())).unwrap();
    assert_eq!(rx.recv(), Ok(false));
    assert!(!call_cancelled());
}

/// Step `a` of the gated workflow: says it started, waits for the test's
/// word, and says when the run shut it down.
struct Gate {
    started: Sender<()>,
    release: Receiver<()>,
    closed: Sender<()>,
}

impl Module for Gate {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        self.started.send(()).ok();
        self.release.recv_timeout(Duration::from_secs(30)).ok();
        Ok(input)
    }
    fn shutdown(&self) -> Result<(), BoxError> {
        self.closed.send(()).ok();
        Ok(())
    }
}

#[test]
fn run_workflow_async_gives_the_result_and_a_dropped_run_starts_no_more_steps() {
    let (started_tx, started_rx) = bounded(1);
    let (release_tx, release_rx) = bounded(1);
    let (closed_tx, closed_rx) = bounded(1);
    let second_calls = Arc::new(AtomicUsize::new(0));
    let counter = second_calls.clone();
    let registry = ModuleRegistry::new();
    registry
        .register(
            ModuleConfig::new()
                .with_name("gate")
                .with_factory(move |_: &ModuleContext| {
                    Ok(Box::new(Gate {
                        started: started_tx.clone(),
                        release: release_rx.clone(),
                        closed: closed_tx.clone(),
                    }) as Box<dyn Module>)
                }),
        )
        .unwrap();
    registry
        .register(
            ModuleConfig::new()
                .with_name("second")
                .with_handler(move |v| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(v)
                }),
        )
        .unwrap();
    let workflow = Workflow::new("gated")
        .step(WorkflowStep::module("a", "gate"))
        .step(WorkflowStep::module("b", "second").after(["a"]));
    let rt = runtime();

    // A whole run.
    release_tx.send(()).unwrap();
    let result = rt
        .block_on(registry.run_workflow_async(&workflow, 7))
        .unwrap();
    assert_eq!(result.output, Value::Int(7));
    started_rx.recv().unwrap();
    closed_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(second_calls.load(Ordering::SeqCst), 1);

    // A run dropped while its first step runs: the second never starts.
    let dropped = rt.block_on(async {
        let run = registry.run_workflow_async(&workflow, 8);
        let rx = started_rx.clone();
        let started = tokio::task::spawn_blocking(move || rx.recv().is_ok());
        tokio::select! {
            _ = run => false,
            ok = started => ok.unwrap(),
        }
    });
    assert!(dropped);
    release_tx.send(()).unwrap();
    // The run shuts its instances down when it ends.
    closed_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(
        second_calls.load(Ordering::SeqCst),
        1,
        "a step started after the run was dropped"
    );
}
