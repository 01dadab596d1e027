//! How scripts see opaque values: a Rhai custom type (`Opaque`) a script can
//! hold, store, compare with another opaque value (identity) and pass on
//! unchanged (the very same object comes back), but never read. Using one as
//! text (`to_string`, `${...}`, `print`, `debug`, `+` with a string or char)
//! or as a number (arithmetic, comparisons with numbers, text or bools) ends
//! the call with an error naming the value's type (`Python numpy.ndarray`),
//! never placeholder text. `x.type_name` gives that name to a script.
//!
//! Rhai formats a value in string interpolation with the type's `to_string`
//! and ignores that function's error there (it writes the type's name
//! instead). So every misuse is also recorded for the script call running
//! on this thread: the call ends at its next progress check, a value leaving
//! the script while one is recorded (its result, the input it hands to a
//! module) is refused, and the call's error is the recorded misuse, at the
//! position where it happened. Recording is cleared around each entry into
//! Rhai ([`isolated`]), so a nested call's misuse is that call's alone.

use std::cell::{Cell, RefCell};

use rhai::{
    Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext, Position, FLOAT, INT,
};

use super::convert::OpaqueHandle;
use super::definitions::{described, signature};
use crate::error::Error;

/// The value a misuse ends a script with; recognised when mapping errors.
pub(crate) const MISUSE_TOKEN: &str = "module-registry: opaque value used as data";

/// The first misuse of an opaque value in the running call.
#[derive(Clone)]
pub(crate) struct Misuse {
    message: String,
    position: Position,
}

thread_local! {
    static MISUSE: RefCell<Option<Misuse>> = const { RefCell::new(None) };
    /// Whether `MISUSE` is set (read on the progress path).
    static PENDING: Cell<bool> = const { Cell::new(false) };
}

impl Misuse {
    /// The misuse as the error of script `label`.
    pub(crate) fn into_error(self, label: &str) -> Error {
        Error::script(
            label.to_string(),
            self.position.line(),
            self.position.position(),
            self.message,
        )
    }

    /// The message with its place in the script, as a value's conversion
    /// error gives it.
    fn located(&self) -> String {
        match (self.position.line(), self.position.position()) {
            (Some(l), Some(c)) => format!("{} (line {l}, column {c})", self.message),
            (Some(l), None) => format!("{} (line {l})", self.message),
            _ => self.message.clone(),
        }
    }
}

fn record(message: String, position: Position) {
    MISUSE.with(|m| {
        let mut m = m.borrow_mut();
        if m.is_none() {
            *m = Some(Misuse { message, position });
        }
    });
    PENDING.with(|p| p.set(true));
}

/// Whether the running call has misused an opaque value (cheap).
#[inline]
pub(crate) fn pending() -> bool {
    PENDING.with(Cell::get)
}

/// Takes the running call's misuse, if any.
pub(crate) fn take() -> Option<Misuse> {
    PENDING.with(|p| p.set(false));
    MISUSE.with(|m| m.borrow_mut().take())
}

/// The error a value leaving the script gets while a misuse is recorded.
pub(crate) fn refused() -> Option<Error> {
    if !pending() {
        return None;
    }
    MISUSE.with(|m| {
        m.borrow()
            .as_ref()
            .map(|m| Error::invalid_input(m.located()))
    })
}

/// Runs `f` with no misuse recorded, restoring the caller's record after.
pub(crate) fn isolated<T>(f: impl FnOnce() -> T) -> T {
    let outer = take();
    struct Restore(Option<Misuse>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let outer = self.0.take();
            PENDING.with(|p| p.set(outer.is_some()));
            MISUSE.with(|m| *m.borrow_mut() = outer);
        }
    }
    let _restore = Restore(outer);
    f()
}

/// A Rhai error message about the `Opaque` type (a function or property it
/// has not, a type mismatch) in the words scripts see: Rhai names the Rust
/// type in some of them.
pub(crate) fn explain(message: String) -> String {
    let rust_name = std::any::type_name::<OpaqueHandle>();
    let message = message.replace(rust_name, "Opaque");
    if message.contains("Opaque") {
        format!("{message} (an Opaque value is a host object a script can pass on unchanged but cannot read; x.type_name names its type)")
    } else {
        message
    }
}

const TEXT: &str = "text (a str was expected)";
const NUMBER: &str = "a number (an int or a float was expected)";
const COMPARED: &str = "a value to compare (a str, number or bool was expected)";

type Out = Result<Dynamic, Box<EvalAltResult>>;

/// Records the misuse of `o` and ends the script.
fn refuse(ctx: &NativeCallContext, o: &OpaqueHandle, usage: &str) -> Box<EvalAltResult> {
    let pos = ctx.call_position();
    record(
        format!(
            "an opaque value ({}) was used as {usage}; a script can pass an opaque value on unchanged but cannot read it",
            o.0.type_name()
        ),
        pos,
    );
    Box::new(EvalAltResult::ErrorTerminated(
        Dynamic::from(MISUSE_TOKEN),
        pos,
    ))
}

