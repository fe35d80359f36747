"""Signal makers of the pairs tests (the tiny synthetic corpus is `tests/pipelines/conftest.py`'s)."""

from __future__ import annotations

import numpy as np


def sung(seconds: float, rate: int, *, f0: float = 220.0, level_db: float = -20.0) -> np.ndarray:
    """A vowel-like harmonic tone with vibrato, stereo [2, T], at `level_db` dBFS RMS."""
    t = np.arange(int(seconds * rate)) / rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 8))
    tone *= 10 ** (level_db / 20) / np.sqrt(np.mean(tone**2))
    return np.stack([tone, tone]).astype(np.float32)


def noise(seconds: float, rate: int, *, level_db: float = -20.0, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((2, int(seconds * rate)))
    return (x * 10 ** (level_db / 20)).astype(np.float32)
