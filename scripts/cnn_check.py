"""The trained attacker of `scripts/cnn-check`: a small CRNN with CTC loss, trained on the
module's own generator, then asked to read fresh images (or audio clips) it never saw.

The attacker owns the generator (it ships with the module), so this is the attack that matters.

Images (`--kind images`):
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

Audio (`--kind audio`), the same training and decoding with:
    - clips: `captcha-audio dump` (8 kHz, 9-14 digits over babble and noise);
    - input: a log-mel spectrogram (40 bands up to 4 kHz, 32 ms windows every 16 ms), each
      clip scaled to zero mean and unit variance;
    - batches of 32 (twice as many steps for the same clips: the loss sits on a plateau for the
      first few hundred steps);
    - model: three convolution blocks (16, 32, 64 channels) that fold the bands away and halve
      time twice, a linear layer, two bidirectional GRU layers, one output per time step (the
      ten digits and CTC's blank).
"""

import argparse
import json
import os
import random
import sys
import time

import wave

import numpy as np
import torch
from PIL import Image
from torch import nn

from edit_distance import edit_distance

HEIGHT = 32
MEL_BANDS = 40


def load_image(path):
    """An image as a float array 32 pixels high, 0 black to 1 white."""
    image = Image.open(path).convert("L")
    width = max(8, round(image.width * HEIGHT / image.height))
    image = image.resize((width, HEIGHT), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32) / 255.0


