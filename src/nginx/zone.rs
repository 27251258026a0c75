//! The shared-memory zone: declared at configuration time, laid out once, reused on reload.
//!
//! Layout: a [`ZoneHeader`] (plain data only: the fallback secret and where each table lives,
//! as offsets from the zone's start), then one region per table from the zone's slab pool.
//! Every configuration, in every worker, attaches the tables from those offsets, so nothing
//! depends on addresses or on which process laid the zone out.

use core::ffi::c_void;
use core::mem::size_of;
use core::ptr::{self, addr_of_mut};

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_log_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_alloc,
    ngx_slab_pool_t, ngx_str_t, NGX_LOG_EMERG, NGX_LOG_NOTICE, NGX_LOG_WARN,
};
use ngx::ngx_log_error;

use super::directives::reject;
use super::ngx_http_captchaify_module;
use crate::conf::ZoneSpec;
use crate::crawler::verified::CrawlerCheck;
use crate::state::rate::{LocationLoad, RateBucket};
use crate::state::records::Failures;
use crate::state::reputation::{
    FeedStatus, HintJob, HintsRecord, Listed, Lookup, Pending, SendLog, Source,
};
use crate::state::spent::SpentSet;
use crate::state::table::{Record, Table};

const MAGIC: u64 = u64::from_be_bytes(*b"cptchfy\0");
/// Bumped whenever the header or the set of tables changes. A reload that brings another
/// layout into a zone of the same name and size is refused (old workers still use it).
const LAYOUT_VERSION: u32 = 9;

/// Where a table lives inside the zone.
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct RegionRef {
    offset: u64,
    len: u64,
}

/// The first thing in the zone. Written once by the configuration that creates the zone.
#[repr(C)]
struct ZoneHeader {
    magic: u64,
    layout_version: u32,
    _reserved: u32,
    /// Signs tokens when no `captchaify_secret_file` is configured; created once per zone,
    /// so it survives reloads.
    secret: [u8; 32],
    spent: RegionRef,
    failures: RegionRef,
    rate: RegionRef,
    loads: RegionRef,
    listed: RegionRef,
    lookups: RegionRef,
    pending: RegionRef,
    crawlers: RegionRef,
    hints: RegionRef,
    hint_jobs: RegionRef,
    /// The Tor exit list in force.
    tor: FeedStatus,
    /// When ip-api and StopForumSpam were last asked.
    sends: [SendLog; 2],
}

/// This configuration's handles on the zone, kept in the configuration pool.
pub(crate) struct ZoneState {
    header: *mut ZoneHeader,
    /// Answered challenges, by window of expiry.
    pub spent: Option<SpentSet>,
    pub failures: Option<Table<Failures>>,
    /// Rate buckets of clients and of pass tokens.
    pub rate: Option<Table<RateBucket>>,
    /// Load and under-attack state of locations.
    pub loads: Option<Table<LocationLoad>>,
    /// Addresses of bulk lists (Tor exits), by generation.
    pub listed: Option<Table<Listed>>,
    /// What the per-address sources said.
    pub lookups: Option<Table<Lookup>>,
    /// Addresses waiting to be looked up.
    pub pending: Option<Table<Pending>>,
    /// Verdicts on addresses claiming to be search-engine crawlers.
    pub crawlers: Option<Table<CrawlerCheck>>,
    /// Crawler hints by page.
    pub hints: Option<Table<HintsRecord>>,
    /// Pages waiting for their hints to be fetched.
    pub hint_jobs: Option<Table<HintJob>>,
}

impl ZoneState {
    pub fn secret(&self) -> Option<[u8; 32]> {
        // SAFETY: the header was laid out by init_zone and lives as long as the zone.
        unsafe { self.header.as_ref().map(|h| h.secret) }
    }

    /// When a per-address source was last asked.
    pub fn sends(&self, source: Source) -> Option<&SendLog> {
        let index = match source {
            Source::IpApi => 0,
            Source::StopForumSpam => 1,
        };
        // SAFETY: as for `secret`; the log is atomics only.
        unsafe { self.header.as_ref().and_then(|h| h.sends.get(index)) }
    }

    /// The state of the Tor exit list.
    pub fn tor(&self) -> Option<&FeedStatus> {
        // SAFETY: as for `secret`; the status is atomics only.
        unsafe { self.header.as_ref().map(|h| &h.tor) }
    }
}

