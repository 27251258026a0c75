//! `captchaify_metrics` (the location that serves the counters, like `stub_status`),
//! `captchaify_metrics_name`, and the calls that count.
//!
//! The counters are in the main zone ([`crate::state::metrics`]); the text is made by
//! [`crate::metrics`]. Counting is one relaxed atomic add; nothing here allocates on the
//! request path but the location's slot, found once per worker and location.

use core::ffi::{c_char, c_void};

use ngx::ffi::{ngx_command_t, ngx_conf_t, ngx_http_request_t, ngx_int_t};
use ngx::ffi::{NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_LOG_WARN};
use ngx::http::{
    HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, NgxHttpCoreModule, Request,
};
use ngx::{ngx_conf_log_error, ngx_log_error};

use super::{client, response, unwind, LocConf, MainConf, Module};
use crate::challenge::ChallengeKind;
use crate::metrics::{CrowdsecGauge, Exposition, SourceGauge, TableGauge, CONTENT_TYPE};
use crate::pages::Page;
use crate::policy::{Outcome, Verdict};
use crate::reputation::Source;
use crate::state::metrics::{ChallengeEvent, Metrics, PrecheckEvent, RequestVerdict};
use crate::state::table::{Record, Stats, Table};

/// The zone's counters, once the zone is there.
pub(crate) fn of(mcf: &MainConf) -> Option<&Metrics> {
    mcf.zone_state()?.metrics()
}

/// How a decided request is counted.
fn verdict(outcome: Outcome) -> RequestVerdict {
    match outcome.verdict {
        Verdict::Pass => RequestVerdict::Passed,
        _ if outcome.dry_run => RequestVerdict::DryRun,
        Verdict::Challenge => RequestVerdict::Challenged,
        Verdict::Block => RequestVerdict::Blocked,
        Verdict::RateLimited => RequestVerdict::RateLimited,
    }
}

/// Counts a request the access handler decided, under its location's name.
pub(crate) fn count_request(r: &Request, mcf: &MainConf, lcf: &LocConf, outcome: Outcome) {
    let Some(metrics) = of(mcf) else { return };
    let slot = *lcf
        .metrics_slot
        .get_or_init(|| metrics.location(&location_label(r, lcf)));
    metrics.count_request(slot, verdict(outcome));
}

/// The location's label: `captchaify_metrics_name`, or its server's first name and its own
/// (`example.com /login`; the location alone in a server without a name).
fn location_label(r: &Request, lcf: &LocConf) -> String {
    if let Some(name) = &lcf.loc.metrics_name {
        return name.clone();
    }
    let server = NgxHttpCoreModule::server_conf(r)
        .map(|s| String::from_utf8_lossy(s.server_name.as_bytes()).into_owned())
        .unwrap_or_default();
    let location = NgxHttpCoreModule::location_conf(r)
        .map(|l| String::from_utf8_lossy(l.name.as_bytes()).into_owned())
        .unwrap_or_default();
    match server.is_empty() {
        true => location,
        false => format!("{server} {location}"),
    }
}

pub(crate) fn count_challenge(mcf: &MainConf, kind: ChallengeKind, hardness: u8, event: ChallengeEvent) {
    if let Some(metrics) = of(mcf) {
        metrics.count_challenge(kind as usize, hardness, event);
    }
}

pub(crate) fn observe_solve(mcf: &MainConf, kind: ChallengeKind, seconds: u64) {
    if let Some(metrics) = of(mcf) {
        metrics.observe_solve(kind as usize, seconds);
    }
}

pub(crate) fn count_precheck(mcf: &MainConf, event: PrecheckEvent) {
    if let Some(metrics) = of(mcf) {
        metrics.count_precheck(event);
    }
}

/// `captchaify_metrics;`: this location answers with the counters (GET and HEAD), whatever
/// else it holds, as `stub_status` does. Who may read them is up to `allow`/`deny`.
pub(crate) unsafe extern "C" fn set_metrics(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    unwind::guarded(
        "a directive",
        || ngx::core::NGX_CONF_ERROR,
        move || {
            // SAFETY: a directive handler's context, inside a location.
            let cf_ref = unsafe { &*cf };
            let Some(clcf) = NgxHttpCoreModule::location_conf_mut(cf_ref) else {
                return ngx::core::NGX_CONF_ERROR;
            };
            if clcf.handler.is_some() {
                ngx_conf_log_error!(
                    ngx::ffi::NGX_LOG_EMERG,
                    cf,
                    "\"captchaify_metrics\" directive: this location already has a content handler"
                );
                return ngx::core::NGX_CONF_ERROR;
            }
            clcf.handler = Some(metrics_handler);
            // SAFETY: nginx passes this module's location configuration for
            // NGX_HTTP_LOC_CONF_OFFSET, and the file being read, whose name is a valid string.
            unsafe {
                let file = (*cf).conf_file;
                let name = String::from_utf8_lossy((*file).file.name.as_bytes()).into_owned();
                (*conf.cast::<LocConf>()).serves_metrics = Some(format!("{name}:{}", (*file).line));
            }
            // The counters live in the zone, which a module used at all has.
            if let Some(mcf) = Module::main_conf_mut(cf_ref) {
                mcf.used = true;
            }
            ngx::core::NGX_CONF_OK
        },
    )
}

