//! A worker's small memory of work already done (crawler verdicts by user agent): a
//! direct-mapped cache keyed by short byte strings. The verified passes use the `lru` crate
//! instead, which keeps more of them; docs/performance.md ("The workers' caches") measures
//! both and says why each is where it is.
//!
//! The slot is picked by a hash seeded at random in each process (foldhash: fast, and with
//! no seed to aim with, aiming many keys at one slot only evicts them, a cost the keys' owner
//! already pays); a hit needs the exact same key bytes, so no collision can ever return
//! another key's value. Fixed in size: a newcomer simply replaces whatever sat in its slot.
//! Keys longer than `MAX` bytes are never stored.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

#[derive(Clone, Copy)]
struct Slot<V, const MAX: usize> {
    key: [u8; MAX],
    len: u16,
    value: V,
}

pub struct ByteCache<V: Copy, const MAX: usize> {
    slots: Vec<Option<Slot<V, MAX>>>,
    keys: RandomState,
}

impl<V: Copy, const MAX: usize> core::fmt::Debug for ByteCache<V, MAX> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "ByteCache({} slots of up to {MAX} bytes)",
            self.slots.len()
        )
    }
}

impl<V: Copy, const MAX: usize> ByteCache<V, MAX> {
    pub fn new(slots: usize) -> Self {
        ByteCache {
            slots: vec![None; slots.max(1)],
            keys: RandomState::default(),
        }
    }

    fn index(&self, key: &[u8]) -> usize {
        (self.keys.hash_one(key) % self.slots.len() as u64) as usize
    }

    /// The value stored for exactly `key`, if its slot still holds it.
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let slot = self.slots.get(self.index(key))?.as_ref()?;
        (slot.key.get(..slot.len as usize) == Some(key)).then_some(&slot.value)
    }

    /// Stores `value` for `key` (unless the key is longer than `MAX`), replacing its slot.
    pub fn put(&mut self, key: &[u8], value: V) {
        if key.len() > MAX {
            return;
        }
        let mut stored = [0u8; MAX];
        stored[..key.len()].copy_from_slice(key);
        let index = self.index(key);
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = Some(Slot {
                key: stored,
                len: key.len() as u16,
                value,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_the_exact_key() {
        let mut cache: ByteCache<u32, 8> = ByteCache::new(16);
        cache.put(b"abc", 1);
        assert_eq!(cache.get(b"abc"), Some(&1));
        assert_eq!(cache.get(b"ab"), None);
        assert_eq!(cache.get(b"abcd"), None);
        assert_eq!(cache.get(b""), None);
        cache.put(b"abc", 2);
        assert_eq!(cache.get(b"abc"), Some(&2));
    }

    #[test]
    fn long_keys_are_not_stored_and_slots_are_replaced() {
        let mut cache: ByteCache<u32, 4> = ByteCache::new(1);
        cache.put(b"12345", 5);
        assert_eq!(cache.get(b"12345"), None);
        cache.put(b"a", 1);
        cache.put(b"b", 2);
        assert_eq!((cache.get(b"a"), cache.get(b"b")), (None, Some(&2)));
        cache.put(b"", 0);
        assert_eq!(cache.get(b""), Some(&0));
    }

    #[test]
    fn hash_keys_differ_per_cache() {
        let (a, b): (ByteCache<u8, 4>, ByteCache<u8, 4>) = (ByteCache::new(8), ByteCache::new(8));
        assert_ne!(a.keys.hash_one(b"x"), b.keys.hash_one(b"x"));
    }
}
