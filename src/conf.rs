//! Directive values as typed configuration, free of nginx types. The glue in
//! `nginx::directives` feeds arguments here and logs the error with file and line.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfError {
    #[error("invalid value \"{0}\", expected on or off")]
    Flag(String),
    #[error("invalid parameter \"{0}\", expected zone=NAME:SIZE")]
    ZoneSyntax(String),
    #[error("invalid zone name \"{0}\": use letters, digits, '_' and '-'")]
    ZoneName(String),
    #[error("invalid zone size \"{0}\", expected e.g. 512k or 10m")]
    ZoneSizeSyntax(String),
    #[error("zone \"{name}\" is too small: {size} bytes, at least {min} are needed")]
    ZoneTooSmall { name: String, size: usize, min: usize },
}

/// `on` or `off`, as nginx's own flag directives spell them.
pub fn parse_flag(value: &str) -> Result<bool, ConfError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        other => Err(ConfError::Flag(other.to_string())),
    }
}

/// The shared-memory zone that holds the module's state (`captchaify_zone zone=NAME:SIZE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSpec {
    pub name: String,
    pub size: usize,
}

impl ZoneSpec {
    pub const DEFAULT_NAME: &'static str = "captchaify";
    pub const DEFAULT_SIZE: usize = 10 * 1024 * 1024;
    /// nginx's slab allocator needs eight pages for itself; we want room beyond that.
    pub const MIN_SIZE: usize = 64 * 1024;

    pub fn default_zone() -> ZoneSpec {
        ZoneSpec { name: Self::DEFAULT_NAME.to_string(), size: Self::DEFAULT_SIZE }
    }

    pub fn parse(arg: &str) -> Result<ZoneSpec, ConfError> {
        let spec = arg.strip_prefix("zone=").ok_or_else(|| ConfError::ZoneSyntax(arg.into()))?;
        let (name, size) = spec.rsplit_once(':').ok_or_else(|| ConfError::ZoneSyntax(arg.into()))?;
        let valid_name = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(ConfError::ZoneName(name.to_string()));
        }
        let size = parse_size(size)?;
        if size < Self::MIN_SIZE {
            return Err(ConfError::ZoneTooSmall { name: name.into(), size, min: Self::MIN_SIZE });
        }
        Ok(ZoneSpec { name: name.to_string(), size })
    }
}

/// A size as nginx writes it: bytes, or a number with `k` or `m` (either case).
pub fn parse_size(value: &str) -> Result<usize, ConfError> {
    let error = || ConfError::ZoneSizeSyntax(value.to_string());
    let (digits, unit) = match value.as_bytes().last() {
        Some(b'k' | b'K') => (&value[..value.len() - 1], 1024),
        Some(b'm' | b'M') => (&value[..value.len() - 1], 1024 * 1024),
        _ => (value, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    digits.parse::<usize>().ok().and_then(|n| n.checked_mul(unit)).ok_or_else(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert_eq!(parse_flag("on"), Ok(true));
        assert_eq!(parse_flag("off"), Ok(false));
        assert_eq!(parse_flag("yes"), Err(ConfError::Flag("yes".into())));
    }

    #[test]
    fn zones() {
        assert_eq!(
            ZoneSpec::parse("zone=shield:10m"),
            Ok(ZoneSpec { name: "shield".into(), size: 10 << 20 })
        );
        assert_eq!(ZoneSpec::parse("zone=a-b_1:512k").map(|z| z.size), Ok(512 << 10));
        assert_eq!(ZoneSpec::parse("shield:10m"), Err(ConfError::ZoneSyntax("shield:10m".into())));
        assert_eq!(ZoneSpec::parse("zone=:10m"), Err(ConfError::ZoneName("".into())));
        assert_eq!(ZoneSpec::parse("zone=a b:10m"), Err(ConfError::ZoneName("a b".into())));
        assert_eq!(ZoneSpec::parse("zone=a:ten"), Err(ConfError::ZoneSizeSyntax("ten".into())));
        assert_eq!(
            ZoneSpec::parse("zone=a:1k"),
            Err(ConfError::ZoneTooSmall { name: "a".into(), size: 1024, min: ZoneSpec::MIN_SIZE })
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        for bad in ["", "k", "-1m", "1g", "1.5m", "99999999999999999999999m"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
