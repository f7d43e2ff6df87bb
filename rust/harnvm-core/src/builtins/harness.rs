//! Methods of the `harness` handle (harn 0.9's `fn main(harness: Harness)`).
//!
//! The pure slices are implemented on top of the existing builtins, so the
//! handle and the free functions agree: `stdio` writes to the program's
//! output (stderr for `eprint*`), `clock` reads the VM clock (the
//! scheduler's, virtual under a mocked clock), `random` draws from the
//! builtin RNG, `crypto` hashes. Host slices (`fs`, `env`, `net`,
//! `process`, `system`, `llm`) fail with a capability error: harnvm has no
//! host capability layer yet.

use std::io::{BufRead, Write};

use crate::builtins::args::done;
use crate::builtins::{builtin_id, call_builtin, CallArgs, Continuation, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::harness::{Handle, HarnessKind};
use crate::runtime::value::{arg, Value};

use super::BuiltinDef;
use super::BuiltinImpl::Native;

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "__harness", imp: Native(new_root) },
    // harn 0.9.11's names for the bare printers (0.9 rejects bare `println`),
    // so programs written for it run here too.
    BuiltinDef { name: "__io_println", imp: Native(io_println) },
    BuiltinDef { name: "__io_print", imp: Native(io_print) },
];

fn io_println(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    stdio(ctx, "println", args).unwrap_or_else(|| done(Value::Nil))
}

fn io_print(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    stdio(ctx, "print", args).unwrap_or_else(|| done(Value::Nil))
}

/// A fresh root handle; `clock_ms` is the VM clock now, so that the wall
/// clock the handle reports starts at the real time.
pub fn root_handle(clock_ms: f64) -> Value {
    let wall_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    crate::runtime::harness::handle_value(Handle { kind: HarnessKind::Root, epoch_origin_ms: wall_ms - clock_ms })
}

/// `handle.name(args)`.
pub fn call(ctx: &mut Ctx, handle: Handle, name: &str, args: &[Value]) -> VmResult<Flow> {
    if handle.kind.is_host() {
        return Err(VmError::runtime(format!(
            "harness.{}.{name}: the `{}` capability is not available: harnvm has no host capability layer",
            handle.kind.field_name(),
            handle.kind.field_name()
        )));
    }
    match handle.kind {
        HarnessKind::Stdio => stdio(ctx, name, args),
        HarnessKind::Clock => clock(handle, name, args),
        HarnessKind::Random => random(ctx, name, args),
        HarnessKind::Crypto => crypto(ctx, name, args),
        _ => None,
    }
    .unwrap_or_else(|| Err(no_method(handle, name)))
}

fn no_method(handle: Handle, name: &str) -> VmError {
    VmError::type_error(format!("value of type {} has no method `{name}`", handle.kind.type_name()))
}

/// Runs builtin `name` (always present: the table is static).
fn builtin(ctx: &mut Ctx, name: &str, args: &[Value]) -> VmResult<Flow> {
    match builtin_id(name) {
        Some(id) => call_builtin(ctx, id, args),
        None => Err(VmError::runtime(format!("harness: builtin {name} is missing"))),
    }
}

/// Only the first argument is written, as on harn 0.9.11.
fn stdio(ctx: &mut Ctx, name: &str, args: &[Value]) -> Option<VmResult<Flow>> {
    let text = || args.first().map(Value::display).unwrap_or_default();
    let to_stderr = |s: String| {
        // Counted against the output budget like stdout.
        crate::runtime::budget::charge_output(s.len())?;
        // A closed stderr is not the program's failure.
        let _ = std::io::stderr().write_all(s.as_bytes());
        done(Value::Nil)
    };
    if matches!(name, "print" | "println" | "eprint" | "eprintln" | "prompt") {
        if let Some(Err(e)) = args.first().map(crate::runtime::budget::check_display_output) {
            return Some(Err(e));
        }
    }
    Some(match name {
        "print" => ctx.write_output(&text()).and_then(|_| done(Value::Nil)),
        "println" => ctx.write_output(&text()).and_then(|_| ctx.write_output("\n")).and_then(|_| done(Value::Nil)),
        "eprint" => to_stderr(text()),
        "eprintln" => to_stderr(text() + "\n"),
        "read_line" | "prompt" => {
            if name == "prompt" {
                if let Err(e) = ctx.write_output(&text()) {
                    return Some(Err(e));
                }
            }
            let mut line = String::new();
            match std::io::stdin().lock().read_line(&mut line) {
                Ok(0) | Err(_) => done(Value::Nil),
                Ok(_) => {
                    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
                    done(Value::str(trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()))
                }
            }
        }
        _ => return None,
    })
}

