"""The trained attacker of `scripts/cnn-check`: a small CRNN with CTC loss, trained on the
module's own generator, then asked to read fresh images it never saw.

The attacker owns the generator (it ships with the module), so this is the attack that matters:
    - images: the `captcha-images dump` of each hardness, `answers.txt` beside them;
    - input: the greyscale image scaled to 32 pixels high (its width in proportion), no other
      preprocessing;
    - model: four convolution blocks that fold the height away, two bidirectional LSTM layers
      over the columns, one output per column (the alphabet and CTC's blank);
    - training: Adam, CTC loss, batches of 64 drawn from all hardnesses alike, as long as the time
      budget lasts (default 20 minutes, both cores);
    - decoding: greedy (best class per column, repeats and blanks removed): no length is assumed,
      so a fixed image width gives nothing away;
    - the learning curve: exact and per-character accuracy on a held-out set every few thousand
      images seen;
    - the figures: exact answers and characters (edit distance) on the fresh test images of
      each hardness, and the time to read one image.
"""

import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

HEIGHT = 32


def load(directory):
    """The images of one dump, as float arrays (height 32), with their answers."""
    items = []
    with open(os.path.join(directory, "answers.txt")) as listing:
        for line in listing:
            name, answer = line.split()
            image = Image.open(os.path.join(directory, name)).convert("L")
            width = max(8, round(image.width * HEIGHT / image.height))
            image = image.resize((width, HEIGHT), Image.BILINEAR)
            items.append((np.asarray(image, dtype=np.float32) / 255.0, answer))
    return items


