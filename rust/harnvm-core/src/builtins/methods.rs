//! Built-in methods: `recv.name(args)` on strings, lists, dicts, sets and
//! ranges (harn-language §12).
//!
//! Struct impl methods and `.iter()` are dispatched by the VM before it gets
//! here. Unknown method names raise as harn 0.9.11 raises them (`string has
//! no method `foo``, a Type error for bools, nil, enums, closures,
//! durations); ints, floats and other objects still answer nil, as there. "Mutating" methods
//! (`push`, `remove`, `add`, ...) return new values; the receiver is never
//! modified. Methods taking a callback run it through a `CallbackLoop`
//! (`Flow::Call`); a callback argument that is not callable makes the method
//! return its "nothing" value (nil, or false/true/-1 for predicates) as the
//! reference does.
//!
//! Ranges answer `len count empty contains first last to_string` directly;
//! every other iterator method lifts the range to a lazy `Iter` (§11), so
//! `(1 to 10000000).map(f).take(5)` never materializes the range.
//! `.iter()` lifts any iterable receiver; iters and generators have their
//! own methods (`iter::iter_method`, `next`).

use std::cmp::Ordering;
use std::rc::Rc;

use crate::builtins::args::{done, key_of, opt_text_arg, text_arg};
use crate::builtins::callback::{item_arg, pair_key_arg, pair_value_arg, CallbackLoop, ReturnResult, Step};
use crate::builtins::collections::{
    all_each, any_each, chunks, dedupe, difference_of, entry_dicts, entry_pairs, extreme_by_each, filter_each, find_each,
    find_index_each, finish_dict, finish_list, finish_set, flat_map_each, group_by_each, intersection_of, is_disjoint, is_subset,
    map_each, none_each, partition_each, reduce_each, set_value, sort_by_each, sorted, symmetric_difference_of, union_of,
    windows,
};
use crate::builtins::iter;
use crate::builtins::strings::{
    char_at, char_index_of, char_len, char_slice, chars, join_display, pad, repeat, replace_all, split_on, PadSide,
};
use crate::builtins::{CallArgs, Ctx, Flow, Limits};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::ops::dict_get;
use crate::runtime::value::{arg, compare_values, values_equal, DictMap, Object, RangeVal, Value};

/// `recv.name(args)` for the builtin receiver types.
pub fn call_method(ctx: &mut Ctx, recv: &Value, name: &str, args: &[Value]) -> VmResult<Flow> {
    if name == "iter" {
        if let Some(it) = iter::lift(recv) {
            return done(Value::Object(it));
        }
        if iter::is_channel(recv) {
            return Ok(iter::lift_channel(recv));
        }
    }
    match recv {
        Value::Str(s) => done(string_method(ctx.limits, s, name, args)?),
        Value::List(items) => list_method(ctx, items, name, args),
        Value::Dict(map) => dict_method(map, name, args),
        Value::Set(items) => set_method(items, name, args),
        Value::Range(r) => range_method(ctx, recv, r, name, args),
        Value::Object(o) => match &**o {
            Object::Iter(_) => iter::iter_method(ctx, o, name, args),
            // The VM resumes a generator that is "called" and answers with `{value, done}`.
            Object::Generator(_) if name == "next" => {
                Ok(Flow::Call { callee: recv.clone(), args: CallArgs::new(), then: Box::new(ReturnResult) })
            }
            Object::Generator(g) => {
                let kind = if g.type_name() == "stream" { "Stream" } else { "Generator" };
                Err(no_method(kind, name))
            }
            Object::Opaque { .. } => match crate::runtime::harness::handle_of(recv) {
                Some(handle) => crate::builtins::harness::call(ctx, handle, name, args),
                None => done(Value::Nil),
            },
            Object::Decimal(_) => Err(VmError::type_error(format!("value of type decimal has no method `{name}`"))),
            _ => done(Value::Nil),
        },
        Value::Bool(_) | Value::Nil | Value::Enum(_) | Value::Closure(_) | Value::Builtin(_) | Value::Duration(_) => {
            let type_name = match recv {
                Value::Enum(_) => "enum",
                Value::Closure(_) | Value::Builtin(_) => "closure",
                other => other.type_name(),
            };
            Err(VmError::type_error(format!("value of type {type_name} has no method `{name}`")))
        }
        _ => done(Value::Nil),
    }
}

/// harn's error for a method the receiver does not have.
pub(crate) fn no_method(type_name: &str, name: &str) -> VmError {
    VmError::runtime(format!("{type_name} has no method `{name}`"))
}

/// The items a value yields when treated as a sequence: list and set items,
/// range ints, string chars, dict entries as `Pair(key, value)`; nothing for
/// other values. Ranges are materialized, within `limits`.
pub fn sequence_items(v: &Value, limits: &Limits) -> VmResult<Rc<Vec<Value>>> {
    Ok(match v {
        Value::List(items) | Value::Set(items) => Rc::clone(items),
        Value::Range(r) => Rc::new(range_items(r, limits)?),
        Value::Str(s) => Rc::new(chars(s)?),
        Value::Dict(map) => Rc::new(entry_pairs(map)),
        _ => Rc::new(Vec::new()),
    })
}

fn range_items(r: &RangeVal, limits: &Limits) -> VmResult<Vec<Value>> {
    let len = r.len();
    crate::runtime::native::check_alloc_product(
        len as u128,
        std::mem::size_of::<Value>() as u128,
        limits,
        "range materialization",
    )?;
    Ok((0..len).map(|i| Value::Int(r.start + i)).collect())
}

/// An int argument, or `default` when missing / not an int.
fn int_or(args: &[Value], i: usize, default: i64) -> i64 {
    arg(args, i).as_int().unwrap_or(default)
}

/// The callback argument at `i`, if callable.
fn callback(args: &[Value], i: usize) -> Option<&Value> {
    Some(arg(args, i)).filter(|f| f.is_callable())
}

// ---------------------------------------------------------------------------
// String

