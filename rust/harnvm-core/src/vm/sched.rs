//! The task scheduler: many Harn tasks on one VM, switched only at await points.
//!
//! Sans-IO: the scheduler never blocks and never owns an event loop. `Vm::step`
//! runs ready tasks until every task waits, then reports what it waits for
//! (the earliest timer, the number of pending host calls). A driver — the
//! blocking loop in `Vm::run`, or the Python asyncio driver — sleeps or awaits
//! host calls, hands results back with `complete_host_call`, and steps again.
//!
//! Each task owns a `Fiber`; the running task's fiber is swapped into
//! `Vm::fiber`, so the dispatch loop is unchanged. A blocking builtin records
//! a `Wait` and unwinds out of the dispatch loop with the instruction pointer
//! rewound to the call; when the wait is satisfied the scheduler stores the
//! result in the task's `resume` slot and the call instruction runs again,
//! finding its result there. Output of a task is buffered in its fiber and
//! appended to the awaiting task's output at join (root output goes to the
//! host sink), exactly as Harn does.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Instant;

use super::{Fiber, Vm};
use crate::builtins::concurrency::sched_op_name;
use crate::builtins::{Flow, SchedOp};
use crate::runtime::error::{ErrorKind, VmError, VmResult};
use crate::runtime::sched_object::{
    Acquire, Channel, ChannelKind, Mailbox, MailboxState, Permit, SchedObject, SharedCell, SharedCellState, SharedMap,
    SharedMapState,
};
use crate::runtime::value::{arg, DictMap, HStr, Object, Value};

pub type TaskId = u64;
const ROOT: TaskId = 0;

/// What `Vm::step` reports.
pub enum RunState {
    /// The root task finished (its value or error); other tasks were cancelled.
    Done(VmResult<Value>),
    /// Every task waits. `timer_ms`: milliseconds until the earliest timer
    /// (None: no timer); `host_calls`: host calls still pending.
    Waiting { timer_ms: Option<f64>, host_calls: usize },
}

/// A host function's answer: a value now, or later via `Vm::complete_host_call`.
pub enum HostReply {
    Ready(Value),
    Pending,
}

/// What `drive_blocking` hands the host's waiter when every task waits.
pub struct Waiting {
    /// Milliseconds until the earliest timer or the run's deadline (None: neither).
    pub timer_ms: Option<f64>,
    /// Host calls still pending.
    pub host_calls: usize,
    /// Host calls whose waiting task was cancelled since the last wait.
    pub cancelled: Vec<u64>,
}

/// Waits for at most `timer_ms` (or until a host call completes) and
/// returns the host calls completed meanwhile; an error ends the run.
pub type Waiter = Box<dyn FnMut(Waiting) -> VmResult<Vec<(u64, VmResult<Value>)>>>;

/// A host function: `(call_id, args)`. Returning `Pending` suspends the
/// calling task until `complete_host_call(call_id, ..)`.
pub type HostFn = Box<dyn FnMut(u64, &[Value]) -> VmResult<HostReply>>;

enum Clock {
    Real(Instant),
    Virtual(f64),
}

/// What a blocked task waits for.
enum Wait {
    Sleep(f64),
    Join(TaskId),
    Recv {
        ch: Value,
        until: Option<f64>,
    },
    Send {
        ch: Value,
        value: Value,
    },
    /// `select` builtin / statement / `channel_select`.
    Select {
        chans: Vec<Value>,
        until: Option<f64>,
        form: SelectForm,
    },
    Group(u64),
    Host(u64),
    Acquire {
        req: Acquire,
        until: Option<f64>,
        since: f64,
    },
    MailboxRecv {
        name: String,
        until: Option<f64>,
    },
    CancelGraceful {
        target: TaskId,
        until: f64,
    },
    /// `for x in channel`: resumes with `[item]`, or nil when closed and drained.
    IterChannel(Value),
}

#[derive(Clone, Copy, PartialEq)]
enum SelectForm {
    /// `select(...)` / `channel_select`: a result dict or nil.
    Dict,
    /// The statement: `[index, value]`, index -1 on timeout.
    Statement,
}

#[derive(Clone, Copy, PartialEq)]
enum Owner {
    Root,
    Plain,
    Group(u64, usize),
    Supervisor(u64, usize),
}

struct TaskInfo {
    id: String,
    parent: Option<String>,
    name: String,
    group: Option<String>,
    values: DictMap,
}

struct Task {
    fiber: Fiber,
    /// Fibers parked under a generator body the task was running when it
    /// waited (see `vm/generators.rs`), and the frames they hold.
    parked: Vec<super::generators::Parked>,
    parked_frames: usize,
    /// The callee and arguments, until the task first runs.
    start: Option<(Value, Vec<Value>)>,
    wait: Option<Wait>,
    resume: Option<VmResult<Value>>,
    info: TaskInfo,
    /// Absolute times (ms) of the enclosing `deadline` blocks.
    deadlines: Vec<f64>,
    cancel_requested: bool,
    /// Permits of the `mutex { }` blocks the task is inside.
    mutex_blocks: Vec<Value>,
    /// Tasks it spawned, with its `deadline` nesting depth at the time: they
    /// are cancelled when it ends, or when a deadline around the spawn fires.
    spawned: Vec<(TaskId, usize)>,
    owner: Owner,
}

impl Task {
    /// A task that has not run yet: it starts by calling `callee(args)`.
    fn new(callee: Value, args: Vec<Value>, info: TaskInfo, owner: Owner) -> Box<Task> {
        Box::new(Task {
            fiber: Fiber::default(),
            parked: Vec::new(),
            parked_frames: 0,
            start: Some((callee, args)),
            wait: None,
            resume: None,
            info,
            deadlines: Vec::new(),
            cancel_requested: false,
            mutex_blocks: Vec::new(),
            spawned: Vec::new(),
            owner,
        })
    }
}

/// `keep_spare_root`'s conditions on the task itself (not on its fiber):
/// nothing pending, held or spawned, and no task-local values. (Only
/// `new_root_task` makes `Owner::Root` tasks, and nothing renames a task,
/// so a root's names are always a new root's.)
fn root_is_reusable(task: &Task) -> bool {
    debug_assert!(
        task.owner != Owner::Root
            || (task.info.id == "task_root"
                && task.info.name == "root"
                && task.info.parent.is_none()
                && task.info.group.is_none())
    );
    task.owner == Owner::Root
        && task.start.is_none()
        && task.wait.is_none()
        && task.resume.is_none()
        && task.deadlines.is_empty()
        && !task.cancel_requested
        && task.mutex_blocks.is_empty()
        && task.spawned.is_empty()
        && task.info.values.is_empty()
}

struct Finished {
    result: VmResult<Value>,
    output: String,
}

#[derive(Clone, Copy, PartialEq)]
enum GroupMode {
    Count,
    Each,
    Settle,
    Stream,
}

struct Group {
    mode: GroupMode,
    closure: Value,
    args: Vec<Vec<Value>>,
    next: usize,
    running: Vec<TaskId>,
    max: usize,
    slots: Vec<Option<Finished>>,
    done: usize,
    /// Fail-fast: set when a child of `parallel`/`parallel each` failed.
    failed: bool,
    stream: Option<Value>,
    id: String,
    parent: TaskId,
    parent_id: String,
    values: DictMap,
}

impl Group {
    fn complete(&self) -> bool {
        self.failed && self.running.is_empty() || self.done == self.args.len()
    }
}

#[derive(Default)]
struct SyncSlot {
    held: i64,
    readers: i64,
    writer: bool,
    queue: VecDeque<TaskId>,
    acquisitions: i64,
    timeouts: i64,
    cancellations: i64,
    releases: i64,
    max_queue: i64,
    total_wait_ms: f64,
    total_held_ms: f64,
}

struct SupChild {
    name: String,
    kind: String,
    task: Value,
    mode: String,
    max_restarts: i64,
    window_ms: Option<f64>,
    backoff_ms: f64,
    circuit_open_ms: Option<f64>,
    status: &'static str,
    wait_reason: Option<&'static str>,
    restart_count: i64,
    restarts_at: Vec<f64>,
    running: Option<TaskId>,
    last_error: Option<String>,
    last_result: Value,
}

struct Supervisor {
    name: String,
    strategy: String,
    children: Vec<SupChild>,
    events: Vec<Value>,
    started: i64,
    failed: i64,
    restarted: i64,
    suppressed: i64,
    completed: i64,
    stopped: bool,
}

/// All scheduler state of a `Vm`.
pub struct Sched {
    /// Boxed, so moving a task in and out of the map, `running` and
    /// `finish_task` copies a pointer rather than the whole task.
    tasks: BTreeMap<TaskId, Box<Task>>,
    ready: VecDeque<TaskId>,
    /// The running task, taken out of `tasks` (its fiber is in `Vm::fiber`).
    running: Option<Box<Task>>,
    current: TaskId,
    finished: HashMap<TaskId, Finished>,
    root_result: Option<VmResult<Value>>,
    next_task: TaskId,
    clock: Clock,
    virtual_clock: bool,
    /// Set by a blocking builtin just before it unwinds out of the dispatch loop.
    suspend: Option<Wait>,
    groups: HashMap<u64, Group>,
    next_group: u64,
    spawn_counter: u64,
    parallel_counter: u64,
    pub(super) host_fns: HashMap<String, HostFn>,
    next_host_call: u64,
    host_results: HashMap<u64, VmResult<Value>>,
    host_pending: usize,
    cancelled_host_calls: Vec<u64>,
    sync: HashMap<(&'static str, String), SyncSlot>,
    shared_cells: HashMap<String, Rc<SharedCell>>,
    shared_maps: HashMap<String, Rc<SharedMap>>,
    mailboxes: HashMap<String, Rc<Mailbox>>,
    supervisors: Vec<Supervisor>,
    /// Pending supervisor restarts: (time, supervisor, child).
    restarts: Vec<(f64, usize, usize)>,
    /// The last root task, emptied (allocations kept), reused by the next
    /// run's root (`Vm::new_root_task`, `Sched::keep_spare_root`).
    spare_root: Option<Box<Task>>,
    /// Call frames for scheduler builtins used as callbacks, by (builtin, argc).
    trampolines: HashMap<(u32, u32), Rc<crate::runtime::value::Closure>>,
}

impl Sched {
    pub fn new(virtual_clock: bool) -> Sched {
        Sched {
            tasks: BTreeMap::new(),
            ready: VecDeque::new(),
            running: None,
            current: ROOT,
            finished: HashMap::new(),
            root_result: None,
            next_task: 1,
            clock: if virtual_clock { Clock::Virtual(0.0) } else { Clock::Real(Instant::now()) },
            virtual_clock,
            suspend: None,
            groups: HashMap::new(),
            next_group: 1,
            spawn_counter: 0,
            parallel_counter: 0,
            host_fns: HashMap::new(),
            next_host_call: 1,
            host_results: HashMap::new(),
            host_pending: 0,
            cancelled_host_calls: Vec::new(),
            sync: HashMap::new(),
            shared_cells: HashMap::new(),
            shared_maps: HashMap::new(),
            mailboxes: HashMap::new(),
            supervisors: Vec::new(),
            restarts: Vec::new(),
            spare_root: None,
            trampolines: HashMap::new(),
        }
    }

    /// Keeps a finished root task (its box, fiber allocations and info) for
    /// the next run's root, when it is as a new root would be: no frames,
    /// handlers, parked fibers, waits, deadlines, permits or children, the
    /// default names and no task-local values. Anything else is dropped.
    /// (A field added to `Task` must be checked here.)
    fn keep_spare_root(&mut self, mut task: Box<Task>) {
        let clean = task.fiber.frames.is_empty()
            && task.fiber.handlers.is_empty()
            && task.parked.is_empty()
            && task.parked_frames == 0
            && root_is_reusable(&task);
        if clean {
            task.fiber.stack.clear();
            task.fiber.output.clear();
            self.spare_root = Some(task);
        }
    }

