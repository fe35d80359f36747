"""Does an accompaniment fit its vocal? Reference-free fit metrics: harmony, key, tempo, beat alignment.

They need nothing but the two signals (mono float arrays at any sample rate), so they score any vocal,
including real recordings without a true instrumental. The ground-truth comparisons (chroma similarity to the
true instrumental, Fréchet distance between sets) live in `fidelity.py`.

* **Vocal melody**: the project's melodic bottleneck (`models/melody.py`: harmonic-summation chroma argmax,
  voicing, note onsets at 25 Hz). Chosen over pYIN (Mauch & Dixon, 2014) for speed: 0.12 s for a 20 s vocal
  against 2.2 s for librosa's pyin at a coarse 40 ms hop, with 93% frame agreement on pitch class (measured on
  a synthetic corpus vocal; the tokenizer is 96-98% accurate against the songs' MIDI).
* **Accompaniment chroma**: librosa's constant-Q chroma (0.4 s per 20 s at 22.05 kHz), `[12, F]`.
* **Harmonic support margin**: the fraction of voiced vocal frames whose pitch class is strong (>= `strength`
  of the frame's loudest pitch class) in the accompaniment's chroma, minus the same with the chroma rotated —
  a wrong-key control: an accompaniment that ignores the vocal's harmony scores ~0 whatever its texture. The
  control is chosen by `control`:
  `"mean"` (default) averages rotations 1..11, i.e. the support expected of the same music in a random key —
  the chance level, with the least variance (11 rotations averaged); `"semitone"` averages rotations +-1,
  the control of the codec evaluation (keys a semitone apart share only 2 of 7 scale notes, so it is the
  sharpest single wrong key); `"worst"` takes the best-supporting wrong rotation, the strictest control
  (a fifth away shares 6 of 7 scale notes, so even the true instrumental's margin is small).
* **Key**: Krumhansl-Kessler profile correlation (Krumhansl, 1990) over the 24 major/minor keys, on the
  accompaniment's mean chroma and on the vocal's pitch-class histogram; compatible when equal or relative
  major/minor (same pitch-class set).
* **Rhythm**: librosa's dynamic-programming beat tracker (Ellis, 2007) on the accompaniment; the vocal's
  tempo from the autocorrelation of its note-onset train; agreement within 8% at x0.5, x1 or x2. Beat
  alignment: the share of vocal note onsets (weighted by note duration) within 70 ms of an accompaniment
  beat, minus the same with the beats moved by half a beat (a time-shifted control): positive when the
  accompaniment's beats fall where the singer starts the long notes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from core.audio import resample
from core.errors import SingsongError

#: Analysis rate of the accompaniment features (librosa's default; chroma up to its Nyquist is plenty).
ANALYSIS_RATE = 22_050
CHROMA_HOP = 512
#: Krumhansl-Kessler key profiles, tonic first (C major / C minor).
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLATS = {"Db": 1, "Eb": 3, "Gb": 6, "Ab": 8, "Bb": 10}
TEMPO_TOLERANCE = 0.08
Control = Literal["mean", "semitone", "worst"]


# ------------------------------------------------------------------------------------------------ keys
@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0 (C) .. 11 (B)
    mode: str  # "major" or "minor"
    score: float = 1.0  # profile correlation of the estimate (1 for a declared key)

    @property
    def name(self) -> str:
        return f"{NOTE_NAMES[self.tonic]} {self.mode}"

    @property
    def relative_major(self) -> int:
        """Tonic of the major key with the same scale (the key itself when major)."""
        return self.tonic if self.mode == "major" else (self.tonic + 3) % 12

    def compatible(self, other: Key) -> bool:
        """Same key, or relative major/minor (the same seven pitch classes)."""
        return self.relative_major == other.relative_major

    def profile(self) -> np.ndarray:
        """Its 12-bin Krumhansl-Kessler profile rotated to the tonic."""
        return np.roll(MAJOR_PROFILE if self.mode == "major" else MINOR_PROFILE, self.tonic)

    @classmethod
    def parse(cls, text: str) -> Key:
        """`"B minor"`, `"Eb major"` -> Key."""
        tonic, _, mode = text.strip().partition(" ")
        pitch = NOTE_NAMES.index(tonic) if tonic in NOTE_NAMES else FLATS.get(tonic)
        if pitch is None or mode not in ("major", "minor"):
            raise SingsongError(f"cannot read key {text!r} (expected e.g. 'C major' or 'F# minor')")
        return cls(pitch, mode)


def profile_correlation(pitch_profile: np.ndarray, key: Key) -> float:
    """Pearson correlation of a 12-bin pitch-class profile with `key`'s profile (0 for a flat profile)."""
    if not np.isfinite(pitch_profile).all() or pitch_profile.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(pitch_profile, key.profile())[0, 1])


