//! Settings that take nginx variables: `captchaify_action`, `captchaify_hardness` and
//! `captchaify_captcha_type` (and the condition of `captchaify_secure_cookies`).
//!
//! An argument with a `$` is compiled once, at configuration time, into an nginx complex
//! value (as `auth_basic $realm` is), and evaluated per request; any other argument is parsed
//! once, at configuration time, as before, and costs nothing per request. What a value read
//! per request becomes, and the warning about a bad one, is pure logic in
//! [`crate::policy::variable`].

use core::cell::Cell;

use ngx::core::Status;
use ngx::ffi::{
    ngx_conf_t, ngx_http_compile_complex_value, ngx_http_compile_complex_value_t,
    ngx_http_complex_value, ngx_http_complex_value_t, ngx_http_request_t, ngx_pcalloc, ngx_str_t,
    NGX_LOG_WARN,
};
use ngx::http::Request;
use ngx::ngx_log_error;

use super::client;
use super::conf::Location;
use crate::challenge::ChallengeKind;
use crate::policy::variable::{self, PerRequest, WarnLimit};
use crate::policy::{Action, Hardness, LocationPolicy};

/// A value with variables, compiled at configuration time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ComplexValue(*mut ngx_http_complex_value_t);

impl ComplexValue {
    /// Compiles `arg` (which holds a `$`) in the configuration's pool. `None` when nginx
    /// refuses it (a malformed variable such as a bare `$`, which nginx has logged with the
    /// file and line) or memory runs out.
    pub(crate) fn compile(cf: *mut ngx_conf_t, mut arg: ngx_str_t) -> Option<ComplexValue> {
        // SAFETY: `cf` is the context of the directive being read; the configuration pool
        // outlives the configuration; nginx fills the zeroed compile context and the value
        // it points at.
        unsafe {
            let value = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_http_complex_value_t>())
                .cast::<ngx_http_complex_value_t>();
            if value.is_null() {
                return None;
            }
            let mut ccv: ngx_http_compile_complex_value_t = core::mem::zeroed();
            ccv.cf = cf;
            ccv.value = &mut arg;
            ccv.complex_value = value;
            (ngx_http_compile_complex_value(&mut ccv) == Status::NGX_OK.0)
                .then_some(ComplexValue(value))
        }
    }

    /// The value for this request, in the request's pool; `None` if nginx could not make it
    /// (out of memory).
    pub(crate) fn evaluate<'r>(self, r: &'r Request) -> Option<&'r [u8]> {
        let raw: *const ngx_http_request_t = r.into();
        let mut out = ngx_str_t::default();
        // SAFETY: the value was compiled at configuration time in the configuration's pool,
        // which outlives every request; nginx evaluates it into the request's pool, which
        // lives as long as the request.
        let rc = unsafe { ngx_http_complex_value(raw.cast_mut(), self.0, &mut out) };
        if rc != Status::NGX_OK.0 {
            return None;
        }
        Some(match out.len {
            0 => &[],
            // SAFETY: nginx made `out` `len` bytes long in the request's pool.
            len => unsafe { core::slice::from_raw_parts(out.data, len) },
        })
    }
}

/// A directive's value as written: fixed at configuration time, or read per request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Setting<T> {
    Static(T),
    Variable(ComplexValue),
}

impl<T: PerRequest> Setting<T> {
    /// Reads a directive's argument: with a `$`, a complex value; otherwise `parse`d now.
    pub(crate) fn parse<E>(
        cf: *mut ngx_conf_t,
        arg: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Setting<T>, String>
    where
        E: core::fmt::Display,
    {
        if !arg.contains('$') {
            return parse(arg).map(Setting::Static).map_err(|e| e.to_string());
        }
        let value = ngx_str_t {
            len: arg.len(),
            data: arg.as_ptr().cast_mut(),
        };
        ComplexValue::compile(cf, value)
            .map(Setting::Variable)
            .ok_or_else(|| format!("invalid value \"{arg}\" (a malformed variable)"))
    }

    /// The value the configuration checks see: the static one, or for a variable the
    /// strictest (what a bad value would become; never `let`, so a location whose action is a
    /// variable gathers facts and counts as acting).
    pub(crate) fn at_configuration(self) -> T {
        match self {
            Setting::Static(value) => value,
            Setting::Variable(_) => T::STRICTEST,
        }
    }

    pub(crate) fn variable(self) -> Option<ComplexValue> {
        match self {
            Setting::Static(_) => None,
            Setting::Variable(value) => Some(value),
        }
    }
}

/// The settings of a location that are variables, read per request; all `None` (nothing to
/// do per request) where every one is static.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Variables {
    pub action: Option<ComplexValue>,
    pub hardness: Option<ComplexValue>,
    pub kind: Option<ComplexValue>,
}

