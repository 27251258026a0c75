//! The directive table and the configuration structs it fills.
//!
//! Every value goes through the pure parsers in `policy` and `conf`; an error is logged with
//! nginx's file-and-line context and fails `nginx -t`.

use core::ffi::{c_char, c_void};
use core::fmt::Display;
use core::ptr;
use std::cell::{OnceCell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_http_compile_complex_value_t, ngx_http_complex_value_t,
    ngx_shm_zone_t, ngx_str_t, NGX_CONF_1MORE, NGX_CONF_TAKE1, NGX_CONF_TAKE12, NGX_CONF_TAKE123,
    NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET,
    NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};
use ngx::http::{HttpModuleMainConf, Merge, MergeConfigError};
use ngx::{ngx_conf_log_error, ngx_string};

use super::crowdsec::{CrowdsecConf, Machine};
use super::{zone, Module};
use crate::challenge::pass_cache::PassCache;
use crate::challenge::token::Secrets;
use crate::conf::{
    parse_duration_in, parse_flag, parse_ipv6_prefix, parse_rate_or_off, parse_status,
    read_secret_file, MaxRateLimit, ZoneSpec,
};
use crate::pages::PageSet;
use crate::policy::crawler::CrawlerCache;
use crate::policy::verified::Crawler;
use crate::policy::{self, Action, Hardness, ThirdParties};
use crate::reputation::geoip::GeoDb;
use crate::reputation::ranges::{self, IpSet};
use crate::reputation::rules::GeoRules;
use crate::reputation::{FeedName, FeedSpec};
use crate::state::rate::Rate;
use crate::state::records::FailureLimit;

/// Configuration of the whole `http` block.
#[derive(Debug)]
pub(crate) struct MainConf {
    /// Set by any captchaify directive: an unused module creates no zone and changes nothing.
    pub used: bool,
    pub zone: *mut ngx_shm_zone_t,
    /// From `captchaify_secret_file`; without it, the zone's own secret signs.
    pub secret_files: Option<Secrets>,
    pub failure_limit: FailureLimit,
    failure_limit_set: bool,
    /// The secrets in force, settled on first use in each worker (the zone's secret only
    /// exists once the zone is initialised, after the configuration is read).
    secrets: OnceCell<Option<Secrets>>,
    /// Passes this worker has verified (created on first use, dropped with the configuration,
    /// so a reload with another secret starts afresh).
    pass_cache: OnceCell<RefCell<PassCache>>,
    /// This worker's crawler verdicts by user agent.
    crawler_cache: OnceCell<RefCell<CrawlerCache>>,
    /// nginx's `default` thread pool, where captcha pages are drawn; null without threads.
    pub thread_pool: *mut ngx::ffi::ngx_thread_pool_t,
    /// `captchaify_geoip_db`: countries and AS numbers, read at configuration time.
    pub geo: Option<Arc<GeoDb>>,
    /// `captchaify_crawler_ranges`: each crawler operator's published address ranges.
    pub crawler_ranges: Vec<(Crawler, Arc<IpSet>)>,
    /// `captchaify_feed` settings; sources not named here use their defaults.
    pub feeds: Vec<FeedSpec>,
    /// The third-party sources some location listens to (bits of [`ThirdParties`]): only
    /// these are fetched.
    pub sources_in_use: u8,
    /// Keys of the reputation tables, from the zone's own secret (which never changes for
    /// the zone's life, so lists survive a change of `captchaify_secret_file`).
    feed_secrets: OnceCell<Option<Secrets>>,
    /// `captchaify_crowdsec_lapi`: the Local API whose decisions apply.
    pub crowdsec: Option<CrowdsecConf>,
    /// `captchaify_crowdsec_machine`: the credentials alerts are reported with.
    pub crowdsec_machine: Option<Machine>,
}

impl Default for MainConf {
    fn default() -> Self {
        MainConf {
            used: false,
            zone: ptr::null_mut(),
            secret_files: None,
            failure_limit: FailureLimit::default(),
            failure_limit_set: false,
            secrets: OnceCell::new(),
            pass_cache: OnceCell::new(),
            crawler_cache: OnceCell::new(),
            thread_pool: core::ptr::null_mut(),
            geo: None,
            crawler_ranges: Vec::new(),
            feeds: Vec::new(),
            sources_in_use: 0,
            feed_secrets: OnceCell::new(),
            crowdsec: None,
            crowdsec_machine: None,
        }
    }
}

impl MainConf {
    /// The secrets that sign and check tokens.
    pub fn secrets(&self) -> Option<&Secrets> {
        self.secrets
            .get_or_init(|| {
                self.secret_files.clone().or_else(|| {
                    // SAFETY: `zone` is null or the zone declared for this configuration.
                    let secret = unsafe { zone::state(self.zone) }?.secret()?;
                    Secrets::new(secret.to_vec(), None)
                })
            })
            .as_ref()
    }

    /// This worker's cache of verified passes. Workers are single-threaded and nothing calls
    /// back into the module while it is borrowed, so the `RefCell` never sees two borrows.
    pub fn pass_cache(&self) -> &RefCell<PassCache> {
        self.pass_cache
            .get_or_init(|| RefCell::new(PassCache::new(4096)))
    }

