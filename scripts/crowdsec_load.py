"""100,000 CrowdSec decisions for the benchmark, loaded into a real Local API.

The set: 80,000 single IPv4 addresses (scope Ip), 15,000 IPv4 /24s and 5,000 IPv6 /64s
(scope Range), spread over the address space, none in 0/8, 127/8 (the benchmark's client is
127.0.0.1) or 224/3; every tenth decision is a captcha, the others bans, all lasting a year.

Two ways of loading them, equally fast with LAPI 1.4.6 (its inserts are the cost: 7-8 s for
100,000 on the bench machine, whatever the batching):
  alerts   a machine posts alerts carrying their own decisions (POST /v1/alerts; the
           profiles are bypassed, origin, scope and type are kept as sent): 7.1-7.8 s with
           100 to 10,000 decisions per alert and 1 to 100 alerts per request. `prepare` uses it.
  import   `cscli decisions import -i FILE.json`: 8.1-8.3 s. cscli 1.4.6 gives every decision
           of a file the --scope flag (default Ip, whatever the file says), --type and
           --duration, and origin "cscli-import": one file per scope and type.
`python3 scripts/crowdsec_load.py DIR URL alerts|import [PER_ALERT [PER_POST]]` times one
against a running LAPI whose state is in DIR (see scripts/crowdsec-lapi), then counts what a
bouncer's startup pull gets.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

V4_ADDRESSES = 80_000
V4_RANGES = 15_000
V6_RANGES = 5_000
TOTAL = V4_ADDRESSES + V4_RANGES + V6_RANGES
DURATION = "8760h"
ORIGIN = "bench"
SCENARIO = "captchaify/bench"


def _v4_first_octet_ok(a):
    # Not 0/8, not loopback, not multicast or reserved.
    return 0 < a < 224 and a != 127


def decisions():
    """[(scope, value, type)], in a fixed order: the same set every time."""
    out = []
    seen = set()
    i = 0
    # Multiplicative hashing spreads consecutive numbers over the whole space.
    while len(out) < V4_ADDRESSES:
        i += 1
        n = (i * 2654435761) & 0xFFFFFFFF
        a = n >> 24
        if not _v4_first_octet_ok(a) or n & 0xFF in (0, 255) or n in seen:
            continue
        seen.add(n)
        out.append(("Ip", f"{a}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"))
    seen = set()
    i = 0
    while len(out) < V4_ADDRESSES + V4_RANGES:
        i += 1
        n = (i * 40503 * 97) & 0xFFFFFF
        if not _v4_first_octet_ok(n >> 16) or n in seen:
            continue
        seen.add(n)
        out.append(("Range", f"{n >> 16}.{n >> 8 & 255}.{n & 255}.0/24"))
    for i in range(V6_RANGES):
        out.append(("Range", f"2001:db8:{i >> 8 & 0xffff:x}:{(i * 40503) & 0xffff:x}::/64"))
    return [(scope, value, "captcha" if k % 10 == 9 else "ban") for k, (scope, value) in enumerate(out)]


def fingerprint():
    """Names the decision set (and the way it is loaded): the cache key."""
    h = hashlib.sha256(json.dumps([DURATION, ORIGIN, SCENARIO, decisions()]).encode())
    return h.hexdigest()[:16]


def _request(url, body=None, token=None, timeout=600):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                 headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        raise SystemExit(f"{url}: {e.code} {e.read()[:300]!r}")


def load_with_alerts(url, login, password, per_alert=1000, alerts_per_post=10, items=None):
    """Posts the set as alerts carrying their own decisions. Returns the seconds taken."""
    items = decisions() if items is None else items
    t0 = time.monotonic()
    _, answer = _request(f"{url}/v1/watchers/login", {"machine_id": login, "password": password})
    token = answer["token"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    batch = []
    for start in range(0, len(items), per_alert):
        chunk = items[start:start + per_alert]
        batch.append({
            "scenario": SCENARIO, "scenario_hash": "", "scenario_version": "",
            "message": f"benchmark decisions {start}-{start + len(chunk) - 1}",
            "events_count": len(chunk), "events": [], "start_at": now, "stop_at": now,
            "capacity": 0, "leakspeed": "0", "simulated": False, "remediation": True,
            # The alert's own source: the first of its decisions (the LAPI needs one).
            "source": {"scope": chunk[0][0], "value": chunk[0][1]},
            "decisions": [{"origin": ORIGIN, "scenario": SCENARIO, "type": t, "scope": s,
                           "value": v, "duration": DURATION} for s, v, t in chunk],
        })
        if len(batch) == alerts_per_post or start + per_alert >= len(items):
            status, ids = _request(f"{url}/v1/alerts", batch, token)
            if status != 201 or len(ids) != len(batch):
                raise SystemExit(f"POST /v1/alerts: {status} {ids}")
            batch = []
    return time.monotonic() - t0


def load_with_import(lapi_script, state_dir, work, items=None):
    """`cscli decisions import`, one JSON file per scope and type: cscli 1.4.6 gives every
    decision of a file its --scope (default Ip, whatever the file says), type and duration,
    and origin "cscli-import". Returns the seconds taken."""
    items = decisions() if items is None else items
    t0 = time.monotonic()
    for scope in ("Ip", "Range"):
        for kind in ("ban", "captcha"):
            path = os.path.join(work, f"decisions-{scope}-{kind}.json")
            with open(path, "w") as f:
                json.dump([{"duration": DURATION, "origin": ORIGIN, "reason": SCENARIO, "scope": s,
                            "type": t, "value": v} for s, v, t in items if t == kind and s == scope], f)
            subprocess.run([lapi_script, "cscli", state_dir, "--error", "decisions", "import", "-i", path,
                            "--scope", scope, "--type", kind, "--duration", DURATION], check=True,
                           stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def count_in_stream(url, key):
    """Decisions the bouncer key sees in a startup pull: (count, bytes, seconds)."""
    t0 = time.monotonic()
    req = urllib.request.Request(f"{url}/v1/decisions/stream?startup=true", headers={"X-Api-Key": key})
    with urllib.request.urlopen(req, timeout=600) as r:
        body = r.read()
    took = time.monotonic() - t0
    return len(json.loads(body)["new"] or []), len(body), took


LOADER = ("loader", "Loader-pw-1")
# How the cache is made: bump when the way of loading changes what the LAPI holds.
CACHE_VERSION = 1
# The decisions last a year; a cache older than this is made again.
CACHE_MAX_AGE_DAYS = 300


def _lapi(lapi_script, *args):
    return subprocess.run([lapi_script, *args], check=True, stdout=subprocess.PIPE, text=True).stdout.strip()


def prepare(lapi_script, cache_root, state_dir, port, bouncer_key):
    """Starts a LAPI on 127.0.0.1:PORT holding the 100,000 decisions and a bouncer with
    BOUNCER_KEY, its state in STATE_DIR (made afresh). The loaded state is cached in
    CACHE_ROOT/<set>, keyed on the decision set and the key; loading takes about 8 s, a
    cached start well under one. Returns (url, what happened); stop it with `stop`."""
    name = hashlib.sha256(f"{CACHE_VERSION} {fingerprint()} {bouncer_key}".encode()).hexdigest()[:16]
    cached = os.path.join(cache_root, name)
    if os.path.isdir(cached) and time.time() - os.path.getmtime(cached) > CACHE_MAX_AGE_DAYS * 86400:
        shutil.rmtree(cached)
    stop(lapi_script, state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    if os.path.isdir(cached):
        t0 = time.monotonic()
        shutil.copytree(cached, state_dir)
        url = _lapi(lapi_script, "start", state_dir, str(port))
        return url, f"cached state {cached} (copied and started in {time.monotonic() - t0:.1f} s)"
    # Load into a directory of its own, stop (sqlite's WAL is checkpointed), keep a copy.
    os.makedirs(cache_root, exist_ok=True)
    for stale in os.listdir(cache_root):
        if stale.startswith(".loading-"):
            stop(lapi_script, os.path.join(cache_root, stale))
            shutil.rmtree(os.path.join(cache_root, stale), ignore_errors=True)
    loading = os.path.join(cache_root, f".loading-{name}")
    t0 = time.monotonic()
    url = _lapi(lapi_script, "start", loading, str(port))
    try:
        _lapi(lapi_script, "bouncer", loading, "bench", bouncer_key)
        _lapi(lapi_script, "machine", loading, *LOADER)
        took = load_with_alerts(url, *LOADER)
    finally:
        stop(lapi_script, loading)
    for sub in ("log",):
        shutil.rmtree(os.path.join(loading, sub), ignore_errors=True)
    for f in ("crowdsec.out",):
        if os.path.exists(os.path.join(loading, f)):
            os.remove(os.path.join(loading, f))
    os.rename(loading, cached)
    shutil.copytree(cached, state_dir)
    url = _lapi(lapi_script, "start", state_dir, str(port))
    return url, (f"loaded {TOTAL:,} decisions with POST /v1/alerts in {took:.1f} s "
                 f"({time.monotonic() - t0:.1f} s in all), cached in {cached}")


def stop(lapi_script, state_dir):
    if os.path.isdir(state_dir):
        subprocess.run([lapi_script, "stop", state_dir], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    # Experiments: python3 scripts/crowdsec_load.py DIR URL alerts|import [PER_ALERT [PER_POST]]
    here = os.path.dirname(os.path.abspath(__file__))
    state_dir, url, method = sys.argv[1:4]
    lapi = os.path.join(here, "crowdsec-lapi")
    items = decisions()
    assert len({(s, v) for s, v, _ in items}) == TOTAL
    print(f"{len(items)} decisions, set {fingerprint()}", flush=True)
    if method == "alerts":
        per_alert = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
        per_post = int(sys.argv[5]) if len(sys.argv) > 5 else 10
        subprocess.run([lapi, "machine", state_dir, "loader", "Loader-pw-1"], check=True)
        took = load_with_alerts(url, "loader", "Loader-pw-1", per_alert, per_post, items)
    else:
        took = load_with_import(lapi, state_dir, state_dir, items)
    print(f"{method}: loaded in {took:.1f} s", flush=True)
    key = subprocess.check_output([lapi, "bouncer", state_dir, f"count{int(time.time())}"], text=True).strip()
    n, size, secs = count_in_stream(url, key)
    print(f"startup pull: {n} decisions, {size} bytes, {secs * 1000:.0f} ms")
