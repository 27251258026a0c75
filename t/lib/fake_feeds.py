#!/usr/bin/env python3
"""A local stand-in for the three reputation sources, speaking their formats, for the tests.

    python3 fake_feeds.py --port PORT [--state FILE] [--verbose]
                          [--ipapi-limit 45] [--ipapi-window 60]
    python3 fake_feeds.py --self-test
    python3 fake_feeds.py --write-fixtures DIR

One process serves all three on 127.0.0.1:PORT (0 picks a free port) and prints one line,
`listening on 127.0.0.1:PORT`; requests are logged to stderr only with --verbose. SIGTERM and
SIGINT stop it cleanly (exit 0).

The sources:
  GET /torbulkexitlist      the Tor bulk exit list: text/plain, one address per line
  GET /exit-addresses       the same addresses in TorDNSEL's format (ExitNode, Published,
                            LastStatus, ExitAddress)
  GET /json/ADDR?fields=F   ip-api.com: F is names separated by commas or ip-api's numeric
                            mask. Answers carry X-Rl (requests left) and X-Ttl (seconds to the
                            window's reset); over 45 requests in a window per client address
                            it answers 429, as ip-api does. Private ranges answer
                            {"status":"fail","message":"private range","query":ADDR}, other
                            special ones "reserved range", non-addresses "invalid query".
                            Addresses not in the state are clean: proxy and hosting false,
                            country US, AS64500.
  GET /api?json&ip=A        StopForumSpam: ip=A answers "ip" as one object; ip[]=A&ip[]=B
                            (or ip repeated) as an array; each result echoes "value". Up to 15.
                            Parameters in any order; `confidence` adds the confidence score.

Control (the answers are JSON):
  POST /_control      {"tor": [...], "ipapi": {ADDR: {...}}, "sfs": {ADDR: {...}},
                       "mode": "ok"|"slow"|"garbage"|"empty"|"error"|"hang"|"close",
                       "delay": 5, "only": "tor"|"ipapi"|"sfs"|null, "reset_rate": true}
                      Every key is optional. "tor" replaces the list; "ipapi" and "sfs"
                      entries replace the entry of their address (null removes it); "mode"
                      applies to the source named in "only", or to all; "delay" is the
                      seconds "slow" waits; "reset_rate" forgets ip-api's windows.
                      slow: answers correctly after the delay; garbage: 200 with an HTML page;
                      empty: 200 with no body; error: 500; hang: never answers (until the
                      process stops); close: closes the connection without answering.
  GET /_stats         {"requests": {"tor": N, "ipapi": N, "sfs": N}, "throttled": N,
                       "ipapi_asked": [ADDR, ...], "sfs_asked": [ADDR, ...]}, in order of
                       arrival, so tests can check that nothing is asked twice.
  POST /_reset_stats  zeroes the counts and empties the lists.

--state FILE takes a JSON object of the same shape as /_control as the initial state.

The fixtures in t/lib/fixtures/feeds/ are this server's answers (--write-fixtures writes them
and --self-test checks they are still what it answers): the Rust parsers' unit tests read them.
"""
import argparse
import hashlib
import http.client
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOURCES = ("tor", "ipapi", "sfs")
MODES = ("ok", "slow", "garbage", "empty", "error", "hang", "close")
SFS_MAX = 15

# ip-api's numeric field mask (ip-api.com/docs/api:json: "use a generated, numeric value").
IPAPI_FIELD_BITS = {
    "country": 1, "countryCode": 2, "region": 4, "regionName": 8, "city": 16, "zip": 32,
    "lat": 64, "lon": 128, "timezone": 256, "isp": 512, "org": 1024, "as": 2048,
    "reverse": 4096, "query": 8192, "status": 16384, "message": 32768, "mobile": 65536,
    "proxy": 131072, "district": 524288, "continent": 1048576, "continentCode": 2097152,
    "asname": 4194304, "currency": 8388608, "hosting": 16777216, "offset": 33554432,
}
# What ip-api answers without `fields` (61439).
IPAPI_DEFAULT_FIELDS = ["status", "message", "country", "countryCode", "region", "regionName",
                        "city", "zip", "lat", "lon", "timezone", "isp", "org", "as", "query"]
