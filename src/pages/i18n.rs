//! Languages: the catalogs of visible strings (one data file per language in
//! `templates/i18n/`), and choosing a page's language (chooser, `Accept-Language`).
//!
//! # Catalog files
//!
//! UTF-8 text, one `key = value` per line; blank lines and lines starting with `#` are
//! ignored; the value runs to the end of the line, trimmed. Two keys describe the language
//! itself: `_name` (its own name for itself, for the language chooser) and `_dir` (`ltr` or
//! `rtl`). A catalog must define every key the reference catalog (English) defines, and no
//! other: a missing or unknown key is an error naming the file and line, so no page is ever
//! shown half translated.

use thiserror::Error;

/// A language's strings, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// The language tag, lowercase (`en`, `de`, `pt-br`, `ar`).
    pub tag: String,
    /// The language's name for itself.
    pub name: String,
    pub rtl: bool,
    /// Key, value and the line it is on.
    entries: Vec<(String, String, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CatalogError {
    #[error("{file}:{line}: expected \"key = value\"")]
    Syntax { file: String, line: usize },
    #[error("{file}:{line}: key \"{key}\" is defined twice")]
    Duplicate {
        file: String,
        line: usize,
        key: String,
    },
    #[error("{file}:{line}: \"_dir\" must be ltr or rtl")]
    Direction { file: String, line: usize },
    #[error("{file}: \"_name\" is missing")]
    NoName { file: String },
    #[error("{file}: key \"{key}\" is missing (every key of the reference catalog is needed)")]
    Missing { file: String, key: String },
    #[error("{file}:{line}: unknown key \"{key}\"")]
    Unknown {
        file: String,
        line: usize,
        key: String,
    },
    #[error(
        "{file}:{line}: \"{key}\" must use exactly the placeholders of the reference: {expected}"
    )]
    Placeholders {
        file: String,
        line: usize,
        key: String,
        expected: String,
    },
    #[error("{file}:{line}: \"{key}\" has an unknown placeholder {{{name}}}")]
    Placeholder {
        file: String,
        line: usize,
        key: String,
        name: String,
    },
    #[error("{file}: \"{tag}\" is not a language tag (letters, digits and hyphens)")]
    Tag { file: String, tag: String },
}

impl Catalog {
    /// Parses the catalog of language `tag` from `text` (`file` names it in errors).
    pub fn parse(tag: &str, file: &str, text: &str) -> Result<Catalog, CatalogError> {
        let tag = tag.to_ascii_lowercase();
        let valid_tag = !tag.is_empty()
            && tag.len() <= 35
            && tag
                .split('-')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !valid_tag {
            return Err(CatalogError::Tag {
                file: file.into(),
                tag,
            });
        }
        let mut name = None;
        let mut rtl = false;
        let mut entries: Vec<(String, String, usize)> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(CatalogError::Syntax {
                    file: file.into(),
                    line,
                });
            };
            let (key, value) = (key.trim(), value.trim());
            let key_ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
            if !key_ok || value.is_empty() {
                return Err(CatalogError::Syntax {
                    file: file.into(),
                    line,
                });
            }
            let duplicate =
                entries.iter().any(|(k, _, _)| k == key) || (key == "_name" && name.is_some());
            if duplicate {
                return Err(CatalogError::Duplicate {
                    file: file.into(),
                    line,
                    key: key.into(),
                });
            }
            match key {
                "_name" => name = Some(value.to_owned()),
                "_dir" => {
                    rtl = match value {
                        "rtl" => true,
                        "ltr" => false,
                        _ => {
                            return Err(CatalogError::Direction {
                                file: file.into(),
                                line,
                            })
                        }
                    }
                }
                _ => entries.push((key.to_owned(), value.to_owned(), line)),
            }
        }
        let name = name.ok_or_else(|| CatalogError::NoName { file: file.into() })?;
        Ok(Catalog {
            tag,
            name,
            rtl,
            entries,
        })
    }

    /// Checks that this catalog has exactly the keys of `reference`.
    pub fn check_against(&self, reference: &Catalog, file: &str) -> Result<(), CatalogError> {
        if let Some((key, _, _)) = reference
            .entries
            .iter()
            .find(|(k, _, _)| self.get(k).is_none())
        {
            return Err(CatalogError::Missing {
                file: file.into(),
                key: key.clone(),
            });
        }
        if let Some((key, _, line)) = self
            .entries
            .iter()
            .find(|(k, _, _)| reference.get(k).is_none())
        {
            return Err(CatalogError::Unknown {
                file: file.into(),
                line: *line,
                key: key.clone(),
            });
        }
        for (key, value, line) in &self.entries {
            let ours = placeholders_in(value);
            let theirs = placeholders_in(reference.get(key).unwrap_or_default());
            if ours != theirs {
                return Err(CatalogError::Placeholders {
                    file: file.into(),
                    line: *line,
                    key: key.clone(),
                    expected: if theirs.is_empty() {
                        "none".into()
                    } else {
                        theirs
                            .iter()
                            .map(|n| format!("{{{n}}}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    },
                });
            }
        }
        Ok(())
    }

    /// The string for `key`, if the catalog has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, _)| v.as_str())
    }

    /// The keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _, _)| k.as_str())
    }
}

