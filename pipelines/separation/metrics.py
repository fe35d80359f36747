"""Separation metrics: SDR (as Demucs v4 / the MDX challenge compute it), SI-SDR, frame-wise median SDR.

* `sdr`: 10 log10(||s||² / ||s - ŝ||²) over the whole track, all channels together - the "new SDR" (utterance-
  level, uSDR) of the Music Demixing challenge (Mitsufuji et al., 2022) that Rouard et al. (2023) also report.
  No projection or distortion filter, so a gain error costs SDR (unlike bss_eval's SDR).
* `si_sdr`: scale-invariant SDR (Le Roux et al., 2019, "SDR - half-baked or well done?"): the reference is
  rescaled by the optimal gain first, so only the shape of the estimate matters.
* `framewise_sdr`: median of `sdr` over 1 s frames whose reference is not silent - the aggregation museval
  uses for MUSDB results (htdemucs: 9.0 dB on MUSDB18-HQ), again without bss_eval's 512-tap distortion filter.
  Comparable in spirit, not digit for digit.

All take float arrays [C, T] (or [T]); `eps` keeps silent references/perfect estimates finite.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-8


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    est = np.atleast_2d(np.asarray(estimate, dtype=np.float64))
    if ref.shape != est.shape:
        raise ValueError(f"reference {ref.shape} and estimate {est.shape} must have the same shape")
    return ref, est


def sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = EPS) -> float:
    """Signal-to-distortion ratio in dB over the whole signal (all channels)."""
    ref, est = _pair(reference, estimate)
    return float(10 * np.log10((np.sum(ref**2) + eps) / (np.sum((ref - est) ** 2) + eps)))


def si_sdr(reference: np.ndarray, estimate: np.ndarray, eps: float = EPS) -> float:
    """Scale-invariant SDR in dB, per channel (zero-mean), averaged over channels."""
    ref, est = _pair(reference, estimate)
    ref = ref - ref.mean(axis=-1, keepdims=True)
    est = est - est.mean(axis=-1, keepdims=True)
    values = []
    for r, e in zip(ref, est, strict=True):
        alpha = np.dot(e, r) / (np.dot(r, r) + eps)
        target = alpha * r
        values.append(10 * np.log10((np.sum(target**2) + eps) / (np.sum((e - target) ** 2) + eps)))
    return float(np.mean(values))


def framewise_sdr(
    reference: np.ndarray,
    estimate: np.ndarray,
    sample_rate: int,
    *,
    frame_seconds: float = 1.0,
    silence_db: float = -60.0,
) -> float | None:
    """Median SDR over non-overlapping frames whose reference RMS is above `silence_db` dBFS (None: none is)."""
    ref, est = _pair(reference, estimate)
    frame = max(1, int(frame_seconds * sample_rate))
    values = []
    for start in range(0, ref.shape[-1] - frame + 1, frame):
        r, e = ref[:, start : start + frame], est[:, start : start + frame]
        if 10 * np.log10(np.mean(r**2) + 1e-20) > silence_db:
            values.append(sdr(r, e))
    return float(np.median(values)) if values else None


__all__ = ["framewise_sdr", "sdr", "si_sdr"]