    /// Whether a host crossing may run its root inline (`Vm::call_root_inline`):
    /// no run in progress and nothing left of an earlier one, and a spare root.
    fn idle_with_spare_root(&self) -> bool {
        self.spare_root.is_some() && self.running.is_none() && self.root_result.is_none() && self.is_quiet()
    }

    /// Milliseconds on the scheduler clock.
    pub fn now(&self) -> f64 {
        match &self.clock {
            Clock::Real(start) => start.elapsed().as_secs_f64() * 1000.0,
            Clock::Virtual(t) => *t,
        }
    }

    /// Drops a suspension that cannot be honoured (reports whether there was one).
    pub fn cancel_suspend(&mut self) -> bool {
        self.suspend.take().is_some()
    }

    /// Whether output of the running task goes to the host sink.
    #[inline]
    pub fn current_is_root(&self) -> bool {
        self.current == ROOT
    }

    /// The earliest `deadline` of the running task, if any.
    pub fn current_deadline(&self) -> Option<f64> {
        self.running.as_ref().and_then(|t| t.deadlines.iter().copied().reduce(f64::min))
    }

    /// Tasks not finished yet (the root included while it runs).
    pub fn live_tasks(&self) -> usize {
        self.tasks.len() + self.running.is_some() as usize
    }

    fn alloc_id(&mut self) -> TaskId {
        let id = self.next_task;
        self.next_task += 1;
        id
    }

    fn new_task(&mut self, callee: Value, args: Vec<Value>, info: TaskInfo, owner: Owner) -> TaskId {
        let id = self.alloc_id();
        self.tasks.insert(id, Task::new(callee, args, info, owner));
        self.ready.push_back(id);
        id
    }

    fn cur(&mut self) -> &mut Task {
        self.running.as_mut().expect("a task is running")
    }

    /// Removes a task that has not finished (cancel/abort): its output is
    /// lost, a pending host call is reported as cancelled, permits it waited
    /// for leave their queues, and the tasks it spawned or runs in groups go
    /// with it (iteratively: spawn chains may be long).
    fn abort_task(&mut self, id: TaskId) {
        let mut work = vec![id];
        while let Some(id) = work.pop() {
            self.abort_one(id, &mut work);
        }
    }

    fn abort_one(&mut self, id: TaskId, more: &mut Vec<TaskId>) {
        // (Its id may stay in the ready queue: `run_task` skips ids with no
        // task. Taking it out here made cancelling n tasks quadratic.)
        let Some(task) = self.tasks.remove(&id) else { return };
        if let Some(Wait::Group(g)) = &task.wait {
            if let Some(group) = self.groups.remove(g) {
                more.extend(group.running);
            }
        }
        self.forget_wait(id, task.wait.as_ref(), true);
        for permit in &task.mutex_blocks {
            self.release_permit(permit);
        }
        more.extend(task.spawned.iter().map(|(t, _)| *t));
        let child_groups: Vec<u64> = self.groups.iter().filter(|(_, g)| g.parent == id).map(|(k, _)| *k).collect();
        for g in child_groups {
            if let Some(group) = self.groups.remove(&g) {
                more.extend(group.running);
            }
        }
        match task.owner {
            Owner::Group(g, _) => {
                if let Some(group) = self.groups.get_mut(&g) {
                    group.running.retain(|t| *t != id);
                }
            }
            Owner::Supervisor(s, c) => {
                if let Some(child) = self.supervisors.get_mut(s as usize).and_then(|sup| sup.children.get_mut(c)) {
                    child.running = None;
                    child.status = "stopped";
                }
            }
            _ => {}
        }
    }

    /// A `deadline` of `task` fired: cancels what was spawned inside it and
    /// the `parallel` group it waited for. Returns the error to raise.
    fn deadline_fired(&mut self, task: &mut Task) -> VmError {
        let now = self.now();
        let level = task.deadlines.iter().position(|d| *d <= now).unwrap_or(0);
        let (inside, outside): (Vec<_>, Vec<_>) = task.spawned.drain(..).partition(|(_, depth)| *depth > level);
        task.spawned = outside;
        for (child, _) in inside {
            self.abort_task(child);
        }
        VmError::throw_msg("Deadline exceeded")
    }

    /// The running task's deadline fired while it computed.
    pub fn running_deadline_fired(&mut self) -> VmError {
        let mut task = self.running.take().expect("a task is running");
        let e = self.deadline_fired(&mut task);
        self.running = Some(task);
        e
    }

    /// Cleans up what a wait holds outside the task (host call, queue slot).
    fn forget_wait(&mut self, id: TaskId, wait: Option<&Wait>, cancelled: bool) {
        match wait {
            Some(Wait::Host(call)) => {
                if self.host_results.remove(call).is_none() && cancelled {
                    self.cancelled_host_calls.push(*call);
                }
                self.host_pending = self.host_pending.saturating_sub(1);
            }
            Some(Wait::Acquire { req, .. }) => {
                if let Some(slot) = self.sync.get_mut(&(req.kind, req.key.clone())) {
                    slot.queue.retain(|t| *t != id);
                    if cancelled {
                        slot.cancellations += 1;
                    }
                }
            }
            _ => {}
        }
    }

    /// Cancels everything (the VM finished or the host aborted the run).
    pub fn shutdown(&mut self) {
        if self.is_quiet() {
            // The usual state after a host crossing: nothing to cancel or clear.
            return;
        }
        // Cleared first: `abort_one` takes each task out of the ready queue,
        // which for 100k unawaited spawns would be quadratic.
        self.ready.clear();
        if !self.tasks.is_empty() {
            let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
            for id in ids {
                self.abort_task(id);
            }
        }
        self.ready.clear();
        self.groups.clear();
        self.finished.clear();
        self.restarts.clear();
        self.host_results.clear();
        self.host_pending = 0;
        self.suspend = None;
    }

    /// Nothing for `shutdown` to cancel or clear: no tasks, ready queue,
    /// groups, unjoined results, pending restarts, host calls or suspension.
    fn is_quiet(&self) -> bool {
        self.tasks.is_empty()
            && self.ready.is_empty()
            && self.groups.is_empty()
            && self.finished.is_empty()
            && self.restarts.is_empty()
            && self.host_results.is_empty()
            && self.host_pending == 0
            && self.suspend.is_none()
    }

    fn release_permit(&mut self, permit: &Value) -> bool {
        let now = self.now();
        let Some(SchedObject::Permit(p)) = sched_object(permit) else { return false };
        if p.released.replace(true) {
            return false;
        }
        let (req, at) = (&p.req, p.acquired_at);
        let slot = self.sync.entry((req.kind, req.key.clone())).or_default();
        match req.kind {
            "rwlock" if !req.write => slot.readers -= 1,
            "rwlock" => slot.writer = false,
            _ => slot.held -= req.permits,
        }
        slot.releases += 1;
        slot.total_held_ms += now - at;
        true
    }

    /// Takes the permit if it is free now (and `id` is first in line).
    fn try_acquire(&mut self, req: &Acquire, id: TaskId, since: f64) -> Option<Value> {
        let now = self.now();
        let slot = self.sync.entry((req.kind, req.key.clone())).or_default();
        if slot.queue.front().is_some_and(|t| *t != id) {
            return None;
        }
        let free = match req.kind {
            "rwlock" if req.write => !slot.writer && slot.readers == 0,
            "rwlock" => !slot.writer,
            "mutex" => slot.held == 0,
            _ => slot.held + req.permits <= req.capacity,
        };
        if !free {
            return None;
        }
        match req.kind {
            "rwlock" if req.write => slot.writer = true,
            "rwlock" => slot.readers += 1,
            _ => slot.held += req.permits,
        }
        if slot.queue.front() == Some(&id) {
            slot.queue.pop_front();
        }
        slot.acquisitions += 1;
        slot.total_wait_ms += now - since;
        Some(sched_value(SchedObject::Permit(Permit { req: req.clone(), released: Cell::new(false), acquired_at: now })))
    }

    /// Tries to satisfy the wait of task `id` (not running).
    fn poll_wait(&mut self, id: TaskId, task: &mut Task, now: f64) -> Option<VmResult<Value>> {
        let wait = task.wait.as_ref()?;
        if task.deadlines.iter().any(|d| *d <= now) {
            let wait = task.wait.take();
            if let Some(Wait::Group(g)) = &wait {
                if let Some(group) = self.groups.remove(g) {
                    for child in group.running {
                        self.abort_task(child);
                    }
                }
            }
            self.forget_wait(id, wait.as_ref(), true);
            return Some(Err(self.deadline_fired(task)));
        }
        let result = match wait {
            Wait::Sleep(until) => (*until <= now).then_some(Ok(Value::Nil)),
            Wait::Join(target) => match self.finished.remove(target) {
                Some(f) => {
                    task.fiber.output.push_str(&f.output);
                    Some(f.result)
                }
                None if !self.tasks.contains_key(target) && self.current != *target => Some(Ok(Value::Nil)),
                None => None,
            },
            Wait::Recv { ch, until } => match channel_pop(ch) {
                Some(Some(v)) => Some(Ok(v)),
                Some(None) => Some(Ok(Value::Nil)),
                None if until.is_some_and(|u| u <= now) => Some(Ok(Value::Nil)),
                None => None,
            },
            Wait::IterChannel(ch) => match channel_pop(ch) {
                Some(Some(v)) => Some(Ok(Value::list(vec![v]))),
                Some(None) => Some(Ok(Value::Nil)),
                None => None,
            },
            Wait::Send { ch, value } => channel_push(ch, value).map(|ok| Ok(Value::Bool(ok))),
            Wait::Select { chans, until, form } => match select_ready(chans, *form) {
                Some(v) => Some(Ok(v)),
                None if until.is_some_and(|u| u <= now) => Some(Ok(select_timeout(*form))),
                None => None,
            },
            Wait::Group(g) => {
                let g = *g;
                if self.groups.get(&g).is_some_and(Group::complete) {
                    let group = self.groups.remove(&g).expect("checked");
                    Some(group_result(group, &mut task.fiber.output))
                } else {
                    None
                }
            }
            Wait::Host(call) => {
                let r = self.host_results.remove(call);
                if r.is_some() {
                    self.host_pending = self.host_pending.saturating_sub(1);
                }
                r
            }
            Wait::Acquire { req, until, since } => {
                let (req, until, since) = (req.clone(), *until, *since);
                match self.try_acquire(&req, id, since) {
                    Some(p) => Some(Ok(p)),
                    None if until.is_some_and(|u| u <= now) => {
                        let slot = self.sync.entry((req.kind, req.key.clone())).or_default();
                        slot.queue.retain(|t| *t != id);
                        slot.timeouts += 1;
                        slot.total_wait_ms += now - since;
                        Some(Ok(Value::Nil))
                    }
                    None => None,
                }
            }
            Wait::MailboxRecv { name, until } => {
                let mb = self.mailboxes.get(name).cloned();
                match mb {
                    Some(mb) => {
                        let mut mb = mb.state.borrow_mut();
                        match mb.queue.pop_front() {
                            Some(v) => {
                                mb.received += 1;
                                Some(Ok(v))
                            }
                            None if mb.closed || until.is_some_and(|u| u <= now) => Some(Ok(Value::Nil)),
                            None => None,
                        }
                    }
                    None => Some(Ok(Value::Nil)),
                }
            }
            Wait::CancelGraceful { target, until } => {
                let (target, until) = (*target, *until);
                match self.finished.remove(&target) {
                    Some(f) => Some(Ok(match f.result {
                        Ok(v) => Value::ok(v),
                        Err(e) => Value::err(Value::str(e.message())),
                    })),
                    None if until <= now || !self.tasks.contains_key(&target) => {
                        self.abort_task(target);
                        Some(Ok(Value::err(Value::str("cancel_graceful: timeout, task forcefully aborted"))))
                    }
                    None => None,
                }
            }
        };
        if result.is_some() {
            task.wait = None;
        }
        result
    }

