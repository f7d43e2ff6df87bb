//! `Program` and compilation: the thread's compiled-module cache, the
//! default resolver, and reading source files.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use harnvm_core::compile::check::CheckOptions;
use harnvm_core::ModuleCache;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyUnicodeDecodeError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::driver::AssertSend;
use crate::entry::PyLoader;
use crate::errors;
use crate::pinned::{wrong_thread, Pinned};

/// A compiled Harn source file. Create one with `harnvm.compile`.
#[pyclass(module = "harnvm", name = "Program", frozen)]
pub struct Program {
    inner: Pinned<Rc<harnvm_core::Program>>,
    filename: String,
}

impl Program {
    pub fn new(inner: Rc<harnvm_core::Program>) -> Program {
        let filename = inner.file.clone();
        Program { inner: Pinned::new(inner), filename }
    }

    fn get(&self) -> PyResult<&Rc<harnvm_core::Program>> {
        self.inner.get().ok_or_else(|| wrong_thread("Program"))
    }
}

#[pymethods]
impl Program {
    /// The file name the program was compiled under.
    #[getter]
    fn filename(&self) -> &str {
        &self.filename
    }

    /// The source text.
    #[getter]
    fn source(&self) -> PyResult<String> {
        Ok(self.get()?.source.to_string())
    }

    /// Readable bytecode listing.
    fn disassemble(&self, py: Python<'_>) -> PyResult<String> {
        let program = self.get()?;
        errors::guard(py, || Ok(harnvm_core::disassemble(program)))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<harnvm.Program {}>", PyString::new(py, &self.filename).repr()?))
    }
}

thread_local! {
    /// Compiled modules of everything compiled on this thread (`harnvm.compile`
    /// and every `Vm`). Entries are revalidated against their sources, through
    /// the resolver of the compilation at hand, before reuse: sharing them
    /// across Vms with different resolvers is safe, and a new Vm does not
    /// recompile the std modules.
    static THREAD_MODULES: RefCell<ModuleCache> = RefCell::new(ModuleCache::new());
}

/// Runs `f` with the thread's compiled-module cache.
pub(crate) fn with_module_cache<T>(f: impl FnOnce(&mut ModuleCache) -> PyResult<T>) -> PyResult<T> {
    THREAD_MODULES.with(|cache| {
        let mut cache = cache
            .try_borrow_mut()
            .map_err(|_| PyRuntimeError::new_err("harnvm: compilation re-entered from a module provider"))?;
        f(&mut cache)
    })
}

/// The module resolver used without a `Vm`: `harnvm._modules.DEFAULT_RESOLVER`.
fn default_resolver(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("harnvm._modules")?.getattr("DEFAULT_RESOLVER")
}

/// Compiles `source` with its imports resolved by `resolver` and compiled
/// modules kept in `cache`, statically checking it first unless `check` is
/// `None` (one parse serves both). Checker findings go to
/// `check::deliver` (`HarnTypeError` on errors); other failures become
/// `HarnSyntaxError` (or `HarnImportError` / `HarnModuleNotFoundError` for
/// imports).
pub fn compile_with(
    py: Python<'_>,
    source: &str,
    filename: &str,
    resolver: Bound<'_, PyAny>,
    cache: &mut ModuleCache,
    check: Option<CheckOptions>,
) -> PyResult<Rc<harnvm_core::Program>> {
    let mut loader = PyLoader::new(resolver);
    // The GIL is released while the compiler runs (the resolver attaches for
    // each module it loads): other Python threads go on meanwhile.
    // SAFETY of `AssertSend`: `detach` runs the closure on this thread.
    let work = AssertSend((&mut loader, cache, source, filename, check.as_ref()));
    let outcome = py
        .detach(move || {
            let (loader, cache, source, filename, check) = work.into_inner();
            AssertSend(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                harnvm_core::compile::compile_checked(source, filename, loader, cache, check)
            })))
        })
        .into_inner();
    let checked = match outcome {
        Ok(c) => c,
        Err(payload) => return Err(errors::panic_error(py, &*payload)),
    };
    // Warnings are delivered even when the compile then fails, as harn
    // renders every diagnostic before compiling.
    crate::check::deliver(py, &checked.diagnostics, source)?;
    match checked.program {
        Ok(Some(program)) => Ok(program),
        Ok(None) => Err(PyRuntimeError::new_err("harnvm: the checker reported errors that were not raised")),
        Err(e) => {
            let err = errors::vm_error(py, &e, 0);
            Err(loader.with_cause(py, err))
        }
    }
}

/// Compiles `source` (imports: the default resolver), checking it first
/// unless `check` is `None`.
pub fn compile_source(
    py: Python<'_>,
    source: &str,
    filename: &str,
    check: Option<CheckOptions>,
) -> PyResult<Rc<harnvm_core::Program>> {
    let resolver = default_resolver(py)?;
    with_module_cache(|cache| compile_with(py, source, filename, resolver, cache, check))
}

/// Accepts a `Program` or source text.
pub fn program_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, filename: &str) -> PyResult<Rc<harnvm_core::Program>> {
    if let Ok(p) = obj.cast::<Program>() {
        return p.get().get().cloned();
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return compile_source(py, s.to_str()?, filename, None);
    }
    Err(PyTypeError::new_err(format!("expected a harnvm.Program or Harn source text (str), got {}", obj.get_type().name()?)))
}

/// Reads a source file as UTF-8, raising the usual `OSError`s and
/// `UnicodeDecodeError`.
pub fn read_source(py: Python<'_>, path: &PathBuf) -> PyResult<String> {
    let bytes = std::fs::read(path)?;
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let err = e.utf8_error();
            Err(PyErr::from_value(PyUnicodeDecodeError::new_utf8(py, e.as_bytes(), err)?.into_any()))
        }
    }
}
