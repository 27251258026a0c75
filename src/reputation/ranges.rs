//! Address sets for `captchaify_allow` and `captchaify_deny`: addresses and CIDR ranges,
//! inline or from files, kept as sorted, merged, inclusive ranges and searched by bisection.
//!
//! A set of 100,000 ranges costs 8 bytes per IPv4 range and 32 per IPv6 range (less after
//! merging neighbours), and a lookup is at most 17 comparisons. IPv4-mapped IPv6 addresses
//! (`::ffff:a.b.c.d`) are looked up as the IPv4 address they carry, so a dual-stack listener
//! cannot be used to slip past an IPv4 entry.

use core::fmt;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use thiserror::Error;

/// A set of addresses: the union of the networks it was built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpSet {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// Why a list entry or list file is refused. Messages name the file and line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ListError {
    #[error("invalid address or range \"{0}\", expected e.g. 192.0.2.1, 198.51.100.0/24 or 2001:db8::/32")]
    Entry(String),
    #[error("{file}:{line}: invalid address or range \"{entry}\"")]
    FileEntry {
        file: String,
        line: usize,
        entry: String,
    },
    #[error("cannot read list file \"{file}\": {error}")]
    Read { file: String, error: String },
    #[error("list file \"{0}\" holds no address")]
    Empty(String),
}

/// One entry: an address or a network in CIDR notation. Host bits below the prefix are
/// ignored (`10.1.2.3/8` is `10.0.0.0/8`), as nginx's `allow` does.
pub fn parse_entry(entry: &str) -> Result<IpNet, ListError> {
    let bad = || ListError::Entry(entry.to_string());
    if entry.contains('/') {
        let net: IpNet = entry.parse().map_err(|_| bad())?;
        Ok(net.trunc())
    } else {
        let addr: IpAddr = entry.parse().map_err(|_| bad())?;
        Ok(IpNet::from(addr))
    }
}

/// The entries of a list file: one or more per line, separated by white space; `#` starts a
/// comment. An empty file is refused, since it is more likely a mistake than a wish.
pub fn parse_file_text(text: &str, file: &str) -> Result<Vec<IpNet>, ListError> {
    let mut nets = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        for entry in line.split_whitespace() {
            let net = parse_entry(entry).map_err(|_| ListError::FileEntry {
                file: file.to_string(),
                line: index + 1,
                entry: entry.chars().take(80).collect(),
            })?;
            nets.push(net);
        }
    }
    if nets.is_empty() {
        return Err(ListError::Empty(file.to_string()));
    }
    Ok(nets)
}

/// Reads a list file (see [`parse_file_text`]).
pub fn read_file(path: &Path) -> Result<Vec<IpNet>, ListError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|error| ListError::Read {
        file: file.clone(),
        error: error.to_string(),
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse_file_text(&text, &file)
}

/// Directive arguments: addresses, ranges and `file=PATH` (resolved by `resolve`).
pub fn parse_arguments(
    args: &[&str],
    resolve: impl Fn(&str) -> std::path::PathBuf,
) -> Result<Vec<IpNet>, ListError> {
    let mut nets = Vec::new();
    for arg in args {
        match arg.strip_prefix("file=") {
            Some(path) => nets.extend(read_file(&resolve(path))?),
            None => nets.push(parse_entry(arg)?),
        }
    }
    Ok(nets)
}

