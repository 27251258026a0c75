//! Country and AS-number lookups in MaxMind-format (.mmdb) databases: GeoLite2 and GeoIP2
//! Country, City and ASN files, and DB-IP's country, city and ASN lite files.
//!
//! Each file is read whole into memory when the configuration is loaded (never mapped: the
//! file may be replaced while nginx runs) and checked from end to end before it is used.
//! The check is not optional: `maxminddb` 0.26 slices its buffer without bounds checks and
//! follows pointers without a depth limit, so a damaged file would make a lookup panic, and
//! the module is built with `panic = "abort"`, which would take the worker down. The check
//! reads every search-tree record and every value a lookup can reach exactly as the crate
//! will, and refuses the file unless all of it is in bounds; after that, lookups cannot fail
//! other than by not finding the address.
//!
//! What a file holds is learnt from the same pass, not from its `database_type`: a file holds
//! countries if some record has a top-level `country` or `registered_country` key, and AS
//! numbers if some record has `autonomous_system_number`. That way any database shaped like
//! MaxMind's (including one that holds both) is recognised whatever it is called.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GeoError {
    #[error("no GeoIP database given")]
    NoDatabase,
    #[error("cannot read GeoIP database \"{path}\": {error}")]
    Read { path: String, error: String },
    #[error("\"{path}\" is not a MaxMind database: {reason}")]
    Format { path: String, reason: String },
    #[error("GeoIP database \"{path}\" ({database_type}) holds neither countries nor AS numbers")]
    Useless { path: String, database_type: String },
    #[error("invalid country \"{0}\", expected a two-letter code such as DE")]
    Country(String),
    #[error("invalid AS number \"{0}\", expected e.g. 3320 or AS3320")]
    Asn(String),
}

/// An ISO 3166-1 alpha-2 country code, stored in upper case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters in either case: `de`, `DE`.
    pub fn parse(code: &str) -> Result<Country, GeoError> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(GeoError::Country(code.to_string())),
        }
    }

    /// From two bytes (as ip-api's answer is kept in the shared zone); `None` unless both
    /// are ASCII letters.
    pub fn from_bytes(code: [u8; 2]) -> Option<Country> {
        std::str::from_utf8(&code)
            .ok()
            .and_then(|s| Country::parse(s).ok())
    }

    /// The two upper-case letters.
    pub fn as_bytes(&self) -> [u8; 2] {
        self.0
    }

    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

/// An AS number as operators write it: `3320`, `AS3320` or `as3320`. AS 0 is reserved and
/// never appears in the databases, so it is refused rather than silently matching nothing.
pub fn parse_asn(value: &str) -> Result<u32, GeoError> {
    let digits = match value.get(..2) {
        Some(prefix) if prefix.eq_ignore_ascii_case("as") => &value[2..],
        _ => value,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(GeoError::Asn(value.to_string()));
    }
    digits
        .parse::<u32>()
        .ok()
        .filter(|&asn| asn != 0)
        .ok_or_else(|| GeoError::Asn(value.to_string()))
}

/// What the databases know about one address; `None` is "unknown".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeoInfo {
    pub country: Option<Country>,
    pub asn: Option<u32>,
}

/// The country and ASN databases of a configuration, searched in the order given.
pub struct GeoDb {
    files: Vec<GeoFile>,
}

struct GeoFile {
    reader: Reader<Vec<u8>>,
    holds: Holds,
}

#[derive(Debug, Default, Clone, Copy)]
struct Holds {
    countries: bool,
    asns: bool,
}

/// The part of a GeoLite2/GeoIP2/DB-IP record a lookup needs; serde skips the rest.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    registered_country: Option<Place<'a>>,
    autonomous_system_number: Option<u32>,
}

#[derive(Deserialize)]
struct Place<'a> {
    iso_code: Option<&'a str>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeoDb({})", self.describe())
    }
}

impl GeoDb {
    /// Reads and checks each file; any file that cannot be used is an error naming it.
    pub fn open(paths: &[impl AsRef<Path>]) -> Result<GeoDb, GeoError> {
        if paths.is_empty() {
            return Err(GeoError::NoDatabase);
        }
        let files = paths
            .iter()
            .map(|path| {
                let path = path.as_ref();
                let bytes = std::fs::read(path).map_err(|e| GeoError::Read {
                    path: path.display().to_string(),
                    error: e.to_string(),
                })?;
                GeoFile::load(&path.display().to_string(), bytes)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GeoDb { files })
    }

    /// One database from its bytes, as [`GeoDb::open`] checks a file; `name` stands for its
    /// path in errors.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<GeoDb, GeoError> {
        Ok(GeoDb {
            files: vec![GeoFile::load(name, bytes)?],
        })
    }

