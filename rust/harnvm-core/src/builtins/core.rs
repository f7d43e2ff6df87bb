//! Output, assertions and type conversion builtins.

use super::{BuiltinDef, Ctx, Flow};
use crate::error::{VmError, VmResult};
use crate::value::{arg, values_equal, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "log", func: log },
    BuiltinDef { name: "print", func: print },
    BuiltinDef { name: "println", func: println },
    BuiltinDef { name: "assert", func: assert },
    BuiltinDef { name: "assert_eq", func: assert_eq },
    BuiltinDef { name: "assert_ne", func: assert_ne },
    BuiltinDef { name: "to_string", func: to_string },
    BuiltinDef { name: "type_of", func: type_of },
    BuiltinDef { name: "len", func: len },
];


fn first_display(args: &[Value]) -> String {
    args.first().map(|v| v.display()).unwrap_or_default()
}

fn log(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    ctx.output.push_str("[harn] ");
    ctx.output.push_str(&first_display(args));
    ctx.output.push('\n');
    Ok(Flow::Done(Value::Nil))
}

fn print(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    ctx.output.push_str(&first_display(args));
    Ok(Flow::Done(Value::Nil))
}

fn println(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    ctx.output.push_str(&first_display(args));
    ctx.output.push('\n');
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

fn to_string(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    Ok(Flow::Done(Value::str(arg(args, 0).display())))
}

fn type_of(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    Ok(Flow::Done(Value::str(arg(args, 0).type_name())))
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
