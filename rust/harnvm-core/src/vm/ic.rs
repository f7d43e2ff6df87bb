//! Inline caches: entries, their state machines, and the VM-owned cache sets.
//!
//! Every cacheable op owns a slot, numbered per chunk at emit time and
//! carried as the op's `Cache` operand (see `chunk.rs`). The entries live on
//! the VM, never in the shared chunk: one `CacheSet` per chunk the VM has run,
//! each a range of one flat entry arena. A frame finds its set once, at entry
//! (`InlineCaches::set_for`); the dispatch loop reads the set's arena base
//! when it (re)enters the frame. Hot ops index the arena with `base + slot` and
//! match on the entry in place: the payload they read is small and `Copy`,
//! and counters are bumped where they lie, so nothing is cloned.
//!
//! The state machines follow harn-vm's observable behaviour:
//!
//! * `Binary` (the adaptive `+ - * / % == != < > <= >=`): `Warmup{shape, hits}`
//!   until the third execution with the same operand shape, then
//!   `Specialized{shape, hits, misses}`; a different shape while specialized
//!   with no misses yet re-specializes at once (one miss recorded), any later
//!   change drops to warmup. Operands with no shape (mixed int/float, string
//!   concatenation, lists, ...) leave the state alone.
//! * `DirectCall`: the same table keyed on (argc, callee identity). The
//!   guard is pointer identity of the closure (the entry holds an `Rc`, so
//!   the address cannot be reused while cached); rebinding a name deopts.
//!   Unlike harn-vm, hits keep counting after promotion.
//! * `Property` / `Method`: monomorphic, replaced on a miss when the new
//!   receiver is cacheable, left alone when it is not. They also count hits
//!   and misses, for `inline_cache_report`.
//!
//! Results never depend on caches: every specialized kernel computes exactly
//! what the generic path does, and falls back to it (`None`) when it cannot.

use std::rc::{Rc, Weak};

use rustc_hash::FxHashMap;

use crate::builtins::args::text_arg;
use crate::builtins::strings::char_len;
use crate::bytecode::chunk::{Chunk, FunctionProto, Op, NO_CACHE_OPERAND};
use crate::runtime::error::VmResult;
use crate::runtime::ops::{dict_get, float_binary, int_binary};
use crate::runtime::value::{arg, values_equal, Closure, DictMap, HStr, StructLayout, Value};

/// An arena base past any arena, so every `entry_at` misses: the base of
/// a frame running with inline caches off (its sites run uncached).
pub const NO_SET_BASE: usize = usize::MAX / 2;

/// Same-shape executions after which a binary site or a call site specializes.
pub const QUICKEN_THRESHOLD: u64 = 3;

// ---------------------------------------------------------------------------
// Adaptive binary ops

/// Defined on the ground floor with its kernels; its forms come from `define_ops!`.
pub use crate::runtime::ops::BinaryOp;

/// The operand shape a binary site specializes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Shape {
    Int,
    Float,
    Bool,
    Str,
}

impl Shape {
    /// Both operands Int, or both Float; both Bool or both String only for
    /// `==`/`!=`. Anything else (mixed int/float included) has no shape.
    #[inline]
    pub fn of(op: BinaryOp, a: &Value, b: &Value) -> Option<Shape> {
        match (a, b) {
            (Value::Int(_), Value::Int(_)) => Some(Shape::Int),
            (Value::Float(_), Value::Float(_)) => Some(Shape::Float),
            (Value::Bool(_), Value::Bool(_)) if op.is_equality() => Some(Shape::Bool),
            (Value::Str(_), Value::Str(_)) if op.is_equality() => Some(Shape::Str),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Shape::Int => "int",
            Shape::Float => "float",
            Shape::Bool => "bool",
            Shape::Str => "string",
        }
    }

    pub fn from_name(name: &str) -> Option<Shape> {
        [Shape::Int, Shape::Float, Shape::Bool, Shape::Str].into_iter().find(|s| s.name() == name)
    }
}

/// `repr(C, u8)`: a plain leading tag, so the hot path tests it with one compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, u8)]
pub enum BinaryState {
    Warmup { shape: Shape, hits: u64 },
    Specialized { shape: Shape, hits: u64, misses: u64 },
}

/// The state after a generic execution with operand shape `shape`
/// (`prev` is None for an empty slot or one holding another op's entry).
pub fn next_binary_state(prev: Option<BinaryState>, shape: Shape) -> BinaryState {
    match prev {
        Some(BinaryState::Warmup { shape: s, hits }) if s == shape => {
            let hits = hits + 1;
            if hits >= QUICKEN_THRESHOLD {
                BinaryState::Specialized { shape, hits, misses: 0 }
            } else {
                BinaryState::Warmup { shape, hits }
            }
        }
        Some(BinaryState::Specialized { shape: s, hits, misses }) if s == shape => {
            BinaryState::Specialized { shape, hits: hits + 1, misses }
        }
        Some(BinaryState::Specialized { misses: 0, .. }) => BinaryState::Specialized { shape, hits: 1, misses: 1 },
        _ => BinaryState::Warmup { shape, hits: 1 },
    }
}

/// The specialized kernel for `op` on operands of `shape`: the generic
/// result, or None when the operands are not of that shape or the generic
/// path must decide (division by zero raises). Ints and floats run the
/// ground floor's kernels, the same ones the generic ops use.
#[inline(always)]
pub fn specialized_binary(op: BinaryOp, shape: Shape, a: &Value, b: &Value) -> Option<Value> {
    match (shape, a, b) {
        (Shape::Int, &Value::Int(x), &Value::Int(y)) => int_binary(op, x, y),
        (Shape::Float, &Value::Float(x), &Value::Float(y)) => float_binary(op, x, y),
        (Shape::Bool, &Value::Bool(x), &Value::Bool(y)) => match op {
            BinaryOp::Eq => Some(Value::Bool(x == y)),
            BinaryOp::Ne => Some(Value::Bool(x != y)),
            _ => None,
        },
        (Shape::Str, Value::Str(x), Value::Str(y)) => match op {
            BinaryOp::Eq => Some(Value::Bool(Rc::ptr_eq(x, y) || x == y)),
            BinaryOp::Ne => Some(Value::Bool(!(Rc::ptr_eq(x, y) || x == y))),
            _ => None,
        },
        _ => None,
    }
}

