//! Terminal colors, leveled logging, trace spans, timers and the seeded RNG.
//!
//! These builtins keep small per-thread settings (color mode, log level,
//! the open span stack, the RNG state). A Harn program runs on one thread,
//! so the settings are cheap `Cell`s, not shared locks. They belong to the
//! VM that runs: `enter_vm` resets them all whenever a different VM than
//! the last one starts running on the thread (nothing carries over from one
//! VM to the next), and `end_run` frees a run's trace spans.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::time::Instant;

use super::args::{done, expected, int_arg, list_arg, text_arg};
use super::BuiltinImpl::Native;
use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, DictMap, HStr, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "set_color_mode", imp: Native(set_color_mode) },
    BuiltinDef { name: "color", imp: Native(color) },
    BuiltinDef { name: "bold", imp: Native(bold) },
    BuiltinDef { name: "dim", imp: Native(dim) },
    BuiltinDef { name: "log_set_level", imp: Native(log_set_level) },
    BuiltinDef { name: "log_debug", imp: Native(log_debug) },
    BuiltinDef { name: "log_info", imp: Native(log_info) },
    BuiltinDef { name: "log_warn", imp: Native(log_warn) },
    BuiltinDef { name: "log_error", imp: Native(log_error) },
    BuiltinDef { name: "trace_start", imp: Native(trace_start) },
    BuiltinDef { name: "trace_end", imp: Native(trace_end) },
    BuiltinDef { name: "trace_id", imp: Native(trace_id) },
    BuiltinDef { name: "enable_tracing", imp: Native(enable_tracing) },
    BuiltinDef { name: "trace_spans", imp: Native(trace_spans) },
    BuiltinDef { name: "trace_summary", imp: Native(trace_summary) },
    BuiltinDef { name: "timer_start", imp: Native(timer_start) },
    BuiltinDef { name: "timer_end", imp: Native(timer_end) },
    BuiltinDef { name: "elapsed", imp: Native(elapsed) },
    BuiltinDef { name: "circuit_breaker", imp: Native(circuit_breaker) },
    BuiltinDef { name: "circuit_check", imp: Native(circuit_check) },
    BuiltinDef { name: "circuit_record_failure", imp: Native(circuit_record_failure) },
    BuiltinDef { name: "circuit_record_success", imp: Native(circuit_record_success) },
    BuiltinDef { name: "circuit_reset", imp: Native(circuit_reset) },
    BuiltinDef { name: "rng_seed", imp: Native(rng_seed) },
    BuiltinDef { name: "random", imp: Native(random) },
    BuiltinDef { name: "random_int", imp: Native(random_int) },
    BuiltinDef { name: "random_choice", imp: Native(random_choice) },
    BuiltinDef { name: "random_shuffle", imp: Native(random_shuffle) },
];

const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// A finished (or open) trace span.
#[derive(Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    start: Instant,
    duration_ms: Option<f64>,
}

thread_local! {
    /// `None` = "auto": the conformance runner and embedders are not TTYs, so plain.
    static COLOR_ALWAYS: Cell<Option<bool>> = const { Cell::new(None) };
    static LOG_LEVEL: Cell<usize> = const { Cell::new(1) };
    static OPEN_SPANS: RefCell<Vec<Span>> = const { RefCell::new(Vec::new()) };
    static TRACING: Cell<bool> = const { Cell::new(false) };
    static FINISHED_SPANS: RefCell<Vec<Span>> = const { RefCell::new(Vec::new()) };
    static CLOCK_ORIGIN: Cell<Option<Instant>> = const { Cell::new(None) };
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    /// Circuit breakers by name: (threshold, reset window, failures, opened at).
    static CIRCUITS: RefCell<Vec<(String, Circuit)>> = const { RefCell::new(Vec::new()) };
    static RNG: Cell<u64> = const { Cell::new(0x853c_49e6_748f_ea9b) };
}

thread_local! {
    /// The VM whose settings the thread-locals above hold (0: none yet).
    static OWNER: Cell<u64> = const { Cell::new(0) };
}

/// Called when VM `vm` starts (or resumes) running on this thread: if the
/// settings belong to another VM, that VM's are parked and `vm`'s own are
/// restored (a fresh VM's, with the RNG seeded from `seed`, the first time),
/// so two VMs interleaving on one thread never see each other's settings.
#[inline]
pub fn enter_vm(vm: u64, seed: u64) {
    if OWNER.with(Cell::get) != vm {
        switch_owner(vm, seed);
    }
}

