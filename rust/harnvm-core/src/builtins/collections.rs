//! Collection algorithms and the collection builtins.
//!
//! The algorithms here are shared by the free builtins (`chunk(xs, 2)`,
//! `group_by(xs, f)`, `set_union(a, b)`) and by the methods in
//! `builtins::methods` (`xs.chunk(2)`, `xs.group_by(f)`, `a.union(b)`), so each
//! rule lives in one place:
//! * `ValueSet`: structural de-duplication in O(n) expected time (hash +
//!   `values_equal`), used for sets, `unique`, `dedup_by`;
//! * `stable_sort_by`: a merge sort that never panics on the inconsistent
//!   orders `compare_values` produces for mixed types;
//! * `*_each`: the callback-driven algorithms (`map`, `filter`, `group_by`,
//!   ...) expressed as `CallbackLoop`s.

use std::cmp::Ordering;
use std::hash::Hasher;
use std::rc::Rc;

use rustc_hash::{FxHashMap, FxHasher};

use super::args::{callable_arg, done, key_of, list_arg};
use super::callback::{item_arg, ArgsFn, CallbackLoop, FinishFn, Step};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow, Limits};
use crate::runtime::deep;
use crate::runtime::error::VmResult;
use crate::runtime::value::{arg, compare_values, values_equal, DictMap, Object, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "chunk", imp: Native(chunk) },
    BuiltinDef { name: "window", imp: Native(window) },
    BuiltinDef { name: "group_by", imp: Native(group_by) },
    BuiltinDef { name: "partition", imp: Native(partition) },
    BuiltinDef { name: "dedup_by", imp: Native(dedup_by) },
    BuiltinDef { name: "flat_map", imp: Native(flat_map) },
    BuiltinDef { name: "keys", imp: Native(keys) },
    BuiltinDef { name: "values", imp: Native(values) },
    BuiltinDef { name: "entries", imp: Native(entries) },
    BuiltinDef { name: "to_list", imp: Native(to_list) },
    BuiltinDef { name: "set", imp: Native(set) },
    BuiltinDef { name: "set_contains", imp: Native(set_contains) },
    BuiltinDef { name: "set_add", imp: Native(set_add) },
    BuiltinDef { name: "set_remove", imp: Native(set_remove) },
    BuiltinDef { name: "set_union", imp: Native(set_union) },
    BuiltinDef { name: "set_intersect", imp: Native(set_intersect) },
    BuiltinDef { name: "set_difference", imp: Native(set_difference) },
    BuiltinDef { name: "set_symmetric_difference", imp: Native(set_symmetric_difference) },
    BuiltinDef { name: "set_is_subset", imp: Native(set_is_subset) },
    BuiltinDef { name: "set_is_superset", imp: Native(set_is_superset) },
    BuiltinDef { name: "set_is_disjoint", imp: Native(set_is_disjoint) },
];

// ---------------------------------------------------------------------------
// Structural hashing and de-duplication

/// Nesting depth below which `structural_hash` stops descending (deeper
/// values still hash, just more coarsely; equality decides in the end).
const HASH_DEPTH: usize = 64;

/// A hash consistent with `values_equal`: equal values hash equally (ints and
/// floats hash by their f64 value, sets ignore order, structs ignore field order).
/// Each node's hash combines its children's hashes, and shared nodes are
/// hashed once per depth, so a value that shares sub-values costs its
/// distinct nodes, not its paths.
pub fn structural_hash(v: &Value) -> u64 {
    let mut h = FxHasher::default();
    hash_into(v, &mut h, 0, &mut FxHashMap::default());
    h.finish()
}

/// Hashes a child into its parent's hasher: scalars inline, containers as
/// their own (memoizable) node hash. Equal values have the same shape, so
/// they take the same branch.
#[inline]
fn hash_child(x: &Value, h: &mut FxHasher, depth: usize, memo: &mut HashMemo) {
    match x {
        Value::List(_) | Value::Dict(_) | Value::Set(_) | Value::Pair(_) | Value::Enum(_) | Value::Struct(_) => {
            h.write_u64(deep::grow(|| node_hash(x, depth, memo)))
        }
        _ => hash_into(x, h, depth, memo),
    }
}