/// Runs a binary op through its cache entry: the specialized kernel on a
/// hit, else `generic` and a state transition.
#[inline(always)]
pub fn run_binary(
    entry: &mut Entry,
    op: BinaryOp,
    a: &Value,
    b: &Value,
    generic: impl FnOnce(&Value, &Value) -> VmResult<Value>,
) -> VmResult<Value> {
    match specialized_hit(entry, op, a, b) {
        Some(v) => Ok(v),
        None => binary_slow(entry, op, a, b, generic),
    }
}

/// The hit counter of an entry specialized on int operands for `op`, if it
/// is one: the caller then runs its own int fast path and, when that
/// answers, bumps the counter.
#[inline(always)]
pub fn int_specialized_hits(entry: &mut Entry, op: BinaryOp) -> Option<&mut u64> {
    match entry {
        Entry::Binary { op: cached, state: BinaryState::Specialized { shape: Shape::Int, hits, .. } } if *cached == op => {
            Some(hits)
        }
        _ => None,
    }
}

/// The specialized result when the entry is specialized for `op` and the
/// operands fit its shape (counting the hit); None sends the op to `binary_slow`.
#[inline(always)]
pub fn specialized_hit(entry: &mut Entry, op: BinaryOp, a: &Value, b: &Value) -> Option<Value> {
    if let Entry::Binary { op: cached, state: BinaryState::Specialized { shape, hits, .. } } = entry {
        if *cached == op {
            let v = specialized_binary(op, *shape, a, b)?;
            *hits += 1;
            return Some(v);
        }
    }
    None
}

/// The generic op, then the state transition for the operands' shape.
#[inline(never)]
pub fn binary_slow(
    entry: &mut Entry,
    op: BinaryOp,
    a: &Value,
    b: &Value,
    generic: impl FnOnce(&Value, &Value) -> VmResult<Value>,
) -> VmResult<Value> {
    let shape = Shape::of(op, a, b);
    let result = generic(a, b)?;
    if let Some(shape) = shape {
        let prev = match entry {
            Entry::Binary { op: cached, state } if *cached == op => Some(*state),
            _ => None,
        };
        *entry = Entry::Binary { op, state: next_binary_state(prev, shape) };
    }
    Ok(result)
}

// ---------------------------------------------------------------------------
// Property reads

/// What a cached property read resolves to. All `Copy`; a struct field is
/// guarded by its layout's address (kept alive by the entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyTarget {
    ListCount,
    ListEmpty,
    ListFirst,
    ListLast,
    StringCount,
    StringEmpty,
    PairFirst,
    PairSecond,
    EnumVariant,
    EnumFields,
    /// A dict entry, remembered by its slot in the dict (`DictMap::slot`):
    /// a hit is the key at that slot being the site's name `Rc` (interned
    /// at compile time, so literal keys and property names share it).
    DictField {
        slot: u32,
    },
    StructField {
        layout: *const StructLayout,
        index: u32,
    },
}

impl PropertyTarget {
    pub const UNIT_NAMES: [(&'static str, PropertyTarget); 11] = [
        ("list_count", PropertyTarget::ListCount),
        ("list_empty", PropertyTarget::ListEmpty),
        ("list_first", PropertyTarget::ListFirst),
        ("list_last", PropertyTarget::ListLast),
        ("string_count", PropertyTarget::StringCount),
        ("string_empty", PropertyTarget::StringEmpty),
        ("pair_first", PropertyTarget::PairFirst),
        ("pair_second", PropertyTarget::PairSecond),
        ("enum_variant", PropertyTarget::EnumVariant),
        ("enum_fields", PropertyTarget::EnumFields),
        ("dict_field", PropertyTarget::DictField { slot: 0 }),
    ];

    pub fn name(self) -> &'static str {
        match self {
            PropertyTarget::StructField { .. } => "struct_field",
            PropertyTarget::DictField { .. } => "dict_field",
            other => Self::UNIT_NAMES.iter().find(|(_, t)| *t == other).map_or("?", |(n, _)| n),
        }
    }

