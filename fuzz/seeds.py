#!/usr/bin/env python3
"""Seeds each fuzz target's corpus from the test suites: the header values, request lines
and bodies of t/*.t and of the hostile corpus (t/hostile/), and the string literals of the
unit tests in the source files that the target parses for.

    python3 fuzz/seeds.py OUTDIR     writes OUTDIR/<target>/<sha1 of the seed>

Run by scripts/fuzz before every run; the seeds are not kept in the repository, so they
follow the tests as they change."""

import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

# Which source files' string literals seed which target.
SOURCES = {
    "request": ["src/request.rs"],
    "form": ["src/challenge/flow.rs", "src/challenge/picture/grid.rs"],
    "return_path": ["src/challenge/token.rs"],
    "accept_language": ["src/pages/i18n.rs"],
    "user_agent": ["src/crawler/mod.rs", "src/crawler/verified.rs"],
    "variable": ["src/policy/variable.rs"],
    "tor_exits": ["src/reputation/feeds.rs"],
    "ipapi": ["src/reputation/feeds.rs"],
    "sfs": ["src/reputation/feeds.rs"],
    "crowdsec_stream": ["src/crowdsec/stream.rs"],
    "crowdsec_machine": ["src/crowdsec/alerts.rs"],
    "crawler_ranges": ["src/crawler/verified.rs"],
    "page_hints": ["src/crawler/hints.rs"],
    "ip_lists": ["src/reputation/ranges.rs"],
}

# Which headers of the Test::Nginx blocks seed which target.
HEADERS = {
    "cookie": "request",
    "accept-language": "accept_language",
    "user-agent": "user_agent",
    "x-action": "variable",
    "x-hardness": "variable",
}

# Rust string literals: raw (r"…", r#"…"#, br#"…"#) and ordinary (b"…", "…").
RAW = re.compile(r'b?r(#*)"(.*?)"\1', re.S)
PLAIN = re.compile(r'b?"((?:[^"\\]|\\.)*)"', re.S)


def unescape(text):
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        n = text[i + 1] if i + 1 < len(text) else ""
        if n == "x":
            out.append(int(text[i + 2:i + 4], 16))
            i += 4
        elif n == "u":
            end = text.index("}", i)
            out += chr(int(text[i + 3:end], 16)).encode()
            i = end + 1
        elif n == "\n":
            i += 2
            while i < len(text) and text[i] in " \t\n":
                i += 1
        else:
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'"}.get(n, n.encode())
            i += 2
    return bytes(out)


def literals(path):
    text = (ROOT / path).read_text()
    # The unit tests hold the examples; the rest of the file adds its own constants.
    found = [m.group(2).encode() for m in RAW.finditer(text)]
    for m in PLAIN.finditer(RAW.sub("", text)):
        try:
            found.append(unescape(m.group(1)))
        except (ValueError, IndexError):
            pass
    return [f for f in found if len(f) >= 2]


def from_suites():
    seeds = {}
    for suite in sorted((ROOT / "t").glob("*.t")):
        lines = suite.read_text(errors="replace").splitlines()
        section = None
        for line in lines:
            if line.startswith("--- "):
                section = line[4:].split()[0]
                continue
            if section == "more_headers" and ":" in line:
                name, value = line.split(":", 1)
                target = HEADERS.get(name.strip().lower())
                if target:
                    seeds.setdefault(target, []).append(value.strip().encode())
            elif section == "request" and line[:4] in ("GET ", "POST", "HEAD"):
                uri = line.split(" ")[1] if " " in line else ""
                seeds.setdefault("return_path", []).append(uri.encode())
                if "?" in uri:
                    seeds.setdefault("request", []).append(b"\0" + uri.split("?", 1)[1].encode())
            elif section == "request" and "=" in line and "&" in line:
                seeds.setdefault("form", []).append(line.strip().encode())
    return seeds


def from_hostile_corpus(seeds):
    """The hostile requests of t/hostile/: their URIs, query strings, the headers the module
    parses, and their bodies."""
    for path in sorted((ROOT / "t" / "hostile").glob("*.http")):
        raw = path.read_bytes()
        lines = raw.split(b"\n")
        while lines and lines[0].startswith(b"#"):
            lines.pop(0)
        request = b"\n".join(lines)
        head, _, body = request.partition(b"\r\n\r\n")
        head_lines = head.split(b"\r\n")
        parts = head_lines[0].split(b" ")
        if len(parts) >= 2:
            uri = parts[1]
            seeds.setdefault("return_path", []).append(uri)
            if b"?" in uri:
                seeds.setdefault("request", []).append(b"\0" + uri.split(b"?", 1)[1])
        for line in head_lines[1:]:
            name, sep, value = line.partition(b":")
            target = HEADERS.get(name.strip().lower().decode("latin-1"))
            if sep and target:
                seeds.setdefault(target, []).append(value.strip())
        if body:
            seeds.setdefault("form", []).append(body)


def main():
    out = pathlib.Path(sys.argv[1])
    seeds = from_suites()
    from_hostile_corpus(seeds)
    for target, files in SOURCES.items():
        for path in files:
            seeds.setdefault(target, []).extend(literals(path))
    total = 0
    for target, found in sorted(seeds.items()):
        directory = out / target
        directory.mkdir(parents=True, exist_ok=True)
        for seed in set(found):
            (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        total += len(set(found))
        print(f"{target}: {len(set(found))} seeds")
    print(f"{total} seeds in {out}")


if __name__ == "__main__":
    main()
