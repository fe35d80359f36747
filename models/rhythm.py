"""The vocal's pulse: tempo and beat phase from its note onsets, as a frame-rate token stream (no weights).

Why a separate stream: the melodic bottleneck (`models/melody.py`) carries every note onset, so the pulse is
*in* the condition, but a small model must infer it by comparing onsets seconds apart (a tempo is a
periodicity over the whole clip). Measured on 20 held-out songs, the default model's semantic stage
(2.4M parameters, 1.3k steps) produced harmony plans whose onset pattern agreed with the vocal's tempo on
0.50 of songs against the true plans' 0.85, and the acoustic stage rendered exactly the plan's tempo
(0.83 from true plans, 0.50 from generated ones): the pulse was lost in the plan. Handing the model the
pulse explicitly turns "infer a periodicity" into "put the drum onsets where the phase is 0", which is how
rhythm-conditioned music generators (e.g. JASCO's beat conditioning, Tal et al., 2024) control tempo.

**Tempo** (`melody_tempo`): the onset train (onsets weighted by the square root of their note's duration,
smoothed with a 35 ms Gaussian) is autocorrelated at 200 Hz; a beat period `L` scores the mean
autocorrelation at `L, 2L, 3L, 4L` (a pulse comb: a melody's note intervals are multiples of the beat, while
a single recurring short interval is not repeated at its multiples), under a log-normal prior around
120 BPM, as librosa's tempo estimator settles metrical-level ties. On 30 validation songs of the synthetic
corpus it agreed with the declared tempo (x0.5/x2 allowed) on 87%.

**Phase** (`beat_phase`): the duration-weighted circular mean of the onsets' positions in the beat period —
long notes fall on strong beats (agogic accent), so the phase that puts the most sung time on the beat.

**Tokens** (`BeatTokenizer`, 25 Hz, one codebook): 0 where no pulse was found (fewer than 4 onsets: speech
fragments, silence), else `1 + s` with `s` the frame's position in the beat rounded to `subdivisions` steps
(`1` = on the beat). One tempo and phase per clip: the synthetic corpus (and most songs) keep one tempo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from models.melody import NUM_PITCH_CLASSES, MelodyTokenizer, melody_pitch_class
from models.tokenizer import AudioTokenizer

#: Tempo search range (BPM) and the centre of the prior that settles half/double-tempo ties.
MIN_BPM, MAX_BPM, PRIOR_BPM = 50.0, 200.0, 120.0
_ONSET_TRAIN_RATE = 200.0  # Hz: the onset train is resampled finer than the 25 Hz tokens for the comb


def note_durations(pitch_classes: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Frames from each onset to the next onset or the end of voicing `[N]` (pitch classes -1 = unvoiced)."""
    voiced = np.asarray(pitch_classes) >= 0
    ends = np.append(onsets[1:], len(voiced))[: len(onsets)]
    # argmin finds the first unvoiced frame; the appended False stops a note that runs into the next one
    return np.array(
        [int(np.argmin(np.append(voiced[o:e], False))) for o, e in zip(onsets, ends, strict=True)], np.int64
    )


def melody_tempo(pitch_classes: np.ndarray, onsets: np.ndarray, frame_rate: float) -> float:
    """The tempo (BPM) of a melody from its note onsets (module docstring); 0 with fewer than 4 onsets."""
    onsets = np.asarray(onsets, np.int64)
    if len(onsets) < 4:
        return 0.0
    rate = _ONSET_TRAIN_RATE
    length = int(len(pitch_classes) / frame_rate * rate) + 1
    train = np.zeros(length)
    times = (onsets + 0.5) / frame_rate
    positions = np.clip(np.round(times * rate).astype(int), 0, length - 1)
    np.add.at(train, positions, np.sqrt(np.maximum(note_durations(pitch_classes, onsets), 1)))
    kernel = np.exp(-0.5 * (np.arange(-21, 22) / (0.035 * rate)) ** 2)
    envelope = np.convolve(train, kernel, mode="same")
    envelope -= envelope.mean()
    autocorrelation = np.correlate(envelope, envelope, mode="full")[length - 1 :]
    lags = np.arange(int(rate * 60 / MAX_BPM), int(rate * 60 / MIN_BPM) + 1)
    lags = lags[2 * lags < length]
    if lags.size == 0:
        return 0.0
    comb = np.array([np.mean([autocorrelation[k * lag] for k in range(1, 5) if k * lag < length]) for lag in lags])
    bpm = 60 * rate / lags
    prior = np.exp(-0.5 * ((np.log2(bpm) - np.log2(PRIOR_BPM)) / 1.0) ** 2)
    return float(bpm[np.argmax(np.maximum(comb, 0) * prior)])


