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

use std::mem::ManuallyDrop;
use std::thread::{self, ThreadId};

pub struct Pinned<T> {
    owner: ThreadId,
    value: ManuallyDrop<T>,
}

// SAFETY: the inner value (and every `Rc` it reaches) is only accessed,
// mutated or dropped on `owner`; other threads only read `owner`.
unsafe impl<T> Send for Pinned<T> {}
unsafe impl<T> Sync for Pinned<T> {}

impl<T> Pinned<T> {
    pub fn new(value: T) -> Self {
        Pinned {
            owner: thread::current().id(),
            value: ManuallyDrop::new(value),
        }
    }

    /// The value, if called on the owner thread.
    pub fn get(&self) -> Option<&T> {
        (thread::current().id() == self.owner).then(|| &*self.value)
    }
}

impl<T> Drop for Pinned<T> {
    fn drop(&mut self) {
        if thread::current().id() == self.owner {
            // SAFETY: dropped exactly once, on the owner thread.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
    }
}
