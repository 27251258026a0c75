//! CrowdSec both ways: decisions streamed from a Local API into the module's shared memory
//! (`stream`, `store`), and what the module learns pushed back as alerts (`alerts`), over the
//! Local API's HTTP (`client`). Pure parts; the nginx side is `nginx::crowdsec` and its
//! threads `nginx::background::crowdsec`.

pub mod alerts;
pub mod client;
pub mod store;
pub mod stream;

use std::path::{Path, PathBuf};

use crate::policy::Remediation;
use stream::Remedy;

use thiserror::Error;

use crate::conf::{parse_duration_in, ZoneSpec};

/// What a decision type the module does not know leads to (`fallback=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Pass,
    Captcha,
    Block,
}

/// `captchaify_crowdsec_lapi URL key_file=PATH [interval=10s] [timeout=5s]
/// [fallback=pass|captcha|block] [zone_size=16m]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapiSpec {
    /// The Local API's base URL, e.g. `http://127.0.0.1:8080/`.
    pub url: String,
    pub key_file: PathBuf,
    pub interval_secs: u64,
    pub timeout_secs: u64,
    /// As CrowdSec's own bouncers: an unknown type is a ban unless told otherwise.
    pub fallback: Fallback,
    /// The decisions' own shared zone (76 bytes a decision: 16m holds 197,468).
    pub zone_size: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("\"{0}\" is not an http:// or https:// URL with a host (and a port from 1 to 65535)")]
    Url(String),
    #[error("invalid parameter \"{0}\"")]
    Parameter(String),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("invalid fallback \"{0}\", expected pass, captcha or block")]
    Fallback(String),
    #[error(transparent)]
    Conf(#[from] crate::conf::ConfError),
    #[error("cannot use \"{0}\": {1}")]
    Credential(String, String),
}

impl LapiSpec {
    pub fn parse(args: &[&str], resolve: impl Fn(&str) -> PathBuf) -> Result<LapiSpec, SpecError> {
        let (url, rest) = args.split_first().ok_or(SpecError::Missing("a URL"))?;
        let url = base_url(url).ok_or_else(|| SpecError::Url(url.to_string()))?;
        let mut key_file = None;
        let mut spec = LapiSpec {
            url,
            key_file: PathBuf::new(),
            interval_secs: 10,
            timeout_secs: 5,
            fallback: Fallback::Block,
            zone_size: 16 << 20,
        };
        for arg in rest {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| SpecError::Parameter(arg.to_string()))?;
            match key {
                "key_file" if !value.is_empty() => key_file = Some(resolve(value)),
                "interval" => spec.interval_secs = parse_duration_in(value, 1, 3600)?,
                "timeout" => spec.timeout_secs = parse_duration_in(value, 1, 120)?,
                "fallback" => {
                    spec.fallback = match value {
                        "pass" => Fallback::Pass,
                        "captcha" => Fallback::Captcha,
                        "block" => Fallback::Block,
                        other => return Err(SpecError::Fallback(other.to_string())),
                    }
                }
                "zone_size" => {
                    spec.zone_size = ZoneSpec::parse(&format!("zone=crowdsec:{value}"))?.size;
                }
                _ => return Err(SpecError::Parameter(arg.to_string())),
            }
        }
        spec.key_file = key_file.ok_or(SpecError::Missing("key_file=PATH"))?;
        Ok(spec)
    }
}

