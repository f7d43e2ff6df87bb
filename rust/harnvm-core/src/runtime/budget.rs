//! The budgets of the run in progress on this thread, which builtins and the
//! VM check at their poll points.
//!
//! A run starts its budget with [`start`]; the VM re-[`activate`]s it
//! wherever it regains control (a host callback may have run another VM in
//! between). The state is per thread because a VM and everything it
//! allocates live on one thread; builtins reach it without a `Ctx` field,
//! so every existing caller of `check_alloc` and every loop gets it for free.
//!
//! * **memory**: [`CountingAlloc`] is a global allocator wrapper that keeps
//!   the bytes live on each thread. The binding crate installs it. A run
//!   notes the live count when it starts; "used" is the growth since then.
//!   The allocator itself never fails an allocation (that would abort the
//!   process): it only raises a flag when the budget is passed, and the next
//!   poll point or `check_alloc` turns that into a `Limit(Memory)` error.
//!   `check_alloc` also refuses, before allocating, a request that would
//!   pass the budget.
//! * **time** and **interrupts**: [`charge_work`] is cheap (a countdown of
//!   work units, about a byte each); every [`WORK_PER_CHECK`] units it reads
//!   the clock, the interrupt flag, the memory flag and the host's signal
//!   check. `check_alloc` charges the size it is asked about; builtins that
//!   loop call [`poll`] once per element; builtins that scan big input
//!   charge its length.
//! * **output**: [`charge_output`] counts the bytes a run writes (root task
//!   and spawned tasks alike) against the output budget.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::error::{ErrorKind, LimitKind, VmError, VmResult};
use crate::runtime::value::Value;

thread_local! {
    /// The allocator's counts, in one thread-local: in a shared library
    /// every thread-local access is a `__tls_get_addr` call, so the
    /// allocator makes one per allocation or free instead of one per field.
    static MEM: MemCount = const { MemCount { live: Cell::new(0), ceiling: Cell::new(isize::MAX), over: Cell::new(false) } };
    /// Work units (≈ bytes processed) left before the next full check.
    static WORK_LEFT: Cell<isize> = const { Cell::new(WORK_PER_CHECK) };
    static CURRENT: RefCell<Option<Rc<RunBudget>>> = const { RefCell::new(None) };
}

/// This thread's memory counts (see `MEM`).
struct MemCount {
    /// Bytes allocated minus bytes freed on this thread (by `CountingAlloc`).
    live: Cell<isize>,
    /// `live` value past which the run in progress is over its memory budget.
    ceiling: Cell<isize>,
    /// Set by the allocator when `live` passed `ceiling`.
    over: Cell<bool>,
}

fn mem_ceiling() -> isize {
    MEM.with(|m| m.ceiling.get())
}

fn mem_over() -> bool {
    MEM.with(|m| m.over.get())
}

/// Work units (about a byte scanned, built or copied each) between two full
/// checks: a builtin that does a lot of work in one call (a regex over a
/// megabyte, a 20 MB string) is checked at once, not after thousands of calls.
pub const WORK_PER_CHECK: isize = 1 << 20;

/// What one `poll` counts as: a full check every 256 polls.
pub const POLL_WORK: usize = 4096;

/// How often (at most) the host's signal check runs.
const HOST_CHECK_EVERY: Duration = Duration::from_millis(5);

/// A host check run at poll points (e.g. "did the user press Ctrl-C?").
pub type HostCheck = Rc<dyn Fn() -> VmResult<()>>;

/// The limits of one run.
#[derive(Clone, Default)]
pub struct BudgetConfig {
    /// Wall-clock deadline, and the limit in ms for the message.
    pub deadline: Option<(Instant, u64)>,
    pub interrupt: Option<Arc<AtomicBool>>,
    /// Bytes the run may grow the thread's live heap by.
    pub max_memory: Option<usize>,
    /// Bytes of output the run may write.
    pub max_output: Option<u64>,
    pub host_check: Option<HostCheck>,
}

/// The budget state of one run, shared by the VM that owns it and this
/// thread's `CURRENT` slot while it is the active one.
pub struct RunBudget {
    config: BudgetConfig,
    mem_base: isize,
    output_written: Cell<u64>,
    last_host_check: Cell<Option<Instant>>,
}

impl RunBudget {
    /// A budget with no limits, never active (a VM's before its first run).
    pub fn idle() -> Rc<RunBudget> {
        Rc::new(RunBudget {
            config: BudgetConfig::default(),
            mem_base: 0,
            output_written: Cell::new(0),
            last_host_check: Cell::new(None),
        })
    }

