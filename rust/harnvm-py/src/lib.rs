//! `harnvm._native`: the thin PyO3 layer over `harnvm-core`.
//!
//! * `vm.rs`: the `Program` and `Vm` classes;
//! * `convert.rs`: every Harn ↔ Python value conversion;
//! * `errors.rs`: every core error → Python exception mapping, and the panic guard;
//! * `entry.rs`: the module resolver bridge and `call_export_typed`'s JSON marshalling.
//! * `export.rs`: `Export`, the pre-resolved export handle behind `Vm.export`;
//! * `internals.rs`: `harnvm.internals` (chunks, opcodes, inline-cache entries);
//! * `bench.rs`: `bench`, the inline-cache timing fixtures driven from `perf/`.
//! * `transcript.rs`: `transcript_project` and its bench fixture `_transcript_bench`.
//!
//! The public API is re-exported (and documented) by `python/harnvm/__init__.py`.

mod bench;
mod convert;
mod entry;
mod errors;
mod export;
mod internals;
mod pinned;
mod transcript;
mod vm;

use pyo3::prelude::*;

/// Compiles Harn source text into a `Program`.
#[pyfunction]
#[pyo3(signature = (source, filename = "<string>"))]
fn compile(py: Python<'_>, source: &str, filename: &str) -> PyResult<vm::Program> {
    Ok(vm::Program::new(vm::compile_source(py, source, filename)?))
}

/// Readable bytecode listing of a `Program` or of source text.
#[pyfunction]
#[pyo3(signature = (program, *, filename = "<string>"))]
fn disassemble(py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<String> {
    let program = vm::program_arg(py, program, filename)?;
    errors::guard(py, || Ok(harnvm_core::disassemble(&program)))
}

/// Harn's display text (what `println` would print) for a Python value.
#[pyfunction]
fn display(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<String> {
    errors::guard(py, || Ok(convert::from_py(value, None)?.display()))
}

/// Converts a Python value to Harn and back (for tests of the marshalling).
#[pyfunction]
fn _roundtrip<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    errors::guard(py, || convert::to_py(py, &convert::from_py(value, None)?, 0))
}

/// Panics inside the guard (for tests that no panic escapes as `PanicException`).
#[pyfunction]
fn _panic(py: Python<'_>, message: &str) -> PyResult<()> {
    errors::guard(py, || panic!("{message}"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_CONVERSION_DEPTH", convert::MAX_DEPTH)?;
    m.add_class::<vm::Program>()?;
    m.add_class::<vm::Vm>()?;
    m.add_class::<vm::InterruptHandle>()?;
    m.add_class::<export::ExportHandle>()?;
    m.add_class::<convert::HarnFunction>()?;
    m.add_class::<convert::HarnObject>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(disassemble, m)?)?;
    m.add_function(wrap_pyfunction!(display, m)?)?;
    m.add_function(wrap_pyfunction!(_roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(_panic, m)?)?;
    m.add_class::<internals::InternalChunk>()?;
    m.add_class::<internals::AdaptiveBinaryCacheEntry>()?;
    m.add_class::<internals::PropertyCacheEntry>()?;
    m.add_class::<internals::MethodCacheEntry>()?;
    m.add_class::<internals::DirectCallCacheEntry>()?;
    m.add_function(wrap_pyfunction!(internals::_op_table, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_fixtures, m)?)?;
    m.add_function(wrap_pyfunction!(transcript::transcript_project, m)?)?;
    m.add_function(wrap_pyfunction!(transcript::_transcript_bench, m)?)?;
    Ok(())
}
