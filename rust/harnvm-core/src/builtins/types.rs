//! Conversion, identity, `Result` and range/pair constructors.
//!
//! (`to_string`, `type_of` and `len` live in `core.rs`.)

use std::rc::Rc;

use super::args::{done, expected};
use super::collections::structural_hash;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "to_int", imp: Native(to_int) },
    BuiltinDef { name: "to_float", imp: Native(to_float) },
    BuiltinDef { name: "is_same", imp: Native(is_same) },
    BuiltinDef { name: "hash_value", imp: Native(hash_value) },
    BuiltinDef { name: "addr_of", imp: Native(addr_of) },
    BuiltinDef { name: "Ok", imp: Native(ok) },
    BuiltinDef { name: "Err", imp: Native(err) },
    BuiltinDef { name: "is_ok", imp: Native(is_ok) },
    BuiltinDef { name: "is_err", imp: Native(is_err) },
    BuiltinDef { name: "unwrap", imp: Native(unwrap) },
    BuiltinDef { name: "unwrap_or", imp: Native(unwrap_or) },
    BuiltinDef { name: "unwrap_err", imp: Native(unwrap_err) },
    BuiltinDef { name: "unreachable", imp: Native(unreachable) },
    BuiltinDef { name: "range", imp: Native(range) },
    BuiltinDef { name: "__range__", imp: Native(range_operator) },
    BuiltinDef { name: "pair", imp: Native(pair) },
    BuiltinDef { name: "iter", imp: Native(iter) },
];

/// int → itself, float → truncated, string → parsed (nil when not an int), else nil.
fn to_int(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(match arg(args, 0) {
        Value::Int(n) => Value::Int(*n),
        Value::Float(f) => Value::Int(*f as i64),
        Value::Str(s) => s.trim().parse::<i64>().map_or(Value::Nil, Value::Int),
        // Truncated; nil outside the int range.
        v @ Value::Object(_) => {
            v.as_decimal().and_then(|d| rust_decimal::prelude::ToPrimitive::to_i64(&d.trunc())).map_or(Value::Nil, Value::Int)
        }
        _ => Value::Nil,
    })
}

/// float → itself, int → widened, string → parsed (nil when not a number), else nil.
fn to_float(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(match arg(args, 0) {
        Value::Float(f) => Value::Float(*f),
        Value::Int(n) => Value::Float(*n as f64),
        Value::Str(s) => s.trim().parse::<f64>().map_or(Value::Nil, Value::Float),
        v @ Value::Object(_) => {
            v.as_decimal().and_then(|d| rust_decimal::prelude::ToPrimitive::to_f64(&d)).map_or(Value::Nil, Value::Float)
        }
        _ => Value::Nil,
    })
}

fn is_same(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(arg(args, 0).is_same(arg(args, 1))))
}

/// A structural hash: equal values give equal ints.
fn hash_value(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Int(structural_hash(arg(args, 0)) as i64))
}

/// An identity key: `type@address` for shared values, `type@display` for scalars.
fn addr_of(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let v = arg(args, 0);
    let address = match v {
        Value::Str(s) => Some(Rc::as_ptr(s) as *const u8),
        Value::Bytes(b) => Some(Rc::as_ptr(b) as *const u8),
        Value::List(l) | Value::Set(l) => Some(Rc::as_ptr(l) as *const u8),
        Value::Dict(d) => Some(Rc::as_ptr(d) as *const u8),
        Value::Range(r) => Some(Rc::as_ptr(r) as *const u8),
        Value::Pair(p) => Some(Rc::as_ptr(p) as *const u8),
        Value::Enum(e) => Some(Rc::as_ptr(e) as *const u8),
        Value::Struct(s) => Some(Rc::as_ptr(s) as *const u8),
        Value::Closure(c) => Some(Rc::as_ptr(c) as *const u8),
        Value::Object(o) => Some(Rc::as_ptr(o) as *const u8),
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Duration(_) | Value::Builtin(_) => None,
    };
    // Strings are compared by value in Harn, so they get a content key too.
    let key = match (v, address) {
        (Value::Str(_), _) | (_, None) => format!("{}@{}", v.type_name(), v.display()),
        (_, Some(ptr)) => format!("{}@0x{:012x}", v.type_name(), masked_address(ptr)),
    };
    done(Value::str(key))
}