/// The location's policy for this request: the one resolved at configuration time, with the
/// action and the hardness read from their variables where they are variables. Inlined, so
/// that a location with static values pays one test for both (measured: docs/performance.md).
#[inline(always)]
pub(crate) fn policy(r: &Request, loc: &Location) -> LocationPolicy {
    if loc.variables.action.is_none() && loc.variables.hardness.is_none() {
        return loc.policy;
    }
    read_policy(r, loc)
}

#[inline(never)]
fn read_policy(r: &Request, loc: &Location) -> LocationPolicy {
    let mut policy = loc.policy;
    if let Some(value) = loc.variables.action {
        // A bad value is `block` for suspicious clients and the captcha for everyone else
        // without a pass: neither the one nor the other gets in unchecked.
        (policy.action, policy.challenge_unverified) = match read_checked::<Action>(r, value) {
            Ok(action) => (action, false),
            Err(strictest) => (strictest, true),
        };
    }
    if let Some(value) = loc.variables.hardness {
        policy.hardness = read::<Hardness>(r, value);
    }
    policy
}

/// The hardness of the location's captchas for this request (see [`policy`]).
pub(crate) fn hardness(r: &Request, loc: &Location) -> Hardness {
    match loc.variables.hardness {
        Some(value) => read::<Hardness>(r, value),
        None => loc.policy.hardness,
    }
}

/// What the location's captcha asks for this request.
pub(crate) fn kind(r: &Request, loc: &Location) -> ChallengeKind {
    match loc.variables.kind {
        Some(value) => read::<ChallengeKind>(r, value),
        None => loc.kind,
    }
}

/// Reads a variable's value as the setting; a bad one becomes the strictest, with a warning.
fn read<T: PerRequest + Limited>(r: &Request, value: ComplexValue) -> T {
    read_checked(r, value).unwrap_or_else(|strictest| strictest)
}

/// [`read`], saying whether the value was bad (`Err`, with the strictest in its place, and
/// the warning logged).
fn read_checked<T: PerRequest + Limited>(r: &Request, value: ComplexValue) -> Result<T, T> {
    let text = value.evaluate(r).unwrap_or_default();
    variable::read::<T>(text).inspect_err(|&used| warn(r, text, used))
}

/// Logs a bad value at `warn`, as often as its directive's [`WarnLimit`] lets it.
fn warn<T: PerRequest + Limited>(r: &Request, text: &[u8], used: T) {
    let now = client::now().secs;
    let admitted = T::LIMIT.with(|limit| {
        let mut current = limit.get();
        let admitted = current.admit(now);
        limit.set(current);
        admitted
    });
    if let Some(unlogged) = admitted {
        ngx_log_error!(
            NGX_LOG_WARN,
            r.log(),
            "captchaify: {}",
            variable::warning(text, used, unlogged)
        );
    }
}

/// Each directive's warnings are limited apart, in each worker (a worker is one thread).
trait Limited: 'static {
    const LIMIT: &'static std::thread::LocalKey<Cell<WarnLimit>>;
}

thread_local! {
    static ACTION_WARNINGS: Cell<WarnLimit> = const { Cell::new(WarnLimit::new()) };
    static HARDNESS_WARNINGS: Cell<WarnLimit> = const { Cell::new(WarnLimit::new()) };
    static KIND_WARNINGS: Cell<WarnLimit> = const { Cell::new(WarnLimit::new()) };
}

impl Limited for Action {
    const LIMIT: &'static std::thread::LocalKey<Cell<WarnLimit>> = &ACTION_WARNINGS;
}

impl Limited for Hardness {
    const LIMIT: &'static std::thread::LocalKey<Cell<WarnLimit>> = &HARDNESS_WARNINGS;
}

impl Limited for ChallengeKind {
    const LIMIT: &'static std::thread::LocalKey<Cell<WarnLimit>> = &KIND_WARNINGS;
}
