//! Crawler hints: the protected page's `<title>`, meta description and OpenGraph/Twitter tags,
//! shown to a search-engine crawler that meets the captcha so that its listing of the page
//! stays truthful.
//!
//! The nginx glue fetches the page once in the background, [`extract`]s its hints and keeps
//! them in the shared zone as a fixed-size record ([`encode`], [`decode`]); the captcha page
//! then carries them in its `<head>` ([`head_html`]).
//!
//! [`extract`] is not an HTML parser. It follows the HTML tokenizer just far enough to skip
//! comments, scripts, styles and other raw-text elements, to read a tag's attributes in any
//! order, case and quoting, and to stop where the head ends. Everything it returns is plain,
//! bounded text; escaping happens on the way out, in [`head_html`].

use crate::pages::template::escape_into;

/// How much of a page is looked at: the head of any sane page is well inside.
pub const MAX_SCAN: usize = 256 * 1024;
/// Longest title kept, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest description kept, in characters.
pub const MAX_DESCRIPTION: usize = 400;
/// Longest OpenGraph/Twitter value kept, in characters.
pub const MAX_META_VALUE: usize = 400;
/// Longest OpenGraph/Twitter property name accepted (longer ones are skipped, not cut).
pub const MAX_META_NAME: usize = 64;
/// OpenGraph/Twitter tags kept at most.
pub const MAX_META: usize = 16;
/// Size of the shared-memory form of [`Hints`].
pub const HINTS_BYTES: usize = 2048;

/// What a crawler is told about the page behind the captcha.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    pub title: String,
    pub description: String,
    /// `og:*` properties and `twitter:*` names with their content, in document order,
    /// without repeated pairs, at most [`MAX_META`].
    pub meta: Vec<(String, String)>,
}

impl Hints {
    pub fn is_empty(&self) -> bool {
        self.title.is_empty() && self.description.is_empty() && self.meta.is_empty()
    }
}

/// Elements whose content is not markup to us: skipped up to their end tag, so that a
/// `<title>` in a script, a template or an inline SVG icon is not taken for the page's.
const SKIPPED: [&[u8]; 10] = [
    b"script",
    b"style",
    b"template",
    b"textarea",
    b"xmp",
    b"iframe",
    b"noembed",
    b"noframes",
    b"svg",
    b"math",
];

/// Attributes remembered per `<meta>` tag; a tag with more is not a real one.
const MAX_ATTRIBUTES: usize = 16;

/// Reads the hints from the start of a page (at most [`MAX_SCAN`] bytes), up to `</head>` or
/// `<body`. `None` when the page has none of them.
pub fn extract(html: &[u8]) -> Option<Hints> {
    let html = &html[..html.len().min(MAX_SCAN)];
    let mut hints = Hints::default();
    let mut title_seen = false;
    let mut description_seen = false;
    let mut pos = 0;
    while let Some(lt) = find(html, pos, b"<") {
        let rest = &html[lt..];
        if rest.starts_with(b"<!--") {
            let Some(end) = find(html, lt + 4, b"-->") else {
                break;
            };
            pos = end + 3;
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            let Some(end) = find(html, lt + 2, b">") else {
                break;
            };
            pos = end + 1;
            continue;
        }
        let closing = rest.get(1) == Some(&b'/');
        let name_start = lt + 1 + usize::from(closing);
        if !html.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            // Text such as "a < b", or "</ >".
            pos = lt + 1;
            continue;
        }
        let name_end = tag_name_end(html, name_start);
        let name = &html[name_start..name_end];
        if closing {
            if name.eq_ignore_ascii_case(b"head") {
                break;
            }
            let Some(end) = find(html, name_end, b">") else {
                break;
            };
            pos = end + 1;
            continue;
        }
        let is_meta = name.eq_ignore_ascii_case(b"meta");
        let Some(tag) = read_tag(html, name_end, is_meta) else {
            break;
        };
        pos = tag.end;
        if name.eq_ignore_ascii_case(b"body") || name.eq_ignore_ascii_case(b"plaintext") {
            break;
        } else if is_meta {
            take_meta(&mut hints, &tag.attributes, &mut description_seen);
        } else if name.eq_ignore_ascii_case(b"title") {
            // An unterminated title runs to the end of the page: nothing worth showing.
            let Some((text_end, after)) = find_end_tag(html, pos, b"title") else {
                break;
            };
            if !title_seen {
                title_seen = true;
                hints.title = clean_text(&html[pos..text_end], MAX_TITLE);
            }
            pos = after;
        } else if SKIPPED
            .iter()
            .any(|skipped| name.eq_ignore_ascii_case(skipped))
        {
            let Some((_, after)) = find_end_tag(html, pos, name) else {
                break;
            };
            pos = after;
        }
    }
    (!hints.is_empty()).then_some(hints)
}

