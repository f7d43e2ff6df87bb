//! Reading and writing places: globals, cells (captured locals), properties
//! (through the site's inline cache), indexing, slices and assignments to
//! paths (`a.b[i] = v`). The reads are hot and `#[inline(always)]`; a
//! property cache miss and the path assignments are out of line.

use std::rc::Rc;

use super::super::{const_name, Vm};
use super::{at, pop, top};
use crate::runtime::error::VmResult;
use crate::runtime::ops;
use crate::runtime::value::{Closure, HStr, Object, Value};
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

    /// `v --`: `local.name = v`. A struct whose layout is the one the site
    /// cached is written at the cached slot (after `Rc::make_mut`, so a
    /// shared struct is copied first and aliases keep the old value); every
    /// other receiver takes the generic path assignment. (Out of line: in
    /// the dispatch loop it cost the other ops registers.)
    #[inline(never)]
    pub(super) fn set_local_field(
        &mut self,
        consts: &[Value],
        local: usize,
        name_idx: usize,
        ic_base: usize,
        slot: u16,
    ) -> VmResult<()> {
        let v = pop(&mut self.fiber.stack);
        let obj = &mut self.fiber.stack[local];
        let mut entry = self.ic.entry_at(ic_base, slot);
        if let (
            Value::Struct(s),
            Some(ic::Entry::Property { name_idx: n, target: ic::PropertyTarget::StructField { layout, index }, hits, .. }),
        ) = (&mut *obj, entry.as_deref_mut())
        {
            if *n as usize == name_idx && std::ptr::eq(Rc::as_ptr(&s.layout), *layout) {
                *hits += 1;
                // Every struct of one layout has a value per field.
                Rc::make_mut(s).values[*index as usize] = v;
                return Ok(());
            }
        }
        if let (
            Value::Dict(map),
            Some(ic::Entry::Property { name_idx: n, target: ic::PropertyTarget::DictField { slot }, hits, .. }),
        ) = (&mut *obj, entry.as_deref_mut())
        {
            if *n as usize == name_idx {
                *hits += 1;
                // Copies a shared dict first, so aliases keep the old value.
                ic::dict_slot_write(Rc::make_mut(map), slot, const_name(consts, name_idx), v);
                return Ok(());
            }
        }
        field_write_miss(entry, name_idx, obj, const_name(consts, name_idx), v)
    }

    /// `v --` for `local = local.push(v)`: true when the local held a list and
    /// `v` was appended to it in place; otherwise the stack becomes `local v`.
    #[inline(never)]
    pub(super) fn list_push_local(&mut self, local: usize) -> VmResult<bool> {
        let v = pop(&mut self.fiber.stack);
        let receiver = match &mut self.fiber.stack[local] {
            Value::List(items) => {
                check_growth_memory(items, 1)?;
                Rc::make_mut(items).push(v);
                return Ok(true);
            }
            other => other.clone(),
        };
        self.fiber.stack.push(receiver);
        self.fiber.stack.push(v);
        Ok(false)
    }

    /// `recv args… -- result` for `recv.push(v)` and `recv.pop()` when
    /// `recv` is a list nothing else references (it was moved out of its
    /// variable: `h = h.pop()`, `var h = heap.push(x)`): the list itself
    /// becomes the result, grown or shrunk in place. False (nothing
    /// changed) for anything else, which the method call then handles.
    #[inline(always)]
    pub(in crate::vm) fn unique_list_method(&mut self, name: &HStr, argc: usize) -> VmResult<bool> {
        let recv_at = self.fiber.stack.len() - argc - 1;
        let Value::List(items) = &self.fiber.stack[recv_at] else { return Ok(false) };
        if Rc::strong_count(items) != 1 || Rc::weak_count(items) != 0 {
            return Ok(false);
        }
        match (argc, name.as_str()) {
            (1, "push") => {
                check_growth_memory(items, 1)?;
                let v = pop(&mut self.fiber.stack);
                if let Value::List(items) = top(&mut self.fiber.stack) {
                    if let Some(list) = Rc::get_mut(items) {
                        list.push(v);
                    }
                }
            }
            (0, "pop") => {
                if let Some(list) = match top(&mut self.fiber.stack) {
                    Value::List(items) => Rc::get_mut(items),
                    _ => None,
                } {
                    list.pop();
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `a1..an --` for `local = local + [a1..an]`: true when the local held a
    /// list and was extended in place (the same size limit as `+` on lists);
    /// otherwise the stack becomes `local [a1..an]`.
    #[inline(never)]
    pub(super) fn list_extend_local(&mut self, local: usize, n: usize) -> VmResult<bool> {
        let at = self.fiber.stack.len() - n;
        let (below, items) = self.fiber.stack.split_at_mut(at);
        if let Value::List(list) = &mut below[local] {
            ops::check_list_concat(list.len(), n, &self.options.limits)?;
            check_growth_memory(list, n)?;
            let list = Rc::make_mut(list);
            list.reserve(n);
            list.extend(items.iter_mut().map(std::mem::take));
            self.fiber.stack.truncate(at);
            return Ok(true);
        }
        let receiver = below[local].clone();
        let items: Vec<Value> = self.fiber.stack.drain(at..).collect();
        self.fiber.stack.push(receiver);
        self.fiber.stack.push(Value::list(items));
        Ok(false)
    }

    /// `keys… v --`: `local[k1][k2]… = v` for the `n` keys below `v`. The
    /// keys are read where they lie on the stack (no key list is built) and
    /// each container on the path is written in place when unshared.
    #[inline(never)]
    pub(super) fn set_path_local(&mut self, local: usize, n: usize) -> VmResult<()> {
        let v = pop(&mut self.fiber.stack);
        let at = self.fiber.stack.len() - n;
        debug_assert!(local < at, "a local lies below the operand stack");
        let (below, keys) = self.fiber.stack.split_at_mut(at);
        let result = ops::set_path(&mut below[local], keys, v);
        self.fiber.stack.truncate(at);
        result
    }

    /// `keys… v --`: `global[k1][k2]… = v`.
    #[inline(never)]
    pub(super) fn set_path_global(&mut self, closure: &Closure, g: usize, n: usize) -> VmResult<()> {
        let v = pop(&mut self.fiber.stack);
        let at = self.fiber.stack.len() - n;
        let result = ops::set_path(&mut closure.module.globals.borrow_mut()[g], &self.fiber.stack[at..], v);
        self.fiber.stack.truncate(at);
        result
    }
}

/// A field write whose cache entry did not hit: the generic assignment, and
/// a struct field that exists teaches the site its (layout, slot).
#[inline(never)]
fn field_write_miss(entry: Option<&mut ic::Entry>, name_idx: usize, obj: &mut Value, name: &HStr, v: Value) -> VmResult<()> {
    if let Some(entry) = entry {
        if let Value::Dict(map) = obj {
            // The site learns the slot the write lands in.
            let mut slot = 0;
            ic::dict_slot_write(Rc::make_mut(map), &mut slot, name, v);
            ic::property_learn(entry, name_idx as u16, Some((ic::PropertyTarget::DictField { slot }, None)));
            return Ok(());
        }
        let resolved = match obj {
            Value::Struct(_) => ic::PropertyTarget::resolve(obj, name),
            _ => None,
        };
        ic::property_learn(entry, name_idx as u16, resolved);
    }
    ops::set_path(obj, std::slice::from_ref(&Value::Str(Rc::clone(name))), v)
}

/// A property read whose cache entry did not hit: the generic read, then
/// the entry learns where `name` was found.
#[inline(never)]
fn property_miss(entry: &mut ic::Entry, name_idx: usize, obj: &Value, name: &HStr, optional: bool) -> VmResult<Value> {
    if let Some(v) = ic::dict_field_rehit(entry, name_idx as u16, obj, name) {
        return Ok(v);
    }
    let resolved = ic::PropertyTarget::resolve(obj, name);
    let v = ops::get_property(obj, name, optional)?;
    ic::property_learn(entry, name_idx as u16, resolved);
    Ok(v)
}

/// Checks the run's memory budget before `list` grows by `extra` values in
/// place: a shared list is copied whole, and a full one reallocates (up to
/// doubling), which the allocator's count would see only at the next poll.
fn check_growth_memory(list: &Rc<Vec<Value>>, extra: usize) -> VmResult<()> {
    let needed = list.len().saturating_add(extra);
    let new_values = if Rc::strong_count(list) > 1 {
        needed
    } else if needed > list.capacity() {
        needed.max(list.capacity().saturating_mul(2))
    } else {
        return Ok(());
    };
    crate::runtime::native::check_memory(new_values.saturating_mul(std::mem::size_of::<Value>()))
}
