//! The native-call interface: how the VM calls a builtin or method, and how
//! a builtin asks the VM to run Harn code for it (`Flow::Call`) without
//! recursing on the Rust stack. Also the allocation limits every builtin
//! respects.

pub use crate::runtime::budget::{charge_output, charge_work, check_memory, poll};
use crate::runtime::error::{LimitKind, VmError, VmResult};
use crate::runtime::value::Value;

/// Arguments of a callback call. Callbacks take one to three arguments
/// (`map`, `reduce`, `sort_by` comparators), which then need no heap
/// allocation per call.
pub type CallArgs = smallvec::SmallVec<[Value; 3]>;

/// What a builtin (or method) asks the VM to do next.
pub enum Flow {
    /// The call finished with this value.
    Done(Value),
    /// Call `callee(args)`, then pass the result to `then`.
    Call { callee: Value, args: CallArgs, then: Box<dyn Continuation> },
}

/// The rest of a builtin's work after a Harn callback returns.
pub trait Continuation {
    fn resume(self: Box<Self>, ctx: &mut Ctx, result: Value) -> VmResult<Flow>;
}

/// Resource limits that builtins must respect (huge allocations end in a
/// clear error, never an abort).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest string/list/bytes a single builtin may build, in elements or bytes.
    pub max_alloc: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_alloc: 1 << 30 }
    }
}

/// What the VM lends a builtin while it runs.
pub struct Ctx<'a> {
    /// Output of the current task (`log`, `print`, `println` append here).
    pub output: &'a mut String,
    pub limits: &'a Limits,
}

impl Ctx<'_> {
    /// The cheap budget poll for a builtin's loop (see `budget::poll`):
    /// time limit, interrupt, memory, host signals.
    #[inline]
    pub fn poll(&self) -> VmResult<()> {
        poll()
    }

    /// Appends `text` to the task's output, counted against the output budget.
    pub fn write_output(&mut self, text: &str) -> VmResult<()> {
        charge_output(text.len())?;
        self.output.push_str(text);
        Ok(())
    }
}

pub type BuiltinFn = fn(&mut Ctx, &[Value]) -> VmResult<Flow>;

/// One entry of the builtin table: a name and what calling it runs.
pub struct BuiltinDef {
    pub name: &'static str,
    pub imp: BuiltinImpl,
}

/// How a builtin is implemented.
#[derive(Clone, Copy)]
pub enum BuiltinImpl {
    /// A plain function of its arguments (and `Ctx`).
    Native(BuiltinFn),
    /// An operation of the VM scheduler, which needs the current task, other
    /// tasks or the clock: more than `Ctx` lends. The VM runs it.
    Sched(SchedOp),
}

/// Declares `SchedOp` and `SchedOp::ALL` from one list, so `ALL` cannot
/// miss a variant.
macro_rules! sched_ops {
    ($($op:ident,)*) => {
        /// The scheduler builtins, one variant per builtin (see
        /// `builtins::concurrency` for their names; `vm::sched` runs them).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum SchedOp {
            $($op,)*
        }

        impl SchedOp {
            /// Every operation, in declaration order.
            pub const ALL: &'static [SchedOp] = &[$(SchedOp::$op,)*];
        }
    };
}

sched_ops! {
    // Compiler-emitted: `spawn { }`, `parallel`, `deadline { }`, `mutex { }`, the `select` statement.
    Spawn,
    Parallel,
    DeadlinePush,
    DeadlinePop,
    MutexBlockAcquire,
    MutexBlockRelease,
    SelectStatement,
    // Tasks.
    Await,
    Cancel,
    CancelGraceful,
    IsCancelled,
    Sleep,
    // Channels.
    Channel,
    Send,
    Receive,
    TryReceive,
    CloseChannel,
    ChannelIsClosed,
    YieldNow,
    SharedScopeId,
    Select,
    ChannelSelect,
    // Named locks.
    SyncMutexAcquire,
    SyncSemaphoreAcquire,
    SyncGateAcquire,
    SyncRwlockAcquire,
    SyncRelease,
    SyncMetrics,
    // Shared cells.
    SharedCell,
    SharedGet,
    SharedSet,
    SharedSnapshot,
    SharedCas,
    SharedMetrics,
    // Shared maps.
    SharedMap,
    SharedMapGet,
    SharedMapSet,
    SharedMapDelete,
    SharedMapSnapshot,
    SharedMapCas,
    SharedMapEntries,
    SharedMapMetrics,
    // Mailboxes.
    MailboxOpen,
    MailboxSend,
    MailboxReceive,
    MailboxTryReceive,
    MailboxClose,
    MailboxMetrics,
    MailboxLookup,
    // Supervisors.
    SupervisorStart,
    SupervisorState,
    SupervisorEvents,
    SupervisorMetrics,
    SupervisorStop,
    // Task context.
    RuntimeContext,
    TaskCurrent,
    RuntimeContextValues,
    RuntimeContextGet,
    RuntimeContextSet,
    RuntimeContextClear,
    // Prelude and clock helpers.
    PreludeGlobal,
    ClockMs,
    Millis,
    // The host's inputs to the run (`Vm::set_run_inputs`).
    RunInput,
    RunInputs,
}

/// Fails with a resource-limit error when a builtin is about to build a
/// string or list of `size` bytes/elements beyond `limits.max_alloc`.
///
/// Also checks the run's memory budget (`budget::check_memory`), counting
/// `size` as bytes: a lower bound for elements, so the request is refused
/// before it is made when even that much would not fit.
pub fn check_alloc(size: usize, limits: &Limits, what: &str) -> VmResult<()> {
    if size > limits.max_alloc {
        return Err(alloc_error(size as u128, limits, what));
    }
    check_memory(size)?;
    charge_work(size)
}

/// Like `check_alloc` for a size computed as `count * unit`, which may overflow.
pub fn check_alloc_product(count: u128, unit: u128, limits: &Limits, what: &str) -> VmResult<()> {
    let size = count.saturating_mul(unit);
    if size > limits.max_alloc as u128 {
        return Err(alloc_error(size, limits, what));
    }
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    check_memory(size)?;
    charge_work(size)
}

#[cold]
fn alloc_error(size: u128, limits: &Limits, what: &str) -> VmError {
    VmError::limit(LimitKind::Memory, format!("{what} would allocate {size} units (limit {})", limits.max_alloc))
}

/// `v`'s display text, or a memory-limit error when it would be longer than
/// `limits.max_alloc`, `DISPLAY_MAX` or the run's remaining memory budget:
/// a value that shares sub-values can have a text exponentially longer
/// than itself.
pub fn display_limited(v: &Value, limits: &Limits, what: &str) -> VmResult<String> {
    let cap = limits.max_alloc.min(crate::runtime::value::DISPLAY_MAX).min(crate::runtime::budget::memory_room());
    v.display_capped(cap)
        .ok_or_else(|| VmError::limit(LimitKind::Memory, format!("{what}: the text of this value is longer than {cap} bytes")))
}