    /// This worker's cache of crawler verdicts (512 user agents, about 165 kB), borrowed
    /// like the pass cache.
    pub fn crawler_cache(&self) -> &RefCell<CrawlerCache> {
        self.crawler_cache
            .get_or_init(|| RefCell::new(CrawlerCache::new(512)))
    }

    /// A source's settings: the operator's `captchaify_feed`, or the defaults.
    pub fn feed(&self, name: FeedName) -> FeedSpec {
        self.feeds
            .iter()
            .find(|f| f.name == name)
            .cloned()
            .unwrap_or_else(|| FeedSpec::default_for(name))
    }

    /// The keys of the reputation tables, from the zone's own secret.
    pub fn feed_secrets(&self) -> Option<&Secrets> {
        self.feed_secrets
            .get_or_init(|| {
                let secret = self.zone_state()?.secret()?;
                Secrets::new(secret.to_vec(), None)
            })
            .as_ref()
    }

    /// The key of an address in a reputation table.
    pub fn feed_key(&self, purpose: &str, addr: std::net::IpAddr) -> [u8; 16] {
        let bytes = crate::state::reputation::address_bytes(addr);
        self.feed_secrets()
            .map_or([0; 16], |s| s.table_key(purpose, &[&bytes]))
    }

    /// The zone's state, once initialised.
    pub fn zone_state(&self) -> Option<&zone::ZoneState> {
        // SAFETY: `zone` is null or the zone declared for this configuration.
        unsafe { zone::state(self.zone) }
    }
}

/// Configuration of one `http`, `server` or `location` level. `None` means "not set here":
/// the value is inherited, and a location where nothing at all is set is left alone.
#[derive(Debug, Default, Clone)]
pub(crate) struct LocConf {
    pub action: Option<Action>,
    pub hardness: Option<Hardness>,
    pub dry_run: Option<bool>,
    pub block_crawler: Option<bool>,
    /// Seconds a solved captcha stays valid (`captchaify_verification_age`).
    pub verification_age: Option<u64>,
    pub without_cookies: Option<bool>,
    /// An operator's `captchaify_template_dir`, loaded and checked at configuration time.
    pub pages: Option<Arc<PageSet>>,
    /// `captchaify_rate_limit`: `Some(None)` is `off`.
    pub rate_limit: Option<Option<Rate>>,
    pub max_rate_limit: Option<MaxRateLimit>,
    pub ipv6_prefix: Option<u8>,
    pub rate_limit_status: Option<u16>,
    /// `captchaify_audio_rate_limit`: audio captchas per client; `Some(None)` is `off`.
    pub audio_rate_limit: Option<Option<Rate>>,
    /// `captchaify_default_language`: the tag used when nothing else decides.
    pub default_language: Option<String>,
    /// `captchaify_allow`: addresses that pass everything but their rate limit.
    pub allow: Option<Arc<IpSet>>,
    /// `captchaify_deny`: addresses that count as suspicious.
    pub deny: Option<Arc<IpSet>>,
    pub third_parties: Option<ThirdParties>,
    /// `captchaify_lookup_pending`: `true` for `captcha`.
    pub lookup_pending_captcha: Option<bool>,
    /// `captchaify_country` and `captchaify_asn` rules.
    pub geo_rules: Option<Arc<GeoRules>>,
    /// `captchaify_verified_crawlers`.
    pub verified_crawlers: Option<bool>,
    /// `captchaify_crawler_hints`.
    pub crawler_hints: Option<bool>,
    /// `captchaify_crowdsec`.
    pub crowdsec: Option<bool>,
    /// `captchaify_secure_cookies`: a setting of the module's own paths, which does not make
    /// the module act here by itself.
    pub secure_cookies: Option<SecureCookies>,
    /// `captchaify_precheck`.
    pub precheck: Option<policy::Precheck>,
    /// This location's key in the loads table, derived on first use in each worker. Never
    /// inherited: every location counts its own load.
    pub location_key: OnceCell<[u8; 16]>,
    /// This worker's requests to the location not yet added to the shared load (never
    /// inherited either).
    pub local_load: std::cell::Cell<crate::state::rate::LocalLoad>,
}

impl LocConf {
    pub const DEFAULT_VERIFICATION_AGE: u64 = 3600;

    /// Whether the module acts in this location at all.
    pub fn enabled(&self) -> bool {
        self.action.is_some()
            || self.hardness.is_some()
            || self.dry_run.is_some()
            || self.block_crawler.is_some()
            || self.verification_age.is_some()
            || self.without_cookies.is_some()
            || self.pages.is_some()
            || self.rate_limit.is_some()
            || self.max_rate_limit.is_some()
            || self.ipv6_prefix.is_some()
            || self.rate_limit_status.is_some()
            || self.audio_rate_limit.is_some()
            || self.default_language.is_some()
            || self.allow.is_some()
            || self.deny.is_some()
            || self.third_parties.is_some()
            || self.lookup_pending_captcha.is_some()
            || self.geo_rules.is_some()
            || self.verified_crawlers.is_some()
            || self.crawler_hints.is_some()
            || self.crowdsec.is_some()
    }

    /// CrowdSec's decisions apply and signals are reported here (default on; only matters
    /// with `captchaify_crowdsec_lapi`).
    pub fn crowdsec(&self) -> bool {
        self.crowdsec.unwrap_or(true)
    }

