//! Who is suspicious by address: allow and deny lists, reputation feeds (Tor exits, ip-api,
//! StopForumSpam) and country and AS-number rules, free of nginx types.
//!
//! Feeds that need the network are fetched by one background thread per server (see
//! `nginx::background::reputation`); what they say is kept in the shared zone. This module
//! holds the parts that need no nginx: the HTTP exchanges (`fetch`), parsing, address sets
//! and database lookups.

pub mod feeds;
pub mod fetch;
pub mod geoip;
#[cfg(any(test, feature = "tools"))]
pub mod mmdb_writer;
pub mod ranges;
pub mod rules;
#[cfg(test)]
pub(crate) mod test_server;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::conf::{parse_duration_in, ConfError};

/// A third-party reputation source: the one identity the configuration
/// (`captchaify_third_parties`, `captchaify_feed`), the policy (`policy::ThirdParties`, a set
/// of them), the shared tables (`state::reputation`) and the background jobs share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The Tor Project's list of exit addresses, downloaded whole.
    Tor,
    /// ip-api.com, asked about each new address: proxies and hosting.
    IpApi,
    /// StopForumSpam, asked about each new address: listed spammers.
    StopForumSpam,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Tor, Source::IpApi, Source::StopForumSpam];
    /// The sources asked about one address at a time (their answers live in the lookups
    /// table); the Tor list is downloaded whole instead.
    pub const PER_ADDRESS: [Source; 2] = [Source::IpApi, Source::StopForumSpam];

    /// Its name in the configuration and the logs.
    pub const fn name(self) -> &'static str {
        match self {
            Source::Tor => "tor",
            Source::IpApi => "ipapi",
            Source::StopForumSpam => "stopforumspam",
        }
    }

    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Its bit in a set of sources (`policy::ThirdParties`, the sources in use, the sources
    /// an address was asked about).
    pub const fn bit(self) -> u8 {
        match self {
            Source::Tor => 1,
            Source::IpApi => 2,
            Source::StopForumSpam => 4,
        }
    }
}

/// Where a source is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedOrigin {
    Url(String),
    File(PathBuf),
}

impl core::fmt::Display for FeedOrigin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FeedOrigin::Url(url) => f.write_str(url),
            FeedOrigin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// `captchaify_feed NAME [url=URL|file=PATH] [refresh=TIME] [ttl=TIME] [timeout=TIME]
/// [rate=N/m]`: where a source is and how often it is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSpec {
    pub name: Source,
    pub origin: FeedOrigin,
    /// Bulk lists: how often the list is fetched again.
    pub refresh_secs: u64,
    /// Per-address sources: how long an answer is kept.
    pub ttl_secs: u64,
    /// Connect-and-read time limit of one request.
    pub timeout_secs: u64,
    /// Per-address sources: requests per minute at most.
    pub per_minute: u32,
}

impl FeedSpec {
    pub fn default_for(name: Source) -> FeedSpec {
        let (url, per_minute) = match name {
            Source::Tor => ("https://check.torproject.org/torbulkexitlist", 0),
            // ip-api's free tier: HTTP only, 45 requests a minute per source address.
            Source::IpApi => ("http://ip-api.com/json/", 45),
            Source::StopForumSpam => ("https://api.stopforumspam.org/api", 30),
        };
        FeedSpec {
            name,
            origin: FeedOrigin::Url(url.to_string()),
            refresh_secs: 3600,
            ttl_secs: 7 * 86400,
            timeout_secs: 10,
            per_minute,
        }
    }

