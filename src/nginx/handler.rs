//! The phase handlers: gather facts, ask the policy, carry out the verdict.

use ngx::core::Status;
use ngx::ffi::{ngx_http_request_t, ngx_int_t, NGX_HTTP_FORBIDDEN, NGX_HTTP_INTERNAL_SERVER_ERROR};
use ngx::ffi::{NGX_LOG_INFO, NGX_LOG_NOTICE, NGX_LOG_WARN};
use ngx::http::{
    HttpModuleLocationConf, HttpModuleMainConf, HttpModuleServerConf, NgxHttpCoreModule, Request,
};
use ngx::ngx_log_error;

use super::{
    audio, client, hints, language, metrics, precheck, request_state, response, setting, unwind,
    verify, zone, LocConf, MainConf, Module,
};
use crate::challenge::token::{return_path_for, strip_argument, Budget, Secrets, PRECHECK_NAME};
use crate::pages::Message;
use crate::policy::{
    self, BlockReason, ClientFacts, Decision, LocationPolicy, Rates, Refusal, Verdict,
};
use crate::request::OwnPath;
use crate::state::rate::{
    admit, client_identity, observe_loads, Admission, LoadChange, LoadReport, Rate,
};
use crate::state::metrics::PrecheckEvent;
use crate::state::table::Key;
use std::net::IpAddr;

/// Access phase, main requests only (nginx skips this phase for subrequests). Runs again
/// after each internal redirect, with the facts of the first pass and the new location's
/// policy, so a redirect can tighten the decision but never skip it.
pub(crate) unsafe extern "C" fn access_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let r = unsafe { Request::from_ngx_http_request(r) };
    unwind::guarded(
        "the access handler",
        || NGX_HTTP_INTERNAL_SERVER_ERROR as _,
        || access(r),
    )
}