    /// Whether a client due a captcha first gets the pre-check (default on).
    pub fn precheck(&self) -> policy::Precheck {
        self.precheck.unwrap_or_default()
    }

    /// When the module's cookies get `Secure` (default: over TLS).
    pub fn secure_cookies(&self) -> SecureCookies {
        self.secure_cookies.unwrap_or(SecureCookies::Auto)
    }

    /// Crawlers facing the captcha see the real page's title and meta tags (default on).
    pub fn crawler_hints(&self) -> bool {
        self.crawler_hints.unwrap_or(true)
    }

    pub fn third_parties(&self) -> ThirdParties {
        self.third_parties.unwrap_or_default()
    }

    /// Audio captchas per client (hardness 3): stricter than the page limit, since a clip
    /// costs more to make than an image. `None` when off.
    pub fn audio_rate_limit(&self) -> Option<Rate> {
        self.audio_rate_limit.unwrap_or(Some(Rate::per_minute(6)))
    }

    /// The index of the default language in this location's page set.
    pub fn default_language(&self) -> usize {
        self.default_language
            .as_deref()
            .and_then(|tag| self.pages().languages().find(tag.as_bytes()))
            .unwrap_or(0)
    }

    /// Requests per client (and per pass token); `None` when off.
    pub fn rate_limit(&self) -> Option<Rate> {
        self.rate_limit.unwrap_or(Some(Rate::per_minute(120)))
    }

    /// The all-clients limit and cool-down of under-attack mode.
    pub fn max_rate_limit(&self) -> MaxRateLimit {
        self.max_rate_limit.unwrap_or_default()
    }

    pub fn ipv6_prefix(&self) -> u8 {
        self.ipv6_prefix.unwrap_or(64)
    }

    pub fn rate_limit_status(&self) -> u16 {
        self.rate_limit_status.unwrap_or(429)
    }

    pub fn policy(&self) -> policy::LocationPolicy {
        policy::LocationPolicy {
            action: self.action.unwrap_or_default(),
            block_crawler: self.block_crawler.unwrap_or(true),
            hardness: self.hardness.unwrap_or_default(),
            accept_url_pass: self.without_cookies(),
            under_attack: false,
            third_parties: self.third_parties(),
            pending_is_suspicious: self.lookup_pending_captcha.unwrap_or(false),
            verified_crawlers: self.verified_crawlers.unwrap_or(false),
            crowdsec: self.crowdsec(),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.dry_run.unwrap_or(false)
    }

    pub fn without_cookies(&self) -> bool {
        self.without_cookies.unwrap_or(false)
    }

    pub fn verification_age(&self) -> u64 {
        self.verification_age
            .unwrap_or(Self::DEFAULT_VERIFICATION_AGE)
    }

    pub fn pages(&self) -> &PageSet {
        match &self.pages {
            Some(pages) => pages,
            None => PageSet::builtin(),
        }
    }
}

impl Merge for LocConf {
    fn merge(&mut self, prev: &LocConf) -> Result<(), MergeConfigError> {
        self.action = self.action.or(prev.action);
        self.hardness = self.hardness.or(prev.hardness);
        self.dry_run = self.dry_run.or(prev.dry_run);
        self.block_crawler = self.block_crawler.or(prev.block_crawler);
        self.verification_age = self.verification_age.or(prev.verification_age);
        self.without_cookies = self.without_cookies.or(prev.without_cookies);
        if self.pages.is_none() {
            self.pages.clone_from(&prev.pages);
        }
        self.rate_limit = self.rate_limit.or(prev.rate_limit);
        self.max_rate_limit = self.max_rate_limit.or(prev.max_rate_limit);
        self.ipv6_prefix = self.ipv6_prefix.or(prev.ipv6_prefix);
        self.rate_limit_status = self.rate_limit_status.or(prev.rate_limit_status);
        self.audio_rate_limit = self.audio_rate_limit.or(prev.audio_rate_limit);
        if self.default_language.is_none() {
            self.default_language.clone_from(&prev.default_language);
        }
        // Lists set at a level replace the inherited ones, as nginx's `allow` and `deny` do.
        if self.allow.is_none() {
            self.allow.clone_from(&prev.allow);
        }
        if self.deny.is_none() {
            self.deny.clone_from(&prev.deny);
        }
        self.third_parties = self.third_parties.or(prev.third_parties);
        self.lookup_pending_captcha = self.lookup_pending_captcha.or(prev.lookup_pending_captcha);
        if self.geo_rules.is_none() {
            self.geo_rules.clone_from(&prev.geo_rules);
        }
        self.verified_crawlers = self.verified_crawlers.or(prev.verified_crawlers);
        self.crawler_hints = self.crawler_hints.or(prev.crawler_hints);
        self.crowdsec = self.crowdsec.or(prev.crowdsec);
        self.secure_cookies = self.secure_cookies.or(prev.secure_cookies);
        self.precheck = self.precheck.or(prev.precheck);
        if self.crowdsec == Some(true) {
            CROWDSEC_SEEN.store(true, core::sync::atomic::Ordering::Relaxed);
        }
        if self.geo_rules.is_some() {
            RULES_SEEN.store(true, core::sync::atomic::Ordering::Relaxed);
        }
        if self.enabled() && self.policy().needs_facts() {
            SOURCES_SEEN.fetch_or(
                self.third_parties().0,
                core::sync::atomic::Ordering::Relaxed,
            );
        }
        Ok(())
    }
}

/// `captchaify_secure_cookies`: when the pass and language cookies get `Secure`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SecureCookies {
    /// When the client reached nginx over TLS.
    Auto,
    Always,
    Never,
    /// When the value (with variables, e.g. `$http_x_forwarded_proto` behind a proxy that
    /// terminates TLS) is `https` or `on`.
    When(*mut ngx_http_complex_value_t),
}