/// Picks the language for a request: the first of `available` (lowercase tags) that the
/// client's `Accept-Language` ranks highest, trying each range as given and then its primary
/// subtag (`de-AT` → `de`); a range's region variants count too (`pt` → `pt-br` when only that
/// exists). `q=0` excludes; `*` accepts anything, which means the default. Garbage, an empty
/// header or no match gives `default`. Among equal weights the header's order decides.
pub fn negotiate<'a>(
    accept_language: Option<&[u8]>,
    available: &[&'a str],
    default: &'a str,
) -> &'a str {
    let Some(header) = accept_language.and_then(|h| core::str::from_utf8(h).ok()) else {
        return default;
    };
    let mut ranges: Vec<(u16, usize, String)> = Vec::new();
    // Bounded: a header with thousands of ranges is not a browser's.
    for (position, item) in header.split(',').take(32).enumerate() {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        if range.is_empty() || range.len() > 35 {
            continue;
        }
        let mut weight = 1000u16;
        for param in parts {
            if let Some(q) = param
                .trim()
                .strip_prefix("q=")
                .or_else(|| param.trim().strip_prefix("Q="))
            {
                weight = parse_q(q).unwrap_or(0);
            }
        }
        if weight > 0 {
            ranges.push((weight, position, range));
        }
    }
    // Highest weight first; the header's order among equals (a stable sort keeps it).
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, range) in &ranges {
        if range == "*" {
            return default;
        }
        if let Some(found) = available.iter().find(|tag| **tag == range) {
            return found;
        }
        let primary = range.split('-').next().unwrap_or_default();
        if let Some(found) = available.iter().find(|tag| **tag == primary) {
            return found;
        }
        let prefix = format!("{primary}-");
        if let Some(found) = available.iter().find(|tag| tag.starts_with(&prefix)) {
            return found;
        }
    }
    default
}

