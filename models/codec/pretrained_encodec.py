"""Meta's pretrained EnCodec (Défossez et al., 2022, "High Fidelity Neural Audio Compression") as an
acoustic tokenizer, loaded from a local directory in `transformers` format.

SingSong (Donahue et al., 2023) and AudioLM (Borsos et al., 2022) take acoustic tokens from a residual-VQ
codec (SoundStream); EnCodec is the openly released equivalent. The 24 kHz mono model
(`facebook/encodec_24khz`, converted to `transformers`) runs at 75 frames/s with 1024-entry codebooks;
its bandwidth selects how many residual levels are used:

    1.5 kbps -> 2 codebooks, 3 -> 4, 6 -> 8, 12 -> 16, 24 -> 32   (each level costs 75 * 10 bits/s)

Following AudioLM, the first `num_coarse_levels` levels are the "coarse" acoustic tokens (modelled by the
coarse transformer) and the remaining ones the "fine" tokens. Because the quantizer is residual, audio can
be decoded from any prefix of the levels (`decode` accepts `[B, K', F]` with `K' <= K`), which gives a
lower-quality preview from the coarse tokens alone.

The model is never downloaded: `path` must be a directory written by `EncodecModel.save_pretrained` (or a
hub snapshot copied by the user), read with `local_files_only=True`. Models that normalise and chunk their
input (the 48 kHz stereo model) need per-chunk scales that a token stream does not carry, so they are
rejected with a clear message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from core.errors import SingsongError
from models.tokenizer import AudioTokenizer

if TYPE_CHECKING:
    from transformers import EncodecModel


class EncodecLoadError(SingsongError):
    """A pretrained EnCodec directory is missing, incomplete, of another model type or unsupported."""


def _load_model(directory: Path) -> EncodecModel:
    """`EncodecModel.from_pretrained(directory, local_files_only=True)` with one-line errors."""
    if not directory.is_dir():
        raise EncodecLoadError(f"{directory}: EnCodec model directory does not exist")
    if not (directory / "config.json").is_file():
        raise EncodecLoadError(f"{directory}: not a transformers model directory (config.json is missing)")
    from transformers import AutoConfig, EncodecModel  # deferred: heavy import

    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, KeyError) as error:
        raise EncodecLoadError(f"{directory}: unreadable model config ({error})") from error
    if config.model_type != "encodec":
        raise EncodecLoadError(f"{directory}: expected an EnCodec model, found '{config.model_type}'")
    try:
        return EncodecModel.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise EncodecLoadError(f"{directory}: cannot load EnCodec weights ({error})") from error


class EncodecTokenizer(AudioTokenizer):
    """Pretrained EnCodec: waveform `[B, C, T]` <-> codes `[B, K, F]` (75 Hz for the 24 kHz model).

    Args:
        source: a local `transformers` EnCodec directory (`config.json` + weights), or an already loaded
            `EncodecModel` (to share one model between tokenizers of different bandwidths).
        bandwidth: target bandwidth in kbps, one of the model's `target_bandwidths`; sets K.
        num_coarse_levels: how many of the K levels are "coarse" (default: half of them, at least 1).
        device: torch device for the model.
    """

    def __init__(
        self,
        source: str | Path | EncodecModel,
        *,
        bandwidth: float = 6.0,
        num_coarse_levels: int | None = None,
        device: str | torch.device = "cpu",
    ):
        if isinstance(source, str | Path):
            model, directory = _load_model(Path(source).expanduser()), Path(source).expanduser()
        else:
            model, directory = source, None
        config = model.config
        if config.chunk_length_s is not None or config.normalize:
            raise EncodecLoadError(
                f"{directory or 'model'}: this EnCodec variant chunks and normalises its input (like the "
                "48 kHz model); only unchunked models such as facebook/encodec_24khz are supported"
            )
        bandwidths = tuple(float(b) for b in config.target_bandwidths)
        if float(bandwidth) not in bandwidths:
            raise EncodecLoadError(
                f"bandwidth {bandwidth} kbps is not supported by {directory or 'this model'}; "
                f"choose one of {list(bandwidths)}"
            )
        self.model = model.eval().to(device)
        self.path = directory
        self.bandwidth = float(bandwidth)
        self.bandwidths = bandwidths
        self._num_codebooks = self.model.quantizer.get_num_quantizers_for_bandwidth(self.bandwidth)
        coarse = max(1, self._num_codebooks // 2) if num_coarse_levels is None else num_coarse_levels
        if not 1 <= coarse <= self._num_codebooks:
            raise EncodecLoadError(
                f"num_coarse_levels must be in [1, {self._num_codebooks}] at {self.bandwidth} kbps, got {coarse}"
            )
        self.num_coarse_levels = coarse
        self.hop_length = int(config.hop_length)
        self._sample_rate = int(config.sampling_rate)
        self._channels = int(config.audio_channels)
        self._cardinality = int(config.codebook_size)

    @staticmethod
    def codebooks_for_bandwidth(bandwidth: float, *, frame_rate: float = 75.0, cardinality: int = 1024) -> int:
        """Residual levels used at `bandwidth` kbps (each costs `frame_rate * log2(cardinality)` bits/s)."""
        bits_per_level = frame_rate * (cardinality - 1).bit_length()
        return max(1, int(bandwidth * 1000 // bits_per_level))

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def frame_rate(self) -> float:
        return self._sample_rate / self.hop_length

    @property
    def num_codebooks(self) -> int:
        return self._num_codebooks

    @property
    def num_fine_levels(self) -> int:
        return self._num_codebooks - self.num_coarse_levels

    @property
    def cardinality(self) -> int:
        return self._cardinality

    @property
    def can_decode(self) -> bool:
        return True

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    @torch.no_grad()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, C, T]` float waveform at `sample_rate` -> `[B, K, F]` int64 codes, `F = ceil(T / hop)`."""
        if wav.dim() != 3 or wav.shape[1] != self._channels:
            raise ValueError(f"expected a waveform [B, {self._channels}, T], got shape {tuple(wav.shape)}")
        if wav.shape[-1] == 0:
            return torch.zeros(wav.shape[0], self._num_codebooks, 0, dtype=torch.long, device=wav.device)
        output = self.model.encode(wav.float().to(self.device), bandwidth=self.bandwidth, return_dict=True)
        codes = output.audio_codes  # [chunks=1, B, K, F]
        return codes[0].long().to(wav.device)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """`[B, K', F]` codes (the first K' <= K levels) -> `[B, C, F * hop]` waveform."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self._num_codebooks:
            raise ValueError(
                f"expected codes [B, K', F] with 1 <= K' <= {self._num_codebooks}, got shape {tuple(codes.shape)}"
            )
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self._cardinality):
            raise ValueError(f"codes must lie in [0, {self._cardinality})")
        batch, _, frames = codes.shape
        if frames == 0:
            return torch.zeros(batch, self._channels, 0, device=codes.device)
        output = self.model.decode(codes.long().to(self.device)[None], [None], return_dict=True)
        return output.audio_values[..., : frames * self.hop_length].to(codes.device)

    def decode_coarse(self, codes: torch.Tensor) -> torch.Tensor:
        """Decode from the coarse levels only (`codes[:, :num_coarse_levels]`)."""
        return self.decode(codes[:, : self.num_coarse_levels])
