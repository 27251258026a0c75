"""The measuring half of scripts/bench: starts the nginx instances, runs wrk, reports."""
import argparse
import base64
import collections
import hashlib
import hmac
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

import crowdsec_load

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

# Locations served by each instance. The lean profile (no sendfile, cached open files)
# halves nginx's own cost per request, so the module's share shows.
LOCATIONS = """
        location /static/ { }
        location /lean/ { sendfile off; open_file_cache max=100; alias html/static/; }
{extra}
"""
# nginx's own limit_req, per client and for all clients together, with rates that never
# trigger (limit_req counts in milliseconds: without a burst it refuses a second request
# within the same millisecond): what the module's rate limits are measured against, on the
# same location (a captchaify location limited by limit_req instead) and on bare nginx.
LIMIT_REQ_ZONES = """
    limit_req_zone $binary_remote_addr zone=perclient:10m rate=1000000r/s;
    limit_req_zone $server_name zone=perlocation:1m rate=1000000r/s;
"""
LIMIT_REQ = "limit_req zone=perclient burst=100000 nodelay; limit_req zone=perlocation burst=100000 nodelay;"
OUR_LIMITS = "captchaify_rate_limit 1000000r/s; captchaify_max_rate_limit 1000000r/s;"
LEAN = "sendfile off; open_file_cache max=100; alias html/static/;"
BARE_HTTP = LIMIT_REQ_ZONES
BARE_LOCATIONS = f"""
        location /limit-req/ {{ {LIMIT_REQ} alias html/static/; }}
        location /return-403/ {{ return 403; }}
        location /return-429/ {{ return 429; }}
"""
# Rate limits are off for the module's other locations: wrk is one client, and the default
# of 120r/m would refuse it.
# Third-party sources are off except where the reputation cases turn the Tor list on: the
# other cases measure what they measured before the sources existed.
MODULE_HTTP = LIMIT_REQ_ZONES + """
    captchaify_secret_file conf/secret.key;
    captchaify_rate_limit off;
    captchaify_max_rate_limit off;
    captchaify_third_parties off;
    captchaify_feed tor file=conf/tor-exits.txt;
"""
# The example: the action read per request from a `map` on the user agent (a regex);
# and from a `geo` with only a default, nearly free for nginx, which shows what reading a
# variable costs the module itself. For the module instance only (the CrowdSec instance's http
# block is formatted).
ACTION_MAP = """
    map $http_user_agent $bench_action { ~*curl block; default captcha; }
    geo $bench_geo { default captcha; }
"""
# Reputation: 100,000 deny-listed ranges and a loaded Tor list of 1,500 exits, none of which
# is the benchmark's client: the cost of looking, on a location that lets the client pass.
REPUTATION = "captchaify_deny file=conf/deny-100k.txt; captchaify_third_parties tor;"
DENY_RANGES = 100_000
TOR_EXITS = 1_500
MODULE_LOCATIONS = f"""
        location /verified/ {{ captchaify_action fight; alias html/static/; }}
        location /challenge/ {{ captchaify_action fight; captchaify_precheck off; }}
        location /emoji/ {{ captchaify_action fight; captchaify_precheck off; captchaify_captcha_type emoji; captchaify_hardness 1; }}
        location /animals/ {{ captchaify_action fight; captchaify_precheck off; captchaify_captcha_type animals; }}
        location /precheck/ {{ captchaify_action fight; }}
        location /block/ {{ captchaify_action block; }}
        location /limited/ {{ captchaify_action captcha; captchaify_rate_limit 1r/m; }}
        location /let/ {{ captchaify_action let; alias html/static/; }}
        location /captcha/ {{ captchaify_action captcha; alias html/static/; }}
        location /captcha-map/ {{ captchaify_action $bench_action; alias html/static/; }}
        location /captcha-geo/ {{ captchaify_action $bench_geo; alias html/static/; }}
        location /captcha-limit-req/ {{ captchaify_action captcha; {LIMIT_REQ} alias html/static/; }}
        location /rate/ {{ captchaify_action captcha; {OUR_LIMITS} alias html/static/; }}
        location /verified-limit-req/ {{ captchaify_action fight; {LIMIT_REQ} alias html/static/; }}
        location /rate-verified/ {{ captchaify_action fight; {OUR_LIMITS} alias html/static/; }}
        location /lean-let/ {{ captchaify_action let; {LEAN} }}
        location /lean-captcha/ {{ captchaify_action captcha; {LEAN} }}
        location /lean-captcha-map/ {{ captchaify_action $bench_action; {LEAN} }}
        location /lean-captcha-limit-req/ {{ captchaify_action captcha; {LIMIT_REQ} {LEAN} }}
        location /lean-rate/ {{ captchaify_action captcha; {OUR_LIMITS} {LEAN} }}
        location /reputation/ {{ captchaify_action captcha; {REPUTATION} alias html/static/; }}
        location /lean-reputation/ {{ captchaify_action captcha; {REPUTATION} {LEAN} }}
"""

# CrowdSec: a third instance, the module's http block plus a Local API (Debian's CrowdSec
# 1.4.6 on loopback, scripts/crowdsec-lapi) holding 100,000 decisions (crowdsec_load.py),
# none about the benchmark's client. Its own instance, because the module looks the client
# up in the decisions at every location that gathers facts once a Local API is configured,
# `captchaify_crowdsec off` locations included (the decision is only ignored there): in the
# module instance, every other case would pay for the lookup. The "off" case shows that.
CROWDSEC_KEY = "0be4c4b0a1bc0ffee0123456789abcde"
CROWDSEC_HTTP = MODULE_HTTP + """
    captchaify_crowdsec_lapi http://127.0.0.1:{lapi_port} key_file=conf/crowdsec.key interval={interval};
    captchaify_crowdsec off;
"""
CROWDSEC_LOCATIONS = f"""
        location /crowdsec/ {{ captchaify_action captcha; captchaify_crowdsec on; alias html/static/; }}
        location /lean-crowdsec/ {{ captchaify_action captcha; captchaify_crowdsec on; {LEAN} }}
        location /crowdsec-off/ {{ captchaify_action captcha; alias html/static/; }}
"""
# Under callgrind, no delta pull during the requests counted: their number would depend on
# how long valgrind takes (the startup pull is waited for, and cancels out).
CALLGRIND_INTERVAL = "3600s"