/// Memo of shared nodes' hashes, by (address, depth): below `HASH_DEPTH` a
/// node hashes coarsely, so its hash depends on the depth it is met at.
type HashMemo = FxHashMap<(usize, usize), u64>;

fn node_hash(v: &Value, depth: usize, memo: &mut HashMemo) -> u64 {
    let key = match v {
        Value::List(x) | Value::Set(x) if deep::shared(x) => Some(deep::addr(x)),
        Value::Dict(x) if deep::shared(x) => Some(deep::addr(x)),
        Value::Pair(x) if deep::shared(x) => Some(deep::addr(x)),
        Value::Enum(x) if deep::shared(x) => Some(deep::addr(x)),
        Value::Struct(x) if deep::shared(x) => Some(deep::addr(x)),
        _ => None,
    };
    if let Some(hash) = key.and_then(|k| memo.get(&(k, depth))) {
        return *hash;
    }
    let mut h = FxHasher::default();
    hash_into(v, &mut h, depth, memo);
    let hash = h.finish();
    if let Some(k) = key {
        memo.insert((k, depth), hash);
    }
    hash
}

fn hash_into(v: &Value, h: &mut FxHasher, depth: usize, memo: &mut HashMemo) {
    // Ints and floats share a tag: `1 == 1.0`.
    let tag = if matches!(v, Value::Int(_) | Value::Float(_)) { "number" } else { v.type_name() };
    h.write(tag.as_bytes());
    if depth > HASH_DEPTH {
        return;
    }
    let d = depth + 1;
    match v {
        Value::Nil => {}
        Value::Bool(b) => h.write_u8(*b as u8),
        // `1 == 1.0` in Harn, so both hash the f64 value (with -0.0 folded into 0.0).
        Value::Int(_) | Value::Float(_) => {
            let f = v.as_f64().unwrap_or(0.0);
            h.write_u64(if f == 0.0 { 0 } else { f.to_bits() });
        }
        Value::Duration(ms) => h.write_i64(*ms),
        Value::Str(s) => h.write(s.as_bytes()),
        Value::Bytes(b) => h.write(b),
        Value::List(items) => {
            h.write_usize(items.len());
            items.iter().for_each(|x| hash_child(x, h, d, memo));
        }
        Value::Dict(map) => {
            h.write_usize(map.len());
            for (k, x) in map.iter() {
                h.write(k.as_bytes());
                hash_child(x, h, d, memo);
            }
        }
        // Order-independent: sum of the element hashes.
        Value::Set(items) => {
            let sum = items.iter().fold(0u64, |acc, x| acc.wrapping_add(node_hash(x, d, memo)));
            h.write_u64(sum);
        }
        Value::Range(r) => {
            h.write_i64(r.start);
            h.write_i64(r.end);
            h.write_u8(r.inclusive as u8);
        }
        Value::Pair(p) => {
            hash_child(&p.0, h, d, memo);
            hash_child(&p.1, h, d, memo);
        }
        Value::Enum(e) => {
            h.write(e.enum_name.as_bytes());
            h.write(e.variant.as_bytes());
            e.fields.iter().for_each(|x| hash_child(x, h, d, memo));
        }
        Value::Struct(s) => {
            h.write(s.name().as_bytes());
            let sum = s.layout.fields.iter().zip(s.values.iter()).fold(0u64, |acc, (k, x)| {
                let mut fh = FxHasher::default();
                fh.write(k.as_bytes());
                fh.write_u64(node_hash(x, d, memo));
                acc.wrapping_add(fh.finish())
            });
            h.write_u64(sum);
        }
        Value::Builtin(id) => h.write_u32(*id),
        Value::Closure(c) => h.write_usize(Rc::as_ptr(c) as *const u8 as usize),
        Value::Object(o) => match &**o {
            Object::Atomic(n, _) => h.write_i64(n.get()),
            // Equal decimals differ only in scale; the normalized form is canonical.
            Object::Decimal(x) => h.write_u128(x.normalize().serialize().iter().fold(0u128, |acc, b| acc << 8 | u128::from(*b))),
            _ => h.write_usize(Rc::as_ptr(o) as *const u8 as usize),
        },
    }
}