fn string_method(limits: &Limits, s: &str, name: &str, args: &[Value]) -> VmResult<Value> {
    let text = |v: String| Ok(Value::str(v));
    match name {
        "count" | "len" => Ok(Value::Int(char_len(s) as i64)),
        "empty" => Ok(Value::Bool(s.is_empty())),
        "contains" => Ok(Value::Bool(s.contains(text_arg(args, 0).as_ref()))),
        "replace" if args.len() >= 2 => text(replace_all(s, &text_arg(args, 0), &text_arg(args, 1), limits)?),
        "split" => Ok(Value::list(split_on(s, &opt_text_arg(args, 0).unwrap_or(",".into())))),
        "trim" => text(s.trim().to_string()),
        "trim_start" => text(s.trim_start().to_string()),
        "trim_end" => text(s.trim_end().to_string()),
        "starts_with" => Ok(Value::Bool(s.starts_with(text_arg(args, 0).as_ref()))),
        "ends_with" => Ok(Value::Bool(s.ends_with(text_arg(args, 0).as_ref()))),
        "lowercase" | "lower" | "to_lower" => text(s.to_lowercase()),
        "uppercase" | "upper" | "to_upper" => text(s.to_uppercase()),
        // END index, unlike the free `substring(s, start, length)`.
        // `s.substring(start, end?)`: indices in characters; negative ones
        // clamp to 0 (as 0.9.11), unlike `slice`.
        "substring" => text(char_slice(s, int_or(args, 0, 0).max(0), arg(args, 1).as_int().map(|e| e.max(0))).to_string()),
        "index_of" => Ok(Value::Int(char_index_of(s, &text_arg(args, 0), false))),
        "last_index_of" => Ok(Value::Int(char_index_of(s, &text_arg(args, 0), true))),
        "chars" => Ok(Value::list(chars(s)?)),
        "repeat" => text(repeat(s, int_or(args, 0, 1), limits)?),
        "reverse" => text(s.chars().rev().collect()),
        "pad_left" | "pad_right" => {
            let fill = opt_text_arg(args, 1).and_then(|f| f.chars().next()).unwrap_or(' ');
            let side = if name == "pad_left" { PadSide::Left } else { PadSide::Right };
            text(pad(s, int_or(args, 0, 0), fill, side, limits)?)
        }
        "lines" => Ok(Value::list(s.lines().map(Value::str).collect())),
        "char_at" => Ok(match int_or(args, 0, 0) {
            i if i >= 0 => char_at(s, i).unwrap_or_default(),
            _ => Value::Nil,
        }),
        // Char indices, negative from the end, clamped; non-int bounds are absent.
        "slice" => text(char_slice(s, int_or(args, 0, 0), arg(args, 1).as_int()).to_string()),
        // A missing needle is "" (found); a non-string one is never found.
        "includes" => Ok(Value::Bool(match args.first() {
            None => true,
            Some(Value::Str(needle)) => s.contains(needle.as_str()),
            Some(_) => false,
        })),
        _ => Err(no_method("string", name)),
    }
}

// ---------------------------------------------------------------------------
// List

