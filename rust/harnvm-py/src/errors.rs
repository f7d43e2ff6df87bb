//! The one place where core errors become Python exceptions.
//!
//! The exception classes are plain Python classes in `harnvm/_errors.py`
//! (they own their `__str__` formatting and pickle like any exception); this
//! module decides which class a `VmError` maps to and fills in its
//! attributes. It also turns Rust panics into `HarnInternalError`, so no
//! `PanicException` (a `BaseException`) ever reaches user code.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use harnvm_core::{ErrorKind, LimitKind, Phase, VmError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyType};

use crate::convert;

const ERRORS_MODULE: &str = "harnvm._errors";

static SYNTAX_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static RUNTIME_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TIMEOUT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MEMORY_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static STACK_OVERFLOW_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INTERRUPTED_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INSTRUCTION_LIMIT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static OUTPUT_LIMIT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INTERNAL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONVERSION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static IMPORT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MODULE_NOT_FOUND_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ARGUMENT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn class<'py>(py: Python<'py>, cell: &'static PyOnceLock<Py<PyType>>, name: &str) -> PyResult<Bound<'py, PyType>> {
    cell.import(py, ERRORS_MODULE, name).cloned()
}

/// Instantiates `cls(message, **kwargs)` as a `PyErr`. If the class cannot be
/// loaded (the pure-Python half of the package is missing), the message
/// still reaches the user as a `RuntimeError`.
fn build(
    py: Python<'_>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: &str,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyErr {
    let made = class(py, cell, name).and_then(|cls| cls.call((message,), kwargs));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => {
            let err = PyRuntimeError::new_err(format!("{name}: {message}"));
            err.set_cause(py, Some(e));
            err
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Lex => "lex",
        Phase::Parse => "parse",
        Phase::Compile => "compile",
        Phase::Runtime => "runtime",
    }
}

/// A stable, lower-case name for the error kind (`HarnRuntimeError.kind`).
fn kind_name(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Thrown(_) => "thrown",
        ErrorKind::Type(_) => "type",
        ErrorKind::Runtime(_) => "runtime",
        ErrorKind::DivisionByZero => "division_by_zero",
        ErrorKind::UndefinedVariable(..) => "undefined_variable",
        ErrorKind::UndefinedBuiltin(..) => "undefined_builtin",
        ErrorKind::ImmutableAssignment(_) => "immutable_assignment",
        ErrorKind::StackOverflow => "stack_overflow",
        ErrorKind::Arity(_) => "arity",
        ErrorKind::Limit(..) => "limit",
        ErrorKind::Interrupted => "interrupted",
        ErrorKind::Syntax(_) => "syntax",
        ErrorKind::ModuleNotFound { .. } => "module_not_found",
        ErrorKind::Import { .. } => "import",
    }
}

/// Converts a core error into the matching `harnvm` exception.
///
/// * lex/parse/compile errors (and any `Syntax` error, e.g. from an imported
///   module) → `HarnSyntaxError(message, filename, line, column, source_line, phase)`;
/// * stack overflow → `HarnStackOverflowError`; a `Limit` by its `LimitKind`
///   (time → `HarnTimeoutError`, memory → `HarnMemoryError`, instructions →
///   `HarnInstructionLimitError`, output → `HarnOutputLimitError`); a host
///   interrupt → `HarnInterruptedError`;
/// * everything else → `HarnRuntimeError(message, harn_stack, value, kind, filename, line)`
///   where `message` is Harn's uncaught-error text.
///
/// `vm_id` identifies the Vm that raised it (0: none), for the handles in a
/// converted thrown value.
pub fn vm_error(py: Python<'_>, err: &VmError, vm_id: u64) -> PyErr {
    match guard(py, || Ok(vm_error_inner(py, err, vm_id))) {
        Ok(e) | Err(e) => e,
    }
}

