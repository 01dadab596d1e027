//! Every thread that runs module code is started here, by [`spawn`] or
//! [`spawn_scoped`], with the stack it needs: Rust's default for spawned
//! threads (2 MiB) is far less than the main thread a caller usually runs
//! on, and module code (a Python callable, a script, a value being
//! converted) recurses as deep as its caller's thread allows.
//!
//! Scripts are the one exception to "the thread's stack is enough": a
//! script call needs what its limits allow (`ScriptLimits::stack_bytes`),
//! which can be more than any thread has, so every entry into Rhai runs on a
//! stack sized by its limits (`script::stack`), whatever thread it is on.
//!
//! The workflow pool, timed steps and batches, the script watcher, the
//! script helpers that run a call under a deadline, and the Python
//! binding's async workers and helper threads all start their threads here.

use std::io;
use std::thread::{Builder, JoinHandle, Scope, ScopedJoinHandle};

/// The stack of a thread that runs module code: 64 MiB, eight times a
/// Linux main thread's 8 MiB, so that a value at the conversion depth limit
/// (`value::MAX_DEPTH`) or a deeply recursive module fits with room to
/// spare, wherever it runs. Only the pages a thread touches are committed;
/// the rest is address space.
pub const MODULE_THREAD_STACK: usize = 64 * 1024 * 1024;

/// Starts a thread named `name` with a stack of `stack` bytes (at least
/// [`MODULE_THREAD_STACK`] for one that runs module code) running `f`.
pub fn spawn<F, T>(name: impl Into<String>, stack: usize, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new().name(name.into()).stack_size(stack).spawn(f)
}

/// [`spawn`] inside `scope` (`std::thread::scope`): the thread may borrow
/// what outlives the scope.
pub fn spawn_scoped<'scope, 'env, F, T>(
    scope: &'scope Scope<'scope, 'env>,
    name: impl Into<String>,
    stack: usize,
    f: F,
) -> io::Result<ScopedJoinHandle<'scope, T>>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    Builder::new()
        .name(name.into())
        .stack_size(stack)
        .spawn_scoped(scope, f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recursion `n` frames of about 1 KiB deep.
    fn depth(n: usize) -> usize {
        let pad = std::hint::black_box([0u8; 1024]);
        if n == 0 {
            pad[0] as usize
        } else {
            1 + depth(n - 1) + std::hint::black_box(pad[1]) as usize
        }
    }

    #[test]
    fn a_module_thread_holds_far_more_than_the_default_stack() {
        // About 16 MiB of frames: eight times Rust's default thread stack.
        let n = 16 * 1024;
        let handle = spawn("module-registry-test", MODULE_THREAD_STACK, move || {
            depth(n)
        })
        .unwrap();
        assert_eq!(handle.thread().name(), Some("module-registry-test"));
        assert_eq!(handle.join().unwrap(), n);
    }

    #[test]
    fn a_scoped_thread_borrows_and_is_named() {
        let text = String::from("borrowed");
        let (name, len) = std::thread::scope(|scope| {
            spawn_scoped(scope, "module-registry-scoped", MODULE_THREAD_STACK, || {
                (
                    std::thread::current().name().map(str::to_string),
                    text.len() + depth(8 * 1024) - 8 * 1024,
                )
            })
            .unwrap()
            .join()
            .unwrap()
        });
        assert_eq!(name.as_deref(), Some("module-registry-scoped"));
        assert_eq!(len, text.len());
    }
}
