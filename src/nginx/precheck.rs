//! The pre-check: before an image is drawn for a client, it proves, through a tiny page, that
//! it keeps a cookie (or carries a URL argument) and comes back. A flood of clients that do
//! neither costs a page of under 1 kB each, not a drawn captcha (docs/design.md, "The pre-check").

use ngx::ffi::ngx_int_t;
use ngx::http::Request;
use std::net::IpAddr;

use super::language::PageLanguage;
use super::{client, response, LocConf, MainConf};
use crate::challenge::token::{check_precheck, issue_precheck, ClientBinding, PRECHECK_NAME};
use crate::crawler::hints::Hints;
use crate::pages::precheck_page;

/// How long a proof lasts, in seconds: long enough to read the captcha that follows and to
/// reload it, short enough to be of little use to anyone else (it is bound to the client and
/// the page anyway).
const PROOF_SECS: u64 = 300;

/// Whether the request brings a valid proof for `return_path`: the first `captchaify_pre`
/// cookie, else the first such URL argument. One check at most, whatever the request carries.
pub(crate) fn passed(r: &Request, mcf: &MainConf, return_path: &str, address: IpAddr) -> bool {
    let name = PRECHECK_NAME.as_bytes();
    let Some(proof) = client::cookies(r, name)
        .next()
        .or_else(|| client::arguments(r, name).next())
    else {
        return false;
    };
    let Some(secrets) = mcf.secrets() else {
        return false;
    };
    let binding = ClientBinding::new(address, client::user_agent(r));
    check_precheck(secrets, proof, binding, return_path, client::now().secs)
}

/// Sends the pre-check page with a fresh proof: as a cookie, or, in a cookie-less location,
/// on the URL it sends the client back to.
pub(crate) fn send(
    r: &mut Request,
    mcf: &MainConf,
    lcf: &LocConf,
    return_path: &str,
    language: &PageLanguage,
    hints: Option<&Hints>,
    address: IpAddr,
) -> ngx_int_t {
    let Some(secrets) = mcf.secrets() else {
        return response::write_status(r, 500);
    };
    let binding = ClientBinding::new(address, client::user_agent(r));
    let proof = issue_precheck(
        secrets,
        binding,
        return_path,
        client::now().secs + PROOF_SECS,
    );
    let languages = lcf.loc.pages().languages();
    if lcf.loc.without_cookies {
        let separator = if return_path.contains('?') { '&' } else { '?' };
        let href = format!("{return_path}{separator}{PRECHECK_NAME}={proof}");
        return response::write_page(
            r,
            Some(precheck_page(languages, language.index, &href, hints)),
            &[],
        );
    }
    let secure = if client::secure_cookies(r, lcf) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{PRECHECK_NAME}={proof}; Path=/; Max-Age={PROOF_SECS}; HttpOnly; SameSite=Lax{secure}"
    );
    let page = precheck_page(languages, language.index, return_path, hints);
    response::write_page(r, Some(page), &[("Set-Cookie", &cookie)])
}
