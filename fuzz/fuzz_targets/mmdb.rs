//! A MaxMind database file (GeoLite2, GeoIP2, DB-IP), and lookups in it.
#![no_main]

use std::net::IpAddr;

use captchaify::reputation::geoip::GeoDb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = GeoDb::from_bytes("fuzz.mmdb", data.to_vec()) else { return };
    let _ = db.describe();
    let mut addrs: Vec<IpAddr> = ["1.2.3.4", "0.0.0.0", "255.255.255.255", "::", "2001:db8::1", "::ffff:8.8.8.8"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    // And addresses taken from the file itself, which land in the parts it describes.
    for chunk in data.chunks_exact(16).take(8) {
        addrs.push(IpAddr::from(<[u8; 16]>::try_from(chunk).unwrap()));
        addrs.push(IpAddr::from(<[u8; 4]>::try_from(&chunk[..4]).unwrap()));
    }
    for addr in addrs {
        let info = db.lookup(addr);
        if let Some(country) = info.country {
            assert!(country.as_bytes().iter().all(u8::is_ascii_uppercase));
        }
    }
});