/// Shares of the zone's free pages for each table, in percent (at least a page each): bulk
/// lists get 4%, per-address answers 10%, the lookup queue 1%, crawler verdicts 1%, crawler
/// hints 3% and their queue 1%, and the locations' loads 2%;
/// of the rest spent challenges and failure counters 18% each and the rate buckets the
/// remainder (64%).
const LISTED_SHARE: usize = 4;
const LISTED_FLOOR: usize = 4096;
const LOOKUPS_SHARE: usize = 10;
const PENDING_SHARE: usize = 1;
const CRAWLERS_SHARE: usize = 1;
const HINTS_SHARE: usize = 3;
const HINT_JOBS_SHARE: usize = 1;
const LOADS_SHARE: usize = 2;
const SPENT_SHARE: usize = 18;
const FAILURES_SHARE: usize = 18;

/// Below this many rate buckets the zone is reported as small at start.
const FEW_CLIENTS: usize = 1000;

/// Declares the zone. Returns `None` after logging why it cannot be declared.
pub(crate) fn add(cf: *mut ngx_conf_t, spec: &ZoneSpec) -> Option<*mut ngx_shm_zone_t> {
    // SAFETY: `cf` is the live configuration context; strings and the context struct are
    // allocated in its pool, which lives as long as the configuration that uses the zone.
    unsafe {
        let pool = (*cf).pool;
        let mut name = ngx_str_t::from_bytes(pool, spec.name.as_bytes())?;
        let shm_zone = ngx_shared_memory_add(
            cf,
            &mut name,
            spec.size,
            addr_of_mut!(ngx_http_captchaify_module).cast(),
        );
        if shm_zone.is_null() {
            return None;
        }
        if !(*shm_zone).data.is_null() {
            reject(
                cf,
                "captchaify_zone",
                format_args!("zone \"{}\" is already declared", spec.name),
            );
            return None;
        }
        let state = ngx::core::Pool::from_ngx_pool(pool).allocate(ZoneState {
            header: ptr::null_mut(),
            spent: None,
            failures: None,
            rate: None,
            loads: None,
            listed: None,
            lookups: None,
            pending: None,
            crawlers: None,
            hints: None,
            hint_jobs: None,
        });
        if state.is_null() {
            return None;
        }
        (*shm_zone).init = Some(init_zone);
        (*shm_zone).data = state.cast();
        Some(shm_zone)
    }
}

/// The zone's state for this configuration, once its init has run.
///
/// # Safety
/// `shm_zone` must be null or a zone declared by [`add`] in the running configuration.
pub(crate) unsafe fn state<'a>(shm_zone: *mut ngx_shm_zone_t) -> Option<&'a ZoneState> {
    // SAFETY: the caller guarantees a zone of ours, whose data is our ZoneState.
    unsafe { shm_zone.as_ref()?.data.cast::<ZoneState>().as_ref() }
        .filter(|state| !state.header.is_null())
}

