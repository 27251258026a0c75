//! CrowdSec in nginx: the configuration, the lookup on the request path and the signals that
//! requests raise. The decisions zone is laid out by `nginx::zone`, and the threads that
//! pull decisions into it and report the signals are `nginx::background::crowdsec`.
//!
//! Requests only read the zone (one lock, a few keyed hashes) and, at most once per client
//! and scenario every ten minutes, queue a signal: nothing on the request path waits for the
//! Local API. When it is unreachable, the decisions in force stay in force.

use std::cell::OnceCell;
use std::net::IpAddr;

use ngx::ffi::{ngx_conf_t, ngx_shm_zone_t};

use super::zone::{self, CrowdsecZone};
use super::{client, LocConf, MainConf};
use crate::challenge::token::Secrets;
use crate::crowdsec::alerts::{self, Scenario, Signal};
use crate::crowdsec::client::{Bouncer, MachineSession};
use crate::crowdsec::store;
use crate::crowdsec::stream;
use crate::crowdsec::{LapiSpec, MachineSpec};
use crate::policy::Remediation;
use crate::state::records::{count_event, Mark};
use crate::state::reputation::{address_bytes, address_from_bytes};
use crate::state::table::Placed;
use crate::state::table::{Key, Record};

/// A client is reported at most once per scenario in this time.
const REPORT_AGAIN_SECS: u64 = 600;
/// The flood window: `flood=N` refusals within a minute.
const FLOOD_WINDOW_MS: u64 = 60_000;

/// `captchaify_crowdsec_lapi`, with its key read and its zone declared.
#[derive(Debug)]
pub(crate) struct CrowdsecConf {
    pub lapi: LapiSpec,
    key: Credential,
    zone: *mut ngx_shm_zone_t,
    /// Keys of the zone's tables, from the zone's own secret.
    keys: OnceCell<Option<Secrets>>,
}

/// `captchaify_crowdsec_machine`, with its password read.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub spec: MachineSpec,
    password: Credential,
}

/// A key or password: never shown by `Debug`.
#[derive(Clone)]
struct Credential(String);

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("(hidden)")
    }
}

impl Machine {
    pub fn new(spec: MachineSpec, password: String) -> Machine {
        Machine {
            spec,
            password: Credential(password),
        }
    }

    /// The machine's session with the Local API that reports its alerts.
    pub(super) fn session(&self, lapi: &LapiSpec) -> MachineSession {
        MachineSession::new(lapi, &self.spec.login, &self.password.0)
    }
}

impl CrowdsecConf {
    /// Declares the decisions zone. `None` after logging why it cannot be declared.
    pub fn new(cf: *mut ngx_conf_t, lapi: LapiSpec, key: String) -> Option<CrowdsecConf> {
        let zone = zone::add_crowdsec(cf, lapi.zone_size)?;
        Some(CrowdsecConf {
            lapi,
            key: Credential(key),
            zone,
            keys: OnceCell::new(),
        })
    }

    pub(super) fn zone(&self) -> Option<&CrowdsecZone> {
        // SAFETY: `zone` was declared by zone::add_crowdsec in this configuration.
        unsafe { zone::crowdsec_state(self.zone) }
    }

    pub(super) fn keys(&self) -> Option<&Secrets> {
        self.keys
            .get_or_init(|| Secrets::new(self.zone()?.secret().to_vec(), None))
            .as_ref()
    }

    pub(super) fn target_key(&self, keys: &Secrets, target: &stream::Target) -> Key {
        let (purpose, (bytes, len)) = store::key_parts(target);
        keys.table_key(purpose, &[&bytes[..len]])
    }

    /// The scopes pulled: addresses and ranges, and countries and AS numbers when a GeoIP
    /// database can tell them.
    fn scopes(&self, geo: bool) -> &'static str {
        if geo {
            "ip,range,country,as"
        } else {
            "ip,range"
        }
    }

    /// The bouncer that pulls the decisions (`geo`: whether a GeoIP database is configured).
    pub(super) fn bouncer(&self, geo: bool) -> Bouncer {
        Bouncer::new(&self.lapi, self.key.0.clone(), self.scopes(geo))
    }
}

/// A signal waiting to be reported.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SignalJob {
    addr: [u8; 16],
    scenario: u32,
    count: u32,
    window_secs: u32,
    at_secs: u32,
    _reserved: [u32; 2],
}

// SAFETY: plain integers: valid for every bit pattern, no pointers.
unsafe impl Record for SignalJob {
    const KIND: u32 = u32::from_be_bytes(*b"CSS1");
    const NAME: &'static str = "CrowdSec signals";
}

impl SignalJob {
    fn new(signal: &Signal) -> SignalJob {
        SignalJob {
            addr: address_bytes(signal.addr),
            scenario: match signal.scenario {
                Scenario::CaptchaFailures => 0,
                Scenario::Flood => 1,
            },
            count: signal.count,
            window_secs: signal.window_secs as u32,
            at_secs: signal.last_secs as u32,
            _reserved: [0; 2],
        }
    }

