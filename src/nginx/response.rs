//! Sending the module's own responses — pages, redirects — without ever falling open.

use core::ptr;

use ngx::core::Status;
use ngx::ffi::{
    ngx_chain_t, ngx_create_temp_buf, ngx_http_discard_request_body, ngx_http_finalize_request,
    ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header, ngx_int_t, ngx_list_push,
    ngx_pnalloc, ngx_str_t, ngx_table_elt_t, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_FOUND,
};
use ngx::http::Request;

use super::language::PageLanguage;
use super::{client, LocConf, MainConf};
use crate::challenge::compose::{Composed, Order};
use crate::challenge::token::{ChallengeTerms, ClientBinding, Secrets};
use crate::pages::{Message, Page, PageContext, PageKind, PageSet, Piece, LANGUAGE_NAME};
use crate::policy::BlockReason;
use crate::state::metrics::ChallengeEvent;

/// The module-owned path the captcha form posts to.
pub(crate) const VERIFY_PATH: &str = crate::request::OwnPath::Verify.path();

/// How long a challenge may be answered.
pub(crate) const CHALLENGE_TTL_SECS: u64 = 120;

/// Finishes a phase handler that answered the request itself. Always `NGX_DONE`: returning
/// `NGX_OK` from the access phase would mean "allowed", and nginx would serve the protected
/// content after our response.
pub(crate) fn finish(r: &mut Request, rc: ngx_int_t) -> ngx_int_t {
    let raw: *mut ngx_http_request_t = r.into();
    // SAFETY: `raw` is the live request; finalizing with the send result is what content
    // handlers do, and NGX_DONE tells the phase engine the request is taken care of.
    unsafe { ngx_http_finalize_request(raw, rc) };
    Status::NGX_DONE.into()
}

