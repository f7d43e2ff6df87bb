//! The virtual machine: frames on an explicit stack and the dispatch loop.
//!
//! A Harn call never recurses on the Rust stack: calling a closure pushes a
//! `Frame` and the dispatch loop switches to it; `Return` pops it. Builtins
//! that call back into Harn (`xs.map(f)`) return `Flow::Call` and the callee
//! frame carries the builtin's continuation. All execution state of one Harn
//! task lives in a `Fiber`, so a task can be suspended between instructions
//! and resumed later.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;

use crate::builtins::{self, iter, methods, Continuation, Ctx, Flow, Limits};
use crate::bytecode::chunk::{CaptureSource, FunctionProto, Op};
use crate::bytecode::Program;
use crate::runtime::error::{closest_match, ErrorKind, LimitKind, StackEntry, VmError, VmResult};
use crate::runtime::fiber::{Fiber, Frame, Handler, ModuleEnv};
use crate::runtime::ops;
use crate::runtime::value::{compare_values, values_equal, Closure, DictMap, HStr, Object, StructLayout, StructVal, Value};
use ic::{BinaryOp, InlineCaches};

mod generators;
pub use crate::runtime::fiber::Generator;
pub use generators::next_result;

pub mod ic;
// Module instances: the per-VM module cache and the import ops.
mod modules;
pub use modules::ExportMemo;

mod sched;
pub use sched::{HostFn, HostReply, RunState, Waiter, Waiting};

#[derive(Clone, Debug)]
pub struct VmOptions {
    /// Maximum Harn call depth (`Stack overflow: too many nested calls` beyond it).
    pub max_frames: usize,
    /// Inline caches on or off; results never depend on them.
    pub inline_caches: bool,
    /// Wall-clock budget for one `run`, in milliseconds.
    pub time_limit_ms: Option<u64>,
    pub limits: Limits,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions { max_frames: 512, inline_caches: true, time_limit_ms: None, limits: Limits::default() }
    }
}

/// A VM's envs die with it: their globals are cleared, which frees the
/// closure↔env cycles of top-level fns (see `ModuleEnv::clear`). A closure
/// that outlives its VM then sees undefined globals, never freed memory.
impl Drop for Vm {
    fn drop(&mut self) {
        for env in self.entry_envs.drain(..).filter_map(|w| w.upgrade()) {
            env.clear();
        }
        for env in self.module_envs() {
            env.clear();
        }
    }
}

pub struct Vm {
    pub options: VmOptions,
    fiber: Fiber,
    structs: HashMap<String, Rc<StructLayout>>,
    impls: HashMap<String, Rc<DictMap>>,
    output_sink: Option<OutputSink>,
    interrupt: Arc<AtomicBool>,
    /// The host's wait for timers and host calls in `drive_blocking`.
    waiter: Option<sched::Waiter>,
    deadline: Option<Instant>,
    /// Calls and backward jumps left before the next interrupt/deadline check.
    budget: u32,
    /// Fibers waiting for the generator they resumed, innermost last.
    parked: Vec<generators::Parked>,
    /// `parked.len()` when the innermost host call started: fibers above it are generator bodies.
    park_floor: usize,
    /// Frames held by parked fibers (they count towards `max_frames`).
    parked_frames: usize,
    /// Changes whenever a module instance is created (see `ExportMemo`).
    instance_epoch: u64,
    /// Instantiated modules by key (see `vm_modules.rs`).
    /// (Fx-hashed: a warm host crossing looks its module up by key every call.)
    modules: rustc_hash::FxHashMap<String, modules::ModuleInstance>,
    /// Envs of the programs this VM ran (freed by `free_entry_envs` and on drop).
    entry_envs: Vec<std::rc::Weak<ModuleEnv>>,
    /// Instantiated prelude modules (`stream`, `parallel_race`; `vm_modules.rs`).
    prelude: Rc<RefCell<modules::PreludeInstances>>,
    /// Inline-cache sets of every function this VM has run (see `ic.rs`).
    pub ic: InlineCaches,
    /// Tasks, channels, timers and the other concurrency state.
    sched: sched::Sched,
}

/// Where a root task's output goes as it is written.
pub type OutputSink = Box<dyn FnMut(&str)>;

const CHECK_INTERVAL: u32 = 4096;

/// Executed opcode pairs (previous op, op) of this thread, counted when the
/// `op-pair-stats` feature is on: the data for choosing superinstructions.
#[cfg(feature = "op-pair-stats")]
thread_local! {
    static OP_PAIRS: RefCell<Vec<u64>> = RefCell::new(vec![0; Op::COUNT * Op::COUNT]);
}

/// Every opcode pair executed so far on this thread, with its count.
#[cfg(feature = "op-pair-stats")]
pub fn op_pair_counts() -> Vec<((Op, Op), u64)> {
    OP_PAIRS.with(|pairs| {
        let pairs = pairs.borrow();
        let mut out = Vec::new();
        for (i, &n) in pairs.iter().enumerate() {
            if n > 0 {
                out.push(((Op::ALL[i / Op::COUNT], Op::ALL[i % Op::COUNT]), n));
            }
        }
        out
    })
}

/// Why the inner dispatch loop stopped.
enum Exit {
    /// The current frame changed (call or return); reload and go on.
    Switch,
    /// The outermost frame of this run returned.
    Done(Value),
    /// An op failed at this code offset.
    Error(VmError, usize),
}

impl Vm {
    pub fn new(options: VmOptions) -> Vm {
        Vm {
            options,
            fiber: Fiber::default(),
            structs: HashMap::new(),
            impls: HashMap::new(),
            output_sink: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            waiter: None,
            deadline: None,
            budget: CHECK_INTERVAL,
            parked: Vec::new(),
            park_floor: 0,
            parked_frames: 0,
            instance_epoch: modules::next_instance_epoch(),
            modules: rustc_hash::FxHashMap::default(),
            entry_envs: Vec::new(),
            prelude: Rc::default(),
            ic: InlineCaches::default(),
            sched: sched::Sched::new(false),
        }
    }

    /// Where `log`/`print` output goes. Without a sink it accumulates and
    /// can be read with `take_output`.
    pub fn set_output(&mut self, sink: Box<dyn FnMut(&str)>) {
        self.output_sink = Some(sink);
    }

    pub fn take_output(&mut self) -> String {
        std::mem::take(&mut self.fiber.output)
    }

    /// Whether output waits for `take_output` (a host checks before taking it).
    pub fn has_output(&self) -> bool {
        !self.fiber.output.is_empty()
    }

    /// A flag another thread may set to stop the running program.
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Runs a program's entry code and returns the entry pipeline's value.
    pub fn run(&mut self, program: &Rc<Program>) -> VmResult<Value> {
        self.start(program);
        self.drive_blocking()
    }

    /// Frees the envs of earlier runs that nothing can reach any more (see
    /// `ModuleEnv::is_garbage`); envs whose fns escaped (a Python handle, a
    /// value kept in a module) stay until the VM is dropped.
    fn free_entry_envs(&mut self) {
        self.entry_envs.retain(|weak| {
            let Some(env) = weak.upgrade() else { return false };
            if ModuleEnv::unreachable(&env, 1) {
                env.clear();
                return false;
            }
            true
        });
    }

    /// Sets up a program's entry code as the root task; drive it with `step`.
    pub fn start(&mut self, program: &Rc<Program>) {
        if self.options.inline_caches && self.fiber.frames.is_empty() {
            self.ic.begin_run(&program.main);
        }
        self.free_entry_envs();
        let module = Rc::new(ModuleEnv::new(program.globals.clone()));
        self.entry_envs.push(Rc::downgrade(&module));
        let main = Rc::new(Closure { proto: program.main.clone(), captures: Box::new([]), module });
        self.start_call(Value::Closure(main), Vec::new());
    }

    /// Calls a Harn closure from the host and runs it to completion (as the
    /// root task of a run, so it may spawn and wait).
    pub fn call_closure(&mut self, closure: Rc<Closure>, args: Vec<Value>) -> VmResult<Value> {
        if !self.fiber.frames.is_empty() {
            return self.call_closure_nested(closure, args);
        }
        if self.sched.live_tasks() > 0 {
            // Between `step`s of a run: starting another would cancel it.
            return Err(VmError::runtime("this VM is in the middle of a run"));
        }
        self.call_root_closure(closure, args)
    }

    /// Runs a closure to completion inside the running task (no switching).
    fn call_closure_nested(&mut self, closure: Rc<Closure>, args: Vec<Value>) -> VmResult<Value> {
        // (Only inside a running task: a run's resets are `reset_run`'s.)
        let stop_depth = self.fiber.frames.len();
        let stack_len = self.fiber.stack.len();
        let handlers_len = self.fiber.handlers.len();
        let argc = args.len() as u32;
        self.fiber.stack.push(Value::Closure(closure.clone()));
        self.fiber.stack.extend(args);
        if closure.proto.is_generator {
            return self.new_generator(closure, argc);
        }
        let result = self.push_frame(closure, argc, None).and_then(|_| self.execute(stop_depth));
        if result.is_err() {
            // Leave the fiber as it was before the call.
            self.fiber.frames.truncate(stop_depth);
            self.fiber.stack.truncate(stack_len);
            self.fiber.handlers.truncate(handlers_len);
        }
        self.flush_output();
        result
    }

    fn flush_output(&mut self) {
        if self.in_generator() || !self.sched.current_is_root() {
            // Generator-body output is dropped when the body yields; a child
            // task's output waits in its fiber until the task is joined.
            return;
        }
        if let Some(sink) = self.output_sink.as_mut() {
            if !self.fiber.output.is_empty() {
                sink(&self.fiber.output);
                self.fiber.output.clear();
            }
        }
    }

    // -----------------------------------------------------------------------
    // Calls

