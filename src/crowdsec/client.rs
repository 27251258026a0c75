//! The Local API over HTTP: the bouncer pulls the decision stream with its key, the machine
//! logs in and posts alerts with its token. Each call is one blocking exchange (or, for the
//! machine, the few a login takes) and returns what the answer says or a [`LapiError`] whose
//! text is what the log shows. The threads that call them are the nginx side's
//! (`nginx::background::crowdsec`).

use thiserror::Error;

use super::alerts::{self, AlertError, Login, Signal};
use super::stream::{self, Delta, StreamError};
use super::LapiSpec;
use crate::reputation::fetch::{agent, USER_AGENT};

/// As CrowdSec's remediation-component spec asks: `crowdsec-<name>-bouncer/<version>`.
pub const BOUNCER_AGENT: &str = concat!("crowdsec-captchaify-bouncer/", env!("CARGO_PKG_VERSION"));

/// Why an exchange with the Local API gave nothing usable.
#[derive(Debug, Error)]
pub enum LapiError {
    /// No answer, or not all of it: refused, timed out, cut, too large.
    #[error(transparent)]
    Http(#[from] ureq::Error),
    #[error("the Local API refuses the bouncer key (HTTP 403): check key_file")]
    KeyRefused,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("logging in: {0}")]
    LoginHttp(ureq::Error),
    #[error("logging in as \"{login}\": {error}")]
    Login { login: String, error: AlertError },
    #[error("posting alerts: HTTP status {status}: {excerpt}")]
    Posting { status: u16, excerpt: String },
    /// The token of a login just made is refused as well.
    #[error("posting alerts: the Local API refuses the machine's fresh token (HTTP 401)")]
    FreshTokenRefused,
    /// A 200 or 201 whose body is not the new alerts' ids.
    #[error(transparent)]
    Alerts(#[from] AlertError),
}

/// The bouncer: pulls decisions with its key (`X-Api-Key`).
pub struct Bouncer {
    deltas: ureq::Agent,
    fulls: ureq::Agent,
    url: String,
    key: String,
    scopes: &'static str,
}

impl Bouncer {
    /// `scopes`: what the stream is asked for, e.g. `ip,range`.
    pub fn new(lapi: &LapiSpec, key: String, scopes: &'static str) -> Bouncer {
        Bouncer {
            deltas: agent(lapi.timeout_secs, BOUNCER_AGENT),
            // A startup answer can be tens of megabytes: it gets more time.
            fulls: agent(lapi.timeout_secs.max(60), BOUNCER_AGENT),
            url: lapi.url.clone(),
            key,
            scopes,
        }
    }

    /// `GET /v1/decisions/stream`: with `full`, every decision in force (`startup=true`);
    /// otherwise what changed since the last pull. The changes, and the answer's size.
    pub fn pull(&self, full: bool) -> Result<(Delta, usize), LapiError> {
        let url = format!(
            "{}v1/decisions/stream?startup={}&scopes={}",
            self.url, full, self.scopes
        );
        let agent = if full { &self.fulls } else { &self.deltas };
        let mut response = agent.get(&url).header("X-Api-Key", &self.key).call()?;
        match response.status().as_u16() {
            200 => {}
            403 => return Err(LapiError::KeyRefused),
            status => return Err(LapiError::Status(status)),
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(stream::MAX_BYTES as u64)
            .read_to_vec()?;
        let delta = stream::parse(&body)?;
        Ok((delta, body.len()))
    }
}

/// The machine: reports alerts with the token of its login (`Authorization: Bearer`),
/// logging in when it has none, when it is about to expire, or when it is refused.
pub struct MachineSession {
    agent: ureq::Agent,
    url: String,
    login: String,
    password: String,
    session: Option<Login>,
}

impl MachineSession {
    pub fn new(lapi: &LapiSpec, login: &str, password: &str) -> MachineSession {
        MachineSession {
            agent: agent(lapi.timeout_secs, USER_AGENT),
            url: lapi.url.clone(),
            login: login.to_string(),
            password: password.to_string(),
            session: None,
        }
    }

