//! The `Program` and `Vm` Python classes.
//!
//! Both are `unsendable`: a compiled program and a VM are webs of `Rc`s
//! (constants, function prototypes, values, caches) and are not `Send`, so
//! PyO3 must pin each object to the thread that created it (another thread
//! touching one gets an error instead of a data race).
//!
//! `Vm.run` releases the GIL while Harn code runs, so other Python threads
//! keep going (see `AssertSend` for why that is sound with `Rc` data), and
//! re-attaches only to deliver output.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use harnvm_core::{Value, Vm as CoreVm, VmOptions, VmResult};
use pyo3::exceptions::{PyTypeError, PyUnicodeDecodeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::{convert, errors};

/// A compiled Harn source file. Create one with `harnvm.compile`.
#[pyclass(module = "harnvm", name = "Program", unsendable, frozen)]
pub struct Program {
    pub inner: Rc<harnvm_core::Program>,
}

#[pymethods]
impl Program {
    /// The file name the program was compiled under.
    #[getter]
    fn filename(&self) -> &str {
        &self.inner.file
    }

    /// The source text.
    #[getter]
    fn source(&self) -> &str {
        &self.inner.source
    }

    /// Readable bytecode listing.
    fn disassemble(&self, py: Python<'_>) -> PyResult<String> {
        errors::guard(py, || Ok(harnvm_core::disassemble(&self.inner)))
    }

    fn __repr__(&self) -> String {
        format!("<harnvm.Program {:?}>", self.inner.file)
    }
}

/// Compiles `source`, mapping failures to `HarnSyntaxError`.
pub fn compile_source(py: Python<'_>, source: &str, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
    errors::guard(py, || harnvm_core::compile(source, filename).map_err(|e| errors::vm_error(py, &e, 0)))
}

/// Accepts a `Program` or source text.
pub fn program_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
    if let Ok(p) = obj.cast::<Program>() {
        return Ok(p.borrow().inner.clone());
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return compile_source(py, s.to_str()?, filename);
    }
    Err(PyTypeError::new_err(format!(
        "expected a harnvm.Program or Harn source text (str), got {}",
        obj.get_type().name()?
    )))
}

/// Reads a source file as UTF-8, raising the usual `OSError`s and
/// `UnicodeDecodeError`.
pub fn read_source(py: Python<'_>, path: &PathBuf) -> PyResult<String> {
    let bytes = std::fs::read(path)?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let err = e.utf8_error();
            Err(PyErr::from_value(
                PyUnicodeDecodeError::new_utf8(py, e.as_bytes(), err)?.into_any(),
            ))
        }
    }
}

/// Lets the GIL-released section carry the VM's `Rc` data.
///
/// SAFETY argument: `Python::detach` runs its closure synchronously on the
/// *current* thread; it only releases the GIL meanwhile. Everything `Rc`-based
/// that the closure touches (the core `Vm`, the `Program`, values) belongs to
/// this thread: `Vm` and `Program` are `unsendable` pyclasses, which PyO3
/// never lets another thread borrow, and value handles (`convert::ThreadBound`)
/// refuse other threads. So no other thread can reach these `Rc`s while the
/// GIL is released. Python objects are only touched inside `Python::attach`
/// (the output sink).
struct AssertSend<T>(T);
unsafe impl<T> Send for AssertSend<T> {}
impl<T> AssertSend<T> {
    // A method (not `.0`) so closures capture the whole wrapper, not the field.
    fn into_inner(self) -> T {
        self.0
    }
}

static NEXT_VM_ID: AtomicU64 = AtomicU64::new(1);

fn next_vm_id() -> u64 {
    NEXT_VM_ID.fetch_add(1, AtomicOrdering::Relaxed)
}

/// Stops a running `Vm` from any thread: `vm.interrupt_handle().interrupt()`.
/// The run ends with `HarnInterruptedError` at its next check (the VM checks
/// every few thousand calls or loop iterations).
#[pyclass(module = "harnvm", name = "InterruptHandle", frozen)]
pub struct InterruptHandle {
    flag: Arc<AtomicBool>,
}

