//! A worker's memory of passes it has already verified, so that a client sending the same
//! cookie on every request pays for SHA-256 and HMAC once, not each time.
//!
//! Only fully verified passes go in. A hit needs the exact same token and the same client —
//! address and user agent, compared through a hash keyed with random keys of this process, so
//! nobody can aim for a collision — and the pass must still be unexpired. Anything else takes
//! the full check. The cache is direct-mapped and fixed in size: a newcomer simply replaces
//! whatever sat in its slot.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

use crate::cache::ByteCache;
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

#[derive(Debug)]
pub struct PassCache {
    passes: ByteCache<Verified, MAX_TOKEN>,
}

impl PassCache {
    pub fn new(slots: usize) -> PassCache {
        PassCache { passes: ByteCache::new(slots) }
    }

    /// The keyed hash of a client, as the cache compares it.
    pub fn client_hash(&self, address: IpAddr, user_agent: &[u8]) -> u64 {
        let mut hasher = self.passes.hasher().build_hasher();
        address.hash(&mut hasher);
        user_agent.hash(&mut hasher);
        hasher.finish()
    }

    /// The hardness and table key of a pass verified earlier for this token and client, if
    /// still valid.
    pub fn get(&self, token: &[u8], client: u64, now: u64) -> Option<(Hardness, [u8; 16])> {
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
        self.passes.put(token, Verified { client, expires, hardness, table_key });
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
        assert_eq!(cache.get(b"v1.token", me, 99), Some((Hardness::NORMAL, KEY)));
        assert_eq!(cache.get(b"v1.token", me, 100), None, "expired");
        assert_eq!(cache.get(b"v1.token", other_ip, 99), None);
        assert_eq!(cache.get(b"v1.token", other_ua, 99), None);
        assert_eq!(cache.get(b"v1.tokem", me, 99), None);
        assert_eq!(cache.get(b"v1.token.", me, 99), None);
        assert_eq!(cache.get(b"v1.toke", me, 99), None);
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
    fn keys_differ_per_cache() {
        let a = PassCache::new(8);
        let b = PassCache::new(8);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_ne!(a.client_hash(ip, b"x"), b.client_hash(ip, b"x"));
    }
}