    pub fn from_name(name: &str) -> Option<PropertyTarget> {
        Self::UNIT_NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The target `obj.name` resolves to, if the read is cacheable, with the
    /// layout the entry must keep alive for a struct field.
    pub fn resolve(obj: &Value, name: &str) -> Option<(PropertyTarget, Option<Rc<StructLayout>>)> {
        let target = match (obj, name) {
            (Value::Dict(map), _) => PropertyTarget::DictField { slot: map.get_full(name).map_or(0, |(slot, _, _)| slot as u32) },
            (Value::Struct(s), _) => {
                let index = s.layout.index_of(name)?;
                let layout = Rc::clone(&s.layout);
                return Some((PropertyTarget::StructField { layout: Rc::as_ptr(&layout), index: index as u32 }, Some(layout)));
            }
            (Value::List(_), "count") => PropertyTarget::ListCount,
            (Value::List(_), "empty") => PropertyTarget::ListEmpty,
            (Value::List(_), "first") => PropertyTarget::ListFirst,
            (Value::List(_), "last") => PropertyTarget::ListLast,
            (Value::Str(_), "count") => PropertyTarget::StringCount,
            (Value::Str(_), "empty") => PropertyTarget::StringEmpty,
            (Value::Pair(_), "first") => PropertyTarget::PairFirst,
            (Value::Pair(_), "second") => PropertyTarget::PairSecond,
            (Value::Enum(_), "variant") => PropertyTarget::EnumVariant,
            (Value::Enum(_), "fields") => PropertyTarget::EnumFields,
            _ => return None,
        };
        Some((target, None))
    }

    /// The read through this target, or None when the receiver does not fit
    /// (the guard failed). `name` is the site's property name.
    #[inline(always)]
    pub fn read(self, obj: &Value, name: &HStr) -> Option<Value> {
        Some(match (self, obj) {
            (PropertyTarget::StructField { layout, index }, Value::Struct(s)) => {
                if !std::ptr::eq(Rc::as_ptr(&s.layout), layout) {
                    return None;
                }
                s.values.get(index as usize)?.clone()
            }
            // Another key in the slot: `dict_slot_relearn`, out of line (see `property_hit`).
            (PropertyTarget::DictField { slot }, Value::Dict(map)) => match map.slot(slot as usize) {
                Some((k, v)) if Rc::ptr_eq(k, name) => v.clone(),
                _ => return None,
            },
            (PropertyTarget::ListCount, Value::List(items)) => Value::Int(items.len() as i64),
            (PropertyTarget::ListEmpty, Value::List(items)) => Value::Bool(items.is_empty()),
            (PropertyTarget::ListFirst, Value::List(items)) => items.first().cloned().unwrap_or_default(),
            (PropertyTarget::ListLast, Value::List(items)) => items.last().cloned().unwrap_or_default(),
            (PropertyTarget::StringCount, Value::Str(s)) => Value::Int(char_len(s) as i64),
            (PropertyTarget::StringEmpty, Value::Str(s)) => Value::Bool(s.is_empty()),
            (PropertyTarget::PairFirst, Value::Pair(p)) => p.0.clone(),
            (PropertyTarget::PairSecond, Value::Pair(p)) => p.1.clone(),
            (PropertyTarget::EnumVariant, Value::Enum(e)) => Value::Str(e.variant.clone()),
            (PropertyTarget::EnumFields, Value::Enum(e)) => Value::list(e.fields.clone()),
            _ => return None,
        })
    }
}

/// A dict-field site's slot did not hold its name `Rc`: the same text under another `Rc` (keys parsed from
/// JSON, built strings) still reads there; else a hashed lookup, and the
/// site remembers where it found the key. A missing key reads nil.
#[inline(never)]
pub fn dict_slot_relearn(map: &DictMap, slot: &mut u32, name: &HStr) -> Value {
    if let Some((k, v)) = map.slot(*slot as usize) {
        if k.as_str() == name.as_str() {
            return v.clone();
        }
    }
    match map.get_full(name) {
        Some((found, _, v)) => {
            *slot = found as u32;
            v.clone()
        }
        None => Value::Nil,
    }
}

/// `map.name = v` through the slot a site remembered (the same guard as
/// `dict_slot_read`); a new key is inserted and its slot remembered.
#[inline]
pub fn dict_slot_write(map: &mut DictMap, slot: &mut u32, name: &HStr, v: Value) {
    if let Some((k, place)) = map.slot_mut(*slot as usize) {
        if Rc::ptr_eq(k, name) || k.as_str() == name.as_str() {
            *place = v;
            return;
        }
    }
    *slot = map.insert_full(Rc::clone(name), v).0 as u32;
}

// ---------------------------------------------------------------------------
// Method calls

/// Builtin receiver methods a call site can bind to. All pure: Harn values
/// are immutable, so a bound target never needs invalidating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodTarget {
    ListCount,
    ListEmpty,
    ListContains,
    StringCount,
    StringEmpty,
    StringContains,
    DictCount,
    DictHas,
    RangeCount,
    RangeLen,
    RangeEmpty,
    RangeFirst,
    RangeLast,
    SetCount,
    SetLen,
    SetEmpty,
    SetContains,
}