#[pymethods]
impl InterruptHandle {
    /// Asks the run in progress to stop. Has no effect on later runs.
    fn interrupt(&self) {
        self.flag.store(true, AtomicOrdering::Relaxed);
    }

    fn __repr__(&self) -> String {
        "<harnvm.InterruptHandle>".to_string()
    }
}

/// A Harn virtual machine. Reusable: each `run` executes a program with the
/// options given here.
#[pyclass(module = "harnvm", name = "Vm", unsendable)]
pub struct Vm {
    inner: CoreVm,
    /// Identifies this VM's module state, so function handles are only
    /// called (or passed back) on the VM that made them.
    id: u64,
    options: VmOptions,
    output: Option<Py<PyAny>>,
    time_limit: Option<f64>,
}

#[pymethods]
impl Vm {
    #[new]
    #[pyo3(signature = (*, output = None, inline_caches = true, max_frames = 512, time_limit = None))]
    fn new(
        py: Python<'_>,
        output: Option<Bound<'_, PyAny>>,
        inline_caches: bool,
        max_frames: i64,
        time_limit: Option<f64>,
    ) -> PyResult<Self> {
        if let Some(cb) = &output {
            if !cb.is_callable() {
                return Err(PyTypeError::new_err("output must be a callable taking one str, or None"));
            }
        }
        if max_frames < 1 {
            return Err(PyValueError::new_err(format!("max_frames must be at least 1, got {max_frames}")));
        }
        let time_limit_ms = match time_limit {
            None => None,
            Some(t) if t.is_finite() && t > 0.0 => Some(((t * 1000.0).ceil() as u64).max(1)),
            Some(t) => {
                return Err(PyValueError::new_err(format!(
                    "time_limit must be a positive number of seconds or None, got {t}"
                )))
            }
        };
        let options = VmOptions {
            max_frames: usize::try_from(max_frames).unwrap_or(usize::MAX),
            inline_caches,
            time_limit_ms,
            ..Default::default()
        };
        let inner = errors::guard(py, || Ok(CoreVm::new(options.clone())))?;
        Ok(Vm { inner, id: next_vm_id(), options, output: output.map(Bound::unbind), time_limit })
    }

    /// Runs a `Program` (or compiles and runs source text) and returns the
    /// entry pipeline's value converted to Python.
    #[pyo3(signature = (program, *, filename = "<string>"))]
    fn run(&mut self, py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<Py<PyAny>> {
        let program = program_arg(py, program, filename)?;
        self.execute(py, |vm| vm.run(&program))
    }

    /// Reads, compiles and runs a `.harn` file. Imports resolve relative to it.
    fn run_file(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
        let source = read_source(py, &path)?;
        let program = compile_source(py, &source, &path.to_string_lossy())?;
        self.execute(py, |vm| vm.run(&program))
    }

    /// Calls a Harn function (a `HarnFunction` this Vm returned) with
    /// Python arguments and returns its result converted to Python.
    #[pyo3(signature = (function, *args))]
    fn call(&mut self, py: Python<'_>, function: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if !function.is_instance_of::<convert::HarnFunction>() {
            return Err(PyTypeError::new_err(format!(
                "Vm.call expects a HarnFunction, got {}",
                function.get_type().name()?
            )));
        }
        let closure = match &convert::from_py(function, Some(self.id))? {
            Value::Closure(c) => c.clone(),
            _ => return Err(PyTypeError::new_err("Vm.call can only call Harn closures, not builtins")),
        };
        let args = args.iter().map(|a| convert::from_py(&a, Some(self.id))).collect::<PyResult<Vec<_>>>()?;
        let interrupt = self.inner.interrupt_handle();
        interrupt.store(false, AtomicOrdering::Relaxed);
        let value = self.execute(py, move |vm| vm.call_closure(closure, args))?;
        // `call_closure` leaves output produced after the last builtin in the buffer.
        let rest = self.inner.take_output();
        if !rest.is_empty() {
            self.write_output(py, &rest)?;
        }
        Ok(value)
    }

