//! The directive table and its handlers, which fill the structs of `conf.rs`.
//!
//! Every value goes through the pure parsers in `policy` and `conf`; an error is logged with
//! nginx's file-and-line context and fails `nginx -t`.

use core::ffi::{c_char, c_void};
use core::fmt::Display;
use core::ptr;
use std::path::PathBuf;
use std::sync::Arc;

use ngx::core::{NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::ffi::{
    ngx_command_t, ngx_conf_t, ngx_str_t, NGX_CONF_1MORE, NGX_CONF_NOARGS, NGX_CONF_TAKE1,
    NGX_CONF_TAKE12, NGX_CONF_TAKE123, NGX_HTTP_LOC_CONF, NGX_HTTP_LOC_CONF_OFFSET,
    NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};
use ngx::{ngx_conf_log_error, ngx_string};

use super::conf::{LocConf, MainConf, SecureCookies, Settings};
use super::crowdsec::{CrowdsecConf, Machine};
use super::setting::{ComplexValue, Setting};
use super::zone;
use crate::challenge::picture::PictureSet;
use crate::challenge::token::Secrets;
use crate::challenge::ChallengeKind;
use crate::conf::{
    parse_duration_in, parse_flag, parse_ipv6_prefix, parse_rate_or_off, parse_status,
    read_secret_file, MaxRateLimit, ZoneSpec,
};
use crate::crawler::verified::Crawler;
use crate::pages::PageSet;
use crate::policy::{self, Action, Hardness, ThirdParties};
use crate::reputation::geoip::GeoDb;
use crate::reputation::ranges::{self, IpSet};
use crate::reputation::rules::GeoRules;
use crate::reputation::FeedSpec;
use crate::state::records::FailureLimit;

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
    directive: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
    field: impl FnOnce(&mut Settings) -> &mut Option<T>,
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
    let slot = field(&mut lcf.set);
    if slot.is_some() {
        return reject(cf, directive, "is duplicate");
    }
    match parse(value) {
        Ok(parsed) => *slot = Some(parsed),
        Err(error) => return reject(cf, directive, error),
    }
    // SAFETY: called from a directive handler.
    unsafe { lcf.note(cf, directive) };
    NGX_CONF_OK
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
                move || set_location_value(cf, conf, $name, $parse, |s| &mut s.$field),
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

/// A location setting that also takes a value with variables, read per request
/// (`setting.rs`); a value without is parsed here, as any other.
macro_rules! variable_directive {
    ($handler:ident, $name:literal, $parse:expr, $field:ident) => {
        unsafe extern "C" fn $handler(
            cf: *mut ngx_conf_t,
            _cmd: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            super::unwind::guarded(
                "a directive",
                || NGX_CONF_ERROR,
                move || {
                    let parse = |value: &str| Setting::parse(cf, value, $parse);
                    set_location_value(cf, conf, $name, parse, |s| &mut s.$field)
                },
            )
        }
    };
}

variable_directive!(
    set_action,
    "captchaify_action",
    str::parse::<Action>,
    action
);
variable_directive!(
    set_hardness,
    "captchaify_hardness",
    str::parse::<Hardness>,
    hardness
);
variable_directive!(
    set_captcha_type,
    "captchaify_captcha_type",
    |v: &str| ChallengeKind::parse(v)
        .ok_or_else(|| format!("invalid captcha type \"{v}\", expected text, emoji or animals")),
    kind
);
location_directive!(set_dry_run, "captchaify_dry_run", parse_flag, dry_run);
location_directive!(
    set_metrics_name,
    "captchaify_metrics_name",
    parse_metrics_name,
    metrics_name
);

/// A location's label in the metrics: printable, and short enough to be kept whole.
fn parse_metrics_name(value: &str) -> Result<String, String> {
    let longest = crate::state::metrics::NAME_BYTES;
    if value.is_empty() || value.len() > longest || value.chars().any(char::is_control) {
        return Err(format!(
            "invalid name \"{}\", expected 1 to {longest} bytes without control characters",
            value.escape_default()
        ));
    }
    Ok(value.to_string())
}
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

/// A location setting read from a folder (a relative path is taken from nginx's prefix) and
/// loaded and checked at configuration time.
macro_rules! folder_directive {
    ($handler:ident, $name:literal, $load:path, $field:ident) => {
        unsafe extern "C" fn $handler(
            cf: *mut ngx_conf_t,
            _cmd: *mut ngx_command_t,
            conf: *mut c_void,
        ) -> *mut c_char {
            super::unwind::guarded(
                "a directive",
                || NGX_CONF_ERROR,
                move || {
                    let load = |value: &str| $load(&full_path(cf, value)).map(Arc::new);
                    set_location_value(cf, conf, $name, load, |s| &mut s.$field)
                },
            )
        }
    };
}

folder_directive!(
    set_template_dir,
    "captchaify_template_dir",
    PageSet::load_dir,
    pages
);
folder_directive!(
    set_picture_dir,
    "captchaify_picture_dir",
    PictureSet::load_dir,
    pictures
);

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
            let own = unsafe { &*conf.cast::<LocConf>() }.set.pages.clone();
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
            set_location_value(cf, conf, "captchaify_default_language", check, |s| {
                &mut s.default_language
            })
        },
    )
}

