//! The lazy iterator value as data: an `IterNode` and where its items come
//! from (`Kind`). The pull machine that drives iterators lives with the
//! builtins (`builtins::iter`).

use std::collections::VecDeque;
use std::rc::Rc;

use crate::runtime::value::{DictMap, HStr, Object, Value};

/// The state of one iterator value.
pub struct IterNode {
    pub kind: Kind,
    /// Set once the iterator has reported its end (display `<iter (exhausted)>`).
    pub exhausted: bool,
    /// A `for` loop's pull is in flight: its outcome will be on the stack
    /// when `ITER_NEXT` runs again.
    pub awaiting: bool,
}

/// Where an iterator's items come from.
pub enum Kind {
    /// List or set items from index `.1` on.
    Seq(Rc<Vec<Value>>, usize),
    /// `remaining` ints from `next` on.
    Range {
        next: i64,
        remaining: u64,
    },
    /// Dict entries after key `last` as `{key, value}` dicts (`for` over a dict).
    DictEntries {
        map: Rc<DictMap>,
        last: Option<HStr>,
    },
    /// Dict entries after key `last` as `Pair(key, value)` (`iter(dict)`).
    DictPairs {
        map: Rc<DictMap>,
        last: Option<HStr>,
    },
    /// The chars of a string from byte offset `.1` on.
    Chars(HStr, usize),
    /// A generator or stream, pulled through the VM.
    Generator(Value),
    /// Another iter, item for item (a `for` loop over a shared iter).
    Pass(Rc<Object>),
    Map {
        src: Rc<Object>,
        f: Value,
    },
    Filter {
        src: Rc<Object>,
        f: Value,
    },
    FlatMap {
        src: Rc<Object>,
        f: Value,
        inner: Option<Rc<Object>>,
    },
    Take {
        src: Rc<Object>,
        left: i64,
    },
    Skip {
        src: Rc<Object>,
        left: i64,
    },
    TakeWhile {
        src: Rc<Object>,
        f: Value,
    },
    SkipWhile {
        src: Rc<Object>,
        f: Value,
        skipping: bool,
    },
    Zip {
        a: Rc<Object>,
        b: Rc<Object>,
    },
    Enumerate {
        src: Rc<Object>,
        next: i64,
    },
    Chain {
        first: Option<Rc<Object>>,
        second: Rc<Object>,
    },
    Chunks {
        src: Rc<Object>,
        size: usize,
    },
    Windows {
        src: Rc<Object>,
        size: usize,
        window: VecDeque<Value>,
    },
    /// Fused end.
    Done,
}

impl IterNode {
    pub fn display(&self) -> &'static str {
        if self.exhausted {
            "<iter (exhausted)>"
        } else {
            "<iter>"
        }
    }

    /// Moves out what this iter holds that may hold further iters or
    /// generators (for dropping long chains without recursion).
    pub fn take_children(&mut self, out: &mut Vec<Value>) {
        let kind = std::mem::replace(&mut self.kind, Kind::Done);
        let mut push = |src: Rc<Object>| out.push(Value::Object(src));
        match kind {
            Kind::Pass(src)
            | Kind::Map { src, .. }
            | Kind::Filter { src, .. }
            | Kind::Take { src, .. }
            | Kind::Skip { src, .. }
            | Kind::TakeWhile { src, .. }
            | Kind::SkipWhile { src, .. }
            | Kind::Enumerate { src, .. }
            | Kind::Chunks { src, .. }
            | Kind::Windows { src, .. } => push(src),
            Kind::FlatMap { src, inner, .. } => [Some(src), inner].into_iter().flatten().for_each(push),
            Kind::Zip { a, b } => [a, b].into_iter().for_each(push),
            Kind::Chain { first, second } => [first, Some(second)].into_iter().flatten().for_each(push),
            Kind::Generator(g) => out.push(g),
            other => self.kind = other,
        }
    }
}

impl Drop for IterNode {
    fn drop(&mut self) {
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        dismantle(pending);
    }
}

/// Drops values that may be long chains of iters and generators (each
/// owning the next) iteratively, so dropping cannot overflow the native
/// stack: every uniquely owned iter or generator is emptied before it is
/// dropped.
pub fn dismantle(mut pending: Vec<Value>) {
    while let Some(mut v) = pending.pop() {
        if let Value::Object(o) = &mut v {
            match Rc::get_mut(o) {
                Some(Object::Iter(cell)) => cell.get_mut().take_children(&mut pending),
                Some(Object::Generator(g)) => g.take_children(&mut pending),
                _ => {}
            }
        }
    }
}