fn access(r: &mut Request) -> ngx_int_t {
    #[cfg(feature = "test-answers")]
    match unwind::test_fault(r) {
        Some(unwind::TestFault::PanicHandler) => {
            panic!("the test fault X-Captchaify-Test-Fault: panic-handler")
        }
        Some(unwind::TestFault::AbortLocked) => {
            let rate = Module::main_conf(r).and_then(|mcf| mcf.zone_state()?.rate.as_ref());
            if let Some(rate) = rate {
                rate.with(client::holder(), |_| std::process::abort());
            }
        }
        _ => {}
    }
    let (Some(mcf), Some(lcf)) = (Module::main_conf(r), Module::location_conf(r)) else {
        return Status::NGX_DECLINED.into();
    };
    // The module's own paths, wherever they fall in the configuration.
    let own = mcf
        .used
        .then(|| OwnPath::find(r.path().as_bytes()))
        .flatten();
    match own {
        Some(OwnPath::Verify) => return verify::start(r),
        Some(OwnPath::Language) => {
            let rc = language::serve(r, lcf);
            return response::finish(r, rc);
        }
        Some(OwnPath::Audio) => {
            let rc = audio::serve(r, mcf, lcf);
            return response::finish(r, rc);
        }
        None => {}
    }
    // The metrics location answers Prometheus (allow and deny guard it), whatever action it
    // inherits.
    if !lcf.loc.acts || lcf.serves_metrics.is_some() {
        return Status::NGX_DECLINED.into();
    }
    // The module's own fetch of a page's crawler hints (signed, short-lived, this URI only).
    if hints::is_own_fetch(r, mcf) {
        return Status::NGX_DECLINED.into();
    }
    // The action and hardness for this request (read here when they are variables).
    let policy = setting::policy(r, &lcf.loc);
    let Some(state) = request_state::find_or_create(r) else {
        // Out of memory: refuse rather than let an unchecked request through.
        return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    };
    let address = state.address;
    super::forwarded::notice(r, address);
    let (facts, rates) = match policy.needs_facts() {
        true => facts_and_rates(r, mcf, lcf, state, &policy),
        false => (ClientFacts::default(), Rates::default()),
    };
    let decision = policy::evaluate(&policy, &facts, rates, lcf.loc.dry_run);
    let outcome = decision.outcome;
    let already_logged = state.outcome == Some(outcome) && state.action == Some(policy.action);
    state.outcome = Some(outcome);
    state.action = Some(policy.action);
    if !already_logged {
        log_outcome(r, &policy, &decision);
        metrics::count_request(r, mcf, lcf, outcome);
    }

    let Some(refusal) = outcome.enforced() else {
        return Status::NGX_DECLINED.into();
    };
    let uri = r.as_ref().unparsed_uri;
    // SAFETY: the URI is in the request's header buffer, which stays, unchanged, as long as
    // the request; these borrows end with this function (not tied to `r`, which the answers
    // below borrow mutably).
    let requested: &[u8] = match uri.len {
        0 => &[],
        len => unsafe { core::slice::from_raw_parts(uri.data, len) },
    };
    let requested_text = String::from_utf8_lossy(requested);
    let shown_path = strip_argument(&requested_text, PRECHECK_NAME);
    let return_path = return_path_for(requested);
    let language = language::choose(r, lcf, &return_path);
    let rc = match refusal {
        Refusal::Block => {
            let reason = decision.block_reason.unwrap_or(BlockReason::Everyone);
            response::write_block(r, lcf, &shown_path, reason, &language)
        }
        Refusal::Challenge => {
            // A crawler sees what the page is about (once the fetcher has read it).
            let hints = (facts.crawler && lcf.loc.crawler_hints)
                .then(|| hints::for_request(r, mcf))
                .flatten();
            // No image for a client that has not shown it comes back with its cookie.
            let precheck = lcf.loc.precheck.applies(outcome.under_attack);
            if precheck && !precheck::passed(r, mcf, &return_path, address) {
                metrics::count_precheck(mcf, PrecheckEvent::Sent);
                let rc = precheck::send(
                    r,
                    mcf,
                    lcf,
                    &return_path,
                    &language,
                    hints.as_ref(),
                    address,
                );
                return response::finish(r, rc);
            }
            if precheck {
                metrics::count_precheck(mcf, PrecheckEvent::Passed);
            }
            let terms = response::challenge_terms_at(
                r,
                mcf,
                lcf,
                policy.hardness,
                return_path.into_owned(),
            );
            let spent = audio_budget_spent(r, mcf, &terms.budget, terms.clip_on_page(), address);
            if let Some(retry_after) = spent {
                let rc = response::write_rate_limited(r, lcf, &shown_path, retry_after, &language);
                return response::finish(r, rc);
            }
            // Drawn in the thread pool when there is one: the request resumes when it is done.
            let sent = response::send_challenge(
                r,
                mcf,
                lcf,
                terms,
                &shown_path,
                facts.last_try.then_some(Message::LastTry),
                &language,
                hints,
                address,
            );
            match sent {
                response::Drawing::Posted => return Status::NGX_DONE.into(),
                response::Drawing::Sent(rc) => rc,
            }
        }
        Refusal::RateLimited => {
            let retry_after = decision.retry_after.unwrap_or(1);
            response::write_rate_limited(r, lcf, &shown_path, retry_after, &language)
        }
    };
    response::finish(r, rc)
}

/// The facts about the client (gathered on the request's first pass) and what the rate
/// limits say, counted once per request unless the client is not counted
/// ([`ClientFacts::counted`]). A client over its limit is answered before its pass costs an
/// HMAC; within it, a pass not in the cache is checked now, and counted by its token too.
fn facts_and_rates(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    state: &mut request_state::RequestState,
    policy: &LocationPolicy,
) -> (ClientFacts, Rates) {
    let mut facts = state.facts(r, mcf, lcf, policy);
    let counted = facts.counted(policy);
    let mut rates = match counted {
        true => *state
            .rates
            .get_or_insert_with(|| check_rates(r, mcf, lcf, &facts, state.address)),
        false => state.rates.unwrap_or_default(),
    };
    if rates.retry_after.is_none() {
        if let (Some(confirmed), new_key) = state.confirm_pass(r, mcf) {
            facts.cookie_pass = confirmed.cookie_pass;
            facts.url_pass = confirmed.url_pass;
            facts.pass_key = confirmed.pass_key;
            if let Some(key) = new_key.filter(|_| counted) {
                rates.retry_after = token_budget_spent(r, mcf, lcf, &key, state.address);
                state.rates = Some(rates);
            }
        }
    }
    (facts, rates)
}

