//! CrowdSec alerts: what the module saw, pushed to the Local API as a machine would push it.
//!
//! The exchange (measured with Debian's CrowdSec 1.4.6, see `t/lib/crowdsec/README.md`):
//! `POST /v1/watchers/login` with [`login_json`] answers a JWT ([`parse_login`]), valid an
//! hour; then `POST /v1/alerts` with `Authorization: Bearer TOKEN` and [`alerts_json`] answers
//! 201 and the new alerts' ids ([`parse_alert_ids`]). The alerts carry no decisions: the Local
//! API's profiles turn them into decisions, so the operator decides what a failed captcha is
//! worth. The profiles only look at alerts with `"remediation": true`.
//!
//! Two things the Local API does with the alert's fields that matter here: a profile's
//! decision lasts its duration counted from the alert's `stop_at` (so `stop_at` must be the
//! last event, close to now, or the ban is shorter than the profile says), and times it
//! cannot parse become "now" with an error in its log. `leakspeed` is stored as given; we send
//! a Go duration as CrowdSec's own buckets do.

use std::net::IpAddr;

use serde_json::{json, Value};
use thiserror::Error;

/// The largest answer read from the login and alert endpoints (they answer a few hundred bytes).
pub const MAX_BYTES: usize = 64 << 10;
/// The largest token accepted (1.4.6's are about 300 bytes).
const MAX_TOKEN_BYTES: usize = 8 << 10;

/// What the module reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// A client gave too many wrong captcha answers within the failure window.
    CaptchaFailures,
    /// A client was refused (429) too often by the rate limit within a minute.
    Flood,
}

impl Scenario {
    pub const ALL: [Scenario; 2] = [Scenario::CaptchaFailures, Scenario::Flood];

    /// The scenario's name in CrowdSec (what profiles filter on).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::CaptchaFailures => "captchaify/captcha-failures",
            Scenario::Flood => "captchaify/flood",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Scenario::CaptchaFailures => "a client failed captchaify's captcha too many times",
            Scenario::Flood => "a client kept coming back after captchaify's rate limit refused it",
        }
    }
}

/// One client's behaviour worth an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub scenario: Scenario,
    pub addr: IpAddr,
    /// Wrong answers, or refused requests.
    pub count: u32,
    /// The window `count` was reached within.
    pub window_secs: u64,
    /// The first and the last of those events (Unix seconds).
    pub first_secs: u64,
    pub last_secs: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AlertError {
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("not a JSON answer: {0}")]
    NotJson(String),
    #[error("the answer is not {0}")]
    Shape(&'static str),
    #[error("refused: {0}")]
    Refused(String),
}

/// A machine's session: the token for `Authorization: Bearer` and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub token: String,
    /// Unix seconds; `None` when the answer has no readable `expire`.
    pub expires_secs: Option<u64>,
}

/// Whether an address may be reported: not the machine itself (loopback) nor nobody
/// (unspecified), in either family or as an IPv4-mapped IPv6 address.
pub fn may_report(addr: IpAddr) -> bool {
    let addr = addr.to_canonical();
    !(addr.is_loopback() || addr.is_unspecified())
}

/// The body of `POST /v1/watchers/login`. The scenarios are what `cscli machines list`
/// shows for the machine.
pub fn login_json(machine: &str, password: &str) -> String {
    let scenarios: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
    json!({ "machine_id": machine, "password": password, "scenarios": scenarios }).to_string()
}

/// The body of `POST /v1/alerts`: one alert per signal, every field 1.4.6 requires, no
/// decisions. `machine` (our login) ends the message; `version` is the scenarios' version.
pub fn alerts_json(signals: &[Signal], machine: &str, version: &str) -> String {
    Value::Array(signals.iter().map(|s| alert(s, machine, version)).collect()).to_string()
}