    /// Wakes every waiting task whose wait is satisfied, in id order.
    fn poll_all(&mut self) {
        let now = self.now();
        let waiting: Vec<TaskId> = self.tasks.iter().filter(|(_, t)| t.wait.is_some()).map(|(id, _)| *id).collect();
        for id in waiting {
            let Some(mut task) = self.tasks.remove(&id) else { continue };
            if let Some(r) = self.poll_wait(id, &mut task, now) {
                task.resume = Some(r);
                self.ready.push_back(id);
            }
            self.tasks.insert(id, task);
        }
        self.run_due_restarts(now);
    }

    /// The earliest time some waiting task (or a supervisor) needs the clock.
    fn next_timer(&self) -> Option<f64> {
        let mut best: Option<f64> = None;
        let mut consider = |t: f64| best = Some(best.map_or(t, |b: f64| b.min(t)));
        for task in self.tasks.values() {
            let Some(wait) = &task.wait else { continue };
            for d in &task.deadlines {
                consider(*d);
            }
            match wait {
                Wait::Sleep(t) => consider(*t),
                Wait::CancelGraceful { until, .. } => consider(*until),
                Wait::Recv { until: Some(t), .. }
                | Wait::Select { until: Some(t), .. }
                | Wait::Acquire { until: Some(t), .. }
                | Wait::MailboxRecv { until: Some(t), .. } => consider(*t),
                _ => {}
            }
        }
        for (t, _, _) in &self.restarts {
            consider(*t);
        }
        best
    }

    // -----------------------------------------------------------------------
    // Groups and supervisors: what happens when a task finishes

    fn task_finished(&mut self, id: TaskId, owner: Owner, fin: Finished) {
        match owner {
            Owner::Root => self.root_result = Some(fin.result),
            Owner::Plain => {
                self.finished.insert(id, fin);
            }
            Owner::Group(g, index) => self.group_child_done(g, id, index, fin),
            Owner::Supervisor(s, c) => self.supervised_done(s as usize, c, fin),
        }
    }

    fn group_child_done(&mut self, g: u64, id: TaskId, index: usize, fin: Finished) {
        let Some(group) = self.groups.get_mut(&g) else { return };
        group.running.retain(|t| *t != id);
        group.done += 1;
        let failed = fin.result.is_err();
        if let Some(stream) = &group.stream {
            let item = match &fin.result {
                Ok(v) => v.clone(),
                Err(e) => Value::str(e.message()),
            };
            channel_push_unbounded(stream, item);
            let parent = group.parent;
            let out = fin.output;
            if let Some(t) = self.tasks.get_mut(&parent) {
                t.fiber.output.push_str(&out);
            }
        } else {
            group.slots[index] = Some(fin);
        }
        let group = self.groups.get_mut(&g).expect("present");
        if failed && matches!(group.mode, GroupMode::Count | GroupMode::Each) && !group.failed {
            group.failed = true;
            let running = std::mem::take(&mut group.running);
            for t in running {
                self.abort_task(t);
            }
        }
        self.admit(g);
        let group = self.groups.get(&g).expect("present");
        if group.stream.is_some() && group.done == group.args.len() {
            let stream = group.stream.clone().expect("stream");
            channel_close(&stream);
            self.groups.remove(&g);
        }
    }

    /// Starts children of group `g` up to its concurrency cap.
    fn admit(&mut self, g: u64) {
        loop {
            let Some(group) = self.groups.get_mut(&g) else { return };
            if group.failed || group.next >= group.args.len() || (group.max > 0 && group.running.len() >= group.max) {
                return;
            }
            let index = group.next;
            group.next += 1;
            let args = std::mem::take(&mut group.args[index]);
            let info = TaskInfo {
                id: format!("{}:{}", group.id, index),
                parent: Some(group.parent_id.clone()),
                name: match group.mode {
                    GroupMode::Count => "parallel",
                    GroupMode::Each | GroupMode::Stream => "parallel each",
                    GroupMode::Settle => "parallel settle",
                }
                .to_string(),
                group: Some(group.id.clone()),
                values: group.values.clone(),
            };
            let closure = group.closure.clone();
            let id = self.new_task(closure, args, info, Owner::Group(g, index));
            self.groups.get_mut(&g).expect("present").running.push(id);
        }
    }

    fn supervised_done(&mut self, s: usize, c: usize, fin: Finished) {
        let now = self.now();
        let Some(sup) = self.supervisors.get_mut(s) else { return };
        let child = &mut sup.children[c];
        child.running = None;
        match fin.result {
            Ok(v) => {
                child.last_result = v;
                let restart = child.mode == "always" && !sup.stopped;
                sup.completed += 1;
                sup.events.push(sup_event("child_completed", &child.name));
                if restart {
                    child.status = "backoff";
                    let at = now + child.backoff_ms;
                    self.restarts.push((at, s, c));
                } else {
                    child.status = "stopped";
                    child.wait_reason = None;
                }
            }
            Err(e) => {
                sup.failed += 1;
                child.last_error = Some(e.message());
                sup.events.push(sup_event("child_failed", &child.name));
                if child.mode == "never" || sup.stopped {
                    child.status = "failed";
                    return;
                }
                let recent = match child.window_ms {
                    Some(w) => child.restarts_at.iter().filter(|t| now - **t < w).count() as i64,
                    None => child.restarts_at.len() as i64,
                };
                if recent < child.max_restarts {
                    // The restart counts against the window from the failure on.
                    child.restarts_at.push(now);
                    child.status = "backoff";
                    child.wait_reason = Some("restart_backoff");
                    let at = now + child.backoff_ms;
                    self.restarts.push((at, s, c));
                } else {
                    sup.suppressed += 1;
                    sup.events.push(sup_event("child_suppressed", &child.name));
                    match child.circuit_open_ms {
                        Some(ms) => {
                            child.status = "circuit_open";
                            child.wait_reason = Some("circuit_open");
                            let at = now + ms;
                            self.restarts.push((at, s, c));
                        }
                        None => {
                            child.status = "suppressed";
                            child.wait_reason = Some("restart_cap_exceeded");
                        }
                    }
                }
            }
        }
    }

