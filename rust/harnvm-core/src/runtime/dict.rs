//! The dict representation: hashed lookups, key-ordered iteration.
//!
//! Harn shows and walks a dict in key (byte) order. Entries live in an
//! `IndexMap` (a hash index over a dense entry vector), so a lookup is one
//! hash probe and an entry has a stable *slot* (its index) that a property
//! cache can remember. The slots are usually already in key order: a dict
//! built all at once is sorted when it is finished, and an insert of a key
//! past the last one keeps it so. Otherwise (inserts out of order, a removal
//! that moved an entry) the dict is marked unsorted and an ordered walk goes
//! through a key-order permutation computed on first use and kept until the
//! next change of the key set; a batch of n out-of-order inserts costs one
//! O(n log n) sort, not n of them. Methods that walk entries mutably or by
//! value sort the entries in place first (they own the dict then).

use std::cell::OnceCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use indexmap::map::Slice;
use indexmap::{Equivalent, IndexMap};
use rustc_hash::FxBuildHasher;

use crate::runtime::value::{HStr, Value};

type Entries = IndexMap<HStr, Value, FxBuildHasher>;

/// Dicts at most this long remove by shifting (keeping slots in key order);
/// longer ones move the last entry into the hole (O(1), order mended lazily).
const SHIFT_REMOVE_MAX: usize = 16;

/// A Harn dict: string keys to values, walked in key byte order.
pub struct DictMap {
    entries: Entries,
    /// The entries' slot order is key order.
    sorted: bool,
    /// When not `sorted`: slots in key order, computed on first ordered walk.
    order: OnceCell<Box<[u32]>>,
}

// Lookups and inserts are out of line: the hash probe is sizeable code, and
// inlined into the dispatch loop's ops it cost every other op registers.

/// Anything a dict can be looked up by: its text.
pub trait DictKey {
    fn key_str(&self) -> &str;
}

impl DictKey for str {
    fn key_str(&self) -> &str {
        self
    }
}

impl DictKey for String {
    fn key_str(&self) -> &str {
        self
    }
}

impl DictKey for Rc<String> {
    fn key_str(&self) -> &str {
        self
    }
}

impl<T: DictKey + ?Sized> DictKey for &T {
    fn key_str(&self) -> &str {
        (**self).key_str()
    }
}

/// A borrowed key for probing: hashes like the `Rc<String>` keys (both hash as `str`).
struct Probe<'a>(&'a str);

impl Hash for Probe<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl Equivalent<HStr> for Probe<'_> {
    fn equivalent(&self, key: &HStr) -> bool {
        self.0 == key.as_str()
    }
}

impl Clone for DictMap {
    /// Out of line: `Rc::make_mut` on a dict sits in ops the dispatch loop inlines.
    #[inline(never)]
    fn clone(&self) -> DictMap {
        DictMap { entries: self.entries.clone(), sorted: self.sorted, order: self.order.clone() }
    }
}

impl Default for DictMap {
    fn default() -> DictMap {
        DictMap::new()
    }
}

impl DictMap {
    pub fn new() -> DictMap {
        DictMap { entries: IndexMap::with_hasher(FxBuildHasher), sorted: true, order: OnceCell::new() }
    }

    pub fn with_capacity(n: usize) -> DictMap {
        DictMap { entries: IndexMap::with_capacity_and_hasher(n, FxBuildHasher), sorted: true, order: OnceCell::new() }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline(never)]
    pub fn get<K: DictKey + ?Sized>(&self, key: &K) -> Option<&Value> {
        self.entries.get(&Probe(key.key_str()))
    }

    #[inline(never)]
    pub fn get_key_value<K: DictKey + ?Sized>(&self, key: &K) -> Option<(&HStr, &Value)> {
        self.entries.get_key_value(&Probe(key.key_str()))
    }

    #[inline(never)]
    pub fn contains_key<K: DictKey + ?Sized>(&self, key: &K) -> bool {
        self.entries.contains_key(&Probe(key.key_str()))
    }

    #[inline(never)]
    pub fn get_mut<K: DictKey + ?Sized>(&mut self, key: &K) -> Option<&mut Value> {
        self.entries.get_mut(&Probe(key.key_str()))
    }

    /// The slot of `key` and its entry (slots are what a property cache remembers).
    #[inline(never)]
    pub fn get_full<K: DictKey + ?Sized>(&self, key: &K) -> Option<(usize, &HStr, &Value)> {
        self.entries.get_full(&Probe(key.key_str()))
    }

