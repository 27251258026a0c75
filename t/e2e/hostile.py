"""Replays the hostile request corpus (t/hostile/*.http) against a running nginx with the test
build of the module, over raw sockets. Run by t/e2e/hostile, which writes the configuration
and starts nginx; t/hostile/README.md describes the files and the checks.

    python3 hostile.py PREFIX PORT CORPUS_DIR [NAME-GLOB ...]

Prints one `ok` / `not ok` line per request file (and per check after the corpus); exits
non-zero when any failed. Python 3 standard library only.
"""
import errno
import fnmatch
import os
import re
import select
import socket
import sys
import time

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
TIMEOUT = 3.0
MARKER = b"PROTECTED-CONTENT"
# The largest body a client that earned nothing may get: the pre-check, block, rate-limit and
# stale pages are under 4 kB; a drawn captcha is over 10 kB.
CHEAP_BYTES = 8192
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

passed = failed = 0


def check(condition, description, details=()):
    global passed, failed
    if condition:
        passed += 1
        print(f"ok - {description}", flush=True)
    else:
        failed += 1
        print(f"not ok - {description}", flush=True)
        for line in details:
            print(f"#   {line}", flush=True)
    return condition


# ----- the wire --------------------------------------------------------------------------------

class Exchange:
    """What one connection got back: the raw bytes, how it ended, and the responses in them."""

    def __init__(self, data, ending, elapsed):
        self.data, self.ending, self.elapsed = data, ending, elapsed
        self.responses, self.leftover = [], b""

    @property
    def first(self):
        return self.responses[0] if self.responses else None


class Response:
    def __init__(self, status, head, headers, body):
        self.status, self.head, self.headers, self.body = status, head, headers, body

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def all(self, name):
        return [value for key, value in self.headers if key.lower() == name.lower()]


def exchange(raw, source, port, timeout=TIMEOUT):
    """Sends `raw` from the local address `source`, half-closes once all is sent, and reads
    until the server closes or `timeout` passes. Sending and reading go together, so that a
    server answering (and closing) before it read everything is seen as it is."""
    started = time.time()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((source, 0))
    sock.settimeout(timeout)
    data, ending = b"", None
    try:
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        pending = memoryview(raw)
        if not pending:
            sock.shutdown(socket.SHUT_WR)
        deadline = started + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                ending = "timeout"
                break
            readable, writable, _ = select.select([sock], [sock] if pending else [], [], left)
            if writable:
                try:
                    sent = sock.send(pending[:65536])
                    pending = pending[sent:]
                    if not pending:
                        sock.shutdown(socket.SHUT_WR)
                except OSError as e:
                    if e.errno in (errno.EPIPE, errno.ECONNRESET):
                        pending = memoryview(b"")  # the server stopped reading: read what it said
                    elif e.errno != errno.EAGAIN:
                        raise
            if readable:
                try:
                    chunk = sock.recv(65536)
                except OSError as e:
                    if e.errno == errno.ECONNRESET:
                        ending = "reset"
                        break
                    if e.errno == errno.EAGAIN:
                        continue
                    raise
                if not chunk:
                    ending = "closed"
                    break
                data += chunk
                if answered_for_good(data, raw):
                    # nginx may linger over a body it discards (its own 413, for one) for
                    # seconds: a complete answer saying `Connection: close` is the end.
                    ending = "answered"
                    break
    except OSError as e:
        ending = f"error: {e}"
    finally:
        sock.close()
    result = Exchange(data, ending, time.time() - started)
    parse_responses(result, request_methods(raw))
    return result


def answered_for_good(data, raw):
    partial = Exchange(data, None, 0)
    parse_responses(partial, request_methods(raw))
    last = partial.responses[-1] if partial.responses else None
    return (last is not None and not partial.leftover
            and (last.header("Connection") or "").lower() == "close")


def request_methods(raw):
    """The methods of the requests in `raw`, in order, as far as a naive reading finds them
    (HEAD responses have no body whatever their Content-Length says)."""
    return [m.group(1).decode("latin-1") for m in re.finditer(rb"(?:^|\r?\n)([A-Za-z]+) \S+ HTTP/\d", raw)]