    /// Pushes a frame for `closure`, whose callee value and `argc` arguments
    /// are on top of the stack. Adapts arguments to the parameter list
    /// (Harn does not check arity: missing → nil, extra → dropped or rest).
    fn push_frame(&mut self, closure: Rc<Closure>, argc: u32, cont: Option<Box<dyn Continuation>>) -> VmResult<()> {
        if self.fiber.frames.len() + self.parked_frames >= self.options.max_frames {
            return Err(VmError::new(ErrorKind::StackOverflow));
        }
        let base = self.fiber.stack.len() - argc as usize;
        adapt_args(&mut self.fiber.stack, &closure.proto, base);
        let ic_set = if self.options.inline_caches { self.ic.set_for(&closure.proto) } else { 0 };
        self.fiber.frames.push(Frame { closure, ip: 0, base, argc, cont, ic_set });
        self.tick()
    }

    /// Starts frame `frame_index` over (a self tail call, a reused callback
    /// frame) with the arguments from `base` to the top of the stack.
    #[inline(always)]
    fn restart_frame(&mut self, frame_index: usize, proto: &FunctionProto, base: usize) -> VmResult<()> {
        self.fiber.frames[frame_index].argc = (self.fiber.stack.len() - base) as u32;
        adapt_args(&mut self.fiber.stack, proto, base);
        self.tick()
    }

    /// Counts calls and backward jumps; every so often checks the host
    /// interrupt flag and the time limit.
    #[inline(always)]
    fn tick(&mut self) -> VmResult<()> {
        self.budget -= 1;
        if self.budget == 0 {
            return self.check_interrupts();
        }
        Ok(())
    }

    #[cold]
    fn check_interrupts(&mut self) -> VmResult<()> {
        self.budget = CHECK_INTERVAL;
        if self.interrupt.load(AtomicOrdering::Relaxed) {
            return Err(VmError::new(ErrorKind::Interrupted));
        }
        if let Some(deadline) = self.deadline {
            if Instant::now() >= deadline {
                return Err(VmError::limit(
                    LimitKind::Time,
                    format!("time limit of {} ms exceeded", self.options.time_limit_ms.unwrap_or_default()),
                ));
            }
        }
        if self.sched.current_deadline().is_some_and(|d| d <= self.sched.now()) {
            // A `deadline` block ran out while this task computed.
            return Err(self.sched.running_deadline_fired());
        }
        Ok(())
    }

    /// Calls `callee` with `argc` arguments on the stack (callee below them).
    /// Returns true when a new frame was pushed.
    fn call_value(&mut self, argc: usize) -> VmResult<bool> {
        let callee_at = self.fiber.stack.len() - argc - 1;
        match &self.fiber.stack[callee_at] {
            Value::Closure(c) => {
                let c = c.clone();
                if c.proto.is_generator {
                    let g = self.new_generator(c, argc as u32)?;
                    self.fiber.stack.push(g);
                    return Ok(false);
                }
                self.push_frame(c, argc as u32, None)?;
                Ok(true)
            }
            Value::Builtin(id) => {
                let id = *id;
                let flow = self.invoke_builtin(id, callee_at + 1)?;
                self.fiber.stack.truncate(callee_at);
                self.finish_native(flow)
            }
            other => Err(VmError::type_error(format!("Cannot call {}", other.display()))),
        }
    }

    /// Runs builtin `id` on the stack values from `args_at` to the top.
    fn invoke_builtin(&mut self, id: u32, args_at: usize) -> VmResult<Flow> {
        if let Some(index) = builtins::concurrency::sched_index(id) {
            return self.sched_builtin(index, args_at);
        }
        let Fiber { stack, output, .. } = &mut self.fiber;
        let mut ctx = Ctx { output, limits: &self.options.limits };
        builtins::call_builtin(&mut ctx, id, &stack[args_at..])
    }

    /// Completes a native call: pushes its value, or starts the Harn call it
    /// asked for. Returns true when a new frame was pushed.
    fn finish_native(&mut self, mut flow: Flow) -> VmResult<bool> {
        if !self.fiber.output.is_empty() && !self.fiber.frames.is_empty() {
            self.flush_output();
        }
        loop {
            match flow {
                Flow::Done(v) => {
                    self.fiber.stack.push(v);
                    return Ok(false);
                }
                Flow::Call { callee, args, then } => match callee.into_closure() {
                    Ok(c) => {
                        // The hot path of every callback loop (`xs.map(f)`): one
                        // clone of the closure, arguments moved onto the stack.
                        let argc = args.len() as u32;
                        let stack = &mut self.fiber.stack;
                        stack.reserve(args.len() + 1);
                        stack.push(Value::Closure(c.clone()));
                        for a in args {
                            stack.push(a);
                        }
                        if c.proto.is_generator {
                            let g = self.new_generator(c, argc)?;
                            flow = self.resume(then, g)?;
                            continue;
                        }
                        self.push_frame(c, argc, Some(then))?;
                        return Ok(true);
                    }
                    Err(callee) => match &callee {
                        Value::Object(o) if matches!(**o, Object::Generator(_)) => {
                            match self.resume_generator(o.clone(), then)? {
                                Some(next) => flow = next,
                                None => return Ok(true),
                            }
                        }
                        &Value::Builtin(id) if builtins::concurrency::sched_index(id).is_some() && args.len() <= 255 => {
                            let closure = self.sched_trampoline(id, args.len() as u32);
                            let argc = args.len() as u32;
                            self.fiber.stack.push(Value::Closure(closure.clone()));
                            self.fiber.stack.extend(args);
                            self.push_frame(closure, argc, Some(then))?;
                            return Ok(true);
                        }
                        &Value::Builtin(id) => {
                            let at = self.fiber.stack.len();
                            self.fiber.stack.extend(args);
                            // Not a scheduler builtin (those take the arm above), so it never waits.
                            let inner = self.invoke_builtin(id, at);
                            self.fiber.stack.truncate(at);
                            flow = match inner? {
                                Flow::Done(r) => self.resume(then, r)?,
                                Flow::Call { callee, args, then: first } => {
                                    Flow::Call { callee, args, then: Box::new(Chain { first, second: then }) }
                                }
                            };
                        }
                        other => return Err(VmError::type_error(format!("Cannot call {}", other.display()))),
                    },
                },
            }
        }
    }

    fn resume(&mut self, cont: Box<dyn Continuation>, result: Value) -> VmResult<Flow> {
        let mut ctx = Ctx { output: &mut self.fiber.output, limits: &self.options.limits };
        cont.resume(&mut ctx, result)
    }

    /// `recv.name(args)` through the site's inline cache: a bound builtin
    /// method runs inline; otherwise the generic dispatch, then the site
    /// learns (replace-on-miss) from the receiver.
    fn call_method_cached(
        &mut self,
        consts: &[Value],
        name_idx: usize,
        argc: usize,
        ic_base: usize,
        slot: u16,
    ) -> VmResult<bool> {
        let name = const_name(consts, name_idx);
        let recv_at = self.fiber.stack.len() - argc - 1;
        let resolved = match self.ic.method_entry_at(ic_base, slot) {
            None => return self.call_method(name, argc),
            Some((entry, namespace_key)) => {
                if let Some(v) = ic::method_hit(entry, name_idx as u16, &self.fiber.stack[recv_at..], namespace_key) {
                    self.fiber.stack.truncate(recv_at);
                    self.fiber.stack.push(v);
                    return Ok(false);
                }
                ic::MethodTarget::resolve(&self.fiber.stack[recv_at], name, argc, namespace_key)
            }
        };
        let switched = self.call_method(name, argc)?;
        if let Some(entry) = self.ic.entry_at(ic_base, slot) {
            ic::method_learn(entry, name_idx as u16, argc, resolved);
        }
        Ok(switched)
    }

    /// `recv.name(args)`: struct impl methods, then builtin methods.
    fn call_method(&mut self, name: &HStr, argc: usize) -> VmResult<bool> {
        let recv_at = self.fiber.stack.len() - argc - 1;
        if let Value::Struct(s) = &self.fiber.stack[recv_at] {
            let method = self.impls.get(s.name()).and_then(|m| m.get(name)).cloned();
            if let Some(callee) = method {
                // The receiver becomes the first argument (`self`).
                self.fiber.stack.insert(recv_at, callee);
                return self.call_value(argc + 1);
            }
        }
        let flow = {
            let Fiber { stack, output, .. } = &mut self.fiber;
            let mut ctx = Ctx { output, limits: &self.options.limits };
            let (recv, args) = stack[recv_at..].split_first().expect("receiver is on the stack");
            methods::call_method(&mut ctx, recv, name, args)?
        };
        self.fiber.stack.truncate(recv_at);
        self.finish_native(flow)
    }

    // -----------------------------------------------------------------------
    // Errors

    /// Unwinds to the innermost handler of this run, or returns the error
    /// (with its Harn stack) when none can catch it.
    fn handle_error(&mut self, mut err: VmError, mut op_at: usize, stop_depth: usize) -> VmResult<()> {
        loop {
            if let Some(frame) = self.fiber.frames.last() {
                let proto = &frame.closure.proto;
                err.set_location_if_unset(&proto.file, proto.chunk.pos_at(op_at).line);
            }
            // Any handler of a generator body is its own; the host call's
            // fiber may only use handlers above `stop_depth`.
            let floor = if self.in_generator() { 0 } else { stop_depth };
            if err.is_catchable() {
                if let Some(h) = self.fiber.handlers.last() {
                    if h.frame_depth > floor {
                        let h = self.fiber.handlers.pop().expect("checked above");
                        self.fiber.frames.truncate(h.frame_depth);
                        self.fiber.stack.truncate(h.stack_len);
                        self.fiber.stack.push(Value::Object(Rc::new(Object::Error(err))));
                        self.fiber.frames.last_mut().expect("handler frame exists").ip = h.catch_ip;
                        return Ok(());
                    }
                }
            }
            if !self.in_generator() {
                break;
            }
            (err, op_at) = self.generator_failed(err);
        }
        if err.is_catchable() {
            if let Some(h) = self.fiber.handlers.last() {
                if h.frame_depth > stop_depth {
                    let h = self.fiber.handlers.pop().expect("checked above");
                    self.fiber.frames.truncate(h.frame_depth);
                    self.fiber.stack.truncate(h.stack_len);
                    self.fiber.stack.push(Value::Object(Rc::new(Object::Error(err))));
                    self.fiber.frames.last_mut().expect("handler frame exists").ip = h.catch_ip;
                    return Ok(());
                }
            }
        }
        if err.0.stack.is_empty() {
            err.0.stack = self.stack_trace(op_at);
        }
        Err(err)
    }

