//! Operator and access semantics, with Harn's exact error texts.
//!
//! The VM calls these for `+ - * / % **`, unary `-`/`!`, `in`, `.name`,
//! `[i]`, `[a:b]` and assignments to `x.a[i].b = v`.
//!
//! Int overflow promotes to float (`+ - * / ** -x`), as current Harn and the
//! project's spec require; no conformance case depends on the older
//! wrapping behaviour. `i64::MIN % -1` is 0.

use std::borrow::Cow;
use std::rc::Rc;

use rust_decimal::Decimal;

use crate::runtime::error::{ErrorKind, VmError, VmResult};
use crate::runtime::native::{check_alloc, Limits};
use crate::runtime::text::{char_at, char_len, char_slice, clamp_index, repeat};
use crate::runtime::value::{compare_values, key_of, values_equal, DictMap, StructLayout, StructVal, Value};

// ---------------------------------------------------------------------------
// The adaptive binary operations and their kernels

/// The binary operations that have inline caches and operand forms
/// (constant, local, fused with a jump): the `Binary` family of `define_ops!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl BinaryOp {
    pub const COUNT: usize = 11;
    pub const ALL: [BinaryOp; BinaryOp::COUNT] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Gt,
        BinaryOp::Le,
        BinaryOp::Ge,
    ];

    pub const fn is_equality(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne)
    }
}

/// The int kernel: `x OP y` on two ints, exactly as the generic op computes
/// it (overflow promotes to float, `i64::MIN % -1` is 0). None only for a
/// zero divisor of `/` and `%`, which the generic op turns into an error.
/// Every path runs this one: the generic ops, the inline-cache kernels and
/// the dispatch loop's fast paths (where `op` is a constant and folds away).
#[inline(always)]
pub fn int_binary(op: BinaryOp, x: i64, y: i64) -> Option<Value> {
    Some(match op {
        BinaryOp::Add => x.checked_add(y).map_or_else(|| Value::Float(x as f64 + y as f64), Value::Int),
        BinaryOp::Sub => x.checked_sub(y).map_or_else(|| Value::Float(x as f64 - y as f64), Value::Int),
        BinaryOp::Mul => x.checked_mul(y).map_or_else(|| Value::Float(x as f64 * y as f64), Value::Int),
        BinaryOp::Div if y == 0 => return None,
        // Only `i64::MIN / -1` overflows.
        BinaryOp::Div => x.checked_div(y).map_or_else(|| Value::Float(x as f64 / y as f64), Value::Int),
        BinaryOp::Mod if y == 0 => return None,
        BinaryOp::Mod => Value::Int(x.wrapping_rem(y)),
        compare => Value::Bool(int_compare(compare, x, y)),
    })
}

/// The int kernel of the comparisons (`==` ... `>=`); false for arithmetic ops.
#[inline(always)]
pub fn int_compare(op: BinaryOp, x: i64, y: i64) -> bool {
    match op {
        BinaryOp::Eq => x == y,
        BinaryOp::Ne => x != y,
        BinaryOp::Lt => x < y,
        BinaryOp::Gt => x > y,
        BinaryOp::Le => x <= y,
        BinaryOp::Ge => x >= y,
        _ => false,
    }
}

/// The float kernel: `x OP y` on two floats as the generic op computes it.
/// None only for a zero divisor of `%`. Harn orders NaN as "equal"
/// (`compare_values`), so the orderings go through the same rule.
#[inline(always)]
pub fn float_binary(op: BinaryOp, x: f64, y: f64) -> Option<Value> {
    let ord = || x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
    Some(match op {
        BinaryOp::Add => Value::Float(x + y),
        BinaryOp::Sub => Value::Float(x - y),
        BinaryOp::Mul => Value::Float(x * y),
        BinaryOp::Div => Value::Float(x / y),
        BinaryOp::Mod if y == 0.0 => return None,
        BinaryOp::Mod => Value::Float(x % y),
        BinaryOp::Eq => Value::Bool(x == y),
        BinaryOp::Ne => Value::Bool(x != y),
        BinaryOp::Lt => Value::Bool(ord().is_lt()),
        BinaryOp::Gt => Value::Bool(ord().is_gt()),
        BinaryOp::Le => Value::Bool(ord().is_le()),
        BinaryOp::Ge => Value::Bool(ord().is_ge()),
    })
}