    /// The first country and the first AS number the files give for `addr`. An IPv4-mapped
    /// IPv6 address (`::ffff:a.b.c.d`) is looked up as the IPv4 address.
    pub fn lookup(&self, addr: IpAddr) -> GeoInfo {
        let addr = addr.to_canonical();
        let mut info = GeoInfo::default();
        for file in &self.files {
            let wants_country = info.country.is_none() && file.holds.countries;
            let wants_asn = info.asn.is_none() && file.holds.asns;
            if !wants_country && !wants_asn {
                continue;
            }
            let Some(record) = file.lookup(addr) else {
                continue;
            };
            if wants_country {
                info.country = [record.country, record.registered_country]
                    .iter()
                    .flatten()
                    .find_map(|place| place.iso_code.and_then(|c| Country::parse(c).ok()));
            }
            if wants_asn {
                info.asn = record.autonomous_system_number.filter(|&asn| asn != 0);
            }
        }
        info
    }

    pub fn has_countries(&self) -> bool {
        self.files.iter().any(|f| f.holds.countries)
    }

    pub fn has_asns(&self) -> bool {
        self.files.iter().any(|f| f.holds.asns)
    }

    /// One line for the start-up log: `GeoLite2-Country (built 2026-11-01) + GeoLite2-ASN
    /// (built 2026-11-03)`.
    pub fn describe(&self) -> String {
        self.files
            .iter()
            .map(|file| {
                let meta = &file.reader.metadata;
                format!("{} (built {})", meta.database_type, date(meta.build_epoch))
            })
            .collect::<Vec<_>>()
            .join(" + ")
    }
}

impl GeoFile {
    fn load(path: &str, bytes: Vec<u8>) -> Result<GeoFile, GeoError> {
        let format = |reason: String| GeoError::Format {
            path: path.to_string(),
            reason,
        };
        let (layout, holds) = check(&bytes).map_err(format)?;
        let reader = Reader::from_source(bytes).map_err(|e| format(e.to_string()))?;
        let meta = &reader.metadata;
        if (meta.node_count, meta.record_size, meta.ip_version)
            != (layout.node_count, layout.record_size, layout.ip_version)
        {
            return Err(format("its metadata is ambiguous".into()));
        }
        if !holds.countries && !holds.asns {
            return Err(GeoError::Useless {
                path: path.to_string(),
                database_type: meta.database_type.clone(),
            });
        }
        Ok(GeoFile { reader, holds })
    }

    fn lookup(&self, addr: IpAddr) -> Option<Record<'_>> {
        // An IPv4-only tree has no room for IPv6 addresses; walking it with 128 bits would
        // answer with whatever IPv4 network the first 32 bits happen to spell.
        if addr.is_ipv6() && self.reader.metadata.ip_version == 4 {
            return None;
        }
        self.reader.lookup::<Record>(addr).ok().flatten()
    }
}

const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";

/// How deeply values may nest, counting pointers: GeoIP2-City records need about six levels;
/// the limit also keeps the crate's recursive decoder far from the end of a worker's stack.
const MAX_DEPTH: usize = 32;

/// The search tree's shape, as the metadata gives it.
struct Layout {
    node_count: u32,
    record_size: u16,
    ip_version: u16,
}

