//! `decimal(value)`: the exact decimal number type of harn 0.9.11.
//!
//! A decimal is rust_decimal's 96-bit mantissa with a scale of 0..=28, so
//! it keeps trailing zeros (`decimal("1.50")` shows `1.50`) and arithmetic
//! follows that crate (`10 / 4` is `2.50`, overflow is an error). Strings
//! are trimmed and parsed as rust_decimal parses them (`1_000`, `1e3`,
//! `.5`; digits past the 28th decimal place are rounded); ints convert
//! exactly; floats keep their binary value (`decimal(0.1)` is
//! `0.1000000000000000055511151231`). Operators live in `runtime::ops`.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::args::done;
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[BuiltinDef { name: "decimal", imp: Native(decimal) }];

fn decimal(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let v = arg(args, 0);
    done(Value::decimal(match v {
        Value::Str(s) => Decimal::from_str(s.trim())
            .map_err(|_| VmError::throw_msg(format!("decimal: cannot parse {:?} as a decimal", s.as_str())))?,
        Value::Int(n) => Decimal::from(*n),
        // Rust's own float text (`1000000000000000000000000000000`, `NaN`, `inf`), as 0.9.11 prints it.
        Value::Float(f) => Decimal::from_f64_retain(*f)
            .ok_or_else(|| VmError::throw_msg(format!("decimal: cannot represent {f} as a decimal")))?,
        other => other.as_decimal().ok_or_else(|| {
            VmError::type_error(format!(
                "'decimal' parameter `value` expects string | int | float | decimal, got {}",
                other.type_name()
            ))
        })?,
    }))
}

/// A decimal from text that it holds exactly (plain or scientific
/// notation); None when it would round or overflow, or for NaN/infinity.
/// The Python binding converts `decimal.Decimal` arguments with this.
pub fn parse_exact(text: &str) -> Option<Value> {
    Decimal::from_str_exact(text).or_else(|_| Decimal::from_scientific(text)).ok().map(Value::decimal)
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::ops;
    use crate::runtime::value::{values_equal, Value};

    fn dec(text: &str) -> Value {
        run_builtin("decimal", &[Value::str(text)], &no_callback).expect("parses")
    }

    fn shown(r: Result<Value, String>) -> String {
        r.map(|v| v.display()).unwrap_or_else(|e| e)
    }

    fn shown_op(r: crate::runtime::error::VmResult<Value>) -> String {
        r.map(|v| v.display()).unwrap_or_else(|e| e.message())
    }

    #[test]
    fn construction_keeps_scale_and_binary_floats() {
        let call = |v: Value| shown(run_builtin("decimal", &[v], &no_callback));
        assert_eq!(call(Value::str(" 1.50\n")), "1.50");
        assert_eq!(call(Value::str("1e3")), "1000");
        assert_eq!(call(Value::str("1_000")), "1000");
        assert_eq!(call(Value::Float(0.1)), "0.1000000000000000055511151231");
        assert_eq!(call(Value::Float(-0.0)), "-0");
        assert_eq!(call(Value::Int(i64::MIN)), "-9223372036854775808");
        assert!(call(Value::str("abc")).ends_with("decimal: cannot parse \"abc\" as a decimal"));
        assert!(call(Value::Float(f64::NAN)).ends_with("decimal: cannot represent NaN as a decimal"));
        assert!(call(Value::Float(1e30)).ends_with("decimal: cannot represent 1000000000000000000000000000000 as a decimal"));
        assert!(call(Value::Bool(true)).ends_with("expects string | int | float | decimal, got bool"));
        assert_eq!(call(dec("2.5")), "2.5");
        assert_eq!(dec("1.5").type_name(), "decimal");
        assert_eq!(super::parse_exact("1E+3").map(|v| v.display()).as_deref(), Some("1000"));
        assert_eq!(super::parse_exact("-0.50").map(|v| v.display()).as_deref(), Some("-0.50"));
        assert!(super::parse_exact("0.00000000000000000000000000001").is_none());
        assert!(super::parse_exact("NaN").is_none());
    }

    #[test]
    fn arithmetic_mixes_with_ints_not_floats() {
        assert_eq!(shown_op(ops::div(&dec("10"), &Value::Int(4))), "2.50");
        assert_eq!(shown_op(ops::sub(&Value::Int(7), &dec("5"))), "2");
        assert_eq!(shown_op(ops::mul(&dec("1.10"), &dec("2.0"))), "2.200");
        assert_eq!(shown_op(ops::rem(&dec("-5.5"), &Value::Int(2))), "-1.5");
        assert_eq!(shown_op(ops::neg(&dec("0"))), "-0");
        assert_eq!(shown_op(ops::add(&dec("1.5"), &Value::Float(1.0))), "Type error: Cannot add decimal and float");
        assert_eq!(shown_op(ops::div(&dec("1"), &Value::Float(0.5))), "Runtime error: Cannot divide decimal by float");
        assert_eq!(shown_op(ops::div(&dec("1"), &dec("0.0"))), "Division by zero");
        let big = dec("50000000000000000000000000000");
        assert_eq!(shown_op(ops::add(&big, &big)), "Runtime error: decimal addition overflowed");
        assert_eq!(shown_op(ops::pow(&big, &Value::Int(2))), "Type error: Cannot exponentiate decimal by int");
    }

    #[test]
    fn equality_and_order() {
        use ops::BinaryOp::*;
        let limits = Default::default();
        let cmp = |op, a: &Value, b: &Value| ops::binary(op, a, b, &limits).expect("compares").display();
        assert!(values_equal(&dec("1.5"), &dec("1.50")));
        assert!(!values_equal(&dec("2"), &Value::Int(2)));
        assert_eq!(cmp(Lt, &dec("1.5"), &dec("2")), "true");
        assert_eq!(cmp(Le, &dec("2"), &dec("2.0")), "true");
        // A decimal and a number never order: every comparison is false.
        for op in [Lt, Gt, Le, Ge] {
            assert_eq!(cmp(op, &dec("2"), &Value::Int(2)), "false");
            assert_eq!(cmp(op, &Value::Float(2.0), &dec("2")), "false");
        }
        let call = |name: &str, args: &[Value]| shown(run_builtin(name, args, &no_callback));
        assert_eq!(call("max", &[dec("1.5"), dec("1.50")]), "1.5");
        assert_eq!(call("min", &[dec("2"), dec("1.25")]), "1.25");
        assert_eq!(call("max", &[dec("2"), Value::Int(1)]), "nil");
        assert_eq!(call("round", &[dec("2.5")]), "2");
        assert_eq!(call("round", &[dec("0.135"), Value::Int(2)]), "0.14");
        assert_eq!(call("round", &[dec("1.50"), Value::Int(5)]), "1.50");
        assert_eq!(call("round", &[dec("1234.5"), Value::Int(-2)]), "1200");
        assert!(!dec("0.00").is_truthy());
        assert!(dec("0.01").is_truthy());
    }
}
