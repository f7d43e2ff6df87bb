//! Runtime values.
//!
//! `Value` is 16 bytes: a tag plus one word. Scalars (nil, bool, int, float,
//! duration) are immediates; everything else is an `Rc` to immutable data.
//! Harn has value semantics: "mutation" builds a new value, so sharing an
//! `Rc` is always safe and `Rc::make_mut` gives in-place updates when the
//! value is not aliased.

use std::cell::{Cell, RefCell};
use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::rc::Rc;

use crate::bytecode::chunk::FunctionProto;

/// A shared immutable string. `Rc<String>` keeps `Value` at 16 bytes (one
/// thin pointer) at the cost of one extra indirection on reads.
pub type HStr = Rc<String>;

/// Dicts: hashed lookups, walked in key (byte) order as Harn displays and iterates them.
pub use crate::runtime::dict::DictMap;

#[derive(Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Milliseconds.
    Duration(i64),
    Str(HStr),
    Bytes(Rc<Vec<u8>>),
    List(Rc<Vec<Value>>),
    Dict(Rc<DictMap>),
    /// Insertion-ordered, structurally de-duplicated.
    Set(Rc<Vec<Value>>),
    Range(Rc<RangeVal>),
    Pair(Rc<(Value, Value)>),
    Enum(Rc<EnumVal>),
    Struct(Rc<StructVal>),
    Closure(Rc<Closure>),
    /// A builtin function used as a value (`xs.map(to_string)`); index into the builtin table.
    Builtin(u32),
    /// Everything stateful or rare: iterators, generators, channels, atomics, tasks, ...
    Object(Rc<Object>),
}

const _: () = assert!(std::mem::size_of::<Value>() <= 16);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeVal {
    pub start: i64,
    pub end: i64,
    pub inclusive: bool,
}

impl RangeVal {
    /// Number of ints in the range (0 when empty).
    pub fn len(&self) -> i64 {
        let stop = if self.inclusive { self.end.saturating_add(1) } else { self.end };
        if stop <= self.start {
            0
        } else {
            stop.saturating_sub(self.start)
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn contains(&self, n: i64) -> bool {
        n >= self.start && if self.inclusive { n <= self.end } else { n < self.end }
    }
    pub fn get(&self, i: i64) -> Option<i64> {
        if i >= 0 && i < self.len() {
            Some(self.start + i)
        } else {
            None
        }
    }
}

#[derive(Clone, Debug)]
pub struct EnumVal {
    pub enum_name: HStr,
    pub variant: HStr,
    pub fields: Vec<Value>,
}

/// Field names of a struct in declaration order. Instances share one layout
/// so a field read can be cached as (layout pointer, index).
#[derive(Debug, PartialEq, Eq)]
pub struct StructLayout {
    pub name: HStr,
    pub fields: Vec<HStr>,
}

impl StructLayout {
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.as_str() == name)
    }
}

#[derive(Clone, Debug)]
pub struct StructVal {
    pub layout: Rc<StructLayout>,
    /// Parallel to `layout.fields`; `Nil` for declared-but-unset fields.
    pub values: Vec<Value>,
}

impl StructVal {
    pub fn name(&self) -> &str {
        &self.layout.name
    }
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.layout.index_of(field).map(|i| &self.values[i])
    }
}

/// A function value: compiled code plus the values it captured when it was
/// created (Harn captures by value: a snapshot).
pub struct Closure {
    pub proto: Rc<FunctionProto>,
    pub captures: Box<[Value]>,
    /// The module whose globals this closure reads.
    pub module: Rc<crate::runtime::fiber::ModuleEnv>,
}

impl fmt::Debug for Closure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<fn {}>", self.proto.name)
    }
}

/// Stateful and rarely-hot values live behind one extra pointer so `Value`
/// stays small. Later subsystems (iterators, async) add their variants here.
pub enum Object {
    Atomic(Cell<i64>, RefCell<Value>),
    /// A mutable box: the binding of a fn declaration referenced before it runs.
    Cell(RefCell<Value>),
    /// A caught error on its way into a `catch` block (keeps the kind for rethrow).
    Error(crate::runtime::error::VmError),
    /// A lazy iterator (also the state of a running `for` loop).
    Iter(RefCell<crate::runtime::iter::IterNode>),
    /// A generator or stream.
    Generator(crate::runtime::fiber::Generator),
    /// A task handle, channel, permit, ... of the scheduler.
    Sched(crate::runtime::sched_object::SchedObject),
    /// Generic host-extension payload: a type name, display text and data.
    Opaque {
        type_name: &'static str,
        display: String,
        data: RefCell<Box<dyn std::any::Any>>,
    },
    /// A `decimal` (rust_decimal semantics, as harn 0.9.11).
    Decimal(rust_decimal::Decimal),
}