# A clean address, in the order ip-api writes its fields.
IPAPI_CLEAN = {
    "status": "success", "continent": "North America", "continentCode": "NA",
    "country": "United States", "countryCode": "US", "region": "VA", "regionName": "Virginia",
    "city": "Ashburn", "district": "", "zip": "20149", "lat": 39.0438, "lon": -77.4874,
    "timezone": "America/New_York", "offset": -18000, "currency": "USD",
    "isp": "Example Networks", "org": "Example Networks", "as": "AS64500 Example Networks",
    "asname": "EXAMPLE-NET", "reverse": "", "mobile": False, "proxy": False, "hosting": False,
}
IPAPI_PRIVATE = [ipaddress.ip_network(n) for n in
                 ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")]

GARBAGE_PAGE = b"""<!DOCTYPE html>
<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
"""


def canonical(text):
    """The address as Python writes it (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        addr = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return str(addr)


class State:
    def __init__(self, ipapi_limit, ipapi_window):
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ipapi_limit = ipapi_limit
        self.ipapi_window = ipapi_window
        self.tor = []
        self.ipapi = {}
        self.sfs = {}
        self.modes = dict.fromkeys(SOURCES, "ok")
        self.delay = 5.0
        self.windows = {}  # client address -> [window start, requests in it]
        self.reset_stats()

    def reset_stats(self):
        self.requests = dict.fromkeys(SOURCES, 0)
        self.throttled = 0
        self.ipapi_asked = []
        self.sfs_asked = []

    def update(self, change):
        """Merges a /_control body; raises ValueError on a malformed one."""
        if not isinstance(change, dict):
            raise ValueError("expected a JSON object")
        unknown = set(change) - {"tor", "ipapi", "sfs", "mode", "delay", "only", "reset_rate"}
        if unknown:
            raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
        only = change.get("only")
        if only is not None and only not in SOURCES:
            raise ValueError(f"only: expected one of {', '.join(SOURCES)} or null")
        mode = change.get("mode")
        if mode is not None and mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}")
        delay = change.get("delay")
        if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
            raise ValueError("delay: expected a number of seconds")
        tor = change.get("tor")
        if tor is not None and not (isinstance(tor, list) and all(isinstance(a, str) for a in tor)):
            raise ValueError("tor: expected a list of addresses")
        entries = {}
        for source in ("ipapi", "sfs"):
            given = change.get(source) or {}
            if not isinstance(given, dict):
                raise ValueError(f"{source}: expected an object keyed by address")
            entries[source] = {}
            for addr, entry in given.items():
                key = canonical(addr)
                if key is None:
                    raise ValueError(f"{source}: {addr!r} is not an address")
                if entry is not None and not isinstance(entry, dict):
                    raise ValueError(f"{source}: the entry of {addr} is not an object")
                entries[source][key] = entry
        with self.lock:
            if tor is not None:
                self.tor = list(tor)
            for source, table in (("ipapi", self.ipapi), ("sfs", self.sfs)):
                for key, entry in entries[source].items():
                    if entry is None:
                        table.pop(key, None)
                    else:
                        table[key] = entry
            if mode is not None:
                for source in [only] if only else SOURCES:
                    self.modes[source] = mode
            if delay is not None:
                self.delay = float(delay)
            if change.get("reset_rate"):
                self.windows.clear()

    def ipapi_budget(self, client):
        """Counts a request from `client`; returns (allowed, left, seconds to reset)."""
        now = time.monotonic()
        with self.lock:
            window = self.windows.get(client)
            if window is None or now - window[0] >= self.ipapi_window:
                window = self.windows[client] = [now, 0]
            ttl = max(0, int(window[0] + self.ipapi_window - now + 0.999))
            if window[1] >= self.ipapi_limit:
                self.throttled += 1
                return False, 0, ttl
            window[1] += 1
            return True, self.ipapi_limit - window[1], ttl

    def stats(self):
        with self.lock:
            return {"requests": dict(self.requests), "throttled": self.throttled,
                    "ipapi_asked": list(self.ipapi_asked), "sfs_asked": list(self.sfs_asked)}


def ipapi_fields(param):
    """The field names asked for, in the order given, or the default set."""
    if param is None:
        return IPAPI_DEFAULT_FIELDS
    param = param.strip()
    if param.isdigit():
        mask = int(param)
        return [name for name, bit in IPAPI_FIELD_BITS.items() if mask & bit]
    return [name.strip() for name in param.split(",") if name.strip()]


def ipapi_answer(state, query, fields):
    addr = canonical(query)
    if addr is None:
        return {"status": "fail", "message": "invalid query", "query": query}
    with state.lock:
        entry = state.ipapi.get(addr)
    if entry is None:
        ip = ipaddress.ip_address(addr)
        special = (ip.is_private or ip.is_reserved or ip.is_loopback or ip.is_link_local
                   or ip.is_multicast or ip.is_unspecified)
        if any(ip in net for net in IPAPI_PRIVATE):
            return {"status": "fail", "message": "private range", "query": addr}
        if special:
            return {"status": "fail", "message": "reserved range", "query": addr}
    record = dict(IPAPI_CLEAN, **(entry or {}), query=addr)
    if record.get("status") == "fail":
        return {"status": "fail", "message": record.get("message", ""), "query": addr}
    return {name: record[name] for name in fields if name in record}


def sfs_answer(state, params, confidence):
    """params: (key, value) pairs of the query, keys decoded."""
    values = [v for k, v in params if k in ("ip", "ip[]")]
    as_array = len(values) > 1 or any(k == "ip[]" for k, _ in params)
    if not values:
        return {"success": 0, "error": "request not understood"}
    if len(values) > SFS_MAX:
        return {"success": 0, "error": f"too many queries (at most {SFS_MAX})"}
    results = []
    for value in values:
        addr = canonical(value)
        if addr is None:
            return {"success": 0, "error": f"invalid ip {value}"}
        with state.lock:
            entry = dict(state.sfs.get(addr) or {})
            state.sfs_asked.append(addr)
        result = {"value": value, "appears": entry.pop("appears", 0),
                  "frequency": entry.pop("frequency", 0)}
        if result["appears"]:
            result["lastseen"] = entry.pop("lastseen", "2025-02-25 18:34:43")
            if confidence:
                result["confidence"] = entry.pop(
                    "confidence", round(min(99.95, 5 + 2.5 * result["frequency"]), 2))
        else:
            entry.pop("confidence", None)
        result.update(entry)
        results.append(result)
    return {"success": 1, "ip": results if as_array else results[0]}


def tor_bulk(addrs):
    return "".join(f"{a}\n" for a in addrs).encode()


def tor_dnsel(addrs, now=None):
    """The TorDNSEL format: one block per address, a fingerprint made up from the address."""
    now = time.gmtime(now if now is not None else time.time())
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", now)
    hour = time.strftime("%Y-%m-%d %H:00:00", now)
    lines = []
    for addr in addrs:
        fingerprint = hashlib.sha1(addr.encode()).hexdigest().upper()
        lines += [f"ExitNode {fingerprint}", f"Published {hour}", f"LastStatus {hour}",
                  f"ExitAddress {addr} {stamp}"]
    return "".join(f"{line}\n" for line in lines).encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "fake-feeds/1"
    protocol_version = "HTTP/1.1"

    @property
    def state(self):
        return self.server.state

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write(f"fake_feeds: {self.address_string()} {format % args}\n")

    def send(self, status, body=b"", content_type="text/plain; charset=utf-8", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, value, headers=()):
        body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        self.send(status, body, "application/json; charset=utf-8", headers)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path in ("/torbulkexitlist", "/exit-addresses"):
            self.source("tor", lambda: self.tor(url.path))
        elif url.path.startswith("/json"):
            self.ipapi(url)
        elif url.path == "/api":
            self.source("sfs", lambda: self.sfs(url))
        elif url.path == "/_stats":
            self.send_json(200, self.state.stats())
        else:
            self.send(404, b"not found\n")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path == "/_control":
            try:
                self.state.update(json.loads(body or b"{}"))
            except ValueError as e:
                self.send_json(400, {"error": str(e)})
                return
            self.send_json(200, {"ok": True})
        elif url.path == "/_reset_stats":
            with self.state.lock:
                self.state.reset_stats()
            self.send_json(200, {"ok": True})
        else:
            self.send(404, b"not found\n")

    def source(self, name, answer, before=None):
        """Counts the request and answers it as the source's mode says."""
        with self.state.lock:
            self.state.requests[name] += 1
            mode, delay = self.state.modes[name], self.state.delay
        if before is not None and not before():
            return
        if mode == "hang":
            self.state.stopping.wait()
            self.close_connection = True
            return
        if mode == "close":
            self.close_connection = True
            return
        if mode == "slow" and self.state.stopping.wait(delay):
            self.close_connection = True
            return
        if mode == "garbage":
            self.send(200, GARBAGE_PAGE, "text/html; charset=utf-8")
        elif mode == "error":
            self.send(500, b"Internal Server Error\n")
        elif mode == "empty":
            self.send(200, b"", "application/json" if name != "tor" else "text/plain")
        else:
            answer()

    def tor(self, path):
        with self.state.lock:
            addrs = list(self.state.tor)
        body = tor_bulk(addrs) if path == "/torbulkexitlist" else tor_dnsel(addrs)
        self.send(200, body, "text/plain; charset=utf-8")

    def ipapi(self, url):
        query = urllib.parse.unquote(url.path[len("/json"):].lstrip("/"))
        if not query:
            query = self.client_address[0]
        params = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        fields = ipapi_fields(params.get("fields", [None])[0])
        limits = []

        def rate():
            allowed, left, ttl = self.state.ipapi_budget(self.client_address[0])
            limits[:] = [("X-Rl", str(left)), ("X-Ttl", str(ttl))]
            if not allowed:
                self.send(429, b"429 Too Many Requests\n", headers=limits)
            return allowed

        def answer():
            self.send_json(200, ipapi_answer(self.state, query, fields), limits)

        with self.state.lock:
            self.state.ipapi_asked.append(canonical(query) or query)
        self.source("ipapi", answer, before=rate)

    def sfs(self, url):
        params = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
        keys = {k for k, _ in params}
        answer = sfs_answer(self.state, params, "confidence" in keys)
        if "json" in keys:
            self.send_json(200, answer)
            return
        # Without `json` StopForumSpam answers XML; only the single form is needed here.
        result = answer.get("ip") if isinstance(answer.get("ip"), dict) else None
        if result is None:
            self.send(200, b'<response success="false"></response>\n', "text/xml")
            return
        appears = "yes" if result["appears"] else "no"
        body = (f'<response success="true">\n<type>ip</type>\n<appears>{appears}</appears>\n'
                f'<frequency>{result["frequency"]}</frequency>\n</response>\n').encode()
        self.send(200, body, "text/xml")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port, state, verbose):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = state
        self.verbose = verbose


