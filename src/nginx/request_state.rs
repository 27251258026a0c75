//! What the module remembers about one request across its passes through the phases.
//!
//! nginx wipes module contexts on every internal redirect (`index`, `try_files`,
//! `error_page`) but runs the access phase again. Like `realip`, the state therefore lives in
//! a pool cleanup of the request pool, where a later pass finds it again; the module context
//! only caches the pointer. Subrequests share the pool, so they see the main request's facts.

use core::mem::size_of;
use core::ptr;

use ngx::ffi::{ngx_http_request_t, ngx_pool_cleanup_add, ngx_pool_t};
use ngx::http::{HttpModule, Request};

use super::{client, LocConf, MainConf, Module};
use crate::challenge::token::{check_pass, looks_like_pass, ClientBinding, PASS_NAME};
use crate::policy::{
    Action, ClientFacts, Hardness, LocationPolicy, Outcome, Rates, Reputation, Standing,
    ThirdParties,
};
use crate::reputation::geoip::Country;
use crate::reputation::Source;
use crate::request::PassOrigin;
use crate::state::rate::client_identity;
use crate::state::records::FailureKeys;
use crate::state::reputation::{read_and_mark, Pending, ASK_TIMEOUT_SECS};

const MAGIC: u64 = u64::from_be_bytes(*b"cfyreqst");

pub(crate) struct RequestState {
    magic: u64,
    /// The client's address (after `realip`), read once, on the request's first pass.
    pub address: std::net::IpAddr,
    facts: Option<ClientFacts>,
    /// The action of the location that decided last.
    pub action: Option<Action>,
    /// The last decision, for `$captchaify_status` and to log a redirect's decision once.
    pub outcome: Option<Outcome>,
    /// What the rate limits said; counted once per request, by the first location with
    /// limits that the request reaches (internal redirects are not counted again).
    pub rates: Option<Rates>,
    /// The client's country and AS number, looked up on first use.
    geo: Option<GeoFacts>,
    /// What CrowdSec's decisions say, looked up on first use.
    crowdsec: Option<Option<crate::policy::Remediation>>,
    /// The request's pass candidate is not in this worker's cache: it is verified (an HMAC)
    /// only once the client is known to be within its rate limit (see `confirm_pass`).
    pass_unverified: bool,
}

/// Where the client is, from the GeoIP database or else from ip-api's answer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GeoFacts {
    pub country: Option<Country>,
    pub asn: Option<u32>,
    /// `asn` in decimal, for `$captchaify_asn`.
    asn_text: [u8; 10],
    asn_len: u8,
}

impl GeoFacts {
    fn new(country: Option<Country>, asn: Option<u32>) -> GeoFacts {
        let mut facts = GeoFacts {
            country,
            asn,
            ..GeoFacts::default()
        };
        if let Some(asn) = asn {
            let text = asn.to_string();
            let len = text.len().min(10);
            facts.asn_text[..len].copy_from_slice(&text.as_bytes()[..len]);
            facts.asn_len = len as u8;
        }
        facts
    }

    pub fn asn_text(&self) -> Option<&[u8]> {
        self.asn.and(self.asn_text.get(..usize::from(self.asn_len)))
    }
}

impl RequestState {
    /// The client facts, gathered on first use and kept for later passes, with what this
    /// location's lists and rules say about the client.
    pub fn facts(
        &mut self,
        r: &Request,
        mcf: &MainConf,
        lcf: &LocConf,
        policy: &LocationPolicy,
    ) -> ClientFacts {
        let mut facts = match self.facts {
            Some(facts) => facts,
            None => {
                let (facts, unverified) = gather_facts(r, mcf, lcf, policy, self.address);
                self.pass_unverified = unverified;
                facts
            }
        };
        // Looked up once, on the first location that applies CrowdSec's decisions.
        facts.crowdsec = match policy.crowdsec {
            true => self.crowdsec(mcf),
            false => None,
        };
        let rules = lcf.loc.geo_rules.as_ref();
        let rule = rules.and_then(|rules| {
            let geo = self.geo(mcf);
            rules.action_for(geo.country, geo.asn)
        });
        facts.standing = Standing::of(
            self.address,
            lcf.loc.allow.as_deref(),
            lcf.loc.deny.as_deref(),
            rule,
        );
        self.facts = Some(facts);
        facts
    }

