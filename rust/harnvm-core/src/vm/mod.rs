//! The virtual machine: frames on an explicit stack and the dispatch loop.
//!
//! A Harn call never recurses on the Rust stack: calling a closure pushes a
//! `Frame` and the dispatch loop switches to it; `Return` pops it. Builtins
//! that call back into Harn (`xs.map(f)`) return `Flow::Call` and the callee
//! frame carries the builtin's continuation. All execution state of one Harn
//! task lives in a `Fiber`, so a task can be suspended between instructions
//! and resumed later.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Instant;

use crate::builtins::{self, methods, Continuation, Ctx, Flow, Limits};
use crate::bytecode::chunk::{FunctionProto, Op};
use crate::bytecode::Program;
use crate::runtime::budget;
use crate::runtime::error::{closest_match, ErrorKind, LimitKind, StackEntry, VmError, VmResult};
use crate::runtime::fiber::{Fiber, Frame, ModuleEnv};
use crate::runtime::ops;
use crate::runtime::value::{Closure, DictMap, HStr, Object, StructLayout, Value};
use ic::InlineCaches;

mod dispatch;
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
    /// Step budget of one run: calls and loop iterations (backward jumps),
    /// counted exactly, so a program stops at the same step every time.
    pub max_instructions: Option<u64>,
    /// Bytes one run may grow this thread's heap by (counted by
    /// `budget::CountingAlloc` when the host installs it).
    pub max_memory: Option<usize>,
    /// Bytes of output one run may write (spawned tasks' included).
    pub max_output: Option<u64>,
    /// Seed of `random()` and friends (None: from the OS, per VM).
    pub seed: Option<u64>,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions {
            max_frames: 512,
            inline_caches: true,
            time_limit_ms: None,
            limits: Limits::default(),
            max_instructions: None,
            max_memory: None,
            max_output: None,
            seed: None,
        }
    }
}

/// A VM's envs die with it: their globals are cleared, which frees the
/// closure↔env cycles of top-level fns (see `ModuleEnv::clear`). A closure
/// that outlives its VM then sees undefined globals, never freed memory.
impl Drop for Vm {
    fn drop(&mut self) {
        builtins::forget_vm(self.uid);
        for env in self.entry_envs.drain(..).filter_map(|w| w.upgrade()) {
            env.clear();
        }
        for env in self.module_envs() {
            env.clear();
        }
    }
}

/// The shared parts of the enum values one `Enum.Variant` name builds: its
/// two names, and the value itself when the variant has no fields (values
/// are immutable, so every `Tree.Leaf` can be the same one). Built once per
/// VM and name instead of splitting and allocating the names on every
/// construction.
pub(crate) struct EnumNames {
    enum_name: HStr,
    variant: HStr,
    nullary: Value,
}

impl EnumNames {
    fn new(qualified: &str) -> EnumNames {
        let (enum_name, variant) = qualified.split_once('.').unwrap_or(("", qualified));
        let (enum_name, variant) = (Rc::new(enum_name.to_string()), Rc::new(variant.to_string()));
        let nullary = Value::Enum(Rc::new(crate::runtime::value::EnumVal {
            enum_name: enum_name.clone(),
            variant: variant.clone(),
            fields: Vec::new(),
        }));
        EnumNames { enum_name, variant, nullary }
    }
}

pub struct Vm {
    pub options: VmOptions,
    fiber: Fiber,
    // Fx-hashed: a struct literal and a struct method call look their name up.
    structs: rustc_hash::FxHashMap<String, Rc<StructLayout>>,
    impls: rustc_hash::FxHashMap<String, Rc<DictMap>>,
    /// Bumped by every `impl` block run: struct-method cache entries made
    /// before it no longer hit.
    impls_epoch: u64,
    /// `BUILD_ENUM`'s names by qualified name (see `EnumNames`).
    enum_names: rustc_hash::FxHashMap<HStr, EnumNames>,
    output_sink: Option<OutputSink>,
    interrupt: Arc<AtomicBool>,
    /// The host's wait for timers and host calls in `drive_blocking`.
    waiter: Option<sched::Waiter>,
    deadline: Option<Instant>,
    /// Calls and backward jumps left before the next interrupt/deadline check.
    budget: u32,
    /// What `budget` was refilled with (the steps charged when it runs out).
    budget_refill: u32,
    /// Steps left of `max_instructions` (not counting the current `budget`).
    fuel_left: u64,
    /// The budgets of the run in progress, as builtins see them.
    run_budget: Rc<budget::RunBudget>,
    /// The host's check at poll points (e.g. pending Ctrl-C).
    host_check: Option<budget::HostCheck>,
    /// Identifies this VM to the per-thread builtin settings (`builtins::enter_vm`).
    uid: u64,
    /// When the current `step_sliced` should hand control back to the host.
    slice_end: Option<Instant>,
    /// The running task yielded at the end of its slice.
    yielded: bool,
    /// Nested `execute` runs in progress (a task cannot yield inside one).
    nested_runs: u32,
    /// Time the host spent for the next run before it started (compiling
    /// its source): taken off that run's time limit.
    spent_before_run: std::time::Duration,
    /// The seed its RNG starts from.
    rng_seed: u64,
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
    /// The host's inputs to the runs (a dict; `set_run_inputs`).
    run_inputs: Value,
}