    fn run_due_restarts(&mut self, now: f64) {
        if self.restarts.is_empty() {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = self.restarts.drain(..).partition(|(t, _, _)| *t <= now);
        self.restarts = later;
        for (_, s, c) in due {
            let stopped = self.supervisors.get(s).is_none_or(|sup| sup.stopped);
            if stopped {
                continue;
            }
            let half_open = self.supervisors[s].children[c].status == "circuit_open";
            {
                let sup = &mut self.supervisors[s];
                let child = &mut sup.children[c];
                if !half_open {
                    child.restart_count += 1;
                    sup.restarted += 1;
                    sup.events.push(sup_event("child_restarted", &child.name));
                }
            }
            self.start_supervised(s, c);
        }
    }

    fn start_supervised(&mut self, s: usize, c: usize) {
        let (task, info_name, sup_name, kind) = {
            let sup = &self.supervisors[s];
            let child = &sup.children[c];
            (child.task.clone(), child.name.clone(), sup.name.clone(), child.kind.clone())
        };
        let ctx = Value::dict_from([
            ("supervisor", Value::str(sup_name.clone())),
            ("child", Value::str(info_name.clone())),
            ("kind", Value::str(kind)),
            ("restart_count", Value::Int(self.supervisors[s].children[c].restart_count)),
        ]);
        let info = TaskInfo {
            id: format!("supervisor:{sup_name}:{info_name}:{}", self.next_task),
            parent: Some("task_root".to_string()),
            name: info_name,
            group: Some(format!("supervisor:{sup_name}")),
            values: DictMap::new(),
        };
        let id = self.new_task(task, vec![ctx], info, Owner::Supervisor(s as u64, c));
        let child = &mut self.supervisors[s].children[c];
        child.running = Some(id);
        child.status = "running";
        child.wait_reason = None;
        self.supervisors[s].started += 1;
    }
}

// ---------------------------------------------------------------------------
// Scheduler objects (channels, task handles, permits, ...)

fn sched_value(obj: SchedObject) -> Value {
    Value::Object(Rc::new(Object::Sched(obj)))
}

fn sched_object(v: &Value) -> Option<&SchedObject> {
    match v {
        Value::Object(o) => match &**o {
            Object::Sched(obj) => Some(obj),
            _ => None,
        },
        _ => None,
    }
}

fn channel_of(v: &Value) -> Option<&Channel> {
    match sched_object(v) {
        Some(SchedObject::Channel(c)) => Some(c),
        _ => None,
    }
}

fn task_of(v: &Value) -> Option<TaskId> {
    match sched_object(v) {
        Some(SchedObject::Task(id)) => Some(*id),
        _ => None,
    }
}

fn new_channel(kind: ChannelKind, name: String, capacity: usize) -> Value {
    let queue = RefCell::new(VecDeque::new());
    sched_value(SchedObject::Channel(Channel { kind, name, capacity: capacity.max(1), queue, closed: Cell::new(false) }))
}

/// A channel or a stream (both are iterable and selectable).
pub fn is_channel_like(v: &Value) -> bool {
    channel_of(v).is_some()
}

/// `Some(Some(v))`: a value; `Some(None)`: closed and drained; `None`: empty, open.
fn channel_pop(ch: &Value) -> Option<Option<Value>> {
    let Some(c) = channel_of(ch) else { return Some(None) };
    match c.queue.borrow_mut().pop_front() {
        Some(v) => Some(Some(v)),
        None if c.closed.get() => Some(None),
        None => None,
    }
}

/// `Some(true)`: sent; `Some(false)`: closed; `None`: full.
fn channel_push(ch: &Value, v: &Value) -> Option<bool> {
    let Some(c) = channel_of(ch) else { return Some(false) };
    let mut queue = c.queue.borrow_mut();
    if c.closed.get() {
        Some(false)
    } else if queue.len() < c.capacity {
        queue.push_back(v.clone());
        Some(true)
    } else {
        None
    }
}

fn channel_push_unbounded(ch: &Value, v: Value) {
    if let Some(c) = channel_of(ch) {
        c.queue.borrow_mut().push_back(v);
    }
}

fn channel_close(ch: &Value) {
    if let Some(c) = channel_of(ch) {
        c.closed.set(true);
    }
}

fn channel_name(ch: &Value) -> String {
    channel_of(ch).map(|c| c.name.clone()).unwrap_or_default()
}

/// The first channel (in order) with a value, as the form's result; for
/// the dict form, nil once every channel is closed and drained.
fn select_ready(chans: &[Value], form: SelectForm) -> Option<Value> {
    let mut all_closed = true;
    for (i, ch) in chans.iter().enumerate() {
        match channel_pop(ch) {
            Some(Some(v)) => {
                return Some(match form {
                    SelectForm::Dict => Value::dict_from([
                        ("index", Value::Int(i as i64)),
                        ("value", v),
                        ("channel", Value::str(channel_name(ch))),
                    ]),
                    SelectForm::Statement => Value::list(vec![Value::Int(i as i64), v]),
                });
            }
            Some(None) => {}
            None => all_closed = false,
        }
    }
    (all_closed && form == SelectForm::Dict && !chans.is_empty()).then_some(Value::Nil)
}

fn select_timeout(form: SelectForm) -> Value {
    match form {
        SelectForm::Dict => Value::Nil,
        SelectForm::Statement => Value::list(vec![Value::Int(-1), Value::Nil]),
    }
}

fn group_result(mut group: Group, output: &mut String) -> VmResult<Value> {
    for slot in group.slots.iter().flatten() {
        output.push_str(&slot.output);
    }
    match group.mode {
        GroupMode::Settle => {
            let mut results = Vec::new();
            let (mut ok, mut failed) = (0, 0);
            for slot in group.slots.drain(..) {
                match slot.map(|f| f.result) {
                    Some(Ok(v)) => {
                        ok += 1;
                        results.push(Value::ok(v));
                    }
                    Some(Err(e)) => {
                        failed += 1;
                        results.push(Value::err(Value::str(e.message())));
                    }
                    None => results.push(Value::Nil),
                }
            }
            Ok(Value::dict_from([
                ("results", Value::list(results)),
                ("succeeded", Value::Int(ok)),
                ("failed", Value::Int(failed)),
            ]))
        }
        _ => {
            let mut values = Vec::new();
            let mut first_err = None;
            for slot in group.slots.drain(..) {
                match slot.map(|f| f.result) {
                    Some(Ok(v)) => values.push(v),
                    Some(Err(e)) => {
                        first_err.get_or_insert(e);
                    }
                    None => values.push(Value::Nil),
                }
            }
            match first_err {
                Some(e) => Err(e),
                None => Ok(Value::list(values)),
            }
        }
    }
}

/// A supervisor event; supervisor-wide events have a nil `child` (as 0.9.11).
fn sup_event(kind: &str, child: &str) -> Value {
    let child = if child.is_empty() { Value::Nil } else { Value::str(child) };
    Value::dict_from([("kind", Value::str(kind)), ("child", child)])
}

/// Milliseconds from a duration or a number (`None` for nil).
fn millis(v: &Value) -> Option<f64> {
    match v {
        Value::Duration(ms) => Some(*ms as f64),
        Value::Int(n) => Some(*n as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn get(d: &Value, key: &str) -> Value {
    match d {
        Value::Dict(m) => m.get(&key.to_string()).cloned().unwrap_or_default(),
        _ => Value::Nil,
    }
}

fn str_arg(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn dict_of(entries: Vec<(&'static str, Value)>) -> Value {
    Value::dict_from(entries)
}

// ---------------------------------------------------------------------------
// The Vm side: running tasks and the scheduler builtins

/// Marks the unwinding out of the dispatch loop for a suspension (never
/// seen by Harn code: `execute_task` recognises it by `Sched::suspend`).
fn suspend_marker() -> VmError {
    VmError::new(ErrorKind::Interrupted)
}

impl Fiber {
    /// No frames, values, handlers or output: as `Fiber::default()`, maybe with capacity.
    fn is_pristine(&self) -> bool {
        self.frames.is_empty() && self.stack.is_empty() && self.handlers.is_empty() && self.output.is_empty()
    }
}

impl Vm {
    /// Sets up `callee(args)` as the root task of a new run.
    pub fn start_call(&mut self, callee: Value, args: Vec<Value>) {
        let task = self.new_root_task(callee, args);
        self.sched.tasks.insert(ROOT, task);
        self.sched.ready.push_back(ROOT);
    }

    /// `start_call` of a closure then `drive_blocking` (`Vm::call_closure`
    /// at the root), with the root task run at once instead of through the
    /// task map and ready queue (what `step` would pick first anyway): a
    /// host crossing on an idle VM does not pay for the scheduler's
    /// bookkeeping. Inline on an idle VM (see `call_root_inline`), else
    /// through the scheduler; a root task that waits is handed to the
    /// scheduler as usual.
    pub(super) fn call_root_closure(&mut self, closure: Rc<crate::runtime::value::Closure>, args: Vec<Value>) -> VmResult<Value> {
        if !closure.proto.is_generator && self.sched.idle_with_spare_root() && self.fiber.is_pristine() && self.parked.is_empty()
        {
            return self.call_root_inline(closure, args);
        }
        self.call_root_scheduled(Value::Closure(closure), args)
    }

    /// `call_root_closure` with the root task built and run by the scheduler's rules.
    fn call_root_scheduled(&mut self, callee: Value, args: Vec<Value>) -> VmResult<Value> {
        let task = self.new_root_task(callee, args);
        if let Err(e) = self.check_host_limits() {
            self.sched.tasks.insert(ROOT, task);
            self.sched.shutdown();
            self.fiber = Fiber::default();
            return Err(e);
        }
        self.run_task_now(ROOT, task);
        if let Some(result) = self.sched.root_result.take() {
            // The root finished without waiting (a short crossing): what the
            // first `step` of `drive_blocking` would do, without its loop.
            self.sched.shutdown();
            self.flush_output();
            return result;
        }
        self.drive_blocking()
    }

    /// `call_root_closure` on an idle VM (see `Sched::idle_with_spare_root`):
    /// the spare root becomes the running task and the closure runs on the
    /// VM's fiber in place. Both fibers are pristine, so not swapping them
    /// at the start is the same as swapping; when the call returns and the
    /// root is still reusable, nothing else is done: no task map, ready
    /// queue, shutdown or fiber swap. Anything else (the root waited, threw,
    /// spawned, holds a permit, set context values) is handed to the general
    /// path exactly as `run_task_now` would, after swapping the fibers then.
    fn call_root_inline(&mut self, closure: Rc<crate::runtime::value::Closure>, args: Vec<Value>) -> VmResult<Value> {
        let task = self.sched.spare_root.take().expect("an idle VM has a spare root");
        // (An idle VM's scheduler and fiber need no other reset.)
        self.reset_run();
        if let Err(e) = self.check_host_limits() {
            self.sched.spare_root = Some(task);
            return Err(e);
        }
        self.sched.running = Some(task);
        let argc = args.len() as u32;
        self.fiber.stack.push(Value::Closure(closure.clone()));
        if !args.is_empty() {
            self.fiber.stack.extend(args);
        }
        let outcome = match self.push_frame(closure, argc, None) {
            Ok(()) => self.execute_task(),
            Err(e) => Err(e),
        };
        self.flush_output();
        let task = self.sched.running.take().expect("running task");
        if let Ok(Some(_)) = &outcome {
            let fiber_clean = self.fiber.frames.is_empty()
                && self.fiber.handlers.is_empty()
                && self.parked.is_empty()
                && self.parked_frames == 0;
            if fiber_clean && root_is_reusable(&task) && self.sched.is_quiet() {
                // Root output stays with the VM, as `finish_task` leaves it.
                self.fiber.stack.clear();
                self.sched.spare_root = Some(task);
                let Ok(Some(v)) = outcome else { unreachable!() };
                return Ok(v);
            }
        }
        // The general path: what `run_task_now` does after running a task.
        self.settle_task(ROOT, task, outcome);
        if let Some(result) = self.sched.root_result.take() {
            self.sched.shutdown();
            self.flush_output();
            return result;
        }
        self.drive_blocking()
    }

    /// Resets the run state and builds the root task of a new run: the
    /// previous run's root when it ended cleanly (see `keep_spare_root`), so
    /// repeated crossings do not allocate a task, stack, frame list and task
    /// names each time.
    fn new_root_task(&mut self, callee: Value, args: Vec<Value>) -> Box<Task> {
        self.sched.shutdown();
        self.sched.root_result = None;
        self.sched.running = None;
        if !self.fiber.is_pristine() {
            // (A pristine fiber, as a finished crossing leaves it, is kept.)
            self.fiber = Fiber::default();
        }
        self.parked.clear();
        self.parked_frames = 0;
        self.reset_run();
        if let Some(mut task) = self.sched.spare_root.take() {
            task.start = Some((callee, args));
            return task;
        }
        let info =
            TaskInfo { id: "task_root".to_string(), parent: None, name: "root".to_string(), group: None, values: DictMap::new() };
        Task::new(callee, args, info, Owner::Root)
    }

    /// The reset every way into running goes through (`start`, `start_call`,
    /// `call_closure` and the export calls, inline or scheduled): the root
    /// runs first, task numbering restarts, and the run gets a fresh
    /// interrupt flag, time budget and deadline.
    fn reset_run(&mut self) {
        self.sched.current = ROOT;
        self.sched.spawn_counter = 0;
        self.sched.parallel_counter = 0;
        self.park_floor = 0;
        self.interrupt.store(false, std::sync::atomic::Ordering::Relaxed);
        let spent = std::mem::take(&mut self.spent_before_run);
        self.deadline =
            self.options.time_limit_ms.map(|ms| Instant::now() + std::time::Duration::from_millis(ms).saturating_sub(spent));
        crate::builtins::enter_vm(self.uid, self.rng_seed);
        crate::builtins::end_run_state();
        self.fuel_left = self.options.max_instructions.unwrap_or(u64::MAX);
        self.budget_refill = super::CHECK_INTERVAL.min(u32::try_from(self.fuel_left).unwrap_or(u32::MAX)).max(1);
        self.budget = self.budget_refill;
        self.run_budget = crate::runtime::budget::start(crate::runtime::budget::BudgetConfig {
            deadline: self.deadline.zip(self.options.time_limit_ms),
            interrupt: Some(self.interrupt.clone()),
            max_memory: self.options.max_memory,
            max_output: self.options.max_output,
            host_check: self.host_check.clone(),
        });
    }

    /// `step`, handing control back after about `slice` of running even
    /// when tasks are ready (the running task yields at a loop's backward
    /// jump): `Waiting { timer_ms: Some(0.0), .. }` then means "step again
    /// soon". An asyncio host gets a turn of its loop between slices.
    pub fn step_sliced(&mut self, slice: std::time::Duration) -> RunState {
        self.slice_end = Some(Instant::now() + slice);
        let state = self.step();
        self.slice_end = None;
        self.yielded = false;
        state
    }

    /// At a loop's backward jump whose tick ran out: yields the running task
    /// when its slice is over (only a task at its own top level: not inside
    /// a nested run or a generator body).
    #[cold]
    pub(super) fn maybe_yield(&mut self) -> VmResult<()> {
        let Some(end) = self.slice_end else { return Ok(()) };
        if self.nested_runs > 0 || self.in_generator() || self.sched.running.is_none() || Instant::now() < end {
            return Ok(());
        }
        self.yielded = true;
        // (The wait is replaced with "ready" by `step`; Sleep is only the marker.)
        self.sched.suspend = Some(Wait::Sleep(0.0));
        Err(suspend_marker())
    }

    /// Runs ready tasks until the root task finishes or every task waits.
    pub fn step(&mut self) -> RunState {
        crate::builtins::enter_vm(self.uid, self.rng_seed);
        loop {
            if let Some(result) = self.sched.root_result.take() {
                self.sched.shutdown();
                self.flush_output();
                return RunState::Done(result);
            }
            if let Err(e) = self.check_host_limits() {
                self.sched.shutdown();
                self.fiber = Fiber::default();
                return RunState::Done(Err(e));
            }
            if let Some(id) = self.sched.ready.pop_front() {
                self.run_task(id);
                if std::mem::take(&mut self.yielded) {
                    if let Some(task) = self.sched.tasks.get_mut(&id) {
                        task.wait = None;
                        self.sched.ready.push_back(id);
                    }
                    return RunState::Waiting { timer_ms: Some(0.0), host_calls: self.sched.host_pending };
                }
                continue;
            }
            self.sched.poll_all();
            if !self.sched.ready.is_empty() {
                continue;
            }
            let next = self.sched.next_timer();
            let host_calls = self.sched.host_pending;
            if host_calls == 0 {
                match (next, &mut self.sched.clock) {
                    (Some(t), Clock::Virtual(now)) => {
                        *now = now.max(t);
                        continue;
                    }
                    (None, _) => {
                        self.sched.shutdown();
                        let e = VmError::runtime("deadlock: every task is waiting and nothing can wake them");
                        return RunState::Done(Err(e));
                    }
                    _ => {}
                }
            }
            let now = self.sched.now();
            let mut timer_ms = if self.sched.virtual_clock { None } else { next.map(|t| (t - now).max(0.0)) };
            if let Some(limit) = self.deadline {
                let left = limit.saturating_duration_since(Instant::now()).as_secs_f64() * 1000.0;
                timer_ms = Some(timer_ms.map_or(left, |t| t.min(left)));
            }
            return RunState::Waiting { timer_ms, host_calls };
        }
    }

    fn check_host_limits(&mut self) -> VmResult<()> {
        crate::runtime::budget::activate(&self.run_budget);
        crate::runtime::budget::check()
    }

    /// Runs one task until it finishes or waits.
    fn run_task(&mut self, id: TaskId) {
        let Some(task) = self.sched.tasks.remove(&id) else { return };
        self.run_task_now(id, task);
    }

    /// `run_task` for a task already taken out of the task map.
    fn run_task_now(&mut self, id: TaskId, mut task: Box<Task>) {
        self.swap_task_state(&mut task);
        self.sched.current = id;
        let start = task.start.take();
        self.sched.running = Some(task);
        let outcome = match start {
            Some((callee, args)) => self.begin_call(callee, args),
            None => Ok(None),
        };
        let outcome = match outcome {
            Ok(Some(v)) => Ok(Some(v)),
            Ok(None) => self.execute_task(),
            Err(e) => Err(e),
        };
        self.flush_output();
        let task = self.sched.running.take().expect("running task");
        self.settle_task(id, task, outcome);
    }

    /// After task `id` ran on the VM's fiber: swaps its state back into the
    /// task, then finishes it or parks it on what it waits for.
    fn settle_task(&mut self, id: TaskId, mut task: Box<Task>, outcome: VmResult<Option<Value>>) {
        self.swap_task_state(&mut task);
        task.resume = None;
        match outcome {
            Ok(Some(v)) => self.finish_task(id, task, Ok(v)),
            Ok(None) => {
                task.wait = self.sched.suspend.take();
                self.sched.tasks.insert(id, task);
            }
            Err(e) => self.finish_task(id, task, Err(e)),
        }
        self.sched.current = ROOT;
    }

    /// Swaps a task's execution state (its fiber and any generator fibers
    /// parked under it) with the VM's.
    fn swap_task_state(&mut self, task: &mut Task) {
        std::mem::swap(&mut self.fiber, &mut task.fiber);
        std::mem::swap(&mut self.parked, &mut task.parked);
        std::mem::swap(&mut self.parked_frames, &mut task.parked_frames);
    }

    fn finish_task(&mut self, id: TaskId, mut task: Box<Task>, result: VmResult<Value>) {
        for permit in std::mem::take(&mut task.mutex_blocks) {
            self.sched.release_permit(&permit);
        }
        // As in Harn, a finished task's unawaited spawned tasks are cancelled.
        for (child, _) in std::mem::take(&mut task.spawned) {
            self.sched.abort_task(child);
        }
        let output = std::mem::take(&mut task.fiber.output);
        if task.owner == Owner::Root {
            // Root output stays with the VM (for the sink or `take_output`).
            self.fiber.output.push_str(&output);
            self.sched.root_result = Some(result);
            self.sched.keep_spare_root(task);
            return;
        }
        self.sched.task_finished(id, task.owner, Finished { result, output });
    }

    /// Pushes the first frame of a task; a generator function instead
    /// finishes at once with its generator.
    fn begin_call(&mut self, callee: Value, args: Vec<Value>) -> VmResult<Option<Value>> {
        let argc = args.len() as u32;
        self.fiber.stack.push(callee.clone());
        self.fiber.stack.extend(args);
        match &callee {
            Value::Closure(c) if c.proto.is_generator => self.new_generator(c.clone(), argc).map(Some),
            Value::Closure(c) => self.push_frame(c.clone(), argc, None).map(|_| None),
            other => Err(VmError::type_error(format!("Cannot call {}", other.display()))),
        }
    }

    /// Runs the current fiber: `Some(value)` when its outermost frame
    /// returned, `None` when it suspended.
    fn execute_task(&mut self) -> VmResult<Option<Value>> {
        // Every fiber parked in this task belongs to a generator body it runs.
        let outer_floor = std::mem::replace(&mut self.park_floor, 0);
        let result = self.execute_task_inner();
        self.park_floor = outer_floor;
        result
    }

    fn execute_task_inner(&mut self) -> VmResult<Option<Value>> {
        loop {
            match self.run_frame(0) {
                super::Exit::Switch => {}
                super::Exit::Done(v) => return Ok(Some(v)),
                super::Exit::Error(e, op_at) => {
                    if self.sched.suspend.is_some() {
                        // Re-run the blocking instruction when woken.
                        if let Some(frame) = self.fiber.frames.last_mut() {
                            frame.ip = op_at;
                        }
                        return Ok(None);
                    }
                    if let Err(e) = self.handle_error(e, op_at, 0) {
                        self.fiber.frames.clear();
                        self.fiber.stack.clear();
                        self.fiber.handlers.clear();
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Suspends the running task: the dispatch loop unwinds and the call re-runs when woken.
    fn block(&mut self, wait: Wait) -> VmResult<Flow> {
        self.sched.suspend = Some(wait);
        Err(suspend_marker())
    }

    /// The `Undefined builtin` error, or a host function call.
    pub(super) fn call_host(&mut self, name: &str, args_at: usize) -> VmResult<Value> {
        if let Some(r) = self.sched.running.as_mut().and_then(|t| t.resume.take()) {
            return r;
        }
        let call = self.sched.next_host_call;
        let args: Vec<Value> = self.fiber.stack[args_at..].to_vec();
        let Some(f) = self.sched.host_fns.get_mut(name) else {
            let hint = crate::runtime::error::closest_match(name, crate::builtins::builtin_names());
            return Err(VmError::new(ErrorKind::UndefinedBuiltin(name.to_string(), hint)));
        };
        // Host output order: flush before the host runs.
        self.sched.next_host_call += 1;
        let reply = f(call, &args);
        // The callback's time counts: the run stops as soon as it returns.
        self.recheck_budget()?;
        match reply? {
            HostReply::Ready(v) => Ok(v),
            HostReply::Pending => {
                self.sched.host_pending += 1;
                self.sched.suspend = Some(Wait::Host(call));
                Err(suspend_marker())
            }
        }
    }

    /// Registers a host function callable from Harn by `name`.
    pub fn register_host(&mut self, name: &str, f: HostFn) {
        self.sched.host_fns.insert(name.to_string(), f);
    }

    /// Delivers the result of a pending host call.
    pub fn complete_host_call(&mut self, call: u64, result: VmResult<Value>) {
        let waiting = self.sched.tasks.values().any(|t| matches!(t.wait, Some(Wait::Host(c)) if c == call));
        if waiting {
            self.sched.host_results.insert(call, result);
        }
    }

    /// Host calls whose waiting task was cancelled since the last call.
    pub fn take_cancelled_host_calls(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.sched.cancelled_host_calls)
    }

    /// Cancels every task of the current run (the host gave up on it).
    pub fn abort_run(&mut self) {
        self.sched.shutdown();
        self.fiber = Fiber::default();
    }

    /// Tasks of the current run not finished yet.
    pub fn live_tasks(&self) -> usize {
        self.sched.live_tasks()
    }

    /// Switches between the real clock (default) and a virtual one on which
    /// sleeps and timeouts complete at once, in time order.
    pub fn set_virtual_clock(&mut self, on: bool) {
        let host_fns = std::mem::take(&mut self.sched.host_fns);
        self.sched = Sched::new(on);
        self.sched.host_fns = host_fns;
    }

    /// The scheduler clock in milliseconds.
    pub fn clock_ms(&self) -> f64 {
        self.sched.now()
    }

    /// Drives a run to completion on this thread. While every task waits,
    /// the host's waiter (see `set_waiter`) sleeps and completes host calls;
    /// without one, timers are slept for here and a pending host call fails
    /// the run.
    pub fn drive_blocking(&mut self) -> VmResult<Value> {
        loop {
            let (timer_ms, host_calls) = match self.step() {
                RunState::Done(r) => return r,
                RunState::Waiting { timer_ms, host_calls } => (timer_ms, host_calls),
            };
            let Some(wait) = self.waiter.as_mut() else {
                if host_calls > 0 {
                    self.abort_run();
                    return Err(VmError::runtime("a host call is pending but this run has no async driver"));
                }
                if let Some(ms) = timer_ms {
                    // In slices, so an interrupt is seen within one.
                    std::thread::sleep(std::time::Duration::from_secs_f64((ms / 1000.0).clamp(0.0, 0.01)));
                }
                continue;
            };
            let cancelled = std::mem::take(&mut self.sched.cancelled_host_calls);
            match wait(Waiting { timer_ms, host_calls, cancelled }) {
                Ok(completed) => {
                    for (call, result) in completed {
                        self.complete_host_call(call, result);
                    }
                }
                Err(e) => {
                    self.abort_run();
                    return Err(e);
                }
            }
        }
    }

    /// Installs the host's waiter for `drive_blocking` (every blocking run
    /// and crossing of this VM).
    pub fn set_waiter(&mut self, waiter: Waiter) {
        self.waiter = Some(waiter);
    }

    // -----------------------------------------------------------------------
    // `for x in channel`

    /// The next item of a channel/stream loop: `Ok(Some(v))`, `Ok(None)` at
    /// the end, or the suspension marker.
    pub(super) fn iter_channel(&mut self, ch: &Value) -> VmResult<Option<Value>> {
        if let Some(r) = self.sched.running.as_mut().and_then(|t| t.resume.take()) {
            return match &r? {
                Value::List(items) => Ok(items.first().cloned()),
                _ => Ok(None),
            };
        }
        match channel_pop(ch) {
            Some(v) => Ok(v),
            None => {
                self.sched.suspend = Some(Wait::IterChannel(ch.clone()));
                Err(suspend_marker())
            }
        }
    }

    // -----------------------------------------------------------------------
    // Scheduler builtins

    /// Runs scheduler builtin number `index` on the stack values from `args_at`.
    /// A function that calls scheduler builtin `id` with its `argc`
    /// arguments. A builtin that waits re-runs its call instruction when the
    /// wait is over; called as a callback of another builtin (`chans.map(receive)`)
    /// it has none, so the callback runs it in a frame of this function.
    pub(super) fn sched_trampoline(&mut self, id: u32, argc: u32) -> Rc<crate::runtime::value::Closure> {
        use crate::bytecode::chunk::{FunctionProto, Op, Param};
        use crate::syntax::pos::Pos;
        if let Some(c) = self.sched.trampolines.get(&(id, argc)) {
            return c.clone();
        }
        let name = crate::builtins::builtin_name(id);
        let mut proto = FunctionProto {
            name: name.to_string(),
            params: (0..argc).map(|i| Param { name: format!("arg{i}"), has_default: false, rest: false }).collect(),
            num_locals: argc as u16,
            local_names: (0..argc).map(|i| format!("arg{i}")).collect(),
            file: Rc::from("<builtin>"),
            ..Default::default()
        };
        for i in 0..argc {
            proto.chunk.emit(Op::GetLocal, &[i], Pos::default());
        }
        proto.chunk.emit(Op::CallBuiltin, &[id, argc], Pos::default());
        proto.chunk.emit(Op::Return, &[], Pos::default());
        let env = Rc::new(super::ModuleEnv::new(Vec::new()));
        let closure = Rc::new(crate::runtime::value::Closure { proto: Rc::new(proto), captures: Box::new([]), module: env });
        self.sched.trampolines.insert((id, argc), closure.clone());
        closure
    }

    /// Runs scheduler operation `op` on the stack values from `args_at`.
    pub(super) fn sched_builtin(&mut self, op: SchedOp, args_at: usize) -> VmResult<Flow> {
        if let Some(r) = self.sched.running.as_mut().and_then(|t| t.resume.take()) {
            if op == SchedOp::MutexBlockAcquire {
                // Replace the placeholder pushed when the acquire started waiting.
                let task = self.sched.cur();
                task.mutex_blocks.pop();
                if let Ok(p) = &r {
                    task.mutex_blocks.push(p.clone());
                }
            }
            return r.map(Flow::Done);
        }
        if self.sched.running.is_none() {
            return Err(VmError::runtime(format!("{} needs a running task", sched_op_name(op))));
        }
        let args: Vec<Value> = self.fiber.stack[args_at..].to_vec();
        let a = |i: usize| arg(&args, i);
        let now = self.sched.now();
        let v = match op {
            SchedOp::Spawn => {
                self.sched.spawn_counter += 1;
                let (parent_id, values) = {
                    let t = self.sched.cur();
                    (t.info.id.clone(), t.info.values.clone())
                };
                let info = TaskInfo {
                    id: format!("{parent_id}:spawn:{}", self.sched.spawn_counter),
                    parent: Some(parent_id),
                    name: "spawn".to_string(),
                    group: None,
                    values,
                };
                let id = self.sched.new_task(a(0).clone(), Vec::new(), info, Owner::Plain);
                let task = self.sched.cur();
                let depth = task.deadlines.len();
                task.spawned.push((id, depth));
                sched_value(SchedObject::Task(id))
            }
            SchedOp::Parallel => return self.start_parallel(&args),
            SchedOp::DeadlinePush => {
                let ms = millis(a(0)).unwrap_or(30_000.0);
                self.sched.cur().deadlines.push(now + ms);
                Value::Nil
            }
            SchedOp::DeadlinePop => {
                self.sched.cur().deadlines.pop();
                Value::Nil
            }
            SchedOp::MutexBlockAcquire => {
                let req = Acquire { kind: "mutex", key: "__default__".to_string(), permits: 1, capacity: 1, write: false };
                return self.acquire(req, None, true);
            }
            SchedOp::MutexBlockRelease => {
                if let Some(p) = self.sched.cur().mutex_blocks.pop() {
                    self.sched.release_permit(&p);
                }
                Value::Nil
            }
            SchedOp::SelectStatement => {
                let chans = match a(0) {
                    Value::List(l) => l.to_vec(),
                    _ => Vec::new(),
                };
                let has_default = a(2).is_truthy();
                if let Some(v) = select_ready(&chans, SelectForm::Statement) {
                    v
                } else if has_default || chans.is_empty() {
                    select_timeout(SelectForm::Statement)
                } else {
                    let until = millis(a(1)).map(|ms| now + ms);
                    return self.block(Wait::Select { chans, until, form: SelectForm::Statement });
                }
            }
            SchedOp::Await => {
                let Some(id) = task_of(a(0)) else {
                    return Ok(Flow::Done(a(0).clone()));
                };
                if let Some(f) = self.sched.finished.remove(&id) {
                    self.fiber.output.push_str(&f.output);
                    f.result?
                } else if self.sched.tasks.contains_key(&id) {
                    return self.block(Wait::Join(id));
                } else {
                    Value::Nil
                }
            }
            SchedOp::Cancel => {
                if let Some(id) = task_of(a(0)) {
                    if id != self.sched.current {
                        self.sched.abort_task(id);
                        self.sched.finished.remove(&id);
                    }
                }
                Value::Nil
            }
            SchedOp::CancelGraceful => {
                let Some(id) = task_of(a(0)) else { return Ok(Flow::Done(Value::Nil)) };
                if let Some(t) = self.sched.tasks.get_mut(&id) {
                    t.cancel_requested = true;
                }
                let until = now + millis(a(1)).unwrap_or(5000.0);
                return self.block(Wait::CancelGraceful { target: id, until });
            }
            SchedOp::IsCancelled => Value::Bool(self.sched.cur().cancel_requested),
            SchedOp::PreludeGlobal => return self.prelude_global(a(0)),
            // The scheduler clock (virtual under `virtual_time`), for `stream.throttle`.
            SchedOp::ClockMs => Value::Float(now),
            SchedOp::RunInput => match (&self.run_inputs, a(0)) {
                (Value::Dict(d), Value::Str(name)) => d.get(name).cloned().unwrap_or(Value::Nil),
                _ => Value::Nil,
            },
            SchedOp::RunInputs => self.run_inputs.clone(),
            SchedOp::Millis => millis(a(0)).map_or(Value::Nil, Value::Float),
            SchedOp::Sleep => match millis(a(0)) {
                Some(ms) if ms > 0.0 => return self.block(Wait::Sleep(now + ms)),
                _ => Value::Nil,
            },
            SchedOp::Channel => {
                let name = match a(0) {
                    Value::Nil => "default".to_string(),
                    v => v.display(),
                };
                let cap = a(1).as_int().unwrap_or(256).max(1) as usize;
                new_channel(ChannelKind::Channel, name, cap)
            }
            SchedOp::Send => {
                if !is_channel_like(a(0)) {
                    return Err(VmError::throw_msg("send: first argument must be a channel"));
                }
                match channel_push(a(0), a(1)) {
                    Some(ok) => Value::Bool(ok),
                    None => return self.block(Wait::Send { ch: a(0).clone(), value: a(1).clone() }),
                }
            }
            SchedOp::Receive => {
                if !is_channel_like(a(0)) {
                    return Err(VmError::throw_msg("receive: first argument must be a channel"));
                }
                match channel_pop(a(0)) {
                    Some(v) => v.unwrap_or(Value::Nil),
                    None => return self.block(Wait::Recv { ch: a(0).clone(), until: None }),
                }
            }
            SchedOp::TryReceive => channel_pop(a(0)).flatten().unwrap_or(Value::Nil),
            SchedOp::CloseChannel => {
                channel_close(a(0));
                Value::Nil
            }
            SchedOp::ChannelIsClosed => match channel_of(a(0)) {
                Some(c) => Value::Bool(c.closed.get()),
                None => return Err(VmError::throw_msg("channel_is_closed: first argument must be a channel")),
            },
            // Lets every other ready task run first: a wake-up at the current time.
            SchedOp::YieldNow => return self.block(Wait::Sleep(now)),
            // 0.9.11: the scope shared values are keyed by, the task's group (the root's otherwise).
            SchedOp::SharedScopeId => {
                let group = self.sched.cur().info.group.clone().unwrap_or_else(|| "task_root".to_string());
                Value::str(format!("task_group:{group}"))
            }
            SchedOp::Select => {
                let chans: Vec<Value> = args.clone();
                match select_ready(&chans, SelectForm::Dict) {
                    Some(v) => v,
                    None if chans.is_empty() => Value::Nil,
                    None => return self.block(Wait::Select { chans, until: None, form: SelectForm::Dict }),
                }
            }
            SchedOp::ChannelSelect => {
                let chans = match a(0) {
                    Value::List(l) => l.to_vec(),
                    _ => Vec::new(),
                };
                let timeout = millis(a(1));
                match select_ready(&chans, SelectForm::Dict) {
                    Some(v) => v,
                    None if chans.is_empty() || timeout.is_some_and(|t| t <= 0.0) => Value::Nil,
                    None => {
                        let until = timeout.map(|t| now + t);
                        return self.block(Wait::Select { chans, until, form: SelectForm::Dict });
                    }
                }
            }
            SchedOp::SyncMutexAcquire => {
                let key = str_arg(a(0)).unwrap_or_else(|| "__default__".to_string());
                let req = Acquire { kind: "mutex", key, permits: 1, capacity: 1, write: false };
                return self.acquire(req, millis(a(1)), false);
            }
            SchedOp::SyncSemaphoreAcquire => {
                let key = str_arg(a(0)).unwrap_or_else(|| "__default__".to_string());
                let capacity = a(1).as_int().unwrap_or(1).max(1);
                let permits = a(2).as_int().unwrap_or(1).max(1);
                let req = Acquire { kind: "semaphore", key, permits, capacity, write: false };
                return self.acquire(req, millis(a(3)), false);
            }
            SchedOp::SyncGateAcquire => {
                let key = str_arg(a(0)).unwrap_or_else(|| "__default__".to_string());
                let capacity = a(1).as_int().unwrap_or(1).max(1);
                let req = Acquire { kind: "gate", key, permits: 1, capacity, write: false };
                return self.acquire(req, millis(a(2)), false);
            }
            SchedOp::SyncRwlockAcquire => {
                let key = str_arg(a(0)).unwrap_or_else(|| "__default__".to_string());
                let write = a(1).as_str() == Some("write");
                let req = Acquire { kind: "rwlock", key, permits: 1, capacity: 1, write };
                return self.acquire(req, millis(a(2)), false);
            }
            SchedOp::SyncRelease => Value::Bool(self.sched.release_permit(a(0))),
            SchedOp::SyncMetrics => self.sync_metrics(a(0).as_str(), a(1).as_str()),
            SchedOp::RuntimeContext | SchedOp::TaskCurrent => self.runtime_context(),
            SchedOp::RuntimeContextValues => Value::dict(self.sched.cur().info.values.clone()),
            SchedOp::RuntimeContextGet => {
                let key = a(0).display();
                self.sched.cur().info.values.get(&key).cloned().unwrap_or_else(|| a(1).clone())
            }
            SchedOp::RuntimeContextSet => {
                let key: HStr = Rc::new(a(0).display());
                self.sched.cur().info.values.insert(key, a(1).clone()).unwrap_or(Value::Nil)
            }
            SchedOp::RuntimeContextClear => {
                let key = a(0).display();
                self.sched.cur().info.values.remove(&key).unwrap_or(Value::Nil)
            }
            SchedOp::SharedCell => self.shared_cell_open(a(0)),
            SchedOp::SharedMap => self.shared_map_open(a(0)),
            SchedOp::SharedGet | SchedOp::SharedSet | SchedOp::SharedSnapshot | SchedOp::SharedCas | SchedOp::SharedMetrics => {
                shared_cell_op(op, &args)?
            }
            SchedOp::SharedMapGet
            | SchedOp::SharedMapSet
            | SchedOp::SharedMapDelete
            | SchedOp::SharedMapSnapshot
            | SchedOp::SharedMapCas
            | SchedOp::SharedMapEntries
            | SchedOp::SharedMapMetrics => shared_map_op(op, &args)?,
            SchedOp::MailboxOpen => self.mailbox_open(a(0)),
            SchedOp::MailboxLookup => self.mailbox_handle(a(0)).map_or(Value::Nil, mailbox_value),
            SchedOp::MailboxSend
            | SchedOp::MailboxReceive
            | SchedOp::MailboxTryReceive
            | SchedOp::MailboxClose
            | SchedOp::MailboxMetrics => return self.mailbox_op(op, &args, now),
            SchedOp::SupervisorStart => self.supervisor_start(a(0)),
            SchedOp::SupervisorState | SchedOp::SupervisorEvents | SchedOp::SupervisorMetrics | SchedOp::SupervisorStop => {
                self.supervisor_op(op, a(0))?
            }
        };
        Ok(Flow::Done(v))
    }

    fn start_parallel(&mut self, args: &[Value]) -> VmResult<Flow> {
        let mode = match arg(args, 0).as_str() {
            Some("count") => GroupMode::Count,
            Some("settle") => GroupMode::Settle,
            Some("stream") => GroupMode::Stream,
            _ => GroupMode::Each,
        };
        let closure = arg(args, 3).clone();
        let items: Vec<Vec<Value>> = match (mode, arg(args, 1)) {
            (GroupMode::Count, Value::Int(n)) => {
                // One task per index: a huge count is a memory-limit error, not a capacity-overflow panic.
                let n = (*n).max(0);
                crate::runtime::native::check_alloc_product(n as u128, 64, &self.options.limits, "parallel")?;
                (0..n).map(|i| vec![Value::Int(i)]).collect()
            }
            (GroupMode::Count, other) => {
                return Err(VmError::type_error(format!("parallel expects an int count, got {}", other.type_name())))
            }
            (_, Value::List(l)) => l.iter().map(|x| vec![x.clone()]).collect(),
            _ => return Ok(Flow::Done(Value::Nil)),
        };
        let max = match get(arg(args, 2), "max_concurrent") {
            Value::Int(k) if k > 0 => k as usize,
            _ => 0,
        };
        self.sched.parallel_counter += 1;
        let (parent_id, values) = {
            let t = self.sched.cur();
            (t.info.id.clone(), t.info.values.clone())
        };
        let kind = match mode {
            GroupMode::Count => "parallel",
            GroupMode::Each | GroupMode::Stream => "parallel_each",
            GroupMode::Settle => "parallel_settle",
        };
        let n = items.len();
        let g = self.sched.next_group;
        self.sched.next_group += 1;
        let stream =
            (mode == GroupMode::Stream).then(|| new_channel(ChannelKind::Stream, format!("parallel_each:{g}"), usize::MAX));
        let group = Group {
            mode,
            closure,
            args: items,
            next: 0,
            running: Vec::new(),
            max,
            slots: (0..n).map(|_| None).collect(),
            done: 0,
            failed: false,
            stream: stream.clone(),
            id: format!("{parent_id}:{kind}:{}", self.sched.parallel_counter),
            parent: self.sched.current,
            parent_id,
            values,
        };
        self.sched.groups.insert(g, group);
        self.sched.admit(g);
        if let Some(s) = stream {
            if n == 0 {
                channel_close(&s);
                self.sched.groups.remove(&g);
            }
            return Ok(Flow::Done(s));
        }
        if n == 0 {
            let group = self.sched.groups.remove(&g).expect("just inserted");
            return group_result(group, &mut self.fiber.output).map(Flow::Done);
        }
        self.block(Wait::Group(g))
    }

    fn acquire(&mut self, req: Acquire, timeout: Option<f64>, mutex_block: bool) -> VmResult<Flow> {
        let now = self.sched.now();
        let id = self.sched.current;
        if let Some(p) = self.sched.try_acquire(&req, id, now) {
            if mutex_block {
                self.sched.cur().mutex_blocks.push(p.clone());
            }
            return Ok(Flow::Done(p));
        }
        let slot = self.sched.sync.entry((req.kind, req.key.clone())).or_default();
        if timeout.is_some_and(|t| t <= 0.0) {
            slot.timeouts += 1;
            return Ok(Flow::Done(Value::Nil));
        }
        slot.queue.push_back(id);
        slot.max_queue = slot.max_queue.max(slot.queue.len() as i64);
        let until = timeout.map(|t| now + t);
        if mutex_block {
            // The permit is recorded when the block's acquire re-runs with it.
            self.sched.cur().mutex_blocks.push(Value::Nil);
        }
        self.block(Wait::Acquire { req, until, since: now })
    }

    fn sync_metrics(&self, kind: Option<&str>, key: Option<&str>) -> Value {
        let metrics = |kind: &str, key: &str, s: &SyncSlot| {
            let held = match kind {
                "rwlock" => s.readers + s.writer as i64,
                _ => s.held,
            };
            dict_of(vec![
                ("kind", Value::str(kind)),
                ("key", Value::str(key)),
                ("acquisition_count", Value::Int(s.acquisitions)),
                ("timeout_count", Value::Int(s.timeouts)),
                ("cancellation_count", Value::Int(s.cancellations)),
                ("release_count", Value::Int(s.releases)),
                ("current_held", Value::Int(held)),
                ("current_queue_depth", Value::Int(s.queue.len() as i64)),
                ("max_queue_depth", Value::Int(s.max_queue)),
                ("total_wait_ms", Value::Int(s.total_wait_ms as i64)),
                ("total_held_ms", Value::Int(s.total_held_ms as i64)),
            ])
        };
        if let (Some(kind), Some(key)) = (kind, key) {
            return match self.sched.sync.iter().find(|((k, n), _)| *k == kind && n == key) {
                Some(((k, n), s)) => metrics(k, n, s),
                None => metrics(kind, key, &SyncSlot::default()),
            };
        }
        let mut all: Vec<(&(&'static str, String), &SyncSlot)> =
            self.sched.sync.iter().filter(|((k, _), _)| kind.is_none_or(|want| want == *k)).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        Value::list(all.into_iter().map(|((k, n), s)| metrics(k, n, s)).collect())
    }

    fn runtime_context(&mut self) -> Value {
        let cancelled = self.sched.cur().cancel_requested;
        let supervisors: Vec<Value> = self
            .sched
            .supervisors
            .iter()
            .map(|s| dict_of(vec![("name", Value::str(s.name.clone())), ("status", Value::str(sup_status(s)))]))
            .collect();
        let t = self.sched.cur();
        let opt = |s: &Option<String>| s.as_ref().map_or(Value::Nil, |s| Value::str(s.clone()));
        dict_of(vec![
            ("task_id", Value::str(t.info.id.clone())),
            ("parent_task_id", opt(&t.info.parent)),
            ("root_task_id", Value::str("task_root")),
            ("task_name", Value::str(t.info.name.clone())),
            ("task_group_id", opt(&t.info.group)),
            ("cancelled", Value::Bool(cancelled)),
            ("values", Value::dict(t.info.values.clone())),
            ("debug", dict_of(vec![("supervisors", Value::list(supervisors))])),
        ])
    }

    /// `shared_cell(spec)`: the cell of the spec's scope and key, made on first use.
    fn shared_cell_open(&mut self, spec: &Value) -> Value {
        let key = scoped_key(spec);
        let cell = self
            .sched
            .shared_cells
            .entry(key.clone())
            .or_insert_with(|| {
                let state = SharedCellState { value: get(spec, "initial"), ..Default::default() };
                Rc::new(SharedCell { key, state: RefCell::new(state) })
            })
            .clone();
        sched_value(SchedObject::SharedCell(cell))
    }

    /// `shared_map(spec)`: the map of the spec's scope and key, made on first use.
    fn shared_map_open(&mut self, spec: &Value) -> Value {
        let key = scoped_key(spec);
        let map = self
            .sched
            .shared_maps
            .entry(key.clone())
            .or_insert_with(|| {
                let mut state = SharedMapState::default();
                if let Value::Dict(d) = &get(spec, "initial") {
                    for (k, v) in d.iter() {
                        state.entries.insert(k.to_string(), (v.clone(), 0));
                    }
                }
                Rc::new(SharedMap { key, state: RefCell::new(state) })
            })
            .clone();
        sched_value(SchedObject::SharedMap(map))
    }

    /// The mailbox `v` names (a string) or is (a handle).
    fn mailbox_handle(&self, v: &Value) -> Option<Rc<Mailbox>> {
        if let Some(name) = v.as_str() {
            return self.sched.mailboxes.get(name).cloned();
        }
        match sched_object(v) {
            Some(SchedObject::Mailbox(m)) => Some(m.clone()),
            _ => None,
        }
    }

    /// `mailbox_open(spec)`: the mailbox of that name (a spec dict or a string), made on first use.
    fn mailbox_open(&mut self, spec: &Value) -> Value {
        let name = match get(spec, "name") {
            Value::Nil => spec.as_str().map(str::to_string).unwrap_or_else(|| "default".to_string()),
            v => v.display(),
        };
        let capacity = get(spec, "capacity").as_int().unwrap_or(1024).max(1) as usize;
        let mb = self
            .sched
            .mailboxes
            .entry(name.clone())
            .or_insert_with(|| Rc::new(Mailbox { name, capacity, state: RefCell::new(MailboxState::default()) }))
            .clone();
        mailbox_value(mb)
    }

    /// The mailbox builtins that act on an existing mailbox (`args[0]`).
    fn mailbox_op(&mut self, op: SchedOp, args: &[Value], now: f64) -> VmResult<Flow> {
        let a = |i: usize| arg(args, i);
        let Some(mb) = self.mailbox_handle(a(0)) else {
            return Err(VmError::throw_msg(format!("{}: unknown mailbox {}", sched_op_name(op), a(0).display())));
        };
        let mut m = mb.state.borrow_mut();
        let v = match op {
            SchedOp::MailboxSend => {
                if m.closed || m.queue.len() >= mb.capacity {
                    m.dropped += 1;
                    Value::Bool(false)
                } else {
                    m.sent += 1;
                    m.queue.push_back(a(1).clone());
                    Value::Bool(true)
                }
            }
            SchedOp::MailboxTryReceive => match m.queue.pop_front() {
                Some(v) => {
                    m.received += 1;
                    v
                }
                None => Value::Nil,
            },
            SchedOp::MailboxReceive => match m.queue.pop_front() {
                Some(v) => {
                    m.received += 1;
                    v
                }
                None if m.closed => Value::Nil,
                None => {
                    let until = millis(a(1)).map(|t| now + t);
                    drop(m);
                    return self.block(Wait::MailboxRecv { name: mb.name.clone(), until });
                }
            },
            SchedOp::MailboxClose => {
                m.closed = true;
                Value::Bool(true)
            }
            // MailboxMetrics
            _ => dict_of(vec![
                ("name", Value::str(mb.name.clone())),
                ("depth", Value::Int(m.queue.len() as i64)),
                ("capacity", Value::Int(mb.capacity as i64)),
                ("sent_count", Value::Int(m.sent)),
                ("received_count", Value::Int(m.received)),
                ("dropped_count", Value::Int(m.dropped)),
                ("closed", Value::Bool(m.closed)),
            ]),
        };
        Ok(Flow::Done(v))
    }

    /// `supervisor_start(spec)`: starts the spec's children under a new supervisor.
    fn supervisor_start(&mut self, spec: &Value) -> Value {
        let mut children = Vec::new();
        if let Value::List(cs) = &get(spec, "children") {
            for c in cs.iter() {
                let restart = get(c, "restart");
                let (mode, max_restarts, window_ms, backoff_ms, circuit_open_ms) = match &restart {
                    Value::Str(s) => (s.to_string(), 0, None, 0.0, None),
                    Value::Dict(_) => (
                        get(&restart, "mode").as_str().unwrap_or("on_failure").to_string(),
                        get(&restart, "max_restarts").as_int().unwrap_or(3),
                        millis(&get(&restart, "window_ms")),
                        millis(&get(&restart, "backoff_ms")).unwrap_or(0.0),
                        millis(&get(&restart, "circuit_open_ms")),
                    ),
                    _ => ("on_failure".to_string(), 3, None, 0.0, None),
                };
                children.push(SupChild {
                    name: get(c, "name").display(),
                    kind: get(c, "kind").display(),
                    task: get(c, "task").clone(),
                    mode,
                    max_restarts,
                    window_ms,
                    backoff_ms,
                    circuit_open_ms,
                    status: "pending",
                    wait_reason: None,
                    restart_count: 0,
                    restarts_at: Vec::new(),
                    running: None,
                    last_error: None,
                    last_result: Value::Nil,
                });
            }
        }
        let sup_name = get(spec, "name").display();
        let n = children.len();
        self.sched.supervisors.push(Supervisor {
            name: sup_name.clone(),
            strategy: get(spec, "strategy").as_str().unwrap_or("one_for_one").to_string(),
            children,
            events: vec![sup_event("supervisor_started", "")],
            started: 0,
            failed: 0,
            restarted: 0,
            suppressed: 0,
            completed: 0,
            stopped: false,
        });
        let s = self.sched.supervisors.len() - 1;
        for c in 0..n {
            self.sched.start_supervised(s, c);
        }
        sched_value(SchedObject::Supervisor { index: s, name: sup_name })
    }

    /// The supervisor builtins that act on a started supervisor.
    fn supervisor_op(&mut self, op: SchedOp, handle: &Value) -> VmResult<Value> {
        let s = match sched_object(handle) {
            Some(SchedObject::Supervisor { index, .. }) if *index < self.sched.supervisors.len() => *index,
            // 0.9.11's texts for `supervisor_stop` (it also takes a supervisor id there).
            _ if op == SchedOp::SupervisorStop && handle.is_nil() => {
                return Err(VmError::runtime("supervisor_stop: supervisor handle or id is required"))
            }
            _ if op == SchedOp::SupervisorStop => {
                return Err(VmError::runtime(format!("supervisor_stop: unknown supervisor '{}'", handle.display())))
            }
            _ => return Err(VmError::throw_msg(format!("{}: first argument must be a supervisor", sched_op_name(op)))),
        };
        Ok(match op {
            SchedOp::SupervisorState => sup_state(&self.sched.supervisors[s]),
            SchedOp::SupervisorEvents => Value::list(self.sched.supervisors[s].events.clone()),
            SchedOp::SupervisorMetrics => sup_metrics(&self.sched.supervisors[s]),
            _ => {
                // SupervisorStop, as 0.9.11: `supervisor_stopping`, the running
                // children cancelled (each a `child_failed`), `supervisor_stopped`;
                // the result is the supervisor's state. Cancelling is immediate
                // here, so the drain never needs 0.9.11's optional timeout.
                if !self.sched.supervisors[s].stopped {
                    self.sched.supervisors[s].stopped = true;
                    self.sched.supervisors[s].events.push(sup_event("supervisor_stopping", ""));
                    self.sched.restarts.retain(|(_, sup, _)| *sup != s);
                    let running: Vec<(usize, TaskId)> = self.sched.supervisors[s]
                        .children
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| c.running.map(|t| (i, t)))
                        .collect();
                    for (c, t) in running {
                        self.sched.abort_task(t);
                        let sup = &mut self.sched.supervisors[s];
                        sup.failed += 1;
                        let child = &mut sup.children[c];
                        child.status = "failed";
                        child.wait_reason = None;
                        child.last_error = Some(CANCELLED_BY_STOP.to_string());
                        let name = child.name.clone();
                        sup.events.push(sup_event("child_failed", &name));
                    }
                }
                self.sched.supervisors[s].events.push(sup_event("supervisor_stopped", ""));
                sup_state(&self.sched.supervisors[s])
            }
        })
    }
}

/// A child's `last_error` after `supervisor_stop` cancelled it (0.9.11's text).
const CANCELLED_BY_STOP: &str = "Thrown: kind:cancelled:VM cancelled by host";

/// `supervisor_state(sup)`: name, strategy, status, children and metrics.
fn sup_state(sup: &Supervisor) -> Value {
    let children = sup
        .children
        .iter()
        .map(|c| {
            dict_of(vec![
                ("name", Value::str(c.name.clone())),
                ("kind", Value::str(c.kind.clone())),
                ("status", Value::str(c.status)),
                ("restart_count", Value::Int(c.restart_count)),
                ("current_wait_reason", c.wait_reason.map_or(Value::Nil, Value::str)),
                ("last_error", c.last_error.clone().map_or(Value::Nil, Value::str)),
            ])
        })
        .collect();
    dict_of(vec![
        ("name", Value::str(sup.name.clone())),
        ("strategy", Value::str(sup.strategy.clone())),
        ("status", Value::str(sup_status(sup))),
        ("children", Value::list(children)),
        ("metrics", sup_metrics(sup)),
    ])
}

fn mailbox_value(mb: Rc<Mailbox>) -> Value {
    sched_value(SchedObject::Mailbox(mb))
}

/// `scope:key` of a shared cell or map spec.
fn scoped_key(spec: &Value) -> String {
    format!("{}:{}", get(spec, "scope").display(), get(spec, "key").display())
}

/// The shared cell builtins that act on a cell handle (`args[0]`).
fn shared_cell_op(op: SchedOp, args: &[Value]) -> VmResult<Value> {
    let a = |i: usize| arg(args, i);
    let Some(SchedObject::SharedCell(cell)) = sched_object(a(0)) else {
        return Err(VmError::throw_msg(format!("{}: first argument must be a shared cell", sched_op_name(op))));
    };
    let mut c = cell.state.borrow_mut();
    Ok(match op {
        SchedOp::SharedGet => {
            c.reads += 1;
            c.value.clone()
        }
        SchedOp::SharedSet => {
            c.writes += 1;
            c.version += 1;
            std::mem::replace(&mut c.value, a(1).clone())
        }
        SchedOp::SharedSnapshot => {
            c.reads += 1;
            dict_of(vec![("value", c.value.clone()), ("version", Value::Int(c.version))])
        }
        SchedOp::SharedCas => {
            let seen = get(a(1), "version").as_int().unwrap_or(-1);
            if seen == c.version {
                c.cas_success += 1;
                c.version += 1;
                c.value = a(2).clone();
                Value::Bool(true)
            } else {
                c.cas_failure += 1;
                c.stale_reads += 1;
                Value::Bool(false)
            }
        }
        // SharedMetrics
        _ => dict_of(vec![
            ("read_count", Value::Int(c.reads)),
            ("write_count", Value::Int(c.writes)),
            ("cas_success_count", Value::Int(c.cas_success)),
            ("cas_failure_count", Value::Int(c.cas_failure)),
            ("stale_read_count", Value::Int(c.stale_reads)),
            ("version", Value::Int(c.version)),
        ]),
    })
}

/// The shared map builtins that act on a map handle (`args[0]`).
fn shared_map_op(op: SchedOp, args: &[Value]) -> VmResult<Value> {
    let a = |i: usize| arg(args, i);
    let Some(SchedObject::SharedMap(map)) = sched_object(a(0)) else {
        return Err(VmError::throw_msg(format!("{}: first argument must be a shared map", sched_op_name(op))));
    };
    let key = a(1).display();
    let mut m = map.state.borrow_mut();
    Ok(match op {
        SchedOp::SharedMapGet => {
            m.reads += 1;
            m.entries.get(&key).map_or_else(|| a(2).clone(), |(v, _)| v.clone())
        }
        SchedOp::SharedMapSet => {
            m.writes += 1;
            let version = m.entries.get(&key).map_or(0, |e| e.1) + 1;
            m.entries.insert(key, (a(2).clone(), version)).map_or(Value::Nil, |e| e.0)
        }
        SchedOp::SharedMapDelete => {
            m.writes += 1;
            m.entries.remove(&key).map_or(Value::Nil, |e| e.0)
        }
        SchedOp::SharedMapSnapshot => {
            m.reads += 1;
            let (v, version) = m.entries.get(&key).cloned().unwrap_or((Value::Nil, 0));
            dict_of(vec![("key", Value::str(key)), ("value", v), ("version", Value::Int(version))])
        }
        SchedOp::SharedMapCas => {
            let seen = get(a(2), "version").as_int().unwrap_or(-1);
            let version = m.entries.get(&key).map_or(0, |e| e.1);
            if seen == version {
                m.cas_success += 1;
                m.entries.insert(key, (a(3).clone(), version + 1));
                Value::Bool(true)
            } else {
                m.cas_failure += 1;
                m.stale_reads += 1;
                Value::Bool(false)
            }
        }
        SchedOp::SharedMapEntries => {
            m.reads += 1;
            let d: DictMap = m.entries.iter().map(|(k, (v, _))| (Rc::new(k.clone()), v.clone())).collect();
            Value::dict(d)
        }
        // SharedMapMetrics
        _ => dict_of(vec![
            ("read_count", Value::Int(m.reads)),
            ("write_count", Value::Int(m.writes)),
            ("cas_success_count", Value::Int(m.cas_success)),
            ("cas_failure_count", Value::Int(m.cas_failure)),
            ("stale_read_count", Value::Int(m.stale_reads)),
            ("size", Value::Int(m.entries.len() as i64)),
        ]),
    })
}

fn sup_status(sup: &Supervisor) -> &'static str {
    if sup.stopped {
        return "stopped";
    }
    let busy = sup.children.iter().any(|c| matches!(c.status, "running" | "backoff" | "circuit_open" | "pending"));
    if busy {
        "running"
    } else if sup.children.iter().all(|c| c.status == "stopped") {
        "completed"
    } else {
        "degraded"
    }
}

fn sup_metrics(sup: &Supervisor) -> Value {
    dict_of(vec![
        ("started", Value::Int(sup.started)),
        ("failed", Value::Int(sup.failed)),
        ("restarted", Value::Int(sup.restarted)),
        ("suppressed", Value::Int(sup.suppressed)),
        ("completed", Value::Int(sup.completed)),
    ])
}

#[cfg(test)]
mod tests {
    use crate::{compile, Vm, VmOptions};

    fn run(src: &str) -> String {
        let mut vm = Vm::new(VmOptions::default());
        vm.set_virtual_clock(true);
        let program = compile(src, "test.harn").expect("compiles");
        let result = vm.run(&program);
        let out = vm.take_output();
        if let Err(e) = result {
            panic!("program failed: {e}\noutput so far:\n{out}");
        }
        out
    }

    #[test]
    fn scheduler_objects_report_their_type_and_display() {
        let out = run(r#"
let h = spawn { 1 }
let objects = [
  h,
  channel("jobs", 2),
  parallel each [1] { x -> x } as stream,
  sync_semaphore_acquire("pool", 2),
  shared_cell({scope: "app", key: "hits"}),
  shared_map({scope: "app", key: "seen"}),
  mailbox_open("inbox"),
  supervisor_start({name: "sup", children: []}),
]
for o in objects {
  println(type_of(o))
  println(o)
}
await(h)
"#);
        let expected = "task_handle\n<task_handle:vm_task_1>\nchannel\n<channel:jobs>\nstream\n<stream:parallel_each:1>\n\
                        sync_permit\n<sync_permit:semaphore:pool>\nshared_cell\n<shared_cell:app:hits>\n\
                        shared_map\n<shared_map:app:seen>\nmailbox\n<mailbox:inbox>\nsupervisor\n<supervisor:sup>\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn a_handle_of_the_wrong_kind_is_refused_by_name() {
        let out = run(r#"
let cell = shared_cell({scope: "s", key: "c"})
let map = shared_map({scope: "s", key: "m"})
println(await(channel("c")))
println(shared_get(cell) == nil)
try { shared_get(map) } catch (e) { println(e) }
try { shared_map_get(cell, "k") } catch (e) { println(e) }
try { supervisor_state(cell) } catch (e) { println(e) }
try { mailbox_send(42, 1) } catch (e) { println(e) }
println(sync_release(cell))
println(try_receive(map) == nil)
"#);
        assert_eq!(
            out,
            "<channel:c>\ntrue\n\
             shared_get: first argument must be a shared cell\n\
             shared_map_get: first argument must be a shared map\n\
             supervisor_state: first argument must be a supervisor\n\
             mailbox_send: unknown mailbox 42\n\
             false\ntrue\n"
        );
    }

    #[test]
    fn shared_handles_with_one_key_share_state() {
        let out = run(r#"
let a = shared_cell({scope: "s", key: "k", initial: 1})
let b = shared_cell({scope: "s", key: "k", initial: 99})
shared_set(a, 5)
println(shared_get(b))
let m = mailbox_open({name: "box", capacity: 1})
println(mailbox_send("box", "x"))
println(mailbox_send(m, "y"))
println(mailbox_lookup("box"))
println(mailbox_receive(m))
println(mailbox_metrics("box").dropped_count)
"#);
        assert_eq!(out, "5\ntrue\nfalse\n<mailbox:box>\nx\n1\n");
    }

    #[test]
    fn supervisor_stop_cancels_children_and_returns_the_state() {
        let out = run(r#"
let sup = supervisor_start({name: "s", children: [{name: "slow", task: { -> sleep(5000ms)
  println("never")
  return 1 }}]})
sleep(10ms)
let st = supervisor_stop(sup, 100)
println(st.status)
println(st.children[0].status)
println(st.metrics.failed)
println(supervisor_events(sup).map({ e -> e.kind }))
sleep(6000ms)
println(supervisor_stop(sup).status)
println(supervisor_events(sup).filter({ e -> e.kind == "supervisor_stopped" }).count())
"#);
        assert_eq!(
            out,
            "stopped\nfailed\n1\n[supervisor_started, supervisor_stopping, child_failed, supervisor_stopped]\nstopped\n2\n"
        );
    }
}
