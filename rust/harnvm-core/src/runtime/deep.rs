//! Walks over values that neither recurse natively in proportion to a value's
//! depth nor follow every path of a value that shares sub-values.
//!
//! Harn values are immutable trees of `Rc`s, so a program can build a value
//! that is a deep chain (`v = Ok(v)` a million times) or a DAG whose number
//! of paths is exponential in its size (`v = [v, v]` sixty times). Equality,
//! ordering and dropping use an explicit worklist (no native recursion), and
//! remember the shared nodes (an `Rc` with other owners) they have already
//! finished, so each distinct node pair is visited once. `expanded_size`
//! counts the paths of a value in time proportional to its distinct nodes,
//! so walks whose output is proportional to paths (conversion to another
//! representation) can refuse a value up front.
//!
//! `grow` runs a naturally recursive step with enough native stack, growing
//! it on the heap when the thread's own stack is nearly used up, so the
//! parser, compiler and conversions are safe on small thread stacks.

use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;

use rustc_hash::{FxHashMap, FxHashSet};
use smallvec::SmallVec;

use crate::runtime::value::{Object, Value};

/// Stack left below which `grow` switches to a fresh heap-allocated segment.
const RED_ZONE: usize = 96 * 1024;
/// Size of each segment `grow` allocates.
const SEGMENT: usize = 2 * 1024 * 1024;

/// Runs `f` on a stack with at least `RED_ZONE` bytes free (growing it if needed).
#[inline]
pub fn grow<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}

/// Runs `f` with at least 1 MiB of native stack free: for third-party
/// recursive code (serde's parsers recurse up to 128 levels with large frames).
#[inline]
pub fn grow_large<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(1024 * 1024, 4 * 1024 * 1024, f)
}

/// The address of an `Rc`'s allocation, as a memo key.
#[inline]
pub fn addr<T>(rc: &Rc<T>) -> usize {
    Rc::as_ptr(rc) as *const u8 as usize
}

/// Whether an `Rc` may be reached along more than one path (it has other owners).
#[inline]
pub fn shared<T>(rc: &Rc<T>) -> bool {
    Rc::strong_count(rc) > 1
}

// ---------------------------------------------------------------------------
// Equality

/// Harn `==` (see `value::values_equal`), without native recursion over the
/// value's depth and visiting each pair of shared nodes once.
pub fn values_equal(a: &Value, b: &Value) -> bool {
    let mut walk = EqWalk { stack: SmallVec::new(), seen: FxHashSet::default(), visits: 0 };
    if !walk.step(a, b) {
        return false;
    }
    while let Some((x, y)) = walk.stack.pop() {
        if !walk.step(x, y) {
            return false;
        }
    }
    true
}

/// Nodes a walk visits before it starts remembering shared ones: small
/// values (the common case) compare without allocating.
const MEMO_AFTER: u32 = 256;

struct EqWalk<'a> {
    /// Pairs still to compare; the answer is the AND of all of them.
    stack: SmallVec<[(&'a Value, &'a Value); 16]>,
    /// Container pairs expanded so far.
    visits: u32,
    /// Shared node pairs already expanded. Values are acyclic, so a pair met
    /// again was met in an earlier, finished subtree that compared equal
    /// (a mismatch would have ended the walk).
    seen: FxHashSet<(usize, usize)>,
}

impl<'a> EqWalk<'a> {
    /// False when `(x, y)` was already expanded; true the first time.
    fn first_visit<T>(&mut self, x: &Rc<T>, y: &Rc<T>) -> bool {
        self.visits = self.visits.saturating_add(1);
        if self.visits > MEMO_AFTER && (shared(x) || shared(y)) {
            self.seen.insert((addr(x), addr(y)))
        } else {
            true
        }
    }

    fn push_all(&mut self, xs: &'a [Value], ys: &'a [Value]) {
        // Reversed, so the leftmost pair is compared first.
        self.stack.extend(xs.iter().zip(ys.iter()).rev());
    }