fn alert(signal: &Signal, machine: &str, version: &str) -> Value {
    let addr = signal.addr.to_canonical().to_string();
    let window = human_duration(signal.window_secs);
    let count = signal.count;
    let what = match signal.scenario {
        Scenario::CaptchaFailures => format!("failed the captcha {count} times"),
        Scenario::Flood => format!("was refused {count} requests by the rate limit"),
    };
    json!({
        "scenario": signal.scenario.name(),
        "scenario_hash": "",
        "scenario_version": version,
        "message": format!("Ip {addr} {what} within {window} ({machine})"),
        "events_count": count.min(i32::MAX as u32),
        "events": [],
        "start_at": rfc3339(signal.first_secs.min(signal.last_secs)),
        "stop_at": rfc3339(signal.first_secs.max(signal.last_secs)),
        "capacity": count.min(i32::MAX as u32),
        "leakspeed": go_duration(signal.window_secs),
        "simulated": false,
        "remediation": true,
        "source": { "scope": "Ip", "value": addr, "ip": addr },
    })
}

/// Reads the login answer, `{"code":200,"expire":"2026-11-21T14:03:57Z","token":"eyJ…"}`;
/// a refusal is `{"code":401,"message":"incorrect Username or Password"}`.
pub fn parse_login(body: &[u8]) -> Result<Login, AlertError> {
    let Value::Object(answer) = parse_json(body)? else {
        return Err(AlertError::Shape("a JSON object"));
    };
    let code = answer.get("code").and_then(Value::as_u64);
    let token = answer.get("token").and_then(Value::as_str).unwrap_or("");
    if code.is_some_and(|c| c != 200) || token.is_empty() {
        let mut message = answer
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no token")
            .to_string();
        truncate(&mut message, 120);
        return Err(AlertError::Refused(match code {
            Some(code) => format!("{code} {message}"),
            None => message,
        }));
    }
    // It goes into a header line: visible ASCII only (a JWT is base64url and dots).
    if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AlertError::Shape("a usable token"));
    }
    let expires_secs = answer
        .get("expire")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    Ok(Login {
        token: token.to_string(),
        expires_secs,
    })
}

/// Reads the alerts answer, the new alerts' ids (`["3","4"]`), into how many were created.
pub fn parse_alert_ids(body: &[u8]) -> Result<usize, AlertError> {
    match parse_json(body)? {
        Value::Array(ids) => Ok(ids.len()),
        Value::Null => Ok(0),
        _ => Err(AlertError::Shape("a JSON array")),
    }
}

fn parse_json(body: &[u8]) -> Result<Value, AlertError> {
    if body.len() > MAX_BYTES {
        return Err(AlertError::TooLarge(MAX_BYTES));
    }
    serde_json::from_slice(body).map_err(|e| {
        let mut message = e.to_string();
        truncate(&mut message, 120);
        AlertError::NotJson(message)
    })
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// A duration as Go's `time.Duration.String` writes whole seconds: `0s`, `45s`, `1m0s`,
/// `2h0m0s` (what `time.ParseDuration` reads back).
pub fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s}s"),
        _ => format!("{h}h{m}m{s}s"),
    }
}

