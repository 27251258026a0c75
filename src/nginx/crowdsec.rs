//! CrowdSec in nginx: the decisions zone, the lookup on the request path, the signals that
//! requests raise, and the two background threads (the decision stream and the machine that
//! reports alerts), in worker 0 (or the single process), shaped like the reputation fetcher:
//!
//! * the stream thread pulls `GET /v1/decisions/stream` with the bouncer key: `startup=true`
//!   at start, after a failure and every hour, plain deltas every `interval` in between; it
//!   parses the answer and posts it to a mailbox;
//! * a cancelable timer on the event loop (every [`TICK_MS`]) applies what is in the mailbox
//!   to the zone, at most [`CHANGES_PER_TICK`] changes a tick so that a startup pull of
//!   100,000 decisions never holds the worker for long, and hands the machine thread the
//!   signals that requests queued in the zone;
//! * the machine thread logs in (`POST /v1/watchers/login`), then posts the signals as alerts
//!   (`POST /v1/alerts`) in batches; CrowdSec's profiles turn them into decisions that every
//!   bouncer of the fleet pulls, this one included.
//!
//! Requests only read the zone (one lock, a few keyed hashes) and, at most once per client
//! and scenario every ten minutes, queue a signal: nothing on the request path waits for the
//! Local API. When it is unreachable, the decisions in force stay in force.

use core::cell::RefCell;
use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{self, addr_of_mut};
use std::cell::OnceCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_event_t, ngx_int_t, ngx_log_t, ngx_shared_memory_add, ngx_shm_zone_t,
    ngx_slab_alloc, ngx_slab_pool_t, ngx_str_t, NGX_LOG_EMERG, NGX_LOG_INFO, NGX_LOG_NOTICE,
    NGX_LOG_WARN,
};
use ngx::ngx_log_error;

use super::fetcher::{self, agent, unix_now, Control, Streak};
use super::zone::{attach, new_table, RegionRef};
use super::{client, ngx_http_captchaify_module, offload, LocConf, MainConf};
use crate::challenge::token::Secrets;
use crate::crowdsec::alerts::{self, Scenario, Signal};
use crate::crowdsec::store::{self, DecisionRecord, StoreStatus};
use crate::crowdsec::stream::{self, Change, Delta};
use crate::crowdsec::{LapiSpec, MachineSpec};
use crate::policy::Remediation;
use crate::state::records::{count_event, EventCount, Mark};
use crate::state::reputation::{address_bytes, address_from_bytes};
use crate::state::table::Placed;
use crate::state::table::{Key, Record, Table};

/// The decisions zone's name (one per nginx instance).
pub(crate) const ZONE_NAME: &str = "captchaify_crowdsec";
const MAGIC: u64 = u64::from_be_bytes(*b"cfycsec\0");
const LAYOUT_VERSION: u32 = 2;
/// As CrowdSec's remediation-component spec asks: `crowdsec-<name>-bouncer/<version>`.
const USER_AGENT: &str = concat!("crowdsec-captchaify-bouncer/", env!("CARGO_PKG_VERSION"));
const TICK_MS: usize = 250;
/// Changes written per tick at most (about 3 ms of work).
const CHANGES_PER_TICK: usize = 20_000;
/// Changes written per hold of the table's lock.
const WRITE_CHUNK: usize = 512;
/// A full pull every hour rebuilds the picture (see `crowdsec::store`).
const RESYNC_SECS: u64 = 3600;
/// The longest wait between tries while the Local API fails.
const MAX_BACKOFF_SECS: u64 = 30;
/// A client is reported at most once per scenario in this time.
const REPORT_AGAIN_SECS: u64 = 600;
/// The flood window: `flood=N` refusals within a minute.
const FLOOD_WINDOW_MS: u64 = 60_000;
/// Alerts per `POST /v1/alerts`, and signals waiting in the machine thread at most.
const ALERTS_PER_POST: usize = 100;
const MACHINE_QUEUE: usize = 10_000;

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
}