/// Drops what VM `vm` parked here (called when the VM is dropped).
pub fn forget_vm(vm: u64) {
    if OWNER.with(Cell::get) == vm {
        OWNER.with(|o| o.set(0));
    }
    let _ = PARKED.try_with(|p| p.borrow_mut().remove(&vm));
}

/// The per-VM settings held in the thread-locals while that VM runs.
struct VmSettings {
    color_always: Option<bool>,
    log_level: usize,
    open_spans: Vec<Span>,
    tracing: bool,
    finished_spans: Vec<Span>,
    clock_origin: Option<Instant>,
    circuits: Vec<(String, Circuit)>,
    rng: u64,
}

impl VmSettings {
    fn fresh(seed: u64) -> Self {
        VmSettings {
            color_always: None,
            log_level: 1,
            open_spans: Vec::new(),
            tracing: false,
            finished_spans: Vec::new(),
            clock_origin: None,
            circuits: Vec::new(),
            rng: seed,
        }
    }

    fn take_current() -> Self {
        VmSettings {
            color_always: COLOR_ALWAYS.with(Cell::get),
            log_level: LOG_LEVEL.with(Cell::get),
            open_spans: OPEN_SPANS.with(|s| std::mem::take(&mut *s.borrow_mut())),
            tracing: TRACING.with(Cell::get),
            finished_spans: FINISHED_SPANS.with(|s| std::mem::take(&mut *s.borrow_mut())),
            clock_origin: CLOCK_ORIGIN.with(Cell::get),
            circuits: CIRCUITS.with(|c| std::mem::take(&mut *c.borrow_mut())),
            rng: RNG.with(Cell::get),
        }
    }

    fn install(self) {
        COLOR_ALWAYS.with(|c| c.set(self.color_always));
        LOG_LEVEL.with(|l| l.set(self.log_level));
        OPEN_SPANS.with(|s| *s.borrow_mut() = self.open_spans);
        TRACING.with(|t| t.set(self.tracing));
        FINISHED_SPANS.with(|s| *s.borrow_mut() = self.finished_spans);
        CLOCK_ORIGIN.with(|c| c.set(self.clock_origin));
        CIRCUITS.with(|c| *c.borrow_mut() = self.circuits);
        RNG.with(|r| r.set(self.rng));
    }
}

thread_local! {
    /// Settings of the VMs on this thread that are not running now, by VM id.
    static PARKED: RefCell<rustc_hash::FxHashMap<u64, VmSettings>> = RefCell::new(rustc_hash::FxHashMap::default());
}

#[cold]
fn switch_owner(vm: u64, seed: u64) {
    let previous = OWNER.with(Cell::get);
    let current = VmSettings::take_current();
    PARKED.with(|p| {
        let mut parked = p.borrow_mut();
        if previous != 0 {
            parked.insert(previous, current);
        }
        parked.remove(&vm).unwrap_or_else(|| VmSettings::fresh(seed)).install();
    });
    OWNER.with(|o| o.set(vm));
}

/// Frees what a finished run leaves behind: its trace spans (open ones
/// included). Cheap when there are none.
#[inline]
pub fn end_run() {
    OPEN_SPANS.with(|s| {
        if !s.borrow().is_empty() {
            *s.borrow_mut() = Vec::new();
        }
    });
    FINISHED_SPANS.with(|s| {
        if !s.borrow().is_empty() {
            *s.borrow_mut() = Vec::new();
        }
    });
}

/// A seed from the OS (for VMs created without one).
pub fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::getrandom(&mut bytes).is_err() {
        // No OS randomness: the clock is better than a constant.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        return t ^ 0x853c_49e6_748f_ea9b;
    }
    u64::from_le_bytes(bytes)
}

fn k(s: &str) -> HStr {
    std::rc::Rc::new(s.to_string())
}

fn set_color_mode(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let mode = match &*text_arg(args, 0) {
        "always" => Some(true),
        "never" => Some(false),
        "auto" => None,
        other => {
            return Err(VmError::throw_msg(format!(
                "set_color_mode: expected \"auto\", \"always\" or \"never\", got \"{other}\""
            )))
        }
    };
    COLOR_ALWAYS.with(|c| c.set(mode));
    done(Value::Nil)
}