/// Checks a whole file the way `maxminddb` 0.26 reads it: the metadata, every search-tree
/// record and every value a record leads to. Returns the tree's shape and what the records
/// hold.
fn check(buf: &[u8]) -> Result<(Layout, Holds), String> {
    // The last marker starts the metadata, as the crate finds it.
    let marker = buf
        .windows(METADATA_MARKER.len())
        .rposition(|window| window == METADATA_MARKER)
        .ok_or("it has no MaxMind metadata (the file may be truncated)")?;
    let layout = check_metadata(&buf[marker + METADATA_MARKER.len()..])
        .map_err(|e| format!("its metadata is damaged ({e})"))?;

    let node_count = layout.node_count as usize;
    let node_bytes = usize::from(layout.record_size) / 4;
    let data_start = node_count
        .checked_mul(node_bytes)
        .and_then(|tree| tree.checked_add(16))
        .filter(|&start| start <= marker)
        .ok_or("it is truncated: the search tree runs past the data section")?;
    let mut data = Section::new(&buf[data_start..marker]);
    let mut seen = vec![0u64; data.bytes.len() / 64 + 1];
    let mut holds = Holds::default();
    for node in 0..node_count {
        for side in 0..2 {
            let record = tree_record(buf, node * node_bytes, side, layout.record_size);
            if record <= node_count {
                continue; // another node, or no data
            }
            let offset = (record - node_count)
                .checked_sub(16)
                .filter(|&offset| offset < data.bytes.len())
                .ok_or("a search-tree record points outside the data section")?;
            if seen[offset / 64] & (1 << (offset % 64)) != 0 {
                continue;
            }
            seen[offset / 64] |= 1 << (offset % 64);
            data.check_root(offset)
                .map_err(|e| format!("the record at data offset {offset} is damaged ({e})"))?;
            for (key, _) in &data.top_keys {
                match *key {
                    b"country" | b"registered_country" => holds.countries = true,
                    b"autonomous_system_number" => holds.asns = true,
                    _ => {}
                }
            }
        }
    }
    Ok((layout, holds))
}

fn check_metadata(bytes: &[u8]) -> Result<Layout, &'static str> {
    let mut meta = Section::new(bytes);
    meta.check_root(0)?;
    let field = |name: &[u8]| {
        meta.top_keys
            .iter()
            .find(|(key, _)| *key == name)
            .and_then(|&(_, at)| meta.uint(at))
    };
    if field(b"binary_format_major_version") != Some(2) {
        return Err("binary format version 2 is the one supported");
    }
    let node_count = field(b"node_count")
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("no usable node_count")?;
    let record_size = field(b"record_size")
        .filter(|size| [24, 28, 32].contains(size))
        .ok_or("record_size is not 24, 28 or 32")? as u16;
    let ip_version = field(b"ip_version")
        .filter(|version| [4, 6].contains(version))
        .ok_or("ip_version is not 4 or 6")? as u16;
    Ok(Layout {
        node_count,
        record_size,
        ip_version,
    })
}

/// One of a node's two records (`side` 0 is the zero bit), read as the crate reads it. The
/// caller has made sure the node lies inside the buffer.
fn tree_record(buf: &[u8], base: usize, side: usize, record_size: u16) -> usize {
    let be = |bytes: &[u8]| bytes.iter().fold(0usize, |n, &b| n << 8 | usize::from(b));
    match record_size {
        24 => be(&buf[base + side * 3..base + side * 3 + 3]),
        28 => {
            let middle = usize::from(buf[base + 3]);
            let high = if side == 0 {
                middle >> 4
            } else {
                middle & 0x0f
            };
            high << 24 | be(&buf[base + side * 4..base + side * 4 + 3])
        }
        _ => be(&buf[base + side * 4..base + side * 4 + 4]),
    }
}

// The data section's types (https://maxmind.github.io/MaxMind-DB/), as the control byte
// gives them; 8 and above are "extended" types.
const POINTER: u8 = 1;
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const BYTES: u8 = 4;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const INT32: u8 = 8;
const UINT64: u8 = 9;
const UINT128: u8 = 10;
const ARRAY: u8 = 11;
const BOOL: u8 = 14;
const FLOAT: u8 = 15;

type Damage = &'static str;
const OUT_OF_BOUNDS: Damage = "a value runs past the end of its section";
const TOO_DEEP: Damage = "values nest too deeply or loop";

/// The data section or the metadata: values, and pointers relative to the section's start.
struct Section<'a> {
    bytes: &'a [u8],
    /// How many levels each pointer target already checked nests (a target is shared by
    /// many records, so it is checked once).
    heights: HashMap<usize, usize>,
    /// The top-level keys of the root value last checked, with where their values start.
    top_keys: Vec<(&'a [u8], usize)>,
}

impl<'a> Section<'a> {
    fn new(bytes: &'a [u8]) -> Section<'a> {
        Section {
            bytes,
            heights: HashMap::new(),
            top_keys: Vec::new(),
        }
    }

    fn span(&self, at: usize, len: usize) -> Result<&'a [u8], Damage> {
        let bytes: &'a [u8] = self.bytes;
        at.checked_add(len)
            .and_then(|end| bytes.get(at..end))
            .ok_or(OUT_OF_BOUNDS)
    }