def estimate_key(pitch_profile: np.ndarray) -> Key:
    """The best-correlating of the 24 major/minor keys for a 12-bin pitch-class profile (score 0 if flat)."""
    candidates = [Key(tonic, mode) for mode in ("major", "minor") for tonic in range(12)]
    scores = [profile_correlation(np.asarray(pitch_profile, np.float64), key) for key in candidates]
    best = int(np.argmax(scores))
    return Key(candidates[best].tonic, candidates[best].mode, float(scores[best]))


# ------------------------------------------------------------------------------------------- features
@dataclass(frozen=True)
class Melody:
    """The vocal as the melody tokenizer hears it: `pitch_classes [F]` (-1 unvoiced) at `frame_rate`."""

    pitch_classes: np.ndarray
    onsets: np.ndarray  # note-onset frame indices [N]
    frame_rate: float

    @property
    def onset_times(self) -> np.ndarray:
        """Onset times in seconds (frame centres: frame j covers [j, j + 1) / frame_rate)."""
        return (self.onsets + 0.5) / self.frame_rate

    def note_durations(self) -> np.ndarray:
        """Frames from each onset to the next onset or the end of voicing `[N]`."""
        from models import rhythm  # lazily: the CLI imports this module and must not import torch

        return rhythm.note_durations(self.pitch_classes, self.onsets)

    def histogram(self) -> np.ndarray:
        """Voiced frames per pitch class `[12]` (a duration-weighted pitch-class profile)."""
        voiced = self.pitch_classes[self.pitch_classes >= 0]
        return np.bincount(voiced, minlength=12).astype(np.float64)


@lru_cache(maxsize=1)
def _melody_tokenizer():  # one instance per process: building its pitch tables is not free
    from models.melody import MelodyTokenizer

    return MelodyTokenizer()


def vocal_melody(audio: np.ndarray, sample_rate: int) -> Melody:
    """Mono vocal `[T]` -> its `Melody` (pitch class and note onsets at 25 Hz)."""
    import torch

    from models.melody import NUM_PITCH_CLASSES, melody_pitch_class

    tokenizer = _melody_tokenizer()
    wave = resample(np.asarray(audio, np.float32), sample_rate, tokenizer.sample_rate)
    with torch.inference_mode():
        tokens = tokenizer.encode(torch.from_numpy(np.ascontiguousarray(wave))[None, None])[0, 0]
    pitch_classes = melody_pitch_class(tokens).numpy().astype(np.int64)
    onsets = np.flatnonzero(tokens.numpy() > NUM_PITCH_CLASSES)
    return Melody(pitch_classes, onsets, tokenizer.frame_rate)


