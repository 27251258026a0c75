#!/usr/bin/env python3
"""Scores blind reads of text captchas (see scripts/blind-reads).

Input: DIR/key.tsv (id, hardness, size, shown_width, answer), written by
`captcha-images blind`, and every DIR/reads-*.tsv: one `path-or-id<TAB>reading` line per
image read, first try only (a reader who cannot read an image writes their best guess, or
nothing after the tab). Readings are normalised by the module's own code (`captcha-images
normalize`: case folded, spaces removed, look-alikes outside the alphabet replaced), so a
reading counts as right exactly when the module would accept it.

Output (stdout and DIR/report.json):
  * per hardness and size: images read, exact (first-try success), characters right
    (1 - edit distance / length), and how many readings are one substitution away or one edit
    (substitution, insertion or deletion) away: what a one-character tolerance would accept;
  * the confusions: answer character -> what was read (aligned by edit distance), with
    dropped and added characters, most frequent first;
  * per alphabet character: how often it was shown and misread.
"""
import collections
import json
import pathlib
import subprocess
import sys


def align(a, b):
    """Edit-distance alignment of a (answer) and b (reading): list of (x, y) pairs, with
    None for an insertion or a deletion."""
    n, m = len(a), len(b)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    pairs, i, j = [], n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (a[i - 1] != b[j - 1]):
            pairs.append((a[i - 1], b[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            pairs.append((a[i - 1], None))
            i -= 1
        else:
            pairs.append((None, b[j - 1]))
            j -= 1
    return d[n][m], pairs[::-1]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: blind_reads.py CAPTCHA-IMAGES-TOOL DIR")
    tool, run = sys.argv[1], pathlib.Path(sys.argv[2])
    key = {}
    for line in (run / "key.tsv").read_text().splitlines()[1:]:
        ident, hardness, size, shown, answer = line.split("\t")
        key[ident] = (int(hardness), size, int(shown), answer)
    raw = []
    readers = collections.Counter()
    for f in sorted(run.glob("reads-*.tsv")):
        for line in f.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            where, _, reading = line.partition("\t")
            ident = pathlib.Path(where.strip()).stem
            if ident not in key:
                sys.exit(f"{f}: unknown image {where!r}")
            raw.append((ident, reading.replace("\n", " "), f.stem))
            readers[f.stem] += 1
    normalized = subprocess.run([tool, "normalize"], input="".join(r + "\n" for _, r, _ in raw),
                                capture_output=True, text=True, check=True).stdout.splitlines()
    reads = {}
    for (ident, typed, reader), reading in zip(raw, normalized, strict=True):
        if ident in reads:
            sys.exit(f"{reader}: {ident} read twice (first tries only)")
        reads[ident] = (reading, reader, typed)
    if not reads:
        sys.exit(f"no readings in {run}/reads-*.tsv")

    groups = collections.defaultdict(list)
    confusions = collections.Counter()
    shown = collections.Counter()
    missed = collections.Counter()
    misses = []
    for ident, (reading, reader, typed) in sorted(reads.items()):
        hardness, size, width, answer = key[ident]
        dist, pairs = align(answer, reading)
        same_len_sub = len(reading) == len(answer) and sum(x != y for x, y in zip(answer, reading))
        groups[(hardness, size)].append((answer, reading, dist, same_len_sub))
        for x, y in pairs:
            if x is not None:
                shown[x] += 1
            if x != y:
                confusions[(x or "+", y or "-")] += 1
                if x is not None:
                    missed[x] += 1
        if dist:
            misses.append({"id": ident, "hardness": hardness, "size": size,
                           "answer": answer, "typed": typed, "reading": reading, "reader": reader})

    report = {"run": str(run), "readers": dict(readers), "groups": [], "confusions": [],
              "characters": {}, "misses": misses}
    print(f"blind reads in {run}: {len(reads)} of {len(key)} images, readers {dict(readers)}")
    print(f"{'hardness':>8} {'size':>8} {'read':>5} {'exact':>14} {'chars':>7} "
          f"{'<=1 sub':>8} {'<=1 edit':>9}")
    for (hardness, size) in sorted(groups):
        g = groups[(hardness, size)]
        n = len(g)
        exact = sum(1 for _, _, d, _ in g if d == 0)
        chars = 1 - sum(d for _, _, d, _ in g) / sum(len(a) for a, _, _, _ in g)
        sub1 = sum(1 for _, _, d, s in g if d == 0 or s == 1)
        edit1 = sum(1 for _, _, d, _ in g if d <= 1)
        row = {"hardness": hardness, "size": size, "read": n, "exact": exact,
               "exact_rate": exact / n, "char_rate": chars,
               "within_one_substitution": sub1, "within_one_edit": edit1}
        report["groups"].append(row)
        print(f"{hardness:>8} {size:>8} {n:>5} {exact:>5} ({100 * exact / n:5.1f}%) "
              f"{100 * chars:6.1f}% {sub1:>8} {edit1:>9}")
    for hardness in sorted({h for h, _ in groups}):
        g = [x for (h, _), v in groups.items() if h == hardness for x in v]
        exact = sum(1 for _, _, d, _ in g if d == 0)
        print(f"{hardness:>8} {'both':>8} {len(g):>5} {exact:>5} ({100 * exact / len(g):5.1f}%)")
    print("confusions (answer -> read; + added, - dropped):")
    for (x, y), c in confusions.most_common():
        report["confusions"].append({"answer": x, "read": y, "count": c})
        print(f"  {x} -> {y}: {c}")
    print("per character (shown, misread):")
    for ch in sorted(shown):
        report["characters"][ch] = {"shown": shown[ch], "misread": missed[ch]}
    print("  " + "  ".join(f"{ch} {missed[ch]}/{shown[ch]}" for ch in sorted(shown)))
    (run / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"report: {run / 'report.json'}")


if __name__ == "__main__":
    main()