    /// Bytes of output this run has written so far.
    pub fn output_written(&self) -> u64 {
        self.output_written.get()
    }
}

/// Starts a run's budget (the memory budget counts from the heap's size
/// now) and makes it this thread's active one.
pub fn start(config: BudgetConfig) -> Rc<RunBudget> {
    let budget =
        Rc::new(RunBudget { config, mem_base: live_bytes(), output_written: Cell::new(0), last_host_check: Cell::new(None) });
    set_active(&budget);
    budget
}

/// Makes `budget` this thread's active one, unless it is already (a VM
/// calls this wherever it (re)gains control: another VM may have run in
/// between, from a host callback).
#[inline]
pub fn activate(budget: &Rc<RunBudget>) {
    let same = CURRENT.with(|c| c.borrow().as_ref().is_some_and(|b| Rc::ptr_eq(b, budget)));
    if !same {
        set_active(budget);
    }
}

fn set_active(budget: &Rc<RunBudget>) {
    let ceiling = match budget.config.max_memory {
        Some(m) => budget.mem_base.saturating_add(isize::try_from(m).unwrap_or(isize::MAX)),
        None => isize::MAX,
    };
    MEM.with(|m| {
        m.ceiling.set(ceiling);
        m.over.set(m.live.get() > ceiling);
    });
    WORK_LEFT.with(|c| c.set(WORK_PER_CHECK));
    CURRENT.with(|c| *c.borrow_mut() = Some(budget.clone()));
}

/// Removes this thread's active budget (when `budget` is it).
pub fn deactivate(budget: &Rc<RunBudget>) {
    CURRENT.with(|c| {
        let mut current = c.borrow_mut();
        if current.as_ref().is_some_and(|b| Rc::ptr_eq(b, budget)) {
            *current = None;
            MEM.with(|m| {
                m.ceiling.set(isize::MAX);
                m.over.set(false);
            });
        }
    });
}

/// Bytes live on this thread (0 when the counting allocator is not installed).
pub fn live_bytes() -> isize {
    MEM.with(|m| m.live.get())
}

/// Bytes the run in progress has grown the heap by (0 without a run).
pub fn memory_used() -> isize {
    CURRENT.with(|c| c.borrow().as_ref().map_or(0, |b| live_bytes() - b.mem_base))
}

/// The cheap poll for loops, once per element: every 256 polls, a full
/// `check`.
#[inline]
pub fn poll() -> VmResult<()> {
    charge_work(POLL_WORK)
}

/// Counts `units` of work (≈ bytes scanned, built or copied); a full
/// `check` whenever `WORK_PER_CHECK` units have been done since the last.
#[inline]
pub fn charge_work(units: usize) -> VmResult<()> {
    let left = WORK_LEFT.with(|c| {
        let n = c.get().saturating_sub(isize::try_from(units).unwrap_or(isize::MAX));
        c.set(n);
        n
    });
    if left <= 0 {
        return check();
    }
    Ok(())
}

/// Checks every budget of the run in progress now: the interrupt flag, the
/// deadline, memory and the host's check.
#[cold]
pub fn check() -> VmResult<()> {
    WORK_LEFT.with(|c| c.set(WORK_PER_CHECK));
    if mem_over() {
        return Err(memory_error(0));
    }
    let host_check = CURRENT.with(|c| -> VmResult<Option<HostCheck>> {
        let current = c.borrow();
        let Some(b) = current.as_ref() else { return Ok(None) };
        if b.config.interrupt.as_ref().is_some_and(|i| i.load(Ordering::Relaxed)) {
            return Err(VmError::new(ErrorKind::Interrupted));
        }
        let mut now = None;
        if let Some((deadline, ms)) = b.config.deadline {
            let t = Instant::now();
            now = Some(t);
            if t >= deadline {
                return Err(time_error(ms));
            }
        }
        let Some(hc) = &b.config.host_check else { return Ok(None) };
        let t = now.unwrap_or_else(Instant::now);
        match b.last_host_check.get() {
            Some(last) if t.duration_since(last) < HOST_CHECK_EVERY => Ok(None),
            _ => {
                b.last_host_check.set(Some(t));
                Ok(Some(hc.clone()))
            }
        }
    })?;
    // (Outside the borrow: the host check may run Python code.)
    if let Some(hc) = host_check {
        hc()?;
    }
    Ok(())
}

