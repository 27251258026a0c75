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
    ZoneTooSmall {
        name: String,
        size: usize,
        min: usize,
    },
    #[error("invalid time \"{0}\", expected e.g. 90s, 30m, 1h or 7d")]
    Duration(String),
    #[error("time \"{value}\" is out of range ({min} to {max} seconds)")]
    DurationRange { value: String, min: u64, max: u64 },
    #[error("invalid number \"{0}\", expected 1 to {1}")]
    Count(String, u32),
    #[error("cannot read secret file \"{path}\": {error}")]
    SecretRead { path: String, error: String },
    #[error("secret file \"{path}\" holds {len} bytes, at least {min} random bytes are needed")]
    SecretTooShort {
        path: String,
        len: usize,
        min: usize,
    },
    #[error(transparent)]
    Rate(#[from] crate::state::rate::InvalidRate),
    #[error("invalid parameter \"{0}\", expected cooldown=TIME")]
    Parameter(String),
    #[error("invalid parameter \"{0}\", expected network=N or network=off")]
    FailuresParameter(String),
    #[error("invalid status \"{0}\", expected a code from 400 to 599")]
    Status(String),
    #[error("{0}")]
    Feed(String),
}

/// A rate or `off` (`captchaify_rate_limit`).
pub fn parse_rate_or_off(value: &str) -> Result<Option<crate::state::rate::Rate>, ConfError> {
    if value == "off" {
        return Ok(None);
    }
    Ok(Some(value.parse()?))
}

/// `captchaify_max_rate_limit RATE|off [cooldown=TIME]`: the all-clients limit of a location
/// and how long it must stay under it to leave under-attack mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxRateLimit {
    pub rate: Option<crate::state::rate::Rate>,
    pub cooldown_ms: u64,
}

impl Default for MaxRateLimit {
    fn default() -> Self {
        MaxRateLimit {
            rate: Some(crate::state::rate::Rate::per_minute(1200)),
            cooldown_ms: 60_000,
        }
    }
}

impl MaxRateLimit {
    pub fn parse(args: &[&str]) -> Result<MaxRateLimit, ConfError> {
        let mut limit = MaxRateLimit::default();
        let [rate, rest @ ..] = args else {
            return Err(ConfError::Parameter(String::new()));
        };
        limit.rate = parse_rate_or_off(rate)?;
        for arg in rest {
            let seconds = arg
                .strip_prefix("cooldown=")
                .ok_or_else(|| ConfError::Parameter(arg.to_string()))?;
            limit.cooldown_ms = parse_duration_in(seconds, 1, 86400)? * 1000;
        }
        Ok(limit)
    }
}

impl crate::state::records::FailureLimit {
    /// `captchaify_max_failures number [window] [network=number|off]`: the network budget is
    /// ten times the client's unless given.
    pub fn parse(args: &[&str]) -> Result<Self, ConfError> {
        use crate::state::records::FailureLimit;
        let [max, rest @ ..] = args else {
            return Err(ConfError::Count(String::new(), 1000));
        };
        let max = parse_count(max, 1000)?;
        let mut limit = FailureLimit {
            max,
            network_max: Some(max.saturating_mul(FailureLimit::NETWORK_FACTOR)),
            ..FailureLimit::default()
        };
        for (n, arg) in rest.iter().enumerate() {
            match arg.strip_prefix("network=") {
                Some("off") => limit.network_max = None,
                Some(count) => limit.network_max = Some(parse_count(count, 1_000_000)?),
                None if n == 0 => limit.window_ms = parse_duration_in(arg, 1, 7 * 86400)? * 1000,
                None => return Err(ConfError::FailuresParameter(arg.to_string())),
            }
        }
        Ok(limit)
    }
}

/// An HTTP status for refusals, as `limit_req_status` takes it: 400 to 599.
pub fn parse_status(value: &str) -> Result<u16, ConfError> {
    value
        .parse::<u16>()
        .ok()
        .filter(|code| (400..=599).contains(code) && value.len() == 3)
        .ok_or_else(|| ConfError::Status(value.to_string()))
}

