//! Generators and streams as coroutines (harn-language §6).
//!
//! Calling a generator fn (`yield` in its body) or a `gen fn` (a stream,
//! `emit`) builds a `Generator` that owns a suspended `Fiber`: its own
//! stack, frames and handlers, with the body's frame ready to start.
//! Resuming it parks the current fiber on `Vm::parked` and swaps the
//! generator's fiber in; the dispatch loop simply continues there. `yield`
//! swaps back and hands `{value, done: false}` to the continuation that
//! asked for the item (`.next()`, a `for` loop, an iter pull). So a chain of
//! generators pulling from each other never nests Rust calls. When the body
//! finishes the generator is done for good; when it throws, the error
//! surfaces at the pull site and the generator is done too.
//!
//! Output written inside a generator body is dropped (as in Harn, where the
//! body runs as a separate task whose output is never joined), except in
//! the prelude's stream operators, whose bodies run the user's callbacks.

use std::cell::RefCell;
use std::rc::Rc;

use super::{Exit, Vm};
use crate::builtins::{Continuation, Flow};
use crate::runtime::error::{ErrorKind, VmError, VmResult};
use crate::runtime::fiber::{Fiber, GenState, Generator};
use crate::runtime::value::{Closure, Object, Value};

/// A fiber waiting while the generator it resumed runs.
pub(super) struct Parked {
    fiber: Fiber,
    generator: Rc<Object>,
    /// Receives the generator's next `{value, done}`.
    then: Box<dyn Continuation>,
}

/// The `{value, done}` dict of `.next()`.
pub fn next_result(value: Value, done: bool) -> Value {
    Value::dict_from([("value", value), ("done", Value::Bool(done))])
}

fn generator_of(o: &Object) -> &Generator {
    match o {
        Object::Generator(g) => g,
        _ => unreachable!("parked fibers always belong to generators"),
    }
}

impl Vm {
    /// Is a generator body running (rather than the fiber the host called into)?
    pub(super) fn in_generator(&self) -> bool {
        self.parked.len() > self.park_floor
    }

    /// Builds the generator for a call of generator fn `closure`; its callee
    /// value and `argc` arguments on top of the stack become the body's frame.
    pub(super) fn new_generator(&mut self, closure: Rc<Closure>, argc: u32) -> VmResult<Value> {
        let at = self.fiber.stack.len() - argc as usize - 1;
        let mut fiber = Fiber::default();
        fiber.stack.extend(self.fiber.stack.drain(at..));
        let is_stream = closure.proto.is_stream;
        let forwards_output = closure.proto.forwards_output;
        let parent = std::mem::replace(&mut self.fiber, fiber);
        let entered = self.push_frame(closure, argc, None);
        let body = std::mem::replace(&mut self.fiber, parent);
        entered?;
        let state = RefCell::new(GenState { fiber: Some(body), done: false });
        Ok(Value::Object(Rc::new(Object::Generator(Generator { is_stream, forwards_output, state }))))
    }

    /// Resumes generator `gen`, whose next `{value, done}` goes to `then`.
    /// Returns `None` once the generator's fiber is running, or the flow to
    /// go on with when the generator was already done.
    pub(super) fn resume_generator(&mut self, gen: Rc<Object>, then: Box<dyn Continuation>) -> VmResult<Option<Flow>> {
        let g = generator_of(&gen);
        let mut state = g.state.borrow_mut();
        if state.done {
            drop(state);
            return self.resume(then, next_result(Value::Nil, true)).map(Some);
        }
        let Some(body) = state.fiber.take() else {
            return Err(VmError::runtime(format!("{} is already running", g.type_name())));
        };
        // Parked frames count towards the call depth limit, so nested
        // generators end in `Stack overflow`, never in unbounded memory.
        let depth = self.parked_frames + self.fiber.frames.len() + body.frames.len();
        if depth > self.options.max_frames {
            state.fiber = Some(body);
            return Err(VmError::new(ErrorKind::StackOverflow));
        }
        drop(state);
        self.parked_frames += self.fiber.frames.len();
        let parent = std::mem::replace(&mut self.fiber, body);
        self.parked.push(Parked { fiber: parent, generator: gen, then });
        Ok(None)
    }

    /// Swaps the running generator's fiber out for the fiber that resumed
    /// it; the generator keeps its fiber if it may run again.
    fn leave_generator(&mut self, done: bool) -> Parked {
        let parked = self.parked.pop().expect("a generator is running");
        self.parked_frames -= parked.fiber.frames.len();
        let Parked { fiber, generator, then } = parked;
        let mut body = std::mem::replace(&mut self.fiber, fiber);
        let g = generator_of(&generator);
        if g.forwards_output {
            self.fiber.output.push_str(&body.output);
        }
        body.output.clear();
        let mut state = g.state.borrow_mut();
        if done {
            state.done = true;
        } else {
            state.fiber = Some(body);
        }
        drop(state);
        Parked { fiber: Fiber::default(), generator, then }
    }

    /// `yield v` / `emit v`: hands `v` to the puller and suspends the body.
    pub(super) fn yield_value(&mut self, v: Value) -> Exit {
        let Parked { then, .. } = self.leave_generator(false);
        self.deliver(then, next_result(v, false))
    }

    /// The body's outermost frame returned: the generator is done.
    pub(super) fn generator_returned(&mut self) -> Exit {
        let Parked { then, .. } = self.leave_generator(true);
        self.deliver(then, next_result(Value::Nil, true))
    }

    /// The body failed with `err` and nothing in it caught the error: the
    /// generator is done, and the error belongs to the instruction that
    /// pulled from it. Returns that error and its code offset.
    pub(super) fn generator_failed(&mut self, err: VmError) -> (VmError, usize) {
        drop(self.leave_generator(true));
        let at = self.fiber.frames.last().map_or(0, |f| f.ip.saturating_sub(1));
        (err, at)
    }

    /// Gives a generator's result to the continuation waiting for it.
    fn deliver(&mut self, then: Box<dyn Continuation>, result: Value) -> Exit {
        let flow = match self.resume(then, result) {
            Ok(flow) => flow,
            Err(e) => return self.native_error(e),
        };
        match self.finish_native(flow) {
            Ok(_) => Exit::Switch,
            Err(e) => self.native_error(e),
        }
    }
}
