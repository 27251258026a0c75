//! The one template renderer: `{{name}}` inserts a value HTML-escaped, `{{{name}}}` inserts it
//! raw (only for markup the module builds itself). Templates are parsed once, when the
//! configuration is loaded, so a typo in a placeholder fails `nginx -t` instead of a request.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("unclosed placeholder at byte {0}")]
    Unclosed(usize),
    #[error("unknown placeholder \"{0}\"")]
    Unknown(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Escaped(usize),
    Raw(usize),
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
            let end = body.find(close).ok_or(TemplateError::Unclosed(offset + start))?;
            let name = body[..end].trim();
            let index = names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| TemplateError::Unknown(name.to_string()))?;
            segments.push(if raw { Segment::Raw(index) } else { Segment::Escaped(index) });
            let consumed = start + open.len() + end + close.len();
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        let size_hint = segments
            .iter()
            .map(|s| if let Segment::Text(t) = s { t.len() } else { 32 })
            .sum();
        Ok(Template { segments, size_hint })
    }

    /// Renders with `values[i]` standing for the i-th name given to [`Template::parse`].
    pub fn render(&self, values: &[&str]) -> String {
        let mut out = String::with_capacity(self.size_hint);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Escaped(i) => escape_into(&mut out, values.get(*i).copied().unwrap_or("")),
                Segment::Raw(i) => out.push_str(values.get(*i).copied().unwrap_or("")),
            }
        }
        out
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_by_default_and_raw_on_request() {
        let t = Template::parse("<p>{{ who }}</p>{{{markup}}}", &["who", "markup"]).unwrap();
        let html = t.render(&["<script>alert('x')</script> & \"q\"", "<b>ok</b>"]);
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
        assert_eq!(Template::parse("ab{{yes", &["yes"]), Err(TemplateError::Unclosed(2)));
    }

    #[test]
    fn text_without_placeholders_is_kept_verbatim() {
        let t = Template::parse("a } b { c", &[]).unwrap();
        assert_eq!(t.render(&[]), "a } b { c");
    }

    #[test]
    fn repeated_and_unicode_values() {
        let t = Template::parse("{{a}}-{{a}}", &["a"]).unwrap();
        assert_eq!(t.render(&["é<"]), "é&lt;-é&lt;");
    }
}
