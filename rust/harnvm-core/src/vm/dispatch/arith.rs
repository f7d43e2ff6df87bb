//! The adaptive binary ops (`+ - * / %` and the comparisons) in each
//! operand form of `define_ops!`'s family column (`BinaryForm`).
//!
//! Every form runs the same two steps, so all forms share one cache
//! semantics: on two ints, the ground floor's int kernel (`ops::int_binary`)
//! when the site has no entry or is specialized on ints for the op (one hit
//! counted), writing the scalar result in place; anything else goes to
//! `binary_cached` (a specialized hit of another shape, or the generic op
//! and the state machine). The form handlers are `#[inline(always)]` and are
//! called with a constant op, so each one folds to its op's kernel.

use super::super::{consume_truthy, discard_pair, discard_top, replace_pair, replace_scalar_pair, store, Vm};
use super::{at, at_mut};
use crate::runtime::error::VmResult;
use crate::runtime::native::Limits;
use crate::runtime::ops::{self, BinaryOp};
use crate::runtime::value::Value;
use crate::vm::ic::{self, InlineCaches};

impl Vm {
    /// The int fast path of a site on ints `x`, `y`: the kernel's answer when
    /// the site has no cache entry, or when its entry is specialized on ints
    /// for `bop` (counting the hit). None sends the op to `binary_cached`.
    #[inline(always)]
    fn int_site(&mut self, bop: BinaryOp, ic_base: usize, slot: u16, x: i64, y: i64) -> Option<Value> {
        match self.ic.entry_at(ic_base, slot) {
            Some(entry) => {
                let hits = ic::int_specialized_hits(entry, bop)?;
                let r = ops::int_binary(bop, x, y);
                if r.is_some() {
                    *hits += 1;
                }
                r
            }
            None => ops::int_binary(bop, x, y),
        }
    }

    /// `int_site` for a form that only tests the result (fused with a jump).
    #[inline(always)]
    fn int_site_test(&mut self, bop: BinaryOp, ic_base: usize, slot: u16, x: i64, y: i64) -> Option<bool> {
        self.int_site(bop, ic_base, slot, x, y).map(|v| v.is_truthy())
    }

    /// `a b -- a OP b` on two ints, in place; false sends the op to `binary_stack_slow`.
    #[inline(always)]
    pub(super) fn binary_stack(&mut self, bop: BinaryOp, ic_base: usize, slot: u16) -> bool {
        let n = self.fiber.stack.len();
        let fast = match (at(&self.fiber.stack, n - 2), at(&self.fiber.stack, n - 1)) {
            (&Value::Int(x), &Value::Int(y)) => self.int_site(bop, ic_base, slot, x, y),
            _ => None,
        };
        match fast {
            Some(v) => {
                replace_scalar_pair(&mut self.fiber.stack, v);
                true
            }
            None => false,
        }
    }

    #[inline(never)]
    pub(super) fn binary_stack_slow(&mut self, bop: BinaryOp, ic_base: usize, slot: u16) -> VmResult<()> {
        let n = self.fiber.stack.len();
        let (a, b) = (at(&self.fiber.stack, n - 2), at(&self.fiber.stack, n - 1));
        let v = binary_cached(&mut self.ic, &self.options.limits, bop, ic_base, slot, a, b)?;
        replace_pair(&mut self.fiber.stack, v);
        Ok(())
    }

    /// Stack slot `dst` (the top, or a local) becomes `dst OP right` when both
    /// are ints; false sends the op to `binary_in_place_slow`.
    #[inline(always)]
    pub(super) fn binary_in_place(&mut self, bop: BinaryOp, dst: usize, right: &Value, ic_base: usize, slot: u16) -> bool {
        let fast = match (at(&self.fiber.stack, dst), right) {
            (&Value::Int(x), &Value::Int(y)) => self.int_site(bop, ic_base, slot, x, y),
            _ => None,
        };
        match fast {
            Some(v) => {
                // SAFETY: the old value is an int, which owns no heap data.
                unsafe { std::ptr::write(at_mut(&mut self.fiber.stack, dst), v) };
                true
            }
            None => false,
        }
    }