/// A quality value, `0` to `1` with at most three decimals, as thousandths.
fn parse_q(q: &str) -> Option<u16> {
    let q = q.trim();
    let (whole, fraction) = q.split_once('.').unwrap_or((q, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<u16>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The `{name}` placeholders in a catalog value, sorted.
fn placeholders_in(value: &str) -> Vec<&str> {
    let mut names: Vec<&str> = Pieces::new(value)
        .filter_map(|p| match p {
            RawPiece::Name(n) => Some(n),
            RawPiece::Text(_) => None,
        })
        .collect();
    names.sort_unstable();
    names
}

enum RawPiece<'a> {
    Text(&'a str),
    Name(&'a str),
}

/// Splits a catalog value into text and `{name}` placeholders (a `{` not followed by a name
/// and `}` is text).
struct Pieces<'a>(&'a str);

impl<'a> Pieces<'a> {
    fn new(value: &'a str) -> Self {
        Pieces(value)
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = RawPiece<'a>;
    fn next(&mut self) -> Option<RawPiece<'a>> {
        let rest = self.0;
        if rest.is_empty() {
            return None;
        }
        let name_at = |i: usize| -> Option<usize> {
            let body = &rest[i + 1..];
            let end = body.find('}')?;
            let name = &body[..end];
            (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
                .then_some(end)
        };
        if rest.starts_with('{') {
            if let Some(end) = name_at(0) {
                self.0 = &rest[end + 2..];
                return Some(RawPiece::Name(&rest[1..=end]));
            }
        }
        // Text up to the next placeholder.
        let mut cut = rest.len();
        for (i, _) in rest.match_indices('{').filter(|(i, _)| *i > 0) {
            if name_at(i).is_some() {
                cut = i;
                break;
            }
        }
        if cut == 0 {
            cut = 1;
        }
        self.0 = &rest[cut..];
        Some(RawPiece::Text(&rest[..cut]))
    }
}

/// A catalog value ready to render: HTML-escaped text and placeholder indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Html(String),
    Value(usize),
}

/// One language, ready to render: its strings in the reference's key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    pub tag: String,
    pub name: String,
    pub rtl: bool,
    texts: Vec<Vec<Piece>>,
}

impl Language {
    /// `dir` attribute value.
    pub fn dir(&self) -> &'static str {
        if self.rtl {
            "rtl"
        } else {
            "ltr"
        }
    }

    /// Appends the string with index `key` (see [`key_index`]), its placeholders filled from
    /// `values` (indexed as the `names` the languages were loaded with), escaped; `wrap`
    /// gives the markup around a placeholder's value (e.g. `<code>` for a path).
    pub fn render_into(
        &self,
        out: &mut String,
        key: usize,
        values: &[&str],
        wrap: impl Fn(usize) -> (&'static str, &'static str),
    ) {
        for piece in self.texts.get(key).map(Vec::as_slice).unwrap_or_default() {
            match piece {
                Piece::Html(html) => out.push_str(html),
                Piece::Value(i) => {
                    let (open, close) = wrap(*i);
                    out.push_str(open);
                    super::template::escape_into(out, values.get(*i).copied().unwrap_or(""));
                    out.push_str(close);
                }
            }
        }
    }

    /// The plain string with index `key` and its placeholders as written (for tests and logs).
    pub fn text(&self, key: usize) -> String {
        let mut out = String::new();
        self.render_into(&mut out, key, &[], |_| ("", ""));
        out
    }

    fn from_catalog(
        catalog: &Catalog,
        reference: &Catalog,
        names: &[&str],
        file: &str,
    ) -> Result<Language, CatalogError> {
        let mut texts = Vec::with_capacity(reference.entries.len());
        for (key, _, _) in &reference.entries {
            let (value, line) = catalog
                .entries
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, v, l)| (v.as_str(), *l))
                .ok_or_else(|| CatalogError::Missing {
                    file: file.into(),
                    key: key.clone(),
                })?;
            let mut pieces = Vec::new();
            for piece in Pieces::new(value) {
                match piece {
                    RawPiece::Text(text) => {
                        let mut html = String::new();
                        super::template::escape_into(&mut html, text);
                        match pieces.last_mut() {
                            Some(Piece::Html(previous)) => previous.push_str(&html),
                            _ => pieces.push(Piece::Html(html)),
                        }
                    }
                    RawPiece::Name(name) => {
                        let index = names.iter().position(|n| *n == name).ok_or_else(|| {
                            CatalogError::Placeholder {
                                file: file.into(),
                                line,
                                key: key.clone(),
                                name: name.into(),
                            }
                        })?;
                        pieces.push(Piece::Value(index));
                    }
                }
            }
            texts.push(pieces);
        }
        Ok(Language {
            tag: catalog.tag.clone(),
            name: catalog.name.clone(),
            rtl: catalog.rtl,
            texts,
        })
    }
}

/// The catalogs shipped in `templates/i18n/`, as (tag, file text); English, the reference,
/// first. Generated by `build.rs`, so adding a language is adding a file.
const BUILTIN_CATALOGS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalogs.rs"));

/// The tag of the reference catalog: every other catalog defines exactly its keys.
pub const REFERENCE: &str = "en";

fn reference_catalog() -> &'static Catalog {
    static REFERENCE_CATALOG: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(|| {
        let text = BUILTIN_CATALOGS
            .iter()
            .find(|(tag, _)| *tag == REFERENCE)
            .map_or("", |(_, t)| t);
        Catalog::parse(REFERENCE, "templates/i18n/en.txt", text).unwrap_or(Catalog {
            tag: REFERENCE.into(),
            name: "English".into(),
            rtl: false,
            entries: Vec::new(),
        })
    });
    &REFERENCE_CATALOG
}