    /// A handle that can stop this Vm's run in progress from another thread.
    fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle { flag: self.inner.interrupt_handle() }
    }

    /// The output callable given to the constructor (None: `sys.stdout`).
    #[getter]
    fn output(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.output.as_ref().map(|o| o.clone_ref(py))
    }
    #[getter]
    fn inline_caches(&self) -> bool {
        self.options.inline_caches
    }
    #[getter]
    fn max_frames(&self) -> usize {
        self.options.max_frames
    }
    /// Wall-clock limit per run, in seconds (None: unlimited).
    #[getter]
    fn time_limit(&self) -> Option<f64> {
        self.time_limit
    }

    fn __repr__(&self) -> String {
        let limit = match self.time_limit {
            Some(t) => format!("{t}"),
            None => "None".to_string(),
        };
        format!(
            "harnvm.Vm(max_frames={}, inline_caches={}, time_limit={})",
            self.options.max_frames,
            if self.options.inline_caches { "True" } else { "False" },
            limit
        )
    }
}

impl Vm {
    /// Where output goes: the user's callable, or the current
    /// `sys.stdout.write` (looked up per run so redirection works).
    fn sink(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        Ok(match &self.output {
            Some(cb) => Some(cb.clone_ref(py)),
            None => {
                let stdout = py.import("sys")?.getattr("stdout")?;
                if stdout.is_none() {
                    None
                } else {
                    Some(stdout.getattr("write")?.unbind())
                }
            }
        })
    }

    fn write_output(&self, py: Python<'_>, text: &str) -> PyResult<()> {
        if let Some(sink) = self.sink(py)? {
            sink.call1(py, (text,))?;
        }
        Ok(())
    }

    /// Runs `work` on the core VM with the GIL released, output routed to
    /// the sink, panics caught, and the result converted to Python.
    fn execute(
        &mut self,
        py: Python<'_>,
        work: impl FnOnce(&mut CoreVm) -> VmResult<Value>,
    ) -> PyResult<Py<PyAny>> {
        // The core's sink cannot fail, so the first exception raised by the
        // output callable is kept, later output is dropped, the run is
        // interrupted, and the exception is re-raised when the run ends.
        let sink = self.sink(py)?;
        let failure: Rc<RefCell<Option<PyErr>>> = Rc::new(RefCell::new(None));
        let slot = failure.clone();
        let interrupt = self.inner.interrupt_handle();
        self.inner.set_output(Box::new(move |text: &str| {
            let Some(sink) = &sink else { return };
            if slot.borrow().is_some() {
                return;
            }
            Python::attach(|py| {
                if let Err(e) = sink.call1(py, (text,)) {
                    *slot.borrow_mut() = Some(e);
                    interrupt.store(true, AtomicOrdering::Relaxed);
                }
            });
        }));

        let task = AssertSend((&mut self.inner, work));
        let outcome = py.detach(move || {
            let (inner, work) = task.into_inner();
            AssertSend(catch_unwind(AssertUnwindSafe(|| work(inner))))
        });
        let outcome = outcome.into_inner();
        // Drop the sink now: it may reference objects that reference this Vm,
        // and such a cycle through Rust would be invisible to Python's GC.
        self.inner.set_output(Box::new(|_| {}));
        let result = match outcome {
            Ok(r) => r,
            Err(payload) => {
                // The VM state after a panic is unknown: start over with a
                // fresh one (and a new id, so old handles are refused).
                self.inner = CoreVm::new(self.options.clone());
                self.id = next_vm_id();
                return Err(errors::panic_error(py, &*payload));
            }
        };
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        let id = self.id;
        match result {
            Ok(v) => errors::guard(py, || convert::to_py(py, &v, id).map(Bound::unbind)),
            Err(e) => Err(errors::vm_error(py, &e, id)),
        }
    }
}
