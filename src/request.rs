//! Pieces of an HTTP request the module reads, parsed without nginx: cookies and URL arguments.

/// The values of every `name=` cookie in one `Cookie` header value.
pub fn cookie_values<'a>(header: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    // The pairs' ends are found with SIMD (memchr); only a pair that starts with the name is
    // looked at further.
    let mut rest = Some(header);
    core::iter::from_fn(move || {
        let text = rest?;
        let end = memchr::memchr(b';', text);
        rest = end.and_then(|end| text.get(end + 1..));
        text.get(..end.unwrap_or(text.len()))
    })
    .filter_map(move |pair| {
        let value = pair
            .trim_ascii_start()
            .strip_prefix(name)?
            .trim_ascii_start()
            .strip_prefix(b"=")?;
        Some(value.trim_ascii())
    })
}

/// The values of every `name=` argument in a query string (without the `?`), undecoded:
/// the tokens we look for never need decoding.
pub fn argument_values<'a>(args: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    args.split(|&b| b == b'&').filter_map(move |pair| {
        split_once(pair, b'=')
            .filter(|(key, _)| *key == name)
            .map(|(_, v)| v)
    })
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// Where a request's pass candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOrigin {
    Cookie,
    Url,
}

/// The request's one pass candidate: the first cookie value that `looks_like` a pass, else
/// the first such URL argument (the location's policy decides whether one from the URL
/// counts). Only this one is ever checked, so a request stuffed with forged tokens costs one
/// check at most.
pub fn pass_candidate<'a>(
    cookies: impl IntoIterator<Item = &'a [u8]>,
    arguments: impl IntoIterator<Item = &'a [u8]>,
    looks_like: impl Fn(&[u8]) -> bool,
) -> Option<(&'a [u8], PassOrigin)> {
    if let Some(token) = cookies.into_iter().find(|token| looks_like(token)) {
        return Some((token, PassOrigin::Cookie));
    }
    arguments
        .into_iter()
        .find(|token| looks_like(token))
        .map(|token| (token, PassOrigin::Url))
}

/// The module's own paths: where it answers for itself, in any location of a server where
/// the module is used. One table; the access handler dispatches on [`OwnPath::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnPath {
    /// Where the captcha form posts its answer.
    Verify,
    /// The language chooser.
    Language,
    /// A hardness-3 captcha's clip as a download, once, while its challenge is open: for text
    /// browsers, which cannot save a `data:` URI as a file.
    Audio,
}

impl OwnPath {
    pub const ALL: [OwnPath; 3] = [OwnPath::Verify, OwnPath::Language, OwnPath::Audio];

    /// Every own path starts with this.
    pub const PREFIX: &'static str = "/.captchaify/";

    pub const fn path(self) -> &'static str {
        match self {
            OwnPath::Verify => "/.captchaify/verify",
            OwnPath::Language => "/.captchaify/language",
            OwnPath::Audio => "/.captchaify/audio",
        }
    }

    /// The own path a request's path (without its arguments) is, if any: exact bytes only.
    pub fn find(path: &[u8]) -> Option<OwnPath> {
        if !path.starts_with(Self::PREFIX.as_bytes()) {
            return None;
        }
        Self::ALL
            .into_iter()
            .find(|own| own.path().as_bytes() == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        let header = b"a=1; captchaify=v1.x.y ;b=2;captchaify=second; captchaify_x=no; =; junk";
        let found: Vec<&[u8]> = cookie_values(header, b"captchaify").collect();
        assert_eq!(found, vec![&b"v1.x.y"[..], b"second"]);
        assert_eq!(cookie_values(b"", b"captchaify").count(), 0);
        // Only a pair's whole key is the name; its value runs to the next `;`, `=` and all.
        let header = b"x=captchaify=1; xcaptchaify=2;captchaify =a=b ; \tcaptchaify=\t; captchaify";
        let found: Vec<&[u8]> = cookie_values(header, b"captchaify").collect();
        assert_eq!(found, vec![&b"a=b"[..], b""]);
    }

    #[test]
    fn arguments() {
        let found: Vec<&[u8]> =
            argument_values(b"x=1&captchaify=T&captchaify&captchaify=U", b"captchaify").collect();
        assert_eq!(found, vec![&b"T"[..], b"U"]);
        assert_eq!(argument_values(b"", b"captchaify").count(), 0);
    }

    #[test]
    fn one_pass_candidate_cookies_first() {
        let pass = |t: &[u8]| t.starts_with(b"v1.");
        let none: [&[u8]; 0] = [];
        let cookies: [&[u8]; 3] = [b"junk", b"v1.cookie", b"v1.later"];
        let args: [&[u8]; 2] = [b"v1.url", b"v1.url2"];
        assert_eq!(
            pass_candidate(cookies, args, pass),
            Some((&b"v1.cookie"[..], PassOrigin::Cookie))
        );
        let cookies: [&[u8]; 1] = [b"junk"];
        assert_eq!(
            pass_candidate(cookies, args, pass),
            Some((&b"v1.url"[..], PassOrigin::Url))
        );
        let args: [&[u8]; 1] = [b"nope"];
        assert_eq!(pass_candidate(none, args, pass), None);
        assert_eq!(pass_candidate(none, none, pass), None);
    }

    #[test]
    fn own_paths_are_found_exactly() {
        for own in OwnPath::ALL {
            assert!(own.path().starts_with(OwnPath::PREFIX));
            assert_eq!(OwnPath::find(own.path().as_bytes()), Some(own));
            let longer = format!("{}/", own.path());
            assert_eq!(OwnPath::find(longer.as_bytes()), None);
            let upper = own.path().to_uppercase();
            assert_eq!(OwnPath::find(upper.as_bytes()), None);
        }
        for other in [
            "/",
            "/.captchaify/",
            "/.captchaify/verif",
            "/x/.captchaify/verify",
            "",
        ] {
            assert_eq!(OwnPath::find(other.as_bytes()), None, "{other:?}");
        }
        let paths: std::collections::HashSet<_> = OwnPath::ALL.map(OwnPath::path).into();
        assert_eq!(paths.len(), OwnPath::ALL.len());
    }
}
