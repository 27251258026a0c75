//! The pages the module answers with, and the headers every one of them carries.
//!
//! Built-in templates come from `templates/` and are compiled into the module; an operator's
//! `captchaify_template_dir` replaces them per location, and a page missing there answers 404
//! (as in flask_Captchaify). Rendering yields a [`Page`]: status, body and security headers.

pub mod i18n;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use thiserror::Error;

pub use i18n::{Language, Languages, LanguagesError};
pub use template::{Template, TemplateError};

/// The kinds of page the module serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    Captcha,
    Block,
    /// Over the client's rate limit: 429 unless `captchaify_rate_limit_status` says otherwise.
    RateLimited,
    /// The language chooser (200).
    ChangeLanguage,
    /// A picture captcha (`captchaify_captcha_type emoji | animals`): 403, as the text one.
    Picture,
}

impl PageKind {
    pub const ALL: [PageKind; 5] = [
        PageKind::Captcha,
        PageKind::Block,
        PageKind::RateLimited,
        PageKind::ChangeLanguage,
        PageKind::Picture,
    ];

    /// The file name of the page in a template directory.
    pub const fn file_name(self) -> &'static str {
        match self {
            PageKind::Captcha => "captcha.html",
            PageKind::Block => "block.html",
            PageKind::RateLimited => "rate_limited.html",
            PageKind::ChangeLanguage => "change_language.html",
            PageKind::Picture => "picture.html",
        }
    }

    pub const fn status(self) -> u16 {
        // A challenge is not the page that was asked for: 403 keeps caches and crawlers from
        // taking it for the content, as the big CDNs do for their own challenges.
        match self {
            PageKind::Captcha | PageKind::Picture | PageKind::Block => 403,
            PageKind::RateLimited => 429,
            PageKind::ChangeLanguage => 200,
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
            PageKind::ChangeLanguage => include_str!("../../templates/change_language.html"),
            PageKind::Picture => include_str!("../../templates/picture.html"),
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
    "language_href",
    "language_name",
    "languages",
    "back_href",
    "audio_src",
    "audio_length",
    "message",
    "audio_href",
    "crawler_title",
    "crawler_head",
    "motif",
    "example_src",
    "tiles",
    "grid_columns",
    "tile_number",
    "audio_required",
    "audio_alternative",
];

/// The markup around a placeholder's value inside a translated string.
fn inline_markup(index: usize) -> (&'static str, &'static str) {
    match PLACEHOLDERS.get(index).copied() {
        Some("path") => ("<code>", "</code>"),
        Some("retry_after") | Some("motif") => ("<strong>", "</strong>"),
        _ => ("", ""),
    }
}

/// The stylesheet of the built-in pages: what every page uses, and what the captcha and
/// chooser pages add (forms, the image, the list of languages).
const BASE_STYLE: &str = include_str!("../../templates/style.css");
const FORMS_STYLE: &str = include_str!("../../templates/style-forms.css");

/// `{{{builtin_style}}}`, for custom templates too: the built-in stylesheet, minified; the
/// block and rate-limit pages (the ones a flood gets) carry only the rules they use.
pub fn builtin_style(kind: PageKind) -> &'static str {
    static STYLES: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (plain, full) = STYLES.get_or_init(|| {
        (
            minify_css(BASE_STYLE),
            minify_css(&format!("{BASE_STYLE}{FORMS_STYLE}")),
        )
    });
    match kind {
        PageKind::Block | PageKind::RateLimited => plain,
        PageKind::Captcha | PageKind::Picture | PageKind::ChangeLanguage => full,
    }
}

/// Our stylesheet without the spaces a browser does not need: runs of white space become one
/// space, or none next to `{ } ; : , > )` (but a space before `:` stays: it may start a
/// descendant's pseudo-class), and a rule's last `;` goes; two `}` in a row keep a newline
/// between them. No comments or strings with runs of spaces in it: not a general minifier.
fn minify_css(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut space = false;
    for c in css.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if std::mem::take(&mut space) {
            let after = out.ends_with(['{', '}', ';', ':', ',', '>', '(']);
            let before = matches!(c, '{' | '}' | ';' | ',' | '>' | ')');
            if !(after || before) {
                out.push(' ');
            }
        }
        if c == '}' && out.ends_with(';') {
            out.pop();
        }
        // Never `}}`, which reads as the end of a template placeholder.
        if c == '}' && out.ends_with('}') {
            out.push('\n');
        }
        out.push(c);
    }
    out
}

/// A notice shown above a page's content, where the template puts `{{{message_block}}}` (or
/// `{{message}}`): an operator's template with either shows new notices without a change,
/// and one with neither still works, without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The last answer was wrong.
    Wrong,
    /// The last answer was wrong, and the next wrong one blocks the client: it is warned.
    WrongLastTry,
    /// A fresh captcha (a reload) for a client whose next wrong answer blocks it.
    LastTry,
    /// The answered challenge had expired or was used already.
    Stale,
    /// The client is blocked for failing too many challenges.
    TooManyFailures,
    /// Blocked by a country or AS-number rule.
    BlockedNetwork,
    /// Blocked because its address is on a list (deny list, reputation source).
    BlockedAddressList,
    /// Blocked by a CrowdSec decision.
    BlockedCrowdSec,
    /// Blocked because the client looks like a program (crawler user agent, fake crawler).
    BlockedSuspiciousClient,
    /// Blocked with no rule about the client: the location blocks everyone.
    BlockedEveryone,
}

impl Message {
    pub const ALL: [Message; 10] = [
        Message::Wrong,
        Message::WrongLastTry,
        Message::LastTry,
        Message::Stale,
        Message::TooManyFailures,
        Message::BlockedNetwork,
        Message::BlockedAddressList,
        Message::BlockedCrowdSec,
        Message::BlockedSuspiciousClient,
        Message::BlockedEveryone,
    ];

    fn key(self) -> &'static str {
        match self {
            Message::Wrong => "captcha.wrong",
            Message::WrongLastTry => "captcha.last_try",
            Message::LastTry => "captcha.last_try_notice",
            Message::Stale => "captcha.stale",
            Message::TooManyFailures => "block.failures",
            Message::BlockedNetwork => "block.network",
            Message::BlockedAddressList => "block.address_list",
            Message::BlockedCrowdSec => "block.crowdsec",
            Message::BlockedSuspiciousClient => "block.suspicious",
            Message::BlockedEveryone => "block.everyone",
        }
    }

    /// What the block page tells a client blocked for `reason`.
    pub const fn for_block(reason: crate::policy::BlockReason) -> Message {
        use crate::policy::BlockReason;
        match reason {
            BlockReason::Network => Message::BlockedNetwork,
            BlockReason::AddressList(_) => Message::BlockedAddressList,
            BlockReason::CrowdSec(_) => Message::BlockedCrowdSec,
            BlockReason::TooManyFailures => Message::TooManyFailures,
            BlockReason::SuspiciousClient(_) => Message::BlockedSuspiciousClient,
            BlockReason::Everyone => Message::BlockedEveryone,
        }
    }
}