/// The generic `a OP b` on any operands, with the VM's allocation limits.
pub fn binary(op: BinaryOp, a: &Value, b: &Value, limits: &Limits) -> VmResult<Value> {
    Ok(match op {
        BinaryOp::Add => add_limited(a, b, limits)?,
        BinaryOp::Sub => sub(a, b)?,
        BinaryOp::Mul => mul_limited(a, b, limits)?,
        BinaryOp::Div => div(a, b)?,
        BinaryOp::Mod => rem(a, b)?,
        BinaryOp::Eq => Value::Bool(values_equal(a, b)),
        BinaryOp::Ne => Value::Bool(!values_equal(a, b)),
        BinaryOp::Lt => Value::Bool(ordering(a, b).is_some_and(|o| o.is_lt())),
        BinaryOp::Gt => Value::Bool(ordering(a, b).is_some_and(|o| o.is_gt())),
        BinaryOp::Le => Value::Bool(ordering(a, b).is_some_and(|o| o.is_le())),
        BinaryOp::Ge => Value::Bool(ordering(a, b).is_some_and(|o| o.is_ge())),
    })
}

/// The order of `a < b` and friends; None (every comparison false) when
/// exactly one side is a decimal, as 0.9.11 answers `decimal(2) <= 2`.
#[inline]
fn ordering(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    let either_object = matches!(a, Value::Object(_)) || matches!(b, Value::Object(_));
    if either_object && a.as_decimal().is_some() != b.as_decimal().is_some() {
        return None;
    }
    Some(compare_values(a, b))
}

// ---------------------------------------------------------------------------
// Arithmetic

/// `a + b`: numbers, string concat, list concat, dict merge (right wins).
pub fn add(a: &Value, b: &Value) -> VmResult<Value> {
    add_limited(a, b, &Limits::default())
}

/// `add` with the VM's allocation limit for concatenations.
pub fn add_limited(a: &Value, b: &Value, limits: &Limits) -> VmResult<Value> {
    match (a, b) {
        (&Value::Int(x), &Value::Int(y)) => Ok(int_arith(BinaryOp::Add, x, y)),
        (Value::Float(x), Value::Float(y)) => Ok(Value::Float(x + y)),
        (Value::Int(x), Value::Float(y)) => Ok(Value::Float(*x as f64 + y)),
        (Value::Float(x), Value::Int(y)) => Ok(Value::Float(x + *y as f64)),
        (Value::Str(x), Value::Str(y)) => {
            check_alloc(x.len().saturating_add(y.len()), limits, "string concatenation")?;
            let mut s = String::with_capacity(x.len() + y.len());
            s.push_str(x);
            s.push_str(y);
            Ok(Value::str(s))
        }
        (Value::List(x), Value::List(y)) => {
            check_list_concat(x.len(), y.len(), limits)?;
            // The copy is a new allocation of the whole list.
            crate::runtime::native::check_memory((x.len() + y.len()).saturating_mul(std::mem::size_of::<Value>()))?;
            let mut items = Vec::with_capacity(x.len() + y.len());
            items.extend(x.iter().cloned());
            items.extend(y.iter().cloned());
            Ok(Value::list(items))
        }
        (Value::Dict(x), Value::Dict(y)) => {
            if x.is_empty() {
                return Ok(b.clone());
            }
            let mut merged = (**x).clone();
            merged.extend(y.iter().map(|(k, v)| (k.clone(), v.clone())));
            Ok(Value::dict(merged))
        }
        _ => match decimal_pair(a, b) {
            Some((x, y)) => decimal_result(x.checked_add(y), "addition"),
            None => Err(VmError::type_error(format!("Cannot add {} and {}", a.type_name(), b.type_name()))),
        },
    }
}

/// The size limit of `list + list` (also checked by the in-place `xs += [...]`).
pub fn check_list_concat(left: usize, right: usize, limits: &Limits) -> VmResult<()> {
    check_alloc(left.saturating_add(right), limits, "list concatenation")
}

/// `a - b`: numbers only.
pub fn sub(a: &Value, b: &Value) -> VmResult<Value> {
    match (a, b) {
        (&Value::Int(x), &Value::Int(y)) => Ok(int_arith(BinaryOp::Sub, x, y)),
        _ => match float_pair(a, b) {
            Some((x, y)) => Ok(Value::Float(x - y)),
            None => match decimal_pair(a, b) {
                Some((x, y)) => decimal_result(x.checked_sub(y), "subtraction"),
                None => Err(VmError::type_error(format!("Cannot subtract {} from {}", b.type_name(), a.type_name()))),
            },
        },
    }
}

/// `a * b`: numbers, or `string * int` / `int * string` repetition.
pub fn mul(a: &Value, b: &Value) -> VmResult<Value> {
    mul_limited(a, b, &Limits::default())
}

