"""Mixing a vocal with its generated accompaniment: loudness balance, then a look-ahead peak limiter.

Levels follow ITU-R BS.1770 integrated loudness (pyloudnorm): the accompaniment is set `balance_db` below
the vocal (pop mixes keep the voice on top; 2-4 dB is typical), and the mix is brought to a target
loudness. A brick-wall limiter then guarantees no sample exceeds the ceiling without the audible
distortion of clipping.

The limiter computes, per sample, the gain that would put it exactly at the ceiling, takes the minimum of
that over a window of +-L samples, and smooths the result with a moving average of length L. Every averaged
value is a mean of minima over windows that contain the peak, so the smoothed gain at a peak is never above
the gain the peak needs: peaks are caught fully (look-ahead), and gain changes take ~L samples (no clicks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyloudnorm
from scipy.ndimage import minimum_filter1d, uniform_filter1d

SILENCE_LUFS = -70.0


@dataclass(frozen=True)
class MixSettings:
    balance_db: float = 3.0  # accompaniment this many LU below the vocal
    target_lufs: float = -14.0  # loudness of the mix (streaming-platform level)
    ceiling_db: float = -1.0  # true-peak-ish ceiling (sample peak) of the mix and the stem
    lookahead_ms: float = 5.0


def loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of `[C, T]` audio; -70 for silence or audio shorter than one 400 ms block."""
    if samples.shape[-1] < int(0.4 * sample_rate) + 1:
        rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0
        return 20 * np.log10(rms) - 0.691 if rms > 1e-9 else SILENCE_LUFS  # short input: RMS approximation
    value = pyloudnorm.Meter(sample_rate).integrated_loudness(samples.T.astype(np.float64))
    return float(value) if np.isfinite(value) else SILENCE_LUFS


def limit(samples: np.ndarray, sample_rate: int, ceiling_db: float = -1.0, lookahead_ms: float = 5.0) -> np.ndarray:
    """Brick-wall look-ahead limiter on `[C, T]` audio (channels linked); output peak <= ceiling."""
    ceiling = 10 ** (ceiling_db / 20)
    peak = np.abs(samples).max(axis=0) if samples.size else np.zeros(0)
    if peak.size == 0 or peak.max() <= ceiling:
        return samples.astype(np.float32)
    needed = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
    window = max(1, int(lookahead_ms * 1e-3 * sample_rate))
    gain = minimum_filter1d(needed, size=2 * window + 1, mode="nearest")
    gain = uniform_filter1d(gain, size=window + 1, mode="nearest")
    limited = samples * gain
    # Floating-point rounding in the moving average can leave a peak a hair above the ceiling.
    return np.clip(limited, -ceiling, ceiling).astype(np.float32)


def mix(
    vocal: np.ndarray, accompaniment: np.ndarray, sample_rate: int, settings: MixSettings | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Balance and limit; returns `(mix, accompaniment_stem)`, both `[C, T]` float32 at the vocal's level.

    `vocal` and `accompaniment` are `[C, T]` with the same shape. The stem is returned with the gain it has
    inside the mix (so stem + vocal ~= mix before limiting), itself limited to the ceiling.
    """
    settings = settings or MixSettings()
    if vocal.shape != accompaniment.shape:
        raise ValueError(f"vocal {vocal.shape} and accompaniment {accompaniment.shape} differ in shape")
    vocal_lufs = loudness(vocal, sample_rate)
    accompaniment_lufs = loudness(accompaniment, sample_rate)
    if accompaniment_lufs > SILENCE_LUFS:
        reference = vocal_lufs if vocal_lufs > SILENCE_LUFS else settings.target_lufs
        accompaniment = accompaniment * 10 ** ((reference - settings.balance_db - accompaniment_lufs) / 20)
    combined = vocal + accompaniment
    combined_lufs = loudness(combined, sample_rate)
    gain = 10 ** ((settings.target_lufs - combined_lufs) / 20) if combined_lufs > SILENCE_LUFS else 1.0
    mixed = limit(combined * gain, sample_rate, settings.ceiling_db, settings.lookahead_ms)
    stem = limit(accompaniment * gain, sample_rate, settings.ceiling_db, settings.lookahead_ms)
    return mixed, stem