/// What a page shows about the request it answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageContext<'a> {
    /// The path (and query) the client asked for, shown escaped.
    pub path: &'a str,
    /// A notice for the client (a wrong answer, an expired challenge).
    pub message: Option<Message>,
    /// The puzzle, on captcha pages.
    pub captcha: Option<CaptchaView<'a>>,
    /// The grid, on picture captcha pages.
    pub pictures: Option<PictureView<'a>>,
    /// Seconds until the client may try again, on rate-limit pages (0 elsewhere).
    pub retry_after: u64,
    /// The page's language: an index into the set's [`Languages`].
    pub language: usize,
    /// Where the "Language" link goes; see [`chooser_href`].
    pub language_href: &'a str,
    /// On the language chooser: how its links are made.
    pub chooser: Option<ChooserView<'a>>,
    /// For a search-engine crawler facing the captcha: the real page's title, description
    /// and OpenGraph tags (`captchaify_crawler_hints`).
    pub hints: Option<&'a crate::crawler::hints::Hints>,
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
    /// The audio captcha, at hardness 3.
    pub audio: Option<AudioView<'a>>,
}

/// The parts of a picture captcha page that come from the challenge.
#[derive(Debug, Clone, Copy)]
pub struct PictureView<'a> {
    /// The motif's name in the page's language.
    pub motif: &'a str,
    /// A picture of the motif (PNG), drawn from none of the tiles' pictures.
    pub example: &'a [u8],
    /// The tiles' PNGs, position 1 first.
    pub tiles: &'a [Vec<u8>],
    pub columns: usize,
    pub challenge: &'a str,
    pub form_action: &'a str,
    /// The clip's download link: the accessible alternative below hardness 3, a part of the
    /// answer at hardness 3 (never inline: a clip would triple the page).
    pub audio_href: &'a str,
    /// How many digits it speaks, e.g. "9–14".
    pub audio_length: &'a str,
    /// Hardness 3: the digits are asked as well as the tiles.
    pub audio_required: bool,
}

/// The audio part of a hardness-3 captcha.
#[derive(Debug, Clone, Copy)]
pub struct AudioView<'a> {
    /// A complete WAV file.
    pub wav: &'a [u8],
    /// How many digits it speaks, e.g. "9–14".
    pub length: &'a str,
    /// Where the same clip can be downloaded (see [`AUDIO_PATH`]).
    pub href: &'a str,
}

/// The module-owned path a hardness-3 page's clip can be downloaded from (see
/// [`OwnPath::Audio`](crate::request::OwnPath::Audio)).
pub const AUDIO_PATH: &str = crate::request::OwnPath::Audio.path();

/// How the language chooser's links are made.
#[derive(Debug, Clone, Copy)]
pub struct ChooserView<'a> {
    /// Where to go back to: a same-site relative path.
    pub return_path: &'a str,
    /// Remember the choice in a URL argument rather than a cookie.
    pub without_cookies: bool,
}

/// The module-owned path of the language chooser.
pub const LANGUAGE_PATH: &str = crate::request::OwnPath::Language.path();

/// The cookie and URL argument that remember a chosen language.
pub const LANGUAGE_NAME: &str = "captchaify_lang";

/// The link from a page to the language chooser, for a page shown at `return_path`.
pub fn chooser_href(return_path: &str, without_cookies: bool) -> String {
    let mut href = String::with_capacity(LANGUAGE_PATH.len() + 20 + return_path.len() * 2);
    href.push_str(LANGUAGE_PATH);
    href.push_str("?return=");
    percent_encode_into(&mut href, return_path);
    if without_cookies {
        href.push_str("&nocookie=1");
    }
    href
}

/// Where the chooser sends a client back in cookie-less mode: `return_path` with the chosen
/// language as a URL argument (replacing any earlier one).
pub fn with_language_argument(return_path: &str, tag: &str) -> String {
    let path = crate::challenge::token::strip_argument(return_path, LANGUAGE_NAME);
    let separator = if path.contains('?') { '&' } else { '?' };
    format!("{path}{separator}{LANGUAGE_NAME}={}", percent_encode(tag))
}

/// The chooser's link that picks `tag`.
pub fn choice_href(tag: &str, chooser: &ChooserView<'_>) -> String {
    let mut href = format!(
        "{LANGUAGE_PATH}?set={}&return={}",
        percent_encode(tag),
        percent_encode(chooser.return_path)
    );
    if chooser.without_cookies {
        href.push_str("&nocookie=1");
    }
    href
}

/// Percent-encodes everything but unreserved characters (RFC 3986), for a query value.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 2);
    percent_encode_into(&mut out, value);
    out
}

/// [`percent_encode`], appended to `out`.
pub fn percent_encode_into(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// One set of page templates with its languages: the built-in one, or an operator's
/// directory where some pages may be missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSet {
    pages: [Option<Template>; PageKind::ALL.len()],
    languages: Languages,
    stamps: Stamps,
}

/// A page rendered once with markers where the request's own values go (the nonce, the path,
/// the chooser link, the seconds to wait), split at the markers: the block and rate-limit pages
/// a flood gets are filled in, not rendered, per request.
#[derive(Debug)]
struct Stamp {
    /// Text, then the slot after it (none after the last piece).
    pieces: Vec<(String, Option<Slot>)>,
    size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Nonce,
    Path,
    LanguageHref,
    RetryAfter,
}

impl Slot {
    const ALL: [Slot; 4] = [
        Slot::Nonce,
        Slot::Path,
        Slot::LanguageHref,
        Slot::RetryAfter,
    ];
    /// Unicode noncharacters: nothing escapes them, and no template or catalog holds them (a
    /// stamp that finds one where it did not put it is not used).
    const MARK: char = '\u{FDD0}';

    fn marker(self) -> String {
        format!("{}{}", Slot::MARK, self as u8)
    }
}

/// The stamps of one page set, made on first use: one per page kind, language and message.
#[derive(Default)]
struct Stamps(Vec<std::sync::OnceLock<Option<Stamp>>>);