class Crnn(nn.Module):
    def __init__(self, classes):
        super().__init__()

        def block(cin, cout, pool):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(pool)]

        self.convs = nn.Sequential(
            *block(1, 32, (2, 2)),      # 16 x W/2
            *block(32, 64, (2, 2)),     # 8 x W/4
            *block(64, 128, (2, 1)),    # 4 x W/4
            *block(128, 128, (4, 1)),   # 1 x W/4
        )
        self.rnn = nn.LSTM(128, 160, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.out = nn.Linear(320, classes)

    def forward(self, x):
        features = self.convs(x).squeeze(2).transpose(1, 2)  # batch, columns, channels
        sequence, _ = self.rnn(features)
        return self.out(sequence)  # batch, columns, classes


def batch_of(items, index):
    """Pads a batch to its widest image (white, as the images' own background is light)."""
    widest = max(items[i][0].shape[1] for i in index)
    x = np.ones((len(index), 1, HEIGHT, widest), dtype=np.float32)
    for row, i in enumerate(index):
        image = items[i][0]
        x[row, 0, :, : image.shape[1]] = image
    return torch.from_numpy(x)


def decode(logits, alphabet):
    """Greedy CTC decoding of a batch: best class per column, repeats merged, blanks dropped."""
    best = logits.argmax(2).tolist()
    answers = []
    for row in best:
        text, previous = [], 0
        for k in row:
            if k != previous and k != 0:
                text.append(alphabet[k - 1])
            previous = k
        answers.append("".join(text))
    return answers


def edit_distance(a, b):
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[len(b)]


def evaluate(model, items, alphabet, batch=128, tolerance=None):
    """Exact answers, characters right (1 - edit distance / length), seconds per image. With a
    `tolerance` dict, also counts into it what a one-character tolerance for answers of 9 or
    more characters would accept: one substitution (same length), or any one edit."""
    model.eval()
    exact, chars, start = 0, 0.0, time.time()
    with torch.no_grad():
        for first in range(0, len(items), batch):
            index = list(range(first, min(first + batch, len(items))))
            guesses = decode(model(batch_of(items, index)), alphabet)
            for i, guess in zip(index, guesses):
                answer = items[i][1]
                exact += guess == answer
                distance = edit_distance(guess, answer)
                chars += max(0.0, 1 - distance / len(answer))
                if tolerance is not None:
                    long = len(answer) >= 9
                    substitution = len(guess) == len(answer) and distance <= 1
                    tolerance["one_substitution"] += guess == answer or (long and substitution)
                    tolerance["one_edit"] += guess == answer or (long and distance <= 1)
    model.train()
    return exact / len(items), chars / len(items), (time.time() - start) / len(items)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphabet", required=True)
    parser.add_argument("--train", action="append", required=True, help="a dump to train on")
    parser.add_argument("--test", action="append", required=True, help="HARDNESS=DIR of fresh images")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--curve-every", type=int, default=5000, help="images seen between curve points")
    parser.add_argument("--report", required=True, help="where the JSON report goes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    alphabet = args.alphabet
    index_of = {c: i + 1 for i, c in enumerate(alphabet)}  # 0 is CTC's blank

    started = time.time()
    train = [item for directory in args.train for item in load(directory)]
    random.shuffle(train)
    held_out, train = train[:300], train[300:]
    tests = {}
    for spec in args.test:
        hardness, directory = spec.split("=", 1)
        tests[hardness] = load(directory)
    print(f"loaded {len(train):,} training images, {len(held_out)} held out, "
          f"{sum(map(len, tests.values())):,} fresh test images in {time.time() - started:.0f} s", flush=True)

    model = Crnn(len(alphabet) + 1)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {parameters:,} parameters; training for {args.minutes:g} minutes "
          f"on {torch.get_num_threads()} threads", flush=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    budget = args.minutes * 60
    deadline = time.time() + budget
    seen, epoch, curve, next_point = 0, 0, [], 0
    order = list(range(len(train)))
    while time.time() < deadline:
        random.shuffle(order)
        epoch += 1
        for first in range(0, len(order) - 63, 64):
            if time.time() >= deadline:
                break
            index = order[first:first + 64]
            x = batch_of(train, index)
            targets = [torch.tensor([index_of[c] for c in train[i][1]]) for i in index]
            logits = model(x)  # batch, columns, classes
            log_probs = logits.log_softmax(2).transpose(0, 1)  # columns, batch, classes
            loss = ctc(log_probs, torch.cat(targets),
                       torch.full((len(index),), logits.shape[1], dtype=torch.long),
                       torch.tensor([len(t) for t in targets]))
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            seen += len(index)
            if seen >= next_point:
                exact, chars, _ = evaluate(model, held_out, alphabet)
                minutes = (time.time() - (deadline - budget)) / 60
                curve.append({"images_seen": seen, "minutes": round(minutes, 2), "loss": round(loss.item(), 3),
                              "exact": round(exact, 4), "characters": round(chars, 4)})
                print(f"  {seen:>9,} images seen ({epoch} passes, {minutes:5.1f} min): loss {loss.item():.3f}, "
                      f"held out {exact:6.1%} exact, {chars:6.1%} of characters", flush=True)
                next_point += args.curve_every

    print("\nfresh images, never seen in training (greedy decoding, no length assumed):", flush=True)
    results = {}
    for hardness, items in sorted(tests.items()):
        tolerance = {"one_substitution": 0, "one_edit": 0}
        exact, chars, seconds = evaluate(model, items, alphabet, tolerance=tolerance)
        results[hardness] = {"images": len(items), "exact": exact, "characters": chars,
                             "ms_per_image": seconds * 1000,
                             "accepted_with_one_substitution": tolerance["one_substitution"] / len(items),
                             "accepted_with_one_edit": tolerance["one_edit"] / len(items)}
        print(f"  hardness {hardness}: {exact:6.1%} exact, {chars:6.1%} of characters "
              f"({len(items)} images, {seconds * 1000:.1f} ms an image); a one-character tolerance "
              f"for 9+ characters would accept {results[hardness]['accepted_with_one_substitution']:.1%} "
              f"(substitution) or {results[hardness]['accepted_with_one_edit']:.1%} (any edit)", flush=True)
    report = {"parameters": parameters, "minutes": args.minutes, "threads": torch.get_num_threads(),
              "training_images": len(train), "images_seen": seen, "passes": epoch,
              "curve": curve, "fresh": results}
    with open(args.report, "w") as out:
        json.dump(report, out, indent=1)
    print(f"\nreport: {args.report}")


if __name__ == "__main__":
    sys.exit(main())
