//! The dict representation: hashed lookups, key-ordered iteration.
//!
//! Harn shows and walks a dict in key (byte) order. Entries live in a dense
//! vector of slots; an entry has a stable *slot* (its index) that a property
//! cache can remember. A dict of at most `SMALL_MAX` entries is found by a
//! linear scan of its slots (one allocation, which is most dicts: records,
//! parsed JSON objects); once it grows past that it also keeps a hash index
//! (slot numbers in a `hashbrown::HashTable`, Fx hash), so a lookup is one
//! probe. The slots are usually already in key order: a dict built all at
//! once is sorted when it is finished, and an insert of a key past the last
//! one keeps it so. Otherwise (inserts out of order, a removal that moved an
//! entry) the dict is marked unsorted and an ordered walk goes through a
//! key-order permutation computed on first use and kept until the next
//! change of the key set; a batch of n out-of-order inserts costs one
//! O(n log n) sort, not n of them. Methods that walk entries mutably or by
//! value sort the entries in place first (they own the dict then).

use std::cell::OnceCell;
use std::fmt;
use std::hash::BuildHasher;
use std::rc::Rc;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::runtime::value::{HStr, Value};

/// Dicts up to this long have no hash index: a scan of a few slots is
/// cheaper than hashing, and the index would be a second allocation.
const SMALL_MAX: usize = 8;

/// Dicts at most this long remove by shifting (keeping slots in key order);
/// longer ones move the last entry into the hole (O(1), order mended lazily).
const SHIFT_REMOVE_MAX: usize = 16;

/// A Harn dict: string keys to values, walked in key byte order.
pub struct DictMap {
    slots: Vec<(HStr, Value)>,
    /// Slot numbers by key hash; kept only once the dict has grown past
    /// `SMALL_MAX` (`indexed`), then it covers every slot.
    index: HashTable<u32>,
    indexed: bool,
    /// The entries' slot order is key order.
    sorted: bool,
    /// When not `sorted`: slots in key order, computed on first ordered walk.
    order: OnceCell<Box<[u32]>>,
}

// Lookups and inserts are out of line: the probe is sizeable code, and
// inlined into the dispatch loop's ops it cost every other op registers.

#[inline]
fn hash_key(key: &str) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// `a == b`, trying the pointer first: literal keys and property names are
/// one interned `Rc`, so a hit is usually the same bytes.
#[inline(always)]
fn same_key(a: &str, b: &str) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}

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

impl Clone for DictMap {
    /// Out of line: `Rc::make_mut` on a dict sits in ops the dispatch loop inlines.
    #[inline(never)]
    fn clone(&self) -> DictMap {
        DictMap {
            slots: self.slots.clone(),
            index: self.index.clone(),
            indexed: self.indexed,
            sorted: self.sorted,
            order: self.order.clone(),
        }
    }
}

impl Default for DictMap {
    fn default() -> DictMap {
        DictMap::new()
    }
}

impl DictMap {
    pub fn new() -> DictMap {
        DictMap::with_capacity(0)
    }

