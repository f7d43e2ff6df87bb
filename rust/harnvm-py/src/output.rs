//! Output routing: where the core's `log`/`print` output goes during a run
//! or crossing (the Vm's `output` callable, or the current `sys.stdout`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering as AtomicOrdering;

use harnvm_core::Vm as CoreVm;
use pyo3::prelude::*;

use crate::driver::RunFailure;

/// Where the core's output goes. The core's sink closure is installed once
/// per core VM and forwards to the Vm's output callable, or to
/// `sys.stdout.write` as looked up at the first output of a run or crossing
/// (so redirection works). Output outside a run or crossing is dropped.
/// Nothing is looked up or allocated for a run or crossing that writes no
/// output: a short crossing only flips `active`.
pub(crate) struct OutputSlot {
    /// The Vm's `output` callable: a second reference to what `Vm.output`
    /// holds, so it adds no reference cycle of its own.
    configured: Option<Py<PyAny>>,
    /// A run or crossing is in progress.
    active: Cell<bool>,
    /// `sys.stdout.write`, looked up at this run's first output; dropped at
    /// its end (it may reference objects that reference this Vm, and such a
    /// cycle through Rust would be invisible to Python's GC).
    stdout_write: RefCell<Option<Py<PyAny>>>,
    /// Where a failing output target's exception goes (shared with host functions).
    pub(crate) failure: RunFailure,
}

impl OutputSlot {
    /// A slot for the Vm's `configured` output callable, with the forwarding
    /// sink installed on `core`.
    pub(crate) fn install(core: &mut CoreVm, configured: Option<Py<PyAny>>, failure: RunFailure) -> Rc<OutputSlot> {
        let slot = Rc::new(OutputSlot { configured, active: Cell::new(false), stdout_write: RefCell::new(None), failure });
        let shared = slot.clone();
        let interrupt = core.interrupt_handle();
        core.set_output(Box::new(move |text: &str| {
            if !shared.active.get() || shared.failure.is_set() {
                return;
            }
            Python::attach(|py| {
                // Also give Python's signal handlers a chance to run (Ctrl-C →
                // KeyboardInterrupt), which they otherwise only get between
                // bytecodes: a printing program stays interruptible.
                let delivered = shared.target(py).and_then(|target| match target {
                    Some(target) => target.call1(py, (text,)).and_then(|_| py.check_signals()),
                    None => Ok(()),
                });
                if let Err(e) = delivered {
                    shared.failure.record(e);
                    interrupt.store(true, AtomicOrdering::Relaxed);
                }
            });
        }));
        slot
    }

    /// Starts routing output (a run or crossing begins).
    pub(crate) fn open(&self) {
        self.failure.take();
        self.active.set(true);
    }

    /// Stops routing output and forgets the `sys.stdout.write` looked up.
    pub(crate) fn close(&self) {
        self.active.set(false);
        if self.stdout_write.borrow().is_some() {
            self.stdout_write.borrow_mut().take();
        }
    }

    /// Where output goes now: the configured callable, or the current
    /// `sys.stdout.write` (None when `sys.stdout` is None).
    fn target(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(cb) = &self.configured {
            return Ok(Some(cb.clone_ref(py)));
        }
        if let Some(write) = self.stdout_write.borrow().as_ref() {
            return Ok(Some(write.clone_ref(py)));
        }
        let stdout = py.import("sys")?.getattr("stdout")?;
        if stdout.is_none() {
            return Ok(None);
        }
        let write = stdout.getattr("write")?.unbind();
        *self.stdout_write.borrow_mut() = Some(write.clone_ref(py));
        Ok(Some(write))
    }

    /// Hands output the core still buffers at the end of a run or crossing
    /// to the target.
    pub(crate) fn deliver_rest(&self, py: Python<'_>, rest: String) -> PyResult<()> {
        if rest.is_empty() {
            return Ok(());
        }
        if let Some(target) = self.target(py)? {
            target.call1(py, (rest,))?;
        }
        Ok(())
    }
}