fn list_method(ctx: &mut Ctx, items: &Rc<Vec<Value>>, name: &str, args: &[Value]) -> VmResult<Flow> {
    let owned = || Rc::clone(items);
    let list = |v: Vec<Value>| done(Value::list(v));
    match name {
        "count" => done(Value::Int(items.len() as i64)),
        "empty" => done(Value::Bool(items.is_empty())),

        // Callback methods.
        "map" | "filter" | "find" | "find_index" | "flat_map" | "sort_by" | "partition" | "group_by" | "min_by" | "max_by"
        | "any" | "all" | "every" | "none" => {
            let Some(f) = callback(args, 0) else {
                return done(match name {
                    "any" => Value::Bool(false),
                    "all" | "every" => Value::Bool(true),
                    "none" => Value::Bool(items.is_empty()),
                    "find_index" => Value::Int(-1),
                    _ => Value::Nil,
                });
            };
            match name {
                "map" => map_each(f, owned(), item_arg, finish_list),
                "filter" => filter_each(f, owned(), item_arg, finish_list),
                "find" => find_each(f, owned()),
                "find_index" => find_index_each(f, owned()),
                "flat_map" => flat_map_each(f, owned()),
                "sort_by" => sort_by_each(f, owned()),
                // The method gives `[matching, rest]`; the free builtin a dict.
                "partition" => partition_each(f, owned(), |(yes, no)| Ok(Value::list(vec![Value::list(yes), Value::list(no)]))),
                "group_by" => group_by_each(f, owned()),
                "min_by" => extreme_by_each(f, owned(), Ordering::Less),
                "max_by" => extreme_by_each(f, owned(), Ordering::Greater),
                "any" => any_each(f, owned()),
                "none" => none_each(f, owned()),
                _ => all_each(f, owned()),
            }
        }
        "reduce" => match callback(args, 1) {
            Some(f) => reduce_each(f, owned(), arg(args, 0).clone()),
            None => done(Value::Nil),
        },

        "sort" => list(sorted(items)),
        "reverse" => list(items.iter().rev().cloned().collect()),
        "join" => done(Value::str(join_display(items, &text_arg(args, 0), ctx.limits)?)),
        "contains" => done(Value::Bool(items.iter().any(|v| values_equal(v, arg(args, 0))))),
        "index_of" => {
            let found = items.iter().position(|v| values_equal(v, arg(args, 0)));
            done(Value::Int(found.map_or(-1, |i| i as i64)))
        }
        "enumerate" => list(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| Value::dict_from([("index", Value::Int(i as i64)), ("value", v.clone())]))
                .collect(),
        ),
        "zip" => match arg(args, 0) {
            Value::List(other) => {
                list(items.iter().zip(other.iter()).map(|(a, b)| Value::list(vec![a.clone(), b.clone()])).collect())
            }
            _ => list(vec![]),
        },
        "slice" => {
            let (from, to) = (int_or(args, 0, 0), arg(args, 1).as_int());
            crate::runtime::ops::slice(&Value::List(owned()), &Value::Int(from), &to.map_or(Value::Nil, Value::Int))
                .map(Flow::Done)
        }
        "unique" => list(dedupe(items.iter())),
        "take" => list(items.iter().take(int_or(args, 0, 0).max(0) as usize).cloned().collect()),
        "skip" => list(items.iter().skip(int_or(args, 0, 0).max(0) as usize).cloned().collect()),
        "sum" => done(sum(items)),
        "min" | "max" => {
            let want = if name == "min" { Ordering::Less } else { Ordering::Greater };
            let best = items.iter().skip(1).fold(items.first(), |best, v| match best {
                Some(b) if compare_values(v, b) == want => Some(v),
                other => other,
            });
            done(best.cloned().unwrap_or_default())
        }
        "flatten" => {
            let mut out = Vec::with_capacity(items.len());
            for v in items.iter() {
                match v {
                    Value::List(inner) => out.extend(inner.iter().cloned()),
                    other => out.push(other.clone()),
                }
            }
            list(out)
        }
        "push" => {
            let mut out = Vec::with_capacity(items.len() + 1);
            out.extend(items.iter().cloned());
            if let Some(v) = args.first() {
                out.push(v.clone());
            }
            list(out)
        }
        "pop" => list(items[..items.len().saturating_sub(1)].to_vec()),
        "first" => match arg(args, 0).as_int() {
            Some(n) => list(items.iter().take(n.max(0) as usize).cloned().collect()),
            None => done(items.first().cloned().unwrap_or_default()),
        },
        "last" => match arg(args, 0).as_int() {
            Some(n) => list(items[items.len().saturating_sub(n.max(0) as usize)..].to_vec()),
            None => done(items.last().cloned().unwrap_or_default()),
        },
        "chunk" | "each_slice" => done(chunks(items, int_or(args, 0, 1))),
        "compact" => list(items.iter().filter(|v| !v.is_nil()).cloned().collect()),
        "window" | "each_cons" | "sliding_window" => done(windows(items, int_or(args, 0, 2), int_or(args, 1, 1), ctx.limits)?),
        "tally" => {
            let mut counts = DictMap::new();
            for v in items.iter() {
                let slot = counts.entry(key_of(v)).or_insert(Value::Int(0));
                *slot = Value::Int(slot.as_int().unwrap_or(0) + 1);
            }
            done(Value::dict(counts))
        }
        "to_list" => done(Value::List(owned())),
        "to_set" => done(set_value(items.iter())),
        "includes" => done(Value::Bool(items.iter().any(|v| values_equal(v, arg(args, 0))))),
        // A non-callable callback gives nil, like the other callback methods.
        "take_while" | "drop_while" | "count_by" => match callback(args, 0) {
            None => done(Value::Nil),
            Some(f) => match name {
                "take_while" => take_while_each(f, owned(), true),
                "drop_while" => take_while_each(f, owned(), false),
                _ => count_by_each(f, owned()),
            },
        },
        _ => Err(no_method("list", name)),
    }
}

/// `take_while` (`take` = true) or `drop_while`: the prefix of items whose
/// callback result is truthy, or the rest after it.
fn take_while_each(f: &Value, items: Rc<Vec<Value>>, take: bool) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        Rc::clone(&items),
        (items, take),
        item_arg,
        |(all, take), index, _, keep| {
            if keep.is_truthy() {
                return Ok(Step::Next);
            }
            let part = if *take { &all[..index] } else { &all[index..] };
            Ok(Step::Stop(Value::list(part.to_vec())))
        },
        |(all, take)| Ok(if take { Value::List(all) } else { Value::list(Vec::new()) }),
    )
}

/// `count_by(f)`: `{key: count}` where each key is `f(item)`, which must be
/// a string (harn 0.9.11 refuses other discriminators).
pub(crate) fn count_by_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        DictMap::new(),
        item_arg,
        |counts, _, _, key| {
            let Value::Str(key) = &key else {
                return Err(VmError::type_error(format!(
                    "count_by: callback must return a string discriminator, got {}; wrap with to_string(...) so the bucket key is unambiguous",
                    key.type_name()
                )));
            };
            let slot = counts.entry(key.clone()).or_insert(Value::Int(0));
            *slot = Value::Int(slot.as_int().unwrap_or(0) + 1);
            Ok(Step::Next)
        },
        |counts| Ok(Value::dict(counts)),
    )
}

/// `[...].sum()`: an int sum (wrapping) unless a float is present; other
/// values are ignored; empty → 0.
/// The sum of the numbers among `items`: ints while the running total fits,
/// a float from the first overflow or float on (as harn 0.9.11).
fn sum(items: &[Value]) -> Value {
    let mut acc = Value::Int(0);
    for v in items {
        acc = match (&acc, v) {
            (Value::Int(a), Value::Int(b)) => a.checked_add(*b).map_or(Value::Float(*a as f64 + *b as f64), Value::Int),
            (Value::Int(a), Value::Float(b)) => Value::Float(*a as f64 + b),
            (Value::Float(a), Value::Int(b)) => Value::Float(a + *b as f64),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => continue,
        };
    }
    acc
}

// ---------------------------------------------------------------------------
// Dict