    /// `POST /v1/alerts`, one alert per signal; `now_secs` tells a token about to expire.
    pub fn report(&mut self, batch: &[Signal], now_secs: u64) -> Result<(), LapiError> {
        let body = alerts::alerts_json(batch, &self.login, env!("CARGO_PKG_VERSION"));
        for _ in 0..2 {
            let expiring = self
                .session
                .as_ref()
                .is_some_and(|t| t.expires_secs.is_some_and(|e| e <= now_secs + 60));
            if self.session.is_none() || expiring {
                self.session = Some(self.log_in()?);
            }
            let token = self.session.as_ref().map_or("", |t| t.token.as_str());
            let mut response = self
                .agent
                .post(&format!("{}v1/alerts", self.url))
                .header("Authorization", &format!("Bearer {token}"))
                .content_type("application/json")
                .send(body.as_bytes())?;
            let status = response.status().as_u16();
            let answer = response
                .body_mut()
                .with_config()
                .limit(alerts::MAX_BYTES as u64)
                .read_to_vec()
                .unwrap_or_default();
            match status {
                200 | 201 => return Ok(alerts::parse_alert_ids(&answer).map(|_| ())?),
                // The token ran out early (the Local API restarted, say): log in again, once.
                401 => self.session = None,
                status => {
                    return Err(LapiError::Posting {
                        status,
                        excerpt: String::from_utf8_lossy(&answer[..answer.len().min(200)])
                            .into_owned(),
                    })
                }
            }
        }
        Err(LapiError::FreshTokenRefused)
    }