def parse_responses(result, methods):
    data = result.data
    while data:
        end = data.find(b"\r\n\r\n")
        if end < 0 or not data.startswith(b"HTTP/1."):
            break
        head = data[:end]
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})(?: .*)?$", lines[0])
        if not m:
            break
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            headers.append((name.decode("latin-1"), value.strip().decode("latin-1") if sep else None))
        rest = data[end + 4:]
        method = methods[len(result.responses)] if len(result.responses) < len(methods) else "GET"
        response = Response(status, head, headers, b"")
        length = response.header("Content-Length")
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body, rest = b"", rest
        elif (response.header("Transfer-Encoding") or "").lower() == "chunked":
            body, rest = dechunk(rest)
            if body is None:
                break
        elif length is not None and length.isdigit():
            if len(rest) < int(length):
                break  # truncated: left over, reported by the checks
            body, rest = rest[:int(length)], rest[int(length):]
        else:
            body, rest = rest, b""
        response.body = body
        if not 100 <= status < 200:  # interim responses (100 Continue) are not answers
            result.responses.append(response)
        data = rest
    result.leftover = data


def dechunk(data):
    body = b""
    while True:
        end = data.find(b"\r\n")
        if end < 0:
            return None, data
        try:
            size = int(data[:end].split(b";")[0], 16)
        except ValueError:
            return None, data
        data = data[end + 2:]
        if size == 0:
            trailer = data.find(b"\r\n")
            return body, data[trailer + 2:] if trailer >= 0 else b""
        body, data = body + data[:size], data[size + 2:]