/// An insertion-ordered collection of structurally distinct values with
/// expected O(1) membership tests.
#[derive(Default)]
pub struct ValueSet {
    items: Vec<Value>,
    /// Hash → index of the first item with that hash.
    heads: FxHashMap<u64, usize>,
    /// Index → next item index with the same hash.
    chain: Vec<Option<usize>>,
}

impl ValueSet {
    pub fn with_capacity(n: usize) -> ValueSet {
        ValueSet {
            items: Vec::with_capacity(n),
            heads: FxHashMap::with_capacity_and_hasher(n, Default::default()),
            chain: Vec::with_capacity(n),
        }
    }

    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a Value>) -> ValueSet {
        let mut set = ValueSet::default();
        for v in values {
            set.insert(v.clone());
        }
        set
    }

    fn find(&self, hash: u64, v: &Value) -> Option<usize> {
        let mut cur = self.heads.get(&hash).copied();
        while let Some(i) = cur {
            if values_equal(&self.items[i], v) {
                return Some(i);
            }
            cur = self.chain[i];
        }
        None
    }

    pub fn contains(&self, v: &Value) -> bool {
        self.find(structural_hash(v), v).is_some()
    }

    /// Adds `v` unless an equal value is present; true when it was added.
    pub fn insert(&mut self, v: Value) -> bool {
        let hash = structural_hash(&v);
        if self.find(hash, &v).is_some() {
            return false;
        }
        let index = self.items.len();
        let previous_head = self.heads.insert(hash, index);
        self.chain.push(previous_head);
        self.items.push(v);
        true
    }

    pub fn into_vec(self) -> Vec<Value> {
        self.items
    }
}

/// The distinct values of `items`, first occurrence kept.
pub fn dedupe<'a>(items: impl IntoIterator<Item = &'a Value>) -> Vec<Value> {
    ValueSet::from_values(items).into_vec()
}

/// A set value from items (de-duplicated, insertion order).
pub fn set_value<'a>(items: impl IntoIterator<Item = &'a Value>) -> Value {
    Value::Set(Rc::new(dedupe(items)))
}

// ---------------------------------------------------------------------------
// Sorting

/// Stable merge sort. `compare_values` is not a total order across types
/// (unrelated types compare equal), and std's sort may panic on such
/// comparators; this one just produces some stable order.
pub fn stable_sort_by<T: Clone>(items: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let mut buffer = Vec::with_capacity(items.len() / 2 + 1);
    merge_sort(items, &mut buffer, &mut |a, b| cmp(a, b) == Ordering::Less);
}

fn merge_sort<T: Clone>(items: &mut [T], buffer: &mut Vec<T>, is_less: &mut impl FnMut(&T, &T) -> bool) {
    let n = items.len();
    if n <= 12 {
        for i in 1..n {
            let mut j = i;
            while j > 0 && is_less(&items[j], &items[j - 1]) {
                items.swap(j, j - 1);
                j -= 1;
            }
        }
        return;
    }
    let mid = n / 2;
    merge_sort(&mut items[..mid], buffer, is_less);
    merge_sort(&mut items[mid..], buffer, is_less);
    if !is_less(&items[mid], &items[mid - 1]) {
        return;
    }
    buffer.clear();
    buffer.extend_from_slice(&items[..mid]);
    // Merge the copied left half with the right half in place: the write
    // position never overtakes the unread right-half position.
    let (mut left, mut right, mut out) = (0, mid, 0);
    while left < buffer.len() && right < n {
        if is_less(&items[right], &buffer[left]) {
            items[out] = items[right].clone();
            right += 1;
        } else {
            items[out] = buffer[left].clone();
            left += 1;
        }
        out += 1;
    }
    while left < buffer.len() {
        items[out] = buffer[left].clone();
        left += 1;
        out += 1;
    }
}

/// `xs.sort()`: stable, by `compare_values`.
pub fn sorted(items: &[Value]) -> Vec<Value> {
    let mut out = items.to_vec();
    stable_sort_by(&mut out, compare_values);
    out
}

// ---------------------------------------------------------------------------
// Shapes of lists