    /// `a -- a OP local` on two ints, the local read in place; false sends
    /// the op to `binary_in_place_slow`.
    #[inline(always)]
    pub(super) fn binary_local(&mut self, bop: BinaryOp, local: usize, ic_base: usize, slot: u16) -> bool {
        let n = self.fiber.stack.len();
        let fast = match (at(&self.fiber.stack, n - 1), at(&self.fiber.stack, local)) {
            (&Value::Int(x), &Value::Int(y)) => self.int_site(bop, ic_base, slot, x, y),
            _ => None,
        };
        match fast {
            Some(v) => {
                // SAFETY: the old value is an int, which owns no heap data.
                unsafe { std::ptr::write(at_mut(&mut self.fiber.stack, n - 1), v) };
                true
            }
            None => false,
        }
    }

    #[inline(never)]
    pub(super) fn binary_in_place_slow(
        &mut self,
        bop: BinaryOp,
        dst: usize,
        right: &Value,
        ic_base: usize,
        slot: u16,
    ) -> VmResult<()> {
        let v = binary_cached(&mut self.ic, &self.options.limits, bop, ic_base, slot, at(&self.fiber.stack, dst), right)?;
        store(at_mut(&mut self.fiber.stack, dst), v);
        Ok(())
    }

    /// Is `a OP b` truthy for the two ints `a b` on top (the test of a fused
    /// compare+jump)? Pops them; None sends the op to `binary_test_slow`.
    #[inline(always)]
    pub(super) fn binary_stack_test(&mut self, bop: BinaryOp, ic_base: usize, slot: u16) -> Option<bool> {
        let n = self.fiber.stack.len();
        let t = match (at(&self.fiber.stack, n - 2), at(&self.fiber.stack, n - 1)) {
            (&Value::Int(x), &Value::Int(y)) => self.int_site_test(bop, ic_base, slot, x, y)?,
            _ => return None,
        };
        // SAFETY: n >= 2 (both were just read) and both are ints, which own no heap data.
        unsafe { self.fiber.stack.set_len(n - 2) };
        Some(t)
    }

    /// Is `a OP k` truthy for the int `a` on top? Pops it.
    #[inline(always)]
    pub(super) fn binary_const_test(&mut self, bop: BinaryOp, k: &Value, ic_base: usize, slot: u16) -> Option<bool> {
        let n = self.fiber.stack.len();
        let t = match (at(&self.fiber.stack, n - 1), k) {
            (&Value::Int(x), &Value::Int(y)) => self.int_site_test(bop, ic_base, slot, x, y)?,
            _ => return None,
        };
        // SAFETY: n >= 1 (just read) and the value is an int, which owns no heap data.
        unsafe { self.fiber.stack.set_len(n - 1) };
        Some(t)
    }

    /// Is `local OP k` truthy for an int local (read in place)?
    #[inline(always)]
    pub(super) fn binary_local_const_test(
        &mut self,
        bop: BinaryOp,
        local: usize,
        k: &Value,
        ic_base: usize,
        slot: u16,
    ) -> Option<bool> {
        match (at(&self.fiber.stack, local), k) {
            (&Value::Int(x), &Value::Int(y)) => self.int_site_test(bop, ic_base, slot, x, y),
            _ => None,
        }
    }

    /// The test of a fused compare+jump off the fast path: `left OP right`
    /// (`right` a constant, else the stack slot above `left`), then `pop`
    /// operands are popped from the top.
    #[inline(never)]
    pub(super) fn binary_test_slow(
        &mut self,
        bop: BinaryOp,
        left: usize,
        right: Option<&Value>,
        pop: usize,
        ic_base: usize,
        slot: u16,
    ) -> VmResult<bool> {
        let stack = &self.fiber.stack;
        let b = right.unwrap_or_else(|| at(stack, left + 1));
        let v = binary_cached(&mut self.ic, &self.options.limits, bop, ic_base, slot, at(stack, left), b)?;
        match pop {
            2 => discard_pair(&mut self.fiber.stack),
            1 => discard_top(&mut self.fiber.stack),
            _ => {}
        }
        Ok(consume_truthy(v))
    }
}

/// A binary op off the int fast path: through the site's cache entry (a
/// specialized hit, else the generic op and the state machine), or the
/// generic op for a site without one.
#[inline(never)]
fn binary_cached(
    ic: &mut InlineCaches,
    limits: &Limits,
    bop: BinaryOp,
    ic_base: usize,
    slot: u16,
    a: &Value,
    b: &Value,
) -> VmResult<Value> {
    let generic = |a: &Value, b: &Value| ops::binary(bop, a, b, limits);
    match ic.entry_at(ic_base, slot) {
        Some(entry) => ic::run_binary(entry, bop, a, b, generic),
        None => generic(a, b),
    }
}