/// A start tag's end (just past its `>`) and, when asked for, its attributes (raw values,
/// the first of repeated names, at most [`MAX_ATTRIBUTES`]).
struct Tag<'a> {
    end: usize,
    attributes: Vec<(&'a [u8], &'a [u8])>,
}

/// Reads a start tag's attributes from just after its name; `None` when the tag does not end.
fn read_tag(html: &[u8], mut i: usize, keep: bool) -> Option<Tag<'_>> {
    let mut attributes = Vec::new();
    let skip_space = |i: &mut usize| {
        while html.get(*i).is_some_and(|&b| is_space(b)) {
            *i += 1;
        }
    };
    loop {
        while html.get(i).is_some_and(|&b| is_space(b) || b == b'/') {
            i += 1;
        }
        if *html.get(i)? == b'>' {
            return Some(Tag {
                end: i + 1,
                attributes,
            });
        }
        // The first character belongs to the name whatever it is (even `=`), so every turn
        // moves on.
        let name_start = i;
        i += 1;
        while html
            .get(i)
            .is_some_and(|&b| !is_space(b) && !matches!(b, b'/' | b'>' | b'='))
        {
            i += 1;
        }
        let name = &html[name_start..i];
        skip_space(&mut i);
        let mut value: &[u8] = b"";
        if html.get(i) == Some(&b'=') {
            i += 1;
            skip_space(&mut i);
            match *html.get(i)? {
                quote @ (b'"' | b'\'') => {
                    let end = find(html, i + 1, &[quote])?;
                    value = &html[i + 1..end];
                    i = end + 1;
                }
                b'>' => {}
                _ => {
                    let start = i;
                    while html.get(i).is_some_and(|&b| !is_space(b) && b != b'>') {
                        i += 1;
                    }
                    value = &html[start..i];
                }
            }
        }
        let known = attributes
            .iter()
            .any(|(n, _): &(&[u8], &[u8])| n.eq_ignore_ascii_case(name));
        if keep && !known && attributes.len() < MAX_ATTRIBUTES {
            attributes.push((name, value));
        }
    }
}

/// Takes what a `<meta>` tag says: the description, or an OpenGraph or Twitter tag.
fn take_meta(hints: &mut Hints, attributes: &[(&[u8], &[u8])], description_seen: &mut bool) {
    let get = |wanted: &[u8]| {
        attributes
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
            .map(|&(_, value)| value)
    };
    let Some(content) = get(b"content") else {
        return;
    };
    let (property, name) = (
        get(b"property").and_then(meta_name),
        get(b"name").and_then(meta_name),
    );
    if name.as_deref() == Some("description") {
        if !*description_seen {
            *description_seen = true;
            hints.description = clean_text(content, MAX_DESCRIPTION);
        }
        return;
    }
    // `og:` belongs in `property` and `twitter:` in `name`, but pages mix them up and both
    // readers accept either.
    let Some(key) = [property, name]
        .into_iter()
        .flatten()
        .find(|key| is_hint_name(key))
    else {
        return;
    };
    let value = clean_text(content, MAX_META_VALUE);
    if value.is_empty() || hints.meta.len() >= MAX_META {
        return;
    }
    if !hints.meta.iter().any(|(k, v)| *k == key && *v == value) {
        hints.meta.push((key, value));
    }
}

/// A `name` or `property` value, lowercased; `None` when it cannot be one we keep.
fn meta_name(raw: &[u8]) -> Option<String> {
    if raw.len() > MAX_META_NAME * 2 {
        return None;
    }
    Some(clean_text(raw, MAX_META_NAME + 1).to_ascii_lowercase())
}

/// Whether a name is an OpenGraph or Twitter property we keep and may write back out.
pub fn is_hint_name(name: &str) -> bool {
    let body = name
        .strip_prefix("og:")
        .or_else(|| name.strip_prefix("twitter:"));
    body.is_some_and(|body| !body.is_empty())
        && name.len() <= MAX_META_NAME
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b':' | b'_' | b'.' | b'-'))
}

/// The end of a tag name: white space, `/` or `>`.
fn tag_name_end(html: &[u8], mut i: usize) -> usize {
    while html
        .get(i)
        .is_some_and(|&b| !is_space(b) && b != b'/' && b != b'>')
    {
        i += 1;
    }
    i
}