impl Object {
    pub fn type_name(&self) -> &'static str {
        match self {
            Object::Atomic(..) => "atomic",
            Object::Cell(_) => "cell",
            Object::Error(_) => "error",
            Object::Iter(_) => "iter",
            Object::Generator(g) => g.type_name(),
            Object::Sched(s) => s.type_name(),
            Object::Opaque { type_name, .. } => type_name,
            Object::Decimal(_) => "decimal",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => write!(f, "{:?}", s.as_str()),
            other => write!(f, "{}", other.display()),
        }
    }
}

/// A `'static` nil, for "argument or nil" lookups without cloning.
pub fn nil_ref() -> &'static Value {
    struct SyncNil(Value);
    // SAFETY: `Value::Nil` owns no `Rc`, so sharing it across threads is sound.
    unsafe impl Sync for SyncNil {}
    static NIL: SyncNil = SyncNil(Value::Nil);
    &NIL.0
}

/// Argument `i`, or nil when missing (Harn does not check arity).
#[inline]
pub fn arg(args: &[Value], i: usize) -> &Value {
    args.get(i).unwrap_or_else(|| nil_ref())
}

// ---------------------------------------------------------------------------
// Construction helpers

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(Rc::new(s.into()))
    }
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(items))
    }
    pub fn dict(map: DictMap) -> Value {
        Value::Dict(Rc::new(map))
    }
    pub fn dict_from<I: IntoIterator<Item = (&'static str, Value)>>(entries: I) -> Value {
        Value::Dict(Rc::new(entries.into_iter().map(|(k, v)| (Rc::new(k.to_string()), v)).collect()))
    }
    pub fn pair(a: Value, b: Value) -> Value {
        Value::Pair(Rc::new((a, b)))
    }
    pub fn range(start: i64, end: i64, inclusive: bool) -> Value {
        Value::Range(Rc::new(RangeVal { start, end, inclusive }))
    }
    pub fn enum_val(enum_name: &str, variant: &str, fields: Vec<Value>) -> Value {
        Value::Enum(Rc::new(EnumVal { enum_name: Rc::new(enum_name.to_string()), variant: Rc::new(variant.to_string()), fields }))
    }
    pub fn ok(v: Value) -> Value {
        Value::enum_val("Result", "Ok", vec![v])
    }
    pub fn err(v: Value) -> Value {
        Value::enum_val("Result", "Err", vec![v])
    }
    /// Builds a set from items, keeping the first of structurally equal items.
    pub fn set_from(items: impl IntoIterator<Item = Value>) -> Value {
        let mut out: Vec<Value> = Vec::new();
        for it in items {
            if !out.iter().any(|x| values_equal(x, &it)) {
                out.push(it);
            }
        }
        Value::Set(Rc::new(out))
    }
}

// ---------------------------------------------------------------------------
// Classification

impl Value {
    /// The name `type_of` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Duration(_) => "duration",
            Value::Str(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Set(_) => "set",
            Value::Range(_) => "range",
            Value::Pair(_) => "pair",
            Value::Enum(_) => "enum",
            Value::Struct(_) => "struct",
            Value::Closure(_) => "closure",
            Value::Builtin(_) => "builtin",
            Value::Object(o) => o.type_name(),
        }
    }

    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Duration(d) => *d != 0,
            Value::Str(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Dict(d) => !d.is_empty(),
            Value::Set(s) => !s.is_empty(),
            Value::Object(o) => match &**o {
                Object::Decimal(d) => !d.is_zero(),
                _ => true,
            },
            _ => true,
        }
    }

    /// Whether the value owns reference-counted data (everything but the immediates).
    #[inline(always)]
    pub fn is_heap(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Duration(_) | Value::Builtin(_))
    }

    /// `clone` for the hot path: immediates are copied bit for bit.
    #[inline(always)]
    pub fn dup(&self) -> Value {
        if self.is_heap() {
            self.clone()
        } else {
            // SAFETY: immediates own no heap data, so a bitwise copy is a valid clone.
            unsafe { std::ptr::read(self) }
        }
    }

    pub fn decimal(d: rust_decimal::Decimal) -> Value {
        Value::Object(Rc::new(Object::Decimal(d)))
    }

    pub fn as_decimal(&self) -> Option<rust_decimal::Decimal> {
        match self {
            Value::Object(o) => match &**o {
                Object::Decimal(d) => Some(*d),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Int or float as f64.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn is_callable(&self) -> bool {
        matches!(self, Value::Closure(_) | Value::Builtin(_))
    }

    /// Rc identity for reference types, structural for scalars (`is_same`).
    pub fn is_same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::List(a), Value::List(b)) => Rc::ptr_eq(a, b),
            (Value::Dict(a), Value::Dict(b)) => Rc::ptr_eq(a, b),
            (Value::Set(a), Value::Set(b)) => Rc::ptr_eq(a, b),
            (Value::Closure(a), Value::Closure(b)) => Rc::ptr_eq(a, b),
            (Value::Object(a), Value::Object(b)) => Rc::ptr_eq(a, b),
            _ => values_equal(self, other),
        }
    }
}

