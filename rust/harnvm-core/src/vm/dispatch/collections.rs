//! Literals and the values built from stack items: lists, dicts, ranges,
//! enums, interpolated strings, the spreads into them and the rest of a
//! dict pattern. The literal builders run in ordinary loops, so they are
//! `#[inline(always)]`; the spreads and patterns are out of line.

use std::rc::Rc;

use super::super::{dict_key, Vm};
use super::{errors, pop, top};
use crate::runtime::error::VmResult;
use crate::runtime::ops;
use crate::runtime::value::{DictMap, EnumVal, HStr, Value};
use crate::vm::EnumNames;

impl Vm {
    /// `items… -- list` from the top `n` values.
    #[inline(always)]
    pub(super) fn build_list(&mut self, n: usize) {
        let stack = &mut self.fiber.stack;
        let at = stack.len() - n;
        let items: Vec<Value> = stack.drain(at..).collect();
        stack.push(Value::list(items));
    }

    /// `list v -- list` with `v` appended (a comprehension's body).
    #[inline(always)]
    pub(super) fn list_append(&mut self) {
        let v = pop(&mut self.fiber.stack);
        if let Value::List(items) = top(&mut self.fiber.stack) {
            Rc::make_mut(items).push(v);
        }
    }

    /// `list other -- list` with the items of `other` appended (`[...xs]`).
    #[cold]
    #[inline(never)]
    pub(super) fn list_extend(&mut self) -> VmResult<()> {
        let other = pop(&mut self.fiber.stack);
        let Value::List(more) = &other else {
            return Err(errors::destructure(&other, true));
        };
        if let Value::List(items) = top(&mut self.fiber.stack) {
            Rc::make_mut(items).extend(more.iter().cloned());
        }
        Ok(())
    }

    /// `k v … -- dict` from the top `n` key/value pairs. (Out of line: the
    /// hashed dict's setup, inlined, cost the dispatch loop registers.)
    #[inline(never)]
    pub(super) fn build_dict(&mut self, n: usize) {
        let stack = &mut self.fiber.stack;
        let at = stack.len() - 2 * n;
        let mut map = DictMap::with_capacity(n);
        let mut pairs = stack.drain(at..);
        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
            map.insert(dict_key(&k), v);
        }
        drop(pairs);
        // Literals list keys in source order; sorted once here, later walks
        // (display, JSON, iteration) need no key-order permutation.
        map.sort_in_place();
        stack.push(Value::dict(map));
    }

    /// `dict k v -- dict` with the entry inserted.
    #[inline(never)]
    pub(super) fn dict_insert(&mut self) {
        let v = pop(&mut self.fiber.stack);
        let k = pop(&mut self.fiber.stack);
        if let Value::Dict(map) = top(&mut self.fiber.stack) {
            Rc::make_mut(map).insert(dict_key(&k), v);
        }
    }

    /// `dict other -- dict` with the entries of `other` (a dict or struct) added (`{...d}`).
    #[cold]
    #[inline(never)]
    pub(super) fn dict_extend(&mut self) -> VmResult<()> {
        let other = pop(&mut self.fiber.stack);
        let entries: Vec<(HStr, Value)> = match &other {
            Value::Dict(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Value::Struct(s) => s.layout.fields.iter().cloned().zip(s.values.iter().cloned()).collect(),
            _ => return Err(errors::destructure(&other, false)),
        };
        if let Value::Dict(map) = top(&mut self.fiber.stack) {
            Rc::make_mut(map).extend(entries);
        }
        Ok(())
    }

    /// `dict keys -- rest`: the entries of a dict or struct whose keys are
    /// not in the list `keys` (`let {a, ...rest} = d`).
    #[cold]
    #[inline(never)]
    pub(super) fn dict_rest(&mut self) {
        let keys = pop(&mut self.fiber.stack);
        let d = top(&mut self.fiber.stack);
        let taken: Vec<String> = match &keys {
            Value::List(ks) => ks.iter().map(|k| k.display()).collect(),
            _ => Vec::new(),
        };
        let rest: DictMap = match &*d {
            Value::Dict(m) => {
                m.iter().filter(|(k, _)| !taken.iter().any(|t| t == k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
            }
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

    /// `parts… -- string`: the top `n` values displayed and joined.
    #[inline(always)]
    pub(super) fn concat(&mut self, n: usize) -> VmResult<()> {
        let stack = &mut self.fiber.stack;
        let at = stack.len() - n;
        // Sized up front (strings exactly, anything else at an int's
        // longest, 20 bytes), so building the string usually does not
        // reallocate as it grows.
        let mut containers = false;
        let guess: usize = stack[at..]
            .iter()
            .map(|v| match v {
                Value::Str(s) => s.len(),
                Value::Nil | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 20,
                _ => {
                    containers = true;
                    20
                }
            })
            .sum();
        if containers {
            // A container's text may be far bigger than the container.
            for v in &self.fiber.stack[at..] {
                crate::runtime::budget::check_display_memory(v)?;
            }
        }
        if guess > 4096 {
            // (Big pieces only: the budgets see interpolation like `+`.)
            crate::runtime::native::check_alloc(guess, &self.options.limits, "string interpolation")?;
        }
        let stack = &mut self.fiber.stack;
        let mut s = String::with_capacity(guess);
        for v in &stack[at..] {
            v.write_display(&mut s);
        }
        stack.truncate(at);
        stack.push(Value::str(s));
        Ok(())
    }

    /// `fields… -- Enum.Variant(fields…)` from the top `n` values.
    #[inline(always)]
    pub(super) fn build_enum(&mut self, name: &HStr, n: usize) {
        let names = match self.enum_names.get(name) {
            Some(names) => names,
            None => self.enum_names.entry(name.clone()).or_insert_with(|| EnumNames::new(name)),
        };
        let stack = &mut self.fiber.stack;
        let v = if n == 0 {
            names.nullary.clone()
        } else {
            let at = stack.len() - n;
            let fields: Vec<Value> = stack.drain(at..).collect();
            Value::Enum(Rc::new(EnumVal { enum_name: names.enum_name.clone(), variant: names.variant.clone(), fields }))
        };
        stack.push(v);
    }

    /// `start end -- range`.
    #[inline(always)]
    pub(super) fn build_range(&mut self, inclusive: bool) -> VmResult<()> {
        let end = pop(&mut self.fiber.stack);
        let start = top(&mut self.fiber.stack);
        *start = match (&*start, &end) {
            (Value::Int(s), Value::Int(e)) => Value::range(*s, *e, inclusive),
            (s, e) => return Err(errors::range_bounds(s, e)),
        };
        Ok(())
    }

    /// `item coll -- bool`: `item in coll`, or `not in` when `negated`.
    #[inline(always)]
    pub(super) fn contains(&mut self, negated: bool) {
        let coll = pop(&mut self.fiber.stack);
        let item = top(&mut self.fiber.stack);
        let found = ops::contains(item, &coll);
        *item = Value::Bool(found != negated);
    }
}