def serve(args):
    state = State(args.ipapi_limit, args.ipapi_window)
    if args.state:
        try:
            with open(args.state, encoding="utf-8") as f:
                state.update(json.load(f))
        except (OSError, ValueError) as e:
            sys.exit(f"fake_feeds: {args.state}: {e}")
    try:
        server = Server(args.port, state, args.verbose)
    except OSError as e:
        sys.exit(f"fake_feeds: cannot listen on 127.0.0.1:{args.port}: {e}")

    def stop(signum, frame):
        state.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever(poll_interval=0.2)
    state.stopping.set()
    server.server_close()
    return 0


# ---------------------------------------------------------------------------------------------
# Fixtures and self-test

FIXTURE_STATE = {
    "tor": ["185.220.101.1", "185.220.101.2", "2001:db8:7::1", "185.220.101.1"],
    "ipapi": {
        "192.0.2.10": {"proxy": True, "hosting": False, "countryCode": "DE",
                       "as": "AS3320 Deutsche Telekom AG"},
        "2001:db8::10": {"proxy": False, "hosting": True, "countryCode": "NL",
                         "as": "AS60781 LeaseWeb Netherlands B.V."},
    },
    "sfs": {
        "198.51.100.7": {"appears": 1, "frequency": 12},
        "2001:db8::7": {"appears": 1, "frequency": 255, "confidence": 99.95},
    },
}
IPAPI_QUERY = "?fields=status,message,countryCode,as,proxy,hosting"
FIXTURES = [
    ("tor-bulk.txt", "/torbulkexitlist"),
    ("tor-exit-addresses.txt", "/exit-addresses"),
    ("ipapi-proxy.json", "/json/192.0.2.10" + IPAPI_QUERY),
    ("ipapi-hosting-ipv6.json", "/json/2001:db8::10" + IPAPI_QUERY),
    ("ipapi-clean.json", "/json/8.8.4.4" + IPAPI_QUERY),
    ("ipapi-private.json", "/json/10.1.2.3" + IPAPI_QUERY),
    ("ipapi-invalid.json", "/json/not-an-address" + IPAPI_QUERY),
    ("sfs-single.json", "/api?json&confidence&ip=198.51.100.7"),
    ("sfs-multi.json", "/api?json&confidence&ip%5B%5D=198.51.100.7&ip%5B%5D=203.0.113.9"
                       "&ip%5B%5D=2001:db8::7"),
    ("sfs-error.json", "/api?json"),
    ("garbage.html", None),
]