/// Counts the request against its location's load and its client's (and pass token's)
/// bucket. Done once per request; the tables are shared by all workers.
fn check_rates(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    facts: &ClientFacts,
    address: IpAddr,
) -> Rates {
    let mut check = Rates::default();
    let (Some(zone), Some(secrets)) = (mcf.zone_state(), mcf.secrets()) else {
        return check;
    };
    let now = client::now().millis;
    let holder = client::holder();
    let max = lcf.loc.max_rate_limit;
    let location = this_location(r, secrets, lcf);
    if let (Some(limit), Some(loads)) = (max.rate, zone.loads.as_ref()) {
        // Counted in this worker, added to the shared load in batches.
        let mut local = lcf.local_load.get();
        let batch = local.count(now, limit);
        let report = match batch {
            Some(count) => {
                let report = loads.with(holder, |t| {
                    observe_loads(t, &location, now, limit, max.cooldown_ms, count)
                });
                local.flushed(report.under_attack);
                report
            }
            None => LoadReport {
                under_attack: local.under_attack(),
                change: None,
            },
        };
        lcf.local_load.set(local);
        check.under_attack = report.under_attack;
        match report.change {
            Some(LoadChange::Entered) => {
                ngx_log_error!(
                    NGX_LOG_NOTICE,
                    r.log(),
                    "captchaify: location \"{}\" is under attack: its clients together went \
                     over {}; clients without a pass get the captcha until it stays under the \
                     limit for {} s",
                    location_name(r),
                    limit,
                    max.cooldown_ms / 1000
                );
            }
            Some(LoadChange::Left { lasted_ms }) => {
                ngx_log_error!(
                    NGX_LOG_NOTICE,
                    r.log(),
                    "captchaify: location \"{}\" is no longer under attack (after {} s)",
                    location_name(r),
                    lasted_ms / 1000
                );
            }
            None => {}
        }
    }
    if let (Some(rate), Some(buckets)) = (lcf.loc.rate_limit, zone.rate.as_ref()) {
        let (identity, _) = client_identity(address, lcf.loc.ipv6_prefix);
        // A verified client is counted by its pass token too: one pass shared by many
        // clients is throttled as one client. Its keys are the same on every request, as are
        // those of a client on one connection: this worker remembers them, by pass or else by
        // connection (numbered uniquely by nginx), with the location and the client's identity.
        let subject = facts.pass_key.unwrap_or_else(|| connection_subject(r));
        let (client_key, token_key) =
            mcf.pass_cache()
                .borrow_mut()
                .rate_keys(&subject, &location, &identity, || {
                    let client = client_bucket(secrets, &location, address, lcf.loc.ipv6_prefix);
                    let token = facts.pass_key.map_or([0; 16], |pass| {
                        secrets.table_key("token", &[&location, &pass])
                    });
                    (client, token)
                });
        let token_key = facts.pass_key.map(|_| token_key);
        let admission = buckets.with(holder, |t| match admit(t, &client_key, now, rate) {
            Admission::Admitted => {
                token_key.map_or(Admission::Admitted, |key| admit(t, &key, now, rate))
            }
            refused => refused,
        });
        check.retry_after = admission.retry_after_secs();
        if check.retry_after.is_some() {
            super::crowdsec::refused(mcf, lcf, address);
        }
        zone::warn_if_evicting(r.log(), buckets);
    }
    check
}

/// What the worker remembers a connection's rate keys by: its number, which nginx never gives
/// twice, marked apart from pass keys (which are keyed hashes).
fn connection_subject(r: &Request) -> [u8; 16] {
    // The number first: the memory picks a slot by the first eight bytes.
    let mut subject = [0xC0; 16];
    let number = client::connection_number(r).to_le_bytes();
    if let Some(first) = subject.get_mut(..number.len()) {
        first.copy_from_slice(&number);
    }
    subject
}