    /// Verifies the request's pass candidate if it was not in the cache (one HMAC at most per
    /// request, whatever the request carries). Returns the facts with its outcome, and the
    /// pass's key when it was found valid just now (for the per-token rate limit).
    pub fn confirm_pass(
        &mut self,
        r: &Request,
        mcf: &MainConf,
    ) -> (Option<ClientFacts>, Option<[u8; 16]>) {
        let Some(mut facts) = self.facts else {
            return (None, None);
        };
        if !std::mem::take(&mut self.pass_unverified) {
            return (Some(facts), None);
        }
        let (Some(secrets), Some((token, origin))) = (mcf.secrets(), pass_candidate(r)) else {
            return (Some(facts), None);
        };
        ngx::ngx_log_error!(
            ngx::ffi::NGX_LOG_DEBUG,
            r.log(),
            "captchaify: checking a pass not in this worker's cache"
        );
        let address = self.address;
        let binding = ClientBinding::new(address, client::user_agent(r));
        let now = client::now().secs;
        // Garbage, forged, expired or foreign tokens simply do not count.
        let Ok(pass) = check_pass(secrets, token, binding, Hardness::EASY, now) else {
            return (Some(facts), None);
        };
        let key = secrets.table_key("token", &[token]);
        let mut cache = mcf.pass_cache().borrow_mut();
        let client_hash = cache.client_hash(address, client::user_agent(r));
        cache.put(token, client_hash, pass.expires, (pass.hardness, key));
        match origin {
            PassOrigin::Cookie => facts.cookie_pass = Some(pass.hardness),
            PassOrigin::Url => facts.url_pass = Some(pass.hardness),
        }
        facts.pass_key = Some(key);
        self.facts = Some(facts);
        (Some(facts), Some(key))
    }

    /// What CrowdSec's decisions say about the client (its country and AS number are only
    /// looked up when decisions on countries or networks exist).
    fn crowdsec(&mut self, mcf: &MainConf) -> Option<crate::policy::Remediation> {
        mcf.crowdsec.as_ref()?;
        if let Some(known) = self.crowdsec {
            return known;
        }
        let found = super::crowdsec::remediation(mcf, self.address, || {
            let geo = self.geo(mcf);
            (geo.country.map(|c| c.as_bytes()), geo.asn)
        });
        self.crowdsec = Some(found);
        found
    }

    /// The client's country and AS number: from `captchaify_geoip_db` when there is one,
    /// else from what ip-api said about the address (if it was asked).
    pub fn geo(&mut self, mcf: &MainConf) -> &GeoFacts {
        let address = self.address;
        self.geo.get_or_insert_with(|| {
            if let Some(db) = mcf.geo.as_deref() {
                let info = db.lookup(address);
                return GeoFacts::new(info.country, info.asn);
            }
            let Some(lookups) = mcf.zone_state().and_then(|z| z.lookups.as_ref()) else {
                return GeoFacts::default();
            };
            if !mcf.sources_in_use.has(Source::IpApi) {
                return GeoFacts::default();
            }
            let key = mcf.feed_key("lookup", address);
            let now = client::now().millis;
            let entry = lookups.with(client::holder(), |t| t.get(&key, now).copied());
            entry.map_or_else(GeoFacts::default, |e| {
                GeoFacts::new(
                    Country::from_bytes(e.country),
                    (e.asn != 0).then_some(e.asn),
                )
            })
        })
    }
}

