"""Loudness normalisation of training windows (ITU-R BS.1770-4 integrated loudness, via pyloudnorm).

Modes:

* `"separate"` (default): vocals and instrumental are each brought to `target_lufs`. Each is a model input or
  target of its own downstream (codec and semantic tokens are computed per stem), and a singer's take at
  inference is normalised the same way. The original balance is not lost: the window's stats keep both
  loudnesses and `vocal_to_instrumental_db`, from which the mix can be rebuilt;
* `"joint"`: one gain for both, chosen so that their sum reaches `target_lufs` (keeps the mix balance);
* `"none"`: unchanged.

A gain that would push a peak above `peak` is reduced to fit (`peak_limited` in the stats): no clipping in the
16-bit window files. A silent signal (loudness below -70 LUFS, the BS.1770 absolute gate) gets no gain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

SILENCE_LUFS = -70.0


@dataclass(frozen=True)
class LoudnessSettings:
    mode: str = "separate"  # separate | joint | none
    target_lufs: float = -16.0
    peak: float = 0.99

    def validate(self) -> None:
        if self.mode not in ("separate", "joint", "none"):
            raise ValueError(f"loudness mode must be separate, joint or none (got {self.mode!r})")
        if not -60.0 <= self.target_lufs <= 0.0 or not 0.0 < self.peak <= 1.0:
            raise ValueError("target loudness must be in -60..0 LUFS and the peak in (0, 1]")


@functools.lru_cache(maxsize=8)
def _meter(sample_rate: int):  # type: ignore[no-untyped-def]
    import pyloudnorm

    return pyloudnorm.Meter(sample_rate)


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float | None:
    """LUFS of [C, T] audio (at least 0.4 s), or None when silent (below the absolute gate)."""
    x = np.asarray(samples, dtype=np.float64)
    if x.shape[-1] < int(0.4 * sample_rate) + 1:
        raise ValueError("integrated loudness needs at least 0.4 s of audio")
    value = _meter(sample_rate).integrated_loudness(x.T)
    return float(value) if np.isfinite(value) and value > SILENCE_LUFS else None


def _limited_gain_db(gain_db: float, *signals: np.ndarray, peak: float) -> tuple[float, bool]:
    current = max(float(np.abs(s).max()) for s in signals)
    if current <= 0.0:
        return 0.0, False
    ceiling_db = 20 * np.log10(peak / current)
    return (ceiling_db, True) if gain_db > ceiling_db else (gain_db, False)


def normalise_pair(
    vocals: np.ndarray, instrumental: np.ndarray, sample_rate: int, settings: LoudnessSettings
) -> tuple[np.ndarray, np.ndarray, dict[str, float | bool | None]]:
    """Apply the gains of `settings.mode`; returns (vocals, instrumental, stats) (stats: loudness *before*)."""
    vocals_lufs = integrated_loudness(vocals, sample_rate)
    instrumental_lufs = integrated_loudness(instrumental, sample_rate)
    stats: dict[str, float | bool | None] = {
        "vocals_lufs": vocals_lufs,
        "instrumental_lufs": instrumental_lufs,
        "vocal_to_instrumental_db": (vocals_lufs - instrumental_lufs)
        if vocals_lufs is not None and instrumental_lufs is not None
        else None,
    }
    v_gain = i_gain = 0.0
    v_limited = i_limited = False
    if settings.mode == "separate":
        if vocals_lufs is not None:
            v_gain, v_limited = _limited_gain_db(settings.target_lufs - vocals_lufs, vocals, peak=settings.peak)
        if instrumental_lufs is not None:
            i_gain, i_limited = _limited_gain_db(
                settings.target_lufs - instrumental_lufs, instrumental, peak=settings.peak
            )
    elif settings.mode == "joint":
        mix_lufs = integrated_loudness(vocals + instrumental, sample_rate)
        if mix_lufs is not None:
            v_gain, v_limited = _limited_gain_db(
                settings.target_lufs - mix_lufs, vocals, instrumental, vocals + instrumental, peak=settings.peak
            )
            i_gain, i_limited = v_gain, v_limited
    stats.update(vocals_gain_db=v_gain, instrumental_gain_db=i_gain, peak_limited=v_limited or i_limited)
    scale_v, scale_i = np.float32(10 ** (v_gain / 20)), np.float32(10 ** (i_gain / 20))
    return vocals * scale_v, instrumental * scale_i, stats


__all__ = ["LoudnessSettings", "integrated_loudness", "normalise_pair"]
