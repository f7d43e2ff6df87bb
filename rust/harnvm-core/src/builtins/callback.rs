//! Running a Harn callback over a sequence without Rust recursion.
//!
//! Every builtin or method that takes a callback (`map`, `filter`, `reduce`,
//! `sort_by`, `group_by`, ...) is one `CallbackLoop`: a sequence of items, a
//! piece of state, and three small functions — which arguments to pass for an
//! item, how to fold the callback's result into the state (or stop early),
//! and how to turn the final state into the result. The loop asks the VM to
//! call the callee once per item via `Flow::Call` and reuses its own box as
//! the continuation, so a loop over n items costs one allocation plus the
//! argument vectors.

use std::rc::Rc;

use smallvec::smallvec;

use super::{CallArgs, Continuation, Ctx, Flow};
use crate::runtime::error::VmResult;
use crate::runtime::value::Value;

/// What the fold step decided after one callback result.
pub enum Step {
    /// Call the callback on the next item (or finish when there is none).
    Next,
    /// Stop now with this result (`find`, `any`, `all`, ...).
    Stop(Value),
}

/// Builds the callback's arguments for an item.
pub type ArgsFn<S> = fn(state: &S, item: &Value) -> CallArgs;
/// Folds one callback result into the state.
pub type StepFn<S> = fn(state: &mut S, index: usize, item: &Value, result: Value) -> VmResult<Step>;
/// Turns the state into the final result once every item was visited.
pub type FinishFn<S> = fn(state: S) -> VmResult<Value>;

/// Calls `callee` on each item in order, folding the results into `state`.
pub struct CallbackLoop<S> {
    callee: Value,
    items: Rc<Vec<Value>>,
    next: usize,
    state: S,
    args: ArgsFn<S>,
    step: StepFn<S>,
    finish: FinishFn<S>,
}

impl<S: 'static> CallbackLoop<S> {
    /// Starts the loop: the first `Flow::Call`, or `Flow::Done` at once for
    /// an empty sequence.
    pub fn run(
        callee: Value,
        items: Rc<Vec<Value>>,
        state: S,
        args: ArgsFn<S>,
        step: StepFn<S>,
        finish: FinishFn<S>,
    ) -> VmResult<Flow> {
        Box::new(CallbackLoop { callee, items, next: 0, state, args, step, finish }).advance()
    }

    fn advance(self: Box<Self>) -> VmResult<Flow> {
        if let Some(item) = self.items.get(self.next) {
            let args = (self.args)(&self.state, item);
            let callee = self.callee.clone();
            return Ok(Flow::Call { callee, args, then: self });
        }
        let CallbackLoop { state, finish, .. } = *self;
        Ok(Flow::Done(finish(state)?))
    }
}

impl<S: 'static> Continuation for CallbackLoop<S> {
    fn resume(mut self: Box<Self>, _ctx: &mut Ctx, result: Value) -> VmResult<Flow> {
        let index = self.next;
        self.next += 1;
        let items = Rc::clone(&self.items);
        match (self.step)(&mut self.state, index, &items[index], result)? {
            Step::Next => self.advance(),
            Step::Stop(v) => Ok(Flow::Done(v)),
        }
    }
}

/// `ArgsFn` passing the item as the only argument.
pub fn item_arg<S>(_: &S, item: &Value) -> CallArgs {
    smallvec![item.clone()]
}

/// `ArgsFn` for items that are `Pair(key, value)`: passes the value.
pub fn pair_value_arg<S>(_: &S, item: &Value) -> CallArgs {
    match item {
        Value::Pair(p) => smallvec![p.1.clone()],
        other => smallvec![other.clone()],
    }
}

/// `ArgsFn` for items that are `Pair(key, value)`: passes the key.
pub fn pair_key_arg<S>(_: &S, item: &Value) -> CallArgs {
    match item {
        Value::Pair(p) => smallvec![p.0.clone()],
        other => smallvec![other.clone()],
    }
}

/// Continuation that finishes with the callee's result unchanged (used when a
/// method simply forwards to a callable, like a dict key holding a closure).
pub struct ReturnResult;

impl Continuation for ReturnResult {
    fn resume(self: Box<Self>, _ctx: &mut Ctx, result: Value) -> VmResult<Flow> {
        Ok(Flow::Done(result))
    }
}

/// A stand-in for the VM in unit tests: resolves every `Flow::Call` with a
/// Rust closure playing the Harn callee.
#[cfg(test)]
pub(crate) mod test_driver {
    use super::super::{builtin_id, call_builtin, Ctx, Flow, Limits};
    use crate::runtime::error::VmResult;
    use crate::runtime::value::Value;

    /// Small enough that limit errors are cheap to provoke in tests.
    pub const TEST_LIMITS: Limits = Limits { max_alloc: 1 << 20 };

    /// Runs `flow` to completion, answering each call with `callee(args)`.
    pub fn drive(flow: VmResult<Flow>, callee: &dyn Fn(&[Value]) -> VmResult<Value>) -> VmResult<Value> {
        let mut out = String::new();
        let mut ctx = Ctx { output: &mut out, limits: &TEST_LIMITS };
        let mut flow = flow?;
        loop {
            match flow {
                Flow::Done(v) => return Ok(v),
                Flow::Call { args, then, .. } => {
                    let result = callee(&args)?;
                    flow = then.resume(&mut ctx, result)?;
                }
            }
        }
    }

    /// A callable placeholder (the driver ignores which callee is named).
    pub fn callee() -> Value {
        Value::Builtin(0)
    }

    /// For flows that must not call back.
    pub fn no_callback(_: &[Value]) -> VmResult<Value> {
        panic!("no callback expected")
    }

    /// Calls builtin `name` and drives it to completion; the result or the
    /// error message.
    pub fn run_builtin(name: &str, args: &[Value], callee: &dyn Fn(&[Value]) -> VmResult<Value>) -> Result<Value, String> {
        let mut out = String::new();
        let mut ctx = Ctx { output: &mut out, limits: &TEST_LIMITS };
        let flow = call_builtin(&mut ctx, builtin_id(name).expect(name), args);
        drive(flow, callee).map_err(|e| e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::test_driver::{callee, drive};
    use super::*;

    fn sum_loop(items: Vec<Value>) -> VmResult<Flow> {
        CallbackLoop::run(
            callee(),
            Rc::new(items),
            0i64,
            item_arg,
            |acc, _, _, r| {
                *acc += r.as_int().unwrap_or(0);
                Ok(Step::Next)
            },
            |acc| Ok(Value::Int(acc)),
        )
    }

    #[test]
    fn folds_every_result() {
        let items = vec![Value::Int(1), Value::Int(2), Value::Int(3)];
        let v = drive(sum_loop(items), &|args| Ok(Value::Int(args[0].as_int().unwrap() * 10))).unwrap();
        assert_eq!(v.display(), "60");
    }

    #[test]
    fn empty_sequence_finishes_without_calls() {
        let v = drive(sum_loop(vec![]), &|_| panic!("no call expected")).unwrap();
        assert_eq!(v.display(), "0");
    }

    #[test]
    fn callback_errors_propagate() {
        let err = drive(sum_loop(vec![Value::Int(1)]), &|_| Err(crate::runtime::error::VmError::throw_msg("boom"))).unwrap_err();
        assert_eq!(err.message(), "Thrown: boom");
    }
}
