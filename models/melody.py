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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from models.semantic.features import BuiltinFeatureConfig, BuiltinFeatureExtractor
from models.tokenizer import AudioTokenizer

UNVOICED = 0
NUM_PITCH_CLASSES = 12


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