/// Where a root task's output goes as it is written.
pub type OutputSink = Box<dyn FnMut(&str)>;

const CHECK_INTERVAL: u32 = 4096;

/// Source of `Vm::uid`.
static NEXT_VM_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

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
        let rng_seed = options.seed.unwrap_or_else(builtins::os_seed);
        Vm {
            options,
            fiber: Fiber::default(),
            structs: rustc_hash::FxHashMap::default(),
            impls: rustc_hash::FxHashMap::default(),
            enum_names: rustc_hash::FxHashMap::default(),
            impls_epoch: 0,
            output_sink: None,
            interrupt: Arc::new(AtomicBool::new(false)),
            waiter: None,
            deadline: None,
            budget: CHECK_INTERVAL,
            budget_refill: CHECK_INTERVAL,
            fuel_left: u64::MAX,
            run_budget: budget::RunBudget::idle(),
            host_check: None,
            spent_before_run: std::time::Duration::ZERO,
            slice_end: None,
            yielded: false,
            nested_runs: 0,
            uid: NEXT_VM_UID.fetch_add(1, AtomicOrdering::Relaxed),
            rng_seed,
            parked: Vec::new(),
            park_floor: 0,
            parked_frames: 0,
            instance_epoch: modules::next_instance_epoch(),
            modules: rustc_hash::FxHashMap::default(),
            entry_envs: Vec::new(),
            prelude: Rc::default(),
            ic: InlineCaches::default(),
            sched: sched::Sched::new(false),
            run_inputs: Value::dict(DictMap::new()),
        }
    }

    /// The inputs of the next runs: a dict of name → value (anything else
    /// means none). The entry pipeline's parameters are bound from it by
    /// name (nil when absent), and `run_inputs()` returns it.
    pub fn set_run_inputs(&mut self, inputs: Value) {
        self.run_inputs = match inputs {
            Value::Dict(_) => inputs,
            _ => Value::dict(DictMap::new()),
        };
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
    /// (too few → `Arity mismatch`, as harn 0.9.11; extra → dropped or rest).
    fn push_frame(&mut self, closure: Rc<Closure>, argc: u32, cont: Option<Box<dyn Continuation>>) -> VmResult<()> {
        if self.fiber.frames.len() + self.parked_frames >= self.options.max_frames {
            return Err(VmError::new(ErrorKind::StackOverflow));
        }
        let base = self.fiber.stack.len() - argc as usize;
        adapt_args(&mut self.fiber.stack, &closure.proto, base)?;
        let ic_set = if self.options.inline_caches { self.ic.set_for(&closure.proto) } else { 0 };
        self.fiber.frames.push(Frame { closure, ip: 0, base, argc, cont, ic_set });
        self.tick()
    }

    /// Starts frame `frame_index` over (a self tail call, a reused callback
    /// frame) with the arguments from `base` to the top of the stack.
    #[inline(always)]
    fn restart_frame(&mut self, frame_index: usize, proto: &FunctionProto, base: usize) -> VmResult<()> {
        self.fiber.frames[frame_index].argc = (self.fiber.stack.len() - base) as u32;
        adapt_args(&mut self.fiber.stack, proto, base)?;
        self.tick()
    }

    /// `tick` for a loop's backward jump, where the running task may also
    /// yield to the host at the end of its slice (see `step_sliced`).
    #[inline(always)]
    fn tick_back_jump(&mut self) -> VmResult<()> {
        self.budget -= 1;
        if self.budget == 0 {
            self.check_interrupts()?;
            return self.maybe_yield();
        }
        Ok(())
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
        self.charge_fuel()?;
        budget::activate(&self.run_budget);
        budget::check()?;
        if self.sched.current_deadline().is_some_and(|d| d <= self.sched.now()) {
            // A `deadline` block ran out while this task computed.
            return Err(self.sched.running_deadline_fired());
        }
        Ok(())
    }

    /// Charges the steps of the budget that ran out against
    /// `max_instructions` and refills it (never past the steps left).
    fn charge_fuel(&mut self) -> VmResult<()> {
        let used = u64::from(self.budget_refill) - u64::from(self.budget);
        self.fuel_left = self.fuel_left.saturating_sub(used);
        if let Some(max) = self.options.max_instructions {
            if self.fuel_left == 0 {
                self.budget = 1;
                self.budget_refill = 1;
                return Err(VmError::limit(LimitKind::Instructions, format!("instruction limit of {max} steps exceeded")));
            }
        }
        self.budget_refill = CHECK_INTERVAL.min(u32::try_from(self.fuel_left).unwrap_or(u32::MAX)).max(1);
        self.budget = self.budget_refill;
        Ok(())
    }

    /// Steps of `max_instructions` used so far in this run.
    pub fn instructions_used(&self) -> u64 {
        let total = self.options.max_instructions.unwrap_or(u64::MAX);
        total.saturating_sub(self.fuel_left) + u64::from(self.budget_refill - self.budget)
    }

    /// Counts `spent` (e.g. compiling the program) against the time limit
    /// of the next run.
    pub fn charge_time_before_run(&mut self, spent: std::time::Duration) {
        self.spent_before_run = spent;
    }

    /// Installs the host's check run at poll points (at most every few
    /// ms): an error it returns stops the run.
    pub fn set_host_check(&mut self, check: budget::HostCheck) {
        self.host_check = Some(check);
    }

    /// Makes this VM's run budget the thread's active one (after a host
    /// callback, which may have run another VM) and checks it now.
    pub(crate) fn recheck_budget(&self) -> VmResult<()> {
        budget::activate(&self.run_budget);
        budget::check_now()
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
        builtins::arity::check(id, self.fiber.stack.len() - args_at)?;
        match builtins::builtin_impl(id) {
            builtins::BuiltinImpl::Native(f) => {
                let Fiber { stack, output, .. } = &mut self.fiber;
                let mut ctx = Ctx { output, limits: &self.options.limits };
                f(&mut ctx, &stack[args_at..])
            }
            builtins::BuiltinImpl::Sched(op) => self.sched_builtin(op, args_at),
        }
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
                        &Value::Builtin(id) if builtins::is_sched_builtin(id) && args.len() <= 255 => {
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
        if self.unique_list_method(name, argc)? {
            return Ok(false);
        }
        let recv_at = self.fiber.stack.len() - argc - 1;
        match self.ic.method_entry_at(ic_base, slot) {
            None => self.call_method(name, argc),
            Some((entry, namespace_key)) => {
                if let Some(v) = ic::method_hit(entry, name_idx as u16, &self.fiber.stack[recv_at..], namespace_key) {
                    self.fiber.stack.truncate(recv_at);
                    self.fiber.stack.push(v);
                    return Ok(false);
                }
                self.call_method_miss(name, name_idx, argc, ic_base, slot)
            }
        }
    }

    /// A method site whose builtin binding did not hit: a struct `impl`
    /// method bound to the receiver's layout, or the generic dispatch, after
    /// which the site learns (replace-on-miss) from the receiver. Out of
    /// line, so the hit path above stays small.
    #[inline(never)]
    fn call_method_miss(&mut self, name: &HStr, name_idx: usize, argc: usize, ic_base: usize, slot: u16) -> VmResult<bool> {
        let recv_at = self.fiber.stack.len() - argc - 1;
        let Some((entry, namespace_key)) = self.ic.method_entry_at(ic_base, slot) else {
            return self.call_method(name, argc);
        };
        let recv = &self.fiber.stack[recv_at];
        if let Some(callee) = ic::struct_method_hit(entry, name_idx as u16, argc, recv, self.impls_epoch) {
            // The receiver becomes the first argument (`self`).
            self.fiber.stack.insert(recv_at, callee);
            return self.call_value(argc + 1);
        }
        let resolved = ic::MethodTarget::resolve(recv, name, argc, namespace_key);
        let impl_method = match recv {
            Value::Struct(s) => self.impls.get(s.name()).and_then(|m| m.get(name)).map(|c| (Rc::clone(&s.layout), c.clone())),
            _ => None,
        };
        let switched = self.call_method(name, argc)?;
        if let Some(entry) = self.ic.entry_at(ic_base, slot) {
            match impl_method {
                Some((layout, callee)) => ic::struct_method_learn(entry, name_idx as u16, argc, layout, self.impls_epoch, callee),
                None => ic::method_learn(entry, name_idx as u16, argc, resolved),
            }
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
                let pos = proto.chunk.pos_at(op_at);
                err.set_position_if_unset(&proto.file, pos.line, pos.column);
            }
            // Any handler of a generator body is its own; the host call's
            // fiber may only use handlers above `stop_depth`.
            let floor = if self.in_generator() { 0 } else { stop_depth };
            err = match self.catch(err, floor) {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            if !self.in_generator() {
                break;
            }
            (err, op_at) = self.generator_failed(err);
        }
        if err.0.stack.is_empty() {
            err.0.stack = self.stack_trace(op_at);
        }
        Err(err)
    }

    /// Hands `err` to the innermost handler installed above frame depth
    /// `floor`, if it is catchable and there is one; else gives it back.
    fn catch(&mut self, err: VmError, floor: usize) -> VmResult<()> {
        if !err.is_catchable() || self.fiber.handlers.last().is_none_or(|h| h.frame_depth <= floor) {
            return Err(err);
        }
        let h = self.fiber.handlers.pop().expect("checked above");
        self.fiber.frames.truncate(h.frame_depth);
        self.fiber.stack.truncate(h.stack_len);
        self.fiber.stack.push(Value::Object(Rc::new(Object::Error(err))));
        self.fiber.frames.last_mut().expect("handler frame exists").ip = h.catch_ip;
        Ok(())
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
                let pos = proto.chunk.pos_at(at);
                StackEntry { function: proto.name.clone(), file: proto.file.to_string(), line: pos.line, column: pos.column }
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
fn adapt_args(stack: &mut Vec<Value>, proto: &FunctionProto, base: usize) -> VmResult<()> {
    let argc = stack.len() - base;
    if argc != proto.params.len() || proto.has_rest {
        return adapt_args_slow(stack, proto, base);
    }
    // Exactly the parameters: only the other locals start nil (one
    // capacity check for all of them; `resize` does not inline).
    let frame_top = base + proto.num_locals as usize;
    debug_assert!(stack.len() <= frame_top, "parameters are the first locals");
    let missing = frame_top.saturating_sub(stack.len());
    if missing > 0 {
        stack.extend((0..missing).map(|_| Value::Nil));
    }
    Ok(())
}

/// `adapt_args` for a call whose arguments do not match the parameter list
/// one to one: too few (an arity error unless defaults cover them), too
/// many (dropped), or a rest parameter to fill.
#[inline(never)]
fn adapt_args_slow(stack: &mut Vec<Value>, proto: &FunctionProto, base: usize) -> VmResult<()> {
    let argc = stack.len() - base;
    let nparams = proto.params.len();
    if argc < nparams {
        check_required(proto, argc)?;
    }
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
        stack.resize(frame_top, Value::Nil);
    } else {
        stack.truncate(frame_top);
    }
    Ok(())
}

/// Too few arguments for the required (no default, not rest) parameters is
/// an error on harn 0.9.11 (the 0.7 suite never relies on the nil fill).
#[cold]
fn check_required(proto: &FunctionProto, argc: usize) -> VmResult<()> {
    let required = proto.params.iter().filter(|p| !p.has_default && !p.rest).count();
    if argc >= required {
        return Ok(());
    }
    let name = if proto.name.is_empty() || proto.name.starts_with('<') { "<closure>" } else { proto.name.as_str() };
    let plural = if required == 1 { "" } else { "s" };
    Err(VmError::new(ErrorKind::Arity(format!("'{name}' expects at least {required} argument{plural}, got {argc}"))))
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

/// `stack.truncate(keep)` for a returning frame (its callee value and
/// locals): scalar locals are dropped without a destructor call, and only
/// heap values (the callee, strings, lists...) run theirs.
#[inline(always)]
fn drop_frame_values(stack: &mut Vec<Value>, keep: usize) {
    debug_assert!(keep <= stack.len(), "frame base past the stack top");
    while stack.len() > keep {
        let n = stack.len();
        // SAFETY: `n - 1 >= keep`, so the slot is in bounds; the length drops
        // first, so the value is moved out (and dropped) exactly once.
        unsafe {
            stack.set_len(n - 1);
            let slot = stack.as_mut_ptr().add(n - 1);
            if (*slot).is_heap() {
                std::ptr::drop_in_place(slot);
            }
        }
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