/// A client's bucket at a location: its identity (IPv6 by `ipv6_prefix` bits) under the
/// location's key, so that a client's requests to one location do not use up its allowance
/// at another.
fn client_bucket(
    secrets: &Secrets,
    location: &[u8; 16],
    address: std::net::IpAddr,
    ipv6_prefix: u8,
) -> Key {
    let (identity, len) = client_identity(address, ipv6_prefix);
    secrets.table_key(
        "client",
        &[location, identity.get(..len).unwrap_or_default()],
    )
}

/// Counts one request against a bucket; `Some(retry_after)` when refused.
fn spend_budget(mcf: &MainConf, key: &Key, rate: Rate) -> Option<u64> {
    let buckets = mcf.zone_state()?.rate.as_ref()?;
    let now = client::now().millis;
    let admission = buckets.with(client::holder(), |t| admit(t, key, now, rate));
    admission.retry_after_secs()
}

/// This location's limits, as its challenges carry them to the module's own paths.
pub(crate) fn budget(r: &Request, mcf: &MainConf, lcf: &LocConf) -> Budget {
    Budget {
        ipv6_prefix: lcf.loc.ipv6_prefix,
        rate: lcf.loc.rate_limit,
        audio: lcf.loc.audio_rate_limit,
        location: mcf
            .secrets()
            .map_or([0; 16], |secrets| this_location(r, secrets, lcf)),
    }
}

/// Counts the request against the bucket of a pass found valid only now (not in the cache):
/// one pass shared by many clients is throttled as one client. `Some(retry_after)` when over.
fn token_budget_spent(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    pass_key: &[u8; 16],
    address: IpAddr,
) -> Option<u64> {
    let rate = lcf.loc.rate_limit?;
    let secrets = mcf.secrets()?;
    let key = secrets.table_key("token", &[&this_location(r, secrets, lcf), pass_key]);
    let retry_after = spend_budget(mcf, &key, rate);
    if retry_after.is_some() {
        super::crowdsec::refused(mcf, lcf, address);
    }
    retry_after
}

/// Counts an answer posted to `/.captchaify/verify` against the client's page budget at the
/// location whose captcha it answers, like any request there: the answers of one client are
/// bounded like its page views. `Some(retry_after)` when the budget is spent.
pub(crate) fn answer_budget_spent(
    r: &Request,
    mcf: &MainConf,
    budget: &Budget,
    address: IpAddr,
) -> Option<u64> {
    let rate = budget.rate?;
    let key = client_bucket(
        mcf.secrets()?,
        &budget.location,
        address,
        budget.ipv6_prefix,
    );
    let retry_after = spend_budget(mcf, &key, rate);
    if retry_after.is_some() {
        ngx_log_error!(NGX_LOG_INFO, r.log(), "captchaify: rate-limit (answers)");
    }
    retry_after
}

/// Counts a clip about to be made (`clip`: a text page at hardness 3, or a download) against
/// the client's audio budget, which is stricter than its page budget because a clip costs
/// more to make than an image. `Some(retry_after)` when the budget is spent: the client then
/// gets the rate-limit page instead. One budget per client across all locations, by the
/// limits of the location whose captcha it is.
pub(crate) fn audio_budget_spent(
    r: &Request,
    mcf: &MainConf,
    budget: &Budget,
    clip: bool,
    address: IpAddr,
) -> Option<u64> {
    if !clip {
        return None;
    }
    let rate = budget.audio?;
    let (identity, len) = client_identity(address, budget.ipv6_prefix);
    let key = mcf
        .secrets()?
        .table_key("audio", &[identity.get(..len).unwrap_or_default()]);
    let retry_after = spend_budget(mcf, &key, rate);
    if retry_after.is_some() {
        ngx_log_error!(
            NGX_LOG_INFO,
            r.log(),
            "captchaify: audio captcha budget spent"
        );
    }
    retry_after
}

/// This location's key in the rate and loads tables, derived once per worker.
fn this_location(r: &Request, secrets: &Secrets, lcf: &LocConf) -> [u8; 16] {
    *lcf.location_key.get_or_init(|| location_key(r, secrets))
}