/// Consecutive chunks of `size` (at least 1); the last may be short.
pub fn chunks(items: &[Value], size: i64) -> Value {
    let size = size.max(1) as usize;
    Value::list(items.chunks(size).map(|c| Value::list(c.to_vec())).collect())
}

/// Sliding windows of `size` moving by `step` (both at least 1); empty when
/// `size` exceeds the length.
pub fn windows(items: &[Value], size: i64, step: i64, limits: &Limits) -> VmResult<Value> {
    let (size, step) = (size.max(1) as usize, step.max(1) as usize);
    if size > items.len() {
        return Ok(Value::list(vec![]));
    }
    let count = (items.len() - size) / step + 1;
    super::args::check_alloc_product(count as u128, size as u128, limits, "window")?;
    Ok(Value::list((0..count).map(|i| Value::list(items[i * step..i * step + size].to_vec())).collect()))
}

// Set algebra on insertion-ordered sets; results keep `a`'s order, then `b`'s.
pub fn union_of(a: &[Value], b: &[Value]) -> Value {
    let mut set = ValueSet::from_values(a);
    for v in b {
        set.insert(v.clone());
    }
    Value::Set(Rc::new(set.into_vec()))
}

pub fn intersection_of(a: &[Value], b: &[Value]) -> Value {
    let other = ValueSet::from_values(b);
    set_value(a.iter().filter(|v| other.contains(v)))
}

pub fn difference_of(a: &[Value], b: &[Value]) -> Value {
    let other = ValueSet::from_values(b);
    set_value(a.iter().filter(|v| !other.contains(v)))
}

pub fn symmetric_difference_of(a: &[Value], b: &[Value]) -> Value {
    let (sa, sb) = (ValueSet::from_values(a), ValueSet::from_values(b));
    set_value(a.iter().filter(|v| !sb.contains(v)).chain(b.iter().filter(|v| !sa.contains(v))))
}

/// Every item of `a` is in `b`.
pub fn is_subset(a: &[Value], b: &[Value]) -> bool {
    let other = ValueSet::from_values(b);
    a.iter().all(|v| other.contains(v))
}

pub fn is_disjoint(a: &[Value], b: &[Value]) -> bool {
    let other = ValueSet::from_values(b);
    !a.iter().any(|v| other.contains(v))
}

/// A dict's entries as `{key, value}` dicts (the shape `d.entries()` and
/// `for e in d` use).
pub fn entry_dicts(map: &DictMap) -> Vec<Value> {
    map.iter()
        .map(|(k, v)| {
            let mut entry = DictMap::new();
            entry.insert(Rc::new("key".to_string()), Value::Str(k.clone()));
            entry.insert(Rc::new("value".to_string()), v.clone());
            Value::dict(entry)
        })
        .collect()
}

/// A dict's entries as `Pair(key, value)` values, in key order.
pub fn entry_pairs(map: &DictMap) -> Vec<Value> {
    map.iter().map(|(k, v)| Value::pair(Value::Str(k.clone()), v.clone())).collect()
}

// ---------------------------------------------------------------------------
// Callback-driven algorithms (shared by methods and builtins)

/// Finishers for sequences of values.
pub fn finish_list(items: Vec<Value>) -> VmResult<Value> {
    Ok(Value::list(items))
}
pub fn finish_set(items: Vec<Value>) -> VmResult<Value> {
    Ok(set_value(&items))
}
/// Items are `Pair(key, value)`.
pub fn finish_dict(items: Vec<Value>) -> VmResult<Value> {
    let mut map = DictMap::new();
    for item in items {
        if let Value::Pair(p) = &item {
            map.insert(key_of(&p.0), p.1.clone());
        }
    }
    Ok(Value::dict(map))
}

/// `[f(x) for x in items]`, finished by `finish`.
pub fn map_each(f: &Value, items: Rc<Vec<Value>>, args: ArgsFn<Vec<Value>>, finish: FinishFn<Vec<Value>>) -> VmResult<Flow> {
    let n = items.len();
    CallbackLoop::run(
        f.clone(),
        items,
        Vec::with_capacity(n),
        args,
        |out, _, _, r| {
            out.push(r);
            Ok(Step::Next)
        },
        finish,
    )
}

