//! The pages the module answers with, and the headers every one of them carries.
//!
//! Built-in templates come from `templates/` and are compiled into the module; an operator's
//! `captchaify_template_dir` replaces them per location, and a page missing there answers 404
//! (as in flask_Captchaify). Rendering yields a [`Page`]: status, body and security headers.

pub mod template;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use thiserror::Error;

pub use template::{Template, TemplateError};

/// The kinds of page the module serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Captcha,
    Block,
    /// Over the client's rate limit: 429 unless `captchaify_rate_limit_status` says otherwise.
    RateLimited,
}

impl PageKind {
    pub const ALL: [PageKind; 3] = [PageKind::Captcha, PageKind::Block, PageKind::RateLimited];

    /// The file name of the page in a template directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            PageKind::Captcha => "captcha.html",
            PageKind::Block => "block.html",
            PageKind::RateLimited => "rate_limited.html",
        }
    }

    pub const fn status(self) -> u16 {
        // A challenge is not the page that was asked for: 403 keeps caches and crawlers from
        // taking it for the content, as the big CDNs do for their own challenges.
        match self {
            PageKind::Captcha | PageKind::Block => 403,
            PageKind::RateLimited => 429,
        }
    }

    const fn index(self) -> usize {
        self as usize
    }

    const fn builtin_source(self) -> &'static str {
        match self {
            PageKind::Captcha => include_str!("../../templates/captcha.html"),
            PageKind::Block => include_str!("../../templates/block.html"),
            PageKind::RateLimited => include_str!("../../templates/rate_limited.html"),
        }
    }
}

/// The placeholders a template may use, in the order [`PageContext`] fills them.
pub const PLACEHOLDERS: &[&str] = &[
    "csp_nonce",
    "builtin_style",
    "lang",
    "dir",
    "path",
    "message_block",
    "image_src",
    "image_width",
    "image_height",
    "answer_length",
    "challenge",
    "form_action",
    "retry_after",
];

/// The stylesheet of the built-in pages; custom templates may use it as `{{{builtin_style}}}`.
pub const BUILTIN_STYLE: &str = include_str!("../../templates/style.css");

/// What a page shows about the request it answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageContext<'a> {
    /// The path (and query) the client asked for, shown escaped.
    pub path: &'a str,
    /// A notice for the client (a wrong answer, an expired challenge); empty for none.
    pub message: &'a str,
    /// The puzzle, on captcha pages.
    pub captcha: Option<CaptchaView<'a>>,
    /// Seconds until the client may try again, on rate-limit pages (0 elsewhere).
    pub retry_after: u64,
}

/// The parts of a captcha page that come from the challenge.
#[derive(Debug, Clone, Copy)]
pub struct CaptchaView<'a> {
    pub png: &'a [u8],
    pub width: u32,
    pub height: u32,
    /// How many characters the answer has, e.g. "9 to 11" — told to screen readers too.
    pub answer_length: &'a str,
    /// The signed challenge token for the form's hidden field.
    pub challenge: &'a str,
    /// Where the form posts to.
    pub form_action: &'a str,
}

/// One set of page templates: the built-in one, or an operator's directory where some pages
/// may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSet {
    pages: [Option<Template>; PageKind::ALL.len()],
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("template directory \"{0}\" is not a readable directory")]
    NotADirectory(PathBuf),
    #[error("cannot read template \"{path}\": {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("template \"{path}\": {error}")]
    Template { path: PathBuf, error: TemplateError },
}

