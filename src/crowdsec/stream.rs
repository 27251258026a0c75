//! CrowdSec's decision stream (`GET /v1/decisions/stream`), read into changes for the store.
//!
//! The Local API answers `{"new": [...], "deleted": [...]}` where either list may be `null`;
//! each decision has at least `type`, `scope`, `value` and `duration` (a Go duration such as
//! `3h59m58.7s`, the time left). Scopes are `Ip`, `Range`, `Country` and `As` (any case); types
//! are `ban`, `captcha` or anything an operator's profile invents. Anything malformed in one
//! decision skips that decision, not the batch: one bad entry must not stop the others.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use thiserror::Error;

/// The largest answer read (a startup stream of 100,000 decisions is about 20 MB).
pub const MAX_BYTES: usize = 64 << 20;

/// What a decision asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    Ban,
    Captcha,
    /// A type this module does not know: treated per the configured fallback.
    Other,
}

/// Whom a decision is about. Single addresses are ranges of one address (/32, /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Range(IpNet),
    Country([u8; 2]),
    As(u32),
}

/// One change to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub remedy: Remedy,
    pub target: Target,
    /// Seconds the decision has left (for a deletion, unused).
    pub secs_left: u64,
    /// The Local API's id of the decision (0 when it has none): a deletion only clears the
    /// decision it names, not a newer one on the same target.
    pub id: u64,
}

/// A stream answer: decisions to add, decisions to remove, and how many entries were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub new: Vec<Change>,
    pub deleted: Vec<Change>,
    pub skipped: usize,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("not a decision stream: {0}")]
    NotJson(String),
}

/// The answer, read straight into decisions: a startup pull of 100,000 decisions is 20 MB of
/// JSON, which must not become a tree of values in the worker that fetches it. Fields are read
/// loosely (any JSON value) so that one odd decision is skipped, not the whole answer; fields
/// the module does not use (`origin`, `scenario`, `until`…) are skipped unread.
#[derive(Deserialize)]
struct RawStream {
    #[serde(default)]
    new: Option<Vec<RawDecision>>,
    #[serde(default)]
    deleted: Option<Vec<RawDecision>>,
}

#[derive(Deserialize)]
struct RawDecision {
    #[serde(rename = "type", default)]
    kind: Loose,
    #[serde(default)]
    scope: Loose,
    #[serde(default)]
    value: Loose,
    #[serde(default)]
    duration: Loose,
    #[serde(default)]
    id: Loose,
}

/// A field that may hold anything: strings and numbers are kept, everything else is ignored.
#[derive(Default)]
enum Loose {
    #[default]
    Missing,
    Text(String),
    Number(u64),
    Other,
}