// ---------------------------------------------------------------------------
// Equality and ordering (Harn's `values_equal` / `compare_values`)

/// Harn `==`: structural, same-type; int and float compare numerically.
/// Durations are never equal (a quirk of the reference), closures never.
/// Exact at any depth; shared sub-values are compared once (`runtime::deep`).
#[inline]
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => Rc::ptr_eq(x, y) || x == y,
        (Value::Nil, Value::Nil) => true,
        _ => crate::runtime::deep::values_equal(a, b),
    }
}

/// Harn ordering: numbers numerically, strings by bytes, pairs
/// lexicographically; every other combination compares as equal.
#[inline]
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        _ => crate::runtime::deep::compare_values(a, b),
    }
}

// ---------------------------------------------------------------------------
// Display

/// Formats a float as Harn does: integral values below 1e15 get one decimal
/// (`3.0`); everything else is the shortest round-trip form, never exponent.
pub fn format_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
    } else if f.is_infinite() {
        out.push_str(if f > 0.0 { "inf" } else { "-inf" });
    } else if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{:.1}", f);
    } else {
        // Rust's `{}` for f64 is shortest round-trip and never uses an exponent.
        let _ = write!(out, "{}", f);
    }
}

pub fn format_duration(ms: i64, out: &mut String) {
    const UNITS: [(i64, &str); 3] = [(3_600_000, "h"), (60_000, "m"), (1000, "s")];
    if ms != 0 {
        for (size, unit) in UNITS {
            if ms % size == 0 {
                let _ = write!(out, "{}{}", ms / size, unit);
                return;
            }
        }
    }
    let _ = write!(out, "{}ms", ms);
}

/// Longest display text (bytes) before it is cut short with `...`.
pub const DISPLAY_MAX: usize = 1 << 28;