impl Stamps {
    /// No message, or one of them.
    const MESSAGES: usize = Message::ALL.len() + 1;

    fn new(languages: usize) -> Stamps {
        Stamps(
            (0..PageKind::ALL.len() * languages * Stamps::MESSAGES)
                .map(|_| Default::default())
                .collect(),
        )
    }

    fn slot(
        &self,
        kind: PageKind,
        language: usize,
        message: Option<Message>,
    ) -> Option<&std::sync::OnceLock<Option<Stamp>>> {
        let message = message.map_or(0, |m| m as usize + 1);
        self.0.get(
            (kind.index() * (self.0.len() / PageKind::ALL.len() / Stamps::MESSAGES) + language)
                * Stamps::MESSAGES
                + message,
        )
    }
}

// A cache: not part of what a page set is.
impl PartialEq for Stamps {
    fn eq(&self, _: &Stamps) -> bool {
        true
    }
}
impl Eq for Stamps {}
impl Clone for Stamps {
    fn clone(&self) -> Stamps {
        Stamps::new(self.0.len() / PageKind::ALL.len() / Stamps::MESSAGES)
    }
}
impl std::fmt::Debug for Stamps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stamps")
    }
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
    #[error("{0}")]
    Languages(#[from] LanguagesError),
}

impl PageSet {
    /// The templates shipped in `templates/`, parsed once per process.
    pub fn builtin() -> &'static PageSet {
        static BUILTIN: LazyLock<PageSet> = LazyLock::new(|| {
            let languages = Languages::builtin(PLACEHOLDERS).unwrap_or_else(|_| {
                // Only a broken build gets here (a unit test parses every catalog); keep
                // serving in whatever parsed.
                Languages::builtin(&[]).expect("the built-in catalogs parse")
            });
            PageSet {
                pages: PageKind::ALL
                    .map(|kind| Template::parse(kind.builtin_source(), PLACEHOLDERS).ok()),
                stamps: Stamps::new(languages.all().len()),
                languages,
            }
        });
        &BUILTIN
    }

    /// Whether every built-in template and catalog parsed (checked by a unit test and at
    /// start-up).
    pub fn is_complete(&self) -> bool {
        self.pages.iter().all(Option::is_some) && Languages::builtin(PLACEHOLDERS).is_ok()
    }

    /// Whether the set has a page of this kind (an operator's directory may lack some).
    pub fn has(&self, kind: PageKind) -> bool {
        self.pages[kind.index()].is_some()
    }

    /// Loads an operator's template directory. Pages it lacks stay missing (they answer 404);
    /// a page that exists but does not parse is an error, reported at `nginx -t`. Catalogs in
    /// its `i18n/` folder add languages or replace built-in ones.
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
        let builtin = &Self::builtin().languages;
        let i18n = dir.join("i18n");
        let languages = if i18n.is_dir() {
            builtin.with_dir(&i18n, PLACEHOLDERS)?
        } else {
            builtin.clone()
        };
        Ok(PageSet {
            pages,
            stamps: Stamps::new(languages.all().len()),
            languages,
        })
    }

    pub fn languages(&self) -> &Languages {
        &self.languages
    }

    /// Renders a page, or `None` when this set has no such page (the caller answers 404).
    pub fn render(&self, kind: PageKind, context: &PageContext<'_>) -> Option<Page> {
        self.render_with_nonce(kind, context, csp_nonce().as_str())
    }

    /// A block or rate-limit page as pieces, without copying its text: the stamp's text
    /// (which lives as long as this page set) and, between, the request's own values, with a
    /// fresh nonce, appended to `values` and given as ranges of it; the page's
    /// `Content-Security-Policy` is appended to `csp`. `None`, with nothing written, when the
    /// page has no stamp (render it), or has more than `N` pieces.
    pub fn plain_pieces<'a, const N: usize>(
        &'a self,
        kind: PageKind,
        context: &PageContext<'_>,
        values: &mut String,
        csp: &mut String,
    ) -> Option<Pieces<'a, N>> {
        let stamp = self.stamp_for(kind, context)?;
        if stamp.pieces.len() * 2 > N {
            return None;
        }
        let nonce = csp_nonce();
        let mut pieces = Pieces {
            pieces: [Piece::Value(0, 0); N],
            len: 0,
        };
        stamp.walk(nonce.as_str(), context, values, |piece| pieces.push(piece));
        content_security_policy_into(csp, nonce.as_str());
        Some(pieces)
    }

    /// The stamp a page is filled into: a page without a captcha, chooser or crawler hints
    /// (the block and rate-limit pages). Made on first use.
    fn stamp_for(&self, kind: PageKind, context: &PageContext<'_>) -> Option<&Stamp> {
        let plain = context.captcha.is_none()
            && context.pictures.is_none()
            && context.chooser.is_none()
            && context.hints.is_none();
        // (An empty value would hide a section the stamp shows.)
        if !plain || context.path.is_empty() || context.language_href.is_empty() {
            return None;
        }
        let language = self.languages.get(context.language);
        let index = self
            .languages
            .all()
            .iter()
            .position(|l| std::ptr::eq(l, language))?;
        let cell = self.stamps.slot(kind, index, context.message)?;
        cell.get_or_init(|| self.stamp(kind, context)).as_ref()
    }

    /// A page without a captcha, chooser or crawler hints (the block and rate-limit pages) is
    /// filled into its stamp; any other is rendered in full.
    fn render_with_nonce(
        &self,
        kind: PageKind,
        context: &PageContext<'_>,
        nonce: &str,
    ) -> Option<Page> {
        if let Some(stamp) = self.stamp_for(kind, context) {
            return Some(Page {
                status: kind.status(),
                content_security_policy: content_security_policy(nonce),
                body: stamp.fill(nonce, context),
            });
        }
        self.render_in_full(kind, context, nonce, &context.retry_after.to_string())
    }

    /// The page rendered with markers in its slots, cut at them; `None` when a marker was
    /// lost or doubled in a way the fill would not reproduce.
    fn stamp(&self, kind: PageKind, context: &PageContext<'_>) -> Option<Stamp> {
        let [nonce, path, href, retry] = Slot::ALL.map(Slot::marker);
        let marked = PageContext {
            path: &path,
            language_href: &href,
            ..*context
        };
        let body = self.render_in_full(kind, &marked, &nonce, &retry)?.body;
        let mut parts = body.split(Slot::MARK);
        let mut pieces = vec![(parts.next()?.to_owned(), None)];
        for part in parts {
            let mut chars = part.chars();
            let slot = chars
                .next()
                .and_then(|c| c.to_digit(10))
                .and_then(|d| Slot::ALL.get(d as usize).copied())?;
            pieces.last_mut()?.1 = Some(slot);
            pieces.push((chars.as_str().to_owned(), None));
        }
        let size = pieces.iter().map(|(text, _)| text.len()).sum();
        Some(Stamp { pieces, size })
    }

    fn render_in_full(
        &self,
        kind: PageKind,
        context: &PageContext<'_>,
        nonce: &str,
        retry_after: &str,
    ) -> Option<Page> {
        let template = self.pages[kind.index()].as_ref()?;
        let language = self.languages.get(context.language);
        let nonce = nonce.to_owned();
        let mut message = String::new();
        if let Some(key) = context.message.and_then(|m| i18n::key_index(m.key())) {
            message = language.text(key);
        }
        let mut message_block = String::new();
        if !message.is_empty() {
            message_block.push_str("<p class=\"message\" role=\"alert\">");
            template::escape_into(&mut message_block, &message);
            message_block.push_str("</p>");
        }
        let captcha = context.captcha;
        let image_src = captcha
            .map(|c| format!("data:image/png;base64,{}", STANDARD.encode(c.png)))
            .unwrap_or_default();
        let audio = captcha.and_then(|c| c.audio);
        let audio_src = audio
            .map(|a| format!("data:audio/wav;base64,{}", STANDARD.encode(a.wav)))
            .unwrap_or_default();
        let pictures = context.pictures;
        let example_src = pictures
            .map(|p| format!("data:image/png;base64,{}", STANDARD.encode(p.example)))
            .unwrap_or_default();
        let tiles = pictures
            .map(|p| tile_grid(language, &p))
            .unwrap_or_default();
        let columns = pictures.map(|p| p.columns.to_string()).unwrap_or_default();
        let width = captcha.map(|c| c.width.to_string()).unwrap_or_default();
        let height = captcha.map(|c| c.height.to_string()).unwrap_or_default();
        let (languages, back_href) = match &context.chooser {
            Some(chooser) => (
                chooser_list(&self.languages, context.language, chooser),
                chooser.return_path.to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let values: [&str; PLACEHOLDERS.len()] = [
            &nonce,
            builtin_style(kind),
            &language.tag,
            language.dir(),
            context.path,
            &message_block,
            &image_src,
            &width,
            &height,
            captcha.map_or("", |c| c.answer_length),
            captcha
                .map(|c| c.challenge)
                .or(pictures.map(|p| p.challenge))
                .unwrap_or(""),
            captcha
                .map(|c| c.form_action)
                .or(pictures.map(|p| p.form_action))
                .unwrap_or(""),
            retry_after,
            context.language_href,
            &language.name,
            &languages,
            &back_href,
            &audio_src,
            audio
                .map(|a| a.length)
                .or(pictures.map(|p| p.audio_length))
                .unwrap_or(""),
            &message,
            audio
                .map(|a| a.href)
                .or(pictures.map(|p| p.audio_href))
                .unwrap_or(""),
            context.hints.map_or("", |h| h.title.as_str()),
            &context
                .hints
                .map(crate::crawler::hints::head_html)
                .unwrap_or_default(),
            pictures.map_or("", |p| p.motif),
            &example_src,
            &tiles,
            &columns,
            "",
            if pictures.is_some_and(|p| p.audio_required) {
                "1"
            } else {
                ""
            },
            if pictures.is_some_and(|p| !p.audio_required) {
                "1"
            } else {
                ""
            },
        ];
        let body = template.render(&values, language, inline_markup);
        Some(Page {
            status: kind.status(),
            content_security_policy: content_security_policy(&nonce),
            body,
        })
    }
}

/// The tiles of a picture captcha: a checkbox per tile, inside the label that holds its
/// picture, so that a click or tap on the picture ticks it, and the keyboard reaches every
/// box. A tile's text alternative is its number ("Picture 3"): describing it would give the
/// answer away (the page offers the audio alternative instead).
fn tile_grid(language: &i18n::Language, view: &PictureView<'_>) -> String {
    let key = i18n::key_index("picture.tile");
    let number_slot = PLACEHOLDERS.iter().position(|&p| p == "tile_number");
    let mut out = String::with_capacity(view.tiles.iter().map(|t| t.len() * 4 / 3 + 200).sum());
    let mut number = itoa_buffer();
    for (i, png) in view.tiles.iter().enumerate() {
        let n = number.format(i as u64 + 1).to_owned();
        out.push_str("<label class=\"tile\"><input type=\"checkbox\" name=\"tile\" value=\"");
        out.push_str(&n);
        out.push_str("\"><img src=\"data:image/png;base64,");
        STANDARD.encode_string(png, &mut out);
        out.push_str("\" width=\"64\" height=\"64\" alt=\"");
        if let (Some(key), Some(slot)) = (key, number_slot) {
            let mut values = [""; PLACEHOLDERS.len()];
            values[slot] = &n;
            let mut alt = String::new();
            language.render_into(&mut alt, key, &values, |_| ("", ""));
            // Escaped by the catalog, quotes included: safe in an attribute.
            out.push_str(&alt);
        }
        // A line break between tiles: text browsers (w3m) run labels together otherwise.
        out.push_str("\"></label>\n");
    }
    out
}

/// A piece of a stamped page: the stamp's own text, or where in the request's values one is
/// (start and end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Value(usize, usize),
}

