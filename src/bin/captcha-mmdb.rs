//! Small MaxMind-format databases for tests and for trying out country and AS rules.
//!
//! ```text
//! cargo run --release --no-default-features --features tools --bin captcha-mmdb -- COMMAND …
//! ```
//!
//! * `build OUT.mmdb [--type TYPE] SPEC` — writes a database from SPEC (a file, or `-` for
//!   standard input): one network per line, `CIDR [country=XX] [asn=N] [org=TEXT...]`, where
//!   `org=` takes the rest of the line and `#` starts a comment. A bare address is a /32 or
//!   /128. TYPE is the `database_type` readers report; without it the file is called
//!   `GeoLite2-Country`, `GeoLite2-ASN` or `captchaify-Combined` after what it holds. The
//!   build time is now, or `SOURCE_DATE_EPOCH` when set.
//! * `lookup DB.mmdb [DB.mmdb…] ADDRESS…` — country and AS number of each address, read as
//!   the module reads them (the first database that knows an answer gives it).
//!
//! Errors name the line they come from; the exit code is then 2.

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use captchaify::reputation::geoip::{parse_asn, Country, GeoDb};
use captchaify::reputation::mmdb_writer::{self, NetworkRecord};
use ipnet::IpNet;

fn usage() -> ExitCode {
    eprintln!(
        "usage: captcha-mmdb build OUT.mmdb [--type TYPE] SPEC\n       \
         captcha-mmdb lookup DB.mmdb [DB.mmdb...] ADDRESS..."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["build", rest @ ..] => match build_args(rest) {
            Some((out, kind, spec)) => build(out, kind, spec),
            None => return usage(),
        },
        ["lookup", db, rest @ ..] if !rest.is_empty() => lookup(db, rest),
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("captcha-mmdb: {e}");
            ExitCode::from(2)
        }
    }
}

/// `OUT [--type TYPE] SPEC`, with `--type` anywhere.
fn build_args<'a>(args: &[&'a str]) -> Option<(&'a str, Option<&'a str>, &'a str)> {
    let mut kind = None;
    let mut positional = Vec::new();
    let mut args = args.iter();
    while let Some(&arg) = args.next() {
        match arg {
            "--type" => kind = Some(*args.next()?),
            _ => positional.push(arg),
        }
    }
    match positional[..] {
        [out, spec] => Some((out, kind, spec)),
        _ => None,
    }
}

fn build(out: &str, kind: Option<&str>, spec_path: &str) -> Result<(), String> {
    let mut spec = String::new();
    if spec_path == "-" {
        std::io::stdin()
            .read_to_string(&mut spec)
            .map_err(|e| format!("standard input: {e}"))?;
    } else {
        spec = std::fs::read_to_string(spec_path).map_err(|e| format!("{spec_path}: {e}"))?;
    }
    let name = if spec_path == "-" { "stdin" } else { spec_path };
    let mut networks = Vec::new();
    for (index, line) in spec.lines().enumerate() {
        if let Some(network) = parse_line(line).map_err(|e| format!("{name}:{}: {e}", index + 1))? {
            networks.push(network);
        }
    }
    if networks.is_empty() {
        return Err(format!("{name}: no networks"));
    }
    let kind = kind.unwrap_or_else(|| {
        let countries = networks.iter().any(|(_, r)| r.country.is_some());
        let asns = networks
            .iter()
            .any(|(_, r)| r.asn.is_some() || r.org.is_some());
        match (countries, asns) {
            (true, false) => "GeoLite2-Country",
            (false, true) => "GeoLite2-ASN",
            _ => "captchaify-Combined",
        }
    });
    let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("SOURCE_DATE_EPOCH \"{value}\" is not a number"))?,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    let bytes = mmdb_writer::build(kind, epoch, &networks).map_err(|e| e.to_string())?;
    // Written aside and renamed, so that a server reading the file never sees half of it.
    let partial = format!("{out}.partial");
    std::fs::write(&partial, &bytes).map_err(|e| format!("{partial}: {e}"))?;
    std::fs::rename(&partial, out).map_err(|e| format!("{out}: {e}"))?;
    println!(
        "wrote {out}: {kind}, {} networks, {} bytes",
        networks.len(),
        bytes.len()
    );
    Ok(())
}

/// One SPEC line: `None` for blank lines and comments.
fn parse_line(line: &str) -> Result<Option<(IpNet, NetworkRecord)>, String> {
    // `#` starts a comment where it starts a word.
    let line = match line.match_indices('#').find(|&(at, _)| {
        line[..at]
            .chars()
            .next_back()
            .map_or(true, char::is_whitespace)
    }) {
        Some((at, _)) => &line[..at],
        None => line,
    };
    let line = line.trim();
    if line.is_empty() {
        return Ok(None);
    }
    let (network, mut fields) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let network = parse_network(network)?;
    let mut record = NetworkRecord::default();
    loop {
        fields = fields.trim_start();
        if fields.is_empty() {
            break;
        }
        let (field, after) = fields
            .split_once(char::is_whitespace)
            .unwrap_or((fields, ""));
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("\"{field}\" is not KEY=VALUE (country=, asn= or org=)"))?;
        let seen = match key {
            "country" => record
                .country
                .replace(Country::parse(value).map_err(|e| e.to_string())?)
                .is_some(),
            "asn" => record
                .asn
                .replace(parse_asn(value).map_err(|e| e.to_string())?)
                .is_some(),
            "org" => {
                // The organisation is the rest of the line, spaces and all.
                let org = fields["org=".len()..].trim_end();
                if org.is_empty() {
                    return Err("org= needs a name".into());
                }
                record.org = Some(org.to_string());
                break;
            }
            _ => {
                return Err(format!(
                    "unknown field \"{key}\", expected country=, asn= or org="
                ))
            }
        };
        if seen {
            return Err(format!("{key}= is given twice"));
        }
        fields = after;
    }
    if record == NetworkRecord::default() {
        return Err("nothing to record: give country=, asn= or org=".into());
    }
    Ok(Some((network, record)))
}

fn parse_network(text: &str) -> Result<IpNet, String> {
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
        format!("invalid network \"{text}\", expected e.g. 192.0.2.0/24 or 2001:db8::/32")
    })
}

fn lookup(first: &str, rest: &[&str]) -> Result<(), String> {
    // Database files come first, then the addresses.
    let split = rest
        .iter()
        .position(|arg| arg.parse::<IpAddr>().is_ok())
        .ok_or_else(|| {
            format!(
                "no address to look up (\"{}\" is not one)",
                rest[rest.len() - 1]
            )
        })?;
    let mut paths = vec![first];
    paths.extend(&rest[..split]);
    let db =
        GeoDb::open(&paths.iter().map(Path::new).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
    println!("# {}", db.describe());
    for arg in &rest[split..] {
        let addr: IpAddr = arg
            .parse()
            .map_err(|_| format!("invalid address \"{arg}\""))?;
        let info = db.lookup(addr);
        let country = info.country.map_or("-".to_string(), |c| c.to_string());
        let asn = info.asn.map_or("-".to_string(), |n| format!("AS{n}"));
        println!("{addr} country={country} asn={asn}");
    }
    Ok(())
}
