"""Constructed songs for the fit-metric tests: a sung-like melody over chords and a beat, all known exactly.

`song(tonic, tempo)` renders 8 s at 16 kHz: a I-IV-V-I progression in `tonic` major, one chord per bar of
four beats (sustained harmonic tones plus a bass note on every beat), a click on every beat, and a vocal
melody of chord tones whose long notes start on beats and short ones on off-beats, with rests between
phrases. Every pitch is built from `tonic`, so `song(tonic + 1)` is the same song exactly a semitone up.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000
SECONDS = 8.0
PROGRESSION = ((0, 4, 7), (5, 9, 0), (7, 11, 2), (0, 4, 7))  # I IV V I, pitch classes above the tonic


def tone(midi: float, seconds: float, *, harmonics: int = 6, attack: float = 0.02) -> np.ndarray:
    """A harmonic tone with decaying partials and a short attack/release `[T]`."""
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, harmonics + 1) if f0 * h < RATE / 2)
    envelope = np.minimum(1.0, np.minimum(t / attack, (seconds - t) / attack))
    return (wave * envelope).astype(np.float64)


def _place(track: np.ndarray, start: float, sound: np.ndarray) -> None:
    begin = int(start * RATE)
    end = min(len(track), begin + len(sound))
    track[begin:end] += sound[: end - begin]


def song(tonic: int = 0, tempo: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """`(vocal [T], instrumental [T])` at `RATE` (see the module docstring)."""
    beat = 60.0 / tempo
    length = int(SECONDS * RATE)
    vocal, instrumental = np.zeros(length), np.zeros(length)
    rng = np.random.default_rng(0)
    click = rng.standard_normal(int(0.03 * RATE)) * np.exp(-np.arange(int(0.03 * RATE)) / (0.005 * RATE))
    bar, time = 0, 0.0
    while time + 4 * beat <= SECONDS + 1e-9:
        chord = PROGRESSION[bar % len(PROGRESSION)]
        for pitch in chord:
            _place(instrumental, time, 0.3 * tone(60 + tonic + pitch, 4 * beat))
        for b in range(4):
            _place(instrumental, time + b * beat, 0.4 * tone(36 + tonic + chord[0], 0.9 * beat))
            _place(instrumental, time + b * beat, 0.5 * click)
        # melody: a long chord tone on beats 1 and 3, a short passing note on the off-beat after beat 2,
        # a rest on beat 4 (phrase end)
        notes = ((0.0, 1.4, chord[0]), (1.5, 0.45, chord[1]), (2.0, 1.4, chord[2]))
        for start, duration, pitch in notes:
            _place(vocal, time + start * beat, 0.5 * tone(72 + tonic + pitch, duration * beat, harmonics=8))
        time += 4 * beat
        bar += 1
    return vocal.astype(np.float32), instrumental.astype(np.float32)
