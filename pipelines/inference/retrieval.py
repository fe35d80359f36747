"""The retrieval baseline engine: a library instrumental matched to the vocal's key and tempo, as in SingSong.

SingSong (Donahue et al., 2023, Sec. 5.2) compared its model against a "retrieval" baseline: estimate the
vocal's key and tempo, pick the library instrumental closest in key (after transposition) and tempo, shift
and stretch it to match, and align its beats to the vocal. Listeners preferred SingSong 66% of the time over
it. It is the bar a generative model has to clear, so it runs through the same `AccompanimentEngine`
interface as the model (`--engine retrieval`, the worker's `SINGSONG_ENGINE=retrieval`).

Per vocal (mono analysis, `pipelines/evaluation/fit.py`):

1. **Analyse**: melody (pitch class + note onsets, the melody tokenizer), key = Krumhansl-Kessler estimate on
   the pitch-class histogram, tempo = autocorrelation of the note-onset train.
2. **Choose**: for each library entry, the transposition to the vocal's scale (relative major/minor share
   it: both are matched by their relative major, `|shift| <= 6` semitones) and the metrical level of the
   vocal tempo (x0.5, x1, x2) closest to the entry's tempo. Cost = `|shift| / 6 + |log2(tempo ratio)| / log2(1.15)
   + 0.25` if the modes differ (a minor song over a major backing of the same scale is in key but brighter).
   Take `t` of a request uses the `t`-th cheapest entry, so takes are the next-best matches (the seed is
   irrelevant: retrieval is deterministic).
3. **Transform**: Rubber Band pitch-shift + time-stretch in one pass (`stretch.py`).
4. **Align**: the beat grid is slid over one bar (10 ms steps) to where the vocal's note onsets, weighted by
   note duration, best meet the beats (downbeats count 1.5x): the first phrase's long notes land on beats.
5. **Loop or trim** whole bars to the vocal's length (20 ms crossfades at the seams), resample, match
   channels, and **mix** exactly like the model engine (`mixing.mix`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.audio import Audio, load_audio, resample, to_channels
from pipelines.evaluation.fit import Key, Melody, estimate_key, melody_tempo, vocal_melody
from pipelines.inference.engine import (
    AccompanimentEngine,
    GenerationOptions,
    ProgressCallback,
    Take,
    take_rows,
    with_melody_checks,
)
from pipelines.inference.mixing import MixSettings, mix
from pipelines.inference.retrieval_library import LibraryEntry, RetrievalLibrary
from pipelines.inference.stretch import Method, shift_and_stretch

#: Tempo assumed for a vocal with too few note onsets to estimate one (a typical song tempo).
FALLBACK_TEMPO = 100.0
TEMPO_STEP = math.log2(1.15)  # a 15% stretch costs as much as a 6-semitone shift
MODE_PENALTY = 0.25
CROSSFADE_SECONDS = 0.02


@dataclass(frozen=True)
class VocalAnalysis:
    melody: Melody
    key: Key
    tempo: float  # beats per minute; FALLBACK_TEMPO when the vocal has too few notes


@dataclass(frozen=True)
class Match:
    entry: LibraryEntry
    semitones: int  # transposition applied to the entry
    target_tempo: float  # the vocal tempo level the entry is stretched to
    cost: float

    @property
    def rate(self) -> float:
        """Time-stretch rate (> 1 speeds the entry up)."""
        return self.target_tempo / self.entry.tempo


def analyse_vocal(samples: np.ndarray, sample_rate: int) -> VocalAnalysis:
    """Mono vocal `[T]` -> its melody, estimated key and tempo."""
    melody = vocal_melody(samples, sample_rate)
    tempo = melody_tempo(melody)
    return VocalAnalysis(melody, estimate_key(melody.histogram()), tempo if tempo > 0 else FALLBACK_TEMPO)


def rank_matches(analysis: VocalAnalysis, entries: Sequence[LibraryEntry]) -> list[Match]:
    """Every library entry with its transposition, tempo level and cost, cheapest first (ties: file name)."""
    matches = []
    for entry in entries:
        semitones = (analysis.key.relative_major - entry.key.relative_major + 6) % 12 - 6  # in [-6, 5]
        levels = [analysis.tempo * level for level in (0.5, 1.0, 2.0)]
        target = min(levels, key=lambda t: abs(math.log2(t / entry.tempo)))
        cost = abs(semitones) / 6 + abs(math.log2(target / entry.tempo)) / TEMPO_STEP
        cost += MODE_PENALTY if entry.mode != analysis.key.mode else 0.0
        matches.append(Match(entry, semitones, target, cost))
    return sorted(matches, key=lambda m: (m.cost, m.entry.file))


def best_offset(
    onset_times: np.ndarray, weights: np.ndarray, beats: np.ndarray, beats_per_bar: int, tolerance: float = 0.07
) -> float:
    """Seconds to delay the instrumental so its beats meet the vocal's weighted onsets (module docstring, 4).

    Each onset earns `weight x exp(-d^2 / 2 (tolerance / 2)^2)` for its distance `d` to the nearest beat.

    `beats [N]` are the (stretched) instrumental's beat times from its start; the result is in `[0, bar)`.
    """
    if len(beats) < 2 or len(onset_times) == 0:
        return 0.0
    period = float(np.median(np.diff(beats)))
    bar = period * beats_per_bar
    grid = beats[0] + np.arange(-1, math.ceil((onset_times.max() + bar) / period) + 1) * period  # extended
    downbeat = (np.arange(len(grid)) - 1) % beats_per_bar == 0
    offsets = np.arange(0.0, bar, 0.01)
    scores = np.zeros(len(offsets))
    for i, offset in enumerate(offsets):
        distance = np.abs(onset_times[:, None] - (grid[None, :] + offset))
        nearest = distance.argmin(axis=1)
        # a Gaussian credit rather than a hit within the tolerance: one best offset, not a plateau
        credit = np.exp(-0.5 * (distance[np.arange(len(onset_times)), nearest] / (tolerance / 2)) ** 2)
        scores[i] = float((weights * credit * np.where(downbeat[nearest], 1.5, 1.0)).sum())
    return float(offsets[int(np.argmax(scores))])


def loop_to_length(samples: np.ndarray, loop_frames: int, offset: int, length: int, fade: int) -> np.ndarray:
    """`[C, T]` -> `[C, length]`: the first `loop_frames` repeated, delayed by `offset` frames (the loop's
    end wraps around before it), with `fade`-frame crossfades into each repeat (from the audio past the loop
    end when there is some, so ringing notes fade rather than cut)."""
    channels = samples.shape[0]
    loop_frames = max(1, min(loop_frames, samples.shape[1]))
    out = np.zeros((channels, length), np.float32)
    start = offset % loop_frames - loop_frames if offset % loop_frames else 0
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32) if fade > 0 else np.zeros(0, np.float32)
    position = start
    while position < length:
        piece = samples[:, : loop_frames + fade].copy()
        if fade and position > start:  # fade this repeat in over the previous one's tail
            piece[:, :fade] *= ramp
        if fade and piece.shape[1] > loop_frames:  # fade the tail out under the next repeat
            piece[:, loop_frames:] *= ramp[::-1][: piece.shape[1] - loop_frames]
        lo, hi = max(0, position), min(length, position + piece.shape[1])
        if hi > lo:
            out[:, lo:hi] += piece[:, lo - position : hi - position]
        position += loop_frames
    return out


class RetrievalEngine(AccompanimentEngine):
    """SingSong's retrieval baseline behind the engine interface (see the module docstring)."""

    max_batch_size = 8

    def __init__(
        self, library: RetrievalLibrary, *, mix_settings: MixSettings | None = None, method: Method = "auto"
    ) -> None:
        self.library = library
        self.mix_settings = mix_settings or MixSettings()
        self.method = method

    @classmethod
    def from_library(cls, directory: str | Path | None = None) -> RetrievalEngine:
        return cls(RetrievalLibrary.load(directory))

    def accompany_batch(
        self,
        vocals: Sequence[Audio],
        options: Sequence[GenerationOptions],
        progress: ProgressCallback | None = None,
    ) -> list[list[Take]]:
        rows = take_rows(vocals, options)
        results: list[list[Take]] = [[] for _ in vocals]
        analyses: dict[int, tuple[VocalAnalysis, list[Match]]] = {}
        for done, (index, take, seed) in enumerate(rows):
            vocal = vocals[index]
            if index not in analyses:
                analysis = analyse_vocal(vocal.samples.mean(axis=0), vocal.sample_rate)
                analyses[index] = (analysis, rank_matches(analysis, self.library.entries))
            analysis, matches = analyses[index]
            match = matches[take % len(matches)]
            accompaniment = self.render(match, analysis, vocal)
            mixed, stem = mix(vocal.samples, accompaniment, vocal.sample_rate, self.mix_settings)
            results[index].append(Take(stem, mixed, vocal.sample_rate, seed, take))
            if progress is not None:
                progress((done + 1) / len(rows))
        return with_melody_checks(vocals, results)

    def render(self, match: Match, analysis: VocalAnalysis, vocal: Audio) -> np.ndarray:
        """The matched entry transposed, stretched, aligned and looped: `[C_vocal, T_vocal]` at the vocal's rate."""
        source = load_audio(self.library.path(match.entry))
        rate = source.sample_rate
        bar = 60.0 / match.target_tempo * match.entry.beats_per_bar
        # Only the bars the vocal needs (its length + one bar of alignment slack + one spare for the crossfade
        # tail) are stretched: a short vocal does not pay for the whole library clip.
        bars_needed = math.ceil(vocal.duration / bar) + 2
        crop = min(source.num_frames, round((bars_needed * bar * match.rate + 0.1) * rate))
        shifted = shift_and_stretch(
            source.samples[:, :crop], rate, rate=match.rate, semitones=match.semitones, method=self.method
        )
        beats = np.asarray(match.entry.beats) / match.rate
        whole_bars = max(1, int((shifted.shape[1] / rate - 1e-3) // bar))
        melody = analysis.melody
        offset = best_offset(melody.onset_times, melody.note_durations(), beats, match.entry.beats_per_bar)
        length = math.ceil(vocal.num_frames * rate / vocal.sample_rate)
        fade = int(CROSSFADE_SECONDS * rate)
        looped = loop_to_length(shifted, round(whole_bars * bar * rate), round(offset * rate), length, fade)
        audio = resample(looped, rate, vocal.sample_rate)
        if audio.shape[-1] < vocal.num_frames:
            audio = np.pad(audio, ((0, 0), (0, vocal.num_frames - audio.shape[-1])))
        return to_channels(audio[:, : vocal.num_frames], vocal.channels).astype(np.float32)


def load_engine(model_dir: str | Path | None = None, device: str = "cpu") -> RetrievalEngine:
    """Factory for the engine loader (`SINGSONG_ENGINE=retrieval`): `model_dir` is a library folder (None:
    the bundled library); `device` is unused (retrieval runs on the CPU)."""
    del device
    return RetrievalEngine.from_library(model_dir)
