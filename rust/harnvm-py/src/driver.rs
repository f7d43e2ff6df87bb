//! Driving runs to their end.
//!
//! Every blocking way into running (`Vm.run`, `run_file`, `call`,
//! `call_export*`, `Export` handles, `warm_module`) is one crossing into
//! the core (`Vm::execute`, GIL released) that ends in the core's
//! `drive_blocking`. While every Harn task waits, the core calls the waiter
//! installed here (`BlockingWait`): it sleeps for timers, in short slices
//! so `interrupt()` and Ctrl-C are noticed, and awaits the awaitables that
//! async host functions returned on a private asyncio loop.
//!
//! `run_async` runs under the caller's asyncio loop instead: `harnvm._driver`
//! drives it step by step through `_start`/`_step`/`_complete`/`_fail`/`_abort`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harnvm_core::vm::Waiting;
use harnvm_core::{ErrorKind, Value, Vm as CoreVm, VmError, VmResult};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

use crate::convert;
use crate::host::{close_awaitables, host_exception, Host};

/// The first Python exception that ends the run or crossing in progress:
/// the output callable failed, or a host function (or the wait for one)
/// raised a non-`Exception` such as `KeyboardInterrupt`. One per Vm, shared
/// by the output sink, host functions and the waiter; re-raised as is when
/// the run ends.
#[derive(Clone, Default)]
pub(crate) struct RunFailure(Rc<RefCell<Option<PyErr>>>);

impl RunFailure {
    /// Keeps `err` unless an earlier failure is kept already.
    pub(crate) fn record(&self, err: PyErr) {
        self.0.borrow_mut().get_or_insert(err);
    }