/// Checks the budgets except the deadline-free host check throttle: for
/// points that run rarely (a host callback returned, a wait ended), so the
/// host check runs every time.
pub fn check_now() -> VmResult<()> {
    CURRENT.with(|c| {
        if let Some(b) = c.borrow().as_ref() {
            b.last_host_check.set(None);
        }
    });
    check()
}

/// The time-limit error (`ms`: the limit).
#[cold]
pub fn time_error(ms: u64) -> VmError {
    VmError::limit(LimitKind::Time, format!("time limit of {ms} ms exceeded"))
}

#[cold]
fn memory_error(request: usize) -> VmError {
    let (used, limit) =
        CURRENT.with(|c| c.borrow().as_ref().map_or((0, 0), |b| (live_bytes() - b.mem_base, b.config.max_memory.unwrap_or(0))));
    let msg = if request > 0 {
        format!("memory limit of {limit} bytes exceeded (in use: {used} bytes, requested: {request} bytes)")
    } else {
        format!("memory limit of {limit} bytes exceeded (in use: {used} bytes)")
    };
    VmError::limit(LimitKind::Memory, msg)
}

/// Fails when allocating `bytes` more would pass the run's memory budget
/// (or the budget is passed already).
#[inline]
pub fn check_memory(bytes: usize) -> VmResult<()> {
    let ceiling = mem_ceiling();
    if ceiling == isize::MAX {
        return Ok(());
    }
    let after = live_bytes().saturating_add(isize::try_from(bytes).unwrap_or(isize::MAX));
    if after > ceiling || mem_over() {
        return Err(memory_error(bytes));
    }
    Ok(())
}

/// Whether the text of `v` is longer than `cap` bytes, by a lower bound of
/// its display size (string bytes plus one per other value). Walks shared
/// values once per reference, as display does, and stops as soon as the
/// bound passes `cap` (so at most about `cap` steps).
pub fn display_exceeds(v: &Value, cap: usize) -> bool {
    let mut total: usize = 0;
    let mut todo: Vec<&Value> = vec![v];
    while let Some(v) = todo.pop() {
        total = total.saturating_add(match v {
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::List(items) | Value::Set(items) => {
                todo.extend(items.iter());
                2 + items.len()
            }
            Value::Dict(map) => {
                // A size sum: order does not matter, so no key order is computed.
                for (k, x) in map.iter_unordered() {
                    total = total.saturating_add(k.len());
                    todo.push(x);
                }
                2 + map.len()
            }
            Value::Pair(p) => {
                todo.push(&p.0);
                todo.push(&p.1);
                2
            }
            Value::Enum(e) => {
                todo.extend(e.fields.iter());
                1
            }
            Value::Struct(s) => {
                todo.extend(s.values.iter());
                1
            }
            _ => 1,
        });
        if total > cap {
            return true;
        }
    }
    false
}

/// Fails before the text of a container `v` is built for output when it
/// would pass the output budget: a value that is small in memory can be
/// huge as text (a list holding one big string many times).
pub fn check_display_output(v: &Value) -> VmResult<()> {
    if !matches!(v, Value::List(_) | Value::Set(_) | Value::Dict(_) | Value::Pair(_) | Value::Enum(_) | Value::Struct(_)) {
        return Ok(());
    }
    let room =
        CURRENT.with(|c| c.borrow().as_ref().and_then(|b| b.config.max_output.map(|m| m.saturating_sub(b.output_written.get()))));
    let Some(room) = room else { return Ok(()) };
    if display_exceeds(v, usize::try_from(room).unwrap_or(usize::MAX)) {
        let max = CURRENT.with(|c| c.borrow().as_ref().and_then(|b| b.config.max_output)).unwrap_or(0);
        return Err(VmError::limit(
            LimitKind::Output,
            format!("output limit of {max} bytes exceeded (a value too long to display)"),
        ));
    }
    Ok(())
}

/// Bytes the run in progress may still allocate under its memory budget
/// (`usize::MAX` without one).
pub fn memory_room() -> usize {
    let ceiling = mem_ceiling();
    if ceiling == isize::MAX {
        return usize::MAX;
    }
    usize::try_from(ceiling.saturating_sub(live_bytes())).unwrap_or(0)
}

/// Fails before the text of a container `v` is built in memory (string
/// interpolation) when it would not fit the memory budget.
#[inline]
pub fn check_display_memory(v: &Value) -> VmResult<()> {
    if !matches!(v, Value::List(_) | Value::Set(_) | Value::Dict(_) | Value::Pair(_) | Value::Enum(_) | Value::Struct(_)) {
        return Ok(());
    }
    let room = memory_room();
    if room == usize::MAX {
        return Ok(());
    }
    if display_exceeds(v, room) {
        return Err(memory_error(room.saturating_add(1)));
    }
    Ok(())
}

