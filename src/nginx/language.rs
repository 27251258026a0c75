//! The page language of a request, and the language chooser at its module-owned path.

use ngx::ffi::ngx_int_t;
use ngx::http::Request;

use super::{client, response, LocConf};
use crate::challenge::token::is_safe_return_path;
use crate::pages::{
    chooser_href, with_language_argument, ChooserView, PageContext, PageKind, LANGUAGE_NAME,
};

/// How long a chosen language is remembered (one year).
const COOKIE_AGE_SECS: u64 = 365 * 86400;

/// The language of the pages a request gets, and the link to change it.
pub(crate) struct PageLanguage {
    /// Index into the location's languages.
    pub index: usize,
    /// The "Language" link of the page.
    pub chooser_href: String,
    /// The language came from the URL (cookie-less mode): the form must carry it on.
    pub from_url: Option<String>,
}

/// An explicit choice (URL argument, then cookie), else `Accept-Language`, else the
/// location's default. `return_path` is where the chooser sends the client back to.
pub(crate) fn choose(r: &Request, lcf: &LocConf, return_path: &str) -> PageLanguage {
    let languages = lcf.loc.pages().languages();
    let from_url = client::arguments(r, LANGUAGE_NAME.as_bytes())
        .next()
        .filter(|tag| languages.find(tag).is_some());
    let explicit = from_url.or_else(|| client::cookies(r, LANGUAGE_NAME.as_bytes()).next());
    let accept = r
        .headers_in_iterator()
        .find(|(key, _)| key.as_bytes().eq_ignore_ascii_case(b"accept-language"))
        .map(|(_, value)| value.as_bytes());
    let index = languages.choose(explicit, accept, lcf.loc.default_language);
    PageLanguage {
        index,
        chooser_href: chooser_href(return_path, lcf.loc.without_cookies),
        from_url: from_url.map(|_| languages.get(index).tag.clone()),
    }
}

/// The chooser: `GET /.captchaify/language?return=PATH[&nocookie=1]` shows the list;
/// `…&set=TAG` remembers the choice (cookie, or URL argument with `nocookie`) and sends the
/// client back to PATH, which must be a same-site relative path (else `/`).
pub(crate) fn serve(r: &mut Request, lcf: &LocConf) -> ngx_int_t {
    if !client::is_get_or_head(r) {
        return response::write_not_allowed(r, "GET, HEAD");
    }
    let first = |name: &[u8]| client::argument(r, name);
    let return_path = first(b"return")
        .filter(|path| is_safe_return_path(path))
        .and_then(|path| String::from_utf8(path).ok())
        .unwrap_or_else(|| "/".into());
    let without_cookies = first(b"nocookie").is_some_and(|v| v == b"1");
    let languages = lcf.loc.pages().languages();
    if let Some(index) = first(b"set").and_then(|tag| languages.find(&tag)) {
        let tag = &languages.get(index).tag;
        if without_cookies {
            return response::write_redirect(r, &with_language_argument(&return_path, tag), &[]);
        }
        let secure = if client::secure_cookies(r, lcf) {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{LANGUAGE_NAME}={tag}; Path=/; Max-Age={COOKIE_AGE_SECS}; SameSite=Lax{secure}"
        );
        return response::write_redirect(r, &return_path, &[("Set-Cookie", &cookie)]);
    }
    let language = choose(r, lcf, &return_path);
    let page = lcf.loc.pages().render(
        PageKind::ChangeLanguage,
        &PageContext {
            path: &return_path,
            language: language.index,
            language_href: &language.chooser_href,
            chooser: Some(ChooserView {
                return_path: &return_path,
                without_cookies,
            }),
            hints: None,
            ..PageContext::default()
        },
    );
    response::write_page(r, page, &[])
}
