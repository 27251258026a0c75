//! The shared-memory zones: declared at configuration time, laid out once, reused on reload.
//!
//! The module has two kinds of zone, set up the same way ([`Layout`]): the main zone
//! (`captchaify_zone`: [`ZoneState`]) and CrowdSec's decisions zone
//! (`captchaify_crowdsec_lapi`: [`CrowdsecZone`]).
//!
//! Layout: a header (plain data only: a [`Stamp`] with the layout's magic and version and the
//! zone's own secret, then where each table lives, as offsets from the zone's start), then one
//! region per table from the zone's slab pool. Every configuration, in every worker, attaches
//! the tables from those offsets, so nothing depends on addresses or on which process laid the
//! zone out.

use core::ffi::c_void;
use core::mem::{offset_of, size_of};
use core::ptr::{self, addr_of_mut};

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_int_t, ngx_log_t, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_alloc,
    ngx_slab_pool_t, ngx_str_t, NGX_LOG_EMERG, NGX_LOG_NOTICE, NGX_LOG_WARN,
};
use ngx::ngx_log_error;

use super::crowdsec::SignalJob;
use super::directives::reject;
use super::ngx_http_captchaify_module;
use crate::conf::ZoneSpec;
use crate::crawler::verified::CrawlerCheck;
use crate::crowdsec::store::{DecisionRecord, StoreStatus};
use crate::reputation::Source;
use crate::state::rate::{LocationLoad, RateBucket};
use crate::state::records::{EventCount, Failures, Mark};
use crate::state::reputation::{
    FeedStatus, HintJob, HintsRecord, Listed, Lookup, Pending, SendLog,
};
use crate::state::metrics::Metrics;
use crate::state::spent::SpentSet;
use crate::state::table::{Record, Table};

/// Where a table lives inside the zone.
#[repr(C)]
#[derive(Clone, Copy)]
struct RegionRef {
    offset: u64,
    len: u64,
}

/// What every zone's header starts with. Written once by the configuration that creates the
/// zone.
#[repr(C)]
struct Stamp {
    magic: u64,
    layout_version: u32,
    _reserved: u32,
    /// Created once per zone, so it survives reloads: it signs tokens (the main zone, when
    /// no `captchaify_secret_file` is configured) and keys the tables.
    secret: [u8; 32],
}

// The stamp's fields sit where they sat when they were the headers' own first fields: zones
// laid out by earlier builds keep attaching.
const _: () = assert!(size_of::<Stamp>() == 48 && offset_of!(Stamp, secret) == 16);

/// One kind of zone: this configuration's handles on it (`Self`, kept in the configuration
/// pool), and how its header and tables are laid out and attached.
trait Layout: Sized {
    /// The zone's header: a [`Stamp`] first, then plain data only.
    type Header;
    const MAGIC: u64;
    /// Bumped whenever the header or the set of tables changes. A reload that brings another
    /// layout into a zone of the same name and size is refused (old workers still use it).
    const LAYOUT_VERSION: u32;
    /// What its init is called in the log when it fails.
    const INIT: &'static str;
    /// What to do when the zone has another layout: "restart nginx, or …".
    const OTHER_LAYOUT: &'static str;

    /// Handles on nothing yet.
    fn detached() -> Self;

    fn stamp(header: &Self::Header) -> &Stamp;

    /// The header attached, null before the zone's init.
    fn header(&self) -> *mut Self::Header;

    /// Lays out the tables of a fresh zone: its header, `None` when something does not fit.
    fn lay_out(zone: &FreshZone, stamp: Stamp) -> Option<Self::Header>;

    /// Attaches the tables the header records; `false` after logging why not.
    ///
    /// # Safety
    /// `header` is the zone's, `base` its start.
    unsafe fn attach(
        &mut self,
        header: *mut Self::Header,
        base: *mut u8,
        log: *mut ngx_log_t,
        name: &str,
    ) -> bool;

    /// Logs what a fresh zone has room for.
    fn log_capacity(&self, log: *mut ngx_log_t, name: &str, size: usize);
}

