//! Math builtins.
//!
//! Ints stay ints where the operation is exact (`abs`, `min`, `max`, `sign`,
//! `pow` when the result fits); rounding (`floor`, `ceil`, `round`) turns
//! floats into ints; everything transcendental returns a float. A non-number
//! argument throws `<name>: expected a number, got <type>`.
//!
//! `pi` and `e` are global names in Harn, not calls; they are exposed as the
//! zero-argument builtins `__const_pi` / `__const_e` for the compiler to call
//! when it resolves those names.

use super::args::{done, expected, int_arg, number_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "abs", imp: Native(abs) },
    BuiltinDef { name: "min", imp: Native(min) },
    BuiltinDef { name: "max", imp: Native(max) },
    BuiltinDef { name: "floor", imp: Native(floor) },
    BuiltinDef { name: "ceil", imp: Native(ceil) },
    BuiltinDef { name: "round", imp: Native(round) },
    BuiltinDef { name: "sqrt", imp: Native(sqrt) },
    BuiltinDef { name: "pow", imp: Native(pow) },
    BuiltinDef { name: "sin", imp: Native(sin) },
    BuiltinDef { name: "cos", imp: Native(cos) },
    BuiltinDef { name: "tan", imp: Native(tan) },
    BuiltinDef { name: "asin", imp: Native(asin) },
    BuiltinDef { name: "acos", imp: Native(acos) },
    BuiltinDef { name: "atan", imp: Native(atan) },
    BuiltinDef { name: "atan2", imp: Native(atan2) },
    BuiltinDef { name: "exp", imp: Native(exp) },
    BuiltinDef { name: "ln", imp: Native(ln) },
    BuiltinDef { name: "log2", imp: Native(log2) },
    BuiltinDef { name: "log10", imp: Native(log10) },
    BuiltinDef { name: "sign", imp: Native(sign) },
    BuiltinDef { name: "is_nan", imp: Native(is_nan) },
    BuiltinDef { name: "is_infinite", imp: Native(is_infinite) },
    BuiltinDef { name: "mean", imp: Native(mean) },
    BuiltinDef { name: "median", imp: Native(median) },
    BuiltinDef { name: "percentile", imp: Native(percentile) },
    BuiltinDef { name: "variance", imp: Native(variance) },
    BuiltinDef { name: "stddev", imp: Native(stddev) },
    BuiltinDef { name: "__const_pi", imp: Native(const_pi) },
    BuiltinDef { name: "__const_e", imp: Native(const_e) },
];

fn abs(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match arg(args, 0) {
        // |i64::MIN| does not fit an int; the reference answers with a float.
        Value::Int(i64::MIN) => done(Value::Float(-(i64::MIN as f64))),
        Value::Int(n) => done(Value::Int(n.abs())),
        Value::Float(f) => done(Value::Float(f.abs())),
        other if other.as_decimal().is_some() => Err(no_decimal("abs")),
        other => Err(expected("abs", "a number", other)),
    }
}

/// `min(a, b)` / `max(a, b)`: int when both are ints, else float.
fn min_max(args: &[Value], name: &str, pick_max: bool) -> VmResult<Flow> {
    match (arg(args, 0), arg(args, 1)) {
        // Decimals pick among decimals (the first on a tie); with anything else the answer is nil, as in 0.9.11.
        (a, b) if a.as_decimal().is_some() || b.as_decimal().is_some() => done(match (a.as_decimal(), b.as_decimal()) {
            (Some(x), Some(y)) if (if pick_max { y > x } else { y < x }) => b.clone(),
            (Some(_), Some(_)) => a.clone(),
            _ => Value::Nil,
        }),
        (Value::Int(a), Value::Int(b)) => done(Value::Int(if pick_max { *a.max(b) } else { *a.min(b) })),
        _ => {
            let (a, b) = (number_arg(args, 0, name)?, number_arg(args, 1, name)?);
            done(Value::Float(if pick_max { a.max(b) } else { a.min(b) }))
        }
    }
}

fn min(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    min_max(args, "min", false)
}

fn max(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    min_max(args, "max", true)
}

/// 0.9.11's error for a decimal passed to `abs`/`floor`/`ceil`, which take
/// only ints and floats there (other non-numbers keep the older text).
fn no_decimal(name: &str) -> VmError {
    VmError::type_error(format!("'{name}' parameter `value` expects int | float, got decimal"))
}

