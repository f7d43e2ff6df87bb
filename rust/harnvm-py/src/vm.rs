//! The `Program` and `Vm` Python classes.
//!
//! Both are `unsendable`: a compiled program and a VM are webs of `Rc`s
//! (constants, function prototypes, values, caches) and are not `Send`, so
//! PyO3 must pin each object to the thread that created it. For the same
//! reason `Vm.run` keeps the GIL attached instead of calling
//! `Python::detach`: the detached closure would have to be `Send`, and the
//! output callback needs the GIL anyway.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use harnvm_core::{Vm as CoreVm, VmOptions};
use pyo3::exceptions::{PyTypeError, PyUnicodeDecodeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

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
    errors::guard(py, || harnvm_core::compile(source, filename).map_err(|e| errors::vm_error(py, &e)))
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

/// A Harn virtual machine. Reusable: each `run` starts from a fresh program
/// state, with the options given here.
#[pyclass(module = "harnvm", name = "Vm", unsendable)]
pub struct Vm {
    inner: CoreVm,
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
            Some(t) => return Err(PyValueError::new_err(format!("time_limit must be a positive number of seconds or None, got {t}"))),
        };
        let options = VmOptions {
            max_frames: usize::try_from(max_frames).unwrap_or(usize::MAX),
            inline_caches,
            time_limit_ms,
            ..Default::default()
        };
        let inner = errors::guard(py, || Ok(CoreVm::new(options.clone())))?;
        Ok(Vm { inner, options, output: output.map(Bound::unbind), time_limit })
    }

    /// Runs a `Program` (or compiles and runs source text) and returns the
    /// entry pipeline's value converted to Python.
    #[pyo3(signature = (program, *, filename = "<string>"))]
    fn run(&mut self, py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<Py<PyAny>> {
        let program = program_arg(py, program, filename)?;
        self.execute(py, &program)
    }

    /// Reads, compiles and runs a `.harn` file. Imports resolve relative to it.
    fn run_file(&mut self, py: Python<'_>, path: PathBuf) -> PyResult<Py<PyAny>> {
        let source = read_source(py, &path)?;
        let program = compile_source(py, &source, &path.to_string_lossy())?;
        self.execute(py, &program)
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
    fn execute(&mut self, py: Python<'_>, program: &Rc<harnvm_core::Program>) -> PyResult<Py<PyAny>> {
        // Where output goes for this run: the user's callable, or the current
        // `sys.stdout.write` (looked up per run so redirection works). The
        // core's sink cannot fail, so the first exception raised by the
        // callable is kept, later output is dropped, and the exception is
        // re-raised when the run ends.
        let sink: Option<Py<PyAny>> = match &self.output {
            Some(cb) => Some(cb.clone_ref(py)),
            None => {
                let stdout = py.import("sys")?.getattr("stdout")?;
                if stdout.is_none() {
                    None
                } else {
                    Some(stdout.getattr("write")?.unbind())
                }
            }
        };
        let failure: Rc<RefCell<Option<PyErr>>> = Rc::new(RefCell::new(None));
        let slot = failure.clone();
        self.inner.set_output(Box::new(move |text: &str| {
            let Some(sink) = &sink else { return };
            if slot.borrow().is_some() {
                return;
            }
            Python::attach(|py| {
                if let Err(e) = sink.call1(py, (text,)) {
                    *slot.borrow_mut() = Some(e);
                }
            });
        }));

        let inner = &mut self.inner;
        let outcome = errors::guard(py, || Ok(inner.run(program)));
        // Drop the sink now: it may reference objects that reference this Vm,
        // and such a cycle through Rust would be invisible to Python's GC.
        self.inner.set_output(Box::new(|_| {}));
        let result = match outcome {
            Ok(r) => r,
            Err(panic) => {
                // The VM state after a panic is unknown; start over with a fresh one.
                self.inner = CoreVm::new(self.options.clone());
                return Err(panic);
            }
        };
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        match result {
            Ok(v) => errors::guard(py, || convert::to_py(py, &v).map(Bound::unbind)),
            Err(e) => Err(errors::vm_error(py, &e)),
        }
    }
}