/// A stamped page's pieces, in order (at most `N`).
#[derive(Debug)]
pub struct Pieces<'a, const N: usize> {
    pieces: [Piece<'a>; N],
    len: usize,
}

impl<'a, const N: usize> Pieces<'a, N> {
    fn push(&mut self, piece: Piece<'a>) {
        if let Some(slot) = self.pieces.get_mut(self.len) {
            *slot = piece;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[Piece<'a>] {
        self.pieces.get(..self.len).unwrap_or_default()
    }
}

impl Stamp {
    fn fill(&self, nonce: &str, context: &PageContext<'_>) -> String {
        let mut values = String::new();
        let mut pieces = Vec::with_capacity(self.pieces.len() * 2);
        self.walk(nonce, context, &mut values, |piece| pieces.push(piece));
        let mut body = String::with_capacity(self.size + values.len());
        for piece in pieces {
            body.push_str(match piece {
                Piece::Text(text) => text,
                Piece::Value(start, end) => values.get(start..end).unwrap_or_default(),
            });
        }
        body
    }

    /// Gives the stamp's text and, between, the request's values (appended to `values`).
    fn walk<'a>(
        &'a self,
        nonce: &str,
        context: &PageContext<'_>,
        values: &mut String,
        mut give: impl FnMut(Piece<'a>),
    ) {
        let mut number = itoa_buffer();
        for (text, slot) in &self.pieces {
            give(Piece::Text(text));
            let start = values.len();
            match slot {
                Some(Slot::Nonce) => values.push_str(nonce),
                Some(Slot::Path) => template::escape_into(values, context.path),
                Some(Slot::LanguageHref) => template::escape_into(values, context.language_href),
                Some(Slot::RetryAfter) => values.push_str(number.format(context.retry_after)),
                None => continue,
            }
            give(Piece::Value(start, values.len()));
        }
    }
}

/// Decimal digits of a number without an allocation.
pub(crate) fn itoa_buffer() -> Digits {
    Digits([0; 20])
}

pub(crate) struct Digits([u8; 20]);

impl Digits {
    pub(crate) fn format(&mut self, mut n: u64) -> &str {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        std::str::from_utf8(&self.0[i..]).unwrap_or("0")
    }
}

/// The chooser's list: one plain link per language, in its own language and direction.
fn chooser_list(languages: &Languages, current: usize, chooser: &ChooserView<'_>) -> String {
    let mut out = String::from("<ul class=\"languages\">\n");
    for (index, language) in languages.all().iter().enumerate() {
        out.push_str("<li><a href=\"");
        template::escape_into(&mut out, &choice_href(&language.tag, chooser));
        out.push_str("\" hreflang=\"");
        template::escape_into(&mut out, &language.tag);
        out.push_str("\" lang=\"");
        template::escape_into(&mut out, &language.tag);
        out.push_str("\" dir=\"");
        out.push_str(language.dir());
        out.push('"');
        if index == current {
            out.push_str(" aria-current=\"true\"");
        }
        out.push('>');
        template::escape_into(&mut out, &language.name);
        out.push_str("</a></li>\n");
    }
    out.push_str("</ul>");
    out
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

/// A fresh nonce per response, from a cryptographic RNG.
///
/// Drawn from a ChaCha20 stream per thread, keyed from the kernel RNG in each process: a
/// stream made before a fork is not used after it (see [`process_generation`]), so no two
/// workers share nonces. A page costs no system call for its nonce.
fn csp_nonce() -> Nonce {
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    use std::cell::RefCell;
    thread_local! {
        static STREAM: RefCell<Option<(u64, ChaCha20Rng)>> = const { RefCell::new(None) };
    }
    let mut bytes = [0u8; 16];
    let generation = process_generation();
    let drawn = STREAM.with(|stream| {
        let mut stream = stream.borrow_mut();
        if stream.as_ref().map(|(made, _)| *made) != Some(generation) {
            let mut seed = [0u8; 32];
            // The kernel RNG does not fail once the system is up; should it, a predictable
            // nonce must not be handed out: the page then renders without its inline style.
            getrandom::getrandom(&mut seed).ok()?;
            *stream = Some((generation, ChaCha20Rng::from_seed(seed)));
        }
        stream.as_mut().map(|(_, rng)| rng.fill_bytes(&mut bytes))
    });
    let mut nonce = Nonce {
        text: [0; 22],
        len: 0,
    };
    let written = drawn.and_then(|()| STANDARD_NO_PAD.encode_slice(bytes, &mut nonce.text).ok());
    nonce.len = match written {
        Some(len) => len,
        None => {
            const UNAVAILABLE: &[u8] = b"unavailable";
            nonce.text[..UNAVAILABLE.len()].copy_from_slice(UNAVAILABLE);
            UNAVAILABLE.len()
        }
    };
    nonce
}

/// Which process this is, as far as its streams care: how many forks it comes from since
/// it started watching (a child handler, registered before the first stream is made, counts
/// them with an atomic add), so a process that made a stream and forked sees a new value in
/// the child. Should the handler not register, its pid (one system call) does instead.
fn process_generation() -> u64 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static FORKS: AtomicU32 = AtomicU32::new(0);
    static WATCHING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    extern "C" fn forked() {
        FORKS.fetch_add(1, Ordering::Relaxed);
    }
    // SAFETY: registers a handler that only touches an atomic (a static function). glibc
    // registers it with this module's DSO handle and drops it should nginx ever unload the
    // module, so no fork can call into an unmapped library.
    let watching =
        *WATCHING.get_or_init(|| unsafe { libc::pthread_atfork(None, None, Some(forked)) } == 0);
    match watching {
        true => u64::from(FORKS.load(Ordering::Relaxed)),
        false => 1 << 32 | u64::from(std::process::id()),
    }
}

/// A CSP nonce: 16 random bytes in base64 (22 characters), held without an allocation.
struct Nonce {
    text: [u8; 22],
    len: usize,
}

impl Nonce {
    fn as_str(&self) -> &str {
        std::str::from_utf8(self.text.get(..self.len).unwrap_or_default()).unwrap_or("unavailable")
    }
}

/// Nothing may load but our inline style and `data:` images and audio; forms post only to us.
fn content_security_policy(nonce: &str) -> String {
    let mut csp = String::new();
    content_security_policy_into(&mut csp, nonce);
    csp
}

fn content_security_policy_into(csp: &mut String, nonce: &str) {
    const BEFORE: &str = "default-src 'none'; style-src 'nonce-";
    const AFTER: &str = "'; img-src data:; media-src data: 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    csp.reserve(BEFORE.len() + nonce.len() + AFTER.len());
    csp.push_str(BEFORE);
    csp.push_str(nonce);
    csp.push_str(AFTER);
}

/// The pre-check's page: under 1 kB, no script, no style, no image. It sends the client
/// straight back to `href` (the page it asked for, which it now may see the captcha of) with
/// `<meta http-equiv="refresh">`, and offers the same as a link for browsers that do not
/// follow that (text browsers, where a person follows the link). In the page's language, with
/// the captcha page's own title and button words. 403, like the captcha page: it is not the
/// content that was asked for. A crawler (which keeps no cookie, so never sees the captcha
/// page) gets the real page's title and tags here (`captchaify_crawler_hints`).
pub fn precheck_page(
    languages: &Languages,
    language: usize,
    href: &str,
    hints: Option<&crate::crawler::hints::Hints>,
) -> Page {
    short_page(languages.get(language), href, ShortPage::Precheck, hints)
}

/// The page for a challenge that was forged, someone else's, expired or already used: no new
/// image is drawn for it, only a link back to the page it was for, where a fresh challenge
/// waits (drawn under that page's budget).
pub fn stale_page(languages: &Languages, language: usize, href: &str) -> Page {
    short_page(languages.get(language), href, ShortPage::Stale, None)
}

/// The two pages built without a template: small, fixed, cheap to send.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ShortPage {
    Precheck,
    Stale,
}

fn short_page(
    language: &Language,
    href: &str,
    kind: ShortPage,
    hints: Option<&crate::crawler::hints::Hints>,
) -> Page {
    use std::sync::OnceLock;
    static KEYS: OnceLock<[Option<usize>; 4]> = OnceLock::new();
    let [title, go, notice, again] = *KEYS.get_or_init(|| {
        [
            "captcha.title",
            "captcha.submit",
            "captcha.stale_notice",
            "captcha.new",
        ]
        .map(i18n::key_index)
    });
    let text = |body: &mut String, key: Option<usize>| {
        if let Some(key) = key {
            language.render_into(body, key, &[], |_| ("", ""));
        }
    };
    let mut body = String::with_capacity(480 + 2 * href.len());
    body.push_str("<!DOCTYPE html><html lang=\"");
    template::escape_into(&mut body, &language.tag);
    body.push_str("\" dir=\"");
    body.push_str(language.dir());
    body.push_str("\"><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex, nofollow\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    if kind == ShortPage::Precheck {
        body.push_str("<meta http-equiv=\"refresh\" content=\"0; url=");
        template::escape_into(&mut body, href);
        body.push_str("\">");
    }
    if let Some(hints) = hints {
        body.push_str(&crate::crawler::hints::head_html(hints));
    }
    body.push_str("<title>");
    match hints.map(|h| h.title.as_str()).filter(|t| !t.is_empty()) {
        Some(real) => template::escape_into(&mut body, real),
        None => text(&mut body, title),
    }
    body.push_str("</title></head><body>");
    if kind == ShortPage::Stale {
        body.push_str("<p role=\"alert\">");
        text(&mut body, notice);
        body.push_str("</p>");
    }
    body.push_str("<p><a href=\"");
    template::escape_into(&mut body, href);
    body.push_str("\">");
    text(&mut body, if kind == ShortPage::Stale { again } else { go });
    body.push_str("</a></p></body></html>\n");
    Page {
        status: 403,
        content_security_policy: "default-src 'none'".to_owned(),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captcha_context<'a>(png: &'a [u8]) -> PageContext<'a> {
        PageContext {
            path: "/a?b=<script>\"",
            message: Some(Message::Wrong),
            captcha: Some(CaptchaView {
                png,
                width: 320,
                height: 120,
                answer_length: "9 to 11",
                challenge: "c1.x\"y",
                form_action: "/.captchaify/verify",
                audio: None,
            }),
            pictures: None,
            retry_after: 17,
            language: 0,
            language_href: "/.captchaify/language?return=%2Fa",
            chooser: Some(ChooserView {
                return_path: "/a?b=<",
                without_cookies: false,
            }),
            hints: None,
        }
    }