/// A float that must become an int: errors when not finite or out of range.
fn float_to_int(f: f64, name: &str) -> VmResult<i64> {
    if !f.is_finite() {
        return Err(VmError::throw_msg(format!("{name}: cannot convert {f} to int")));
    }
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
        return Err(VmError::throw_msg(format!("{name}: {f} is outside the int range")));
    }
    Ok(f as i64)
}

/// floor / ceil / 1-argument round: ints pass through, floats become ints.
fn to_integral(args: &[Value], name: &str, op: fn(f64) -> f64) -> VmResult<Flow> {
    match arg(args, 0) {
        Value::Int(n) => done(Value::Int(*n)),
        Value::Float(f) => done(Value::Int(float_to_int(op(*f), name)?)),
        other if other.as_decimal().is_some() => Err(no_decimal(name)),
        other => Err(expected(name, "a number", other)),
    }
}

fn floor(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    to_integral(args, "floor", f64::floor)
}

fn ceil(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    to_integral(args, "ceil", f64::ceil)
}

/// `round(x)` → int (halves away from zero); `round(x, digits)` keeps the
/// type and rounds to `digits` decimal places (negative digits round to tens,
/// hundreds, ...).
fn round(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if let Some(d) = arg(args, 0).as_decimal() {
        return round_decimal(d, args);
    }
    if arg(args, 1).is_nil() {
        return to_integral(args, "round", f64::round);
    }
    let digits = int_arg(args, 1, "round")?;
    match arg(args, 0) {
        Value::Float(f) => done(Value::Float(round_to_digits(*f, digits))),
        Value::Int(n) if digits >= 0 => done(Value::Int(*n)),
        Value::Int(n) => {
            let rounded = round_to_digits(*n as f64, digits);
            done(float_to_int(rounded, "round").map_or(Value::Float(rounded), Value::Int))
        }
        other => Err(expected("round", "a number", other)),
    }
}

/// `round(decimal[, digits])` stays a decimal: halves to even (rust_decimal's
/// banker's rounding, as 0.9.11), never adding places (`round(1.50, 5)` is
/// `1.50`); negative digits round to tens, hundreds, ... (`1234.5, -2` → `1200`).
fn round_decimal(d: rust_decimal::Decimal, args: &[Value]) -> VmResult<Flow> {
    use rust_decimal::{Decimal, RoundingStrategy::MidpointNearestEven};
    let digits = if arg(args, 1).is_nil() { 0 } else { int_arg(args, 1, "round")? };
    if digits >= 0 {
        return done(Value::decimal(d.round_dp_with_strategy(u32::try_from(digits).unwrap_or(u32::MAX), MidpointNearestEven)));
    }
    // 10^k overflows a decimal past k = 28, where every decimal rounds to 0.
    let unit =
        u32::try_from(-digits).ok().filter(|k| *k <= 28).and_then(|k| Decimal::try_from_i128_with_scale(10i128.pow(k), 0).ok());
    let Some(unit) = unit else { return done(Value::decimal(Decimal::ZERO)) };
    let rounded = (d / unit).round_dp_with_strategy(0, MidpointNearestEven).checked_mul(unit);
    rounded.map_or_else(|| Err(VmError::runtime("decimal multiplication overflowed")), |r| done(Value::decimal(r)))
}

fn round_to_digits(x: f64, digits: i64) -> f64 {
    if !x.is_finite() || digits > 308 {
        return x;
    }
    if digits < -308 {
        return 0.0;
    }
    let factor = 10f64.powi(digits as i32);
    let scaled = x * factor;
    if scaled.is_finite() {
        scaled.round() / factor
    } else {
        x
    }
}

fn sqrt(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Float(number_arg(args, 0, "sqrt")?.sqrt()))
}

/// `pow(a, b)`: an int when both are ints, the exponent is non-negative and
/// the result fits; a float otherwise.
fn pow(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if let (Value::Int(base), Value::Int(exp)) = (arg(args, 0), arg(args, 1)) {
        if let Some(v) = u32::try_from(*exp).ok().and_then(|e| base.checked_pow(e)) {
            return done(Value::Int(v));
        }
    }
    let (base, exp) = (number_arg(args, 0, "pow")?, number_arg(args, 1, "pow")?);
    done(Value::Float(base.powf(exp)))
}

/// A float function of one number.
fn unary(args: &[Value], name: &str, f: fn(f64) -> f64) -> VmResult<Flow> {
    done(Value::Float(f(number_arg(args, 0, name)?)))
}

