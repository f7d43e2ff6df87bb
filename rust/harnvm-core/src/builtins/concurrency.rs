//! The concurrency builtins: the scheduler operations, and the atomics.
//!
//! Most concurrency builtins need the scheduler (the current task, other
//! tasks, the clock), which a plain builtin cannot see through `Ctx`. Their
//! table entries name a `SchedOp` instead of a function; the VM runs those in
//! `vm::sched`. Atomics need nothing but their value, so they are plain
//! builtins.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use super::BuiltinImpl::{Native, Sched};
use super::{BuiltinDef, Ctx, Flow, SchedOp};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::value::{arg, values_equal, Object, Value};

pub(super) static TABLE: &[BuiltinDef] = &[
    BuiltinDef { name: "atomic", imp: Native(atomic) },
    BuiltinDef { name: "atomic_get", imp: Native(atomic_get) },
    BuiltinDef { name: "atomic_set", imp: Native(atomic_set) },
    BuiltinDef { name: "atomic_add", imp: Native(atomic_add) },
    BuiltinDef { name: "atomic_cas", imp: Native(atomic_cas) },
    BuiltinDef { name: "__spawn", imp: Sched(SchedOp::Spawn) },
    BuiltinDef { name: "__parallel", imp: Sched(SchedOp::Parallel) },
    BuiltinDef { name: "__deadline_push", imp: Sched(SchedOp::DeadlinePush) },
    BuiltinDef { name: "__deadline_pop", imp: Sched(SchedOp::DeadlinePop) },
    BuiltinDef { name: "__mutex_acquire", imp: Sched(SchedOp::MutexBlockAcquire) },
    BuiltinDef { name: "__mutex_release", imp: Sched(SchedOp::MutexBlockRelease) },
    BuiltinDef { name: "__select", imp: Sched(SchedOp::SelectStatement) },
    BuiltinDef { name: "await", imp: Sched(SchedOp::Await) },
    BuiltinDef { name: "cancel", imp: Sched(SchedOp::Cancel) },
    BuiltinDef { name: "cancel_graceful", imp: Sched(SchedOp::CancelGraceful) },
    BuiltinDef { name: "is_cancelled", imp: Sched(SchedOp::IsCancelled) },
    BuiltinDef { name: "sleep", imp: Sched(SchedOp::Sleep) },
    BuiltinDef { name: "channel", imp: Sched(SchedOp::Channel) },
    BuiltinDef { name: "send", imp: Sched(SchedOp::Send) },
    BuiltinDef { name: "receive", imp: Sched(SchedOp::Receive) },
    BuiltinDef { name: "try_receive", imp: Sched(SchedOp::TryReceive) },
    BuiltinDef { name: "close_channel", imp: Sched(SchedOp::CloseChannel) },
    BuiltinDef { name: "channel_is_closed", imp: Sched(SchedOp::ChannelIsClosed) },
    BuiltinDef { name: "yield_now", imp: Sched(SchedOp::YieldNow) },
    BuiltinDef { name: "shared_scope_id", imp: Sched(SchedOp::SharedScopeId) },
    BuiltinDef { name: "select", imp: Sched(SchedOp::Select) },
    BuiltinDef { name: "channel_select", imp: Sched(SchedOp::ChannelSelect) },
    BuiltinDef { name: "sync_mutex_acquire", imp: Sched(SchedOp::SyncMutexAcquire) },
    BuiltinDef { name: "sync_semaphore_acquire", imp: Sched(SchedOp::SyncSemaphoreAcquire) },
    BuiltinDef { name: "sync_gate_acquire", imp: Sched(SchedOp::SyncGateAcquire) },
    BuiltinDef { name: "sync_rwlock_acquire", imp: Sched(SchedOp::SyncRwlockAcquire) },
    BuiltinDef { name: "sync_release", imp: Sched(SchedOp::SyncRelease) },
    BuiltinDef { name: "sync_metrics", imp: Sched(SchedOp::SyncMetrics) },
    BuiltinDef { name: "shared_cell", imp: Sched(SchedOp::SharedCell) },
    BuiltinDef { name: "shared_get", imp: Sched(SchedOp::SharedGet) },
    BuiltinDef { name: "shared_set", imp: Sched(SchedOp::SharedSet) },
    BuiltinDef { name: "shared_snapshot", imp: Sched(SchedOp::SharedSnapshot) },
    BuiltinDef { name: "shared_cas", imp: Sched(SchedOp::SharedCas) },
    BuiltinDef { name: "shared_metrics", imp: Sched(SchedOp::SharedMetrics) },
    BuiltinDef { name: "shared_map", imp: Sched(SchedOp::SharedMap) },
    BuiltinDef { name: "shared_map_get", imp: Sched(SchedOp::SharedMapGet) },
    BuiltinDef { name: "shared_map_set", imp: Sched(SchedOp::SharedMapSet) },
    BuiltinDef { name: "shared_map_delete", imp: Sched(SchedOp::SharedMapDelete) },
    BuiltinDef { name: "shared_map_snapshot", imp: Sched(SchedOp::SharedMapSnapshot) },
    BuiltinDef { name: "shared_map_cas", imp: Sched(SchedOp::SharedMapCas) },
    BuiltinDef { name: "shared_map_entries", imp: Sched(SchedOp::SharedMapEntries) },
    BuiltinDef { name: "shared_map_metrics", imp: Sched(SchedOp::SharedMapMetrics) },
    BuiltinDef { name: "mailbox_open", imp: Sched(SchedOp::MailboxOpen) },
    BuiltinDef { name: "mailbox_send", imp: Sched(SchedOp::MailboxSend) },
    BuiltinDef { name: "mailbox_receive", imp: Sched(SchedOp::MailboxReceive) },
    BuiltinDef { name: "mailbox_try_receive", imp: Sched(SchedOp::MailboxTryReceive) },
    BuiltinDef { name: "mailbox_close", imp: Sched(SchedOp::MailboxClose) },
    BuiltinDef { name: "mailbox_metrics", imp: Sched(SchedOp::MailboxMetrics) },
    BuiltinDef { name: "mailbox_lookup", imp: Sched(SchedOp::MailboxLookup) },
    BuiltinDef { name: "supervisor_start", imp: Sched(SchedOp::SupervisorStart) },
    BuiltinDef { name: "supervisor_state", imp: Sched(SchedOp::SupervisorState) },
    BuiltinDef { name: "supervisor_events", imp: Sched(SchedOp::SupervisorEvents) },
    BuiltinDef { name: "supervisor_metrics", imp: Sched(SchedOp::SupervisorMetrics) },
    BuiltinDef { name: "supervisor_stop", imp: Sched(SchedOp::SupervisorStop) },
    BuiltinDef { name: "runtime_context", imp: Sched(SchedOp::RuntimeContext) },
    BuiltinDef { name: "task_current", imp: Sched(SchedOp::TaskCurrent) },
    BuiltinDef { name: "runtime_context_values", imp: Sched(SchedOp::RuntimeContextValues) },
    BuiltinDef { name: "runtime_context_get", imp: Sched(SchedOp::RuntimeContextGet) },
    BuiltinDef { name: "runtime_context_set", imp: Sched(SchedOp::RuntimeContextSet) },
    BuiltinDef { name: "runtime_context_clear", imp: Sched(SchedOp::RuntimeContextClear) },
    BuiltinDef { name: "__prelude_global", imp: Sched(SchedOp::PreludeGlobal) },
    BuiltinDef { name: "__clock_ms", imp: Sched(SchedOp::ClockMs) },
    // The entry pipeline's parameters are bound with `__run_input("name")`.
    BuiltinDef { name: "__run_input", imp: Sched(SchedOp::RunInput) },
    BuiltinDef { name: "run_inputs", imp: Sched(SchedOp::RunInputs) },
    BuiltinDef { name: "__millis", imp: Sched(SchedOp::Millis) },
];

