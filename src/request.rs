//! Pieces of an HTTP request the module reads, parsed without nginx: cookies and URL arguments.

/// The values of every `name=` cookie in one `Cookie` header value.
pub fn cookie_values<'a>(header: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    header.split(|&b| b == b';').filter_map(move |pair| {
        let pair = pair.trim_ascii();
        let (key, value) = split_once(pair, b'=')?;
        (key.trim_ascii() == name).then(|| value.trim_ascii())
    })
}

/// The values of every `name=` argument in a query string (without the `?`), undecoded:
/// the tokens we look for never need decoding.
pub fn argument_values<'a>(args: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    args.split(|&b| b == b'&')
        .filter_map(move |pair| split_once(pair, b'=').filter(|(key, _)| *key == name).map(|(_, v)| v))
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
    }

    #[test]
    fn arguments() {
        let found: Vec<&[u8]> = argument_values(b"x=1&captchaify=T&captchaify&captchaify=U", b"captchaify").collect();
        assert_eq!(found, vec![&b"T"[..], b"U"]);
        assert_eq!(argument_values(b"", b"captchaify").count(), 0);
    }
}