/// Zone init callback, also run for `nginx -t`: attach to the layout a previous configuration
/// made, or lay out a fresh zone.
unsafe extern "C" fn init_zone(shm_zone: *mut ngx_shm_zone_t, previous: *mut c_void) -> ngx_int_t {
    super::unwind::guarded(
        "the zone's init",
        || Status::NGX_ERROR.into(),
        move || {
            // SAFETY: nginx calls this with the zone declared in `add`, whose data is our ZoneState;
            // the zone's memory starts with its slab pool.
            unsafe {
                let zone = &mut *shm_zone;
                let state = &mut *zone.data.cast::<ZoneState>();
                let shpool = zone.shm.addr.cast::<ngx_slab_pool_t>();
                let log = zone.shm.log;
                let name = String::from_utf8_lossy(zone.shm.name.as_bytes()).into_owned();
                let reused = !previous.is_null() || zone.shm.exists != 0;
                let header = if reused {
                    (*shpool).data.cast::<ZoneHeader>()
                } else {
                    lay_out(shpool, zone.shm.size)
                };
                let Some(header_ref) = header.as_ref() else {
                    ngx_log_error!(
                        NGX_LOG_EMERG,
                        log,
                        "captchaify: zone \"{}\" is too small to lay out",
                        name
                    );
                    return Status::NGX_ERROR.into();
                };
                if header_ref.magic != MAGIC || header_ref.layout_version != LAYOUT_VERSION {
                    ngx_log_error!(
                        NGX_LOG_EMERG,
                        log,
                        "captchaify: zone \"{}\" was laid out by another version of the module; \
                     restart nginx, or give the zone another name or size",
                        name
                    );
                    return Status::NGX_ERROR.into();
                }
                state.header = header;
                let base = zone.shm.addr;
                state.spent = attach_with(
                    base,
                    header_ref.spent,
                    log,
                    &name,
                    "spent challenges",
                    |region, len| SpentSet::attach(region, len),
                );
                state.failures = attach(base, header_ref.failures, log, &name, "failures");
                state.rate = attach(base, header_ref.rate, log, &name, "rate");
                state.loads = attach(base, header_ref.loads, log, &name, "locations");
                state.listed = attach(base, header_ref.listed, log, &name, "listed addresses");
                state.lookups = attach(base, header_ref.lookups, log, &name, "lookups");
                state.pending = attach(base, header_ref.pending, log, &name, "pending lookups");
                state.crawlers = attach(base, header_ref.crawlers, log, &name, "crawler verdicts");
                state.hints = attach(base, header_ref.hints, log, &name, "crawler hints");
                state.hint_jobs = attach(
                    base,
                    header_ref.hint_jobs,
                    log,
                    &name,
                    "crawler hint fetches",
                );
                if state.spent.is_none()
                    || state.failures.is_none()
                    || state.rate.is_none()
                    || state.loads.is_none()
                    || state.listed.is_none()
                    || state.lookups.is_none()
                    || state.pending.is_none()
                    || state.crawlers.is_none()
                    || state.hints.is_none()
                    || state.hint_jobs.is_none()
                {
                    return Status::NGX_ERROR.into();
                }
                if !reused {
                    log_capacity(log, &name, zone.shm.size, state);
                }
                Status::NGX_OK.into()
            }
        },
    )
}

/// Lays out a fresh zone: header, secret and empty tables. Null when something does not fit.
///
/// # Safety
/// `shpool` must be the slab pool of a zone of `size` bytes that nobody else uses yet.
unsafe fn lay_out(shpool: *mut ngx_slab_pool_t, size: usize) -> *mut ZoneHeader {
    // SAFETY: per the contract, the pool is ours alone; allocations stay inside the zone.
    unsafe {
        let header = ngx_slab_alloc(shpool, size_of::<ZoneHeader>()).cast::<ZoneHeader>();
        if header.is_null() {
            return ptr::null_mut();
        }
        let mut secret = [0u8; 32];
        if getrandom::getrandom(&mut secret).is_err() {
            return ptr::null_mut();
        }
        let base = shpool.cast::<u8>();
        // Shares of what is left after the slab's own bookkeeping, in whole pages (slab
        // allocations of a page or more take whole pages).
        let _ = size;
        let page = ngx::ffi::ngx_pagesize;
        let free = (*shpool).pfree;
        let share = |pages: usize, percent: usize| (pages * percent / 100).max(1);
        let loads_pages = share(free, LOADS_SHARE);
        // Bulk lists need room for a whole list (the Tor exits are 1,000 to 2,500): at least
        // 4,096 entries (about 210 kB) when the zone can spare a quarter for it.
        let floor =
            Table::<Listed>::region_len_for(LISTED_FLOOR).map_or(0, |len| len.div_ceil(page));
        let listed_pages = share(free, LISTED_SHARE).max(floor.min(free / 4));
        let lookups_pages = share(free, LOOKUPS_SHARE);
        let pending_pages = share(free, PENDING_SHARE);
        let crawlers_pages = share(free, CRAWLERS_SHARE);
        // Tables of large records need a few pages for their smallest size.
        let smallest = |len: Option<usize>| len.map_or(1, |len| len.div_ceil(page));
        let hints_pages =
            share(free, HINTS_SHARE).max(smallest(Table::<HintsRecord>::region_len_for(8)));
        let hint_jobs_pages =
            share(free, HINT_JOBS_SHARE).max(smallest(Table::<HintJob>::region_len_for(8)));
        let rest = free.saturating_sub(
            loads_pages
                + listed_pages
                + lookups_pages
                + pending_pages
                + crawlers_pages
                + hints_pages
                + hint_jobs_pages,
        );
        let (spent_pages, failures_pages) = (share(rest, SPENT_SHARE), share(rest, FAILURES_SHARE));
        let rate_pages = rest.saturating_sub(spent_pages + failures_pages).max(1);
        let (Some(listed), Some(lookups), Some(pending), Some(crawlers)) = (
            new_table::<Listed>(shpool, base, listed_pages * page),
            new_table::<Lookup>(shpool, base, lookups_pages * page),
            new_table::<Pending>(shpool, base, pending_pages * page),
            new_table::<CrawlerCheck>(shpool, base, crawlers_pages * page),
        ) else {
            return ptr::null_mut();
        };
        let (Some(hints), Some(hint_jobs)) = (
            new_table::<HintsRecord>(shpool, base, hints_pages * page),
            new_table::<HintJob>(shpool, base, hint_jobs_pages * page),
        ) else {
            return ptr::null_mut();
        };
        let (Some(loads), Some(spent), Some(failures), Some(rate)) = (
            new_table::<LocationLoad>(shpool, base, loads_pages * page),
            new_region(shpool, base, spent_pages * page, |region, len| {
                SpentSet::init(region, len).is_ok()
            }),
            new_table::<Failures>(shpool, base, failures_pages * page),
            new_table::<RateBucket>(shpool, base, rate_pages * page),
        ) else {
            return ptr::null_mut();
        };
        header.write(ZoneHeader {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            _reserved: 0,
            secret,
            spent,
            failures,
            rate,
            loads,
            listed,
            lookups,
            pending,
            crawlers,
            hints,
            hint_jobs,
            tor: FeedStatus::default(),
            sends: Default::default(),
        });
        (*shpool).data = header.cast();
        header
    }
}