def fixture_body(name, body):
    """What is compared: TorDNSEL's times change from run to run."""
    if name == "tor-exit-addresses.txt":
        return re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", b"YYYY-MM-DD HH:MM:SS", body)
    return body


class Check:
    def __init__(self):
        self.failures = 0
        self.count = 0

    def __call__(self, condition, what):
        self.count += 1
        if not condition:
            self.failures += 1
            print(f"not ok - {what}", file=sys.stderr)


def start(args=()):
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port", "0", *args],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
    if not match:
        proc.kill()
        raise SystemExit(f"fake_feeds: unexpected first line {line!r}")
    return proc, f"http://127.0.0.1:{match.group(1)}"


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        rest, _ = proc.communicate(timeout=5)
        return proc.returncode, rest
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None, ""


def request(base, path, body=None, timeout=5):
    """(status, headers, body); the status is None when no answer came."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        return None, None, repr(e).encode()


def write_fixtures(directory):
    os.makedirs(directory, exist_ok=True)
    proc, base = start()
    try:
        request(base, "/_control", FIXTURE_STATE)
        for name, path in FIXTURES:
            body = GARBAGE_PAGE if path is None else request(base, path)[2]
            with open(os.path.join(directory, name), "wb") as f:
                f.write(body)
            print(f"wrote {os.path.join(directory, name)}")
    finally:
        stop(proc)
    return 0


def self_test():
    check = Check()
    proc, base = start()
    try:
        get = lambda path, **kw: request(base, path, **kw)
        control = lambda body: request(base, "/_control", body)
        as_json = lambda answer: json.loads(answer[2])

        # Tor, both formats.
        check(control({"tor": ["185.220.101.1", "2001:db8::1"]})[0] == 200, "control tor")
        status, headers, body = get("/torbulkexitlist")
        check(status == 200 and body == b"185.220.101.1\n2001:db8::1\n", f"bulk list {body!r}")
        check(headers["Content-Type"].startswith("text/plain"), "bulk list type")
        body = get("/exit-addresses")[2].decode()
        check(re.search(r"^ExitAddress 185\.220\.101\.1 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", body,
                        re.M) is not None and body.count("ExitNode ") == 2, f"TorDNSEL {body!r}")

        # ip-api.
        control({"ipapi": {"192.0.2.10": {"proxy": True, "countryCode": "DE",
                                          "as": "AS3320 Deutsche Telekom AG"}}})
        status, headers, body = get("/json/192.0.2.10" + IPAPI_QUERY)
        check(status == 200 and json.loads(body) == {
            "status": "success", "countryCode": "DE", "as": "AS3320 Deutsche Telekom AG",
            "proxy": True, "hosting": False}, f"ip-api fields {body!r}")
        check(headers["X-Rl"] == "44" and 0 < int(headers["X-Ttl"]) <= 60,
              f"ip-api headers {headers['X-Rl']} {headers['X-Ttl']}")
        check(as_json(get("/json/10.0.0.1?fields=status,message")) ==
              {"status": "fail", "message": "private range", "query": "10.0.0.1"}, "private")
        check(as_json(get("/json/127.0.0.1"))["message"] == "reserved range", "reserved")
        check(as_json(get("/json/nonsense"))["message"] == "invalid query", "invalid query")
        clean = as_json(get("/json/8.8.4.4?fields=16959490"))
        check(clean == {"countryCode": "US", "as": "AS64500 Example Networks",
                        "status": "success", "proxy": False, "hosting": False},
              f"numeric fields {clean}")
        check(set(as_json(get("/json/8.8.4.4"))) == set(IPAPI_DEFAULT_FIELDS) - {"message"},
              "default fields")
        check(as_json(get("/json/[2001:db8::10]?fields=query"))["query"] == "2001:db8::10",
              "ipv6")

        # StopForumSpam, both forms, parameters in any order.
        control({"sfs": {"198.51.100.7": {"appears": 1, "frequency": 12}}})
        single = as_json(get("/api?ip=198.51.100.7&json"))
        check(single == {"success": 1, "ip": {"value": "198.51.100.7", "appears": 1,
                                              "frequency": 12,
                                              "lastseen": "2025-02-25 18:34:43"}},
              f"sfs single {single}")
        multi = as_json(get("/api?json&confidence&ip[]=198.51.100.7&ip%5B%5D=203.0.113.9"))
        check(isinstance(multi["ip"], list) and [r["value"] for r in multi["ip"]] ==
              ["198.51.100.7", "203.0.113.9"] and multi["ip"][0]["confidence"] == 35.0 and
              multi["ip"][1] == {"value": "203.0.113.9", "appears": 0, "frequency": 0},
              f"sfs multi {multi}")
        repeated = as_json(get("/api?json&ip=198.51.100.7&ip=203.0.113.9"))
        check(len(repeated["ip"]) == 2, "sfs repeated ip")
        check(as_json(get("/api?json"))["success"] == 0, "sfs without ip")
        many = "&".join(f"ip[]=203.0.113.{i}" for i in range(16))
        check(as_json(get("/api?json&" + many))["success"] == 0, "sfs over 15")
        check(b"<appears>yes</appears>" in get("/api?ip=198.51.100.7")[2], "sfs xml")

        # Stats.
        stats = as_json(get("/_stats"))
        check(stats["requests"] == {"tor": 2, "ipapi": 7, "sfs": 6}, f"stats {stats}")
        check(stats["ipapi_asked"] == ["192.0.2.10", "10.0.0.1", "127.0.0.1", "nonsense",
                                       "8.8.4.4", "8.8.4.4", "2001:db8::10"],
              f"ipapi asked {stats['ipapi_asked']}")
        check(stats["sfs_asked"][:3] == ["198.51.100.7", "198.51.100.7", "203.0.113.9"],
              f"sfs asked {stats['sfs_asked']}")
        check(request(base, "/_reset_stats", {})[0] == 200, "reset stats")
        check(as_json(get("/_stats"))["requests"] == {"tor": 0, "ipapi": 0, "sfs": 0},
              "stats after reset")

        # Modes, on one source and then on all.
        control({"mode": "slow", "delay": 1, "only": "tor"})
        began = time.monotonic()
        check(get("/torbulkexitlist")[0] == 200 and time.monotonic() - began >= 1, "slow")
        check(get("/api?json&ip=198.51.100.7")[0] == 200, "only: others unaffected")
        control({"mode": "garbage"})
        status, headers, body = get("/json/192.0.2.10")
        check(status == 200 and body.startswith(b"<!DOCTYPE html>"), "garbage")
        control({"mode": "empty"})
        check(get("/api?json&ip=198.51.100.7")[:3:2] == (200, b""), "empty")
        control({"mode": "error"})
        check(get("/torbulkexitlist")[0] == 500, "error")
        control({"mode": "close"})
        check(get("/torbulkexitlist")[0] is None, "close")
        control({"mode": "hang", "only": "sfs"})
        began = time.monotonic()
        check(get("/api?json&ip=1.2.3.4", timeout=1)[0] is None and
              time.monotonic() - began >= 0.9, "hang")
        control({"mode": "ok"})
        check(get("/torbulkexitlist")[0] == 200, "back to ok")
        check(control({"mode": "sideways"})[0] == 400, "bad mode refused")
        check(control({"ipapi": {"not-an-address": {}}})[0] == 400, "bad address refused")

        # ip-api's window: 45 requests, then 429 until it resets.
        control({"reset_rate": True})
        lefts = [get("/json/192.0.2.10?fields=status")[1]["X-Rl"] for _ in range(45)]
        check(lefts == [str(n) for n in range(44, -1, -1)], f"X-Rl counts down {lefts}")
        status, headers, _ = get("/json/192.0.2.10?fields=status")
        check(status == 429 and headers["X-Rl"] == "0" and int(headers["X-Ttl"]) > 0, "429")
        check(as_json(get("/_stats"))["throttled"] == 1, "throttled counted")
        control({"reset_rate": True})
        check(get("/json/192.0.2.10?fields=status")[0] == 200, "reset rate")

        # The fixtures are still what the server answers.
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "feeds")
        control({"mode": "ok", **FIXTURE_STATE})
        control({"reset_rate": True})
        for name, path in FIXTURES:
            try:
                with open(os.path.join(here, name), "rb") as f:
                    saved = f.read()
            except OSError as e:
                check(False, f"fixture {name}: {e}")
                continue
            body = GARBAGE_PAGE if path is None else get(path)[2]
            check(fixture_body(name, body) == fixture_body(name, saved),
                  f"fixture {name} differs from the server's answer")

        # A hanging request must not keep the server from stopping.
        control({"mode": "hang"})
        hanging = threading.Thread(target=get, args=("/torbulkexitlist",), daemon=True)
        hanging.start()
        time.sleep(0.2)
    finally:
        code, rest = stop(proc)
    check(code == 0, f"SIGTERM exit status {code}")
    check(rest == "", f"nothing printed after the first line: {rest!r}")

    # A state file.
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"tor": ["203.0.113.5"], "mode": "error", "only": "sfs"}, f)
    try:
        proc, base = start(["--state", f.name])
        try:
            check(request(base, "/torbulkexitlist")[2] == b"203.0.113.5\n", "state file tor")
            check(request(base, "/api?json&ip=1.2.3.4")[0] == 500, "state file mode")
        finally:
            stop(proc)
    finally:
        os.unlink(f.name)

    print(f"fake_feeds self-test: {check.count - check.failures}/{check.count} ok")
    return 1 if check.failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--state", help="JSON file with the initial state")
    parser.add_argument("--verbose", action="store_true", help="log requests to stderr")
    parser.add_argument("--ipapi-limit", type=int, default=45, help="ip-api requests per window")
    parser.add_argument("--ipapi-window", type=float, default=60, help="ip-api window, seconds")
    parser.add_argument("--self-test", action="store_true", help="check this server and exit")
    parser.add_argument("--write-fixtures", metavar="DIR", help="write the Rust tests' fixtures")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    if args.write_fixtures:
        return write_fixtures(args.write_fixtures)
    if args.port is None:
        parser.error("--port is required")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
