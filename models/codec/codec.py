"""The neural audio codec: SEANet encoder -> residual VQ -> SEANet decoder (SoundStream / EnCodec).

`Codec` implements `AudioTokenizer`: `encode` turns a waveform `[B, C, T]` into RVQ codes `[B, K, F]` with
`F = ceil(T / hop)` (the signal is zero-padded to whole frames) and `decode` turns `[B, K', F]` codes, any
`K' <= K` leading levels, back into `[B, C, F * hop]` audio. Decoding only the first `num_coarse_levels`
levels gives the "coarse" rendition that SingSong's coarse acoustic model produces.

Long signals are processed in chunks of `chunk_seconds` with `context_frames` of extra signal on both sides
that are computed and thrown away (overlap-discard). The encoder/decoder have a finite receptive field (no
LSTM, see `seanet.py`) and every window starts on a frame boundary, so the kept centres are exactly what
whole-signal processing computes (up to float rounding): no seams, bounded memory.

Between encoder and quantizer sits a parameter-free batch normalisation (per latent channel, batch
statistics in training, running statistics at inference). A freshly initialised SEANet's latents are a large
common offset (norm ~2-4) plus a tiny signal-dependent part (~0.03), and Adam's first updates swing the
offset by more than the signal part every step; EMA codebooks k-means-fitted at step 0 are then left behind
and collapse to one or two used codes per level within 20 steps. Standardising the latents removes the
offset and gives the codebooks a stable, unit-scale target - the "internal codebook covariate shift" of Huh
et al. (2023, arXiv:2305.08842), fixed here by normalising the input instead of re-parameterising the codes.
At inference it is a fixed per-channel affine map, so chunked processing still matches whole-signal
processing.

Checkpoints are `models.checkpoint` directories of kind `"codec"` whose config is `CodecConfig.to_dict()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from models.checkpoint import load_checkpoint, save_checkpoint
from models.codec.config import CodecConfig
from models.codec.quantizer import ResidualQuantizer
from models.codec.seanet import SEANetDecoder, SEANetEncoder
from models.tokenizer import AudioTokenizer

CHECKPOINT_KIND = "codec"
#: Default chunk length for `encode`/`decode`; shorter signals are processed in one go.
DEFAULT_CHUNK_SECONDS = 30.0
#: Update rate of the latent normalisation's running statistics (time constant ~20 steps).
LATENT_NORM_MOMENTUM = 0.05


@dataclass
class CodecOutput:
    """What `Codec.forward` returns for a `[B, C, T]` input."""

    reconstruction: torch.Tensor  # [B, C, T] decoded audio, trimmed to the input length
    codes: torch.Tensor  # [B, K, F] int64
    commit_loss: torch.Tensor  # scalar
    perplexity: torch.Tensor  # [K] per-level perplexity of the codes in the batch
    usage: torch.Tensor  # [K] per-level fraction of the codebook used in the batch
    levels_used: torch.Tensor  # [B] RVQ levels each reconstruction was decoded from (quantizer dropout)


class Codec(nn.Module, AudioTokenizer):
    """SEANet + RVQ codec. Build it with `build_codec(CodecConfig(...))` or load one with `load_codec(dir)`."""

    def __init__(
        self,
        *,
        encoder: SEANetEncoder,
        latent_norm: nn.BatchNorm1d,
        decoder: SEANetDecoder,
        quantizer: ResidualQuantizer,
        sample_rate: int,
        channels: int,
        num_coarse_levels: int,
        config: CodecConfig | None = None,
    ) -> None:
        super().__init__()
        if encoder.hop_length != decoder.hop_length:
            raise ValueError(f"encoder hop {encoder.hop_length} != decoder hop {decoder.hop_length}")
        self.encoder = encoder
        self.latent_norm = latent_norm
        self.decoder = decoder
        self.quantizer = quantizer
        self._sample_rate = sample_rate
        self._channels = channels
        self._num_coarse_levels = num_coarse_levels
        self.config = config  # kept for `save_pretrained`

    # ---------------------------------------------------------------------------------- AudioTokenizer
    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def hop_length(self) -> int:
        """Samples per code frame."""
        return self.encoder.hop_length

    @property
    def frame_rate(self) -> float:
        return self._sample_rate / self.hop_length

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_levels

    @property
    def num_coarse_levels(self) -> int:
        """How many leading RVQ levels are the coarse acoustic tokens; the rest are fine."""
        return self._num_coarse_levels

    @property
    def cardinality(self) -> int:
        return self.quantizer.codebook_size

    @property
    def can_decode(self) -> bool:
        return True

    def num_frames(self, num_samples: int) -> int:
        return math.ceil(num_samples / self.hop_length)  # exact integer arithmetic

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ---------------------------------------------------------------------------------- helpers
    def _check_wav(self, wav: torch.Tensor) -> None:
        if wav.ndim != 3 or wav.shape[1] != self._channels:
            raise ValueError(f"expected a waveform [B, {self._channels}, T], got shape {tuple(wav.shape)}")
        if wav.shape[-1] == 0:
            raise ValueError("cannot encode an empty waveform")

    def _pad_to_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """Zero-pad `[B, C, T]` on the right to `ceil(T / hop) * hop` samples."""
        extra = self.num_frames(wav.shape[-1]) * self.hop_length - wav.shape[-1]
        return F.pad(wav, (0, extra)) if extra else wav

    def _latent(self, wav: torch.Tensor, *, batch_statistics: bool = False) -> torch.Tensor:
        """Frame-aligned `[B, C, hop * F]` -> normalised latents `[B, D, F]`.

        With `batch_statistics` (training) the batch normalises itself and updates the running statistics;
        otherwise the running statistics are used and nothing is modified.
        """
        latent = self.encoder(wav)
        if batch_statistics:
            return self.latent_norm(latent)
        norm = self.latent_norm
        return F.batch_norm(latent, norm.running_mean, norm.running_var, training=False, eps=norm.eps)

    def _chunk_frames(self, chunk_seconds: float | None, total_frames: int) -> int:
        if not chunk_seconds or chunk_seconds <= 0:
            return total_frames
        return max(1, round(chunk_seconds * self.frame_rate))

    # ---------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def encode(
        self, wav: torch.Tensor, *, num_levels: int | None = None, chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS
    ) -> torch.Tensor:
        """`[B, C, T]` float waveform -> `[B, K, ceil(T / hop)]` int64 codes (deterministic, no side effects).

        `num_levels` keeps only the first levels; `chunk_seconds=None` processes the signal in one go.
        """
        self._check_wav(wav)
        wav = self._pad_to_frames(wav.to(self.device, torch.float32))
        frames = wav.shape[-1] // self.hop_length

        def encode_window(window: torch.Tensor) -> torch.Tensor:
            return self.quantizer.quantize(self._latent(window), num_levels)

        return overlap_discard(
            encode_window,
            wav,
            total_frames=frames,
            chunk_frames=self._chunk_frames(chunk_seconds, frames),
            context_frames=self.encoder.context_frames,
            in_per_frame=self.hop_length,
            out_per_frame=1,
        )

    @torch.no_grad()
    def decode(self, codes: torch.Tensor, *, chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS) -> torch.Tensor:
        """`[B, K', F]` codes, `1 <= K' <= K` leading levels -> `[B, C, F * hop]` float waveform."""
        if codes.ndim != 3 or not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(
                f"expected codes [B, K', F] with 1 <= K' <= {self.num_codebooks}, got shape {tuple(codes.shape)}"
            )
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.cardinality):
            raise ValueError(f"codes must lie in [0, {self.cardinality})")
        codes = codes.to(self.device, torch.long)
        frames = codes.shape[-1]

        def decode_window(window: torch.Tensor) -> torch.Tensor:
            return self.decoder(self.quantizer.dequantize(window))

        return overlap_discard(
            decode_window,
            codes,
            total_frames=frames,
            chunk_frames=self._chunk_frames(chunk_seconds, frames),
            context_frames=self.decoder.context_frames,
            in_per_frame=1,
            out_per_frame=self.hop_length,
        )

    # ---------------------------------------------------------------------------------- training
    def forward(self, wav: torch.Tensor) -> CodecOutput:
        """Encode, quantize (updating the codebooks in training mode) and decode `[B, C, T]` in one go."""
        self._check_wav(wav)
        length = wav.shape[-1]
        latent = self._latent(self._pad_to_frames(wav), batch_statistics=self.training)
        quantized = self.quantizer(latent)
        reconstruction = self.decoder(quantized.quantized)[..., :length]
        return CodecOutput(
            reconstruction=reconstruction,
            codes=quantized.codes,
            commit_loss=quantized.commit_loss,
            perplexity=quantized.perplexity,
            usage=quantized.usage,
            levels_used=quantized.levels_used,
        )

    @torch.no_grad()
    def init_codebooks(self, wav: torch.Tensor, *, frames_per_step: int | None = None) -> None:
        """k-means-initialise the codebooks from a large batch `[B, C, T]` (SoundStream §3.3).

        The quantizer would otherwise initialise itself from the first training batch, which on CPU holds
        fewer frames than a codebook has entries: k-means then duplicates vectors, level 1 quantizes the
        batch exactly and the deeper levels see all-zero residuals. Call this before training with a few
        times `codebook_size` frames; `frames_per_step` (frames in one training batch) rescales the EMA
        usage counts to training-batch scale. A no-op once the codebooks are initialised.
        """
        if self.quantizer.initialized:
            return
        # Start the running statistics from this (large) batch rather than from mean 0 / variance 1.
        self.calibrate_latent_norm(wav)
        latent = self._latent(self._pad_to_frames(wav.to(self.device)))
        self.quantizer.initialize(latent, frames_per_step=frames_per_step)

    @torch.no_grad()
    def calibrate_latent_norm(self, wav: torch.Tensor) -> None:
        """Set the latent normalisation's running statistics to the exact statistics of `wav` `[B, C, T]`.

        The running averages lag behind an encoder that is still changing; the trainer calls this before
        every save so that inference normalises latents the way the last training batches did.
        """
        latent = self.encoder(self._pad_to_frames(wav.to(self.device)))
        self.latent_norm.running_mean.copy_(latent.mean(dim=(0, 2)))
        self.latent_norm.running_var.copy_(latent.var(dim=(0, 2)))

    # ---------------------------------------------------------------------------------- persistence
    def save_pretrained(self, directory: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write weights (safetensors) + config to `directory`, atomically."""
        if self.config is None:
            raise ValueError("this Codec was built without a CodecConfig; use build_codec(config)")
        return save_checkpoint(
            directory,
            kind=CHECKPOINT_KIND,
            config=self.config.to_dict(),
            tensors=dict(self.state_dict()),
            extra=extra,
        )

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> Codec:
        """Load a codec saved by `save_pretrained` (or the `model/` folder of a training run)."""
        return load_codec(directory, device=device)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def overlap_discard(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    total_frames: int,
    chunk_frames: int,
    context_frames: int,
    in_per_frame: int,
    out_per_frame: int,
) -> torch.Tensor:
    """Apply a frame-aligned, finite-receptive-field `fn` to `x` in windows and stitch the centres.

    `x` has `total_frames * in_per_frame` steps on its last axis and `fn` maps `n * in_per_frame` steps to
    `n * out_per_frame`. Each chunk of `chunk_frames` frames is computed from a window extended by
    `context_frames` on both sides (clipped to the signal), and only the chunk's own output is kept.
    """
    if chunk_frames >= total_frames:
        return fn(x)
    pieces = []
    for start in range(0, total_frames, chunk_frames):
        stop = min(start + chunk_frames, total_frames)
        left = max(0, start - context_frames)
        right = min(total_frames, stop + context_frames)
        y = fn(x[..., left * in_per_frame : right * in_per_frame])
        pieces.append(y[..., (start - left) * out_per_frame : (stop - left) * out_per_frame])
    return torch.cat(pieces, dim=-1)