    /// A value's type, its size field and where its payload starts.
    fn header(&self, at: usize) -> Result<(u8, usize, usize), Damage> {
        let ctrl = self.span(at, 1)?[0];
        let mut pos = at + 1;
        let mut kind = ctrl >> 5;
        if kind == 0 {
            let extended = self.span(pos, 1)?[0];
            pos += 1;
            // The crate adds 7 to this byte in a u8; only 1..=8 name real types.
            if !(1..=8).contains(&extended) {
                return Err("a value has an unknown type");
            }
            kind = extended + 7;
        }
        let size = usize::from(ctrl & 0x1f);
        if kind == POINTER {
            // The crate reads size bytes for pointers too, which misreads a four-byte pointer
            // whose three ignored bits are 5 or more; no writer produces that.
            if size > 28 {
                return Err("a pointer has a malformed control byte");
            }
            return Ok((kind, size, pos));
        }
        let extra = size.saturating_sub(28);
        let more = self
            .span(pos, extra)?
            .iter()
            .fold(0usize, |n, &b| n << 8 | usize::from(b));
        let size = match size {
            0..=28 => size,
            29 => 29 + more,
            30 => 285 + more,
            _ => 65_821 + more,
        };
        Ok((kind, size, pos + extra))
    }

    /// Where a pointer (size field `size`, bytes at `pos`) points, and where it ends.
    fn pointer(&self, size: usize, pos: usize) -> Result<(usize, usize), Damage> {
        let len = (size >> 3 & 0x3) + 1;
        let high = if len == 4 { 0 } else { size & 0x7 };
        let value = self
            .span(pos, len)?
            .iter()
            .fold(high, |n, &b| n << 8 | usize::from(b));
        let target = value + [0, 0, 2048, 526_336, 0][len];
        if target >= self.bytes.len() {
            return Err("a pointer points outside its section");
        }
        Ok((target, pos + len))
    }

    /// Checks a value from a search-tree record (or the metadata map), noting its top-level
    /// keys.
    fn check_root(&mut self, at: usize) -> Result<(), Damage> {
        self.top_keys.clear();
        self.value(at, 0, true).map(|_| ())
    }

    /// Checks the value at `at`, `depth` levels down; returns where it ends and how many
    /// levels it nests below itself.
    fn value(&mut self, at: usize, depth: usize, top: bool) -> Result<(usize, usize), Damage> {
        if depth > MAX_DEPTH {
            return Err(TOO_DEEP);
        }
        let (kind, size, pos) = self.header(at)?;
        let scalar = |max_size: usize| {
            if size > max_size {
                return Err("a number has an impossible size");
            }
            self.span(pos, size).map(|_| (pos + size, 0))
        };
        match kind {
            POINTER => {
                let (target, end) = self.pointer(size, pos)?;
                if self.header(target)?.0 == POINTER {
                    return Err("a pointer points to a pointer");
                }
                let height = match self.heights.get(&target) {
                    Some(&height) if !top => height,
                    _ => {
                        let (_, height) = self.value(target, depth + 1, top)?;
                        self.heights.insert(target, height);
                        height
                    }
                };
                if depth + 1 + height > MAX_DEPTH {
                    return Err(TOO_DEEP);
                }
                Ok((end, height + 1))
            }
            STRING | BYTES => self.span(pos, size).map(|_| (pos + size, 0)),
            DOUBLE if size == 8 => scalar(8),
            FLOAT if size == 4 => scalar(4),
            UINT16 => scalar(2),
            UINT32 | INT32 => scalar(4),
            UINT64 => scalar(8),
            UINT128 => scalar(16),
            BOOL if size <= 1 => Ok((pos, 0)),
            MAP | ARRAY => {
                let mut end = pos;
                let mut height = 0;
                for _ in 0..size {
                    if kind == MAP {
                        let key = self.key(end)?;
                        let (key_end, key_height) = self.value(end, depth + 1, false)?;
                        if top {
                            self.top_keys.push((key, key_end));
                        }
                        end = key_end;
                        height = height.max(key_height);
                    }
                    let (value_end, value_height) = self.value(end, depth + 1, false)?;
                    end = value_end;
                    height = height.max(value_height);
                }
                Ok((end, height + 1))
            }
            _ => Err("a value has an unknown type or a malformed size"),
        }
    }

