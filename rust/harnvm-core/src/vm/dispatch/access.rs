//! Reading and writing places: globals, cells (captured locals), properties
//! (through the site's inline cache), indexing, slices and assignments to
//! paths (`a.b[i] = v`). The reads are hot and `#[inline(always)]`; a
//! property cache miss and the path assignments are out of line.

use std::rc::Rc;

use super::super::{const_name, Vm};
use super::{at, pop, top};
use crate::runtime::error::VmResult;
use crate::runtime::ops;
use crate::runtime::value::{Closure, Object, Value};
use crate::vm::ic;

impl Vm {
    /// `-- v`: global `g` of the running closure's module.
    #[inline(always)]
    pub(super) fn get_global(&mut self, closure: &Closure, g: usize) -> VmResult<()> {
        let module = &closure.module;
        let v = module.globals.borrow()[g].clone();
        if v.is_nil() && !module.defined.borrow()[g] {
            return Err(self.undefined_variable(&module.names[g]));
        }
        self.fiber.stack.push(v);
        Ok(())
    }

    /// `v --`: stores into global `g`.
    #[inline(always)]
    pub(super) fn set_global(&mut self, closure: &Closure, g: usize) {
        let v = pop(&mut self.fiber.stack);
        closure.module.globals.borrow_mut()[g] = v;
        closure.module.defined.borrow_mut()[g] = true;
    }

    /// `-- v`: the value in the cell held by stack slot `slot` (a captured local).
    #[inline(always)]
    pub(super) fn get_local_cell(&mut self, slot: usize) {
        let v = match &self.fiber.stack[slot] {
            Value::Object(o) => match &**o {
                Object::Cell(c) => c.borrow().clone(),
                _ => Value::Nil,
            },
            _ => Value::Nil,
        };
        self.fiber.stack.push(v);
    }

    /// `v --`: stores into the cell held by stack slot `slot`.
    #[inline(always)]
    pub(super) fn set_local_cell(&mut self, slot: usize) {
        let v = pop(&mut self.fiber.stack);
        if let Value::Object(o) = &self.fiber.stack[slot] {
            if let Object::Cell(c) = &**o {
                *c.borrow_mut() = v;
            }
        }
    }

    /// Stack slot `slot` becomes a fresh cell (a local that closures capture).
    #[inline(always)]
    pub(super) fn new_cell(&mut self, slot: usize) {
        self.fiber.stack[slot] = Value::Object(Rc::new(Object::Cell(Default::default())));
    }

    /// `-- v`: capture `i` of the running closure, through its cell if it has one.
    #[inline(always)]
    pub(super) fn get_capture_cell(&mut self, closure: &Closure, i: usize) {
        let v = match &closure.captures[i] {
            Value::Object(o) => match &**o {
                Object::Cell(c) => c.borrow().clone(),
                _ => Value::Nil,
            },
            other => other.clone(),
        };
        self.fiber.stack.push(v);
    }

    /// `obj -- obj.name` (`obj?.name` when `optional`), through the site's cache.
    #[inline(always)]
    pub(super) fn get_prop(
        &mut self,
        consts: &[Value],
        name_idx: usize,
        optional: bool,
        ic_base: usize,
        slot: u16,
    ) -> VmResult<()> {
        let name = const_name(consts, name_idx);
        let obj = self.fiber.stack.last_mut().expect("stack underflow");
        match self.ic.entry_at(ic_base, slot) {
            Some(entry) => match ic::property_hit(entry, name_idx as u16, obj, name) {
                Some(v) => *obj = v,
                None => *obj = property_miss(entry, name_idx, obj, name, optional)?,
            },
            None => *obj = ops::get_property(obj, name, optional)?,
        }
        Ok(())
    }

    /// `-- local.name`, the local read in place (no reference-count traffic).
    #[inline(always)]
    pub(super) fn get_local_prop(
        &mut self,
        consts: &[Value],
        local: usize,
        name_idx: usize,
        ic_base: usize,
        slot: u16,
    ) -> VmResult<()> {
        let name = const_name(consts, name_idx);
        let obj = at(&self.fiber.stack, local);
        let v = match self.ic.entry_at(ic_base, slot) {
            Some(entry) => match ic::property_hit(entry, name_idx as u16, obj, name) {
                Some(v) => v,
                None => property_miss(entry, name_idx, obj, name, false)?,
            },
            None => ops::get_property(obj, name, false)?,
        };
        self.fiber.stack.push(v);
        Ok(())
    }

    /// `obj idx -- obj[idx]` (`obj?[idx]` when `optional`).
    #[inline(always)]
    pub(super) fn index(&mut self, optional: bool) -> VmResult<()> {
        let idx = pop(&mut self.fiber.stack);
        let obj = top(&mut self.fiber.stack);
        *obj = ops::index(obj, &idx, optional)?;
        Ok(())
    }

    /// `obj start end -- obj[start:end]`.
    #[inline(always)]
    pub(super) fn slice(&mut self) -> VmResult<()> {
        let end = pop(&mut self.fiber.stack);
        let start = pop(&mut self.fiber.stack);
        let obj = top(&mut self.fiber.stack);
        *obj = ops::slice(obj, &start, &end)?;
        Ok(())
    }

    /// `keys… v --`: `local[k1][k2]… = v` for the `n` keys below `v`.
    #[inline(never)]
    pub(super) fn set_path_local(&mut self, local: usize, n: usize) -> VmResult<()> {
        let (keys, v) = self.pop_path(n);
        ops::set_path(&mut self.fiber.stack[local], &keys, v)
    }

    /// `keys… v --`: `global[k1][k2]… = v`.
    #[inline(never)]
    pub(super) fn set_path_global(&mut self, closure: &Closure, g: usize, n: usize) -> VmResult<()> {
        let (keys, v) = self.pop_path(n);
        ops::set_path(&mut closure.module.globals.borrow_mut()[g], &keys, v)
    }

    /// Pops the value of a path assignment and the `n` keys below it.
    fn pop_path(&mut self, n: usize) -> (Vec<Value>, Value) {
        let v = pop(&mut self.fiber.stack);
        let at = self.fiber.stack.len() - n;
        let keys: Vec<Value> = self.fiber.stack.drain(at..).collect();
        (keys, v)
    }
}

/// A property read whose cache entry did not hit: the generic read, then
/// the entry learns where `name` was found.
#[inline(never)]
fn property_miss(entry: &mut ic::Entry, name_idx: usize, obj: &Value, name: &str, optional: bool) -> VmResult<Value> {
    let resolved = ic::PropertyTarget::resolve(obj, name);
    let v = ops::get_property(obj, name, optional)?;
    ic::property_learn(entry, name_idx as u16, resolved);
    Ok(v)
}