def beat_phase(pitch_classes: np.ndarray, onsets: np.ndarray, period_frames: float) -> float:
    """The beat's phase in frames, in `[0, period_frames)`: the duration-weighted circular mean of onsets."""
    onsets = np.asarray(onsets, np.int64)
    if len(onsets) == 0:
        return 0.0
    weights = np.sqrt(np.maximum(note_durations(pitch_classes, onsets), 1))
    angle = np.angle(np.sum(weights * np.exp(2j * np.pi * onsets / period_frames)))
    return float((angle / (2 * np.pi) * period_frames) % period_frames)


def beat_positions(num_frames: int, bpm: float, phase: float, frame_rate: float, subdivisions: int) -> np.ndarray:
    """Beat tokens `[F]`: 0 without a tempo, else 1 + the frame's position in the beat in `subdivisions` steps."""
    if bpm <= 0:
        return np.zeros(num_frames, np.int64)
    period = frame_rate * 60.0 / bpm
    position = ((np.arange(num_frames) - phase) / period) % 1.0
    return 1 + np.floor(position * subdivisions + 0.5).astype(np.int64) % subdivisions


def beat_tokens(melody_tokens: np.ndarray, frame_rate: float, subdivisions: int) -> tuple[np.ndarray, float]:
    """Melody tokens `[F]` (`models.melody`) -> (beat tokens `[F]`, tempo in BPM; 0 when none was found)."""
    tokens = np.asarray(melody_tokens, np.int64)
    pitch_classes = melody_pitch_class(torch.from_numpy(tokens)).numpy()
    onsets = np.flatnonzero(tokens > NUM_PITCH_CLASSES)
    bpm = melody_tempo(pitch_classes, onsets, frame_rate)
    phase = beat_phase(pitch_classes, onsets, frame_rate * 60.0 / bpm) if bpm > 0 else 0.0
    return beat_positions(len(tokens), bpm, phase, frame_rate, subdivisions), bpm


@dataclass(frozen=True)
class BeatConfig:
    subdivisions: int = 4  # positions per beat: 4 at 120 BPM = 125 ms steps (3 frames at 25 Hz)

    def __post_init__(self) -> None:
        if self.subdivisions < 1:
            raise ValueError("subdivisions must be at least 1")


class BeatTokenizer(AudioTokenizer):
    """Vocal waveform `[B, C, T]` at 16 kHz -> beat tokens `[B, 1, F]` at the melody tokens' rate.

    Each row gets its own tempo and phase, from its melody tokens (`MelodyTokenizer`, shared when given).
    """

    def __init__(self, config: BeatConfig | None = None, melody: MelodyTokenizer | None = None) -> None:
        self.config = config or BeatConfig()
        self.melody = melody or MelodyTokenizer()

    @property
    def sample_rate(self) -> int:
        return self.melody.sample_rate

    @property
    def channels(self) -> int:
        return 1

    @property
    def frame_rate(self) -> float:
        return self.melody.frame_rate

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def cardinality(self) -> int:
        return 1 + self.config.subdivisions

    def num_frames(self, num_samples: int) -> int:
        return self.melody.num_frames(num_samples)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.config), "melody": self.melody.to_dict()}

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        melody = self.melody.encode(wav)[:, 0].cpu().numpy()  # [B, F]
        rows = [beat_tokens(row, self.frame_rate, self.config.subdivisions)[0] for row in melody]
        return torch.from_numpy(np.stack(rows))[:, None, :].to(wav.device)

    def tempo(self, wav: torch.Tensor) -> list[float]:
        """The tempo (BPM, 0 = none found) that `encode` uses for each row of `[B, C, T]`."""
        melody = self.melody.encode(wav)[:, 0].cpu().numpy()
        return [beat_tokens(row, self.frame_rate, self.config.subdivisions)[1] for row in melody]


__all__ = [
    "BeatConfig",
    "BeatTokenizer",
    "beat_phase",
    "beat_positions",
    "beat_tokens",
    "melody_tempo",
    "note_durations",
]