impl SecureCookies {
    pub fn is_secure(self, r: &ngx::http::Request) -> bool {
        match self {
            SecureCookies::Auto => super::client::is_https(r),
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::When(value) => {
                let raw: *const ngx::ffi::ngx_http_request_t = r.into();
                let mut out = ngx_str_t::default();
                // SAFETY: `value` was compiled at configuration time in the configuration's
                // pool, which outlives every request; nginx evaluates it into the request pool.
                let ok =
                    unsafe { ngx::ffi::ngx_http_complex_value(raw.cast_mut(), value, &mut out) }
                        == ngx::core::Status::NGX_OK.0;
                ok && matches!(out.as_bytes(), b"https" | b"on")
            }
        }
    }
}

/// The sources enabled locations listen to, gathered while the configuration is merged
/// (reset in preconfiguration, read in postconfiguration into [`MainConf::sources_in_use`]).
pub(crate) static SOURCES_SEEN: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
/// Whether some level says `captchaify_crowdsec on` (gathered like [`SOURCES_SEEN`]).
pub(crate) static CROWDSEC_SEEN: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);
/// Whether some location has country or AS-number rules (gathered like [`SOURCES_SEEN`]).
pub(crate) static RULES_SEEN: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

/// Runs after the `http` block is parsed: an enabled module without `captchaify_zone` gets
/// the default zone, and the crawler patterns and built-in pages are prepared once, in the
/// master before the workers fork, instead of on each worker's first request.
pub(crate) unsafe extern "C" fn init_main_conf(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            // SAFETY: nginx passes this module's main configuration, created by create_main_conf.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if !mcf.used {
                return NGX_CONF_OK;
            }
            if mcf.zone.is_null() {
                match zone::add(cf, &ZoneSpec::default_zone()) {
                    Some(shm_zone) => mcf.zone = shm_zone,
                    None => return NGX_CONF_ERROR,
                }
            }
            if let Some(path) = crate::process::replaced_module_file() {
                ngx_conf_log_error!(
                ngx::ffi::NGX_LOG_WARN,
                cf,
                "captchaify: the module file \"{}\" was replaced since nginx loaded it, and a \
                 reload keeps running the module loaded then; to run the new one, restart nginx \
                 or upgrade its binary in place (kill -USR2 the master, then kill -QUIT the old one)",
                path
            );
            }
            policy::crawler::warm_up();
            crate::challenge::image::warm_up();
            crate::challenge::audio::warm_up();
            if !PageSet::builtin().is_complete() {
                ngx_conf_log_error!(
                    NGX_LOG_EMERG,
                    cf,
                    "captchaify: the built-in templates do not parse"
                );
                return NGX_CONF_ERROR;
            }
            NGX_CONF_OK
        },
    )
}

/// The only argument of the directive being parsed (all ours take exactly one, which nginx
/// checks before calling the handler; `None` cannot happen but costs nothing to handle).
///
/// # Safety
/// `cf` must be the configuration context nginx passes to a directive handler.
unsafe fn single_argument(cf: *mut ngx_conf_t) -> Option<ngx_str_t> {
    // SAFETY: for a directive handler, `cf.args` holds the directive name and its arguments.
    let args: &[ngx_str_t] = unsafe { (*(*cf).args).as_slice() };
    match args {
        [_name, arg] => Some(*arg),
        _ => None,
    }
}

/// Logs a configuration error the way nginx's own modules do: directive name, problem, and
/// (added by nginx) the file and line.
pub(super) fn reject(cf: *mut ngx_conf_t, directive: &str, problem: impl Display) -> *mut c_char {
    ngx_conf_log_error!(NGX_LOG_EMERG, cf, "\"{directive}\" directive: {problem}");
    NGX_CONF_ERROR
}

/// Sets one `Option` field of a location configuration from the directive's only argument.
fn set_location_value<T, E: Display>(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
    directive: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    field: impl FnOnce(&mut LocConf) -> &mut Option<T>,
) -> *mut c_char {
    // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
    let lcf = unsafe { &mut *conf.cast::<LocConf>() };
    // SAFETY: called from a directive handler.
    let Some(arg) = (unsafe { single_argument(cf) }) else {
        return reject(cf, directive, "takes one argument");
    };
    let Ok(value) = arg.to_str() else {
        return reject(cf, directive, "argument is not valid UTF-8");
    };
    let slot = field(lcf);
    if slot.is_some() {
        return reject(cf, directive, "is duplicate");
    }
    match parse(value) {
        Ok(parsed) => *slot = Some(parsed),
        Err(error) => return reject(cf, directive, error),
    }
    mark_used(cf);
    NGX_CONF_OK
}

fn mark_used(cf: *mut ngx_conf_t) {
    // SAFETY: directive handlers run inside the http block, where the main conf exists.
    if let Some(mcf) = Module::main_conf_mut(unsafe { &*cf }) {
        mcf.used = true;
    }
}