def mel_filters(rate, size, bands):
    """Triangular mel filters over the bins of a `size`-point FFT, up to half the rate."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(50.0), mel(rate / 2), bands + 2))
    bins = np.fft.rfftfreq(size, 1.0 / rate)
    filters = np.zeros((bands, len(bins)), dtype=np.float32)
    for b in range(bands):
        lo, mid, hi = edges[b], edges[b + 1], edges[b + 2]
        filters[b] = np.clip(np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)), 0, None)
    return filters


def load_clip(path, _filters={}):
    """A WAV clip as a normalised log-mel spectrogram (40 bands x frames), float16."""
    with wave.open(path) as w:
        rate, width = w.getframerate(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width == 1:
        samples = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        samples = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
    window, hop = int(rate * 0.032), int(rate * 0.016)
    size = 1 << (window - 1).bit_length()
    if (rate, size) not in _filters:
        _filters[(rate, size)] = mel_filters(rate, size, MEL_BANDS)
    frames = 1 + max(0, len(samples) - window) // hop
    index = np.arange(window)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(samples[index] * np.hanning(window), n=size)) ** 2
    logmel = np.log(spectrum @ _filters[(rate, size)].T + 1e-6).T
    logmel = (logmel - logmel.mean()) / (logmel.std() + 1e-6)
    return logmel.astype(np.float16)


def load(directory, kind):
    """The items of one dump (images or clips) with their answers."""
    read = load_clip if kind == "audio" else load_image
    items = []
    with open(os.path.join(directory, "answers.txt")) as listing:
        for line in listing:
            name, answer = line.split()
            items.append((read(os.path.join(directory, name)), answer))
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


class AudioCrnn(nn.Module):
    def __init__(self, classes):
        super().__init__()

        def block(cin, cout, pool):
            return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(pool)]

        self.convs = nn.Sequential(
            *block(1, 16, (2, 2)),      # 20 x T/2
            *block(16, 32, (2, 2)),     # 10 x T/4
            *block(32, 64, (2, 1)),     # 5 x T/4
        )
        self.squeeze = nn.Linear(64 * (MEL_BANDS // 8), 160)
        self.rnn = nn.GRU(160, 128, num_layers=2, bidirectional=True, batch_first=True, dropout=0.1)
        self.out = nn.Linear(256, classes)

    def forward(self, x):
        features = self.convs(x)  # batch, channels, bands, steps
        b, c, f, t = features.shape
        features = torch.relu(self.squeeze(features.reshape(b, c * f, t).transpose(1, 2)))
        sequence, _ = self.rnn(features)
        return self.out(sequence)  # batch, steps, classes


def batch_of(items, index):
    """Pads a batch to its widest item: images with white (their own background is light),
    spectrograms with their own quietest value (silence)."""
    widest = max(items[i][0].shape[1] for i in index)
    height = items[index[0]][0].shape[0]
    x = np.ones((len(index), 1, height, widest), dtype=np.float32)
    for row, i in enumerate(index):
        item = items[i][0]
        if item.dtype == np.float16:
            x[row, 0] = item.min()
        x[row, 0, :, : item.shape[1]] = item
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
    parser.add_argument("--kind", choices=["images", "audio"], default="images")
    parser.add_argument("--alphabet", required=True)
    parser.add_argument("--train", action="append", required=True, help="a dump to train on")
    parser.add_argument("--test", action="append", required=True,
                        help="NAME=DIR of fresh images or clips (NAME: the hardness, or the language)")
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--curve-every", type=int, default=5000, help="images seen between curve points")
    parser.add_argument("--report", required=True, help="where the JSON report goes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", help="where to save the trained model's weights (optional)")
    args = parser.parse_args()

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    alphabet = args.alphabet
    index_of = {c: i + 1 for i, c in enumerate(alphabet)}  # 0 is CTC's blank

    started = time.time()
    train = [item for directory in args.train for item in load(directory, args.kind)]
    random.shuffle(train)
    held_out, train = train[:300], train[300:]
    tests = {}
    for spec in args.test:
        hardness, directory = spec.split("=", 1)
        tests[hardness] = load(directory, args.kind)
    print(f"loaded {len(train):,} training images, {len(held_out)} held out, "
          f"{sum(map(len, tests.values())):,} fresh test ones in {time.time() - started:.0f} s", flush=True)

    model = (AudioCrnn if args.kind == "audio" else Crnn)(len(alphabet) + 1)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"model: {parameters:,} parameters; training for {args.minutes:g} minutes "
          f"on {torch.get_num_threads()} threads", flush=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    budget = args.minutes * 60
    deadline = time.time() + budget
    seen, epoch, curve, next_point = 0, 0, [], 0
    order = list(range(len(train)))
    batch = 32 if args.kind == "audio" else 64
    while time.time() < deadline:
        random.shuffle(order)
        epoch += 1
        for first in range(0, len(order) - batch + 1, batch):
            if time.time() >= deadline:
                break
            index = order[first:first + batch]
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
                print(f"  {seen:>9,} {args.kind} seen ({epoch} passes, {minutes:5.1f} min): loss {loss.item():.3f}, "
                      f"held out {exact:6.1%} exact, {chars:6.1%} of characters", flush=True)
                next_point += args.curve_every

    print(f"\nfresh {args.kind}, never seen in training (greedy decoding, no length assumed):", flush=True)
    results = {}
    for hardness, items in sorted(tests.items()):
        tolerance = {"one_substitution": 0, "one_edit": 0}
        exact, chars, seconds = evaluate(model, items, alphabet, tolerance=tolerance)
        results[hardness] = {"images": len(items), "exact": exact, "characters": chars,
                             "ms_per_image": seconds * 1000,
                             "accepted_with_one_substitution": tolerance["one_substitution"] / len(items),
                             "accepted_with_one_edit": tolerance["one_edit"] / len(items)}
        line = (f"  {'language' if args.kind == 'audio' else 'hardness'} {hardness}: {exact:6.1%} exact, "
                f"{chars:6.1%} of characters ({len(items)} {args.kind}, {seconds * 1000:.1f} ms each)")
        if args.kind == "images":
            line += (f"; a one-character tolerance for 9+ characters would accept "
                     f"{results[hardness]['accepted_with_one_substitution']:.1%} (substitution) or "
                     f"{results[hardness]['accepted_with_one_edit']:.1%} (any edit)")
        print(line, flush=True)
    report = {"kind": args.kind, "parameters": parameters, "minutes": args.minutes, "threads": torch.get_num_threads(),
              "training_images": len(train), "images_seen": seen, "passes": epoch,
              "curve": curve, "fresh": results}
    with open(args.report, "w") as out:
        json.dump(report, out, indent=1)
    if args.save:
        torch.save(model.state_dict(), args.save)
    print(f"\nreport: {args.report}")


if __name__ == "__main__":
    sys.exit(main())