/// A location's key in the loads table: its server's name and its own, keyed with the secret,
/// so that it is the same in every worker and after a reload.
fn location_key(r: &Request, secrets: &Secrets) -> [u8; 16] {
    let server = NgxHttpCoreModule::server_conf(r)
        .map(|s| s.server_name.as_bytes().to_vec())
        .unwrap_or_default();
    let location = location_name(r);
    secrets.table_key("location", &[&server, location.as_bytes()])
}

fn location_name(r: &Request) -> String {
    NgxHttpCoreModule::location_conf(r)
        .map(|l| String::from_utf8_lossy(l.name.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Preaccess phase, subrequests only: an SSI include, `auth_request` or mirror into a
/// protected location must not bypass its policy just because the main request passed a
/// weaker one. A subrequest cannot show a page, so anything but a pass is a 403.
pub(crate) unsafe extern "C" fn subrequest_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    // SAFETY: nginx calls phase handlers with a live request.
    let r = unsafe { Request::from_ngx_http_request(r) };
    unwind::guarded(
        "the subrequest handler",
        || NGX_HTTP_INTERNAL_SERVER_ERROR as _,
        || subrequest(r),
    )
}

fn subrequest(r: &mut Request) -> ngx_int_t {
    if r.is_main() {
        return Status::NGX_DECLINED.into();
    }
    let (Some(mcf), Some(lcf)) = (
        Module::main_conf(r),
        Module::location_conf(r).filter(|l| l.loc.acts),
    ) else {
        return Status::NGX_DECLINED.into();
    };
    let policy = setting::policy(r, &lcf.loc);
    if !policy.needs_facts() || lcf.loc.dry_run {
        return Status::NGX_DECLINED.into();
    }
    let Some(state) = request_state::find_or_create(r) else {
        return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
    };
    match verdict_for(r, mcf, lcf, state, &policy) {
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

/// A subrequest's verdict: the main request's facts (its pass checked if it was not yet), the
/// location under attack if the main request found it so; a subrequest is not counted against
/// the rate limits again.
fn verdict_for(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    state: &mut request_state::RequestState,
    policy: &LocationPolicy,
) -> Verdict {
    state.facts(r, mcf, lcf, policy);
    let (Some(facts), _) = state.confirm_pass(r, mcf) else {
        return Verdict::Pass;
    };
    let rates = Rates {
        retry_after: None,
        under_attack: state.rates.is_some_and(|r| r.under_attack),
    };
    policy::evaluate(policy, &facts, rates, false)
        .outcome
        .verdict
}

/// Logs a refusal (or, in dry run, what would have been one): the verdict, the rule that
/// blocked (`block (deny list) (action "captcha")`) or CrowdSec's part in a challenge, and
/// the location's action.
fn log_outcome(r: &Request, policy: &LocationPolicy, decision: &Decision) {
    let outcome = decision.outcome;
    let (verdict, reason) = match (outcome.verdict, decision.crowdsec) {
        (Verdict::Pass, _) => return,
        (Verdict::Block, _) => (
            "block",
            decision
                .block_reason
                .unwrap_or(BlockReason::Everyone)
                .as_str(),
        ),
        (Verdict::Challenge, Some(_)) => ("challenge", "CrowdSec captcha"),
        (Verdict::Challenge, None) => ("challenge", ""),
        (Verdict::RateLimited, _) => ("rate-limit", ""),
    };
    let (open, close) = if reason.is_empty() {
        ("", "")
    } else {
        (" (", ")")
    };
    if outcome.dry_run {
        ngx_log_error!(
            NGX_LOG_WARN,
            r.log(),
            "captchaify: dry run, would {}{}{}{} the client (action \"{}\")",
            verdict,
            open,
            reason,
            close,
            policy.action
        );
    } else {
        ngx_log_error!(
            NGX_LOG_INFO,
            r.log(),
            "captchaify: {}{}{}{} (action \"{}\")",
            verdict,
            open,
            reason,
            close,
            policy.action
        );
    }
}
