"""Deterministic test signals: sung-like harmonic tones with vibrato and a syllable-like envelope."""

from __future__ import annotations

import numpy as np
import torch


def sung_tone(f0: float, seconds: float = 1.0, sample_rate: int = 16_000, seed: int = 0) -> torch.Tensor:
    """`[1, 1, T]` float32: 10 decaying harmonics, 5.5 Hz vibrato, breath noise, attack/release envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    freq = f0 * (1.0 + 0.012 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(freq) / sample_rate
    x = sum(0.6**h * np.sin((h + 1) * phase) for h in range(10))
    envelope = np.minimum(1.0, np.minimum(t / 0.05, (seconds - t) / 0.1).clip(0.0))
    x = 0.2 * envelope * x + 0.003 * rng.standard_normal(t.size)
    return torch.tensor(x, dtype=torch.float32)[None, None]


def midi_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)
