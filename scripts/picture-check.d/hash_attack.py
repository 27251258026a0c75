"""Attacker A of scripts/picture-check: perceptual hashes (imagehash's pHash and dHash).

The attacker owns the shipped set and the generator's code. For every picture of the set it
draws many versions under the generator's own transforms (src/challenge/picture/draw.rs:
scale 70-100 % of the tile, rotation +-25 deg, mirror, offset up to 12 %, hue +-35 deg,
brightness 85-115 %, on a light background) and keeps their hashes. A served tile is then
scored by nearest-neighbour Hamming distance: its distance to the nearest version of the
asked motif against its distance to the nearest version of any motif that can be a decoy
(the motif's look-alikes never are: confusable.txt is public). The answer is every tile that
is nearer the motif, filled up or cut down to the counts a grid of that shape can have
(3-5 of 16, 4-6 of 20).

Variants, each scored on the same fresh challenges:
  phash / dhash / both   which distance (both = the sum of the two 64-bit distances)
  +example               the served example's own hashes (and its mirror's) join the motif's
                         versions
  tuned                  the decision threshold on the score tuned on separate training
                         dumps (the best solve rate there), instead of "nearer the motif"
  +drawn                 (with --drawn DIR...) the references are also hashes of tiles the
                         generator itself drew, labelled from the attacker's own dumps
                         (matching tiles and examples carry the motif key)

Writes one JSON line a variant and case to --results.
"""

import argparse
import math
import os
import sys
import time
from multiprocessing import Pool

import imagehash
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

HASHES = ("phash", "dhash")


def hash_bits(im):
    """(pHash, dHash) of an image as two uint64."""
    out = []
    for fn in (imagehash.phash, imagehash.dhash):
        bits = fn(im).hash.flatten()
        out.append(int(np.packbits(bits.astype(np.uint8)).view(">u8")[0]))
    return out