macro_rules! location_directive {
    ($handler:ident, $name:literal, $parse:expr, $field:ident) => {
        unsafe extern "C" fn $handler(
            cf: *mut ngx_conf_t,
            _cmd: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            super::unwind::guarded(
                "a directive",
                || NGX_CONF_ERROR,
                move || set_location_value(cf, conf, $name, $parse, |c| &mut c.$field),
            )
        }
    };
}

/// A path as written in the configuration, relative paths taken from nginx's prefix (`-p`),
/// as `root` does.
fn full_path(cf: *mut ngx_conf_t, value: &str) -> PathBuf {
    if value.starts_with('/') {
        return PathBuf::from(value);
    }
    // SAFETY: a configuration being parsed always has its cycle, whose prefix is a valid
    // nginx string.
    let prefix = unsafe { (*(*cf).cycle).prefix };
    let prefix = String::from_utf8_lossy(prefix.as_bytes()).into_owned();
    PathBuf::from(prefix).join(value)
}

location_directive!(
    set_action,
    "captchaify_action",
    str::parse::<Action>,
    action
);
location_directive!(
    set_hardness,
    "captchaify_hardness",
    str::parse::<Hardness>,
    hardness
);
location_directive!(set_dry_run, "captchaify_dry_run", parse_flag, dry_run);
location_directive!(
    set_block_crawler,
    "captchaify_block_crawler",
    parse_flag,
    block_crawler
);
location_directive!(
    set_without_cookies,
    "captchaify_without_cookies",
    parse_flag,
    without_cookies
);
location_directive!(
    set_rate_limit,
    "captchaify_rate_limit",
    parse_rate_or_off,
    rate_limit
);
location_directive!(
    set_audio_rate_limit,
    "captchaify_audio_rate_limit",
    parse_rate_or_off,
    audio_rate_limit
);
location_directive!(
    set_ipv6_prefix,
    "captchaify_ipv6_prefix",
    parse_ipv6_prefix,
    ipv6_prefix
);
location_directive!(
    set_rate_limit_status,
    "captchaify_rate_limit_status",
    parse_status,
    rate_limit_status
);
location_directive!(
    set_verification_age,
    "captchaify_verification_age",
    |v: &str| parse_duration_in(v, 60, 365 * 86400),
    verification_age
);

unsafe extern "C" fn set_template_dir(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            let load = |value: &str| PageSet::load_dir(&full_path(cf, value)).map(Arc::new);
            set_location_value(cf, conf, "captchaify_template_dir", load, |c| &mut c.pages)
        },
    )
}

unsafe extern "C" fn set_default_language(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
            // The block's own template set (shared, not copied), or the built-in one.
            let own = unsafe { &*conf.cast::<LocConf>() }.pages.clone();
            let pages = own.as_deref().unwrap_or_else(|| PageSet::builtin());
            let check = |tag: &str| {
                if pages.languages().find(tag.as_bytes()).is_some() {
                    Ok(tag.to_ascii_lowercase())
                } else {
                    let known: Vec<&str> = pages
                        .languages()
                        .all()
                        .iter()
                        .map(|l| l.tag.as_str())
                        .collect();
                    Err(format!(
                        "\"{tag}\" is not one of the languages here ({})",
                        known.join(", ")
                    ))
                }
            };
            set_location_value(cf, conf, "captchaify_default_language", check, |c| {
                &mut c.default_language
            })
        },
    )
}

/// `captchaify_allow` and `captchaify_deny`: addresses, ranges and `file=PATH`; several lines
/// at one level add up.
unsafe fn set_list(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
    name: &str,
    field: impl FnOnce(&mut LocConf) -> &mut Option<Arc<IpSet>>,
) -> *mut c_char {
    // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
    let lcf = unsafe { &mut *conf.cast::<LocConf>() };
    let args = match utf8_arguments(cf, name) {
        Ok(args) => args,
        Err(error) => return error,
    };
    let nets = match ranges::parse_arguments(&args, |p| full_path(cf, p)) {
        Ok(nets) => nets,
        Err(error) => return reject(cf, name, error),
    };
    let slot = field(lcf);
    let set = IpSet::new(nets);
    let set = match slot.as_deref() {
        Some(earlier) => earlier.union(&set),
        None => set,
    };
    if set.ranges() >= 1000 {
        ngx_conf_log_error!(
            ngx::ffi::NGX_LOG_NOTICE,
            cf,
            "captchaify: {}: {}",
            name,
            set
        );
    }
    *slot = Some(Arc::new(set));
    mark_used(cf);
    NGX_CONF_OK
}

unsafe extern "C" fn set_allow(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            // SAFETY: called by nginx for this directive.
            unsafe { set_list(cf, conf, "captchaify_allow", |c| &mut c.allow) }
        },
    )
}

unsafe extern "C" fn set_deny(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            // SAFETY: called by nginx for this directive.
            unsafe { set_list(cf, conf, "captchaify_deny", |c| &mut c.deny) }
        },
    )
}

unsafe extern "C" fn set_third_parties(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_third_parties";
            // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
            let lcf = unsafe { &mut *conf.cast::<LocConf>() };
            if lcf.third_parties.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            match ThirdParties::parse(&args) {
                Ok(parties) => lcf.third_parties = Some(parties),
                Err(error) => return reject(cf, NAME, error),
            }
            mark_used(cf);
            NGX_CONF_OK
        },
    )
}