thread_local! {
    /// A per-thread random key (from the OS, via `RandomState`).
    static ADDRESS_KEY: std::collections::hash_map::RandomState = std::collections::hash_map::RandomState::new();
}

/// An address turned into an opaque 48-bit identity (a keyed hash, the
/// shape of an address): equal for the same live object, and revealing
/// nothing of where the heap is.
fn masked_address(ptr: *const u8) -> u64 {
    use std::hash::BuildHasher;
    ADDRESS_KEY.with(|k| k.hash_one(ptr as usize)) & 0xffff_ffff_ffff
}

fn ok(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::ok(arg(args, 0).clone()))
}

fn err(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::err(arg(args, 0).clone()))
}

/// The payload of a `Result` value and whether it is `Ok`; None for non-Results.
pub fn result_parts(v: &Value) -> Option<(bool, Value)> {
    match v {
        Value::Enum(e) if e.enum_name.as_str() == "Result" && matches!(e.variant.as_str(), "Ok" | "Err") => {
            Some((e.variant.as_str() == "Ok", e.fields.first().cloned().unwrap_or_default()))
        }
        _ => None,
    }
}

fn is_ok(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(matches!(result_parts(arg(args, 0)), Some((true, _)))))
}

fn is_err(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(matches!(result_parts(arg(args, 0)), Some((false, _)))))
}

/// `Ok(v)` → v; `Err(e)` → runtime error; anything else passes through.
fn unwrap(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match result_parts(arg(args, 0)) {
        Some((true, v)) => done(v),
        Some((false, e)) => Err(VmError::runtime(format!("unwrap called on Err: {}", e.display()))),
        None => done(arg(args, 0).clone()),
    }
}

fn unwrap_or(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match result_parts(arg(args, 0)) {
        Some((true, v)) => done(v),
        Some((false, _)) => done(arg(args, 1).clone()),
        None => done(arg(args, 0).clone()),
    }
}

fn unwrap_err(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match result_parts(arg(args, 0)) {
        Some((false, e)) => done(e),
        _ => Err(VmError::runtime("unwrap_err called on non-Err")),
    }
}

fn unreachable(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    Err(VmError::runtime(match args.first() {
        Some(v) => format!("unreachable code was reached: {}", v.display()),
        None => "unreachable code was reached".to_string(),
    }))
}

/// `range(n)` = `0 to n exclusive`, `range(a, b)` = `a to b exclusive`.
fn range(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let int = |i: usize| match arg(args, i) {
        Value::Int(n) => Ok(*n),
        other => Err(expected("range", "int arguments", other)),
    };
    match args.len() {
        1 => done(Value::range(0, int(0)?, false)),
        2 => done(Value::range(int(0)?, int(1)?, false)),
        n => Err(VmError::throw_msg(format!("range: expected 1 or 2 int arguments, got {n}"))),
    }
}

/// `a to b` / `a to b exclusive`: `__range__(a, b, inclusive)`.
fn range_operator(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let bound = |i: usize| match arg(args, i) {
        Value::Int(n) => Ok(*n),
        other => Err(VmError::type_error(format!("range bounds must be ints, got {}", other.type_name()))),
    };
    done(Value::range(bound(0)?, bound(1)?, arg(args, 2).is_truthy()))
}

fn pair(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::pair(arg(args, 0).clone(), arg(args, 1).clone()))
}

