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

use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::Value;

pub use crate::runtime::native::{BuiltinDef, BuiltinFn, BuiltinImpl, CallArgs, Continuation, Ctx, Flow, Limits, SchedOp};

pub mod args;
pub mod arity;
mod arity_table;
mod aws;
mod calendar;
pub mod callback;
mod coll_extra;
pub mod collections;
mod compress;
pub mod concurrency;
mod cookies;
mod core;
pub mod crypto;
mod crypto_extra;
mod csv_fmt;
mod datetime;
pub mod decimal;
mod error_preds;
mod flow;
mod formats;
pub mod harness;
pub mod iter;
mod jq;
pub mod json;
mod jwt;
mod math;
pub mod methods;
mod multipart;
mod observe;
mod paths;
pub(crate) use observe::{end_run as end_run_state, enter_vm, forget_vm, os_seed};
mod regexp;
mod rng;
pub mod schema;
pub mod schemas;
pub mod strings;
mod templates;
mod testing;
mod text_extra;
pub mod transcript;
mod transcript_data;
pub mod types;
mod xml;

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
    transcript::TABLE,
    harness::TABLE,
    paths::TABLE,
    crypto_extra::TABLE,
    text_extra::TABLE,
    coll_extra::TABLE,
    csv_fmt::TABLE,
    flow::TABLE,
    xml::TABLE,
    error_preds::TABLE,
    aws::TABLE,
    transcript_data::TABLE,
    calendar::TABLE,
    decimal::TABLE,
    jwt::TABLE,
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

/// What builtin `id` runs: the VM's call path matches on this.
#[inline]
pub fn builtin_impl(id: u32) -> BuiltinImpl {
    BUILTINS[id as usize].imp
}

/// Builtin `id` is a scheduler operation (it may wait, so it needs a frame of its own).
#[inline]
pub fn is_sched_builtin(id: u32) -> bool {
    matches!(builtin_impl(id), BuiltinImpl::Sched(_))
}

/// Calls builtin `id` outside the VM (scheduler builtins need the VM and fail).
#[inline]
pub fn call_builtin(ctx: &mut Ctx, id: u32, args: &[Value]) -> VmResult<Flow> {
    match builtin_impl(id) {
        BuiltinImpl::Native(f) => f(ctx, args),
        BuiltinImpl::Sched(op) => Err(VmError::runtime(format!("{} needs the VM scheduler", concurrency::sched_op_name(op)))),
    }
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