    /// The Harn call stack, innermost first.
    fn stack_trace(&self, op_at: usize) -> Vec<StackEntry> {
        let n = self.fiber.frames.len();
        self.fiber
            .frames
            .iter()
            .enumerate()
            .rev()
            .map(|(i, f)| {
                let at = if i + 1 == n { op_at } else { f.ip.saturating_sub(1) };
                let proto = &f.closure.proto;
                StackEntry { function: proto.name.clone(), file: proto.file.to_string(), line: proto.chunk.pos_at(at).line }
            })
            .collect()
    }

    fn undefined_variable(&self, name: &str) -> VmError {
        let mut candidates: Vec<&str> = builtins::builtin_names().collect();
        if let Some(frame) = self.fiber.frames.last() {
            candidates.extend(frame.closure.proto.local_names.iter().map(String::as_str));
            candidates.extend(frame.closure.proto.capture_names.iter().map(String::as_str));
            candidates.extend(frame.closure.module.names.iter().map(String::as_str));
        }
        VmError::new(ErrorKind::UndefinedVariable(name.to_string(), closest_match(name, candidates)))
    }

    // -----------------------------------------------------------------------
    // The dispatch loop

    /// Runs until the frame at depth `stop_depth` returns.
    fn execute(&mut self, stop_depth: usize) -> VmResult<Value> {
        let outer_floor = std::mem::replace(&mut self.park_floor, self.parked.len());
        let result = loop {
            match self.run_frame(stop_depth) {
                Exit::Switch => {}
                Exit::Done(v) => break Ok(v),
                Exit::Error(mut e, op_at) => {
                    if self.sched.cancel_suspend() {
                        // A nested run (module initialisation) cannot switch tasks.
                        e = VmError::runtime("cannot wait for other tasks while a module initialises");
                    }
                    if let Err(e) = self.handle_error(e, op_at, stop_depth) {
                        break Err(e);
                    }
                }
            }
        };
        self.park_floor = outer_floor;
        result
    }