/// Items whose callback result is truthy, finished by `finish`.
pub fn filter_each(f: &Value, items: Rc<Vec<Value>>, args: ArgsFn<Vec<Value>>, finish: FinishFn<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        Vec::new(),
        args,
        |out, _, item, r| {
            if r.is_truthy() {
                out.push(item.clone());
            }
            Ok(Step::Next)
        },
        finish,
    )
}

/// Map then flatten one level (non-list results are kept as they are).
pub fn flat_map_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        Vec::new(),
        item_arg,
        |out, _, _, r| {
            match &r {
                Value::List(inner) => out.extend(inner.iter().cloned()),
                _ => out.push(r),
            }
            Ok(Step::Next)
        },
        finish_list,
    )
}

/// Dict keyed by `display(f(x))` → list of items.
pub fn group_by_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        FxHashMap::<Rc<String>, Vec<Value>>::default(),
        item_arg,
        |groups, _, item, r| {
            groups.entry(key_of(&r)).or_default().push(item.clone());
            Ok(Step::Next)
        },
        |groups| Ok(Value::dict(groups.into_iter().map(|(k, v)| (k, Value::list(v))).collect())),
    )
}

/// (matching, non-matching) items, shaped by `finish`.
pub fn partition_each(f: &Value, items: Rc<Vec<Value>>, finish: FinishFn<(Vec<Value>, Vec<Value>)>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        (Vec::new(), Vec::new()),
        item_arg,
        |(yes, no), _, item, r| {
            let side = if r.is_truthy() { yes } else { no };
            side.push(item.clone());
            Ok(Step::Next)
        },
        finish,
    )
}

/// First item per distinct `f(x)`.
pub fn dedup_by_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        (ValueSet::default(), Vec::new()),
        item_arg,
        |(seen, out), _, item, r| {
            if seen.insert(r) {
                out.push(item.clone());
            }
            Ok(Step::Next)
        },
        |(_, out)| finish_list(out),
    )
}

/// Stable sort by key `f(x)`.
pub fn sort_by_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    let n = items.len();
    CallbackLoop::run(
        f.clone(),
        items,
        Vec::with_capacity(n),
        item_arg,
        |keyed, _, item, key| {
            keyed.push((item.clone(), key));
            Ok(Step::Next)
        },
        |mut keyed| {
            stable_sort_by(&mut keyed, |a, b| compare_values(&a.1, &b.1));
            finish_list(keyed.into_iter().map(|(item, _)| item).collect())
        },
    )
}

/// The first item with a truthy result, else nil.
pub fn find_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        (),
        item_arg,
        |_, _, item, r| Ok(if r.is_truthy() { Step::Stop(item.clone()) } else { Step::Next }),
        |_| Ok(Value::Nil),
    )
}

/// Index of the first item with a truthy result, else -1.
pub fn find_index_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        (),
        item_arg,
        |_, i, _, r| Ok(if r.is_truthy() { Step::Stop(Value::Int(i as i64)) } else { Step::Next }),
        |_| Ok(Value::Int(-1)),
    )
}

/// Stops with `Bool(stop_value)` at the first result whose truthiness is
/// `stop_on`, else finishes with `Bool(!stop_value)`. Covers any / all / none.
pub fn short_circuit_each(f: &Value, items: Rc<Vec<Value>>, stop_on: bool, stop_value: bool) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        (stop_on, stop_value),
        item_arg,
        |&mut (stop_on, stop_value), _, _, r| {
            Ok(if r.is_truthy() == stop_on { Step::Stop(Value::Bool(stop_value)) } else { Step::Next })
        },
        |(_, stop_value)| Ok(Value::Bool(!stop_value)),
    )
}

pub fn any_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    short_circuit_each(f, items, true, true)
}
pub fn all_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    short_circuit_each(f, items, false, false)
}
pub fn none_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    short_circuit_each(f, items, true, false)
}

/// Left fold `f(acc, x)` starting from `init`.
pub fn reduce_each(f: &Value, items: Rc<Vec<Value>>, init: Value) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        init,
        |acc, item| smallvec::smallvec![acc.clone(), item.clone()],
        |acc, _, _, r| {
            *acc = r;
            Ok(Step::Next)
        },
        Ok,
    )
}