    /// The entry at `slot`, if there is one. Slots are not key order.
    #[inline(always)]
    pub fn slot(&self, slot: usize) -> Option<(&HStr, &Value)> {
        self.entries.get_index(slot)
    }

    /// The value at `slot`, writable. Slots are not key order.
    #[inline]
    pub fn slot_mut(&mut self, slot: usize) -> Option<(&HStr, &mut Value)> {
        self.entries.get_index_mut(slot)
    }

    /// Sets `key` to `value`; an existing key keeps its `Rc` and slot. Returns the old value.
    #[inline]
    pub fn insert(&mut self, key: HStr, value: Value) -> Option<Value> {
        self.insert_full(key, value).1
    }

    /// `insert`, also giving the entry's slot.
    #[inline(never)]
    pub fn insert_full(&mut self, key: HStr, value: Value) -> (usize, Option<Value>) {
        let (slot, old) = self.entries.insert_full(key, value);
        if old.is_none() {
            self.key_added(slot);
        }
        (slot, old)
    }

    /// Keeps `sorted`/`order` true to the key set after a new key took `slot` (the last one).
    fn key_added(&mut self, slot: usize) {
        self.order.take();
        if self.sorted && slot > 0 {
            let before = self.entries.get_index(slot - 1).map(|(k, _)| k.as_bytes());
            let added = self.entries.get_index(slot).map(|(k, _)| k.as_bytes());
            if before > added {
                self.sorted = false;
            }
        }
    }

    pub fn remove<K: DictKey + ?Sized>(&mut self, key: &K) -> Option<Value> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    #[inline(never)]
    pub fn remove_entry<K: DictKey + ?Sized>(&mut self, key: &K) -> Option<(HStr, Value)> {
        let probe = Probe(key.key_str());
        let removed = if self.entries.len() <= SHIFT_REMOVE_MAX {
            self.entries.shift_remove_full(&probe)
        } else {
            let last = self.entries.len() - 1;
            let r = self.entries.swap_remove_full(&probe);
            if matches!(r, Some((slot, _, _)) if slot != last) {
                self.sorted = false;
            }
            r
        };
        let (_, k, v) = removed?;
        self.order.take();
        Some((k, v))
    }

    /// Keeps the entries `keep` accepts (visited in key order).
    pub fn retain(&mut self, mut keep: impl FnMut(&HStr, &mut Value) -> bool) {
        self.sort_in_place();
        self.entries.retain(|k, v| keep(k, v));
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.sorted = true;
        self.order.take();
    }

    pub fn reserve(&mut self, n: usize) {
        self.entries.reserve(n);
    }

    /// Puts the slots in key order (no-op when they are), so later walks go direct.
    #[inline]
    pub fn sort_in_place(&mut self) {
        if !self.sorted {
            self.sort_slots();
        }
    }

    #[inline(never)]
    fn sort_slots(&mut self) {
        self.entries.sort_unstable_keys();
        self.sorted = true;
        self.order.take();
    }

    /// The slots in key order, or None when slot order is key order.
    #[inline]
    fn key_order(&self) -> Option<&[u32]> {
        if self.sorted {
            return None;
        }
        Some(self.order.get_or_init(|| self.sorted_slots()))
    }