    pub fn with_capacity(n: usize) -> DictMap {
        DictMap { slots: Vec::with_capacity(n), index: HashTable::new(), indexed: false, sorted: true, order: OnceCell::new() }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The slot holding `key`.
    #[inline(never)]
    fn find(&self, key: &str) -> Option<usize> {
        if !self.indexed {
            return self.slots.iter().position(|(k, _)| same_key(k, key));
        }
        let slots = &self.slots;
        self.index.find(hash_key(key), |&s| same_key(&slots[s as usize].0, key)).map(|&s| s as usize)
    }

    #[inline(never)]
    pub fn get<K: DictKey + ?Sized>(&self, key: &K) -> Option<&Value> {
        self.find(key.key_str()).map(|s| &self.slots[s].1)
    }

    #[inline(never)]
    pub fn get_key_value<K: DictKey + ?Sized>(&self, key: &K) -> Option<(&HStr, &Value)> {
        self.find(key.key_str()).map(|s| {
            let (k, v) = &self.slots[s];
            (k, v)
        })
    }

    #[inline(never)]
    pub fn contains_key<K: DictKey + ?Sized>(&self, key: &K) -> bool {
        self.find(key.key_str()).is_some()
    }

    #[inline(never)]
    pub fn get_mut<K: DictKey + ?Sized>(&mut self, key: &K) -> Option<&mut Value> {
        self.find(key.key_str()).map(|s| &mut self.slots[s].1)
    }

    /// The slot of `key` and its entry (slots are what a property cache remembers).
    #[inline(never)]
    pub fn get_full<K: DictKey + ?Sized>(&self, key: &K) -> Option<(usize, &HStr, &Value)> {
        self.find(key.key_str()).map(|s| {
            let (k, v) = &self.slots[s];
            (s, k, v)
        })
    }

    /// The entry at `slot`, if there is one. Slots are not key order.
    #[inline(always)]
    pub fn slot(&self, slot: usize) -> Option<(&HStr, &Value)> {
        self.slots.get(slot).map(|(k, v)| (k, v))
    }

    /// The value at `slot`, writable. Slots are not key order.
    #[inline]
    pub fn slot_mut(&mut self, slot: usize) -> Option<(&HStr, &mut Value)> {
        self.slots.get_mut(slot).map(|(k, v)| (&*k, v))
    }

    /// Sets `key` to `value`; an existing key keeps its `Rc` and slot. Returns the old value.
    #[inline]
    pub fn insert(&mut self, key: HStr, value: Value) -> Option<Value> {
        self.insert_full(key, value).1
    }

    /// `insert`, also giving the entry's slot.
    #[inline(never)]
    pub fn insert_full(&mut self, key: HStr, value: Value) -> (usize, Option<Value>) {
        if let Some(s) = self.find(&key) {
            return (s, Some(std::mem::replace(&mut self.slots[s].1, value)));
        }
        let slot = self.slots.len();
        let hash = if self.indexed { Some(hash_key(&key)) } else { None };
        self.slots.push((key, value));
        match hash {
            Some(hash) => {
                let slots = &self.slots;
                self.index.insert_unique(hash, slot as u32, |&s| hash_key(&slots[s as usize].0));
            }
            None if self.slots.len() > SMALL_MAX => self.build_index(),
            None => {}
        }
        self.key_added(slot);
        (slot, None)
    }

    /// (Re)builds the hash index over every slot and marks the dict indexed.
    #[cold]
    #[inline(never)]
    fn build_index(&mut self) {
        let slots = &self.slots;
        let hasher = |&s: &u32| hash_key(&slots[s as usize].0);
        self.index.clear();
        self.index.reserve(slots.capacity().max(slots.len()), hasher);
        for (s, (k, _)) in slots.iter().enumerate() {
            self.index.insert_unique(hash_key(k), s as u32, hasher);
        }
        self.indexed = true;
    }

    /// Keeps `sorted`/`order` true to the key set after a new key took `slot` (the last one).
    fn key_added(&mut self, slot: usize) {
        self.order.take();
        if self.sorted && slot > 0 && self.slots[slot - 1].0.as_bytes() > self.slots[slot].0.as_bytes() {
            self.sorted = false;
        }
    }

    pub fn remove<K: DictKey + ?Sized>(&mut self, key: &K) -> Option<Value> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    #[inline(never)]
    pub fn remove_entry<K: DictKey + ?Sized>(&mut self, key: &K) -> Option<(HStr, Value)> {
        let key = key.key_str();
        let slot = self.find(key)?;
        let last = self.slots.len() - 1;
        if self.indexed {
            if let Ok(found) = self.index.find_entry(hash_key(key), |&s| s as usize == slot) {
                found.remove();
            }
        }
        let removed = if self.slots.len() <= SHIFT_REMOVE_MAX {
            let removed = self.slots.remove(slot);
            if self.indexed {
                for s in self.index.iter_mut() {
                    if *s as usize > slot {
                        *s -= 1;
                    }
                }
            }
            removed
        } else {
            let removed = self.slots.swap_remove(slot);
            if slot != last {
                self.sorted = false;
                if self.indexed {
                    let moved = hash_key(&self.slots[slot].0);
                    if let Some(s) = self.index.find_mut(moved, |&s| s as usize == last) {
                        *s = slot as u32;
                    }
                }
            }
            removed
        };
        self.order.take();
        Some(removed)
    }

    /// Keeps the entries `keep` accepts (visited in key order).
    pub fn retain(&mut self, mut keep: impl FnMut(&HStr, &mut Value) -> bool) {
        self.sort_in_place();
        let before = self.slots.len();
        self.slots.retain_mut(|(k, v)| keep(k, v));
        if self.indexed && self.slots.len() != before {
            self.build_index();
        }
    }

    pub fn clear(&mut self) {
        self.slots.clear();
        self.index = HashTable::new();
        self.indexed = false;
        self.sorted = true;
        self.order.take();
    }

    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        if self.indexed {
            let slots = &self.slots;
            self.index.reserve(n, |&s| hash_key(&slots[s as usize].0));
        }
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
        self.slots.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if self.indexed {
            self.build_index();
        }
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
        let key = |slot: u32| self.slots[slot as usize].0.as_bytes();
        let mut order: Vec<u32> = (0..self.slots.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| key(a).cmp(key(b)));
        order.into_boxed_slice()
    }