/// `iter(x)`: a lazy iterator over x (harn-language §11).
fn iter(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let x = arg(args, 0);
    match crate::builtins::iter::lift(x) {
        Some(it) => done(Value::Object(it)),
        None if crate::builtins::iter::is_channel(x) => Ok(crate::builtins::iter::lift_channel(x)),
        None => Err(crate::builtins::iter::not_iterable(x)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::value::Value;

    fn call(name: &str, args: &[Value]) -> Result<Value, String> {
        run_builtin(name, args, &no_callback)
    }
    fn shown(name: &str, args: &[Value]) -> String {
        call(name, args).map(|v| v.display()).unwrap_or_else(|e| e)
    }

    #[test]
    fn conversions() {
        assert_eq!(shown("to_int", &[Value::Float(-2.7)]), "-2");
        assert_eq!(shown("to_int", &[Value::str("123")]), "123");
        assert_eq!(shown("to_int", &[Value::str("abc")]), "nil");
        assert_eq!(shown("to_int", &[Value::Nil]), "nil");
        assert_eq!(shown("to_float", &[Value::Int(10)]), "10.0");
        assert_eq!(shown("to_float", &[Value::str("-1.0")]), "-1.0");
        assert_eq!(shown("to_float", &[Value::str("xyz")]), "nil");
    }

    #[test]
    fn results() {
        let ok = call("Ok", &[Value::Int(42)]).unwrap();
        let err = call("Err", &[Value::str("boom")]).unwrap();
        assert_eq!(ok.display(), "Result.Ok(42)");
        assert_eq!(shown("is_ok", std::slice::from_ref(&ok)), "true");
        assert_eq!(shown("is_err", std::slice::from_ref(&ok)), "false");
        assert_eq!(shown("unwrap", std::slice::from_ref(&ok)), "42");
        assert_eq!(shown("unwrap", std::slice::from_ref(&err)), "Runtime error: unwrap called on Err: boom");
        assert_eq!(shown("unwrap", &[Value::Int(5)]), "5");
        assert_eq!(shown("unwrap_or", &[err.clone(), Value::str("d")]), "d");
        assert_eq!(shown("unwrap_err", &[err]), "boom");
        assert_eq!(shown("unwrap_err", &[ok]), "Runtime error: unwrap_err called on non-Err");
        assert_eq!(shown("unreachable", &[]), "Runtime error: unreachable code was reached");
        assert_eq!(shown("unreachable", &[Value::str("bad")]), "Runtime error: unreachable code was reached: bad");
    }

    #[test]
    fn ranges_pairs_identity() {
        assert_eq!(shown("range", &[Value::Int(5)]), "0 to 5 exclusive");
        assert_eq!(shown("range", &[Value::Int(3), Value::Int(7)]), "3 to 7 exclusive");
        assert_eq!(shown("range", &[Value::str("x")]), "Thrown: range: expected int arguments, got string");
        assert_eq!(shown("__range__", &[Value::Int(1), Value::Int(5), Value::Bool(true)]), "1 to 5");
        assert_eq!(shown("pair", &[Value::Int(1), Value::str("a")]), "(1, a)");
        assert_eq!(shown("addr_of", &[Value::Int(42)]), "int@42");
        let list = Value::list(vec![Value::Int(1)]);
        assert_eq!(shown("addr_of", std::slice::from_ref(&list)), shown("addr_of", std::slice::from_ref(&list)));
        assert_ne!(shown("addr_of", &[list]), shown("addr_of", &[Value::list(vec![Value::Int(1)])]));
        let h = |v: Value| call("hash_value", &[v]).unwrap().as_int().unwrap();
        assert_eq!(h(Value::Int(42)), h(Value::Int(42)));
        assert_eq!(h(Value::Int(3)), h(Value::Float(3.0)));
        assert_ne!(h(Value::Int(42)), h(Value::str("42")));
        assert_eq!(
            h(Value::dict_from([("a", Value::Int(1)), ("b", Value::Int(2))])),
            h(Value::dict_from([("b", Value::Int(2)), ("a", Value::Int(1))]))
        );
    }
}
