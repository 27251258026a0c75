//! The module's configuration: what each level of `nginx.conf` sets, and what is in force in
//! a location once merged.
//!
//! The directives (`directives.rs`) write [`Settings`], one per `http`, `server` and
//! `location` level, where `None` means "not set here". When nginx merges a level with the one
//! around it, [`merge`] fills the gaps from there and resolves every default once, into the
//! plain [`Location`] the handlers read. The module acts only where `captchaify_action`
//! applies (set at that level or inherited); [`finish`] warns about every other setting that
//! reaches no such location, naming its file and line.

use core::ffi::{c_char, c_void};
use core::ptr;
use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{ngx_conf_t, ngx_shm_zone_t, NGX_LOG_EMERG};
use ngx::http::HttpModuleMainConf;
use ngx::{ngx_conf_log_error, ngx_log_error};

use super::crowdsec::{CrowdsecConf, Machine};
use super::setting::{ComplexValue, Setting, Variables};
use super::{zone, Module};
use crate::challenge::pass_cache::PassCache;
use crate::challenge::picture::PictureSet;
use crate::challenge::token::Secrets;
use crate::challenge::ChallengeKind;
use crate::conf::{MaxRateLimit, ZoneSpec};
use crate::crawler::verified::Crawler;
use crate::crawler::CrawlerCache;
use crate::pages::{PageKind, PageSet};
use crate::policy::{self, Action, Hardness, LocationPolicy, ThirdParties};
use crate::reputation::geoip::GeoDb;
use crate::reputation::ranges::IpSet;
use crate::reputation::rules::GeoRules;
use crate::reputation::{FeedSpec, Source};
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
    pub failure_limit_set: bool,
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
    /// The third-party sources some location where the module acts listens to (bits of
    /// [`ThirdParties`], gathered by [`merge`]): only these are fetched.
    pub sources_in_use: ThirdParties,
    /// Keys of the reputation tables, from the zone's own secret (which never changes for
    /// the zone's life, so lists survive a change of `captchaify_secret_file`).
    feed_secrets: OnceCell<Option<Secrets>>,
    /// `captchaify_crowdsec_lapi`: the Local API whose decisions apply.
    pub crowdsec: Option<CrowdsecConf>,
    /// `captchaify_crowdsec_machine`: the credentials alerts are reported with.
    pub crowdsec_machine: Option<Machine>,
    /// Every location-level directive written in the configuration, with its place, and
    /// whether it reaches a location where the module acts.
    pub written: Vec<Written>,
    /// Some level says `captchaify_crowdsec on` (which needs `captchaify_crowdsec_lapi`).
    pub crowdsec_asked: bool,
    /// Some level has country or AS-number rules (which need a GeoIP database or ip-api).
    pub geo_rules_in_use: bool,
    /// Some acting location has such rules and does not ask ip-api (so needs the database).
    pub geo_rules_without_ipapi: bool,
    /// Some acting location shows picture captchas with templates that lack picture.html.
    pub picture_pages_missing: bool,
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
            sources_in_use: ThirdParties::NONE,
            feed_secrets: OnceCell::new(),
            crowdsec: None,
            crowdsec_machine: None,
            written: Vec::new(),
            crowdsec_asked: false,
            geo_rules_in_use: false,
            geo_rules_without_ipapi: false,
            picture_pages_missing: false,
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
    pub fn feed(&self, name: Source) -> FeedSpec {
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

/// One location-level directive as written: where, and whether it reaches a location where
/// the module acts (see [`finish`]).
#[derive(Debug)]
pub(crate) struct Written {
    pub directive: &'static str,
    pub file: String,
    pub line: usize,
    pub reaches_action: bool,
}

/// The directive whose setting only matters where a picture captcha is shown.
const PICTURE_DIR: &str = "captchaify_picture_dir";

/// Settings of the module's own pages and cookies. The module's own paths (`/.captchaify/…`)
/// are served in whichever location they fall, acting or not, so these never warn.
const PAGE_SETTINGS: [&str; 5] = [
    "captchaify_template_dir",
    "captchaify_default_language",
    "captchaify_secure_cookies",
    "captchaify_without_cookies",
    "captchaify_verification_age",
];

/// What one `http`, `server` or `location` level sets. `None` means "not set here": the value
/// is inherited.
#[derive(Debug, Default, Clone)]
pub(crate) struct Settings {
    /// `captchaify_action`, `captchaify_hardness` and `captchaify_captcha_type`: a value, or a
    /// variable read per request.
    pub action: Option<Setting<Action>>,
    pub hardness: Option<Setting<Hardness>>,
    pub kind: Option<Setting<ChallengeKind>>,
    /// `captchaify_picture_dir`: an operator's picture set, loaded at configuration time.
    pub pictures: Option<Arc<PictureSet>>,
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
    pub verified_crawlers: Option<bool>,
    pub crawler_hints: Option<bool>,
    pub crowdsec: Option<bool>,
    pub secure_cookies: Option<SecureCookies>,
    pub precheck: Option<policy::Precheck>,
    /// `captchaify_metrics_name`: the location's label in the metrics.
    pub metrics_name: Option<String>,
}

impl Settings {
    /// Takes from `outer` (the level around this one) what this level does not set. Lists
    /// and rules set at a level replace the inherited ones, as nginx's `allow` and `deny` do.
    fn inherit(&mut self, outer: &Settings) {
        fn or<T: Clone>(mine: &mut Option<T>, outer: &Option<T>) {
            if mine.is_none() {
                mine.clone_from(outer);
            }
        }
        or(&mut self.action, &outer.action);
        or(&mut self.hardness, &outer.hardness);
        or(&mut self.kind, &outer.kind);
        or(&mut self.pictures, &outer.pictures);
        or(&mut self.dry_run, &outer.dry_run);
        or(&mut self.block_crawler, &outer.block_crawler);
        or(&mut self.verification_age, &outer.verification_age);
        or(&mut self.without_cookies, &outer.without_cookies);
        or(&mut self.pages, &outer.pages);
        or(&mut self.rate_limit, &outer.rate_limit);
        or(&mut self.max_rate_limit, &outer.max_rate_limit);
        or(&mut self.ipv6_prefix, &outer.ipv6_prefix);
        or(&mut self.rate_limit_status, &outer.rate_limit_status);
        or(&mut self.audio_rate_limit, &outer.audio_rate_limit);
        or(&mut self.default_language, &outer.default_language);
        or(&mut self.allow, &outer.allow);
        or(&mut self.deny, &outer.deny);
        or(&mut self.third_parties, &outer.third_parties);
        or(
            &mut self.lookup_pending_captcha,
            &outer.lookup_pending_captcha,
        );
        or(&mut self.geo_rules, &outer.geo_rules);
        or(&mut self.verified_crawlers, &outer.verified_crawlers);
        or(&mut self.crawler_hints, &outer.crawler_hints);
        or(&mut self.crowdsec, &outer.crowdsec);
        or(&mut self.secure_cookies, &outer.secure_cookies);
        or(&mut self.precheck, &outer.precheck);
        or(&mut self.metrics_name, &outer.metrics_name);
    }

    /// The settings in force, every default applied.
    fn resolve(&self) -> Location {
        let pages = self.pages.as_deref().unwrap_or_else(|| PageSet::builtin());
        let without_cookies = self.without_cookies.unwrap_or(false);
        Location {
            acts: self.action.is_some(),
            policy: LocationPolicy {
                action: self
                    .action
                    .map_or_else(Action::default, Setting::at_configuration),
                block_crawler: self.block_crawler.unwrap_or(true),
                hardness: self
                    .hardness
                    .map_or_else(Hardness::default, Setting::at_configuration),
                accept_url_pass: without_cookies,
                under_attack: false,
                third_parties: self.third_parties.unwrap_or_default(),
                pending_is_suspicious: self.lookup_pending_captcha.unwrap_or(false),
                verified_crawlers: self.verified_crawlers.unwrap_or(false),
                crowdsec: self.crowdsec.unwrap_or(true),
                challenge_unverified: false,
            },
            kind: self
                .kind
                .map_or_else(ChallengeKind::default, Setting::at_configuration),
            variables: Variables {
                action: self.action.and_then(Setting::variable),
                hardness: self.hardness.and_then(Setting::variable),
                kind: self.kind.and_then(Setting::variable),
            },
            pictures: self.pictures.clone(),
            dry_run: self.dry_run.unwrap_or(false),
            verification_age: self
                .verification_age
                .unwrap_or(Location::DEFAULT_VERIFICATION_AGE),
            without_cookies,
            pages: self.pages.clone(),
            default_language: self
                .default_language
                .as_deref()
                .and_then(|tag| pages.languages().find(tag.as_bytes()))
                .unwrap_or(0),
            rate_limit: self.rate_limit.unwrap_or(Some(Rate::per_minute(120))),
            max_rate_limit: self.max_rate_limit.unwrap_or_default(),
            ipv6_prefix: self.ipv6_prefix.unwrap_or(64),
            rate_limit_status: self.rate_limit_status.unwrap_or(429),
            audio_rate_limit: self.audio_rate_limit.unwrap_or(Some(Rate::per_minute(6))),
            allow: self.allow.clone(),
            deny: self.deny.clone(),
            geo_rules: self.geo_rules.clone().filter(|rules| !rules.is_empty()),
            crawler_hints: self.crawler_hints.unwrap_or(true),
            secure_cookies: self.secure_cookies.unwrap_or(SecureCookies::Auto),
            precheck: self.precheck.unwrap_or_default(),
            metrics_name: self.metrics_name.clone(),
        }
    }
}

/// The settings in force in one location, resolved once when the configuration is merged.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// `captchaify_action` applies here (set or inherited): the module decides this
    /// location's requests. Elsewhere it only serves its own paths.
    pub acts: bool,
    /// The action, the hardness and the sources of suspicion that count. An action or a
    /// hardness given as a variable is the strictest here, and read per request
    /// ([`super::setting::policy`]).
    pub policy: LocationPolicy,
    /// What its captchas ask (`captchaify_captcha_type`; read per request when a variable,
    /// [`super::setting::kind`]).
    pub kind: ChallengeKind,
    /// The settings above given as variables.
    pub variables: Variables,
    /// The operator's picture set (`captchaify_picture_dir`); `None` for the shipped set of
    /// the kind.
    pub pictures: Option<Arc<PictureSet>>,
    pub dry_run: bool,
    /// Seconds a solved captcha stays valid.
    pub verification_age: u64,
    pub without_cookies: bool,
    /// The operator's templates; `None` for the built-in ones (see [`Location::pages`]).
    pages: Option<Arc<PageSet>>,
    /// The index of the default language in [`Location::pages`].
    pub default_language: usize,
    /// Requests per client (and per pass token); `None` when off.
    pub rate_limit: Option<Rate>,
    /// The all-clients limit and cool-down of under-attack mode.
    pub max_rate_limit: MaxRateLimit,
    pub ipv6_prefix: u8,
    pub rate_limit_status: u16,
    /// Audio captchas per client (hardness 3): stricter than the page limit, since a clip
    /// costs more to make than an image. `None` when off.
    pub audio_rate_limit: Option<Rate>,
    pub allow: Option<Arc<IpSet>>,
    pub deny: Option<Arc<IpSet>>,
    /// Country and AS-number rules, `None` when there are none.
    pub geo_rules: Option<Arc<GeoRules>>,
    /// Crawlers facing the captcha see the real page's title and meta tags.
    pub crawler_hints: bool,
    /// When the module's cookies get `Secure`.
    pub secure_cookies: SecureCookies,
    /// Whether a client due a captcha first gets the pre-check.
    pub precheck: policy::Precheck,
    /// Its label in the metrics; `None` for its server's name and its own.
    pub metrics_name: Option<String>,
}