impl Value {
    /// The text `log`, `println`, `to_string` and interpolation produce.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => s.as_str().to_owned(),
            _ => {
                let mut out = String::new();
                self.write_display(&mut out);
                out
            }
        }
    }

    pub fn write_display(&self, out: &mut String) {
        if !self.write_display_capped(out, DISPLAY_MAX) {
            out.push_str("...");
        }
    }

    /// Writes the display text, stopping once more than `cap` bytes were
    /// written; false when it stopped (the text is then cut short). The
    /// text of a value that shares sub-values grows with its number of paths,
    /// which can be exponential in its size, so every display is capped.
    pub fn write_display_capped(&self, out: &mut String, cap: usize) -> bool {
        let limit = out.len().saturating_add(cap);
        self.write_display_at(out, 0, limit);
        out.len() <= limit
    }

    /// The display text, or None when it would be longer than `cap` bytes.
    pub fn display_capped(&self, cap: usize) -> Option<String> {
        use crate::runtime::deep::{expanded_size, PROBE_TEXT};
        match self {
            Value::Str(s) => (s.len() <= cap).then(|| s.as_str().to_owned()),
            _ => {
                let mut out = String::new();
                if cap > PROBE_TEXT {
                    if self.write_display_capped(&mut out, PROBE_TEXT) {
                        return Some(out);
                    }
                    // Every node shown adds a byte or more (apart from one
                    // empty string), so a value with more nodes to show than
                    // `cap + 1` cannot fit: refuse it without writing it.
                    let bound = cap as u64 + 1;
                    if expanded_size(self, bound, 256) > bound {
                        return None;
                    }
                    out.clear();
                }
                self.write_display_capped(&mut out, cap).then_some(out)
            }
        }
    }

    /// Display with a nesting guard: absurdly deep values print `...`
    /// rather than exhausting the native stack; nothing more is written
    /// once `out` is longer than `limit`.
    fn write_display_at(&self, out: &mut String, depth: usize, limit: usize) {
        const MAX_DEPTH: usize = 256;
        if out.len() > limit {
            return;
        }
        if depth > MAX_DEPTH {
            out.push_str("...");
            return;
        }
        let d = depth + 1;
        match self {
            Value::Nil => out.push_str("nil"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            Value::Float(f) => format_float(*f, out),
            Value::Duration(ms) => format_duration(*ms, out),
            Value::Str(s) => out.push_str(s),
            Value::Bytes(b) => {
                out.push_str("b\"");
                for byte in b.iter().take(32) {
                    let _ = write!(out, "{:02x}", byte);
                }
                out.push('"');
                if b.len() > 32 {
                    let _ = write!(out, "...+{}", b.len() - 32);
                }
            }
            Value::List(items) => {
                out.push('[');
                write_joined(out, items.iter(), d, limit);
                out.push(']');
            }
            Value::Dict(map) => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push_str(": ");
                    v.write_display_at(out, d, limit);
                }
                out.push('}');
            }
            Value::Set(items) => {
                out.push_str("set(");
                write_joined(out, items.iter(), d, limit);
                out.push(')');
            }
            Value::Range(r) => {
                let _ = write!(out, "{} to {}", r.start, r.end);
                if !r.inclusive {
                    out.push_str(" exclusive");
                }
            }
            Value::Pair(p) => {
                out.push('(');
                p.0.write_display_at(out, d, limit);
                out.push_str(", ");
                p.1.write_display_at(out, d, limit);
                out.push(')');
            }
            Value::Enum(e) => {
                out.push_str(&e.enum_name);
                out.push('.');
                out.push_str(&e.variant);
                if !e.fields.is_empty() {
                    out.push('(');
                    write_joined(out, e.fields.iter(), d, limit);
                    out.push(')');
                }
            }
            Value::Struct(s) => {
                out.push_str(s.name());
                out.push_str(" {");
                let mut fields: Vec<(&HStr, &Value)> = s.layout.fields.iter().zip(s.values.iter()).collect();
                fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                for (i, (k, v)) in fields.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push_str(": ");
                    v.write_display_at(out, d, limit);
                }
                out.push('}');
            }
            Value::Closure(c) => {
                out.push_str("<fn(");
                for (i, p) in c.proto.params.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&p.name);
                }
                out.push_str(")>");
            }
            Value::Builtin(id) => {
                let _ = write!(out, "<builtin {}>", crate::builtins::builtin_name(*id));
            }
            Value::Object(o) => match &**o {
                Object::Atomic(v, _) => {
                    let _ = write!(out, "<atomic:{}>", v.get());
                }
                Object::Sched(s) => s.write_display(out),
                Object::Opaque { display, .. } => out.push_str(display),
                Object::Cell(v) => v.borrow().write_display_at(out, d, limit),
                Object::Error(e) => out.push_str(&e.message()),
                Object::Iter(it) => out.push_str(it.borrow().display()),
                Object::Generator(g) => out.push_str(g.display()),
                Object::Decimal(x) => {
                    let _ = write!(out, "{x}");
                }
            },
        }
    }
}