    #[inline(never)]
    fn sorted_slots(&self) -> Box<[u32]> {
        let entries = self.entries.as_slice();
        let key = |slot: u32| entries.get_index(slot as usize).map(|(k, _)| k.as_bytes());
        let mut slots: Vec<u32> = (0..entries.len() as u32).collect();
        slots.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));
        slots.into_boxed_slice()
    }

    /// Entries in key order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        Iter { entries: self.entries.as_slice(), order: self.key_order(), front: 0, back: self.entries.len() }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &HStr> + ExactSizeIterator + Clone + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Values in slot order, for walks whose outcome does not depend on
    /// order (drops, size sums): no key order is computed.
    pub fn values_unordered(&self) -> indexmap::map::Values<'_, HStr, Value> {
        self.entries.values()
    }

    /// `into_values` in slot order (see `values_unordered`).
    pub fn into_values_unordered(self) -> indexmap::map::IntoValues<HStr, Value> {
        self.entries.into_values()
    }

    /// Entries in key order, values writable.
    pub fn iter_mut(&mut self) -> indexmap::map::IterMut<'_, HStr, Value> {
        self.sort_in_place();
        self.entries.iter_mut()
    }

    pub fn values_mut(&mut self) -> indexmap::map::ValuesMut<'_, HStr, Value> {
        self.sort_in_place();
        self.entries.values_mut()
    }

    pub fn into_keys(mut self) -> indexmap::map::IntoKeys<HStr, Value> {
        self.sort_in_place();
        self.entries.into_keys()
    }

    pub fn into_values(mut self) -> indexmap::map::IntoValues<HStr, Value> {
        self.sort_in_place();
        self.entries.into_values()
    }

    /// The first entry whose key sorts after `key` (a resumable ordered walk).
    #[inline(never)]
    pub fn next_after(&self, key: &str) -> Option<(&HStr, &Value)> {
        let it = self.iter();
        let n = self.entries.len();
        // Binary search over key-order positions.
        let (mut lo, mut hi) = (0, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match it.at(mid) {
                Some((k, _)) if k.as_bytes() <= key.as_bytes() => lo = mid + 1,
                _ => hi = mid,
            }
        }
        it.at(lo)
    }

    /// The value for `key`, inserted first when missing.
    pub fn entry(&mut self, key: HStr) -> Entry<'_> {
        Entry { map: self, key }
    }

    pub fn first_key_value(&self) -> Option<(&HStr, &Value)> {
        self.iter().next()
    }

    pub fn last_key_value(&self) -> Option<(&HStr, &Value)> {
        self.iter().next_back()
    }
}

/// A key of a dict that may not be there yet (see `DictMap::entry`).
pub struct Entry<'a> {
    map: &'a mut DictMap,
    key: HStr,
}

impl<'a> Entry<'a> {
    pub fn or_insert_with(self, make: impl FnOnce() -> Value) -> &'a mut Value {
        let slot = match self.map.entries.get_index_of(&Probe(&self.key)) {
            Some(slot) => slot,
            None => self.map.insert_full(self.key, make()).0,
        };
        &mut self.map.entries[slot]
    }

    pub fn or_insert(self, value: Value) -> &'a mut Value {
        self.or_insert_with(|| value)
    }
}

/// The entries of a dict in key order.
#[derive(Clone)]
pub struct Iter<'a> {
    entries: &'a Slice<HStr, Value>,
    order: Option<&'a [u32]>,
    front: usize,
    back: usize,
}

