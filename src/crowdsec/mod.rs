//! CrowdSec both ways (issue 7, in progress): decisions streamed from a Local API into the
//! module, and what the module learns pushed back as alerts. Pure parts only so far; nothing
//! here is wired into nginx yet.

pub mod alerts;
pub mod stream;
pub mod store;

use std::path::PathBuf;

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
    /// The decisions' own shared zone (64 bytes a decision: 16m holds about 260,000).
    pub zone_size: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("\"{0}\" is not an http:// or https:// URL")]
    Url(String),
    #[error("invalid parameter \"{0}\"")]
    Parameter(String),
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("invalid fallback \"{0}\", expected pass, captcha or block")]
    Fallback(String),
    #[error(transparent)]
    Conf(#[from] crate::conf::ConfError),
}

impl LapiSpec {
    pub fn parse(args: &[&str], resolve: impl Fn(&str) -> PathBuf) -> Result<LapiSpec, SpecError> {
        let (url, rest) = args.split_first().ok_or(SpecError::Missing("a URL"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(SpecError::Url(url.to_string()));
        }
        let mut key_file = None;
        let mut spec = LapiSpec {
            url: url.trim_end_matches('/').to_string() + "/",
            key_file: PathBuf::new(),
            interval_secs: 10,
            timeout_secs: 5,
            fallback: Fallback::Block,
            zone_size: 16 << 20,
        };
        for arg in rest {
            let (key, value) = arg.split_once('=').ok_or_else(|| SpecError::Parameter(arg.to_string()))?;
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
        assert_eq!((spec.interval_secs, spec.timeout_secs, spec.fallback), (10, 5, Fallback::Block));
        let spec = parse(&["https://lapi.example/", "interval=2s", "key_file=/k", "fallback=captcha", "timeout=1s", "zone_size=32m"]).unwrap();
        assert_eq!((spec.interval_secs, spec.timeout_secs, spec.fallback, spec.zone_size), (2, 1, Fallback::Captcha, 32 << 20));
        assert_eq!(parse(&["http://x"]), Err(SpecError::Missing("key_file=PATH")));
        assert!(matches!(parse(&["ftp://x", "key_file=k"]), Err(SpecError::Url(_))));
        assert!(matches!(parse(&["http://x", "key_file=k", "fallback=ban"]), Err(SpecError::Fallback(_))));
        assert!(matches!(parse(&["http://x", "key_file=k", "interval=0s"]), Err(SpecError::Conf(_))));
        assert!(matches!(parse(&["http://x", "key_file=k", "bogus"]), Err(SpecError::Parameter(_))));
        assert!(matches!(parse(&["http://x", "key_file=k", "zone_size=1k"]), Err(SpecError::Conf(_))));
        assert_eq!(parse(&[]), Err(SpecError::Missing("a URL")));
    }
}