    pub(crate) fn take(&self) -> Option<PyErr> {
        self.0.borrow_mut().take()
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// Lets the GIL-released section carry the VM's `Rc` data.
///
/// SAFETY argument: `Python::detach` runs its closure synchronously on the
/// *current* thread; it only releases the GIL meanwhile. Everything
/// `Rc`-based that the closure touches (the core VM, the program, values)
/// is `Pinned` to this thread, so no other thread can reach it while the GIL
/// is released. Python objects are only touched inside `Python::attach`
/// (the output sink, host functions, the waiter).
pub(crate) struct AssertSend<T>(pub(crate) T);
unsafe impl<T> Send for AssertSend<T> {}
impl<T> AssertSend<T> {
    // A method (not `.0`) so closures capture the whole wrapper, not the field.
    pub(crate) fn into_inner(self) -> T {
        self.0
    }
}

/// How long a timer sleep goes without looking at the interrupt flag and
/// Python's pending signals.
const SLEEP_SLICE: Duration = Duration::from_millis(10);

fn interrupted() -> VmError {
    VmError::new(ErrorKind::Interrupted)
}

/// The waiter of blocking runs (see the module docs).
pub(crate) struct BlockingWait {
    host: Host,
    failure: RunFailure,
    interrupt: Arc<AtomicBool>,
    vm_id: u64,
    /// The private event loop, made when the first awaitable shows up.
    event_loop: Option<Py<PyAny>>,
    /// Awaited host calls: call id → asyncio task.
    tasks: Vec<(u64, Py<PyAny>)>,
    /// Tasks cancelled in this run, settled when it ends.
    cancelling: Vec<Py<PyAny>>,
    /// The timer waits (ms) this waiter was handed, oldest first, for
    /// `harnvm.internals.take_timer_waits`: tests check what the scheduler
    /// asked for (none on the virtual clock, none past a time limit) without
    /// timing anything. Bounded, so a long-lived Vm does not grow.
    timer_waits: Vec<f64>,
}

/// How many timer waits `BlockingWait::timer_waits` keeps.
const KEPT_TIMER_WAITS: usize = 256;

pub(crate) type SharedWait = Rc<RefCell<BlockingWait>>;

/// Host calls completed during one wait: call id → its result.
type Completed = Vec<(u64, VmResult<Value>)>;

impl BlockingWait {
    /// Installs a waiter on `core` (whose Vm id is `vm_id`).
    pub(crate) fn install(core: &mut CoreVm, host: Host, failure: RunFailure, vm_id: u64) -> SharedWait {
        let interrupt = core.interrupt_handle();
        let wait = Rc::new(RefCell::new(BlockingWait {
            host,
            failure,
            interrupt,
            vm_id,
            event_loop: None,
            tasks: Vec::new(),
            cancelling: Vec::new(),
            timer_waits: Vec::new(),
        }));
        let shared = wait.clone();
        core.set_waiter(Box::new(move |waiting| shared.borrow_mut().wait(waiting)));
        wait
    }

    fn wait(&mut self, waiting: Waiting) -> VmResult<Completed> {
        if let Some(ms) = waiting.timer_ms {
            if self.timer_waits.len() == KEPT_TIMER_WAITS {
                self.timer_waits.remove(0);
            }
            self.timer_waits.push(ms);
        }
        let awaiting = !self.tasks.is_empty() || !self.host.borrow().pending.is_empty();
        if awaiting {
            match Python::attach(|py| self.await_calls(py, waiting.timer_ms, &waiting.cancelled)) {
                Ok(Some(completed)) => return Ok(completed),
                Ok(None) => {}
                Err(e) => {
                    self.failure.record(e);
                    return Err(interrupted());
                }
            }
        }
        self.sleep(waiting.timer_ms)?;
        Ok(Vec::new())
    }

    /// Sleeps `timer_ms` (GIL as the caller left it), waking early for an
    /// interrupt; a Python signal handler's exception ends the run.
    fn sleep(&self, timer_ms: Option<f64>) -> VmResult<()> {
        let Some(ms) = timer_ms else { return Ok(()) };
        let end = Instant::now() + Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 3600.0));
        loop {
            let now = Instant::now();
            if now >= end || self.interrupt.load(AtomicOrdering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep((end - now).min(SLEEP_SLICE));
            if let Err(e) = Python::attach(|py| py.check_signals()) {
                self.failure.record(e);
                return Err(interrupted());
            }
        }
    }

    /// Schedules new awaitables, cancels `cancelled` calls, and runs the
    /// loop until one call completes or `timer_ms` passes. None: nothing
    /// left to await (the caller sleeps instead).
    fn await_calls(&mut self, py: Python<'_>, timer_ms: Option<f64>, cancelled: &[u64]) -> PyResult<Option<Completed>> {
        let asyncio = py.import("asyncio")?;
        let new = std::mem::take(&mut self.host.borrow_mut().pending);
        if !new.is_empty() && self.event_loop.is_none() {
            if !asyncio.call_method0("_get_running_loop")?.is_none() {
                // A private loop cannot run inside the caller's: say what to use
                // instead, and close the awaitables so none warns "never awaited".
                crate::host::close_awaitables(py, &new);
                return Err(PyRuntimeError::new_err(
                    "a registered async function was awaited, but Vm.run (and call, call_export, export handles) \
                     cannot drive it from inside a running asyncio event loop: use `await vm.run_async(...)` \
                     there",
                ));
            }
            self.event_loop = Some(asyncio.call_method0("new_event_loop")?.unbind());
        }
        if let Some(event_loop) = &self.event_loop {
            let kwargs = PyDict::new(py);
            kwargs.set_item("loop", event_loop.bind(py))?;
            for (call, awaitable) in new {
                let task = asyncio.call_method("ensure_future", (awaitable,), Some(&kwargs))?;
                self.tasks.push((call, task.unbind()));
            }
        }
        for call in cancelled {
            if let Some(i) = self.tasks.iter().position(|(c, _)| c == call) {
                let (_, task) = self.tasks.remove(i);
                task.bind(py).call_method0("cancel")?;
                self.cancelling.push(task);
            }
        }
        let (Some(event_loop), false) = (&self.event_loop, self.tasks.is_empty()) else { return Ok(None) };
        let futures = PyList::new(py, self.tasks.iter().map(|(_, t)| t.bind(py)))?;
        let kwargs = PyDict::new(py);
        // At most one slice: the core then checks the interrupt flag and
        // the time limit, and waits again.
        let slice = SLEEP_SLICE.as_secs_f64();
        kwargs.set_item("timeout", timer_ms.map_or(slice, |ms| (ms.max(0.0) / 1000.0).min(slice)))?;
        kwargs.set_item("return_when", asyncio.getattr("FIRST_COMPLETED")?)?;
        let waiting = asyncio.call_method("wait", (futures,), Some(&kwargs))?;
        let finished = event_loop.bind(py).call_method1("run_until_complete", (waiting,))?.get_item(0)?;
        let mut completed = Vec::new();
        for (call, task) in std::mem::take(&mut self.tasks) {
            if finished.contains(task.bind(py)).unwrap_or(false) {
                completed.push((call, self.outcome(py, &asyncio, task.bind(py))));
            } else {
                self.tasks.push((call, task));
            }
        }
        Ok(Some(completed))
    }

    /// A finished task's result as the host call's result.
    fn outcome(&self, py: Python<'_>, asyncio: &Bound<'_, PyModule>, task: &Bound<'_, PyAny>) -> VmResult<Value> {
        let got = (|| -> PyResult<Result<Bound<'_, PyAny>, PyErr>> {
            if task.call_method0("cancelled")?.is_truthy()? {
                let err = asyncio.getattr("CancelledError")?.call1(("host call was cancelled",))?;
                return Ok(Err(PyErr::from_value(err)));
            }
            let exc = task.call_method0("exception")?;
            if !exc.is_none() {
                return Ok(Err(PyErr::from_value(exc)));
            }
            Ok(Ok(task.call_method0("result")?))
        })();
        match got.and_then(|r| r.and_then(|v| convert::from_py(&v, Some(self.vm_id)))) {
            Ok(v) => Ok(v),
            Err(e) => Err(host_exception(py, e, &self.host, &self.failure)),
        }
    }