impl Loose {
    fn text(&self) -> Option<&str> {
        match self {
            Loose::Text(text) => Some(text),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Loose, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Loose;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
                Ok(Loose::Number(v))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_unit<E>(self) -> Result<Loose, E> {
                Ok(Loose::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Loose, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Loose::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Loose, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Loose::Other)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Reads a stream answer.
pub fn parse(body: &[u8]) -> Result<Delta, StreamError> {
    if body.len() > MAX_BYTES {
        return Err(StreamError::TooLarge(MAX_BYTES));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(StreamError::NotJson(
            "the answer is not a JSON object".into(),
        ));
    }
    let raw: RawStream = serde_json::from_slice(body).map_err(|e| {
        let mut message = e.to_string();
        message.truncate(120);
        StreamError::NotJson(message)
    })?;
    let mut delta = Delta::default();
    for (list, out) in [(raw.new, &mut delta.new), (raw.deleted, &mut delta.deleted)] {
        for decision in list.unwrap_or_default() {
            match change(&decision) {
                Some(change) => out.push(change),
                None => delta.skipped += 1,
            }
        }
    }
    Ok(delta)
}

fn change(d: &RawDecision) -> Option<Change> {
    let remedy = match d.kind.text()?.to_ascii_lowercase().as_str() {
        "ban" => Remedy::Ban,
        "captcha" => Remedy::Captcha,
        _ => Remedy::Other,
    };
    let value = d.value.text()?.trim();
    let target = match d.scope.text()?.to_ascii_lowercase().as_str() {
        "ip" => Target::Range(IpNet::from(value.parse::<IpAddr>().ok()?)),
        "range" => Target::Range(value.parse::<IpNet>().ok()?.trunc()),
        "country" => match value.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Target::Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
            }
            _ => return None,
        },
        "as" => Target::As(
            value
                .trim_start_matches(['A', 'S', 'a', 's'])
                .parse()
                .ok()?,
        ),
        _ => return None,
    };
    let secs_left = match &d.duration {
        Loose::Missing => 0,
        duration => go_duration_secs(duration.text()?)?,
    };
    let id = match d.id {
        Loose::Number(id) => id,
        _ => 0,
    };
    Some(Change {
        remedy,
        target,
        secs_left,
        id,
    })
}

/// Seconds in a Go duration (`1h2m3.5s`, `-3s`, `300ms`, `1.5h`), rounded down; negative
/// durations (already expired) are 0. `None` when it is not a duration.
pub fn go_duration_secs(text: &str) -> Option<u64> {
    let text = text.trim();
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if negative || !total.is_finite() {
        return Some(0);
    }
    Some(total.min(u64::MAX as f64 / 2.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            go_duration_secs("3h59m58.123456789s"),
            Some(3 * 3600 + 59 * 60 + 58)
        );
        assert_eq!(go_duration_secs("4h"), Some(14400));
        assert_eq!(go_duration_secs("1.5h"), Some(5400));
        assert_eq!(go_duration_secs("59m"), Some(3540));
        assert_eq!(go_duration_secs("300ms"), Some(0));
        assert_eq!(go_duration_secs("-3.2s"), Some(0));
        assert_eq!(go_duration_secs("0"), Some(0));
        for bad in ["", "h", "3x", "3", "1h2", "abc", "--1s", "1..2s"] {
            assert_eq!(go_duration_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn startup_stream_with_every_scope() {
        let body = br#"{"deleted":null,"new":[
            {"duration":"3h59m55.756182786s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'localhost'","scope":"Ip","type":"ban","value":"192.0.2.7"},
            {"duration":"1h","id":2,"origin":"cscli","scenario":"x","scope":"Range","type":"captcha","value":"203.0.113.9/24"},
            {"duration":"1h","id":3,"origin":"cscli","scenario":"x","scope":"ip","type":"throttle","value":"2001:db8::1"},
            {"duration":"1h","id":4,"origin":"lists","scenario":"x","scope":"Country","type":"ban","value":"kp"},
            {"duration":"1h","id":5,"origin":"lists","scenario":"x","scope":"AS","type":"captcha","value":"64500"},
            {"duration":"1h","id":6,"scope":"Username","type":"ban","value":"root"},
            {"duration":"1h","id":7,"scope":"Ip","type":"ban","value":"not-an-ip"},
            {"id":8,"scope":"Ip","value":"192.0.2.8"}
        ]}"#;
        let delta = parse(body).unwrap();
        assert_eq!(delta.skipped, 3);
        assert!(delta.deleted.is_empty());
        assert_eq!(
            delta.new[0],
            Change {
                remedy: Remedy::Ban,
                target: Target::Range("192.0.2.7/32".parse().unwrap()),
                secs_left: 14395,
                id: 1
            }
        );
        assert_eq!(
            delta.new[1].target,
            Target::Range("203.0.113.0/24".parse().unwrap())
        );
        assert_eq!(delta.new[1].remedy, Remedy::Captcha);
        assert_eq!(delta.new[2].remedy, Remedy::Other);
        assert_eq!(
            delta.new[2].target,
            Target::Range("2001:db8::1/128".parse().unwrap())
        );
        assert_eq!(delta.new[3].target, Target::Country(*b"KP"));
        assert_eq!(delta.new[4].target, Target::As(64500));
    }

    #[test]
    fn nulls_empty_and_garbage() {
        assert_eq!(
            parse(br#"{"new":null,"deleted":null}"#).unwrap(),
            Delta::default()
        );
        assert_eq!(parse(br#"{}"#).unwrap(), Delta::default());
        let deleted = parse(br#"{"new":[],"deleted":[{"duration":"-2s","scope":"Ip","type":"ban","value":"192.0.2.7"}]}"#).unwrap();
        assert_eq!(deleted.deleted.len(), 1);
        assert_eq!(deleted.deleted[0].secs_left, 0);
        for garbage in [
            &b"<html>502</html>"[..],
            b"",
            b"[]",
            b"{\"new\": 5}",
            b"null",
        ] {
            assert!(
                parse(garbage).is_err(),
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }
    }

    /// Odd fields skip their decision only; ids are kept for deletions.
    #[test]
    fn odd_fields_skip_one_decision() {
        let body = br#"{"new":[
            {"duration":"1h","id":9,"scope":"Ip","type":"ban","value":"192.0.2.9","until":"2026-01-01T00:00:00Z","simulated":false,"meta":{"a":[1,2,{"b":null}]}},
            {"duration":3600,"id":10,"scope":"Ip","type":"ban","value":"192.0.2.10"},
            {"duration":"1h","id":11,"scope":"Ip","type":"ban","value":19216801},
            {"duration":"1h","id":"12","scope":["Ip"],"type":"ban","value":"192.0.2.12"},
            {"duration":"1h","id":-1,"scope":"Ip","type":"captcha","value":"192.0.2.13"}
        ],"deleted":[{"duration":"-1s","id":9,"scope":"Ip","type":"ban","value":"192.0.2.9"}],"extra":{"x":1}}"#;
        let delta = parse(body).unwrap();
        assert_eq!(delta.skipped, 3);
        assert_eq!((delta.new[0].id, delta.new[0].secs_left), (9, 3600));
        assert_eq!((delta.new[1].id, delta.new[1].remedy), (0, Remedy::Captcha));
        assert_eq!(delta.deleted[0].id, 9);
        assert!(
            parse(br#"{"new":[1]}"#).is_err(),
            "an entry that is not an object"
        );
    }
}