def simple(method, path, source, port, headers=(), body=b""):
    """A well-formed request of the replayer's own (tokens, the checks after the corpus)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: hostile.test", f"User-Agent: {UA}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if method == "POST":
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return exchange(("\r\n".join(lines) + "\r\n\r\n").encode() + body, source, port).first


# ----- genuine tokens, for the placeholders ----------------------------------------------------

CHALLENGE_FIELD = re.compile(rb'name="challenge" value="([^"]+)"')


def cookie_value(response, name):
    for value in response.all("Set-Cookie") if response else []:
        m = re.match(re.escape(name) + r"=([^;]*)", value)
        if m:
            return m.group(1)
    return None


class TokenError(Exception):
    """A genuine token could not be had: the file that needs it fails, the run goes on."""


class Client:
    """A well-behaved browser at one source address: it mints the genuine tokens a request
    file refers to (bound to this address and UA), each once per file."""

    def __init__(self, source, port):
        self.source, self.port, self.tokens = source, port, {}

    def precheck(self, path):
        key = ("PRECHECK", path)
        if key not in self.tokens:
            r = simple("GET", path, self.source, self.port)
            proof = cookie_value(r, "captchaify_pre")
            if proof is None and r is not None:  # a cookie-less location: on the page's link
                m = re.search(rb"captchaify_pre=([A-Za-z0-9_.-]+)", r.body)
                proof = m and m.group(1).decode()
                self.tokens[("PRECHECK-IN-URL", path)] = True
            if proof is None:
                raise TokenError(f"no pre-check proof from {path} for {self.source}: {r and r.status}")
            self.tokens[key] = proof
        return self.tokens[key]

    def challenge(self, path):
        key = ("CHALLENGE", path)
        if key not in self.tokens:
            proof = self.precheck(path)
            if ("PRECHECK-IN-URL", path) in self.tokens:
                separator = "&" if "?" in path else "?"
                r = simple("GET", f"{path}{separator}captchaify_pre={proof}", self.source, self.port)
            else:
                r = simple("GET", path, self.source, self.port, [("Cookie", f"captchaify_pre={proof}")])
            m = r and CHALLENGE_FIELD.search(r.body)
            if not m or r.header("X-Captchaify-Test-Answer") is None:
                raise TokenError(f"no captcha at {path} for {self.source}: {r and r.status}")
            self.tokens[key] = m.group(1).decode()
            self.tokens[("ANSWER", path)] = r.header("X-Captchaify-Test-Answer")
        return self.tokens[key]

    def answer(self, path):
        self.challenge(path)
        return self.tokens[("ANSWER", path)]

    def solve(self, path):
        """Solves `path`'s captcha: (the answer's response, the challenge token, the answer)."""
        token, answer = self.challenge(path), self.answer(path)
        body = f"challenge={token}&answer={answer}".encode()
        return simple("POST", "/.captchaify/verify", self.source, self.port, body=body), token, answer

    def pass_token(self, path):
        key = ("PASS", path)
        if key not in self.tokens:
            r, _, _ = self.solve(path)
            token = cookie_value(r, "captchaify")
            if token is None:
                raise TokenError(f"no pass from {path} for {self.source}: {r and r.status}")
            self.tokens[key] = token
        return self.tokens[key]


# ----- the corpus ------------------------------------------------------------------------------

class RequestFile:
    """One corpus file: `#` comment lines first (`about:`, `from:`, `expect:`), then the raw
    request, sent byte for byte after the placeholders are filled in."""

    def __init__(self, path):
        self.path, self.name = path, os.path.basename(path)[:-len(".http")]
        with open(path, "rb") as f:
            data = f.read()
        self.about, self.source, self.expect = None, None, []
        while data.startswith(b"#"):
            line, _, data = data.partition(b"\n")
            key, _, value = line[1:].decode("utf-8").strip().partition(":")
            key, value = key.strip(), value.strip()
            if key == "about":
                self.about = value
            elif key == "from":
                self.source = value
            elif key == "expect":
                self.expect.append(value.split())
            elif key:
                raise SystemExit(f"{path}: unknown comment key {key!r} (about, from, expect)")
        self.template = data
        if not self.about or not self.expect or not data:
            raise SystemExit(f"{path}: needs an `# about:` line, an `# expect:` line and a request")


PLACEHOLDER = re.compile(rb"@@([A-Z]+)((?: [^|@\s]+)?)((?:\|[a-z]+ -?\d+)*)@@")
REPEAT = re.compile(rb"@@REPEAT (\d+) (.*?)@@", re.S)
GENUINE = {b"PRECHECK", b"CHALLENGE", b"PASS"}


def corrupt(token, ops):
    """Applies `|cut N`, `|flip N`, `|nul N` and `|times N` to a token, in order."""
    for op, n in re.findall(rb"\|([a-z]+) (-?\d+)", ops):
        n = int(n)
        if op == b"cut":
            token = token[:n]
        elif op == b"flip":
            # The character at n (from the end when negative) made the next token character.
            n %= len(token)
            c = chr(token[n])
            other = TOKEN_CHARS[(TOKEN_CHARS.index(c) + 1) % 64] if c in TOKEN_CHARS else "A"
            token = token[:n] + other.encode() + token[n + 1:]
        elif op == b"nul":
            token = token[:n] + b"\0" + token[n:]
        elif op == b"times":
            token = token * n
        else:
            raise SystemExit(f"unknown placeholder operation {op!r}")
    return token


def fill(request_file, client):
    """The request's bytes: tokens minted, repeats expanded, lengths counted. Also whether it
    carries a genuine (unaltered) token, which earns an image."""
    earned = False

    def token(m):
        nonlocal earned
        name, argument, ops = m.group(1), m.group(2).strip().decode() or "/fight/a.txt", m.group(3)
        if name == b"PRECHECK":
            value = client.precheck(argument)
        elif name == b"CHALLENGE":
            value = client.challenge(argument)
        elif name == b"ANSWER":
            value = client.answer(argument)
        elif name == b"PASS":
            value = client.pass_token(argument)
        elif name in (b"LENGTH", b"END", b"REPEAT"):
            return m.group(0)
        else:
            raise SystemExit(f"{request_file.path}: unknown placeholder {name.decode()}")
        earned |= name in GENUINE and not ops
        return corrupt(value.encode(), ops)

    # Tokens first (each minted once), so that a repeated text may hold them.
    data = PLACEHOLDER.sub(token, request_file.template)
    data = REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), data)
    # @@LENGTH@@: the length of the body after its header block, up to @@END@@ or the end.
    while b"@@LENGTH@@" in data:
        at = data.index(b"@@LENGTH@@")
        body_start = data.index(b"\r\n\r\n", at) + 4
        end = data.find(b"@@END@@", body_start)
        length = (end if end >= 0 else len(data)) - body_start
        data = data[:at] + str(length).encode() + data[at + len(b"@@LENGTH@@"):]
    return data.replace(b"@@END@@", b""), earned


# ----- the checks ------------------------------------------------------------------------------

SAFE_LOCATION = re.compile(r"/(?![/\\])[\x21-\x7e]*\Z")
# Where a page of ours links: attributes and the pre-check's refresh. Each must be a
# same-origin relative path (or a data: URI, a fragment), like a Location.
BODY_LINK = re.compile(rb'(?:href|src|action)="([^"]*)"|http-equiv="refresh" content="\d+; *url=([^"]*)"', re.I)
SAFE_LINK = re.compile(rb"(?:/(?![/\\])|#|data:)[\x21-\x7e]*\Z")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def general_faults(result, earned, expected_statuses):
    """What no response may ever do, whatever the request."""
    faults = []
    if result.ending not in ("closed", "reset", "answered"):
        faults.append(f"no clean end within {TIMEOUT:.0f} s ({result.ending}); "
                      f"{len(result.responses)} responses, {len(result.data)} bytes")
    if result.leftover:
        faults.append(f"not HTTP or truncated after {len(result.responses)} responses: {result.leftover[:80]!r}")
    for n, r in enumerate(result.responses, 1):
        where = f"response {n} ({r.status})"
        if r.status >= 500 and r.status not in expected_statuses:
            faults.append(f"{where}: a server error")
        if re.search(rb"[\x00\x0b\x0c\x7f]|\r(?!\n)|(?<!\r)\n", r.head):
            faults.append(f"{where}: a control byte or a bare CR/LF in the header block")
        for name, value in r.headers:
            if value is None or not HEADER_NAME.match(name):
                faults.append(f"{where}: a malformed header line {name!r}")
                continue
            if "injected" in name.lower():
                faults.append(f"{where}: a header smuggled in by the request: {name}: {value}")
            if name.lower() == "set-cookie" and "injected" in value.split("=", 1)[0].lower():
                faults.append(f"{where}: a cookie smuggled in by the request: {value}")
            if name.lower() == "location" and not SAFE_LOCATION.match(value):
                faults.append(f"{where}: Location is not a same-origin relative path: {value!r}")
        if (r.header("Content-Type") or "").startswith("text/html"):
            for m in BODY_LINK.finditer(r.body):
                link = html_unescape(m.group(1) if m.group(1) is not None else m.group(2))
                if not SAFE_LINK.match(link):
                    faults.append(f"{where}: the page links off-origin: {link[:100]!r}")
        if not earned:
            ctype = (r.header("Content-Type") or "").lower()
            if r.header("X-Captchaify-Test-Answer") is not None:
                faults.append(f"{where}: a captcha drawn for a client that earned none")
            if ctype.startswith(("image/", "audio/")) or b"data:image" in r.body or b"data:audio" in r.body:
                faults.append(f"{where}: an image or a clip for a client that earned none ({ctype})")
            if len(r.body) > CHEAP_BYTES and MARKER not in r.body and "prometheus" not in ctype \
                    and "version=0.0.4" not in ctype:
                faults.append(f"{where}: a {len(r.body)}-byte body for a client that earned none")
    return faults


def html_unescape(value):
    for entity, char in ((b"&quot;", b'"'), (b"&#39;", b"'"), (b"&lt;", b"<"), (b"&gt;", b">"),
                         (b"&#x2F;", b"/"), (b"&#47;", b"/"), (b"&amp;", b"&")):
        value = value.replace(entity, char)
    return value


def is_content(r):
    """Whether a response is the protected file itself (a GET's body, or a HEAD's headers)."""
    return r is not None and (MARKER in r.body or r.header("ETag") is not None
                              or r.header("Last-Modified") is not None)


def expectation_faults(result, expect):
    """The file's own `# expect:` lines."""
    faults = []
    first = result.first
    statuses = [r.status for r in result.responses]
    for words in expect:
        what, args = words[0], words[1:]
        if what == "status":
            if first is None or str(first.status) not in args:
                faults.append(f"expected status {' or '.join(args)}, got {statuses or 'no response'}")
        elif what == "statuses":
            if len(statuses) != len(args) or any(str(s) not in a.split("|") for s, a in zip(statuses, args)):
                faults.append(f"expected statuses {' '.join(args)}, got {statuses}")
        elif what == "not":
            bad = [s for s in statuses if str(s) in args]
            if bad:
                faults.append(f"expected no {' or '.join(args)}, got {statuses}")
        elif what == "challenged":
            if first is None:
                faults.append("expected a refusal (challenge, block, 4xx), got no response")
            elif any(is_content(r) for r in result.responses):
                faults.append(f"the protected content came out ({statuses})")
        elif what == "content":
            if not is_content(first):
                faults.append(f"expected the protected content, got {statuses}")
        elif what == "http09":
            # HTTP/0.9 has no status line and no headers: the body alone comes back.
            if result.data.startswith(b"HTTP/") or MARKER in result.data or not result.data:
                faults.append(f"expected a bare HTTP/0.9 body that is not the file, got {result.data[:60]!r}")
        elif what == "answered":
            if first is None:
                faults.append(f"expected a response, got none ({result.ending})")
        elif what == "body":
            text = " ".join(args).encode()
            if first is None or text not in first.body:
                faults.append(f"expected {text!r} in the body")
        elif what == "nobody":
            text = " ".join(args).encode()
            if any(text in r.body for r in result.responses):
                faults.append(f"{text!r} in a body")
        elif what == "header":
            name, value = args[0], " ".join(args[1:])
            if first is None or not any(value in v for v in first.all(name)):
                faults.append(f"expected a {name} header with {value!r}")
        elif what == "noheader":
            if any(r.header(args[0]) is not None for r in result.responses):
                faults.append(f"a {args[0]} header came out")
        else:
            faults.append(f"unknown expectation {what!r}")
    return faults


