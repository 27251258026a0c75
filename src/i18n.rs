//! Languages: the catalogs of visible strings (one data file per language in
//! `templates/i18n/`), and choosing a page's language from `Accept-Language`.
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
    entries: Vec<(String, String)>,
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
        let mut entries: Vec<(String, String)> = Vec::new();
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
                entries.iter().any(|(k, _)| k == key) || (key == "_name" && name.is_some());
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
                _ => entries.push((key.to_owned(), value.to_owned())),
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
    pub fn check_against(
        &self,
        reference: &Catalog,
        file: &str,
        text: &str,
    ) -> Result<(), CatalogError> {
        if let Some((key, _)) = reference
            .entries
            .iter()
            .find(|(k, _)| self.get(k).is_none())
        {
            return Err(CatalogError::Missing {
                file: file.into(),
                key: key.clone(),
            });
        }
        if let Some((key, _)) = self
            .entries
            .iter()
            .find(|(k, _)| reference.get(k).is_none())
        {
            let line = text
                .lines()
                .position(|l| l.split_once('=').is_some_and(|(k, _)| k.trim() == key))
                .map_or(0, |i| i + 1);
            return Err(CatalogError::Unknown {
                file: file.into(),
                line,
                key: key.clone(),
            });
        }
        Ok(())
    }

    /// The string for `key`, if the catalog has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The keys, in file order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
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
        ar.check_against(&en, "ar.txt", ar_text).unwrap();

        let partial = "_name = Deutsch\ncaptcha.title = Überprüfung nötig\n";
        let de = Catalog::parse("de", "de.txt", partial).unwrap();
        assert_eq!(
            de.check_against(&en, "de.txt", partial),
            Err(CatalogError::Missing {
                file: "de.txt".into(),
                key: "block.title".into()
            })
        );
        let extra = "_name = Deutsch\ncaptcha.title = A\nblock.title = B\n\ncaptcha.titel = C\n";
        let de = Catalog::parse("de", "de.txt", extra).unwrap();
        assert_eq!(
            de.check_against(&en, "de.txt", extra),
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