/// What the third-party sources said about the address, from the shared zone. An address
/// the per-address sources were not asked about yet is queued for the fetcher here.
fn gather_reputation(
    mcf: &MainConf,
    address: std::net::IpAddr,
    wanted: ThirdParties,
) -> Reputation {
    let mut reputation = Reputation::default();
    let used = ThirdParties(mcf.sources_in_use.0 & wanted.0);
    let Some(zone) = mcf.zone_state().filter(|_| used != ThirdParties::NONE) else {
        return reputation;
    };
    let (now, holder) = (client::now(), client::holder());
    if used.has(Source::Tor) {
        if let (Some(status), Some(table)) = (zone.tor(), zone.listed.as_ref()) {
            if status.count.load(core::sync::atomic::Ordering::Relaxed) > 0 {
                let key = mcf.feed_key("tor", address);
                reputation.tor =
                    table.with(holder, |t| status.lists(t.get(&key, now.millis).as_deref()));
            }
        }
    }
    // The per-address sources asked here.
    let sources = used.0 & ThirdParties::of(&Source::PER_ADDRESS).0;
    if sources == 0 || !crate::reputation::may_look_up(address) {
        return reputation;
    }
    let (Some(lookups), Some(pending)) = (zone.lookups.as_ref(), zone.pending.as_ref()) else {
        return reputation;
    };
    let key = mcf.feed_key("lookup", address);
    let (entry, ask) = lookups.with(holder, |t| read_and_mark(t, &key, now.secs, sources));
    if ask != 0 {
        let expires = now.millis + ASK_TIMEOUT_SECS * 1000;
        pending.with(holder, |t| {
            t.update(&key, now.millis, |queued| {
                let bits = queued.map_or(0, |q| q.sources) | ask;
                (Some((Pending::new(address, bits), expires)), ())
            })
        });
    }
    reputation.read_answers(
        |source| entry.answer(source, now.secs),
        |source| sources & source.bit() != 0,
    );
    reputation
}

/// Everything the policy may ask about the client, read once per request. The costly parts
/// are skipped when they cannot matter: no token, no binding to compute; no failure on record
/// anywhere, no key to derive.
fn gather_facts(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    policy: &LocationPolicy,
    address: std::net::IpAddr,
) -> (ClientFacts, bool) {
    let wanted = policy.third_parties;
    let crawler_check = match policy.verified_crawlers {
        true => super::crawlers::check(r, mcf, address),
        false => None,
    };
    let crawler = mcf
        .crawler_cache()
        .borrow_mut()
        .is_crawler(r.user_agent().map(|ua| ua.as_bytes()));
    if mcf.secrets().is_none() {
        return (
            ClientFacts {
                crawler,
                crawler_check,
                ..ClientFacts::default()
            },
            false,
        );
    }
    let now = client::now();
    // One pass candidate per request, looked up in this worker's cache only: a cached pass
    // costs a hash, anything else waits for `confirm_pass`, after the rate limits. A request
    // stuffed with forged tokens thus costs one check at most, and none when over its limit.
    let (mut cookie_pass, mut url_pass, mut pass_key, mut unverified) = (None, None, None, false);
    if let Some((token, origin)) = pass_candidate(r) {
        let mut cache = mcf.pass_cache().borrow_mut();
        let client_hash = cache.client_hash(address, client::user_agent(r));
        match cache.get(token, client_hash, now.secs) {
            Some((hardness, key)) => {
                match origin {
                    PassOrigin::Cookie => cookie_pass = Some(hardness),
                    PassOrigin::Url => url_pass = Some(hardness),
                }
                pass_key = Some(key);
            }
            None => unverified = true,
        }
    }
    let failures = mcf.zone_state().and_then(|zone| zone.failures.as_ref());
    // The table's length is an atomic read: an empty table needs neither a key nor the lock.
    let standing = failures
        .filter(|table| table.stats().len > 0)
        .map(|table| {
            let keys = failure_keys(mcf, address, lcf.loc.ipv6_prefix);
            table.with(client::holder(), |t| {
                mcf.failure_limit.standing(t, &keys, now.millis)
            })
        })
        .unwrap_or_default();
    let facts = ClientFacts {
        crawler,
        cookie_pass,
        url_pass,
        failed_too_often: standing.blocked,
        last_try: standing.last_try,
        pass_key,
        reputation: gather_reputation(mcf, address, wanted),
        standing: Standing::default(),
        crawler_check,
        crowdsec: None,
    };
    (facts, unverified)
}

/// The request's pass candidate (see [`crate::request::pass_candidate`]).
fn pass_candidate(r: &Request) -> Option<(&[u8], PassOrigin)> {
    let name = PASS_NAME.as_bytes();
    crate::request::pass_candidate(
        client::cookies(r, name),
        client::arguments(r, name),
        looks_like_pass,
    )
}