/// `captchaify_ipv6_prefix`: 1 to 128 bits.
pub fn parse_ipv6_prefix(value: &str) -> Result<u8, ConfError> {
    parse_count(value, 128).map(|n| n as u8)
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
    pub const MIN_SIZE: usize = 128 * 1024;

    pub fn default_zone() -> ZoneSpec {
        ZoneSpec {
            name: Self::DEFAULT_NAME.to_string(),
            size: Self::DEFAULT_SIZE,
        }
    }

    pub fn parse(arg: &str) -> Result<ZoneSpec, ConfError> {
        let spec = arg
            .strip_prefix("zone=")
            .ok_or_else(|| ConfError::ZoneSyntax(arg.into()))?;
        let (name, size) = spec
            .rsplit_once(':')
            .ok_or_else(|| ConfError::ZoneSyntax(arg.into()))?;
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(ConfError::ZoneName(name.to_string()));
        }
        let size = parse_size(size)?;
        if size < Self::MIN_SIZE {
            return Err(ConfError::ZoneTooSmall {
                name: name.into(),
                size,
                min: Self::MIN_SIZE,
            });
        }
        Ok(ZoneSpec {
            name: name.to_string(),
            size,
        })
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
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(error)
}

/// A time as nginx writes it: a number of seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_duration(value: &str) -> Result<u64, ConfError> {
    let error = || ConfError::Duration(value.to_string());
    let (digits, unit) = match value.as_bytes().last() {
        Some(b's') => (&value[..value.len() - 1], 1),
        Some(b'm') => (&value[..value.len() - 1], 60),
        Some(b'h') => (&value[..value.len() - 1], 3600),
        Some(b'd') => (&value[..value.len() - 1], 86400),
        _ => (value, 1),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(error)
}

/// [`parse_duration`], within `min..=max` seconds.
pub fn parse_duration_in(value: &str, min: u64, max: u64) -> Result<u64, ConfError> {
    let seconds = parse_duration(value)?;
    if (min..=max).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(ConfError::DurationRange {
            value: value.to_string(),
            min,
            max,
        })
    }
}

/// A whole number from 1 to `max`.
pub fn parse_count(value: &str, max: u32) -> Result<u32, ConfError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n) && !value.starts_with('+'))
        .ok_or_else(|| ConfError::Count(value.to_string(), max))
}

