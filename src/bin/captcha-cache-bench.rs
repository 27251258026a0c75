//! Measures a direct-mapped cache (`src/cache.rs`, which the crawler verdicts use) against the
//! `lru` crate's `LruCache` (which the pass cache uses since this measurement) on the pass
//! cache's workload: keys of about 110 bytes (a pass token),
//! 4,096 entries, clients drawn uniformly or with a few heavy ones. Prints, per workload,
//! the hit rate and the nanoseconds per request (a lookup, and on a miss a store), median of
//! five rounds; then what a miss costs the module (the pass checked in full: the client's
//! binding and the HMAC), and the total per request, cache and misses together. Run by hand
//! (docs/performance.md, "The workers' caches"):
//!
//! ```text
//! cargo run --release --no-default-features --features tools --bin captcha-cache-bench
//! ```

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Instant;

use captchaify::cache::ByteCache;
use captchaify::challenge::token::{check_pass, issue_pass, ClientBinding, Secrets};
use captchaify::policy::Hardness;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SLOTS: usize = 4096;
const TOKEN_LEN: usize = 110;
const REQUESTS: usize = 2_000_000;
const ROUNDS: usize = 5;

/// What a cache entry holds in the pass cache: expiry, hardness, a table key (about 40 bytes).
#[derive(Clone, Copy)]
struct Value {
    _expires: u64,
    _client: u64,
    _key: [u8; 16],
}

const VALUE: Value = Value {
    _expires: 1,
    _client: 2,
    _key: [3; 16],
};

trait Cache {
    /// One request: a lookup, and a store on a miss. Returns whether it hit.
    fn request(&mut self, key: &[u8]) -> bool;
}

struct Direct(ByteCache<Value, 128>);

impl Cache for Direct {
    fn request(&mut self, key: &[u8]) -> bool {
        if self.0.get(key).is_some() {
            return true;
        }
        self.0.put(key, VALUE);
        false
    }
}

/// `LruCache` keyed by owned bytes, hashed with the same fast seeded hasher as ours.
struct Lru(lru::LruCache<Box<[u8]>, Value, foldhash::fast::RandomState>);

impl Cache for Lru {
    fn request(&mut self, key: &[u8]) -> bool {
        if self.0.get(key).is_some() {
            return true;
        }
        self.0.put(key.into(), VALUE);
        false
    }
}

/// The clients' tokens and the order they come in.
fn workload(clients: usize, heavy: bool, seed: u64) -> (Vec<Vec<u8>>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tokens = (0..clients)
        .map(|_| (0..TOKEN_LEN).map(|_| rng.gen_range(b'A'..=b'Z')).collect())
        .collect();
    let order = (0..REQUESTS)
        .map(|_| {
            // Heavy: a tenth of the clients send nine requests in ten.
            let tenth = (clients / 10).max(1);
            let client = match heavy && rng.gen_bool(0.9) {
                true => rng.gen_range(0..tenth),
                false => rng.gen_range(0..clients),
            };
            client as u32
        })
        .collect();
    (tokens, order)
}

/// Median nanoseconds per request and the hit rate of one cache on one workload.
fn measure(make: &dyn Fn() -> Box<dyn Cache>, tokens: &[Vec<u8>], order: &[u32]) -> (f64, f64) {
    let mut times = Vec::new();
    let mut hit_rate = 0.0;
    for _ in 0..ROUNDS {
        let mut cache = make();
        let start = Instant::now();
        let mut hits = 0usize;
        for &client in order {
            hits += usize::from(cache.request(black_box(&tokens[client as usize])));
        }
        times.push(start.elapsed().as_nanos() as f64 / order.len() as f64);
        hit_rate = hits as f64 / order.len() as f64;
    }
    times.sort_by(f64::total_cmp);
    (times[ROUNDS / 2], hit_rate)
}

/// Nanoseconds the module spends on a pass that is not in the cache: the client's binding
/// (SHA-256 of its address and user agent) and the pass's full check (HMAC-SHA256), median
/// of five rounds.
fn miss_cost() -> f64 {
    let Some(secrets) = Secrets::new(vec![7; 32], None) else {
        return f64::NAN;
    };
    let address = std::net::IpAddr::from([192, 0, 2, 1]);
    let agent = b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let binding = ClientBinding::new(address, agent);
    let token = issue_pass(&secrets, binding, Hardness::NORMAL, u64::MAX / 2, [1; 16]);
    let checks = 200_000;
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..checks {
            let binding = ClientBinding::new(black_box(address), black_box(agent));
            let pass = check_pass(
                &secrets,
                black_box(token.as_bytes()),
                binding,
                Hardness::EASY,
                1,
            );
            assert!(pass.is_ok(), "the minted pass must check");
        }
        times.push(start.elapsed().as_nanos() as f64 / f64::from(checks));
    }
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

fn main() {
    let direct = || -> Box<dyn Cache> { Box::new(Direct(ByteCache::new(SLOTS))) };
    let lru = || -> Box<dyn Cache> {
        let size = NonZeroUsize::new(SLOTS).unwrap_or(NonZeroUsize::MIN);
        Box::new(Lru(lru::LruCache::with_hasher(
            size,
            foldhash::fast::RandomState::default(),
        )))
    };
    println!(
        "{SLOTS} entries, {TOKEN_LEN}-byte keys, {REQUESTS} requests, median of {ROUNDS} rounds"
    );
    let miss = miss_cost();
    println!("a miss costs the module {miss:.0} ns (binding and HMAC check of the pass)");
    println!(
        "{:<28} {:>9} {:>7} {:>9} {:>7} {:>12} {:>12}",
        "clients", "direct ns", "hits", "lru ns", "hits", "direct total", "lru total"
    );
    for (clients, heavy) in [
        (1_000, false),
        (4_096, false),
        (8_192, false),
        (16_384, false),
        (16_384, true),
        (100_000, true),
    ] {
        let (tokens, order) = workload(clients, heavy, clients as u64);
        let (d_ns, d_hits) = measure(&direct, &tokens, &order);
        let (l_ns, l_hits) = measure(&lru, &tokens, &order);
        let label = match heavy {
            true => format!("{clients} (a tenth send 90%)"),
            false => format!("{clients} (uniform)"),
        };
        let total = |ns: f64, hits: f64| ns + (1.0 - hits) * miss;
        println!(
            "{label:<28} {d_ns:>9.1} {:>6.1}% {l_ns:>9.1} {:>6.1}% {:>12.0} {:>12.0}",
            d_hits * 100.0,
            l_hits * 100.0,
            total(d_ns, d_hits),
            total(l_ns, l_hits),
        );
    }
}