    /// Entries in key order.
    #[inline]
    pub fn iter(&self) -> Iter<'_> {
        Iter { entries: &self.slots, order: self.key_order(), front: 0, back: self.slots.len() }
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &HStr> + ExactSizeIterator + Clone + '_ {
        self.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Values in slot order, for walks whose outcome does not depend on
    /// order (drops, size sums): no key order is computed.
    pub fn values_unordered(&self) -> impl DoubleEndedIterator<Item = &Value> + ExactSizeIterator + Clone + '_ {
        self.slots.iter().map(|(_, v)| v)
    }

    /// Entries in slot order (see `values_unordered`).
    pub fn iter_unordered(&self) -> impl DoubleEndedIterator<Item = (&HStr, &Value)> + ExactSizeIterator + Clone + '_ {
        self.slots.iter().map(|(k, v)| (k, v))
    }

    /// `into_values` in slot order (see `values_unordered`).
    pub fn into_values_unordered(self) -> impl DoubleEndedIterator<Item = Value> + ExactSizeIterator {
        self.slots.into_iter().map(|(_, v)| v)
    }

    /// Entries in key order, values writable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&HStr, &mut Value)> + ExactSizeIterator + '_ {
        self.sort_in_place();
        self.slots.iter_mut().map(|(k, v)| (&*k, v))
    }

    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut Value> + ExactSizeIterator + '_ {
        self.sort_in_place();
        self.slots.iter_mut().map(|(_, v)| v)
    }

    pub fn into_keys(mut self) -> impl DoubleEndedIterator<Item = HStr> + ExactSizeIterator {
        self.sort_in_place();
        self.slots.into_iter().map(|(k, _)| k)
    }

    pub fn into_values(mut self) -> impl DoubleEndedIterator<Item = Value> + ExactSizeIterator {
        self.sort_in_place();
        self.slots.into_iter().map(|(_, v)| v)
    }

    /// The first entry whose key sorts after `key` (a resumable ordered walk).
    #[inline(never)]
    pub fn next_after(&self, key: &str) -> Option<(&HStr, &Value)> {
        let it = self.iter();
        let n = self.slots.len();
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
        let slot = match self.map.find(&self.key) {
            Some(slot) => slot,
            None => self.map.insert_full(self.key, make()).0,
        };
        &mut self.map.slots[slot].1
    }

    pub fn or_insert(self, value: Value) -> &'a mut Value {
        self.or_insert_with(|| value)
    }
}

/// The entries of a dict in key order.
#[derive(Clone)]
pub struct Iter<'a> {
    entries: &'a [(HStr, Value)],
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
        self.entries.get(slot).map(|(k, v)| (k, v))
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
    type IntoIter = std::vec::IntoIter<(HStr, Value)>;
    /// Entries in key order.
    fn into_iter(mut self) -> Self::IntoIter {
        self.sort_in_place();
        self.slots.into_iter()
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
    use crate::runtime::test_rng::TestRng as Rng;

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

    /// Every key is found by lookup and by its slot, in both modes.
    fn slots_agree(d: &DictMap) {
        for (k, v) in d.iter() {
            let (slot, k2, v2) = d.get_full(k.as_str()).unwrap();
            assert!(Rc::ptr_eq(k, k2) && std::ptr::eq(v, v2));
            let (k3, _) = d.slot(slot).unwrap();
            assert!(Rc::ptr_eq(k, k3));
        }
        assert!(!d.indexed || d.index.len() == d.len());
    }

    #[test]
    fn small_dicts_scan_and_grow_into_an_index() {
        let mut d = DictMap::new();
        let mut model = BTreeMap::new();
        for i in (0..SMALL_MAX as u64).rev() {
            d.insert(key(i), Value::Int(i as i64));
            model.insert(key(i), i as i64);
            assert!(!d.indexed, "{} entries need no index", d.len());
            slots_agree(&d);
        }
        same_as_model(&d, &model);
        let small_clone = d.clone();
        d.insert(key(100), Value::Int(100));
        model.insert(key(100), 100);
        assert!(d.indexed);
        slots_agree(&d);
        same_as_model(&d, &model);
        // The clone taken before the growth is untouched and still small.
        assert_eq!(small_clone.len(), SMALL_MAX);
        assert!(!small_clone.indexed && small_clone.get(key(100).as_str()).is_none());
        // Shrinking keeps the index true to the slots (shift and swap removals).
        for i in 101..140u64 {
            d.insert(key(i), Value::Int(i as i64));
            model.insert(key(i), i as i64);
        }
        for i in (0..140u64).step_by(3) {
            assert_eq!(d.remove(&key(i)).is_some(), model.remove(&key(i)).is_some());
            slots_agree(&d);
        }
        same_as_model(&d, &model);
        d.retain(|k, _| k.len() % 2 == 0);
        model.retain(|k, _| k.len() % 2 == 0);
        slots_agree(&d);
        same_as_model(&d, &model);
        d.clear();
        assert!(!d.indexed && d.is_empty() && d.get("k3").is_none());
    }

    #[test]
    fn small_lookup_matches_equal_text_in_another_rc() {
        let mut d = DictMap::new();
        d.insert(Rc::new("name".into()), Value::Int(1));
        let other = String::from("name");
        assert!(matches!(d.get(other.as_str()), Some(Value::Int(1))));
        assert!(d.get("nam").is_none() && d.get("names").is_none());
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