def chromagram(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Constant-Q chroma `[12, F]` of mono `audio [T]` at `ANALYSIS_RATE / CHROMA_HOP` frames per second.

    Frames are not normalised (`norm=None`) so silence stays ~0; `harmonic_support` normalises per frame.
    """
    import librosa

    wave = resample(np.asarray(audio, np.float32), sample_rate, ANALYSIS_RATE)
    if wave.size < CHROMA_HOP:
        raise SingsongError(f"audio too short for chroma ({wave.size} samples at {ANALYSIS_RATE} Hz)")
    return librosa.feature.chroma_cqt(y=wave, sr=ANALYSIS_RATE, hop_length=CHROMA_HOP, norm=None, tuning=0.0)


CHROMA_RATE = ANALYSIS_RATE / CHROMA_HOP


# -------------------------------------------------------------------------------------------- harmony
@dataclass(frozen=True)
class HarmonicSupport:
    support: float  # fraction of voiced vocal frames whose pitch class is strong in the accompaniment
    control: float  # the same against the rotated chroma (see `control` of `harmonic_support`)
    margin: float  # support - control
    by_rotation: tuple[float, ...]  # support with the chroma rotated by 0..11 semitones


def _chroma_at_frames(
    chroma: np.ndarray, chroma_rate: float, frame_rate: float, num_frames: int, window: float
) -> np.ndarray:
    """Average `chroma [12, F]` over `window` seconds around each melody frame -> `[num_frames, 12]`."""
    cumulative = np.concatenate([np.zeros((12, 1)), np.cumsum(chroma, axis=1)], axis=1)
    centres = (np.arange(num_frames) + 0.5) / frame_rate
    start = np.clip(np.floor((centres - window / 2) * chroma_rate).astype(int), 0, chroma.shape[1] - 1)
    end = np.clip(np.ceil((centres + window / 2) * chroma_rate).astype(int), start + 1, chroma.shape[1])
    return ((cumulative[:, end] - cumulative[:, start]) / (end - start)).T


def harmonic_support(
    melody: Melody,
    chroma: np.ndarray,
    chroma_rate: float = CHROMA_RATE,
    *,
    control: Control = "mean",
    strength: float = 0.5,
    silence_db: float = -40.0,
    window: float = 0.5,
) -> HarmonicSupport:
    """Harmonic support margin of an accompaniment `chroma [12, F]` for a vocal `melody` (module docstring).

    A pitch class is strong in a frame when its chroma is >= `strength` x the frame's maximum; frames whose
    chroma energy is `silence_db` below the clip's loud frames support nothing (a silent accompaniment
    supports no note, in any rotation).
    """
    if control not in ("mean", "semitone", "worst"):
        raise SingsongError(f"unknown harmonic-support control {control!r} (mean, semitone or worst)")
    chroma = np.asarray(chroma, np.float64)
    pooled = _chroma_at_frames(chroma, chroma_rate, melody.frame_rate, len(melody.pitch_classes), window)
    voiced = melody.pitch_classes >= 0
    if not voiced.any():
        return HarmonicSupport(0.0, 0.0, 0.0, (0.0,) * 12)
    energy = pooled.max(axis=1)
    loud = energy > np.percentile(energy, 95) * 10 ** (silence_db / 20) if energy.max() > 0 else energy > 1
    frames = pooled[voiced & loud] / energy[voiced & loud, None]
    classes = melody.pitch_classes[voiced & loud]
    count = int(voiced.sum())  # frames under a silent accompaniment count as unsupported
    by_rotation = tuple(
        float((np.roll(frames, r, axis=1)[np.arange(len(classes)), classes] >= strength).sum() / count)
        for r in range(12)
    )
    wrong = by_rotation[1:]
    reference = {"mean": float(np.mean(wrong)), "semitone": (wrong[0] + wrong[-1]) / 2, "worst": max(wrong)}[control]
    return HarmonicSupport(by_rotation[0], reference, by_rotation[0] - reference, by_rotation)


# --------------------------------------------------------------------------------------------- rhythm
@dataclass(frozen=True)
class Beats:
    tempo: float  # beats per minute (0 when no beat was found)
    times: np.ndarray  # beat times in seconds [N]


def beat_track(audio: np.ndarray, sample_rate: int) -> Beats:
    """librosa's beat tracker on mono `audio [T]`."""
    import librosa

    wave = resample(np.asarray(audio, np.float32), sample_rate, ANALYSIS_RATE)
    tempo, frames = librosa.beat.beat_track(y=wave, sr=ANALYSIS_RATE, hop_length=CHROMA_HOP)
    times = librosa.frames_to_time(frames, sr=ANALYSIS_RATE, hop_length=CHROMA_HOP)
    return Beats(float(np.atleast_1d(tempo)[0]), np.asarray(times, np.float64))


def melody_tempo(melody: Melody) -> float:
    """The vocal's tempo from its note-onset train (0 with fewer than 4 onsets): `models.rhythm.melody_tempo`,
    which agreed with the declared tempo (x0.5/x2 allowed) on 87% of 30 validation songs of the corpus."""
    from models import rhythm

    return rhythm.melody_tempo(melody.pitch_classes, melody.onsets, melody.frame_rate)