/// The index of a string's key in every [`Language`] (the reference's file order).
pub fn key_index(key: &str) -> Option<usize> {
    reference_catalog()
        .entries
        .iter()
        .position(|(k, _, _)| k == key)
}

/// The languages a set of pages can speak; the first is the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Languages {
    list: Vec<Language>,
}

#[derive(Debug, Error)]
pub enum LanguagesError {
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("cannot read \"{path}\": {error}")]
    Read {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

impl Languages {
    /// Builds the built-in languages; `names` are the page placeholders a value may use.
    pub fn builtin(names: &[&str]) -> Result<Languages, CatalogError> {
        let reference = reference_catalog();
        let mut list = Vec::new();
        for (tag, text) in BUILTIN_CATALOGS {
            let file = format!("templates/i18n/{tag}.txt");
            let catalog = Catalog::parse(tag, &file, text)?;
            catalog.check_against(reference, &file)?;
            list.push(Language::from_catalog(&catalog, reference, names, &file)?);
        }
        Ok(Languages { list })
    }

    /// These languages plus the catalogs in `dir` (`*.txt`, named by language tag), which add
    /// languages or replace built-in ones.
    pub fn with_dir(
        &self,
        dir: &std::path::Path,
        names: &[&str],
    ) -> Result<Languages, LanguagesError> {
        let mut list = self.list.clone();
        let entries = std::fs::read_dir(dir).map_err(|error| LanguagesError::Read {
            path: dir.into(),
            error,
        })?;
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .collect();
        files.sort();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|error| LanguagesError::Read {
                path: path.clone(),
                error,
            })?;
            let file = path.display().to_string();
            let tag = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let catalog = Catalog::parse(tag, &file, &text)?;
            catalog.check_against(reference_catalog(), &file)?;
            let language = Language::from_catalog(&catalog, reference_catalog(), names, &file)?;
            match list.iter_mut().find(|l| l.tag == language.tag) {
                Some(existing) => *existing = language,
                None => list.push(language),
            }
        }
        Ok(Languages { list })
    }

    pub fn get(&self, index: usize) -> &Language {
        &self.list[index.min(self.list.len() - 1)]
    }

    pub fn all(&self) -> &[Language] {
        &self.list
    }

    /// The index of the language with this tag (case-insensitive).
    pub fn find(&self, tag: &[u8]) -> Option<usize> {
        self.list
            .iter()
            .position(|l| l.tag.as_bytes().eq_ignore_ascii_case(tag))
    }

    /// The language for a request: an explicit choice (the chooser's cookie or URL argument)
    /// if it names one of ours, else the best match for `Accept-Language`, else `default`.
    pub fn choose(
        &self,
        explicit: Option<&[u8]>,
        accept_language: Option<&[u8]>,
        default: usize,
    ) -> usize {
        if let Some(index) = explicit.and_then(|tag| self.find(tag)) {
            return index;
        }
        let tags: Vec<&str> = self.list.iter().map(|l| l.tag.as_str()).collect();
        let fallback = tags.get(default).copied().unwrap_or(REFERENCE);
        let chosen = negotiate(accept_language, &tags, fallback);
        tags.iter().position(|t| *t == chosen).unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LANGS: &[&str] = &["en", "de", "fr", "pt-br", "zh-cn", "ar"];

    fn pick(header: &str) -> &'static str {
        negotiate(Some(header.as_bytes()), LANGS, "en")
    }

    #[test]
    fn quality_values_rank_the_ranges() {
        assert_eq!(pick("fr;q=0.5, de;q=0.9"), "de");
        assert_eq!(pick("de;q=0.1, fr"), "fr");
        assert_eq!(
            pick("de, fr"),
            "de",
            "the header's order among equal weights"
        );
        assert_eq!(pick("de;q=0.500, fr;q=0.5"), "de");
        assert_eq!(pick("de;q=1.0, fr;q=1"), "de");
    }

    #[test]
    fn regions_fall_back_to_their_language_and_back() {
        assert_eq!(pick("de-AT"), "de");
        assert_eq!(pick("de-at, fr;q=0.9"), "de");
        assert_eq!(
            pick("pt"),
            "pt-br",
            "a language finds its only regional variant"
        );
        assert_eq!(pick("pt-PT"), "pt-br");
        assert_eq!(pick("zh-Hans-CN;q=0.8, ja;q=0.9"), "zh-cn");
        assert_eq!(pick("AR-eg"), "ar");
    }

    #[test]
    fn unknown_excluded_or_garbage_gives_the_default() {
        assert_eq!(pick("ja, ko;q=0.5"), "en");
        assert_eq!(pick("de;q=0"), "en", "q=0 means not acceptable");
        assert_eq!(pick("de;q=0, fr;q=0.001"), "fr");
        assert_eq!(pick("*"), "en");
        assert_eq!(pick(""), "en");
        assert_eq!(pick(";;;,,,=q"), "en");
        assert_eq!(
            pick("de;q=2, fr;q=0.5"),
            "fr",
            "an invalid q excludes its range"
        );
        assert_eq!(pick("de;q=0.1234"), "en");
        assert_eq!(negotiate(None, LANGS, "en"), "en");
        assert_eq!(negotiate(Some(b"\xff\xfe de"), LANGS, "en"), "en");
        let long = format!("{}de", "xx, ".repeat(40));
        assert_eq!(pick(&long), "en", "only the first 32 ranges are read");
    }

    const EN: &str = "# English\n_name = English\n_dir = ltr\n\ncaptcha.title = Verification required\nblock.title = Access denied\n";

    #[test]
    fn catalogs_parse_and_must_match_the_reference() {
        let en = Catalog::parse("en", "en.txt", EN).unwrap();
        assert_eq!((en.name.as_str(), en.rtl), ("English", false));
        assert_eq!(en.get("block.title"), Some("Access denied"));
        assert_eq!(
            en.keys().collect::<Vec<_>>(),
            ["captcha.title", "block.title"]
        );

        let ar_text = "_name = العربية\n_dir = rtl\ncaptcha.title = التحقق مطلوب\nblock.title = تم رفض الوصول\n";
        let ar = Catalog::parse("ar", "ar.txt", ar_text).unwrap();
        assert!(ar.rtl);
        ar.check_against(&en, "ar.txt").unwrap();

        let partial = "_name = Deutsch\ncaptcha.title = Überprüfung nötig\n";
        let de = Catalog::parse("de", "de.txt", partial).unwrap();
        assert_eq!(
            de.check_against(&en, "de.txt"),
            Err(CatalogError::Missing {
                file: "de.txt".into(),
                key: "block.title".into()
            })
        );
        let extra = "_name = Deutsch\ncaptcha.title = A\nblock.title = B\n\ncaptcha.titel = C\n";
        let de = Catalog::parse("de", "de.txt", extra).unwrap();
        assert_eq!(
            de.check_against(&en, "de.txt"),
            Err(CatalogError::Unknown {
                file: "de.txt".into(),
                line: 5,
                key: "captcha.titel".into()
            })
        );
    }

    #[test]
    fn bad_catalogs_name_the_file_and_line() {
        let err = |text: &str| {
            Catalog::parse("xx", "xx.txt", text)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("_name = X\nno equals sign\n"),
            "xx.txt:2: expected \"key = value\""
        );
        assert_eq!(
            err("_name = X\na = 1\na = 2\n"),
            "xx.txt:3: key \"a\" is defined twice"
        );
        assert_eq!(
            err("_name = X\n_dir = sideways\n"),
            "xx.txt:2: \"_dir\" must be ltr or rtl"
        );
        assert_eq!(err("a = 1\n"), "xx.txt: \"_name\" is missing");
        assert_eq!(
            err("_name = X\nkey with space = 1\n"),
            "xx.txt:2: expected \"key = value\""
        );
        assert_eq!(
            err("_name = X\nempty =\n"),
            "xx.txt:2: expected \"key = value\""
        );
        let bad_tag = Catalog::parse("e n", "x.txt", "_name = X\n").unwrap_err();
        assert!(matches!(bad_tag, CatalogError::Tag { .. }));
    }
}