/// Finds `</name` (any case) ending a raw-text or skipped element from `from`: where it starts
/// and where the text after it begins.
fn find_end_tag(html: &[u8], from: usize, name: &[u8]) -> Option<(usize, usize)> {
    let mut at = from;
    while let Some(start) = find(html, at, b"</") {
        let name_end = start + 2 + name.len();
        let matches = html
            .get(start + 2..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        let boundary = html
            .get(name_end)
            .map_or(true, |&b| is_space(b) || b == b'/' || b == b'>');
        if matches && boundary {
            let after = find(html, name_end, b">").map_or(html.len(), |gt| gt + 1);
            return Some((start, after));
        }
        at = start + 2;
    }
    None
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let rest = haystack.get(from..)?;
    rest.windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

/// HTML white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Raw text or attribute bytes as shown text: invalid UTF-8 replaced, character references
/// decoded, control characters and runs of white space made single spaces, trimmed, and cut
/// to `max_chars` characters.
fn clean_text(raw: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    let mut rest = &*text;
    while let Some(c) = rest.chars().next() {
        let (c, used) = match c {
            '&' => decode_reference(rest).unwrap_or(('&', 1)),
            c => (c, c.len_utf8()),
        };
        rest = &rest[used..];
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        let needed = if space { 2 } else { 1 };
        if count + needed > max_chars {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        count += needed;
    }
    out
}

/// Named references decoded: the ones pages really use in titles and descriptions.
const NAMED: [(&str, char); 44] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("nbsp", '\u{a0}'),
    ("copy", '©'),
    ("reg", '®'),
    ("trade", '™'),
    ("hellip", '…'),
    ("mdash", '—'),
    ("ndash", '–'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("laquo", '«'),
    ("raquo", '»'),
    ("middot", '·'),
    ("bull", '•'),
    ("euro", '€'),
    ("pound", '£'),
    ("deg", '°'),
    ("times", '×'),
    ("shy", '\u{ad}'),
    ("auml", 'ä'),
    ("ouml", 'ö'),
    ("uuml", 'ü'),
    ("Auml", 'Ä'),
    ("Ouml", 'Ö'),
    ("Uuml", 'Ü'),
    ("szlig", 'ß'),
    ("eacute", 'é'),
    ("egrave", 'è'),
    ("ecirc", 'ê'),
    ("aacute", 'á'),
    ("agrave", 'à'),
    ("ccedil", 'ç'),
    ("ntilde", 'ñ'),
    ("oacute", 'ó'),
    ("iacute", 'í'),
    ("uacute", 'ú'),
];

/// Names the HTML parser still decodes without their semicolon.
const LEGACY: [&str; 5] = ["amp", "lt", "gt", "quot", "nbsp"];

/// Decodes the character reference at the start of `s` (which starts with `&`): the
/// character and the bytes it took. `None` when it is not one.
fn decode_reference(s: &str) -> Option<(char, usize)> {
    let bytes = s.as_bytes();
    if bytes.get(1) == Some(&b'#') {
        let hex = matches!(bytes.get(2), Some(b'x' | b'X'));
        let digits_start = if hex { 3 } else { 2 };
        let radix = if hex { 16 } else { 10 };
        let digits = bytes[digits_start..]
            .iter()
            .take_while(|b| (**b as char).is_digit(radix))
            .count();
        if digits == 0 {
            return None;
        }
        let value = bytes[digits_start..digits_start + digits]
            .iter()
            .fold(0u32, |acc, &b| {
                acc.saturating_mul(radix)
                    .saturating_add((b as char).to_digit(radix).unwrap_or(0))
            });
        let mut used = digits_start + digits;
        if bytes.get(used) == Some(&b';') {
            used += 1;
        }
        let c = match value {
            0 => '\u{fffd}',
            v => char::from_u32(v).unwrap_or('\u{fffd}'),
        };
        return Some((c, used));
    }
    let name_len = bytes[1..]
        .iter()
        .take(8)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let name = &s[1..1 + name_len];
    let &(_, c) = NAMED.iter().find(|(n, _)| *n == name)?;
    if bytes.get(1 + name_len) == Some(&b';') {
        Some((c, name_len + 2))
    } else if LEGACY.contains(&name) && bytes.get(1 + name_len) != Some(&b'=') {
        Some((c, name_len + 1))
    } else {
        None
    }
}

/// The `<meta>` tags for the captcha page's `<head>`: the description and the OpenGraph and
/// Twitter tags, every value escaped. Names that [`is_hint_name`] refuses are left out, so
/// only `name`, `property` and `content` attributes are ever written. The title is the
/// caller's (it goes in `<title>`, escaped there).
pub fn head_html(hints: &Hints) -> String {
    let mut out = String::new();
    if !hints.description.is_empty() {
        push_meta(&mut out, "name", "description", &hints.description);
    }
    for (key, value) in &hints.meta {
        if !is_hint_name(key) || value.is_empty() {
            continue;
        }
        let attribute = if key.starts_with("og:") {
            "property"
        } else {
            "name"
        };
        push_meta(&mut out, attribute, key, value);
    }
    out
}

fn push_meta(out: &mut String, attribute: &str, key: &str, value: &str) {
    out.push_str("<meta ");
    out.push_str(attribute);
    out.push_str("=\"");
    escape_into(out, key);
    out.push_str("\" content=\"");
    escape_into(out, value);
    out.push_str("\">\n");
}

// The shared-memory form, written by one process and read by all:
//
//   [0..4)   magic and version: "CHH" 1
//   [4..6)   payload length n, little endian
//   [6..10)  FNV-1a of the length and payload: a torn or foreign record is refused
//   [10..10+n) payload:
//            u16 title length, title; u16 description length, description;
//            u8 entry count; per entry: u8 name length, name, u16 value length, value
//
// The rest is zero. Lengths are bytes of UTF-8, every string is cut on a character boundary.

const MAGIC: [u8; 4] = *b"CHH\x01";
const HEADER: usize = 10;
const PAYLOAD: usize = HINTS_BYTES - HEADER;

/// The hints as a fixed-size record. The limits of [`extract`] are applied again; the title
/// and then the description are shortened (on a character boundary) if together they would
/// not fit, and OpenGraph/Twitter tags that no longer fit are dropped.
pub fn encode(hints: &Hints) -> [u8; HINTS_BYTES] {
    let mut payload = Vec::with_capacity(PAYLOAD);
    // Room is kept for the description's length and the entry count.
    let title = bounded(&hints.title, MAX_TITLE, PAYLOAD - 2 - 2 - 1);
    put_u16_str(&mut payload, title);
    let description = bounded(
        &hints.description,
        MAX_DESCRIPTION,
        PAYLOAD - payload.len() - 2 - 1,
    );
    put_u16_str(&mut payload, description);
    let count_at = payload.len();
    payload.push(0);
    let mut count = 0;
    for (key, value) in &hints.meta {
        let value = bounded(value, MAX_META_VALUE, usize::from(u16::MAX));
        if count == MAX_META || !is_hint_name(key) || value.is_empty() {
            continue;
        }
        if payload.len() + 1 + key.len() + 2 + value.len() > PAYLOAD {
            continue;
        }
        payload.push(key.len() as u8);
        payload.extend_from_slice(key.as_bytes());
        put_u16_str(&mut payload, value);
        count += 1;
    }
    payload[count_at] = count as u8;

    let mut record = [0; HINTS_BYTES];
    let len = (payload.len() as u16).to_le_bytes();
    record[..4].copy_from_slice(&MAGIC);
    record[4..6].copy_from_slice(&len);
    record[6..10].copy_from_slice(&checksum(&len, &payload).to_le_bytes());
    record[HEADER..HEADER + payload.len()].copy_from_slice(&payload);
    record
}

/// Reads a record [`encode`] wrote. Anything else (zeroes, another version, a torn write,
/// garbage) is `None`; nothing read is trusted further than it is checked.
pub fn decode(record: &[u8; HINTS_BYTES]) -> Option<Hints> {
    if record[..4] != MAGIC {
        return None;
    }
    let len_bytes = [record[4], record[5]];
    let len = usize::from(u16::from_le_bytes(len_bytes));
    let payload = record.get(HEADER..HEADER + len)?;
    if record[6..10] != checksum(&len_bytes, payload).to_le_bytes() {
        return None;
    }
    let mut r = Reader(payload);
    let title = r.str16()?;
    let description = r.str16()?;
    let count = usize::from(r.byte()?);
    if title.chars().count() > MAX_TITLE
        || description.chars().count() > MAX_DESCRIPTION
        || count > MAX_META
    {
        return None;
    }
    let mut meta = Vec::with_capacity(count);
    for _ in 0..count {
        let key_len = usize::from(r.byte()?);
        let key = std::str::from_utf8(r.take(key_len)?).ok()?;
        let value = r.str16()?;
        if !is_hint_name(key) || value.is_empty() || value.chars().count() > MAX_META_VALUE {
            return None;
        }
        meta.push((key.to_string(), value.to_string()));
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(Hints {
        title: title.to_string(),
        description: description.to_string(),
        meta,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn str16(&mut self) -> Option<&'a str> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        std::str::from_utf8(self.take(len)?).ok()
    }
}

fn put_u16_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// `s` cut to at most `max_chars` characters and `max_bytes` bytes, on a character boundary.
fn bounded(s: &str, max_chars: usize, max_bytes: usize) -> &str {
    let mut end = 0;
    for (count, (i, c)) in s.char_indices().enumerate() {
        if count == max_chars || i + c.len_utf8() > max_bytes {
            break;
        }
        end = i + c.len_utf8();
    }
    &s[..end]
}

/// FNV-1a (32 bits): enough to tell a record from a torn or foreign one, not a defence
/// against a forger (whoever can write the zone can write anything).
fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    len.iter().chain(payload).fold(0x811c_9dc5, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(html: &str) -> Hints {
        extract(html.as_bytes()).expect("hints")
    }

    fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const WORDPRESS: &str = r#"<!DOCTYPE html>
<html lang="en-US">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="profile" href="https://gmpg.org/xfn/11">
<title>Ten Things About Sourdough &#8211; The Bakery Blog</title>
<meta name='robots' content='index, follow, max-image-preview:large' />
<!-- This site is optimized with the Yoast SEO plugin v22.0 - https://yoast.com/wordpress/plugins/seo/ -->
<meta name="description" content="Why does sourdough rise? We explain starters, hydration &amp; timing &#x2014; no jargon." />
<link rel="canonical" href="https://bakery.example/sourdough/" />
<meta property="og:locale" content="en_US" />
<meta property="og:type" content="article" />
<meta property="og:title" content="Ten Things About Sourdough - The Bakery Blog" />
<meta property="og:description" content="Why does sourdough rise?" />
<meta property="og:url" content="https://bakery.example/sourdough/" />
<meta property="og:site_name" content="The Bakery Blog" />
<meta property="article:published_time" content="2024-02-01T08:00:00+00:00" />
<meta property="og:image" content="https://bakery.example/wp-content/uploads/loaf.jpg" />
<meta property="og:image:width" content="1200" />
<meta property="og:image:width" content="1200" />
<meta name="twitter:card" content="summary_large_image" />
<meta name="twitter:label1" content="Est. reading time" />
<!-- / Yoast SEO plugin. -->
<script type="application/ld+json" class="yoast-schema-graph">{"@context":"https://schema.org","name":"<title>not this</title>"}</script>
<style id='wp-block-library-inline-css'>.x:after{content:"<title>"}</style>
</head>
<body class="post-template-default single">
<meta name="twitter:title" content="body tags are not read">
</body></html>"#;

    #[test]
    fn a_wordpress_head() {
        let h = hints(WORDPRESS);
        assert_eq!(h.title, "Ten Things About Sourdough – The Bakery Blog");
        assert_eq!(
            h.description,
            "Why does sourdough rise? We explain starters, hydration & timing — no jargon."
        );
        assert_eq!(
            h.meta,
            meta(&[
                ("og:locale", "en_US"),
                ("og:type", "article"),
                ("og:title", "Ten Things About Sourdough - The Bakery Blog"),
                ("og:description", "Why does sourdough rise?"),
                ("og:url", "https://bakery.example/sourdough/"),
                ("og:site_name", "The Bakery Blog"),
                (
                    "og:image",
                    "https://bakery.example/wp-content/uploads/loaf.jpg"
                ),
                ("og:image:width", "1200"),
                ("twitter:card", "summary_large_image"),
                ("twitter:label1", "Est. reading time"),
            ])
        );
    }

    #[test]
    fn attributes_in_any_order_case_and_quoting() {
        let h = hints(
            "<HTML><HEAD>\n<TiTlE >\n  Caf&eacute;   &amp; Bar\t&lt;Home&gt; &#169;&#x1F600;\n</tItLe>\n\
             <META CONTENT=\"Fresh   coffee,\n every day&nbsp;&#33;\" NAME=Description>\n\
             <meta content='It&apos;s \"quoted\"' property='OG:Title'>\n\
             <meta content=summary name=twitter:card />\n\
             <meta name=\"twitter:site\" property=\"og:site_name\" content=\"@cafe\">\n\
             <meta property=\"og:image\" content=\"a.png\" content=\"b.png\">\n\
             <meta property=\"fb:app_id\" content=\"123\">\n\
             <meta name=\"twitter:creator\" content=\"   \">\n\
             <meta property=\"og:title\">\n\
             </head><body>",
        );
        assert_eq!(h.title, "Café & Bar <Home> ©😀");
        assert_eq!(h.description, "Fresh coffee, every day !");
        assert_eq!(
            h.meta,
            meta(&[
                ("og:title", "It's \"quoted\""),
                ("twitter:card", "summary"),
                ("og:site_name", "@cafe"),
                ("og:image", "a.png"),
            ])
        );
    }

    #[test]
    fn only_the_first_title_and_description_count() {
        let h = hints(
            "<title>First</title><title>Second</title>\
             <meta name=description content=one><meta name=description content=two>",
        );
        assert_eq!((h.title.as_str(), h.description.as_str()), ("First", "one"));
        // A title before any <head>, and no head at all, still counts.
        assert_eq!(
            hints("<!doctype html><title>Bare</title><p>text").title,
            "Bare"
        );
    }

    #[test]
    fn comments_scripts_and_templates_hide_what_they_hold() {
        let h = hints(
            "<head><!-- <title>commented</title> --><script>document.write('<title>scripted</title>')\
             </script ><template><meta property=og:title content=templated></template>\
             <noscript><meta property=og:type content=website></noscript>\
             <svg><title>icon</title></svg><title>Real</title></head>",
        );
        assert_eq!(h.title, "Real");
        assert_eq!(h.meta, meta(&[("og:type", "website")]));
        // Nothing before the end of the head ends the scan early: `</scripts>` is not `</script>`.
        let h =
            hints("<script>x = '</scripts>'; y = '<title>no</title>'</script><title>yes</title>");
        assert_eq!(h.title, "yes");
    }

    #[test]
    fn the_scan_stops_at_the_body() {
        assert_eq!(extract(b"<html><body><title>late</title>"), None);
        assert_eq!(extract(b"<head></head><title>late</title>"), None);
        assert_eq!(
            extract(b"<head></HEAD ><meta name=description content=x>"),
            None
        );
        assert_eq!(extract(b"<plaintext><title>x</title>"), None);
        assert_eq!(
            hints("<title>t</title><BODY onload=x><meta name=description content=x>").description,
            ""
        );
        // <bodyx> is not <body>.
        assert_eq!(hints("<bodyx><title>t</title>").title, "t");
    }

    #[test]
    fn nothing_found_is_none() {
        for page in [
            "",
            "plain text",
            "<html><head></head><body><h1>x</h1></body></html>",
            "<title></title>",
            "<title>  \n </title>",
            "<meta name=description content=''>",
        ] {
            assert_eq!(extract(page.as_bytes()), None, "{page:?}");
        }
    }

    #[test]
    fn unterminated_constructs_end_the_scan_quietly() {
        for page in [
            "<title>Real</title><!-- never closed <meta name=description content=x>",
            "<title>Real</title><script>never closed <meta name=description content=x>",
            "<title>Real</title><meta name=\"description content=x>",
            "<title>Real</title><meta name=description content=",
            "<title>Real</title><meta",
            "<title>Real</title><",
            "<title>Real</title></",
            "<title>Real</title><!",
            "<title>Real</title><title>second never closed",
        ] {
            let h = hints(page);
            assert_eq!(
                (h.title.as_str(), h.description.as_str()),
                ("Real", ""),
                "{page:?}"
            );
        }
        assert_eq!(extract(b"<title>never closed"), None);
    }

    #[test]
    fn references_are_decoded_carefully() {
        let h = hints(
            "<title>&amp &ampx &lt;&gt; &#0; &#xD800; &#1114112; &#99999999999999999999; &#x; &# \
             &unknown; &copy &copy; &Auml;&auml; &#65&#x42;C</title>",
        );
        assert_eq!(
            h.title,
            "& &ampx <> \u{fffd} \u{fffd} \u{fffd} \u{fffd} &#x; &# &unknown; &copy © Ää ABC"
        );
        // Control characters and invalid UTF-8 do not survive.
        let h = extract(b"<title>a\x00b\x07c \xff\xfe d&#1;e</title>").unwrap();
        assert_eq!(h.title, "a b c \u{fffd}\u{fffd} d e");
    }

    #[test]
    fn sizes_are_bounded_on_character_boundaries() {
        let long = "é".repeat(1000);
        let page = format!(
            "<title>{long}</title><meta name=description content=\"{long}\">\
             <meta property=og:title content=\"{long}\">\
             <meta property=\"og:{}\" content=x><meta property=\"og:{}\" content=y>",
            "a".repeat(61),
            "a".repeat(62)
        );
        let h = hints(&page);
        assert_eq!(h.title.chars().count(), MAX_TITLE);
        assert_eq!(h.description.chars().count(), MAX_DESCRIPTION);
        assert_eq!(h.meta[0].1.chars().count(), MAX_META_VALUE);
        // og: plus 61 is 64 characters, the longest name kept; longer ones are skipped.
        assert_eq!(h.meta.len(), 2);
        assert_eq!(h.meta[1].0.len(), MAX_META_NAME);
        // Words cut at the limit leave no trailing space.
        let h = hints(&format!("<title>{}</title>", "abc ".repeat(100)));
        assert_eq!(h.title.chars().count(), MAX_TITLE - 1);
        assert!(h.title.ends_with("abc"));
        // At most 16 tags.
        let many: String = (0..40)
            .map(|i| format!("<meta property=og:image content=i{i}.png>"))
            .collect();
        assert_eq!(hints(&many).meta.len(), MAX_META);
        // Names must be plain: no spaces, capitals are lowered, odd characters refuse the tag.
        let h = hints(
            "<meta property='OG:Image:Alt' content=a><meta property='og:bad name' content=b>\
             <meta property='og:x\"y' content=c><meta property='og:' content=d>\
             <meta name='twitter:é' content=e>",
        );
        assert_eq!(h.meta, meta(&[("og:image:alt", "a")]));
    }

    #[test]
    fn only_the_first_256_kib_are_read() {
        let pad = " ".repeat(MAX_SCAN);
        assert_eq!(
            extract(format!("{pad}<title>late</title>").as_bytes()),
            None
        );
        let mut page = format!("<title>early</title>{}", " ".repeat(MAX_SCAN - 30)).into_bytes();
        page.extend_from_slice(b"<meta name=description content=late>");
        assert_eq!(extract(&page).unwrap().description, "");
    }

    #[test]
    fn huge_and_nasty_inputs_do_not_hurt() {
        let huge_attribute = format!(
            "<meta name=description content=\"{}\"><title>t</title>",
            "&amp;".repeat(40_000)
        );
        let h = hints(&huge_attribute);
        assert_eq!(h.description.chars().count(), MAX_DESCRIPTION);
        let names: String = (0..20_000).map(|i| format!("a{i} ")).collect();
        let many_attributes = format!("<meta {names} name=description content=x>");
        assert_eq!(
            extract(many_attributes.as_bytes()),
            None,
            "the tag has more attributes than a real one"
        );
        let many_tags = "<meta>".repeat(40_000) + "<title>t</title>";
        assert_eq!(hints(&many_tags).title, "t");
        let lts = "<".repeat(MAX_SCAN);
        assert_eq!(extract(lts.as_bytes()), None);
        let comments = "<!--".repeat(MAX_SCAN / 4);
        assert_eq!(extract(comments.as_bytes()), None);
        let scripts = "<script>".repeat(MAX_SCAN / 8);
        assert_eq!(extract(scripts.as_bytes()), None);
        let end_tags = format!("<script>{}", "</scrip".repeat(MAX_SCAN / 7));
        assert_eq!(extract(end_tags.as_bytes()), None);
    }

    /// Random bytes, and random mixes of the pieces that steer the scanner: never a panic,
    /// and whatever comes out respects the limits and encodes and decodes to itself.
    #[test]
    fn random_input_never_panics() {
        const PIECES: [&str; 24] = [
            "<",
            ">",
            "</",
            "<!--",
            "-->",
            "<title>",
            "</title>",
            "<meta ",
            "name=",
            "property=",
            "content=",
            "\"",
            "'",
            "og:x",
            "twitter:y",
            "description",
            "&",
            "&#",
            "&#x",
            ";",
            "<script>",
            "</script>",
            "<head>",
            "\u{e9}",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..3000 {
            let mut page = Vec::new();
            let len = (next() % 600) as usize;
            for _ in 0..len {
                let r = next();
                if round % 2 == 0 {
                    page.push(r as u8);
                } else if r % 4 == 0 {
                    page.push((r >> 8) as u8);
                } else {
                    page.extend_from_slice(PIECES[(r >> 8) as usize % PIECES.len()].as_bytes());
                }
            }
            if let Some(h) = extract(&page) {
                assert!(!h.is_empty());
                assert!(h.title.chars().count() <= MAX_TITLE);
                assert!(h.description.chars().count() <= MAX_DESCRIPTION);
                assert!(h.meta.len() <= MAX_META);
                assert!(h.meta.iter().all(|(k, v)| is_hint_name(k) && !v.is_empty()));
                assert_eq!(decode(&encode(&h)), Some(h.clone()));
                let html = head_html(&h);
                assert_eq!(html.matches('<').count(), html.matches("<meta ").count());
            }
        }
    }

    #[test]
    fn markup_in_values_comes_out_inert() {
        let h = hints(
            "<title>\"><script>alert(1)</script></title>\
             <meta name=description content='\"><script>alert(2)</script>'>\
             <meta property=og:title content=\"&quot;&gt;&lt;img src=x onerror=alert(3)&gt;\">\
             <meta property=og:description content=\"it's <b>bold</b> & 'single'\">",
        );
        // A title holds text only: the caller escapes it like any other.
        assert_eq!(h.title, "\"><script>alert(1)</script>");
        let html = head_html(&h);
        assert_eq!(
            html,
            "<meta name=\"description\" content=\"&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;\">\n\
             <meta property=\"og:title\" content=\"&quot;&gt;&lt;img src=x onerror=alert(3)&gt;\">\n\
             <meta property=\"og:description\" content=\"it&#39;s &lt;b&gt;bold&lt;/b&gt; &amp; &#39;single&#39;\">\n"
        );
        // Hints built by hand are checked again on the way out.
        let forged = Hints {
            title: String::new(),
            description: String::new(),
            meta: meta(&[
                ("og:title\" onload=\"x", "v"),
                ("http-equiv", "refresh"),
                ("og:ok", "a\"b"),
                ("twitter:card", ""),
                ("twitter:card", "<x>"),
            ]),
        };
        assert_eq!(
            head_html(&forged),
            "<meta property=\"og:ok\" content=\"a&quot;b\">\n<meta name=\"twitter:card\" content=\"&lt;x&gt;\">\n"
        );
        assert_eq!(head_html(&Hints::default()), "");
    }

    #[test]
    fn records_round_trip() {
        let h = hints(WORDPRESS);
        let record = encode(&h);
        assert_eq!(decode(&record), Some(h));
        let empty = Hints::default();
        assert_eq!(decode(&encode(&empty)), Some(empty));
        let unicode = Hints {
            title: "日本語のタイトル 😀".into(),
            description: "Ünïcödé".into(),
            meta: meta(&[("og:title", "ταυτότητα")]),
        };
        assert_eq!(decode(&encode(&unicode)), Some(unicode));
    }

    #[test]
    fn records_keep_within_their_size() {
        // Four-byte characters at every limit: 800 + 1600 bytes cannot both fit in 2038.
        let full = Hints {
            title: "😀".repeat(MAX_TITLE + 50),
            description: "😀".repeat(MAX_DESCRIPTION + 50),
            meta: (0..20)
                .map(|i| (format!("og:n{i}"), "😀".repeat(MAX_META_VALUE + 1)))
                .collect(),
        };
        let back = decode(&encode(&full)).unwrap();
        assert_eq!(back.title.chars().count(), MAX_TITLE);
        assert_eq!(back.description.len() % 4, 0, "cut on a character boundary");
        let room = PAYLOAD - (2 + 800 + 2 + 1);
        assert!(back.description.len() <= room);
        assert!(back.meta.is_empty(), "no room left for any tag");
        // Tags that do not fit are dropped, smaller ones after them still go in.
        let mixed = Hints {
            title: "t".into(),
            description: "d".repeat(MAX_DESCRIPTION),
            meta: vec![
                ("og:a".into(), "é".repeat(MAX_META_VALUE)),
                ("og:b".into(), "é".repeat(MAX_META_VALUE)),
                ("og:c".into(), "x".repeat(MAX_META_VALUE)),
                ("og:d".into(), "y".repeat(300)),
                ("og:e".into(), "z".repeat(10)),
                ("bad key".into(), "v".into()),
            ],
        };
        let back = decode(&encode(&mixed)).unwrap();
        let keys: Vec<&str> = back.meta.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["og:a", "og:b", "og:e"]);
        assert!(back
            .meta
            .iter()
            .all(|(_, v)| v.chars().count() <= MAX_META_VALUE));
    }

    #[test]
    fn garbage_records_are_refused() {
        assert_eq!(decode(&[0; HINTS_BYTES]), None);
        assert_eq!(decode(&[0xff; HINTS_BYTES]), None);
        let good = encode(&hints(WORDPRESS));
        // Any single flipped bit of the header or payload is noticed.
        let used = HEADER + usize::from(u16::from_le_bytes([good[4], good[5]]));
        for i in 0..used {
            for bit in [0x01, 0x80] {
                let mut bad = good;
                bad[i] ^= bit;
                assert_eq!(decode(&bad), None, "byte {i}");
            }
        }
        // Another version is refused.
        let mut other = good;
        other[3] = 2;
        assert_eq!(decode(&other), None);
        // Well-checksummed nonsense is refused too: lengths past the end, bad UTF-8, bad names.
        let forge = |payload: &[u8]| {
            let mut record = [0; HINTS_BYTES];
            let len = (payload.len() as u16).to_le_bytes();
            record[..4].copy_from_slice(&MAGIC);
            record[4..6].copy_from_slice(&len);
            record[6..10].copy_from_slice(&checksum(&len, payload).to_le_bytes());
            record[HEADER..HEADER + payload.len()].copy_from_slice(payload);
            record
        };
        assert!(decode(&forge(&[1, 0, b'a', 0, 0, 0])).is_some());
        for payload in [
            &[][..],
            &[5, 0, b'a', 0, 0, 0],
            &[1, 0, 0xff, 0, 0, 0],
            &[0, 0, 0, 0, 1, 4, b'o', b'g', b':', b'x', 0, 0],
            &[0, 0, 0, 0, 1, 4, b'f', b'b', b':', b'x', 1, 0, b'v'],
            &[0, 0, 0, 0, 17],
            &[0, 0, 0, 0, 0, 0],
            &[0xff, 0xff, 0, 0, 0],
        ] {
            assert_eq!(decode(&forge(payload)), None, "{payload:?}");
        }
        let mut too_long = good;
        too_long[4..6].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(decode(&too_long), None);
        // Random records: never a panic.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut record = [0u8; HINTS_BYTES];
            for b in record.iter_mut() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            record[..4].copy_from_slice(&MAGIC);
            assert_eq!(decode(&record), None);
        }
    }
}
