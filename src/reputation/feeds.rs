//! TEMPORARY stub (replaced by the feeds branch).
use std::net::IpAddr;
pub const SFS_MAX_ADDRESSES: usize = 15;
pub struct TorList { pub addrs: Vec<IpAddr>, pub skipped: usize }
pub fn parse_tor_exits(body: &[u8]) -> Result<TorList, String> {
    let text = String::from_utf8_lossy(body);
    let addrs: Vec<IpAddr> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
    if addrs.is_empty() { return Err("empty list".into()); }
    Ok(TorList { addrs, skipped: 0 })
}
pub struct IpApiAnswer { pub proxy: bool, pub hosting: bool, pub country: Option<[u8; 2]>, pub asn: Option<u32> }
pub fn ipapi_url(base: &str, addr: IpAddr) -> String { format!("{base}{addr}") }
pub fn parse_ipapi(_body: &[u8]) -> Result<IpApiAnswer, String> { Err("stub".into()) }
pub struct SfsAnswer { pub addr: IpAddr, pub appears: bool }
pub fn sfs_url(base: &str, _addrs: &[IpAddr]) -> String { base.to_string() }
pub fn parse_sfs(_body: &[u8]) -> Result<Vec<SfsAnswer>, String> { Err("stub".into()) }
pub struct Pacer;
impl Pacer { pub fn new(_: u32) -> Pacer { Pacer } pub fn wait_ms(&self, _: u64) -> u64 { 0 } pub fn sent(&mut self, _: u64) {} pub fn observed(&mut self, _: u64, _: Option<u32>, _: Option<u32>) {} pub fn throttled(&mut self, _: u64, _: Option<u32>) {} }