    /// Parses the directive's arguments; `resolve` turns a `file=` path into a full path.
    pub fn parse(args: &[&str], resolve: impl Fn(&str) -> PathBuf) -> Result<FeedSpec, ConfError> {
        let bad = |arg: &str| ConfError::Parameter(arg.to_string());
        let (name, rest) = args.split_first().ok_or_else(|| bad(""))?;
        let name = Source::parse(name).ok_or_else(|| {
            ConfError::Feed(format!(
                "unknown source \"{name}\", expected tor, ipapi or stopforumspam"
            ))
        })?;
        let mut spec = FeedSpec::default_for(name);
        for arg in rest {
            let (key, value) = arg.split_once('=').ok_or_else(|| bad(arg))?;
            match key {
                "url" if value.starts_with("http://") || value.starts_with("https://") => {
                    spec.origin = FeedOrigin::Url(value.to_string());
                }
                "url" => {
                    return Err(ConfError::Feed(format!(
                        "\"{value}\" is not an http:// or https:// URL"
                    )))
                }
                "file" if name == Source::Tor && !value.is_empty() => {
                    spec.origin = FeedOrigin::File(resolve(value));
                }
                "file" => {
                    return Err(ConfError::Feed(format!(
                        "{} is asked per address and has no file form",
                        name.name()
                    )))
                }
                "refresh" if name == Source::Tor => {
                    spec.refresh_secs = parse_duration_in(value, 1, 7 * 86400)?
                }
                "ttl" if name != Source::Tor => {
                    spec.ttl_secs = parse_duration_in(value, 60, 365 * 86400)?
                }
                "timeout" => spec.timeout_secs = parse_duration_in(value, 1, 300)?,
                "rate" if name != Source::Tor => {
                    let rate: crate::state::rate::Rate = value.parse()?;
                    let per_minute =
                        u64::from(rate.count) * 60_000 / u64::from(rate.period_ms.max(1));
                    spec.per_minute = u32::try_from(per_minute).unwrap_or(u32::MAX).max(1);
                }
                _ => return Err(bad(arg)),
            }
        }
        Ok(spec)
    }
}

/// Whether an address may be sent to a per-address source at all. Loopback, private,
/// link-local, unique-local, multicast and unspecified addresses never leave the server:
/// the sources know nothing about them, and they say something about the network inside.
pub fn may_look_up(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.octets()[0] == 0
                || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => may_look_up(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || first & 0xfe00 == 0xfc00
                    || first & 0xffc0 == 0xfe80)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<FeedSpec, ConfError> {
        FeedSpec::parse(args, |p| PathBuf::from("/prefix").join(p))
    }

    #[test]
    fn feed_specs() {
        let tor = parse(&[
            "tor",
            "url=http://127.0.0.1:1/list",
            "refresh=10m",
            "timeout=3s",
        ])
        .unwrap();
        assert_eq!(
            tor.origin,
            FeedOrigin::Url("http://127.0.0.1:1/list".into())
        );
        assert_eq!((tor.refresh_secs, tor.timeout_secs), (600, 3));
        let file = parse(&["tor", "file=conf/exits.txt"]).unwrap();
        assert_eq!(
            file.origin,
            FeedOrigin::File("/prefix/conf/exits.txt".into())
        );
        let ipapi = parse(&["ipapi", "ttl=1d", "rate=10r/m"]).unwrap();
        assert_eq!((ipapi.ttl_secs, ipapi.per_minute), (86400, 10));
        assert_eq!(parse(&["ipapi", "rate=2r/s"]).unwrap().per_minute, 120);
        assert_eq!(
            parse(&["stopforumspam"]).unwrap(),
            FeedSpec::default_for(Source::StopForumSpam)
        );
        for bad in [
            &["spamhaus"][..],
            &["tor", "url=ftp://x"],
            &["tor", "ttl=1d"],
            &["ipapi", "file=x"],
            &["ipapi", "refresh=1h"],
            &["tor", "refresh=0s"],
            &["tor", "bogus"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn private_addresses_never_leave() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.1.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            assert!(!may_look_up(private.parse().unwrap()), "{private}");
        }
        for public in [
            "192.0.2.1",
            "203.0.113.5",
            "8.8.8.8",
            "2001:db8::1",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(may_look_up(public.parse().unwrap()), "{public}");
        }
    }
}
