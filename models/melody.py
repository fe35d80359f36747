"""A melodic bottleneck: the vocal reduced to pitch class, voicing and note onsets (no weights).

SingSong (Donahue et al., 2023) found that models trained on *separated* vocals learn to read the faint
instrumental residue that separation leaves behind and then fail on clean vocals; conditioning on coarser
vocal features (and adding noise) fixed most of it. AnyAccomp (2025) goes further and conditions on a
quantised melodic bottleneck (chroma-like pitch classes), which carries what an accompaniment must follow —
the tune, hence key and harmony, and the rhythm of note onsets — and nothing of the voice's timbre, so
studio vocals, phone recordings and even instruments look alike. Our default model is trained on synthetic
voices and must serve real singers, which makes this timbre-blind view especially valuable.

Tokens at 25 Hz (the semantic rate), one codebook of 25 symbols:

    0            silence / unvoiced (breaths, consonants, rests)
    1 + pc       voiced, pitch class pc (0 = C .. 11 = B), the note continues
    13 + pc      voiced, pitch class pc, a new note starts in this frame

Pitch class is the argmax of the harmonic-summation chroma of `BuiltinFeatureExtractor` (96-98 % frame
accuracy on the synthetic vocals' MIDI). A frame is voiced when its energy is within `voicing_range_db` of
the clip's loud frames (relative, so input gain does not matter) and its chroma is peaked (white noise and
breaths give a flat chroma). Onsets: voicing begins, or the pitch class changes.

**Melody coverage** (`melody_coverage`, `melody_coverage_of`): the share of a clip's duration that carries
a held, pitched melody line — the figure that says whether there is anything to accompany. Plain voicing is
not enough: speech is voiced too, but its pitch glides through syllables, so its voiced frames fall into
short pitch-class runs, while a sung note holds its pitch class (vibrato stays within it). F0 stability is the
classic cue for telling song from speech (Gerhard, 2003; Ohishi et al., Interspeech 2005); the melody
tokens carry it at the resolution that matters for an accompaniment. A frame counts when

1. it lies in a **held note**: a run of one pitch class at least `min_note_seconds` (160 ms = 4 frames) long,
2. in a **steady passage**: within a `window_seconds` (3 s) neighbourhood, at least `min_steadiness` (75 %)
   of the voiced frames lie in held notes. Monotone speech (text-to-speech, slow talking) does hold the odd
   vowel for 200-500 ms; what gives it away is the gliding around those vowels.

Measured with `MelodyCoverageConfig()` and the tuning correction of `melody_coverage_of`
(`benchmarks/melody_coverage.py`): synthetic sung vocals 0.53-0.90 (56 held-out corpus vocals; 0.50-0.88 on
71 validation ones; 0.50-0.88 detuned by +50 cents), the example vocal 0.57; espeak-ng speech (5 voices x 3
speaking rates x 2 texts) median 0.00, max 0.26, and 0.32 / 0.29 with white noise at 20 / 10 dB SNR (slow,
monotone text-to-speech is the hardest case); white noise and silence 0. Held runs alone (no steadiness test)
gave speech up to 0.45 at 160 ms and 0.54 at 120 ms, overlapping song. `LOW_MELODY_COVERAGE` (0.3) sits
nearer the speech side on purpose: real singers hold pitch less steadily than the synthetic one, and a
false warning on singing costs more than a missed one on monotone speech. Computing the figure on tokens
costs < 1 % of the tokenizer's time (0.14 ms vs 30 ms on the 12 s example vocal); the tuning estimate
~30 ms per 20 s (plus ~2 s once per process to import librosa's core).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from core.audio import resample
from models.semantic.features import BuiltinFeatureConfig, BuiltinFeatureExtractor
from models.tokenizer import AudioTokenizer

UNVOICED = 0
NUM_PITCH_CLASSES = 12
#: Below this melody coverage a vocal has little or no sung melody for an accompaniment to follow.
LOW_MELODY_COVERAGE = 0.3


@dataclass(frozen=True)
class MelodyConfig:
    sample_rate: int = 16_000
    frame_rate: float = 25.0
    voicing_range_db: float = 20.0  # voiced if log-RMS is within this of the clip's 95th percentile
    min_chroma_peak: float = 0.15  # share of chroma energy in the top pitch class (flat = 1/12)


class MelodyTokenizer(AudioTokenizer):
    """Vocal waveform `[B, C, T]` at 16 kHz -> melody tokens `[B, 1, F]` (see the module docstring)."""

    def __init__(self, config: MelodyConfig | None = None) -> None:
        self.config = config or MelodyConfig()
        self.extractor = BuiltinFeatureExtractor(
            BuiltinFeatureConfig(sample_rate=self.config.sample_rate, frame_rate=self.config.frame_rate)
        )
        groups = self.extractor.groups
        self._chroma = groups["chroma"]
        self._log_rms = groups["spectral"].start  # first spectral stat: natural log of the frame RMS

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return 1

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def cardinality(self) -> int:
        return 1 + 2 * NUM_PITCH_CLASSES

    def num_frames(self, num_samples: int) -> int:
        return self.extractor.num_frames(num_samples)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self.config)

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        features = self.extractor.extract(wav.mean(dim=1, keepdim=True))  # [B, F, D]
        chroma = features[..., self._chroma].clamp_min(0)  # [B, F, 12]
        log_rms = features[..., self._log_rms]  # [B, F]
        reference = torch.quantile(log_rms, 0.95, dim=1, keepdim=True)
        loud = log_rms > reference - self.config.voicing_range_db * torch.log(torch.tensor(10.0)) / 20
        peaked = chroma.max(dim=-1).values > self.config.min_chroma_peak * (chroma.sum(dim=-1) + 1e-9)
        voiced = loud & peaked
        pitch_class = chroma.argmax(dim=-1)
        previous_voiced = torch.nn.functional.pad(voiced[:, :-1], (1, 0), value=False)
        previous_class = torch.nn.functional.pad(pitch_class[:, :-1], (1, 0), value=-1)
        onset = voiced & (~previous_voiced | (pitch_class != previous_class))
        tokens = torch.where(onset, 1 + NUM_PITCH_CLASSES + pitch_class, 1 + pitch_class)
        tokens = torch.where(voiced, tokens, torch.full_like(tokens, UNVOICED))
        return tokens[:, None, :].long()


def melody_pitch_class(tokens: torch.Tensor) -> torch.Tensor:
    """Pitch class of each token (-1 where unvoiced): the inverse mapping, for analysis and tests."""
    pc = (tokens - 1) % NUM_PITCH_CLASSES
    return torch.where(tokens == UNVOICED, torch.full_like(pc, -1), pc)


@dataclass(frozen=True)
class MelodyCoverageConfig:
    """What counts as a held melody line (module docstring; the defaults are the measured choice)."""

    # 160 ms: sung notes of the corpus are >= 1/8 beat at <= 150 BPM (200 ms) and held; a spoken syllable's
    # pitch glides out of its pitch class within ~40-120 ms. 120 ms let more speech through (see above).
    min_note_seconds: float = 0.16
    window_seconds: float = 3.0  # a couple of sung phrases; short enough to find a sung part in a talk
    min_steadiness: float = 0.75  # held share of voiced frames (standard tuning): song 0.82-1.0, speech 0.2-0.61


def held_notes(tokens: torch.Tensor, frame_rate: float, min_note_seconds: float) -> torch.Tensor:
    """Melody tokens `[B, 1, F]` or `[B, F]` -> `[B, F]` bool: the frame belongs to a run of one pitch class
    (voiced throughout, no new onset) lasting at least `min_note_seconds`."""
    tokens = tokens[:, 0] if tokens.dim() == 3 else tokens
    batch, frames = tokens.shape
    voiced = tokens != UNVOICED
    pitch_class = (tokens - 1) % NUM_PITCH_CLASSES
    previous_voiced = torch.nn.functional.pad(voiced[:, :-1], (1, 0), value=False)
    changed = torch.nn.functional.pad(pitch_class[:, 1:] != pitch_class[:, :-1], (1, 0), value=True)
    # onset tokens start a run too: sequences that did not come from `encode` may mark repeated notes
    start = voiced & (~previous_voiced | changed | (tokens > NUM_PITCH_CLASSES))
    # one id per run, unique over the batch: rows are offset so a run never continues into the next row
    run_id = start.long().cumsum(dim=1) + torch.arange(batch, device=tokens.device)[:, None] * (frames + 1)
    lengths = torch.bincount(run_id[voiced], minlength=batch * (frames + 1))
    min_frames = max(1, round(min_note_seconds * frame_rate))
    return voiced & (lengths[run_id] >= min_frames)


def melody_coverage(
    tokens: torch.Tensor, frame_rate: float = 25.0, config: MelodyCoverageConfig | None = None
) -> torch.Tensor:
    """Melody tokens `[B, 1, F]` or `[B, F]` -> `[B]` melody coverage in [0, 1] (module docstring): the share
    of frames in held notes inside steady passages. An empty clip has coverage 0."""
    config = config or MelodyCoverageConfig()
    tokens = tokens[:, 0] if tokens.dim() == 3 else tokens
    if tokens.shape[-1] == 0:
        return torch.zeros(tokens.shape[0])
    held = held_notes(tokens, frame_rate, config.min_note_seconds).float()
    voiced = (tokens != UNVOICED).float()
    half = max(1, round(config.window_seconds * frame_rate)) // 2
    kernel = torch.ones(1, 1, 2 * half + 1, device=tokens.device)  # centred window, zero-padded at the ends

    def window_sum(x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv1d(x[:, None], kernel, padding=half)[:, 0]

    steady = window_sum(held) >= config.min_steadiness * window_sum(voiced).clamp_min(1.0)
    return (held.bool() & steady).float().mean(dim=-1).cpu()


def melody_coverage_of(
    samples: np.ndarray, sample_rate: int, tokenizer: MelodyTokenizer | None = None, *, retune: bool = True
) -> float:
    """Melody coverage of one vocal, `[C, T]` or `[T]` float samples at any rate (downmixed, resampled).

    `retune`: first move the vocal to standard tuning (A = 440 Hz). Pitch classes are semitone bins around
    the equal-tempered notes, so a singer 50 cents off sits on the bin edges and vibrato flips the class
    every few frames: 12 corpus vocals detuned by +50 cents fell from median coverage 0.69 to 0.15, which
    would warn about real, in-tune-with-themselves singing. `librosa.estimate_tuning` finds the offset
    (within 3 cents on them; ~30 ms per 20 s) and resampling by it restores 0.54-0.85.
    """
    tokenizer = tokenizer or MelodyTokenizer()
    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    mono = resample(mono, sample_rate, tokenizer.sample_rate)
    if mono.size == 0:
        return 0.0
    if retune:
        mono = retuned(mono, tokenizer.sample_rate)
    tokens = tokenizer.encode(torch.from_numpy(np.ascontiguousarray(mono))[None, None].float())
    return float(melody_coverage(tokens, tokenizer.frame_rate)[0])


def retuned(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono `[T]` moved to standard tuning by resampling (its length changes by the same <= 3 %)."""
    import warnings

    import librosa

    with warnings.catch_warnings():  # clips shorter than librosa's 2048-sample window still get an estimate
        warnings.simplefilter("ignore", UserWarning)
        semitones = float(librosa.estimate_tuning(y=samples, sr=sample_rate))  # in [-0.5, 0.5)
    if abs(semitones) < 0.05:
        return samples
    # read as if recorded at a rate 2^(-semitones/12) times the true one: every frequency moves by -semitones
    return resample(samples, round(sample_rate * 2 ** (-semitones / 12)), sample_rate)
