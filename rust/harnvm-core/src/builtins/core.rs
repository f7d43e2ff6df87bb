//! Output, assertions and type conversion builtins.

use std::cell::RefCell;
use std::rc::Rc;

use super::args::interned;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, values_equal, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "log", imp: Native(log) },
    BuiltinDef { name: "log_json", imp: Native(log_json) },
    BuiltinDef { name: "print", imp: Native(print) },
    BuiltinDef { name: "println", imp: Native(println) },
    BuiltinDef { name: "assert", imp: Native(assert) },
    BuiltinDef { name: "assert_eq", imp: Native(assert_eq) },
    BuiltinDef { name: "assert_ne", imp: Native(assert_ne) },
    BuiltinDef { name: "to_string", imp: Native(to_string) },
    BuiltinDef { name: "type_of", imp: Native(type_of) },
    BuiltinDef { name: "len", imp: Native(len) },
];

fn first_display(args: &[Value]) -> String {
    args.first().map(|v| v.display()).unwrap_or_default()
}

/// The budget check before a value's text is built for output.
fn check_first(args: &[Value]) -> VmResult<()> {
    args.first().map_or(Ok(()), crate::runtime::budget::check_display_output)
}

fn log(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    check_first(args)?;
    let text = first_display(args);
    ctx.write_output("[harn] ")?;
    ctx.write_output(&text)?;
    ctx.write_output("\n")?;
    Ok(Flow::Done(Value::Nil))
}

/// `log_json(key, value)`: one JSON line `{"ts", "key", "value"}` on the
/// output, as 0.9.11: scalars stay JSON scalars, other values go as their
/// display text.
fn log_json(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let value = arg(args, 1);
    crate::runtime::budget::check_display_output(value)?;
    let mut line = String::from("{\"ts\":");
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    super::json::write_json_string(&ts, &mut line);
    line.push_str(",\"key\":");
    super::json::write_json_string(&arg(args, 0).display(), &mut line);
    line.push_str(",\"value\":");
    match value {
        // 0.9.11 writes whole floats without a fraction (`2`, `-0`).
        Value::Float(f) if f.is_finite() => line.push_str(&f.to_string()),
        Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => {
            line.push_str(&super::json::to_json_capped(value, ctx.limits.max_alloc)?)
        }
        other => super::json::write_json_string(&other.display(), &mut line),
    }
    line.push_str("}\n");
    ctx.write_output(&line)?;
    Ok(Flow::Done(Value::Nil))
}

fn print(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    check_first(args)?;
    ctx.write_output(&first_display(args))?;
    Ok(Flow::Done(Value::Nil))
}

fn println(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    check_first(args)?;
    ctx.write_output(&first_display(args))?;
    ctx.write_output("\n")?;
    Ok(Flow::Done(Value::Nil))
}

fn assert(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if arg(args, 0).is_truthy() {
        return Ok(Flow::Done(Value::Nil));
    }
    match args.get(1) {
        Some(msg) => Err(VmError::thrown(msg.clone())),
        None => Err(VmError::throw_msg("Assertion failed")),
    }
}

fn assert_eq(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    if values_equal(a, b) {
        return Ok(Flow::Done(Value::Nil));
    }
    match args.get(2) {
        Some(msg) => Err(VmError::thrown(msg.clone())),
        None => Err(VmError::throw_msg(format!("Assertion failed: expected {}, got {}", b.display(), a.display()))),
    }
}

fn assert_ne(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (a, b) = (arg(args, 0), arg(args, 1));
    if !values_equal(a, b) {
        return Ok(Flow::Done(Value::Nil));
    }
    match args.get(2) {
        Some(msg) => Err(VmError::thrown(msg.clone())),
        None => Err(VmError::throw_msg(format!("Assertion failed: values should not be equal: {}", a.display()))),
    }
}

fn to_string(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    Ok(Flow::Done(Value::str(crate::runtime::native::display_limited(arg(args, 0), ctx.limits, "to_string")?)))
}

