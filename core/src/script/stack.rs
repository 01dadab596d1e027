//! Every script call runs on a stack big enough for what its limits allow.
//!
//! Rhai recurses over a script's calls, its expressions and its data (a value
//! nested 100,000 arrays deep is dropped, cloned, compared and printed
//! recursively), and the thread that calls a script may have anything from
//! 2 MiB (a Rust thread) to 8 MiB (a main thread) of stack. So a script call
//! runs where [`ScriptLimits::stack_bytes`] fit: inline when the caller has
//! that much left, else on a stack this module reserves (address space with a
//! guard page below it; only the pages touched are backed by memory), kept
//! per thread and reused, so switching costs a few nanoseconds, not a
//! mapping.
//!
//! [`ScriptLimits::stack_bytes`]: crate::limits::ScriptLimits::stack_bytes

use crate::{Error, Result};

/// Whether this thread runs on a stack reserved for scripts now (code that
/// judges its depth by where the thread's stack is, such as CPython's
/// recursion check, should run elsewhere).
pub fn running_on_script_stack() -> bool {
    imp::running_on_script_stack()
}

/// Runs `f` on this thread's own stack, below the point where the script
/// it is called from was moved onto a reserved stack: code that judges its
/// depth by where the thread's stack is (CPython's recursion check) sees the
/// thread's stack and what it had left when the script began, as if it were
/// called there, with no thread hop. Off a reserved stack `f` runs where it
/// is. `Err(f)`, not run, when the thread's stack has too little left for
/// it (under [`MIN_THREAD_STACK_LEFT`]) or its bounds are unknown: run it
/// elsewhere.
pub fn on_thread_stack<T, F: FnOnce() -> T>(f: F) -> std::result::Result<T, F> {
    imp::on_thread_stack(f)
}

/// What [`on_thread_stack`] wants left on the thread's own stack (Python
/// code on a thread with less runs on a helper thread of its own).
pub const MIN_THREAD_STACK_LEFT: usize = 1 << 20;

/// Runs `f` on a stack with at least `need` bytes free.
pub(crate) fn on_script_stack<T>(need: usize, f: impl FnOnce() -> T) -> Result<T> {
    imp::on_stack(need, f)
}

#[cfg(unix)]
#[allow(unsafe_code)]
mod imp {
    use super::{Error, Result};
    use std::cell::{Cell, RefCell};