/// Counts `bytes` of output against the run's output budget.
#[inline]
pub fn charge_output(bytes: usize) -> VmResult<()> {
    CURRENT.with(|c| {
        let current = c.borrow();
        let Some(b) = current.as_ref() else { return Ok(()) };
        let written = b.output_written.get().saturating_add(bytes as u64);
        b.output_written.set(written);
        match b.config.max_output {
            Some(max) if written > max => {
                Err(VmError::limit(LimitKind::Output, format!("output limit of {max} bytes exceeded ({written} bytes written)")))
            }
            _ => Ok(()),
        }
    })
}

#[inline(always)]
fn note_alloc(bytes: usize) {
    // `try_with`: never panic in the allocator, even while the thread's
    // locals are being torn down.
    let _ = MEM.try_with(|m| {
        let now = m.live.get().wrapping_add(bytes as isize);
        m.live.set(now);
        if now > m.ceiling.get() {
            m.over.set(true);
        }
    });
}

#[inline(always)]
fn note_realloc(old: usize, new: usize) {
    let _ = MEM.try_with(|m| {
        let now = m.live.get().wrapping_sub(old as isize).wrapping_add(new as isize);
        m.live.set(now);
        if now > m.ceiling.get() {
            m.over.set(true);
        }
    });
}

#[inline(always)]
fn note_free(bytes: usize) {
    let _ = MEM.try_with(|m| m.live.set(m.live.get().wrapping_sub(bytes as isize)));
}

/// A global allocator that counts the bytes live per thread (see the module
/// docs). Install it in the final binary with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` unchanged; the counting only
// touches `const`-initialised thread-locals without destructors, which
// never allocate.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = std::alloc::System.alloc(layout);
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = std::alloc::System.alloc_zeroed(layout);
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout);
        note_free(layout.size());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = std::alloc::System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            note_realloc(layout.size(), new_size);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(r: VmResult<()>) -> Option<ErrorKind> {
        r.err().map(|e| e.0.kind.clone())
    }

    #[test]
    fn output_budget_counts_every_write() {
        let b = start(BudgetConfig { max_output: Some(10), ..Default::default() });
        assert!(charge_output(6).is_ok());
        assert!(matches!(kind(charge_output(5)), Some(ErrorKind::Limit(LimitKind::Output, _))));
        assert_eq!(b.output_written(), 11);
        deactivate(&b);
        // Without an active budget nothing is counted.
        assert!(charge_output(1 << 40).is_ok());
    }

    #[test]
    fn interrupt_and_deadline_are_seen_at_the_next_check() {
        let flag = Arc::new(AtomicBool::new(false));
        let b = start(BudgetConfig { interrupt: Some(flag.clone()), ..Default::default() });
        assert!(check().is_ok());
        flag.store(true, Ordering::Relaxed);
        assert!(matches!(kind(check()), Some(ErrorKind::Interrupted)));
        deactivate(&b);
        let past = Instant::now() - Duration::from_millis(5);
        let b = start(BudgetConfig { deadline: Some((past, 1)), ..Default::default() });
        // `poll` checks only every `WORK_PER_CHECK / POLL_WORK` calls; `charge_work` of a megabyte at once.
        let mut polls = 0;
        while poll().is_ok() {
            polls += 1;
        }
        assert_eq!(polls, (WORK_PER_CHECK as usize / POLL_WORK) - 1);
        assert!(matches!(kind(charge_work(WORK_PER_CHECK as usize)), Some(ErrorKind::Limit(LimitKind::Time, _))));
        deactivate(&b);
    }

    #[test]
    fn memory_budget_refuses_a_request_that_would_not_fit() {
        let b = start(BudgetConfig { max_memory: Some(1000), ..Default::default() });
        assert!(check_memory(999).is_ok());
        assert!(matches!(kind(check_memory(1 << 20)), Some(ErrorKind::Limit(LimitKind::Memory, _))));
        deactivate(&b);
        assert!(check_memory(1 << 40).is_ok());
    }

    #[test]
    fn a_host_check_error_stops_the_run() {
        let b =
            start(BudgetConfig { host_check: Some(Rc::new(|| Err(VmError::new(ErrorKind::Interrupted)))), ..Default::default() });
        assert!(matches!(kind(check_now()), Some(ErrorKind::Interrupted)));
        deactivate(&b);
    }
}