/// Whether the location that says `captchaify_metrics` still has it as its content handler
/// once the configuration is read: a content directive after it (`proxy_pass`, `return` is
/// not one) would have replaced it silently.
pub(crate) fn still_serves(cf: *mut ngx_conf_t) -> bool {
    let ours: unsafe extern "C" fn(*mut ngx_http_request_t) -> ngx_int_t = metrics_handler;
    // SAFETY: called while nginx merges a location, whose core configuration `cf` reaches.
    NgxHttpCoreModule::location_conf(unsafe { &*cf })
        .is_some_and(|clcf| clcf.handler.map(|h| h as usize) == Some(ours as usize))
}

unsafe extern "C" fn metrics_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls content handlers with a live request.
    let r = unsafe { Request::from_ngx_http_request(r) };
    unwind::guarded(
        "the metrics handler",
        || NGX_HTTP_INTERNAL_SERVER_ERROR as _,
        || serve(r),
    )
}

fn serve(r: &mut Request) -> ngx_int_t {
    if !client::is_get_or_head(r) {
        return response::write_not_allowed(r, "GET, HEAD");
    }
    let Some(mcf) = Module::main_conf(r) else {
        return response::write_status(r, 500);
    };
    let Some(text) = exposition(mcf) else {
        ngx_log_error!(NGX_LOG_WARN, r.log(), "captchaify: metrics asked before the zone is ready");
        return response::write_status(r, 500);
    };
    let headers = [("Content-Security-Policy", "default-src 'none'")];
    response::write_response(
        r,
        200,
        CONTENT_TYPE,
        &Page::FIXED_HEADERS,
        &[&headers],
        text.as_bytes(),
    )
}

/// A table's gauge, labelled by the name of its field in the zone's state.
fn table<V: Record>(zone: &str, name: &'static str, table: Option<&Table<V>>) -> Option<TableGauge> {
    table.map(|t| TableGauge {
        zone: zone.to_string(),
        table: name,
        stats: t.stats(),
    })
}

/// The whole text of a scrape: the counters, and what the shared tables, the reputation
/// sources and CrowdSec hold now.
fn exposition(mcf: &MainConf) -> Option<String> {
    let state = mcf.zone_state()?;
    let counters = state.metrics()?.snapshot();
    // SAFETY: the zone was declared for this configuration; its name is a valid nginx string.
    let zone = unsafe { String::from_utf8_lossy((*mcf.zone).shm.name.as_bytes()).into_owned() };
    let now = client::now().secs;
    let mut tables: Vec<TableGauge> = Vec::new();
    if let Some(spent) = &state.spent {
        let (load, designed) = spent.load(now);
        tables.push(TableGauge {
            zone: zone.clone(),
            table: "spent",
            stats: Stats {
                capacity: designed,
                len: load as usize,
                evictions: 0,
                refusals: 0,
                takeovers: spent.takeovers(),
                dead_holder: None,
                lock_holder: None,
            },
        });
    }
    tables.extend(
        [
            table(&zone, "failures", state.failures.as_ref()),
            table(&zone, "rate", state.rate.as_ref()),
            table(&zone, "loads", state.loads.as_ref()),
            table(&zone, "listed", state.listed.as_ref()),
            table(&zone, "lookups", state.lookups.as_ref()),
            table(&zone, "pending", state.pending.as_ref()),
            table(&zone, "crawlers", state.crawlers.as_ref()),
            table(&zone, "hints", state.hints.as_ref()),
            table(&zone, "hint_jobs", state.hint_jobs.as_ref()),
        ]
        .into_iter()
        .flatten(),
    );
    let mut sources = Vec::new();
    if let Some(tor) = state.tor() {
        use core::sync::atomic::Ordering::Relaxed;
        let listed = tor.generation.load(Relaxed) != 0;
        sources.push(SourceGauge {
            source: Source::Tor.name(),
            entries: if listed { u64::from(tor.count.load(Relaxed)) } else { 0 },
            refreshed_at: tor.fetched_at.load(Relaxed),
            answers: None,
        });
    }
    let kept = state.lookups.as_ref().map_or(0, |t| t.stats().len as u64);
    for (index, source) in [Source::IpApi, Source::StopForumSpam].into_iter().enumerate() {
        let (answers, answered_at) = counters.lookups[index];
        sources.push(SourceGauge {
            source: source.name(),
            entries: kept,
            refreshed_at: answered_at,
            answers: Some(answers),
        });
    }
    let crowdsec = mcf.crowdsec.as_ref().and_then(|c| c.zone()).map(|cs| {
        let name = super::zone::CROWDSEC_ZONE;
        tables.extend(
            [
                table(name, "decisions", cs.decisions.as_ref()),
                table(name, "reported", cs.reported.as_ref()),
                table(name, "floods", cs.floods.as_ref()),
                table(name, "signals", cs.signals.as_ref()),
            ]
            .into_iter()
            .flatten(),
        );
        use core::sync::atomic::Ordering::Relaxed;
        CrowdsecGauge {
            decisions: cs.decisions.as_ref().map_or(0, |t| t.stats().len as u64),
            pulled_at: cs.status().pulled_at.load(Relaxed),
        }
    });
    let text = Exposition {
        counters: &counters,
        tables,
        sources,
        crowdsec,
    }
    .render();
    Some(text)
}
