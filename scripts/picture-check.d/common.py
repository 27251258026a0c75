"""Shared by the picture attackers of scripts/picture-check: the shipped set as an attacker
reads it, `captcha-pictures dump` folders, the rule that turns per-tile scores into an
answer, and the statistics of a solve rate.

Everything here uses only what the attacker has: the repository (pictures/, the generator's
code) and a served challenge (prompt's motif, grid, example, tiles). The answers in
index.tsv are read only to score an attack, or, for training data, from dumps the attacker
made itself with the generator.
"""

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

CANVAS = 96  # src/challenge/picture/mod.rs: a picture fitted and centred on 96 x 96
TILE = 64  # src/challenge/picture/draw.rs


@dataclass
class Motif:
    key: str
    pictures: list  # RGBA PIL images, CANVAS x CANVAS
    look_alikes: set = field(default_factory=set)


@dataclass
class PictureSet:
    name: str
    motifs: dict  # key -> Motif, in the generator's order (sorted folder names)

    def decoys_for(self, key):
        """The motifs whose pictures may be a decoy when `key` is asked for."""
        m = self.motifs[key]
        return [k for k in self.motifs if k != key and k not in m.look_alikes]


def fit_canvas(im):
    """A picture as the module decodes it: scaled to fit CANVAS, keeping its aspect,
    centred on a transparent canvas."""
    im = im.convert("RGBA")
    w, h = im.size
    scale = CANVAS / max(w, h)
    sw, sh = max(1, min(CANVAS, round(w * scale))), max(1, min(CANVAS, round(h * scale)))
    if (sw, sh) != (w, h):
        im = im.resize((sw, sh), Image.BILINEAR)
    out = Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))
    out.paste(im, ((CANVAS - sw) // 2, (CANVAS - sh) // 2))
    return out


def load_set(root, name):
    """pictures/NAME: one folder a motif (its PNGs), confusable.txt's groups of look-alikes."""
    base = os.path.join(root, "pictures", name)
    motifs = {}
    for key in sorted(os.listdir(base)):
        folder = os.path.join(base, key)
        if not os.path.isdir(folder):
            continue
        pictures = [
            fit_canvas(Image.open(os.path.join(folder, f)))
            for f in sorted(os.listdir(folder))
            if f.endswith(".png")
        ]
        motifs[key] = Motif(key, pictures)
    conf = os.path.join(base, "confusable.txt")
    if os.path.exists(conf):
        for line in open(conf, encoding="utf-8"):
            group = line.split("#", 1)[0].split()
            for a in group:
                if a in motifs:
                    motifs[a].look_alikes |= {b for b in group if b != a and b in motifs}
    return PictureSet(name, motifs)


@dataclass
class Challenge:
    ident: str
    set_name: str
    motif: str
    columns: int
    rows: int
    answer: frozenset  # 1-based positions; used only to score
    folder: str

    @property
    def tiles(self):
        return self.columns * self.rows

    def tile_paths(self):
        return [os.path.join(self.folder, f"{i:02d}.png") for i in range(1, self.tiles + 1)]

    def example_path(self):
        return os.path.join(self.folder, "example.png")


def read_dump(directory):
    out = []
    with open(os.path.join(directory, "index.tsv"), encoding="utf-8") as f:
        for line in f:
            ident, set_name, motif, columns, rows, answer = line.rstrip("\n").split("\t")
            out.append(
                Challenge(
                    ident,
                    set_name,
                    motif,
                    int(columns),
                    int(rows),
                    frozenset(int(p) for p in answer.split(",") if p),
                    os.path.join(directory, ident),
                )
            )
    return out


def load_rgb(path):
    """A served PNG (palette) as an RGB uint8 array, TILE x TILE x 3."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def count_range(columns, rows):
    """How many tiles match, as the grid's docs say (src/challenge/picture/grid.rs): the
    attacker knows it from the code."""
    return (3, 5) if columns * rows == 16 else (4, 6)


def choose(scores, columns, rows, threshold=0.0):
    """The answer from per-tile scores (higher = more like the motif): every tile above the
    threshold, but never fewer or more tiles than a grid of this shape can have (the
    best-scored ones fill up or stay). Returns 1-based positions."""
    fewest, most = count_range(columns, rows)
    order = np.argsort(-np.asarray(scores), kind="stable")
    above = int(np.sum(np.asarray(scores) > threshold))
    k = min(max(above, fewest), most)
    return frozenset(int(i) + 1 for i in order[:k])


def wilson(solved, n, z=1.96):
    """The 95 % Wilson score interval of a proportion, as (low, high)."""
    if n == 0:
        return (0.0, 1.0)
    p = solved / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def record(path, **row):
    """Appends one result row (JSON lines) for the report."""
    lo, hi = wilson(row["solved"], row["n"])
    row.setdefault("low", lo)
    row.setdefault("high", hi)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(
        f"  {row['attacker']:<34} {row['set']:<8} h{row['hardness']}: "
        f"{row['solved']}/{row['n']} solved = {100 * row['solved'] / row['n']:.2f} % "
        f"(95 % {100 * lo:.2f}–{100 * hi:.2f} %)"
        + (f", tiles right {100 * row['tiles_right']:.1f} %" if "tiles_right" in row else ""),
        flush=True,
    )
