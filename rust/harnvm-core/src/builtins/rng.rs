//! Seeded generators: `rng_seed(n)` returns an `rng` value that `random`,
//! `random_int`, `random_choice` and `random_shuffle` accept as an optional
//! first argument. The stream is harn 0.9.11's: ChaCha12 seeded with
//! `seed_from_u64`, mapped to floats, ranges and shuffles the way rand 0.8
//! does (53-bit floats; widening-multiply rejection sampling for ranges;
//! Fisher–Yates from the back for shuffles).

use std::cell::RefCell;
use std::rc::Rc;

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};

use crate::runtime::value::{Object, Value};

/// A fresh `rng` value seeded with `seed`.
pub fn new_rng(seed: u64) -> Value {
    Value::Object(Rc::new(Object::Opaque {
        type_name: "rng",
        display: "<rng>".to_string(),
        data: RefCell::new(Box::new(ChaCha12Rng::seed_from_u64(seed))),
    }))
}

/// Runs `f` on the generator inside `v` when `v` is an `rng` value.
pub fn with_rng<T>(v: &Value, f: impl FnOnce(&mut Draw<'_>) -> T) -> Option<T> {
    let Value::Object(obj) = v else { return None };
    let Object::Opaque { type_name: "rng", data, .. } = &**obj else { return None };
    let mut data = data.borrow_mut();
    let rng = data.downcast_mut::<ChaCha12Rng>()?;
    Some(f(&mut Draw(rng)))
}

/// Draws from one generator.
pub struct Draw<'a>(&'a mut ChaCha12Rng);

impl Draw<'_> {
    /// Uniform in [0, 1) with 53 random bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..range` from 32-bit draws (`range > 0`): the high half
    /// of `draw * range`, corrected by a second draw when the low half is
    /// close enough to overflow to matter (Canon's method, as rand 0.9).
    fn below_u32(&mut self, range: u32) -> u32 {
        let m = self.0.next_u32() as u64 * range as u64;
        let (mut hi, lo) = ((m >> 32) as u32, m as u32);
        if lo > range.wrapping_neg() {
            let extra = ((self.0.next_u32() as u64 * range as u64) >> 32) as u32;
            if lo.checked_add(extra).is_none() {
                hi += 1;
            }
        }
        hi
    }

    /// The same over 64-bit draws.
    fn below_u64(&mut self, range: u64) -> u64 {
        let m = self.0.next_u64() as u128 * range as u128;
        let (mut hi, lo) = ((m >> 64) as u64, m as u64);
        if lo > range.wrapping_neg() {
            let extra = ((self.0.next_u64() as u128 * range as u128) >> 64) as u64;
            if lo.checked_add(extra).is_none() {
                hi += 1;
            }
        }
        hi
    }

    /// Uniform in `lo..=hi` (`lo <= hi`).
    pub fn int_inclusive(&mut self, lo: i64, hi: i64) -> i64 {
        let range = hi.wrapping_sub(lo).wrapping_add(1) as u64;
        if range == 0 {
            return self.0.next_u64() as i64;
        }
        lo.wrapping_add(self.below_u64(range) as i64)
    }

    /// Uniform in `0..n` (`n > 0`), as rand picks a slice index.
    pub fn index(&mut self, n: usize) -> usize {
        if n <= u32::MAX as usize {
            self.below_u32(n as u32) as usize
        } else {
            self.below_u64(n as u64) as usize
        }
    }

    /// The items shuffled in place: position `i` (from the front) swaps with
    /// a uniform index in `0..=i`. Several such indices come from one 32-bit
    /// draw below the product `(n+1)(n+2)..`, peeled off by division, as
    /// rand 0.9 does for slices shorter than `u32::MAX`.
    pub fn shuffle(&mut self, items: &mut [Value]) {
        if items.len() <= 1 {
            return;
        }
        let mut chunk: u32 = 0;
        // The first index is always 0 and needs no draw.
        let mut left: u32 = 1;
        for i in 0..items.len() {
            let bound = i as u32 + 1;
            if left == 0 {
                let (product, count) = product_run(bound);
                chunk = self.below_u32(product);
                left = count;
            }
            left -= 1;
            let j = if left == 0 {
                chunk
            } else {
                let r = chunk % bound;
                chunk /= bound;
                r
            };
            items.swap(i, j as usize);
        }
    }
}

/// The longest product `m (m+1) (m+2) ..` that fits in a u32, and its
/// number of factors.
fn product_run(m: u32) -> (u32, u32) {
    let mut product = m;
    let mut next = m + 1;
    while let Some(p) = product.checked_mul(next) {
        product = p;
        next += 1;
    }
    (product, next - m)
}
