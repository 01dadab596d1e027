//! `assert` and `assert_eq`, in every script engine (script modules,
//! orchestration scripts and the test functions of
//! [`ScriptTests`](super::ScriptTests)).
//!
//! | Rhai | does |
//! |---|---|
//! | `assert(cond)`, `assert(cond, "message")` | fails the call unless `cond` is `true` |
//! | `assert_eq(a, b)`, `assert_eq(a, b, "message")` | fails the call unless `a == b` (Rhai's `==`: `1 == 1.0`) |
//!
//! A failure is an error at the call's position, as a `throw` would be:
//! `assertion failed: message` or `assertion failed: left == right (left: 1,
//! right: 2)`, the values in their debug form.

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext, Position};

use super::definitions::described;

type Res = Result<(), Box<EvalAltResult>>;

fn failed(message: String) -> Box<EvalAltResult> {
    // Rhai gives the error the call's position.
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(message),
        Position::NONE,
    ))
}

fn check(cond: bool, message: &str) -> Res {
    if cond {
        Ok(())
    } else {
        Err(failed(format!("assertion failed: {message}")))
    }
}

/// A value's debug form, as `debug` shows it.
fn shown(ctx: &NativeCallContext, value: &Dynamic) -> String {
    let mut value = value.clone();
    match ctx.call_native_fn_raw("to_debug", true, &mut [&mut value]) {
        Ok(text) if text.is_string() => text.into_string().unwrap_or_default(),
        _ => format!("{value:?}"),
    }
}

/// Whether Rhai's `==` holds (values it cannot compare are not equal).
fn equal(ctx: &NativeCallContext, a: &Dynamic, b: &Dynamic) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    ctx.call_native_fn_raw("==", false, &mut [&mut a, &mut b])
        .ok()
        .and_then(|r| r.as_bool().ok())
        .unwrap_or(false)
}

fn check_eq(ctx: &NativeCallContext, a: &Dynamic, b: &Dynamic, message: &str) -> Res {
    if equal(ctx, a, b) {
        return Ok(());
    }
    Err(failed(format!(
        "assertion failed: {message} (left: {}, right: {})",
        shown(ctx, a),
        shown(ctx, b)
    )))
}

/// Adds `assert` and `assert_eq` to `engine`.
pub(crate) fn register(engine: &mut Engine) {
    described(
        "assert(condition: bool)",
        "Fails the script (a test, in a Rhai test file) when `condition` is false.",
        "assert(1 + 1 == 2);",
    )
    .register_into_engine(engine, |cond: bool| check(cond, "the condition is false"));
    described(
        "assert(condition: bool, message: String)",
        "Fails the script with `message` when `condition` is false.",
        r#"assert(input != (), "an input is needed");"#,
    )
    .register_into_engine(engine, |cond: bool, message: ImmutableString| {
        check(cond, &message)
    });
    described(
        "assert_eq(left: ?, right: ?)",
        "Fails the script, showing both values, when `left != right`.",
        r#"assert_eq(lower_chars("AB"), "ab");"#,
    )
    .register_into_engine(engine, |ctx: NativeCallContext, a: Dynamic, b: Dynamic| {
        check_eq(&ctx, &a, &b, "left == right")
    });
    described(
        "assert_eq(left: ?, right: ?, message: String)",
        "Fails the script with `message`, showing both values, when `left != right`.",
        r#"assert_eq(1 + 1, 2, "arithmetic");"#,
    )
    .register_into_engine(
        engine,
        |ctx: NativeCallContext, a: Dynamic, b: Dynamic, message: ImmutableString| {
            check_eq(&ctx, &a, &b, &message)
        },
    );
}
