"""Configuration of the spectral (frequency-domain, frame-rate) codec and its named presets.

A `SpectralCodecConfig` fully determines the model: it is stored verbatim in the checkpoint's `config.json`
(kind "spectral_codec") and rebuilt with `build_spectral_codec(SpectralCodecConfig.from_dict(...))`.

Frame rate is `sample_rate / (hop_length * stack)`: the default analyses 50 Hz log-mel frames and stacks two
per code frame, so codes run at 25 Hz — half the generation steps of a 50 Hz codec for the cascade.

Presets:

* `tiny`  - unit tests: 8 kHz, 32 bands, 2 levels x 16 codes, a few thousand parameters.
* `small` - the shipped configuration: 24 kHz, 256 bands, 25 Hz x 8 levels x 1024 codes.
* `small50` - the same at 50 Hz (no stacking), for the frame-rate comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from models.codec.config import CodecConfigError
from models.codec.phase import PHASE_INITS


@dataclass(frozen=True)
class SpectralCodecConfig:
    """Architecture of the log-mel encoder/decoder + residual VQ codec.

    Attributes:
        sample_rate, channels: audio format `encode` expects and `decode` returns (mono only).
        n_fft, hop_length, n_mels, fmax, log_floor: the log-mel front end (see `models/codec/mel.py`).
        stack: consecutive log-mel frames per code frame (2 -> 25 Hz at hop 480).
        hidden: channels of the frame-rate ConvNeXt stacks.
        blocks: ConvNeXt blocks in the encoder and in the decoder (each).
        kernel_size: depthwise kernel of a block, in code frames.
        latent_dim: dimension of the quantized latent.
        num_levels, codebook_size, num_coarse_levels: the residual VQ and its coarse/fine split.
        ema_decay, kmeans_iters, dead_code_ratio, quantizer_dropout: as in `CodecConfig`.
        griffin_lim_iters, griffin_lim_momentum, griffin_lim_init: phase reconstruction at decode time; the
            init is "random" or "peaks" (`models.codec.phase.peak_phase`). Decode-time only, like high_band.
        nnls_iters: multiplicative NNLS updates of the mel -> linear magnitude inverse.
        noise_fill: level of bands decoded at the floor, as a fraction of it (0: silent; `mel.py`).
        high_band: what decoding puts above fmax: "none" (silence) or "slope" (blind bandwidth extension,
            `mel.extend_high_band`). Only the decoder reads it, so it can change on a trained codec.
    """

    sample_rate: int = 24_000
    channels: int = 1
    n_fft: int = 2048
    hop_length: int = 480
    n_mels: int = 256
    fmax: float = 8000.0
    log_floor: float = 1e-2
    stack: int = 2
    hidden: int = 192
    blocks: int = 3
    kernel_size: int = 5
    latent_dim: int = 128
    num_levels: int = 8
    codebook_size: int = 1024
    num_coarse_levels: int = 3
    ema_decay: float = 0.95
    kmeans_iters: int = 4
    dead_code_ratio: float = 0.4
    quantizer_dropout: float = 0.5
    griffin_lim_iters: int = 32
    griffin_lim_momentum: float = 0.99
    griffin_lim_init: str = "random"
    nnls_iters: int = 10
    noise_fill: float = 0.0
    high_band: str = "none"

    def __post_init__(self) -> None:
        problems = []
        if self.channels != 1:
            problems.append("the spectral codec is mono (channels must be 1)")
        if self.sample_rate <= 0 or self.hop_length <= 0 or self.n_fft < self.hop_length:
            problems.append("sample_rate and hop_length must be positive and n_fft >= hop_length")
        if not 0 < self.fmax <= self.sample_rate / 2 or self.n_mels < 2 or self.log_floor <= 0:
            problems.append("fmax must be in (0, sample_rate / 2], n_mels >= 2 and log_floor > 0")
        if self.stack < 1 or self.hidden < 1 or self.blocks < 0 or self.kernel_size % 2 == 0:
            problems.append("stack and hidden must be positive, blocks >= 0 and kernel_size odd")
        if not 1 <= self.num_coarse_levels <= self.num_levels or self.codebook_size < 2:
            problems.append(f"num_coarse_levels must be in 1..num_levels ({self.num_levels}), codebook_size >= 2")
        if not 0.0 < self.ema_decay < 1.0 or not 0.0 <= self.quantizer_dropout <= 1.0:
            problems.append("ema_decay must be in (0, 1) and quantizer_dropout in [0, 1]")
        if self.griffin_lim_iters < 0 or not 0.0 <= self.griffin_lim_momentum <= 1.0 or self.nnls_iters < 0:
            problems.append("griffin_lim_iters and nnls_iters must be >= 0, griffin_lim_momentum in [0, 1]")
        if self.griffin_lim_init not in PHASE_INITS:
            problems.append(f"griffin_lim_init must be one of {', '.join(PHASE_INITS)}, got {self.griffin_lim_init!r}")
        if not 0.0 <= self.noise_fill < 1.0:
            problems.append("noise_fill must be in [0, 1)")
        if self.high_band not in ("none", "slope"):
            problems.append(f"high_band must be 'none' or 'slope', got {self.high_band!r}")
        elif self.high_band == "slope" and self.fmax < self.sample_rate / 4:
            problems.append("high_band 'slope' copies the band below fmax up: fmax must be >= sample_rate / 4")
        if problems:
            raise CodecConfigError("invalid spectral codec config: " + "; ".join(problems))

    @property
    def code_hop(self) -> int:
        """Audio samples per code frame."""
        return self.hop_length * self.stack

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.code_hop

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpectralCodecConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise CodecConfigError(f"unknown spectral codec config keys: {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as error:
            raise CodecConfigError(f"invalid spectral codec config: {error}") from error


# How the shipped codecs decode (decode-time fields only: training never reads them): noise fill and the
# high-band extension (`mel.py`), Griffin-Lim from the phase-vocoder start with momentum 0.9 (`phase.py`).
_SHIPPED_DECODER: dict[str, Any] = {
    "noise_fill": 0.3,
    "high_band": "slope",
    "griffin_lim_init": "peaks",
    "griffin_lim_momentum": 0.9,
}

SPECTRAL_PRESETS: dict[str, SpectralCodecConfig] = {
    "tiny": SpectralCodecConfig(
        sample_rate=8_000,
        n_fft=256,
        hop_length=80,
        n_mels=32,
        fmax=4000.0,
        hidden=16,
        blocks=1,
        kernel_size=3,
        latent_dim=8,
        num_levels=2,
        codebook_size=16,
        num_coarse_levels=1,
        kmeans_iters=2,
        ema_decay=0.9,
        griffin_lim_iters=8,
        nnls_iters=4,
    ),
    "small": SpectralCodecConfig(**_SHIPPED_DECODER),
    "small50": SpectralCodecConfig(stack=1, **_SHIPPED_DECODER),
}


def get_spectral_preset(name: str, **overrides: Any) -> SpectralCodecConfig:
    """A named preset, optionally with some fields replaced."""
    if name not in SPECTRAL_PRESETS:
        raise CodecConfigError(f"unknown spectral codec preset {name!r} (choose from {', '.join(SPECTRAL_PRESETS)})")
    return replace(SPECTRAL_PRESETS[name], **overrides) if overrides else SPECTRAL_PRESETS[name]
