#!/usr/bin/env python3
"""Attacks audio captchas by machine listening and reports how many digits it gets.

Run by scripts/asr-check, which installs the dependencies and dumps the clips first:

    asr_check.py --work DIR --lang en --jobs 2 --digits 9-14 \
                 --ours DIR --plain DIR --voices DIR [--espeak N] [--python N] \
                 [--ours-speed FILE]

Each clip DIR holds WAVs and an `answers.txt` with one "file digits" line per clip (as written
by `captcha-audio dump` and `captcha-audio plain`); `--voices DIR` holds every recording the
project ships, DIR/LANG/VOICE-DIGIT.wav (`captcha-audio voices`).

The sets
  ours      fresh clips, what visitors hear (`captcha-audio dump`)
  plain     reference: the shipped recordings concatenated with no transforms
  espeak    reference: digit strings spoken by espeak-ng (default voice of the language,
            connected speech: `espeak-ng -v en "4 0 9 1 ..."`), `--espeak N` of them
  python    the Python `captcha` package's AudioCaptcha, `--python N` clips of 9-14 digits

The attacks
  (a) asr   pocketsphinx (PyPI `pocketsphinx`, its bundled en-us acoustic model) with the
            vocabulary restricted to the digits: a dictionary holding only zero/oh/one/.../nine
            and a unigram language model over those eleven words (equal probabilities, any
            number of digits in any order; that search is faster and reads better than the
            equivalent JSGF grammar), language weight 2 (from 6.5: the acoustics count for
            more against a flat model; reads the references a few points better), the whole
            clip, resampled to 16 kHz, as one utterance. (Cutting the clip at pauses and
            decoding every stretch of sound on its own read no better on the references and
            worse on ours, so it is not done.)
            English only: other languages skip this attack.
  (b) mf    matched filter. The attacker owns every recording the project ships (for the
            python set: the package's own recordings; for espeak: espeak-ng's isolated digit
            words in the same voice). Everything is resampled to 8 kHz and band-passed to
            300-3400 Hz first (strips rumble, hiss and anything added outside the speech band).
            Every recording, trimmed of silence, is slid over the clip at many speeds and
            pitches, scoring normalized cross-correlation (NCC) at every offset; per digit the
            best score over all recordings and variants is kept. Three variants:
              wave      NCC of the waveforms; every recording resampled by factors from 0.80
                        to 1.25 (resampling changes speed and pitch together) on a geometric
                        grid of 13 to 41 steps, finer when there are fewer recordings (about
                        800 variants in all), computed by FFT, max-pooled to 10 ms steps.
              spec      NCC of log-energy spectrogram patches on a logarithmic frequency axis
                        (40 bands 250-3600 Hz, 10 ms hop, floored 15 dB under the loudest
                        band), so a pitch/formant shift is a shift along the band axis: 8 time
                        stretches 0.80-1.25 x 7 band shifts (x0.83-1.20 in frequency), i.e. 56
                        speed/pitch combinations per recording. Insensitive to phase and to
                        quiet noise.
              env       the same on the spectral envelope only (the first 10 cepstral
                        coefficients along the bands), which a pitch change that keeps the
                        formants (PSOLA) leaves alone.
            Reading: greedy picks of the best-scoring (digit, time) over all digits, each
            pick blocking every candidate that overlaps it by more than 30%, at most as many
            as the longest clips have digits; the first `shortest` picks are always kept
            (the attacker knows clips hold 9-14 digits), further picks only while their score
            is at least RATIO x the median score of the first ones (RATIO 0 keeps all, 2 none
            of them); the picks in time order are the reading. The attacker tunes RATIO per set on the answers (as someone
            owning the generator could with clips of their own): the best ratio is reported.

Metrics, per set and attack (for a variant-wise table see the detail lines):
  exact      clips read exactly right
  per-digit  sum over clips of M / max(len(answer), len(reading)), divided by the number of
             clips, where M = the matches (equal digits paired by the alignment) of a
             minimum-cost Levenshtein alignment of reading and answer (unit costs; among
             minimum-cost alignments the one with the most matches). Dividing by the longer
             of the two, not the answer alone, keeps a reading padded with guesses from
             scoring: a recogniser that hears 40 digits in noise pairs many of them with
             the answer by chance (matches / answer length gives ~50% for such garbage).
  chance     the per-digit metric for random digit strings of the same lengths as the
             readings (mean of 20 draws): what hearing nothing but guessing scores.
  The headline of an attack is the best any of its variants (and, for the matched filter,
  any ratio) scores: exact and per-digit are maxima taken separately.

Targets (exit status 1 when missed): ours must stay at or below 1% exact and 35% per digit
for both attacks. The references must show the attacks work, else the check proves nothing
(exit status 1 too): pocketsphinx >= 60% per digit on the plain and on the espeak set, the
matched filter >= 80% per digit on the plain and on the python set. (The matched filter is not
held to the espeak set: connected speech against isolated words is not its case.)
"""
import os

