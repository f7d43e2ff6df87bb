//! `InterruptHandle`: stopping a `Vm`'s run from any thread.

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

/// The interrupt flag of the current core VM. The VM is replaced after a
/// panic, so handles hold this shared slot rather than the flag itself.
pub(crate) type InterruptSlot = Arc<Mutex<Arc<AtomicBool>>>;

pub(crate) fn raise_interrupt(slot: &InterruptSlot) {
    let flag = match slot.lock() {
        Ok(guard) => guard.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    };
    flag.store(true, AtomicOrdering::Relaxed);
}

/// Stops a `Vm`'s run in progress; usable from any thread:
/// `handle = vm.interrupt_handle()`, later `handle.interrupt()`. The run ends
/// with `HarnInterruptedError` at the VM's next check (every few thousand
/// calls or loop iterations).
#[pyclass(module = "harnvm", name = "InterruptHandle", frozen)]
pub struct InterruptHandle {
    pub(crate) slot: InterruptSlot,
}

#[pymethods]
impl InterruptHandle {
    /// Asks the run in progress to stop. A run that starts later is not affected.
    fn interrupt(&self) {
        raise_interrupt(&self.slot);
    }

    fn __repr__(&self) -> &'static str {
        "<harnvm.InterruptHandle>"
    }
}