def tempo_agrees(estimate: float, reference: float, tolerance: float = TEMPO_TOLERANCE) -> bool:
    """`estimate` within `tolerance` of `reference`, of half or of double it."""
    if estimate <= 0 or reference <= 0:
        return False
    return any(abs(estimate / (reference * level) - 1.0) <= tolerance for level in (0.5, 1.0, 2.0))


@dataclass(frozen=True)
class BeatAlignment:
    aligned: float  # fraction of vocal onsets within `tolerance` of a beat
    control: float  # the same with every beat moved by half a beat
    margin: float  # aligned - control


def beat_alignment(
    onset_times: np.ndarray, beats: Beats, weights: np.ndarray | None = None, tolerance: float = 0.07
) -> BeatAlignment:
    """Vocal note onsets (seconds) against accompaniment beats, vs beats shifted by half a beat period.

    `weights [N]` weigh the onsets; `fit_scores` passes note durations: long notes fall on strong beats
    (agogic accent), which tells beats from off-beats when a melody has as many notes on each (in 24 songs of
    the synthetic corpus, 58% of onsets fell on a beat rather than an off-beat, but 66% of the sung time).
    """
    onset_times = np.asarray(onset_times, np.float64)
    weights = np.ones(len(onset_times)) if weights is None else np.asarray(weights, np.float64)
    if len(beats.times) < 2 or len(onset_times) == 0 or weights.sum() <= 0:
        return BeatAlignment(0.0, 0.0, 0.0)
    half = float(np.median(np.diff(beats.times))) / 2

    def hit_rate(grid: np.ndarray) -> float:
        nearest = np.abs(onset_times[:, None] - grid[None, :]).min(axis=1)
        return float(weights[nearest <= tolerance].sum() / weights.sum())

    aligned, control = hit_rate(beats.times), hit_rate(beats.times + half)
    return BeatAlignment(aligned, control, aligned - control)


# ------------------------------------------------------------------------------------------ one call
@dataclass(frozen=True)
class FitScores:
    """Every reference-free metric of one (vocal, accompaniment) pair."""

    harmonic_support: float
    harmonic_control: float
    harmonic_margin: float
    vocal_key: str
    accompaniment_key: str
    key_compatible: bool
    vocal_tempo: float
    accompaniment_tempo: float
    tempo_agrees: bool
    beat_aligned: float
    beat_control: float
    beat_margin: float

    def as_dict(self) -> dict[str, float | str | bool]:
        return asdict(self)


def fit_scores(
    vocal: np.ndarray | Melody,
    accompaniment: np.ndarray,
    sample_rate: int,
    *,
    control: Control = "mean",
    chroma: np.ndarray | None = None,
) -> FitScores:
    """Score mono `accompaniment [T]` against mono `vocal [T]` (or its precomputed `Melody`), both at
    `sample_rate`. Took 0.7-1.0 s per 20 s song on one loaded core (after librosa's first-call compilation).
    `chroma`: the accompaniment's `chromagram`, when the caller has it already."""
    melody = vocal if isinstance(vocal, Melody) else vocal_melody(vocal, sample_rate)
    chroma = chromagram(accompaniment, sample_rate) if chroma is None else chroma
    support = harmonic_support(melody, chroma, control=control)
    vocal_key = estimate_key(melody.histogram())
    accompaniment_key = estimate_key(chroma.mean(axis=1))
    beats = beat_track(accompaniment, sample_rate)
    vocal_tempo = melody_tempo(melody)
    alignment = beat_alignment(melody.onset_times, beats, melody.note_durations())
    return FitScores(
        harmonic_support=support.support,
        harmonic_control=support.control,
        harmonic_margin=support.margin,
        vocal_key=vocal_key.name,
        accompaniment_key=accompaniment_key.name,
        key_compatible=vocal_key.compatible(accompaniment_key),
        vocal_tempo=vocal_tempo,
        accompaniment_tempo=beats.tempo,
        tempo_agrees=tempo_agrees(beats.tempo, vocal_tempo),
        beat_aligned=alignment.aligned,
        beat_control=alignment.control,
        beat_margin=alignment.margin,
    )