/// The item with the smallest (`want = Less`) or largest (`Greater`) key;
/// the first one wins ties. Nil when empty.
pub fn extreme_by_each(f: &Value, items: Rc<Vec<Value>>, want: Ordering) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        (want, None::<(Value, Value)>),
        item_arg,
        |(want, best), _, item, key| {
            let better = match best {
                None => true,
                Some((_, best_key)) => compare_values(&key, best_key) == *want,
            };
            if better {
                *best = Some((item.clone(), key));
            }
            Ok(Step::Next)
        },
        |(_, best)| Ok(best.map_or(Value::Nil, |(item, _)| item)),
    )
}

/// Leading items while the callback is truthy.
pub fn take_while_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        items,
        Vec::new(),
        item_arg,
        |out, _, item, r| {
            if !r.is_truthy() {
                return Ok(Step::Stop(Value::list(std::mem::take(out))));
            }
            out.push(item.clone());
            Ok(Step::Next)
        },
        finish_list,
    )
}

/// Items from the first one whose callback is falsy on.
pub fn skip_while_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(
        f.clone(),
        Rc::clone(&items),
        items,
        item_arg,
        |all, i, _, r| Ok(if r.is_truthy() { Step::Next } else { Step::Stop(Value::list(all[i..].to_vec())) }),
        |_| finish_list(vec![]),
    )
}

/// Calls `f(x)` for effect; nil.
pub fn for_each_each(f: &Value, items: Rc<Vec<Value>>) -> VmResult<Flow> {
    CallbackLoop::run(f.clone(), items, (), item_arg, |_, _, _, _| Ok(Step::Next), |_| Ok(Value::Nil))
}

// ---------------------------------------------------------------------------
// Builtins

fn chunk(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "chunk")?;
    done(chunks(items, arg(args, 1).as_int().unwrap_or(1)))
}

fn window(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "window")?;
    let size = arg(args, 1).as_int().unwrap_or(2);
    let step = arg(args, 2).as_int().unwrap_or(1);
    done(windows(items, size, step, ctx.limits)?)
}

/// The (list, callback) arguments of the callback-taking collection builtins.
fn list_and_callback<'a>(args: &'a [Value], builtin: &str) -> VmResult<(Rc<Vec<Value>>, &'a Value)> {
    let items = list_arg(args, 0, builtin)?;
    Ok((Rc::clone(items), callable_arg(args, 1, builtin)?))
}

fn group_by(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "group_by")?;
    group_by_each(f, items)
}

/// Free `partition` returns `{match, no_match}` (the method returns a pair list).
fn partition(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "partition")?;
    partition_each(f, items, |(yes, no)| Ok(Value::dict_from([("match", Value::list(yes)), ("no_match", Value::list(no))])))
}

fn dedup_by(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "dedup_by")?;
    dedup_by_each(f, items)
}

fn flat_map(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (items, f) = list_and_callback(args, "flat_map")?;
    flat_map_each(f, items)
}

/// Key/value views of a dict (or a struct's fields).
fn dict_view(args: &[Value], builtin: &str) -> VmResult<DictMap> {
    match arg(args, 0) {
        Value::Dict(map) => Ok((**map).clone()),
        Value::Struct(s) => Ok(s.layout.fields.iter().cloned().zip(s.values.iter().cloned()).collect()),
        Value::Nil => Ok(DictMap::new()),
        other => Err(super::args::expected(builtin, "a dict", other)),
    }
}

fn keys(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if let Value::Dict(map) = arg(args, 0) {
        return done(Value::list(map.keys().map(|k| Value::Str(k.clone())).collect()));
    }
    done(Value::list(dict_view(args, "keys")?.into_keys().map(Value::Str).collect()))
}

fn values(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if let Value::Dict(map) = arg(args, 0) {
        return done(Value::list(map.values().cloned().collect()));
    }
    done(Value::list(dict_view(args, "values")?.into_values().collect()))
}

fn entries(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if let Value::Dict(map) = arg(args, 0) {
        return done(Value::list(entry_dicts(map)));
    }
    done(Value::list(entry_dicts(&dict_view(args, "entries")?)))
}

