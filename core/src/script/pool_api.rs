//! Instance pools in scripts: `registry.pool(target, size_or_options)`.
//!
//! | Rhai | does |
//! |---|---|
//! | `registry.pool("name", 4)` | a pool of 4 instances of `name` |
//! | `registry.pool(["cap", ...], #{ size: 2, strategy: "least-busy", retries: 1, cooldown: 5.0 })` | 2 instances of every provider having the capabilities |
//! | `pool.process(x)` | runs a free instance |
//! | `pool.stats()` | array of `#{ provider, calls, failures, state }` |
//! | `pool.close()`, `pool.len` | |

use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map};

use super::api::{fail, Res, ScriptRegistry};
use super::convert::{from_dynamic, to_dynamic};
use super::definitions::described;
use crate::config::Implementation;
use crate::error::Error;
use crate::live::{InstancePool, PoolOptions, PoolTarget};
use crate::query::CapabilityQuery;

/// An instance pool as a script sees it.
#[derive(Clone)]
pub struct ScriptPool {
    pool: InstancePool,
    /// Every provider is native or a script: no helper thread is needed to
    /// keep the calling script's deadline.
    trusted: bool,
}

fn invalid(message: String) -> Box<rhai::EvalAltResult> {
    fail(Error::invalid_input(message))
}

fn target(value: Dynamic) -> Res<PoolTarget> {
    if value.is_string() {
        return Ok(PoolTarget::from(value.into_string().map_err(invalid_type)?));
    }
    if value.is_array() {
        let caps = value
            .into_array()
            .map_err(invalid_type)?
            .into_iter()
            .map(|c| c.into_string().map_err(invalid_type))
            .collect::<Res<Vec<String>>>()?;
        return Ok(PoolTarget::Query(
            CapabilityQuery::new().with_required_capabilities(caps),
        ));
    }
    Err(invalid(format!(
        "a pool's target is a module name or an array of capabilities, not {}",
        value.type_name()
    )))
}

fn invalid_type(t: &str) -> Box<rhai::EvalAltResult> {
    invalid(format!("expected a string, found {t}"))
}

fn options(value: Dynamic) -> Res<PoolOptions> {
    if let Ok(size) = value.as_int() {
        let size = usize::try_from(size).map_err(|_| invalid(format!("bad pool size {size}")))?;
        return Ok(PoolOptions::new(size));
    }
    let Some(map) = value.try_cast::<Map>() else {
        return Err(invalid(
            "a pool's options are a size or a map #{ size, strategy, retries, cooldown, config }"
                .into(),
        ));
    };
    let mut options = PoolOptions::new(4);
    for (key, v) in map {
        match key.as_str() {
            "size" => {
                let n = v
                    .as_int()
                    .map_err(|t| invalid(format!("size must be an integer, not {t}")))?;
                options.size =
                    usize::try_from(n).map_err(|_| invalid(format!("bad pool size {n}")))?;
            }
            "strategy" => {
                let s = v.into_string().map_err(invalid_type)?;
                options.strategy = s.parse().map_err(fail)?;
            }
            "retries" => {
                let n = v
                    .as_int()
                    .map_err(|t| invalid(format!("retries must be an integer, not {t}")))?;
                options.retries =
                    u32::try_from(n).map_err(|_| invalid(format!("bad retries {n}")))?;
            }
            "cooldown" => {
                let secs = v
                    .as_float()
                    .or_else(|_| v.as_int().map(|i| i as f64))
                    .map_err(|t| invalid(format!("cooldown must be seconds, not {t}")))?;
                options.cooldown = Duration::try_from_secs_f64(secs)
                    .map_err(|_| invalid(format!("bad cooldown {secs}")))?;
            }
            "config" => options.config = from_dynamic(v).map_err(fail)?,
            other => return Err(invalid(format!("unknown pool option {other:?}"))),
        }
    }
    Ok(options)
}

fn pool(r: &mut ScriptRegistry, t: Dynamic, o: Dynamic) -> Res<ScriptPool> {
    let pool = r.0.pool(target(t)?, options(o)?).map_err(fail)?;
    let trusted = pool.provider_infos().iter().all(|i| {
        matches!(
            i.implementation(),
            Implementation::Native | Implementation::Rhai(_)
        )
    });
    Ok(ScriptPool { pool, trusted })
}

/// Registers the pool type and `registry.pool`.
pub(crate) fn register(engine: &mut Engine) {
    described(
        "pool(registry: Registry, target: ?, options: ?) -> Pool",
        "An instance pool: `target` a module name or an array of capabilities, `options` a size or `#{ size, strategy, retries, cooldown, config }`.",
        r#"let p = registry.pool(["text"], #{ size: 2, strategy: "least-busy", retries: 1 });"#,
    )
    .register_into_engine(engine, pool);
    engine.register_type_with_name::<ScriptPool>("Pool");
    described(
        "process(pool: Pool, input: ?) -> ?",
        "Runs a free instance of the pool on `input` (retrying on another provider as the options say).",
        r#"let out = registry.pool("slugify", 4).process("Hello World");"#,
    )
    .register_into_engine(
        engine,
        |p: &mut ScriptPool, input: Dynamic| -> Res<Dynamic> {
            let input = from_dynamic(input).map_err(fail)?;
            let pool = p.pool.clone();
            let out = super::engine::run_within_deadline(p.trusted, "a pool", move || {
                pool.process_value(input)
            })?
            .map_err(fail)?;
            Ok(to_dynamic(out))
        },
    );
    described(
        "stats(pool: Pool) -> Array",
        "Each provider's figures: `#{ provider, calls, failures, state }`.",
        "for s in pool.stats() { print(`${s.provider}: ${s.calls}`); }",
    )
    .register_into_engine(engine, |p: &mut ScriptPool| -> Array {
        p.pool
            .stats()
            .into_iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("provider".into(), Dynamic::from(s.provider));
                m.insert("calls".into(), Dynamic::from(s.calls as rhai::INT));
                m.insert("failures".into(), Dynamic::from(s.failures as rhai::INT));
                m.insert("state".into(), Dynamic::from(s.state.to_string()));
                Dynamic::from_map(m)
            })
            .collect()
    });
    described(
        "close(pool: Pool)",
        "Closes every instance of the pool.",
        "pool.close();",
    )
    .register_into_engine(engine, |p: &mut ScriptPool| -> Res<()> {
        p.pool.close().map_err(fail)
    });
    described(
        "get len(pool: Pool) -> int",
        "How many instances the pool holds.",
        "print(pool.len);",
    )
    .register_into_engine(engine, |p: &mut ScriptPool| p.pool.len() as rhai::INT);
}