    /// Executes instructions, following calls and returns between frames,
    /// until the run finishes (its outermost frame returns) or an op fails.
    fn run_frame(&mut self, stop_depth: usize) -> Exit {
        // A call or return switches frames: the next iteration reloads the
        // frame's state (without leaving this function).
        'frame: loop {
            let frame_index = self.fiber.frames.len() - 1;
            let closure = self.fiber.frames[frame_index].closure.clone();
            let proto: &FunctionProto = &closure.proto;
            let code: &[u8] = &proto.chunk.code;
            let consts = &proto.chunk.constants;
            let base = self.fiber.frames[frame_index].base;
            let mut ip = self.fiber.frames[frame_index].ip;
            let ic_on = self.options.inline_caches;
            let ic_set = self.fiber.frames[frame_index].ic_set;
            let ic_base = if ic_on { self.ic.base_of(ic_set) } else { 0 };

            // Operand reads skip bounds checks: `Chunk::emit` always writes an
            // opcode together with all of its operands, so an instruction that
            // starts inside `code` ends inside it (checked in debug builds).
            macro_rules! u8_at {
                () => {{
                    debug_assert!(ip < code.len());
                    // SAFETY: see above.
                    let v = unsafe { *code.get_unchecked(ip) };
                    ip += 1;
                    v as usize
                }};
            }
            macro_rules! u16_at {
                () => {{
                    debug_assert!(ip + 2 <= code.len());
                    // SAFETY: see above.
                    let v = unsafe { u16::from_le_bytes([*code.get_unchecked(ip), *code.get_unchecked(ip + 1)]) };
                    ip += 2;
                    v as usize
                }};
            }
            macro_rules! u32_at {
                () => {{
                    debug_assert!(ip + 4 <= code.len());
                    // SAFETY: see above.
                    let v = unsafe { std::ptr::read_unaligned(code.as_ptr().add(ip) as *const u32) }.to_le();
                    ip += 4;
                    v as usize
                }};
            }
            macro_rules! name_at {
                () => {{
                    let i = u16_at!();
                    match &consts[i] {
                        Value::Str(s) => s.clone(),
                        _ => unreachable!("name operand must be a string constant"),
                    }
                }};
            }
            macro_rules! stack {
                () => {
                    self.fiber.stack
                };
            }
            // Stack slots by index, unchecked: the compiler emits balanced
            // code, so every op finds the operands and locals it reads
            // (checked in debug builds; chunks only come from the compiler).
            macro_rules! at {
                ($i:expr) => {{
                    let i = $i;
                    debug_assert!(i < self.fiber.stack.len(), "stack slot {i} out of range");
                    // SAFETY: see above.
                    unsafe { self.fiber.stack.get_unchecked(i) }
                }};
            }
            macro_rules! at_mut {
                ($i:expr) => {{
                    let i = $i;
                    debug_assert!(i < self.fiber.stack.len(), "stack slot {i} out of range");
                    // SAFETY: see `at!`.
                    unsafe { self.fiber.stack.get_unchecked_mut(i) }
                }};
            }
            macro_rules! pop {
                () => {{
                    let n = stack!().len();
                    debug_assert!(n > 0, "stack underflow");
                    // SAFETY: see `at!`; the length drops first, so the slot is moved out exactly once.
                    unsafe {
                        stack!().set_len(n - 1);
                        std::ptr::read(stack!().as_ptr().add(n - 1))
                    }
                }};
            }
            macro_rules! top {
                () => {
                    at_mut!(stack!().len() - 1)
                };
            }
            macro_rules! save_ip {
                () => {
                    self.fiber.frames[frame_index].ip = ip
                };
            }

            let mut op_at;
            // Each op evaluates to `Ok(())` or an error; `try_op!` routes errors out.
            macro_rules! try_op {
                ($e:expr) => {
                    match $e {
                        Ok(v) => v,
                        Err(err) => {
                            save_ip!();
                            return Exit::Error(err, op_at);
                        }
                    }
                };
            }
            // An adaptive binary op on `$a` and `$b` (both `&Value`) through the
            // site's inline cache when on, else the plain int fast path and the
            // generic op; evaluates to `VmResult<Value>`. A site specialized on
            // ints runs the same int fast path as the uncached op, plus one hit
            // count; other hits run the shape's kernel; anything else runs the
            // generic op and the state machine (`ic::binary_slow`). Every form of
            // the op (stack operands, constant operand, fused with a jump) goes
            // through here, so they share one cache semantics. The flag says the
            // result came from the int fast path (both operands ints: no
            // destructors to run).
            macro_rules! eval_binary {
                ($slot:expr, $bop:expr, $int_fast:expr, $slow:expr, $a:expr, $b:expr) => {{
                    let (a, b): (&Value, &Value) = ($a, $b);
                    match if ic_on { self.ic.entry_at(ic_base, $slot) } else { None } {
                        Some(entry) => {
                            let fast = match (a, b) {
                                (Value::Int(x), Value::Int(y)) => match ic::int_specialized_hits(entry, $bop) {
                                    Some(hits) => match $int_fast(*x, *y) {
                                        Some(v) => {
                                            *hits += 1;
                                            Some(v)
                                        }
                                        None => None,
                                    },
                                    None => None,
                                },
                                _ => None,
                            };
                            match fast {
                                Some(v) => Ok((v, true)),
                                None => match ic::specialized_hit(entry, $bop, a, b) {
                                    Some(v) => Ok((v, false)),
                                    None => ic::binary_slow(entry, $bop, a, b, $slow).map(|v| (v, false)),
                                },
                            }
                        }
                        None => match (a, b) {
                            (Value::Int(x), Value::Int(y)) => match $int_fast(*x, *y) {
                                Some(v) => Ok((v, true)),
                                None => $slow(a, b).map(|v| (v, false)),
                            },
                            _ => $slow(a, b).map(|v| (v, false)),
                        },
                    }
                }};
            }
            // `$bop` in one of its encodings: `stack` (both operands on the
            // stack), `constant` (right operand a constant), `stack_jump` and
            // `constant_jump` (the same, then `JUMP_IF_FALSE` on the result).
            // The int fast path of a site on int operands `$x`, `$y`: the
            // kernel's answer when the cache is off or the site has no slot,
            // or when its entry is specialized on ints for `$bop` (counting
            // the hit). None sends the op to `eval_binary!`, which runs the
            // cache's state machine. Kept apart so the hot path writes its
            // int result straight to the stack.
            macro_rules! int_site {
                ($slot:expr, $bop:expr, $int_fast:expr, $x:expr, $y:expr) => {{
                    if ic_on {
                        match self.ic.entry_at(ic_base, $slot) {
                            Some(entry) => match ic::int_specialized_hits(entry, $bop) {
                                Some(hits) => {
                                    let r = $int_fast($x, $y);
                                    if r.is_some() {
                                        *hits += 1;
                                    }
                                    r
                                }
                                None => None,
                            },
                            None => $int_fast($x, $y),
                        }
                    } else {
                        $int_fast($x, $y)
                    }
                }};
            }
            // `$bop` in one of its encodings: `stack` (both operands on the
            // stack), `constant` (right operand a constant), `stack_jump` and
            // `constant_jump` (the same, then `JUMP_IF_FALSE` on the result).
            macro_rules! binary {
                (stack, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let slot = u16_at!() as u16;
                    let n = stack!().len();
                    let fast = match (at!(n - 2), at!(n - 1)) {
                        (Value::Int(x), Value::Int(y)) => int_site!(slot, $bop, $int_fast, *x, *y),
                        _ => None,
                    };
                    match fast {
                        Some(v) => replace_scalar_pair(&mut stack!(), v),
                        None => {
                            let v = try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(n - 2), at!(n - 1))).0;
                            replace_pair(&mut stack!(), v);
                        }
                    }
                }};
                (constant, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let k = u16_at!();
                    let slot = u16_at!() as u16;
                    let n = stack!().len();
                    let fast = match (at!(n - 1), &consts[k]) {
                        (Value::Int(x), Value::Int(y)) => int_site!(slot, $bop, $int_fast, *x, *y),
                        _ => None,
                    };
                    match fast {
                        // SAFETY: the old value is an int, which owns no heap data.
                        Some(v) => {
                            let dst = at_mut!(n - 1);
                            unsafe { std::ptr::write(dst, v) }
                        }
                        None => {
                            let v = try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(n - 1), &consts[k])).0;
                            store(at_mut!(n - 1), v);
                        }
                    }
                }};
                (stack_jump, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let target = u32_at!();
                    let slot = u16_at!() as u16;
                    let n = stack!().len();
                    let fast = match (at!(n - 2), at!(n - 1)) {
                        (Value::Int(x), Value::Int(y)) => {
                            int_site!(slot, $bop, |x, y| $int_fast(x, y).map(|v: Value| v.is_truthy()), *x, *y)
                        }
                        _ => None,
                    };
                    let truthy = match fast {
                        Some(t) => {
                            // SAFETY: n >= 2 (both were just read) and both are ints, which own no heap data.
                            unsafe { stack!().set_len(n - 2) };
                            t
                        }
                        None => {
                            let v = try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(n - 2), at!(n - 1))).0;
                            discard_pair(&mut stack!());
                            consume_truthy(v)
                        }
                    };
                    if !truthy {
                        ip = target;
                    }
                }};
                (constant_jump, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let k = u16_at!();
                    let target = u32_at!();
                    let slot = u16_at!() as u16;
                    let n = stack!().len();
                    let fast = match (at!(n - 1), &consts[k]) {
                        (Value::Int(x), Value::Int(y)) => {
                            int_site!(slot, $bop, |x, y| $int_fast(x, y).map(|v: Value| v.is_truthy()), *x, *y)
                        }
                        _ => None,
                    };
                    let truthy = match fast {
                        Some(t) => {
                            // SAFETY: n >= 1 (just read) and the value is an int, which owns no heap data.
                            unsafe { stack!().set_len(n - 1) };
                            t
                        }
                        None => {
                            let v = try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(n - 1), &consts[k])).0;
                            discard_top(&mut stack!());
                            consume_truthy(v)
                        }
                    };
                    if !truthy {
                        ip = target;
                    }
                }};
                // `local OP k`, then `JUMP_IF_FALSE`: the local is read in place.
                (local_constant_jump, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let local = base + u16_at!();
                    let k = u16_at!();
                    let target = u32_at!();
                    let slot = u16_at!() as u16;
                    let fast = match (at!(local), &consts[k]) {
                        (Value::Int(x), Value::Int(y)) => {
                            int_site!(slot, $bop, |x, y| $int_fast(x, y).map(|v: Value| v.is_truthy()), *x, *y)
                        }
                        _ => None,
                    };
                    let truthy = match fast {
                        Some(t) => t,
                        None => consume_truthy(try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(local), &consts[k])).0),
                    };
                    if !truthy {
                        ip = target;
                    }
                }};
                // `a OP local` on the top of the stack, the local read in place.
                (local, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let local = base + u16_at!();
                    let slot = u16_at!() as u16;
                    let n = stack!().len();
                    let fast = match (at!(n - 1), at!(local)) {
                        (Value::Int(x), Value::Int(y)) => int_site!(slot, $bop, $int_fast, *x, *y),
                        _ => None,
                    };
                    match fast {
                        // SAFETY: the old value is an int, which owns no heap data.
                        Some(v) => {
                            let dst = at_mut!(n - 1);
                            unsafe { std::ptr::write(dst, v) }
                        }
                        None => {
                            let v = try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(n - 1), at!(local))).0;
                            store(at_mut!(n - 1), v);
                        }
                    }
                }};
                // `local = local OP k`, in place.
                (local_constant_set, $bop:expr, $int_fast:expr, $slow:expr) => {{
                    let local = base + u16_at!();
                    let k = u16_at!();
                    let slot = u16_at!() as u16;
                    let fast = match (at!(local), &consts[k]) {
                        (Value::Int(x), Value::Int(y)) => int_site!(slot, $bop, $int_fast, *x, *y),
                        _ => None,
                    };
                    match fast {
                        // SAFETY: the old value is an int, which owns no heap data.
                        Some(v) => {
                            let dst = at_mut!(local);
                            unsafe { std::ptr::write(dst, v) }
                        }
                        None => {
                            let v = try_op!(eval_binary!(slot, $bop, $int_fast, $slow, at!(local), &consts[k])).0;
                            store(at_mut!(local), v);
                        }
                    }
                }};
            }
            // The kernels of each adaptive op: (int fast path, generic op).
            macro_rules! add {
                ($form:ident) => {
                    binary!($form, BinaryOp::Add, |x: i64, y: i64| x.checked_add(y).map(Value::Int), |a: &Value, b: &Value| {
                        ops::add_limited(a, b, &self.options.limits)
                    })
                };
            }
            macro_rules! sub {
                ($form:ident) => {
                    binary!($form, BinaryOp::Sub, |x: i64, y: i64| x.checked_sub(y).map(Value::Int), ops::sub)
                };
            }
            macro_rules! mul {
                ($form:ident) => {
                    binary!($form, BinaryOp::Mul, |x: i64, y: i64| x.checked_mul(y).map(Value::Int), |a: &Value, b: &Value| {
                        ops::mul_limited(a, b, &self.options.limits)
                    })
                };
            }
            macro_rules! div {
                ($form:ident) => {
                    binary!(
                        $form,
                        BinaryOp::Div,
                        |x: i64, y: i64| if y != 0 { x.checked_div(y).map(Value::Int) } else { None },
                        ops::div
                    )
                };
            }
            macro_rules! rem {
                ($form:ident) => {
                    binary!(
                        $form,
                        BinaryOp::Mod,
                        |x: i64, y: i64| if y != 0 { x.checked_rem(y).map(Value::Int) } else { None },
                        ops::rem
                    )
                };
            }
            macro_rules! equal {
                ($form:ident, $bop:expr, $want:expr) => {
                    binary!($form, $bop, |x: i64, y: i64| Some(Value::Bool((x == y) == $want)), |a: &Value,
                                                                                                 b: &Value|
                     -> VmResult<Value> {
                        Ok(Value::Bool(values_equal(a, b) == $want))
                    })
                };
            }
            macro_rules! compare {
                ($form:ident, $bop:expr, $pred:expr) => {
                    binary!($form, $bop, |x: i64, y: i64| Some(Value::Bool($pred(x.cmp(&y)))), |a: &Value,
                                                                                                b: &Value|
                     -> VmResult<Value> {
                        Ok(Value::Bool($pred(compare_values(a, b))))
                    })
                };
            }

            #[cfg(feature = "op-pair-stats")]
            let mut prev_op: Option<Op> = None;
            loop {
                op_at = ip;
                debug_assert!(ip < code.len(), "ip {ip} past the end of the code");
                // SAFETY: every instruction is written whole by `Chunk::emit`, the
                // last one is a `RETURN`, and jumps target instruction starts, so
                // `ip` is always an opcode byte inside `code`.
                let op = unsafe { Op::decode_unchecked(*code.get_unchecked(ip)) };
                ip += 1;
                #[cfg(feature = "op-pair-stats")]
                {
                    if let Some(prev) = prev_op {
                        OP_PAIRS.with(|pairs| pairs.borrow_mut()[prev as usize * Op::COUNT + op as usize] += 1);
                    }
                    prev_op = Some(op);
                }
                match op {
                    Op::Const => {
                        let k = u16_at!();
                        stack!().push(consts[k].dup());
                    }
                    Op::Nil => stack!().push(Value::Nil),
                    Op::True => stack!().push(Value::Bool(true)),
                    Op::False => stack!().push(Value::Bool(false)),
                    Op::Pop => discard_top(&mut stack!()),
                    Op::Dup => {
                        let v = top!().clone();
                        stack!().push(v);
                    }
                    Op::Swap => {
                        let n = stack!().len();
                        stack!().swap(n - 1, n - 2);
                    }

                    Op::GetLocal => {
                        let slot = u16_at!();
                        let v = at!(base + slot).dup();
                        stack!().push(v);
                    }
                    Op::SetLocal => {
                        let slot = u16_at!();
                        let v = pop!();
                        store(at_mut!(base + slot), v);
                    }
                    Op::GetCapture => {
                        let i = u16_at!();
                        stack!().push(closure.captures[i].dup());
                    }
                    Op::GetSelf => stack!().push(Value::Closure(closure.clone())),
                    Op::GetGlobal => {
                        let g = u16_at!();
                        let module = &closure.module;
                        let v = module.globals.borrow()[g].clone();
                        if v.is_nil() && !module.defined.borrow()[g] {
                            try_op!(Err(self.undefined_variable(&module.names[g])));
                        }
                        stack!().push(v);
                    }
                    Op::SetGlobal => {
                        let g = u16_at!();
                        let v = pop!();
                        closure.module.globals.borrow_mut()[g] = v;
                        closure.module.defined.borrow_mut()[g] = true;
                    }
                    Op::GetLocalCell => {
                        let slot = u16_at!();
                        let v = match &stack!()[base + slot] {
                            Value::Object(o) => match &**o {
                                Object::Cell(c) => c.borrow().clone(),
                                _ => Value::Nil,
                            },
                            _ => Value::Nil,
                        };
                        stack!().push(v);
                    }
                    Op::SetLocalCell => {
                        let slot = u16_at!();
                        let v = pop!();
                        if let Value::Object(o) = &stack!()[base + slot] {
                            if let Object::Cell(c) = &**o {
                                *c.borrow_mut() = v;
                            }
                        }
                    }
                    Op::NewCell => {
                        let slot = u16_at!();
                        stack!()[base + slot] = Value::Object(Rc::new(Object::Cell(Default::default())));
                    }
                    Op::GetCaptureCell => {
                        let i = u16_at!();
                        let v = match &closure.captures[i] {
                            Value::Object(o) => match &**o {
                                Object::Cell(c) => c.borrow().clone(),
                                _ => Value::Nil,
                            },
                            other => other.clone(),
                        };
                        stack!().push(v);
                    }
                    Op::GetBuiltin => {
                        let id = u16_at!();
                        stack!().push(Value::Builtin(id as u32));
                    }
                    Op::ThrowUndefined => {
                        let name = name_at!();
                        try_op!(Err(self.undefined_variable(&name)));
                    }
                    Op::ThrowUndefinedBuiltin => {
                        let text = name_at!();
                        try_op!(Err(VmError::new(ErrorKind::UndefinedBuiltin(text.to_string(), None))));
                    }
                    Op::ThrowImmutable => {
                        let name = name_at!();
                        try_op!(Err(VmError::new(ErrorKind::ImmutableAssignment(name.to_string()))));
                    }
                    Op::ThrowRedeclare => {
                        let name = name_at!();
                        try_op!(Err(VmError::runtime(format!(
                            "Cannot redeclare immutable variable '{name}' in the same scope (use 'var' for mutable bindings)"
                        ))));
                    }

                    Op::Add => add!(stack),
                    Op::Sub => sub!(stack),
                    Op::Mul => mul!(stack),
                    Op::Div => div!(stack),
                    Op::Mod => rem!(stack),
                    Op::AddConst => add!(constant),
                    Op::SubConst => sub!(constant),
                    Op::MulConst => mul!(constant),
                    Op::DivConst => div!(constant),
                    Op::ModConst => rem!(constant),
                    Op::Pow => {
                        let b = pop!();
                        let a = top!();
                        *a = try_op!(ops::pow(a, &b));
                    }
                    Op::Neg => {
                        let a = top!();
                        *a = match &*a {
                            Value::Int(x) if *x != i64::MIN => Value::Int(-x),
                            _ => try_op!(ops::neg(a)),
                        };
                    }
                    Op::Not => {
                        let a = top!();
                        *a = Value::Bool(!a.is_truthy());
                    }
                    Op::Eq => equal!(stack, BinaryOp::Eq, true),
                    Op::Ne => equal!(stack, BinaryOp::Ne, false),
                    Op::Lt => compare!(stack, BinaryOp::Lt, std::cmp::Ordering::is_lt),
                    Op::Gt => compare!(stack, BinaryOp::Gt, std::cmp::Ordering::is_gt),
                    Op::Le => compare!(stack, BinaryOp::Le, std::cmp::Ordering::is_le),
                    Op::Ge => compare!(stack, BinaryOp::Ge, std::cmp::Ordering::is_ge),
                    Op::EqConst => equal!(constant, BinaryOp::Eq, true),
                    Op::NeConst => equal!(constant, BinaryOp::Ne, false),
                    Op::LtConst => compare!(constant, BinaryOp::Lt, std::cmp::Ordering::is_lt),
                    Op::GtConst => compare!(constant, BinaryOp::Gt, std::cmp::Ordering::is_gt),
                    Op::LeConst => compare!(constant, BinaryOp::Le, std::cmp::Ordering::is_le),
                    Op::GeConst => compare!(constant, BinaryOp::Ge, std::cmp::Ordering::is_ge),
                    Op::EqJumpIfFalse => equal!(stack_jump, BinaryOp::Eq, true),
                    Op::NeJumpIfFalse => equal!(stack_jump, BinaryOp::Ne, false),
                    Op::LtJumpIfFalse => compare!(stack_jump, BinaryOp::Lt, std::cmp::Ordering::is_lt),
                    Op::GtJumpIfFalse => compare!(stack_jump, BinaryOp::Gt, std::cmp::Ordering::is_gt),
                    Op::LeJumpIfFalse => compare!(stack_jump, BinaryOp::Le, std::cmp::Ordering::is_le),
                    Op::GeJumpIfFalse => compare!(stack_jump, BinaryOp::Ge, std::cmp::Ordering::is_ge),
                    Op::EqConstJumpIfFalse => equal!(constant_jump, BinaryOp::Eq, true),
                    Op::NeConstJumpIfFalse => equal!(constant_jump, BinaryOp::Ne, false),
                    Op::LtConstJumpIfFalse => compare!(constant_jump, BinaryOp::Lt, std::cmp::Ordering::is_lt),
                    Op::GtConstJumpIfFalse => compare!(constant_jump, BinaryOp::Gt, std::cmp::Ordering::is_gt),
                    Op::LeConstJumpIfFalse => compare!(constant_jump, BinaryOp::Le, std::cmp::Ordering::is_le),
                    Op::GeConstJumpIfFalse => compare!(constant_jump, BinaryOp::Ge, std::cmp::Ordering::is_ge),
                    Op::EqLocalConstJumpIfFalse => equal!(local_constant_jump, BinaryOp::Eq, true),
                    Op::NeLocalConstJumpIfFalse => equal!(local_constant_jump, BinaryOp::Ne, false),
                    Op::LtLocalConstJumpIfFalse => compare!(local_constant_jump, BinaryOp::Lt, std::cmp::Ordering::is_lt),
                    Op::GtLocalConstJumpIfFalse => compare!(local_constant_jump, BinaryOp::Gt, std::cmp::Ordering::is_gt),
                    Op::LeLocalConstJumpIfFalse => compare!(local_constant_jump, BinaryOp::Le, std::cmp::Ordering::is_le),
                    Op::GeLocalConstJumpIfFalse => compare!(local_constant_jump, BinaryOp::Ge, std::cmp::Ordering::is_ge),
                    Op::AddLocal => add!(local),
                    Op::SubLocal => sub!(local),
                    Op::MulLocal => mul!(local),
                    Op::AddConstToLocal => add!(local_constant_set),
                    Op::SubConstFromLocal => sub!(local_constant_set),
                    Op::In | Op::NotIn => {
                        let coll = pop!();
                        let item = top!();
                        let found = ops::contains(item, &coll);
                        *item = Value::Bool(found == (op == Op::In));
                    }
                    Op::ToBool => {
                        let a = top!();
                        *a = Value::Bool(a.is_truthy());
                    }
                    Op::BuildRange => {
                        let inclusive = u8_at!() == 1;
                        let end = pop!();
                        let start = top!();
                        *start = match (&*start, &end) {
                            (Value::Int(s), Value::Int(e)) => Value::range(*s, *e, inclusive),
                            (s, e) => try_op!(Err(VmError::type_error(format!(
                                "range bounds must be integers, got {} and {}",
                                s.type_name(),
                                e.type_name()
                            )))),
                        };
                    }

                    Op::Jump => {
                        let target = u32_at!();
                        // `<=`: `while true {}` is a jump to itself.
                        if target <= op_at {
                            try_op!(self.tick());
                        }
                        ip = target;
                    }
                    Op::JumpIfFalse => {
                        let target = u32_at!();
                        if !stack!().last().expect("stack underflow").is_truthy() {
                            ip = target;
                        }
                        discard_top(&mut stack!());
                    }
                    Op::JumpIfTrue => {
                        let target = u32_at!();
                        if stack!().last().expect("stack underflow").is_truthy() {
                            ip = target;
                        }
                        discard_top(&mut stack!());
                    }
                    Op::JumpIfNotNil => {
                        let target = u32_at!();
                        if top!().is_nil() {
                            pop!();
                        } else {
                            ip = target;
                        }
                    }
                    Op::JumpIfNil => {
                        let target = u32_at!();
                        if top!().is_nil() {
                            ip = target;
                        }
                    }

                    Op::Call => {
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        save_ip!();
                        if ic_on {
                            if let Some(entry) = self.ic.entry_at(ic_base, slot) {
                                let callee = at!(self.fiber.stack.len() - argc - 1);
                                // A specialized hit on a plain closure pushes its frame directly.
                                if ic::observe_call(entry, argc as u32, callee) {
                                    if let Value::Closure(c) = callee {
                                        if !c.proto.is_generator {
                                            let c = c.clone();
                                            try_op!(self.push_frame(c, argc as u32, None));
                                            continue 'frame;
                                        }
                                    }
                                }
                            }
                        }
                        if try_op!(self.call_value(argc)) {
                            continue 'frame;
                        }
                    }
                    Op::CallBuiltin => {
                        let id = u16_at!() as u32;
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        if ic_on {
                            if let Some(entry) = self.ic.entry_at(ic_base, slot) {
                                ic::observe_call(entry, argc as u32, &Value::Builtin(id));
                            }
                        }
                        save_ip!();
                        let args_at = stack!().len() - argc;
                        let flow = try_op!(self.invoke_builtin(id, args_at));
                        stack!().truncate(args_at);
                        if try_op!(self.finish_native(flow)) {
                            continue 'frame;
                        }
                    }
                    Op::CallSpread => {
                        let args = pop!();
                        let argc = try_op!(push_spread_args(&mut stack!(), &args));
                        save_ip!();
                        if try_op!(self.call_value(argc)) {
                            continue 'frame;
                        }
                    }
                    Op::Pipe => {
                        let callee = pop!();
                        if !callee.is_callable() {
                            try_op!(Err(VmError::type_error(format!("cannot pipe into {}", callee.type_name()))));
                        }
                        let arg = pop!();
                        stack!().push(callee);
                        stack!().push(arg);
                        save_ip!();
                        if try_op!(self.call_value(1)) {
                            continue 'frame;
                        }
                    }
                    Op::TailCall => {
                        let argc = u8_at!();
                        let callee_at = stack!().len() - argc - 1;
                        if matches!(at!(callee_at), Value::Closure(c) if Rc::ptr_eq(c, &closure) && !c.proto.is_generator) {
                            // A self tail call restarts this frame in place: the
                            // old locals and the callee copy go, the arguments
                            // move down to the frame's base.
                            stack!().drain(base..=callee_at);
                            ip = 0;
                            try_op!(self.restart_frame(frame_index, proto, base));
                            continue;
                        }
                        let target = match at!(callee_at) {
                            Value::Closure(c) if !c.proto.is_generator => Some(c.clone()),
                            _ => None,
                        };
                        if let Some(target) = target {
                            // Reuse this frame: move callee and args down over it.
                            let frame = self.fiber.frames.pop().expect("current frame");
                            stack!().drain(frame.base - 1..callee_at);
                            if let Err(e) = self.push_frame(target, argc as u32, frame.cont) {
                                // Restore a frame so the error has a location to unwind from.
                                self.fiber.frames.push(Frame { closure: closure.clone(), ip, base, argc: 0, cont: None, ic_set });
                                return Exit::Error(e, op_at);
                            }
                            continue 'frame;
                        }
                        save_ip!();
                        if try_op!(self.call_value(argc)) {
                            continue 'frame;
                        }
                    }
                    Op::Return => {
                        let value = pop!();
                        // Inline when this is not the run's outermost frame (so
                        // not a generator body's either), no handler of this
                        // frame is left and no output waits to be flushed.
                        let depth = frame_index;
                        let inline = depth > stop_depth
                            && self.fiber.handlers.last().is_none_or(|h| h.frame_depth <= depth)
                            && self.fiber.output.is_empty();
                        if inline {
                            if self.fiber.frames[frame_index].cont.is_none() {
                                // The common case: back to the Harn caller that made the call.
                                self.fiber.frames.pop();
                                self.fiber.stack.truncate(base - 1);
                                stack!().push(value);
                                continue 'frame;
                            }
                            let cont = self.fiber.frames[frame_index].cont.take().expect("checked above");
                            // A callback of a builtin loop (`xs.map(f)`): when the loop
                            // calls the same closure again, this frame is reused for
                            // the next call instead of popped and pushed.
                            let flow = match self.resume(cont, value) {
                                Ok(Flow::Call { callee, args, then }) if matches!(&callee, Value::Closure(c) if Rc::ptr_eq(c, &closure)) =>
                                {
                                    drop(callee);
                                    self.fiber.stack.truncate(base);
                                    self.fiber.stack.extend(args);
                                    self.fiber.frames[frame_index].cont = Some(then);
                                    if !self.fiber.output.is_empty() {
                                        self.flush_output();
                                    }
                                    ip = 0;
                                    try_op!(self.restart_frame(frame_index, proto, base));
                                    continue;
                                }
                                flow => flow,
                            };
                            self.fiber.frames.pop();
                            self.fiber.stack.truncate(base - 1);
                            let finished = flow.and_then(|flow| self.finish_native(flow));
                            match finished {
                                Ok(_) => continue 'frame,
                                Err(e) => return self.native_error(e),
                            }
                        }
                        match self.return_from_frame(value, stop_depth) {
                            // Back in the caller's frame: go on here.
                            Exit::Switch => continue 'frame,
                            exit => return exit,
                        }
                    }
                    Op::Closure => {
                        let f = u16_at!();
                        let child = proto.chunk.functions[f].clone();
                        let captures: Box<[Value]> = child
                            .captures
                            .iter()
                            .map(|src| match *src {
                                CaptureSource::Local(slot) => self.fiber.stack[base + slot as usize].clone(),
                                CaptureSource::Capture(i) => closure.captures[i as usize].clone(),
                                CaptureSource::SelfClosure => Value::Closure(closure.clone()),
                            })
                            .collect();
                        stack!().push(Value::Closure(Rc::new(Closure {
                            proto: child,
                            captures,
                            module: closure.module.clone(),
                        })));
                    }
                    Op::JumpIfArg => {
                        let index = u8_at!();
                        let target = u32_at!();
                        if (index as u32) < self.fiber.frames[frame_index].argc {
                            ip = target;
                        }
                    }

                    Op::CallMethod | Op::CallMethodOpt => {
                        let name_idx = u16_at!();
                        let argc = u8_at!();
                        let slot = u16_at!() as u16;
                        let recv_at = stack!().len() - argc - 1;
                        if op == Op::CallMethodOpt && stack!()[recv_at].is_nil() {
                            stack!().truncate(recv_at);
                            stack!().push(Value::Nil);
                            continue;
                        }
                        save_ip!();
                        let switched = if ic_on {
                            try_op!(self.call_method_cached(consts, name_idx, argc, ic_base, slot))
                        } else {
                            try_op!(self.call_method(const_name(consts, name_idx), argc))
                        };
                        if switched {
                            continue 'frame;
                        }
                    }
                    Op::CallMethodSpread => {
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        let args = pop!();
                        let argc = try_op!(push_spread_args(&mut stack!(), &args));
                        save_ip!();
                        let switched = if ic_on && argc <= u8::MAX as usize {
                            try_op!(self.call_method_cached(consts, name_idx, argc, ic_base, slot))
                        } else {
                            try_op!(self.call_method(const_name(consts, name_idx), argc))
                        };
                        if switched {
                            continue 'frame;
                        }
                    }

                    Op::BuildList => {
                        let n = u16_at!();
                        let at = stack!().len() - n;
                        let items: Vec<Value> = stack!().drain(at..).collect();
                        stack!().push(Value::list(items));
                    }
                    Op::ListAppend => {
                        let v = pop!();
                        if let Value::List(items) = top!() {
                            Rc::make_mut(items).push(v);
                        }
                    }
                    Op::ListExtend => {
                        let other = pop!();
                        let Value::List(more) = &other else {
                            try_op!(Err(VmError::type_error(format!(
                                "cannot destructure {} with [...] pattern — expected list",
                                other.type_name()
                            ))));
                            unreachable!()
                        };
                        if let Value::List(items) = top!() {
                            Rc::make_mut(items).extend(more.iter().cloned());
                        }
                    }
                    Op::BuildDict => {
                        let n = u16_at!();
                        let at = stack!().len() - 2 * n;
                        let mut map = DictMap::new();
                        let mut pairs = stack!().drain(at..);
                        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
                            map.insert(dict_key(&k), v);
                        }
                        drop(pairs);
                        stack!().push(Value::dict(map));
                    }
                    Op::DictInsert => {
                        let v = pop!();
                        let k = pop!();
                        if let Value::Dict(map) = top!() {
                            Rc::make_mut(map).insert(dict_key(&k), v);
                        }
                    }
                    Op::DictExtend => {
                        let other = pop!();
                        let entries: Vec<(HStr, Value)> = match &other {
                            Value::Dict(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                            Value::Struct(s) => s.layout.fields.iter().cloned().zip(s.values.iter().cloned()).collect(),
                            _ => try_op!(Err(VmError::type_error(format!(
                                "cannot destructure {} with {{...}} pattern — expected dict",
                                other.type_name()
                            )))),
                        };
                        if let Value::Dict(map) = top!() {
                            Rc::make_mut(map).extend(entries);
                        }
                    }
                    Op::Concat => {
                        let n = u16_at!();
                        let at = stack!().len() - n;
                        // Sized up front (strings exactly, anything else at
                        // an int's longest, 20 bytes), so building the string
                        // usually does not reallocate as it grows.
                        let guess: usize = stack!()[at..]
                            .iter()
                            .map(|v| match v {
                                Value::Str(s) => s.len(),
                                _ => 20,
                            })
                            .sum();
                        let mut s = String::with_capacity(guess);
                        for v in &stack!()[at..] {
                            v.write_display(&mut s);
                        }
                        stack!().truncate(at);
                        stack!().push(Value::str(s));
                    }
                    Op::BuildEnum => {
                        let name = name_at!();
                        let n = u8_at!();
                        let at = stack!().len() - n;
                        let fields: Vec<Value> = stack!().drain(at..).collect();
                        let (enum_name, variant) = name.split_once('.').unwrap_or(("", name.as_str()));
                        stack!().push(Value::enum_val(enum_name, variant, fields));
                    }
                    Op::BuildStruct => {
                        let name = name_at!();
                        let fields = pop!();
                        let v = try_op!(self.build_struct(&name, &fields));
                        stack!().push(v);
                    }
                    Op::DefineStruct => {
                        let name = name_at!();
                        let fields = pop!();
                        let names: Vec<HStr> = match &fields {
                            Value::List(items) => {
                                items.iter().filter_map(|f| f.as_str().map(|s| Rc::new(s.to_string()))).collect()
                            }
                            _ => Vec::new(),
                        };
                        self.structs.insert(name.to_string(), Rc::new(StructLayout { name: name.clone(), fields: names }));
                    }
                    Op::DefineImpl => {
                        let name = name_at!();
                        let methods = pop!();
                        if let Value::Dict(m) = &methods {
                            let merged = match self.impls.get(name.as_str()) {
                                Some(existing) => {
                                    let mut all = (**existing).clone();
                                    all.extend(m.iter().map(|(k, v)| (k.clone(), v.clone())));
                                    Rc::new(all)
                                }
                                None => m.clone(),
                            };
                            self.impls.insert(name.to_string(), merged);
                        }
                    }

                    Op::GetProp | Op::GetPropOpt => {
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        let name = const_name(consts, name_idx);
                        let obj = self.fiber.stack.last_mut().expect("stack underflow");
                        match if ic_on { self.ic.entry_at(ic_base, slot) } else { None } {
                            Some(entry) => match ic::property_hit(entry, name_idx as u16, obj, name) {
                                Some(v) => *obj = v,
                                None => {
                                    let resolved = ic::PropertyTarget::resolve(obj, name);
                                    *obj = try_op!(ops::get_property(obj, name, op == Op::GetPropOpt));
                                    ic::property_learn(entry, name_idx as u16, resolved);
                                }
                            },
                            None => *obj = try_op!(ops::get_property(obj, name, op == Op::GetPropOpt)),
                        }
                    }
                    Op::GetLocalProp => {
                        let local = u16_at!();
                        let name_idx = u16_at!();
                        let slot = u16_at!() as u16;
                        let name = const_name(consts, name_idx);
                        // Read in place: the local is not copied (no reference-count traffic).
                        let obj = at!(base + local);
                        let v = match if ic_on { self.ic.entry_at(ic_base, slot) } else { None } {
                            Some(entry) => match ic::property_hit(entry, name_idx as u16, obj, name) {
                                Some(v) => v,
                                None => {
                                    let resolved = ic::PropertyTarget::resolve(obj, name);
                                    let v = try_op!(ops::get_property(obj, name, false));
                                    ic::property_learn(entry, name_idx as u16, resolved);
                                    v
                                }
                            },
                            None => try_op!(ops::get_property(obj, name, false)),
                        };
                        stack!().push(v);
                    }
                    Op::Index | Op::IndexOpt => {
                        let idx = pop!();
                        let obj = top!();
                        *obj = try_op!(ops::index(obj, &idx, op == Op::IndexOpt));
                    }
                    Op::Slice => {
                        let end = pop!();
                        let start = pop!();
                        let obj = top!();
                        *obj = try_op!(ops::slice(obj, &start, &end));
                    }
                    Op::SetPathLocal => {
                        let slot = u16_at!();
                        let n = u8_at!();
                        let v = pop!();
                        let at = stack!().len() - n;
                        let keys: Vec<Value> = stack!().drain(at..).collect();
                        try_op!(ops::set_path(&mut self.fiber.stack[base + slot], &keys, v));
                    }
                    Op::SetPathGlobal => {
                        let g = u16_at!();
                        let n = u8_at!();
                        let v = pop!();
                        let at = stack!().len() - n;
                        let keys: Vec<Value> = stack!().drain(at..).collect();
                        try_op!(ops::set_path(&mut closure.module.globals.borrow_mut()[g], &keys, v));
                    }

                    Op::IterInit => {
                        let slot = u16_at!();
                        let iterable = pop!();
                        stack!()[base + slot] = if sched::is_channel_like(&iterable) {
                            // Channels are pulled by the scheduler (the loop may wait).
                            iterable
                        } else {
                            iter::for_loop_iter(&iterable)
                        };
                    }
                    Op::IterNext => {
                        let slot = u16_at!();
                        let target = u32_at!();
                        if sched::is_channel_like(&stack!()[base + slot]) {
                            let ch = stack!()[base + slot].clone();
                            save_ip!();
                            match try_op!(self.iter_channel(&ch)) {
                                Some(v) => stack!().push(v),
                                None => {
                                    stack!()[base + slot] = Value::Nil;
                                    ip = target;
                                }
                            }
                            try_op!(self.tick());
                            continue;
                        }
                        let step = match &stack!()[base + slot] {
                            Value::Object(o) => iter::for_step(o),
                            _ => iter::ForStep::End,
                        };
                        let outcome = match step {
                            iter::ForStep::Item(v) => Some(v),
                            iter::ForStep::End => None,
                            iter::ForStep::Collect => iter::decode_next(pop!()),
                            iter::ForStep::Pull => {
                                let Value::Object(node) = &stack!()[base + slot] else { unreachable!() };
                                let node = node.clone();
                                let flow = {
                                    let mut ctx = Ctx { output: &mut self.fiber.output, limits: &self.options.limits };
                                    try_op!(iter::Pull::start(&mut ctx, node.clone(), iter::Sink::Next))
                                };
                                match flow {
                                    Flow::Done(v) => iter::decode_next(v),
                                    flow => {
                                        // Harn code must run first; this instruction runs
                                        // again to collect the outcome.
                                        iter::set_awaiting(&node);
                                        ip = op_at;
                                        save_ip!();
                                        if try_op!(self.finish_native(flow)) {
                                            continue 'frame;
                                        }
                                        continue;
                                    }
                                }
                            }
                        };
                        match outcome {
                            Some(v) => stack!().push(v),
                            None => {
                                stack!()[base + slot] = Value::Nil;
                                ip = target;
                            }
                        }
                        try_op!(self.tick());
                    }
                    Op::Yield => {
                        let v = pop!();
                        if !self.in_generator() {
                            // The compiler only emits YIELD in generator bodies; hand-made bytecode may not.
                            try_op!(Err(VmError::runtime("yield outside a generator")));
                        }
                        save_ip!();
                        return self.yield_value(v);
                    }

                    Op::TryBegin => {
                        let catch_ip = u32_at!();
                        let frame_depth = self.fiber.frames.len();
                        let stack_len = stack!().len();
                        self.fiber.handlers.push(Handler { frame_depth, stack_len, catch_ip });
                    }
                    Op::TryEnd => {
                        self.fiber.handlers.pop();
                    }
                    Op::Throw => {
                        let v = pop!();
                        try_op!(Err(VmError::thrown(v)));
                    }
                    Op::Rethrow => {
                        let v = pop!();
                        let err = match &v {
                            Value::Object(o) => match &**o {
                                Object::Error(e) => e.clone(),
                                _ => VmError::thrown(v.clone()),
                            },
                            _ => VmError::thrown(v.clone()),
                        };
                        try_op!(Err(err));
                    }
                    Op::ErrValue => {
                        let v = top!();
                        if let Value::Object(o) = &*v {
                            if let Object::Error(e) = &**o {
                                let caught = e.catch_value();
                                *v = caught;
                            }
                        }
                    }
                    Op::ErrIs => {
                        let name = name_at!();
                        let matches = match top!() {
                            Value::Object(o) => match &**o {
                                Object::Error(e) => match e.thrown_value() {
                                    Some(Value::Enum(ev)) => *ev.enum_name == *name,
                                    _ => false,
                                },
                                _ => false,
                            },
                            _ => false,
                        };
                        stack!().push(Value::Bool(matches));
                    }
                    Op::WrapOk => {
                        let v = top!();
                        let is_result = matches!(&*v, Value::Enum(e) if e.enum_name.as_str() == "Result");
                        if !is_result {
                            let inner = std::mem::take(v);
                            *v = Value::ok(inner);
                        }
                    }
                    Op::WrapErr => {
                        let v = top!();
                        let caught = match &*v {
                            Value::Object(o) => match &**o {
                                Object::Error(e) => e.catch_value(),
                                _ => v.clone(),
                            },
                            other => other.clone(),
                        };
                        *v = Value::err(caught);
                    }
                    Op::TryUnwrap => {
                        let v = pop!();
                        match &v {
                            Value::Enum(e) if e.enum_name.as_str() == "Result" && e.variant.as_str() == "Ok" => {
                                stack!().push(e.fields.first().cloned().unwrap_or_default());
                            }
                            Value::Enum(e) if e.enum_name.as_str() == "Result" && e.variant.as_str() == "Err" => {
                                // Propagate the Err out of the current function.
                                return self.return_from_frame(v.clone(), stop_depth);
                            }
                            other => try_op!(Err(VmError::type_error(format!(
                                "? operator requires a Result value, got {}",
                                other.type_name()
                            )))),
                        }
                    }
                    Op::SaveHeight => {
                        let slot = u16_at!();
                        let h = stack!().len() as i64;
                        stack!()[base + slot] = Value::Int(h);
                    }
                    Op::RestoreHeight => {
                        let slot = u16_at!();
                        if let Value::Int(h) = stack!()[base + slot] {
                            stack!().truncate(h as usize);
                        }
                    }

                    Op::IsVariant => {
                        let name = name_at!();
                        let (enum_name, variant) = name.split_once('.').unwrap_or(("", name.as_str()));
                        let v = top!();
                        let m =
                            matches!(&*v, Value::Enum(e) if e.enum_name.as_str() == enum_name && e.variant.as_str() == variant);
                        *v = Value::Bool(m);
                    }
                    Op::IsType => {
                        let name = name_at!();
                        let v = top!();
                        let m = v.type_name() == name.as_str();
                        *v = Value::Bool(m);
                    }
                    Op::CheckDestructure => {
                        let want_list = u8_at!() == 1;
                        let v = &stack!()[stack!().len() - 1];
                        let ok =
                            if want_list { matches!(v, Value::List(_)) } else { matches!(v, Value::Dict(_) | Value::Struct(_)) };
                        if !ok {
                            let msg = if want_list {
                                format!("cannot destructure {} with [...] pattern — expected list", v.type_name())
                            } else {
                                format!("cannot destructure {} with {{...}} pattern — expected dict", v.type_name())
                            };
                            try_op!(Err(VmError::type_error(msg)));
                        }
                    }
                    Op::DictRest => {
                        let keys = pop!();
                        let d = top!();
                        let taken: Vec<String> = match &keys {
                            Value::List(ks) => ks.iter().map(|k| k.display()).collect(),
                            _ => Vec::new(),
                        };
                        let rest: DictMap = match &*d {
                            Value::Dict(m) => m
                                .iter()
                                .filter(|(k, _)| !taken.iter().any(|t| t == k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            Value::Struct(s) => s
                                .layout
                                .fields
                                .iter()
                                .zip(s.values.iter())
                                .filter(|(k, _)| !taken.iter().any(|t| t == k.as_str()))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                            _ => DictMap::new(),
                        };
                        *d = Value::dict(rest);
                    }
                    Op::ImportModule => {
                        let k = u16_at!();
                        save_ip!();
                        if try_op!(self.start_import(&consts[k])) {
                            continue 'frame;
                        }
                    }
                    Op::BindImports => {
                        let k = u16_at!();
                        try_op!(self.bind_imports(&consts[k], &closure.module));
                    }
                    Op::CheckParam => {
                        let name = name_at!();
                        let schema = pop!();
                        let v = pop!();
                        let impls = &self.impls;
                        let has_method =
                            |ty: &str, m: &str| impls.get(ty).is_some_and(|ms| ms.contains_key(&Rc::new(m.to_string())));
                        let validator =
                            crate::builtins::schema::Validator { lenient_numbers: true, has_method: Some(&has_method) };
                        let checked = validator.validate(&v, &schema);
                        try_op!(checked.map_err(|f| VmError::type_error(crate::builtins::schema::param_message(&name, &f))));
                    }
                    Op::CallHost => {
                        let name = name_at!();
                        let argc = u8_at!();
                        save_ip!();
                        let args_at = stack!().len() - argc;
                        let v = try_op!(self.call_host(&name, args_at));
                        stack!().truncate(args_at);
                        stack!().push(v);
                        if !self.fiber.output.is_empty() {
                            self.flush_output();
                        }
                    }
                }
            }
        }
    }

    /// Pops the current frame and delivers `value` to its caller.
    fn return_from_frame(&mut self, value: Value, stop_depth: usize) -> Exit {
        let frame = self.fiber.frames.pop().expect("returning frame");
        self.fiber.stack.truncate(frame.base - 1);
        let depth = self.fiber.frames.len();
        while self.fiber.handlers.last().is_some_and(|h| h.frame_depth > depth) {
            self.fiber.handlers.pop();
        }
        if self.in_generator() {
            if depth == 0 {
                return self.generator_returned();
            }
        } else if depth == stop_depth {
            return Exit::Done(value);
        }
        let flow = match frame.cont {
            Some(cont) => match self.resume(cont, value) {
                Ok(flow) => flow,
                Err(e) => return self.native_error(e),
            },
            None => {
                // A Harn caller: what `finish_native(Flow::Done(value))` does, inline.
                if !self.fiber.output.is_empty() {
                    self.flush_output();
                }
                self.fiber.stack.push(value);
                return Exit::Switch;
            }
        };
        match self.finish_native(flow) {
            Ok(_) => Exit::Switch,
            Err(e) => self.native_error(e),
        }
    }

    /// An error raised by a builtin continuation: it belongs to the call
    /// instruction of the frame that is now on top.
    fn native_error(&mut self, e: VmError) -> Exit {
        let at = self.fiber.frames.last().map_or(0, |f| f.ip.saturating_sub(1));
        Exit::Error(e, at)
    }

    fn build_struct(&self, name: &str, fields: &Value) -> VmResult<Value> {
        let layout = match self.structs.get(name) {
            Some(l) => l.clone(),
            None => return Err(VmError::runtime(format!("Unknown struct: {name}"))),
        };
        let values = match fields {
            Value::Dict(m) => layout.fields.iter().map(|f| m.get(f).cloned().unwrap_or_default()).collect(),
            Value::Struct(s) => layout.fields.iter().map(|f| s.get(f).cloned().unwrap_or_default()).collect(),
            _ => vec![Value::Nil; layout.fields.len()],
        };
        Ok(Value::Struct(Rc::new(StructVal { layout, values })))
    }
}

