"""Vocal activity from energy and periodicity: which parts of a (separated) vocal track are singing.

SingSong (Donahue et al., 2023, §3.1) trains only on segments where the separated vocals contain singing;
instrumental passages would teach the model to accompany silence (or separation bleed). Pitch trackers that
ship weights (CREPE, PESTO) pull torchaudio, and pYIN costs ~1.5 s per 10 s, more than the separation of a
small model, so this is a cheap frame-wise detector:

* **energy**: frame RMS (dBFS) above `max(floor_db, p95 - relative_db)`, where p95 is the 95th percentile of
  the track's frame levels: relative to how loud the singer is in this track, with an absolute floor;
* **periodicity**: the peak of the normalised autocorrelation (Rabiner, 1977; the first stage of YIN,
  de Cheveigné & Kawahara, 2002) over lags of 70-1000 Hz. Sung vowels score near 1, noise and drum bleed
  far lower. The lag of the peak gives a rough f0 (reported as a statistic; octave errors are possible).

A frame is active when both hold. Features are computed once per track at 16 kHz mono (soxr), with
64 ms frames every 20 ms, then summarised per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANALYSIS_RATE = 16000
FRAME = 1024  # 64 ms at 16 kHz: two periods of a 31 Hz tone, ample for 70 Hz
HOP = 320  # 20 ms
F0_MIN, F0_MAX = 70.0, 1000.0


@dataclass(frozen=True)
class ActivitySettings:
    floor_db: float = -50.0  # absolute: quieter frames are never singing
    relative_db: float = 30.0  # relative to the track's 95th percentile frame level
    periodicity: float = 0.5  # normalised autocorrelation peak a voiced frame reaches
    min_activity: float = 0.3  # fraction of active frames a window needs to be kept


@dataclass(eq=False)
class ActivityFrames:
    """Per-frame features of a track; frame i covers [i * hop, i * hop + frame) seconds-wise."""

    rms_db: np.ndarray  # [F]
    periodicity: np.ndarray  # [F] in [0, 1]
    f0: np.ndarray  # [F] Hz (meaningful where periodic)
    active: np.ndarray  # [F] bool
    hop_seconds: float
    threshold_db: float

    def window(self, start: float, duration: float) -> tuple[float, float | None]:
        """(active fraction, median f0 of active frames or None) of the frames inside [start, start+duration)."""
        lo = int(np.ceil(start / self.hop_seconds))
        hi = int(np.floor((start + duration) / self.hop_seconds))
        active = self.active[lo:hi]
        if active.size == 0:
            return 0.0, None
        fraction = float(active.mean())
        f0 = self.f0[lo:hi][active]
        return fraction, (float(np.median(f0)) if f0.size else None)


def _frames(signal: np.ndarray) -> np.ndarray:
    """[T] -> [F, FRAME] (zero-padded at the end so the last samples get a frame)."""
    count = max(1, 1 + int(np.ceil((signal.size - FRAME) / HOP)))
    padded = np.zeros((count - 1) * HOP + FRAME, dtype=np.float32)
    padded[: signal.size] = signal
    return np.lib.stride_tricks.sliding_window_view(padded, FRAME)[::HOP]


def analyse(vocals: np.ndarray, sample_rate: int, settings: ActivitySettings | None = None) -> ActivityFrames:
    """Frame features of a vocal track ([C, T] or [T] float, any rate)."""
    from core.audio import resample, to_mono

    settings = settings or ActivitySettings()
    x = np.asarray(vocals, dtype=np.float32)
    mono = to_mono(x)[0] if x.ndim == 2 else x
    mono = resample(mono, sample_rate, ANALYSIS_RATE)
    frames = _frames(mono)
    frames = frames - frames.mean(axis=1, keepdims=True)
    rms_db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)

    spectrum = np.fft.rfft(frames, n=2 * FRAME, axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :FRAME]
    lo, hi = int(ANALYSIS_RATE / F0_MAX), int(np.ceil(ANALYSIS_RATE / F0_MIN))
    lags = np.arange(lo, hi + 1)
    # Unbiased estimate: the sum at lag k has FRAME - k terms; normalise by the energy at lag 0.
    nacf = acf[:, lags] * (FRAME / (FRAME - lags)) / np.maximum(acf[:, :1], 1e-12)
    best = np.argmax(nacf, axis=1)
    periodicity = np.clip(nacf[np.arange(len(best)), best], 0.0, 1.0)
    f0 = ANALYSIS_RATE / lags[best]

    p95 = float(np.percentile(rms_db, 95)) if rms_db.size else -120.0
    threshold = max(settings.floor_db, p95 - settings.relative_db)
    active = (rms_db > threshold) & (periodicity >= settings.periodicity)
    return ActivityFrames(
        rms_db=rms_db,
        periodicity=periodicity,
        f0=f0,
        active=active,
        hop_seconds=HOP / ANALYSIS_RATE,
        threshold_db=threshold,
    )


__all__ = ["ActivityFrames", "ActivitySettings", "analyse"]