# Ports: the bare and module instances, the flood run's, the CrowdSec instance and its LAPI.
PORTS = {"bare": 8101, "module": 8110, "flood": 8111, "crowdsec": 8112,
         "lapi": int(os.environ.get("CROWDSEC_PORT", 8120))}

SECRET = b"captchaify-bench-secret-0123456789abcdef"

CONFIG = """{load}
{main}
worker_processes 1;
worker_cpu_affinity 10;
error_log logs/error.log {log_level};
pid logs/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{http}
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        root html;
{locations}
    }}
}}
"""

# (label, instance, path, status): the bare instance has no load_module line at all. Labels
# with "verified" send a valid pass cookie.
CASES = [
    ("bare nginx, static", "bare", "/static/a.html", 200),
    # The verified client's own request (its cookie too), to bare nginx: what nginx itself
    # spends on the cookie is not the module's.
    ("bare nginx, static, verified client's request", "bare", "/static/a.html", 200),
    ("module loaded, location unused", "module", "/static/a.html", 200),
    ("captchaify_action let", "module", "/let/a.html", 200),
    ("captchaify_action captcha (person)", "module", "/captcha/a.html", 200),
    # The same action read per request from the issue's `map` on the user agent (a regex).
    ("captcha (person), action from a map", "module", "/captcha-map/a.html", 200),
    ("captcha (person), action from a geo", "module", "/captcha-geo/a.html", 200),
    ("fight, verified (valid pass cookie)", "module", "/verified/a.html", 200),
    ("fight, unverified: captcha pages", "module", "/challenge/", 403),
    ("fight, unverified: emoji pages (4x4)", "module", "/emoji/", 403),
    ("fight, unverified: animal pages (4x5)", "module", "/animals/", 403),
    ("bare nginx, return 403", "bare", "/return-403/", 403),
    ("bare nginx, return 429", "bare", "/return-429/", 429),
    ("block page (403)", "module", "/block/", 403),
    ("rate-limit page (429)", "module", "/limited/", 429),
    ("fight, unverified: pre-check pages", "module", "/precheck/", 403),
    ("bare nginx + limit_req", "bare", "/limit-req/a.html", 200),
    ("captcha (person) + limit_req", "module", "/captcha-limit-req/a.html", 200),
    ("captcha (person) + our rate limits", "module", "/rate/a.html", 200),
    ("fight, verified + limit_req", "module", "/verified-limit-req/a.html", 200),
    ("fight, verified + our rate limits", "module", "/rate-verified/a.html", 200),
    ("bare nginx, lean static", "bare", "/lean/a.html", 200),
    ("let, lean static", "module", "/lean-let/a.html", 200),
    ("captcha (person), lean static", "module", "/lean-captcha/a.html", 200),
    ("captcha (person), lean, from a map", "module", "/lean-captcha-map/a.html", 200),
    ("captcha + limit_req, lean", "module", "/lean-captcha-limit-req/a.html", 200),
    ("captcha + our rate limits, lean", "module", "/lean-rate/a.html", 200),
    ("captcha + 100k deny ranges + Tor list", "module", "/reputation/a.html", 200),
    ("captcha + 100k ranges + Tor, lean", "module", "/lean-reputation/a.html", 200),
    ("captcha + 100k CrowdSec decisions", "crowdsec", "/crowdsec/a.html", 200),
    ("captcha + 100k CrowdSec, lean", "crowdsec", "/lean-crowdsec/a.html", 200),
    ("captcha, CrowdSec off, 100k loaded", "crowdsec", "/crowdsec-off/a.html", 200),
]
# The reputation cases against the same location without any source, same profile.
AGAINST_NO_REPUTATION = [
    ("captcha + 100k deny ranges + Tor list", "captchaify_action captcha (person)"),
    ("captcha + 100k ranges + Tor, lean", "captcha (person), lean static"),
]
# The action read from a `map` against the same action written in the location.
AGAINST_STATIC_ACTION = [
    ("captcha (person), action from a map", "captchaify_action captcha (person)"),
    ("captcha (person), action from a geo", "captchaify_action captcha (person)"),
    ("captcha (person), lean, from a map", "captcha (person), lean static"),
]
# The CrowdSec cases against the same location in the instance without a Local API.
AGAINST_NO_CROWDSEC = [
    ("captcha + 100k CrowdSec decisions", "captchaify_action captcha (person)"),
    ("captcha + 100k CrowdSec, lean", "captcha (person), lean static"),
    ("captcha, CrowdSec off, 100k loaded", "captchaify_action captcha (person)"),
]
BASELINE = {"static": "bare nginx, static", "lean": "bare nginx, lean static"}
# The module's cheap answers against nginx's own `return`, same run.
AGAINST_RETURN = [
    ("block page (403)", "bare nginx, return 403"),
    ("rate-limit page (429)", "bare nginx, return 429"),
    ("fight, unverified: pre-check pages", "bare nginx, return 403"),
    ("fight, unverified: captcha pages", "bare nginx, return 403"),
    ("fight, unverified: emoji pages (4x4)", "bare nginx, return 403"),
    ("fight, unverified: animal pages (4x5)", "bare nginx, return 403"),
]
# A verified client against bare nginx given the very same request (the pass cookie too).
AGAINST_SAME_REQUEST = [
    ("fight, verified (valid pass cookie)", "bare nginx, static, verified client's request"),
    ("fight, verified + our rate limits", "bare nginx, static, verified client's request"),
]
# The module's rate limits against nginx's own limit_req, same profile, same run.
AGAINST_LIMIT_REQ = [
    ("captcha (person) + our rate limits", "captcha (person) + limit_req"),
    ("fight, verified + our rate limits", "fight, verified + limit_req"),
    ("captcha + our rate limits, lean", "captcha + limit_req, lean"),
    ("captcha (person) + our rate limits", "bare nginx + limit_req"),
]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pass_token(address, user_agent, hardness=2, lifetime=86400):
    """A pass in the documented format (docs/design.md, "Tokens"), minted independently of the module."""
    client = hashlib.sha256(f"captchaify-client|{address}|{user_agent}".encode()).digest()[:12]
    body = f"v1.{int(time.time()) + lifetime}.{hardness}.{b64(os.urandom(16))}.{b64(client)}"
    mac = hmac.new(SECRET, b"captchaify-pass|" + body.encode(), hashlib.sha256).digest()
    return f"{body}.{b64(mac)}"