location_directive!(
    set_crawler_hints,
    "captchaify_crawler_hints",
    parse_flag,
    crawler_hints
);

location_directive!(
    set_verified_crawlers,
    "captchaify_verified_crawlers",
    parse_flag,
    verified_crawlers
);

unsafe extern "C" fn set_crawler_ranges(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_crawler_ranges";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            let Some((name, files)) = args.split_first().filter(|(_, files)| !files.is_empty())
            else {
                return reject(
                    cf,
                    NAME,
                    "expected a crawler (google, bing, apple or yandex) and one or more files",
                );
            };
            let Some(crawler) = Crawler::parse(name) else {
                return reject(
                    cf,
                    NAME,
                    format_args!(
                        "unknown crawler \"{name}\", expected google, bing, apple or yandex"
                    ),
                );
            };
            if mcf.crawler_ranges.iter().any(|(c, _)| *c == crawler) {
                return reject(cf, NAME, format_args!("\"{name}\" is set twice"));
            }
            let mut nets = Vec::new();
            for file in files {
                let path = full_path(cf, file);
                let body = match std::fs::read(&path) {
                    Ok(body) => body,
                    Err(error) => {
                        return reject(
                            cf,
                            NAME,
                            format_args!("cannot read \"{}\": {}", path.display(), error),
                        )
                    }
                };
                match crate::policy::verified::parse_ranges(&body) {
                    Ok(found) => nets.extend(found),
                    Err(error) => {
                        return reject(cf, NAME, format_args!("\"{}\": {}", path.display(), error))
                    }
                }
            }
            mcf.crawler_ranges
                .push((crawler, Arc::new(IpSet::new(nets))));
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

location_directive!(set_crowdsec, "captchaify_crowdsec", parse_flag, crowdsec);
/// `captchaify_precheck`: a setting only, which does not make the module used (nor act).
unsafe extern "C" fn set_precheck(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_precheck";
            // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
            let lcf = unsafe { &mut *conf.cast::<LocConf>() };
            if lcf.precheck.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            // SAFETY: called from a directive handler.
            let value = unsafe { single_argument(cf) }
                .and_then(|arg| arg.to_str().ok().map(str::parse::<policy::Precheck>));
            match value {
                Some(Ok(precheck)) => lcf.precheck = Some(precheck),
                Some(Err(error)) => return reject(cf, NAME, error),
                None => return reject(cf, NAME, "takes one argument of valid UTF-8"),
            }
            NGX_CONF_OK
        },
    )
}

unsafe extern "C" fn set_secure_cookies(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_secure_cookies";
            // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
            let lcf = unsafe { &mut *conf.cast::<LocConf>() };
            if lcf.secure_cookies.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            // SAFETY: called from a directive handler.
            let Some(mut arg) = (unsafe { single_argument(cf) }) else {
                return reject(cf, NAME, "takes one argument");
            };
            let value = match arg.as_bytes() {
                b"auto" => SecureCookies::Auto,
                b"on" => SecureCookies::Always,
                b"off" => SecureCookies::Never,
                bytes if bytes.contains(&b'$') => {
                    // SAFETY: the configuration pool outlives the configuration; nginx fills the
                    // zeroed compile context and the value it points at.
                    unsafe {
                        let value = ngx::ffi::ngx_pcalloc(
                            (*cf).pool,
                            core::mem::size_of::<ngx_http_complex_value_t>(),
                        )
                        .cast::<ngx_http_complex_value_t>();
                        if value.is_null() {
                            return NGX_CONF_ERROR;
                        }
                        let mut ccv: ngx_http_compile_complex_value_t = core::mem::zeroed();
                        ccv.cf = cf;
                        ccv.value = &mut arg;
                        ccv.complex_value = value;
                        if ngx::ffi::ngx_http_compile_complex_value(&mut ccv)
                            != ngx::core::Status::NGX_OK.0
                        {
                            return NGX_CONF_ERROR;
                        }
                        SecureCookies::When(value)
                    }
                }
                other => {
                    let other = String::from_utf8_lossy(other);
                    return reject(cf, NAME, format_args!("invalid value \"{other}\", expected auto, on, off or a value with variables"));
                }
            };
            lcf.secure_cookies = Some(value);
            mark_used(cf);
            NGX_CONF_OK
        },
    )
}

unsafe extern "C" fn set_crowdsec_lapi(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_crowdsec_lapi";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if mcf.crowdsec.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            let spec = match crate::crowdsec::LapiSpec::parse(&args, |p| full_path(cf, p)) {
                Ok(spec) => spec,
                Err(error) => return reject(cf, NAME, error),
            };
            let key = match crate::crowdsec::read_credential(&spec.key_file) {
                Ok(key) => key,
                Err(error) => return reject(cf, NAME, error),
            };
            match CrowdsecConf::new(cf, spec, key) {
                Some(crowdsec) => mcf.crowdsec = Some(crowdsec),
                None => return NGX_CONF_ERROR,
            }
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