/// The contents of a secret file: every byte is key material, except one trailing newline
/// (so `openssl rand -hex 32 > file` and `head -c 32 /dev/urandom > file` both work).
pub fn read_secret_file(path: &std::path::Path, min_len: usize) -> Result<Vec<u8>, ConfError> {
    let shown = path.display().to_string();
    let mut bytes = std::fs::read(path).map_err(|e| ConfError::SecretRead {
        path: shown.clone(),
        error: e.to_string(),
    })?;
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    if bytes.len() < min_len {
        return Err(ConfError::SecretTooShort {
            path: shown,
            len: bytes.len(),
            min: min_len,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_values() {
        use crate::state::rate::Rate;
        assert_eq!(parse_rate_or_off("off"), Ok(None));
        assert_eq!(parse_rate_or_off("120r/m"), Ok(Some(Rate::per_minute(120))));
        assert!(parse_rate_or_off("on").is_err());
        assert_eq!(
            MaxRateLimit::parse(&["600r/m"]),
            Ok(MaxRateLimit {
                rate: Some(Rate::per_minute(600)),
                cooldown_ms: 60_000
            })
        );
        assert_eq!(
            MaxRateLimit::parse(&["off", "cooldown=5s"]).map(|m| (m.rate, m.cooldown_ms)),
            Ok((None, 5000))
        );
        assert!(MaxRateLimit::parse(&["10r/s", "cooldown=0s"]).is_err());
        assert!(MaxRateLimit::parse(&["10r/s", "wait=5s"]).is_err());
        assert!(MaxRateLimit::parse(&[]).is_err());
        assert_eq!(parse_status("429"), Ok(429));
        assert_eq!(parse_status("418"), Ok(418));
        for bad in ["200", "600", "4290", "+429", "abc", "0429"] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ipv6_prefix("64"), Ok(64));
        assert!(parse_ipv6_prefix("0").is_err() && parse_ipv6_prefix("129").is_err());
    }

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
            Ok(ZoneSpec {
                name: "shield".into(),
                size: 10 << 20
            })
        );
        assert_eq!(
            ZoneSpec::parse("zone=a-b_1:512k").map(|z| z.size),
            Ok(512 << 10)
        );
        assert_eq!(
            ZoneSpec::parse("shield:10m"),
            Err(ConfError::ZoneSyntax("shield:10m".into()))
        );
        assert_eq!(
            ZoneSpec::parse("zone=:10m"),
            Err(ConfError::ZoneName("".into()))
        );
        assert_eq!(
            ZoneSpec::parse("zone=a b:10m"),
            Err(ConfError::ZoneName("a b".into()))
        );
        assert_eq!(
            ZoneSpec::parse("zone=a:ten"),
            Err(ConfError::ZoneSizeSyntax("ten".into()))
        );
        assert_eq!(
            ZoneSpec::parse("zone=a:1k"),
            Err(ConfError::ZoneTooSmall {
                name: "a".into(),
                size: 1024,
                min: ZoneSpec::MIN_SIZE
            })
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("7d"), Ok(604800));
        for bad in ["", "h", "1.5h", "-1h", "1w", "1 h", "9999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_duration_in("1h", 60, 86400), Ok(3600));
        assert!(matches!(
            parse_duration_in("10s", 60, 86400),
            Err(ConfError::DurationRange { .. })
        ));
    }

    #[test]
    fn counts() {
        assert_eq!(parse_count("3", 100), Ok(3));
        for bad in ["0", "101", "-1", "+3", "three", ""] {
            assert!(parse_count(bad, 100).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn secret_files() {
        let dir = std::env::temp_dir().join(format!("captchaify-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let hex = dir.join("hex");
        std::fs::write(&hex, format!("{}\n", "ab".repeat(32))).unwrap();
        assert_eq!(read_secret_file(&hex, 32).unwrap().len(), 64);
        let short = dir.join("short");
        std::fs::write(&short, "too short\n").unwrap();
        assert!(matches!(
            read_secret_file(&short, 32),
            Err(ConfError::SecretTooShort { len: 9, .. })
        ));
        assert!(matches!(
            read_secret_file(&dir.join("missing"), 32),
            Err(ConfError::SecretRead { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
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

    #[test]
    fn max_failures_take_a_window_and_a_network_budget() {
        use crate::state::records::FailureLimit;
        let parse = |args: &[&str]| FailureLimit::parse(args);
        let hours = |h: u64| h * 3600 * 1000;
        assert_eq!(
            parse(&["3"]),
            Ok(FailureLimit {
                max: 3,
                window_ms: hours(2),
                network_max: Some(30)
            })
        );
        assert_eq!(
            parse(&["5", "1h"]),
            Ok(FailureLimit {
                max: 5,
                window_ms: hours(1),
                network_max: Some(50)
            })
        );
        assert_eq!(
            parse(&["5", "network=7"]),
            Ok(FailureLimit {
                max: 5,
                window_ms: hours(2),
                network_max: Some(7)
            })
        );
        assert_eq!(
            parse(&["5", "1h", "network=off"]),
            Ok(FailureLimit {
                max: 5,
                window_ms: hours(1),
                network_max: None
            })
        );
        assert_eq!(parse(&[]), Err(ConfError::Count(String::new(), 1000)));
        assert_eq!(parse(&["0"]), Err(ConfError::Count("0".into(), 1000)));
        assert_eq!(
            parse(&["3", "network=x"]),
            Err(ConfError::Count("x".into(), 1_000_000))
        );
        assert_eq!(
            parse(&["3", "1h", "2h"]),
            Err(ConfError::FailuresParameter("2h".into()))
        );
        assert_eq!(
            parse(&["3", "soon"]),
            Err(ConfError::Duration("soon".into()))
        );
    }
}
