//! The module-owned path the captcha form posts to. The answer travels in a POST body, so it
//! never shows up in access logs; the body is read asynchronously, then judged by
//! `challenge::flow`.

use ngx::core::Status;
use ngx::ffi::{
    ngx_http_finalize_request, ngx_http_read_client_request_body, ngx_http_request_t, ngx_int_t,
    NGX_HTTP_POST, NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_INFO,
};
use ngx::http::{HttpModuleLocationConf, HttpModuleMainConf, Request};
use ngx::ngx_log_error;

use super::language;
use super::response::Drawing;
use super::{client, handler, metrics, request_state, response, unwind, zone, LocConf, MainConf, Module};
use crate::challenge::flow::{judge, Form, Judgement, MAX_FORM_BYTES};
use crate::challenge::token::{
    check_challenge, with_pass_argument, ChallengeTerms, ClientBinding, Delivery, PASS_NAME,
};
use crate::pages::Message;
use crate::policy::BlockReason;
use crate::state::metrics::ChallengeEvent;

/// Access-phase entry for the verify path: start reading the form.
pub(crate) fn start(r: &mut Request) -> ngx_int_t {
    let raw: *mut ngx_http_request_t = r.into();
    // SAFETY: `raw` is the live request in its access phase.
    unsafe {
        if (*raw).method != NGX_HTTP_POST as usize {
            let rc = response::write_not_allowed(r, "POST");
            return response::finish(r, rc);
        }
        if (*raw).headers_in.content_length_n > MAX_FORM_BYTES as i64 {
            let rc = response::write_status(r, 413);
            return response::finish(r, rc);
        }
        (*raw).set_request_body_in_single_buf(1);
        let rc = ngx_http_read_client_request_body(raw, Some(form_read));
        if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
            return rc;
        }
        // Reading took a reference on the request; drop ours, as nginx's mirror module does.
        // form_read finalizes the request once the body is in (perhaps already, above).
        ngx_http_finalize_request(raw, Status::NGX_DONE.into());
    }
    Status::NGX_DONE.into()
}

/// Called by nginx once the whole body has been read.
unsafe extern "C" fn form_read(raw: *mut ngx_http_request_t) {
    // SAFETY: nginx calls the body handler with the live request.
    let r = unsafe { Request::from_ngx_http_request(raw) };
    let sent = unwind::guarded(
        "the answer handler",
        || Drawing::Sent(ngx::ffi::NGX_HTTP_INTERNAL_SERVER_ERROR as _),
        || answer(r),
    );
    // A page being drawn in the thread pool is finalized when it is sent (offload::finished).
    if let Drawing::Sent(rc) = sent {
        // SAFETY: as above; this completes the request with our response's send result.
        unsafe { ngx_http_finalize_request(raw, rc) };
    }
}

/// The form body, or `None` when it is too large or went to a temporary file.
fn form_body(r: &Request) -> Option<Vec<u8>> {
    let raw: *const ngx_http_request_t = r.into();
    // SAFETY: after the body handler fired, `request_body` and its buffer chain belong to the
    // live request; in-memory buffers span pos..last.
    unsafe {
        let Some(body) = (*raw).request_body.as_ref() else {
            return Some(Vec::new());
        };
        if !body.temp_file.is_null() {
            return None;
        }
        let mut bytes = Vec::new();
        let mut chain = body.bufs;
        while let Some(link) = chain.as_ref() {
            let Some(buf) = link.buf.as_ref() else { break };
            if buf.in_file() != 0 {
                return None;
            }
            let len = usize::try_from(buf.last.offset_from(buf.pos)).unwrap_or(0);
            if bytes.len() + len > MAX_FORM_BYTES {
                return None;
            }
            if len > 0 {
                bytes.extend_from_slice(core::slice::from_raw_parts(buf.pos, len));
            }
            chain = link.next;
        }
        Some(bytes)
    }
}

fn answer(r: &mut Request) -> Drawing {
    match judge_answer(r) {
        Answered::Page(rc) => Drawing::Sent(rc),
        Answered::Drawing(drawing) => drawing,
    }
}

/// What an answer got: a page already sent (with nginx's result), or a fresh captcha.
enum Answered {
    Page(ngx_int_t),
    Drawing(Drawing),
}

impl From<ngx_int_t> for Answered {
    fn from(rc: ngx_int_t) -> Answered {
        Answered::Page(rc)
    }
}