unsafe extern "C" fn set_crowdsec_machine(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_crowdsec_machine";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if mcf.crowdsec_machine.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            let spec = match crate::crowdsec::MachineSpec::parse(&args, |p| full_path(cf, p)) {
                Ok(spec) => spec,
                Err(error) => return reject(cf, NAME, error),
            };
            let password = match crate::crowdsec::read_credential(&spec.password_file) {
                Ok(password) => password,
                Err(error) => return reject(cf, NAME, error),
            };
            mcf.crowdsec_machine = Some(Machine::new(spec, password));
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

location_directive!(
    set_lookup_pending,
    "captchaify_lookup_pending",
    |v: &str| match v {
        "pass" => Ok(false),
        "captcha" => Ok(true),
        other => Err(format!(
            "invalid value \"{other}\", expected pass or captcha"
        )),
    },
    lookup_pending_captcha
);

unsafe extern "C" fn set_feed(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_feed";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            let spec = match FeedSpec::parse(&args, |p| full_path(cf, p)) {
                Ok(spec) => spec,
                Err(error) => return reject(cf, NAME, error),
            };
            if mcf.feeds.iter().any(|f| f.name == spec.name) {
                return reject(
                    cf,
                    NAME,
                    format_args!("\"{}\" is set twice", spec.name.as_str()),
                );
            }
            mcf.feeds.push(spec);
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

/// `captchaify_country CC... ACTION` and `captchaify_asn N... ACTION`; several lines at one
/// level add up, and a level with its own rules does not inherit any.
fn set_geo_rule(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
    name: &str,
    add: fn(&mut GeoRules, &[&str]) -> Result<(), crate::reputation::rules::RuleError>,
) -> *mut c_char {
    // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
    let lcf = unsafe { &mut *conf.cast::<LocConf>() };
    let args = match utf8_arguments(cf, name) {
        Ok(args) => args,
        Err(error) => return error,
    };
    let mut rules = lcf.geo_rules.as_deref().cloned().unwrap_or_default();
    if let Err(error) = add(&mut rules, &args) {
        return reject(cf, name, error);
    }
    lcf.geo_rules = Some(Arc::new(rules));
    mark_used(cf);
    NGX_CONF_OK
}

unsafe extern "C" fn set_country(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || set_geo_rule(cf, conf, "captchaify_country", GeoRules::add_countries),
    )
}

unsafe extern "C" fn set_asn(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || set_geo_rule(cf, conf, "captchaify_asn", GeoRules::add_asns),
    )
}

unsafe extern "C" fn set_geoip_db(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_geoip_db";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if mcf.geo.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            let paths: Vec<PathBuf> = args.iter().map(|a| full_path(cf, a)).collect();
            match GeoDb::open(&paths) {
                Ok(db) => {
                    ngx_conf_log_error!(
                        ngx::ffi::NGX_LOG_NOTICE,
                        cf,
                        "captchaify: GeoIP: {}",
                        db.describe()
                    );
                    mcf.geo = Some(Arc::new(db));
                }
                Err(error) => return reject(cf, NAME, error),
            }
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

unsafe extern "C" fn set_max_rate_limit(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_max_rate_limit";
            // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
            let lcf = unsafe { &mut *conf.cast::<LocConf>() };
            if lcf.max_rate_limit.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            match MaxRateLimit::parse(&args) {
                Ok(limit) => lcf.max_rate_limit = Some(limit),
                Err(error) => return reject(cf, NAME, error),
            }
            mark_used(cf);
            NGX_CONF_OK
        },
    )
}

/// The arguments after the directive name, as UTF-8.
fn utf8_arguments<'a>(cf: *mut ngx_conf_t, directive: &str) -> Result<Vec<&'a str>, *mut c_char> {
    // SAFETY: for a directive handler, `cf.args` holds the directive name and its arguments.
    let args: &[ngx_str_t] = unsafe { (*(*cf).args).as_slice() };
    args.iter()
        .skip(1)
        .map(|arg| {
            arg.to_str()
                .map_err(|_| reject(cf, directive, "argument is not valid UTF-8"))
        })
        .collect()
}