/// Allocates a region of about `len` bytes from the slab and lays out an empty table in it.
///
/// # Safety
/// As for [`lay_out`]; `base` is the start of the zone.
pub(super) unsafe fn new_table<V: Record>(
    shpool: *mut ngx_slab_pool_t,
    base: *mut u8,
    len: usize,
) -> Option<RegionRef> {
    // SAFETY: per the contract.
    unsafe {
        new_region(shpool, base, len, |region, len| {
            Table::<V>::init(region, len).is_ok()
        })
    }
}

/// Allocates a region of `len` bytes from the slab and lays out an empty store in it with
/// `init` (which says whether it could).
///
/// # Safety
/// As for [`lay_out`]; `base` is the start of the zone; `init` gets fresh memory of `len`
/// bytes inside the zone that nobody else uses yet.
unsafe fn new_region(
    shpool: *mut ngx_slab_pool_t,
    base: *mut u8,
    len: usize,
    init: impl FnOnce(*mut u8, usize) -> bool,
) -> Option<RegionRef> {
    // Slab allocations of a page or more are page-aligned, which covers the stores' alignment.
    // SAFETY: per the contract; the region is fresh memory of `len` bytes inside the zone.
    unsafe {
        let region = ngx_slab_alloc(shpool, len).cast::<u8>();
        if region.is_null() || !init(region, len) {
            return None;
        }
        Some(RegionRef {
            offset: region.offset_from(base) as u64,
            len: len as u64,
        })
    }
}

/// Attaches a table laid out earlier, logging why not when it cannot.
///
/// # Safety
/// `base` is the start of a zone whose header recorded `region`.
pub(super) unsafe fn attach<V: Record>(
    base: *mut u8,
    region: RegionRef,
    log: *mut ngx_log_t,
    zone: &str,
    what: &str,
) -> Option<Table<V>> {
    // SAFETY: per the contract.
    unsafe {
        attach_with(base, region, log, zone, what, |region, len| {
            Table::<V>::attach(region, len)
        })
    }
}

/// Attaches a store laid out earlier with `attach`, logging why not when it cannot.
///
/// # Safety
/// `base` is the start of a zone whose header recorded `region`.
unsafe fn attach_with<S>(
    base: *mut u8,
    region: RegionRef,
    log: *mut ngx_log_t,
    zone: &str,
    what: &str,
    attach: impl FnOnce(*mut u8, usize) -> Result<S, crate::state::table::TableError>,
) -> Option<S> {
    // SAFETY: the offset and length were recorded by lay_out for this very zone.
    match attach(
        unsafe { base.add(region.offset as usize) },
        region.len as usize,
    ) {
        Ok(store) => Some(store),
        Err(error) => {
            ngx_log_error!(
                NGX_LOG_EMERG,
                log,
                "captchaify: zone \"{}\": {} table: {}",
                zone,
                what,
                error
            );
            None
        }
    }
}

