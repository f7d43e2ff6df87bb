//! Builtin functions: the registry and the interface the VM calls them through.
//!
//! Every builtin has a dense numeric id (its index in `BUILTINS`), which the
//! compiler embeds in `CallBuiltin` instructions; names are cold data.
//! A builtin either finishes at once (`Flow::Done`) or asks the VM to call a
//! Harn callable and hand the result to a continuation (`Flow::Call`). That
//! keeps the VM free of Rust recursion: the VM pushes the callee as an
//! ordinary frame and resumes the continuation when it returns.
//!
//! The table is the concatenation of one static table per module, in the
//! fixed order of `MODULE_TABLES`, so ids are stable within a build.

use std::sync::LazyLock;

use rustc_hash::FxHashMap;

use crate::error::VmResult;
use crate::value::Value;

/// Arguments of a callback call. Callbacks take one to three arguments
/// (`map`, `reduce`, `sort_by` comparators), which then need no heap
/// allocation per call.
pub type CallArgs = smallvec::SmallVec<[Value; 3]>;

/// What a builtin (or method) asks the VM to do next.
pub enum Flow {
    /// The call finished with this value.
    Done(Value),
    /// Call `callee(args)`, then pass the result to `then`.
    Call { callee: Value, args: CallArgs, then: Box<dyn Continuation> },
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

pub mod args;
pub mod callback;
pub mod collections;
mod compress;
pub mod concurrency;
mod cookies;
mod core;
pub mod crypto;
mod datetime;
mod formats;
mod jq;
pub mod json;
mod math;
mod multipart;
mod observe;
mod regexp;
pub mod schemas;
pub mod strings;
mod templates;
mod testing;
pub mod types;

/// Per-module tables; their concatenation (in this order) is `BUILTINS`.
static MODULE_TABLES: &[&[BuiltinDef]] = &[
    core::TABLE,
    types::TABLE,
    strings::TABLE,
    math::TABLE,
    collections::TABLE,
    testing::TABLE,
    json::TABLE,
    regexp::TABLE,
    concurrency::TABLE,
    concurrency::SCHED_TABLE,
    crypto::TABLE,
    compress::TABLE,
    datetime::TABLE,
    schemas::TABLE,
    formats::TABLE,
    templates::TABLE,
    observe::TABLE,
    cookies::TABLE,
    multipart::TABLE,
    jq::TABLE,
];

/// The table of all builtins; the index is the builtin id.
pub static BUILTINS: LazyLock<Vec<&'static BuiltinDef>> =
    LazyLock::new(|| MODULE_TABLES.iter().flat_map(|table| table.iter()).collect());

/// Name → id, built once.
static IDS_BY_NAME: LazyLock<FxHashMap<&'static str, u32>> =
    LazyLock::new(|| BUILTINS.iter().enumerate().map(|(id, def)| (def.name, id as u32)).collect());

pub fn builtin_id(name: &str) -> Option<u32> {
    IDS_BY_NAME.get(name).copied()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_ids_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (id, name) in builtin_names().enumerate() {
            assert!(seen.insert(name), "duplicate builtin name {name}");
            assert_eq!(builtin_id(name), Some(id as u32));
            assert_eq!(builtin_name(id as u32), name);
        }
        assert_eq!(builtin_id("no_such_builtin"), None);
    }
}
