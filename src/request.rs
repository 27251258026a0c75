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
}