fn sin(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "sin", f64::sin)
}
fn cos(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "cos", f64::cos)
}
fn tan(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "tan", f64::tan)
}
fn asin(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "asin", f64::asin)
}
fn acos(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "acos", f64::acos)
}
fn atan(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "atan", f64::atan)
}
fn exp(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "exp", f64::exp)
}
fn ln(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "ln", f64::ln)
}
fn log2(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "log2", f64::log2)
}
fn log10(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    unary(args, "log10", f64::log10)
}

fn atan2(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (y, x) = (number_arg(args, 0, "atan2")?, number_arg(args, 1, "atan2")?);
    done(Value::Float(y.atan2(x)))
}

/// -1, 0 or 1 as an int (NaN stays NaN).
fn sign(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    match arg(args, 0) {
        Value::Int(n) => done(Value::Int(n.signum())),
        Value::Float(f) if f.is_nan() => done(Value::Float(f64::NAN)),
        Value::Float(f) => done(Value::Int(if *f > 0.0 {
            1
        } else if *f < 0.0 {
            -1
        } else {
            0
        })),
        other => Err(expected("sign", "a number", other)),
    }
}

/// False for anything that is not a NaN float.
fn is_nan(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(matches!(arg(args, 0), Value::Float(f) if f.is_nan())))
}

fn is_infinite(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Bool(matches!(arg(args, 0), Value::Float(f) if f.is_infinite())))
}

// ---------------------------------------------------------------------------
// Statistics over a list of numbers (`import "std/math"` shadows these with
// its own Harn versions).

/// The numbers of list argument 0; `non_empty` rejects an empty list.
fn numbers(args: &[Value], name: &str, non_empty: bool) -> VmResult<Vec<f64>> {
    let items = super::args::list_arg(args, 0, name)?;
    let values =
        items.iter().map(|v| v.as_f64().ok_or_else(|| expected(name, "a list of numbers", v))).collect::<VmResult<Vec<f64>>>()?;
    if non_empty && values.is_empty() {
        return Err(VmError::throw_msg(format!("{name}: items must not be empty")));
    }
    Ok(values)
}

fn sorted_numbers(args: &[Value], name: &str) -> VmResult<Vec<f64>> {
    let mut values = numbers(args, name, true)?;
    values.sort_by(f64::total_cmp);
    Ok(values)
}

/// Arithmetic mean; 0.0 for an empty list.
fn mean(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let values = numbers(args, "mean", false)?;
    done(Value::Float(if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }))
}

fn median(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let values = sorted_numbers(args, "median")?;
    let mid = values.len() / 2;
    done(Value::Float(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }))
}

/// `percentile(items, p)` with p in 0..=100, linearly interpolated between ranks.
fn percentile(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let values = sorted_numbers(args, "percentile")?;
    let p = number_arg(args, 1, "percentile")?;
    if !(0.0..=100.0).contains(&p) {
        return Err(VmError::throw_msg("percentile: p must be between 0 and 100"));
    }
    let rank = (values.len() - 1) as f64 * p / 100.0;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    done(Value::Float(values[lo] + (rank - lo as f64) * (values[hi] - values[lo])))
}

/// Population variance, or the sample variance when argument 1 is truthy.
fn variance_of(args: &[Value], name: &str) -> VmResult<f64> {
    let values = numbers(args, name, true)?;
    let sample = arg(args, 1).is_truthy();
    if sample && values.len() < 2 {
        return Err(VmError::throw_msg(format!("{name}: a sample needs at least 2 values")));
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    Ok(squares / if sample { n - 1.0 } else { n })
}

fn variance(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Float(variance_of(args, "variance")?))
}

fn stddev(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::Float(variance_of(args, "stddev")?.sqrt()))
}

fn const_pi(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::Float(std::f64::consts::PI))
}