def start_instance(nginx, workdir, name, port, module, http=None, extra=None, log_level="warn",
                   main="", crowdsec_key=None, callgrind_http=None):
    prefix = os.path.join(workdir, name)
    shutil.rmtree(prefix, ignore_errors=True)
    for sub in ("conf", "logs", "html/static"):
        os.makedirs(os.path.join(prefix, sub))
    with open(os.path.join(prefix, "html/static/a.html"), "w") as f:
        f.write("<!DOCTYPE html><title>bench</title>" + "x" * (600 - 35))
    load = f"load_module {module};" if module else ""
    if extra is None:
        extra = MODULE_LOCATIONS if module else BARE_LOCATIONS
    if http is None:
        http = MODULE_HTTP + ACTION_MAP if module else BARE_HTTP
    if module:
        with open(os.path.join(prefix, "conf/secret.key"), "wb") as f:
            f.write(SECRET)
        write_reputation_lists(os.path.join(prefix, "conf"))
    if crowdsec_key:
        with open(os.path.join(prefix, "conf/crowdsec.key"), "w") as f:
            f.write(crowdsec_key + "\n")
    for conf, http_block in (("nginx.conf", http), ("callgrind.conf", callgrind_http or http)):
        with open(os.path.join(prefix, "conf", conf), "w") as f:
            f.write(CONFIG.format(load=load, main=main, port=port, http=http_block, log_level=log_level,
                                  locations=LOCATIONS.replace("{extra}", extra)))
    subprocess.run([nginx, "-p", prefix, "-c", "conf/nginx.conf"], check=True)
    time.sleep(0.5)
    master = int(open(os.path.join(prefix, "logs/nginx.pid")).read())
    worker = int(subprocess.check_output(["pgrep", "-P", str(master)]).split()[0])
    return {"prefix": prefix, "port": port, "master": master, "worker": worker}


def write_reputation_lists(conf):
    """100,000 deny ranges (80% IPv4 /24s, 20% IPv6 /48s, spread out) and 1,500 Tor exits,
    none covering 127.0.0.1."""
    with open(os.path.join(conf, "deny-100k.txt"), "w") as f:
        for i in range(1, DENY_RANGES + 1):
            n = (i * 40503) % 16777216
            if i % 5:
                if n >> 16 == 127:
                    n ^= 1 << 16
                f.write(f"{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}.0/24\n")
            else:
                f.write(f"2001:{0xdb8 + (i >> 16):x}:{i & 0xffff:x}::/48\n")
    with open(os.path.join(conf, "tor-exits.txt"), "w") as f:
        for i in range(TOR_EXITS):
            f.write(f"185.{220 + i // 250}.{i % 250}.{1 + i % 200}\n")


IN_FORCE = re.compile(r"captchaify: crowdsec: (\d+) decisions in force from (\S+) \(full pull: (\d+) "
                      r"bytes in (\d+) ms, written in (\d+) ms\)")
ROOM = re.compile(r'zone "captchaify_crowdsec" of (\d+) bytes initialised: room for (\d+) CrowdSec '
                  r"decisions \((\d+) bytes each\)")


def wait_for_decisions(log, offset=0, timeout=120, worker=None):
    """Waits for the startup pull to be in force (the notice in the error log after OFFSET),
    checks that it holds every decision; returns what the log says about it, and the
    worker's memory before and after when WORKER is given."""
    memory_before = memory(worker) if worker else None
    deadline = time.monotonic() + timeout
    while True:
        with open(log, errors="replace") as f:
            f.seek(offset)
            text = f.read()
        trouble = [line for line in text.splitlines()
                   if "crowdsec" in line and re.search(r"\[(warn|error|crit|alert|emerg)\]", line)]
        if trouble:
            raise SystemExit(f"{log}: {trouble[0]}")
        found = IN_FORCE.search(text)
        if found:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{log}: no \"decisions in force\" within {timeout} s")
        time.sleep(0.05)
    n, url, size, fetch_ms, write_ms = found.groups()
    if int(n) != crowdsec_load.TOTAL:
        raise SystemExit(f"{log}: {n} decisions in force, expected {crowdsec_load.TOTAL} "
                         f"(a stale cache? remove target/bench-crowdsec)")
    figures = {"decisions": int(n), "url": url, "bytes": int(size), "fetch_ms": int(fetch_ms),
               "write_ms": int(write_ms)}
    room = ROOM.search(text)
    if room:
        figures.update(zone_bytes=int(room.group(1)), room=int(room.group(2)),
                       bytes_each=int(room.group(3)))
    if worker:
        time.sleep(0.5)  # the last tick's pages, and the pull's buffers freed
        figures.update(memory_before=memory_before, memory_after=memory(worker))
    return figures


def wait_for_line(log, pattern, timeout):
    deadline = time.monotonic() + timeout
    while not (os.path.exists(log) and pattern.search(open(log, errors="replace").read())):
        if time.monotonic() > deadline:
            raise SystemExit(f"{log}: nothing like {pattern.pattern!r} within {timeout} s")
        time.sleep(0.05)


def memory(pid):
    """The process's resident memory (kB): total, anonymous, shared (the zones' pages it has
    touched), and its peak."""
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssShmem", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def print_crowdsec(figures, lapi_note):
    if not figures:
        return
    f = figures
    print(f"\nCrowdSec: {f['decisions']:,} decisions in the Local API ({crowdsec_load.V4_ADDRESSES:,} "
          f"IPv4 addresses, {crowdsec_load.V4_RANGES:,} IPv4 /24s, {crowdsec_load.V6_RANGES:,} IPv6 /64s; "
          f"{lapi_note})")
    print(f"  startup pull: {f['bytes']:,} bytes fetched and parsed in {f['fetch_ms']:,} ms, "
          f"written to the zone in {f['write_ms']:,} ms ({f['bytes'] / f['decisions']:.0f} bytes of JSON "
          "per decision)")
    if "room" in f:
        print(f"  zone: {f['zone_bytes']:,} bytes, room for {f['room']:,} decisions, {f['bytes_each']} bytes "
              f"each; {f['decisions']:,} use {f['decisions'] * f['bytes_each'] / 2**20:.1f} MiB")
    if f.get("memory_before"):
        b, a = f["memory_before"], f["memory_after"]
        print(f"  worker memory (kB) when started / with the decisions in force: "
              + ", ".join(f"{k} {b[k]:,} / {a[k]:,}" for k in ("VmRSS", "RssAnon", "RssShmem", "VmHWM")))
        print(f"  zone pages touched per decision: {(a['RssShmem'] - b['RssShmem']) * 1024 / f['decisions']:.0f} "
              "bytes")


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