    pub(super) fn signal(&self) -> Signal {
        Signal {
            scenario: if self.scenario == 0 {
                Scenario::CaptchaFailures
            } else {
                Scenario::Flood
            },
            addr: address_from_bytes(self.addr),
            count: self.count,
            window_secs: u64::from(self.window_secs),
            first_secs: u64::from(self.at_secs),
            last_secs: u64::from(self.at_secs),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The request path.

/// What CrowdSec's decisions ask of this client: the strongest decision on its address, the
/// ranges around it and (when such decisions exist and a database tells) its country and AS.
pub(crate) fn remediation(
    mcf: &MainConf,
    address: IpAddr,
    geo: impl FnOnce() -> (Option<[u8; 2]>, Option<u32>),
) -> Option<Remediation> {
    let (cs, zone, keys) = handles(mcf)?;
    let table = zone.decisions.as_ref()?;
    // The length is an atomic read: an empty store needs no hashing and no lock.
    if table.stats().len == 0 {
        return None;
    }
    let status = zone.status();
    let (countries, networks) = status.has_geo();
    let (country, asn) = match (countries || networks) && mcf.geo.is_some() {
        true => geo(),
        false => (None, None),
    };
    let targets = store::address_targets(address, &status.lengths)
        .chain(country.filter(|_| countries).map(stream::Target::Country))
        .chain(asn.filter(|_| networks).map(stream::Target::As));
    // Keys are hashed outside the lock, a batch at a time, without touching the heap: a
    // handful of prefix lengths in practice, one batch.
    let now = client::now();
    let mut found = None;
    let mut batch = [[0u8; 16]; 16];
    let mut n = 0;
    let mut look_up = |batch: &[Key]| {
        let remedy = table.with(client::holder(), |t| {
            batch
                .iter()
                .map(|key| status.remedy(t.get(key, now.millis).as_deref(), now.secs))
                .fold(None, store::strongest)
        });
        found = store::strongest(found, remedy);
    };
    for target in targets {
        batch[n] = cs.target_key(keys, &target);
        n += 1;
        if n == batch.len() {
            look_up(&batch);
            n = 0;
        }
    }
    if n > 0 {
        look_up(&batch[..n]);
    }
    let remedy = found?;
    cs.lapi.fallback.remediation(remedy)
}

/// Whether what happens at this location may be reported.
fn reporting(mcf: &MainConf, lcf: &LocConf, address: IpAddr) -> bool {
    mcf.crowdsec_machine.is_some()
        && lcf.loc.policy.crowdsec
        && !lcf.loc.dry_run
        && alerts::may_report(address)
}

/// A client gave its `count`th wrong answer within the failure window.
pub(crate) fn wrong_answer(mcf: &MainConf, lcf: &LocConf, address: IpAddr, count: u32) {
    let Some(machine) = mcf.crowdsec_machine.as_ref() else {
        return;
    };
    let threshold = machine.spec.failures.unwrap_or(mcf.failure_limit.max);
    if count >= threshold && reporting(mcf, lcf, address) {
        let window_secs = mcf.failure_limit.window_ms / 1000;
        queue_signal(mcf, Scenario::CaptchaFailures, address, count, window_secs);
    }
}

/// The rate limit refused a client's request.
pub(crate) fn refused(mcf: &MainConf, lcf: &LocConf, address: IpAddr) {
    let Some(machine) = mcf.crowdsec_machine.as_ref() else {
        return;
    };
    if !reporting(mcf, lcf, address) {
        return;
    }
    let Some((_, zone, keys)) = handles(mcf) else {
        return;
    };
    let Some(floods) = zone.floods.as_ref() else {
        return;
    };
    let key = keys.table_key("cs-flood", &[&address_bytes(address)]);
    let now = client::now().millis;
    let count = floods.with(client::holder(), |t| {
        count_event(t, &key, now, FLOOD_WINDOW_MS)
    });
    if count >= machine.spec.flood {
        queue_signal(mcf, Scenario::Flood, address, count, FLOOD_WINDOW_MS / 1000);
    }
}

/// The configuration, the zone and its keys, when the zone is there.
fn handles(mcf: &MainConf) -> Option<(&CrowdsecConf, &CrowdsecZone, &Secrets)> {
    let cs = mcf.crowdsec.as_ref()?;
    Some((cs, cs.zone()?, cs.keys()?))
}

/// Queues a signal for the machine thread, once per client and scenario every ten minutes.
fn queue_signal(mcf: &MainConf, scenario: Scenario, address: IpAddr, count: u32, window_secs: u64) {
    let now = client::now().secs;
    let signal = Signal {
        scenario,
        addr: address,
        count,
        window_secs,
        first_secs: now,
        last_secs: now,
    };
    put_signal(mcf, &signal, true);
}

/// Puts a signal in the zone's queue; with `once`, unless the client was reported for this
/// scenario in the last ten minutes.
pub(super) fn put_signal(mcf: &MainConf, signal: &Signal, once: bool) {
    let Some((_, zone, keys)) = handles(mcf) else {
        return;
    };
    let (Some(reported), Some(signals)) = (zone.reported.as_ref(), zone.signals.as_ref()) else {
        return;
    };
    let key = keys.table_key(signal.scenario.name(), &[&address_bytes(signal.addr)]);
    let now = client::now().millis;
    let until = now + REPORT_AGAIN_SECS * 1000;
    if once
        && reported.with(client::holder(), |t| {
            t.insert_if_absent(&key, now, until, Mark::default())
        }) != Placed::Inserted
    {
        return;
    }
    signals.with(client::holder(), |t| {
        t.insert(&key, now, until, SignalJob::new(signal))
    });
}