def build_codec(config: CodecConfig) -> Codec:
    """Instantiate an untrained codec from its config."""
    conv_kwargs = dict(
        channels=config.channels,
        latent_dim=config.latent_dim,
        strides=config.encoder_strides,
        base_channels=config.base_channels,
        max_channels=config.max_channels,
        residual_kernel_size=config.residual_kernel_size,
        dilations=config.dilations,
        compress=config.compress,
    )
    quantizer = ResidualQuantizer(
        dim=config.latent_dim,
        num_levels=config.num_levels,
        codebook_size=config.codebook_size,
        ema_decay=config.ema_decay,
        kmeans_iters=config.kmeans_iters,
        dead_code_ratio=config.dead_code_ratio,
        commitment_weight=config.commitment_weight,
        dropout=config.quantizer_dropout,
    )
    return Codec(
        encoder=SEANetEncoder(**conv_kwargs),
        latent_norm=nn.BatchNorm1d(config.latent_dim, affine=False, momentum=LATENT_NORM_MOMENTUM),
        decoder=SEANetDecoder(**conv_kwargs),
        quantizer=quantizer,
        sample_rate=config.sample_rate,
        channels=config.channels,
        num_coarse_levels=config.num_coarse_levels,
        config=config,
    )


def load_codec(directory: str | Path, *, device: str | torch.device = "cpu") -> Codec:
    """Load a codec checkpoint directory, or a training run directory holding one in `model/`."""
    directory = Path(directory)
    if not (directory / "config.json").is_file() and (directory / "model" / "config.json").is_file():
        directory = directory / "model"
    checkpoint = load_checkpoint(directory, kind=CHECKPOINT_KIND)
    codec = build_codec(CodecConfig.from_dict(checkpoint.config))
    codec.load_state_dict(checkpoint.tensors)
    return codec.to(device).eval()
