//! Host functions: Python callables registered with `Vm.register`, called
//! from Harn as core host functions, and the bookkeeping that links their
//! exceptions and awaitables to the run in progress.

use std::cell::RefCell;
use std::rc::Rc;

use harnvm_core::vm::{HostFn, HostReply};
use harnvm_core::{Value, VmError};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert;
use crate::driver::RunFailure;

/// What registered Python functions hand to the driver: awaitables to
/// schedule, and the Python exceptions behind Harn errors (for `__cause__`).
#[derive(Default)]
pub(crate) struct HostShared {
    pub(crate) pending: Vec<(u64, Py<PyAny>)>,
    errors: Vec<(String, PyErr)>,
}

/// Python exceptions remembered for error chaining (the most recent ones).
const KEPT_HOST_ERRORS: usize = 32;

pub(crate) type Host = Rc<RefCell<HostShared>>;

/// A Python exception raised by a host function → a Harn error `catch` can
/// bind: the string `"<ExceptionType>: <message>"`. Non-`Exception`s
/// (KeyboardInterrupt, SystemExit) stop the run instead: they are kept in
/// `failure` and re-raised when the run ends.
pub(crate) fn host_exception(py: Python<'_>, err: PyErr, host: &Host, failure: &RunFailure) -> VmError {
    if !err.is_instance_of::<pyo3::exceptions::PyException>(py) {
        failure.record(err);
        return VmError::new(harnvm_core::ErrorKind::Interrupted);
    }
    let type_name = err.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".to_string());
    let text = err.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    let message = if text.is_empty() { type_name } else { format!("{type_name}: {text}") };
    let mut shared = host.borrow_mut();
    if shared.errors.len() >= KEPT_HOST_ERRORS {
        shared.errors.remove(0);
    }
    shared.errors.push((message.clone(), err));
    VmError::thrown(Value::str(message))
}

/// Sets the Python exception behind an uncaught host-function error as the
/// `__cause__` of `err` (the Python error for `e`), and forgets the others.
pub(crate) fn chain_cause(py: Python<'_>, host: &Host, e: &VmError, err: &PyErr) {
    let mut shared = host.borrow_mut();
    if let Some(text) = e.thrown_value().and_then(|v| v.as_str()) {
        if let Some(i) = shared.errors.iter().rposition(|(m, _)| m.as_str() == text) {
            let (_, cause) = shared.errors.remove(i);
            err.set_cause(py, Some(cause));
        }
    }
    shared.errors.clear();
}

/// The Python function behind `vm.register(name, fn)`, as a core host function.
pub(crate) fn host_fn(func: Py<PyAny>, host: Host, vm_id: u64, failure: RunFailure) -> HostFn {
    Box::new(move |call, args: &[Value]| {
        Python::attach(|py| {
            let converted: PyResult<Vec<Bound<'_, PyAny>>> = args.iter().map(|v| convert::to_py(py, v, vm_id)).collect();
            let outcome = converted.and_then(|a| PyTuple::new(py, a)).and_then(|a| func.bind(py).call1(a));
            let obj = match outcome {
                Ok(obj) => obj,
                Err(e) => return Err(host_exception(py, e, &host, &failure)),
            };
            if obj.hasattr("__await__").unwrap_or(false) {
                host.borrow_mut().pending.push((call, obj.unbind()));
                return Ok(HostReply::Pending);
            }
            match convert::from_py(&obj, Some(vm_id)) {
                Ok(v) => Ok(HostReply::Ready(v)),
                Err(e) => Err(host_exception(py, e, &host, &failure)),
            }
        })
    })
}

/// Closes coroutines that will never be awaited (the run ended first), so
/// Python does not warn about them.
pub(crate) fn close_awaitables(py: Python<'_>, calls: &[(u64, Py<PyAny>)]) {
    for (_, aw) in calls {
        let aw = aw.bind(py);
        if aw.hasattr("close").unwrap_or(false) {
            let _ = aw.call_method0("close");
        }
    }
}