fn styled(text: &str, code: &str) -> Value {
    if COLOR_ALWAYS.with(Cell::get) == Some(true) {
        Value::str(format!("\u{1b}[{code}m{text}\u{1b}[0m"))
    } else {
        Value::str(text)
    }
}

fn color(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let code = match &*text_arg(args, 1) {
        "black" => "30",
        "red" => "31",
        "green" => "32",
        "yellow" => "33",
        "blue" => "34",
        "magenta" => "35",
        "cyan" => "36",
        "white" => "37",
        "gray" | "grey" => "90",
        other => return Err(VmError::throw_msg(format!("color: unknown color '{other}'"))),
    };
    done(styled(&text_arg(args, 0), code))
}

fn bold(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(styled(&text_arg(args, 0), "1"))
}

fn dim(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(styled(&text_arg(args, 0), "2"))
}

fn log_set_level(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let level = text_arg(args, 0);
    let index = LEVELS
        .iter()
        .position(|l| *l == level.as_ref())
        .ok_or_else(|| VmError::throw_msg(format!("log_set_level: unknown level '{level}' (use debug, info, warn or error)")))?;
    LOG_LEVEL.with(|l| l.set(index));
    done(Value::Nil)
}

/// Writes one JSON log line when `level` passes the threshold.
fn emit_log(ctx: &mut Ctx, level: usize, args: &[Value]) -> VmResult<Flow> {
    if level < LOG_LEVEL.with(Cell::get) {
        return done(Value::Nil);
    }
    let mut record = DictMap::new();
    record.insert(k("level"), Value::str(LEVELS[level]));
    record.insert(k("message"), Value::str(text_arg(args, 0).into_owned()));
    record.insert(k("timestamp"), Value::str(chrono::Utc::now().to_rfc3339()));
    match arg(args, 1) {
        Value::Dict(fields) => {
            for (name, v) in fields.iter() {
                record.entry(name.clone()).or_insert_with(|| v.clone());
            }
        }
        Value::Nil => {}
        other => return Err(expected(&format!("log_{}", LEVELS[level]), "a dict of fields", other)),
    }
    ctx.write_output(&super::json::to_json(&Value::dict(record))?)?;
    ctx.write_output("\n")?;
    done(Value::Nil)
}

fn log_debug(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    emit_log(ctx, 0, args)
}
fn log_info(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    emit_log(ctx, 1, args)
}
fn log_warn(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    emit_log(ctx, 2, args)
}
fn log_error(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    emit_log(ctx, 3, args)
}

fn fresh_id(width: usize) -> String {
    let n = NEXT_ID.with(|c| {
        let n = c.get();
        c.set(n + 1);
        n
    });
    let mut bytes = [0u8; 16];
    let _ = getrandom::getrandom(&mut bytes);
    let mut out = String::new();
    for b in bytes.iter().take(width / 2) {
        let _ = write!(out, "{b:02x}");
    }
    // Mix in a counter so ids stay unique even without OS randomness.
    let suffix = format!("{n:x}");
    out.replace_range(out.len() - suffix.len().min(out.len()).., &suffix);
    out
}

fn span_value(s: &Span) -> Value {
    let mut d = DictMap::new();
    d.insert(k("name"), Value::str(s.name.as_str()));
    d.insert(k("trace_id"), Value::str(s.trace_id.as_str()));
    d.insert(k("span_id"), Value::str(s.span_id.as_str()));
    if let Some(ms) = s.duration_ms {
        d.insert(k("duration_ms"), Value::Float(ms));
    }
    Value::dict(d)
}

fn trace_start(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let trace = OPEN_SPANS.with(|s| s.borrow().last().map(|p| p.trace_id.clone())).unwrap_or_else(|| fresh_id(32));
    let span = Span {
        name: text_arg(args, 0).into_owned(),
        trace_id: trace,
        span_id: fresh_id(16),
        start: Instant::now(),
        duration_ms: None,
    };
    let v = span_value(&span);
    OPEN_SPANS.with(|s| s.borrow_mut().push(span));
    done(v)
}