/// `mul` with the VM's allocation limit for string repetition.
pub fn mul_limited(a: &Value, b: &Value, limits: &Limits) -> VmResult<Value> {
    match (a, b) {
        (&Value::Int(x), &Value::Int(y)) => Ok(int_arith(BinaryOp::Mul, x, y)),
        (Value::Str(s), Value::Int(n)) | (Value::Int(n), Value::Str(s)) => Ok(Value::str(repeat(s, *n, limits)?)),
        _ => match float_pair(a, b) {
            Some((x, y)) => Ok(Value::Float(x * y)),
            None => match decimal_pair(a, b) {
                Some((x, y)) => decimal_result(x.checked_mul(y), "multiplication"),
                None => Err(VmError::type_error(format!("Cannot multiply {} and {}", a.type_name(), b.type_name()))),
            },
        },
    }
}

/// `a / b`: int/int truncates (and throws on a zero divisor); anything with
/// a float is float division (x/0.0 is inf or NaN).
pub fn div(a: &Value, b: &Value) -> VmResult<Value> {
    match (a, b) {
        (&Value::Int(x), &Value::Int(y)) => int_binary(BinaryOp::Div, x, y).ok_or_else(division_by_zero),
        _ => match float_pair(a, b) {
            Some((x, y)) => Ok(Value::Float(x / y)),
            None => match decimal_pair(a, b) {
                Some((_, y)) if y.is_zero() => Err(division_by_zero()),
                Some((x, y)) => decimal_result(x.checked_div(y), "division"),
                None => Err(VmError::runtime(format!("Cannot divide {} by {}", a.type_name(), b.type_name()))),
            },
        },
    }
}

/// `a % b`: remainder with the dividend's sign; a zero divisor throws for
/// ints and floats alike.
pub fn rem(a: &Value, b: &Value) -> VmResult<Value> {
    match (a, b) {
        (&Value::Int(x), &Value::Int(y)) => int_binary(BinaryOp::Mod, x, y).ok_or_else(division_by_zero),
        _ => match float_pair(a, b) {
            Some((x, y)) => float_binary(BinaryOp::Mod, x, y).ok_or_else(division_by_zero),
            None => match decimal_pair(a, b) {
                Some((_, y)) if y.is_zero() => Err(division_by_zero()),
                Some((x, y)) => decimal_result(x.checked_rem(y), "remainder"),
                None => Err(VmError::runtime(format!("Cannot modulo {} by {}", a.type_name(), b.type_name()))),
            },
        },
    }
}

/// `a ** b`: int ** int in `0..=u32::MAX` stays an int unless it overflows; a negative or huge exponent,
/// or any float, gives a float.
pub fn pow(a: &Value, b: &Value) -> VmResult<Value> {
    match (a, b) {
        (Value::Int(base), Value::Int(exp)) => Ok(match u32::try_from(*exp) {
            Ok(e) => base.checked_pow(e).map_or(Value::Float((*base as f64).powf(e as f64)), Value::Int),
            Err(_) => Value::Float((*base as f64).powf(*exp as f64)),
        }),
        (Value::Float(base), Value::Int(exp)) => Ok(Value::Float(match i32::try_from(*exp) {
            Ok(e) => base.powi(e),
            Err(_) => base.powf(*exp as f64),
        })),
        _ => match float_pair(a, b) {
            Some((x, y)) => Ok(Value::Float(x.powf(y))),
            None => Err(VmError::type_error(format!("Cannot exponentiate {} by {}", a.type_name(), b.type_name()))),
        },
    }
}

/// Unary `-`.
pub fn neg(a: &Value) -> VmResult<Value> {
    match a {
        Value::Int(n) => Ok(n.checked_neg().map_or(Value::Float(-(*n as f64)), Value::Int)),
        Value::Float(f) => Ok(Value::Float(-f)),
        Value::Object(_) if a.as_decimal().is_some() => Ok(Value::decimal(-a.as_decimal().unwrap_or_default())),
        _ => Err(VmError::runtime(format!("Cannot negate value of type {}", a.type_name()))),
    }
}

/// Unary `!`.
pub fn not(a: &Value) -> Value {
    Value::Bool(!a.is_truthy())
}

/// The int kernel of `+ - *`, which always answers.
#[inline(always)]
fn int_arith(op: BinaryOp, x: i64, y: i64) -> Value {
    int_binary(op, x, y).expect("only a zero divisor has no int result")
}

#[cold]
#[inline(never)]
fn division_by_zero() -> VmError {
    VmError::new(ErrorKind::DivisionByZero)
}

/// Both operands as f64 when both are numbers (at least one being a float
/// once the int/int cases are handled by the caller).
#[inline]
fn float_pair(a: &Value, b: &Value) -> Option<(f64, f64)> {
    Some((a.as_f64()?, b.as_f64()?))
}

