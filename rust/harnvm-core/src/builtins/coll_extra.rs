//! Collection builtins named after harn 0.9.11's: `clone`, `deep_clone`,
//! `deep_merge`, `unique`, `dict_from_pairs`, the free `take_while`,
//! `drop_while` and `count_by`, plus `drop` (discards its argument) and
//! `date_now_iso`.
//!
//! Harn values are immutable behind shared pointers, so a clone is the value
//! itself: no later operation can tell the copies apart.

use std::rc::Rc;

use super::args::{callable_arg, done, key_of, list_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, values_equal, DictMap, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "clone", imp: Native(clone) },
    BuiltinDef { name: "deep_clone", imp: Native(clone) },
    BuiltinDef { name: "deep_merge", imp: Native(deep_merge) },
    BuiltinDef { name: "unique", imp: Native(unique) },
    BuiltinDef { name: "dict_from_pairs", imp: Native(dict_from_pairs) },
    BuiltinDef { name: "take_while", imp: Native(take_while) },
    BuiltinDef { name: "drop_while", imp: Native(drop_while) },
    BuiltinDef { name: "count_by", imp: Native(count_by) },
    BuiltinDef { name: "drop", imp: Native(drop_value) },
    BuiltinDef { name: "date_now_iso", imp: Native(date_now_iso) },
];

fn clone(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(arg(args, 0).clone())
}

/// Deepest dict nesting `deep_merge` follows; below it the right side wins.
const MAX_MERGE_DEPTH: usize = 256;

/// `right` merged into `left`: where both sides hold a dict under a key the
/// dicts merge recursively, otherwise the right value replaces the left one.
fn merge(left: &Value, right: &Value, depth: usize) -> Value {
    match (left, right) {
        (Value::Dict(l), Value::Dict(r)) if depth < MAX_MERGE_DEPTH => {
            let mut out: DictMap = l.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            for (k, rv) in r.iter() {
                let merged = match out.get(k) {
                    Some(lv) => merge(lv, rv, depth + 1),
                    None => rv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::dict(out)
        }
        _ => right.clone(),
    }
}

fn deep_merge(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(merge(arg(args, 0), arg(args, 1), 0))
}

/// The items without structural duplicates (1 and 1.0 count as equal), first kept.
fn unique(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "unique")?;
    let mut out: Vec<Value> = Vec::new();
    for it in items.iter() {
        if !out.iter().any(|x| values_equal(x, it)) {
            out.push(it.clone());
        }
    }
    done(Value::list(out))
}

fn dict_from_pairs(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "dict_from_pairs")?;
    let mut out = DictMap::new();
    for (i, entry) in items.iter().enumerate() {
        let (k, v) = match entry {
            Value::List(kv) if kv.len() == 2 => (&kv[0], &kv[1]),
            Value::Pair(kv) => (&kv.0, &kv.1),
            other => {
                return Err(VmError::type_error(format!(
                    "dict_from_pairs: entry {i} must be a [key, value] list or pair, got {}",
                    other.type_name()
                )))
            }
        };
        out.insert(key_of(k), v.clone());
    }
    done(Value::dict(out))
}

fn list_and_callback<'a>(args: &'a [Value], builtin: &str) -> VmResult<(Rc<Vec<Value>>, &'a Value)> {
    let items = list_arg(args, 0, builtin)?;
    Ok((Rc::clone(items), callable_arg(args, 1, builtin)?))
}

fn take_while(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "take_while")?;
    super::collections::take_while_each(f, items)
}

fn drop_while(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "drop_while")?;
    super::collections::skip_while_each(f, items)
}

fn count_by(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "count_by")?;
    super::methods::count_by_each(f, items)
}

fn drop_value(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::Nil)
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn date_now_iso(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::str(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()))
}
