//! The reputation sources over HTTP: each function is one blocking exchange on a
//! `ureq::Agent` that the caller's thread owns, and returns what the answer says or a
//! [`FetchError`] whose text is what the log shows. The background threads that call them,
//! pace them and keep their results are the nginx side's (`nginx::background`).

use std::io::Read;
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use super::feeds::{self, FeedError, TorList};
use super::FeedOrigin;
use crate::crawler::hints::{self, Hints};
use crate::state::reputation::HintJob;

/// The module's own `User-Agent` for the services it asks.
pub const USER_AGENT: &str = concat!("captchaify/", env!("CARGO_PKG_VERSION"));

/// Why an exchange gave nothing usable.
#[derive(Debug, Error)]
pub enum FetchError {
    /// No answer, or not all of it: refused, timed out, cut, too large.
    #[error(transparent)]
    Http(#[from] ureq::Error),
    /// A list file that cannot be read, or a page that breaks off.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    /// An answer other than the one that carries data (429 is [`Lookup::Throttled`]).
    #[error("HTTP status {0}")]
    Status(u16),
    /// An answer that does not say what the service says.
    #[error(transparent)]
    Feed(#[from] FeedError),
    #[error("the {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A crawler-hints job without a host, which `HintJob::new` never makes, read back from
    /// a shared region that was written over: its fetch could never pass.
    #[error("the job has no host")]
    NoHost,
}

/// An agent for one source: every exchange ends within `timeout_secs`, and any status is
/// an answer (the exchanges look at it themselves).
pub fn agent(timeout_secs: u64, user_agent: &str) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(timeout_secs)))
        .http_status_as_error(false)
        .user_agent(user_agent)
        .build()
        .into()
}

/// What a GET brought: the status, ip-api's rate headers and at most `limit` bytes of body.
struct Reply {
    status: u16,
    /// `X-Rl`: requests left in the window.
    left: Option<u32>,
    /// `X-Ttl`: seconds until the window resets.
    reset_secs: Option<u32>,
    body: Vec<u8>,
}

fn get(agent: &ureq::Agent, url: &str, limit: usize) -> Result<Reply, ureq::Error> {
    let mut response = agent.get(url).call()?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let (left, reset_secs) = (header("X-Rl"), header("X-Ttl"));
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(limit as u64)
        .read_to_vec()?;
    Ok(Reply {
        status,
        left,
        reset_secs,
        body,
    })
}

/// The Tor exit list, from its URL or its file.
pub fn tor_exits(agent: &ureq::Agent, origin: &FeedOrigin) -> Result<TorList, FetchError> {
    let body = match origin {
        FeedOrigin::Url(url) => match get(agent, url, feeds::TOR_MAX_BYTES)? {
            Reply {
                status: 200, body, ..
            } => body,
            Reply { status, .. } => return Err(FetchError::Status(status)),
        },
        FeedOrigin::File(path) => std::fs::read(path)?,
    };
    Ok(feeds::parse_tor_exits(&body)?)
}

/// What a per-address source said about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressAnswer {
    pub addr: IpAddr,
    pub suspicious: bool,
    /// Country and AS number, when the source tells them (ip-api).
    pub geo: Option<([u8; 2], u32)>,
}

/// A per-address source's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// What it knows of the addresses it mentions (one it leaves out is unknown to it), or
    /// why that cannot be read; and its rate headers, for [`feeds::Pacer::observed`], which
    /// count whether or not the body makes sense.
    Answered {
        answers: Result<Vec<AddressAnswer>, FeedError>,
        left: Option<u32>,
        reset_secs: Option<u32>,
    },
    /// HTTP 429: over the service's rate, for [`feeds::Pacer::throttled`]. Nothing failed:
    /// the addresses wait for the window.
    Throttled { reset_secs: Option<u32> },
}

/// Asks ip-api about one address (`base`: the endpoint up to the address). Proxies, VPNs and
/// hosting providers are suspicious.
pub fn ip_api(agent: &ureq::Agent, base: &str, addr: IpAddr) -> Result<Lookup, FetchError> {
    look_up(agent, &feeds::ipapi_url(base, addr), |body| {
        let answer = feeds::parse_ipapi(body)?;
        Ok(vec![AddressAnswer {
            addr,
            suspicious: answer.proxy || answer.hosting,
            geo: answer.country.map(|c| (c, answer.asn.unwrap_or(0))),
        }])
    })
}