/// Both operands as decimals when one is a decimal and the other a decimal
/// or an int (ints widen exactly; floats never mix with decimals).
#[inline]
fn decimal_pair(a: &Value, b: &Value) -> Option<(Decimal, Decimal)> {
    let operand = |v: &Value| match v {
        Value::Int(n) => Some(Decimal::from(*n)),
        other => other.as_decimal(),
    };
    if !matches!(a, Value::Object(_)) && !matches!(b, Value::Object(_)) {
        return None;
    }
    Some((operand(a)?, operand(b)?))
}

/// A checked decimal operation's value, or 0.9.11's overflow error.
#[cold]
fn decimal_result(result: Option<Decimal>, what: &str) -> VmResult<Value> {
    result.map(Value::decimal).ok_or_else(|| VmError::runtime(format!("decimal {what} overflowed")))
}

// ---------------------------------------------------------------------------
// Membership

/// `item in coll`: list/set element equality, dict key (`display(item)`),
/// substring (non-string needles are displayed), int in range; else false.
pub fn contains(item: &Value, coll: &Value) -> bool {
    match coll {
        Value::List(items) | Value::Set(items) => items.iter().any(|v| values_equal(v, item)),
        Value::Dict(map) => map.contains_key(&key_of(item)),
        Value::Str(s) => match item {
            Value::Str(needle) => s.contains(needle.as_str()),
            other => s.contains(other.display().as_str()),
        },
        Value::Range(r) => matches!(item, Value::Int(n) if r.contains(*n)),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Access

/// A dict entry by string key (a hash probe; no key is allocated).
#[inline]
pub fn dict_get<'a>(map: &'a DictMap, key: &str) -> Option<&'a Value> {
    map.get(key)
}

/// `obj.name` (or `obj?.name` when `optional`).
pub fn get_property(obj: &Value, name: &str, optional: bool) -> VmResult<Value> {
    let nil = Value::Nil;
    Ok(match obj {
        Value::Dict(map) => dict_get(map, name).cloned().unwrap_or(nil),
        Value::Struct(s) => s.get(name).cloned().unwrap_or(nil),
        Value::List(items) => match name {
            "count" => Value::Int(items.len() as i64),
            "empty" => Value::Bool(items.is_empty()),
            "first" => items.first().cloned().unwrap_or(nil),
            "last" => items.last().cloned().unwrap_or(nil),
            _ => nil,
        },
        Value::Str(s) => match name {
            "count" => Value::Int(char_len(s) as i64),
            "empty" => Value::Bool(s.is_empty()),
            _ => nil,
        },
        Value::Enum(e) => match name {
            "variant" => Value::Str(e.variant.clone()),
            "fields" => Value::list(e.fields.clone()),
            _ => nil,
        },
        Value::Pair(p) => match name {
            "first" => p.0.clone(),
            "second" => p.1.clone(),
            _ if optional => nil,
            _ => {
                return Err(VmError::type_error(format!(
                    "cannot access property `{name}` on pair (expected `first` or `second`)"
                )))
            }
        },
        _ => {
            if let Some(handle) = crate::runtime::harness::handle_of(obj) {
                return crate::runtime::harness::property(handle, name, optional);
            }
            if optional {
                return Ok(nil);
            }
            return Err(VmError::type_error(format!("cannot access property `{name}` on {}", obj.type_name())));
        }
    })
}

/// `obj[idx]` (or `obj?[idx]` when `optional`, which only differs for nil).
pub fn index(obj: &Value, idx: &Value, optional: bool) -> VmResult<Value> {
    match (obj, idx) {
        (Value::Nil, _) if optional => Ok(Value::Nil),
        (Value::List(items), Value::Int(i)) => {
            let pos = if *i < 0 { (items.len() as i64).checked_add(*i) } else { Some(*i) };
            Ok(pos.and_then(|p| usize::try_from(p).ok()).and_then(|p| items.get(p)).cloned().unwrap_or_default())
        }
        (Value::Dict(map), Value::Str(key)) => Ok(map.get(key).cloned().unwrap_or_default()),
        (Value::Dict(map), _) => Ok(map.get(&key_of(idx)).cloned().unwrap_or_default()),
        (Value::Str(s), Value::Int(i)) => Ok(char_at(s, *i).unwrap_or_default()),
        (Value::Range(r), Value::Int(i)) => {
            let len = r.len();
            let pos = if *i < 0 { len.saturating_add(*i) } else { *i };
            match r.get(pos) {
                Some(n) => Ok(Value::Int(n)),
                None => Err(VmError::runtime(format!("range index out of range: index {i} for range of length {len}"))),
            }
        }
        _ => Err(VmError::type_error(format!("cannot index into {} with {}", obj.type_name(), idx.type_name()))),
    }
}