    /// Ends a run's waiting: closes awaitables never scheduled, cancels the
    /// calls still awaited, lets cancelled coroutines run their cleanup and
    /// closes the private loop.
    pub(crate) fn finish(&mut self, py: Python<'_>) -> PyResult<()> {
        let pending = std::mem::take(&mut self.host.borrow_mut().pending);
        close_awaitables(py, &pending);
        for (_, task) in std::mem::take(&mut self.tasks) {
            let _ = task.bind(py).call_method0("cancel");
            self.cancelling.push(task);
        }
        let cancelling = std::mem::take(&mut self.cancelling);
        let Some(event_loop) = self.event_loop.take() else { return Ok(()) };
        let event_loop = event_loop.bind(py);
        let settled = (|| -> PyResult<()> {
            let asyncio = py.import("asyncio")?;
            if !cancelling.is_empty() {
                let kwargs = PyDict::new(py);
                kwargs.set_item("return_exceptions", true)?;
                let gather = asyncio.call_method("gather", PyTuple::new(py, &cancelling)?, Some(&kwargs))?;
                event_loop.call_method1("run_until_complete", (gather,))?;
            }
            let shutdown = event_loop.call_method0("shutdown_asyncgens")?;
            event_loop.call_method1("run_until_complete", (shutdown,))?;
            Ok(())
        })();
        let closed = event_loop.call_method0("close").map(drop);
        settled.and(closed)
    }

    /// Whether `finish` has anything to do.
    /// The timer waits handed over since the last call, in ms (see `timer_waits`).
    pub(crate) fn take_timer_waits(&mut self) -> Vec<f64> {
        std::mem::take(&mut self.timer_waits)
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.event_loop.is_none() && self.tasks.is_empty() && self.host.borrow().pending.is_empty()
    }
}
