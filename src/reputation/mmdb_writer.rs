//! Writes small MaxMind DB (format 2.0, <https://maxmind.github.io/MaxMind-DB/>) files for
//! tests and the `captcha-mmdb` tool, shaped like GeoLite2 and DB-IP's files so that
//! `geoip::GeoDb` reads them as it reads the real ones.
//!
//! The tree is always an IPv6 one (`ip_version` 6). IPv4 networks sit at `::a.b.c.d/96+n`
//! as MaxMind places them, and `::ffff:0:0/96` is an alias of that subtree, so readers that
//! look up IPv4-mapped addresses as they are find the same records. Where networks overlap,
//! the more specific one wins; of two identical networks, the later one wins.

use std::collections::HashMap;

use ipnet::IpNet;
use thiserror::Error;

use super::geoip::Country;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WriteError {
    #[error("the database is too large for the MaxMind format ({nodes} tree nodes, {data_bytes} data bytes)")]
    TooLarge { nodes: usize, data_bytes: usize },
}

/// What a network maps to. In the file: `{"country": {"iso_code": "DE"}}` for the country,
/// `autonomous_system_number` and `autonomous_system_organization` for the AS, all in one
/// map when several are given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NetworkRecord {
    pub country: Option<Country>,
    pub asn: Option<u32>,
    pub org: Option<String>,
}

/// The whole file: search tree, data section and metadata. `database_type` is what readers
/// report (`GeoLite2-Country`, `GeoLite2-ASN`, `DBIP-Country-Lite` or any other name).
pub fn build(
    database_type: &str,
    build_epoch: u64,
    networks: &[(IpNet, NetworkRecord)],
) -> Result<Vec<u8>, WriteError> {
    build_sized(database_type, build_epoch, networks, 24)
}

/// [`build`] with records of at least `min_record_size` bits (24, 28 or 32), so tests can
/// check every record layout on small trees.
fn build_sized(
    database_type: &str,
    build_epoch: u64,
    networks: &[(IpNet, NetworkRecord)],
    min_record_size: u32,
) -> Result<Vec<u8>, WriteError> {
    // Each distinct record is written once; the tree refers to it by index until the data
    // section's offsets are known.
    let mut record_index: HashMap<&NetworkRecord, u32> = HashMap::new();
    let mut records: Vec<&NetworkRecord> = Vec::new();
    let mut prefixes: Vec<(u128, u32, u32)> = networks
        .iter()
        .map(|(net, record)| {
            let index = *record_index.entry(record).or_insert_with(|| {
                records.push(record);
                records.len() as u32 - 1
            });
            let (bits, len) = tree_prefix(net);
            (bits, len, index)
        })
        .collect();
    // Shorter prefixes first, so that a more specific network always lands below a less
    // specific one; the sort is stable, so the later of two identical networks wins.
    prefixes.sort_by_key(|&(_, len, _)| len);

    let mut tree = Tree::new();
    for &(bits, len, index) in &prefixes {
        tree.insert(bits, len, Slot::Data(index));
    }
    let ipv4 = tree.covering(0, 96);
    if ipv4 != Slot::Empty {
        tree.insert(0xffff << 32, 96, ipv4);
    }

    let mut data = DataSection::new(true);
    let offsets: Vec<usize> = records.iter().map(|record| data.record(record)).collect();

    let node_count = tree.nodes.len();
    let too_large = || WriteError::TooLarge {
        nodes: node_count,
        data_bytes: data.bytes.len(),
    };
    let largest = (node_count + 16 + data.bytes.len()) as u64;
    let record_size = [24u32, 28, 32]
        .into_iter()
        .filter(|&bits| bits >= min_record_size)
        .find(|&bits| largest < 1u64 << bits)
        .ok_or_else(too_large)?;
    let node_count_u32 = u32::try_from(node_count).map_err(|_| too_large())?;

    let mut out =
        Vec::with_capacity(node_count * record_size as usize / 4 + data.bytes.len() + 512);
    let value = |slot: Slot| match slot {
        Slot::Empty => node_count as u32,
        Slot::Node(n) => n,
        Slot::Data(index) => (node_count + 16 + offsets[index as usize]) as u32,
    };
    for [left, right] in &tree.nodes {
        write_node(&mut out, record_size, value(*left), value(*right));
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&data.bytes);
    out.extend_from_slice(b"\xab\xcd\xefMaxMind.com");
    out.extend_from_slice(&metadata(
        database_type,
        build_epoch,
        node_count_u32,
        record_size,
    ));
    Ok(out)
}