    #[test]
    fn a_forked_child_does_not_repeat_its_parents_nonces() {
        let first = csp_nonce().as_str().to_owned();
        assert_eq!(first.len(), 22);
        assert_ne!(first, csp_nonce().as_str());
        let mut pipe = [0i32; 2];
        // SAFETY: a pipe, then a fork whose child only draws a nonce, writes it and leaves
        // with `_exit` (no destructors, no test harness).
        unsafe {
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            let child = libc::fork();
            assert!(child >= 0);
            if child == 0 {
                let nonce = csp_nonce();
                libc::write(
                    pipe[1],
                    nonce.as_str().as_ptr().cast(),
                    nonce.as_str().len(),
                );
                libc::_exit(0);
            }
            let mut status = 0;
            libc::waitpid(child, &mut status, 0);
            let mut read = [0u8; 22];
            assert_eq!(libc::read(pipe[0], read.as_mut_ptr().cast(), 22), 22);
            libc::close(pipe[0]);
            libc::close(pipe[1]);
            // Without the fork counted, the child's stream would be the parent's: its nonce
            // would be the parent's next one.
            let parents_next = csp_nonce();
            assert_ne!(&read[..], parents_next.as_str().as_bytes());
        }
    }

    #[test]
    fn css_is_minified_without_changing_its_meaning() {
        let css = ":root {\n  --a: #fff; --b: 1px;\n}\n@media (x: dark) {\n  a:focus, b > c { font: 1rem/1.5 x, \"Segoe UI\"; }\n}\nd :hover { clip: rect(0 0 0 0); grid: repeat(2, minmax(9rem, 1fr)); }\n";
        assert_eq!(
            minify_css(css),
            ":root{--a:#fff;--b:1px}@media (x:dark){a:focus,b>c{font:1rem/1.5 x,\"Segoe UI\"}\n}d :hover{clip:rect(0 0 0 0);grid:repeat(2,minmax(9rem,1fr))}"
        );
        // The built-in sheets: every rule kept (one `}` per `{`), a tenth smaller or more.
        let full = builtin_style(PageKind::Captcha);
        let raw = format!("{BASE_STYLE}{FORMS_STYLE}");
        assert_eq!(full.matches('{').count(), raw.matches('{').count());
        assert_eq!(full.matches('}').count(), raw.matches('}').count());
        assert!(
            full.len() * 10 < raw.len() * 9,
            "{} of {}",
            full.len(),
            raw.len()
        );
    }

