//! `Pinned<T>`: a value that only the thread that created it may touch.
//!
//! Programs, VMs and Harn values are webs of `Rc`s, so they are not `Send`.
//! Python objects, however, move between threads freely (a result returned
//! from a worker, an exception traceback that keeps a frame alive). PyO3's
//! `#[pyclass(unsendable)]` would make such an object raise `PanicException`
//! (a `BaseException`, not an `Exception`) when used elsewhere, and report an
//! unraisable `RuntimeError` when it is garbage-collected elsewhere. The
//! classes of this crate wrap their `Rc` data in `Pinned` instead:
//!
//! * access from another thread returns `None`, which the caller turns into
//!   an ordinary `RuntimeError`/`HarnConversionError`;
//! * dropped on another thread, the value is leaked rather than touched.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers threads in the order they first touch a `Pinned`; never reused
/// (unlike a thread-local's address), and cheaper to read on every call
/// than `thread::current().id()`, which clones the thread handle.
static NEXT_THREAD_MARK: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's mark (0: not assigned yet).
    static THREAD_MARK: Cell<u64> = const { Cell::new(0) };
}

/// The current thread's mark.
#[inline]
fn this_thread() -> u64 {
    THREAD_MARK.with(|mark| match mark.get() {
        0 => {
            let assigned = NEXT_THREAD_MARK.fetch_add(1, Ordering::Relaxed);
            mark.set(assigned);
            assigned
        }
        known => known,
    })
}

pub struct Pinned<T> {
    owner: u64,
    value: ManuallyDrop<T>,
}

// SAFETY: the inner value (and every `Rc` it reaches) is only accessed,
// mutated or dropped on `owner`; other threads only read `owner`.
unsafe impl<T> Send for Pinned<T> {}
unsafe impl<T> Sync for Pinned<T> {}

impl<T> Pinned<T> {
    pub fn new(value: T) -> Self {
        Pinned { owner: this_thread(), value: ManuallyDrop::new(value) }
    }

    /// The value, if called on the owner thread.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        (this_thread() == self.owner).then(|| &*self.value)
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        if this_thread() == self.owner {
            // SAFETY: dropped exactly once, on the owner thread.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}

/// The error for a `Pinned` object used on another thread than its own.
pub(crate) fn wrong_thread(class: &str) -> pyo3::PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!(
        "this harnvm.{class} belongs to another thread; create a {class} in each thread that needs one"
    ))
}
