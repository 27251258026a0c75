"""Attacker B of scripts/picture-check: a small CNN trained on the generator's own output.

The attacker owns the generator, so labelled training data costs it nothing: in every
challenge it dumps, the example and the matching tiles show the motif the prompt names
(the decoys are left out: their motif is not in the dump). One classifier over every motif
of both sets (a motif's key is its class) learns from those tiles, downscaled to 32 x 32.

On a fresh challenge it scores each tile by the probability of the asked motif, renormalised
over the motifs that can be in that grid (the asked one and every motif that can be a decoy
for it: the module never puts look-alikes in one grid, confusable.txt is public), and
answers every tile above one half, filled up or cut down to the counts a grid of that shape
can have (3-5 of 16, 4-6 of 20).

Training runs for a wall-clock budget (--minutes) on the CPU, with a cosine learning rate
over that budget. The report (--report, JSON) gives the training cost: tiles, samples seen,
wall time of loading and training, the held-out tile accuracy.
"""

import argparse
import json
import math
import os
import sys
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

SIDE = 32  # the tiles are 64 x 64; the network sees them at half size (CPU time)


def load_tile(path):
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (SIDE, SIDE):
            im = im.resize((SIDE, SIDE), Image.BOX)
        return np.asarray(im, dtype=np.uint8)


def load_many(paths, pool):
    return np.stack(pool.map(load_tile, paths, chunksize=256)) if paths else np.zeros((0, SIDE, SIDE, 3), np.uint8)


def block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


def model(classes):
    return nn.Sequential(
        block(3, 32), nn.MaxPool2d(2),  # 16
        block(32, 64), nn.MaxPool2d(2),  # 8
        block(64, 128), nn.MaxPool2d(2),  # 4
        block(128, 192), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Dropout(0.1), nn.Linear(192, classes),
    )


def to_tensor(x):
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    return t.contiguous(memory_format=torch.channels_last)


def predict(net, x, batch=1024):
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            out.append(torch.log_softmax(net(to_tensor(x[i:i + batch])), dim=1).numpy())
    net.train()
    return np.concatenate(out) if out else np.zeros((0, 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--train", action="append", default=[], metavar="DIR")
    ap.add_argument("--test", action="append", default=[], metavar="SET:HARDNESS=DIR")
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--results", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--dump-seconds", type=float, default=0.0, help="wall time the dumps took (for the report)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)

    sets = {name: common.load_set(args.root, name) for name in ("emoji", "animals")}
    classes = [f"{s}/{k}" for s in sets for k in sets[s].motifs]
    index = {c: i for i, c in enumerate(classes)}
    pool = Pool(os.cpu_count() or 2)

    t0 = time.time()
    paths, labels = [], []
    for d in args.train:
        for c in common.read_dump(d):
            label = index[f"{c.set_name}/{c.motif}"]
            for p in [c.example_path()] + [c.tile_paths()[i - 1] for i in sorted(c.answer)]:
                paths.append(p)
                labels.append(label)
    x = load_many(paths, pool)
    y = np.array(labels, dtype=np.int64)
    load_seconds = time.time() - t0
    order = rng.permutation(len(x))
    held = order[: max(1000, len(x) // 50)]
    train = order[len(held):]
    print(f"training tiles: {len(train)} (+{len(held)} held out), {len(classes)} motifs, "
          f"loaded in {load_seconds:.0f} s", flush=True)

    net = model(len(classes)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    start = time.time()
    seen = steps = 0
    curve = []
    last_report = start
    while True:
        elapsed = time.time() - start
        if elapsed >= budget:
            break
        frac = elapsed / budget
        lr = args.lr * (frac / 0.03 if frac < 0.03 else 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = train[rng.integers(0, len(train), args.batch)]
        xb, yb = to_tensor(x[batch]), torch.from_numpy(y[batch])
        loss = nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(batch)
        steps += 1
        if time.time() - last_report >= 60:
            last_report = time.time()
            acc = float(np.mean(predict(net, x[held[:2000]]).argmax(1) == y[held[:2000]]))
            curve.append({"seconds": round(last_report - start), "samples": seen, "loss": loss.item(),
                          "held_out_tile_accuracy": acc})
            print(f"  {last_report - start:5.0f} s: {seen} samples, loss {loss.item():.3f}, "
                  f"held-out tile accuracy {100 * acc:.1f} %", flush=True)
    train_seconds = time.time() - start
    held_acc = float(np.mean(predict(net, x[held]).argmax(1) == y[held]))
    print(f"trained {train_seconds:.0f} s: {seen} samples ({seen / max(1, len(train)):.1f} epochs), "
          f"held-out tile accuracy {100 * held_acc:.1f} %", flush=True)
    report = {
        "training_tiles": int(len(train)),
        "held_out_tiles": int(len(held)),
        "classes": len(classes),
        "samples_seen": int(seen),
        "epochs": seen / max(1, len(train)),
        "dump_seconds": args.dump_seconds,
        "load_seconds": load_seconds,
        "train_seconds": train_seconds,
        "held_out_tile_accuracy": held_acc,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "threads": torch.get_num_threads(),
        "curve": curve,
        "cases": [],
    }

    for spec in args.test:
        case, directory = spec.split("=", 1)
        set_name, hardness = case.split(":")
        pset = sets[set_name]
        test = [c for c in common.read_dump(directory) if c.set_name == set_name]
        t1 = time.time()
        tiles = load_many([p for c in test for p in c.tile_paths()], pool)
        logp = predict(net, tiles)
        infer = time.time() - t1
        solved = right = total = 0
        at = 0
        for c in test:
            lp = logp[at:at + c.tiles]
            at += c.tiles
            allowed = [index[f"{set_name}/{k}"] for k in [c.motif] + pset.decoys_for(c.motif)]
            sub = lp[:, allowed]
            sub = np.exp(sub - sub.max(axis=1, keepdims=True))
            p_motif = sub[:, 0] / sub.sum(axis=1)
            guess = common.choose(p_motif - 0.5, c.columns, c.rows)
            solved += guess == c.answer
            right += sum((i + 1 in guess) == (i + 1 in c.answer) for i in range(c.tiles))
            total += c.tiles
        row = dict(attacker="cnn", family="B", set=set_name, hardness=int(hardness), n=len(test),
                   solved=int(solved), tiles_right=right / total,
                   seconds_per_challenge=infer / max(1, len(test)))
        common.record(args.results, **row)
        report["cases"].append(row)
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
    pool.close()


if __name__ == "__main__":
    main()