impl IpSet {
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> IpSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for net in nets {
            match net {
                IpNet::V4(n) => v4.push((u32::from(n.network()), u32::from(n.broadcast()))),
                IpNet::V6(n) => {
                    let (first, last) = (u128::from(n.network()), u128::from(n.broadcast()));
                    // An IPv4-mapped network is the IPv4 network it maps.
                    match (n.network().to_ipv4_mapped(), n.prefix_len()) {
                        (Some(_), prefix) if prefix >= 96 => {
                            v4.push((first as u32, last as u32));
                        }
                        _ => v6.push((first, last)),
                    }
                }
            }
        }
        IpSet {
            v4: merged(v4),
            v6: merged(v6),
        }
    }

    /// Everything in either set.
    pub fn union(&self, other: &IpSet) -> IpSet {
        IpSet {
            v4: merged(self.v4.iter().chain(&other.v4).copied().collect()),
            v6: merged(self.v6.iter().chain(&other.v6).copied().collect()),
        }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => covered(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => covered(&self.v4, u32::from(v4)),
                None => covered(&self.v6, u128::from(a)),
            },
        }
    }

    /// Ranges kept after merging overlapping and adjacent entries.
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges() == 0
    }

    /// Heap bytes the set holds.
    pub fn bytes(&self) -> usize {
        self.v4.capacity() * 8 + self.v6.capacity() * 32
    }
}

impl fmt::Display for IpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ranges ({} bytes)", self.ranges(), self.bytes())
    }
}

/// Sorts inclusive ranges and merges those that overlap or touch.
fn merged<T: Copy + Ord + Step>(mut ranges: Vec<(T, T)>) -> Vec<(T, T)> {
    ranges.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match out.last_mut() {
            Some(prev) if first <= prev.1.next_or_max() => prev.1 = prev.1.max(last),
            _ => out.push((first, last)),
        }
    }
    out.shrink_to_fit();
    out
}

/// Whether a sorted list of disjoint inclusive ranges covers `x`.
fn covered<T: Copy + Ord>(ranges: &[(T, T)], x: T) -> bool {
    // The ranges starting at or before `x`; only the last of them can cover it.
    let before = ranges.partition_point(|&(first, _)| first <= x);
    before > 0 && ranges.get(before - 1).is_some_and(|&(_, last)| x <= last)
}

trait Step {
    fn next_or_max(self) -> Self;
}

impl Step for u32 {
    fn next_or_max(self) -> Self {
        self.saturating_add(1)
    }
}