    /// Compares the tops of `a` and `b`; queues their children. False on a mismatch.
    fn step(&mut self, a: &'a Value, b: &'a Value) -> bool {
        match (a, b) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => (*x as f64) == *y,
            (Value::Str(x), Value::Str(y)) => Rc::ptr_eq(x, y) || x == y,
            (Value::Bytes(x), Value::Bytes(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if Rc::ptr_eq(x, y) {
                    return true;
                }
                if x.len() != y.len() {
                    return false;
                }
                if self.first_visit(x, y) {
                    self.push_all(x, y);
                }
                true
            }
            (Value::Dict(x), Value::Dict(y)) => {
                if Rc::ptr_eq(x, y) {
                    return true;
                }
                if x.len() != y.len() || !x.keys().zip(y.keys()).all(|(k1, k2)| k1 == k2) {
                    return false;
                }
                if self.first_visit(x, y) {
                    let pairs: Vec<(&'a Value, &'a Value)> = x.values().zip(y.values()).collect();
                    self.stack.extend(pairs.into_iter().rev());
                }
                true
            }
            // Sets match elements in any order: each membership test is its
            // own walk (its answer is not a plain AND of pairs).
            // (No pointer shortcut: in 0.9.11 a set holding a duration is
            // not equal to itself.) A pair met again compared equal before.
            (Value::Set(x), Value::Set(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                if !self.first_visit(x, y) {
                    return true;
                }
                if let ([p], [q]) = (&x[..], &y[..]) {
                    // One element each: the sets are equal exactly when the
                    // elements are, so it joins this walk (a chain of nested
                    // sets stays one walk).
                    self.stack.push((p, q));
                    return true;
                }
                x.iter().all(|p| y.iter().any(|q| grow(|| values_equal(p, q))))
            }
            (Value::Range(x), Value::Range(y)) => x == y,
            (Value::Pair(x), Value::Pair(y)) => {
                if self.first_visit(x, y) {
                    self.stack.push((&x.1, &y.1));
                    self.stack.push((&x.0, &y.0));
                }
                true
            }
            (Value::Enum(x), Value::Enum(y)) => {
                if x.enum_name != y.enum_name || x.variant != y.variant || x.fields.len() != y.fields.len() {
                    return false;
                }
                if self.first_visit(x, y) {
                    self.push_all(&x.fields, &y.fields);
                }
                true
            }
            (Value::Struct(x), Value::Struct(y)) => {
                if x.name() != y.name() {
                    return false;
                }
                // Compared as field maps (declaration order does not matter).
                let fx: BTreeMap<&str, &'a Value> = x.layout.fields.iter().map(|f| f.as_str()).zip(x.values.iter()).collect();
                let fy: BTreeMap<&str, &'a Value> = y.layout.fields.iter().map(|f| f.as_str()).zip(y.values.iter()).collect();
                if fx.len() != fy.len() || !fx.keys().zip(fy.keys()).all(|(k1, k2)| k1 == k2) {
                    return false;
                }
                if self.first_visit(x, y) {
                    let pairs: Vec<(&'a Value, &'a Value)> = fx.into_values().zip(fy.into_values()).collect();
                    self.stack.extend(pairs.into_iter().rev());
                }
                true
            }
            (Value::Builtin(x), Value::Builtin(y)) => x == y,
            (Value::Object(x), Value::Object(y)) => match (&**x, &**y) {
                (Object::Atomic(p, _), Object::Atomic(q, _)) => p.get() == q.get(),
                // An iter equals only itself; generators are never equal.
                (Object::Iter(_), Object::Iter(_)) => Rc::ptr_eq(x, y),
                // By value: `decimal("1.5") == decimal("1.50")`.
                (Object::Decimal(p), Object::Decimal(q)) => p == q,
                _ => false,
            },
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------
// Ordering

/// The order of two non-pair values (see `value::compare_values`).
#[inline]
fn compare_flat(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
        (Value::Str(x), Value::Str(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Object(_), Value::Object(_)) => match (a.as_decimal(), b.as_decimal()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        },
        _ => Ordering::Equal,
    }
}

/// Harn ordering: pairs compare lexicographically (iteratively, each shared
/// pair of pairs once), everything else as `compare_flat`.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    let (Value::Pair(_), Value::Pair(_)) = (a, b) else {
        return compare_flat(a, b);
    };
    let mut stack: SmallVec<[(&Value, &Value); 16]> = SmallVec::new();
    stack.push((a, b));
    let mut seen: FxHashSet<(usize, usize)> = FxHashSet::default();
    let mut visits = 0u32;
    while let Some((x, y)) = stack.pop() {
        match (x, y) {
            (Value::Pair(p), Value::Pair(q)) => {
                // A pair always orders equal to itself; a pair of pairs met
                // again was met in a finished subtree, which ordered equal.
                visits = visits.saturating_add(1);
                if Rc::ptr_eq(p, q) || (visits > MEMO_AFTER && (shared(p) || shared(q)) && !seen.insert((addr(p), addr(q)))) {
                    continue;
                }
                stack.push((&p.1, &q.1));
                stack.push((&p.0, &q.0));
            }
            _ => match compare_flat(x, y) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
    Ordering::Equal
}

// ---------------------------------------------------------------------------
// Dropping

/// Whether dropping `v` may recurse into further values.
#[inline]
fn nests(v: &Value) -> bool {
    matches!(
        v,
        Value::List(_)
            | Value::Dict(_)
            | Value::Set(_)
            | Value::Pair(_)
            | Value::Enum(_)
            | Value::Struct(_)
            | Value::Closure(_)
            | Value::Object(_)
    )
}

thread_local! {
    /// How many `drop_last` calls are active on this thread (natural recursion depth of drops).
    static DROP_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Nesting of drops that recurse natively (a few KiB of stack) before the
/// rest of a value is dismantled on a worklist.
const DROP_RECURSION: u32 = 64;

/// Drops the last reference to a value that holds other values. Shallow
/// values drop by plain recursion; past `DROP_RECURSION` nested drops, the
/// children of every uniquely owned node move onto a worklist instead, so
/// dropping a million-deep chain of any kind uses bounded native stack.
#[inline(never)]
pub fn drop_last(v: &mut Value) {
    let depth = DROP_DEPTH.with(Cell::get);
    if depth < DROP_RECURSION {
        DROP_DEPTH.with(|d| d.set(depth + 1));
        drop_payload(std::mem::take(v));
        DROP_DEPTH.with(|d| d.set(depth));
        return;
    }
    let mut pending: SmallVec<[Value; 8]> = SmallVec::new();
    take_children(v, &mut pending);
    while let Some(mut child) = pending.pop() {
        take_children(&mut child, &mut pending);
        // `child` has no nesting children left; dropping it is shallow.
    }
}

/// Drops what `v` points to without running `Value::drop` on `v` itself
/// (which would come back here).
fn drop_payload(v: Value) {
    let v = std::mem::ManuallyDrop::new(v);
    // SAFETY: `v` is never dropped, so each `Rc` is read out of it exactly
    // once and dropped here, releasing the reference `v` owned.
    unsafe {
        match &*v {
            Value::Str(x) => drop(std::ptr::read(x)),
            Value::Bytes(x) => drop(std::ptr::read(x)),
            Value::List(x) | Value::Set(x) => drop(std::ptr::read(x)),
            Value::Dict(x) => drop(std::ptr::read(x)),
            Value::Range(x) => drop(std::ptr::read(x)),
            Value::Pair(x) => drop(std::ptr::read(x)),
            Value::Enum(x) => drop(std::ptr::read(x)),
            Value::Struct(x) => drop(std::ptr::read(x)),
            Value::Closure(x) => drop(std::ptr::read(x)),
            Value::Object(x) => drop(std::ptr::read(x)),
            Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Duration(_) | Value::Builtin(_) => {}
        }
    }
}

/// Moves the children of a uniquely owned node into `pending` (when any of
/// them nests; leaves are dropped in place).
fn take_children(v: &mut Value, pending: &mut SmallVec<[Value; 8]>) {
    match v {
        Value::List(items) | Value::Set(items) => {
            if let Some(items) = Rc::get_mut(items) {
                if items.iter().any(nests) {
                    pending.extend(items.drain(..));
                }
            }
        }
        Value::Dict(map) => {
            if let Some(map) = Rc::get_mut(map) {
                if map.values_unordered().any(nests) {
                    pending.extend(std::mem::take(map).into_values_unordered());
                }
            }
        }
        Value::Pair(p) => {
            if let Some(p) = Rc::get_mut(p) {
                if nests(&p.0) || nests(&p.1) {
                    pending.push(std::mem::take(&mut p.0));
                    pending.push(std::mem::take(&mut p.1));
                }
            }
        }
        Value::Enum(e) => {
            if let Some(e) = Rc::get_mut(e) {
                if e.fields.iter().any(nests) {
                    pending.extend(e.fields.drain(..));
                }
            }
        }
        Value::Struct(s) => {
            if let Some(s) = Rc::get_mut(s) {
                if s.values.iter().any(nests) {
                    pending.extend(s.values.drain(..));
                }
            }
        }
        Value::Closure(c) => {
            if let Some(c) = Rc::get_mut(c) {
                if c.captures.iter().any(nests) {
                    pending.extend(c.captures.iter_mut().map(std::mem::take));
                }
            }
        }
        Value::Object(o) => {
            if let Some(Object::Atomic(_, cell) | Object::Cell(cell)) = Rc::get_mut(o) {
                let inner = cell.get_mut();
                if nests(inner) {
                    pending.push(std::mem::take(inner));
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Size as a tree

/// The number of nodes `v` has when every shared sub-value is counted once
/// per path to it (the size of its fully expanded tree, i.e. of any
/// conversion that copies it), saturating at `limit + 1`. Costs time
/// proportional to the distinct nodes (shared nodes are memoized) and stops
/// descending below `max_depth` levels.
pub fn expanded_size(v: &Value, limit: u64, max_depth: usize) -> u64 {
    expanded_size_with(v, limit, max_depth, |_| true)
}

/// `expanded_size`, counting the children only of the nodes for which
/// `descend` holds (those a text format writes out).
pub fn expanded_size_with(v: &Value, limit: u64, max_depth: usize, descend: fn(&Value) -> bool) -> u64 {
    let mut memo: FxHashMap<usize, u64> = FxHashMap::default();
    let walk = SizeWalk { cap: limit.saturating_add(1), max_depth, descend };
    walk.size_at(v, 0, &mut memo)
}

struct SizeWalk {
    cap: u64,
    max_depth: usize,
    descend: fn(&Value) -> bool,
}

impl SizeWalk {
    fn size_at(&self, v: &Value, depth: usize, memo: &mut FxHashMap<usize, u64>) -> u64 {
        if depth > self.max_depth || !(self.descend)(v) {
            return 1;
        }
        let key = match v {
            Value::List(x) | Value::Set(x) if shared(x) => Some(addr(x)),
            Value::Dict(x) if shared(x) => Some(addr(x)),
            Value::Pair(x) if shared(x) => Some(addr(x)),
            Value::Enum(x) if shared(x) => Some(addr(x)),
            Value::Struct(x) if shared(x) => Some(addr(x)),
            _ => None,
        };
        if let Some(n) = key.and_then(|k| memo.get(&k)) {
            return *n;
        }
        let sum = |items: &mut dyn Iterator<Item = &Value>, memo: &mut FxHashMap<usize, u64>| {
            let mut total = 1u64;
            for item in items {
                if total >= self.cap {
                    break;
                }
                total = total.saturating_add(grow(|| self.size_at(item, depth + 1, memo)));
            }
            total.min(self.cap)
        };
        let n = match v {
            Value::List(x) | Value::Set(x) => sum(&mut x.iter(), memo),
            Value::Dict(x) => sum(&mut x.values_unordered(), memo),
            Value::Pair(x) => sum(&mut [&x.0, &x.1].into_iter(), memo),
            Value::Enum(x) => sum(&mut x.fields.iter(), memo),
            Value::Struct(x) => sum(&mut x.values.iter(), memo),
            _ => 1,
        };
        if let Some(k) = key {
            memo.insert(k, n);
        }
        n
    }
}

/// Text this long is written before a capped writer checks whether the whole
/// text can fit its cap at all.
pub const PROBE_TEXT: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::{StructLayout, StructVal};

    const DEEP: usize = 1_000_000;

    fn chain(n: usize, wrap: impl Fn(Value) -> Value) -> Value {
        let mut v = Value::Int(0);
        for _ in 0..n {
            v = wrap(v);
        }
        v
    }

    fn dag(n: usize, wrap: impl Fn(Value, Value) -> Value) -> Value {
        let mut v = Value::Int(1);
        for _ in 0..n {
            v = wrap(v.clone(), v);
        }
        v
    }

    fn layout() -> Rc<StructLayout> {
        Rc::new(StructLayout { name: Rc::new("Node".into()), fields: vec![Rc::new("next".into()), Rc::new("n".into())] })
    }

    #[test]
    fn deep_chains_of_every_kind_drop() {
        drop(chain(DEEP, Value::ok));
        drop(chain(DEEP, |v| Value::pair(v, Value::Int(1))));
        drop(chain(DEEP, |v| Value::pair(Value::Int(1), v)));
        drop(chain(DEEP, |v| Value::list(vec![Value::pair(v, Value::Nil)])));
        let l = layout();
        drop(chain(DEEP, |v| Value::Struct(Rc::new(StructVal { layout: l.clone(), values: vec![v, Value::Int(1)] }))));
        drop(chain(DEEP, |v| Value::Object(Rc::new(Object::Atomic(std::cell::Cell::new(0), std::cell::RefCell::new(v))))));
        drop(chain(DEEP, |v| Value::Object(Rc::new(Object::Cell(std::cell::RefCell::new(v))))));
        drop(chain(DEEP, |v| Value::dict_from([("k", v)])));
    }

    #[test]
    fn deep_chains_drop_on_a_small_thread_stack() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                drop(chain(200_000, Value::ok));
                drop(chain(200_000, |v| Value::pair(Value::Nil, v)));
                drop(chain(200_000, |v| Value::list(vec![v, Value::list(vec![Value::Int(1)])])));
            })
            .expect("spawn")
            .join()
            .expect("no overflow");
    }

    #[test]
    fn deep_equality_is_exact() {
        let a = chain(DEEP, Value::ok);
        let b = chain(DEEP, Value::ok);
        assert!(values_equal(&a, &b));
        let c = chain(DEEP, Value::ok);
        let d = {
            let mut v = Value::Int(1);
            for _ in 0..DEEP {
                v = Value::ok(v);
            }
            v
        };
        assert!(!values_equal(&c, &d), "the innermost values differ");
        // Just past the old cut-off of 256 levels.
        assert!(values_equal(&chain(300, Value::ok), &chain(300, Value::ok)));
        assert!(!values_equal(&chain(300, Value::ok), &chain(301, Value::ok)));
        let p = chain(DEEP, |v| Value::pair(v, Value::Int(1)));
        let q = chain(DEEP, |v| Value::pair(v, Value::Int(1)));
        assert!(values_equal(&p, &q));
    }

    #[test]
    fn deep_pairs_compare() {
        let a = chain(DEEP, |v| Value::pair(v, Value::Int(1)));
        let b = chain(DEEP, |v| Value::pair(v, Value::Int(1)));
        assert_eq!(compare_values(&a, &b), Ordering::Equal);
        let mut c = Value::Int(1);
        for _ in 0..DEEP {
            c = Value::pair(c, Value::Int(1));
        }
        assert_eq!(compare_values(&a, &c), Ordering::Less);
        assert_eq!(compare_values(&c, &a), Ordering::Greater);
        // Lexicographic: the first component decides before the second.
        let x = Value::pair(Value::pair(Value::Int(1), Value::Int(9)), Value::Int(0));
        let y = Value::pair(Value::pair(Value::Int(2), Value::Int(0)), Value::Int(9));
        assert_eq!(compare_values(&x, &y), Ordering::Less);
        assert_eq!(compare_values(&y, &x), Ordering::Greater);
        let z = Value::pair(Value::pair(Value::Int(1), Value::Int(9)), Value::Int(1));
        assert_eq!(compare_values(&x, &z), Ordering::Less);
    }

    #[test]
    fn shared_structure_is_walked_once() {
        // 2^60 paths, 61 distinct nodes on each side.
        let a = dag(60, |x, y| Value::list(vec![x, y]));
        let b = dag(60, |x, y| Value::list(vec![x, y]));
        assert!(values_equal(&a, &b));
        let c = dag(60, Value::pair);
        let d = dag(60, Value::pair);
        assert!(values_equal(&c, &d));
        assert_eq!(compare_values(&c, &d), Ordering::Equal);
        let e = dag(60, |x, y| Value::enum_val("Tree", "Node", vec![x, y]));
        let f = dag(60, |x, y| Value::enum_val("Tree", "Node", vec![x, y]));
        assert!(values_equal(&e, &f));
        assert_eq!(expanded_size(&a, u64::MAX, usize::MAX), (1u64 << 61) - 1);
        assert_eq!(expanded_size(&a, 1000, usize::MAX), 1001);
        assert_eq!(expanded_size(&dag(3, |x, y| Value::list(vec![x, y])), 1000, usize::MAX), 15);
        // Differing leaves are still found.
        let mut g = Value::Int(2);
        for _ in 0..60 {
            g = Value::list(vec![g.clone(), g]);
        }
        assert!(!values_equal(&a, &g));
    }
}