fn dict_method(map: &Rc<DictMap>, name: &str, args: &[Value]) -> VmResult<Flow> {
    // Namespace dicts (`{_namespace: "..."}`) resolve their own callables first.
    if matches!(dict_get(map, "_namespace"), Some(Value::Str(_))) {
        if let Some(f) = dict_get(map, name).filter(|f| f.is_callable()) {
            return forward_call(f, args);
        }
    }
    let pairs = || Rc::new(entry_pairs(map));
    match name {
        "keys" => done(Value::list(map.keys().map(|k| Value::Str(k.clone())).collect())),
        "values" => done(Value::list(map.values().cloned().collect())),
        "entries" | "to_list" => done(Value::list(entry_dicts(map))),
        "count" => done(Value::Int(map.len() as i64)),
        "has" => done(Value::Bool(dict_get(map, &text_arg(args, 0)).is_some())),
        "get" => done(dict_get(map, &text_arg(args, 0)).cloned().unwrap_or_else(|| arg(args, 1).clone())),
        "merge" => match arg(args, 0) {
            Value::Dict(other) if !map.is_empty() => {
                let mut merged = (**map).clone();
                merged.extend(other.iter().map(|(k, v)| (k.clone(), v.clone())));
                done(Value::dict(merged))
            }
            Value::Dict(other) => done(Value::Dict(Rc::clone(other))),
            _ => done(Value::Dict(Rc::clone(map))),
        },
        "remove" => {
            let mut rest = (**map).clone();
            rest.remove(&text_arg(args, 0).into_owned());
            done(Value::dict(rest))
        }
        "to_dict" => done(Value::Dict(Rc::clone(map))),
        "map_values" | "rekey" | "map_keys" | "filter" => {
            let Some(f) = callback(args, 0) else {
                return done(Value::Nil);
            };
            match name {
                "filter" => filter_each(f, pairs(), pair_value_arg, finish_dict),
                "map_values" => CallbackLoop::run(
                    f.clone(),
                    pairs(),
                    Vec::with_capacity(map.len()),
                    pair_value_arg,
                    |out, _, entry, mapped| {
                        out.push(Value::pair(pair_part(entry, 0), mapped));
                        Ok(Step::Next)
                    },
                    finish_dict,
                ),
                // New key = display(f(key)); on collisions the later key wins.
                _ => CallbackLoop::run(
                    f.clone(),
                    pairs(),
                    Vec::with_capacity(map.len()),
                    pair_key_arg,
                    |out, _, entry, new_key| {
                        out.push(Value::pair(new_key, pair_part(entry, 1)));
                        Ok(Step::Next)
                    },
                    finish_dict,
                ),
            }
        }
        _ => match dict_get(map, name) {
            Some(f) if f.is_callable() => forward_call(f, args),
            _ => Err(no_method("dict", name)),
        },
    }
}

/// Part 0 (key) or 1 (value) of a `Pair` entry.
fn pair_part(entry: &Value, part: usize) -> Value {
    match entry {
        Value::Pair(p) if part == 0 => p.0.clone(),
        Value::Pair(p) => p.1.clone(),
        _ => Value::Nil,
    }
}

/// Calls `f(args)` and returns its result as the method's result.
fn forward_call(f: &Value, args: &[Value]) -> VmResult<Flow> {
    Ok(Flow::Call { callee: f.clone(), args: args.iter().cloned().collect(), then: Box::new(ReturnResult) })
}

// ---------------------------------------------------------------------------
// Set

fn set_method(items: &Rc<Vec<Value>>, name: &str, args: &[Value]) -> VmResult<Flow> {
    let other = || match arg(args, 0) {
        Value::Set(o) => Some(o),
        _ => None,
    };
    match name {
        "count" | "len" => done(Value::Int(items.len() as i64)),
        "empty" => done(Value::Bool(items.is_empty())),
        "contains" | "includes" => done(Value::Bool(items.iter().any(|v| values_equal(v, arg(args, 0))))),
        "add" | "adding" => done(union_of(items, std::slice::from_ref(arg(args, 0)))),
        "remove" | "removing" | "delete" => done(difference_of(items, std::slice::from_ref(arg(args, 0)))),
        "union" => done(other().map_or_else(|| Value::Set(Rc::clone(items)), |o| union_of(items, o))),
        "intersect" | "intersection" => done(other().map_or_else(|| set_value([]), |o| intersection_of(items, o))),
        "difference" => done(other().map_or_else(|| Value::Set(Rc::clone(items)), |o| difference_of(items, o))),
        "symmetric_difference" => {
            done(other().map_or_else(|| Value::Set(Rc::clone(items)), |o| symmetric_difference_of(items, o)))
        }
        "is_subset" => done(Value::Bool(other().is_some_and(|o| is_subset(items, o)))),
        "is_superset" => done(Value::Bool(other().is_some_and(|o| is_subset(o, items)))),
        "is_disjoint" => done(Value::Bool(other().is_none_or(|o| is_disjoint(items, o)))),
        "to_list" => done(Value::List(Rc::clone(items))),
        "to_set" => done(Value::Set(Rc::clone(items))),
        "map" | "filter" | "any" | "all" | "every" => {
            let Some(f) = callback(args, 0) else {
                return done(match name {
                    "any" => Value::Bool(false),
                    "all" | "every" => Value::Bool(true),
                    _ => Value::Nil,
                });
            };
            let items = Rc::clone(items);
            match name {
                "map" => map_each(f, items, item_arg, finish_set),
                "filter" => filter_each(f, items, item_arg, finish_set),
                "any" => any_each(f, items),
                _ => all_each(f, items),
            }
        }
        _ => Err(no_method("set", name)),
    }
}

// ---------------------------------------------------------------------------
// Range

fn range_method(ctx: &mut Ctx, recv: &Value, r: &RangeVal, name: &str, args: &[Value]) -> VmResult<Flow> {
    match name {
        "len" | "count" => done(Value::Int(r.len())),
        "empty" => done(Value::Bool(r.is_empty())),
        "contains" | "includes" => done(Value::Bool(matches!(arg(args, 0), Value::Int(n) if r.contains(*n)))),
        "first" => done(r.get(0).map_or(Value::Nil, Value::Int)),
        "last" => done(r.get(r.len() - 1).map_or(Value::Nil, Value::Int)),
        "to_string" => done(Value::str(recv.display())),
        "sum" => done(range_sum(r)),
        _ if iter::is_iter_method(name) => {
            let it = iter::lift(recv).expect("ranges are iterable");
            iter::iter_method(ctx, &it, name, args)
        }
        // Other names reach harn's iter dispatch, which words the error.
        _ => Err(no_method("iter", name)),
    }
}