/// Declares a zone of kind `L`. Returns `None` after logging why it cannot be declared.
fn declare<L: Layout>(
    cf: *mut ngx_conf_t,
    name: &str,
    size: usize,
    directive: &str,
) -> Option<*mut ngx_shm_zone_t> {
    // SAFETY: `cf` is the live configuration context; strings and the handles are allocated in
    // its pool, which lives as long as the configuration that uses the zone.
    unsafe {
        let pool = (*cf).pool;
        let mut ngx_name = ngx_str_t::from_bytes(pool, name.as_bytes())?;
        let shm_zone = ngx_shared_memory_add(
            cf,
            &mut ngx_name,
            size,
            addr_of_mut!(ngx_http_captchaify_module).cast(),
        );
        if shm_zone.is_null() {
            return None;
        }
        if !(*shm_zone).data.is_null() {
            reject(
                cf,
                directive,
                format_args!("zone \"{}\" is already declared", name),
            );
            return None;
        }
        let state = ngx::core::Pool::from_ngx_pool(pool).allocate(L::detached());
        if state.is_null() {
            return None;
        }
        (*shm_zone).init = Some(init_zone::<L>);
        (*shm_zone).data = state.cast();
        Some(shm_zone)
    }
}

/// A zone's handles for this configuration, once its init has run.
///
/// # Safety
/// `shm_zone` must be null or a zone declared by `declare::<L>` in the running configuration.
unsafe fn attached<'a, L: Layout>(shm_zone: *mut ngx_shm_zone_t) -> Option<&'a L> {
    // SAFETY: the caller guarantees a zone of ours, whose data is our `L`.
    unsafe { shm_zone.as_ref()?.data.cast::<L>().as_ref() }
        .filter(|state| !state.header().is_null())
}