impl PageSet {
    /// The templates shipped in `templates/`, parsed once per process.
    pub fn builtin() -> &'static PageSet {
        static BUILTIN: LazyLock<PageSet> = LazyLock::new(|| PageSet {
            pages: PageKind::ALL
                .map(|kind| Template::parse(kind.builtin_source(), PLACEHOLDERS).ok()),
        });
        &BUILTIN
    }

    /// Whether every built-in template parsed (checked by a unit test and at start-up).
    pub fn is_complete(&self) -> bool {
        self.pages.iter().all(Option::is_some)
    }

    /// Loads an operator's template directory. Pages it lacks stay missing (they answer 404);
    /// a page that exists but does not parse is an error, reported at `nginx -t`.
    pub fn load_dir(dir: &Path) -> Result<PageSet, LoadError> {
        if !dir.is_dir() {
            return Err(LoadError::NotADirectory(dir.to_path_buf()));
        }
        let mut pages: [Option<Template>; PageKind::ALL.len()] = Default::default();
        for kind in PageKind::ALL {
            let path = dir.join(kind.file_name());
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(LoadError::Read { path, error }),
            };
            let template =
                Template::parse(&source, PLACEHOLDERS).map_err(|error| LoadError::Template {
                    path: path.clone(),
                    error,
                })?;
            pages[kind.index()] = Some(template);
        }
        Ok(PageSet { pages })
    }

    /// Renders a page, or `None` when this set has no such page (the caller answers 404).
    pub fn render(&self, kind: PageKind, context: &PageContext<'_>) -> Option<Page> {
        let template = self.pages[kind.index()].as_ref()?;
        let nonce = csp_nonce();
        let mut message_block = String::new();
        if !context.message.is_empty() {
            message_block.push_str("<p class=\"message\" role=\"alert\">");
            template::escape_into(&mut message_block, context.message);
            message_block.push_str("</p>");
        }
        let captcha = context.captcha;
        let image_src = captcha
            .map(|c| format!("data:image/png;base64,{}", STANDARD.encode(c.png)))
            .unwrap_or_default();
        let width = captcha.map(|c| c.width.to_string()).unwrap_or_default();
        let height = captcha.map(|c| c.height.to_string()).unwrap_or_default();
        let body = template.render(&[
            &nonce,
            BUILTIN_STYLE,
            "en",
            "ltr",
            context.path,
            &message_block,
            &image_src,
            &width,
            &height,
            captcha.map_or("", |c| c.answer_length),
            captcha.map_or("", |c| c.challenge),
            captcha.map_or("", |c| c.form_action),
            &context.retry_after.to_string(),
        ]);
        Some(Page {
            status: kind.status(),
            content_security_policy: content_security_policy(&nonce),
            body,
        })
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
    // The kernel RNG does not fail once the system is up; should it, a predictable nonce must
    // not be handed out: the page then renders without its inline style.
    if getrandom::getrandom(&mut bytes).is_err() {
        return String::from("unavailable");
    }
    STANDARD_NO_PAD.encode(bytes)
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

    fn captcha_context<'a>(png: &'a [u8]) -> PageContext<'a> {
        PageContext {
            path: "/a?b=<script>\"",
            message: "Wrong <answer>",
            captcha: Some(CaptchaView {
                png,
                width: 320,
                height: 120,
                answer_length: "9 to 11",
                challenge: "c1.x\"y",
                form_action: "/.captchaify/verify",
            }),
            retry_after: 17,
        }
    }

    #[test]
    fn builtin_pages_render_with_escaped_values_and_nonce() {
        let pages = PageSet::builtin();
        assert!(pages.is_complete());
        for kind in PageKind::ALL {
            let page = pages.render(kind, &captcha_context(b"\x89PNG")).unwrap();
            assert_eq!(
                page.status,
                if kind == PageKind::RateLimited {
                    429
                } else {
                    403
                }
            );
            assert!(
                page.body.contains("/a?b=&lt;script&gt;&quot;"),
                "{kind:?}: {}",
                page.body
            );
            assert!(page.body.contains("Wrong &lt;answer&gt;"), "{kind:?}");
            assert!(!page.body.contains("<script>"));
            let nonce = page
                .content_security_policy
                .split("'nonce-")
                .nth(1)
                .and_then(|s| s.split('\'').next())
                .expect("nonce in CSP");
            assert_eq!(nonce.len(), 22);
            assert!(
                page.body.contains(&format!("nonce=\"{nonce}\"")),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn the_captcha_page_carries_the_puzzle_and_the_form() {
        let page = PageSet::builtin()
            .render(PageKind::Captcha, &captcha_context(b"\x89PNG"))
            .unwrap();
        assert!(
            page.body.contains("src=\"data:image/png;base64,iVBORw==\""),
            "{}",
            page.body
        );
        assert!(page.body.contains("value=\"c1.x&quot;y\""));
        assert!(page.body.contains("action=\"/.captchaify/verify\""));
        assert!(page.body.contains("method=\"post\""));
        assert!(page.body.contains("<label for=\"captchaify-answer\""));
        assert!(page.body.contains("9 to 11"));
    }

    #[test]
    fn the_rate_limit_page_says_when_to_come_back() {
        let page = PageSet::builtin()
            .render(PageKind::RateLimited, &captcha_context(b""))
            .unwrap();
        assert_eq!(page.status, 429);
        assert!(
            page.body.contains("<strong>17 seconds</strong>"),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("<form"),
            "no form on the rate-limit page"
        );
    }

    #[test]
    fn nonces_differ_per_response() {
        let pages = PageSet::builtin();
        let ctx = PageContext {
            path: "/",
            ..PageContext::default()
        };
        let a = pages
            .render(PageKind::Block, &ctx)
            .unwrap()
            .content_security_policy;
        let b = pages
            .render(PageKind::Block, &ctx)
            .unwrap()
            .content_security_policy;
        assert_ne!(a, b);
    }

    #[test]
    fn template_dirs_may_lack_pages_but_not_hold_bad_ones() {
        let dir = std::env::temp_dir().join(format!("captchaify-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("block.html"), "<p>{{path}} is blocked</p>").unwrap();
        let _ = std::fs::remove_file(dir.join("captcha.html"));
        let set = PageSet::load_dir(&dir).unwrap();
        let ctx = PageContext {
            path: "/x<",
            ..PageContext::default()
        };
        assert_eq!(
            set.render(PageKind::Block, &ctx).unwrap().body,
            "<p>/x&lt; is blocked</p>"
        );
        assert!(set.render(PageKind::Captcha, &ctx).is_none());

        std::fs::write(dir.join("captcha.html"), "{{secret}}").unwrap();
        let error = PageSet::load_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("captcha.html") && error.contains("unknown placeholder \"secret\""),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();

        assert!(matches!(
            PageSet::load_dir(&dir),
            Err(LoadError::NotADirectory(_))
        ));
    }
}