# One thread per process: the pool already uses every core we are given.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import math
import random
import secrets
import statistics
import subprocess
import sys
import time
from fractions import Fraction
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy import signal
from scipy.io import wavfile

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORD_DIGIT = {w: str(i) for i, w in enumerate(WORDS)} | {"oh": "0"}

TARGET_EXACT = 0.01  # ours: at most this share of clips read exactly
TARGET_PER_DIGIT = 0.35  # ours: at most this per-digit accuracy
REFERENCE_ASR = 0.60  # pocketsphinx must read a reference set at least this well
REFERENCE_MF = 0.80  # the matched filter must read plain and python clips at least this well

MF_RATE = 8000  # the matched filter works at telephone bandwidth
ASR_RATE = 16000  # the en-us acoustic model's rate
BAND = (300.0, 3400.0)
HOP = 80  # 10 ms at 8 kHz: the time grid of the matched filter's scores
WAVE_SPAN = (0.80, 1.25)
WAVE_VARIANTS = 800  # waveform variants to aim for: fewer recordings get a finer speed grid
WAVE_STEPS = (13, 41)  # odd, so that 1.0 is on the grid
SPEC_STRETCHES = np.geomspace(0.80, 1.25, 8)
SPEC_BANDS = 40
SPEC_SHIFTS = 3  # band shifts -3..3
SPEC_FRAME = 256
SPEC_FLOOR = 10 ** -1.5
SPEC_CEPSTRA = 10
RATIOS = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 2.0]  # 0.0: always the most digits, 2.0: the fewest
OVERLAP = 0.3


# ---------------------------------------------------------------------------------------------
# Audio helpers