/// What a clock method makes of the VM clock reading (ms since start).
#[derive(Clone, Copy)]
enum ClockRead {
    NowMs,
    Monotonic,
    Timestamp,
}

struct ClockThen {
    read: ClockRead,
    epoch_origin_ms: f64,
}

impl Continuation for ClockThen {
    fn resume(self: Box<Self>, _: &mut Ctx, result: Value) -> VmResult<Flow> {
        let clock_ms = result.as_f64().unwrap_or(0.0);
        done(match self.read {
            ClockRead::NowMs => Value::Int((self.epoch_origin_ms + clock_ms).floor() as i64),
            ClockRead::Monotonic => Value::Int(clock_ms.floor() as i64),
            // Seconds with millisecond precision, as harn prints them.
            ClockRead::Timestamp => Value::Float(((self.epoch_origin_ms + clock_ms).floor()) / 1000.0),
        })
    }
}

/// The VM clock lives in the scheduler: ask it through its builtins.
fn clock(handle: Handle, name: &str, args: &[Value]) -> Option<VmResult<Flow>> {
    let read = match name {
        "now_ms" => ClockRead::NowMs,
        "monotonic_ms" | "elapsed" => ClockRead::Monotonic,
        "timestamp" => ClockRead::Timestamp,
        "sleep_ms" => {
            return Some(match arg(args, 0) {
                v @ (Value::Int(_) | Value::Duration(_)) => sched_call("sleep", vec![v.clone()], None),
                _ => Err(VmError::type_error("HarnessClock.sleep_ms expects an int or duration argument")),
            })
        }
        _ => return None,
    };
    Some(sched_call("__clock_ms", Vec::new(), Some(ClockThen { read, epoch_origin_ms: handle.epoch_origin_ms })))
}

fn sched_call(name: &str, args: Vec<Value>, then: Option<ClockThen>) -> VmResult<Flow> {
    let id = builtin_id(name).ok_or_else(|| VmError::runtime(format!("harness: builtin {name} is missing")))?;
    let args: CallArgs = args.into_iter().collect();
    Ok(match then {
        Some(then) => Flow::Call { callee: Value::Builtin(id), args, then: Box::new(then) },
        None => Flow::Call { callee: Value::Builtin(id), args, then: Box::new(Nothing) },
    })
}

/// Discards the callee's result (`sleep_ms` answers nil).
struct Nothing;

impl Continuation for Nothing {
    fn resume(self: Box<Self>, _: &mut Ctx, _: Value) -> VmResult<Flow> {
        done(Value::Nil)
    }
}

fn random(ctx: &mut Ctx, name: &str, args: &[Value]) -> Option<VmResult<Flow>> {
    Some(match name {
        "random" | "gen_f64" | "f64" => builtin(ctx, "random", &[]),
        // Any 64-bit pattern: the full int range is exactly 2^64 values.
        "gen_u64" | "u64" => builtin(ctx, "random_int", &[Value::Int(i64::MIN), Value::Int(i64::MAX)]),
        "gen_range" | "int" | "random_int" | "range" => match (arg(args, 0), arg(args, 1)) {
            (Value::Int(lo), Value::Int(hi)) if lo > hi => done(Value::Nil),
            (Value::Int(_), Value::Int(_)) => builtin(ctx, "random_int", &args[..2]),
            (Value::Int(_), _) => Err(VmError::type_error("HarnessRandom.gen_range expects an integer max argument")),
            _ => Err(VmError::type_error("HarnessRandom.gen_range expects an integer min argument")),
        },
        "choice" | "shuffle" => match arg(args, 0) {
            list @ Value::List(_) => {
                builtin(ctx, if name == "choice" { "random_choice" } else { "random_shuffle" }, std::slice::from_ref(list))
            }
            _ => done(Value::Nil),
        },
        _ => return None,
    })
}

