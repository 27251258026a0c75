//! The one template renderer: `{{name}}` inserts a value HTML-escaped, `{{{name}}}` inserts it
//! raw (only for markup the module builds itself), `{{t:key}}` inserts the page language's
//! string for `key` (from `templates/i18n/`), escaped, with its own placeholders filled in. Templates are parsed once, when the
//! configuration is loaded, so a typo in a placeholder fails `nginx -t` instead of a request.

use thiserror::Error;

use super::i18n::{key_index, Language};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unclosed placeholder at byte {0}")]
    Unclosed(usize),
    #[error("unknown placeholder \"{0}\"")]
    Unknown(String),
    #[error("unknown text \"{0}\" (the keys are those of templates/i18n/en.txt)")]
    UnknownText(String),
    #[error("section \"{0}\" is not closed with {{{{/{0}}}}}")]
    UnclosedSection(String),
    #[error("{{{{/{0}}}}} closes no open section")]
    StraySectionEnd(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Escaped(usize),
    Raw(usize),
    /// A string of the page's language, by key index.
    Translated(usize),
    /// `{{#name}}…{{/name}}`: shown only when the value `name` is not empty.
    Section(usize, Vec<Segment>),
}

/// A parsed template. Placeholders are resolved to indexes into the list of names the page
/// kind allows, so rendering is a single pass with no lookups by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    size_hint: usize,
}

impl Template {
    /// Parses `source`, accepting only the placeholders listed in `names`.
    pub fn parse(source: &str, names: &[&str]) -> Result<Template, TemplateError> {
        let index_of = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| TemplateError::Unknown(name.to_string()))
        };
        // Open sections: (value index, name, segments before the section).
        let mut open_sections: Vec<(usize, String, Vec<Segment>)> = Vec::new();
        let mut segments = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_string()));
            }
            let raw = rest[start..].starts_with("{{{");
            let (open, close) = if raw { ("{{{", "}}}") } else { ("{{", "}}") };
            let body = &rest[start + open.len()..];
            let end = body
                .find(close)
                .ok_or(TemplateError::Unclosed(offset + start))?;
            let name = body[..end].trim();
            let consumed = start + open.len() + end + close.len();
            offset += consumed;
            rest = &rest[consumed..];
            if raw {
                segments.push(Segment::Raw(index_of(name)?));
            } else if let Some(key) = name.strip_prefix("t:") {
                let key = key.trim();
                let index =
                    key_index(key).ok_or_else(|| TemplateError::UnknownText(key.to_string()))?;
                segments.push(Segment::Translated(index));
            } else if let Some(section) = name.strip_prefix('#') {
                let section = section.trim();
                let index = index_of(section)?;
                open_sections.push((index, section.to_string(), std::mem::take(&mut segments)));
            } else if let Some(section) = name.strip_prefix('/') {
                let section = section.trim();
                match open_sections.pop() {
                    Some((index, open_name, before)) if open_name == section => {
                        let inner = std::mem::replace(&mut segments, before);
                        segments.push(Segment::Section(index, inner));
                    }
                    _ => return Err(TemplateError::StraySectionEnd(section.to_string())),
                }
            } else {
                segments.push(Segment::Escaped(index_of(name)?));
            }
        }
        if let Some((_, name, _)) = open_sections.pop() {
            return Err(TemplateError::UnclosedSection(name));
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        let size_hint = size_hint(&segments);
        Ok(Template {
            segments,
            size_hint,
        })
    }

    /// Renders with `values[i]` standing for the i-th name given to [`Template::parse`], in
    /// `language`; `wrap` gives the markup around a value inside a translated string.
    pub fn render(
        &self,
        values: &[&str],
        language: &Language,
        wrap: impl Fn(usize) -> (&'static str, &'static str) + Copy,
    ) -> String {
        let mut out = String::with_capacity(self.size_hint);
        render_into(&mut out, &self.segments, values, language, wrap);
        out
    }
}

fn size_hint(segments: &[Segment]) -> usize {
    segments
        .iter()
        .map(|s| match s {
            Segment::Text(t) => t.len(),
            Segment::Translated(_) => 96,
            Segment::Section(_, inner) => size_hint(inner),
            _ => 32,
        })
        .sum()
}