impl Location {
    pub const DEFAULT_VERIFICATION_AGE: u64 = 3600;

    /// Whether the location may show picture captchas: its kind is one, or a variable.
    pub fn may_show_pictures(&self) -> bool {
        self.kind.is_picture() || self.variables.kind.is_some()
    }

    /// The page templates in force.
    pub fn pages(&self) -> &PageSet {
        match &self.pages {
            Some(pages) => pages,
            None => PageSet::builtin(),
        }
    }
}

impl Default for Location {
    fn default() -> Self {
        Settings::default().resolve()
    }
}

/// Configuration of one `http`, `server` or `location` level.
#[derive(Debug, Default)]
pub(crate) struct LocConf {
    /// What this level's directives set.
    pub set: Settings,
    /// What is in force here, resolved by [`merge`] (the defaults at a level never merged).
    pub loc: Location,
    /// This level's directives, as indices into [`MainConf::written`].
    written_here: Vec<usize>,
    /// The directives of the levels around this one.
    written_around: Vec<usize>,
    /// This location's key in the loads table, derived on first use in each worker. Never
    /// inherited: every location counts its own load.
    pub location_key: OnceCell<[u8; 16]>,
    /// This worker's requests to the location not yet added to the shared load (never
    /// inherited either).
    pub local_load: std::cell::Cell<crate::state::rate::LocalLoad>,
    /// Where this location's requests are counted in the metrics, found on first use in each
    /// worker (never inherited).
    pub metrics_slot: OnceCell<Option<crate::state::metrics::LocationIndex>>,
    /// Where `captchaify_metrics` is written in this location (`file:line`): the location
    /// serves the metrics, and the module decides none of its requests (never inherited).
    pub serves_metrics: Option<String>,
}