/// Variants whose type name depends only on the variant: a slot each in
/// `TYPE_NAMES` (objects name themselves and go through `interned`).
const TYPE_SLOTS: usize = 16;

thread_local! {
    /// `type_of`'s result per variant, made on first use: the name is one of
    /// a few fixed strings, so every call shares one instead of allocating.
    static TYPE_NAMES: RefCell<[Option<HStr>; TYPE_SLOTS]> = const { RefCell::new([const { None }; TYPE_SLOTS]) };
}

fn type_slot(v: &Value) -> Option<usize> {
    Some(match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::Duration(_) => 4,
        Value::Str(_) => 5,
        Value::Bytes(_) => 6,
        Value::List(_) => 7,
        Value::Dict(_) => 8,
        Value::Set(_) => 9,
        Value::Range(_) => 10,
        Value::Pair(_) => 11,
        Value::Enum(_) => 12,
        Value::Struct(_) => 13,
        Value::Closure(_) => 14,
        Value::Builtin(_) => 15,
        Value::Object(_) => return None,
    })
}

/// `v.type_name()` as a shared string.
pub(crate) fn type_name_str(v: &Value) -> HStr {
    let Some(slot) = type_slot(v) else {
        return interned(v.type_name());
    };
    TYPE_NAMES.with(|names| Rc::clone(names.borrow_mut()[slot].get_or_insert_with(|| Rc::new(v.type_name().to_string()))))
}

fn type_of(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    Ok(Flow::Done(Value::Str(type_name_str(arg(args, 0)))))
}

fn len(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let n = match arg(args, 0) {
        Value::Str(s) => s.chars().count() as i64,
        Value::Bytes(b) => b.len() as i64,
        Value::List(l) | Value::Set(l) => l.len() as i64,
        Value::Dict(d) => d.len() as i64,
        Value::Range(r) => r.len(),
        _ => 0,
    };
    Ok(Flow::Done(Value::Int(n)))
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::value::{Object, Value};

    fn type_of(v: Value) -> Value {
        run_builtin("type_of", &[v], &no_callback).expect("type_of never fails")
    }

    #[test]
    fn type_of_names_every_kind() {
        let cases = [
            (Value::Nil, "nil"),
            (Value::Bool(true), "bool"),
            (Value::Int(1), "int"),
            (Value::Float(1.5), "float"),
            (Value::Duration(5), "duration"),
            (Value::str("x"), "string"),
            (Value::Bytes(Rc::new(vec![1])), "bytes"),
            (Value::list(vec![]), "list"),
            (Value::dict_from([]), "dict"),
            (Value::set_from([Value::Int(1)]), "set"),
            (Value::range(0, 3, false), "range"),
            (Value::pair(Value::Nil, Value::Nil), "pair"),
            (Value::ok(Value::Nil), "enum"),
            (Value::Builtin(0), "builtin"),
            (Value::Object(Rc::new(Object::Cell(Default::default()))), "cell"),
        ];
        for (value, name) in cases {
            let expected = value.type_name();
            assert_eq!(expected, name);
            assert_eq!(type_of(value).as_str(), Some(name));
        }
    }

    #[test]
    fn type_of_shares_one_string_per_name() {
        let name = |v: Value| match &type_of(v) {
            Value::Str(s) => s.clone(),
            other => panic!("type_of gave {other:?}"),
        };
        let (a, b) = (name(Value::Int(1)), name(Value::Int(2)));
        assert!(Rc::ptr_eq(&a, &b), "the same name is not allocated twice");
        assert_eq!(a.as_str(), "int");
        let cell = || Value::Object(Rc::new(Object::Cell(Default::default())));
        assert!(Rc::ptr_eq(&name(cell()), &name(cell())), "object type names are shared too");
        assert!(!Rc::ptr_eq(&a, &name(Value::Float(1.0))));
    }
}