/// Replaces the top two stack values, both scalars, with `v` — without
/// running destructors, which scalars do not need.
#[inline(always)]
fn replace_scalar_pair(stack: &mut Vec<Value>, v: Value) {
    let n = stack.len();
    debug_assert!(n >= 2 && !stack[n - 1].is_heap() && !stack[n - 2].is_heap());
    // SAFETY: n >= 2 (the caller just read both slots) and both values own no
    // heap data, so forgetting them leaks nothing.
    unsafe {
        stack.set_len(n - 1);
        std::ptr::write(stack.as_mut_ptr().add(n - 2), v);
    }
}

/// Turns the arguments from `base` to the top of the stack into the
/// frame's locals: missing parameters are nil, extra arguments are dropped
/// or gathered into the rest parameter, and the other locals start nil.
#[inline(always)]
fn adapt_args(stack: &mut Vec<Value>, proto: &FunctionProto, base: usize) {
    let argc = stack.len() - base;
    let nparams = proto.params.len();
    if proto.has_rest {
        let rest_at = base + nparams - 1;
        let rest: Vec<Value> = if stack.len() > rest_at { stack.drain(rest_at..).collect() } else { Vec::new() };
        stack.resize(rest_at, Value::Nil);
        stack.push(Value::list(rest));
    } else if argc > nparams {
        stack.truncate(base + nparams);
    }
    let frame_top = base + proto.num_locals as usize;
    if stack.len() <= frame_top {
        // Usually a few locals beyond the parameters: pushes inline, `resize` does not.
        while stack.len() < frame_top {
            stack.push(Value::Nil);
        }
    } else {
        stack.truncate(frame_top);
    }
}

