//! Names of the concurrency builtins, and the atomics.
//!
//! Most concurrency builtins need the scheduler (the current task, other
//! tasks, the clock), which a plain builtin cannot see through `Ctx`. They
//! are listed in `SCHED_TABLE` so the compiler resolves them to ids like any
//! builtin, and the VM intercepts that id range and runs them in
//! `vm::sched` (see `is_sched`). Atomics need nothing but their value, so
//! they are ordinary builtins here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::LazyLock;

use super::{BuiltinDef, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, values_equal, Object, Value};

macro_rules! sched_table {
    ($($name:literal),* $(,)?) => {
        pub(super) static SCHED_TABLE: &[BuiltinDef] = &[
            $(BuiltinDef { name: $name, func: needs_scheduler },)*
        ];
    };
}

sched_table! {
    "__spawn", "__parallel", "__deadline_push", "__deadline_pop", "__mutex_acquire", "__mutex_release", "__select",
    "await", "cancel", "cancel_graceful", "is_cancelled", "sleep",
    "channel", "send", "receive", "try_receive", "close_channel", "select", "channel_select",
    "sync_mutex_acquire", "sync_semaphore_acquire", "sync_gate_acquire", "sync_rwlock_acquire", "sync_release", "sync_metrics",
    "shared_cell", "shared_get", "shared_set", "shared_snapshot", "shared_cas", "shared_metrics",
    "shared_map", "shared_map_get", "shared_map_set", "shared_map_delete", "shared_map_snapshot", "shared_map_cas",
    "shared_map_entries", "shared_map_metrics",
    "mailbox_open", "mailbox_send", "mailbox_receive", "mailbox_try_receive", "mailbox_close", "mailbox_metrics", "mailbox_lookup",
    "supervisor_start", "supervisor_state", "supervisor_events", "supervisor_metrics", "supervisor_stop",
    "runtime_context", "task_current", "runtime_context_values", "runtime_context_get", "runtime_context_set",
    "runtime_context_clear",
    "__prelude_global", "__clock_ms", "__millis",
}

/// Never called: the VM intercepts scheduler builtins before the table.
fn needs_scheduler(_: &mut Ctx, _: &[Value]) -> VmResult<Flow> {
    Err(VmError::runtime("this builtin needs the VM scheduler"))
}

/// Id of the first scheduler builtin and how many there are.
static SCHED_RANGE: LazyLock<(u32, u32)> = LazyLock::new(|| {
    let first = super::builtin_id(SCHED_TABLE[0].name).expect("scheduler builtins are registered");
    (first, SCHED_TABLE.len() as u32)
});

/// The index of builtin `id` in `SCHED_TABLE`, if it is a scheduler builtin.
#[inline]
pub fn sched_index(id: u32) -> Option<usize> {
    let (first, n) = *SCHED_RANGE;
    let i = id.wrapping_sub(first);
    (i < n).then_some(i as usize)
}

/// The name of scheduler builtin number `index`.
pub fn sched_name(index: usize) -> &'static str {
    SCHED_TABLE[index].name
}

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "atomic", func: atomic },
    BuiltinDef { name: "atomic_get", func: atomic_get },
    BuiltinDef { name: "atomic_set", func: atomic_set },
    BuiltinDef { name: "atomic_add", func: atomic_add },
    BuiltinDef { name: "atomic_cas", func: atomic_cas },
];

/// Atomics hold an int in the `Cell`, or any other value in the `RefCell`
/// (then the `Cell` is unused). Tasks only switch at await points, so a
/// read-modify-write here is indivisible.
fn atomic_value(v: &Value, who: &str) -> VmResult<(Rc<Object>, Value)> {
    if let Value::Object(o) = v {
        if let Object::Atomic(n, other) = &**o {
            let cur = match &*other.borrow() {
                Value::Nil => Value::Int(n.get()),
                x => x.clone(),
            };
            return Ok((o.clone(), cur));
        }
    }
    Err(VmError::throw_msg(format!("{who}: first argument must be an atomic")))
}

fn store(o: &Object, v: Value) {
    if let Object::Atomic(n, other) = o {
        match v {
            Value::Int(i) => {
                n.set(i);
                *other.borrow_mut() = Value::Nil;
            }
            x => *other.borrow_mut() = x,
        }
    }
}

fn atomic(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let o = Object::Atomic(Cell::new(0), RefCell::new(Value::Nil));
    store(
        &o,
        match arg(args, 0) {
            Value::Nil => Value::Int(0),
            v => v.clone(),
        },
    );
    Ok(Flow::Done(Value::Object(Rc::new(o))))
}

fn atomic_get(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    Ok(Flow::Done(atomic_value(arg(args, 0), "atomic_get")?.1))
}

fn atomic_set(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (o, old) = atomic_value(arg(args, 0), "atomic_set")?;
    store(&o, arg(args, 1).clone());
    Ok(Flow::Done(old))
}

fn atomic_add(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (o, old) = atomic_value(arg(args, 0), "atomic_add")?;
    let new = crate::runtime::ops::add(&old, arg(args, 1))?;
    store(&o, new);
    Ok(Flow::Done(old))
}

fn atomic_cas(_: &mut Ctx, args: &[Value]) -> VmResult<Flow> {
    let (o, old) = atomic_value(arg(args, 0), "atomic_cas")?;
    if values_equal(&old, arg(args, 1)) {
        store(&o, arg(args, 2).clone());
        return Ok(Flow::Done(Value::Bool(true)));
    }
    Ok(Flow::Done(Value::Bool(false)))
}
