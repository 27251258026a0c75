"""The report of scripts/picture-check: results.md from the attackers' JSON lines, and the
check of the hash attacker's target (--target): the run fails when some variant's solve rate
is clearly above it, i.e. the one-sided exact binomial test rejects "rate <= target" at
5 % after a Bonferroni correction over every variant and case checked."""

import argparse
import json
import math
import sys
from collections import OrderedDict

BLIND = {1: 1 / 1680, 2: 1 / 14535}


def tail(k, n, p):
    """P(X >= k) for X ~ Binomial(n, p)."""
    if k <= 0:
        return 1.0
    return min(1.0, sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))


def pct(x):
    return f"{100 * x:.2f} %"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--cnn-report")
    ap.add_argument("--out")
    ap.add_argument("--target", type=float, help="fail when a family-A variant is clearly above this rate")
    ap.add_argument("--title", default="Picture captchas against attackers")
    ap.add_argument("--note", action="append", default=[])
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.results, encoding="utf-8") if line.strip()]

    out = [f"# {args.title}", ""] + [n for n in args.note] + ([""] if args.note else [])
    out += ["Solved = the exact set of matching tiles ticked. 95 % = Wilson score interval.", ""]

    # Summary: the best variant per family, set and hardness.
    cases = sorted({(r["set"], r["hardness"]) for r in rows}, key=lambda c: (c[0] != "emoji", c[1]))
    out += ["## Summary (the strongest variant of each attacker)", "",
            "| attacker | type | hardness | N | solved | solved % | 95 % interval | variant |",
            "|---|---|---|---|---|---|---|---|"]
    for family, label in (("A", "A: perceptual hash"), ("B", "B: trained CNN")):
        for s, h in cases:
            cand = [r for r in rows if r["family"] == family and r["set"] == s and r["hardness"] == h]
            if not cand:
                continue
            r = max(cand, key=lambda r: r["solved"] / r["n"])
            out.append(f"| {label} | {s} | {h} | {r['n']} | {r['solved']} | {pct(r['solved'] / r['n'])} | "
                       f"{pct(r['low'])} – {pct(r['high'])} | {r['attacker']} |")
    for s, h in cases:
        out.append(f"| blind guess (best fixed set) | {s} | {h} | – | – | {pct(BLIND[h])} (1 in "
                   f"{round(1 / BLIND[h]):,}) | exact | – |")
    out.append("")

    out += ["## Every variant", "",
            "| attacker | type | hardness | N | solved | solved % | 95 % interval | tiles right |",
            "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['attacker']} | {r['set']} | {r['hardness']} | {r['n']} | {r['solved']} | "
                   f"{pct(r['solved'] / r['n'])} | {pct(r['low'])} – {pct(r['high'])} | "
                   f"{100 * r.get('tiles_right', float('nan')):.1f} % |")
    out.append("")

    if args.cnn_report:
        rep = json.load(open(args.cnn_report, encoding="utf-8"))
        out += ["## Training cost of attacker B", "",
                f"- training tiles: {rep['training_tiles']:,} (examples and matching tiles of the attacker's "
                f"own dumps), {rep['held_out_tiles']:,} held out; {rep['classes']} motifs",
                f"- network: {rep['parameters']:,} parameters, input 32 × 32, {rep['threads']} CPU threads",
                f"- wall time: dumping {rep['dump_seconds']:.0f} s, decoding {rep['load_seconds']:.0f} s, "
                f"training {rep['train_seconds']:.0f} s ({rep['samples_seen']:,} samples, "
                f"{rep['epochs']:.1f} epochs)",
                f"- held-out tile accuracy (which of all motifs): {100 * rep['held_out_tile_accuracy']:.1f} %", ""]
        if rep.get("curve"):
            out += ["| minute | samples | held-out tile accuracy |", "|---|---|---|"]
            out += [f"| {c['seconds'] / 60:.0f} | {c['samples']:,} | {100 * c['held_out_tile_accuracy']:.1f} % |"
                    for c in rep["curve"]]
            out.append("")

    failed = []
    if args.target is not None:
        checked = [r for r in rows if r["family"] == "A"]
        alpha = 0.05 / max(1, len(checked))
        for r in checked:
            p = tail(r["solved"], r["n"], args.target)
            if p < alpha:
                failed.append((r, p))
        out += [f"## Target: hash attacker at most {pct(args.target)}", "",
                f"Checked {len(checked)} variant × case rows; a row fails when P(X ≥ solved | rate = "
                f"{pct(args.target)}) < {alpha:.2g} (5 % over all rows).", ""]
        if failed:
            out += [f"**FAILED** in {len(failed)} rows, e.g. {failed[0][0]['attacker']} on "
                    f"{failed[0][0]['set']} hardness {failed[0][0]['hardness']}: "
                    f"{failed[0][0]['solved']}/{failed[0][0]['n']} (p = {failed[0][1]:.2g}).", ""]
        else:
            out += ["Passed.", ""]

    text = "\n".join(out)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    print(text)
    if failed:
        print(f"picture-check: the hash attacker is clearly above {pct(args.target)} "
              f"({len(failed)} rows)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
