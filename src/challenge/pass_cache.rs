//! A worker's memory of passes it has already verified, so that a client sending the same
//! cookie on every request pays for SHA-256 and HMAC once, not each time.
//!
//! Only fully verified passes go in. A hit needs the exact same token and the same client —
//! address and user agent, compared through a hash keyed with random keys of this process, so
//! nobody can aim for a collision — and the pass must still be unexpired. Anything else takes
//! the full check. The cache holds a fixed number of passes and forgets the least recently
//! used (the `lru` crate): measured with `captcha-cache-bench` (docs/performance.md, "The
//! workers' caches"), it keeps nearly every pass while the clients fit, where a direct-mapped
//! cache lost a third of them to collisions, each loss costing a full check.
//!
//! It also remembers clients' keys in the shared rate tables: they are keyed hashes of the
//! location, the address and the pass, the same on every request of a client that keeps its
//! pass (or its connection), and deriving them cost more than the rest of its check.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use std::num::NonZeroUsize;

use lru::LruCache;

use crate::policy::Hardness;

/// Pass tokens are about 110 bytes; longer ones are not cached.
const MAX_TOKEN: usize = 128;

#[derive(Clone, Copy)]
struct Verified {
    client: u64,
    expires: u64,
    hardness: Hardness,
    /// The pass's key in the shared tables (per-token rate limits), computed once.
    table_key: [u8; 16],
}

/// A verified client's keys in the rate tables at one location.
#[derive(Clone, Copy)]
struct RateKeys {
    pass: [u8; 16],
    location: [u8; 16],
    identity: [u8; 17],
    client: [u8; 16],
    token: [u8; 16],
}

pub struct PassCache {
    /// Verified passes by token, hashed with a seed of this process (only fully verified
    /// passes go in, so nobody can fill it with tokens of their choosing).
    passes: LruCache<Box<[u8]>, Verified, foldhash::fast::RandomState>,
    /// Compares clients: SipHash with this process's random keys, so that nobody can make
    /// one client's hash match another's.
    clients: RandomState,
    rate_keys: Vec<Option<RateKeys>>,
}

impl std::fmt::Debug for PassCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PassCache({} of {} passes, {} rate keys)",
            self.passes.len(),
            self.passes.cap(),
            self.rate_keys.len()
        )
    }
}

impl PassCache {
    pub fn new(slots: usize) -> PassCache {
        PassCache {
            passes: LruCache::with_hasher(
                NonZeroUsize::new(slots).unwrap_or(NonZeroUsize::MIN),
                foldhash::fast::RandomState::default(),
            ),
            clients: RandomState::new(),
            rate_keys: vec![None; (slots / 4).max(1)],
        }
    }

    /// A client's keys in the rate tables (its own bucket and its pass's) at a location:
    /// remembered for a subject (its pass key, or its connection), the location and its
    /// identity (its address, IPv6 by the location's prefix), else made by `make` and
    /// remembered. The keys depend on nothing else, so a hit is always right; the subject
    /// picks the slot (a pass key is a keyed hash: nobody can aim at another client's).
    pub fn rate_keys(
        &mut self,
        pass: &[u8; 16],
        location: &[u8; 16],
        identity: &[u8; 17],
        make: impl FnOnce() -> ([u8; 16], [u8; 16]),
    ) -> ([u8; 16], [u8; 16]) {
        let mut index = [0u8; 8];
        index.copy_from_slice(&pass[..8]);
        let len = self.rate_keys.len() as u64;
        let slot = (u64::from_le_bytes(index) ^ u64::from(location[0])) % len;
        let Some(slot) = self.rate_keys.get_mut(slot as usize) else {
            return make();
        };
        match slot {
            Some(keys)
                if keys.pass == *pass
                    && keys.location == *location
                    && keys.identity == *identity =>
            {
                (keys.client, keys.token)
            }
            _ => {
                let (client, token) = make();
                *slot = Some(RateKeys {
                    pass: *pass,
                    location: *location,
                    identity: *identity,
                    client,
                    token,
                });
                (client, token)
            }
        }
    }

    /// The keyed hash of a client, as the cache compares it.
    pub fn client_hash(&self, address: IpAddr, user_agent: &[u8]) -> u64 {
        let mut hasher = self.clients.build_hasher();
        address.hash(&mut hasher);
        user_agent.hash(&mut hasher);
        hasher.finish()
    }

