"""Configuration of the neural audio codec and its named presets.

A `CodecConfig` fully determines the architecture: it is stored verbatim in every checkpoint's
`config.json`, so a checkpoint can be rebuilt with `build_codec(CodecConfig.from_dict(...))`.

Frame rate is `sample_rate / prod(encoder_strides)`; all presets use 24 kHz audio and a hop of 480 samples,
i.e. 50 Hz frames, as in the SingSong paper's acoustic tokens (SoundStream at 50 Hz). Each frame carries
`num_levels` residual-VQ codes; the first `num_coarse_levels` are the "coarse" acoustic tokens that the
coarse transformer models, the rest are "fine".

Presets (sizes for the default 24 kHz / 8 x 1024 layout):

* `tiny`   - a few thousand parameters for unit tests only (2 levels x 16 codes).
* `small`  - the default: trainable from scratch on a CPU in ~20-30 minutes to a usable (if muffled)
  reconstruction, and encodes + decodes far faster than real time on two CPU threads.
* `base`   - a wider SEANet for GPU training (EnCodec-like widths, no LSTM).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from core.errors import SingsongError


class CodecConfigError(SingsongError):
    """A codec configuration (preset name, JSON file or checkpoint config) is invalid."""


@dataclass(frozen=True)
class CodecConfig:
    """Architecture of a SEANet encoder/decoder + residual VQ codec.

    Attributes:
        sample_rate: audio sample rate in Hz (`encode` input / `decode` output).
        channels: audio channels (1 = mono).
        encoder_strides: downsampling factor of each encoder block; the decoder uses them reversed.
        base_channels: channels of the first encoder block; doubled after every downsampling.
        max_channels: cap on the doubled widths.
        latent_dim: dimension of the encoder output / codebook vectors.
        residual_kernel_size: kernel of the dilated conv inside each residual unit.
        dilations: dilations of the residual units of every block (SoundStream/DAC use 1, 3, 9).
        compress: residual units squeeze their hidden width by this factor (EnCodec uses 2).
        num_levels: number of residual-VQ levels K.
        codebook_size: entries per codebook.
        num_coarse_levels: how many of the first levels count as "coarse" acoustic tokens.
        ema_decay: EMA decay of the codebook updates. SoundStream uses 0.99 with large batches; on CPU
            batches (a few hundred frames) 0.95 tracks the moving encoder better and keeps more codes in
            use early in training (measured: level-1 perplexity 92 vs 46 of 256 after 60 steps).
        kmeans_iters: k-means iterations initialising the codebooks on the first batch (slow on CPU).
        dead_code_ratio: a code whose EMA assignment count per training step falls below this fraction of
            the mean count (batch frames / codebook_size) is re-seeded with a random encoder output of the
            current batch (Jukebox). Relative, so it means the same for CPU and GPU batch sizes; 0.4 is
            about audiocraft's EnCodec setting (threshold 2 for ~4.7 frames per code per step). At 0.1 the
            codebooks of a CPU run collapse to 2-3 used codes per level.
        commitment_weight: weight of the encoder commitment loss inside the quantizer (before the
            trainer's own weighting; kept at 1).
        quantizer_dropout: probability, per training example, of truncating the RVQ to a random number of
            levels (SoundStream's quantizer dropout), so that coarse-only decoding stays good.
    """

    sample_rate: int = 24_000
    channels: int = 1
    encoder_strides: tuple[int, ...] = (3, 4, 5, 8)
    base_channels: int = 16
    max_channels: int = 256
    latent_dim: int = 128
    residual_kernel_size: int = 7
    dilations: tuple[int, ...] = (1, 3, 9)
    compress: int = 2
    num_levels: int = 8
    codebook_size: int = 1024
    num_coarse_levels: int = 3
    ema_decay: float = 0.95
    kmeans_iters: int = 4
    dead_code_ratio: float = 0.4
    commitment_weight: float = 1.0
    quantizer_dropout: float = 0.5

    def __post_init__(self) -> None:
        # JSON round trips turn tuples into lists; normalise so configs compare equal.
        object.__setattr__(self, "encoder_strides", tuple(int(s) for s in self.encoder_strides))
        object.__setattr__(self, "dilations", tuple(int(d) for d in self.dilations))
        problems = []
        if self.sample_rate <= 0 or self.channels <= 0:
            problems.append("sample_rate and channels must be positive")
        if not self.encoder_strides or any(s < 1 for s in self.encoder_strides):
            problems.append("encoder_strides must be a non-empty list of positive integers")
        if not 1 <= self.num_coarse_levels <= self.num_levels:
            problems.append(f"num_coarse_levels must be in 1..num_levels ({self.num_levels})")
        if self.codebook_size < 2:
            problems.append("codebook_size must be at least 2")
        if self.base_channels < self.compress or self.latent_dim < 1:
            problems.append("base_channels must be >= compress and latent_dim >= 1")
        if self.residual_kernel_size % 2 == 0:
            problems.append("residual_kernel_size must be odd")
        if not 0.0 < self.ema_decay < 1.0 or self.dead_code_ratio < 0:
            problems.append("ema_decay must be in (0, 1) and dead_code_ratio >= 0")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            problems.append("quantizer_dropout must be in [0, 1]")
        if problems:
            raise CodecConfigError("invalid codec config: " + "; ".join(problems))

    @property
    def hop_length(self) -> int:
        """Audio samples per code frame, `prod(encoder_strides)`."""
        return math.prod(self.encoder_strides)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def bitrate(self) -> float:
        """Bits per second of the full code stream."""
        return self.frame_rate * self.num_levels * math.log2(self.codebook_size)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["encoder_strides"] = list(self.encoder_strides)
        data["dilations"] = list(self.dilations)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CodecConfigError(f"unknown codec config keys: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:
            raise CodecConfigError(f"invalid codec config: {error}") from error


PRESETS: dict[str, CodecConfig] = {
    "tiny": CodecConfig(
        sample_rate=8_000,
        encoder_strides=(2, 4, 5),
        base_channels=4,
        max_channels=16,
        latent_dim=8,
        residual_kernel_size=3,
        dilations=(1, 3),
        num_levels=2,
        codebook_size=16,
        num_coarse_levels=1,
        kmeans_iters=2,
        ema_decay=0.9,
    ),
    "small": CodecConfig(),
    "base": CodecConfig(base_channels=32, max_channels=512, latent_dim=128, ema_decay=0.99),
}


def get_preset(name: str, **overrides: Any) -> CodecConfig:
    """A named preset, optionally with some fields replaced."""
    if name not in PRESETS:
        raise CodecConfigError(f"unknown codec preset {name!r} (choose from {', '.join(PRESETS)})")
    return replace(PRESETS[name], **overrides) if overrides else PRESETS[name]