impl<'a> Iter<'a> {
    #[inline]
    fn at(&self, i: usize) -> Option<(&'a HStr, &'a Value)> {
        let slot = match self.order {
            Some(order) => *order.get(i)? as usize,
            None => i,
        };
        self.entries.get_index(slot)
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a HStr, &'a Value);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        let item = self.at(self.front);
        self.front += 1;
        item
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.front >= self.back {
            return None;
        }
        self.back -= 1;
        self.at(self.back)
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a DictMap {
    type Item = (&'a HStr, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for DictMap {
    type Item = (HStr, Value);
    type IntoIter = indexmap::map::IntoIter<HStr, Value>;
    /// Entries in key order.
    fn into_iter(mut self) -> Self::IntoIter {
        self.sort_in_place();
        self.entries.into_iter()
    }
}

impl FromIterator<(HStr, Value)> for DictMap {
    /// Later duplicates overwrite earlier values; the result is sorted once.
    fn from_iter<I: IntoIterator<Item = (HStr, Value)>>(iter: I) -> DictMap {
        let iter = iter.into_iter();
        let mut map = DictMap::with_capacity(iter.size_hint().0);
        map.extend(iter);
        map.sort_in_place();
        map
    }
}

impl Extend<(HStr, Value)> for DictMap {
    fn extend<I: IntoIterator<Item = (HStr, Value)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl<const N: usize> From<[(HStr, Value); N]> for DictMap {
    fn from(entries: [(HStr, Value); N]) -> DictMap {
        entries.into_iter().collect()
    }
}

impl<K: DictKey + ?Sized> std::ops::Index<&K> for DictMap {
    type Output = Value;
    fn index(&self, key: &K) -> &Value {
        self.get(key).expect("no entry found for key")
    }
}

impl fmt::Debug for DictMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A small deterministic generator (xorshift), so the tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn key(n: u64) -> HStr {
        // Mixed lengths and a shared prefix, so byte order is not numeric order.
        Rc::new(if n.is_multiple_of(3) { format!("k{n}") } else { format!("{}", n * 7919 % 1000) })
    }

    fn same_as_model(d: &DictMap, model: &BTreeMap<HStr, i64>) {
        assert_eq!(d.len(), model.len());
        let got: Vec<(String, i64)> = d
            .iter()
            .map(|(k, v)| match v {
                Value::Int(i) => (k.to_string(), *i),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let want: Vec<(String, i64)> = model.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(got, want);
        let back: Vec<&HStr> = d.keys().rev().collect();
        let want_back: Vec<&HStr> = model.keys().rev().collect();
        assert_eq!(back, want_back);
        for (k, v) in model {
            assert!(matches!(d.get(k.as_str()), Some(Value::Int(i)) if i == v));
        }
    }

    #[test]
    fn random_inserts_and_removes_walk_in_key_order() {
        for seed in 1..40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut d = DictMap::new();
            let mut model: BTreeMap<HStr, i64> = BTreeMap::new();
            let span = 4 + rng.below(60);
            for step in 0..300i64 {
                let k = key(rng.below(span));
                match rng.below(5) {
                    0..=2 => {
                        assert_eq!(d.insert(k.clone(), Value::Int(step)).is_some(), model.insert(k, step).is_some());
                    }
                    _ => {
                        assert_eq!(d.remove(&k).is_some(), model.remove(&k).is_some());
                    }
                }
                if step % 7 == 0 {
                    same_as_model(&d, &model);
                }
            }
            same_as_model(&d, &model);
            let owned: Vec<String> = d.clone().into_iter().map(|(k, _)| k.to_string()).collect();
            assert_eq!(owned, model.keys().map(|k| k.to_string()).collect::<Vec<_>>());
        }
    }

    #[test]
    fn existing_key_keeps_its_rc_and_slot() {
        let a = Rc::new("a".to_string());
        let mut d = DictMap::new();
        d.insert(Rc::new("b".into()), Value::Int(1));
        d.insert(a.clone(), Value::Int(2));
        let (slot, _, _) = d.get_full("a").unwrap();
        d.insert(Rc::new("a".into()), Value::Int(3));
        let (slot2, k, v) = d.get_full("a").unwrap();
        assert_eq!(slot, slot2);
        assert!(Rc::ptr_eq(k, &a));
        assert!(matches!(v, Value::Int(3)));
    }

    #[test]
    fn equality_order_and_hash_agree_with_a_key_ordered_model() {
        use crate::runtime::value::{compare_values, values_equal};
        let mut rng = Rng(77);
        for _ in 0..200 {
            let build = |rng: &mut Rng| {
                let mut d = DictMap::new();
                let mut model = BTreeMap::new();
                for _ in 0..rng.below(6) {
                    let k = key(rng.below(8));
                    let v = rng.below(3) as i64;
                    d.insert(k.clone(), Value::Int(v));
                    model.insert(k, v);
                }
                if rng.below(2) == 0 {
                    if let Some(k) = model.keys().next().cloned() {
                        d.remove(&k);
                        model.remove(&k);
                    }
                }
                (Value::dict(d), model)
            };
            let (a, ma) = build(&mut rng);
            let (b, mb) = build(&mut rng);
            assert_eq!(values_equal(&a, &b), ma == mb);
            let via_model = Value::dict(ma.iter().map(|(k, v)| (k.clone(), Value::Int(*v))).collect());
            assert!(values_equal(&a, &via_model));
            assert_eq!(a.display(), via_model.display());
            assert_eq!(compare_values(&a, &b), compare_values(&via_model, &b));
        }
    }

    #[test]
    fn many_out_of_order_inserts_sort_once_per_batch() {
        let mut d = DictMap::new();
        for i in (0..10_000u64).rev() {
            d.insert(Rc::new(format!("{i:05}")), Value::Int(i as i64));
        }
        let keys: Vec<&HStr> = d.keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        // The cached order is reused until the key set changes.
        let first = d.key_order().map(|o| o.as_ptr());
        assert_eq!(first, d.key_order().map(|o| o.as_ptr()));
        for i in 0..5_000u64 {
            d.remove(format!("{:05}", i * 2).as_str());
        }
        assert_eq!(d.len(), 5_000);
        let keys: Vec<&HStr> = d.keys().collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(keys[0].as_str(), "00001");
    }
}