/// Asks StopForumSpam about up to [`feeds::SFS_MAX_BATCH`] addresses. Those it has had
/// reported are suspicious.
pub fn stop_forum_spam(
    agent: &ureq::Agent,
    base: &str,
    addrs: &[IpAddr],
) -> Result<Lookup, FetchError> {
    look_up(agent, &feeds::sfs_url(base, addrs), |body| {
        Ok(feeds::parse_sfs(body)?
            .into_iter()
            .map(|a| AddressAnswer {
                addr: a.addr,
                suspicious: a.appears,
                geo: None,
            })
            .collect())
    })
}

fn look_up(
    agent: &ureq::Agent,
    url: &str,
    parse: impl FnOnce(&[u8]) -> Result<Vec<AddressAnswer>, FeedError>,
) -> Result<Lookup, FetchError> {
    match get(agent, url, feeds::JSON_MAX_BYTES)? {
        Reply {
            status: 429,
            reset_secs,
            ..
        } => Ok(Lookup::Throttled { reset_secs }),
        Reply {
            status: 200,
            left,
            reset_secs,
            body,
        } => Ok(Lookup::Answered {
            answers: parse(&body),
            left,
            reset_secs,
        }),
        Reply { status, .. } => Err(FetchError::Status(status)),
    }
}

/// An agent for this server's own pages: they are asked over the address the crawler
/// reached, whose certificate names the host, not the address; a redirect is an answer.
pub fn pages_agent(user_agent: &str) -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .disable_verification(true)
        .build();
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(user_agent)
        .tls_config(tls)
        .build()
        .into()
}

