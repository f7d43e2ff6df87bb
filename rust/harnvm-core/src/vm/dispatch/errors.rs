//! The errors ops raise, built out of line: the text and its formatting
//! stay off the hot path of the handlers that can fail.

use crate::runtime::error::{ErrorKind, VmError};
use crate::runtime::value::Value;

#[cold]
#[inline(never)]
pub(super) fn undefined_builtin(text: &str) -> VmError {
    VmError::new(ErrorKind::UndefinedBuiltin(text.to_string(), None))
}

#[cold]
#[inline(never)]
pub(super) fn immutable_assignment(name: &str) -> VmError {
    VmError::new(ErrorKind::ImmutableAssignment(name.to_string()))
}

#[cold]
#[inline(never)]
pub(super) fn redeclare(name: &str) -> VmError {
    VmError::runtime(format!("Cannot redeclare immutable variable '{name}' in the same scope (use 'var' for mutable bindings)"))
}

#[cold]
#[inline(never)]
pub(super) fn range_bounds(start: &Value, end: &Value) -> VmError {
    VmError::type_error(format!("range bounds must be integers, got {} and {}", start.type_name(), end.type_name()))
}

#[cold]
#[inline(never)]
pub(super) fn pipe_target(callee: &Value) -> VmError {
    VmError::type_error(format!("cannot pipe into {}", callee.type_name()))
}

/// A destructuring pattern met the wrong kind of value.
#[cold]
#[inline(never)]
pub(super) fn destructure(v: &Value, want_list: bool) -> VmError {
    VmError::type_error(if want_list {
        format!("cannot destructure {} with [...] pattern — expected list", v.type_name())
    } else {
        format!("cannot destructure {} with {{...}} pattern — expected dict", v.type_name())
    })
}

#[cold]
#[inline(never)]
pub(super) fn not_a_result(v: &Value) -> VmError {
    VmError::type_error(format!("? operator requires a Result value, got {}", v.type_name()))
}

#[cold]
#[inline(never)]
pub(super) fn yield_outside_generator() -> VmError {
    VmError::runtime("yield outside a generator")
}