/// `captchaify_allow` and `captchaify_deny`: addresses, ranges and `file=PATH`; several lines
/// at one level add up.
unsafe fn set_list(
    cf: *mut ngx_conf_t,
    conf: *mut c_void,
    name: &'static str,
    field: impl FnOnce(&mut Settings) -> &mut Option<Arc<IpSet>>,
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
    let slot = field(&mut lcf.set);
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
    // SAFETY: called from a directive handler.
    unsafe { lcf.note(cf, name) };
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
            unsafe { set_list(cf, conf, "captchaify_allow", |s| &mut s.allow) }
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
            unsafe { set_list(cf, conf, "captchaify_deny", |s| &mut s.deny) }
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
            if lcf.set.third_parties.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            match ThirdParties::parse(&args) {
                Ok(parties) => lcf.set.third_parties = Some(parties),
                Err(error) => return reject(cf, NAME, error),
            }
            // SAFETY: called from a directive handler.
            unsafe { lcf.note(cf, NAME) };
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
                match crate::crawler::verified::parse_ranges(&body) {
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
            if lcf.set.precheck.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            // SAFETY: called from a directive handler.
            let value = unsafe { single_argument(cf) }
                .and_then(|arg| arg.to_str().ok().map(str::parse::<policy::Precheck>));
            match value {
                Some(Ok(precheck)) => lcf.set.precheck = Some(precheck),
                Some(Err(error)) => return reject(cf, NAME, error),
                None => return reject(cf, NAME, "takes one argument of valid UTF-8"),
            }
            // SAFETY: called from a directive handler.
            unsafe { lcf.note(cf, NAME) };
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
            if lcf.set.secure_cookies.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            // SAFETY: called from a directive handler.
            let Some(arg) = (unsafe { single_argument(cf) }) else {
                return reject(cf, NAME, "takes one argument");
            };
            let value = match arg.as_bytes() {
                b"auto" => SecureCookies::Auto,
                b"on" => SecureCookies::Always,
                b"off" => SecureCookies::Never,
                bytes if bytes.contains(&b'$') => match ComplexValue::compile(cf, arg) {
                    Some(value) => SecureCookies::When(value),
                    None => return NGX_CONF_ERROR,
                },
                other => {
                    let other = String::from_utf8_lossy(other);
                    return reject(cf, NAME, format_args!("invalid value \"{other}\", expected auto, on, off or a value with variables"));
                }
            };
            lcf.set.secure_cookies = Some(value);
            // SAFETY: called from a directive handler.
            unsafe { lcf.note(cf, NAME) };
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
                    format_args!("\"{}\" is set twice", spec.name.name()),
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
    name: &'static str,
    add: fn(&mut GeoRules, &[&str]) -> Result<(), crate::reputation::rules::RuleError>,
) -> *mut c_char {
    // SAFETY: nginx passes this module's location configuration for NGX_HTTP_LOC_CONF_OFFSET.
    let lcf = unsafe { &mut *conf.cast::<LocConf>() };
    let args = match utf8_arguments(cf, name) {
        Ok(args) => args,
        Err(error) => return error,
    };
    let mut rules = lcf.set.geo_rules.as_deref().cloned().unwrap_or_default();
    if let Err(error) = add(&mut rules, &args) {
        return reject(cf, name, error);
    }
    lcf.set.geo_rules = Some(Arc::new(rules));
    // SAFETY: called from a directive handler.
    unsafe { lcf.note(cf, name) };
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
            if lcf.set.max_rate_limit.is_some() {
                return reject(cf, NAME, "is duplicate");
            }
            let args = match utf8_arguments(cf, NAME) {
                Ok(args) => args,
                Err(error) => return error,
            };
            match MaxRateLimit::parse(&args) {
                Ok(limit) => lcf.set.max_rate_limit = Some(limit),
                Err(error) => return reject(cf, NAME, error),
            }
            // SAFETY: called from a directive handler.
            unsafe { lcf.note(cf, NAME) };
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

pub(crate) static mut COMMANDS: [ngx_command_t; 37] = [
    location_command(ngx_string!("captchaify_action"), set_action),
    location_command(ngx_string!("captchaify_hardness"), set_hardness),
    location_command(ngx_string!("captchaify_captcha_type"), set_captcha_type),
    location_command(ngx_string!("captchaify_picture_dir"), set_picture_dir),
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
    ngx_command_t {
        name: ngx_string!("captchaify_metrics"),
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as _,
        set: Some(super::metrics::set_metrics),
        conf: NGX_HTTP_LOC_CONF_OFFSET as _,
        offset: 0,
        post: ptr::null_mut(),
    },
    location_command(ngx_string!("captchaify_metrics_name"), set_metrics_name),
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
