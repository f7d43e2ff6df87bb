//! Control beyond jumps: `for` iteration, exception handlers, throwing and
//! catching, `Result` wrapping and `?`, and the type tests of `match` and
//! destructuring. Iteration is hot and `#[inline(always)]`; the channel
//! and lazy-iterator steps, throws and the error-value ops are out of line.

use super::super::{sched, Vm};
use super::{errors, pop, top};
use crate::builtins::{iter, Ctx, Flow};
use crate::runtime::error::{VmError, VmResult};
use crate::runtime::fiber::Handler;
use crate::runtime::value::{HStr, Object, Value};

impl Vm {
    /// `iterable --`: stack slot `slot` becomes the loop's iterator.
    #[inline(always)]
    pub(super) fn iter_init(&mut self, slot: usize) {
        let iterable = pop(&mut self.fiber.stack);
        self.fiber.stack[slot] = if sched::is_channel_like(&iterable) {
            // Channels are pulled by the scheduler (the loop may wait).
            iterable
        } else {
            iter::for_loop_iter(&iterable)
        };
    }

    /// The next item from the channel in stack slot `slot` (the task may
    /// wait for it); None when the channel is closed and drained.
    #[cold]
    #[inline(never)]
    pub(super) fn iter_next_channel(&mut self, slot: usize) -> VmResult<Option<Value>> {
        let ch = self.fiber.stack[slot].clone();
        self.iter_channel(&ch)
    }

    /// Starts pulling the next item from the lazy iterator in stack slot `slot`.
    #[cold]
    #[inline(never)]
    pub(super) fn iter_pull(&mut self, slot: usize) -> VmResult<Flow> {
        let Value::Object(node) = &self.fiber.stack[slot] else { unreachable!() };
        let node = node.clone();
        let mut ctx = Ctx { output: &mut self.fiber.output, limits: &self.options.limits };
        let flow = iter::Pull::start(&mut ctx, node.clone(), iter::Sink::Next)?;
        if !matches!(flow, Flow::Done(_)) {
            iter::set_awaiting(&node);
        }
        Ok(flow)
    }

    /// Installs a handler for the frame on top: errors unwind to `catch_ip`.
    #[inline(always)]
    pub(super) fn try_begin(&mut self, catch_ip: usize) {
        let frame_depth = self.fiber.frames.len();
        let stack_len = self.fiber.stack.len();
        self.fiber.handlers.push(Handler { frame_depth, stack_len, catch_ip });
    }

    /// `v --`: `throw v`.
    #[cold]
    #[inline(never)]
    pub(super) fn throw(&mut self) -> VmError {
        VmError::thrown(pop(&mut self.fiber.stack))
    }

    /// `err --`: throws a caught error again, as it was.
    #[cold]
    #[inline(never)]
    pub(super) fn rethrow(&mut self) -> VmError {
        let v = pop(&mut self.fiber.stack);
        match &v {
            Value::Object(o) => match &**o {
                Object::Error(e) => e.clone(),
                _ => VmError::thrown(v.clone()),
            },
            _ => VmError::thrown(v.clone()),
        }
    }

    /// `err -- value`: a caught error becomes the value the `catch` binds.
    #[cold]
    #[inline(never)]
    pub(super) fn err_value(&mut self) {
        let v = top(&mut self.fiber.stack);
        if let Value::Object(o) = &*v {
            if let Object::Error(e) = &**o {
                let caught = e.catch_value();
                *v = caught;
            }
        }
    }

    /// `err -- err bool`: was the thrown value a variant of enum `name` (a typed catch)?
    #[cold]
    #[inline(never)]
    pub(super) fn err_is(&mut self, name: &HStr) {
        let matches = match top(&mut self.fiber.stack) {
            Value::Object(o) => match &**o {
                Object::Error(e) => match e.thrown_value() {
                    Some(Value::Enum(ev)) => *ev.enum_name == **name,
                    _ => false,
                },
                _ => false,
            },
            _ => false,
        };
        self.fiber.stack.push(Value::Bool(matches));
    }

