//! The static checker from Python: `harnvm._native._check` (what
//! `harnvm.check` wraps) and `deliver`, which hands the findings of a checked
//! compile (`program::compile_with`) to `harnvm._check._deliver` (it raises
//! `HarnTypeError` on errors and gives warnings to the warnings hook).

use pyo3::prelude::*;

use harnvm_core::compile::check::{render, CheckOptions, Diagnostic};

/// (severity, code, message, file, line, column, end, help, notes, rendered)
type DiagTuple = (String, Option<String>, String, String, u32, u32, Option<(u32, u32)>, Option<String>, Vec<String>, String);

fn tuple(d: &Diagnostic, source: &str) -> DiagTuple {
    (
        d.severity.as_str().to_string(),
        d.code.map(str::to_string),
        d.message.clone(),
        d.file.clone(),
        d.line,
        d.column,
        d.end,
        d.help.clone(),
        d.notes.clone(),
        render(d, source),
    )
}

fn diagnostics(source: &str, filename: &str, extra_names: Vec<String>) -> Result<Vec<Diagnostic>, harnvm_core::VmError> {
    harnvm_core::compile::check_source(source, filename, &CheckOptions { extra_names })
}

/// Checks `source`; a lex/parse error raises `HarnSyntaxError`.
#[pyfunction]
#[pyo3(signature = (source, filename = "<string>", extra_names = Vec::new()))]
pub fn _check(py: Python<'_>, source: &str, filename: &str, extra_names: Vec<String>) -> PyResult<Vec<DiagTuple>> {
    crate::errors::guard(py, || match diagnostics(source, filename, extra_names) {
        Ok(ds) => Ok(ds.iter().map(|d| tuple(d, source)).collect()),
        Err(e) => Err(crate::errors::vm_error(py, &e, 0)),
    })
}

/// Hands the checker's findings of a compile to `harnvm._check._deliver`,
/// which raises `HarnTypeError` on errors and passes warnings to the hook.
pub fn deliver(py: Python<'_>, diagnostics: &[Diagnostic], source: &str) -> PyResult<()> {
    if diagnostics.is_empty() {
        return Ok(());
    }
    let raw: Vec<DiagTuple> = diagnostics.iter().map(|d| tuple(d, source)).collect();
    py.import("harnvm._check")?.getattr("_deliver")?.call1((raw,))?;
    Ok(())
}