/// The crawler hints of a page of this server: asks for it over the address and port the
/// crawler reached, with its `Host` and the `token` header that lets the request through,
/// and reads the head of its HTML. `None`: the page has none.
pub fn page_hints(
    agent: &ureq::Agent,
    job: &HintJob,
    token: (&str, &str),
) -> Result<Option<Hints>, FetchError> {
    let uri = core::str::from_utf8(job.uri()).map_err(|_| FetchError::NotUtf8("URI"))?;
    let host = core::str::from_utf8(job.host()).map_err(|_| FetchError::NotUtf8("host"))?;
    if host.is_empty() {
        return Err(FetchError::NoHost);
    }
    let scheme = if job.tls() { "https" } else { "http" };
    let url = format!("{scheme}://{}{uri}", job.server());
    // The host the token is bound to.
    let mut response = agent
        .get(&url)
        .header(token.0, token.1)
        .header("Host", host)
        .call()?;
    if response.status().as_u16() != 200 {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    let mut head = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(hints::MAX_SCAN as u64)
        .read_to_end(&mut head)?;
    Ok(hints::extract(&head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reputation::test_server::{chunked, response, serve, Answer};

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// The sources' answers as the fake server of the Test::Nginx suites writes them
    /// (t/lib/fake_feeds.py), itself checked against the real services.
    macro_rules! fixture {
        ($file:literal) => {
            include_bytes!(concat!("../../t/lib/fixtures/feeds/", $file)).as_slice()
        };
    }

    /// check.torproject.org/torbulkexitlist, behind its nginx.
    fn tor_answer(body: &[u8]) -> Answer {
        response(
            "200 OK",
            &[
                ("Server", "nginx"),
                ("Date", "Mon, 07 Dec 2026 10:00:00 GMT"),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Connection", "keep-alive"),
            ],
            body,
        )
    }

    /// ip-api.com's free endpoint: JSON with its rate headers.
    fn ipapi_answer(status: &str, left: u32, reset_secs: u32, body: &[u8]) -> Answer {
        let (left, reset) = (left.to_string(), reset_secs.to_string());
        response(
            status,
            &[
                ("Date", "Mon, 07 Dec 2026 10:00:00 GMT"),
                ("Content-Type", "application/json; charset=utf-8"),
                ("Access-Control-Allow-Origin", "*"),
                ("X-Ttl", &reset),
                ("X-Rl", &left),
            ],
            body,
        )
    }

    /// api.stopforumspam.org: nginx, chunked JSON.
    fn sfs_answer(body: &[u8]) -> Answer {
        chunked(
            "200 OK",
            &[
                ("Server", "nginx"),
                ("Date", "Mon, 07 Dec 2026 10:00:00 GMT"),
                ("Content-Type", "application/json"),
                ("Connection", "keep-alive"),
            ],
            body,
            64,
        )
    }

    fn url(base: &str, path: &str) -> FeedOrigin {
        FeedOrigin::Url(format!("{base}{path}"))
    }

    #[test]
    fn the_tor_list_is_fetched_and_parsed_with_our_user_agent() {
        let server = serve(vec![tor_answer(fixture!("tor-bulk.txt"))]);
        let list = tor_exits(&agent(5, USER_AGENT), &url(&server.url, "torbulkexitlist")).unwrap();
        assert_eq!(
            list.addrs,
            [
                ip("185.220.101.1"),
                ip("185.220.101.2"),
                ip("2001:db8:7::1")
            ]
        );
        let asked = server.requests();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0].line, "GET /torbulkexitlist HTTP/1.1");
        assert_eq!(asked[0].header("User-Agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("captchaify/"));
        // TorDNSEL's format, from the same kind of answer.
        let server = serve(vec![tor_answer(fixture!("tor-exit-addresses.txt"))]);
        let list = tor_exits(&agent(5, USER_AGENT), &url(&server.url, "exit-addresses")).unwrap();
        assert!(!list.addrs.is_empty());
    }

    #[test]
    fn a_tor_list_from_a_file() {
        let path = std::env::temp_dir().join(format!("captchaify-tor-{}.txt", std::process::id()));
        std::fs::write(&path, fixture!("tor-bulk.txt")).unwrap();
        let list = tor_exits(&agent(5, USER_AGENT), &FeedOrigin::File(path.clone())).unwrap();
        assert_eq!(list.addrs.len(), 3);
        std::fs::remove_file(&path).unwrap();
        let error = tor_exits(&agent(5, USER_AGENT), &FeedOrigin::File(path)).unwrap_err();
        assert!(matches!(error, FetchError::Read(_)), "{error}");
    }

    #[test]
    fn tor_errors_say_what_went_wrong() {
        let server = serve(vec![
            response(
                "404 Not Found",
                &[("Content-Type", "text/html")],
                b"<h1>404</h1>",
            ),
            response(
                "503 Service Unavailable",
                &[("Content-Type", "text/html")],
                b"busy",
            ),
            tor_answer(fixture!("garbage.html")),
            tor_answer(b""),
        ]);
        let fetch = || tor_exits(&agent(5, USER_AGENT), &url(&server.url, "torbulkexitlist"));
        let error = fetch().unwrap_err();
        assert!(matches!(error, FetchError::Status(404)));
        assert_eq!(error.to_string(), "HTTP status 404");
        assert!(matches!(fetch(), Err(FetchError::Status(503))));
        assert!(matches!(
            fetch(),
            Err(FetchError::Feed(FeedError::NotTorList { line: 1, .. }))
        ));
        let error = fetch().unwrap_err();
        assert!(matches!(error, FetchError::Feed(FeedError::EmptyList)));
        assert_eq!(error.to_string(), "empty list");
    }

    #[test]
    fn a_silent_source_times_out() {
        let server = serve(vec![Answer::Silence(Duration::from_secs(4))]);
        let started = std::time::Instant::now();
        let error =
            tor_exits(&agent(1, USER_AGENT), &url(&server.url, "torbulkexitlist")).unwrap_err();
        assert!(
            matches!(error, FetchError::Http(ureq::Error::Timeout(_))),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_secs(3));
        // Nobody listening: refused at once.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", listener.local_addr().unwrap())
        };
        let error = tor_exits(&agent(1, USER_AGENT), &url(&closed, "x")).unwrap_err();
        assert!(matches!(error, FetchError::Http(_)), "{error}");
    }

    #[test]
    fn ipapi_answers_with_the_rate_headers() {
        let server = serve(vec![
            ipapi_answer("200 OK", 44, 60, fixture!("ipapi-proxy.json")),
            ipapi_answer("200 OK", 43, 59, fixture!("ipapi-clean.json")),
            ipapi_answer("200 OK", 42, 58, fixture!("ipapi-private.json")),
        ]);
        let agent = agent(5, USER_AGENT);
        let base = format!("{}json/", server.url);
        let proxy = ip("198.51.100.7");
        assert_eq!(
            ip_api(&agent, &base, proxy).unwrap(),
            Lookup::Answered {
                answers: Ok(vec![AddressAnswer {
                    addr: proxy,
                    suspicious: true,
                    geo: Some((*b"DE", 3320)),
                }]),
                left: Some(44),
                reset_secs: Some(60),
            }
        );
        let Lookup::Answered { answers, left, .. } =
            ip_api(&agent, &base, ip("203.0.113.9")).unwrap()
        else {
            panic!("throttled")
        };
        assert!(!answers.unwrap()[0].suspicious);
        assert_eq!(left, Some(43));
        // A private range: nothing known, not an error.
        let answers = answered(ip_api(&agent, &base, ip("10.0.0.1"))).unwrap();
        assert_eq!((answers[0].suspicious, answers[0].geo), (false, None));
        let asked = server.requests();
        assert_eq!(
            asked[0].line,
            "GET /json/198.51.100.7?fields=status,message,countryCode,as,proxy,hosting HTTP/1.1"
        );
        assert!(asked
            .iter()
            .all(|r| r.header("User-Agent") == Some(USER_AGENT)));
    }

    /// The answers of a lookup that was not throttled.
    fn answered(lookup: Result<Lookup, FetchError>) -> Result<Vec<AddressAnswer>, FeedError> {
        match lookup.unwrap() {
            Lookup::Answered { answers, .. } => answers,
            Lookup::Throttled { .. } => panic!("throttled"),
        }
    }

    #[test]
    fn ipapi_over_its_rate_is_throttled_not_failed() {
        let server = serve(vec![ipapi_answer("429 Too Many Requests", 0, 37, b"")]);
        let base = format!("{}json/", server.url);
        assert_eq!(
            ip_api(&agent(5, USER_AGENT), &base, ip("198.51.100.7")).unwrap(),
            Lookup::Throttled {
                reset_secs: Some(37)
            }
        );
    }

    #[test]
    fn ipapi_errors() {
        let server = serve(vec![
            ipapi_answer("500 Internal Server Error", 44, 60, b"oops"),
            ipapi_answer("403 Forbidden", 44, 60, b""),
            ipapi_answer("200 OK", 44, 60, fixture!("ipapi-invalid.json")),
            ipapi_answer("200 OK", 0, 42, fixture!("garbage.html")),
            ipapi_answer("200 OK", 44, 60, &[b' '; feeds::JSON_MAX_BYTES + 1]),
        ]);
        let (agent, base) = (agent(5, USER_AGENT), format!("{}json/", server.url));
        let ask = || ip_api(&agent, &base, ip("198.51.100.7"));
        assert_eq!(ask().unwrap_err().to_string(), "HTTP status 500");
        assert!(matches!(ask(), Err(FetchError::Status(403))));
        assert!(matches!(answered(ask()), Err(FeedError::IpApiFail(_))));
        // The rate headers count even when the body makes no sense.
        assert!(matches!(
            ask(),
            Ok(Lookup::Answered {
                answers: Err(FeedError::NotJson(_)),
                left: Some(0),
                reset_secs: Some(42)
            })
        ));
        // More than a JSON answer can be: cut at the limit, not read whole.
        assert!(matches!(
            ask(),
            Err(FetchError::Http(ureq::Error::BodyExceedsLimit(_)))
        ));
    }

    #[test]
    fn stopforumspam_answers_a_batch_in_chunks() {
        let server = serve(vec![sfs_answer(fixture!("sfs-multi.json"))]);
        let addrs = [ip("198.51.100.7"), ip("203.0.113.9"), ip("2001:db8::7")];
        let base = format!("{}api", server.url);
        let Lookup::Answered {
            answers,
            left,
            reset_secs,
        } = stop_forum_spam(&agent(5, USER_AGENT), &base, &addrs).unwrap()
        else {
            panic!("throttled")
        };
        let answers = answers.unwrap();
        let suspicious: Vec<bool> = answers.iter().map(|a| a.suspicious).collect();
        assert_eq!(suspicious, [true, false, true]);
        assert_eq!(answers[2].addr, addrs[2]);
        assert!(answers.iter().all(|a| a.geo.is_none()));
        assert_eq!((left, reset_secs), (None, None));
        let asked = server.requests();
        assert_eq!(
            asked[0].line,
            "GET /api?json&confidence&ip%5B%5D=198.51.100.7&ip%5B%5D=203.0.113.9\
             &ip%5B%5D=2001:db8::7 HTTP/1.1"
        );
        assert_eq!(asked[0].header("User-Agent"), Some(USER_AGENT));
    }

    #[test]
    fn stopforumspam_errors() {
        let server = serve(vec![
            sfs_answer(fixture!("sfs-error.json")),
            response(
                "502 Bad Gateway",
                &[("Server", "nginx")],
                b"<html>502</html>",
            ),
            sfs_answer(b"{\"success\":1,\"ip\":"),
        ]);
        let (agent, base) = (agent(5, USER_AGENT), format!("{}api", server.url));
        let ask = || stop_forum_spam(&agent, &base, &[ip("198.51.100.7")]);
        assert!(matches!(answered(ask()), Err(FeedError::SfsFail(_))));
        assert!(matches!(ask(), Err(FetchError::Status(502))));
        assert!(matches!(answered(ask()), Err(FeedError::NotJson(_))));
    }

    fn job(server: &str, host: &[u8], uri: &[u8]) -> HintJob {
        let addr = server
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        HintJob::new(addr, false, host, uri).unwrap()
    }

    #[test]
    fn page_hints_ask_this_server_with_the_token_and_host() {
        let page = b"<html><head><title>Our blog</title>\
                     <meta name=\"description\" content=\"Posts\"></head><body>x</body></html>";
        let server = serve(vec![
            response("200 OK", &[("Content-Type", "text/html")], page),
            response(
                "200 OK",
                &[("Content-Type", "text/html")],
                b"<p>no head</p>",
            ),
        ]);
        let agent = pages_agent("captchaify-hints/test");
        let job = job(&server.url, b"blog.example", b"/post?id=7");
        let hints = page_hints(&agent, &job, ("X-Captchaify-Hints", "t0ken"))
            .unwrap()
            .unwrap();
        assert_eq!(
            (hints.title.as_str(), hints.description.as_str()),
            ("Our blog", "Posts")
        );
        assert_eq!(
            page_hints(&agent, &job, ("X-Captchaify-Hints", "t0ken")).unwrap(),
            None
        );
        let asked = server.requests();
        assert_eq!(asked[0].line, "GET /post?id=7 HTTP/1.1");
        assert_eq!(asked[0].header("Host"), Some("blog.example"));
        assert_eq!(asked[0].header("X-Captchaify-Hints"), Some("t0ken"));
        assert_eq!(asked[0].header("User-Agent"), Some("captchaify-hints/test"));
    }

    #[test]
    fn page_hints_errors() {
        let server = serve(vec![
            response("302 Found", &[("Location", "/elsewhere")], b""),
            response("403 Forbidden", &[("Content-Type", "text/html")], b"no"),
        ]);
        let agent = pages_agent("captchaify-hints/test");
        let job = job(&server.url, b"h.example", b"/");
        let fetch = || page_hints(&agent, &job, ("X-Captchaify-Hints", "t"));
        // A redirect is not followed.
        assert_eq!(fetch().unwrap_err().to_string(), "HTTP status 302");
        assert!(matches!(fetch(), Err(FetchError::Status(403))));
        assert_eq!(server.requests().len(), 2);
        assert_eq!(server.requests()[0].header("Host"), Some("h.example"));
        let not_utf8 = HintJob::new("127.0.0.1:1".parse().unwrap(), false, b"h", b"/\xff").unwrap();
        let error = page_hints(&agent, &not_utf8, ("X-Captchaify-Hints", "t")).unwrap_err();
        assert_eq!(error.to_string(), "the URI is not UTF-8");
        // A job as a scribbled shared region may hold it: no host, and no fetch made.
        // SAFETY: a `Record`, plain bytes valid for every bit pattern.
        let no_host: HintJob = unsafe { core::mem::zeroed() };
        assert!(no_host.host().is_empty());
        assert!(matches!(
            page_hints(&agent, &no_host, ("X-Captchaify-Hints", "t")),
            Err(FetchError::NoHost)
        ));
        assert_eq!(server.requests().len(), 2);
    }
}