fn vm_error_inner(py: Python<'_>, err: &VmError, vm_id: u64) -> PyErr {
    let data = &err.0;
    // Import failures: `HarnModuleNotFoundError` / `HarnImportError(module, export, filename, line)`.
    let import = match &data.kind {
        ErrorKind::ModuleNotFound { module, .. } => Some((&MODULE_NOT_FOUND_ERROR, "HarnModuleNotFoundError", module, None)),
        ErrorKind::Import { module, export, .. } => Some((&IMPORT_ERROR, "HarnImportError", module, export.as_deref())),
        _ => None,
    };
    if let Some((cell, name, module, export)) = import {
        let kwargs = PyDict::new(py);
        let filled = (|| -> PyResult<()> {
            kwargs.set_item("module", module)?;
            kwargs.set_item("export", export)?;
            kwargs.set_item("filename", &data.file)?;
            kwargs.set_item("line", data.line)?;
            Ok(())
        })();
        if let Err(e) = filled {
            return e;
        }
        return build(py, cell, name, &err.message(), Some(&kwargs));
    }
    let kwargs = PyDict::new(py);
    let filled = (|| -> PyResult<()> {
        kwargs.set_item("filename", &data.file)?;
        kwargs.set_item("line", data.line)?;
        let is_syntax = data.phase != Phase::Runtime || matches!(data.kind, ErrorKind::Syntax(_));
        if is_syntax {
            kwargs.set_item("column", data.column)?;
            kwargs.set_item("source_line", data.source_line.as_deref())?;
            kwargs.set_item("phase", phase_name(data.phase))?;
        } else {
            kwargs.set_item("kind", kind_name(&data.kind))?;
            let frames = PyList::empty(py);
            for f in &data.stack {
                frames.append((f.function.as_str(), f.file.as_str(), f.line, f.column))?;
            }
            kwargs.set_item("harn_stack", frames)?;
            kwargs.set_item("column", data.column)?;
            // A thrown value that cannot be converted (too deep) is reported as None
            // rather than hiding the error itself.
            let value = match err.thrown_value() {
                Some(v) => convert::to_py(py, v, vm_id).ok(),
                None => None,
            };
            kwargs.set_item("value", value)?;
        }
        Ok(())
    })();
    if let Err(e) = filled {
        return e;
    }
    let is_syntax = data.phase != Phase::Runtime || matches!(data.kind, ErrorKind::Syntax(_));
    if is_syntax {
        return build(py, &SYNTAX_ERROR, "HarnSyntaxError", &err.message(), Some(&kwargs));
    }
    let message = err.uncaught_message();
    let (cell, name) = match &data.kind {
        ErrorKind::StackOverflow => (&STACK_OVERFLOW_ERROR, "HarnStackOverflowError"),
        ErrorKind::Limit(LimitKind::Time, _) => (&TIMEOUT_ERROR, "HarnTimeoutError"),
        ErrorKind::Limit(LimitKind::Memory, _) => (&MEMORY_ERROR, "HarnMemoryError"),
        ErrorKind::Limit(LimitKind::Instructions, _) => (&INSTRUCTION_LIMIT_ERROR, "HarnInstructionLimitError"),
        ErrorKind::Limit(LimitKind::Output, _) => (&OUTPUT_LIMIT_ERROR, "HarnOutputLimitError"),
        ErrorKind::Interrupted => (&INTERRUPTED_ERROR, "HarnInterruptedError"),
        _ => (&RUNTIME_ERROR, "HarnRuntimeError"),
    };
    build(py, cell, name, &message, Some(&kwargs))
}

/// A Python value that has no Harn equivalent (or vice versa).
pub fn conversion(py: Python<'_>, message: impl AsRef<str>) -> PyErr {
    build(py, &CONVERSION_ERROR, "HarnConversionError", message.as_ref(), None)
}

/// A host call whose arguments do not fit the callee's parameters.
pub fn argument(py: Python<'_>, message: impl AsRef<str>) -> PyErr {
    build(py, &ARGUMENT_ERROR, "HarnArgumentError", message.as_ref(), None)
}

/// An import that failed on the host side (`module`: the import path).
pub fn import(py: Python<'_>, module: &str, export: Option<&str>, message: impl AsRef<str>) -> PyErr {
    let kwargs = PyDict::new(py);
    if let Err(e) = kwargs.set_item("module", module).and_then(|_| kwargs.set_item("export", export)) {
        return e;
    }
    build(py, &IMPORT_ERROR, "HarnImportError", message.as_ref(), Some(&kwargs))
}

/// A bug in harnvm: a Rust panic or a broken invariant.
pub fn internal(py: Python<'_>, message: impl AsRef<str>) -> PyErr {
    build(py, &INTERNAL_ERROR, "HarnInternalError", &format!("internal error: {}", message.as_ref()), None)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Rust panic with a non-string payload".to_string()
    }
}

/// The `HarnInternalError` for a caught panic payload.
pub fn panic_error(py: Python<'_>, payload: &(dyn Any + Send)) -> PyErr {
    internal(py, panic_message(payload))
}

/// Runs `f`, turning a panic into `HarnInternalError`. Every call into the
/// core goes through here.
pub fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    // Parsing, compiling, running and converting recurse natively (bounded,
    // but more than a small thread stack holds): on a thread with little
    // stack left, run on a heap-allocated stack segment. The panic is caught
    // inside, so no unwind crosses the switch.
    match harnvm_core::runtime::deep::grow_large(|| catch_unwind(AssertUnwindSafe(f))) {
        Ok(result) => result,
        Err(payload) => Err(panic_error(py, &*payload)),
    }
}
