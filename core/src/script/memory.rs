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