/// `obj[start:end]` on a list or string; nil bounds are open, negative ones
/// count from the end, everything is clamped, `start >= end` is empty.
pub fn slice(obj: &Value, start: &Value, end: &Value) -> VmResult<Value> {
    let bound = |v: &Value, which: &str| -> VmResult<Option<i64>> {
        match v {
            Value::Nil => Ok(None),
            Value::Int(n) => Ok(Some(*n)),
            other => Err(VmError::type_error(format!("slice {which} must be an integer, got {}", other.type_name()))),
        }
    };
    let (start, end) = (bound(start, "start")?, bound(end, "end")?);
    match obj {
        Value::List(items) => {
            let from = clamp_index(start.unwrap_or(0), items.len());
            let to = end.map_or(items.len(), |e| clamp_index(e, items.len()));
            Ok(Value::list(if from < to { items[from..to].to_vec() } else { Vec::new() }))
        }
        Value::Str(s) => Ok(Value::str(char_slice(s, start.unwrap_or(0), end))),
        _ => Err(VmError::type_error(format!("cannot slice {}", obj.type_name()))),
    }
}

// ---------------------------------------------------------------------------
// Assignment through a path

/// `root.k1[k2]...kn = v`, in place: each container on the path is made
/// unique with `Rc::make_mut` first, so values shared with other variables
/// are copied (aliases never see the change) and unshared ones are updated
/// without copying.
///
/// Keys: a list takes an int index (negative counts from the end; out of
/// range → `Index 10 out of bounds for list of length 3`; a non-int key is
/// ignored); a dict takes `display(key)`; a struct takes a field name (an
/// undeclared name is appended to a fresh layout). A value on the path that
/// is none of these, or a missing dict key / struct field in the middle of
/// the path, makes the assignment a silent no-op, as the reference does for
/// non-container roots. An empty path replaces `root`.
pub fn set_path(root: &mut Value, keys: &[Value], v: Value) -> VmResult<()> {
    let Some((key, rest)) = keys.split_first() else {
        *root = v;
        return Ok(());
    };
    if rest.is_empty() {
        return set_child(root, key, v);
    }
    match child_mut(root, key)? {
        Some(child) => set_path(child, rest, v),
        None => Ok(()),
    }
}

/// The list slot for index `i`, or the out-of-bounds error.
fn list_slot(len: usize, i: i64) -> VmResult<usize> {
    let pos = if i < 0 { (len as i64).checked_add(i) } else { Some(i) };
    match pos.and_then(|p| usize::try_from(p).ok()) {
        Some(p) if p < len => Ok(p),
        _ => Err(VmError::runtime(format!("Index {i} out of bounds for list of length {len}"))),
    }
}

/// The text of a struct field key, borrowed when the key is a string (the
/// common `p.x = v`), so a field write allocates nothing.
fn field_name(key: &Value) -> Cow<'_, str> {
    match key {
        Value::Str(s) => Cow::Borrowed(s.as_str()),
        other => Cow::Owned(other.display()),
    }
}

/// A mutable (unshared) child of `container`, or None when there is none.
fn child_mut<'a>(container: &'a mut Value, key: &Value) -> VmResult<Option<&'a mut Value>> {
    match (container, key) {
        (Value::List(items), Value::Int(i)) => {
            let slot = list_slot(items.len(), *i)?;
            Ok(Some(&mut Rc::make_mut(items)[slot]))
        }
        (Value::Dict(map), _) => {
            let key = key_of(key);
            // A shared dict is copied only when the key is there to write through.
            if Rc::get_mut(map).is_none() && !map.contains_key(&key) {
                return Ok(None);
            }
            Ok(Rc::make_mut(map).get_mut(&key))
        }
        (Value::Struct(s), _) => {
            let Some(field) = s.layout.index_of(&field_name(key)) else {
                return Ok(None);
            };
            Ok(Some(&mut Rc::make_mut(s).values[field]))
        }
        _ => Ok(None),
    }
}

/// `map[key] = v`: an existing key keeps its `Rc` (and slot); a new one is
/// added. Out of line, so `set_child` stays small for list and struct writes.
#[inline(never)]
fn set_dict_entry(map: &mut Rc<DictMap>, key: &Value, v: Value) {
    Rc::make_mut(map).insert(key_of(key), v);
}

