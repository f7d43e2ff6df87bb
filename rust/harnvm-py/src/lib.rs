//! `harnvm._native`: the thin PyO3 layer over `harnvm-core`.
//!
//! * `program.rs`: `Program`, compilation and the thread's module cache;
//! * `vm.rs`: the `Vm` class and its entry points;
//! * `driver.rs`: driving runs to their end (the blocking waiter, the run failure);
//! * `host.rs`: registered Python host functions;
//! * `output.rs`: routing Harn output to Python;
//! * `interrupt.rs`: `InterruptHandle`;
//! * `convert.rs`: every Harn ↔ Python value conversion;
//! * `errors.rs`: every core error → Python exception mapping, and the panic guard;
//! * `entry.rs`: the module resolver bridge and `call_export_typed`'s JSON marshalling.
//! * `export.rs`: `Export`, the pre-resolved export handle behind `Vm.export`;
//! * `internals.rs`: `harnvm.internals` (chunks, opcodes, inline-cache entries);
//! * `bench.rs`: `bench`, the inline-cache timing fixtures driven from `perf/`;
//! * `check.rs`: the static checker gate and `_check`;
//! * `transcript.rs`: `transcript_project` and its bench fixture `_transcript_bench`.
//!
//! The public API is re-exported (and documented) by `python/harnvm/__init__.py`.

mod bench;
mod check;
mod convert;
mod driver;
mod entry;
mod errors;
mod export;
mod host;
mod internals;
mod interrupt;
mod output;
mod pinned;
mod program;
mod transcript;
mod vm;

use pyo3::prelude::*;

/// Counts the bytes live per thread, for the `max_memory` budget (see
/// `harnvm_core::runtime::budget`).
#[global_allocator]
static ALLOCATOR: harnvm_core::runtime::budget::CountingAlloc = harnvm_core::runtime::budget::CountingAlloc;

/// Compiles Harn source text into a `Program`.
#[pyfunction]
#[pyo3(signature = (source, filename = "<string>", *, typecheck = true))]
fn compile(py: Python<'_>, source: &str, filename: &str, typecheck: bool) -> PyResult<program::Program> {
    let check = typecheck.then(harnvm_core::compile::check::CheckOptions::default);
    Ok(program::Program::new(program::compile_source(py, source, filename, check)?))
}

/// Readable bytecode listing of a `Program` or of source text.
#[pyfunction]
#[pyo3(signature = (program, *, filename = "<string>"))]
fn disassemble(py: Python<'_>, program: &Bound<'_, PyAny>, filename: &str) -> PyResult<String> {
    let program = program::program_arg(py, program, filename)?;
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

/// `(text, pad)`: the part of a source line an error report shows (about
/// `width` terminal columns around the 1-based `column`, cut ends marked
/// `...`) and the padding that puts a caret under the column, wide
/// characters counted as two columns (`HarnSyntaxError.__str__`).
#[pyfunction]
#[pyo3(signature = (line, column, width = 120))]
fn _source_excerpt(py: Python<'_>, line: &str, column: u32, width: usize) -> PyResult<(String, String)> {
    errors::guard(py, || {
        let e = harnvm_core::syntax::pos::excerpt(line, column, width);
        Ok((e.text, e.pad))
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_CONVERSION_DEPTH", convert::MAX_DEPTH)?;
    m.add_class::<program::Program>()?;
    m.add_class::<vm::Vm>()?;
    m.add_class::<interrupt::InterruptHandle>()?;
    m.add_class::<export::ExportHandle>()?;
    m.add_class::<convert::HarnFunction>()?;
    m.add_class::<convert::HarnObject>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)?;
    m.add_function(wrap_pyfunction!(disassemble, m)?)?;
    m.add_function(wrap_pyfunction!(display, m)?)?;
    m.add_function(wrap_pyfunction!(_roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(_source_excerpt, m)?)?;
    m.add_function(wrap_pyfunction!(check::_check, m)?)?;
    m.add_class::<internals::InternalChunk>()?;
    m.add_class::<internals::AdaptiveBinaryCacheEntry>()?;
    m.add_class::<internals::PropertyCacheEntry>()?;
    m.add_class::<internals::MethodCacheEntry>()?;
    m.add_class::<internals::DirectCallCacheEntry>()?;
    m.add_function(wrap_pyfunction!(internals::_op_table, m)?)?;
    m.add_function(wrap_pyfunction!(internals::panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(internals::_limit_error, m)?)?;
    m.add_function(wrap_pyfunction!(internals::cache_set_index_for_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(internals::set_inline_cache_entry, m)?)?;
    m.add_function(wrap_pyfunction!(internals::peek_adaptive_binary_cache, m)?)?;
    m.add_function(wrap_pyfunction!(internals::peek_property_cache, m)?)?;
    m.add_function(wrap_pyfunction!(internals::peek_method_cache, m)?)?;
    m.add_function(wrap_pyfunction!(internals::peek_direct_call_cache, m)?)?;
    m.add_function(wrap_pyfunction!(internals::inline_cache_report, m)?)?;
    m.add_function(wrap_pyfunction!(internals::take_timer_waits, m)?)?;
    m.add_function(wrap_pyfunction!(internals::inline_cache_disassembly, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench, m)?)?;
    m.add_function(wrap_pyfunction!(bench::bench_fixtures, m)?)?;
    m.add_function(wrap_pyfunction!(transcript::transcript_project, m)?)?;
    m.add_function(wrap_pyfunction!(transcript::_transcript_bench, m)?)?;
    Ok(())
}