/// Replaces the top two stack values with `v`, running destructors only
/// for operands that own heap data.
#[inline(always)]
fn replace_pair(stack: &mut Vec<Value>, v: Value) {
    let n = stack.len();
    debug_assert!(n >= 2, "stack underflow");
    // SAFETY: binary ops run on balanced compiled code: two operands are on the stack.
    let (a, b) = unsafe { (stack.get_unchecked(n - 2), stack.get_unchecked(n - 1)) };
    if !a.is_heap() && !b.is_heap() {
        replace_scalar_pair(stack, v);
    } else {
        stack.truncate(n - 1);
        // SAFETY: as above.
        *unsafe { stack.get_unchecked_mut(n - 2) } = v;
    }
}

/// The truthiness of `v`, dropping it without a destructor call when it is a scalar.
#[inline(always)]
fn consume_truthy(v: Value) -> bool {
    let truthy = v.is_truthy();
    if v.is_heap() {
        drop(v);
    } else {
        std::mem::forget(v);
    }
    truthy
}

/// Pops and drops the top two values, skipping destructor calls for scalars.
#[inline(always)]
fn discard_pair(stack: &mut Vec<Value>) {
    let n = stack.len();
    debug_assert!(n >= 2, "stack underflow");
    // SAFETY: as in `replace_pair`.
    let (a, b) = unsafe { (stack.get_unchecked(n - 2), stack.get_unchecked(n - 1)) };
    if !a.is_heap() && !b.is_heap() {
        // SAFETY: n >= 2 and both values own no heap data, so forgetting
        // them leaks nothing.
        unsafe { stack.set_len(n - 2) };
    } else {
        stack.truncate(n - 2);
    }
}