    #[test]
    fn block_and_rate_limit_pages_carry_only_the_rules_they_use() {
        let plain = builtin_style(PageKind::Block);
        assert_eq!(plain, builtin_style(PageKind::RateLimited));
        assert!(builtin_style(PageKind::Captcha).starts_with(plain));
        for page in [PageKind::Captcha, PageKind::ChangeLanguage] {
            assert!(
                builtin_style(page).contains("input[type=\"text\"]{"),
                "{page:?}"
            );
            assert!(builtin_style(page).contains("ul.languages a{"), "{page:?}");
        }
        for rule in ["form{", "button{", "img.captcha{", "ul.languages"] {
            assert!(!plain.contains(rule), "{rule}");
        }
        // What the block and rate-limit templates use is there.
        for rule in [
            "main{",
            "h1{",
            ".danger{",
            ".message{",
            "footer{",
            "footer p{",
            "code{",
            "@media (prefers-color-scheme:dark)",
        ] {
            assert!(plain.contains(rule), "{rule}");
        }
        let pages = PageSet::builtin();
        let context = PageContext {
            path: "/p",
            language_href: "/l",
            ..PageContext::default()
        };
        let block = pages.render(PageKind::Block, &context).unwrap().body;
        assert!(
            block.contains(plain) && block.len() < 2048,
            "{} bytes",
            block.len()
        );
    }