/// A duration for people: `2h`, `1m`, `1h30m`, `90s` → `1m30s`.
fn human_duration(secs: u64) -> String {
    let mut out = String::new();
    for (n, unit) in [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")] {
        if n > 0 {
            out += &format!("{n}{unit}");
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

// ----- Time ---------------------------------------------------------------------------------

/// The last second RFC 3339's four-digit years can write (9999-12-31T23:59:59Z).
const MAX_SECS: u64 = 253_402_300_799;

/// Unix seconds as RFC 3339 in UTC, `2026-11-21T14:03:57Z`; later than year 9999 is written
/// as its last second.
pub fn rfc3339(unix_secs: u64) -> String {
    let secs = unix_secs.min(MAX_SECS);
    let (year, month, day) = civil_from_days((secs / 86400) as i64);
    let second = secs % 86400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

/// RFC 3339 to Unix seconds: `2026-11-21T14:03:57Z`, with fractional seconds (dropped), `z`,
/// a `t` or space separator, or an offset such as `+00:00` or `-05:30`. `None` for anything
/// else, and for times before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (number(&b[0..4])?, number(&b[5..7])?, number(&b[8..10])?);
    let (hour, minute, second) = (
        number(&b[11..13])?,
        number(&b[14..16])?,
        number(&b[17..19])?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // 60: a leap second, which Unix time does not count (Go refuses it too).
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &fraction[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (number(&[*h1, *h2])?, number(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let offset = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let local = days * 86400 + i64::from(hour * 3600 + minute * 60 + second);
    u64::try_from(local - offset).ok()
}

/// A run of ASCII digits as a number (at most four here).
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// `civil_from_days`: eras of 400 years, years starting in March so February comes last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March is 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn signal(scenario: Scenario, addr: &str) -> Signal {
        Signal {
            scenario,
            addr: ip(addr),
            count: 3,
            window_secs: 7200,
            first_secs: 1_795_266_237,
            last_secs: 1_795_269_837,
        }
    }

    #[test]
    fn known_dates() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (59, "1970-01-01T00:00:59Z"),
            (94_694_399, "1972-12-31T23:59:59Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_800, "2000-03-01T00:00:00Z"),
            (1_795_269_837, "2026-11-21T14:03:57Z"),
            (2_147_483_647, "2038-01-19T03:14:07Z"),
            (2_147_483_648, "2038-01-19T03:14:08Z"),
            (4_294_967_296, "2106-02-07T06:28:16Z"),
            (3_981_355_200, "2096-02-29T12:00:00Z"),
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (13_574_563_200, "2400-02-29T00:00:00Z"),
            (MAX_SECS, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(secs), text, "{secs}");
            assert_eq!(parse_rfc3339(text), Some(secs), "{text}");
        }
        assert_eq!(rfc3339(MAX_SECS + 1), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn every_day_round_trips() {
        let mut previous = None;
        for day in 0..=MAX_SECS / 86400 {
            let secs = day * 86400 + (day * 7919) % 86400;
            let text = rfc3339(secs);
            assert_eq!(parse_rfc3339(&text), Some(secs), "{text}");
            let date = text[..10].to_string();
            assert!(previous.as_ref() < Some(&date), "{date} after {previous:?}");
            previous = Some(date);
        }
    }

    #[test]
    fn rfc3339_variants() {
        let at = Some(1_795_269_837);
        for text in [
            "2026-11-21T14:03:57Z",
            "2026-11-21t14:03:57z",
            "2026-11-21 14:03:57Z",
            "2026-11-21T14:03:57.999999999Z",
            "2026-11-21T14:03:57.5+00:00",
            "2026-11-21T14:03:57-00:00",
            "2026-11-21T15:33:57+01:30",
            "2026-11-21T09:03:57-05:00",
            "2026-11-22T00:03:57+10:00",
        ] {
            assert_eq!(parse_rfc3339(text), at, "{text}");
        }
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        for bad in [
            "",
            "2026-11-21",
            "2026-11-21T14:03:57",
            "2026-11-21T14:03:57+0000",
            "2026-11-21T14:03:57+00",
            "2026-11-21T14:03:57.Z",
            "2026-11-21T14:03:57ZZ",
            "2026-11-21T14:03:60Z",
            "2026-11-21T24:00:00Z",
            "2026-13-21T14:03:57Z",
            "2026-00-21T14:03:57Z",
            "2026-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "+026-11-21T14:03:57Z",
            "2026-1a-21T14:03:57Z",
            "2026-11-21T14:03:57+24:00",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:59:59+01:00",
            "2026-11-21T14:03:57Z\n",
            "２026-11-21T14:03:57Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1_709_164_800));
    }

    #[test]
    fn durations() {
        for (secs, go, human) in [
            (0, "0s", "0s"),
            (45, "45s", "45s"),
            (60, "1m0s", "1m"),
            (90, "1m30s", "1m30s"),
            (3600, "1h0m0s", "1h"),
            (7200, "2h0m0s", "2h"),
            (5400, "1h30m0s", "1h30m"),
            (90061, "25h1m1s", "25h1m1s"),
        ] {
            assert_eq!(
                (go_duration(secs).as_str(), human_duration(secs).as_str()),
                (go, human),
                "{secs}"
            );
            assert_eq!(crate::crowdsec::stream::go_duration_secs(go), Some(secs));
        }
    }

    #[test]
    fn who_may_be_reported() {
        for addr in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
        ] {
            assert!(!may_report(ip(addr)), "{addr}");
        }
        for addr in [
            "198.51.100.7",
            "10.0.0.1",
            "2001:db8::7",
            "::ffff:198.51.100.7",
            "::2",
        ] {
            assert!(may_report(ip(addr)), "{addr}");
        }
    }

    #[test]
    fn an_alert_has_every_required_field() {
        let body = alerts_json(
            &[signal(Scenario::CaptchaFailures, "198.51.100.7")],
            "captchaify",
            "0.1.0",
        );
        let alerts: Value = serde_json::from_str(&body).unwrap();
        let alert = &alerts.as_array().unwrap()[0];
        let expected = json!({
            "scenario": "captchaify/captcha-failures",
            "scenario_hash": "",
            "scenario_version": "0.1.0",
            "message": "Ip 198.51.100.7 failed the captcha 3 times within 2h (captchaify)",
            "events_count": 3,
            "events": [],
            "start_at": "2026-11-21T13:03:57Z",
            "stop_at": "2026-11-21T14:03:57Z",
            "capacity": 3,
            "leakspeed": "2h0m0s",
            "simulated": false,
            "remediation": true,
            "source": { "scope": "Ip", "value": "198.51.100.7", "ip": "198.51.100.7" },
        });
        assert_eq!(alert, &expected);
        assert!(alert.get("decisions").is_none());
    }

    #[test]
    fn alerts_for_several_signals() {
        let mut flood = signal(Scenario::Flood, "::ffff:203.0.113.9");
        (flood.count, flood.window_secs) = (30, 60);
        (flood.first_secs, flood.last_secs) = (flood.last_secs, flood.first_secs);
        let six = signal(Scenario::CaptchaFailures, "2001:db8::7");
        let body = alerts_json(&[flood, six], "edge \"1\"", "1.2.3");
        let alerts: Vec<Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0]["scenario"], "captchaify/flood");
        assert_eq!(alerts[0]["source"]["value"], "203.0.113.9");
        assert_eq!(alerts[0]["source"]["ip"], "203.0.113.9");
        assert_eq!(
            alerts[0]["message"],
            "Ip 203.0.113.9 was refused 30 requests by the rate limit within 1m (edge \"1\")"
        );
        assert_eq!(
            (&alerts[0]["leakspeed"], &alerts[0]["capacity"]),
            (&json!("1m0s"), &json!(30))
        );
        assert!(alerts[0]["start_at"].as_str() < alerts[0]["stop_at"].as_str());
        assert_eq!(alerts[1]["source"]["value"], "2001:db8::7");
        assert_eq!(alerts_json(&[], "m", "v"), "[]");
    }

    #[test]
    fn login_body() {
        let body: Value = serde_json::from_str(&login_json("captchaify", "p\"w\\d\n")).unwrap();
        assert_eq!(body["machine_id"], "captchaify");
        assert_eq!(body["password"], "p\"w\\d\n");
        assert_eq!(
            body["scenarios"],
            json!(["captchaify/captcha-failures", "captchaify/flood"])
        );
    }

    #[test]
    fn login_answers() {
        let ok = parse_login(
            br#"{"code":200,"expire":"2026-11-21T14:03:57Z","token":"eyJhbGci.eyJl.c2ln"}"#,
        )
        .unwrap();
        assert_eq!(
            ok,
            Login {
                token: "eyJhbGci.eyJl.c2ln".into(),
                expires_secs: Some(1_795_269_837)
            }
        );
        let odd =
            parse_login(br#"{"expire":"2026-11-21T14:03:57.123+00:00","token":"t"}"#).unwrap();
        assert_eq!(odd.expires_secs, Some(1_795_269_837));
        assert_eq!(
            parse_login(br#"{"code":200,"expire":"soon","token":"t"}"#)
                .unwrap()
                .expires_secs,
            None
        );
        assert_eq!(
            parse_login(br#"{"code":200,"expire":5,"token":"t"}"#)
                .unwrap()
                .expires_secs,
            None
        );
        assert_eq!(parse_login(br#"{"token":"t"}"#).unwrap().expires_secs, None);
        assert_eq!(
            parse_login(br#"{"code":401,"message":"incorrect Username or Password"}"#),
            Err(AlertError::Refused(
                "401 incorrect Username or Password".into()
            ))
        );
        assert_eq!(
            parse_login(br#"{"code":500,"token":"t"}"#),
            Err(AlertError::Refused("500 no token".into()))
        );
        assert_eq!(
            parse_login(br#"{"code":200,"token":""}"#),
            Err(AlertError::Refused("200 no token".into()))
        );
        assert_eq!(
            parse_login(br#"{"token":"a b"}"#),
            Err(AlertError::Shape("a usable token"))
        );
        assert_eq!(
            parse_login(b"{\"token\":\"a\\r\\nX-Evil: 1\"}"),
            Err(AlertError::Shape("a usable token"))
        );
        let long = format!("{{\"token\":\"{}\"}}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(
            parse_login(long.as_bytes()),
            Err(AlertError::Shape("a usable token"))
        );
        let long_message = format!("{{\"code\":401,\"message\":\"{}\"}}", "é".repeat(200));
        assert!(
            matches!(parse_login(long_message.as_bytes()), Err(AlertError::Refused(m)) if m.len() <= 124)
        );
        for garbage in [
            &b"<html>502</html>"[..],
            b"",
            b"[]",
            b"null",
            b"\"token\"",
            b"{\"token\":5}",
            b"\xff\xfe",
        ] {
            assert!(
                parse_login(garbage).is_err(),
                "{:?}",
                String::from_utf8_lossy(garbage)
            );
        }
        let huge = vec![b' '; MAX_BYTES + 1];
        assert_eq!(parse_login(&huge), Err(AlertError::TooLarge(MAX_BYTES)));
    }

    #[test]
    fn alert_id_answers() {
        assert_eq!(parse_alert_ids(br#"["3","4"]"#), Ok(2));
        assert_eq!(parse_alert_ids(b"[]"), Ok(0));
        assert_eq!(parse_alert_ids(b"null"), Ok(0));
        assert_eq!(
            parse_alert_ids(br#"{"message":"cookie token is empty"}"#),
            Err(AlertError::Shape("a JSON array"))
        );
        assert!(matches!(
            parse_alert_ids(b"[\"3\""),
            Err(AlertError::NotJson(_))
        ));
        assert_eq!(
            parse_alert_ids(&vec![b' '; MAX_BYTES + 1]),
            Err(AlertError::TooLarge(MAX_BYTES))
        );
    }

    /// Any bytes: an answer or an error, never a panic.
    #[test]
    fn parsers_are_total() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"0123456789-:.TZtz+ \"{}[],:abcdeknoprstx\xff";
        for _ in 0..200_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = parse_login(&bytes);
            let _ = parse_alert_ids(&bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = parse_rfc3339(text);
            }
        }
        let base = b"2026-11-21T14:03:57.5+01:30";
        for i in 0..base.len() {
            for b in 0..=255u8 {
                let mut text = base.to_vec();
                text[i] = b;
                if let Ok(text) = std::str::from_utf8(&text) {
                    let _ = parse_rfc3339(text);
                }
                let _ = parse_rfc3339(std::str::from_utf8(&base[..i]).unwrap());
            }
        }
    }

    // ----- Against a real Local API ---------------------------------------------------------

    /// Logs in, reports two signals and reads the profile's bans back from the bouncer stream.
    /// Needs a Local API with the test profiles (`t/lib/crowdsec/`), a machine and a bouncer:
    /// ```sh
    /// dir=$(mktemp -d); url=$(scripts/crowdsec-lapi start $dir 8101)
    /// scripts/crowdsec-lapi machine $dir captchaify secret
    /// key=$(scripts/crowdsec-lapi bouncer $dir alerts-test)
    /// CROWDSEC_URL=$url CROWDSEC_MACHINE=captchaify CROWDSEC_PASSWORD=secret CROWDSEC_KEY=$key \
    ///   cargo test --release --no-default-features crowdsec::alerts -- --ignored
    /// scripts/crowdsec-lapi stop $dir
    /// ```
    #[test]
    #[ignore]
    fn real_local_api() {
        let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        let url = env("CROWDSEC_URL").trim_end_matches('/').to_string();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let post = |path: &str, token: Option<&str>, body: String| {
            let mut request = agent
                .post(format!("{url}{path}"))
                .content_type("application/json");
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            let mut response = request.send(body).unwrap();
            (
                response.status().as_u16(),
                response.body_mut().read_to_vec().unwrap(),
            )
        };

        let (status, body) = post(
            "/v1/watchers/login",
            None,
            login_json(&env("CROWDSEC_MACHINE"), "wrong"),
        );
        assert_eq!(status, 401);
        assert!(matches!(parse_login(&body), Err(AlertError::Refused(_))));
        let (status, body) = post(
            "/v1/watchers/login",
            None,
            login_json(&env("CROWDSEC_MACHINE"), &env("CROWDSEC_PASSWORD")),
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let login = parse_login(&body).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expires = login.expires_secs.expect("an expiry");
        assert!(
            expires.abs_diff(now + 3600) < 60,
            "expires at {expires}, now {now}"
        );

        let failures = Signal {
            scenario: Scenario::CaptchaFailures,
            addr: ip("198.51.100.7"),
            count: 3,
            window_secs: 7200,
            first_secs: now - 300,
            last_secs: now,
        };
        let flood = Signal {
            scenario: Scenario::Flood,
            addr: ip("::ffff:203.0.113.9"),
            count: 30,
            window_secs: 60,
            first_secs: now - 40,
            last_secs: now,
        };
        let (status, body) = post(
            "/v1/alerts",
            Some(&login.token),
            alerts_json(&[failures, flood], "captchaify", "test"),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        assert_eq!(parse_alert_ids(&body), Ok(2));

        let mut response = agent
            .get(format!("{url}/v1/decisions/stream?startup=true"))
            .header("X-Api-Key", env("CROWDSEC_KEY"))
            .call()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let stream: Value =
            serde_json::from_slice(&response.body_mut().read_to_vec().unwrap()).unwrap();
        for (value, scenario) in [
            ("198.51.100.7", failures.scenario),
            ("203.0.113.9", flood.scenario),
        ] {
            let decision = stream["new"]
                .as_array()
                .and_then(|new| {
                    new.iter()
                        .rev()
                        .find(|d| d["value"] == value && d["scenario"] == scenario.name())
                })
                .unwrap_or_else(|| panic!("no decision for {value} in {stream}"));
            assert_eq!(
                (&decision["type"], &decision["scope"], &decision["origin"]),
                (&json!("ban"), &json!("Ip"), &json!("crowdsec"))
            );
            let left =
                crate::crowdsec::stream::go_duration_secs(decision["duration"].as_str().unwrap())
                    .unwrap();
            assert!((3500..=3600).contains(&left), "{decision}");
        }
    }
}