# wrk's done() hook prints exact figures, so nothing depends on its human-readable output.
WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format("REPORT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def headers_for(label, cookie):
    """A browser's headers (an HTTP library's for the block page); the pass cookie only for the
    case that measures verified clients."""
    # The block page is for suspicious clients: an HTTP library's User-Agent is one.
    headers = {"User-Agent": "curl/8.5.0" if label.startswith("block page") else BROWSER}
    if "verified" in label and "unverified" not in label:
        headers["Cookie"] = f"captchaify={cookie}"
    return headers


def probe(url, headers, status):
    """One request first: wrk's summary cannot tell a 403 from a 404. A 429 may take a few:
    the rate-limited case's bucket (one request a minute) refills between runs."""
    import urllib.request, urllib.error
    for _ in range(3 if status == 429 else 1):
        try:
            got = urllib.request.urlopen(urllib.request.Request(url, headers=headers)).status
        except urllib.error.HTTPError as error:
            got = error.code
        if got == status:
            break
    if got != status:
        raise SystemExit(f"{url}: status {got}, expected {status}: the bench is wrong")


def run_wrk(url, duration, script, status, headers):
    probe(url, headers, status)
    args = ["taskset", "-c", "0", "wrk", "-t1", "-c50", f"-d{duration}s", "-s", script]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.check_output(args + [url], text=True)
    report = dict(kv.split("=") for kv in re.search(r"REPORT (.*)", out).group(1).split())
    report = {k: int(v) for k, v in report.items()}
    expected_non2xx = report["requests"] if status >= 400 else 0
    # The rate-limited case lets one request a minute through: at most one per run.
    slack = 1 if status == 429 else 0
    if not 0 <= expected_non2xx - report["non2xx"] <= slack or report["errors"]:
        raise SystemExit(f"{url}: {report}: responses were not all {status}: the bench is wrong")
    rps = report["requests"] / (report["duration_us"] / 1e6)
    return rps, report["p99_us"] / 1000.0, report["requests"]


TOR_LOADED = re.compile(r"captchaify: tor: \d+ exit addresses loaded")


def count_instructions(nginx, prefix, path, requests, status, headers):
    """Instructions nginx's event loop executes while it starts, serves `requests` keepalive
    GETs and stops (with conf/callgrind.conf: nginx.conf but for CrowdSec's pull interval).
    Only the event loop is counted (--toggle-collect): start-up work varies from run to run
    by up to 1M instructions (seen in the regex crate's literal extraction, Vec::dedup_by and
    malloc), ±250 per request in a difference of 2,000 requests; so does the module instance
    in "captcha (person)" from 16,108 to 17,316 without it, ±35 with it. The
    requests wait for what the module loads in the background at start (the Tor list,
    CrowdSec's startup pull), which the event loop applies: otherwise whether it is done by
    the end of the short run (in one count of the difference or in both) depends on timing."""
    out = os.path.join(prefix, "logs", f"callgrind.{requests}.out")
    conf = open(os.path.join(prefix, "conf/callgrind.conf")).read()
    log = os.path.join(prefix, "logs/callgrind-notice.log")
    if os.path.exists(log):
        os.remove(log)
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         "--toggle-collect=ngx_process_events_and_timers", nginx, "-p", prefix,
         "-c", "conf/callgrind.conf", "-g",
         "daemon off; master_process off; error_log logs/callgrind-notice.log notice;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = int(re.search(r"listen 127.0.0.1:(\d+)", conf).group(1))
    import http.client
    try:
        for _ in range(3000):  # valgrind starts slowly (it also builds the glyph cache)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.connect()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"nginx under valgrind did not listen on port {port} within 5 minutes")
        if "captchaify_feed tor" in conf and "captchaify_third_parties tor" in conf:
            wait_for_line(log, TOR_LOADED, timeout=600)
        if "captchaify_crowdsec_lapi" in conf:
            wait_for_decisions(log, timeout=600)
        for i in range(requests):
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            # The rate-limited case lets its first request through (a 404: nothing there),
            # in both runs alike, so the difference does not see it.
            if response.status != status and not (status == 429 and i == 0):
                raise SystemExit(f"{path}: status {response.status}: the bench is wrong")
        conn.close()
    finally:
        proc.send_signal(3)  # SIGQUIT: graceful exit, callgrind writes its totals
        proc.wait()
    for line in open(out):
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def instructions_per_request(nginx, prefix, path, status, headers):
    # The difference between two runs cancels start-up and shutdown.
    few, many = (50, 250) if status >= 400 else (500, 2500)
    return (count_instructions(nginx, prefix, path, many, status, headers)
            - count_instructions(nginx, prefix, path, few, status, headers)) / (many - few)


def fmt(values, unit=""):
    return f"{statistics.median(values):,.1f}{unit} ({min(values):,.1f}-{max(values):,.1f})"


PYTHON_CAPTCHA = """
import random, string, sys, time
from captcha.image import ImageCaptcha
gen = ImageCaptcha(width=320, height=120)
alphabet = string.ascii_uppercase + string.digits
n = int(sys.argv[1])
texts = ["".join(random.choice(alphabet) for _ in range(random.randint(6, 8))) for _ in range(n)]
sizes = []
start = time.perf_counter()
for t in texts:
    sizes.append(len(gen.generate(t, format="png").getvalue()))
elapsed = time.perf_counter() - start
print(f"{n / elapsed:.0f} images/s, {elapsed / n * 1000:.2f} ms per image, "
      f"PNG {min(sizes)}-{max(sizes)} bytes (mean {sum(sizes) / n:.0f})")
"""


def image_generation(workdir, tool, pictures_tool=None):
    """Our generator against the Python `captcha` package, same core, same run."""
    print("\ncaptcha image generation on one core (CPU 1):")
    print("  captchaify:", flush=True)
    subprocess.run(["taskset", "-c", "1", tool, "speed", "2000"], check=True)
    if pictures_tool:
        print("  captchaify picture pages (complete pages, built-in templates):", flush=True)
        subprocess.run(["taskset", "-c", "1", pictures_tool, "speed", "2000"], check=True)
    venv = os.path.join(workdir, "py-captcha")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run(["python3", "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "captcha"], check=True)
    print("  Python captcha package (ImageCaptcha 320x120, 6-8 characters, PNG):", flush=True)
    out = subprocess.check_output(["taskset", "-c", "1", python, "-c", PYTHON_CAPTCHA, "300"], text=True)
    print("   ", out.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--module", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--images-tool", help="the captcha-images binary, for the generation figures")
    ap.add_argument("--pictures-tool", help="the captcha-pictures binary, for the picture pages' figures")
    ap.add_argument("--cases", help="only the configurations whose label matches this regex "
                    "(the bare baselines always run)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--crowdsec-cache", default=os.path.join(root, "target", "bench-crowdsec"),
                    help="where the Local API's state with the 100,000 decisions is kept")
    args = ap.parse_args()
    if args.cases:
        global CASES
        CASES = [c for c in CASES if re.search(args.cases, c[0]) or c[0] in BASELINE.values()]
    use_crowdsec = any(inst == "crowdsec" for _, inst, _, _ in CASES)
    for name in ["bare", "module", "flood"] + (["crowdsec", "lapi"] if use_crowdsec else []):
        if port_taken(PORTS[name]):
            raise SystemExit(f"127.0.0.1:{PORTS[name]} ({name}) is taken: the bench needs it"
                             + (" (CROWDSEC_PORT=... chooses another)" if name == "lapi" else ""))
    # The Local API is stopped on the way out, also when the bench is told to stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lapi = {"script": os.path.join(root, "scripts", "crowdsec-lapi"),
            "dir": os.path.join(os.path.abspath(args.workdir), "crowdsec-lapi"),
            "cache": args.crowdsec_cache} if use_crowdsec else None
    try:
        out = run_all(args, lapi)
    finally:
        if lapi:
            crowdsec_load.stop(lapi["script"], lapi["dir"])
    if args.images_tool:
        image_generation(args.workdir, args.images_tool, args.pictures_tool)
    print_crowdsec(out["crowdsec"], out["lapi_note"])
    if not args.rounds:
        return
    print_medians(args, out["results"])
    print_paired(out["paired"])


def port_taken(port):
    import socket
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_all(args, lapi):
    """The timed rounds, the paired runs, the flood run and the instruction counts, with the
    CrowdSec instance and its Local API when LAPI says where (the caller stops the LAPI)."""
    out = {"crowdsec": {}, "lapi_note": "", "ir": None}
    instances = {}
    cookie = pass_token("127.0.0.1", BROWSER)
    try:
        if lapi:
            url, out["lapi_note"] = crowdsec_load.prepare(lapi["script"], lapi["cache"], lapi["dir"],
                                                          PORTS["lapi"], CROWDSEC_KEY)
            print(f"CrowdSec Local API on {url}: {out['lapi_note']}", flush=True)
        instances["bare"] = start_instance(args.nginx, args.workdir, "bare", PORTS["bare"], None)
        instances["module"] = start_instance(args.nginx, args.workdir, "module", PORTS["module"], args.module)
        if lapi:
            http = {interval: CROWDSEC_HTTP.format(lapi_port=PORTS["lapi"], interval=interval)
                    for interval in ("10s", CALLGRIND_INTERVAL)}
            t0 = time.monotonic()
            cs = instances["crowdsec"] = start_instance(
                args.nginx, args.workdir, "crowdsec", PORTS["crowdsec"], args.module,
                http=http["10s"], callgrind_http=http[CALLGRIND_INTERVAL], extra=CROWDSEC_LOCATIONS,
                log_level="notice", crowdsec_key=CROWDSEC_KEY)
            out["crowdsec"] = wait_for_decisions(os.path.join(cs["prefix"], "logs/error.log"),
                                                 worker=cs["worker"])
            print(f"CrowdSec instance: {out['crowdsec']['decisions']:,} decisions in force "
                  f"{time.monotonic() - t0:.1f} s after its start", flush=True)
        out["results"] = timed_rounds(args, instances, cookie)
        out["paired"] = paired_comparison(args, instances, os.path.join(args.workdir, "report.lua"), cookie)
    finally:
        for i in instances.values():
            subprocess.run(["kill", "-QUIT", str(i["master"])])
        time.sleep(1)
    if os.environ.get("FLOOD") != "0":
        flood_figures(args)
    if os.environ.get("CALLGRIND") != "0":
        out["ir"] = count_all_instructions(args, instances, cookie)
    return out


def timed_rounds(args, instances, cookie):
    script = os.path.join(args.workdir, "report.lua")
    with open(script, "w") as f:
        f.write(WRK_REPORT)
    results = {label: {"rps": [], "p99": [], "us": []} for label, _, _, _ in CASES}
    results = collections.defaultdict(lambda: {"rps": [], "p99": [], "us": []}, results)
    for rnd in range(1, args.rounds + 1):
        for label, inst, path, status in CASES:
            i = instances[inst]
            url = f"http://127.0.0.1:{i['port']}{path}"
            before = cpu_ticks(i["worker"])
            rps, p99, total = run_wrk(url, args.duration, script, status, headers_for(label, cookie))
            ticks = cpu_ticks(i["worker"]) - before
            us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / total
            r = results[label]
            r["rps"].append(rps); r["p99"].append(p99); r["us"].append(us)
            print(f"round {rnd}: {label:38s} {rps:>10,.0f} req/s  p99 {p99:.2f} ms  "
                  f"{us:.1f} us CPU/req", flush=True)
    return results


# The flood run: one location with the default limits (120r/m per client, 1200r/m for all),
# clients told apart by X-Forwarded-For through realip.
FLOOD_HTTP = """
    captchaify_secret_file conf/secret.key;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
"""
FLOOD_LOCATIONS = """
        location /flood/ { captchaify_action captcha; alias html/static/; }
        location /fight/ { captchaify_action fight; alias html/static/; }
        location /fight-no-precheck/ { captchaify_action fight; captchaify_precheck off; alias html/static/; }
        location /return-403/ { return 403; }
"""
# The floods of fresh addresses against the pre-check: every request from an address of its
# own (10.x.y.z, a million of them), counting captcha pages by their inline image. With
# a proof file, each request brings its address's pre-check proof as a cookie: the flood
# that keeps cookies, one round trip later.
PRECHECK_LUA = """
local n = 0
c403, c429, cother, images = 0, 0, 0, 0
threads = {}
local proofs = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args)
  spread, offset = tonumber(args[1]), tonumber(args[2])
  if args[3] then
    for line in io.lines(args[3]) do table.insert(proofs, line) end
    spread = #proofs
  end
end
request = function()
  n = n + 1
  local a = offset + n % spread
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
    math.floor(a / 65536) % 256, math.floor(a / 256) % 256, a % 256)
  if #proofs > 0 then wrk.headers["Cookie"] = "captchaify_pre=" .. proofs[n % spread + 1] end
  return wrk.format()
end
"""
# One address posting answers to the verify path as fast as it can: the issue's
# `challenge=x&answer=y`, or a genuine challenge's wrong answer, over and over.
VERIFY_LUA = """
c403, c429, cother, images = 0, 0, 0, 0
threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args)
  wrk.method = "POST"
  wrk.body = args[1]
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["X-Forwarded-For"] = "198.51.100.7"
end
"""
# What both floods above count: statuses, and captcha images by the inline PNG in the body.
COUNTING_LUA = """
response = function(status, headers, body)
  if status == 403 then c403 = c403 + 1 elseif status == 429 then c429 = c429 + 1
  else cother = cother + 1 end
  if body and string.find(body, "data:image/png", 1, true) then images = images + 1 end
end
done = function(summary, latency, requests)
  local t = {c403 = 0, c429 = 0, cother = 0, images = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("FLOOD requests=%d duration_us=%d c403=%d c429=%d cother=%d images=%d errors=%d\\n",
    summary.requests, summary.duration, t.c403, t.c429, t.cother, t.images,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
FLOOD_LUA = """
local n = 0
c200, c403, c429, cother = 0, 0, 0, 0
threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) spread, offset = tonumber(args[1]), tonumber(args[2]) end
request = function()
  n = n + 1
  local a = offset + n % spread
  -- wrk.format's own headers would replace wrk.headers (the User-Agent given with -H).
  wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d",
    math.floor(a / 65536) % 256, math.floor(a / 256) % 256, a % 256)
  return wrk.format()