/// An `http://` or `https://` URL with a host and, if any, a port from 1 to 65535, as a base
/// ending in `/` (paths like `v1/decisions/stream` are appended to it).
fn base_url(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.strip_prefix('[') {
        // An IPv6 literal: [::1] or [::1]:8080.
        Some(inner) => {
            let (address, after) = inner.split_once(']')?;
            address.parse::<std::net::Ipv6Addr>().ok()?;
            after
                .strip_prefix(':')
                .map_or(after.is_empty().then_some(()), valid_port)?;
            address
        }
        None => {
            let (host, port) = authority
                .split_once(':')
                .map_or((authority, None), |(h, p)| (h, Some(p)));
            if let Some(port) = port {
                valid_port(port)?;
            }
            host
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    let path_ok = path
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#'));
    (host_ok && path_ok)
        .then(|| url[..url.len() - path.len()].to_string() + path.trim_end_matches('/') + "/")
}

fn valid_port(port: &str) -> Option<()> {
    port.parse::<u16>().ok().filter(|&p| p > 0).map(|_| ())
}

impl Fallback {
    /// What a decision of this kind asks of the module.
    pub fn remediation(self, remedy: Remedy) -> Option<Remediation> {
        match (remedy, self) {
            (Remedy::Ban, _) | (Remedy::Other, Fallback::Block) => Some(Remediation::Ban),
            (Remedy::Captcha, _) | (Remedy::Other, Fallback::Captcha) => Some(Remediation::Captcha),
            (Remedy::Other, Fallback::Pass) => None,
        }
    }
}

/// `captchaify_crowdsec_machine LOGIN password_file=PATH [failures=N] [flood=N]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    pub login: String,
    pub password_file: PathBuf,
    /// Wrong answers that get a client reported; `None`: `captchaify_max_failures`' count.
    pub failures: Option<u32>,
    /// Requests refused by the rate limit within a minute that get a client reported.
    pub flood: u32,
}

impl MachineSpec {
    pub const DEFAULT_FLOOD: u32 = 30;

    pub fn parse(
        args: &[&str],
        resolve: impl Fn(&str) -> PathBuf,
    ) -> Result<MachineSpec, SpecError> {
        let (login, rest) = args
            .split_first()
            .ok_or(SpecError::Missing("a machine login"))?;
        if login.is_empty() || login.contains('=') || login.len() > 128 {
            return Err(SpecError::Parameter(login.to_string()));
        }
        let mut spec = MachineSpec {
            login: login.to_string(),
            password_file: PathBuf::new(),
            failures: None,
            flood: Self::DEFAULT_FLOOD,
        };
        let mut password_file = None;
        let count = |value: &str| {
            value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
        };
        for arg in rest {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| SpecError::Parameter(arg.to_string()))?;
            match key {
                "password_file" if !value.is_empty() => password_file = Some(resolve(value)),
                "failures" => {
                    spec.failures =
                        Some(count(value).ok_or_else(|| SpecError::Parameter(arg.to_string()))?)
                }
                "flood" => {
                    spec.flood =
                        count(value).ok_or_else(|| SpecError::Parameter(arg.to_string()))?
                }
                _ => return Err(SpecError::Parameter(arg.to_string())),
            }
        }
        spec.password_file = password_file.ok_or(SpecError::Missing("password_file=PATH"))?;
        Ok(spec)
    }
}