/// `to_list(x)`: sets and ranges become lists; any other value is wrapped.
fn to_list(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match arg(args, 0) {
        Value::List(items) => done(Value::List(items.clone())),
        v @ (Value::Set(_) | Value::Range(_)) => {
            done(Value::list(Rc::unwrap_or_clone(crate::builtins::methods::sequence_items(v, ctx.limits)?)))
        }
        other => done(Value::list(vec![other.clone()])),
    }
}

/// `set()`, `set(list)`, `set(a, b, c)`.
fn set(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match args {
        [Value::List(items) | Value::Set(items)] => done(set_value(items.iter())),
        _ => done(set_value(args)),
    }
}

/// The two set operands of `set_*` builtins (lists are accepted as sets).
fn two_sets<'a>(args: &'a [Value], builtin: &str) -> VmResult<(&'a [Value], &'a [Value])> {
    Ok((list_arg(args, 0, builtin)?, list_arg(args, 1, builtin)?))
}

fn set_contains(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "set_contains")?;
    let needle = arg(args, 1);
    done(Value::Bool(items.iter().any(|v| values_equal(v, needle))))
}

fn set_add(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "set_add")?;
    done(union_of(items, std::slice::from_ref(arg(args, 1))))
}

fn set_remove(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let items = list_arg(args, 0, "set_remove")?;
    done(difference_of(items, std::slice::from_ref(arg(args, 1))))
}

fn set_union(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_union")?;
    done(union_of(a, b))
}

fn set_intersect(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_intersect")?;
    done(intersection_of(a, b))
}

fn set_difference(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_difference")?;
    done(difference_of(a, b))
}

fn set_symmetric_difference(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_symmetric_difference")?;
    done(symmetric_difference_of(a, b))
}

fn set_is_subset(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_is_subset")?;
    done(Value::Bool(is_subset(a, b)))
}

fn set_is_superset(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_is_superset")?;
    done(Value::Bool(is_subset(b, a)))
}