/// `(a to b).sum()` in closed form (wrapping like int addition).
fn range_sum(r: &RangeVal) -> Value {
    let n = r.len() as i128;
    let first_plus_last = 2 * r.start as i128 + n - 1;
    // One of the two factors is even; halve it first so the product is exact
    // modulo 2^64 even when it overflows i128.
    let total = if n % 2 == 0 { (n / 2).wrapping_mul(first_plus_last) } else { n.wrapping_mul(first_plus_last / 2) };
    Value::Int(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::callback::test_driver::{callee, drive, no_callback, TEST_LIMITS};
    use crate::runtime::error::VmError;

    fn int(n: i64) -> Value {
        Value::Int(n)
    }
    fn s(x: &str) -> Value {
        Value::str(x)
    }
    fn ints(items: &[i64]) -> Value {
        Value::list(items.iter().map(|n| Value::Int(*n)).collect())
    }
    fn strs(items: &[&str]) -> Value {
        Value::list(items.iter().map(|x| Value::str(*x)).collect())
    }

    /// Calls a method, answering callbacks with `f`; the display of the
    /// result, or the error message.
    fn call_with(recv: &Value, name: &str, args: &[Value], f: &dyn Fn(&[Value]) -> VmResult<Value>) -> String {
        let mut out = String::new();
        let mut ctx = Ctx { output: &mut out, limits: &TEST_LIMITS };
        let flow = call_method(&mut ctx, recv, name, args);
        match drive(flow, f) {
            Ok(v) => v.display(),
            Err(e) => e.message(),
        }
    }
    fn call(recv: &Value, name: &str, args: &[Value]) -> String {
        call_with(recv, name, args, &no_callback)
    }

    #[test]
    fn string_methods() {
        let hello = s("héllo wörld");
        assert_eq!(call(&hello, "count", &[]), "11");
        assert_eq!(call(&hello, "len", &[]), "11");
        assert_eq!(call(&s(""), "empty", &[]), "true");
        assert_eq!(call(&hello, "contains", &[s("wö")]), "true");
        assert_eq!(call(&s("a1b1"), "replace", &[int(1), s("-")]), "a-b-");
        assert_eq!(call(&s("a,b,,c"), "split", &[]), "[a, b, , c]");
        assert_eq!(call(&s("a🔥b"), "split", &[s("🔥")]), "[a, b]");
        assert_eq!(call(&s("  x "), "trim", &[]), "x");
        assert_eq!(call(&s("  x "), "trim_start", &[]), "x ");
        assert_eq!(call(&s("MiXeD"), "lower", &[]), "mixed");
        assert_eq!(call(&s("MiXeD"), "to_upper", &[]), "MIXED");
        assert_eq!(call(&hello, "substring", &[int(1), int(4)]), "éll");
        assert_eq!(call(&hello, "substring", &[int(-5)]), "héllo wörld");
        assert_eq!(call(&hello, "substring", &[int(1), int(-1)]), "");
        assert_eq!(call(&hello, "index_of", &[s("l")]), "2");
        assert_eq!(call(&hello, "last_index_of", &[s("l")]), "9");
        assert_eq!(call(&hello, "index_of", &[s("z")]), "-1");
        assert_eq!(call(&s("añb"), "chars", &[]), "[a, ñ, b]");
        assert_eq!(call(&s("ab"), "repeat", &[int(3)]), "ababab");
        assert_eq!(call(&s("ab"), "repeat", &[int(-3)]), "");
        assert_eq!(call(&s("añb"), "reverse", &[]), "bña");
        assert_eq!(call(&s("7"), "pad_left", &[int(3), s("0")]), "007");
        assert_eq!(call(&s("7"), "pad_right", &[int(3)]), "7  ");
        assert_eq!(call(&s("a\nb\r\nc\n"), "lines", &[]), "[a, b, c]");
        assert_eq!(call(&s("añb"), "char_at", &[int(1)]), "ñ");
        assert_eq!(call(&s("añb"), "char_at", &[int(9)]), "nil");
        assert_eq!(call(&s("x"), "no_such_method", &[]), "Runtime error: string has no method `no_such_method`");
        assert_eq!(call(&s("abcdef"), "slice", &[int(1), int(3)]), "bc");
        assert_eq!(call(&hello, "slice", &[int(-3)]), "rld");
        assert_eq!(call(&hello, "slice", &[int(-3), int(-1)]), "rl");
        assert_eq!(call(&hello, "slice", &[int(3), int(1)]), "");
        assert_eq!(call(&hello, "slice", &[]), "héllo wörld");
        assert_eq!(call(&hello, "includes", &[s("llo")]), "true");
        assert_eq!(call(&hello, "includes", &[]), "true");
        assert_eq!(call(&hello, "includes", &[int(1)]), "false");
    }

    #[test]
    fn string_methods_respect_limits() {
        let err = call(&s("ab"), "repeat", &[int(1 << 40)]);
        assert!(err.starts_with("Resource limit exceeded: string repeat"), "{err}");
        let err = call(&s("x"), "pad_left", &[int(i64::MAX)]);
        assert!(err.starts_with("Resource limit exceeded: string pad"), "{err}");
        let big = "y".repeat(2000);
        let err = call(&s(&big), "replace", &[s(""), s(&big)]);
        assert!(err.starts_with("Resource limit exceeded: replace"), "{}", &err[..80]);
    }

    #[test]
    fn plain_list_methods() {
        let nums = ints(&[3, 1, 4, 1, 5, 9]);
        assert_eq!(call(&nums, "count", &[]), "6");
        assert_eq!(call(&ints(&[]), "empty", &[]), "true");
        assert_eq!(call(&nums, "sort", &[]), "[1, 1, 3, 4, 5, 9]");
        assert_eq!(call(&nums, "reverse", &[]), "[9, 5, 1, 4, 1, 3]");
        assert_eq!(call(&ints(&[1, 2, 3]), "join", &[s(", ")]), "1, 2, 3");
        assert_eq!(call(&ints(&[1, 2, 3]), "join", &[]), "123");
        assert_eq!(call(&nums, "contains", &[Value::Float(4.0)]), "true");
        assert_eq!(call(&nums, "index_of", &[int(1)]), "1");
        assert_eq!(call(&nums, "index_of", &[int(7)]), "-1");
        assert_eq!(call(&strs(&["a", "b"]), "enumerate", &[]), "[{index: 0, value: a}, {index: 1, value: b}]");
        assert_eq!(call(&ints(&[1, 2, 3]), "zip", &[strs(&["a", "b"])]), "[[1, a], [2, b]]");
        assert_eq!(call(&ints(&[1, 2, 3, 4, 5]), "slice", &[int(1), int(3)]), "[2, 3]");
        assert_eq!(call(&ints(&[1, 2, 3, 4, 5]), "slice", &[int(-2)]), "[4, 5]");
        let mixed = Value::list(vec![int(1), s("1"), Value::Bool(true), int(1), Value::Nil, Value::Nil]);
        assert_eq!(call(&mixed, "unique", &[]), "[1, 1, true, nil]");
        assert_eq!(call(&nums, "take", &[int(2)]), "[3, 1]");
        assert_eq!(call(&nums, "skip", &[int(4)]), "[5, 9]");
        assert_eq!(call(&nums, "sum", &[]), "23");
        assert_eq!(call(&Value::list(vec![int(1), Value::Float(0.5), s("x")]), "sum", &[]), "1.5");
        assert_eq!(call(&ints(&[]), "sum", &[]), "0");
        assert_eq!(call(&nums, "min", &[]), "1");
        assert_eq!(call(&nums, "max", &[]), "9");
        assert_eq!(call(&ints(&[]), "max", &[]), "nil");
        assert_eq!(call(&Value::list(vec![ints(&[1]), int(2), ints(&[3, 4])]), "flatten", &[]), "[1, 2, 3, 4]");
        assert_eq!(call(&ints(&[1]), "push", &[int(2)]), "[1, 2]");
        assert_eq!(call(&ints(&[1, 2]), "pop", &[]), "[1]");
        assert_eq!(call(&ints(&[]), "pop", &[]), "[]");
        assert_eq!(call(&nums, "first", &[]), "3");
        assert_eq!(call(&nums, "last", &[int(2)]), "[5, 9]");
        assert_eq!(call(&ints(&[]), "first", &[]), "nil");
        assert_eq!(call(&ints(&[1, 2, 3, 4, 5]), "chunk", &[int(2)]), "[[1, 2], [3, 4], [5]]");
        assert_eq!(call(&Value::list(vec![int(1), Value::Nil, int(2)]), "compact", &[]), "[1, 2]");
        assert_eq!(call(&ints(&[1, 2, 3, 4]), "each_cons", &[int(2)]), "[[1, 2], [2, 3], [3, 4]]");
        assert_eq!(call(&ints(&[1, 2, 3, 4, 5]), "window", &[int(3), int(2)]), "[[1, 2, 3], [3, 4, 5]]");
        assert_eq!(call(&strs(&["a", "b", "c"]), "window", &[int(4)]), "[]");
        assert_eq!(call(&strs(&["a", "b", "a", "c", "b", "a"]), "tally", &[]), "{a: 3, b: 2, c: 1}");
        assert_eq!(call(&ints(&[2, 2, 1]), "to_set", &[]), "set(2, 1)");
        assert_eq!(call(&nums, "no_such_method", &[]), "Runtime error: list has no method `no_such_method`");
        assert_eq!(call(&nums, "includes", &[int(3)]), "true");
        assert_eq!(call(&nums, "includes", &[s("zzz")]), "false");
    }

    #[test]
    fn sort_never_panics_on_mixed_types() {
        let mut items: Vec<Value> = (0..200).map(|i| if i % 3 == 0 { s(&i.to_string()) } else { int(200 - i) }).collect();
        items.push(Value::Float(f64::NAN));
        let out = call(&Value::list(items), "sort", &[]);
        assert!(out.starts_with('['));
    }

    #[test]
    fn list_callback_methods() {
        let nums = ints(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let double = |a: &[Value]| Ok(int(a[0].as_int().unwrap() * 2));
        let even = |a: &[Value]| Ok(Value::Bool(a[0].as_int().unwrap() % 2 == 0));
        let gt5 = |a: &[Value]| Ok(Value::Bool(a[0].as_int().unwrap() > 5));
        assert_eq!(call_with(&nums, "map", &[callee()], &double), "[2, 4, 6, 8, 10, 12, 14, 16]");
        assert_eq!(call_with(&nums, "filter", &[callee()], &even), "[2, 4, 6, 8]");
        assert_eq!(call_with(&nums, "find", &[callee()], &gt5), "6");
        assert_eq!(call_with(&nums, "find_index", &[callee()], &gt5), "5");
        assert_eq!(call_with(&nums, "any", &[callee()], &gt5), "true");
        assert_eq!(call_with(&nums, "all", &[callee()], &gt5), "false");
        assert_eq!(call_with(&nums, "every", &[callee()], &|_| Ok(Value::Bool(true))), "true");
        assert_eq!(call_with(&nums, "none", &[callee()], &gt5), "false");
        assert_eq!(call_with(&ints(&[]), "any", &[callee()], &gt5), "false");
        assert_eq!(call_with(&ints(&[]), "all", &[callee()], &gt5), "true");
        let sum = |a: &[Value]| Ok(int(a[0].as_int().unwrap() + a[1].as_int().unwrap()));
        assert_eq!(call_with(&nums, "reduce", &[int(0), callee()], &sum), "36");
        let pairs = |a: &[Value]| Ok(Value::list(vec![a[0].clone(), int(a[0].as_int().unwrap() * 10)]));
        assert_eq!(call_with(&ints(&[1, 2]), "flat_map", &[callee()], &pairs), "[1, 10, 2, 20]");
        assert_eq!(call_with(&ints(&[1, 2]), "flat_map", &[callee()], &double), "[2, 4]");
        assert_eq!(call_with(&nums, "partition", &[callee()], &even), "[[2, 4, 6, 8], [1, 3, 5, 7]]");
        assert_eq!(call_with(&ints(&[1, 2, 3, 4, 5, 6]), "group_by", &[callee()], &even), "{false: [1, 3, 5], true: [2, 4, 6]}");
        let words = strs(&["hello", "hi", "hey"]);
        let length = |a: &[Value]| Ok(int(a[0].as_str().unwrap().len() as i64));
        assert_eq!(call_with(&words, "min_by", &[callee()], &length), "hi");
        assert_eq!(call_with(&words, "max_by", &[callee()], &length), "hello");
        assert_eq!(call_with(&ints(&[]), "max_by", &[callee()], &length), "nil");
        assert_eq!(call_with(&words, "sort_by", &[callee()], &length), "[hi, hey, hello]");
        let neg = |a: &[Value]| Ok(int(-a[0].as_int().unwrap()));
        assert_eq!(call_with(&ints(&[3, 1, 2]), "sort_by", &[callee()], &neg), "[3, 2, 1]");
    }

    #[test]
    fn non_callable_callbacks_give_nothing_values() {
        let nums = ints(&[1, 2]);
        assert_eq!(call(&nums, "map", &[int(1)]), "nil");
        assert_eq!(call(&nums, "any", &[]), "false");
        assert_eq!(call(&nums, "all", &[]), "true");
        assert_eq!(call(&nums, "none", &[]), "false");
        assert_eq!(call(&nums, "find_index", &[]), "-1");
        assert_eq!(call(&nums, "reduce", &[int(0)]), "nil");
    }

    #[test]
    fn callback_errors_propagate() {
        let boom = |_: &[Value]| Err(VmError::throw_msg("boom"));
        assert_eq!(call_with(&ints(&[1]), "map", &[callee()], &boom), "Thrown: boom");
    }

    #[test]
    fn dict_methods() {
        let d = Value::dict_from([("b", int(2)), ("a", int(1)), ("c", int(3))]);
        assert_eq!(call(&d, "keys", &[]), "[a, b, c]");
        assert_eq!(call(&d, "values", &[]), "[1, 2, 3]");
        assert_eq!(call(&d, "entries", &[]), "[{key: a, value: 1}, {key: b, value: 2}, {key: c, value: 3}]");
        assert_eq!(call(&d, "count", &[]), "3");
        assert_eq!(call(&d, "has", &[s("a")]), "true");
        assert_eq!(call(&d, "has", &[s("z")]), "false");
        assert_eq!(call(&d, "get", &[s("a")]), "1");
        assert_eq!(call(&d, "get", &[s("z"), s("dflt")]), "dflt");
        assert_eq!(call(&d, "get", &[]), "nil");
        assert_eq!(call(&d, "merge", &[Value::dict_from([("a", int(9)), ("d", int(4))])]), "{a: 9, b: 2, c: 3, d: 4}");
        assert_eq!(call(&d, "remove", &[s("b")]), "{a: 1, c: 3}");
        assert_eq!(call(&d, "no_such_method", &[]), "Runtime error: dict has no method `no_such_method`");
        let double = |a: &[Value]| Ok(int(a[0].as_int().unwrap() * 2));
        assert_eq!(call_with(&d, "map_values", &[callee()], &double), "{a: 2, b: 4, c: 6}");
        let gt1 = |a: &[Value]| Ok(Value::Bool(a[0].as_int().unwrap() > 1));
        assert_eq!(call_with(&d, "filter", &[callee()], &gt1), "{b: 2, c: 3}");
        let upper = |a: &[Value]| Ok(s(&a[0].as_str().unwrap().to_uppercase()));
        assert_eq!(call_with(&d, "rekey", &[callee()], &upper), "{A: 1, B: 2, C: 3}");
        let same = |_: &[Value]| Ok(s("same"));
        assert_eq!(call_with(&d, "map_keys", &[callee()], &same), "{same: 3}");
        assert_eq!(call(&d, "map_values", &[int(1)]), "nil");
    }

    #[test]
    fn dict_key_holding_a_callable_is_called() {
        let d = Value::dict_from([("handler", callee()), ("count", int(3))]);
        let echo = |a: &[Value]| Ok(s(&format!("got {}", a[0].display())));
        assert_eq!(call_with(&d, "handler", &[s("x")], &echo), "got x");
        // Builtin method names win over keys...
        assert_eq!(call(&d, "count", &[]), "2");
        // ...except in namespace dicts.
        let ns = Value::dict_from([("_namespace", s("stream")), ("count", callee())]);
        assert_eq!(call_with(&ns, "count", &[int(1)], &echo), "got 1");
    }

    #[test]
    fn set_methods() {
        let a = set_value(&[int(1), int(2), int(3), int(4)]);
        let b = set_value(&[int(3), int(4), int(5), int(6)]);
        assert_eq!(call(&a, "count", &[]), "4");
        assert_eq!(call(&a, "contains", &[int(2)]), "true");
        assert_eq!(call(&a, "add", &[int(5)]), "set(1, 2, 3, 4, 5)");
        assert_eq!(call(&a, "add", &[int(1)]), "set(1, 2, 3, 4)");
        assert_eq!(call(&a, "remove", &[int(1)]), "set(2, 3, 4)");
        assert_eq!(call(&a, "union", std::slice::from_ref(&b)), "set(1, 2, 3, 4, 5, 6)");
        assert_eq!(call(&a, "intersect", std::slice::from_ref(&b)), "set(3, 4)");
        assert_eq!(call(&a, "difference", std::slice::from_ref(&b)), "set(1, 2)");
        assert_eq!(call(&a, "symmetric_difference", std::slice::from_ref(&b)), "set(1, 2, 5, 6)");
        let small = set_value(&[int(2), int(3)]);
        assert_eq!(call(&small, "is_subset", std::slice::from_ref(&a)), "true");
        assert_eq!(call(&a, "is_superset", std::slice::from_ref(&small)), "true");
        assert_eq!(call(&a, "is_disjoint", std::slice::from_ref(&b)), "false");
        assert_eq!(call(&a, "to_list", &[]), "[1, 2, 3, 4]");
        let halve = |x: &[Value]| Ok(int(x[0].as_int().unwrap() / 2));
        assert_eq!(call_with(&a, "map", &[callee()], &halve), "set(0, 1, 2)");
        let even = |x: &[Value]| Ok(Value::Bool(x[0].as_int().unwrap() % 2 == 0));
        assert_eq!(call_with(&a, "filter", &[callee()], &even), "set(2, 4)");
        assert_eq!(call_with(&a, "any", &[callee()], &even), "true");
        assert_eq!(call_with(&a, "all", &[callee()], &even), "false");
    }

    #[test]
    fn range_methods() {
        let inc = Value::range(1, 5, true);
        let empty = Value::range(5, 1, true);
        assert_eq!(call(&inc, "len", &[]), "5");
        assert_eq!(call(&inc, "first", &[]), "1");
        assert_eq!(call(&inc, "last", &[]), "5");
        assert_eq!(call(&Value::range(0, 5, false), "last", &[]), "4");
        assert_eq!(call(&empty, "first", &[]), "nil");
        assert_eq!(call(&empty, "last", &[]), "nil");
        assert_eq!(call(&empty, "empty", &[]), "true");
        assert_eq!(call(&inc, "contains", &[int(5)]), "true");
        assert_eq!(call(&inc, "contains", &[s("5")]), "false");
        assert_eq!(call(&Value::range(0, 3, false), "to_string", &[]), "0 to 3 exclusive");
        // Every other iterator method lifts the range to a lazy iter.
        assert_eq!(call(&Value::range(1, 4, true), "to_list", &[]), "[1, 2, 3, 4]");
        assert_eq!(call(&inc, "sum", &[]), "15");
        assert_eq!(call(&Value::range(-3, 0, false), "sum", &[]), "-6");
        assert_eq!(call(&empty, "sum", &[]), "0");
        assert_eq!(
            call(&Value::range(i64::MAX - 2, i64::MAX, false), "sum", &[]),
            ((i64::MAX - 2).wrapping_add(i64::MAX - 1)).to_string()
        );
        let huge = Value::range(1, i64::MAX, true);
        assert_eq!(call(&huge, "take", &[int(3)]), "<iter>");
        assert_eq!(call(&Value::range(0, i64::MAX, false), "count", &[]), i64::MAX.to_string());
        assert_eq!(call(&Value::range(1, 3, true), "to_set", &[]), "set(1, 2, 3)");
        let lt3 = |a: &[Value]| Ok(Value::Bool(a[0].as_int().unwrap() < 3));
        assert_eq!(call_with(&inc, "any", &[callee()], &lt3), "true");
        assert_eq!(call_with(&inc, "find", &[callee()], &|a| Ok(Value::Bool(a[0].as_int() == Some(4)))), "4");
        assert_eq!(call(&inc, "no_such_method", &[]), "Runtime error: iter has no method `no_such_method`");
        assert_eq!(call(&inc, "includes", &[int(2)]), call(&inc, "contains", &[int(2)]));
    }

    #[test]
    fn other_receivers_have_no_methods() {
        // Ints and floats answer nil (harn 0.9.11 does); the rest raise a type error.
        for recv in [int(1), Value::Float(1.0)] {
            assert_eq!(call(&recv, "to_string", &[]), "nil");
        }
        for (recv, ty) in [
            (Value::Bool(true), "bool"),
            (Value::Nil, "nil"),
            (Value::Duration(5), "duration"),
            (Value::ok(int(1)), "enum"),
            (Value::decimal(1.into()), "decimal"),
        ] {
            assert_eq!(call(&recv, "to_string", &[]), format!("Type error: value of type {ty} has no method `to_string`"));
        }
    }

    #[test]
    fn prefix_and_counting_callbacks() {
        let nums = ints(&[1, 2, 3, 1]);
        let below3 = |a: &[Value]| Ok(Value::Bool(a[0].as_int().unwrap() < 3));
        assert_eq!(call_with(&nums, "take_while", &[callee()], &below3), "[1, 2]");
        assert_eq!(call_with(&nums, "drop_while", &[callee()], &below3), "[3, 1]");
        let always = |_: &[Value]| Ok(Value::Bool(true));
        assert_eq!(call_with(&nums, "take_while", &[callee()], &always), "[1, 2, 3, 1]");
        assert_eq!(call_with(&nums, "drop_while", &[callee()], &always), "[]");
        assert_eq!(call(&nums, "take_while", &[int(5)]), "nil");
        let parity = |a: &[Value]| Ok(s(if a[0].as_int().unwrap() % 2 == 0 { "even" } else { "odd" }));
        assert_eq!(call_with(&nums, "count_by", &[callee()], &parity), "{even: 1, odd: 3}");
        let not_text = |a: &[Value]| Ok(a[0].clone());
        assert!(call_with(&nums, "count_by", &[callee()], &not_text)
            .starts_with("Type error: count_by: callback must return a string"));
    }

    #[test]
    fn sequence_items_shapes() {
        let limits = TEST_LIMITS;
        let d = Value::dict_from([("k", int(1))]);
        assert_eq!(Value::list(sequence_items(&d, &limits).unwrap().to_vec()).display(), "[(k, 1)]");
        assert_eq!(Value::list(sequence_items(&s("ab"), &limits).unwrap().to_vec()).display(), "[a, b]");
        assert_eq!(Value::list(sequence_items(&int(3), &limits).unwrap().to_vec()).display(), "[]");
    }
}
