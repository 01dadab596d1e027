//! What runs a planned step: one instance, or a pool of them (`pool = N`);
//! built together for a run or a batch, closed together after.

use std::sync::Arc;
use std::time::Duration;

use super::plan::{step_error, Plan};
use crate::error::{Error, Result};
use crate::instance::ModuleInstance;
use crate::live::{InstancePool, PoolOptions};
use crate::registry::ModuleRegistry;
use crate::threads::{spawn, MODULE_THREAD_STACK};
use crate::value::Value;

/// The instance (or pool) a step runs on.
#[derive(Clone)]
pub(crate) enum StepInstance {
    One(Arc<ModuleInstance>),
    Pool(InstancePool),
}

impl StepInstance {
    fn process(&self, input: Value) -> Result<Value> {
        match self {
            StepInstance::One(instance) => instance.process_value(input),
            StepInstance::Pool(pool) => pool.process_value(input),
        }
    }

    pub(crate) fn close(&self) {
        match self {
            StepInstance::One(instance) => {
                let _ = instance.close();
            }
            StepInstance::Pool(pool) => {
                let _ = pool.close();
            }
        }
    }
}

/// Builds what each step runs on; closes what was built if one fails.
pub(crate) fn instantiate(registry: &ModuleRegistry, plan: &Plan) -> Result<Vec<StepInstance>> {
    let mut out: Vec<StepInstance> = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let built = if step.pool > 1 {
            registry
                .pool(
                    step.info.clone(),
                    PoolOptions {
                        dependency_configs: step.dependency_configs.clone(),
                        ..PoolOptions::new(step.pool).config(step.config.clone())
                    },
                )
                .map(StepInstance::Pool)
        } else {
            registry
                .instantiate_with_dependencies(
                    step.info.clone(),
                    step.config.clone(),
                    &step.dependency_configs,
                )
                .map(|i| StepInstance::One(Arc::new(i)))
        };
        match built {
            Ok(i) => out.push(i),
            Err(e) => {
                for built in out.iter().rev() {
                    built.close();
                }
                return Err(step_error(
                    &plan.name,
                    &step.id,
                    format!("cannot create {}", step.info),
                    Some(e),
                ));
            }
        }
    }
    Ok(out)
}

/// One call of `instance`, abandoned at `timeout` if it has not returned;
/// an abandoned call's token is cancelled, so module code polling
/// [`call_cancelled`](crate::call_cancelled) can stop.
pub(crate) fn call(
    instance: &StepInstance,
    input: Value,
    timeout: Option<Duration>,
    id: &str,
) -> Result<Value> {
    let Some(timeout) = timeout else {
        return instance.process(input);
    };
    let (tx, rx) = crossbeam_channel::bounded(1);
    let inst = instance.clone();
    let caller = crate::access::Caller::current();
    let token = crate::cancel::CancelToken::new();
    let call_token = token.clone();
    spawn(
        format!("module-registry-step-{id}"),
        MODULE_THREAD_STACK,
        move || {
            let result = caller
                .enter(|| crate::cancel::with_call_token(&call_token, || inst.process(input)));
            let _ = tx.send(result);
        },
    )
    .map_err(|e| Error::invalid_input(format!("cannot start a thread for step {id}: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => {
            token.cancel();
            Err(Error::Timeout {
                after_ms: timeout.as_millis() as u64,
            })
        }
    }
}
