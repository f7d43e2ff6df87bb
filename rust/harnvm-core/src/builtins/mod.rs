//! Builtin functions: the registry and the interface the VM calls them through.
//!
//! Every builtin has a dense numeric id (its index in `BUILTINS`), which the
//! compiler embeds in `CallBuiltin` instructions; names are cold data.
//! A builtin either finishes at once (`Flow::Done`) or asks the VM to call a
//! Harn callable and hand the result to a continuation (`Flow::Call`). That
//! keeps the VM free of Rust recursion: the VM pushes the callee as an
//! ordinary frame and resumes the continuation when it returns.

use crate::error::VmResult;
use crate::value::Value;

/// What a builtin (or method) asks the VM to do next.
pub enum Flow {
    /// The call finished with this value.
    Done(Value),
    /// Call `callee(args)`, then pass the result to `then`.
    Call { callee: Value, args: Vec<Value>, then: Box<dyn Continuation> },
}

/// The rest of a builtin's work after a Harn callback returns.
pub trait Continuation {
    fn resume(self: Box<Self>, ctx: &mut Ctx, result: Value) -> VmResult<Flow>;
}

/// Resource limits that builtins must respect (huge allocations end in a
/// clear error, never an abort).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest string/list/bytes a single builtin may build, in elements or bytes.
    pub max_alloc: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_alloc: 1 << 30 }
    }
}

/// What the VM lends a builtin while it runs.
pub struct Ctx<'a> {
    /// Output of the current task (`log`, `print`, `println` append here).
    pub output: &'a mut String,
    pub limits: &'a Limits,
}

pub type BuiltinFn = fn(&mut Ctx, &[Value]) -> VmResult<Flow>;

pub struct BuiltinDef {
    pub name: &'static str,
    pub func: BuiltinFn,
}

mod core;

/// The table of all builtins; the index is the builtin id.
pub static BUILTINS: &[BuiltinDef] = core::TABLE;

pub fn builtin_id(name: &str) -> Option<u32> {
    BUILTINS.iter().position(|b| b.name == name).map(|i| i as u32)
}

pub fn builtin_name(id: u32) -> &'static str {
    BUILTINS.get(id as usize).map_or("?", |b| b.name)
}

pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}

#[inline]
pub fn call_builtin(ctx: &mut Ctx, id: u32, args: &[Value]) -> VmResult<Flow> {
    (BUILTINS[id as usize].func)(ctx, args)
}