def hue_matrix(degrees, brightness):
    """The generator's colour matrix (draw.rs colour_matrix), as floats."""
    s, c = math.sin(math.radians(degrees)), math.cos(math.radians(degrees))
    m = np.array(
        [
            [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
            [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
            [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
        ]
    )
    return m * brightness


# The generator's ranges (src/challenge/picture/draw.rs, Look::random); --look changes them
# when the attacker follows a changed generator.
# Each type has its style (draw.rs, Style::of): the emoji's drawings are smaller, move further
# and lie over two or three big discs; the animals' are as they were.
LOOKS = {
    "emoji": {"fill_min": 0.62, "fill_max": 1.0, "rotation": 20.0, "offset": 0.18, "hue": 20.0,
              "discs_min": 2, "discs_max": 3},
    "animals": {"fill_min": 0.70, "fill_max": 1.0, "rotation": 20.0, "offset": 0.12, "hue": 20.0,
                "discs_min": 0, "discs_max": 0},
}
LOOK = LOOKS["emoji"]


def background(rng, look=LOOK):
    """The generator's background, as the attacker who read draw.rs draws it: a gradient
    between two light colours in a random direction, and the style's big light discs."""
    t = common.TILE
    a = rng.integers(150, 251, size=3).astype(np.float32)
    b = rng.integers(150, 251, size=3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:t, 0:t].astype(np.float32) - t / 2
    proj = x * np.cos(angle) + y * np.sin(angle)
    reach = (abs(np.cos(angle)) + abs(np.sin(angle))) * t / 2
    f = np.clip((proj + reach) / (2 * reach), 0, 1)[..., None]
    img = a * (1 - f) + b * f
    for _ in range(rng.integers(int(look["discs_min"]), int(look["discs_max"]) + 1)):
        cx, cy, r = rng.uniform(0, t), rng.uniform(0, t), rng.uniform(12, 28)
        colour = rng.integers(120, 251, size=3).astype(np.float32)
        mask = ((x + t / 2 + 0.5 - cx) ** 2 + (y + t / 2 + 0.5 - cy) ** 2 <= r * r)[..., None]
        img = np.where(mask, img * (36 / 256) + colour * (220 / 256), img)
    return img.clip(0, 255).astype(np.uint8)


def render(picture, rng, look=LOOK):
    """One version of a picture under a random look from the generator's ranges, on a
    plain light background (the clutter, occluder and speckles are the tile's noise; the
    attacker cannot know them)."""
    fill = rng.uniform(look["fill_min"], look["fill_max"])
    rotation = rng.uniform(-look["rotation"], look["rotation"])
    mirror = rng.random() < 0.5
    span = common.TILE * look["offset"]
    offset = (rng.uniform(-span, span), rng.uniform(-span, span))
    hue = rng.uniform(-look["hue"], look["hue"])
    brightness = rng.uniform(0.9, 1.1)
    rgba = np.asarray(picture, dtype=np.float32)
    rgb = np.clip(rgba[..., :3] @ hue_matrix(hue, brightness).T, 0, 255)
    im = Image.fromarray(np.dstack([rgb, rgba[..., 3:]]).astype(np.uint8), "RGBA")
    if mirror:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    im = im.rotate(rotation, resample=Image.BILINEAR)
    side = max(1, round(common.CANVAS * fill * common.TILE / common.CANVAS))
    im = im.resize((side, side), Image.BILINEAR)
    tile = Image.fromarray(background(rng, look), "RGB").convert("RGBA")
    at = (
        round((common.TILE - side) / 2 + offset[0]),
        round((common.TILE - side) / 2 + offset[1]),
    )
    tile.paste(im, at, im)  # clipped at the tile's edges, as an offset drawing is
    return tile.convert("RGB")


def _versions_of(args):
    set_name, key, index, picture_bytes, count, seed, look = args
    picture = Image.frombytes("RGBA", (common.CANVAS, common.CANVAS), picture_bytes)
    rng = np.random.default_rng(seed)
    versions = [picture.convert("RGB")]  # the plain picture too (on black: RGBA -> RGB)
    plain = Image.new("RGBA", picture.size, (200, 200, 200, 255))
    plain.alpha_composite(picture)
    versions.append(plain.convert("RGB").resize((common.TILE, common.TILE), Image.BILINEAR))
    versions += [render(picture, rng, look) for _ in range(count)]
    return key, [hash_bits(v) for v in versions]


def reference_hashes(pset, count, pool, seed, look=LOOK):
    """motif key -> uint64 array (n, 2) of its versions' (pHash, dHash)."""
    jobs = []
    for key, motif in pset.motifs.items():
        for i, pic in enumerate(motif.pictures):
            jobs.append((pset.name, key, i, pic.tobytes(), count, seed * 100003 + len(jobs), look))
    refs = {key: [] for key in pset.motifs}
    for key, hashes in pool.imap_unordered(_versions_of, jobs, chunksize=4):
        refs[key] += hashes
    return {k: np.array(v, dtype=np.uint64) for k, v in refs.items()}


def _hash_challenge(c):
    tiles = [hash_bits(Image.open(p).convert("RGB")) for p in c.tile_paths()]
    ex = Image.open(c.example_path()).convert("RGB")
    example = [hash_bits(ex), hash_bits(ex.transpose(Image.FLIP_LEFT_RIGHT))]
    return np.array(tiles, dtype=np.uint64), np.array(example, dtype=np.uint64)


def hash_challenges(challenges, pool):
    return pool.map(_hash_challenge, challenges, chunksize=8)


COMBOS = {"phash": [0], "dhash": [1], "both": [0, 1]}


class Bank:
    """Reference hashes of every motif in one array, sorted by motif, for per-motif minima."""

    def __init__(self, refs, keys):
        self.keys = list(keys)
        self.column = {k: i for i, k in enumerate(self.keys)}
        parts = [refs.get(k, np.zeros((0, 2), np.uint64)) for k in self.keys]
        self.present = np.array([len(p) > 0 for p in parts])
        parts = [p if len(p) else np.zeros((1, 2), np.uint64) for p in parts]  # masked below
        self.hashes = np.concatenate(parts)
        self.starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
        self.size = int(sum(len(refs.get(k, ())) for k in self.keys))

    def nearest(self, tile_h):
        """combo -> (tiles, motifs) distance to each motif's nearest reference (huge where a
        motif has none)."""
        d = np.bitwise_count(np.bitwise_xor(tile_h[:, None, :], self.hashes[None, :, :])).astype(np.int16)
        out = {}
        for combo, cols in COMBOS.items():
            dc = d[:, :, cols].sum(axis=2)
            m = np.minimum.reduceat(dc, self.starts, axis=1)
            m[:, ~self.present] = 10**4
            out[combo] = m
        return out


def prepare(challenges, hashed, bank, drawn_bank=None):
    """Per challenge: the per-motif nearest distances of its tiles (and of the drawn
    references), and its tiles' distances to the example."""
    out = []
    for c, (tile_h, example_h) in zip(challenges, hashed):
        near = bank.nearest(tile_h)
        drawn_near = drawn_bank.nearest(tile_h) if drawn_bank is not None else None
        d = np.bitwise_count(np.bitwise_xor(tile_h[:, None, :], example_h[None, :, :])).astype(np.int16)
        example = {combo: d[:, :, cols].sum(axis=2).min(axis=1) for combo, cols in COMBOS.items()}
        out.append((near, drawn_near, example))
    return out


def tile_scores(c, prep, bank, pset, which, use_example, use_drawn=False):
    """Per tile: (distance to the nearest version of a motif that can be a decoy) -
    (distance to the nearest version of the asked motif); higher = more like the motif."""
    near, drawn_near, example = prep
    m = bank.column[c.motif]
    decoys = [bank.column[k] for k in pset.decoys_for(c.motif)]
    d_motif = near[which][:, m]
    d_other = near[which][:, decoys].min(axis=1)
    if use_example:
        d_motif = np.minimum(d_motif, example[which])
    if use_drawn:
        d_motif = np.minimum(d_motif, drawn_near[which][:, m])
        d_other = np.minimum(d_other, drawn_near[which][:, decoys].min(axis=1))
    return (d_other - d_motif).astype(np.float64)


def evaluate(challenges, preps, bank, pset, which, use_example, threshold=0.0, use_drawn=False):
    solved = right = total = 0
    for c, prep in zip(challenges, preps):
        scores = tile_scores(c, prep, bank, pset, which, use_example, use_drawn)
        guess = common.choose(scores, c.columns, c.rows, threshold)
        solved += guess == c.answer
        truth = np.array([i + 1 in c.answer for i in range(c.tiles)])
        mine = np.array([i + 1 in guess for i in range(c.tiles)])
        right += int(np.sum(truth == mine))
        total += c.tiles
    return solved, right / total


def tune(challenges, preps, bank, pset, which, use_example, use_drawn=False):
    """The threshold with the best solve rate on the training challenges (ties: nearest 0)."""
    scores = [tile_scores(c, p, bank, pset, which, use_example, use_drawn) for c, p in zip(challenges, preps)]
    best = (-1, 0.0)
    for t in np.arange(-30.5, 31, 1.0):
        solved = sum(common.choose(s, c.columns, c.rows, t) == c.answer for c, s in zip(challenges, scores))
        if solved > best[0] or (solved == best[0] and abs(t) < abs(best[1])):
            best = (solved, float(t))
    return best[1], best[0]


def drawn_hashes(dirs, pset, pool, limit):
    """Hashes of generator-drawn tiles with the motif key: examples and matching tiles of
    the attacker's own dumps."""
    jobs = []
    for d in dirs:
        for c in common.read_dump(d):
            if c.set_name != pset.name:
                continue
            jobs += [(c.motif, c.example_path())] + [(c.motif, c.tile_paths()[p - 1]) for p in c.answer]
    jobs = jobs[:limit]
    out = {}
    for key, h in zip((k for k, _ in jobs), pool.map(_hash_path, [p for _, p in jobs], chunksize=64)):
        out.setdefault(key, []).append(h)
    return {k: np.array(v, dtype=np.uint64) for k, v in out.items()}, len(jobs)


def _hash_path(path):
    return hash_bits(Image.open(path).convert("RGB"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--set", required=True, choices=["emoji", "animals"])
    ap.add_argument("--test", action="append", default=[], metavar="HARDNESS=DIR")
    ap.add_argument("--train", action="append", default=[], metavar="HARDNESS=DIR",
                    help="dumps for tuning the threshold")
    ap.add_argument("--drawn", action="append", default=[], metavar="DIR",
                    help="the attacker's own dumps whose labelled tiles join the references")
    ap.add_argument("--drawn-limit", type=int, default=60000)
    ap.add_argument("--versions", type=int, default=100, help="random looks per picture")
    ap.add_argument("--results", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--look", default="", metavar="KEY=VALUE,...",
                    help="other ranges for the references (fill_min, fill_max, rotation, offset, hue)")
    args = ap.parse_args()

    pset = common.load_set(args.root, args.set)
    pool = Pool(os.cpu_count() or 2)
    t0 = time.time()
    look = dict(LOOKS[args.set])
    for item in filter(None, args.look.split(",")):
        k, v = item.split("=")
        look[k] = float(v)
    refs = reference_hashes(pset, args.versions, pool, args.seed, look)
    n_refs = sum(len(v) for v in refs.values())
    print(f"[{args.set}] {n_refs} reference hashes ({len(pset.motifs)} motifs, "
          f"{sum(len(m.pictures) for m in pset.motifs.values())} pictures, "
          f"{args.versions} random looks each) in {time.time() - t0:.0f} s", flush=True)
    drawn = None
    if args.drawn:
        t0 = time.time()
        drawn, n = drawn_hashes(args.drawn, pset, pool, args.drawn_limit)
        print(f"[{args.set}] {n} hashes of generator-drawn labelled tiles in {time.time() - t0:.0f} s", flush=True)

    bank = Bank(refs, pset.motifs)
    drawn_bank = Bank(drawn, pset.motifs) if drawn is not None else None
    variants = [(w, e) for w in ("phash", "dhash", "both") for e in (False, True)]
    for spec in args.test:
        hardness, directory = spec.split("=", 1)
        train_dir = dict(s.split("=", 1) for s in args.train).get(hardness)
        test = [c for c in common.read_dump(directory) if c.set_name == args.set]
        t0 = time.time()
        preps = prepare(test, hash_challenges(test, pool), bank, drawn_bank)
        print(f"[{args.set}] hardness {hardness}: {len(test)} fresh challenges hashed and matched in "
              f"{time.time() - t0:.0f} s", flush=True)
        for which, use_example in variants:
            solved, tiles_right = evaluate(test, preps, bank, pset, which, use_example)
            common.record(args.results, attacker=f"hash-{which}" + ("+example" if use_example else ""),
                          family="A", set=args.set, hardness=int(hardness), n=len(test), solved=int(solved),
                          tiles_right=tiles_right, references=bank.size)
        if train_dir:
            train = [c for c in common.read_dump(train_dir) if c.set_name == args.set]
            train_preps = prepare(train, hash_challenges(train, pool), bank, drawn_bank)
            for which in ("phash", "both"):
                t, train_solved = tune(train, train_preps, bank, pset, which, True)
                solved, tiles_right = evaluate(test, preps, bank, pset, which, True, t)
                common.record(args.results, attacker=f"hash-{which}+example tuned", family="A", set=args.set,
                              hardness=int(hardness), n=len(test), solved=int(solved), tiles_right=tiles_right,
                              threshold=t, train_n=len(train), train_solved=int(train_solved),
                              references=bank.size)
        if drawn_bank is not None:
            for which in ("phash", "both"):
                solved, tiles_right = evaluate(test, preps, bank, pset, which, True, 0.0, True)
                common.record(args.results, attacker=f"hash-{which}+example+drawn", family="A", set=args.set,
                              hardness=int(hardness), n=len(test), solved=int(solved), tiles_right=tiles_right,
                              references=bank.size + drawn_bank.size)
    pool.close()


if __name__ == "__main__":
    main()