/// Registers `op` for `(T, Opaque)` and `(Opaque, T)` as a misuse
/// (`$name` is `T`'s Rhai name, for the definitions).
macro_rules! refuse_with {
    ($engine:ident, $usage:expr, [$($op:literal),*], $t:ty, $name:literal) => {
        $(
            signature(concat!($op, "(value: ", $name, ", opaque: Opaque) -> ?"))
                .register_into_engine($engine, |ctx: NativeCallContext, _: $t, o: OpaqueHandle| -> Out {
                    Err(refuse(&ctx, &o, $usage))
                });
            signature(concat!($op, "(opaque: Opaque, value: ", $name, ") -> ?"))
                .register_into_engine($engine, |ctx: NativeCallContext, o: OpaqueHandle, _: $t| -> Out {
                    Err(refuse(&ctx, &o, $usage))
                });
        )*
    };
}

/// Registers the `Opaque` type and what scripts may (and may not) do with it.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<OpaqueHandle>("Opaque");
    described(
        "get type_name(opaque: Opaque) -> String",
        "The host type of an opaque value (one passed on unchanged: a Python or Rust object).",
        "print(input.type_name);",
    )
    .register_into_engine(engine, |o: &mut OpaqueHandle| o.0.type_name().to_string());
    for name in ["to_string", "to_debug", "print", "debug"] {
        signature(&format!("{name}(opaque: Opaque) -> ?")).register_into_engine(
            engine,
            |ctx: NativeCallContext, o: &mut OpaqueHandle| -> Out { Err(refuse(&ctx, o, TEXT)) },
        );
    }
    signature("-(opaque: Opaque) -> ?")
        .register_into_engine(engine, |ctx: NativeCallContext, o: OpaqueHandle| -> Out {
            Err(refuse(&ctx, &o, NUMBER))
        });
    for name in ["+=", "append"] {
        signature(&format!("{name}(text: String, opaque: Opaque) -> ?")).register_into_engine(
            engine,
            |ctx: NativeCallContext, _: &mut ImmutableString, o: OpaqueHandle| -> Out {
                Err(refuse(&ctx, &o, TEXT))
            },
        );
    }
    refuse_with!(engine, TEXT, ["+"], ImmutableString, "String");
    refuse_with!(engine, TEXT, ["+"], char, "char");
    refuse_with!(engine, NUMBER, ["+", "-", "*", "/", "%", "**"], INT, "int");
    refuse_with!(
        engine,
        NUMBER,
        ["+", "-", "*", "/", "%", "**"],
        FLOAT,
        "float"
    );
    refuse_with!(
        engine,
        COMPARED,
        ["==", "!=", "<", "<=", ">", ">="],
        INT,
        "int"
    );
    refuse_with!(
        engine,
        COMPARED,
        ["==", "!=", "<", "<=", ">", ">="],
        FLOAT,
        "float"
    );
    refuse_with!(
        engine,
        COMPARED,
        ["==", "!=", "<", "<=", ">", ">="],
        ImmutableString,
        "String"
    );
    refuse_with!(
        engine,
        COMPARED,
        ["==", "!=", "<", "<=", ">", ">="],
        char,
        "char"
    );
    refuse_with!(
        engine,
        COMPARED,
        ["==", "!=", "<", "<=", ">", ">="],
        bool,
        "bool"
    );
    // Rhai's own `to_json` writes an opaque value as its Rust type's name
    // (and a NaN as `null`): through the core's JSON form instead, whose
    // errors name what has none.
    described(
        "to_json(map: Map) -> String",
        "The map as JSON text, through the registry's JSON form (an error names a value JSON has no form for).",
        "print(#{ a: 1 }.to_json());",
    )
    .register_into_engine(
        engine,
        |ctx: NativeCallContext, map: &mut rhai::Map| -> Result<String, Box<EvalAltResult>> {
            let failed = |e: Error| -> Box<EvalAltResult> {
                Box::new(EvalAltResult::ErrorRuntime(
                    e.to_string().into(),
                    ctx.call_position(),
                ))
            };
            let value =
                super::convert::from_dynamic(Dynamic::from_map(map.clone())).map_err(failed)?;
            let json = value.to_json().map_err(failed)?;
            serde_json::to_string(&json).map_err(|e| failed(e.into()))
        },
    );
    // Two opaque values are equal when they are the same object.
    signature("==(a: Opaque, b: Opaque) -> bool")
        .register_into_engine(engine, |a: OpaqueHandle, b: OpaqueHandle| a.0.ptr_eq(&b.0));
    signature("!=(a: Opaque, b: Opaque) -> bool")
        .register_into_engine(engine, |a: OpaqueHandle, b: OpaqueHandle| !a.0.ptr_eq(&b.0));
}