impl Step for u128 {
    fn next_or_max(self) -> Self {
        self.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> IpSet {
        IpSet::new(entries.iter().map(|e| parse_entry(e).unwrap()))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_and_ranges() {
        let s = set(&[
            "192.0.2.1",
            "198.51.100.0/24",
            "2001:db8::/32",
            "10.1.2.3/8",
        ]);
        assert!(s.contains(ip("192.0.2.1")));
        assert!(!s.contains(ip("192.0.2.2")));
        assert!(!s.contains(ip("192.0.2.0")));
        assert!(s.contains(ip("198.51.100.0")));
        assert!(s.contains(ip("198.51.100.255")));
        assert!(!s.contains(ip("198.51.101.0")));
        assert!(!s.contains(ip("198.51.99.255")));
        assert!(s.contains(ip("2001:db8:ffff::1")));
        assert!(!s.contains(ip("2001:db9::")));
        // Host bits are ignored, as nginx's allow does.
        assert!(s.contains(ip("10.200.0.1")));
        assert!(!s.contains(ip("11.0.0.0")));
    }

    #[test]
    fn mapped_addresses_are_their_ipv4() {
        let s = set(&["203.0.113.0/24"]);
        assert!(s.contains(ip("::ffff:203.0.113.9")));
        assert!(!s.contains(ip("::ffff:203.0.114.9")));
        let mapped = set(&["::ffff:198.51.100.0/120"]);
        assert!(mapped.contains(ip("198.51.100.77")));
        assert!(!mapped.contains(ip("198.51.101.77")));
    }

    #[test]
    fn edges_of_the_address_space() {
        let s = set(&["0.0.0.0/0"]);
        assert!(s.contains(ip("0.0.0.0")) && s.contains(ip("255.255.255.255")));
        assert!(!s.contains(ip("2001:db8::1")));
        let all6 = set(&["::/0"]);
        assert!(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(all6.contains(ip("::")));
        let top = set(&["255.255.255.255", "0.0.0.0"]);
        assert!(top.contains(ip("255.255.255.255")) && top.contains(ip("0.0.0.0")));
        assert!(!top.contains(ip("128.0.0.0")));
        assert!(!IpSet::default().contains(ip("1.2.3.4")));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        let s = set(&[
            "10.0.0.0/25",
            "10.0.0.128/25",
            "10.0.0.5",
            "10.0.1.0/24",
            "10.0.3.0/24",
        ]);
        assert_eq!(s.ranges(), 2);
        assert!(s.contains(ip("10.0.1.255")));
        assert!(!s.contains(ip("10.0.2.0")));
        let u = s.union(&set(&["10.0.2.0/24"]));
        assert_eq!(u.ranges(), 1);
        assert!(u.contains(ip("10.0.2.9")));
    }

    #[test]
    fn bad_entries_are_refused() {
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/33",
            "2001:db8::/129",
            "example.com",
            "1.2.3.4/",
            "/8",
            "1.2.3.4 ",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn files_name_the_line() {
        let text = "# office\n192.0.2.0/24   198.51.100.7 # home\n\n2001:db8::1\nnot-an-address\n";
        let err = parse_file_text(text, "/etc/lists/allow.txt").unwrap_err();
        assert_eq!(
            err.to_string(),
            "/etc/lists/allow.txt:5: invalid address or range \"not-an-address\""
        );
        let nets = parse_file_text(&text.replace("not-an-address", ""), "f").unwrap();
        assert_eq!(nets.len(), 3);
        assert_eq!(
            parse_file_text("# nothing\n\n", "f"),
            Err(ListError::Empty("f".into()))
        );
        assert!(matches!(
            read_file(Path::new("/nonexistent/list")),
            Err(ListError::Read { .. })
        ));
    }

    #[test]
    fn arguments_mix_entries_and_files() {
        let dir = std::env::temp_dir().join(format!("captchaify-ranges-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("l.txt"), "203.0.113.0/24\n").unwrap();
        let nets = parse_arguments(&["192.0.2.1", "file=l.txt"], |p| dir.join(p)).unwrap();
        let s = IpSet::new(nets);
        assert!(s.contains(ip("203.0.113.200")) && s.contains(ip("192.0.2.1")));
        assert!(parse_arguments(&["file=missing.txt"], |p| dir.join(p)).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// 100,000 random ranges against a brute-force reference, and the memory they take.
    #[test]
    fn a_hundred_thousand_ranges() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut nets = Vec::new();
        for i in 0..100_000 {
            let r = next();
            if i % 4 == 0 {
                let addr = std::net::Ipv6Addr::from(u128::from(r) << 64);
                nets.push(IpNet::new(IpAddr::V6(addr), 48).unwrap().trunc());
            } else {
                let addr = std::net::Ipv4Addr::from(r as u32);
                nets.push(
                    IpNet::new(IpAddr::V4(addr), 20 + (r >> 40) as u8 % 13)
                        .unwrap()
                        .trunc(),
                );
            }
        }
        let s = IpSet::new(nets.iter().copied());
        assert!(s.bytes() <= 100_000 * 32, "{}", s.bytes());
        for _ in 0..20_000 {
            let r = next();
            let probe = match r % 3 {
                0 => IpAddr::V6(std::net::Ipv6Addr::from(
                    (u128::from(r) << 64) | u128::from(r >> 3),
                )),
                1 => match nets[(r % nets.len() as u64) as usize] {
                    IpNet::V4(n) => IpAddr::V4(std::net::Ipv4Addr::from(
                        u32::from(n.network()) + (r as u32 >> 30),
                    )),
                    IpNet::V6(n) => {
                        IpAddr::V6(std::net::Ipv6Addr::from(u128::from(n.network()) + 7))
                    }
                },
                _ => IpAddr::V4(std::net::Ipv4Addr::from(r as u32)),
            };
            let expected = nets.iter().any(|n| n.contains(&probe));
            assert_eq!(s.contains(probe), expected, "{probe}");
        }
    }
}