/// The failure table's keys for a client: its address (IPv6 by `ipv6_prefix` bits) and, for
/// IPv6 counted by more than 48 bits, its /48 network, keyed with the secret.
pub(crate) fn failure_keys(
    mcf: &MainConf,
    address: std::net::IpAddr,
    ipv6_prefix: u8,
) -> FailureKeys {
    let key = |purpose, bits| {
        let (identity, len) = client_identity(address, bits);
        let identity = identity.get(..len).unwrap_or_default();
        mcf.secrets()
            .map_or([0; 16], |s| s.table_key(purpose, &[identity]))
    };
    let ipv6 = len_of(address) == 17;
    FailureKeys {
        client: key("failures", ipv6_prefix),
        network: (ipv6 && ipv6_prefix > NETWORK_BITS)
            .then(|| key("failures-network", NETWORK_BITS)),
    }
}

/// The network whose clients share a failure budget: an IPv6 /48, a site's usual allocation.
const NETWORK_BITS: u8 = 48;

/// The length of an address's identity: 4 for IPv4 (mapped ones too), 17 for IPv6.
fn len_of(address: std::net::IpAddr) -> usize {
    client_identity(address, 128).1
}

type CleanupFn = unsafe extern "C" fn(*mut core::ffi::c_void);

/// Identifies our cleanup entry; it has nothing to free (the state is plain data).
#[inline(never)]
unsafe extern "C" fn state_marker(_data: *mut core::ffi::c_void) {}

/// Finds the state of this request (or of its main request), if a pass created one.
///
/// The state lives in the request pool, not in `r`: the borrow is tied to `r` only to bound
/// it by the request's life. Callers use one at a time (a handler, then a variable), never
/// two at once.
#[allow(clippy::mut_from_ref)]
pub(crate) fn find(r: &Request) -> Option<&mut RequestState> {
    let raw: *const ngx_http_request_t = r.into();
    // SAFETY: `ctx` has a slot per HTTP module; ours only ever holds null or a pointer to a
    // RequestState in the request pool, which lives as long as the request.
    let cached = unsafe { *(*raw).ctx.add(Module::module().ctx_index) }.cast::<RequestState>();
    if let Some(state) = unsafe { cached.as_mut() } {
        return Some(state);
    }
    // SAFETY: the request pool is valid for the request's lifetime; we walk its cleanup list
    // read-only and accept only entries that carry both our handler and our magic.
    unsafe {
        let mut cleanup = (*r.pool().as_ptr()).cleanup;
        while let Some(entry) = cleanup.as_ref() {
            // Both sides of the comparison take the address in this file; the magic check
            // below guards against a merged look-alike function all the same.
            if entry
                .handler
                .is_some_and(|h| ptr::fn_addr_eq(h, state_marker as CleanupFn))
            {
                let state = entry.data.cast::<RequestState>();
                if !state.is_null() && (*state).magic == MAGIC {
                    r.set_module_ctx(state.cast(), Module::module());
                    return Some(&mut *state);
                }
            }
            cleanup = entry.next;
        }
    }
    None
}

/// Finds the request's state or creates it. `None` only when the pool is out of memory.
#[allow(clippy::mut_from_ref)]
pub(crate) fn find_or_create(r: &Request) -> Option<&mut RequestState> {
    if let Some(state) = find(r) {
        return Some(state);
    }
    let pool: *mut ngx_pool_t = r.pool().as_ptr();
    // SAFETY: ngx_pool_cleanup_add returns null or an entry whose `data` has room for
    // `size` bytes, aligned for any plain type, in the request pool.
    unsafe {
        let cleanup = ngx_pool_cleanup_add(pool, size_of::<RequestState>());
        if cleanup.is_null() {
            return None;
        }
        let state = (*cleanup).data.cast::<RequestState>();
        state.write(RequestState {
            magic: MAGIC,
            address: client::address(r),
            facts: None,
            action: None,
            outcome: None,
            rates: None,
            geo: None,
            crowdsec: None,
            pass_unverified: false,
        });
        (*cleanup).handler = Some(state_marker);
        r.set_module_ctx(state.cast(), Module::module());
        Some(&mut *state)
    }
}