/// `container[key] = v` for the last key of a path.
fn set_child(container: &mut Value, key: &Value, v: Value) -> VmResult<()> {
    match (container, key) {
        (Value::List(items), Value::Int(i)) => {
            let slot = list_slot(items.len(), *i)?;
            Rc::make_mut(items)[slot] = v;
        }
        (Value::Dict(map), _) => set_dict_entry(map, key, v),
        (Value::Struct(s), _) => {
            let field = s.layout.index_of(&field_name(key));
            let s = Rc::make_mut(s);
            match field {
                Some(field) => s.values[field] = v,
                None => {
                    let mut fields = s.layout.fields.clone();
                    fields.push(key_of(key));
                    s.layout = Rc::new(StructLayout { name: s.layout.name.clone(), fields });
                    s.values.push(v);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A struct value from a layout and field values (helper for callers that
/// build structs; keeps `values` parallel to `layout.fields`).
pub fn make_struct(layout: Rc<StructLayout>, mut values: Vec<Value>) -> Value {
    values.resize(layout.fields.len(), Value::Nil);
    Value::Struct(Rc::new(StructVal { layout, values }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(n: i64) -> Value {
        Value::Int(n)
    }
    fn s(x: &str) -> Value {
        Value::str(x)
    }
    fn list(items: &[i64]) -> Value {
        Value::list(items.iter().map(|n| Value::Int(*n)).collect())
    }
    fn shown(r: VmResult<Value>) -> String {
        match r {
            Ok(v) => v.display(),
            Err(e) => e.message(),
        }
    }

    #[test]
    fn arithmetic() {
        assert_eq!(shown(add(&int(2), &int(3))), "5");
        assert_eq!(shown(add(&int(3), &Value::Float(1.5))), "4.5");
        assert_eq!(shown(add(&s("a"), &s("b"))), "ab");
        assert_eq!(shown(add(&list(&[1, 2]), &list(&[3]))), "[1, 2, 3]");
        let merged = add(&Value::dict_from([("a", int(1)), ("b", int(2))]), &Value::dict_from([("b", int(3))]));
        assert_eq!(shown(merged), "{a: 1, b: 3}");
        assert_eq!(shown(sub(&int(10), &Value::Float(2.5))), "7.5");
        assert_eq!(shown(mul(&Value::Float(2.5), &int(4))), "10.0");
        assert_eq!(shown(div(&int(10), &int(3))), "3");
        assert_eq!(shown(div(&int(-7), &int(2))), "-3");
        assert_eq!(shown(div(&int(7), &Value::Float(2.0))), "3.5");
        assert_eq!(shown(div(&Value::Float(1.0), &int(0))), "inf");
        assert_eq!(shown(rem(&int(-7), &int(2))), "-1");
        assert_eq!(shown(rem(&Value::Float(7.5), &int(2))), "1.5");
        assert_eq!(shown(pow(&int(2), &int(10))), "1024");
        assert_eq!(shown(pow(&int(2), &int(-1))), "0.5");
        assert_eq!(shown(pow(&Value::Float(9.0), &Value::Float(0.5))), "3.0");
        assert_eq!(shown(neg(&int(5))), "-5");
        assert_eq!(not(&s("")).display(), "true");
    }

    #[test]
    fn int_overflow_promotes_to_float() {
        assert!(matches!(add(&int(i64::MAX), &int(1)), Ok(Value::Float(_))));
        assert!(matches!(sub(&int(i64::MIN), &int(1)), Ok(Value::Float(_))));
        assert!(matches!(mul(&int(i64::MAX), &int(2)), Ok(Value::Float(_))));
        assert!(matches!(div(&int(i64::MIN), &int(-1)), Ok(Value::Float(_))));
        assert!(matches!(pow(&int(10), &int(30)), Ok(Value::Float(_))));
        assert_eq!(shown(rem(&int(i64::MIN), &int(-1))), "0");
        assert!(matches!(neg(&int(i64::MIN)), Ok(Value::Float(_))));
    }

    #[test]
    fn operator_errors() {
        assert_eq!(shown(add(&s("a"), &int(1))), "Type error: Cannot add string and int");
        assert_eq!(shown(add(&Value::Bool(true), &int(1))), "Type error: Cannot add bool and int");
        assert_eq!(shown(add(&Value::Duration(5), &Value::Duration(5))), "Type error: Cannot add duration and duration");
        assert_eq!(shown(sub(&s("a"), &s("b"))), "Type error: Cannot subtract string from string");
        assert_eq!(shown(sub(&int(1), &s("b"))), "Type error: Cannot subtract string from int");
        assert_eq!(shown(mul(&Value::Bool(true), &int(2))), "Type error: Cannot multiply bool and int");
        assert_eq!(shown(div(&s("a"), &int(2))), "Runtime error: Cannot divide string by int");
        assert_eq!(shown(rem(&s("a"), &int(2))), "Runtime error: Cannot modulo string by int");
        assert_eq!(shown(pow(&s("a"), &int(2))), "Type error: Cannot exponentiate string by int");
        assert_eq!(shown(neg(&s("a"))), "Runtime error: Cannot negate value of type string");
        assert_eq!(shown(div(&int(1), &int(0))), "Division by zero");
        assert_eq!(shown(rem(&int(1), &int(0))), "Division by zero");
        assert_eq!(shown(rem(&Value::Float(1.0), &Value::Float(0.0))), "Division by zero");
        assert!(matches!(div(&int(1), &int(0)).unwrap_err().kind(), ErrorKind::DivisionByZero));
    }

    #[test]
    fn string_repeat_and_limits() {
        assert_eq!(shown(mul(&s("ab"), &int(3))), "ababab");
        assert_eq!(shown(mul(&int(4), &s("xy"))), "xyxyxyxy");
        assert_eq!(shown(mul(&s("hi"), &int(0))), "");
        assert_eq!(shown(mul(&s("hi"), &int(-1))), "");
        let huge = mul(&s("ab"), &int(i64::MAX)).unwrap_err();
        assert!(!huge.is_catchable());
        assert!(huge.message().starts_with("Resource limit exceeded: string repeat would allocate"), "{}", huge.message());
        let small = Limits { max_alloc: 10 };
        assert!(add_limited(&s("123456"), &s("123456"), &small).is_err());
        assert!(add_limited(&list(&[1; 6]), &list(&[1; 6]), &small).is_err());
    }

    #[test]
    fn membership() {
        assert!(contains(&int(2), &list(&[1, 2])));
        assert!(contains(&Value::Float(2.0), &list(&[1, 2])));
        assert!(!contains(&s("2"), &list(&[1, 2])));
        assert!(contains(&int(1), &Value::dict_from([("1", Value::Nil)])));
        assert!(contains(&s("ell"), &s("hello")));
        assert!(contains(&int(1), &s("a1")));
        assert!(contains(&int(5), &Value::range(1, 5, true)));
        assert!(!contains(&int(5), &Value::range(1, 5, false)));
        assert!(!contains(&int(1), &int(1)));
    }

    #[test]
    fn properties() {
        let d = Value::dict_from([("name", s("Alice"))]);
        assert_eq!(shown(get_property(&d, "name", false)), "Alice");
        assert_eq!(shown(get_property(&d, "count", false)), "nil");
        let l = list(&[1, 2, 3]);
        assert_eq!(shown(get_property(&l, "count", false)), "3");
        assert_eq!(shown(get_property(&l, "first", false)), "1");
        assert_eq!(shown(get_property(&l, "last", false)), "3");
        assert_eq!(shown(get_property(&list(&[]), "first", false)), "nil");
        assert_eq!(shown(get_property(&s("héllo"), "count", false)), "5");
        assert_eq!(shown(get_property(&s("x"), "len", false)), "nil");
        let e = Value::enum_val("Shape", "Rect", vec![int(1), int(2)]);
        assert_eq!(shown(get_property(&e, "variant", false)), "Rect");
        assert_eq!(shown(get_property(&e, "fields", false)), "[1, 2]");
        let p = Value::pair(int(1), s("a"));
        assert_eq!(shown(get_property(&p, "second", false)), "a");
        assert_eq!(
            shown(get_property(&p, "third", false)),
            "Type error: cannot access property `third` on pair (expected `first` or `second`)"
        );
        assert_eq!(shown(get_property(&p, "third", true)), "nil");
        assert_eq!(shown(get_property(&Value::Nil, "x", false)), "Type error: cannot access property `x` on nil");
        assert_eq!(shown(get_property(&Value::Nil, "x", true)), "nil");
        assert_eq!(shown(get_property(&int(42), "name", false)), "Type error: cannot access property `name` on int");
        assert_eq!(shown(get_property(&int(42), "name", true)), "nil");
    }

    #[test]
    fn indexing() {
        let l = list(&[10, 20, 30]);
        assert_eq!(shown(index(&l, &int(0), false)), "10");
        assert_eq!(shown(index(&l, &int(-1), false)), "30");
        assert_eq!(shown(index(&l, &int(-4), false)), "nil");
        assert_eq!(shown(index(&l, &int(5), false)), "nil");
        assert_eq!(shown(index(&l, &int(i64::MIN), false)), "nil");
        let d = Value::dict_from([("1", s("one")), ("a", s("x"))]);
        assert_eq!(shown(index(&d, &int(1), false)), "one");
        assert_eq!(shown(index(&d, &s("a"), false)), "x");
        assert_eq!(shown(index(&d, &s("zz"), false)), "nil");
        assert_eq!(shown(index(&s("héllo"), &int(1), false)), "é");
        assert_eq!(shown(index(&s("héllo"), &int(-1), false)), "o");
        assert_eq!(shown(index(&s("abc"), &int(3), false)), "nil");
        let r = Value::range(1, 10, true);
        assert_eq!(shown(index(&r, &int(9), false)), "10");
        assert_eq!(shown(index(&r, &int(-10), false)), "1");
        assert_eq!(
            shown(index(&Value::range(0, 5, false), &int(100), false)),
            "Runtime error: range index out of range: index 100 for range of length 5"
        );
        assert_eq!(shown(index(&Value::Nil, &int(0), false)), "Type error: cannot index into nil with int");
        assert_eq!(shown(index(&Value::Nil, &int(0), true)), "nil");
        assert_eq!(shown(index(&l, &s("a"), false)), "Type error: cannot index into list with string");
    }

    #[test]
    fn slicing() {
        let l = list(&[10, 20, 30, 40, 50]);
        assert_eq!(shown(slice(&l, &int(1), &int(3))), "[20, 30]");
        assert_eq!(shown(slice(&l, &Value::Nil, &int(2))), "[10, 20]");
        assert_eq!(shown(slice(&l, &int(3), &Value::Nil)), "[40, 50]");
        assert_eq!(shown(slice(&l, &int(-2), &Value::Nil)), "[40, 50]");
        assert_eq!(shown(slice(&l, &int(-100), &int(100))), "[10, 20, 30, 40, 50]");
        assert_eq!(shown(slice(&l, &int(3), &int(1))), "[]");
        let text = s("hello world");
        assert_eq!(shown(slice(&text, &int(0), &int(5))), "hello");
        assert_eq!(shown(slice(&text, &int(-5), &Value::Nil)), "world");
        assert_eq!(shown(slice(&s("héllo"), &int(1), &int(3))), "él");
        assert_eq!(shown(slice(&l, &s("a"), &Value::Nil)), "Type error: slice start must be an integer, got string");
        assert_eq!(shown(slice(&int(1), &Value::Nil, &Value::Nil)), "Type error: cannot slice int");
    }

    #[test]
    fn set_path_copy_on_write() {
        let mut a = list(&[1, 2, 3]);
        let alias = a.clone();
        set_path(&mut a, &[int(0)], int(9)).unwrap();
        assert_eq!(a.display(), "[9, 2, 3]");
        assert_eq!(alias.display(), "[1, 2, 3]");
        set_path(&mut a, &[int(-1)], int(7)).unwrap();
        assert_eq!(a.display(), "[9, 2, 7]");
        let err = set_path(&mut a, &[int(10)], int(99)).unwrap_err();
        assert_eq!(err.message(), "Runtime error: Index 10 out of bounds for list of length 3");
        let err = set_path(&mut a, &[int(-4)], int(99)).unwrap_err();
        assert_eq!(err.message(), "Runtime error: Index -4 out of bounds for list of length 3");

        // Nested: x.a[1].b = 5, with the inner list shared by an alias.
        let inner = Value::list(vec![Value::dict_from([("b", int(1))]), Value::dict_from([("b", int(2))])]);
        let mut x = Value::dict_from([("a", inner.clone())]);
        let x_alias = x.clone();
        set_path(&mut x, &[s("a"), int(1), s("b")], int(5)).unwrap();
        assert_eq!(x.display(), "{a: [{b: 1}, {b: 5}]}");
        assert_eq!(x_alias.display(), "{a: [{b: 1}, {b: 2}]}");
        assert_eq!(inner.display(), "[{b: 1}, {b: 2}]");

        // Unshared containers are updated without copying.
        let mut solo = list(&[1, 2]);
        let before = match &solo {
            Value::List(items) => Rc::as_ptr(items),
            _ => unreachable!(),
        };
        set_path(&mut solo, &[int(1)], int(5)).unwrap();
        let Value::List(after) = &solo else { unreachable!() };
        assert_eq!(Rc::as_ptr(after), before);

        // Dict keys are displayed; non-container roots and missing middles are ignored.
        let mut d = Value::dict_from([]);
        set_path(&mut d, &[int(1)], s("one")).unwrap();
        assert_eq!(d.display(), "{1: one}");
        set_path(&mut d, &[s("missing"), s("b")], int(1)).unwrap();
        assert_eq!(d.display(), "{1: one}");
        let mut n = int(5);
        set_path(&mut n, &[s("x")], int(1)).unwrap();
        assert_eq!(n.display(), "5");
    }

    #[test]
    fn set_path_on_structs() {
        let layout = Rc::new(StructLayout {
            name: Rc::new("Point".to_string()),
            fields: vec![Rc::new("x".to_string()), Rc::new("y".to_string())],
        });
        let mut p = make_struct(Rc::clone(&layout), vec![int(1), int(2)]);
        let alias = p.clone();
        set_path(&mut p, &[s("y")], int(5)).unwrap();
        set_path(&mut p, &[s("z")], int(9)).unwrap();
        assert_eq!(p.display(), "Point {x: 1, y: 5, z: 9}");
        assert_eq!(alias.display(), "Point {x: 1, y: 2}");
        assert_eq!(shown(get_property(&p, "z", false)), "9");
        assert_eq!(layout.fields.len(), 2);
    }
}
