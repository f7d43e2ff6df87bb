//! Execution state as data: a `Fiber` (one Harn task's value stack, call
//! frames and `try` handlers), the `ModuleEnv` closures read globals from,
//! and the suspended `Generator`. The VM (a floor above) runs them; here
//! they are only built, inspected and dropped.

use std::cell::RefCell;
use std::rc::Rc;

use crate::runtime::iter::dismantle;
use crate::runtime::native::Continuation;
use crate::runtime::value::{Closure, Value};

/// One activation of a Harn function on a fiber.
pub struct Frame {
    pub closure: Rc<Closure>,
    /// Saved instruction pointer while another frame runs.
    pub ip: usize,
    /// Stack index of local slot 0; the callee value sits at `base - 1`.
    pub base: usize,
    pub argc: u32,
    /// Where the return value goes when a builtin made this call.
    pub cont: Option<Box<dyn Continuation>>,
    /// This function's inline-cache set on the VM (resolved at entry).
    pub ic_set: usize,
}

/// An installed `try` handler.
pub struct Handler {
    /// `frames.len()` when the handler was installed.
    pub frame_depth: usize,
    pub stack_len: usize,
    pub catch_ip: usize,
}

/// The execution state of one Harn task.
#[derive(Default)]
pub struct Fiber {
    pub stack: Vec<Value>,
    pub frames: Vec<Frame>,
    pub handlers: Vec<Handler>,
    /// Output not yet handed to the host (or, for child tasks, to the parent).
    pub output: String,
}

/// Globals of one loaded module (top-level fns; module-level vars of
/// imported modules). Closures hold it, so it lives exactly as long as
/// anything that can read it.
pub struct ModuleEnv {
    pub names: Vec<String>,
    pub globals: RefCell<Vec<Value>>,
    pub defined: RefCell<Vec<bool>>,
}

impl ModuleEnv {
    pub fn new(names: Vec<String>) -> ModuleEnv {
        let n = names.len();
        ModuleEnv { names, globals: RefCell::new(vec![Value::Nil; n]), defined: RefCell::new(vec![false; n]) }
    }

    /// Sets every global to nil (undefined). Top-level fns live in globals
    /// and point back at their env, so an env is a reference cycle that
    /// plain reference counting never frees; clearing breaks it.
    pub fn clear(&self) {
        let old: Vec<Value> = {
            let mut globals = self.globals.borrow_mut();
            let n = globals.len();
            std::mem::replace(&mut *globals, vec![Value::Nil; n])
        };
        self.defined.borrow_mut().iter_mut().for_each(|d| *d = false);
        drop(old);
    }

    /// Whether the only references to `env`, besides the `probes` the
    /// caller holds, are its own top-level closures, each held by nothing
    /// but its global slot: then no code can reach it any more.
    pub fn unreachable(env: &Rc<ModuleEnv>, probes: usize) -> bool {
        let globals = env.globals.borrow();
        let own = globals
            .iter()
            .filter(|v| matches!(v, Value::Closure(c) if Rc::ptr_eq(&c.module, env) && Rc::strong_count(c) == 1))
            .count();
        Rc::strong_count(env) == own + probes
    }
}

/// A generator or stream value.
pub struct Generator {
    /// Declared with `gen fn` (`type_of` is `stream`).
    pub is_stream: bool,
    /// Its body's output goes to the consumer (`FunctionProto::forwards_output`).
    pub forwards_output: bool,
    pub state: RefCell<GenState>,
}

pub struct GenState {
    /// The suspended body; `None` while it runs and once it is done.
    pub fiber: Option<Fiber>,
    pub done: bool,
}

impl Generator {
    /// Moves out the suspended body's values (locals, captures) so that a
    /// chain of generators each holding the next is dropped iteratively
    /// (`iter::dismantle`).
    pub fn take_children(&mut self, out: &mut Vec<Value>) {
        let Some(mut fiber) = self.state.get_mut().fiber.take() else { return };
        out.append(&mut fiber.stack);
        for frame in &mut fiber.frames {
            if let Some(closure) = Rc::get_mut(&mut frame.closure) {
                out.extend(std::mem::take(&mut closure.captures).into_vec());
            }
        }
    }

    pub fn type_name(&self) -> &'static str {
        if self.is_stream {
            "stream"
        } else {
            "generator"
        }
    }

    pub fn display(&self) -> &'static str {
        match (self.is_stream, self.state.borrow().done) {
            (false, false) => "<generator>",
            (false, true) => "<generator (done)>",
            (true, false) => "<stream>",
            (true, true) => "<stream (done)>",
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        dismantle(pending);
    }
}