fn log_capacity(log: *mut ngx_log_t, name: &str, size: usize, state: &ZoneState) {
    let clients = state.rate.as_ref().map_or(0, |t| t.capacity());
    ngx_log_error!(
        NGX_LOG_NOTICE,
        log,
        "captchaify: zone \"{}\" of {} bytes initialised: room for {} clients' rate buckets \
         ({} bytes each), {} answered challenges per two minutes, {} failure counters, {} \
         locations, {} listed addresses, {} looked-up addresses and {} pages' crawler hints",
        name,
        size,
        clients,
        Table::<RateBucket>::bytes_per_entry(),
        state.spent.as_ref().map_or(0, |s| s.designed_load()),
        state.failures.as_ref().map_or(0, |t| t.capacity()),
        state.loads.as_ref().map_or(0, |t| t.capacity()),
        state.listed.as_ref().map_or(0, |t| t.capacity()),
        state.lookups.as_ref().map_or(0, |t| t.capacity()),
        state.hints.as_ref().map_or(0, |t| t.capacity())
    );
    if clients < FEW_CLIENTS {
        ngx_log_error!(
            NGX_LOG_WARN,
            log,
            "captchaify: zone \"{}\" is small: it holds the rate buckets of only {} clients, and \
             beyond that the least recently seen are forgotten; 1m holds about 7800",
            name,
            clients
        );
    }
}

/// What the zone had no room left to remember.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Full {
    /// Answered challenges beyond the load the spent set was sized for: this share of fresh
    /// answers is taken for replays (and gets a fresh captcha).
    Spent { false_replays: f64 },
    /// A client's wrong answer: it goes uncounted.
    Failures,
}

/// Whether a warning last given at `warned_at` (Unix seconds, 0 for never) may be given again
/// at `now`; if so, records `now`.
fn once_a_minute(warned_at: &core::sync::atomic::AtomicU64, now: u64) -> bool {
    use core::sync::atomic::Ordering;
    let last = warned_at.load(Ordering::Relaxed);
    if last != 0 && now < last.saturating_add(60) {
        return false;
    }
    warned_at.store(now, Ordering::Relaxed);
    true
}

/// Warns, at most once a minute per worker and kind, that the zone had no room left for
/// what must not be forgotten, so the module failed closed.
pub(crate) fn warn_full(log: *mut ngx_log_t, full: Full) {
    use core::sync::atomic::AtomicU64;
    static WARNED_AT: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
    let now = super::client::now().secs;
    match full {
        Full::Spent { false_replays } => {
            if once_a_minute(&WARNED_AT[0], now) {
                ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "captchaify: more challenges answered in two minutes than the zone was sized \
                     for: about {:.1}% of right answers are taken for replays and get a fresh \
                     captcha (none is ever accepted twice); give captchaify_zone more memory",
                    false_replays * 100.0
                );
            }
        }
        Full::Failures => {
            if once_a_minute(&WARNED_AT[1], now) {
                ngx_log_error!(
                    NGX_LOG_WARN,
                    log,
                    "captchaify: the failure table is full of blocked clients: new wrong answers \
                     are not counted until some blocks expire; give captchaify_zone more memory"
                );
            }
        }
    }
}

/// Logs that this worker took a table's lock over from a worker that died holding it (set
/// as [`crate::state::lock::TAKEOVER_REPORT`] in every worker).
pub(crate) fn report_takeover(table: &str, dead_pid: u32) {
    // SAFETY: the cycle and its log live as long as the worker.
    let log = unsafe { (*ngx::ffi::ngx_cycle).log };
    ngx_log_error!(
        NGX_LOG_WARN,
        log,
        "captchaify: took over the lock of the {} table from process {}, which died holding \
         it; the table was checked and repaired",
        table,
        dead_pid
    );
}

/// Warns, at most once a minute per worker, when the rate table had to evict live buckets
/// since the last look: the zone is too small for the traffic. The log is never flooded.
pub(crate) fn warn_if_evicting(log: *mut ngx_log_t, table: &Table<RateBucket>) {
    use core::sync::atomic::{AtomicU64, Ordering};
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static WARNED_AT: AtomicU64 = AtomicU64::new(0);
    let evictions = table.stats().evictions;
    if evictions <= SEEN.load(Ordering::Relaxed) {
        return;
    }
    if !once_a_minute(&WARNED_AT, super::client::now().secs) {
        return;
    }
    let before = SEEN.swap(evictions, Ordering::Relaxed);
    ngx_log_error!(
        NGX_LOG_WARN,
        log,
        "captchaify: the zone is full: {} clients' live rate buckets forgotten to make room ({} \
         in all); give captchaify_zone more memory",
        evictions - before,
        evictions
    );
}