fn crypto(ctx: &mut Ctx, name: &str, args: &[Value]) -> Option<VmResult<Flow>> {
    Some(match name {
        // Non-text input is hashed as its display text (harn 0.9.11 does the same).
        "sha256" => match arg(args, 0) {
            v @ (Value::Str(_) | Value::Bytes(_)) => builtin(ctx, "sha256", std::slice::from_ref(v)),
            Value::Nil if args.is_empty() => builtin(ctx, "sha256", &[Value::str(String::new())]),
            other => builtin(ctx, "sha256", &[Value::str(other.display())]),
        },
        _ => return None,
    })
}

/// `__harness()`: the root handle, built by the compiled entry of
/// `fn main(harness: Harness)` (its argument is the VM clock reading).
pub(super) fn new_root(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(root_handle(arg(args, 0).as_f64().unwrap_or(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::callback::test_driver::TEST_LIMITS;
    use crate::runtime::harness::{handle_of, property};

    fn sub(kind: &str) -> Handle {
        let root = handle_of(&root_handle(0.0)).unwrap();
        handle_of(&property(root, kind, false).unwrap()).unwrap()
    }

    fn run(handle: Handle, name: &str, args: &[Value]) -> (Result<Value, String>, String) {
        let mut output = String::new();
        let mut ctx = Ctx { output: &mut output, limits: &TEST_LIMITS };
        let r = match call(&mut ctx, handle, name, args) {
            Ok(Flow::Done(v)) => Ok(v),
            Ok(Flow::Call { .. }) => Ok(Value::str("<call>")),
            Err(e) => Err(e.message()),
        };
        (r, output)
    }

    #[test]
    fn stdio_writes_the_first_argument() {
        let (r, out) = run(sub("stdio"), "println", &[Value::Int(1), Value::Int(2)]);
        assert!(r.unwrap().is_nil());
        assert_eq!(out, "1\n");
        assert_eq!(run(sub("stdio"), "print", &[]).1, "");
        assert_eq!(run(sub("stdio"), "println", &[]).1, "\n");
    }

    #[test]
    fn unknown_methods_and_host_slices_fail() {
        assert_eq!(run(sub("stdio"), "foo", &[]).0.unwrap_err(), "Type error: value of type HarnessStdio has no method `foo`");
        let root = handle_of(&root_handle(0.0)).unwrap();
        assert_eq!(run(root, "foo", &[]).0.unwrap_err(), "Type error: value of type Harness has no method `foo`");
        let e = run(sub("fs"), "read_text", &[Value::str("x".to_string())]).0.unwrap_err();
        assert!(e.contains("capability is not available"), "{e}");
    }

    #[test]
    fn random_and_crypto() {
        for _ in 0..50 {
            let v = run(sub("random"), "gen_range", &[Value::Int(1), Value::Int(3)]).0.unwrap().as_int().unwrap();
            assert!((1..=3).contains(&v));
        }
        assert!(run(sub("random"), "gen_range", &[Value::Int(3), Value::Int(1)]).0.unwrap().is_nil());
        assert!(run(sub("random"), "gen_range", &[Value::Float(1.0), Value::Int(1)]).0.unwrap_err().contains("integer min"));
        assert!(run(sub("random"), "choice", &[Value::list(vec![])]).0.unwrap().is_nil());
        let f = run(sub("random"), "f64", &[]).0.unwrap().as_f64().unwrap();
        assert!((0.0..1.0).contains(&f));
        let h = run(sub("crypto"), "sha256", &[Value::str("abc".to_string())]).0.unwrap();
        assert_eq!(h.display(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let h5 = run(sub("crypto"), "sha256", &[Value::Int(5)]).0.unwrap();
        assert_eq!(h5.display(), run(sub("crypto"), "sha256", &[Value::str("5".to_string())]).0.unwrap().display());
    }

    #[test]
    fn clock_reads_go_through_the_scheduler() {
        assert_eq!(run(sub("clock"), "now_ms", &[]).0.unwrap().display(), "<call>");
        assert!(run(sub("clock"), "sleep_ms", &[]).0.unwrap_err().contains("int or duration"));
    }
}
