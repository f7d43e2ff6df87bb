//! Argument helpers shared by builtins and methods.
//!
//! Harn does not check arity: a missing argument reads as `nil`. Builtins that
//! need a particular type throw a plain string naming the builtin, e.g.
//! `abs: expected a number, got string`, which is how the reference reports
//! builtin argument errors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use rustc_hash::FxBuildHasher;

use super::Flow;
use crate::runtime::error::{VmError, VmResult};
pub use crate::runtime::native::{check_alloc, check_alloc_product};
pub use crate::runtime::value::key_of;
use crate::runtime::value::{arg, HStr, Value};

/// Shorthand for a builtin that finished with `v`.
#[inline]
pub fn done(v: Value) -> VmResult<Flow> {
    Ok(Flow::Done(v))
}

/// `"{builtin}: expected {what}, got {type}"` as a thrown string.
#[cold]
pub fn expected(builtin: &str, what: &str, got: &Value) -> VmError {
    VmError::throw_msg(format!("{builtin}: expected {what}, got {}", got.type_name()))
}

/// Argument `i` as a list (or set) slice.
pub fn list_arg<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<&'a Rc<Vec<Value>>> {
    match arg(args, i) {
        Value::List(items) | Value::Set(items) => Ok(items),
        other => Err(expected(builtin, "a list", other)),
    }
}

/// Argument `i` as an int.
pub fn int_arg(args: &[Value], i: usize, builtin: &str) -> VmResult<i64> {
    match arg(args, i) {
        Value::Int(n) => Ok(*n),
        other => Err(expected(builtin, "an int", other)),
    }
}

/// Argument `i` as a number (int or float, widened to f64).
pub fn number_arg(args: &[Value], i: usize, builtin: &str) -> VmResult<f64> {
    let v = arg(args, i);
    v.as_f64().ok_or_else(|| expected(builtin, "a number", v))
}

/// Argument `i` as a callable (closure or builtin reference).
pub fn callable_arg<'a>(args: &'a [Value], i: usize, builtin: &str) -> VmResult<&'a Value> {
    match arg(args, i) {
        v if v.is_callable() => Ok(v),
        other => Err(expected(builtin, "a callable", other)),
    }
}

/// Argument `i` as text: strings as they are, anything else displayed (the
/// reference's string builtins coerce this way).
pub fn text_arg(args: &[Value], i: usize) -> std::borrow::Cow<'_, str> {
    match arg(args, i) {
        Value::Str(s) => std::borrow::Cow::Borrowed(s.as_str()),
        Value::Nil if i >= args.len() => std::borrow::Cow::Borrowed(""),
        other => std::borrow::Cow::Owned(other.display()),
    }
}

/// Argument `i` as text, or `None` when missing or nil.
pub fn opt_text_arg(args: &[Value], i: usize) -> Option<std::borrow::Cow<'_, str>> {
    match arg(args, i) {
        Value::Nil => None,
        _ => Some(text_arg(args, i)),
    }
}

thread_local! {
    /// One shared string per fixed name (type names, result keys): builtins
    /// that return the same text every time hand out a reference instead of
    /// allocating. Bounded by the number of `'static` names in the binary.
    static INTERNED: RefCell<HashMap<&'static str, HStr, FxBuildHasher>> =
        const { RefCell::new(HashMap::with_hasher(FxBuildHasher)) };
}

/// The shared string for the fixed name `name` (allocated once per thread).
pub fn interned(name: &'static str) -> HStr {
    INTERNED.with(|names| {
        let mut names = names.borrow_mut();
        Rc::clone(names.entry(name).or_insert_with(|| Rc::new(name.to_string())))
    })
}
