//! A small tokio program using the registry (feature `tokio`): module calls
//! and a workflow awaited from async code, many at once, with module code on
//! tokio's blocking pool, and a call that gives up at a deadline: the module
//! sees `call_cancelled()` and stops.
//!
//! Run: `cargo run -p module-registry --features tokio --example tokio_host`

use std::sync::Arc;
use std::time::{Duration, Instant};

use module_registry::{
    call_cancelled, ModuleConfig, ModuleContext, ModuleRegistry, Value, Workflow, WorkflowStep,
};

#[derive(serde::Deserialize)]
struct Request {
    path: String,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(serde::Serialize)]
struct Response {
    status: u16,
    body: String,
}

/// A handler that works for `delay_ms`, checking between slices whether its
/// caller gave up.
fn handle(request: Request, _: &ModuleContext) -> Result<Response, module_registry::BoxError> {
    let until = Instant::now() + Duration::from_millis(request.delay_ms);
    while Instant::now() < until {
        if call_cancelled() {
            return Err("cancelled by the caller".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let status = if request.path.starts_with("/api/") {
        200
    } else {
        404
    };
    Ok(Response {
        status,
        body: format!("{} {}", status, request.path),
    })
}

#[tokio::main]
async fn main() -> module_registry::Result<()> {
    let registry = ModuleRegistry::builder().native_modules().build()?;
    registry.register(
        ModuleConfig::new()
            .with_name("handler")
            .with_version("1.0.0")
            .typed(handle),
    )?;
    let handler = Arc::new(registry.create("handler")?);

    // Fifty requests at once: the async workers stay free while they run.
    let started = Instant::now();
    let calls: Vec<_> = (0..50)
        .map(|i| {
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let path = if i % 10 == 0 {
                    "/missing".to_string()
                } else {
                    format!("/api/{i}")
                };
                handler
                    .process_async(serde_json::json!({"path": path, "delay_ms": 20}))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        let response = call.await.expect("the task ran")?;
        if response["status"] == Value::Int(200) {
            ok += 1;
        }
    }
    println!(
        "50 requests: {ok} answered 200, in {} ms",
        started.elapsed().as_millis()
    );

    // A deadline: the future is dropped, the module sees the cancellation.
    let slow = handler.process_async(serde_json::json!({"path": "/api/slow", "delay_ms": 10_000}));
    match tokio::time::timeout(Duration::from_millis(50), slow).await {
        Ok(_) => println!("the slow call finished?"),
        Err(_) => println!("the slow call gave up after 50 ms"),
    }

    // A workflow, awaited.
    let workflow = Workflow::new("respond")
        .step(WorkflowStep::module("answer", "handler"))
        .step(WorkflowStep::module("encode", "json-encode").after(["answer"]));
    let result = registry
        .run_workflow_async(&workflow, serde_json::json!({"path": "/api/users"}))
        .await?;
    println!("workflow output: {}", result.output);
    Ok(())
}
