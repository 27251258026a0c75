//! Noticing a proxy in front of nginx that `realip` was not told about.
//!
//! Behind a load balancer or CDN without `set_real_ip_from` and `real_ip_header`, every
//! visitor arrives from the proxy's address: the module sees one client, whose rate limit
//! and failure count all visitors share, so three wrong answers block everyone. The common
//! sign is many different `X-Forwarded-For` values from one address (a browser connecting
//! directly sends none, or always the same). [`ForwardedSketch`] counts them per address in
//! a small fixed table, per worker, with no allocation: the glue looks only when the header
//! is there, and warns once.
//!
//! The address stays nginx's (after `realip`); the header is only ever hashed here, never
//! read as an address.

use std::net::IpAddr;

/// Addresses followed at once. A busy proxy keeps its slot (see [`Slot::credit`]); a
/// client that sends the header now and then does not push it out.
const SLOTS: usize = 64;

/// Bits of the per-address set of header hashes: 32 distinct values set at most 32 bits, so
/// fewer than [`ForwardedSketch::DISTINCT`] values can never look like enough.
const BITS: usize = 256;

/// How far a slot's holder is ahead of the addresses that collide with it.
const MOST_CREDIT: u8 = 8;

#[derive(Clone, Copy)]
struct Slot {
    /// The address, as an IPv6 address (IPv4 mapped); 0 for a free slot.
    address: u128,
    /// The header values seen from it, as bits of their hashes.
    seen: [u64; BITS / 64],
    /// Raised by each request of the holder, lowered by each request of another address that
    /// maps here; the slot changes hands at zero.
    credit: u8,
}

const FREE: Slot = Slot {
    address: 0,
    seen: [0; BITS / 64],
    credit: 0,
};

/// Distinct `X-Forwarded-For` values per client address, for a handful of addresses: a few
/// kilobytes per worker, fixed.
pub struct ForwardedSketch {
    slots: [Slot; SLOTS],
    /// The warning was given: nothing more to watch in this worker.
    warned: bool,
}

impl Default for ForwardedSketch {
    fn default() -> Self {
        Self::new()
    }
}

impl ForwardedSketch {
    /// Different header values from one address that make it a proxy.
    pub const DISTINCT: u32 = 32;

    pub const fn new() -> ForwardedSketch {
        ForwardedSketch {
            slots: [FREE; SLOTS],
            warned: false,
        }
    }

    /// Whether the worker has warned already (then there is nothing left to look at).
    pub fn warned(&self) -> bool {
        self.warned
    }

    /// Notes a request from `address` that carried `X-Forwarded-For: forwarded_for`.
    /// `true` exactly once: the first time one address has sent [`Self::DISTINCT`] different
    /// values.
    pub fn observe(&mut self, address: IpAddr, forwarded_for: &[u8]) -> bool {
        if self.warned {
            return false;
        }
        let key = match address {
            IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
            IpAddr::V6(v6) => u128::from(v6),
        };
        let index = (fnv1a(&key.to_le_bytes()) % SLOTS as u64) as usize;
        let Some(slot) = self.slots.get_mut(index) else {
            return false;
        };
        if slot.address != key {
            if slot.credit > 0 {
                slot.credit -= 1;
                return false;
            }
            *slot = Slot {
                address: key,
                ..FREE
            };
        }
        let bit = (fnv1a(forwarded_for) % BITS as u64) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        let Some(seen) = slot.seen.get_mut(word) else {
            return false;
        };
        *seen |= mask;
        slot.credit = slot.credit.saturating_add(1).min(MOST_CREDIT);
        let distinct: u32 = slot.seen.iter().map(|w| w.count_ones()).sum();
        self.warned = distinct >= Self::DISTINCT;
        self.warned
    }
}

/// FNV-1a: a cheap, fixed hash (nothing here is worth attacking: a forged header can at
/// most cause the one warning, or fail to).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_proxy_forwarding_many_visitors_is_noticed_once() {
        let mut sketch = ForwardedSketch::new();
        let proxy = ip("10.0.0.2");
        let mut warnings = 0;
        let mut first = None;
        for n in 0..500u32 {
            let visitor = format!("203.0.113.{}, 10.0.0.1", n % 250);
            if sketch.observe(proxy, visitor.as_bytes()) {
                warnings += 1;
                first.get_or_insert(n);
            }
        }
        assert_eq!(warnings, 1);
        // At least DISTINCT values are needed; hash collisions may need a few more.
        let first = first.unwrap();
        assert!((31..64).contains(&first), "warned after {first} values");
        assert!(sketch.warned());
    }

    #[test]
    fn one_client_repeating_its_header_is_not_a_proxy() {
        let mut sketch = ForwardedSketch::new();
        for _ in 0..10_000 {
            assert!(!sketch.observe(ip("192.0.2.7"), b"198.51.100.4"));
        }
        // Nor many clients with a header each (realip in place: address and header agree).
        for n in 0..10_000u32 {
            let address = IpAddr::from((0xC633_6400u32 | (n & 0xff)).to_be_bytes());
            let header = address.to_string();
            assert!(!sketch.observe(address, header.as_bytes()), "{n}");
        }
    }

    #[test]
    fn fewer_distinct_values_than_the_threshold_never_warn() {
        let mut sketch = ForwardedSketch::new();
        for round in 0..100 {
            for n in 0..ForwardedSketch::DISTINCT - 1 {
                let value = format!("192.0.2.{n}");
                assert!(
                    !sketch.observe(ip("2001:db8::1"), value.as_bytes()),
                    "{round}"
                );
            }
        }
    }

    #[test]
    fn a_busy_proxy_keeps_its_slot_among_other_clients() {
        let mut sketch = ForwardedSketch::new();
        let proxy = ip("10.0.0.2");
        let mut warned = false;
        for n in 0..2_000u32 {
            // Between two forwarded requests, a passer-by with a header of its own, from
            // ever new addresses (some land on the proxy's slot).
            let passer = IpAddr::from((0xC000_0200u32 + n).to_be_bytes());
            warned |= sketch.observe(passer, b"127.0.0.1");
            let visitor = format!("198.51.100.{}", n % 200);
            warned |= sketch.observe(proxy, visitor.as_bytes());
        }
        assert!(warned);
    }
}