fn write_joined<'a>(out: &mut String, items: impl Iterator<Item = &'a Value>, depth: usize, limit: usize) {
    for (i, v) in items.enumerate() {
        if out.len() > limit {
            return;
        }
        if i > 0 {
            out.push_str(", ");
        }
        v.write_display_at(out, depth, limit);
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

impl Clone for Value {
    /// Written out so the hot path inlines it: scalars copy, the rest bump an `Rc`.
    #[inline(always)]
    fn clone(&self) -> Value {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(i) => Value::Int(*i),
            Value::Float(f) => Value::Float(*f),
            Value::Duration(d) => Value::Duration(*d),
            Value::Str(s) => Value::Str(Rc::clone(s)),
            Value::Bytes(b) => Value::Bytes(Rc::clone(b)),
            Value::List(l) => Value::List(Rc::clone(l)),
            Value::Dict(d) => Value::Dict(Rc::clone(d)),
            Value::Set(s) => Value::Set(Rc::clone(s)),
            Value::Range(r) => Value::Range(Rc::clone(r)),
            Value::Pair(p) => Value::Pair(Rc::clone(p)),
            Value::Enum(e) => Value::Enum(Rc::clone(e)),
            Value::Struct(s) => Value::Struct(Rc::clone(s)),
            Value::Closure(c) => Value::Closure(Rc::clone(c)),
            Value::Builtin(id) => Value::Builtin(*id),
            Value::Object(o) => Value::Object(Rc::clone(o)),
        }
    }
}

impl Value {
    /// Moves the closure out of a `Value::Closure` (no reference-count
    /// traffic); any other value comes back unchanged.
    #[inline]
    pub fn into_closure(self) -> Result<Rc<Closure>, Value> {
        let this = std::mem::ManuallyDrop::new(self);
        match &*this {
            // SAFETY: `this` is never dropped, so the `Rc` is read out of it
            // exactly once and keeps the reference `self` owned.
            Value::Closure(c) => Ok(unsafe { std::ptr::read(c) }),
            _ => Err(std::mem::ManuallyDrop::into_inner(this)),
        }
    }
}

impl Drop for Value {
    /// Dismantles the last reference to a value that holds other values
    /// iteratively (`runtime::deep::drop_last`), so dropping a deep chain of
    /// any kind cannot overflow the native stack. The check is inlined;
    /// scalars and shared values cost nothing extra.
    #[inline(always)]
    fn drop(&mut self) {
        let last_ref = match self {
            Value::List(items) | Value::Set(items) => Rc::strong_count(items) == 1,
            Value::Dict(map) => Rc::strong_count(map) == 1,
            Value::Pair(p) => Rc::strong_count(p) == 1,
            Value::Enum(e) => Rc::strong_count(e) == 1,
            Value::Struct(s) => Rc::strong_count(s) == 1,
            Value::Closure(c) => Rc::strong_count(c) == 1,
            Value::Object(o) => Rc::strong_count(o) == 1,
            _ => false,
        };
        if last_ref {
            crate::runtime::deep::drop_last(self);
        }
    }
}

/// A dict key for a value: strings as they are, anything else displayed.
pub fn key_of(v: &Value) -> HStr {
    match v {
        Value::Str(s) => s.clone(),
        other => Rc::new(other.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_is_two_words() {
        assert!(std::mem::size_of::<Value>() <= 16);
    }

    #[test]
    fn float_display() {
        let f = |x: f64| Value::Float(x).display();
        assert_eq!(f(3.0), "3.0");
        assert_eq!(f(-1.0), "-1.0");
        assert_eq!(f(0.1), "0.1");
        assert_eq!(f(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(f(1e21), "1000000000000000000000");
        assert_eq!(f(1e-7), "0.0000001");
        assert_eq!(f(f64::NAN), "NaN");
        assert_eq!(f(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn duration_display() {
        let d = |ms: i64| Value::Duration(ms).display();
        assert_eq!(d(500), "500ms");
        assert_eq!(d(5000), "5s");
        assert_eq!(d(120_000), "2m");
        assert_eq!(d(86_400_000), "24h");
        assert_eq!(d(90_000), "90s");
        assert_eq!(d(-1000), "-1s");
        assert_eq!(d(0), "0ms");
    }

    #[test]
    fn collections_display() {
        let v = Value::list(vec![Value::Int(1), Value::str("a"), Value::Nil]);
        assert_eq!(v.display(), "[1, a, nil]");
        let d = Value::dict_from([("b", Value::Int(2)), ("a", Value::list(vec![]))]);
        assert_eq!(d.display(), "{a: [], b: 2}");
        assert_eq!(Value::range(0, 3, false).display(), "0 to 3 exclusive");
        assert_eq!(Value::ok(Value::Int(42)).display(), "Result.Ok(42)");
    }

    #[test]
    fn equality_quirks() {
        assert!(values_equal(&Value::Int(3), &Value::Float(3.0)));
        assert!(!values_equal(&Value::Duration(5), &Value::Duration(5)));
        assert!(!values_equal(&Value::Int(1), &Value::str("1")));
        assert_eq!(compare_values(&Value::Int(1), &Value::str("a")), Ordering::Equal);
    }

    #[test]
    fn capped_display_refuses_a_dag_at_once() {
        let mut v = Value::Int(1);
        for _ in 0..60 {
            v = Value::list(vec![v.clone(), v]);
        }
        assert_eq!(v.display_capped(1 << 28), None);
        let mut s = Value::Int(1);
        for _ in 0..2 {
            s = Value::list(vec![s.clone(), s]);
        }
        assert_eq!(s.display_capped(1 << 28).as_deref(), Some("[[1, 1], [1, 1]]"));
        assert_eq!(s.display_capped(4), None);
    }

    #[test]
    fn deep_list_drop_does_not_overflow() {
        let mut v = Value::list(vec![]);
        for _ in 0..1_000_000 {
            v = Value::list(vec![v]);
        }
        drop(v);
    }
}
