"""Melody coverage (`models/melody.py`) on sung vocals, speech, noise and silence, against simpler measures.

The warning "little or no sung melody" (`LOW_MELODY_COVERAGE`) is only as good as the gap between the
groups it separates. This prints, per group, min / median / max of three measures computed from the same
melody tokens in the same run:

* **voiced**: the share of voiced frames (the baseline: speech is voiced too),
* **held runs**: the share of frames in pitch-class runs >= 160 ms, with no steadiness test,
* **coverage**: `melody_coverage` (held runs inside steady passages).

Groups: the example vocal, corpus vocals (`--corpus DIR`, every `*/song_*/vocals.flac` of `--splits`), the
committed speech fixtures, a grid of espeak-ng speech (5 voices x 3 rates x 2 texts; skipped when espeak-ng
is missing), sung and spoken clips with white noise at 20 and 10 dB SNR, white noise, silence. Also the cost
of the measure against the tokenizer's on the example vocal.

    .venv/bin/python benchmarks/melody_coverage.py [--corpus data/synth] [--splits test,valid] [--max-songs 80]

Measured on the 2-core reference machine (default arguments; 56 + 71 corpus vocals; min / median / max):

    group                                 n   voiced                  held runs >= 160 ms     coverage
    example vocal                         1   0.593                   0.570                   0.570
    corpus vocals, test                  56   0.584 / 0.743 / 0.914   0.546 / 0.718 / 0.896   0.528 / 0.718 / 0.896
    corpus vocals, valid                 71   0.510 / 0.770 / 0.910   0.500 / 0.746 / 0.884   0.500 / 0.746 / 0.884
    corpus vocals +50 cents (20)         20   0.574 / 0.741 / 0.898   0.542 / 0.706 / 0.876   0.496 / 0.706 / 0.876
    speech fixtures (tests/fixtures)      2   0.592 / 0.611 / 0.630   0.142 / 0.207 / 0.272   0.000 / 0.000 / 0.000
    espeak-ng speech grid                30   0.612 / 0.694 / 0.802   0.164 / 0.335 / 0.544   0.000 / 0.000 / 0.261
    espeak-ng speech + noise 20 dB       30   0.599 / 0.691 / 0.817   0.103 / 0.338 / 0.547   0.000 / 0.000 / 0.319
    espeak-ng speech + noise 10 dB       30   0.558 / 0.644 / 0.774   0.074 / 0.295 / 0.522   0.000 / 0.000 / 0.289
    corpus vocals + noise 10 dB          20   0.618 / 0.783 / 0.932   0.582 / 0.751 / 0.914   0.582 / 0.751 / 0.914
    white noise, silence                      0                       0                       0

Voicing cannot tell speech from song, held runs alone overlap (speech up to 0.55, song from 0.50); coverage
puts speech at median 0 (max 0.32) and song at >= 0.50. `--no-retune` (no tuning correction): corpus vocals
+50 cents drop to 0.000 / 0.143 / 0.570, speech max 0.113 (0.165 with noise). Cost on the 12 s example
vocal: tokenizer 23.6 ms, coverage on its tokens 0.14 ms (0.006x).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
TEXTS = (
    "The quick brown fox jumps over the lazy dog. Please send the report to the office before noon on Friday. "
    "We will meet again next week to talk about the new project.",
    "Good morning everyone, and welcome to the meeting. Today we are going to look at the results from last "
    "year, and then we will discuss the plans for the summer.",
)
VOICES = ("en-us", "en-gb+f3", "en-gb-scotland+m2", "en-us+f4", "en-029")
RATES = (110, 140, 175)


def espeak_clips() -> list[tuple[np.ndarray, int]]:
    """The speech grid (empty without espeak-ng)."""
    import soundfile as sf

    if shutil.which("espeak-ng") is None:
        return []
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for voice in VOICES:
            for rate in RATES:
                for i, text in enumerate(TEXTS):
                    path = Path(tmp) / f"{voice}-{rate}-{i}.wav"
                    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(path), text], check=True)
                    samples, sample_rate = sf.read(path, dtype="float32")
                    clips.append((samples, sample_rate))
    return clips


RETUNE = True


def measures(samples: np.ndarray, sample_rate: int) -> tuple[float, float, float]:
    from core.audio import resample
    from models.melody import UNVOICED, MelodyCoverageConfig, MelodyTokenizer, held_notes, melody_coverage, retuned

    tokenizer = MelodyTokenizer()
    mono = resample(samples.mean(axis=0) if samples.ndim == 2 else samples, sample_rate, 16000)
    wav = torch.from_numpy(np.ascontiguousarray(retuned(mono, 16000) if RETUNE else mono))[None, None]
    tokens = tokenizer.encode(wav)
    held = held_notes(tokens, 25.0, MelodyCoverageConfig().min_note_seconds)
    return float((tokens != UNVOICED).float().mean()), float(held.float().mean()), float(melody_coverage(tokens)[0])


def detuned(samples: np.ndarray, sample_rate: int, cents: float) -> tuple[np.ndarray, int]:
    """Every frequency up by `cents` (and 2.9 % shorter for 50 cents): a singer off standard tuning."""
    from core.audio import resample

    return resample(samples, round(sample_rate * 2 ** (cents / 1200)), sample_rate), sample_rate


def with_noise(samples: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rms = float(np.sqrt(np.mean(samples**2)))
    noise = np.random.default_rng(seed).standard_normal(samples.shape).astype(np.float32)
    return (samples + noise * rms * 10 ** (-snr_db / 20)).astype(np.float32)


def report(name: str, clips: list[tuple[np.ndarray, int]]) -> None:
    if not clips:
        print(f"{name:34s} (none)")
        return
    values = np.array([measures(samples, rate) for samples, rate in clips])
    cells = [f"{v.min():.3f} / {np.median(v):.3f} / {v.max():.3f}" for v in values.T]
    print(f"{name:34s} {len(clips):4d}   " + "   ".join(f"{c:21s}" for c in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "synth")
    parser.add_argument("--splits", default="test,valid")
    parser.add_argument("--max-songs", type=int, default=80, help="per split")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-retune", action="store_true", help="skip the tuning correction (melody_coverage_of)")
    args = parser.parse_args()
    global RETUNE
    RETUNE = not args.no_retune
    torch.set_num_threads(args.threads)
    from core.audio import load_audio
    from models.melody import LOW_MELODY_COVERAGE, MelodyTokenizer, melody_coverage

    def load(path: Path) -> tuple[np.ndarray, int]:
        audio = load_audio(path, channels=1)
        return audio.samples[0], audio.sample_rate

    example = load(ROOT / "pipelines" / "inference" / "examples" / "vocal.flac")
    speech = [load(p) for p in sorted((ROOT / "tests" / "fixtures" / "speech").glob("*.opus"))]
    grid = espeak_clips()
    rng = np.random.default_rng(0)
    print(f"threshold LOW_MELODY_COVERAGE = {LOW_MELODY_COVERAGE}; cells: min / median / max")
    print(f"{'group':34s} {'n':>4s}   {'voiced':21s}   {'held runs >= 160 ms':21s}   coverage")
    report("example vocal", [example])
    sung = []
    for split in args.splits.split(","):
        songs = sorted((args.corpus / split).glob("song_*/vocals.flac"))[: args.max_songs]
        clips = [load(p) for p in songs]
        sung += clips
        report(f"corpus vocals, {split}", clips)
    report("corpus vocals +50 cents (20)", [detuned(s, r, 50) for s, r in sung[:20]])
    report("corpus vocals +25 cents (20)", [detuned(s, r, 25) for s, r in sung[:20]])
    report("speech fixtures (tests/fixtures)", speech)
    report("espeak-ng speech grid", grid)
    for snr in (20, 10):
        report(f"corpus vocals + noise {snr} dB", [(with_noise(s, snr, i), r) for i, (s, r) in enumerate(sung[:20])])
        report(f"espeak-ng speech + noise {snr} dB", [(with_noise(s, snr, i), r) for i, (s, r) in enumerate(grid)])
    report("white noise (5 x 10 s)", [(rng.standard_normal(160_000).astype(np.float32) * 0.1, 16000) for _ in range(5)])
    report("silence (10 s)", [(np.zeros(160_000, np.float32), 16000)])

    tokenizer = MelodyTokenizer()
    wav = torch.from_numpy(
        load_audio(ROOT / "pipelines" / "inference" / "examples" / "vocal.flac", sample_rate=16000, channels=1).samples
    )
    start = time.perf_counter()
    for _ in range(10):
        tokens = tokenizer.encode(wav[None])
    encode_s = (time.perf_counter() - start) / 10
    start = time.perf_counter()
    for _ in range(10):
        melody_coverage(tokens)
    coverage_s = (time.perf_counter() - start) / 10
    print(
        f"cost on the 12 s example: tokenizer {encode_s * 1000:.1f} ms, coverage on its tokens "
        f"{coverage_s * 1000:.2f} ms ({coverage_s / encode_s:.3f}x the tokenizer)"
    )


if __name__ == "__main__":
    main()