    /// The hardness and table key of a pass verified earlier for this token and client, if
    /// still valid.
    pub fn get(&mut self, token: &[u8], client: u64, now: u64) -> Option<(Hardness, [u8; 16])> {
        let pass = self.passes.get(token)?;
        (pass.client == client && pass.expires > now).then_some((pass.hardness, pass.table_key))
    }

    /// Remembers a pass that has just been fully verified for this client.
    pub fn put(
        &mut self,
        token: &[u8],
        client: u64,
        expires: u64,
        (hardness, table_key): (Hardness, [u8; 16]),
    ) {
        if token.len() > MAX_TOKEN {
            return;
        }
        self.passes.put(
            token.into(),
            Verified {
                client,
                expires,
                hardness,
                table_key,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = [7; 16];

    #[test]
    fn a_hit_needs_the_same_token_client_and_an_unexpired_pass() {
        let mut cache = PassCache::new(64);
        let me = cache.client_hash("192.0.2.1".parse().unwrap(), b"Firefox");
        let other_ip = cache.client_hash("192.0.2.2".parse().unwrap(), b"Firefox");
        let other_ua = cache.client_hash("192.0.2.1".parse().unwrap(), b"curl");
        cache.put(b"v1.token", me, 100, (Hardness::NORMAL, KEY));
        assert_eq!(
            cache.get(b"v1.token", me, 99),
            Some((Hardness::NORMAL, KEY))
        );
        assert_eq!(cache.get(b"v1.token", me, 100), None, "expired");
        assert_eq!(cache.get(b"v1.token", other_ip, 99), None);
        assert_eq!(cache.get(b"v1.token", other_ua, 99), None);
        assert_eq!(cache.get(b"v1.tokem", me, 99), None);
        assert_eq!(cache.get(b"v1.token.", me, 99), None);
        assert_eq!(cache.get(b"v1.toke", me, 99), None);
    }

    #[test]
    fn the_least_recently_used_pass_goes_first() {
        let mut cache = PassCache::new(2);
        let me = cache.client_hash("192.0.2.1".parse().unwrap(), b"Firefox");
        cache.put(b"a", me, 100, (Hardness::EASY, KEY));
        cache.put(b"b", me, 100, (Hardness::EASY, KEY));
        assert!(cache.get(b"a", me, 0).is_some());
        cache.put(b"c", me, 100, (Hardness::EASY, KEY));
        assert!(
            cache.get(b"b", me, 0).is_none(),
            "b was used least recently"
        );
        assert!(cache.get(b"a", me, 0).is_some() && cache.get(b"c", me, 0).is_some());
    }

    #[test]
    fn long_tokens_are_not_cached_and_slots_are_replaced() {
        let mut cache = PassCache::new(1);
        let me = cache.client_hash("192.0.2.1".parse().unwrap(), b"Firefox");
        let long = vec![b'a'; MAX_TOKEN + 1];
        cache.put(&long, me, 100, (Hardness::HARD, KEY));
        assert_eq!(cache.get(&long, me, 0), None);
        cache.put(b"first", me, 100, (Hardness::EASY, KEY));
        cache.put(b"second", me, 100, (Hardness::HARD, KEY));
        assert_eq!(cache.get(b"first", me, 0), None);
        assert_eq!(cache.get(b"second", me, 0), Some((Hardness::HARD, KEY)));
    }

    #[test]
    fn rate_keys_are_made_once_per_pass_location_and_identity() {
        let mut cache = PassCache::new(64);
        let made = std::cell::Cell::new(0);
        let mut keys = |pass: u8, location: u8, identity: u8| {
            cache.rate_keys(&[pass; 16], &[location; 16], &[identity; 17], || {
                made.set(made.get() + 1);
                ([pass ^ location ^ identity; 16], [made.get(); 16])
            })
        };
        assert_eq!(keys(1, 2, 3), ([0; 16], [1; 16]));
        assert_eq!(keys(1, 2, 3), ([0; 16], [1; 16]), "remembered");
        assert_eq!(made.get(), 1);
        // Another location, address or pass is another set of keys.
        assert_eq!(keys(1, 9, 3), ([11; 16], [2; 16]));
        assert_eq!(keys(1, 2, 4), ([7; 16], [3; 16]));
        assert_eq!(keys(5, 2, 3), ([4; 16], [4; 16]));
        assert_eq!(made.get(), 4);
    }

    #[test]
    fn keys_differ_per_cache() {
        let a = PassCache::new(8);
        let b = PassCache::new(8);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_ne!(a.client_hash(ip, b"x"), b.client_hash(ip, b"x"));
    }
}