    /// `v -- Result.Ok(v)`, unless `v` is a Result already.
    #[inline(always)]
    pub(super) fn wrap_ok(&mut self) {
        let v = top(&mut self.fiber.stack);
        let is_result = matches!(&*v, Value::Enum(e) if e.enum_name.as_str() == "Result");
        if !is_result {
            let inner = std::mem::take(v);
            *v = Value::ok(inner);
        }
    }

    /// `err -- Result.Err(value)`: the caught error as a Result.
    #[cold]
    #[inline(never)]
    pub(super) fn wrap_err(&mut self) {
        let v = top(&mut self.fiber.stack);
        let caught = match &*v {
            Value::Object(o) => match &**o {
                Object::Error(e) => e.catch_value(),
                _ => v.clone(),
            },
            other => other.clone(),
        };
        *v = Value::err(caught);
    }

    /// `result -- value` for an Ok (`r?`). An Err comes back to be
    /// returned from the running function as it is.
    #[inline(always)]
    pub(super) fn try_unwrap(&mut self) -> VmResult<Option<Value>> {
        let v = pop(&mut self.fiber.stack);
        match &v {
            Value::Enum(e) if e.enum_name.as_str() == "Result" && e.variant.as_str() == "Ok" => {
                self.fiber.stack.push(e.fields.first().cloned().unwrap_or_default());
                Ok(None)
            }
            Value::Enum(e) if e.enum_name.as_str() == "Result" && e.variant.as_str() == "Err" => Ok(Some(v.clone())),
            other => Err(errors::not_a_result(other)),
        }
    }

    /// `v -- bool`: is `v` the variant `Enum.Variant` named by `name`?
    #[inline(always)]
    pub(super) fn is_variant(&mut self, name: &HStr) {
        let v = top(&mut self.fiber.stack);
        let m = matches!(&*v, Value::Enum(e) if names_variant(name, &e.enum_name, &e.variant));
        *v = Value::Bool(m);
    }

    /// `v -- bool`: is `v`'s type named `name`?
    #[inline(always)]
    pub(super) fn is_type(&mut self, name: &HStr) {
        let v = top(&mut self.fiber.stack);
        let m = v.type_name() == name.as_str();
        *v = Value::Bool(m);
    }

    /// Fails unless the top value fits a `[...]` (`want_list`) or `{...}` pattern.
    #[inline(always)]
    pub(super) fn check_destructure(&self, want_list: bool) -> VmResult<()> {
        let v = &self.fiber.stack[self.fiber.stack.len() - 1];
        let ok = if want_list { matches!(v, Value::List(_)) } else { matches!(v, Value::Dict(_) | Value::Struct(_)) };
        if !ok {
            return Err(errors::destructure(v, want_list));
        }
        Ok(())
    }
}

/// Does the `Enum.Variant` constant `name` name this enum value's variant?
/// The same answer as splitting `name` at its first `.` (no dot: the enum
/// part is empty) and comparing both parts, without searching for the dot:
/// the dot must follow the enum name, which (as the part before the first
/// dot) has none itself.
#[inline(always)]
fn names_variant(name: &str, enum_name: &str, variant: &str) -> bool {
    let (n, en) = (name.as_bytes(), enum_name.as_bytes());
    if n.len() > en.len() && n.starts_with(en) && n[en.len()] == b'.' {
        return &n[en.len() + 1..] == variant.as_bytes() && !en.contains(&b'.');
    }
    en.is_empty() && n == variant.as_bytes() && !n.contains(&b'.')
}

#[cfg(test)]
mod tests {
    use super::names_variant;

    #[test]
    fn names_variant_agrees_with_splitting_at_the_first_dot() {
        let split = |name: &str, en: &str, var: &str| {
            let (a, b) = name.split_once('.').unwrap_or(("", name));
            a == en && b == var
        };
        let names = ["Tree.Node", "Tree.Leaf", "Node", ".Node", "Tree.", "A.B.C", "", ".", "Tree.Node.x"];
        let parts = ["", "Tree", "Node", "Leaf", "A", "A.B", "B.C", "C", "Node.x", "."];
        for name in names {
            for en in parts {
                for var in parts {
                    assert_eq!(names_variant(name, en, var), split(name, en, var), "{name:?} {en:?} {var:?}");
                }
            }
        }
    }
}