fn render_into(
    out: &mut String,
    segments: &[Segment],
    values: &[&str],
    language: &Language,
    wrap: impl Fn(usize) -> (&'static str, &'static str) + Copy,
) {
    let value = |i: usize| values.get(i).copied().unwrap_or("");
    for segment in segments {
        match segment {
            Segment::Text(text) => out.push_str(text),
            Segment::Escaped(i) => escape_into(out, value(*i)),
            Segment::Raw(i) => out.push_str(value(*i)),
            Segment::Translated(key) => language.render_into(out, *key, values, wrap),
            Segment::Section(i, inner) => {
                if !value(*i).is_empty() {
                    render_into(out, inner, values, language, wrap);
                }
            }
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    // Runs of plain text are copied whole; the five characters are all ASCII, so the
    // positions found are character boundaries.
    let mut rest = text;
    while let Some(at) = rest
        .bytes()
        .position(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        out.push_str(rest.get(..at).unwrap_or_default());
        out.push_str(match rest.as_bytes().get(at) {
            Some(b'&') => "&amp;",
            Some(b'<') => "&lt;",
            Some(b'>') => "&gt;",
            Some(b'"') => "&quot;",
            _ => "&#39;",
        });
        rest = rest.get(at + 1..).unwrap_or_default();
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::super::i18n::Languages;
    use super::*;

    fn english() -> Language {
        Languages::builtin(crate::pages::PLACEHOLDERS)
            .unwrap()
            .get(0)
            .clone()
    }

    fn plain(t: &Template, values: &[&str]) -> String {
        t.render(values, &english(), |_| ("", ""))
    }

    #[test]
    fn translated_strings_fill_their_placeholders_escaped() {
        // Placeholders in translated strings index the page's names, as in every page.
        let names = crate::pages::PLACEHOLDERS;
        let t = Template::parse(
            "<h1>{{t:block.title}}</h1><p>{{ t:block.intro }}</p>",
            names,
        )
        .unwrap();
        let mut values = vec![""; names.len()];
        values[names.iter().position(|n| *n == "path").unwrap()] = "/a<b";
        let html = t.render(&values, &english(), |_| ("<code>", "</code>"));
        assert!(
            html.starts_with(
                "<h1>Access denied</h1><p>This site does not serve <code>/a&lt;b</code> to"
            ),
            "{html}"
        );
        assert_eq!(
            Template::parse("{{t:no.such.key}}", &[]),
            Err(TemplateError::UnknownText("no.such.key".into()))
        );
        assert_eq!(
            Template::parse("{{{t:block.title}}}", &[]),
            Err(TemplateError::Unknown("t:block.title".into()))
        );
    }

    #[test]
    fn sections_show_only_with_a_value() {
        let t = Template::parse("a{{#x}}[{{x}}{{#y}}+{{/y}}]{{/x}}b", &["x", "y"]).unwrap();
        assert_eq!(plain(&t, &["", "1"]), "ab");
        assert_eq!(plain(&t, &["<", ""]), "a[&lt;]b");
        assert_eq!(plain(&t, &["1", "1"]), "a[1+]b");
        assert_eq!(
            Template::parse("{{#x}}", &["x"]),
            Err(TemplateError::UnclosedSection("x".into()))
        );
        assert_eq!(
            Template::parse("{{#x}}{{/y}}", &["x", "y"]),
            Err(TemplateError::StraySectionEnd("y".into()))
        );
        assert_eq!(
            Template::parse("{{/x}}", &["x"]),
            Err(TemplateError::StraySectionEnd("x".into()))
        );
        assert_eq!(
            Template::parse("{{#z}}{{/z}}", &["x"]),
            Err(TemplateError::Unknown("z".into()))
        );
    }

    #[test]
    fn escapes_by_default_and_raw_on_request() {
        let t = Template::parse("<p>{{ who }}</p>{{{markup}}}", &["who", "markup"]).unwrap();
        let html = plain(&t, &["<script>alert('x')</script> & \"q\"", "<b>ok</b>"]);
        assert_eq!(
            html,
            "<p>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;</p><b>ok</b>"
        );
    }

    #[test]
    fn unknown_and_unclosed_placeholders_fail_at_parse_time() {
        assert_eq!(
            Template::parse("{{nope}}", &["yes"]),
            Err(TemplateError::Unknown("nope".into()))
        );
        assert_eq!(
            Template::parse("ab{{yes", &["yes"]),
            Err(TemplateError::Unclosed(2))
        );
    }

    #[test]
    fn text_without_placeholders_is_kept_verbatim() {
        let t = Template::parse("a } b { c", &[]).unwrap();
        assert_eq!(plain(&t, &[]), "a } b { c");
    }

    #[test]
    fn repeated_and_unicode_values() {
        let t = Template::parse("{{a}}-{{a}}", &["a"]).unwrap();
        assert_eq!(plain(&t, &["é<"]), "é&lt;-é&lt;");
    }
}