end
response = function(status)
  if status == 200 then c200 = c200 + 1 elseif status == 403 then c403 = c403 + 1
  elseif status == 429 then c429 = c429 + 1 else cother = cother + 1 end
end
done = function(summary, latency, requests)
  local t = {c200 = 0, c403 = 0, c429 = 0, cother = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  io.write(string.format("FLOOD requests=%d duration_us=%d c200=%d c403=%d c429=%d cother=%d errors=%d\\n",
    summary.requests, summary.duration, t.c200, t.c403, t.c429, t.cother,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
# The verified client: one keep-alive connection, a request every 1/RATE s, latency of each.
MEASURE = """
import http.client, sys, time
port, path, cookie, address, n, rate = sys.argv[1:7]
n, rate = int(n), float(rate)
conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
headers = {"User-Agent": sys.argv[7], "Cookie": "captchaify=" + cookie, "X-Forwarded-For": address}
start = time.perf_counter()
for i in range(n):
    delay = start + i / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    t0 = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - t0) * 1000
    if response.status != 200:
        sys.exit(f"the verified client got {response.status}")
    print(f"{elapsed:.3f}")
"""


def precheck_proof(address, user_agent, path, expires):
    """The pre-check's proof (docs/design.md, "Tokens"), minted independently of the module."""
    client = hashlib.sha256(f"captchaify-client|{address}|{user_agent}".encode()).digest()[:12]
    message = b"".join(len(part).to_bytes(4, "little") + part
                       for part in (client, path.encode(), str(expires).encode()))
    mac = hmac.new(SECRET, b"captchaify-precheck|" + message, hashlib.sha256).digest()
    return f"p1.{expires}.{b64(mac)}"


def challenge_token(address, user_agent, answer, return_path="/fight/a.html"):
    """A genuine challenge (docs/design.md, "Tokens"), minted independently of the module, with the
    limits of a location that has the defaults."""
    nonce = b64(os.urandom(16))
    client = hashlib.sha256(f"captchaify-client|{address}|{user_agent}".encode()).digest()[:12]
    commitment = hmac.new(SECRET, f"captchaify-answer|{nonce}|{answer}".encode(), hashlib.sha256).digest()[:16]
    body = ".".join(["c2", str(int(time.time()) + 120), "2", "86400", "c", "64", "120m", "6m",
                     b64(b"\0" * 16), nonce, b64(client), b64(commitment), b64(return_path.encode())])
    mac = hmac.new(SECRET, f"captchaify-challenge|{body}".encode(), hashlib.sha256).digest()
    return f"{body}.{b64(mac)}"


def flood_report(out):
    report = dict(kv.split("=") for kv in re.search(r"FLOOD (.*)", out).group(1).split())
    return {k: int(v) for k, v in report.items()}


def precheck_figures(args, inst):
    """Floods of fresh addresses that keep no cookies, against the pre-check, against no
    pre-check and against nginx's `return 403`, paired round by round; then the flood that
    keeps cookies (brings each address's proof)."""
    duration, rounds = min(args.duration, 8), max(args.rounds, 3)
    lua = os.path.join(args.workdir, "precheck.lua")
    with open(lua, "w") as f:
        f.write(PRECHECK_LUA + COUNTING_LUA)
    url = f"http://127.0.0.1:{inst['port']}"

    def flood(path, offset, *extra):
        out = subprocess.check_output(
            ["taskset", "-c", "0", "wrk", "-t1", "-c50", f"-d{duration}s", "-s", lua,
             "-H", f"User-Agent: {BROWSER}", url + path, "--", "1000000", str(offset), *extra], text=True)
        report = flood_report(out)
        report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
        return report

    print(f"\nfloods of fresh addresses (a million, one request each, {rounds} rounds of {duration} s, "
          "fight location with the default limits):", flush=True)
    cases = [("return 403 (nginx)", "/return-403/"), ("pre-check on (default)", "/fight/a.html"),
             ("pre-check off", "/fight-no-precheck/a.html")]
    figures = {label: [] for label, _ in cases}
    offset = 0
    for rnd in range(rounds):
        for label, path in cases:
            offset += 1_000_000 // (rounds * len(cases))
            figures[label].append(flood(path, offset))
    base = statistics.median(r["rps"] for r in figures["return 403 (nginx)"])
    for label, _ in cases:
        runs = figures[label]
        rps = statistics.median(r["rps"] for r in runs)
        print(f"  {label:28s} {rps:>10,.0f} req/s  x{rps / base:.3f} of return 403  "
              f"images drawn {sum(r['images'] for r in runs):,} of {sum(r['requests'] for r in runs):,} "
              f"responses  ({sum(r['c429'] for r in runs):,} 429, {sum(r['cother'] + r['errors'] for r in runs):,} other)")
    # Keeping cookies: every address brings the proof its first visit got.
    proofs = os.path.join(args.workdir, "proofs.txt")
    expires = int(time.time()) + 600
    with open(proofs, "w") as f:
        for a in range(2_000_000, 2_000_000 + 60_000):
            address = f"10.{a // 65536 % 256}.{a // 256 % 256}.{a % 256}"
            f.write(precheck_proof(address, BROWSER, "/fight/a.html", expires) + "\n")
    kept = flood("/fight/a.html", 2_000_000, proofs)
    print(f"  {'keeping cookies (proofs)':28s} {kept['rps']:>10,.0f} req/s  x{kept['rps'] / base:.3f} of return 403  "
          f"images drawn {kept['images']:,} of {kept['requests']:,} responses  "
          f"({kept['c429']:,} 429, {kept['cother'] + kept['errors']:,} other); each address also cost "
          "one pre-check page first", flush=True)


def verify_flood_figures(args, inst, calm):
    """One address posting answers to the verify path as fast as it can, while a verified
    client (another address) browses: what the flood gets, and the client's latency."""
    lua = os.path.join(args.workdir, "verify.lua")
    with open(lua, "w") as f:
        f.write(VERIFY_LUA + COUNTING_LUA)
    print("\nverify-path floods from one address (8 s each), a verified client browsing meanwhile:", flush=True)
    forms = [("challenge=x&answer=y", "challenge=x&answer=y"),
             ("a genuine challenge, wrong", "challenge=" + challenge_token("198.51.100.7", BROWSER, "KXMPW4") + "&answer=WRONG")]
    for label, body in forms:
        flood = subprocess.Popen(
            ["nice", "-n", "10", "taskset", "-c", "0", "wrk", "-t1", "-c20", "-d8s", "-s", lua,
             "-H", f"User-Agent: {BROWSER}", f"http://127.0.0.1:{inst['port']}/.captchaify/verify", "--", body],
            stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        latencies = measure_verified(inst["port"], 1, 50, 10.0, 60 + len(label) % 50)
        out, _ = flood.communicate()
        r = flood_report(out)
        print(f"  {label:28s} {r['requests']:,} answers in 8 s: {r['images']:,} pages drawn, "
              f"{r['c429']:,} 429, {r['c403']:,} 403 (stale or block pages), {r['cother'] + r['errors']:,} other; "
              f"verified client p99 {percentile(latencies, 99):.2f} ms (calm {percentile(calm, 99):.2f} ms)", flush=True)


def measure_verified(port, repetitions, per_rep, rate, first_address):
    """Latencies (ms) of verified clients, each a fresh address with its own pass, so that
    none goes over its own limit (120r/m allows a burst of 120)."""
    latencies = []
    for rep in range(repetitions):
        address = f"192.0.2.{first_address + rep}"
        out = subprocess.check_output(
            ["taskset", "-c", "0", "python3", "-c", MEASURE, str(port), "/flood/a.html",
             pass_token(address, BROWSER), address, str(per_rep), str(rate), BROWSER], text=True)
        latencies += [float(x) for x in out.split()]
    return latencies


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


def flood_figures(args):
    """A verified client's latency on one location, alone and while many addresses flood it."""
    repetitions, per_rep, rate = 5, 100, 10.0
    window = repetitions * per_rep / rate
    print(f"\nflood run: one verified client ({repetitions} x {per_rep} requests at {rate:.0f}/s, "
          "each time a fresh address and pass) on a location with the default limits", flush=True)
    inst = start_instance(args.nginx, args.workdir, "flood", PORTS["flood"], args.module,
                          http=FLOOD_HTTP, extra=FLOOD_LOCATIONS, log_level="notice",
                          main=os.environ.get("FLOOD_MAIN", ""))
    lua = os.path.join(args.workdir, "flood.lua")
    with open(lua, "w") as f:
        f.write(FLOOD_LUA)
    rows = []
    try:
        if os.environ.get("PRECHECK_FLOOD") != "0":
            precheck_figures(args, inst)
        alone = measure_verified(inst["port"], repetitions, per_rep, rate, 10)
        if os.environ.get("PRECHECK_FLOOD") != "0":
            verify_flood_figures(args, inst, alone)
        rows.append(("no flood", alone, None))
        # Each flood has addresses of its own, and so has each verified client.
        for spread, offset, first in ((100, 0, 20), (1_000_000, 1_000_000, 30)):
            warmup = 8
            flood = subprocess.Popen(
                # Niced: the flood shares CPU 0 with the measuring client, which must not wait
                # for a CPU itself.
                ["nice", "-n", "10", "taskset", "-c", "0", "wrk", "-t1", "-c50",
                 f"-d{int(window + warmup + 5)}s",
                 "-s", lua, "-H", f"User-Agent: {BROWSER}",
                 f"http://127.0.0.1:{inst['port']}/flood/a.html", "--", str(spread), str(offset)],
                stdout=subprocess.PIPE, text=True)
            time.sleep(warmup)  # past the flooders' first bursts, into the steady state
            latencies = measure_verified(inst["port"], repetitions, per_rep, rate, first)
            out, _ = flood.communicate()
            report = dict(kv.split("=") for kv in re.search(r"FLOOD (.*)", out).group(1).split())
            rows.append((f"flood from {spread:,} addresses", latencies,
                         {k: int(v) for k, v in report.items()}))
    finally:
        subprocess.run(["kill", "-QUIT", str(inst["master"])])
        time.sleep(1)
    print(f"  {'':34s} {'median ms':>10s} {'p99 ms':>8s} {'max ms':>8s}  flood served")
    base = statistics.median(alone)
    for label, latencies, report in rows:
        served = ""
        if report:
            seconds = report["duration_us"] / 1e6
            served = (f"{report['requests'] / seconds:,.0f} req/s: {report['c200']:,} passed, "
                      f"{report['c403']:,} pre-check or captcha pages (403), {report['c429']:,} rate-limited, "
                      f"{report['cother'] + report['errors']:,} other")
        print(f"  {label:34s} {statistics.median(latencies):>10.2f} {percentile(latencies, 99):>8.2f} "
              f"{max(latencies):>8.2f}  {served}")
    for label, latencies, report in rows[1:]:
        print(f"  {label}: median x{statistics.median(latencies) / base:.1f}, "
              f"p99 x{percentile(latencies, 99) / percentile(alone, 99):.1f} of no flood")
    log = open(os.path.join(inst["prefix"], "logs/error.log")).read()
    print(f"  under-attack notices in the log: {log.count('is under attack')} entered, "
          f"{log.count('no longer under attack')} left")


def count_all_instructions(args, instances, cookie):
    print("\ninstructions per request (callgrind; deterministic, unlike the timings above):")
    ir = {}
    for label, inst, path, status in CASES:
        ir[label] = instructions_per_request(args.nginx, instances[inst]["prefix"], path, status,
                                             headers_for(label, cookie))
    for label, _, _, _ in CASES:
        base = ir[BASELINE["lean" if "lean" in label else "static"]]
        print(f"  {label:38s} {ir[label]:>10,.0f}  ({ir[label] - base:+,.0f}, "
              f"x{ir[label] / base:.3f} of bare)", flush=True)
    for ours, theirs in (AGAINST_LIMIT_REQ + AGAINST_NO_REPUTATION + AGAINST_NO_CROWDSEC + AGAINST_SAME_REQUEST
                         + AGAINST_STATIC_ACTION):
        if ours in ir and theirs in ir:
            print(f"  {ours:38s} {ir[ours] - ir[theirs]:+,.0f} against {theirs}")
    return ir


# The pairs whose ratio the rate-limit figures quote: ours against limit_req and against bare.
PAIRS = AGAINST_LIMIT_REQ + AGAINST_NO_REPUTATION + AGAINST_NO_CROWDSEC + AGAINST_RETURN[:3] + AGAINST_SAME_REQUEST + AGAINST_STATIC_ACTION + [
    ("captcha (person), action from a map", "bare nginx, static"),
    ("captchaify_action captcha (person)", "bare nginx, static"),
    ("captcha (person), lean, from a map", "bare nginx, lean static"),
    ("captcha (person), lean static", "bare nginx, lean static"),
    ("captcha + 100k ranges + Tor, lean", "bare nginx, lean static"),
    ("captcha (person) + our rate limits", "bare nginx, static"),
    ("fight, verified + our rate limits", "bare nginx, static"),
    ("captcha + our rate limits, lean", "bare nginx, lean static"),
]


def paired_comparison(args, instances, script, cookie):
    """Short runs of each configuration of PAIRS back to back, repeated: a ratio taken within
    one repetition sees the same machine, so the drift of a shared host (±10% over minutes)
    cancels out. Returns, per pair, the ratio of each repetition."""
    reps, duration = int(os.environ.get("PAIRED_REPS", 10)), 3
    cases = {c[0]: c for c in CASES}
    labels = [l for pair in PAIRS for l in pair if all(p in cases for p in pair)]
    labels = list(dict.fromkeys(labels))
    if not labels or not reps:
        return {}
    print(f"\npaired runs: {reps} repetitions of {duration} s per configuration, back to back",
          flush=True)
    rps = collections.defaultdict(list)
    for rep in range(reps):
        for label in labels:
            _, inst, path, status = cases[label]
            url = f"http://127.0.0.1:{instances[inst]['port']}{path}"
            rps[label].append(run_wrk(url, duration, script, status, headers_for(label, cookie))[0])
    return {(a, b): [x / y for x, y in zip(rps[a], rps[b])]
            for a, b in PAIRS if rps.get(a) and rps.get(b)}


def print_paired(paired):
    if not paired:
        return
    print("\npaired ratios (median of the per-repetition ratios, min-max):")
    for (a, b), ratios in paired.items():
        print(f"  {a:38s} / {b:32s} {statistics.median(ratios):.3f} "
              f"({min(ratios):.3f}-{max(ratios):.3f})")


def print_medians(args, results):
    print(f"\nmedians of {args.rounds} rounds (min-max); ratio = median req/s against the "
          "bare baseline of the same profile\n")
    print(f"{'configuration':38s} {'req/s':>30s} {'ratio':>6s} {'p99 ms':>20s} {'CPU us/req':>20s}")
    for label, _, _, _ in CASES:
        r = results[label]
        base = results[BASELINE["lean" if "lean" in label else "static"]]
        ratio = statistics.median(r["rps"]) / statistics.median(base["rps"])
        print(f"{label:38s} {fmt(r['rps']):>30s} {ratio:>6.3f} {fmt(r['p99']):>20s} "
              f"{fmt(r['us']):>20s}")
    print("\nrate limits against nginx's limit_req (median req/s ratio):")
    for ours, theirs in AGAINST_LIMIT_REQ:
        if results[ours]["rps"] and results[theirs]["rps"]:
            ratio = statistics.median(results[ours]["rps"]) / statistics.median(results[theirs]["rps"])
            print(f"  {ours:38s} x{ratio:.3f} of {theirs}")
    def against(pairs):
        """Each case against its reference: median req/s ratio and CPU us/req difference."""
        for ours, theirs in pairs:
            if results[ours]["rps"] and results[theirs]["rps"]:
                ratio = statistics.median(results[ours]["rps"]) / statistics.median(results[theirs]["rps"])
                extra = statistics.median(results[ours]["us"]) - statistics.median(results[theirs]["us"])
                print(f"  {ours:38s} x{ratio:.3f} of {theirs}; {extra:+.2f} us CPU/req")

    print("\nthe module's own answers against nginx's `return` (median req/s ratio; CPU us/req difference):")
    against(AGAINST_RETURN)
    print("\na verified client against bare nginx given the same request, its cookie too (median req/s "
          "ratio; CPU us/req difference):")
    against(AGAINST_SAME_REQUEST)
    print("\nthe action from a variable (a map with a regex on the user agent; a geo with only a default) "
          "against the same action written in the location (median req/s ratio; CPU us/req difference):")
    against(AGAINST_STATIC_ACTION)
    print("\nreputation (100,000 deny ranges and a Tor list of 1,500) against the same location "
          "without (median req/s ratio; CPU us/req difference):")
    against(AGAINST_NO_REPUTATION)
    if any(results[ours]["rps"] for ours, _ in AGAINST_NO_CROWDSEC):
        print(f"\nCrowdSec ({crowdsec_load.TOTAL:,} decisions loaded, none about the client) against the same "
              "location in the instance without a Local API (median req/s ratio; CPU us/req difference):")
    against(AGAINST_NO_CROWDSEC)
    print("\nrate limits against bare nginx (median req/s ratio):")
    for ours, theirs in AGAINST_LIMIT_REQ:
        base = results[BASELINE["lean" if "lean" in ours else "static"]]
        if results[ours]["rps"] and base["rps"] and "bare" not in theirs:
            ratio = statistics.median(results[ours]["rps"]) / statistics.median(base["rps"])
            print(f"  {ours:38s} x{ratio:.3f}")


if __name__ == "__main__":
    main()