fn trace_end(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let Value::Dict(d) = arg(args, 0) else {
        return Err(expected("trace_end", "a span from trace_start", arg(args, 0)));
    };
    let id = d.get(&k("span_id")).map(Value::display).unwrap_or_default();
    let span = OPEN_SPANS.with(|s| {
        let mut s = s.borrow_mut();
        s.iter().rposition(|x| x.span_id == id).map(|i| s.remove(i))
    });
    let Some(mut span) = span else { return done(Value::Nil) };
    let ms = span.start.elapsed().as_secs_f64() * 1000.0;
    span.duration_ms = Some(ms);
    if TRACING.with(Cell::get) {
        FINISHED_SPANS.with(|f| f.borrow_mut().push(span.clone()));
    }
    let fields = Value::dict_from([("span", Value::str(span.name.as_str())), ("duration_ms", Value::Float(ms))]);
    emit_log(ctx, 1, &[Value::str("span finished"), fields])?;
    done(Value::Float(ms))
}

fn trace_id(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(OPEN_SPANS.with(|s| s.borrow().last().map_or(Value::Nil, |p| Value::str(p.trace_id.as_str()))))
}

fn enable_tracing(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let on = !matches!(arg(args, 0), Value::Bool(false));
    TRACING.with(|t| t.set(on));
    if !on {
        FINISHED_SPANS.with(|f| f.borrow_mut().clear());
    }
    done(Value::Nil)
}

fn trace_spans(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    done(Value::list(FINISHED_SPANS.with(|f| f.borrow().iter().map(span_value).collect())))
}

fn trace_summary(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    let text = FINISHED_SPANS.with(|f| {
        let spans = f.borrow();
        let mut out = format!("{} span(s)", spans.len());
        for s in spans.iter() {
            let _ = write!(out, "\n  {}: {:.1}ms", s.name, s.duration_ms.unwrap_or(0.0));
        }
        out
    });
    done(Value::str(text))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn timer_start(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::dict_from([("name", Value::str(text_arg(args, 0).into_owned())), ("start_ms", Value::Int(now_ms()))]))
}

/// Prints `[timer] NAME: Nms` and returns the elapsed milliseconds.
fn timer_end(ctx: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let Value::Dict(d) = arg(args, 0) else {
        return Err(expected("timer_end", "a timer from timer_start", arg(args, 0)));
    };
    let start = d.get(&k("start_ms")).and_then(Value::as_int).unwrap_or_else(now_ms);
    let name = d.get(&k("name")).map(Value::display).unwrap_or_default();
    let ms = (now_ms() - start).max(0);
    let _ = writeln!(ctx.output, "[timer] {name}: {ms}ms");
    done(Value::Int(ms))
}

/// Milliseconds since the first call (monotonic).
fn elapsed(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    let origin = CLOCK_ORIGIN.with(|c| {
        let o = c.get().unwrap_or_else(Instant::now);
        c.set(Some(o));
        o
    });
    done(Value::Int(origin.elapsed().as_millis() as i64))
}

/// A named circuit breaker: opens after `threshold` consecutive failures and
/// lets one trial through (`half_open`) once `reset_ms` has passed.
#[derive(Clone)]
struct Circuit {
    threshold: i64,
    reset_ms: u128,
    failures: i64,
    opened_at: Option<Instant>,
}

fn with_circuit<T>(name: &str, builtin: &str, f: impl FnOnce(&mut Circuit) -> T) -> VmResult<T> {
    CIRCUITS.with(|c| {
        let mut circuits = c.borrow_mut();
        match circuits.iter_mut().find(|(n, _)| n == name) {
            Some((_, circuit)) => Ok(f(circuit)),
            None => Err(VmError::throw_msg(format!("{builtin}: no circuit breaker named '{name}'"))),
        }
    })
}

fn circuit_breaker(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let name = text_arg(args, 0).into_owned();
    let threshold = match arg(args, 1) {
        Value::Nil => 5,
        Value::Int(n) if *n >= 1 => *n,
        other => {
            return Err(VmError::throw_msg(format!("circuit_breaker: threshold must be a positive int, got {}", other.display())))
        }
    };
    let reset_ms = match arg(args, 2) {
        Value::Nil => 30_000,
        Value::Int(n) | Value::Duration(n) if *n >= 0 => *n as u128,
        other => {
            return Err(VmError::throw_msg(format!(
                "circuit_breaker: reset time must be a non-negative int, got {}",
                other.display()
            )))
        }
    };
    let circuit = Circuit { threshold, reset_ms, failures: 0, opened_at: None };
    CIRCUITS.with(|c| {
        let mut circuits = c.borrow_mut();
        circuits.retain(|(n, _)| *n != name);
        circuits.push((name.clone(), circuit));
    });
    done(Value::str(name))
}