impl MethodTarget {
    pub const NAMES: [(&'static str, MethodTarget); 17] = [
        ("list_count", MethodTarget::ListCount),
        ("list_empty", MethodTarget::ListEmpty),
        ("list_contains", MethodTarget::ListContains),
        ("string_count", MethodTarget::StringCount),
        ("string_empty", MethodTarget::StringEmpty),
        ("string_contains", MethodTarget::StringContains),
        ("dict_count", MethodTarget::DictCount),
        ("dict_has", MethodTarget::DictHas),
        ("range_count", MethodTarget::RangeCount),
        ("range_len", MethodTarget::RangeLen),
        ("range_empty", MethodTarget::RangeEmpty),
        ("range_first", MethodTarget::RangeFirst),
        ("range_last", MethodTarget::RangeLast),
        ("set_count", MethodTarget::SetCount),
        ("set_len", MethodTarget::SetLen),
        ("set_empty", MethodTarget::SetEmpty),
        ("set_contains", MethodTarget::SetContains),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES.iter().find(|(_, t)| *t == self).map_or("?", |(n, _)| n)
    }

    pub fn from_name(name: &str) -> Option<MethodTarget> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    /// The arity the target is bound for.
    pub fn argc(self) -> usize {
        match self {
            MethodTarget::ListContains | MethodTarget::StringContains | MethodTarget::DictHas | MethodTarget::SetContains => 1,
            _ => 0,
        }
    }

    /// The target `recv.name(argc args)` binds to, if cacheable.
    /// `namespace_key` is the interned `"_namespace"` (namespace dicts
    /// forward calls to their own entries, so they are never bound).
    pub fn resolve(recv: &Value, name: &str, argc: usize, namespace_key: &HStr) -> Option<MethodTarget> {
        let target = match (recv, name) {
            (Value::List(_), "count") => MethodTarget::ListCount,
            (Value::List(_), "empty") => MethodTarget::ListEmpty,
            (Value::List(_), "contains") => MethodTarget::ListContains,
            (Value::Str(_), "count" | "len") => MethodTarget::StringCount,
            (Value::Str(_), "empty") => MethodTarget::StringEmpty,
            (Value::Str(_), "contains") => MethodTarget::StringContains,
            (Value::Dict(map), "count") if !is_namespace(map, namespace_key) => MethodTarget::DictCount,
            (Value::Dict(map), "has") if !is_namespace(map, namespace_key) => MethodTarget::DictHas,
            (Value::Range(_), "count") => MethodTarget::RangeCount,
            (Value::Range(_), "len") => MethodTarget::RangeLen,
            (Value::Range(_), "empty") => MethodTarget::RangeEmpty,
            (Value::Range(_), "first") => MethodTarget::RangeFirst,
            (Value::Range(_), "last") => MethodTarget::RangeLast,
            (Value::Set(_), "count") => MethodTarget::SetCount,
            (Value::Set(_), "len") => MethodTarget::SetLen,
            (Value::Set(_), "empty") => MethodTarget::SetEmpty,
            (Value::Set(_), "contains" | "includes") => MethodTarget::SetContains,
            _ => return None,
        };
        (target.argc() == argc).then_some(target)
    }

    /// The call through this target, or None when the receiver does not fit.
    /// `args` are exactly `argc()` values.
    #[inline(always)]
    pub fn call(self, recv: &Value, args: &[Value], namespace_key: &HStr) -> Option<Value> {
        Some(match (self, recv) {
            (MethodTarget::ListCount, Value::List(items)) => Value::Int(items.len() as i64),
            (MethodTarget::ListEmpty, Value::List(items)) => Value::Bool(items.is_empty()),
            (MethodTarget::ListContains, Value::List(items)) => Value::Bool(items.iter().any(|v| values_equal(v, arg(args, 0)))),
            (MethodTarget::StringCount, Value::Str(s)) => Value::Int(char_len(s) as i64),
            (MethodTarget::StringEmpty, Value::Str(s)) => Value::Bool(s.is_empty()),
            (MethodTarget::StringContains, Value::Str(s)) => Value::Bool(s.contains(text_arg(args, 0).as_ref())),
            (MethodTarget::DictCount, Value::Dict(map)) if !is_namespace(map, namespace_key) => Value::Int(map.len() as i64),
            (MethodTarget::DictHas, Value::Dict(map)) if !is_namespace(map, namespace_key) => {
                Value::Bool(dict_get(map, &text_arg(args, 0)).is_some())
            }
            (MethodTarget::RangeCount | MethodTarget::RangeLen, Value::Range(r)) => Value::Int(r.len()),
            (MethodTarget::RangeEmpty, Value::Range(r)) => Value::Bool(r.is_empty()),
            (MethodTarget::RangeFirst, Value::Range(r)) => r.get(0).map_or(Value::Nil, Value::Int),
            (MethodTarget::RangeLast, Value::Range(r)) => r.get(r.len() - 1).map_or(Value::Nil, Value::Int),
            (MethodTarget::SetCount | MethodTarget::SetLen, Value::Set(items)) => Value::Int(items.len() as i64),
            (MethodTarget::SetEmpty, Value::Set(items)) => Value::Bool(items.is_empty()),
            (MethodTarget::SetContains, Value::Set(items)) => Value::Bool(items.iter().any(|v| values_equal(v, arg(args, 0)))),
            _ => return None,
        })
    }
}

/// Does the dict carry a string `_namespace` entry (`methods::dict_method` forwards then)?
#[inline]
fn is_namespace(map: &DictMap, namespace_key: &HStr) -> bool {
    matches!(map.get(namespace_key), Some(Value::Str(_)))
}

// ---------------------------------------------------------------------------
// Direct calls

/// A call target; identity is `Rc::ptr_eq` for closures, the id for builtins.
#[derive(Clone, Debug)]
pub enum CallTarget {
    Closure(Rc<Closure>),
    Builtin(u32),
}

impl CallTarget {
    pub fn of(callee: &Value) -> Option<CallTarget> {
        match callee {
            Value::Closure(c) => Some(CallTarget::Closure(Rc::clone(c))),
            &Value::Builtin(id) => Some(CallTarget::Builtin(id)),
            _ => None,
        }
    }

    pub fn id(&self) -> CallTargetId {
        match self {
            CallTarget::Closure(c) => CallTargetId::Closure(Rc::as_ptr(c)),
            CallTarget::Builtin(id) => CallTargetId::Builtin(*id),
        }
    }

    pub fn value(&self) -> Value {
        match self {
            CallTarget::Closure(c) => Value::Closure(Rc::clone(c)),
            CallTarget::Builtin(id) => Value::Builtin(*id),
        }
    }
}

/// The `Copy` identity of a call target, compared without touching refcounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallTargetId {
    Closure(*const Closure),
    Builtin(u32),
}