def expected_statuses(expect):
    codes = set()
    for words in expect:
        if words[0] in ("status", "statuses"):
            for arg in words[1:]:
                codes.update(int(c) for c in arg.split("|") if c.isdigit())
    return codes


def checker_bites():
    """The checks above, fed responses that each do one forbidden thing, must each object:
    a checker that cannot fail would pass any module."""
    def faults_of(head, body=b"", earned=False, expect=(), methods=("GET",)):
        result = Exchange(head.encode("latin-1") + b"\r\n\r\n" + body, "closed", 0)
        parse_responses(result, list(methods))
        return general_faults(result, earned, set()) + expectation_faults(result, list(expect))

    ok = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: 2"
    cases = {
        "a clean refusal": (faults_of(ok, b"no", expect=[["challenged"]]), False),
        "a smuggled header": (faults_of(ok + "\r\nX-Injected: 1", b"no"), True),
        "a smuggled cookie": (faults_of(ok + "\r\nSet-Cookie: injected=1", b"no"), True),
        "a bare LF in a header": (faults_of(ok + "\r\nLocation: /a\nX: 1", b"no"), True),
        "a protocol-relative Location": (faults_of(ok + "\r\nLocation: //evil.example", b"no"), True),
        "a backslash Location": (faults_of(ok + "\r\nLocation: /\\evil.example", b"no"), True),
        "an absolute Location": (faults_of(ok + "\r\nLocation: https://evil.example/", b"no"), True),
        "a 500": (faults_of("HTTP/1.1 500 Oops\r\nContent-Length: 0"), True),
        "a captcha drawn unearned": (faults_of(ok + "\r\nX-Captchaify-Test-Answer: AB", b"no"), True),
        "an image unearned": (faults_of("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 2", b"no"), True),
        "a big body unearned": (faults_of("HTTP/1.1 403 X\r\nContent-Length: 9000", b"x" * 9000), True),
        "an off-origin link": (faults_of(ok.replace("2", "27"), b'<a href="//evil.example">x</a>'), True),
        "an off-origin refresh": (faults_of(ok.replace("2", "59"), b'<meta http-equiv="refresh" content="0; url=//evil.example">'), True),
        "the file's headers to a HEAD": (faults_of("HTTP/1.1 200 OK\r\nETag: \"1\"\r\nContent-Length: 22",
                                                   expect=[["challenged"]], methods=["HEAD"]), True),
        "the file to a GET": (faults_of("HTTP/1.1 200 OK\r\nContent-Length: 17", MARKER, expect=[["challenged"]]), True),
        "a truncated body": (faults_of("HTTP/1.1 403 X\r\nContent-Length: 50", b"short"), True),
    }
    for name, (faults, should) in cases.items():
        check(bool(faults) == should, f"the checker {'objects to' if should else 'accepts'} {name}", faults)