fn set_is_disjoint(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = two_sets(args, "set_is_disjoint")?;
    done(Value::Bool(is_disjoint(a, b)))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{callee, no_callback, run_builtin};
    use super::*;

    fn int(n: i64) -> Value {
        Value::Int(n)
    }
    fn ints(items: &[i64]) -> Value {
        Value::list(items.iter().map(|n| Value::Int(*n)).collect())
    }
    fn call(name: &str, args: &[Value]) -> String {
        call_with(name, args, &no_callback)
    }
    fn call_with(name: &str, args: &[Value], f: &dyn Fn(&[Value]) -> VmResult<Value>) -> String {
        run_builtin(name, args, f).map_or_else(|e| e, |v| v.display())
    }

    #[test]
    fn list_shapes() {
        assert_eq!(call("chunk", &[ints(&[1, 2, 3, 4, 5]), int(2)]), "[[1, 2], [3, 4], [5]]");
        assert_eq!(call("chunk", &[ints(&[]), int(2)]), "[]");
        assert_eq!(call("window", &[ints(&[1, 2, 3, 4, 5]), int(3), int(2)]), "[[1, 2, 3], [3, 4, 5]]");
        assert_eq!(call("window", &[ints(&[1, 2])]), "[[1, 2]]");
        assert_eq!(call("chunk", &[int(3)]), "Thrown: chunk: expected a list, got int");
    }

    #[test]
    fn callback_builtins() {
        let parity = |a: &[Value]| Ok(int(a[0].as_int().unwrap() % 2));
        let even = |a: &[Value]| Ok(Value::Bool(a[0].as_int().unwrap() % 2 == 0));
        let grouped = call_with("group_by", &[ints(&[1, 2, 3, 4]), callee()], &parity);
        assert_eq!(grouped, "{0: [2, 4], 1: [1, 3]}");
        let parts = call_with("partition", &[ints(&[1, 2, 3, 4]), callee()], &even);
        assert_eq!(parts, "{match: [2, 4], no_match: [1, 3]}");
        let lower = |a: &[Value]| Ok(Value::str(a[0].as_str().unwrap().to_lowercase()));
        let words = Value::list(["a", "A", "bb", "BB"].iter().map(|w| Value::str(*w)).collect());
        assert_eq!(call_with("dedup_by", &[words, callee()], &lower), "[a, bb]");
        let pair = |a: &[Value]| Ok(Value::list(vec![a[0].clone(), int(a[0].as_int().unwrap() * 10)]));
        assert_eq!(call_with("flat_map", &[ints(&[1, 2, 3]), callee()], &pair), "[1, 10, 2, 20, 3, 30]");
        assert_eq!(call("group_by", &[ints(&[1]), int(5)]), "Thrown: group_by: expected a callable, got int");
    }

    #[test]
    fn dict_views_and_sets() {
        let d = Value::dict_from([("b", int(2)), ("a", int(1))]);
        assert_eq!(call("keys", std::slice::from_ref(&d)), "[a, b]");
        assert_eq!(call("values", std::slice::from_ref(&d)), "[1, 2]");
        assert_eq!(call("entries", &[d]), "[{key: a, value: 1}, {key: b, value: 2}]");
        assert_eq!(call("keys", &[int(1)]), "Thrown: keys: expected a dict, got int");
        assert_eq!(call("set", &[]), "set()");
        assert_eq!(call("set", &[int(1), int(1), int(2)]), "set(1, 2)");
        assert_eq!(call("set", &[ints(&[4, 5, 5, 6])]), "set(4, 5, 6)");
        let nested = Value::list(vec![ints(&[1, 2]), ints(&[3, 4]), ints(&[1, 2])]);
        assert_eq!(call("set", &[nested]), "set([1, 2], [3, 4])");
        let mixed = [int(1), Value::str("1"), Value::Bool(true), Value::Nil, Value::Nil];
        assert_eq!(call("set", &mixed), "set(1, 1, true, nil)");
        let a = set_value(&[int(1), int(2), int(3), int(4)]);
        let b = set_value(&[int(3), int(4), int(5), int(6)]);
        assert_eq!(call("set_union", &[a.clone(), b.clone()]), "set(1, 2, 3, 4, 5, 6)");
        assert_eq!(call("set_intersect", &[a.clone(), b.clone()]), "set(3, 4)");
        assert_eq!(call("set_difference", &[a.clone(), b.clone()]), "set(1, 2)");
        assert_eq!(call("set_symmetric_difference", &[a.clone(), b.clone()]), "set(1, 2, 5, 6)");
        assert_eq!(call("set_contains", &[a.clone(), int(2)]), "true");
        assert_eq!(call("set_add", &[a.clone(), int(1)]), "set(1, 2, 3, 4)");
        assert_eq!(call("set_remove", &[a.clone(), int(2)]), "set(1, 3, 4)");
        let empty = set_value([]);
        assert_eq!(call("set_is_subset", &[empty.clone(), a.clone()]), "true");
        assert_eq!(call("set_is_superset", &[a.clone(), empty.clone()]), "true");
        assert_eq!(call("set_is_disjoint", &[empty.clone(), empty]), "true");
        assert_eq!(call("set_is_disjoint", &[a.clone(), b]), "false");
        assert_eq!(call("to_list", &[a]), "[1, 2, 3, 4]");
        assert_eq!(call("to_list", &[Value::range(1, 3, true)]), "[1, 2, 3]");
        assert_eq!(call("to_list", &[int(7)]), "[7]");
    }

    #[test]
    fn value_set_dedupes_structurally() {
        let mut set = ValueSet::default();
        assert!(set.insert(int(1)));
        assert!(!set.insert(Value::Float(1.0)));
        assert!(set.insert(Value::str("1")));
        assert!(set.insert(Value::dict_from([("a", int(1))])));
        assert!(!set.insert(Value::dict_from([("a", int(1))])));
        assert!(set.contains(&Value::dict_from([("a", int(1))])));
        assert_eq!(set.into_vec().len(), 3);
        let big: Vec<Value> = (0..10_000).map(|i| int(i % 100)).collect();
        assert_eq!(dedupe(&big).len(), 100);
    }

    #[test]
    fn stable_sort_keeps_equal_items_in_order() {
        let mut items: Vec<(i64, usize)> = (0..100).map(|i| ((i * 7 % 5) as i64, i)).collect();
        stable_sort_by(&mut items, |a, b| a.0.cmp(&b.0));
        assert!(items.windows(2).all(|w| w[0].0 < w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1)));
    }
}