    #[test]
    fn builtin_pages_render_with_escaped_values_and_nonce() {
        let pages = PageSet::builtin();
        assert!(pages.is_complete());
        for kind in PageKind::ALL {
            let page = pages.render(kind, &captcha_context(b"\x89PNG")).unwrap();
            assert_eq!(page.status, kind.status());
            assert_eq!(
                page.status,
                match kind {
                    PageKind::RateLimited => 429,
                    PageKind::ChangeLanguage => 200,
                    _ => 403,
                }
            );
            if kind != PageKind::ChangeLanguage {
                assert!(
                    page.body.contains("<code>/a?b=&lt;script&gt;&quot;</code>"),
                    "{kind:?}: {}",
                    page.body
                );
                assert!(page.body.contains("That was not right."), "{kind:?}");
                assert!(
                    page.body
                        .contains("href=\"/.captchaify/language?return=%2Fa\""),
                    "{kind:?}"
                );
            }
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
        assert!(!page.body.contains("<audio"), "no audio below hardness 3");
        assert!(!page.body.contains("name=\"digits\""));
    }

    #[test]
    fn the_hardness_3_page_has_the_audio_inline_and_as_a_download() {
        let mut ctx = captcha_context(b"\x89PNG");
        if let Some(c) = ctx.captcha.as_mut() {
            c.audio = Some(AudioView {
                wav: b"RIFF",
                length: "9 to 14",
                href: "/.captchaify/audio?challenge=c1.x&lang=en",
            });
        }
        let body = PageSet::builtin()
            .render(PageKind::Captcha, &ctx)
            .unwrap()
            .body;
        assert!(
            body.contains(
                "<audio controls preload=\"auto\" src=\"data:audio/wav;base64,UklGRg==\">"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "href=\"/.captchaify/audio?challenge=c1.x&amp;lang=en\" download=\"captcha.wav\""
            ),
            "{body}"
        );
        assert_eq!(
            body.matches("UklGRg==").count(),
            1,
            "the clip is in the page once"
        );
        assert!(body
            .contains("<label for=\"captchaify-digits\">Type the 9 to 14 digits you hear</label>"));
        assert!(body.contains("id=\"captchaify-digits\" name=\"digits\""));
    }

    #[test]
    fn every_page_renders_in_every_language_with_every_text() {
        let pages = PageSet::builtin();
        let languages = pages.languages();
        assert!(
            languages.all().len() >= 12,
            "{} languages",
            languages.all().len()
        );
        assert!(
            languages.all().iter().any(|l| l.rtl),
            "a right-to-left language"
        );
        let english = languages.get(0);
        for (index, language) in languages.all().iter().enumerate() {
            let mut ctx = captcha_context(b"\x89PNG");
            ctx.language = index;
            if let Some(c) = ctx.captcha.as_mut() {
                c.audio = Some(AudioView {
                    wav: b"RIFF",
                    length: "9 to 14",
                    href: "/.captchaify/audio?challenge=c1.x&lang=en",
                });
            }
            for kind in PageKind::ALL {
                let body = pages.render(kind, &ctx).unwrap().body;
                assert!(
                    body.contains(&format!(
                        "<html lang=\"{}\" dir=\"{}\">",
                        language.tag,
                        language.dir()
                    )),
                    "{}",
                    language.tag
                );
                assert!(
                    !body.contains("{{") && !body.contains("}}"),
                    "{} {kind:?}",
                    language.tag
                );
                // No placeholder of a catalog left unfilled.
                for name in PLACEHOLDERS {
                    assert!(
                        !body.contains(&format!("{{{name}}}")),
                        "{} {kind:?}: {{{name}}}",
                        language.tag
                    );
                }
                if index > 0 {
                    // Every string of the page is this language's, not English (the product
                    // name aside).
                    for key in [
                        "captcha.title",
                        "captcha.submit",
                        "block.title",
                        "rate.title",
                        "language.title",
                    ] {
                        let k = i18n::key_index(key).unwrap();
                        let ours = language.text(k);
                        assert_ne!(
                            ours,
                            english.text(k),
                            "{} {key} is untranslated",
                            language.tag
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_choice_without_cookies_travels_in_the_url() {
        assert_eq!(with_language_argument("/a", "de"), "/a?captchaify_lang=de");
        assert_eq!(
            with_language_argument("/a?x=1&captchaify_lang=fr", "ar"),
            "/a?x=1&captchaify_lang=ar"
        );
        assert_eq!(
            chooser_href("/a b?c=1&d", true),
            "/.captchaify/language?return=/a%20b%3Fc%3D1%26d&nocookie=1"
        );
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn the_chooser_lists_every_language_with_plain_links() {
        let pages = PageSet::builtin();
        let de = pages.languages().find(b"de").expect("German");
        let ctx = PageContext {
            language: de,
            chooser: Some(ChooserView {
                return_path: "/shop?item=1&x=<",
                without_cookies: true,
            }),
            hints: None,
            ..PageContext::default()
        };
        let page = pages.render(PageKind::ChangeLanguage, &ctx).unwrap();
        assert_eq!(page.status, 200);
        assert!(page.body.contains("<html lang=\"de\" dir=\"ltr\">"));
        assert!(!page.body.contains("<script"));
        for language in pages.languages().all() {
            let href = format!("href=\"/.captchaify/language?set={}&amp;return=/shop%3Fitem%3D1%26x%3D%3C&amp;nocookie=1\"", language.tag);
            assert!(page.body.contains(&href), "{href} in {}", page.body);
            assert!(page.body.contains(&format!(
                "lang=\"{}\" dir=\"{}\"",
                language.tag,
                language.dir()
            )));
        }
        assert!(
            page.body.contains(
                "hreflang=\"de\" lang=\"de\" dir=\"ltr\" aria-current=\"true\">Deutsch</a>"
            ),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("href=\"/shop?item=1&amp;x=&lt;\""),
            "the way back"
        );
    }

    #[test]
    fn the_rate_limit_page_says_when_to_come_back() {
        let page = PageSet::builtin()
            .render(PageKind::RateLimited, &captcha_context(b""))
            .unwrap();
        assert_eq!(page.status, 429);
        assert!(
            page.body
                .contains("Please wait <strong>17</strong> s, then try again."),
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

        // Catalogs in i18n/ add a language or replace one; a bad one names its file and line.
        std::fs::create_dir_all(dir.join("i18n")).unwrap();
        let en = include_str!("../../templates/i18n/en.txt");
        let eo = en
            .replace("_name = English", "_name = Esperanto")
            .replace("Access denied", "Aliro rifuzita");
        std::fs::write(dir.join("i18n/eo.txt"), &eo).unwrap();
        let set = PageSet::load_dir(&dir).unwrap();
        let eo_index = set.languages().find(b"eo").expect("added");
        assert!(set.languages().all().len() > PageSet::builtin().languages().all().len());
        let ctx = PageContext {
            language: eo_index,
            ..PageContext::default()
        };
        assert_eq!(
            set.render(PageKind::Block, &ctx).unwrap().body,
            "<p> is blocked</p>"
        );
        std::fs::write(dir.join("block.html"), "<h1>{{t:block.title}}</h1>").unwrap();
        let set = PageSet::load_dir(&dir).unwrap();
        assert_eq!(
            set.render(PageKind::Block, &ctx).unwrap().body,
            "<h1>Aliro rifuzita</h1>"
        );
        std::fs::write(dir.join("i18n/eo.txt"), eo.replace("{path}", "{pad}")).unwrap();
        let error = PageSet::load_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("i18n/eo.txt:14: \"captcha.intro\" must use exactly the placeholders"),
            "{error}"
        );
        std::fs::write(
            dir.join("i18n/eo.txt"),
            eo.replace("language.back =", "language.bakc ="),
        )
        .unwrap();
        let error = PageSet::load_dir(&dir).unwrap_err().to_string();
        assert!(
            error.contains("i18n/eo.txt") && error.contains("language.back"),
            "{error}"
        );
        std::fs::remove_dir_all(dir.join("i18n")).unwrap();

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

    #[test]
    fn the_precheck_page_is_tiny_and_sends_the_client_back() {
        let languages = PageSet::builtin().languages();
        for (index, language) in languages.all().iter().enumerate() {
            let href = "/shop/cart?item=42&size=\"xl\"&captchaify_pre=p1.1796563853.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
            let page = precheck_page(languages, index, href, None);
            assert!(
                page.body.len() <= 1024,
                "{}: {} bytes",
                language.tag,
                page.body.len()
            );
            assert_eq!(page.status, 403);
            let escaped = "/shop/cart?item=42&amp;size=&quot;xl&quot;&amp;captchaify_pre=";
            assert!(
                page.body.contains(&format!(
                    "<meta http-equiv=\"refresh\" content=\"0; url={escaped}"
                )),
                "{}",
                page.body
            );
            assert!(
                page.body.contains(&format!("<a href=\"{escaped}")),
                "{}",
                page.body
            );
            assert!(page.body.contains(&format!(
                "lang=\"{}\" dir=\"{}\"",
                language.tag,
                language.dir()
            )));
            assert!(!page.body.contains("<script") && !page.body.contains("<style"));
        }
        let english = precheck_page(languages, languages.find(b"en").unwrap(), "/", None);
        assert!(
            english
                .body
                .contains("<title>Verification required</title>")
                && english.body.contains(">Continue</a>"),
            "{}",
            english.body
        );
        let hints = crate::crawler::hints::extract(
            b"<title>Cart &amp; <b>co</b></title><meta name=description content='Fresh socks'>",
        )
        .unwrap();
        let crawler = precheck_page(languages, 0, "/", Some(&hints));
        assert!(
            crawler.body.contains("<title>Cart &amp; co</title>")
                || crawler
                    .body
                    .contains("<title>Cart &amp; &lt;b&gt;co&lt;/b&gt;</title>"),
            "{}",
            crawler.body
        );
        assert!(crawler.body.contains("Fresh socks"), "{}", crawler.body);
    }

    #[test]
    fn stamped_pages_are_the_rendered_pages() {
        let pages = PageSet::builtin();
        let paths = ["/", "/a?b=<script>\"&'x", "/\u{202e}ü?q=%41", "/{path}"];
        for kind in [PageKind::Block, PageKind::RateLimited] {
            for language in 0..pages.languages().all().len() {
                for message in [None].into_iter().chain(Message::ALL.map(Some)) {
                    for (i, path) in paths.iter().enumerate() {
                        let href = format!("/.captchaify/language?return={}", percent_encode(path));
                        let context = PageContext {
                            path,
                            message,
                            retry_after: [0, 7, 59, u64::MAX][i],
                            language,
                            language_href: &href,
                            ..PageContext::default()
                        };
                        let full = pages
                            .render_in_full(
                                kind,
                                &context,
                                "NONCE",
                                &context.retry_after.to_string(),
                            )
                            .unwrap();
                        // Twice: the first makes the stamp, the second uses it.
                        for _ in 0..2 {
                            assert_eq!(
                                pages.render_with_nonce(kind, &context, "NONCE").unwrap(),
                                full,
                                "{kind:?} {language} {message:?} {path}"
                            );
                        }
                    }
                }
            }
        }
        let stamp = pages
            .stamps
            .slot(PageKind::Block, 0, None)
            .and_then(|cell| cell.get())
            .unwrap()
            .as_ref()
            .unwrap();
        let slots: Vec<Slot> = stamp.pieces.iter().filter_map(|(_, slot)| *slot).collect();
        assert!(
            slots.contains(&Slot::Nonce)
                && slots.contains(&Slot::Path)
                && slots.contains(&Slot::LanguageHref),
            "{slots:?}"
        );
    }

    #[test]
    fn the_stale_page_says_why_and_links_back_without_refreshing() {
        let languages = PageSet::builtin().languages();
        for (index, language) in languages.all().iter().enumerate() {
            let page = stale_page(languages, index, "/a?b=<c>");
            assert!(
                page.body.len() <= 1024,
                "{}: {} bytes",
                language.tag,
                page.body.len()
            );
            assert_eq!(page.status, 403);
            assert!(
                page.body.contains("<a href=\"/a?b=&lt;c&gt;\">"),
                "{}",
                page.body
            );
            assert!(
                !page.body.contains("http-equiv=\"refresh\""),
                "{}",
                page.body
            );
            assert!(
                page.body.contains("<p role=\"alert\">")
                    && !page.body.contains("<p role=\"alert\"></p>"),
                "{}",
                page.body
            );
        }
        let english = stale_page(languages, languages.find(b"en").unwrap(), "/");
        assert!(
            english
                .body
                .contains(">That check had expired or was already used.</p>"),
            "{}",
            english.body
        );
        assert!(
            english.body.contains(">Show a new check</a>"),
            "{}",
            english.body
        );
    }
}
