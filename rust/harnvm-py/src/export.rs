//! `harnvm.Export`: a pre-resolved handle on one export of a module,
//! made by `Vm.export(import_path, name)`.
//!
//! `Vm.call_export` finds the module (a hash lookup by import path), then
//! the export (a search by name) and checks the arity on every crossing. A
//! handle does all of that once; calling it only converts the arguments and
//! runs the call, with the same conversions, errors and output handling as
//! `call_export` (it goes through the same `Vm::execute_with`). It also
//! remembers where its export lives in the VM (`ExportMemo`), so a warm call
//! does not look the module instance up either. A handle made with
//! `release_gil=False` also keeps the GIL during its calls.

use std::cell::RefCell;
use std::rc::Rc;

use harnvm_core::vm::ExportMemo;
use harnvm_core::CompiledModule;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

use crate::entry;
use crate::pinned::wrong_thread;
use crate::pinned::Pinned;
use crate::vm::Vm;
use crate::{convert, errors};

/// A callable handle on one export: `clamp = vm.export("std/math", "clamp")`,
/// then `clamp(5, 0, 10)` (like `vm.call_export("std/math", "clamp", 5, 0, 10)`)
/// or `handle.typed(payload, result_type)` (like `vm.call_export_typed`).
/// It keeps its Vm alive and is usable on the Vm's thread only.
#[pyclass(module = "harnvm", name = "Export", frozen)]
pub struct ExportHandle {
    vm: Py<Vm>,
    parts: Pinned<HandleParts>,
    import_path: String,
    /// Argument counts the export accepts (see `entry::check_arity`).
    min_args: usize,
    max_args: usize,
    /// Whether calls release the GIL while Harn runs (`Vm.export(..., release_gil=...)`).
    release_gil: bool,
}

/// The `Rc` data of a handle (one `Pinned`: one thread check per call).
struct HandleParts {
    module: Rc<CompiledModule>,
    export: harnvm_core::compile::modules::Export,
    memo: RefCell<ExportMemo>,
}

impl ExportHandle {
    pub fn new(
        vm: Py<Vm>,
        import_path: &str,
        module: Rc<CompiledModule>,
        export: harnvm_core::compile::modules::Export,
        release_gil: bool,
    ) -> ExportHandle {
        let (min_args, max_args) = match &export.proto {
            Some(proto) => (
                proto.params.iter().filter(|p| !p.has_default && !p.rest).count(),
                if proto.has_rest { usize::MAX } else { proto.params.len() },
            ),
            None => (0, usize::MAX),
        };
        ExportHandle {
            vm,
            parts: Pinned::new(HandleParts { module, export, memo: RefCell::new(ExportMemo::default()) }),
            import_path: import_path.to_string(),
            min_args,
            max_args,
            release_gil,
        }
    }

    fn parts(&self) -> PyResult<&HandleParts> {
        self.parts.get().ok_or_else(|| wrong_thread("Export"))
    }

    /// The arity check of `call_export`, with its error text when it fails.
    fn check_arity(&self, py: Python<'_>, export: &harnvm_core::compile::modules::Export, given: usize) -> PyResult<()> {
        if given >= self.min_args && given <= self.max_args {
            return Ok(());
        }
        entry::check_arity(py, &self.import_path, export, given)
    }
}

#[pymethods]
impl ExportHandle {
    /// Calls the export with Python arguments converted straight to Harn
    /// values (as `Vm.call_export`).
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let parts = self.parts()?;
        self.check_arity(py, &parts.export, args.len())?;
        let vm = crate::vm::Vm::remember(self.vm.bind(py))?;
        let args = if args.is_empty() {
            Vec::new()
        } else {
            let id = vm.current_id()?;
            args.iter().map(|a| convert::from_py(&a, Some(id))).collect::<PyResult<Vec<_>>>()?
        };
        vm.execute_with(py, self.release_gil, move |core| parts.call(core, args))
    }

    /// The typed crossing (as `Vm.call_export_typed`): `payload` is the single
    /// JSON-marshalled argument, the result is decoded into `result_type`.
    fn typed(&self, py: Python<'_>, payload: &Bound<'_, PyAny>, result_type: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let parts = self.parts()?;
        self.check_arity(py, &parts.export, 1)?;
        let vm = self.vm.get();
        vm.current_id()?;
        let arg = errors::guard(py, || entry::payload_to_value(payload))?;
        let (result, _) = vm.execute_value(py, self.release_gil, move |core| parts.call(core, vec![arg]))?;
        crate::vm::decode_typed(py, result, &self.import_path, &parts.export.name, result_type)
    }

    /// The import path the export's module was loaded under.
    #[getter]
    fn import_path(&self) -> &str {
        &self.import_path
    }

    /// The export's name.
    #[getter]
    fn name(&self) -> PyResult<String> {
        Ok(self.parts()?.export.name.clone())
    }

    /// Whether calls release the GIL while Harn runs.
    #[getter]
    fn release_gil(&self) -> bool {
        self.release_gil
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let name = self.parts()?.export.name.clone();
        Ok(format!("<harnvm.Export {}.{name}>", PyString::new(py, &self.import_path).repr()?))
    }
}

impl HandleParts {
    /// Calls the export on `core` through the handle's memo.
    #[inline]
    fn call(&self, core: &mut harnvm_core::Vm, args: Vec<harnvm_core::Value>) -> harnvm_core::VmResult<harnvm_core::Value> {
        let slot = self.export.slot;
        match self.memo.try_borrow_mut() {
            Ok(mut memo) => core.call_export_memo(&self.module, slot, &mut memo, args),
            // (Only reachable re-entrantly, which `execute_with` refuses first.)
            Err(_) => core.call_export_at(&self.module, slot, args),
        }
    }
}