def read_wav(path) -> tuple[np.ndarray, int]:
    """Reads a WAV file as mono float64 in -1..1 and its sample rate."""
    sr, x = wavfile.read(str(path))
    if x.dtype == np.uint8:
        x = (x.astype(np.float64) - 128) / 128
    elif x.dtype == np.int16:
        x = x.astype(np.float64) / 32768
    elif x.dtype == np.int32:
        x = x.astype(np.float64) / 2147483648
    else:
        x = x.astype(np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    return x, sr


def resample(x: np.ndarray, rate: int, to: int) -> np.ndarray:
    if rate == to:
        return x
    g = math.gcd(rate, to)
    return signal.resample_poly(x, to // g, rate // g)


def stretch(x: np.ndarray, factor: float) -> np.ndarray:
    """Resamples so the result is `factor` times as long (slower and lower when > 1)."""
    f = Fraction(factor).limit_denominator(40)
    return signal.resample_poly(x, f.numerator, f.denominator)


_BANDPASS = {}


def bandpass(x: np.ndarray, rate: int) -> np.ndarray:
    """Zero-phase Butterworth band-pass to the telephone band."""
    if rate not in _BANDPASS:
        _BANDPASS[rate] = signal.butter(4, BAND, btype="bandpass", fs=rate, output="sos")
    if len(x) < 64:
        return x
    return signal.sosfiltfilt(_BANDPASS[rate], x)


def frame_energy(x: np.ndarray, hop: int) -> np.ndarray:
    n = len(x) // hop
    return (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1)


def trim(x: np.ndarray, rate: int) -> np.ndarray:
    """Cuts the silence around a recording: keeps from the first to the last 10 ms frame
    within 30 dB of the loudest frame."""
    hop = rate // 100
    e = frame_energy(x, hop)
    if len(e) == 0 or e.max() <= 0:
        return x
    loud = np.nonzero(e > e.max() * 1e-3)[0]
    return x[loud[0] * hop : (loud[-1] + 1) * hop]


# ---------------------------------------------------------------------------------------------
# Metrics


def alignment_matches(answer: str, reading: str) -> int:
    """Matches in a minimum-cost Levenshtein alignment (unit costs for substitution,
    insertion and deletion; ties broken towards more matches)."""
    n, m = len(answer), len(reading)
    # Each cell: (cost, -matches), compared lexicographically.
    prev = [(j, 0) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0)] + [(0, 0)] * m
        for j in range(1, m + 1):
            same = answer[i - 1] == reading[j - 1]
            diag = prev[j - 1]
            cur[j] = min(
                (diag[0] + (0 if same else 1), diag[1] - (1 if same else 0)),
                (prev[j][0] + 1, prev[j][1]),
                (cur[j - 1][0] + 1, cur[j - 1][1]),
            )
        prev = cur
    return -prev[m][1]


def digit_score(answer: str, reading: str) -> float:
    """Per-digit accuracy of one reading: alignment matches / the longer length."""
    longer = max(len(answer), len(reading))
    return alignment_matches(answer, reading) / longer if longer else 1.0


def evaluate(answers: list[str], readings: list[str]) -> dict:
    """The metrics of one set of readings (see the top of the file)."""
    n = max(len(answers), 1)
    return {
        "n": len(answers),
        "exact": sum(1 for a, r in zip(answers, readings) if a == r),
        "per_digit": sum(digit_score(a, r) for a, r in zip(answers, readings)) / n,
        "len": sum(len(r) for r in readings) / n,
        "answer_len": sum(len(a) for a in answers) / n,
    }


def chance_level(answers: list[str], readings: list[str], draws: int = 20) -> float:
    """The per-digit metric of random digit strings as long as the readings."""
    rng = random.Random(12345)
    total = 0.0
    for _ in range(draws):
        for a, r in zip(answers, readings):
            total += digit_score(a, "".join(rng.choice("0123456789") for _ in r))
    return total / draws / max(len(answers), 1)


# ---------------------------------------------------------------------------------------------
# (a) pocketsphinx


def write_asr_model(directory: Path) -> tuple[Path, Path]:
    """The digits-only dictionary (pronunciations from the bundled cmudict) and a unigram
    language model over them."""
    from pocketsphinx import get_model_path

    directory.mkdir(parents=True, exist_ok=True)
    words = WORDS + ["oh"]
    lines = []
    with open(os.path.join(get_model_path(), "en-us", "cmudict-en-us.dict")) as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if head.split("(")[0] in words:
                lines.append(line)
    dic = directory / "digits.dict"
    dic.write_text("".join(lines))
    p = math.log10(1 / len(words))
    arpa = f"\\data\\\nngram 1={len(words) + 2}\n\n\\1-grams:\n-99 <s>\n{p:.4f} </s>\n"
    arpa += "".join(f"{p:.4f} {w}\n" for w in words) + "\n\\end\\\n"
    lm = directory / "digits.arpa"
    lm.write_text(arpa)
    return dic, lm


class Recogniser:
    """pocketsphinx restricted to the digits."""

    def __init__(self, dic: Path, lm: Path):
        from pocketsphinx import Decoder, get_model_path

        # fwdflat off: the second pass only costs time on a unigram digit model; lw 2 (from
        # 6.5) lets the acoustics win over the flat language model, which reads synthetic
        # voices a little better.
        self.decoder = Decoder(
            hmm=os.path.join(get_model_path(), "en-us", "en-us"),
            dict=str(dic), lm=str(lm), loglevel="FATAL", fwdflat=False, lw=2.0,
        )

    def decode(self, x16: np.ndarray) -> str:
        pcm = (np.clip(x16, -1, 1) * 32767).astype("<i2").tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return "".join(WORD_DIGIT.get(w, "") for w in (hyp.hypstr.split() if hyp else []))


def asr_attack(rec: Recogniser, x: np.ndarray, rate: int) -> dict[str, str]:
    return {"whole": rec.decode(resample(x, rate, ASR_RATE))}


# ---------------------------------------------------------------------------------------------
# (b) matched filter


def log_band_filters(rate: int, nfft: int) -> np.ndarray:
    """Triangular filters centred on log-spaced frequencies (a pitch change is a shift)."""
    centres = np.geomspace(250.0, 3600.0, SPEC_BANDS + 2)
    freqs = np.fft.rfftfreq(nfft, 1 / rate)
    fb = np.zeros((SPEC_BANDS, len(freqs)))
    for b in range(SPEC_BANDS):
        lo, mid, hi = centres[b], centres[b + 1], centres[b + 2]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        fb[b] = np.clip(np.minimum(rise, fall), 0, None)
    return fb


_FILTERS = log_band_filters(MF_RATE, SPEC_FRAME)
_WINDOW = np.hanning(SPEC_FRAME)


def log_spectrogram(x: np.ndarray, envelope: bool) -> np.ndarray:
    """Log band energies, shape (bands, frames), one frame per HOP samples; with `envelope`
    smoothed along the bands."""
    pad = np.concatenate([np.zeros(SPEC_FRAME // 2), x, np.zeros(SPEC_FRAME)])
    frames = (len(x) + HOP - 1) // HOP
    idx = np.arange(frames)[:, None] * HOP + np.arange(SPEC_FRAME)[None, :]
    spec = np.abs(np.fft.rfft(pad[idx] * _WINDOW, axis=1)) ** 2
    bands = spec @ _FILTERS.T
    # A floor 15 dB under the loudest band: quiet detail (mostly whatever noise is there)
    # does not count, and the result does not depend on the level.
    logs = np.log(bands + SPEC_FLOOR * bands.max() + 1e-12)
    if not envelope:
        return logs.T
    # Only the envelope: the first SPEC_CEPSTRA cepstral coefficients (a DCT along the bands),
    # so the harmonics of the voice's pitch, which a pitch change moves under the envelope,
    # do not count.
    c = sfft.dct(logs, axis=1, norm="ortho")
    c[:, SPEC_CEPSTRA:] = 0
    return sfft.idct(c, axis=1, norm="ortho").T


def window_sums(v: np.ndarray, width: int) -> np.ndarray:
    """Sums of v over every window of `width` consecutive entries (len(v) - width + 1)."""
    c = np.concatenate([[0.0], np.cumsum(v)])
    return c[width:] - c[:-width]


class TemplateBank:
    """Every recording of the attacker's, prepared for both matched-filter variants."""

    def __init__(self, recordings: list[tuple[int, np.ndarray, int]]):
        self.wave = []  # (digit, zero-mean unit-norm float32 waveform)
        # Per spectral variant: (digit, zero-mean unit-norm patch of the inner bands)
        self.patches = {"spec": [], "env": []}
        k = SPEC_SHIFTS
        steps = WAVE_VARIANTS // max(len(recordings), 1)
        steps = min(max(steps, WAVE_STEPS[0]), WAVE_STEPS[1]) // 2 * 2 + 1
        factors = np.geomspace(*WAVE_SPAN, steps)
        self.steps = steps
        for digit, x, rate in recordings:
            x = bandpass(trim(resample(x, rate, MF_RATE), MF_RATE), MF_RATE)
            for f in factors:
                t = stretch(x, f)
                t = t - t.mean()
                self.wave.append((digit, (t / (np.linalg.norm(t) + 1e-12)).astype(np.float32)))
            for variant, patches in self.patches.items():
                s = log_spectrogram(x, variant == "env")[k : SPEC_BANDS - k]
                frames = s.shape[1]
                for f in SPEC_STRETCHES:
                    length = max(4, int(round(frames * f)))
                    pos = np.linspace(0, frames - 1, length)
                    t = np.stack([np.interp(pos, np.arange(frames), row) for row in s])
                    t = t - t.mean()
                    patches.append((digit, t / (np.linalg.norm(t) + 1e-12)))

    def wave_scores(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per digit and 10 ms step: the best waveform NCC of a template starting there, and
        that template's length in steps."""
        n = len(x)
        frames = (n + HOP - 1) // HOP
        score = np.full((10, frames), -1.0)
        dur = np.ones((10, frames), dtype=np.int64)
        longest = max(len(t) for _, t in self.wave)
        nfft = sfft.next_fast_len(n + longest, real=True)
        X = sfft.rfft(x.astype(np.float32), nfft)
        c1 = np.concatenate([[0.0], np.cumsum(x)])
        c2 = np.concatenate([[0.0], np.cumsum(x * x)])
        chunk = 32
        for lo in range(0, len(self.wave), chunk):
            batch = self.wave[lo : lo + chunk]
            T = np.zeros((len(batch), nfft), dtype=np.float32)
            for i, (_, t) in enumerate(batch):
                T[i, : len(t)] = t
            corr = sfft.irfft(X[None, :] * np.conj(sfft.rfft(T, axis=1)), nfft, axis=1)
            for i, (digit, t) in enumerate(batch):
                L = len(t)
                if L > n:
                    continue
                s1 = c1[L:] - c1[:-L]
                s2 = c2[L:] - c2[:-L]
                norm = np.sqrt(np.maximum(s2 - s1 * s1 / L, 1e-9))
                ncc = corr[i, : n - L + 1] / norm
                m = len(ncc) // HOP
                if m == 0:
                    continue
                pooled = ncc[: m * HOP].reshape(m, HOP).max(axis=1)
                better = pooled > score[digit, :m]
                score[digit, :m][better] = pooled[better]
                dur[digit, :m][better] = max(1, round(L / HOP))
        return score, dur

    def spec_scores(self, x: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
        """Per digit and 10 ms frame: the best spectrogram-patch NCC over stretches and band
        shifts of a template starting there, and that template's length in frames."""
        S = log_spectrogram(x, variant == "env")
        patches = self.patches[variant]
        frames = S.shape[1]
        k = SPEC_SHIFTS
        nb = SPEC_BANDS - 2 * k
        score = np.full((10, frames), -1.0)
        dur = np.ones((10, frames), dtype=np.int64)
        longest = max(t.shape[1] for _, t in patches)
        nf = sfft.next_fast_len(frames + longest, real=True)
        SF = sfft.rfft(S, nf, axis=1)  # (bands, freqs)
        shifted = np.stack([SF[k + s : k + s + nb] for s in range(-k, k + 1)])  # (shifts, nb, F)
        shifted = np.ascontiguousarray(shifted.transpose(2, 0, 1))  # (F, shifts, nb)
        band_sums = [(S[k + s : k + s + nb].sum(axis=0), (S[k + s : k + s + nb] ** 2).sum(axis=0))
                     for s in range(-k, k + 1)]
        norms = {}
        chunk = 64
        for lo in range(0, len(patches), chunk):
            batch = patches[lo : lo + chunk]
            T = np.zeros((len(batch), nb, nf))
            for i, (_, t) in enumerate(batch):
                T[i, :, : t.shape[1]] = t
            TF = np.conj(sfft.rfft(T, axis=2)).transpose(2, 1, 0)  # (F, nb, batch)
            corr = sfft.irfft((shifted @ TF).transpose(2, 1, 0), nf, axis=2)  # (batch, shifts, nf)
            for i, (digit, t) in enumerate(batch):
                L = t.shape[1]
                if L > frames:
                    continue
                if L not in norms:
                    rows = []
                    for p, q in band_sums:
                        s1, s2 = window_sums(p, L), window_sums(q, L)
                        rows.append(np.sqrt(np.maximum(s2 - s1 * s1 / (nb * L), 1e-9)))
                    norms[L] = np.stack(rows)
                ncc = (corr[i, :, : frames - L + 1] / norms[L]).max(axis=0)
                m = len(ncc)
                better = ncc > score[digit, :m]
                score[digit, :m][better] = ncc[better]
                dur[digit, :m][better] = L
        return score, dur


def greedy_picks(score: np.ndarray, dur: np.ndarray, most: int) -> list[tuple[float, int, int]]:
    """Up to `most` (score, frame, digit) picks, best first, none overlapping an earlier pick
    by more than OVERLAP of either's length."""
    score = score.copy()
    frames = score.shape[1]
    t_idx = np.arange(frames)[None, :]
    picks = []
    while len(picks) < most:
        flat = int(np.argmax(score))
        d, t = divmod(flat, frames)
        best = score[d, t]
        if not np.isfinite(best) or best <= -1.0:
            break
        L = dur[d, t]
        picks.append((float(best), t, d))
        # Candidate (d', t', L') overlaps [t, t+L) by more than OVERLAP of the shorter one.
        overlap = np.minimum(t_idx + dur, t + L) - np.maximum(t_idx, t)
        blocked = overlap > OVERLAP * np.minimum(dur, L)
        score[blocked] = -np.inf
    return picks


def readings_by_ratio(picks, shortest: int) -> dict[float, str]:
    out = {}
    base = [p[0] for p in picks[:shortest]]
    median = statistics.median(base) if base else 0.0
    for ratio in RATIOS:
        kept = picks[:shortest] + [p for p in picks[shortest:] if p[0] >= ratio * median]
        kept = sorted(kept, key=lambda p: p[1])
        out[ratio] = "".join(str(p[2]) for p in kept)
    return out


def mf_attack(bank: TemplateBank, x: np.ndarray, rate: int, shortest: int, longest: int):
    x8 = bandpass(resample(x, rate, MF_RATE), MF_RATE)
    out = {}
    for name in ("wave", "spec", "env"):
        score, dur = bank.wave_scores(x8) if name == "wave" else bank.spec_scores(x8, name)
        out[name] = readings_by_ratio(greedy_picks(score, dur, longest), shortest)
    return out


# ---------------------------------------------------------------------------------------------
# The worker processes

_STATE: dict = {}


def init_worker(asr_files, banks):
    _STATE["asr_files"] = asr_files
    _STATE["bank_specs"] = banks
    _STATE["banks"] = {}
    _STATE["rec"] = None


def load_recordings(spec) -> list[tuple[int, np.ndarray, int]]:
    out = []
    for digit, path in spec:
        x, rate = read_wav(path)
        out.append((digit, x, rate))
    return out


def run_task(task):
    kind, key, index, path, extra = task
    started = time.process_time()
    x, rate = read_wav(path)
    if kind == "asr":
        if _STATE["rec"] is None:
            _STATE["rec"] = Recogniser(*_STATE["asr_files"])
        result = asr_attack(_STATE["rec"], x, rate)
    else:
        bank_key, shortest, longest = extra
        if bank_key not in _STATE["banks"]:
            _STATE["banks"][bank_key] = TemplateBank(load_recordings(_STATE["bank_specs"][bank_key]))
        result = mf_attack(_STATE["banks"][bank_key], x, rate, shortest, longest)
    return kind, key, index, result, time.process_time() - started


def python_clip(task):
    """Writes one Python AudioCaptcha clip (run in the pool: the package is slow)."""
    index, digits, directory = task
    from captcha.audio import AudioCaptcha

    data = AudioCaptcha().generate(digits)
    name = f"{index:05}.wav"
    Path(directory, name).write_bytes(bytes(data))
    return index, name, digits


# ---------------------------------------------------------------------------------------------
# The sets


def load_set(directory: Path) -> list[tuple[Path, str]]:
    items = []
    for line in (directory / "answers.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            items.append((directory / parts[0], parts[1]))
    return items


def voices_of(directory: Path, lang: str) -> list[tuple[int, str]]:
    """The shipped recordings of one language: DIR/LANG/VOICE-DIGIT.wav."""
    out = []
    for p in sorted((directory / lang).glob("*.wav")):
        digit = p.stem.rsplit("-", 1)[-1]
        if digit.isdigit() and len(digit) == 1:
            out.append((int(digit), str(p)))
    return out


def python_voices() -> list[tuple[int, str]]:
    import captcha.audio

    data = Path(captcha.audio.DATA_DIR)
    return [(d, str(p)) for d in range(10) for p in sorted((data / str(d)).glob("*.wav"))]


def random_digits(rng, shortest: int, longest: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(shortest, longest)))


# Language tag -> espeak-ng voice (as scripts/record-voices maps them).
ESPEAK_VOICES = {"en": "en-us", "fr": "fr-fr", "pt": "pt-br", "zh": "cmn"}


def espeak(lang: str, text: str, path: Path) -> None:
    # `-w`, not `--stdout`: a WAV written to a pipe has no valid length in its header.
    voice = ESPEAK_VOICES.get(lang, lang)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], capture_output=True, check=True)


def espeak_set(n: int, lang: str, directory: Path, shortest: int, longest: int):
    """N connected digit strings and the isolated digit words (the attacker's templates)
    spoken by espeak-ng's default voice for the language."""
    directory.mkdir(parents=True, exist_ok=True)
    words = directory / "words"
    words.mkdir()
    rng = random.Random(secrets.randbits(64))
    lines = []
    for i in range(n):
        digits = random_digits(rng, shortest, longest)
        name = f"{i:05}.wav"
        espeak(lang, " ".join(digits), directory / name)
        lines.append(f"{name} {digits}\n")
    (directory / "answers.txt").write_text("".join(lines))
    templates = []
    for d in range(10):
        p = words / f"espeak-{d}.wav"
        espeak(lang, str(d), p)
        templates.append((d, str(p)))
    return load_set(directory), templates


def python_speed(seconds: float, directory: Path, shortest: int, longest: int):
    """Times AudioCaptcha.generate for 9-14 digit clips on this one thread for `seconds`;
    the clips become the first members of the python set."""
    from captcha.audio import AudioCaptcha

    gen = AudioCaptcha()
    gen.load()
    rng = random.Random(secrets.randbits(64))
    directory.mkdir(parents=True, exist_ok=True)
    made, spent = [], 0.0
    while spent < seconds:
        digits = random_digits(rng, shortest, longest)
        start = time.perf_counter()
        data = gen.generate(digits)
        spent += time.perf_counter() - start
        name = f"{len(made):05}.wav"
        (directory / name).write_bytes(bytes(data))
        made.append((name, digits, len(data)))
    return made, len(made) / spent


# ---------------------------------------------------------------------------------------------


def pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--lang", default="en")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--digits", default="9-14", help="shortest-longest digits of a clip")
    ap.add_argument("--ours", help="fresh clips (captcha-audio dump)")
    ap.add_argument("--plain", help="reference clips (captcha-audio plain)")
    ap.add_argument("--voices", help="every shipped recording (captcha-audio voices)")
    ap.add_argument("--espeak", type=int, default=0, metavar="N")
    ap.add_argument("--python", type=int, default=0, metavar="N")
    ap.add_argument("--python-seconds", type=float, default=10.0)
    ap.add_argument("--ours-speed", help="a file with the output of `captcha-audio speed`")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shortest, longest = (int(v) for v in args.digits.split("-"))
    english = args.lang == "en"
    t0 = time.perf_counter()

    # (name, items, template bank key or None, run pocketsphinx?)
    sets = []
    banks = {}
    if args.voices:
        banks["shipped"] = voices_of(Path(args.voices), args.lang)
        if not banks["shipped"]:
            print(f"asr-check: no recordings in {args.voices}/{args.lang}", file=sys.stderr)
            return 1
    if args.ours:
        sets.append(("ours", load_set(Path(args.ours)), "shipped" if args.voices else None, english))
    if args.plain:
        sets.append(("plain", load_set(Path(args.plain)), "shipped" if args.voices else None, english))
    if args.espeak:
        print(f"speaking {args.espeak} digit strings with espeak-ng", flush=True)
        items, banks["espeak"] = espeak_set(args.espeak, args.lang, work / "espeak", shortest, longest)
        sets.append(("espeak", items, "espeak", english))

    speed = None
    if args.python:
        pydir = work / "python"
        print(f"timing the Python captcha package's AudioCaptcha for {args.python_seconds:.0f} s "
              f"(one thread, {shortest}-{longest} digits)", flush=True)
        made, rate = python_speed(args.python_seconds, pydir, shortest, longest)
        sizes = [size for _, _, size in made]
        speed = (rate, len(made), sum(sizes) / len(sizes), min(sizes), max(sizes))
        banks["python"] = python_voices()

    asr_files = write_asr_model(work / "asr-model") if english else None
    results = {}  # (set, attack) -> {variant: [reading per clip]}
    times = {}
    with Pool(args.jobs, initializer=init_worker, initargs=(asr_files, banks)) as pool:
        if args.python:
            rng = random.Random(secrets.randbits(64))
            rest = [(i, random_digits(rng, shortest, longest), str(pydir))
                    for i in range(len(made), max(args.python, len(made)))]
            print(f"generating {len(rest)} more Python AudioCaptcha clips ({args.jobs} processes)", flush=True)
            more = pool.map(python_clip, rest)
            lines = [f"{name} {digits}\n" for name, digits, _ in made] + [f"{n} {d}\n" for _, n, d in more]
            (pydir / "answers.txt").write_text("".join(lines[: args.python]))
            sets.append(("python", load_set(pydir), "python", False))

        tasks = []
        for name, items, bank, asr in sets:
            for i, (path, _) in enumerate(items):
                if bank:
                    tasks.append(("mf", name, i, str(path), (bank, shortest, longest)))
                if asr:
                    tasks.append(("asr", name, i, str(path), None))
        print(f"attacking: {len(tasks)} clip-attacks over {args.jobs} processes", flush=True)
        done = 0
        for kind, key, index, result, secs in pool.imap_unordered(run_task, tasks):
            slot = results.setdefault((key, kind), {})
            for variant, reading in result.items():
                slot.setdefault(variant, {})[index] = reading
            times[(key, kind)] = times.get((key, kind), 0.0) + secs
            done += 1
            if done % 100 == 0:
                print(f"  {done}/{len(tasks)} ({time.perf_counter() - t0:.0f} s)", flush=True)

    # Scoring
    # (set, attack) -> (best variant label, headline metrics, {variant label: (metrics, readings)})
    table = {}
    for name, items, bank, asr in sets:
        answers = [a for _, a in items]
        for attack in ("asr", "mf"):
            slot = results.get((name, attack))
            if not slot:
                continue
            per_variant = {}
            most_exact = 0  # over every variant and ratio
            for variant, by_index in slot.items():
                readings = [by_index[i] for i in range(len(items))]
                if attack == "mf":  # pick the attacker's best ratio for this set
                    options = {}
                    for ratio in RATIOS:
                        rs = [r[ratio] for r in readings]
                        options[ratio] = (evaluate(answers, rs), rs)
                        most_exact = max(most_exact, options[ratio][0]["exact"])
                    ratio = max(options, key=lambda r: (options[r][0]["per_digit"], options[r][0]["exact"]))
                    metrics, rs = options[ratio]
                    label = f"{variant} (ratio {ratio:g})"
                else:
                    rs = readings
                    metrics = evaluate(answers, rs)
                    most_exact = max(most_exact, metrics["exact"])
                    label = variant
                per_variant[label] = (metrics, rs)
            best = max(per_variant, key=lambda v: (per_variant[v][0]["per_digit"], per_variant[v][0]["exact"]))
            headline = dict(per_variant[best][0], exact=most_exact,
                            chance=chance_level(answers, per_variant[best][1]))
            table[(name, attack)] = (best, headline, per_variant)
            with open(work / f"readings-{name}-{attack}.tsv", "w") as f:
                labels = list(per_variant)
                f.write("clip\tanswer\t" + "\t".join(labels) + "\n")
                for i, (path, answer) in enumerate(items):
                    f.write(f"{Path(path).name}\t{answer}\t" + "\t".join(per_variant[l][1][i] for l in labels) + "\n")

    attack_names = {"asr": "(a) pocketsphinx", "mf": "(b) matched filter"}
    print()
    print("Machine listening (exact = clips read exactly; per-digit = alignment matches / longer")
    print("of answer and reading, averaged over clips; chance = per-digit of random strings of")
    print("the readings' lengths; len = mean reading length / mean answer length; each the best")
    print("of the attack's variants)")
    print(f"{'set':<8} {'attack':<20} {'clips':>5} {'exact':>12} {'per-digit':>9} {'chance':>7} {'len':>11}  best variant")
    for (name, attack), (best, m, _) in table.items():
        exact = f"{m['exact']} ({pct(m['exact'] / max(m['n'], 1))})"
        print(f"{name:<8} {attack_names[attack]:<20} {m['n']:>5} {exact:>12} {pct(m['per_digit']):>9} "
              f"{pct(m['chance']):>7} {m['len']:>5.1f}/{m['answer_len']:<5.1f}  {best}")
    print(f"targets: ours at most {pct(TARGET_EXACT)} exact and {pct(TARGET_PER_DIGIT)} per digit for both "
          f"attacks (mind the chance column);")
    print(f"the references at least {pct(REFERENCE_ASR)} per digit by pocketsphinx (plain, espeak) and "
          f"{pct(REFERENCE_MF)} by the matched filter (plain, python)")
    if not english:
        print(f"(a) pocketsphinx: English only, not run for {args.lang}")
    print()
    print("every variant (exact / per-digit):")
    for (name, attack), (_, _, per_variant) in table.items():
        parts = "   ".join(f"{v}: {m['exact']} / {pct(m['per_digit'])}" for v, (m, _) in per_variant.items())
        print(f"  {name:<8} {attack:<4} {parts}")
    print()
    print("examples (answer: best variant's reading):")
    for (name, attack), (best, _, per_variant) in table.items():
        rs = per_variant[best][1]
        items = next(s[1] for s in sets if s[0] == name)
        shown = "  ".join(f"{a}:{r or '-'}" for (_, a), r in list(zip(items, rs))[:3])
        print(f"  {name:<8} {attack:<4} {shown}")
    print(f"(every reading: {work}/readings-*.tsv)")
    print()
    spent = ", ".join(f"{name} {attack} {secs:.0f} s" for (name, attack), secs in sorted(times.items()))
    print(f"cpu time of the attacks: {spent}")
    print(f"wall time of the set-up and the attacks: {time.perf_counter() - t0:.0f} s")

    print()
    if args.ours_speed and Path(args.ours_speed).exists():
        for line in Path(args.ours_speed).read_text().splitlines():
            if line.strip():
                print(f"ours (captcha-audio speed): {line.strip()}")
    if speed:
        rate, count, mean, lo, hi = speed
        print(f"python captcha AudioCaptcha: {rate:.2f} clips/s (one thread, {count} clips of "
              f"{shortest}-{longest} digits), WAV {mean / 1024:.0f} KiB average ({lo / 1024:.0f}-{hi / 1024:.0f})")

    # Verdicts
    failures = []
    for attack in ("asr", "mf"):
        if ("ours", attack) in table:
            m = table[("ours", attack)][1]
            if m["exact"] / max(m["n"], 1) > TARGET_EXACT:
                failures.append(f"ours: {attack_names[attack]} reads {pct(m['exact'] / m['n'])} exactly (target <= {pct(TARGET_EXACT)})")
            if m["per_digit"] > TARGET_PER_DIGIT:
                failures.append(f"ours: {attack_names[attack]} reads {pct(m['per_digit'])} of the digits (target <= {pct(TARGET_PER_DIGIT)})")
    for attack, floor, refs in (("asr", REFERENCE_ASR, ("plain", "espeak")), ("mf", REFERENCE_MF, ("plain", "python"))):
        for s in refs:
            if (s, attack) in table and table[(s, attack)][1]["per_digit"] < floor:
                failures.append(f"reference: {attack_names[attack]} reads {pct(table[(s, attack)][1]['per_digit'])} of "
                                f"the {s} digits (needs >= {pct(floor)}): the attack does not work, so what it "
                                f"reads of ours means little")
    if ("ours", "asr") in table or ("ours", "mf") in table:
        if not any(k[0] in ("plain", "espeak", "python") for k in table):
            failures.append("no reference set was attacked")
    print()
    if failures:
        for f in failures:
            print(f"FAIL {f}")
        return 1
    print("OK: ours within the targets for both attacks, and the references show the attacks work")
    return 0


if __name__ == "__main__":
    sys.exit(main())