    /// The bytes of a map key: a string, or a pointer to one.
    fn key(&self, at: usize) -> Result<&'a [u8], Damage> {
        let (mut kind, mut size, mut pos) = self.header(at)?;
        if kind == POINTER {
            let (target, _) = self.pointer(size, pos)?;
            (kind, size, pos) = self.header(target)?;
        }
        if kind != STRING {
            return Err("a map key is not a string");
        }
        self.span(pos, size)
    }

    /// An unsigned integer already checked, directly or through one pointer.
    fn uint(&self, at: usize) -> Option<u64> {
        let (mut kind, mut size, mut pos) = self.header(at).ok()?;
        if kind == POINTER {
            let (target, _) = self.pointer(size, pos).ok()?;
            (kind, size, pos) = self.header(target).ok()?;
        }
        if ![UINT16, UINT32, UINT64, UINT128].contains(&kind) || size > 8 {
            return None;
        }
        let bytes = self.span(pos, size).ok()?;
        Some(bytes.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time, for `describe`.
fn date(epoch: u64) -> String {
    // Howard Hinnant's civil-from-days, valid for any date after 1970.
    let days = (epoch / 86400) as i64 + 719_468;
    let era = days / 146_097;
    let doe = days - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reputation::mmdb_writer::{self, NetworkRecord};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn load(bytes: Vec<u8>) -> Result<GeoDb, GeoError> {
        Ok(GeoDb {
            files: vec![GeoFile::load("test.mmdb", bytes)?],
        })
    }

    fn format_error(bytes: Vec<u8>) -> String {
        match load(bytes) {
            Err(GeoError::Format { reason, .. }) => reason,
            Err(other) => panic!("expected a format error, got {other}"),
            Ok(_) => panic!("expected a format error, the file was accepted"),
        }
    }

    fn country(code: &str) -> Option<Country> {
        Some(Country::parse(code).unwrap())
    }

    // Hand-written data-section values, for files the writer would never produce.
    fn string(text: &str) -> Vec<u8> {
        assert!(text.len() < 29);
        [&[0x40 | text.len() as u8], text.as_bytes()].concat()
    }
    fn uint16(value: u16) -> Vec<u8> {
        [&[0xa2][..], &value.to_be_bytes()].concat()
    }
    fn uint32(value: u32) -> Vec<u8> {
        [&[0xc4][..], &value.to_be_bytes()].concat()
    }
    fn map(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = vec![0xe0 | entries.len() as u8];
        for (key, value) in entries {
            out.extend(string(key));
            out.extend(value);
        }
        out
    }
    fn pointer(at: u16) -> Vec<u8> {
        assert!(at < 2048);
        vec![0x20 | (at >> 8) as u8, at as u8]
    }
    fn iso(code: &str) -> Vec<u8> {
        map(&[("iso_code", string(code))])
    }

    fn metadata(ip_version: u16, node_count: u32, record_size: u16) -> Vec<u8> {
        map(&[
            ("binary_format_major_version", uint16(2)),
            ("binary_format_minor_version", uint16(0)),
            ("build_epoch", uint32(1_793_491_200)),
            ("database_type", string("Handmade")),
            ("description", map(&[])),
            ("ip_version", uint16(ip_version)),
            ("languages", vec![0x00, 0x04]), // an empty array (extended type 11)
            ("node_count", uint32(node_count)),
            ("record_size", uint16(record_size)),
        ])
    }

    /// A file by hand: raw 24-bit tree records (a record at data offset `o` is
    /// `node_count + 16 + o`), the data section and the metadata.
    fn handmade(ip_version: u16, tree: &[[u32; 2]], data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for record in tree.iter().flatten() {
            out.extend(&record.to_be_bytes()[1..]);
        }
        out.extend([0; 16]);
        out.extend(data);
        out.extend(METADATA_MARKER);
        out.extend(metadata(ip_version, tree.len() as u32, 24));
        out
    }

    /// One IPv4 node whose two halves both lead to the value at data offset 0.
    fn one_record(data: &[u8]) -> Vec<u8> {
        handmade(4, &[[17, 17]], data)
    }

    #[test]
    fn shared_by_worker_threads() {
        fn send_and_sync<T: Send + Sync>() {}
        send_and_sync::<GeoDb>();
    }

    #[test]
    fn countries() {
        for text in ["de", "DE", "dE"] {
            assert_eq!(Country::parse(text).unwrap().as_str(), "DE");
        }
        let at = Country::parse("at").unwrap();
        assert_eq!(at.to_string(), "AT");
        assert_eq!(format!("{at:?}"), "Country(AT)");
        for bad in ["", "D", "DEU", "d1", "é", "--", " de"] {
            assert_eq!(Country::parse(bad), Err(GeoError::Country(bad.into())));
        }
        assert_eq!(
            Country::parse("x").unwrap_err().to_string(),
            "invalid country \"x\", expected a two-letter code such as DE"
        );
    }

    #[test]
    fn as_numbers() {
        for text in ["3320", "AS3320", "as3320", "As3320"] {
            assert_eq!(parse_asn(text), Ok(3320));
        }
        assert_eq!(parse_asn("4294967295"), Ok(u32::MAX));
        for bad in [
            "",
            "AS",
            "0",
            "AS0",
            "-1",
            "+5",
            "4294967296",
            "AS 3320",
            " 3320",
            "33x",
            "ASN3320",
        ] {
            assert_eq!(parse_asn(bad), Err(GeoError::Asn(bad.into())), "{bad}");
        }
        assert_eq!(
            parse_asn("ASx").unwrap_err().to_string(),
            "invalid AS number \"ASx\", expected e.g. 3320 or AS3320"
        );
    }

    #[test]
    fn build_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_793_491_200 + 86_399), "2026-11-01");
    }

    #[test]
    fn country_falls_back_to_registered_country() {
        let db = load(one_record(&map(&[
            ("registered_country", iso("at")),
            ("autonomous_system_number", uint32(64_500)),
        ])))
        .unwrap();
        let expected = GeoInfo {
            country: country("AT"),
            asn: Some(64_500),
        };
        assert_eq!(db.lookup(ip("192.0.2.1")), expected);
        // IPv4-mapped addresses are IPv4 addresses; other IPv6 ones have no place in an
        // IPv4 tree.
        assert_eq!(db.lookup(ip("::ffff:192.0.2.1")), expected);
        assert_eq!(db.lookup(ip("2001:db8::1")), GeoInfo::default());

        let db = load(one_record(&map(&[
            ("country", iso("DE")),
            ("registered_country", iso("AT")),
        ])))
        .unwrap();
        assert_eq!(db.lookup(ip("192.0.2.1")).country, country("DE"));
        assert!(db.has_countries() && !db.has_asns());
        assert_eq!(db.describe(), "Handmade (built 2026-11-01)");
    }

    #[test]
    fn unusable_values_are_unknown() {
        // Wrong types are a failed lookup, never a wrong answer.
        let db = load(one_record(&map(&[
            ("country", string("DE")),
            ("autonomous_system_number", string("3320")),
        ])))
        .unwrap();
        assert_eq!(db.lookup(ip("192.0.2.1")), GeoInfo::default());
        let db = load(one_record(&map(&[("country", iso("D1"))]))).unwrap();
        assert_eq!(db.lookup(ip("192.0.2.1")), GeoInfo::default());
    }

    #[test]
    fn shared_values_through_pointers() {
        // Offset 0: {"country": {"iso_code": "FR"}}, which no tree record names; then a map
        // whose value points to the inner map, and a record that is a pointer to offset 0.
        let first = map(&[("country", iso("FR"))]);
        let inner = 1 + string("country").len() as u16;
        let second = map(&[("country", pointer(inner))]);
        let third_at = (first.len() + second.len()) as u32;
        let data = [first.clone(), second, pointer(0)].concat();
        // Two nodes: a record at data offset o is 2 + 16 + o; 2 itself is "no data".
        let tree = [[1, 18 + first.len() as u32], [18 + third_at, 2]];
        let db = load(handmade(4, &tree, &data)).unwrap();
        assert_eq!(db.lookup(ip("1.0.0.0")).country, country("FR")); // the pointer record
        assert_eq!(db.lookup(ip("200.0.0.0")).country, country("FR")); // the second map
        assert_eq!(db.lookup(ip("64.0.0.0")).country, None); // no data
    }

    #[test]
    fn several_files() {
        let net = |text: &str| text.parse::<ipnet::IpNet>().unwrap();
        let countries = mmdb_writer::build(
            "GeoLite2-Country",
            1_793_491_200,
            &[
                (
                    net("192.0.2.0/24"),
                    NetworkRecord {
                        country: country("DE"),
                        ..Default::default()
                    },
                ),
                (
                    net("2001:db8::/32"),
                    NetworkRecord {
                        country: country("NL"),
                        ..Default::default()
                    },
                ),
            ],
        )
        .unwrap();
        let more_countries = mmdb_writer::build(
            "DBIP-Country-Lite",
            1_793_491_200,
            &[
                (
                    net("192.0.2.0/24"),
                    NetworkRecord {
                        country: country("FR"),
                        ..Default::default()
                    },
                ),
                (
                    net("198.51.100.0/24"),
                    NetworkRecord {
                        country: country("IT"),
                        ..Default::default()
                    },
                ),
            ],
        )
        .unwrap();
        let asns = mmdb_writer::build(
            "GeoLite2-ASN",
            1_793_577_600,
            &[(
                net("192.0.2.0/23"),
                NetworkRecord {
                    asn: Some(3320),
                    org: Some("Deutsche Telekom AG".into()),
                    ..Default::default()
                },
            )],
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!("captchaify-geoip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths = [
            dir.join("country.mmdb"),
            dir.join("asn.mmdb"),
            dir.join("more.mmdb"),
        ];
        for (path, bytes) in paths.iter().zip([countries, asns, more_countries]) {
            std::fs::write(path, bytes).unwrap();
        }
        let db = GeoDb::open(&paths).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(
            db.describe(),
            "GeoLite2-Country (built 2026-11-01) + GeoLite2-ASN (built 2026-11-02) + \
             DBIP-Country-Lite (built 2026-11-01)"
        );
        assert!(db.has_countries() && db.has_asns());
        let info = |text: &str| db.lookup(ip(text));
        // The first file that knows the country gives it; the ASN comes from its own file.
        assert_eq!(
            info("192.0.2.7"),
            GeoInfo {
                country: country("DE"),
                asn: Some(3320)
            }
        );
        assert_eq!(
            info("::ffff:192.0.2.7"),
            GeoInfo {
                country: country("DE"),
                asn: Some(3320)
            }
        );
        assert_eq!(
            info("192.0.3.7"),
            GeoInfo {
                country: None,
                asn: Some(3320)
            }
        );
        assert_eq!(
            info("198.51.100.1"),
            GeoInfo {
                country: country("IT"),
                asn: None
            }
        );
        assert_eq!(
            info("2001:db8:1::1"),
            GeoInfo {
                country: country("NL"),
                asn: None
            }
        );
        assert_eq!(info("203.0.113.1"), GeoInfo::default());
    }

    #[test]
    fn errors_name_the_file() {
        assert_eq!(
            GeoDb::open(&[] as &[&str]).err(),
            Some(GeoError::NoDatabase)
        );
        let missing = GeoDb::open(&["/nonexistent/GeoLite2-Country.mmdb"])
            .err()
            .unwrap();
        assert_eq!(
            missing.to_string(),
            "cannot read GeoIP database \"/nonexistent/GeoLite2-Country.mmdb\": \
             No such file or directory (os error 2)"
        );
        let dir = std::env::temp_dir().join(format!("captchaify-garbage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.mmdb");
        std::fs::write(&garbage, b"<html>404 Not Found</html>\n").unwrap();
        let error = GeoDb::open(&[&garbage]).err().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "\"{}\" is not a MaxMind database: it has no MaxMind metadata (the file may be \
                 truncated)",
                garbage.display()
            )
        );

        let orgs_only = mmdb_writer::build(
            "Organisations",
            0,
            &[(
                "192.0.2.0/24".parse().unwrap(),
                NetworkRecord {
                    org: Some("Example".into()),
                    ..Default::default()
                },
            )],
        )
        .unwrap();
        assert_eq!(
            load(orgs_only).err().unwrap().to_string(),
            "GeoIP database \"test.mmdb\" (Organisations) holds neither countries nor AS numbers"
        );
        let cities_only = one_record(&map(&[("city", map(&[("geoname_id", uint32(2_950_159))]))]));
        assert!(matches!(load(cities_only), Err(GeoError::Useless { .. })));
    }

    #[test]
    fn damaged_files_are_refused() {
        let record = map(&[("country", iso("DE"))]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                one_record(&map(&[("country", pointer(0))])),
                "values nest too deeply or loop",
            ),
            (
                one_record(&[pointer(2), pointer(0)].concat()),
                "a pointer points to a pointer",
            ),
            (
                one_record(&map(&[("country", pointer(2000))])),
                "a pointer points outside its section",
            ),
            (
                one_record(&[[0x01, 0x04].repeat(40), string("x")].concat()),
                "values nest too deeply",
            ),
            (
                one_record(&[0x54, b'a']),
                "a value runs past the end of its section",
            ),
            (one_record(&[0x00, 200]), "a value has an unknown type"),
            (
                one_record(&[0x00, 5]),
                "a value has an unknown type or a malformed size",
            ), // type 12
            (
                one_record(&[0x64, 0, 0, 0, 0]),
                "a value has an unknown type or a malformed size",
            ),
            (
                one_record(&[0xa3, 0, 0, 0]),
                "a number has an impossible size",
            ),
            (one_record(&[0xe1, 0xa0, 0x40]), "a map key is not a string"),
            (
                one_record(&[0x3d, 0, 0, 0, 0, 0]),
                "a pointer has a malformed control byte",
            ),
            (
                handmade(4, &[[17 + 100, 17]], &record),
                "a search-tree record points outside the data section",
            ),
            (
                handmade(4, &[[1 + 8, 17]], &record),
                "a search-tree record points outside the data section",
            ),
        ];
        for (bytes, reason) in cases {
            let error = format_error(bytes);
            assert!(error.contains(reason), "{error:?} should say {reason:?}");
        }

        let mut huge_tree = vec![0; 6];
        huge_tree.extend([0; 16]);
        huge_tree.extend(&record);
        huge_tree.extend(METADATA_MARKER);
        huge_tree.extend(metadata(6, 1_000_000, 24));
        assert!(format_error(huge_tree).contains("the search tree runs past the data section"));
        let mut odd_records = handmade(4, &[[17, 17]], &record);
        let at = odd_records.len() - 2;
        odd_records[at..].copy_from_slice(&20u16.to_be_bytes());
        assert!(format_error(odd_records).contains("record_size is not 24, 28 or 32"));
    }

    #[test]
    fn the_crate_alone_would_panic() {
        // Why `check` exists: maxminddb 0.26 opens this file (a 16 MB string in a few bytes)
        // and then slices past its end on the first lookup. The module is built with
        // panic = "abort".
        let bytes = one_record(&[0x5f, 0xff, 0xff, 0xff]);
        let result = std::panic::catch_unwind(|| {
            let reader = Reader::from_source(bytes.clone()).unwrap();
            let _ = reader.lookup::<Record>(ip("192.0.2.1"));
        });
        assert!(result.is_err());
        assert!(load(bytes).is_err());
    }

    fn sample_file() -> Vec<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let codes = ["DE", "FR", "US", "NL", "JP"];
        let networks: Vec<_> = (0..40)
            .map(|i| {
                let net = if i % 2 == 0 {
                    ipnet::IpNet::new(IpAddr::from(rng.gen::<[u8; 4]>()), rng.gen_range(8..=32))
                } else {
                    ipnet::IpNet::new(IpAddr::from(rng.gen::<[u8; 16]>()), rng.gen_range(16..=64))
                };
                let record = NetworkRecord {
                    country: country(codes[i % codes.len()]),
                    asn: (i % 3 != 0).then_some(64_496 + i as u32),
                    org: (i % 3 == 1).then(|| format!("Example network {}", i % 4)),
                };
                (net.unwrap(), record)
            })
            .collect();
        mmdb_writer::build("Combined", 1_793_491_200, &networks).unwrap()
    }

    fn probe(db: &GeoDb, rng: &mut ChaCha8Rng) {
        for _ in 0..64 {
            db.lookup(IpAddr::from(rng.gen::<[u8; 4]>()));
            db.lookup(IpAddr::from(rng.gen::<[u8; 16]>()));
        }
    }

    #[test]
    fn truncated_files_are_refused_or_harmless() {
        let bytes = sample_file();
        assert!(load(bytes.clone()).is_ok());
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for len in 0..bytes.len() {
            if let Ok(db) = load(bytes[..len].to_vec()) {
                probe(&db, &mut rng);
            }
        }
    }

    #[test]
    fn corrupted_files_never_panic() {
        let bytes = sample_file();
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut accepted = 0;
        for _ in 0..5000 {
            let mut damaged = bytes.clone();
            for _ in 0..rng.gen_range(1..=4) {
                let at = rng.gen_range(0..damaged.len());
                damaged[at] = rng.gen();
            }
            if let Ok(db) = load(damaged) {
                accepted += 1;
                probe(&db, &mut rng);
            }
        }
        // Most single-byte changes hit names and values that are still well-formed.
        assert!(accepted > 0);
    }
}