unsafe extern "C" fn set_secret_file(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_secret_file";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if mcf.secret_files.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            let mut secrets = Vec::new();
            for arg in args {
                match read_secret_file(&full_path(cf, arg), Secrets::MIN_LEN) {
                    Ok(secret) => secrets.push(secret),
                    Err(error) => return reject(cf, NAME, error),
                }
            }
            let mut secrets = secrets.into_iter();
            let (Some(current), previous) = (secrets.next(), secrets.next()) else {
                return reject(cf, NAME, "needs a file");
            };
            mcf.secret_files = Secrets::new(current, previous);
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

unsafe extern "C" fn set_max_failures(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            const NAME: &str = "captchaify_max_failures";
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if mcf.failure_limit_set {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            match FailureLimit::parse(&args) {
                Ok(limit) => mcf.failure_limit = limit,
                Err(error) => return reject(cf, NAME, error),
            }
            mcf.failure_limit_set = true;
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

unsafe extern "C" fn set_zone(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    super::unwind::guarded(
        "a directive",
        || NGX_CONF_ERROR,
        move || {
            // SAFETY: nginx passes this module's main configuration for NGX_HTTP_MAIN_CONF_OFFSET.
            let mcf = unsafe { &mut *conf.cast::<MainConf>() };
            if !mcf.zone.is_null() {
                return reject(cf, "captchaify_zone", "is duplicate");
            }
            // SAFETY: called from a directive handler.
            let Some(arg) = (unsafe { single_argument(cf) }) else {
                return reject(cf, "captchaify_zone", "takes one argument");
            };
            let spec = match arg.to_str().map(ZoneSpec::parse) {
                Ok(Ok(spec)) => spec,
                Ok(Err(error)) => return reject(cf, "captchaify_zone", error),
                Err(_) => return reject(cf, "captchaify_zone", "argument is not valid UTF-8"),
            };
            match zone::add(cf, &spec) {
                Some(shm_zone) => mcf.zone = shm_zone,
                None => return NGX_CONF_ERROR,
            }
            mcf.used = true;
            NGX_CONF_OK
        },
    )
}

const ANY_LEVEL: usize = (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF) as usize;

const fn location_command(
    name: ngx_str_t,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    location_command_taking(name, NGX_CONF_TAKE1, set)
}

const fn location_command_taking(
    name: ngx_str_t,
    arguments: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: (ANY_LEVEL | arguments as usize) as _,
        set: Some(set),
        conf: NGX_HTTP_LOC_CONF_OFFSET as _,
        offset: 0,
        post: ptr::null_mut(),
    }
}

const fn main_command(
    name: ngx_str_t,
    arguments: u32,
    set: unsafe extern "C" fn(*mut ngx_conf_t, *mut ngx_command_t, *mut c_void) -> *mut c_char,
) -> ngx_command_t {
    ngx_command_t {
        name,
        type_: (NGX_HTTP_MAIN_CONF | arguments) as _,
        set: Some(set),
        conf: NGX_HTTP_MAIN_CONF_OFFSET as _,
        offset: 0,
        post: ptr::null_mut(),
    }
}

pub(crate) static mut COMMANDS: [ngx_command_t; 33] = [
    location_command(ngx_string!("captchaify_action"), set_action),
    location_command(ngx_string!("captchaify_hardness"), set_hardness),
    location_command(ngx_string!("captchaify_dry_run"), set_dry_run),
    location_command(ngx_string!("captchaify_block_crawler"), set_block_crawler),
    location_command(
        ngx_string!("captchaify_verification_age"),
        set_verification_age,
    ),
    location_command(
        ngx_string!("captchaify_without_cookies"),
        set_without_cookies,
    ),
    location_command(ngx_string!("captchaify_template_dir"), set_template_dir),
    location_command(ngx_string!("captchaify_rate_limit"), set_rate_limit),
    location_command_taking(
        ngx_string!("captchaify_max_rate_limit"),
        NGX_CONF_TAKE12,
        set_max_rate_limit,
    ),
    location_command(ngx_string!("captchaify_ipv6_prefix"), set_ipv6_prefix),
    location_command(
        ngx_string!("captchaify_rate_limit_status"),
        set_rate_limit_status,
    ),
    location_command(
        ngx_string!("captchaify_audio_rate_limit"),
        set_audio_rate_limit,
    ),
    location_command(
        ngx_string!("captchaify_default_language"),
        set_default_language,
    ),
    location_command_taking(ngx_string!("captchaify_allow"), NGX_CONF_1MORE, set_allow),
    location_command_taking(ngx_string!("captchaify_deny"), NGX_CONF_1MORE, set_deny),
    location_command_taking(
        ngx_string!("captchaify_third_parties"),
        NGX_CONF_1MORE,
        set_third_parties,
    ),
    location_command(ngx_string!("captchaify_lookup_pending"), set_lookup_pending),
    main_command(ngx_string!("captchaify_feed"), NGX_CONF_1MORE, set_feed),
    location_command_taking(
        ngx_string!("captchaify_country"),
        NGX_CONF_1MORE,
        set_country,
    ),
    location_command_taking(ngx_string!("captchaify_asn"), NGX_CONF_1MORE, set_asn),
    main_command(
        ngx_string!("captchaify_geoip_db"),
        NGX_CONF_1MORE,
        set_geoip_db,
    ),
    location_command(
        ngx_string!("captchaify_verified_crawlers"),
        set_verified_crawlers,
    ),
    location_command(ngx_string!("captchaify_crawler_hints"), set_crawler_hints),
    main_command(
        ngx_string!("captchaify_crawler_ranges"),
        NGX_CONF_1MORE,
        set_crawler_ranges,
    ),
    location_command(ngx_string!("captchaify_crowdsec"), set_crowdsec),
    location_command(ngx_string!("captchaify_secure_cookies"), set_secure_cookies),
    location_command(ngx_string!("captchaify_precheck"), set_precheck),
    main_command(
        ngx_string!("captchaify_crowdsec_lapi"),
        NGX_CONF_1MORE,
        set_crowdsec_lapi,
    ),
    main_command(
        ngx_string!("captchaify_crowdsec_machine"),
        NGX_CONF_1MORE,
        set_crowdsec_machine,
    ),
    main_command(ngx_string!("captchaify_zone"), NGX_CONF_TAKE1, set_zone),
    main_command(
        ngx_string!("captchaify_secret_file"),
        NGX_CONF_TAKE12,
        set_secret_file,
    ),
    main_command(
        ngx_string!("captchaify_max_failures"),
        NGX_CONF_TAKE123,
        set_max_failures,
    ),
    ngx_command_t::empty(),
];