fn circuit_state(c: &Circuit) -> &'static str {
    match c.opened_at {
        None => "closed",
        Some(at) if at.elapsed().as_millis() >= c.reset_ms => "half_open",
        Some(_) => "open",
    }
}

fn circuit_check(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    done(Value::str(with_circuit(&text_arg(args, 0), "circuit_check", |c| circuit_state(c))?))
}

/// Records a failure; true when the circuit is (now) open.
fn circuit_record_failure(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let open = with_circuit(&text_arg(args, 0), "circuit_record_failure", |c| {
        c.failures += 1;
        if c.failures >= c.threshold {
            c.opened_at = Some(Instant::now());
        }
        c.opened_at.is_some()
    })?;
    done(Value::Bool(open))
}

fn circuit_record_success(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    with_circuit(&text_arg(args, 0), "circuit_record_success", |c| {
        c.failures = 0;
        c.opened_at = None;
    })?;
    done(Value::Nil)
}

fn circuit_reset(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    with_circuit(&text_arg(args, 0), "circuit_reset", |c| {
        c.failures = 0;
        c.opened_at = None;
    })?;
    done(Value::Nil)
}

/// splitmix64: tiny, fast, and fully determined by the seed.
fn next_u64() -> u64 {
    RNG.with(|s| {
        let mut z = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// Uniform in `0..n` without modulo bias.
fn below(n: u64) -> u64 {
    let zone = u64::MAX - u64::MAX % n;
    loop {
        let x = next_u64();
        if x < zone {
            return x % n;
        }
    }
}

/// `rng_seed(n)`: a seeded `rng` value (see builtins/rng.rs); it also seeds
/// the thread's default generator, which the rng-less forms draw from.
fn rng_seed(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let seed = int_arg(args, 0, "rng_seed")?;
    RNG.with(|s| s.set(seed as u64));
    done(super::rng::new_rng(seed as u64))
}

/// An `rng` value given as the first argument: the rest of the arguments.
fn split_rng(args: &[Value]) -> (Option<&Value>, &[Value]) {
    match args.first() {
        Some(v @ Value::Object(_)) if super::rng::with_rng(v, |_| ()).is_some() => (Some(v), &args[1..]),
        _ => (None, args),
    }
}

fn random(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    if let (Some(rng), _) = split_rng(args) {
        return done(Value::Float(super::rng::with_rng(rng, |d| d.unit_f64()).unwrap_or(0.0)));
    }
    done(Value::Float((next_u64() >> 11) as f64 / (1u64 << 53) as f64))
}

/// `random_int(rng?, lo, hi)`: inclusive of both ends.
fn random_int(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (rng, args) = split_rng(args);
    let lo = int_arg(args, 0, "random_int")?;
    let hi = int_arg(args, 1, "random_int")?;
    if hi < lo {
        return Err(VmError::throw_msg(format!("random_int: empty range {lo}..{hi}")));
    }
    if let Some(rng) = rng {
        return done(Value::Int(super::rng::with_rng(rng, |d| d.int_inclusive(lo, hi)).unwrap_or(lo)));
    }
    let span = (hi as i128 - lo as i128 + 1) as u128;
    let pick = if span > u64::MAX as u128 { next_u64() } else { below(span as u64) };
    done(Value::Int((lo as i128 + pick as i128) as i64))
}

fn random_choice(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (rng, args) = split_rng(args);
    let items = list_arg(args, 0, "random_choice")?;
    if items.is_empty() {
        return done(Value::Nil);
    }
    if let Some(rng) = rng {
        let i = super::rng::with_rng(rng, |d| d.index(items.len())).unwrap_or(0);
        return done(items[i].clone());
    }
    done(items[below(items.len() as u64) as usize].clone())
}

fn random_shuffle(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (rng, args) = split_rng(args);
    let mut items = list_arg(args, 0, "random_shuffle")?.to_vec();
    if let Some(rng) = rng {
        super::rng::with_rng(rng, |d| d.shuffle(&mut items));
        return done(Value::list(items));
    }
    for i in (1..items.len()).rev() {
        items.swap(i, below(i as u64 + 1) as usize);
    }
    done(Value::list(items))
}

#[cfg(test)]
mod tests {
    use super::super::callback::test_driver::{no_callback, run_builtin};
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<String, String> {
        run_builtin(name, args, &no_callback).map(|v| v.display())
    }

    #[test]
    fn seeded_rng_is_deterministic() {
        let draw = || {
            call("rng_seed", &[Value::Int(42)]).unwrap();
            let xs = Value::list((0..10).map(Value::Int).collect());
            (0..5).map(|_| call("random_int", &[Value::Int(1), Value::Int(6)]).unwrap()).collect::<Vec<_>>().join(",")
                + &call("random_shuffle", &[xs]).unwrap()
        };
        assert_eq!(draw(), draw());
        assert_eq!(call("random_int", &[Value::Int(5), Value::Int(1)]).unwrap_err(), "Thrown: random_int: empty range 5..1");
        assert_eq!(call("random_int", &[Value::Int(i64::MIN), Value::Int(i64::MAX)]).map(|_| ()), Ok(()));
    }

    #[test]
    fn seeded_rng_values_follow_harn_0_9_11() {
        // Sequences printed by harn 0.9.11 for the same calls.
        let r = run_builtin("rng_seed", &[Value::Int(42)], &no_callback).unwrap();
        assert_eq!(r.type_name(), "rng");
        assert_eq!(r.display(), "<rng>");
        assert_eq!(call("random", std::slice::from_ref(&r)).unwrap(), "0.5265574090027738");
        assert_eq!(call("random", std::slice::from_ref(&r)).unwrap(), "0.5427252099031439");
        assert_eq!(call("random_int", &[r.clone(), Value::Int(1), Value::Int(100)]).unwrap(), "64");
        assert_eq!(call("random_int", &[r.clone(), Value::Int(1), Value::Int(100)]).unwrap(), "41");
        let letters = Value::list(["a", "b", "c", "d"].into_iter().map(Value::str).collect());
        assert_eq!(call("random_choice", &[r.clone(), letters]).unwrap(), "d");
        let six = Value::list((1..=6).map(Value::Int).collect());
        assert_eq!(call("random_shuffle", &[r, six]).unwrap(), "[2, 1, 5, 6, 4, 3]");
        let r0 = run_builtin("rng_seed", &[Value::Int(0)], &no_callback).unwrap();
        assert_eq!(call("random", std::slice::from_ref(&r0)).unwrap(), "0.7311134158637046");
        assert_eq!(call("random_int", &[r0, Value::Int(0), Value::Int(9)]).unwrap(), "7");
    }

    #[test]
    fn colors_follow_the_mode() {
        call("set_color_mode", &[Value::str("never")]).unwrap();
        assert_eq!(call("bold", &[Value::str("x")]).unwrap(), "x");
        call("set_color_mode", &[Value::str("always")]).unwrap();
        assert_eq!(call("color", &[Value::str("x"), Value::str("red")]).unwrap(), "\u{1b}[31mx\u{1b}[0m");
        call("set_color_mode", &[Value::str("auto")]).unwrap();
        assert_eq!(call("color", &[Value::str("x"), Value::str("teal")]).unwrap_err(), "Thrown: color: unknown color 'teal'");
    }

    #[test]
    fn log_levels_filter() {
        call("log_set_level", &[Value::str("warn")]).unwrap();
        assert_eq!(
            call("log_set_level", &[Value::str("loud")]).unwrap_err(),
            "Thrown: log_set_level: unknown level 'loud' (use debug, info, warn or error)"
        );
        let span = run_builtin("trace_start", &[Value::str("op")], &no_callback).unwrap();
        assert_ne!(call("trace_id", &[]).unwrap(), "nil");
        run_builtin("trace_end", &[span], &no_callback).unwrap();
        assert_eq!(call("trace_id", &[]).unwrap(), "nil");
        call("log_set_level", &[Value::str("info")]).unwrap();
    }
}