/// Pops and drops the top value, skipping the destructor call for scalars.
#[inline(always)]
fn discard_top(stack: &mut Vec<Value>) {
    let n = stack.len();
    debug_assert!(n >= 1, "stack underflow");
    // SAFETY: `POP` and the fused jumps run on balanced compiled code: the value is there.
    if unsafe { stack.get_unchecked(n - 1) }.is_heap() {
        stack.truncate(n - 1);
    } else {
        // SAFETY: the top value owns no heap data.
        unsafe { stack.set_len(n - 1) };
    }
}

/// `*slot = v`, skipping the destructor call when the old value is a scalar.
#[inline(always)]
fn store(slot: &mut Value, v: Value) {
    if slot.is_heap() {
        *slot = v;
    } else {
        // SAFETY: the old value owns no heap data, so overwriting it leaks nothing.
        unsafe { std::ptr::write(slot, v) };
    }
}

/// The string constant a `Name` operand refers to.
#[inline(always)]
fn const_name(consts: &[Value], index: usize) -> &HStr {
    match &consts[index] {
        Value::Str(s) => s,
        _ => unreachable!("name operand must be a string constant"),
    }
}

/// Pushes the items of a spread argument list (`f(...xs)`); returns their count.
fn push_spread_args(stack: &mut Vec<Value>, args: &Value) -> VmResult<usize> {
    match args {
        Value::List(items) => {
            stack.extend(items.iter().cloned());
            Ok(items.len())
        }
        other => Err(VmError::type_error(format!("cannot destructure {} with [...] pattern — expected list", other.type_name()))),
    }
}