# ----- nginx's side ----------------------------------------------------------------------------

def workers(prefix):
    with open(os.path.join(prefix, "logs", "nginx.pid")) as f:
        master = f.read().strip()
    children = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == master:
            children.append(int(pid))
    return int(master), sorted(children)


# Besides nginx's alarms: the module's own crawler-hints fetch refused by this very server (its
# token bound to another host than the one nginx saw) is a defect here too.
ALARMS = re.compile(r"\[(?:alert|emerg|crit)\]|exited on signal|panic|cannot read the page", re.I)


def log_alarms(prefix, offset=0):
    with open(os.path.join(prefix, "logs", "error.log"), "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if ALARMS.search(line)]


# ----- the run ---------------------------------------------------------------------------------

BLOCKED, SPENT, NORMAL = "127.251.0.7", "127.252.0.8", "127.253.0.9"


def before_corpus(port):
    """A client blocked for its wrong answers and a challenge answered once, for the checks
    after the corpus; each also checked now, so that the later check means something."""
    blocked = Client(BLOCKED, port)
    for n in range(3):
        token = blocked.challenge("/fight/a.txt")
        simple("POST", "/.captchaify/verify", BLOCKED, port, body=f"challenge={token}&answer=WRONG{n}".encode())
        del blocked.tokens[("CHALLENGE", "/fight/a.txt")]
    r = simple("GET", "/fight/a.txt", BLOCKED, port)
    check(r is not None and r.status == 403 and b"Access denied" in r.body,
          "before the corpus: three wrong answers block a client")
    spent = Client(SPENT, port)
    r, token, answer = spent.solve("/fight/a.txt")
    check(r is not None and r.status == 303 and cookie_value(r, "captchaify"),
          "before the corpus: a challenge answered right earns a pass")
    again = simple("POST", "/.captchaify/verify", SPENT, port, body=f"challenge={token}&answer={answer}".encode())
    check(again is not None and again.status != 303 and cookie_value(again, "captchaify") is None,
          "before the corpus: the same answer again earns nothing (spent)")
    return token, answer


def after_corpus(port, spent_challenge):
    token, answer = spent_challenge
    r = simple("GET", "/fight/a.txt", BLOCKED, port)
    check(r is not None and r.status == 403 and b"Access denied" in r.body,
          f"after the corpus: the client blocked before it is still blocked ({r and r.status})")
    r = simple("POST", "/.captchaify/verify", SPENT, port, body=f"challenge={token}&answer={answer}".encode())
    check(r is not None and r.status != 303 and cookie_value(r, "captchaify") is None,
          f"after the corpus: the challenge spent before it is still spent ({r and r.status})")
    normal = Client(NORMAL, port)
    r, _, _ = normal.solve("/fight/a.txt")
    check(r is not None and r.status == 303 and r.header("Location") == "/fight/a.txt",
          f"after the corpus: a normal client gets its captcha and solves it ({r and r.status})")
    pass_token = cookie_value(r, "captchaify")
    r = simple("GET", "/fight/a.txt", NORMAL, port, [("Cookie", f"captchaify={pass_token}")])
    check(r is not None and r.status == 200 and MARKER in r.body,
          f"after the corpus: its pass opens the page ({r and r.status})")


def main():
    prefix, port, corpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    globs = sys.argv[4:] or ["*"]
    files = sorted(f for f in os.listdir(corpus) if f.endswith(".http")
                   and any(fnmatch.fnmatch(f[:-5], g) for g in globs))
    if not files:
        raise SystemExit(f"no request file in {corpus} matches {globs}")
    started = time.time()
    checker_bites()
    master, pids = workers(prefix)
    check(len(pids) == 2, f"nginx runs two workers ({pids})")
    log_start = os.path.getsize(os.path.join(prefix, "logs", "error.log"))
    spent_challenge = before_corpus(port)

    corpus_started = time.time()
    for i, filename in enumerate(files):
        request_file = RequestFile(os.path.join(corpus, filename))
        # Each file its own address, in its own /24: a wrong answer in one file counts
        # against no other file's client.
        source = f"127.{10 + i // 250}.{i % 250}.2"
        try:
            raw, earned = fill(request_file, Client(source, port))
        except TokenError as e:
            check(False, f"{request_file.name}: {request_file.about}", [f"its tokens: {e}"])
            continue
        result = exchange(raw, source, port)
        if ["http09"] in request_file.expect:
            result.leftover = b""  # a bare body, judged by the expectation
        faults = general_faults(result, earned, expected_statuses(request_file.expect))
        faults += expectation_faults(result, request_file.expect)
        statuses = " ".join(str(r.status) for r in result.responses) or result.ending
        check(not faults, f"{request_file.name} ({statuses}): {request_file.about}", faults)

    corpus_seconds = time.time() - corpus_started
    check(workers(prefix) == (master, pids), f"the same master and workers after the corpus ({pids})")
    alarms = log_alarms(prefix, log_start)
    check(not alarms, "no alert, emergency, crash, panic or refused hints fetch in the error log", alarms[:10])
    after_corpus(port, spent_challenge)
    # The crawler-hints fetches the corpus queued run in worker 0's thread, within a second.
    time.sleep(1.5)
    alarms = log_alarms(prefix, log_start)
    check(not alarms, "still none after the normal client", alarms[:10])
    print(f"# {len(files)} request files replayed in {corpus_seconds:.1f} s "
          f"({time.time() - started:.1f} s with the checks around them)", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
