//! The values the scheduler hands to Harn code: task handles, channels,
//! permits, shared cells and maps, mailboxes, supervisors. Their data lives
//! here, beside `Value`; what they do lives in `vm::sched`.
//!
//! What a handle displays (its name, key or id) is fixed when it is made and
//! kept outside any `RefCell`, so displaying a handle never borrows state
//! that a scheduler builtin may be updating at that moment.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::rc::Rc;

use crate::runtime::value::Value;

/// A scheduler object (`Object::Sched`).
pub enum SchedObject {
    /// The handle `spawn` returns: the task's id.
    Task(u64),
    /// A channel, or the stream of `parallel each ... as stream`.
    Channel(Channel),
    /// A held lock (`sync_*_acquire`, `mutex { }`).
    Permit(Permit),
    /// A handle to the shared cell of its scope and key.
    SharedCell(Rc<SharedCell>),
    /// A handle to the shared map of its scope and key.
    SharedMap(Rc<SharedMap>),
    /// A handle to a named mailbox.
    Mailbox(Rc<Mailbox>),
    /// A handle to a started supervisor.
    Supervisor {
        /// Its index among the VM's supervisors.
        index: usize,
        name: String,
    },
}

impl SchedObject {
    /// The name `type_of` reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            SchedObject::Task(_) => "task_handle",
            SchedObject::Channel(c) => c.kind.type_name(),
            SchedObject::Permit(_) => "sync_permit",
            SchedObject::SharedCell(_) => "shared_cell",
            SchedObject::SharedMap(_) => "shared_map",
            SchedObject::Mailbox(_) => "mailbox",
            SchedObject::Supervisor { .. } => "supervisor",
        }
    }

    /// Appends the display text, e.g. `<channel:jobs>`.
    pub fn write_display(&self, out: &mut String) {
        let _ = match self {
            SchedObject::Task(id) => write!(out, "<task_handle:vm_task_{id}>"),
            SchedObject::Channel(c) => write!(out, "<{}:{}>", c.kind.type_name(), c.name),
            SchedObject::Permit(p) => write!(out, "<sync_permit:{}:{}>", p.req.kind, p.req.key),
            SchedObject::SharedCell(c) => write!(out, "<shared_cell:{}>", c.key),
            SchedObject::SharedMap(m) => write!(out, "<shared_map:{}>", m.key),
            SchedObject::Mailbox(m) => write!(out, "<mailbox:{}>", m.name),
            SchedObject::Supervisor { name, .. } => write!(out, "<supervisor:{name}>"),
        };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// `channel(...)`.
    Channel,
    /// The results of `parallel each ... as stream`.
    Stream,
}

impl ChannelKind {
    pub fn type_name(self) -> &'static str {
        match self {
            ChannelKind::Channel => "channel",
            ChannelKind::Stream => "stream",
        }
    }
}

pub struct Channel {
    pub kind: ChannelKind,
    pub name: String,
    pub capacity: usize,
    pub queue: RefCell<VecDeque<Value>>,
    pub closed: Cell<bool>,
}

/// A lock request: which lock (kind and key) and how much of it.
#[derive(Clone)]
pub struct Acquire {
    /// `"mutex"`, `"semaphore"`, `"gate"` or `"rwlock"`.
    pub kind: &'static str,
    pub key: String,
    pub permits: i64,
    pub capacity: i64,
    /// An rwlock's write side.
    pub write: bool,
}

pub struct Permit {
    pub req: Acquire,
    pub released: Cell<bool>,
    /// Scheduler clock (ms) when it was acquired.
    pub acquired_at: f64,
}

pub struct SharedCell {
    /// `scope:key`, shared by every handle to this cell.
    pub key: String,
    pub state: RefCell<SharedCellState>,
}

#[derive(Default)]
pub struct SharedCellState {
    pub value: Value,
    pub version: i64,
    pub reads: i64,
    pub writes: i64,
    pub cas_success: i64,
    pub cas_failure: i64,
    pub stale_reads: i64,
}

pub struct SharedMap {
    /// `scope:key`, shared by every handle to this map.
    pub key: String,
    pub state: RefCell<SharedMapState>,
}

#[derive(Default)]
pub struct SharedMapState {
    /// Key → (value, version).
    pub entries: BTreeMap<String, (Value, i64)>,
    pub reads: i64,
    pub writes: i64,
    pub cas_success: i64,
    pub cas_failure: i64,
    pub stale_reads: i64,
}

pub struct Mailbox {
    pub name: String,
    pub capacity: usize,
    pub state: RefCell<MailboxState>,
}

#[derive(Default)]
pub struct MailboxState {
    pub queue: VecDeque<Value>,
    pub closed: bool,
    pub sent: i64,
    pub received: i64,
    pub dropped: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::value::{values_equal, Object};

    fn value(obj: SchedObject) -> Value {
        Value::Object(Rc::new(Object::Sched(obj)))
    }

    fn channel(kind: ChannelKind, name: &str) -> SchedObject {
        let (queue, closed) = (RefCell::new(VecDeque::new()), Cell::new(false));
        SchedObject::Channel(Channel { kind, name: name.to_string(), capacity: 1, queue, closed })
    }

    #[test]
    fn each_kind_has_its_type_name_and_display() {
        let req = Acquire { kind: "rwlock", key: "db".to_string(), permits: 1, capacity: 1, write: true };
        let cases = [
            (SchedObject::Task(7), "task_handle", "<task_handle:vm_task_7>"),
            (channel(ChannelKind::Channel, "jobs"), "channel", "<channel:jobs>"),
            (channel(ChannelKind::Stream, "parallel_each:3"), "stream", "<stream:parallel_each:3>"),
            (
                SchedObject::Permit(Permit { req, released: Cell::new(false), acquired_at: 0.0 }),
                "sync_permit",
                "<sync_permit:rwlock:db>",
            ),
            (
                SchedObject::SharedCell(Rc::new(SharedCell { key: "app:hits".to_string(), state: Default::default() })),
                "shared_cell",
                "<shared_cell:app:hits>",
            ),
            (
                SchedObject::SharedMap(Rc::new(SharedMap { key: "app:seen".to_string(), state: Default::default() })),
                "shared_map",
                "<shared_map:app:seen>",
            ),
            (
                SchedObject::Mailbox(Rc::new(Mailbox { name: "inbox".to_string(), capacity: 4, state: Default::default() })),
                "mailbox",
                "<mailbox:inbox>",
            ),
            (SchedObject::Supervisor { index: 0, name: "sup".to_string() }, "supervisor", "<supervisor:sup>"),
        ];
        for (obj, type_name, display) in cases {
            let v = value(obj);
            assert_eq!(v.type_name(), type_name);
            assert_eq!(v.display(), display);
            // Structural equality never holds for a handle, even with itself; identity does.
            assert!(v.is_same(&v.clone()));
            assert!(!values_equal(&v, &v.clone()));
        }
    }

    #[test]
    fn display_does_not_borrow_the_state() {
        let mailbox = Rc::new(Mailbox { name: "busy".to_string(), capacity: 1, state: Default::default() });
        let v = value(SchedObject::Mailbox(mailbox.clone()));
        let _held = mailbox.state.borrow_mut();
        assert_eq!(v.display(), "<mailbox:busy>");
    }
}
