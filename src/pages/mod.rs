//! The pages the module answers with, and the headers every one of them carries.
//!
//! Built-in templates come from `templates/` and are compiled into the module. Rendering
//! yields a [`Page`]: status, body and the security headers, ready for the glue to send.

pub mod template;

use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD_NO_PAD as BASE64;
use base64::Engine;

pub use template::{Template, TemplateError};

/// The kinds of page the module serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Captcha,
    Block,
}

impl PageKind {
    pub const ALL: [PageKind; 2] = [PageKind::Captcha, PageKind::Block];

    /// The file name of the page in a template directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            PageKind::Captcha => "captcha.html",
            PageKind::Block => "block.html",
        }
    }

    pub const fn status(self) -> u16 {
        // A challenge is not the page that was asked for: 403 keeps caches and crawlers from
        // taking it for the content, as the big CDNs do for their own challenges.
        match self {
            PageKind::Captcha | PageKind::Block => 403,
        }
    }

    const fn builtin_source(self) -> &'static str {
        match self {
            PageKind::Captcha => include_str!("../../templates/captcha.html"),
            PageKind::Block => include_str!("../../templates/block.html"),
        }
    }
}

/// The placeholders a template may use, in the order [`PageContext::values`] fills them.
pub const PLACEHOLDERS: &[&str] = &["csp_nonce", "builtin_style", "lang", "dir", "path"];

/// The stylesheet of the built-in pages; custom templates may use it as `{{{builtin_style}}}`.
pub const BUILTIN_STYLE: &str = include_str!("../../templates/style.css");

/// What a page shows about the request it answers.
#[derive(Debug, Clone, Copy)]
pub struct PageContext<'a> {
    /// The path (and query) the client asked for, shown escaped.
    pub path: &'a str,
}

/// One set of page templates (the built-in one, or an operator's directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSet {
    captcha: Template,
    block: Template,
}

impl PageSet {
    /// The templates shipped in `templates/`, parsed once per process.
    pub fn builtin() -> &'static PageSet {
        static BUILTIN: LazyLock<PageSet> = LazyLock::new(|| {
            PageSet::parse(|kind| Ok::<_, TemplateError>(kind.builtin_source().to_string()))
                .expect("the built-in templates are valid")
        });
        &BUILTIN
    }

    /// Parses every page from the sources `load` returns.
    pub fn parse<E: From<TemplateError>>(
        mut load: impl FnMut(PageKind) -> Result<String, E>,
    ) -> Result<PageSet, E> {
        let mut parse = |kind| Template::parse(&load(kind)?, PLACEHOLDERS).map_err(E::from);
        Ok(PageSet { captcha: parse(PageKind::Captcha)?, block: parse(PageKind::Block)? })
    }

    pub fn render(&self, kind: PageKind, context: &PageContext<'_>) -> Page {
        let nonce = csp_nonce();
        let template = match kind {
            PageKind::Captcha => &self.captcha,
            PageKind::Block => &self.block,
        };
        let body = template.render(&[&nonce, BUILTIN_STYLE, "en", "ltr", context.path]);
        Page { status: kind.status(), content_security_policy: content_security_policy(&nonce), body }
    }
}

/// A rendered page, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_security_policy: String,
    pub body: String,
}

impl Page {
    pub const CONTENT_TYPE: &'static str = "text/html; charset=utf-8";

    /// Headers sent with every page besides `Content-Type` and the CSP.
    pub const FIXED_HEADERS: [(&'static str, &'static str); 4] = [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
    ];
}

/// A fresh nonce per response, from the operating system's cryptographic RNG.
fn csp_nonce() -> String {
    let mut bytes = [0u8; 16];
    // The kernel RNG does not fail once the system is up; a zero nonce would still be
    // unguessable to nobody, so do not hand out a predictable one: fall back to no inline style.
    if getrandom::getrandom(&mut bytes).is_err() {
        return String::from("unavailable");
    }
    BASE64.encode(bytes)
}

/// Nothing may load but our inline style and `data:` images and audio; forms post only to us.
fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; media-src data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_pages_render_with_escaped_path_and_nonce() {
        let pages = PageSet::builtin();
        for kind in PageKind::ALL {
            let page = pages.render(kind, &PageContext { path: "/a?b=<script>\"" });
            assert_eq!(page.status, 403);
            assert!(page.body.contains("/a?b=&lt;script&gt;&quot;"), "{kind:?}: {}", page.body);
            assert!(!page.body.contains("<script>"));
            let nonce = page
                .content_security_policy
                .split("'nonce-")
                .nth(1)
                .and_then(|s| s.split('\'').next())
                .expect("nonce in CSP");
            assert_eq!(nonce.len(), 22);
            assert!(page.body.contains(&format!("nonce=\"{nonce}\"")), "{kind:?}");
        }
    }

    #[test]
    fn nonces_differ_per_response() {
        let pages = PageSet::builtin();
        let ctx = PageContext { path: "/" };
        let a = pages.render(PageKind::Block, &ctx).content_security_policy;
        let b = pages.render(PageKind::Block, &ctx).content_security_policy;
        assert_ne!(a, b);
    }

    #[test]
    fn custom_sets_are_validated() {
        let bad = PageSet::parse(|kind| match kind {
            PageKind::Block => Ok::<_, TemplateError>("{{secret}}".to_string()),
            _ => Ok(String::new()),
        });
        assert_eq!(bad, Err(TemplateError::Unknown("secret".into())));
    }
}