/// One search-tree node: its two records, big-endian; 28-bit records share the middle byte,
/// the left record's top four bits first.
fn write_node(out: &mut Vec<u8>, record_size: u32, left: u32, right: u32) {
    match record_size {
        24 => {
            out.extend_from_slice(&left.to_be_bytes()[1..]);
            out.extend_from_slice(&right.to_be_bytes()[1..]);
        }
        28 => {
            out.extend_from_slice(&left.to_be_bytes()[1..]);
            out.push(((left >> 24) as u8) << 4 | (right >> 24) as u8);
            out.extend_from_slice(&right.to_be_bytes()[1..]);
        }
        _ => {
            out.extend_from_slice(&left.to_be_bytes());
            out.extend_from_slice(&right.to_be_bytes());
        }
    }
}

/// A network as a 128-bit prefix of the IPv6 tree; IPv4 (and IPv4-mapped IPv6) networks go
/// under `::/96`.
fn tree_prefix(net: &IpNet) -> (u128, u32) {
    match net.trunc() {
        IpNet::V4(v4) => (
            u128::from(u32::from(v4.addr())),
            96 + u32::from(v4.prefix_len()),
        ),
        IpNet::V6(v6) => {
            let bits = u128::from(v6.addr());
            let len = u32::from(v6.prefix_len());
            if len >= 96 && bits >> 32 == 0xffff {
                (bits & 0xffff_ffff, len)
            } else {
                (bits, len)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Node(u32),
    Data(u32),
}

/// The binary search tree: node 0 is the root, bit 0 of an address picks the left slot.
struct Tree {
    nodes: Vec<[Slot; 2]>,
}

impl Tree {
    fn new() -> Tree {
        Tree {
            nodes: vec![[Slot::Empty; 2]],
        }
    }

    fn bit(bits: u128, depth: u32) -> usize {
        (bits >> (127 - depth) & 1) as usize
    }

    /// Points the network `bits/len` at `slot`. A less specific network already in the way
    /// is split into two halves that keep its data.
    fn insert(&mut self, bits: u128, len: u32, slot: Slot) {
        if len == 0 {
            self.nodes[0] = [slot; 2];
            return;
        }
        let mut node = 0;
        for depth in 0..len - 1 {
            let side = Tree::bit(bits, depth);
            node = match self.nodes[node][side] {
                Slot::Node(next) => next as usize,
                covering => {
                    let next = self.nodes.len();
                    self.nodes.push([covering; 2]);
                    self.nodes[node][side] = Slot::Node(next as u32);
                    next
                }
            };
        }
        self.nodes[node][Tree::bit(bits, len - 1)] = slot;
    }

    /// What the network `bits/len` leads to: its subtree, or the data of the network that
    /// covers it.
    fn covering(&self, bits: u128, len: u32) -> Slot {
        let mut slot = Slot::Node(0);
        for depth in 0..len {
            match slot {
                Slot::Node(node) => slot = self.nodes[node as usize][Tree::bit(bits, depth)],
                _ => break,
            }
        }
        slot
    }
}

// Data section types (the control byte's top three bits; 8 and above are extended).
const POINTER: u8 = 1;
const STRING: u8 = 2;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const UINT64: u8 = 9;
const ARRAY: u8 = 11;

/// Encoded values, with strings written once and pointed to afterwards when `shared` (as
/// MaxMind's writers do with keys such as `country`).
struct DataSection {
    bytes: Vec<u8>,
    shared: Option<HashMap<String, usize>>,
}

impl DataSection {
    fn new(shared: bool) -> DataSection {
        DataSection {
            bytes: Vec::new(),
            shared: shared.then(HashMap::new),
        }
    }

    /// Writes a record's map and returns where it starts.
    fn record(&mut self, record: &NetworkRecord) -> usize {
        let start = self.bytes.len();
        let entries = usize::from(record.country.is_some())
            + usize::from(record.asn.is_some())
            + usize::from(record.org.is_some());
        self.control(MAP, entries);
        if let Some(country) = record.country {
            self.string("country");
            self.control(MAP, 1);
            self.string("iso_code");
            self.string(country.as_str());
        }
        if let Some(asn) = record.asn {
            self.string("autonomous_system_number");
            self.uint(UINT32, asn.into());
        }
        if let Some(org) = &record.org {
            self.string("autonomous_system_organization");
            self.string(org);
        }
        start
    }

    fn control(&mut self, kind: u8, size: usize) {
        let (low, extra, extra_len) = match size {
            0..=28 => (size as u8, 0, 0),
            29..=284 => (29, size - 29, 1),
            285..=65_820 => (30, size - 285, 2),
            _ => (31, size - 65_821, 3),
        };
        if kind < 8 {
            self.bytes.push(kind << 5 | low);
        } else {
            self.bytes.push(low);
            self.bytes.push(kind - 7);
        }
        self.bytes
            .extend_from_slice(&(extra as u32).to_be_bytes()[4 - extra_len..]);
    }

    fn string(&mut self, text: &str) {
        if let Some(shared) = &mut self.shared {
            if let Some(&at) = shared.get(text) {
                // A pointer takes two to five bytes; short strings are cheaper inline.
                if text.len() > 4 {
                    self.pointer(at);
                    return;
                }
            } else {
                shared.insert(text.to_string(), self.bytes.len());
            }
        }
        self.control(STRING, text.len());
        self.bytes.extend_from_slice(text.as_bytes());
    }

    fn pointer(&mut self, at: usize) {
        let ctrl = POINTER << 5;
        match at {
            0..=0x7ff => {
                self.bytes.push(ctrl | (at >> 8) as u8);
                self.bytes.push(at as u8);
            }
            0x800..=0x807ff => {
                let v = at - 0x800;
                self.bytes.push(ctrl | 1 << 3 | (v >> 16) as u8);
                self.bytes.extend_from_slice(&(v as u16).to_be_bytes());
            }
            0x80800..=0x808_07ff => {
                let v = at - 0x80800;
                self.bytes.push(ctrl | 2 << 3 | (v >> 24) as u8);
                self.bytes.extend_from_slice(&(v as u32).to_be_bytes()[1..]);
            }
            _ => {
                self.bytes.push(ctrl | 3 << 3);
                self.bytes.extend_from_slice(&(at as u32).to_be_bytes());
            }
        }
    }

    /// An unsigned integer in as few bytes as it needs (none for zero).
    fn uint(&mut self, kind: u8, value: u64) {
        let bytes = value.to_be_bytes();
        let skip = (value.leading_zeros() / 8) as usize;
        self.control(kind, 8 - skip);
        self.bytes.extend_from_slice(&bytes[skip..]);
    }
}

fn metadata(database_type: &str, build_epoch: u64, node_count: u32, record_size: u32) -> Vec<u8> {
    let mut meta = DataSection::new(false);
    meta.control(MAP, 9);
    meta.string("binary_format_major_version");
    meta.uint(UINT16, 2);
    meta.string("binary_format_minor_version");
    meta.uint(UINT16, 0);
    meta.string("build_epoch");
    meta.uint(UINT64, build_epoch);
    meta.string("database_type");
    meta.string(database_type);
    meta.string("description");
    meta.control(MAP, 1);
    meta.string("en");
    meta.string(&format!("{database_type}, written by captchaify"));
    meta.string("ip_version");
    meta.uint(UINT16, 6);
    meta.string("languages");
    meta.control(ARRAY, 1);
    meta.string("en");
    meta.string("node_count");
    meta.uint(UINT32, node_count.into());
    meta.string("record_size");
    meta.uint(UINT16, record_size.into());
    meta.bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reputation::geoip::{GeoDb, GeoInfo};
    use maxminddb::Reader;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::{json, Value};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::path::PathBuf;
    use std::time::Instant;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn country(code: &str) -> NetworkRecord {
        NetworkRecord {
            country: Some(Country::parse(code).unwrap()),
            ..Default::default()
        }
    }

    fn asn(number: u32, org: &str) -> NetworkRecord {
        NetworkRecord {
            asn: Some(number),
            org: Some(org.to_string()),
            ..Default::default()
        }
    }

    /// The record `maxminddb` itself finds, as JSON.
    fn raw(reader: &Reader<Vec<u8>>, addr: &str) -> Option<Value> {
        reader.lookup::<Value>(ip(addr)).unwrap()
    }

    /// The file written to disk and opened as the module opens it.
    fn geodb(name: &str, bytes: &[u8]) -> GeoDb {
        let path: PathBuf = std::env::temp_dir().join(format!(
            "captchaify-mmdb-{}-{name}.mmdb",
            std::process::id()
        ));
        std::fs::write(&path, bytes).unwrap();
        let db = GeoDb::open(&[&path]);
        std::fs::remove_file(&path).unwrap();
        db.unwrap()
    }

    fn info(db: &GeoDb, addr: &str) -> (Option<String>, Option<u32>) {
        let GeoInfo { country, asn } = db.lookup(ip(addr));
        (country.map(|c| c.to_string()), asn)
    }

    fn de() -> Option<String> {
        Some("DE".into())
    }

    #[test]
    fn ipv4_networks() {
        let bytes = build(
            "GeoLite2-Country",
            1_793_491_200,
            &[
                (net("192.0.2.0/24"), country("DE")),
                (net("198.51.100.0/25"), country("fr")),
            ],
        )
        .unwrap();
        let reader = Reader::from_source(bytes.clone()).unwrap();
        let meta = &reader.metadata;
        assert_eq!(
            (
                meta.ip_version,
                meta.record_size,
                meta.binary_format_major_version
            ),
            (6, 24, 2)
        );
        assert_eq!(meta.binary_format_minor_version, 0);
        assert_eq!(meta.database_type, "GeoLite2-Country");
        assert_eq!(meta.build_epoch, 1_793_491_200);
        assert_eq!(meta.languages, ["en"]);
        assert_eq!(
            meta.description["en"],
            "GeoLite2-Country, written by captchaify"
        );

        let de_record = Some(json!({"country": {"iso_code": "DE"}}));
        assert_eq!(raw(&reader, "192.0.2.0"), de_record);
        assert_eq!(raw(&reader, "192.0.2.255"), de_record);
        // The same networks through the IPv6 spellings of IPv4 addresses.
        assert_eq!(raw(&reader, "::192.0.2.9"), de_record);
        assert_eq!(raw(&reader, "::ffff:192.0.2.9"), de_record);
        assert_eq!(raw(&reader, "192.0.3.0"), None);
        assert_eq!(
            raw(&reader, "198.51.100.127"),
            Some(json!({"country": {"iso_code": "FR"}}))
        );
        assert_eq!(raw(&reader, "198.51.100.128"), None);

        let db = geodb("v4", &bytes);
        assert_eq!(info(&db, "192.0.2.77"), (de(), None));
        assert_eq!(info(&db, "::ffff:192.0.2.77"), (de(), None));
        assert_eq!(info(&db, "198.51.100.1"), (Some("FR".into()), None));
        assert_eq!(info(&db, "198.51.100.200"), (None, None));
        assert_eq!(info(&db, "2001:db8::1"), (None, None));
        assert_eq!(db.describe(), "GeoLite2-Country (built 2026-11-01)");
    }

    #[test]
    fn ipv6_networks() {
        let bytes = build(
            "GeoLite2-ASN",
            0,
            &[
                (net("2001:db8::/32"), asn(64_500, "Example Networks")),
                (net("2001:db8:1::/48"), asn(64_501, "Example Networks")),
                (net("2a00::/16"), asn(3320, "Deutsche Telekom AG")),
            ],
        )
        .unwrap();
        let reader = Reader::from_source(bytes.clone()).unwrap();
        assert_eq!(
            raw(&reader, "2001:db8:ffff::1"),
            Some(json!({
                "autonomous_system_number": 64_500,
                "autonomous_system_organization": "Example Networks"
            }))
        );
        let db = geodb("v6", &bytes);
        assert_eq!(info(&db, "2001:db8:2::1"), (None, Some(64_500)));
        assert_eq!(info(&db, "2001:db8:1:ffff::1"), (None, Some(64_501)));
        assert_eq!(info(&db, "2a00:1450::1"), (None, Some(3320)));
        assert_eq!(info(&db, "2a01::1"), (None, None));
        assert_eq!(info(&db, "2001:db9::1"), (None, None));
        assert_eq!(info(&db, "192.0.2.1"), (None, None));
        assert!(db.has_asns() && !db.has_countries());
    }

    #[test]
    fn ipv4_inside_the_ipv6_tree() {
        let both = NetworkRecord {
            country: Country::parse("DE").ok(),
            asn: Some(3320),
            org: Some("Deutsche Telekom AG".into()),
        };
        let bytes = build(
            "captchaify-Combined",
            0,
            &[
                (net("2003::/19"), both.clone()),
                (net("84.128.0.0/10"), both),
                (net("::ffff:10.0.0.0/104"), country("NL")),
                (net("::/0"), country("US")),
            ],
        )
        .unwrap();
        let reader = Reader::from_source(bytes.clone()).unwrap();
        let both_json = json!({
            "country": {"iso_code": "DE"},
            "autonomous_system_number": 3320,
            "autonomous_system_organization": "Deutsche Telekom AG"
        });
        assert_eq!(raw(&reader, "84.130.1.1"), Some(both_json.clone()));
        assert_eq!(raw(&reader, "::ffff:84.130.1.1"), Some(both_json.clone()));
        assert_eq!(raw(&reader, "2003:e1::1"), Some(both_json));
        // An IPv4-mapped network is an IPv4 one.
        assert_eq!(
            raw(&reader, "10.1.2.3"),
            Some(json!({"country": {"iso_code": "NL"}}))
        );
        let db = geodb("mixed", &bytes);
        assert_eq!(info(&db, "84.191.255.255"), (de(), Some(3320)));
        assert_eq!(info(&db, "::ffff:84.191.255.255"), (de(), Some(3320)));
        assert_eq!(info(&db, "2003:e1::1"), (de(), Some(3320)));
        assert_eq!(info(&db, "10.200.0.1"), (Some("NL".into()), None));
        // ::/0 covers everything else, IPv4 included.
        assert_eq!(info(&db, "84.192.0.0"), (Some("US".into()), None));
        assert_eq!(info(&db, "2a00::1"), (Some("US".into()), None));
    }

    #[test]
    fn the_more_specific_network_wins() {
        let networks = [
            (net("10.1.2.0/24"), country("IT")),
            (net("10.1.0.0/16"), country("FR")),
            (net("10.0.0.0/8"), country("DE")),
            (net("10.1.2.128/25"), country("AT")),
            (net("10.9.0.0/16"), country("ES")),
            (net("10.9.0.0/16"), country("PT")), // the later of two identical networks wins
            (net("10.9.77.1/16"), country("SE")), // host bits are ignored: also 10.9.0.0/16
            (net("0.0.0.0/0"), country("US")),
        ];
        let bytes = build("GeoLite2-Country", 0, &networks).unwrap();
        let db = geodb("specific", &bytes);
        let country_of = |addr: &str| info(&db, addr).0.unwrap();
        assert_eq!(country_of("10.200.0.1"), "DE");
        assert_eq!(country_of("10.1.3.3"), "FR");
        assert_eq!(country_of("10.1.2.127"), "IT");
        assert_eq!(country_of("10.1.2.128"), "AT");
        assert_eq!(country_of("10.9.1.1"), "SE");
        assert_eq!(country_of("11.0.0.0"), "US");
        assert_eq!(country_of("::ffff:11.0.0.0"), "US");
        assert_eq!(info(&db, "2001:db8::1"), (None, None));
    }

    #[test]
    fn every_record_size() {
        let networks = [
            (net("192.0.2.0/24"), country("DE")),
            (net("2001:db8::/32"), asn(64_500, "Example")),
        ];
        for size in [24, 28, 32] {
            let bytes = build_sized("Sized", 0, &networks, size).unwrap();
            let reader = Reader::from_source(bytes.clone()).unwrap();
            assert_eq!(u32::from(reader.metadata.record_size), size);
            let db = geodb(&format!("size{size}"), &bytes);
            assert_eq!(info(&db, "192.0.2.1"), (de(), None));
            assert_eq!(info(&db, "2001:db8::1"), (None, Some(64_500)));
            assert_eq!(info(&db, "203.0.113.1"), (None, None));
        }
    }

    #[test]
    fn repeated_strings_become_pointers() {
        let mut data = DataSection::new(true);
        data.string(&"x".repeat(20));
        assert_eq!(data.bytes.len(), 21);
        data.string(&"x".repeat(20));
        assert_eq!(
            data.bytes,
            [&[0x54][..], &[b'x'; 20], &[0x20, 0x00]].concat()
        );
        data.string("DE");
        data.string("DE");
        assert_eq!(data.bytes[23..], [0x42, b'D', b'E', 0x42, b'D', b'E']);
    }

    #[test]
    fn node_layouts() {
        let node = |size| {
            let mut out = Vec::new();
            write_node(&mut out, size, 0x0abc_def1, 0x0123_4567);
            out
        };
        assert_eq!(node(28), [0xbc, 0xde, 0xf1, 0xa1, 0x23, 0x45, 0x67]);
        assert_eq!(node(32), [0x0a, 0xbc, 0xde, 0xf1, 0x01, 0x23, 0x45, 0x67]);
        let mut out = Vec::new();
        write_node(&mut out, 24, 0xbc_def1, 0x23_4567);
        assert_eq!(out, [0xbc, 0xde, 0xf1, 0x23, 0x45, 0x67]);
    }

    #[test]
    fn pointers_of_every_size() {
        for at in [
            0,
            0x7ff,
            0x800,
            0x807ff,
            0x80800,
            0x80807ff,
            0x8080800,
            0xffff_ffff,
        ] {
            let mut data = DataSection::new(false);
            data.pointer(at);
            let ctrl = data.bytes[0];
            let len = (ctrl >> 3 & 3) as usize + 1;
            let high = if len == 4 { 0 } else { (ctrl & 7) as usize };
            let raw = data.bytes[1..]
                .iter()
                .fold(high, |n, &b| n << 8 | b as usize);
            assert_eq!(data.bytes.len(), 1 + len);
            assert_eq!(raw + [0, 0, 2048, 526_336, 0][len], at, "{at:#x}");
        }
    }

    #[test]
    fn an_empty_database() {
        let bytes = build("Empty", 0, &[]).unwrap();
        let reader = Reader::from_source(bytes).unwrap();
        assert_eq!(reader.metadata.node_count, 1);
        assert_eq!(raw(&reader, "192.0.2.1"), None);
        assert_eq!(raw(&reader, "2001:db8::1"), None);
    }

    /// 100,000 networks: random /24s and /48s, checked against a map of the same networks.
    #[test]
    fn a_hundred_thousand_networks() {
        let mut rng = ChaCha8Rng::seed_from_u64(100_000);
        let codes = ["DE", "FR", "US", "NL", "JP", "BR", "IN", "ZA"];
        let mut networks = Vec::with_capacity(100_000);
        let mut v4 = HashMap::new();
        let mut v6 = HashMap::new();
        for i in 0..100_000u32 {
            let record = NetworkRecord {
                country: Country::parse(codes[i as usize % codes.len()]).ok(),
                asn: Some(rng.gen_range(1..400_000)),
                org: (i % 7 == 0).then(|| format!("Org {}", i % 1000)),
            };
            if i % 2 == 0 {
                let prefix = rng.gen::<u32>() >> 8;
                let addr = Ipv4Addr::from(prefix << 8);
                networks.push((IpNet::new(addr.into(), 24).unwrap(), record.clone()));
                v4.insert(prefix, record);
            } else {
                // Global unicast space, as real /48s are.
                let prefix = 0x2000_0000_0000 | rng.gen::<u64>() & 0x1fff_ffff_ffff;
                let addr = Ipv6Addr::from(u128::from(prefix) << 80);
                networks.push((IpNet::new(addr.into(), 48).unwrap(), record.clone()));
                v6.insert(prefix, record);
            }
        }

        let start = Instant::now();
        let bytes = build("captchaify-Combined", 0, &networks).unwrap();
        let took = start.elapsed();
        let reader = Reader::from_source(bytes.clone()).unwrap();
        eprintln!(
            "100,000 networks: written in {:.0} ms, {} bytes, {} nodes of {} bits",
            took.as_secs_f64() * 1000.0,
            bytes.len(),
            reader.metadata.node_count,
            reader.metadata.record_size,
        );
        // (How long it takes is printed, not asserted: a timed unit test fails on a busy
        // machine. It was under a second on 2 cores when measured.)

        let start = Instant::now();
        let db = geodb("100k", &bytes);
        eprintln!(
            "100,000 networks: opened and checked in {:.0} ms",
            start.elapsed().as_secs_f64() * 1000.0
        );

        let expected = |addr: IpAddr| -> GeoInfo {
            let record = match addr {
                IpAddr::V4(v4addr) => v4.get(&(u32::from(v4addr) >> 8)),
                IpAddr::V6(v6addr) => v6.get(&((u128::from(v6addr) >> 80) as u64)),
            };
            record.map_or(GeoInfo::default(), |r| GeoInfo {
                country: r.country,
                asn: r.asn,
            })
        };
        let mut addrs = Vec::new();
        for i in 0..4000 {
            let addr = if i % 2 == 0 {
                // An address inside a random network, half of them IPv6.
                let (net, _) = &networks[rng.gen_range(0..networks.len())];
                match net {
                    IpNet::V4(n) => {
                        IpAddr::V4(Ipv4Addr::from(u32::from(n.addr()) | rng.gen::<u8>() as u32))
                    }
                    IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(
                        u128::from(n.addr()) | rng.gen::<u64>() as u128,
                    )),
                }
            } else if i % 4 == 1 {
                IpAddr::V4(Ipv4Addr::from(rng.gen::<u32>()))
            } else {
                IpAddr::V6(Ipv6Addr::from(0x2000u128 << 112 | rng.gen::<u128>() >> 3))
            };
            addrs.push(addr);
        }
        let mut found = 0;
        for &addr in &addrs {
            let want = expected(addr);
            assert_eq!(db.lookup(addr), want, "{addr}");
            let raw = reader.lookup::<Value>(addr).unwrap();
            assert_eq!(raw.is_some(), want != GeoInfo::default(), "{addr}");
            found += usize::from(raw.is_some());
        }
        assert!(found > 2000, "{found} of the 4000 addresses found");

        let rounds = 100;
        let start = Instant::now();
        for _ in 0..rounds {
            for &addr in &addrs {
                std::hint::black_box(db.lookup(std::hint::black_box(addr)));
            }
        }
        eprintln!(
            "lookups: {:.0} ns per address",
            start.elapsed().as_nanos() as f64 / (rounds * addrs.len()) as f64
        );
    }
}