fn const_e(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::Float(std::f64::consts::E))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use crate::runtime::value::Value;

    /// `type:display` of the result, or the error message.
    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| format!("{}:{}", v.type_name(), v.display()))
    }

    #[test]
    fn integral_results() {
        assert_eq!(call("abs", &[Value::Int(-3)]), Ok("int:3".into()));
        assert_eq!(call("abs", &[Value::Int(i64::MIN)]), Ok("float:9223372036854776000".into()));
        assert_eq!(call("floor", &[Value::Float(-2.5)]), Ok("int:-3".into()));
        assert_eq!(call("ceil", &[Value::Float(2.1)]), Ok("int:3".into()));
        assert_eq!(call("round", &[Value::Float(2.5)]), Ok("int:3".into()));
        assert_eq!(call("round", &[Value::Float(-2.5)]), Ok("int:-3".into()));
        assert_eq!(call("round", &[Value::Float(2.567), Value::Int(2)]), Ok("float:2.57".into()));
        assert_eq!(call("round", &[Value::Int(1250), Value::Int(-2)]), Ok("int:1300".into()));
        assert_eq!(call("min", &[Value::Int(2), Value::Int(5)]), Ok("int:2".into()));
        assert_eq!(call("max", &[Value::Int(2), Value::Float(5.5)]), Ok("float:5.5".into()));
        assert_eq!(call("pow", &[Value::Int(5), Value::Int(2)]), Ok("int:25".into()));
        assert_eq!(call("pow", &[Value::Int(2), Value::Int(-1)]), Ok("float:0.5".into()));
        assert_eq!(call("pow", &[Value::Int(2), Value::Int(64)]), Ok("float:18446744073709552000".into()));
        assert_eq!(call("sign", &[Value::Float(-2.5)]), Ok("int:-1".into()));
        assert_eq!(call("sign", &[Value::Int(0)]), Ok("int:0".into()));
    }

    #[test]
    fn float_results() {
        assert_eq!(call("sqrt", &[Value::Int(16)]), Ok("float:4.0".into()));
        assert_eq!(call("sin", &[Value::Int(0)]), Ok("float:0.0".into()));
        assert_eq!(call("log2", &[Value::Int(8)]), Ok("float:3.0".into()));
        assert_eq!(call("log10", &[Value::Int(100)]), Ok("float:2.0".into()));
        assert_eq!(call("exp", &[Value::Int(0)]), Ok("float:1.0".into()));
        assert_eq!(call("is_nan", &[Value::Float(f64::NAN)]), Ok("bool:true".into()));
        assert_eq!(call("is_nan", &[Value::str("x")]), Ok("bool:false".into()));
        assert_eq!(call("is_infinite", &[Value::Float(f64::INFINITY)]), Ok("bool:true".into()));
        assert!(call("__const_pi", &[]).unwrap().starts_with("float:3.14159"));
        assert!(call("__const_e", &[]).unwrap().starts_with("float:2.718"));
    }

    #[test]
    fn statistics() {
        let list = |xs: &[f64]| Value::list(xs.iter().map(|x| Value::Float(*x)).collect());
        assert_eq!(call("mean", &[list(&[2.0, 4.0, 6.0])]), Ok("float:4.0".into()));
        assert_eq!(call("mean", &[list(&[])]), Ok("float:0.0".into()));
        assert_eq!(call("median", &[list(&[7.0, 1.0, 5.0])]), Ok("float:5.0".into()));
        assert_eq!(call("median", &[list(&[4.0, 1.0, 3.0, 2.0])]), Ok("float:2.5".into()));
        assert_eq!(call("percentile", &[list(&[1.0, 2.0, 3.0, 4.0]), Value::Int(50)]), Ok("float:2.5".into()));
        assert_eq!(call("percentile", &[list(&[1.0, 2.0, 3.0]), Value::Int(100)]), Ok("float:3.0".into()));
        assert_eq!(call("variance", &[list(&[1.0, 2.0, 3.0, 4.0])]), Ok("float:1.25".into()));
        assert_eq!(call("stddev", &[list(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])]), Ok("float:2.0".into()));
        assert_eq!(call("median", &[list(&[])]), Err("Thrown: median: items must not be empty".into()));
        assert_eq!(
            call("variance", &[list(&[1.0]), Value::Bool(true)]),
            Err("Thrown: variance: a sample needs at least 2 values".into())
        );
        assert_eq!(
            call("percentile", &[list(&[1.0]), Value::Int(101)]),
            Err("Thrown: percentile: p must be between 0 and 100".into())
        );
        assert_eq!(
            call("mean", &[Value::list(vec![Value::str("x")])]),
            Err("Thrown: mean: expected a list of numbers, got string".into())
        );
    }

    #[test]
    fn argument_errors_are_thrown_strings() {
        assert_eq!(call("abs", &[Value::str("x")]), Err("Thrown: abs: expected a number, got string".into()));
        assert_eq!(call("sqrt", &[]), Err("Thrown: sqrt: expected a number, got nil".into()));
        assert_eq!(call("atan2", &[Value::Int(1)]), Err("Thrown: atan2: expected a number, got nil".into()));
        assert_eq!(call("floor", &[Value::Float(f64::INFINITY)]), Err("Thrown: floor: cannot convert inf to int".into()));
        assert_eq!(call("round", &[Value::Int(1), Value::str("2")]), Err("Thrown: round: expected an int, got string".into()));
    }
}