/// The builtin name of scheduler operation `op` (for error messages).
pub fn sched_op_name(op: SchedOp) -> &'static str {
    TABLE.iter().find(|def| matches!(def.imp, Sched(o) if o == op)).map_or("?", |def| def.name)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::{builtin_id, builtin_impl, call_builtin, BuiltinImpl, Limits, BUILTINS};

    #[test]
    fn every_sched_op_has_exactly_one_builtin_and_its_id_round_trips() {
        for &op in SchedOp::ALL {
            let defs: Vec<&str> =
                BUILTINS.iter().filter(|def| matches!(def.imp, Sched(o) if o == op)).map(|def| def.name).collect();
            assert_eq!(defs.len(), 1, "{op:?} is named by {defs:?}");
            assert_eq!(sched_op_name(op), defs[0]);
            let id = builtin_id(defs[0]).expect("registered");
            assert!(matches!(builtin_impl(id), BuiltinImpl::Sched(o) if o == op), "{op:?}");
            assert!(crate::builtins::is_sched_builtin(id));
        }
        let sched_defs = BUILTINS.iter().filter(|def| matches!(def.imp, Sched(_))).count();
        assert_eq!(sched_defs, SchedOp::ALL.len());
        assert!(!crate::builtins::is_sched_builtin(builtin_id("atomic").expect("registered")));
    }

    #[test]
    fn a_sched_builtin_called_without_the_vm_is_an_error() {
        let (mut output, limits) = (String::new(), Limits::default());
        let mut ctx = Ctx { output: &mut output, limits: &limits };
        let id = builtin_id("sleep").expect("registered");
        let err = call_builtin(&mut ctx, id, &[Value::Int(1)]).err().expect("needs the VM");
        assert_eq!(err.message(), "Runtime error: sleep needs the VM scheduler");
    }
}