    thread_local! {
        /// A reserved stack no call is running on, kept for the next one.
        static SPARE: RefCell<Option<Segment>> = const { RefCell::new(None) };
        /// The lowest usable address of the reserved stack this thread runs
        /// on now (0: its own stack).
        static LOW: Cell<usize> = const { Cell::new(0) };
        /// While on a reserved stack: the part of the thread's own stack
        /// below where it left it, free until it comes back (top, bottom;
        /// (0, 0) when not known).
        static BELOW: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// Left unused below the stack pointer read before a switch: the frames
    /// of the switch itself (psm's trampoline and the closures around it, a
    /// few hundred bytes) live there while the reserved stack is in use.
    const SWITCH_FRAMES: usize = 64 * 1024;

    pub(super) fn on_thread_stack<T, F: FnOnce() -> T>(f: F) -> std::result::Result<T, F> {
        if LOW.with(Cell::get) == 0 {
            return Ok(f());
        }
        let (top, bottom) = BELOW.with(Cell::get);
        if top < bottom.saturating_add(super::MIN_THREAD_STACK_LEFT) {
            return Err(f);
        }
        // Aligned as psm asks: the base and the size to pages.
        let page = 4096;
        let bottom = bottom.div_ceil(page) * page;
        let top = top / page * page;
        let previous = (
            LOW.with(|l| l.replace(0)),
            BELOW.with(|b| b.replace((0, 0))),
        );
        // SAFETY: `bottom..top` is the part of this thread's own stack below
        // the frames live when it switched to the reserved stack it runs on
        // now (with `SWITCH_FRAMES` to spare): nothing uses it until this
        // call returns, as the thread is here, not there. The callback does
        // not unwind out of `on_stack`.
        let out = unsafe {
            psm::on_stack(bottom as *mut u8, top - bottom, move || {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
            })
        };
        LOW.with(|l| l.set(previous.0));
        BELOW.with(|b| b.set(previous.1));
        match out {
            Ok(v) => Ok(v),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    pub(super) fn running_on_script_stack() -> bool {
        LOW.with(Cell::get) != 0
    }

    /// Bytes left below the stack pointer on the stack this thread runs on.
    fn remaining() -> usize {
        match LOW.with(Cell::get) {
            0 => stacker::remaining_stack().unwrap_or(0),
            low => (psm::stack_pointer() as usize).saturating_sub(low),
        }
    }

    pub(super) fn on_stack<T>(need: usize, f: impl FnOnce() -> T) -> Result<T> {
        if remaining() >= need {
            return Ok(f());
        }
        let segment = match SPARE.with(|s| s.borrow_mut().take()) {
            Some(s) if s.usable >= need => s,
            // Twice the need: a script calling a script module (through the
            // registry) runs inline on the same stack.
            _ => Segment::reserve(need.saturating_mul(2))?,
        };
        let out = segment.run(f);
        // Keep the bigger of what is spare now (a nested call may have left
        // one) and this one.
        SPARE.with(|s| {
            let mut spare = s.borrow_mut();
            if spare.as_ref().is_none_or(|k| k.usable < segment.usable) {
                *spare = Some(segment);
            }
        });
        match out {
            Ok(v) => Ok(v),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// A mapping: one guard page, then `usable` bytes of stack.
    struct Segment {
        mapping: *mut libc::c_void,
        len: usize,
        usable: usize,
        page: usize,
    }

    impl Segment {
        fn reserve(need: usize) -> Result<Segment> {
            // SAFETY: sysconf has no preconditions.
            let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
                .ok()
                .filter(|p| p.is_power_of_two())
                .unwrap_or(4096);
            let usable = need.div_ceil(page).saturating_mul(page);
            let len = usable.saturating_add(page);
            let failed = |what: &str| {
                Error::InvalidConfig {
                name: "script limits".into(),
                reason: format!(
                    "could not {what} {usable} bytes of stack for a script call ({}): lower the limits",
                    std::io::Error::last_os_error()
                ),
            }
            };
            // SAFETY: a fresh anonymous private mapping; no existing memory
            // is touched. NORESERVE: only touched pages are committed.
            let mapping = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | stack_flag(),
                    -1,
                    0,
                )
            };
            if mapping == libc::MAP_FAILED {
                return Err(failed("reserve"));
            }
            let segment = Segment {
                mapping,
                len,
                usable,
                page,
            };
            // SAFETY: the first page of our own mapping becomes the guard an
            // overflow faults on (the stack grows down towards it).
            if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
                return Err(failed("guard"));
            }
            Ok(segment)
        }

        fn low(&self) -> usize {
            self.mapping as usize + self.page
        }

        /// Runs `f` on this stack; a panic is caught there and handed back
        /// (unwinding must not cross the switch).
        fn run<T>(&self, f: impl FnOnce() -> T) -> std::thread::Result<T> {
            let below_before = BELOW.with(Cell::get);
            if LOW.with(Cell::get) == 0 {
                // Leaving the thread's own stack: what is below is free.
                let sp = psm::stack_pointer() as usize;
                let below = stacker::remaining_stack()
                    .filter(|left| *left > SWITCH_FRAMES)
                    .map_or((0, 0), |left| (sp - SWITCH_FRAMES, sp - left));
                BELOW.with(|b| b.set(below));
            }
            let previous = LOW.with(|l| l.replace(self.low()));
            // SAFETY: `low()..low()+usable` is mapped read-write, owned by
            // this segment for the whole call, and used by nothing else (a
            // segment is taken out of SPARE while it runs). The callback
            // does not unwind out of `on_stack`.
            let out = unsafe {
                psm::on_stack(self.low() as *mut u8, self.usable, move || {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                })
            };
            LOW.with(|l| l.set(previous));
            BELOW.with(|b| b.set(below_before));
            out
        }
    }

    impl Drop for Segment {
        fn drop(&mut self) {
            // SAFETY: our own mapping, no longer in use.
            unsafe {
                libc::munmap(self.mapping, self.len);
            }
        }
    }

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    fn stack_flag() -> libc::c_int {
        libc::MAP_STACK
    }

    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    fn stack_flag() -> libc::c_int {
        0
    }
}

#[cfg(not(unix))]
mod imp {
    use super::Result;

    /// Elsewhere stacker's stacks are not told apart from the thread's.
    pub(super) fn running_on_script_stack() -> bool {
        false
    }

    /// Elsewhere code runs where it is.
    pub(super) fn on_thread_stack<T, F: FnOnce() -> T>(f: F) -> std::result::Result<T, F> {
        Ok(f())
    }

    /// Elsewhere stacker reserves a stack for each call that needs one.
    pub(super) fn on_stack<T>(need: usize, f: impl FnOnce() -> T) -> Result<T> {
        Ok(stacker::maybe_grow(need, need, f))
    }
}

#[cfg(test)]
mod tests {
    use super::on_script_stack;

    fn depth(n: usize) -> usize {
        let pad = std::hint::black_box([0u8; 1024]);
        if n == 0 {
            pad[0] as usize
        } else {
            1 + depth(n - 1) + std::hint::black_box(pad[1]) as usize
        }
    }

    #[test]
    fn recursion_far_past_the_thread_stack_survives() {
        // 64 MiB of frames on a 2 MiB test thread.
        let n = 64 * 1024;
        let got = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || on_script_stack((n + 64) * 2048, || depth(n)).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(got, n);
    }

    #[cfg(unix)]
    #[test]
    fn code_runs_back_on_the_thread_stack_from_a_reserved_one() {
        use super::{on_thread_stack, running_on_script_stack};
        let got = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(|| {
                let outside = stacker::remaining_stack().unwrap();
                on_script_stack(64 << 20, || {
                    assert!(running_on_script_stack());
                    let (left, nested) = on_thread_stack(|| {
                        assert!(!running_on_script_stack());
                        let left = stacker::remaining_stack().unwrap();
                        // A script again from there, and back once more.
                        let nested = on_script_stack(64 << 20, || {
                            on_thread_stack(|| depth(1000)).ok().unwrap()
                        })
                        .unwrap();
                        (left, nested + depth(2000))
                    })
                    .ok()
                    .unwrap();
                    assert!(running_on_script_stack());
                    (outside, left, nested)
                })
                .unwrap()
            })
            .unwrap()
            .join()
            .unwrap();
        let (outside, left, nested) = got;
        // The thread's own stack, with what it had left (less the switch).
        assert!(
            left < outside && left + (256 << 10) > outside,
            "{left} {outside}"
        );
        assert_eq!(nested, 3000);
        // A panic there comes back as a panic.
        let caught = std::panic::catch_unwind(|| {
            on_script_stack(64 << 20, || {
                on_thread_stack(|| -> usize { panic!("inside") }).ok()
            })
        });
        assert!(caught.is_err());
    }

    #[test]
    fn nested_calls_and_panics_come_back() {
        let inner = on_script_stack(256 << 20, || {
            on_script_stack(512 << 20, || depth(1000)).unwrap() + depth(10)
        })
        .unwrap();
        assert_eq!(inner, 1010);
        // Only code on a reserved stack is told it is on one.
        #[cfg(unix)]
        {
            assert!(!super::running_on_script_stack());
            assert!(on_script_stack(256 << 20, super::running_on_script_stack).unwrap());
        }
        let caught = std::panic::catch_unwind(|| {
            on_script_stack(256 << 20, || -> usize { panic!("inside") })
        });
        assert!(caught.is_err());
        // The thread still works, and reuses its spare stack.
        assert_eq!(on_script_stack(256 << 20, || depth(5)).unwrap(), 5);
    }
}
