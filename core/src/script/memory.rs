//! The per-call memory limit of scripts: a global allocator that, while a
//! script call runs on a thread, counts what that thread allocates and frees.
//!
//! Rhai limits the size of each value, not their sum: a script can hold a
//! thousand strings of the maximum size, or grow a map by indexing (which
//! Rhai does not size-check). So the registry counts bytes. Outside script
//! calls the allocator costs one relaxed atomic load per allocation; inside,
//! a thread-local add. The count is net (allocated minus freed on the
//! script's thread during the call), read by the engine at every operation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Script calls counting now, on any thread: zero keeps the fast path.
static COUNTING_CALLS: AtomicUsize = AtomicUsize::new(0);
/// Whether [`ScriptAllocator`] is the global allocator (it has allocated).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// [`NET`] of a thread that runs no counted script call.
const NOT_COUNTING: isize = isize::MIN;

thread_local! {
    /// The net bytes of the counted script call this thread runs (one
    /// thread-local, so one access per allocation), or [`NOT_COUNTING`].
    static NET: Cell<isize> = const { Cell::new(NOT_COUNTING) };
}

/// The system allocator, counting what script calls allocate so that
/// [`ScriptLimits::max_memory`](crate::ScriptLimits::max_memory) holds.
/// Install it in a program that runs untrusted scripts:
///
/// ```
/// #[global_allocator]
/// static ALLOCATOR: module_registry::ScriptAllocator = module_registry::ScriptAllocator;
/// ```
pub struct ScriptAllocator;

#[inline]
fn note(bytes: isize) {
    if COUNTING_CALLS.load(Ordering::Relaxed) != 0 {
        // `try_with`: a thread being torn down has no counter, and needs none.
        let _ = NET.try_with(|net| {
            let held = net.get();
            if held != NOT_COUNTING {
                net.set(held.saturating_add(bytes).max(NOT_COUNTING + 1));
            }
        });
    }
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the bookkeeping touches only const-initialised thread-locals
// (which never allocate) and atomics.
unsafe impl GlobalAlloc for ScriptAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        note(layout.size() as isize);
        // SAFETY: forwarded as received.
        unsafe { System.alloc(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as isize);
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as isize));
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size as isize - layout.size() as isize);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Whether script memory limits are enforced in this program: true once
/// [`ScriptAllocator`] is the global allocator.
pub fn memory_limit_enforced() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Runs `f` counting this thread's allocations from zero (a nested call
/// counts from zero too, and what it still holds at its end is added to the
/// outer count).
pub(crate) fn counting<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(isize);
    impl Drop for Restore {
        fn drop(&mut self) {
            NET.with(|n| {
                let mine = n.get();
                n.set(match self.0 {
                    NOT_COUNTING => NOT_COUNTING,
                    outer => outer.saturating_add(mine).max(NOT_COUNTING + 1),
                });
            });
            COUNTING_CALLS.fetch_sub(1, Ordering::Relaxed);
        }
    }
    COUNTING_CALLS.fetch_add(1, Ordering::Relaxed);
    let _restore = Restore(NET.with(|n| n.replace(0)));
    f()
}

/// Net bytes the script call on this thread holds now (0 outside one).
#[inline]
pub(crate) fn held() -> isize {
    NET.with(Cell::get).max(0)
}

/// This thread's count before a call that hands the script a value made
/// elsewhere (see [`received`]).
pub(crate) fn mark() -> isize {
    NET.with(Cell::get)
}

/// Charges `value`, handed to the script by a call begun at `mark` (a
/// module called on another thread, a pool, a workflow's steps), to the
/// script call counting on this thread: what the thread allocated meanwhile
/// counts as before, and the value's own size at least. (Otherwise a value
/// made elsewhere costs nothing, and freeing it here even lowers the count.)
pub(crate) fn received(mark: isize, value: &crate::Value) {
    received_all(mark, [value]);
}

/// [`received`] for several values handed over together (a workflow run's
/// output and every step's output).
pub(crate) fn received_all<'a>(mark: isize, values: impl IntoIterator<Item = &'a crate::Value>) {
    if mark == NOT_COUNTING {
        return;
    }
    let bytes = values
        .into_iter()
        .fold(0usize, |total, v| total.saturating_add(value_bytes(v)));
    let size = isize::try_from(bytes).unwrap_or(isize::MAX);
    let floor = mark.saturating_add(size);
    NET.with(|net| {
        if net.get() != NOT_COUNTING && net.get() < floor {
            net.set(floor);
        }
    });
}

/// About how many bytes `value` holds on the heap (its strings, bytes,
/// lists and maps; an opaque handle counts as its pointer). Walks the value
/// with a list of its own, not by recursion.
pub(crate) fn value_bytes(value: &crate::Value) -> usize {
    use crate::Value;
    let slot = std::mem::size_of::<Value>();
    let mut total = 0usize;
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        let own = match v {
            Value::Str(s) => s.capacity(),
            Value::Bytes(b) => b.capacity(),
            Value::List(items) => {
                pending.extend(items.iter());
                items.capacity() * slot
            }
            Value::Map(map) => {
                pending.extend(map.values());
                map.keys().map(String::capacity).sum::<usize>()
                    + map.capacity() * (slot + std::mem::size_of::<String>() + 8)
            }
            _ => 0,
        };
        total = total.saturating_add(own);
    }
    total
}

/// Runs `f` without counting what this thread allocates and frees meanwhile
/// (an embedder's output hook: what it does with a line, even on another
/// thread, is not the script's memory).
pub(crate) fn uncounted<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(isize);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = NET.try_with(|n| n.set(self.0));
        }
    }
    let _restore = Restore(NET.with(|n| n.replace(NOT_COUNTING)));
    f()
}

/// Credits about `bytes` back to the script call on this thread: values it
/// made and handed to a call on another thread, which frees them there.
pub(crate) fn handed_off(bytes: usize) {
    let bytes = isize::try_from(bytes).unwrap_or(isize::MAX);
    let _ = NET.try_with(|net| {
        let held = net.get();
        if held != NOT_COUNTING {
            net.set(held.saturating_sub(bytes).max(NOT_COUNTING + 1));
        }
    });
}