impl CallTargetId {
    #[inline(always)]
    pub fn of(callee: &Value) -> Option<CallTargetId> {
        match callee {
            Value::Closure(c) => Some(CallTargetId::Closure(Rc::as_ptr(c))),
            &Value::Builtin(id) => Some(CallTargetId::Builtin(id)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum DirectCallState {
    Warmup { argc: u32, target: CallTarget, hits: u64 },
    Specialized { argc: u32, target: CallTarget, hits: u64, misses: u64 },
}

/// The `Copy` view of a direct-call entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectCallPeek {
    pub specialized: bool,
    pub argc: u32,
    pub target: CallTargetId,
    pub hits: u64,
    pub misses: u64,
}

impl DirectCallState {
    pub fn peek(&self) -> DirectCallPeek {
        match self {
            DirectCallState::Warmup { argc, target, hits } => {
                DirectCallPeek { specialized: false, argc: *argc, target: target.id(), hits: *hits, misses: 0 }
            }
            DirectCallState::Specialized { argc, target, hits, misses } => {
                DirectCallPeek { specialized: true, argc: *argc, target: target.id(), hits: *hits, misses: *misses }
            }
        }
    }

    pub fn target(&self) -> &CallTarget {
        match self {
            DirectCallState::Warmup { target, .. } | DirectCallState::Specialized { target, .. } => target,
        }
    }
}

/// The state after a call with `argc` arguments to `callee` (`prev` None: empty slot).
pub fn next_direct_call_state(prev: Option<&DirectCallState>, argc: u32, callee: &Value) -> Option<DirectCallState> {
    let id = CallTargetId::of(callee)?;
    let same = |a: u32, t: &CallTarget| a == argc && t.id() == id;
    Some(match prev {
        Some(DirectCallState::Warmup { argc: a, target, hits }) if same(*a, target) => {
            let hits = hits + 1;
            let target = target.clone();
            if hits >= QUICKEN_THRESHOLD {
                DirectCallState::Specialized { argc, target, hits, misses: 0 }
            } else {
                DirectCallState::Warmup { argc, target, hits }
            }
        }
        Some(DirectCallState::Specialized { argc: a, target, hits, misses }) if same(*a, target) => {
            DirectCallState::Specialized { argc, target: target.clone(), hits: hits + 1, misses: *misses }
        }
        Some(DirectCallState::Specialized { misses: 0, .. }) => {
            DirectCallState::Specialized { argc, target: CallTarget::of(callee)?, hits: 1, misses: 1 }
        }
        _ => DirectCallState::Warmup { argc, target: CallTarget::of(callee)?, hits: 1 },
    })
}

/// Records a call at a site. Returns true on a specialized hit (same argc,
/// same callee identity); the caller then dispatches without re-checking.
#[inline(always)]
pub fn observe_call(entry: &mut Entry, argc: u32, callee: &Value) -> bool {
    if let Entry::DirectCall(DirectCallState::Specialized { argc: a, target, hits, .. }) = entry {
        if *a == argc && Some(target.id()) == CallTargetId::of(callee) {
            *hits += 1;
            return true;
        }
    }
    observe_call_slow(entry, argc, callee);
    false
}

#[inline(never)]
fn observe_call_slow(entry: &mut Entry, argc: u32, callee: &Value) {
    let prev = match entry {
        Entry::DirectCall(state) => Some(&*state),
        _ => None,
    };
    if let Some(next) = next_direct_call_state(prev, argc, callee) {
        *entry = Entry::DirectCall(next);
    }
}

// ---------------------------------------------------------------------------
// Entries and cache sets

/// One inline-cache slot. `repr(C, u8)` keeps the family tag a plain first
/// byte (no niche decoding on the hot path).
#[derive(Clone, Debug, Default)]
#[repr(C, u8)]
pub enum Entry {
    #[default]
    Empty,
    Binary {
        op: BinaryOp,
        state: BinaryState,
    },
    Property {
        name_idx: u16,
        target: PropertyTarget,
        hits: u64,
        misses: u64,
        /// Keeps a `StructField` target's layout alive, so its address stays a sound guard.
        layout: Option<Rc<StructLayout>>,
    },
    Method {
        name_idx: u16,
        argc: u8,
        target: MethodTarget,
        hits: u64,
        misses: u64,
    },
    DirectCall(DirectCallState),
    /// A method call bound to a struct's `impl` method: guarded by the
    /// receiver's layout (pointer) and the VM's impl epoch (any `impl` block
    /// run since invalidates it).
    StructMethod {
        name_idx: u16,
        argc: u8,
        layout: Rc<StructLayout>,
        epoch: u64,
        callee: Value,
        hits: u64,
        misses: u64,
    },
}

impl Entry {
    pub fn family(&self) -> &'static str {
        match self {
            Entry::Empty => "empty",
            Entry::Binary { .. } => "adaptive_binary",
            Entry::Property { .. } => "property",
            Entry::Method { .. } => "method",
            Entry::DirectCall(_) => "direct_call",
            Entry::StructMethod { .. } => "method",
        }
    }

    /// (state text, hits, misses) for reports and `dis --ic`.
    pub fn describe(&self) -> (String, u64, u64) {
        match self {
            Entry::Empty => ("empty".into(), 0, 0),
            Entry::Binary { state: BinaryState::Warmup { shape, hits }, .. } => (format!("warmup({})", shape.name()), *hits, 0),
            Entry::Binary { state: BinaryState::Specialized { shape, hits, misses }, .. } => {
                (format!("specialized({})", shape.name()), *hits, *misses)
            }
            Entry::Property { target, hits, misses, .. } => (format!("property({})", target.name()), *hits, *misses),
            Entry::Method { target, hits, misses, .. } => (format!("method({})", target.name()), *hits, *misses),
            Entry::StructMethod { layout, hits, misses, .. } => (format!("method(impl {})", layout.name), *hits, *misses),
            Entry::DirectCall(state) => {
                let p = state.peek();
                let name = match state.target() {
                    CallTarget::Closure(c) => c.proto.name.clone(),
                    CallTarget::Builtin(id) => crate::builtins::builtin_name(*id).to_string(),
                };
                let kind = if p.specialized { "specialized" } else { "warmup" };
                (format!("{kind}({name}/{})", p.argc), p.hits, p.misses)
            }
        }
    }
}

/// The cached property read for a site, if the entry holds one for `name_idx`
/// and the receiver passes its guard; counts the hit.
#[inline(always)]
pub fn property_hit(entry: &mut Entry, name_idx: u16, obj: &Value, name: &HStr) -> Option<Value> {
    if let Entry::Property { name_idx: n, target, hits, .. } = entry {
        if *n == name_idx {
            // Kept small (it is inlined into the dispatch loop): a dict
            // whose slot holds another key takes the miss path, which
            // re-learns the slot and still counts a hit (`dict_field_rehit`).
            let v = target.read(obj, name)?;
            *hits += 1;
            return Some(v);
        }
    }
    None
}

/// A dict read at a site bound to a dict field whose slot held another
/// key: the hashed lookup, the new slot remembered, counted as a hit (the
/// site still fits its receiver). None when the entry is not such a site.
#[inline(never)]
pub fn dict_field_rehit(entry: &mut Entry, name_idx: u16, obj: &Value, name: &HStr) -> Option<Value> {
    match (entry, obj) {
        (Entry::Property { name_idx: n, target: PropertyTarget::DictField { slot }, hits, .. }, Value::Dict(map))
            if *n == name_idx =>
        {
            let v = dict_slot_relearn(map, slot, name);
            *hits += 1;
            Some(v)
        }
        _ => None,
    }
}

/// After a generic read: bind the site to `resolved` (replace-on-miss), or
/// just count the miss when the receiver was not cacheable.
#[cold]
pub fn property_learn(entry: &mut Entry, name_idx: u16, resolved: Option<(PropertyTarget, Option<Rc<StructLayout>>)>) {
    let old_misses = match entry {
        Entry::Property { misses, .. } => Some(misses),
        _ => None,
    };
    match resolved {
        Some((target, layout)) => {
            let misses = old_misses.map_or(0, |m| *m + 1);
            *entry = Entry::Property { name_idx, target, hits: 0, misses, layout };
        }
        None => {
            if let Some(m) = old_misses {
                *m += 1;
            }
        }
    }
}

/// The cached method call for a site, if bound for (`name_idx`, argc) and the
/// receiver passes the guard; counts the hit. `recv_and_args` is the receiver then its args.
#[inline(always)]
pub fn method_hit(entry: &mut Entry, name_idx: u16, recv_and_args: &[Value], namespace_key: &HStr) -> Option<Value> {
    if let Entry::Method { name_idx: n, argc, target, hits, .. } = entry {
        let (recv, args) = recv_and_args.split_first()?;
        if *n == name_idx && *argc as usize == args.len() {
            let v = target.call(recv, args, namespace_key)?;
            *hits += 1;
            return Some(v);
        }
    }
    None
}

/// After a generic dispatch: bind the site (replace-on-miss) or count the miss.
#[cold]
pub fn method_learn(entry: &mut Entry, name_idx: u16, argc: usize, resolved: Option<MethodTarget>) {
    let old_misses = match entry {
        Entry::Method { misses, .. } | Entry::StructMethod { misses, .. } => Some(misses),
        _ => None,
    };
    match resolved {
        Some(target) => {
            let misses = old_misses.map_or(0, |m| *m + 1);
            *entry = Entry::Method { name_idx, argc: argc as u8, target, hits: 0, misses };
        }
        None => {
            if let Some(m) = old_misses {
                *m += 1;
            }
        }
    }
}

/// The `impl` method a struct-method site calls, if the entry is bound to
/// (`name_idx`, argc) and the receiver's layout at `epoch`; counts the hit.
#[inline(always)]
pub fn struct_method_hit(entry: &mut Entry, name_idx: u16, argc: usize, recv: &Value, epoch: u64) -> Option<Value> {
    if let Entry::StructMethod { name_idx: n, argc: a, layout, epoch: e, callee, hits, .. } = entry {
        if *n == name_idx && *a as usize == argc && *e == epoch {
            if let Value::Struct(s) = recv {
                if Rc::ptr_eq(&s.layout, layout) {
                    *hits += 1;
                    return Some(callee.clone());
                }
            }
        }
    }
    None
}

/// Binds a method site to a struct's `impl` method (replace-on-miss).
#[cold]
pub fn struct_method_learn(entry: &mut Entry, name_idx: u16, argc: usize, layout: Rc<StructLayout>, epoch: u64, callee: Value) {
    let misses = match entry {
        Entry::Method { misses, .. } | Entry::StructMethod { misses, .. } => *misses + 1,
        _ => 0,
    };
    *entry = Entry::StructMethod { name_idx, argc: argc as u8, layout, epoch, callee, hits: 0, misses };
}

/// One chunk's slots: a range of the VM's entry arena.
pub struct CacheSet {
    pub cache_id: u64,
    pub base: usize,
    pub len: usize,
    /// The function whose chunk this is (reports); None for bare chunks.
    pub proto: Option<Weak<FunctionProto>>,
}

/// Size of `InlineCaches::recent`.
const RECENT_SETS: usize = 8;

/// All inline caches of one VM.
pub struct InlineCaches {
    entries: Vec<Entry>,
    sets: Vec<CacheSet>,
    set_by_chunk: FxHashMap<u64, usize>,
    /// Memo for `set_for`, (cache id, set index) direct-mapped by the low
    /// bits of the id: a loop that calls a few functions in turn (`p.get()`
    /// then `f(p)`) finds each one's set without hashing. Id 0 is never issued.
    recent: [(u64, usize); RECENT_SETS],
    /// Interned `"_namespace"` for the dict-method guard.
    pub namespace_key: HStr,
    /// The entry function of the latest run, kept alive so its sites stay
    /// in `report` after the run even when the host dropped the program.
    latest_run: Option<Rc<FunctionProto>>,
}

impl Default for InlineCaches {
    fn default() -> Self {
        InlineCaches {
            entries: Vec::new(),
            sets: Vec::new(),
            set_by_chunk: FxHashMap::default(),
            recent: [(0, 0); RECENT_SETS],
            namespace_key: Rc::new("_namespace".to_string()),
            latest_run: None,
        }
    }
}

impl InlineCaches {
    /// The index of `chunk`'s cache set, creating it (or growing it, for a
    /// chunk that gained slots since) as needed.
    pub fn set_index_for_chunk(&mut self, chunk: &Chunk, proto: Option<&Rc<FunctionProto>>) -> usize {
        let want = chunk.inline_cache_slot_count();
        if let Some(&index) = self.set_by_chunk.get(&chunk.cache_id) {
            let set = &mut self.sets[index];
            if set.len < want {
                // Move the set to the end of the arena with room for the new slots.
                let base = self.entries.len();
                let old: Vec<Entry> = self.entries[set.base..set.base + set.len].iter_mut().map(std::mem::take).collect();
                self.entries.extend(old);
                self.entries.resize_with(base + want, Entry::default);
                set.base = base;
                set.len = want;
            }
            if set.proto.is_none() {
                set.proto = proto.map(Rc::downgrade);
            }
            return index;
        }
        let base = self.entries.len();
        self.entries.resize_with(base + want, Entry::default);
        self.sets.push(CacheSet { cache_id: chunk.cache_id, base, len: want, proto: proto.map(Rc::downgrade) });
        let index = self.sets.len() - 1;
        self.set_by_chunk.insert(chunk.cache_id, index);
        index
    }

    /// Called when an outermost run starts: drops the sets of functions that
    /// no longer exist (and of bare chunks) and compacts the arena, so a VM
    /// that runs many programs neither keeps them alive nor grows without
    /// bound. Set indices stay valid (a dropped set becomes an empty
    /// tombstone): frames hold indices, and a live frame's function is live.
    pub fn begin_run(&mut self, main: &Rc<FunctionProto>) {
        self.latest_run = None;
        let dead = |s: &CacheSet| s.len > 0 && s.proto.as_ref().is_none_or(|w| w.strong_count() == 0);
        // Dropping a dead set's entries can release the last reference to
        // another function (a cached callee), so repeat until nothing dies.
        while self.sets.iter().any(dead) {
            let mut entries = Vec::with_capacity(self.entries.len());
            for set in self.sets.iter_mut() {
                let old = &mut self.entries[set.base..set.base + set.len];
                if dead(set) {
                    old.iter_mut().for_each(|e| *e = Entry::Empty);
                    self.set_by_chunk.remove(&set.cache_id);
                    *set = CacheSet { cache_id: set.cache_id, base: 0, len: 0, proto: None };
                    continue;
                }
                let base = entries.len();
                entries.extend(old.iter_mut().map(std::mem::take));
                set.base = base;
            }
            self.entries = entries;
            self.recent = [(0, 0); RECENT_SETS];
        }
        self.latest_run = Some(Rc::clone(main));
    }

    /// The function's cache set index; resolved once per frame entry.
    #[inline]
    pub fn set_for(&mut self, proto: &Rc<FunctionProto>) -> usize {
        let id = proto.chunk.cache_id;
        let memo = (id as usize) % RECENT_SETS;
        if self.recent[memo].0 == id {
            return self.recent[memo].1;
        }
        let index = self.set_index_for_chunk(&proto.chunk, Some(proto));
        self.recent[memo] = (id, index);
        index
    }

    /// Arena base of set `index`, read when the dispatch loop enters a frame.
    /// An unknown index gives `NO_SET_BASE`.
    #[inline(always)]
    pub fn base_of(&self, index: usize) -> usize {
        self.sets.get(index).map_or(NO_SET_BASE, |s| s.base)
    }

    /// The entry of a running site: `base` from the frame, `slot` from the op's operand.
    #[inline(always)]
    pub fn entry_at(&mut self, base: usize, slot: u16) -> Option<&mut Entry> {
        if slot == NO_CACHE_OPERAND {
            return None;
        }
        self.entries.get_mut(base + slot as usize)
    }

    /// `entry_at` plus the interned `"_namespace"` key the method guards need.
    #[inline(always)]
    pub fn method_entry_at(&mut self, base: usize, slot: u16) -> Option<(&mut Entry, &HStr)> {
        if slot == NO_CACHE_OPERAND {
            return None;
        }
        Some((self.entries.get_mut(base + slot as usize)?, &self.namespace_key))
    }

    pub fn sets(&self) -> &[CacheSet] {
        &self.sets
    }

    pub fn set_index_by_cache_id(&self, cache_id: u64) -> Option<usize> {
        self.set_by_chunk.get(&cache_id).copied()
    }

    /// An entry by (set, slot), bounds-checked against the set.
    pub fn get(&self, set: usize, slot: usize) -> Option<&Entry> {
        let s = self.sets.get(set)?;
        (slot < s.len).then(|| &self.entries[s.base + slot])
    }

    pub fn get_mut(&mut self, set: usize, slot: usize) -> Option<&mut Entry> {
        let s = self.sets.get(set)?;
        (slot < s.len).then(|| &mut self.entries[s.base + slot])
    }

    /// `Copy` peeks by (set, slot), one per family; None if the slot holds another family.
    pub fn peek_binary(&self, set: usize, slot: usize) -> Option<(BinaryOp, BinaryState)> {
        match self.get(set, slot)? {
            Entry::Binary { op, state } => Some((*op, *state)),
            _ => None,
        }
    }

    pub fn peek_property(&self, set: usize, slot: usize) -> Option<(u16, PropertyTarget, u64, u64)> {
        match self.get(set, slot)? {
            Entry::Property { name_idx, target, hits, misses, .. } => Some((*name_idx, *target, *hits, *misses)),
            _ => None,
        }
    }

    pub fn peek_method(&self, set: usize, slot: usize) -> Option<(u16, u8, MethodTarget, u64, u64)> {
        match self.get(set, slot)? {
            Entry::Method { name_idx, argc, target, hits, misses } => Some((*name_idx, *argc, *target, *hits, *misses)),
            _ => None,
        }
    }

    pub fn peek_direct_call(&self, set: usize, slot: usize) -> Option<DirectCallPeek> {
        match self.get(set, slot)? {
            Entry::DirectCall(state) => Some(state.peek()),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Reports

/// One cache site after a run.
#[derive(Clone, Debug)]
pub struct SiteReport {
    pub function: String,
    pub line: u32,
    pub offset: usize,
    pub op: &'static str,
    pub set: usize,
    pub slot: usize,
    pub family: &'static str,
    pub state: String,
    pub hits: u64,
    pub misses: u64,
}

impl InlineCaches {
    /// Every site of every live function this VM has run, in set then offset order.
    pub fn report(&self) -> Vec<SiteReport> {
        let mut out = Vec::new();
        for (set_index, set) in self.sets.iter().enumerate() {
            let Some(proto) = set.proto.as_ref().and_then(Weak::upgrade) else { continue };
            for (offset, slot) in proto.chunk.inline_cache_sites() {
                let Some(entry) = self.get(set_index, slot as usize) else { continue };
                let op = proto.chunk.code.get(offset).and_then(|&b| Op::from_byte(b)).map_or("?", Op::name);
                let (state, hits, misses) = entry.describe();
                out.push(SiteReport {
                    function: proto.name.clone(),
                    line: proto.chunk.pos_at(offset).line,
                    offset,
                    op,
                    set: set_index,
                    slot: slot as usize,
                    family: entry.family(),
                    state,
                    hits,
                    misses,
                });
            }
        }
        out
    }

    /// The state note of the site at `offset` of `proto` (for `dis --ic`).
    pub fn describe_site(&self, proto: &FunctionProto, offset: usize) -> Option<String> {
        let slot = proto.chunk.inline_cache_slot(offset)?;
        let set = self.set_index_by_cache_id(proto.chunk.cache_id);
        let entry = set.and_then(|s| self.get(s, slot as usize));
        Some(match entry {
            None => format!("ic{slot}: not run"),
            Some(e) => {
                let (state, hits, misses) = e.describe();
                format!("ic{slot}: {state} hits={hits} misses={misses}")
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::StructVal;

    #[test]
    fn struct_method_entries_guard_name_argc_layout_and_epoch() {
        let layout_of = || Rc::new(StructLayout { name: Rc::new("P".into()), fields: vec![Rc::new("x".into())] });
        let (layout, other) = (layout_of(), layout_of());
        let instance =
            |l: &Rc<StructLayout>| Value::Struct(Rc::new(StructVal { layout: Rc::clone(l), values: vec![Value::Int(1)] }));
        let (recv, stranger) = (instance(&layout), instance(&other));
        let mut e = Entry::Empty;
        struct_method_learn(&mut e, 3, 0, Rc::clone(&layout), 7, Value::Int(42));
        assert!(matches!(struct_method_hit(&mut e, 3, 0, &recv, 7), Some(Value::Int(42))));
        assert!(struct_method_hit(&mut e, 3, 0, &recv, 8).is_none(), "an impl block ran since");
        assert!(struct_method_hit(&mut e, 3, 1, &recv, 7).is_none());
        assert!(struct_method_hit(&mut e, 4, 0, &recv, 7).is_none());
        assert!(struct_method_hit(&mut e, 3, 0, &stranger, 7).is_none(), "same name, other layout");
        assert!(struct_method_hit(&mut e, 3, 0, &Value::Int(1), 7).is_none());
        assert_eq!(e.describe(), ("method(impl P)".to_string(), 1, 0));
        // Rebinding counts the miss.
        struct_method_learn(&mut e, 3, 0, other, 8, Value::Int(43));
        assert_eq!(e.describe().2, 1);
        assert!(matches!(struct_method_hit(&mut e, 3, 0, &stranger, 8), Some(Value::Int(43))));
    }

    fn feed(shapes: &[Option<Shape>]) -> Option<BinaryState> {
        let mut state = None;
        for s in shapes.iter().flatten() {
            state = Some(next_binary_state(state, *s));
        }
        state
    }

    #[test]
    fn binary_site_specializes_on_third_same_shape() {
        use Shape::*;
        assert_eq!(feed(&[Some(Int), Some(Int)]), Some(BinaryState::Warmup { shape: Int, hits: 2 }));
        assert_eq!(feed(&[Some(Int); 3]), Some(BinaryState::Specialized { shape: Int, hits: 3, misses: 0 }));
    }

    #[test]
    fn mixed_operands_leave_state_and_one_swap_deopt() {
        use Shape::*;
        // 1, 2, 3 (int), 4.0 with an int (no shape), then float+float: one swap.
        let s = feed(&[Some(Int), Some(Int), Some(Int), None, Some(Float)]);
        assert_eq!(s, Some(BinaryState::Specialized { shape: Float, hits: 1, misses: 1 }));
        // A second distinct miss drops to warmup.
        let s = feed(&[Some(Int), Some(Int), Some(Int), Some(Float), Some(Int)]);
        assert_eq!(s, Some(BinaryState::Warmup { shape: Int, hits: 1 }));
    }

    #[test]
    fn kernels_match_the_generic_ops() {
        let vals = [Value::Int(7), Value::Int(-3), Value::Int(0), Value::Int(i64::MAX), Value::Int(i64::MIN), Value::Int(-1)];
        let fvals =
            [Value::Float(1.5), Value::Float(-0.0), Value::Float(0.0), Value::Float(f64::NAN), Value::Float(f64::INFINITY)];
        for op in BinaryOp::ALL {
            let limits = crate::runtime::native::Limits::default();
            let generic = |a: &Value, b: &Value| crate::runtime::ops::binary(op, a, b, &limits);
            for (shape, set) in [(Shape::Int, &vals[..]), (Shape::Float, &fvals[..])] {
                for a in set {
                    for b in set {
                        if let Some(fast) = specialized_binary(op, shape, a, b) {
                            let slow = generic(a, b).expect("kernel only answers when generic succeeds");
                            assert_eq!(fast.display(), slow.display(), "{op:?} {a:?} {b:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn set_grows_when_chunk_gains_slots() {
        let mut ic = InlineCaches::default();
        let mut c = Chunk::default();
        c.emit(Op::Add, &[], Default::default());
        let s = ic.set_index_for_chunk(&c, None);
        *ic.get_mut(s, 0).unwrap() =
            Entry::Binary { op: BinaryOp::Add, state: BinaryState::Warmup { shape: Shape::Int, hits: 2 } };
        c.emit(Op::Sub, &[], Default::default());
        assert_eq!(ic.set_index_for_chunk(&c, None), s);
        assert!(matches!(ic.peek_binary(s, 0), Some((BinaryOp::Add, BinaryState::Warmup { hits: 2, .. }))));
        assert!(ic.get(s, 1).is_some() && ic.get(s, 2).is_none());
    }
}