/// Zone init callback, also run for `nginx -t`: attach to the layout a previous configuration
/// made, or lay out a fresh zone.
unsafe extern "C" fn init_zone<L: Layout>(
    shm_zone: *mut ngx_shm_zone_t,
    previous: *mut c_void,
) -> ngx_int_t {
    super::unwind::guarded(
        L::INIT,
        || Status::NGX_ERROR.into(),
        move || {
            // SAFETY: nginx calls this with a zone declared by `declare::<L>`, whose data is our
            // `L`; the zone's memory starts with its slab pool.
            unsafe {
                let zone = &mut *shm_zone;
                let state = &mut *zone.data.cast::<L>();
                let shpool = zone.shm.addr.cast::<ngx_slab_pool_t>();
                let log = zone.shm.log;
                let name = String::from_utf8_lossy(zone.shm.name.as_bytes()).into_owned();
                let reused = !previous.is_null() || zone.shm.exists != 0;
                let header = if reused {
                    (*shpool).data.cast::<L::Header>()
                } else {
                    lay_out::<L>(shpool)
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
                let stamp = L::stamp(header_ref);
                if stamp.magic != L::MAGIC || stamp.layout_version != L::LAYOUT_VERSION {
                    ngx_log_error!(
                        NGX_LOG_EMERG,
                        log,
                        "captchaify: zone \"{}\" was laid out by another version of the module; \
                         restart nginx, {}",
                        name,
                        L::OTHER_LAYOUT
                    );
                    return Status::NGX_ERROR.into();
                }
                if !state.attach(header, zone.shm.addr, log, &name) {
                    return Status::NGX_ERROR.into();
                }
                if !reused {
                    state.log_capacity(log, &name, zone.shm.size);
                }
                Status::NGX_OK.into()
            }
        },
    )
}

/// Lays out a fresh zone: header, secret and empty tables. Null when something does not fit.
///
/// # Safety
/// `shpool` must be the slab pool of a fresh zone that nobody else uses yet.
unsafe fn lay_out<L: Layout>(shpool: *mut ngx_slab_pool_t) -> *mut L::Header {
    // SAFETY: per the contract, the pool is ours alone; allocations stay inside the zone.
    unsafe {
        let header = ngx_slab_alloc(shpool, size_of::<L::Header>()).cast::<L::Header>();
        if header.is_null() {
            return ptr::null_mut();
        }
        let mut secret = [0u8; 32];
        if getrandom::getrandom(&mut secret).is_err() {
            return ptr::null_mut();
        }
        let stamp = Stamp {
            magic: L::MAGIC,
            layout_version: L::LAYOUT_VERSION,
            _reserved: 0,
            secret,
        };
        let fresh = FreshZone {
            shpool,
            page: ngx::ffi::ngx_pagesize,
            free_pages: (*shpool).pfree,
        };
        let Some(value) = L::lay_out(&fresh, stamp) else {
            return ptr::null_mut();
        };
        header.write(value);
        (*shpool).data = header.cast();
        header
    }
}

/// A fresh zone's slab pool, which nobody else uses yet: made by [`lay_out`] only, for the
/// layout to place its tables in, in whole pages (slab allocations of a page or more take
/// whole pages).
struct FreshZone {
    shpool: *mut ngx_slab_pool_t,
    page: usize,
    /// What is left after the slab's own bookkeeping and the header.
    free_pages: usize,
}

impl FreshZone {
    /// An empty table of `pages` pages.
    fn table<V: Record>(&self, pages: usize) -> Option<RegionRef> {
        // SAFETY: the pool is a fresh zone's, ours alone (see the struct); the zone starts
        // with it.
        unsafe { new_table::<V>(self.shpool, self.shpool.cast(), pages * self.page) }
    }

    /// A store of `pages` pages, laid out by `init` (which says whether it could); `init`
    /// gets fresh memory of that many bytes inside the zone, which nobody else uses yet.
    fn region(&self, pages: usize, init: impl FnOnce(*mut u8, usize) -> bool) -> Option<RegionRef> {
        // SAFETY: as for `table`.
        unsafe { new_region(self.shpool, self.shpool.cast(), pages * self.page, init) }
    }
}

// ---------------------------------------------------------------------------------------
// The main zone.

/// The first thing in the main zone.
#[repr(C)]
struct ZoneHeader {
    stamp: Stamp,
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
    /// What `captchaify_metrics` shows: counters of every worker, kept across reloads.
    metrics: Metrics,
}

/// This configuration's handles on the main zone, kept in the configuration pool.
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
        unsafe { self.header.as_ref().map(|h| h.stamp.secret) }
    }

    /// When a per-address source was last asked.
    pub fn sends(&self, source: Source) -> Option<&SendLog> {
        let index = match source {
            Source::Tor => return None,
            Source::IpApi => 0,
            Source::StopForumSpam => 1,
        };
        // SAFETY: as for `secret`; the log is atomics only.
        unsafe { self.header.as_ref().and_then(|h| h.sends.get(index)) }
    }

    /// The counters `captchaify_metrics` shows.
    pub fn metrics(&self) -> Option<&Metrics> {
        // SAFETY: as for `secret`; the counters are atomics only.
        unsafe { self.header.as_ref().map(|h| &h.metrics) }
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

/// Declares the main zone. Returns `None` after logging why it cannot be declared.
pub(crate) fn add(cf: *mut ngx_conf_t, spec: &ZoneSpec) -> Option<*mut ngx_shm_zone_t> {
    declare::<ZoneState>(cf, &spec.name, spec.size, "captchaify_zone")
}

/// The main zone's state for this configuration, once its init has run.
///
/// # Safety
/// `shm_zone` must be null or a zone declared by [`add`] in the running configuration.
pub(crate) unsafe fn state<'a>(shm_zone: *mut ngx_shm_zone_t) -> Option<&'a ZoneState> {
    // SAFETY: per the contract.
    unsafe { attached::<ZoneState>(shm_zone) }
}

impl Layout for ZoneState {
    type Header = ZoneHeader;
    const MAGIC: u64 = u64::from_be_bytes(*b"cptchfy\0");
    const LAYOUT_VERSION: u32 = 10;
    const INIT: &'static str = "the zone's init";
    const OTHER_LAYOUT: &'static str = "or give the zone another name or size";

    fn detached() -> ZoneState {
        ZoneState {
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
        }
    }

    fn stamp(header: &ZoneHeader) -> &Stamp {
        &header.stamp
    }

    fn header(&self) -> *mut ZoneHeader {
        self.header
    }

    fn lay_out(zone: &FreshZone, stamp: Stamp) -> Option<ZoneHeader> {
        let (page, free) = (zone.page, zone.free_pages);
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
        let (listed, lookups, pending, crawlers) = (
            zone.table::<Listed>(listed_pages)?,
            zone.table::<Lookup>(lookups_pages)?,
            zone.table::<Pending>(pending_pages)?,
            zone.table::<CrawlerCheck>(crawlers_pages)?,
        );
        let (hints, hint_jobs) = (
            zone.table::<HintsRecord>(hints_pages)?,
            zone.table::<HintJob>(hint_jobs_pages)?,
        );
        let (loads, spent, failures, rate) = (
            zone.table::<LocationLoad>(loads_pages)?,
            zone.region(spent_pages, |region, len| {
                // SAFETY: `region` is fresh memory of `len` bytes inside the zone, which nobody
                // else uses yet (see `FreshZone::region`).
                unsafe { SpentSet::init(region, len).is_ok() }
            })?,
            zone.table::<Failures>(failures_pages)?,
            zone.table::<RateBucket>(rate_pages)?,
        );
        Some(ZoneHeader {
            stamp,
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
            metrics: Metrics::default(),
        })
    }

    unsafe fn attach(
        &mut self,
        header: *mut ZoneHeader,
        base: *mut u8,
        log: *mut ngx_log_t,
        name: &str,
    ) -> bool {
        // SAFETY: per the contract, the header is the zone's and `base` its start.
        unsafe {
            let h = &*header;
            self.header = header;
            self.spent = attach_with(
                base,
                h.spent,
                log,
                name,
                "spent challenges",
                |region, len| SpentSet::attach(region, len),
            );
            self.failures = attach(base, h.failures, log, name, "failures");
            self.rate = attach(base, h.rate, log, name, "rate");
            self.loads = attach(base, h.loads, log, name, "locations");
            self.listed = attach(base, h.listed, log, name, "listed addresses");
            self.lookups = attach(base, h.lookups, log, name, "lookups");
            self.pending = attach(base, h.pending, log, name, "pending lookups");
            self.crawlers = attach(base, h.crawlers, log, name, "crawler verdicts");
            self.hints = attach(base, h.hints, log, name, "crawler hints");
            self.hint_jobs = attach(base, h.hint_jobs, log, name, "crawler hint fetches");
        }
        self.spent.is_some()
            && self.failures.is_some()
            && self.rate.is_some()
            && self.loads.is_some()
            && self.listed.is_some()
            && self.lookups.is_some()
            && self.pending.is_some()
            && self.crawlers.is_some()
            && self.hints.is_some()
            && self.hint_jobs.is_some()
    }

    fn log_capacity(&self, log: *mut ngx_log_t, name: &str, size: usize) {
        let clients = self.rate.as_ref().map_or(0, |t| t.capacity());
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
            self.spent.as_ref().map_or(0, |s| s.designed_load()),
            self.failures.as_ref().map_or(0, |t| t.capacity()),
            self.loads.as_ref().map_or(0, |t| t.capacity()),
            self.listed.as_ref().map_or(0, |t| t.capacity()),
            self.lookups.as_ref().map_or(0, |t| t.capacity()),
            self.hints.as_ref().map_or(0, |t| t.capacity())
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
}

// ---------------------------------------------------------------------------------------
// CrowdSec's decisions zone.

/// The decisions zone's name (one per nginx instance).
pub(crate) const CROWDSEC_ZONE: &str = "captchaify_crowdsec";

/// The first thing in the decisions zone.
#[repr(C)]
struct CrowdsecHeader {
    stamp: Stamp,
    status: StoreStatus,
    decisions: RegionRef,
    reported: RegionRef,
    floods: RegionRef,
    signals: RegionRef,
}

/// This configuration's handles on the decisions zone, kept in the configuration pool.
pub(crate) struct CrowdsecZone {
    header: *mut CrowdsecHeader,
    pub decisions: Option<Table<DecisionRecord>>,
    /// Clients reported recently, per scenario.
    pub reported: Option<Table<Mark>>,
    /// Rate-limit refusals per client within the flood window.
    pub floods: Option<Table<EventCount>>,
    /// Signals waiting for the machine thread.
    pub signals: Option<Table<SignalJob>>,
}

impl CrowdsecZone {
    /// The zone's own secret, which keys its tables.
    pub fn secret(&self) -> [u8; 32] {
        // SAFETY: the header was laid out by init_zone and lives as long as the zone; handles
        // are only handed out once it is attached.
        unsafe { (*self.header).stamp.secret }
    }

    pub fn status(&self) -> &StoreStatus {
        // SAFETY: as for `secret`; the status is atomics only.
        unsafe { &(*self.header).status }
    }
}

/// Shares of the decisions zone: decisions get what the others leave.
const REPORTED_SHARE: usize = 3;
const FLOODS_SHARE: usize = 5;
const SIGNALS_SHARE: usize = 2;

/// Declares the decisions zone. Returns `None` after logging why it cannot be declared.
pub(crate) fn add_crowdsec(cf: *mut ngx_conf_t, size: usize) -> Option<*mut ngx_shm_zone_t> {
    declare::<CrowdsecZone>(cf, CROWDSEC_ZONE, size, "captchaify_crowdsec_lapi")
}

/// The decisions zone's state for this configuration, once its init has run.
///
/// # Safety
/// `shm_zone` must be null or a zone declared by [`add_crowdsec`] in the running
/// configuration.
pub(crate) unsafe fn crowdsec_state<'a>(shm_zone: *mut ngx_shm_zone_t) -> Option<&'a CrowdsecZone> {
    // SAFETY: per the contract.
    unsafe { attached::<CrowdsecZone>(shm_zone) }
}

impl Layout for CrowdsecZone {
    type Header = CrowdsecHeader;
    const MAGIC: u64 = u64::from_be_bytes(*b"cfycsec\0");
    const LAYOUT_VERSION: u32 = 2;
    const INIT: &'static str = "the CrowdSec zone's init";
    const OTHER_LAYOUT: &'static str = "or change zone_size";

    fn detached() -> CrowdsecZone {
        CrowdsecZone {
            header: ptr::null_mut(),
            decisions: None,
            reported: None,
            floods: None,
            signals: None,
        }
    }

    fn stamp(header: &CrowdsecHeader) -> &Stamp {
        &header.stamp
    }

    fn header(&self) -> *mut CrowdsecHeader {
        self.header
    }

    fn lay_out(zone: &FreshZone, stamp: Stamp) -> Option<CrowdsecHeader> {
        let free = zone.free_pages;
        let share = |percent: usize| (free * percent / 100).max(1);
        let (reported_pages, floods_pages, signals_pages) = (
            share(REPORTED_SHARE),
            share(FLOODS_SHARE),
            share(SIGNALS_SHARE),
        );
        let decisions_pages = free
            .saturating_sub(reported_pages + floods_pages + signals_pages)
            .max(1);
        Some(CrowdsecHeader {
            stamp,
            status: StoreStatus::default(),
            decisions: zone.table::<DecisionRecord>(decisions_pages)?,
            reported: zone.table::<Mark>(reported_pages)?,
            floods: zone.table::<EventCount>(floods_pages)?,
            signals: zone.table::<SignalJob>(signals_pages)?,
        })
    }

    unsafe fn attach(
        &mut self,
        header: *mut CrowdsecHeader,
        base: *mut u8,
        log: *mut ngx_log_t,
        name: &str,
    ) -> bool {
        // SAFETY: per the contract, the header is the zone's and `base` its start.
        unsafe {
            let h = &*header;
            self.header = header;
            self.decisions = attach(base, h.decisions, log, name, "decisions");
            self.reported = attach(base, h.reported, log, name, "reported clients");
            self.floods = attach(base, h.floods, log, name, "flood counters");
            self.signals = attach(base, h.signals, log, name, "signals");
        }
        self.decisions.is_some()
            && self.reported.is_some()
            && self.floods.is_some()
            && self.signals.is_some()
    }

    fn log_capacity(&self, log: *mut ngx_log_t, name: &str, size: usize) {
        ngx_log_error!(
            NGX_LOG_NOTICE,
            log,
            "captchaify: zone \"{}\" of {} bytes initialised: room for {} CrowdSec decisions ({} bytes each)",
            name,
            size,
            self.decisions.as_ref().map_or(0, |t| t.capacity()),
            Table::<DecisionRecord>::bytes_per_entry()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Tables in a zone.

/// Allocates a region of about `len` bytes from the slab and lays out an empty table in it.
///
/// # Safety
/// As for [`Layout::lay_out`]; `base` is the start of the zone.
unsafe fn new_table<V: Record>(
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
/// As for [`Layout::lay_out`]; `base` is the start of the zone; `init` gets fresh memory of `len`
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
unsafe fn attach<V: Record>(
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