    /// `POST /v1/watchers/login`.
    fn log_in(&self) -> Result<Login, LapiError> {
        let body = alerts::login_json(&self.login, &self.password);
        let mut response = self
            .agent
            .post(&format!("{}v1/watchers/login", self.url))
            .content_type("application/json")
            .send(body.as_bytes())
            .map_err(LapiError::LoginHttp)?;
        let answer = response
            .body_mut()
            .with_config()
            .limit(alerts::MAX_BYTES as u64)
            .read_to_vec()
            .map_err(LapiError::LoginHttp)?;
        alerts::parse_login(&answer).map_err(|error| LapiError::Login {
            login: self.login.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::crowdsec::alerts::Scenario;
    use crate::crowdsec::stream::{Remedy, Target};
    use crate::reputation::test_server::{chunked, response, serve, Answer};

    fn lapi(url: &str) -> LapiSpec {
        LapiSpec::parse(&[url, "key_file=/dev/null", "timeout=1s"], |p| p.into()).unwrap()
    }

    /// How the Local API (Go's net/http under gin) answers: JSON with its Date; bodies it
    /// streams, chunked.
    fn lapi_json(status: &str, body: &str) -> Answer {
        response(status, &LAPI_HEADERS, body.as_bytes())
    }

    const LAPI_HEADERS: [(&str, &str); 2] = [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Date", "Mon, 07 Dec 2026 10:00:00 GMT"),
    ];

    const STARTUP: &str = r#"{"deleted":null,"new":[{"duration":"3h59m58.64s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'localhost'","scope":"Ip","type":"ban","uuid":"6d6a4a1e-7c83-4e9b-9c0e-b5e2a4f1e0a1","value":"192.0.2.7"},{"duration":"23h59m59.1s","id":2,"origin":"cscli","scenario":"manual 'captcha' from 'localhost'","scope":"Range","type":"captcha","uuid":"7e7b5b2f-8d94-4fac-ad1f-c6f3b5a2f1b2","value":"198.51.100.0/24"}]}"#;

    fn addr(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_full_pull_sends_the_key_and_reads_the_stream() {
        let server = serve(vec![
            chunked("200 OK", &LAPI_HEADERS, STARTUP.as_bytes(), 100),
            lapi_json(
                "200 OK",
                r#"{"deleted":[{"duration":"-1m2s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'localhost'","scope":"Ip","type":"ban","value":"192.0.2.7"}],"new":null}"#,
            ),
        ]);
        let bouncer = Bouncer::new(&lapi(&server.url), "s3cret-key".into(), "ip,range");
        let (delta, bytes) = bouncer.pull(true).unwrap();
        assert_eq!(bytes, STARTUP.len());
        assert_eq!(
            (delta.new.len(), delta.deleted.len(), delta.skipped),
            (2, 0, 0)
        );
        assert_eq!(
            delta.new[0].target,
            Target::Range("192.0.2.7/32".parse().unwrap())
        );
        assert_eq!(delta.new[1].remedy, Remedy::Captcha);
        let (delta, _) = bouncer.pull(false).unwrap();
        assert_eq!((delta.new.len(), delta.deleted.len()), (0, 1));
        let asked = server.requests();
        assert_eq!(
            asked[0].line,
            "GET /v1/decisions/stream?startup=true&scopes=ip,range HTTP/1.1"
        );
        assert_eq!(
            asked[1].line,
            "GET /v1/decisions/stream?startup=false&scopes=ip,range HTTP/1.1"
        );
        for request in &asked {
            assert_eq!(request.header("X-Api-Key"), Some("s3cret-key"));
            assert_eq!(request.header("User-Agent"), Some(BOUNCER_AGENT));
        }
        assert!(BOUNCER_AGENT.starts_with("crowdsec-captchaify-bouncer/"));
    }

    #[test]
    fn pull_errors_say_what_went_wrong() {
        let server = serve(vec![
            lapi_json("403 Forbidden", r#"{"message":"access forbidden"}"#),
            lapi_json(
                "500 Internal Server Error",
                r#"{"message":"database locked"}"#,
            ),
            lapi_json("200 OK", "<html>a proxy's page</html>"),
            lapi_json("200 OK", r#"{"new":[{"value":"#),
            Answer::Silence(Duration::from_secs(4)),
        ]);
        let bouncer = Bouncer::new(&lapi(&server.url), "k".into(), "ip,range");
        let error = bouncer.pull(false).unwrap_err();
        assert!(matches!(error, LapiError::KeyRefused));
        // What t/018-crowdsec.t finds in the log.
        assert!(error.to_string().contains("HTTP 403"));
        assert_eq!(
            bouncer.pull(false).unwrap_err().to_string(),
            "HTTP status 500"
        );
        assert!(matches!(
            bouncer.pull(false),
            Err(LapiError::Stream(StreamError::NotJson(_)))
        ));
        assert!(matches!(
            bouncer.pull(false),
            Err(LapiError::Stream(StreamError::NotJson(_)))
        ));
        let started = Instant::now();
        let error = bouncer.pull(false).unwrap_err();
        assert!(
            matches!(error, LapiError::Http(ureq::Error::Timeout(_))),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    fn signal(last: &str) -> Signal {
        Signal {
            scenario: Scenario::CaptchaFailures,
            addr: addr(last),
            count: 5,
            window_secs: 600,
            first_secs: 1_796_000_000,
            last_secs: 1_796_000_000,
        }
    }

    const NOW: u64 = 1_796_000_000;

    fn login_answer(token: &str, expire: &str) -> Answer {
        lapi_json(
            "200 OK",
            &format!(r#"{{"code":200,"expire":"{expire}","token":"{token}"}}"#),
        )
    }

    /// An hour after [`NOW`].
    const LATER: &str = "2026-11-30T01:53:20Z";

    #[test]
    fn the_machine_logs_in_once_and_posts_with_its_token() {
        assert_eq!(alerts::parse_rfc3339(LATER), Some(NOW + 3600));
        let server = serve(vec![
            login_answer("eyJhbGciOiJIUzI1NiJ9.e30.sig", LATER),
            lapi_json("201 Created", r#"["1"]"#),
            lapi_json("201 Created", r#"["2","3"]"#),
        ]);
        let mut machine = MachineSession::new(&lapi(&server.url), "captchaify", "pa55");
        machine.report(&[signal("192.0.2.7")], NOW).unwrap();
        machine
            .report(&[signal("192.0.2.8"), signal("192.0.2.9")], NOW + 10)
            .unwrap();
        let asked = server.requests();
        assert_eq!(asked.len(), 3);
        assert_eq!(asked[0].line, "POST /v1/watchers/login HTTP/1.1");
        assert_eq!(asked[0].header("Content-Type"), Some("application/json"));
        let login: serde_json::Value = serde_json::from_slice(&asked[0].body).unwrap();
        assert_eq!(
            (login["machine_id"].as_str(), login["password"].as_str()),
            (Some("captchaify"), Some("pa55"))
        );
        for request in &asked[1..] {
            assert_eq!(request.line, "POST /v1/alerts HTTP/1.1");
            assert_eq!(
                request.header("Authorization"),
                Some("Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig")
            );
            assert_eq!(request.header("User-Agent"), Some(USER_AGENT));
        }
        let alerts: serde_json::Value = serde_json::from_slice(&asked[2].body).unwrap();
        assert_eq!(alerts.as_array().map(Vec::len), Some(2));
        assert_eq!(alerts[1]["source"]["value"], "192.0.2.9");
    }

    #[test]
    fn a_refused_or_expiring_token_means_a_new_login() {
        let server = serve(vec![
            login_answer("first", LATER),
            lapi_json(
                "401 Unauthorized",
                r#"{"code":401,"message":"Token is expired"}"#,
            ),
            login_answer("second", "2026-11-30T00:53:50Z"),
            lapi_json("201 Created", r#"["1"]"#),
            // "second" expires within the minute: a login first.
            login_answer("third", LATER),
            lapi_json("200 OK", "null"),
        ]);
        let mut machine = MachineSession::new(&lapi(&server.url), "m", "p");
        machine.report(&[signal("192.0.2.7")], NOW).unwrap();
        machine.report(&[signal("192.0.2.7")], NOW + 20).unwrap();
        let bearers: Vec<_> = server
            .requests()
            .iter()
            .map(|r| r.header("Authorization").unwrap_or("-").to_string())
            .collect();
        assert_eq!(
            bearers,
            [
                "-",
                "Bearer first",
                "-",
                "Bearer second",
                "-",
                "Bearer third"
            ]
        );
    }

    #[test]
    fn machine_errors_say_what_went_wrong() {
        let server = serve(vec![
            lapi_json(
                "401 Unauthorized",
                r#"{"code":401,"message":"incorrect Username or Password"}"#,
            ),
            login_answer("t", LATER),
            lapi_json(
                "401 Unauthorized",
                r#"{"code":401,"message":"Token is expired"}"#,
            ),
            login_answer("t", LATER),
            lapi_json(
                "401 Unauthorized",
                r#"{"code":401,"message":"Token is expired"}"#,
            ),
            login_answer("t", LATER),
            lapi_json(
                "500 Internal Server Error",
                r#"{"message":"no space left"}"#,
            ),
            lapi_json("201 Created", r#"{"ids":"1"}"#),
            Answer::Silence(Duration::from_secs(4)),
        ]);
        let mut machine = MachineSession::new(&lapi(&server.url), "m", "p");
        let batch = [signal("192.0.2.7")];
        assert_eq!(
            machine.report(&batch, NOW).unwrap_err().to_string(),
            "logging in as \"m\": refused: 401 incorrect Username or Password"
        );
        assert!(matches!(
            machine.report(&batch, NOW),
            Err(LapiError::FreshTokenRefused)
        ));
        assert_eq!(
            machine.report(&batch, NOW).unwrap_err().to_string(),
            "posting alerts: HTTP status 500: {\"message\":\"no space left\"}"
        );
        assert!(matches!(
            machine.report(&batch, NOW),
            Err(LapiError::Alerts(AlertError::Shape(_)))
        ));
        let error = machine.report(&batch, NOW).unwrap_err();
        assert!(
            matches!(error, LapiError::Http(ureq::Error::Timeout(_))),
            "{error}"
        );
        // Nobody listening: the login says so.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", listener.local_addr().unwrap())
        };
        let mut machine = MachineSession::new(&lapi(&closed), "m", "p");
        let error = machine.report(&batch, NOW).unwrap_err();
        assert!(matches!(error, LapiError::LoginHttp(_)), "{error}");
        assert!(error.to_string().starts_with("logging in: "));
    }
}