fn judge_answer(r: &mut Request) -> Answered {
    let (Some(mcf), Some(lcf)) = (Module::main_conf(r), Module::location_conf(r)) else {
        return response::write_status(r, 500).into();
    };
    let Some(body) = form_body(r) else {
        return response::write_status(r, 413).into();
    };
    let (Some(secrets), Some(zone)) = (mcf.secrets(), mcf.zone_state()) else {
        return response::write_status(r, 500).into();
    };
    let (Some(spent), Some(failures)) = (zone.spent.as_ref(), zone.failures.as_ref()) else {
        return response::write_status(r, 500).into();
    };
    let address = client::address(r);
    let binding = ClientBinding::new(address, client::user_agent(r));
    let now = client::now();
    let form = Form::parse(&body);
    // Garbage, forged or someone else's: answered for this path's own location.
    let challenge = check_challenge(secrets, &form.challenge, binding).ok();
    let terms = match &challenge {
        Some(challenge) => challenge.terms.clone(),
        None => response::challenge_terms(r, mcf, lcf, "/".into()),
    };

    // Counted like a request to the location whose captcha this answers.
    if let Some(retry_after) = handler::answer_budget_spent(r, mcf, &terms.budget, address) {
        let language = language::choose(r, lcf, &terms.return_path);
        return response::write_rate_limited(r, lcf, &terms.return_path, retry_after, &language)
            .into();
    }
    let failure_keys = request_state::failure_keys(mcf, address, terms.budget.ipv6_prefix);
    if failures.with(client::holder(), |t| {
        mcf.failure_limit.is_blocked(t, &failure_keys, now.millis)
    }) {
        let language = language::choose(r, lcf, &terms.return_path);
        return response::write_block(
            r,
            lcf,
            &terms.return_path,
            BlockReason::TooManyFailures,
            &language,
        )
        .into();
    }
    let Some(challenge) = challenge else {
        return stale(r, lcf, &terms);
    };

    let mut pass_id = [0u8; 16];
    if getrandom::getrandom(&mut pass_id).is_err() {
        return response::write_status(r, 500).into();
    }
    let spend = |nonce: &[u8; 16], expires: u64| {
        let outcome = spent.spend(client::holder(), nonce, expires);
        let (load, designed) = spent.load(now.secs);
        if load > designed as u64 {
            zone::warn_full(
                r.log(),
                zone::Full::Spent {
                    false_replays: spent.false_replay_rate(expires),
                },
            );
        }
        outcome
    };
    let (kind, hardness) = (challenge.terms.kind, challenge.terms.hardness.get());
    let expired = challenge.expired(now.secs);
    let issued_at = challenge
        .expires
        .saturating_sub(response::CHALLENGE_TTL_SECS);
    match judge(secrets, challenge, &form, binding, now.secs, spend, pass_id) {
        Judgement::Solved {
            pass,
            delivery,
            pass_age,
            return_path,
        } => {
            ngx_log_error!(NGX_LOG_INFO, r.log(), "captchaify: captcha solved");
            metrics::count_challenge(mcf, kind, hardness, ChallengeEvent::Solved);
            metrics::observe_solve(mcf, kind, now.secs.saturating_sub(issued_at));
            match delivery {
                Delivery::Cookie => {
                    let secure = if client::secure_cookies(r, lcf) {
                        "; Secure"
                    } else {
                        ""
                    };
                    let cookie = format!(
                        "{PASS_NAME}={pass}; Path=/; Max-Age={pass_age}; HttpOnly; SameSite=Lax{secure}"
                    );
                    response::write_redirect(r, &return_path, &[("Set-Cookie", &cookie)]).into()
                }
                Delivery::UrlArgument => {
                    response::write_redirect(r, &with_pass_argument(&return_path, &pass), &[])
                        .into()
                }
            }
        }
        Judgement::Wrong { terms } => {
            metrics::count_challenge(mcf, kind, hardness, ChallengeEvent::Failed);
            let recorded = failures.with(client::holder(), |t| {
                mcf.failure_limit.record(t, &failure_keys, now.millis)
            });
            if !recorded.kept {
                zone::warn_full(r.log(), zone::Full::Failures);
            }
            super::crowdsec::wrong_answer(mcf, lcf, address, recorded.count);
            ngx_log_error!(
                NGX_LOG_INFO,
                r.log(),
                "captchaify: wrong answer{}",
                if recorded.blocked {
                    ", client blocked"
                } else {
                    ""
                }
            );
            if recorded.blocked {
                let language = language::choose(r, lcf, &terms.return_path);
                return response::write_block(
                    r,
                    lcf,
                    &terms.return_path,
                    BlockReason::TooManyFailures,
                    &language,
                )
                .into();
            }
            // The last try before a block says so.
            let message = match recorded.last_try {
                true => Message::WrongLastTry,
                false => Message::Wrong,
            };
            rechallenge(r, mcf, lcf, &terms, message, address)
        }
        Judgement::Stale { terms } => {
            if expired {
                metrics::count_challenge(mcf, kind, hardness, ChallengeEvent::Expired);
            }
            stale(r, lcf, &terms)
        }
    }
}

/// A forged, foreign, expired or replayed challenge: no image is drawn for it, only a short
/// page links back to the page it was for, where a fresh captcha is drawn under that page's
/// budget (and after its pre-check). A person who double-clicked, or came back after two
/// minutes, follows one link; a flood of such answers costs a page of under 1 kB each.
fn stale(r: &mut Request, lcf: &LocConf, terms: &ChallengeTerms) -> Answered {
    ngx_log_error!(
        NGX_LOG_INFO,
        r.log(),
        "captchaify: stale or foreign challenge answered"
    );
    let language = language::choose(r, lcf, &terms.return_path);
    let page = crate::pages::stale_page(
        lcf.loc.pages().languages(),
        language.index,
        &terms.return_path,
    );
    response::write_page(r, Some(page), &[]).into()
}

/// A fresh captcha after a wrong answer, in the hardness of the challenge answered,
/// drawn in the thread pool; a hardness-3 one counts against the audio budget like any other
/// (the answer itself was counted against the page budget).
fn rechallenge(
    r: &mut Request,
    mcf: &MainConf,
    lcf: &LocConf,
    terms: &ChallengeTerms,
    message: Message,
    address: std::net::IpAddr,
) -> Answered {
    // The page's language and its chooser link are those of the page answered.
    let language = &language::choose(r, lcf, &terms.return_path);
    let spent = handler::audio_budget_spent(r, mcf, &terms.budget, terms.clip_on_page(), address);
    if let Some(retry_after) = spent {
        return response::write_rate_limited(r, lcf, &terms.return_path, retry_after, language)
            .into();
    }
    let drawing = response::send_challenge(
        r,
        mcf,
        lcf,
        terms.clone(),
        &terms.return_path,
        Some(message),
        language,
        None,
        address,
    );
    Answered::Drawing(drawing)
}
