"""Features from a local pretrained self-supervised speech encoder (HuBERT, wav2vec 2.0, WavLM, ...).

AudioLM (Borsos et al., 2022) takes semantic tokens from an intermediate layer of w2v-BERT (Chung et al.,
2021), quantized with k-means; later systems do the same with HuBERT (Hsu et al., 2021) layers, e.g.
layer 6 of HuBERT-Base or 9 of HuBERT-Large (intermediate layers carry the most phonetic information).
This backend loads any `transformers` encoder of the wav2vec2 family from a *local directory* (never the
hub) and returns hidden states of a chosen transformer layer, averaged from the encoder's native frame
rate (50 Hz for a 320-sample hop at 16 kHz) down to the semantic frame rate (25 Hz by default).

Frame alignment: the convolutional feature encoder has hop `h` (product of `conv_stride`) and receptive
field `r` (400 samples for the standard stack). The signal is padded by `(r - h) / 2` samples on the left
so that native frame `i` is centred on the middle of hop `i`; native frames are then averaged into output
frames exactly like the built-in extractor (`features.pool_frames`), giving `ceil(T / H)` frames.

Input normalisation follows the model's `preprocessor_config.json` (`do_normalize`: zero mean and unit
variance per utterance, as `Wav2Vec2FeatureExtractor` does); without that file it is inferred from the
architecture (models with a layer-normalised conv stack, `feat_extract_norm == "layer"`, were trained
with normalised input). Long inputs are processed in chunks (default 30 s, with real signal as the
convolutional context at chunk edges) to bound the quadratic attention cost; attention context, and for
HuBERT-Base's group-normalised conv stack the normalisation statistics, then span one chunk, so features
of a long input differ slightly from a single pass (use the same `chunk_seconds` for fitting and use).

Only the path and the layer are stored in tokenizer checkpoints, never the encoder weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models.semantic.errors import PretrainedEncoderError, SemanticTokenizerError
from models.semantic.features import FeatureExtractor, pool_frames, target_hop

PREPROCESSOR_FILE = "preprocessor_config.json"


@dataclass
class PretrainedEncoderConfig:
    """Settings of `PretrainedEncoderFeatureExtractor` (stored in tokenizer checkpoints)."""

    path: str
    layer: int = 6  # hidden_states index: 0 = transformer input, L = output of transformer layer L
    frame_rate: float = 25.0
    chunk_seconds: float = 30.0


def _receptive_field(kernels: list[int], strides: list[int]) -> int:
    field_size = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        field_size = (field_size - 1) * stride + kernel
    return field_size


class PretrainedEncoderFeatureExtractor(FeatureExtractor):
    """Hidden layer `layer` of a local wav2vec2-family encoder, pooled to `frame_rate`: `[B, F, hidden]`."""

    backend = "hubert"

    def __init__(self, config: PretrainedEncoderConfig, *, device: str | torch.device = "cpu"):
        self.cfg = config
        directory = Path(config.path).expanduser()
        if not directory.is_dir():
            raise PretrainedEncoderError(f"{directory}: pretrained encoder directory does not exist")
        if not (directory / "config.json").is_file():
            raise PretrainedEncoderError(
                f"{directory}: not a transformers model directory (config.json is missing); "
                "save one with `model.save_pretrained(dir)`"
            )
        from transformers import AutoConfig, AutoModel  # deferred: heavy import

        try:
            model_config = AutoConfig.from_pretrained(directory, local_files_only=True)
            model = AutoModel.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, KeyError) as error:
            raise PretrainedEncoderError(f"{directory}: cannot load the encoder ({error})") from error
        kernels = getattr(model_config, "conv_kernel", None)
        strides = getattr(model_config, "conv_stride", None)
        if kernels is None or strides is None or not hasattr(model_config, "num_hidden_layers"):
            raise PretrainedEncoderError(
                f"{directory}: unsupported encoder type '{model_config.model_type}' "
                "(expected a wav2vec2-family model with a convolutional feature encoder)"
            )
        num_layers = int(model_config.num_hidden_layers)
        if not 0 <= config.layer <= num_layers:
            raise SemanticTokenizerError(f"layer must be in [0, {num_layers}] for {directory}, got {config.layer}")

        preprocessor: dict[str, Any] = {}
        if (directory / PREPROCESSOR_FILE).is_file():
            try:
                preprocessor = json.loads((directory / PREPROCESSOR_FILE).read_text())
            except json.JSONDecodeError as error:
                raise PretrainedEncoderError(f"{directory / PREPROCESSOR_FILE}: corrupt ({error})") from error
        self._sample_rate = int(preprocessor.get("sampling_rate", 16_000))
        self.do_normalize = bool(
            preprocessor.get("do_normalize", getattr(model_config, "feat_extract_norm", "group") == "layer")
        )
        self._hop = target_hop(self._sample_rate, config.frame_rate)
        self.native_hop = math.prod(strides)
        self.receptive_field = _receptive_field(list(kernels), list(strides))
        if self.native_hop > self._hop:
            raise SemanticTokenizerError(
                f"frame rate {config.frame_rate} Hz is above the encoder's native rate "
                f"{self._sample_rate / self.native_hop:g} Hz"
            )
        # Layers above the chosen one are never needed: drop them (hidden_states[layer] is unchanged).
        layers = getattr(getattr(model, "encoder", None), "layers", None)
        if isinstance(layers, torch.nn.ModuleList):
            model.encoder.layers = layers[: max(config.layer, 1)]
        self.model = model.eval().to(device)
        self.hidden_size = int(model_config.hidden_size)
        self.model_type = str(model_config.model_type)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def frame_rate(self) -> float:
        return self.cfg.frame_rate

    @property
    def dim(self) -> int:
        return self.hidden_size

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def to(self, device: str | torch.device) -> PretrainedEncoderFeatureExtractor:
        self.model.to(device)
        return self

    @torch.no_grad()
    def extract(self, wav: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        x = self._check_input(wav).to(device)  # [B, T]
        batch, length = x.shape
        num_frames = self.num_frames(length)
        if num_frames == 0:
            return x.new_zeros(batch, 0, self.dim)
        if self.do_normalize:
            x = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, unbiased=False, keepdim=True) + 1e-7)
        chunk_frames = max(1, round(self.cfg.chunk_seconds * self.frame_rate))
        outputs = [
            self._extract_chunk(x, start, min(chunk_frames, num_frames - start))
            for start in range(0, num_frames, chunk_frames)
        ]
        return torch.cat(outputs, dim=1).float()

    def _extract_chunk(self, x: torch.Tensor, first_frame: int, num_frames: int) -> torch.Tensor:
        """Output frames `[first_frame, first_frame + num_frames)` of `x [B, T]` -> `[B, num_frames, D]`."""
        hop, native_hop = self._hop, self.native_hop
        count = math.ceil(num_frames * hop / native_hop)  # native frames covering the chunk
        left = (self.receptive_field - native_hop) // 2
        begin = first_frame * hop - left
        end = begin + (count - 1) * native_hop + self.receptive_field
        # Take real signal where it exists (context across chunk edges), zeros beyond the signal.
        segment = x[:, max(begin, 0) : min(end, x.shape[1])]
        segment = F.pad(segment, (max(0, -begin), max(0, end - x.shape[1])))
        hidden = self.model(segment, output_hidden_states=True).hidden_states[self.cfg.layer]  # [B, N, D]
        hidden = hidden[:, :count]
        return pool_frames(hidden, native_hop=native_hop, native_offset=native_hop / 2, hop=hop, num_frames=num_frames)
