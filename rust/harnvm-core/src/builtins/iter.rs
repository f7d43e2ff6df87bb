//! Lazy iterators (harn-language §11): the `Iter` value, its sources,
//! combinators and sinks, and the pull machine that drives them.
//!
//! An `Iter` is a shared, single-pass, fused node (`Object::Iter`).
//! A combinator builds a new node that pulls from its source node, so two
//! handles on one chain advance together, as in Harn. Lifting snapshots the
//! source: a list iter holds the list's `Rc`, which later assignments to
//! the variable never touch.
//!
//! Pulling may need Harn code to run (a `map` callback, a generator body).
//! So a pull is an explicit state machine (`Pull`) that the VM drives
//! through `Flow::Call`: each node being pulled is one entry on the
//! machine's own stack, the machine returns to the VM whenever a callback
//! must run, and the VM resumes it with the result. Nothing recurses on the
//! Rust stack, however long the chain of combinators. A generator source
//! asks the VM to resume the generator by "calling" the generator value;
//! the VM answers with the `{value, done}` dict of `.next()`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use crate::builtins::args::check_alloc;
use smallvec::smallvec;

use crate::builtins::{CallArgs, Continuation, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
pub use crate::runtime::iter::{dismantle, IterNode, Kind};
use crate::runtime::value::{arg, compare_values, values_equal, DictMap, HStr, Object, Value};

fn node(kind: Kind) -> Rc<Object> {
    Rc::new(Object::Iter(RefCell::new(IterNode { kind, exhausted: false, awaiting: false })))
}

/// An iter value of `kind`.
pub fn iter_value(kind: Kind) -> Value {
    Value::Object(node(kind))
}

/// A range of ints `start..` of `len` items.
pub fn range_kind(start: i64, len: i64) -> Kind {
    Kind::Range { next: start, remaining: len.max(0) as u64 }
}

/// `iter(x)` / `x.iter()`: the iter over `x`, or `None` when `x` is not iterable.
pub fn lift(v: &Value) -> Option<Rc<Object>> {
    let kind = match v {
        Value::List(items) | Value::Set(items) => Kind::Seq(Rc::clone(items), 0),
        Value::Range(r) => range_kind(r.start, r.len()),
        Value::Dict(map) => Kind::DictPairs { map: Rc::clone(map), last: None },
        Value::Str(s) => Kind::Chars(Rc::clone(s), 0),
        Value::Object(o) => match &**o {
            Object::Iter(_) => return Some(Rc::clone(o)),
            Object::Generator(_) => Kind::Generator(v.clone()),
            _ => return None,
        },
        _ => return None,
    };
    Some(node(kind))
}

/// `iter(ch)` / `ch.iter()` on a channel: pulls may wait for a sender, which
/// only a coroutine can do, so the iter draws from the prelude generator
/// `__channel_items(ch)` (prelude/core.harn).
pub fn lift_channel(ch: &Value) -> Flow {
    let lookup = crate::builtins::builtin_id("__prelude_global").expect("scheduler builtin");
    Flow::Call {
        callee: Value::Builtin(lookup),
        args: smallvec![Value::str("__channel_items")],
        then: Box::new(ChannelItems(ch.clone())),
    }
}

/// Has the channel-items generator fn: calls it on the channel.
struct ChannelItems(Value);

impl Continuation for ChannelItems {
    fn resume(self: Box<Self>, _ctx: &mut Ctx, items_fn: Value) -> VmResult<Flow> {
        Ok(Flow::Call { callee: items_fn, args: smallvec![self.0], then: Box::new(LiftGenerator) })
    }
}

/// Has the generator: the iter over it.
struct LiftGenerator;

impl Continuation for LiftGenerator {
    fn resume(self: Box<Self>, _ctx: &mut Ctx, generator: Value) -> VmResult<Flow> {
        lift(&generator).map(|it| Flow::Done(Value::Object(it))).ok_or_else(|| not_iterable(&generator))
    }
}

/// Is `v` a channel (`iter` lifts it with `lift_channel`)?
pub fn is_channel(v: &Value) -> bool {
    use crate::runtime::sched_object::{ChannelKind, SchedObject};
    matches!(v, Value::Object(o) if matches!(&**o, Object::Sched(SchedObject::Channel(c)) if c.kind == ChannelKind::Channel))
}

/// `iter: value of type T is not iterable`.
pub fn not_iterable(v: &Value) -> VmError {
    VmError::type_error(format!("iter: value of type {} is not iterable", v.type_name()))
}

/// The iterator state of a `for` loop over `v` (harn-language §11): dicts
/// yield `{key, value}` dicts, a shared iter is pulled through a fresh
/// wrapper (which carries the loop's own in-flight flag), and values that
/// are not iterable give zero iterations.
pub fn for_loop_iter(v: &Value) -> Value {
    let kind = match v {
        Value::List(items) | Value::Set(items) => Kind::Seq(Rc::clone(items), 0),
        Value::Range(r) => range_kind(r.start, r.len()),
        Value::Dict(map) => Kind::DictEntries { map: Rc::clone(map), last: None },
        Value::Object(o) => match &**o {
            Object::Iter(_) => Kind::Pass(Rc::clone(o)),
            Object::Generator(_) => Kind::Generator(v.clone()),
            _ => Kind::Done,
        },
        _ => Kind::Done,
    };
    iter_value(kind)
}

/// The next item of a source that needs no Harn code: `Some(outcome)`, or
/// `None` when the VM has to run a `Pull`.
fn next_direct(kind: &mut Kind) -> Option<Option<Value>> {
    let pairs = matches!(kind, Kind::DictPairs { .. });
    Some(match kind {
        Kind::Seq(items, i) => {
            let v = items.get(*i).cloned();
            *i += 1;
            v
        }
        Kind::Range { next, remaining } => {
            if *remaining == 0 {
                None
            } else {
                let v = *next;
                *remaining -= 1;
                *next = next.wrapping_add(1);
                Some(Value::Int(v))
            }
        }
        Kind::DictEntries { map, last } | Kind::DictPairs { map, last } => {
            let entry = match last {
                None => map.iter().next(),
                Some(k) => map.next_after(k),
            };
            match entry.map(|(k, v)| (k.clone(), v.clone())) {
                None => None,
                Some((k, v)) => {
                    *last = Some(k.clone());
                    Some(if pairs {
                        Value::pair(Value::Str(k), v)
                    } else {
                        Value::dict_from([("key", Value::Str(k)), ("value", v)])
                    })
                }
            }
        }
        Kind::Chars(s, at) => match s[*at..].chars().next() {
            Some(c) => {
                *at += c.len_utf8();
                Some(Value::str(c.to_string()))
            }
            None => None,
        },
        Kind::Done => None,
        _ => return None,
    })
}

/// Pulls one item from `iter` without running Harn code, if its kind
/// allows; fuses the iter at its end.
pub fn pull_direct(iter: &Rc<Object>) -> Option<Option<Value>> {
    let Object::Iter(cell) = &**iter else {
        return Some(None);
    };
    let mut n = cell.borrow_mut();
    let out = next_direct(&mut n.kind)?;
    if out.is_none() {
        n.kind = Kind::Done;
        n.exhausted = true;
    }
    Some(out)
}

/// What a `for` loop's `ITER_NEXT` does next.
pub enum ForStep {
    /// The next item, read without running Harn code.
    Item(Value),
    /// The loop is over.
    End,
    /// The pull started earlier finished: its outcome is on the stack.
    Collect,
    /// Harn code must run: start a `Pull` with `Sink::Next`.
    Pull,
}

/// One step of a `for` loop over `iter` (its hidden loop state), with a
/// single borrow on the hot path.
#[inline]
pub fn for_step(iter: &Object) -> ForStep {
    let Object::Iter(cell) = iter else { return ForStep::End };
    let mut n = cell.borrow_mut();
    if n.awaiting {
        n.awaiting = false;
        return ForStep::Collect;
    }
    match next_direct(&mut n.kind) {
        Some(Some(v)) => ForStep::Item(v),
        Some(None) => {
            n.kind = Kind::Done;
            n.exhausted = true;
            ForStep::End
        }
        None => ForStep::Pull,
    }
}

/// Marks a `for` loop iter's pull as in flight.
pub fn set_awaiting(iter: &Rc<Object>) {
    if let Object::Iter(cell) = &**iter {
        cell.borrow_mut().awaiting = true;
    }
}

/// The outcome of a `Sink::Next` pull: `[item]`, or nil at the end.
pub fn decode_next(v: Value) -> Option<Value> {
    match &v {
        Value::List(items) if items.len() == 1 => Some(items[0].clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// The pull machine

/// Where one node being pulled stands.
enum Phase {
    Start,
    /// Waiting for an item from the source (passed through or transformed per node kind).
    FromSource,
    /// Waiting for the callback result on `item` (filter / take_while / skip_while tests).
    Test(Value),
    /// Waiting for the mapped value (map) or the iterable to flatten (flat_map).
    Mapped,
    /// flat_map: waiting for an item of the current inner iter.
    FromInner,
    /// zip: waiting for the right-hand item to pair with this left one.
    ZipRight(Value),
    /// zip: waiting for the left-hand item.
    ZipLeft,
    /// chain: waiting for an item of the first iter.
    FromFirst,
    /// chunks: collecting the current chunk.
    Collect(Vec<Value>),
    /// skip: discarding items.
    Skipping,
    /// A generator was resumed: waiting for its `{value, done}`.
    Resumed,
}

struct PullFrame {
    node: Rc<Object>,
    phase: Phase,
}

/// What a node asks for after one step.
enum Action {
    /// The node's next item (`None` at its end).
    Yield(Option<Value>),
    /// Pull an item from this iter and bring it back.
    Pull(Rc<Object>),
    /// Call `callee(args)` (a callback, or a generator to resume) and bring the result back.
    Call(Value, CallArgs),
}

/// What the pull machine brings to the top frame.
enum Input {
    Nothing,
    Item(Option<Value>),
    Result(Value),
}

/// What a sink does with the items of its iter.
pub enum Sink {
    /// One item for a `for` loop: finishes with `[item]`, or nil at the end.
    Next,
    ToList(Vec<Value>),
    ToSet(Vec<Value>),
    ToDict(DictMap),
    Count(i64),
    Sum {
        int: i64,
        float: f64,
        has_float: bool,
    },
    Min(Option<Value>),
    Max(Option<Value>),
    First,
    Last(Value),
    Reduce {
        acc: Value,
        f: Value,
    },
    Any(Value),
    All(Value),
    /// Find: the item whose test is running is kept in `pending`.
    Find {
        f: Value,
        pending: Value,
    },
    ForEach(Value),
}

/// A sink draining an iter: a `Continuation` that the VM resumes with each
/// callback result.
pub struct Pull {
    root: Rc<Object>,
    frames: Vec<PullFrame>,
    sink: Sink,
}

impl Pull {
    /// Starts draining `root` into `sink`.
    pub fn start(ctx: &mut Ctx, root: Rc<Object>, sink: Sink) -> VmResult<Flow> {
        Box::new(Pull { root, frames: Vec::new(), sink }).run(ctx, Input::Nothing)
    }

    fn run(mut self: Box<Self>, ctx: &mut Ctx, mut input: Input) -> VmResult<Flow> {
        loop {
            let Some(top) = self.frames.last_mut() else {
                match self.sink_step(ctx, input)? {
                    SinkAction::Pull => {
                        // Sources that need no Harn code are read in place.
                        if let Some(out) = pull_direct(&self.root) {
                            input = Input::Item(out);
                            continue;
                        }
                        let root = Rc::clone(&self.root);
                        self.frames.push(PullFrame { node: root, phase: Phase::Start });
                        input = Input::Nothing;
                    }
                    SinkAction::Call(callee, args) => return Ok(Flow::Call { callee, args, then: self }),
                    SinkAction::Finish(v) => return Ok(Flow::Done(v)),
                }
                continue;
            };
            match step(top, input)? {
                Action::Yield(out) => {
                    let frame = self.frames.pop().expect("frame being stepped");
                    if out.is_none() {
                        if let Object::Iter(cell) = &*frame.node {
                            let mut n = cell.borrow_mut();
                            n.kind = Kind::Done;
                            n.exhausted = true;
                        }
                    }
                    input = Input::Item(out);
                }
                Action::Pull(src) => match pull_direct(&src) {
                    Some(out) => input = Input::Item(out),
                    None => {
                        self.frames.push(PullFrame { node: src, phase: Phase::Start });
                        input = Input::Nothing;
                    }
                },
                Action::Call(callee, args) => return Ok(Flow::Call { callee, args, then: self }),
            }
        }
    }

    fn sink_step(&mut self, ctx: &mut Ctx, input: Input) -> VmResult<SinkAction> {
        use SinkAction::{Call, Finish, Pull};
        let item = match input {
            Input::Nothing => return Ok(Pull),
            Input::Item(item) => item,
            Input::Result(r) => {
                // A sink callback finished.
                return Ok(match &mut self.sink {
                    Sink::Reduce { acc, .. } => {
                        *acc = r;
                        Pull
                    }
                    Sink::Any(_) if r.is_truthy() => Finish(Value::Bool(true)),
                    Sink::All(_) if !r.is_truthy() => Finish(Value::Bool(false)),
                    Sink::Find { pending, .. } if r.is_truthy() => Finish(std::mem::take(pending)),
                    _ => Pull,
                });
            }
        };
        let Some(x) = item else {
            let sink = std::mem::replace(&mut self.sink, Sink::First);
            return Ok(Finish(match sink {
                Sink::Next | Sink::First | Sink::Find { .. } | Sink::ForEach(_) => Value::Nil,
                Sink::ToList(items) => Value::list(items),
                Sink::ToSet(items) => Value::Set(Rc::new(items)),
                Sink::ToDict(map) => Value::dict(map),
                Sink::Count(n) => Value::Int(n),
                Sink::Sum { int, float, has_float } => {
                    if has_float {
                        Value::Float(float)
                    } else {
                        Value::Int(int)
                    }
                }
                Sink::Min(v) | Sink::Max(v) => v.unwrap_or_default(),
                Sink::Last(v) => v,
                Sink::Reduce { acc, .. } => acc,
                Sink::Any(_) => Value::Bool(false),
                Sink::All(_) => Value::Bool(true),
            }));
        };
        let want = if matches!(self.sink, Sink::Min(_)) { std::cmp::Ordering::Less } else { std::cmp::Ordering::Greater };
        Ok(match &mut self.sink {
            Sink::Next => Finish(Value::list(vec![x])),
            Sink::First => Finish(x),
            Sink::ToList(items) => {
                check_alloc(items.len() + 1, ctx.limits, "to_list")?;
                items.push(x);
                Pull
            }
            Sink::ToSet(items) => {
                if !items.iter().any(|v| values_equal(v, &x)) {
                    check_alloc(items.len() + 1, ctx.limits, "to_set")?;
                    items.push(x);
                }
                Pull
            }
            Sink::ToDict(map) => {
                let (k, v) = match &x {
                    Value::Pair(p) => (p.0.clone(), p.1.clone()),
                    other => return Err(VmError::type_error(format!("iter.to_dict: expected pair, got {}", other.type_name()))),
                };
                let Value::Str(k) = &k else {
                    return Err(VmError::type_error(format!("iter.to_dict: expected string key, got {}", k.type_name())));
                };
                let k = Rc::clone(k);
                check_alloc(map.len() + 1, ctx.limits, "to_dict")?;
                map.insert(k, v);
                Pull
            }
            Sink::Count(n) => {
                *n += 1;
                Pull
            }
            Sink::Sum { int, float, has_float } => {
                match x {
                    Value::Int(n) => {
                        *int = int.wrapping_add(n);
                        *float += n as f64;
                    }
                    Value::Float(f) => {
                        *has_float = true;
                        *float += f;
                    }
                    other => return Err(VmError::type_error(format!("iter.sum: expected number, got {}", other.type_name()))),
                }
                Pull
            }
            Sink::Min(best) | Sink::Max(best) => {
                match best {
                    Some(b) if compare_values(&x, b) != want => {}
                    _ => *best = Some(x),
                }
                Pull
            }
            Sink::Last(v) => {
                *v = x;
                Pull
            }
            Sink::Reduce { acc, f } => Call(f.clone(), smallvec![std::mem::take(acc), x]),
            Sink::Any(f) | Sink::All(f) | Sink::ForEach(f) => Call(f.clone(), smallvec![x]),
            Sink::Find { f, pending } => {
                *pending = x.clone();
                Call(f.clone(), smallvec![x])
            }
        })
    }
}

enum SinkAction {
    Pull,
    Call(Value, CallArgs),
    Finish(Value),
}

impl Continuation for Pull {
    fn resume(self: Box<Self>, ctx: &mut Ctx, result: Value) -> VmResult<Flow> {
        self.run(ctx, Input::Result(result))
    }
}

/// One step of the node on top of the machine's stack.
fn step(frame: &mut PullFrame, input: Input) -> VmResult<Action> {
    use Action::{Call, Pull, Yield};
    let PullFrame { node: this, phase: slot } = frame;
    let Object::Iter(cell) = &**this else {
        return Ok(Yield(None));
    };
    let mut n = cell.borrow_mut();
    if let Some(out) = next_direct(&mut n.kind) {
        return Ok(Yield(out));
    }
    let phase = std::mem::replace(slot, Phase::Start);
    let (item, result) = match input {
        Input::Item(item) => (item, Value::Nil),
        Input::Result(r) => (None, r),
        Input::Nothing => (None, Value::Nil),
    };
    macro_rules! pull {
        ($src:expr, $next:expr) => {{
            *slot = $next;
            Pull(Rc::clone($src))
        }};
    }
    let is_filter = matches!(n.kind, Kind::Filter { .. });
    let action = match &mut n.kind {
        Kind::Generator(g) => match phase {
            Phase::Start => {
                let g = g.clone();
                *slot = Phase::Resumed;
                Call(g, CallArgs::new())
            }
            _ => Yield(next_result_item(&result)),
        },
        Kind::Pass(src) => match phase {
            Phase::Start => pull!(src, Phase::FromSource),
            _ => Yield(item),
        },
        Kind::Map { src, f } => match phase {
            Phase::Start => pull!(src, Phase::FromSource),
            Phase::FromSource => match item {
                None => Yield(None),
                Some(x) => {
                    *slot = Phase::Mapped;
                    Call(f.clone(), smallvec![x])
                }
            },
            _ => Yield(Some(result)),
        },
        Kind::Filter { src, f } | Kind::TakeWhile { src, f } => {
            match phase {
                Phase::Start => pull!(src, Phase::FromSource),
                Phase::FromSource => match item {
                    None => Yield(None),
                    Some(x) => {
                        *slot = Phase::Test(x.clone());
                        Call(f.clone(), smallvec![x])
                    }
                },
                Phase::Test(x) if result.is_truthy() => Yield(Some(x)),
                _ if is_filter => pull!(src, Phase::FromSource),
                // take_while: the first failing item ends the iter.
                _ => Yield(None),
            }
        }
        Kind::SkipWhile { src, f, skipping } => match phase {
            Phase::Start => pull!(src, Phase::FromSource),
            Phase::FromSource => match item {
                Some(x) if *skipping => {
                    *slot = Phase::Test(x.clone());
                    Call(f.clone(), smallvec![x])
                }
                other => Yield(other),
            },
            Phase::Test(_) if result.is_truthy() => pull!(src, Phase::FromSource),
            Phase::Test(x) => {
                *skipping = false;
                Yield(Some(x))
            }
            _ => Yield(None),
        },
        Kind::FlatMap { src, f, inner } => match phase {
            Phase::Start => match inner {
                Some(it) => {
                    let it = Rc::clone(it);
                    pull!(&it, Phase::FromInner)
                }
                None => pull!(src, Phase::FromSource),
            },
            Phase::FromInner => match item {
                Some(x) => Yield(Some(x)),
                None => {
                    *inner = None;
                    pull!(src, Phase::FromSource)
                }
            },
            Phase::FromSource => match item {
                None => Yield(None),
                Some(x) => {
                    *slot = Phase::Mapped;
                    Call(f.clone(), smallvec![x])
                }
            },
            _ => {
                // Iterables are flattened one level; anything else is one item.
                let it = match &result {
                    Value::List(_) | Value::Set(_) | Value::Range(_) | Value::Object(_) => lift(&result),
                    _ => None,
                }
                .unwrap_or_else(|| node(Kind::Seq(Rc::new(vec![result]), 0)));
                *inner = Some(Rc::clone(&it));
                pull!(&it, Phase::FromInner)
            }
        },
        Kind::Take { src, left } => match phase {
            Phase::Start if *left <= 0 => Yield(None),
            Phase::Start => pull!(src, Phase::FromSource),
            _ => {
                if item.is_some() {
                    *left -= 1;
                }
                Yield(item)
            }
        },
        Kind::Skip { src, left } => match phase {
            Phase::Start if *left > 0 => pull!(src, Phase::Skipping),
            Phase::Start => pull!(src, Phase::FromSource),
            Phase::Skipping => match item {
                None => Yield(None),
                Some(_) => {
                    *left -= 1;
                    if *left > 0 {
                        pull!(src, Phase::Skipping)
                    } else {
                        pull!(src, Phase::FromSource)
                    }
                }
            },
            _ => Yield(item),
        },
        Kind::Zip { a, b } => match phase {
            Phase::Start => pull!(a, Phase::ZipLeft),
            Phase::ZipLeft => match item {
                None => Yield(None),
                Some(x) => pull!(b, Phase::ZipRight(x)),
            },
            Phase::ZipRight(x) => Yield(item.map(|y| Value::pair(x, y))),
            _ => Yield(None),
        },
        Kind::Enumerate { src, next } => match phase {
            Phase::Start => pull!(src, Phase::FromSource),
            _ => Yield(item.map(|x| {
                let i = *next;
                *next += 1;
                Value::pair(Value::Int(i), x)
            })),
        },
        Kind::Chain { first, second } => match phase {
            Phase::Start => match first {
                Some(a) => {
                    let a = Rc::clone(a);
                    pull!(&a, Phase::FromFirst)
                }
                None => pull!(second, Phase::FromSource),
            },
            Phase::FromFirst => match item {
                Some(x) => Yield(Some(x)),
                None => {
                    *first = None;
                    pull!(second, Phase::FromSource)
                }
            },
            _ => Yield(item),
        },
        Kind::Chunks { src, size } => match phase {
            Phase::Start => pull!(src, Phase::Collect(Vec::new())),
            Phase::Collect(mut chunk) => match item {
                Some(x) => {
                    chunk.push(x);
                    if chunk.len() >= *size {
                        Yield(Some(Value::list(chunk)))
                    } else {
                        pull!(src, Phase::Collect(chunk))
                    }
                }
                None if chunk.is_empty() => Yield(None),
                // The short last chunk; the next pull finds the fused source's end.
                None => Yield(Some(Value::list(chunk))),
            },
            _ => Yield(None),
        },
        Kind::Windows { src, size, window } => match phase {
            Phase::Start => pull!(src, Phase::FromSource),
            _ => match item {
                None => Yield(None),
                Some(x) => {
                    window.push_back(x);
                    if window.len() > *size {
                        window.pop_front();
                    }
                    if window.len() == *size {
                        Yield(Some(Value::list(window.iter().cloned().collect())))
                    } else {
                        pull!(src, Phase::FromSource)
                    }
                }
            },
        },
        Kind::Seq(..) | Kind::Range { .. } | Kind::DictEntries { .. } | Kind::DictPairs { .. } | Kind::Chars(..) | Kind::Done => {
            Yield(None)
        }
    };
    Ok(action)
}

/// The item of a generator's `{value, done}` result, `None` when done.
fn next_result_item(result: &Value) -> Option<Value> {
    match result {
        Value::Dict(d) => {
            let done = d.get(&HStr::new("done".to_string())).is_some_and(Value::is_truthy);
            if done {
                None
            } else {
                Some(d.get(&HStr::new("value".to_string())).cloned().unwrap_or_default())
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Methods on iters

/// The callback argument of `it.name(f)`; anything else is
/// `iter.<name>: expected callable` (the reference's wording).
fn callback_arg(args: &[Value], name: &str) -> VmResult<Value> {
    match arg(args, 0) {
        f if f.is_callable() => Ok(f.clone()),
        _ => Err(VmError::type_error(format!("iter.{name}: expected callable"))),
    }
}

/// The count of `take` / `skip`: a non-negative int.
fn count_arg(args: &[Value], name: &str) -> VmResult<i64> {
    match arg(args, 0) {
        Value::Int(n) if *n >= 0 => Ok(*n),
        _ => Err(VmError::type_error(format!("iter.{name}: expected non-negative int"))),
    }
}

/// The size of `chunks` / `windows`: a positive int.
fn size_arg(args: &[Value], what: &str, name: &str) -> VmResult<usize> {
    match arg(args, 0) {
        Value::Int(n) if *n > 0 => Ok(usize::try_from(*n).unwrap_or(usize::MAX)),
        _ => Err(VmError::type_error(format!("iter.{name}: {what} size must be positive"))),
    }
}

/// The iterable argument of `zip` / `chain`, lifted.
fn iterable_arg(args: &[Value], name: &str) -> VmResult<Rc<Object>> {
    let Some(other) = args.first() else {
        return Err(VmError::type_error(format!("iter.{name}: expected iterable argument")));
    };
    lift(other).ok_or_else(|| not_iterable(other))
}

/// `it.name(args)` on an iter (§11). Combinators check their arguments
/// when they are built, with the reference's messages; unknown names raise `iter has no method`.
pub fn iter_method(ctx: &mut Ctx, it: &Rc<Object>, name: &str, args: &[Value]) -> VmResult<Flow> {
    let src = || Rc::clone(it);
    let combinator = |kind: Kind| Ok(Flow::Done(iter_value(kind)));
    let sink = |ctx: &mut Ctx, sink: Sink| Pull::start(ctx, Rc::clone(it), sink);
    match name {
        "iter" => Ok(Flow::Done(Value::Object(src()))),
        "map" => combinator(Kind::Map { src: src(), f: callback_arg(args, name)? }),
        "filter" => combinator(Kind::Filter { src: src(), f: callback_arg(args, name)? }),
        "flat_map" => combinator(Kind::FlatMap { src: src(), f: callback_arg(args, name)?, inner: None }),
        "take" => combinator(Kind::Take { src: src(), left: count_arg(args, name)? }),
        "skip" => combinator(Kind::Skip { src: src(), left: count_arg(args, name)? }),
        "take_while" => combinator(Kind::TakeWhile { src: src(), f: callback_arg(args, name)? }),
        "skip_while" => combinator(Kind::SkipWhile { src: src(), f: callback_arg(args, name)?, skipping: true }),
        "zip" => combinator(Kind::Zip { a: src(), b: iterable_arg(args, name)? }),
        "enumerate" => combinator(Kind::Enumerate { src: src(), next: 0 }),
        "chain" => combinator(Kind::Chain { first: Some(src()), second: iterable_arg(args, name)? }),
        "chunks" => combinator(Kind::Chunks { src: src(), size: size_arg(args, "chunk", name)? }),
        "windows" => combinator(Kind::Windows { src: src(), size: size_arg(args, "window", name)?, window: VecDeque::new() }),
        "to_list" => sink(ctx, Sink::ToList(Vec::new())),
        "to_set" => sink(ctx, Sink::ToSet(Vec::new())),
        "to_dict" => sink(ctx, Sink::ToDict(DictMap::new())),
        "count" => sink(ctx, Sink::Count(0)),
        "sum" => sink(ctx, Sink::Sum { int: 0, float: 0.0, has_float: false }),
        "min" => sink(ctx, Sink::Min(None)),
        "max" => sink(ctx, Sink::Max(None)),
        "first" => sink(ctx, Sink::First),
        "last" => sink(ctx, Sink::Last(Value::Nil)),
        "reduce" => {
            if args.len() < 2 {
                return Err(VmError::type_error("iter.reduce: expected (init, fn)"));
            }
            if !args[1].is_callable() {
                return Err(VmError::type_error("iter.reduce: second arg must be callable"));
            }
            sink(ctx, Sink::Reduce { acc: args[0].clone(), f: args[1].clone() })
        }
        "any" => sink(ctx, Sink::Any(callback_arg(args, name)?)),
        "all" => sink(ctx, Sink::All(callback_arg(args, name)?)),
        "find" => sink(ctx, Sink::Find { f: callback_arg(args, name)?, pending: Value::Nil }),
        "for_each" => sink(ctx, Sink::ForEach(callback_arg(args, name)?)),
        _ => Err(crate::builtins::methods::no_method("iter", name)),
    }
}

/// Is `name` a method that ranges answer by lifting to an iter?
pub fn is_iter_method(name: &str) -> bool {
    matches!(
        name,
        "iter"
            | "map"
            | "filter"
            | "flat_map"
            | "take"
            | "skip"
            | "take_while"
            | "skip_while"
            | "zip"
            | "enumerate"
            | "chain"
            | "chunks"
            | "windows"
            | "to_list"
            | "to_set"
            | "to_dict"
            | "count"
            | "sum"
            | "min"
            | "max"
            | "first"
            | "last"
            | "reduce"
            | "any"
            | "all"
            | "find"
            | "for_each"
    )
}
