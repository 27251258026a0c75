//! The phase handlers: gather facts, ask the policy, carry out the verdict.

use ngx::core::Status;
use ngx::ffi::{ngx_http_request_t, ngx_int_t, NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR};
use ngx::ffi::{NGX_LOG_INFO, NGX_LOG_WARN};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
use ngx::ngx_log_error;

use super::{request_state, response, verify, MainConf, Module};
use crate::challenge::token::return_path_for;
use crate::policy::{decide, LocationPolicy, Outcome, Refusal, Suspicion, Verdict};

/// Access phase, main requests only (nginx skips this phase for subrequests). Runs again
/// after each internal redirect, with the facts of the first pass and the new location's
/// policy, so a redirect can tighten the decision but never skip it.
pub(crate) unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let r = unsafe { Request::from_ngx_http_request(r) };
    let (Some(mcf), Some(lcf)) = (Module::main_conf(r), Module::location_conf(r)) else {
        return Status::NGX_DECLINED.into();
    };
    if mcf.used && r.path().as_bytes() == response::VERIFY_PATH.as_bytes() {
        return verify::start(r);
    }
    if !lcf.enabled() {
        return Status::NGX_DECLINED.into();
    }
    let policy = lcf.policy();
    let dry_run = lcf.dry_run();
    let Some(state) = request_state::find_or_create(r) else {
        // Out of memory: refuse rather than let an unchecked request through.
        return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    };
    let (verdict, suspicion) = verdict_for(r, mcf, state, &policy);
    let outcome = Outcome { verdict, dry_run };
    let already_logged = state.outcome == Some(outcome) && state.action == Some(policy.action);
    state.outcome = Some(outcome);
    state.action = Some(policy.action);
    if !already_logged {
        log_outcome(r, &policy, outcome);
    }

    let Some(refusal) = outcome.enforced() else {
        return Status::NGX_DECLINED.into();
    };
    let requested = r.unparsed_uri().as_bytes();
    let shown_path = String::from_utf8_lossy(requested).into_owned();
    let rc = match refusal {
        Refusal::Block => response::write_block(r, lcf, &shown_path, suspicion),
        Refusal::Challenge => {
            let terms = response::challenge_terms(lcf, return_path_for(requested));
            response::write_challenge(r, mcf, lcf, &terms, &shown_path, "")
        }
    };
    response::finish(r, rc)
}

/// Preaccess phase, subrequests only: an SSI include, `auth_request` or mirror into a
/// protected location must not bypass its policy just because the main request passed a
/// weaker one. A subrequest cannot show a page, so anything but a pass is a 403.
pub(crate) unsafe extern "C" fn subrequest_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let r = unsafe { Request::from_ngx_http_request(r) };
    if r.is_main() {
        return Status::NGX_DECLINED.into();
    }
    let (Some(mcf), Some(lcf)) = (Module::main_conf(r), Module::location_conf(r).filter(|l| l.enabled())) else {
        return Status::NGX_DECLINED.into();
    };
    let policy = lcf.policy();
    if !policy.needs_facts() || lcf.dry_run() {
        return Status::NGX_DECLINED.into();
    }
    let Some(state) = request_state::find_or_create(r) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    };
    match verdict_for(r, mcf, state, &policy).0 {
        Verdict::Pass => Status::NGX_DECLINED.into(),
        verdict => {
            ngx_log_error!(
                NGX_LOG_INFO,
                r.log(),
                "captchaify: subrequest denied ({:?} under action \"{}\")",
                verdict,
                policy.action
            );
            NGX_HTTP_FORBIDDEN as _
        }
    }
}

fn verdict_for(
    r: &Request,
    mcf: &MainConf,
    state: &mut request_state::RequestState,
    policy: &LocationPolicy,
) -> (Verdict, Option<Suspicion>) {
    if !policy.needs_facts() {
        return (Verdict::Pass, None);
    }
    let facts = state.facts(r, mcf);
    (decide(policy, &facts), facts.suspicion(policy))
}

fn log_outcome(r: &Request, policy: &LocationPolicy, outcome: Outcome) {
    let what = match outcome.verdict {
        Verdict::Pass => return,
        Verdict::Block => "block",
        Verdict::Challenge => "challenge",
    };
    if outcome.dry_run {
        ngx_log_error!(
            NGX_LOG_WARN,
            r.log(),
            "captchaify: dry run, would {} the client (action \"{}\")",
            what,
            policy.action
        );
    } else {
        ngx_log_error!(NGX_LOG_INFO, r.log(), "captchaify: {} (action \"{}\")", what, policy.action);
    }
}