impl LocConf {
    /// Notes that a directive was written at this level, at the place nginx is reading.
    ///
    /// # Safety
    /// `cf` must be the configuration context nginx passes to a directive handler.
    pub unsafe fn note(&mut self, cf: *mut ngx_conf_t, directive: &'static str) {
        // SAFETY: a directive handler's context has its main configuration and the file being
        // read, whose name is a valid nginx string.
        let (mcf, file, line) = unsafe {
            let file = (*cf).conf_file;
            (
                Module::main_conf_mut(&*cf),
                String::from_utf8_lossy((*file).file.name.as_bytes()).into_owned(),
                (*file).line,
            )
        };
        let Some(mcf) = mcf else { return };
        mcf.used = true;
        self.written_here.push(mcf.written.len());
        mcf.written.push(Written {
            directive,
            file,
            line,
            reaches_action: false,
        });
    }
}

/// Merges a level with the one around it (`outer`): fills what it does not set, resolves the
/// settings in force, and notes in the main configuration what the module will need: the
/// sources some acting location listens to, CrowdSec, GeoIP.
pub(crate) fn merge(cf: *mut ngx_conf_t, outer: &LocConf, conf: &mut LocConf) {
    conf.set.inherit(&outer.set);
    conf.loc = conf.set.resolve();
    conf.written_around = outer
        .written_here
        .iter()
        .chain(&outer.written_around)
        .copied()
        .collect();
    // SAFETY: nginx merges inside the http block, where the main configuration exists.
    let Some(mcf) = Module::main_conf_mut(unsafe { &*cf }) else {
        return;
    };
    mcf.crowdsec_asked |= conf.set.crowdsec == Some(true);
    mcf.geo_rules_in_use |= conf.set.geo_rules.is_some();
    if !conf.loc.acts {
        return;
    }
    for &index in conf.written_here.iter().chain(&conf.written_around) {
        if let Some(written) = mcf.written.get_mut(index) {
            written.reaches_action |=
                written.directive != PICTURE_DIR || conf.loc.may_show_pictures();
        }
    }
    if conf.loc.may_show_pictures() && !conf.loc.pages().has(PageKind::Picture) {
        mcf.picture_pages_missing = true;
    }
    if conf.loc.policy.needs_facts() {
        mcf.sources_in_use.0 |= conf.loc.policy.third_parties.0;
        mcf.geo_rules_without_ipapi |=
            conf.loc.geo_rules.is_some() && !conf.loc.policy.third_parties.has(Source::IpApi);
    }
}