/// Sends a rendered page; a page the location's templates lack is a 404.
pub(crate) fn write_page(
    r: &mut Request,
    page: Option<Page>,
    extra: &[(&'static str, &str)],
) -> ngx_int_t {
    let Some(page) = page else {
        return NGX_HTTP_NOT_FOUND as _;
    };
    let csp = [(
        "Content-Security-Policy",
        page.content_security_policy.as_str(),
    )];
    write_response(
        r,
        page.status,
        "text/html",
        &Page::FIXED_HEADERS,
        &[&csp, extra],
        page.body.as_bytes(),
    )
}

/// Answers a bare status from one of the module's own paths (`405`, `410`, `413`, …) with a
/// short page of its own, so that it carries `no-store` and the other fixed headers like
/// every page of ours (nginx's own error page would not). A 413 closes the connection rather
/// than read the rest of a body too large to want. For a 405 see [`write_not_allowed`].
pub(crate) fn write_status(r: &mut Request, status: u16) -> ngx_int_t {
    write_status_with(r, status, &[])
}

/// `405 Method Not Allowed`, saying which methods the path takes.
pub(crate) fn write_not_allowed(r: &mut Request, allow: &str) -> ngx_int_t {
    write_status_with(r, 405, &[("Allow", allow)])
}

fn write_status_with(r: &mut Request, status: u16, extra: &[(&'static str, &str)]) -> ngx_int_t {
    let reason = match status {
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        413 => "Content Too Large",
        _ => "Internal Server Error",
    };
    let raw: *mut ngx_http_request_t = r.into();
    if status == 413 {
        // SAFETY: `raw` is the live request.
        unsafe { (*raw).set_keepalive(0) };
    }
    let csp = [("Content-Security-Policy", "default-src 'none'")];
    let body = format!("{status} {reason}\n");
    write_response(
        r,
        status,
        "text/plain",
        &Page::FIXED_HEADERS,
        &[&csp, extra],
        body.as_bytes(),
    )
}

/// Sends `303 See Other` to a same-site relative `location` (never made absolute, never
/// anywhere else), with optional extra headers such as `Set-Cookie`.
pub(crate) fn write_redirect(
    r: &mut Request,
    location: &str,
    extra: &[(&'static str, &str)],
) -> ngx_int_t {
    let mut body = String::from("<!DOCTYPE html><title>See Other</title><a href=\"");
    crate::pages::template::escape_into(&mut body, location);
    body.push_str("\">Continue</a>\n");
    let location = [("Location", location)];
    write_response(
        r,
        303,
        "text/html",
        &[("Cache-Control", "no-store")],
        &[&location, extra],
        body.as_bytes(),
    )
}

/// Sends a response of any type; UTF-8 is declared for `text/` types only.
pub(crate) fn write_response(
    r: &mut Request,
    status: u16,
    content_type: &str,
    fixed: &'static [(&'static str, &'static str)],
    headers: &[&[(&'static str, &str)]],
    body: &[u8],
) -> ngx_int_t {
    write_parts(r, status, content_type, fixed, headers, &[body])
}

/// Sends a response whose body is `parts`, copied into one buffer (one buffer, not one per
/// part: nginx's body filters cost more per buffer than the copy does).
fn write_parts(
    r: &mut Request,
    status: u16,
    content_type: &str,
    fixed: &'static [(&'static str, &'static str)],
    headers: &[&[(&'static str, &str)]],
    parts: &[&[u8]],
) -> ngx_int_t {
    let raw: *mut ngx_http_request_t = r.into();
    let length: usize = parts.iter().map(|part| part.len()).sum();
    // SAFETY: all pointers below come from the live request and its pool.
    unsafe {
        // A request body must be read and dropped, or keepalive breaks on the next request
        // (a no-op once the verify handler has read it).
        let rc = ngx_http_discard_request_body(raw);
        if rc != Status::NGX_OK.0 {
            return rc;
        }

        let pool = (*raw).pool;
        let out = &mut (*raw).headers_out;
        out.status = status as _;
        out.content_length_n = length as _;
        out.content_type = ngx_str_t::from_str(pool, content_type);
        out.content_type_len = out.content_type.len;
        if content_type.starts_with("text/") {
            out.charset = ngx_str_t::from_str(pool, "utf-8");
        }
        out.content_type_lowcase = ptr::null_mut();
        let fixed = fixed
            .iter()
            .map(|&(name, value)| (name, value, Value::Static));
        let others = headers
            .iter()
            .copied()
            .flatten()
            .map(|&(name, value)| (name, value, Value::Copied));
        for (name, value, kind) in fixed.chain(others) {
            if push_header(raw, name, value, kind).is_none() {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as _;
            }
        }

        let rc = ngx_http_send_header(raw);
        if rc == Status::NGX_ERROR.0 || rc > Status::NGX_OK.0 || (*raw).header_only() != 0 {
            return rc;
        }

        let buf = ngx_create_temp_buf(pool, length.max(1));
        if buf.is_null() {
            return Status::NGX_ERROR.into();
        }
        for part in parts {
            ptr::copy_nonoverlapping(part.as_ptr(), (*buf).last, part.len());
            (*buf).last = (*buf).last.add(part.len());
        }
        (*buf).set_last_buf(if raw == (*raw).main { 1 } else { 0 });
        (*buf).set_last_in_chain(1);
        let mut chain = ngx_chain_t {
            buf,
            next: ptr::null_mut(),
        };
        ngx_http_output_filter(raw, &mut chain)
    }
}

/// Whether a header's value lives as long as the module (used where it is) or must be copied
/// into the request's pool.
#[derive(Clone, Copy)]
enum Value {
    Static,
    Copied,
}

/// Adds a response header the way nginx's own `add_header` does: the name is ours and
/// lives as long as the module (no copy, no lower-case copy, which output filters do not use),
/// the value is copied into the request's pool unless it is static too.
///
/// # Safety
/// `raw` is the live request, before its header is sent; a `Value::Static` value lives as
/// long as the module.
unsafe fn push_header(
    raw: *mut ngx_http_request_t,
    name: &'static str,
    value: &str,
    kind: Value,
) -> Option<()> {
    // SAFETY: the caller's request; the list element is ours until the header is sent, and
    // is zeroed first (whatever fields this nginx version's element has).
    unsafe {
        let header = ngx_list_push(&mut (*raw).headers_out.headers).cast::<ngx_table_elt_t>();
        if header.is_null() {
            return None;
        }
        let data = match kind {
            Value::Static => value.as_ptr().cast_mut(),
            Value::Copied => {
                let data = ngx_pnalloc((*raw).pool, value.len().max(1)).cast::<u8>();
                if data.is_null() {
                    return None;
                }
                ptr::copy_nonoverlapping(value.as_ptr(), data, value.len());
                data
            }
        };
        ptr::write_bytes(header, 0, 1);
        let header = &mut *header;
        header.hash = 1;
        header.key = ngx_str_t {
            len: name.len(),
            data: name.as_ptr().cast_mut(),
        };
        header.lowcase_key = name.as_ptr().cast_mut();
        header.value = ngx_str_t {
            len: value.len(),
            data,
        };
        Some(())
    }
}

/// Sends the block page, telling the client why in its language (`reason`).
pub(crate) fn write_block(
    r: &mut Request,
    lcf: &LocConf,
    shown_path: &str,
    reason: BlockReason,
    language: &PageLanguage,
) -> ngx_int_t {
    let context = PageContext {
        path: shown_path,
        message: Some(Message::for_block(reason)),
        language: language.index,
        language_href: &language.chooser_href,
        ..PageContext::default()
    };
    write_plain(
        r,
        lcf,
        PageKind::Block,
        &context,
        PageKind::Block.status(),
        &[],
    )
}

/// Sends the rate-limit page with the location's status (429 by default) and `Retry-After`.
pub(crate) fn write_rate_limited(
    r: &mut Request,
    lcf: &LocConf,
    shown_path: &str,
    retry_after: u64,
    language: &PageLanguage,
) -> ngx_int_t {
    let context = PageContext {
        path: shown_path,
        retry_after,
        language: language.index,
        language_href: &language.chooser_href,
        ..PageContext::default()
    };
    let mut digits = crate::pages::itoa_buffer();
    let retry = [("Retry-After", digits.format(retry_after))];
    write_plain(
        r,
        lcf,
        PageKind::RateLimited,
        &context,
        lcf.loc.rate_limit_status,
        &retry,
    )
}

/// Sends a block or rate-limit page from its stamp: the stamp's text, and between, the
/// request's values escaped into this thread's reused buffer, copied once into the response
/// (a flood gets these pages: no allocation, no rendering); rendered when it has no stamp.
fn write_plain(
    r: &mut Request,
    lcf: &LocConf,
    kind: PageKind,
    context: &PageContext<'_>,
    status: u16,
    extra: &[(&'static str, &str)],
) -> ngx_int_t {
    thread_local! {
        static SCRATCH: std::cell::Cell<Option<(String, String)>> = const { std::cell::Cell::new(None) };
    }
    /// A stamp has a dozen pieces or so; one with more is rendered.
    const MOST_PIECES: usize = 32;
    // Taken out while in use (nginx's filters run in between), put back after.
    let (mut values, mut csp) = SCRATCH.take().unwrap_or_default();
    values.clear();
    csp.clear();
    let rc = match lcf
        .loc
        .pages()
        .plain_pieces::<MOST_PIECES>(kind, context, &mut values, &mut csp)
    {
        Some(pieces) => {
            let mut parts: [&[u8]; MOST_PIECES] = [&[]; MOST_PIECES];
            for (part, piece) in parts.iter_mut().zip(pieces.as_slice()) {
                *part = match *piece {
                    Piece::Text(text) => text.as_bytes(),
                    Piece::Value(start, end) => {
                        values.as_bytes().get(start..end).unwrap_or_default()
                    }
                };
            }
            let csp = [("Content-Security-Policy", csp.as_str())];
            let parts = parts.get(..pieces.as_slice().len()).unwrap_or_default();
            write_parts(
                r,
                status,
                "text/html",
                &Page::FIXED_HEADERS,
                &[&csp, extra],
                parts,
            )
        }
        None => {
            let page = lcf
                .loc
                .pages()
                .render(kind, context)
                .map(|page| Page { status, ..page });
            write_page(r, page, extra)
        }
    };
    SCRATCH.set(Some((values, csp)));
    rc
}

/// The terms a location sets for the captcha it shows.
pub(crate) fn challenge_terms(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    return_path: String,
) -> ChallengeTerms {
    let hardness = super::setting::hardness(r, &lcf.loc);
    challenge_terms_at(r, mcf, lcf, hardness, return_path)
}

/// [`challenge_terms`] at the hardness the request's policy was decided with (read once per
/// request when it is a variable).
pub(crate) fn challenge_terms_at(
    r: &Request,
    mcf: &MainConf,
    lcf: &LocConf,
    hardness: crate::policy::Hardness,
    return_path: String,
) -> ChallengeTerms {
    use crate::challenge::token::Delivery;
    ChallengeTerms {
        kind: super::setting::kind(r, &lcf.loc),
        hardness,
        pass_age: lcf.loc.verification_age,
        delivery: if lcf.loc.without_cookies {
            Delivery::UrlArgument
        } else {
            Delivery::Cookie
        },
        budget: super::handler::budget(r, mcf, lcf),
        return_path,
    }
}

/// What became of a captcha page: being drawn in the thread pool (the request resumes when
/// it is done, and is finalized then: its caller must leave it alone), or sent, with nginx's
/// result.
pub(crate) enum Drawing {
    Posted,
    Sent(ngx_int_t),
}

/// Makes a fresh captcha and sends its page, drawn in nginx's thread pool when there is one
/// (drawn on the spot otherwise, or when the pool refuses it). `shown_path` is what the page
/// says was asked for; a crawler's page shows `hints`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn send_challenge(
    r: &mut Request,
    mcf: &MainConf,
    lcf: &LocConf,
    terms: ChallengeTerms,
    shown_path: &str,
    message: Option<Message>,
    language: &PageLanguage,
    hints: Option<crate::crawler::hints::Hints>,
    address: std::net::IpAddr,
) -> Drawing {
    let binding = ClientBinding::new(address, client::user_agent(r));
    let (kind, hardness) = (terms.kind, terms.hardness.get());
    let Some(order) =
        ChallengeOrder::new(r, mcf, lcf, terms, binding, shown_path, message, language)
    else {
        return Drawing::Sent(write_status(r, 500));
    };
    super::metrics::count_challenge(mcf, kind, hardness, ChallengeEvent::Issued);
    match super::offload::post(mcf.thread_pool, r, order.with_hints(hints)) {
        Ok(()) => Drawing::Posted,
        Err(Some(order)) => Drawing::Sent(write_challenge_page(r, order.draw())),
        Err(None) => Drawing::Sent(write_status(r, 500)),
    }
}

/// A captcha page to draw: the pure [`Order`] gathered on the event loop, with the worker's
/// configuration it is drawn with, so that drawing it ([`ChallengeOrder::draw`]) touches
/// nothing of nginx and can run on another thread.
pub(crate) struct ChallengeOrder {
    secrets: Shared<Secrets>,
    pages: Shared<PageSet>,
    order: Order,
    /// A fault the test builds may be asked to make while drawing.
    #[cfg(feature = "test-answers")]
    fault: Option<super::unwind::TestFault>,
}

/// A pointer to configuration that outlives every request of the worker (the cycle's
/// configuration, read-only after start), to be read from a thread-pool thread.
struct Shared<T>(*const T);

// SAFETY: `Shared` only ever points at configuration data that is immutable while workers run
// and lives as long as the worker's cycle; reading it from several threads at once is sound.
unsafe impl<T: Sync> Send for Shared<T> {}

impl ChallengeOrder {
    // `r` only gives a test build its fault (X-Captchaify-Test-Fault).
    #[cfg_attr(not(feature = "test-answers"), allow(unused_variables))]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        r: &Request,
        mcf: &MainConf,
        lcf: &LocConf,
        terms: ChallengeTerms,
        binding: ClientBinding,
        shown_path: &str,
        message: Option<Message>,
        language: &PageLanguage,
    ) -> Option<ChallengeOrder> {
        let secrets = mcf.secrets()?;
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed).ok()?;
        Some(ChallengeOrder {
            secrets: Shared(secrets),
            pages: Shared(lcf.loc.pages()),
            order: Order {
                terms,
                binding,
                expires: client::now().secs + CHALLENGE_TTL_SECS,
                seed,
                shown_path: shown_path.to_owned(),
                message,
                language: language.index,
                chooser_href: language.chooser_href.clone(),
                // A language chosen in the URL (cookie-less mode) goes on with the form.
                form_action: match &language.from_url {
                    Some(tag) => format!("{VERIFY_PATH}?{LANGUAGE_NAME}={tag}"),
                    None => VERIFY_PATH.to_owned(),
                },
                hints: None,
                pictures: lcf.loc.pictures.clone(),
            },
            #[cfg(feature = "test-answers")]
            fault: super::unwind::test_fault(r),
        })
    }

    /// Shows a crawler the real page's title, description and OpenGraph tags.
    pub(crate) fn with_hints(mut self, hints: Option<crate::crawler::hints::Hints>) -> Self {
        self.order.hints = hints;
        self
    }

    /// Composes the page ([`Order::compose`]): pure work, no nginx.
    pub(crate) fn draw(self) -> Composed {
        #[cfg(feature = "test-answers")]
        match self.fault {
            Some(super::unwind::TestFault::PanicDraw) => {
                panic!("the test fault X-Captchaify-Test-Fault: panic-draw")
            }
            Some(super::unwind::TestFault::AbortDraw) => std::process::abort(),
            _ => {}
        }
        // SAFETY: see `Shared`: both point at the worker's configuration.
        let (secrets, pages) = unsafe { (&*self.secrets.0, &*self.pages.0) };
        self.order.compose(secrets, pages)
    }
}

/// Sends a drawn captcha page.
pub(crate) fn write_challenge_page(r: &mut Request, drawn: Composed) -> ngx_int_t {
    #[cfg(feature = "test-answers")]
    let extra = [
        ("X-Captchaify-Test-Answer", drawn.answer.as_str()),
        (
            "X-Captchaify-Test-Digits",
            drawn.alternative.as_deref().unwrap_or(""),
        ),
    ];
    #[cfg(feature = "test-answers")]
    let extra = &extra[..if drawn.alternative.is_some() { 2 } else { 1 }];
    #[cfg(not(feature = "test-answers"))]
    let extra: [(&str, &str); 0] = [];
    write_page(r, drawn.page, &extra[..])
}