/// Dict keys are strings: any other key value is displayed.
fn dict_key(k: &Value) -> HStr {
    match k {
        Value::Str(s) => s.clone(),
        other => Rc::new(other.display()),
    }
}

/// Runs `first`, then feeds its final value to `second` (a builtin whose
/// callback is itself a builtin that needs a callback).
struct Chain {
    first: Box<dyn Continuation>,
    second: Box<dyn Continuation>,
}

impl Continuation for Chain {
    fn resume(self: Box<Self>, ctx: &mut Ctx, result: Value) -> VmResult<Flow> {
        match self.first.resume(ctx, result)? {
            Flow::Done(v) => self.second.resume(ctx, v),
            Flow::Call { callee, args, then } => {
                Ok(Flow::Call { callee, args, then: Box::new(Chain { first: then, second: self.second }) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLDS_A_LIST: &str = "let big = [1, 2, 3]\nfn f(x) { return len(big) + x }\npipeline main() { return f(1) }\n";

    fn weak_env_after_run(vm: &mut Vm, src: &str) -> std::rc::Weak<ModuleEnv> {
        let program = crate::compile(src, "t.harn").expect("compiles");
        vm.run(&program).expect("runs");
        vm.entry_envs.last().expect("tracked").clone()
    }

    #[test]
    fn an_unreachable_entry_env_is_freed_by_the_next_run_and_the_rest_on_drop() {
        let mut vm = Vm::new(VmOptions::default());
        let first = weak_env_after_run(&mut vm, HOLDS_A_LIST);
        assert!(first.upgrade().is_some(), "top-level fns keep their env alive (a cycle)");
        let second = weak_env_after_run(&mut vm, HOLDS_A_LIST);
        assert!(first.upgrade().is_none(), "the next run frees the unreachable env");
        drop(vm);
        assert!(second.upgrade().is_none(), "dropping the VM frees the rest");
    }

    #[test]
    fn an_env_whose_fn_escaped_stays_usable() {
        let mut vm = Vm::new(VmOptions::default());
        let src = "let big = [1, 2, 3]\nfn f(x) { return len(big) + x }\npipeline main() { return f }\n";
        let program = crate::compile(src, "t.harn").expect("compiles");
        let f = vm.run(&program).expect("runs");
        let kept = vm.entry_envs.last().expect("tracked").clone();
        weak_env_after_run(&mut vm, HOLDS_A_LIST);
        assert!(kept.upgrade().is_some(), "the escaped fn still needs its env");
        let Value::Closure(c) = &f else { panic!("a closure") };
        assert_eq!(vm.call_closure(c.clone(), vec![Value::Int(10)]).expect("calls").display(), "13");
    }
}