/// Checks the whole configuration once it is merged: settings that reach no location where
/// the module acts are warned about; rules and CrowdSec switches without what they need
/// fail `nginx -t`.
pub(crate) fn finish(cf: *mut ngx_conf_t, mcf: &MainConf) -> Result<(), ()> {
    // SAFETY: nginx calls postconfiguration with a valid configuration context.
    let log = unsafe { (*cf).log };
    for written in &mcf.written {
        if written.reaches_action || PAGE_SETTINGS.contains(&written.directive) {
            continue;
        }
        if written.directive == PICTURE_DIR {
            ngx_log_error!(
                ngx::ffi::NGX_LOG_WARN,
                log,
                "captchaify: \"{}\" in {}:{} reaches no location that acts with a picture \
                 captcha (captchaify_captcha_type emoji, animals or a variable), so it does nothing",
                written.directive,
                written.file,
                written.line
            );
            continue;
        }
        ngx_log_error!(
            ngx::ffi::NGX_LOG_WARN,
            log,
            "captchaify: \"{}\" in {}:{} reaches no location where captchaify_action is set \
             (here or around it), so it does nothing",
            written.directive,
            written.file,
            written.line
        );
    }
    if mcf.picture_pages_missing {
        ngx_log_error!(
            ngx::ffi::NGX_LOG_WARN,
            log,
            "captchaify: a captchaify_template_dir in use where a picture captcha is shown has \
             no picture.html: those locations answer their captcha with 404 (copy \
             templates/picture.html into the directory)"
        );
    }
    // Without either, a rule would match nobody: on an offline server it would do nothing,
    // silently. ip-api counts only where a location turns it on (it is off by default).
    let unanswerable = mcf.geo_rules_without_ipapi
        || (mcf.geo_rules_in_use && !mcf.sources_in_use.has(Source::IpApi));
    if unanswerable && mcf.geo.is_none() {
        ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "captchaify: country and AS-number rules need a GeoIP database \
             (captchaify_geoip_db), or ip-api asked about each visitor (ipapi in \
             captchaify_third_parties, off by default)"
        );
        return Err(());
    }
    if mcf.crowdsec.is_none() && (mcf.crowdsec_asked || mcf.crowdsec_machine.is_some()) {
        let what = if mcf.crowdsec_asked {
            "captchaify_crowdsec on"
        } else {
            "captchaify_crowdsec_machine"
        };
        ngx_conf_log_error!(
            NGX_LOG_EMERG,
            cf,
            "captchaify: {} needs captchaify_crowdsec_lapi in the http block",
            what
        );
        return Err(());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum SecureCookies {
    /// When the client reached nginx over TLS.
    Auto,
    Always,
    Never,
    /// When the value (with variables, e.g. `$http_x_forwarded_proto` behind a proxy that
    /// terminates TLS) is `https` or `on`.
    When(ComplexValue),
}

impl SecureCookies {
    pub fn is_secure(self, r: &ngx::http::Request) -> bool {
        match self {
            SecureCookies::Auto => super::client::is_https(r),
            SecureCookies::Always => true,
            SecureCookies::Never => false,
            SecureCookies::When(value) => {
                matches!(value.evaluate(r), Some(b"https" | b"on"))
            }
        }
    }
}

/// Runs after the `http` block is parsed: a module used at all without `captchaify_zone` gets
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
            crate::crawler::warm_up();
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