/// A bouncer key or machine password from its file: one line, surrounding whitespace trimmed.
pub fn read_credential(path: &Path) -> Result<String, SpecError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SpecError::Credential(shown.clone(), e.to_string()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(SpecError::Credential(shown, "the file is empty".into()));
    }
    if text.len() > 1024 || text.chars().any(|c| c.is_control()) {
        return Err(SpecError::Credential(
            shown,
            "expected a single line of at most 1024 bytes".into(),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LapiSpec, SpecError> {
        LapiSpec::parse(args, |p| PathBuf::from("/etc/nginx").join(p))
    }

    #[test]
    fn lapi_specs() {
        let spec = parse(&["http://127.0.0.1:8080", "key_file=crowdsec.key"]).unwrap();
        assert_eq!(spec.url, "http://127.0.0.1:8080/");
        assert_eq!(spec.key_file, PathBuf::from("/etc/nginx/crowdsec.key"));
        assert_eq!(
            (spec.interval_secs, spec.timeout_secs, spec.fallback),
            (10, 5, Fallback::Block)
        );
        let spec = parse(&[
            "https://lapi.example/",
            "interval=2s",
            "key_file=/k",
            "fallback=captcha",
            "timeout=1s",
            "zone_size=32m",
        ])
        .unwrap();
        assert_eq!(
            (
                spec.interval_secs,
                spec.timeout_secs,
                spec.fallback,
                spec.zone_size
            ),
            (2, 1, Fallback::Captcha, 32 << 20)
        );
        assert_eq!(
            parse(&["http://x"]),
            Err(SpecError::Missing("key_file=PATH"))
        );
        assert!(matches!(
            parse(&["ftp://x", "key_file=k"]),
            Err(SpecError::Url(_))
        ));
        assert!(matches!(
            parse(&["http://x", "key_file=k", "fallback=ban"]),
            Err(SpecError::Fallback(_))
        ));
        assert!(matches!(
            parse(&["http://x", "key_file=k", "interval=0s"]),
            Err(SpecError::Conf(_))
        ));
        assert!(matches!(
            parse(&["http://x", "key_file=k", "bogus"]),
            Err(SpecError::Parameter(_))
        ));
        assert!(matches!(
            parse(&["http://x", "key_file=k", "zone_size=1k"]),
            Err(SpecError::Conf(_))
        ));
        assert_eq!(parse(&[]), Err(SpecError::Missing("a URL")));
        for (url, base) in [
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("https://lapi.example", "https://lapi.example/"),
            ("http://[::1]:8080", "http://[::1]:8080/"),
            ("http://[::1]", "http://[::1]/"),
            (
                "http://proxy.example/crowdsec//",
                "http://proxy.example/crowdsec/",
            ),
        ] {
            assert_eq!(base_url(url).as_deref(), Some(base), "{url}");
        }
        for bad in [
            "http://",
            "https://",
            "http:///v1",
            "http://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://h:",
            "http://h:x",
            "http://[::1",
            "http://[zz]:1",
            "http://a b",
            "http://h/?q",
            "ftp://h",
            "h:8080",
        ] {
            assert_eq!(base_url(bad), None, "{bad}");
            assert!(
                matches!(parse(&[bad, "key_file=k"]), Err(SpecError::Url(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn machine_specs_and_credentials() {
        let resolve = |p: &str| PathBuf::from("/etc/nginx").join(p);
        let spec = MachineSpec::parse(&["web-1", "password_file=cs.pw"], resolve).unwrap();
        assert_eq!(spec.login, "web-1");
        assert_eq!(spec.password_file, PathBuf::from("/etc/nginx/cs.pw"));
        assert_eq!(
            (spec.failures, spec.flood),
            (None, MachineSpec::DEFAULT_FLOOD)
        );
        let spec = MachineSpec::parse(
            &["m", "flood=10", "failures=5", "password_file=/p"],
            resolve,
        )
        .unwrap();
        assert_eq!((spec.failures, spec.flood), (Some(5), 10));
        assert_eq!(
            MachineSpec::parse(&["m"], resolve),
            Err(SpecError::Missing("password_file=PATH"))
        );
        assert_eq!(
            MachineSpec::parse(&[], resolve),
            Err(SpecError::Missing("a machine login"))
        );
        for bad in [
            &["m", "password_file=p", "flood=0"][..],
            &["m", "password_file=p", "failures=x"],
            &["password_file=p"],
            &["m", "p"],
        ] {
            assert!(
                matches!(
                    MachineSpec::parse(bad, resolve),
                    Err(SpecError::Parameter(_))
                ),
                "{bad:?}"
            );
        }
        let dir = std::env::temp_dir().join(format!("captchaify-cred-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, "  abc123\n").unwrap();
        assert_eq!(read_credential(&file).unwrap(), "abc123");
        std::fs::write(&file, "\n \n").unwrap();
        assert!(matches!(
            read_credential(&file),
            Err(SpecError::Credential(_, _))
        ));
        std::fs::write(&file, "two\nlines").unwrap();
        assert!(matches!(
            read_credential(&file),
            Err(SpecError::Credential(_, _))
        ));
        assert!(matches!(
            read_credential(&dir.join("missing")),
            Err(SpecError::Credential(_, _))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fallbacks() {
        assert_eq!(
            Fallback::Pass.remediation(Remedy::Ban),
            Some(Remediation::Ban)
        );
        assert_eq!(
            Fallback::Pass.remediation(Remedy::Captcha),
            Some(Remediation::Captcha)
        );
        assert_eq!(Fallback::Pass.remediation(Remedy::Other), None);
        assert_eq!(
            Fallback::Captcha.remediation(Remedy::Other),
            Some(Remediation::Captcha)
        );
        assert_eq!(
            Fallback::Block.remediation(Remedy::Other),
            Some(Remediation::Ban)
        );
    }
}