impl CrowdsecConf {
    /// Declares the decisions zone. `None` after logging why it cannot be declared.
    pub fn new(cf: *mut ngx_conf_t, lapi: LapiSpec, key: String) -> Option<CrowdsecConf> {
        let zone = add_zone(cf, lapi.zone_size)?;
        Some(CrowdsecConf {
            lapi,
            key: Credential(key),
            zone,
            keys: OnceCell::new(),
        })
    }

    fn zone(&self) -> Option<&CrowdsecZone> {
        // SAFETY: `zone` was declared by add_zone; its data is our CrowdsecZone.
        unsafe { self.zone.as_ref()?.data.cast::<CrowdsecZone>().as_ref() }
            .filter(|z| !z.header.is_null())
    }

    fn keys(&self) -> Option<&Secrets> {
        self.keys
            .get_or_init(|| {
                let zone = self.zone()?;
                // SAFETY: the header was laid out by init_zone and lives as long as the zone.
                let secret = unsafe { (*zone.header).secret };
                Secrets::new(secret.to_vec(), None)
            })
            .as_ref()
    }

    fn target_key(&self, keys: &Secrets, target: &stream::Target) -> Key {
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

    fn signal(&self) -> Signal {
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

/// The first thing in the zone.
#[repr(C)]
struct Header {
    magic: u64,
    layout_version: u32,
    _reserved: u32,
    secret: [u8; 32],
    status: StoreStatus,
    decisions: RegionRef,
    reported: RegionRef,
    floods: RegionRef,
    signals: RegionRef,
}

/// This configuration's handles on the decisions zone.
pub(crate) struct CrowdsecZone {
    header: *mut Header,
    decisions: Option<Table<DecisionRecord>>,
    /// Clients reported recently, per scenario.
    reported: Option<Table<Mark>>,
    /// Rate-limit refusals per client within the flood window.
    floods: Option<Table<EventCount>>,
    /// Signals waiting for the machine thread.
    signals: Option<Table<SignalJob>>,
}

impl CrowdsecZone {
    fn status(&self) -> &StoreStatus {
        // SAFETY: the header was laid out by init_zone and lives as long as the zone; the
        // status is atomics only.
        unsafe { &(*self.header).status }
    }
}

/// Shares of the zone: decisions get what the others leave.
const REPORTED_SHARE: usize = 3;
const FLOODS_SHARE: usize = 5;
const SIGNALS_SHARE: usize = 2;

fn add_zone(cf: *mut ngx_conf_t, size: usize) -> Option<*mut ngx_shm_zone_t> {
    // SAFETY: `cf` is the live configuration context; the name and state are allocated in its
    // pool, which lives as long as the configuration that uses the zone.
    unsafe {
        let pool = (*cf).pool;
        let mut name = ngx_str_t::from_bytes(pool, ZONE_NAME.as_bytes())?;
        let shm_zone = ngx_shared_memory_add(
            cf,
            &mut name,
            size,
            addr_of_mut!(ngx_http_captchaify_module).cast(),
        );
        if shm_zone.is_null() {
            return None;
        }
        let state = ngx::core::Pool::from_ngx_pool(pool).allocate(CrowdsecZone {
            header: ptr::null_mut(),
            decisions: None,
            reported: None,
            floods: None,
            signals: None,
        });
        if state.is_null() {
            return None;
        }
        (*shm_zone).init = Some(init_zone);
        (*shm_zone).data = state.cast();
        Some(shm_zone)
    }
}

unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, previous: *mut c_void) -> ngx_int_t {
    super::unwind::guarded(
        "the CrowdSec zone's init",
        || Status::NGX_ERROR.into(),
        move || {
            // SAFETY: nginx calls this with the zone declared in add_zone, whose data is our
            // CrowdsecZone; the zone's memory starts with its slab pool.
            unsafe {
                let zone = &mut *shm_zone;
                let state = &mut *zone.data.cast::<CrowdsecZone>();
                let shpool = zone.shm.addr.cast::<ngx_slab_pool_t>();
                let log = zone.shm.log;
                let reused = !previous.is_null() || zone.shm.exists != 0;
                let header = if reused {
                    (*shpool).data.cast::<Header>()
                } else {
                    lay_out(shpool)
                };
                let Some(h) = header.as_ref() else {
                    ngx_log_error!(
                        NGX_LOG_EMERG,
                        log,
                        "captchaify: zone \"{}\" is too small to lay out",
                        ZONE_NAME
                    );
                    return Status::NGX_ERROR.into();
                };
                if h.magic != MAGIC || h.layout_version != LAYOUT_VERSION {
                    ngx_log_error!(
                    NGX_LOG_EMERG,
                    log,
                    "captchaify: zone \"{}\" was laid out by another version of the module; restart nginx, \
                     or change zone_size",
                    ZONE_NAME
                );
                    return Status::NGX_ERROR.into();
                }
                state.header = header;
                let base = zone.shm.addr;
                state.decisions = attach(base, h.decisions, log, ZONE_NAME, "decisions");
                state.reported = attach(base, h.reported, log, ZONE_NAME, "reported clients");
                state.floods = attach(base, h.floods, log, ZONE_NAME, "flood counters");
                state.signals = attach(base, h.signals, log, ZONE_NAME, "signals");
                if state.decisions.is_none()
                    || state.reported.is_none()
                    || state.floods.is_none()
                    || state.signals.is_none()
                {
                    return Status::NGX_ERROR.into();
                }
                if !reused {
                    ngx_log_error!(
                    NGX_LOG_NOTICE,
                    log,
                    "captchaify: zone \"{}\" of {} bytes initialised: room for {} CrowdSec decisions ({} bytes each)",
                    ZONE_NAME,
                    zone.shm.size,
                    state.decisions.as_ref().map_or(0, |t| t.capacity()),
                    Table::<DecisionRecord>::bytes_per_entry()
                );
                }
                Status::NGX_OK.into()
            }
        },
    )
}

/// Lays out a fresh zone. Null when something does not fit.
///
/// # Safety
/// `shpool` must be the slab pool of a fresh zone that nobody else uses yet.
unsafe fn lay_out(shpool: *mut ngx_slab_pool_t) -> *mut Header {
    // SAFETY: per the contract, the pool is ours alone; allocations stay inside the zone.
    unsafe {
        let header = ngx_slab_alloc(shpool, size_of::<Header>()).cast::<Header>();
        let mut secret = [0u8; 32];
        if header.is_null() || getrandom::getrandom(&mut secret).is_err() {
            return ptr::null_mut();
        }
        let base = shpool.cast::<u8>();
        let page = ngx::ffi::ngx_pagesize;
        let free = (*shpool).pfree;
        let share = |percent: usize| (free * percent / 100).max(1);
        let (reported_pages, floods_pages, signals_pages) = (
            share(REPORTED_SHARE),
            share(FLOODS_SHARE),
            share(SIGNALS_SHARE),
        );
        let decisions_pages = free
            .saturating_sub(reported_pages + floods_pages + signals_pages)
            .max(1);
        let (Some(decisions), Some(reported), Some(floods), Some(signals)) = (
            new_table::<DecisionRecord>(shpool, base, decisions_pages * page),
            new_table::<Mark>(shpool, base, reported_pages * page),
            new_table::<EventCount>(shpool, base, floods_pages * page),
            new_table::<SignalJob>(shpool, base, signals_pages * page),
        ) else {
            return ptr::null_mut();
        };
        header.write(Header {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            _reserved: 0,
            secret,
            status: StoreStatus::default(),
            decisions,
            reported,
            floods,
            signals,
        });
        (*shpool).data = header.cast();
        header
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
        && lcf.loc.crowdsec
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
fn put_signal(mcf: &MainConf, signal: &Signal, once: bool) {
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

// ---------------------------------------------------------------------------------------
// The background side.

/// What a thread found out.
enum Report {
    Pull {
        full: bool,
        outcome: Result<(Delta, usize), String>,
        took_ms: u128,
        next_in_secs: u64,
    },
    Alerts {
        outcome: Result<Vec<Signal>, String>,
        next_in_secs: u64,
    },
}

#[derive(Default)]
struct Shared {
    control: Control<Report>,
    /// Signals for the machine thread.
    signals: Mutex<VecDeque<Signal>>,
    ready: Condvar,
}

impl core::ops::Deref for Shared {
    type Target = Control<Report>;

    fn deref(&self) -> &Control<Report> {
        &self.control
    }
}

/// A pull being written into the zone, a tick at a time.
struct Work {
    full: bool,
    /// The generation a full pull writes under, set when its first change is written.
    generation: Option<u32>,
    delta: Delta,
    /// Changes written so far (deletions first, then new decisions).
    done: usize,
    bytes: usize,
    took_ms: u128,
    applying: Option<Instant>,
}

struct Running {
    shared: Arc<Shared>,
    mcf: *const MainConf,
    timer: *mut ngx_event_t,
    work: VecDeque<Work>,
    pulls: Streak,
    posts: Streak,
    evictions: u64,
}

std::thread_local! {
    static RUNNING: RefCell<Option<Running>> = const { RefCell::new(None) };
}

/// Starts the stream (and the machine) in worker 0, when a Local API is configured.
pub(crate) fn start(mcf: &MainConf, log: *mut ngx_log_t) {
    let Some(cs) = mcf.crowdsec.as_ref() else {
        return;
    };
    let shared = Arc::new(Shared::default());
    let (lapi, key, scopes) = (
        cs.lapi.clone(),
        cs.key.0.clone(),
        cs.scopes(mcf.geo.is_some()),
    );
    fetcher::spawn(&shared, log, "crowdsec", move |shared| {
        stream_thread(shared, lapi, key, scopes)
    });
    if let Some(machine) = mcf.crowdsec_machine.clone() {
        let lapi = cs.lapi.clone();
        fetcher::spawn(&shared, log, "crowdsec-machine", move |shared| {
            machine_thread(shared, lapi, machine)
        });
    }
    let timer = offload::timer_event(tick, true, log);
    let evictions = cs
        .zone()
        .and_then(|z| z.decisions.as_ref())
        .map_or(0, |t| t.stats().evictions);
    RUNNING.with(|r| {
        *r.borrow_mut() = Some(Running {
            shared,
            mcf,
            timer,
            work: VecDeque::new(),
            pulls: Streak::default(),
            posts: Streak::default(),
            evictions,
        });
    });
    // SAFETY: a fresh event, on the event loop.
    unsafe { offload::add_timer(timer, TICK_MS as _) };
}

/// Stops the threads; signals not reported yet go back to the zone for the next generation.
pub(crate) fn stop() {
    RUNNING.with(|r| {
        let Some(running) = r.borrow_mut().take() else {
            return;
        };
        running.shared.control.stop();
        running.shared.ready.notify_all();
        // SAFETY: the timer event is ours, on the event loop.
        unsafe { offload::delete_timer(running.timer) };
        let left: Vec<Signal> = running
            .shared
            .signals
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default();
        // SAFETY: the configuration outlives the worker's threads.
        let mcf = unsafe { &*running.mcf };
        for signal in left {
            put_signal(mcf, &signal, false);
        }
    });
}

/// The stream thread: a full pull at start, after failures and every hour; deltas between.
fn stream_thread(shared: Arc<Shared>, lapi: LapiSpec, key: String, scopes: &'static str) {
    let deltas = agent(lapi.timeout_secs, USER_AGENT);
    // A startup answer can be tens of megabytes: it gets more time.
    let fulls = agent(lapi.timeout_secs.max(60), USER_AGENT);
    let mut full_due = true;
    let mut last_full = Instant::now();
    let mut backoff = 0;
    while !shared.stopped() {
        let full = full_due || last_full.elapsed() >= Duration::from_secs(RESYNC_SECS);
        let url = format!(
            "{}v1/decisions/stream?startup={}&scopes={}",
            lapi.url, full, scopes
        );
        let started = Instant::now();
        let outcome = pull(if full { &fulls } else { &deltas }, &url, &key);
        if shared.stopped() {
            return;
        }
        let next_in_secs = match outcome {
            Ok(_) => lapi.interval_secs,
            Err(_) => {
                backoff = if backoff == 0 {
                    lapi.interval_secs
                } else {
                    (backoff * 2).min(MAX_BACKOFF_SECS.max(lapi.interval_secs))
                };
                backoff
            }
        };
        if outcome.is_ok() {
            backoff = 0;
            full_due = false;
            if full {
                last_full = started;
            }
        } else {
            // What happened while the stream was down is only sure to come with a full pull.
            full_due = true;
        }
        shared.post(Report::Pull {
            full,
            outcome,
            took_ms: started.elapsed().as_millis(),
            next_in_secs,
        });
        shared.sleep(Duration::from_secs(next_in_secs));
    }
}

fn pull(agent: &ureq::Agent, url: &str, key: &str) -> Result<(Delta, usize), String> {
    let mut response = agent
        .get(url)
        .header("X-Api-Key", key)
        .call()
        .map_err(|e| e.to_string())?;
    match response.status().as_u16() {
        200 => {}
        403 => {
            return Err("the Local API refuses the bouncer key (HTTP 403): check key_file".into())
        }
        status => return Err(format!("HTTP status {status}")),
    }
    let body = response
        .body_mut()
        .with_config()
        .limit(stream::MAX_BYTES as u64)
        .read_to_vec()
        .map_err(|e| e.to_string())?;
    let delta = stream::parse(&body).map_err(|e| e.to_string())?;
    Ok((delta, body.len()))
}

/// The machine thread: reports queued signals as alerts, logging in when it must.
fn machine_thread(shared: Arc<Shared>, lapi: LapiSpec, machine: Machine) {
    let agent = agent(lapi.timeout_secs, fetcher::USER_AGENT);
    let mut token: Option<alerts::Login> = None;
    let mut backoff = 0;
    while !shared.stopped() {
        {
            let Ok(queue) = shared.signals.lock() else {
                return;
            };
            if queue.is_empty() {
                let _ = shared.ready.wait_timeout(queue, Duration::from_secs(1));
                continue;
            }
        }
        // A moment for the signals of the same burst to join the batch.
        shared.sleep(Duration::from_millis(200));
        let batch: Vec<Signal> = match shared.signals.lock() {
            Ok(mut queue) => {
                let n = queue.len().min(ALERTS_PER_POST);
                queue.drain(..n).collect()
            }
            Err(_) => return,
        };
        match post_alerts(&agent, &lapi, &machine, &mut token, &batch) {
            Ok(()) => {
                backoff = 0;
                shared.post(Report::Alerts {
                    outcome: Ok(batch),
                    next_in_secs: 0,
                });
            }
            Err(error) => {
                backoff = if backoff == 0 {
                    5
                } else {
                    (backoff * 2).min(300)
                };
                if let Ok(mut queue) = shared.signals.lock() {
                    for signal in batch.into_iter().rev() {
                        queue.push_front(signal);
                    }
                }
                shared.post(Report::Alerts {
                    outcome: Err(error),
                    next_in_secs: backoff,
                });
                shared.sleep(Duration::from_secs(backoff));
            }
        }
    }
}

fn post_alerts(
    agent: &ureq::Agent,
    lapi: &LapiSpec,
    machine: &Machine,
    token: &mut Option<alerts::Login>,
    batch: &[Signal],
) -> Result<(), String> {
    let body = alerts::alerts_json(batch, &machine.spec.login, env!("CARGO_PKG_VERSION"));
    for _ in 0..2 {
        let expiring = token
            .as_ref()
            .is_some_and(|t| t.expires_secs.is_some_and(|e| e <= unix_now() + 60));
        if token.is_none() || expiring {
            *token = Some(login(agent, lapi, machine)?);
        }
        let bearer = format!("Bearer {}", token.as_ref().map_or("", |t| t.token.as_str()));
        let mut response = agent
            .post(&format!("{}v1/alerts", lapi.url))
            .header("Authorization", &bearer)
            .content_type("application/json")
            .send(body.as_bytes())
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let answer = response
            .body_mut()
            .with_config()
            .limit(alerts::MAX_BYTES as u64)
            .read_to_vec()
            .unwrap_or_default();
        match status {
            200 | 201 => {
                return alerts::parse_alert_ids(&answer)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            // The token ran out early (the Local API restarted, say): log in again, once.
            401 => *token = None,
            status => {
                return Err(format!(
                    "posting alerts: HTTP status {status}: {}",
                    String::from_utf8_lossy(&answer[..answer.len().min(200)])
                ))
            }
        }
    }
    Err("posting alerts: the Local API refuses the machine's fresh token (HTTP 401)".into())
}

fn login(agent: &ureq::Agent, lapi: &LapiSpec, machine: &Machine) -> Result<alerts::Login, String> {
    let body = alerts::login_json(&machine.spec.login, &machine.password.0);
    let mut response = agent
        .post(&format!("{}v1/watchers/login", lapi.url))
        .content_type("application/json")
        .send(body.as_bytes())
        .map_err(|e| format!("logging in: {e}"))?;
    let answer = response
        .body_mut()
        .with_config()
        .limit(alerts::MAX_BYTES as u64)
        .read_to_vec()
        .map_err(|e| format!("logging in: {e}"))?;
    alerts::parse_login(&answer)
        .map_err(|e| format!("logging in as \"{}\": {e}", machine.spec.login))
}

/// The event loop's tick: applies pulls, logs, hands signals to the machine thread.
unsafe extern "C" fn tick(_ev: *mut ngx_event_t) {
    fetcher::run_tick(
        "CrowdSec's tick",
        &RUNNING,
        stop,
        |r| (r.mcf, r.timer),
        |running, mcf, log| {
            for report in running.shared.take() {
                receive(running, mcf, log, report);
            }
            if let Some(cs) = mcf.crowdsec.as_ref() {
                write_some(running, cs, log);
                hand_out(running, cs);
            }
        },
    );
}

fn receive(running: &mut Running, mcf: &MainConf, log: *mut ngx_log_t, report: Report) {
    let Some(cs) = mcf.crowdsec.as_ref() else {
        return;
    };
    let url = &cs.lapi.url;
    match report {
        Report::Pull {
            full,
            outcome,
            took_ms,
            next_in_secs,
        } => match outcome {
            Ok((delta, bytes)) => {
                if let Some(failures) = running.pulls.succeeded() {
                    ngx_log_error!(
                        NGX_LOG_NOTICE,
                        log,
                        "captchaify: crowdsec: {} answers again after {} failed pulls",
                        url,
                        failures
                    );
                }
                if let Some(zone) = cs.zone() {
                    zone.status().pulled_at.store(unix_now(), Ordering::Relaxed);
                }
                if delta.skipped > 0 {
                    ngx_log_error!(NGX_LOG_INFO, log, "captchaify: crowdsec: {} decisions skipped (scope or value not understood)", delta.skipped);
                }
                running.work.push_back(Work {
                    full,
                    generation: None,
                    delta,
                    done: 0,
                    bytes,
                    took_ms,
                    applying: None,
                });
            }
            Err(error) => {
                let level = running.pulls.failed();
                let kept = cs
                    .zone()
                    .map(|z| z.status())
                    .filter(|s| s.loaded())
                    .map_or_else(
                        || "no decisions loaded yet".to_string(),
                        |s| {
                            format!(
                                "the decisions in force stay in force (last pull {} s ago)",
                                unix_now().saturating_sub(s.pulled_at.load(Ordering::Relaxed))
                            )
                        },
                    );
                ngx_log_error!(
                    level,
                    log,
                    "captchaify: crowdsec: cannot pull decisions from {} ({} ms): {}; {}; next try in {} s",
                    url,
                    took_ms,
                    error,
                    kept,
                    next_in_secs
                );
            }
        },
        Report::Alerts {
            outcome,
            next_in_secs,
        } => {
            match outcome {
                Ok(signals) => {
                    if let Some(failures) = running.posts.succeeded() {
                        ngx_log_error!(
                            NGX_LOG_NOTICE,
                            log,
                            "captchaify: crowdsec: alerts go through again after {} failures",
                            failures
                        );
                    }
                    let list: Vec<String> = signals
                        .iter()
                        .take(5)
                        .map(|s| format!("{} {}", s.scenario.name(), s.addr))
                        .collect();
                    ngx_log_error!(
                        NGX_LOG_INFO,
                        log,
                        "captchaify: crowdsec: reported {} alerts ({}{})",
                        signals.len(),
                        list.join(", "),
                        if signals.len() > 5 { ", …" } else { "" }
                    );
                }
                Err(error) => {
                    ngx_log_error!(running.posts.failed(), log, "captchaify: crowdsec: cannot report alerts to {}: {}; kept, next try in {} s", url, error, next_in_secs);
                }
            }
        }
    }
}

/// Writes up to [`CHANGES_PER_TICK`] changes of the pulls waiting, in order.
fn write_some(running: &mut Running, cs: &CrowdsecConf, log: *mut ngx_log_t) {
    let (Some(zone), Some(keys)) = (cs.zone(), cs.keys()) else {
        return;
    };
    let Some(table) = zone.decisions.as_ref() else {
        return;
    };
    let status = zone.status();
    let mut budget = CHANGES_PER_TICK;
    while budget > 0 {
        let Some(work) = running.work.front_mut() else {
            return;
        };
        work.applying.get_or_insert_with(Instant::now);
        let generation = match work.full {
            true => *work
                .generation
                .get_or_insert_with(|| status.next_generation()),
            false => status.current(),
        };
        // A full pull lists every live decision in `new`; its `deleted` are long gone.
        let deleted: &[Change] = if work.full { &[] } else { &work.delta.deleted };
        let total = deleted.len() + work.delta.new.len();
        let now = unix_now();
        while work.done < total && budget > 0 {
            let end = (work.done + WRITE_CHUNK.min(budget)).min(total);
            let changes: Vec<(Key, Change, bool)> = (work.done..end)
                .map(|i| match deleted.get(i) {
                    Some(change) => (cs.target_key(keys, &change.target), *change, false),
                    None => {
                        let change = work.delta.new[i - deleted.len()];
                        status.note_target(&change.target);
                        (cs.target_key(keys, &change.target), change, true)
                    }
                })
                .collect();
            table.with(client::holder(), |t| {
                for (key, change, add) in &changes {
                    store::apply(t, key, change, *add, now, generation);
                }
            });
            budget -= end - work.done;
            work.done = end;
        }
        if work.done < total {
            return;
        }
        let Some(work) = running.work.pop_front() else {
            return;
        };
        let applied_ms = work.applying.map_or(0, |t| t.elapsed().as_millis());
        if work.full {
            status.publish(generation, work.delta.new.len() as u64, now);
            ngx_log_error!(
                NGX_LOG_NOTICE,
                log,
                "captchaify: crowdsec: {} decisions in force from {} (full pull: {} bytes in {} ms, written in {} ms)",
                work.delta.new.len(),
                cs.lapi.url,
                work.bytes,
                work.took_ms,
                applied_ms
            );
        } else if total > 0 {
            ngx_log_error!(
                NGX_LOG_INFO,
                log,
                "captchaify: crowdsec: {} new and {} deleted decisions",
                work.delta.new.len(),
                work.delta.deleted.len()
            );
        }
        let evictions = table.stats().evictions;
        if evictions > running.evictions {
            ngx_log_error!(
                NGX_LOG_WARN,
                log,
                "captchaify: crowdsec: the decisions zone is full ({} decisions): {} dropped to make room; raise zone_size",
                table.capacity(),
                evictions - running.evictions
            );
            running.evictions = evictions;
        }
    }
}

/// Moves queued signals from the zone to the machine thread.
fn hand_out(running: &Running, cs: &CrowdsecConf) {
    let Some(signals) = cs.zone().and_then(|z| z.signals.as_ref()) else {
        return;
    };
    if signals.stats().len == 0 {
        return;
    }
    let now_ms = unix_now() * 1000;
    let popped: Vec<SignalJob> = signals.with(client::holder(), |t| {
        core::iter::from_fn(|| t.pop_least_recent(now_ms))
            .take(ALERTS_PER_POST)
            .map(|(_, job)| job)
            .collect()
    });
    if let Ok(mut queue) = running.shared.signals.lock() {
        for job in popped {
            if queue.len() < MACHINE_QUEUE {
                queue.push_back(job.signal());
            }
        }
        running.shared.ready.notify_one();
    }
}
