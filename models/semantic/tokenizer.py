"""The semantic tokenizer: feature extractor + standardisation + k-means centroids -> one token stream.

This is the "semantic" tokenizer of AudioLM (Borsos et al., 2022) as used by SingSong (Donahue et al.,
2023): w2v-BERT activations quantized with k-means (k=1024, 25 Hz). Here the features come from a
`FeatureExtractor` (built-in DSP features or a local HuBERT-style encoder, see `features.py` and
`hubert.py`); each feature dimension is standardised with the training-set mean and standard deviation
(as is usual before k-means on HuBERT features), multiplied by the extractor's `feature_weights()`, and
assigned to the nearest centroid.

    wav [B, C, T] -downmix-> [B, 1, T] -extract-> [B, F, D] -(x - mean) / std * w-> -argmin-> [B, 1, F]

`encode` expects audio at the extractor's `sample_rate` (16 kHz for both backends); resample before
calling it (`core.audio.load_audio(path, sample_rate=tokenizer.sample_rate)`). Multi-channel input is
averaged to mono. Tokens cannot be decoded to audio (`can_decode` is False).

Checkpoints (`models.checkpoint`, kind `semantic_tokenizer`) hold the centroids `[k, D]`, `mean`, `std`
and `weights` `[D]` as safetensors, and the extractor backend and settings as JSON. For the pretrained
encoder backend only its local path and layer are stored, never its weights.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.semantic.errors import SemanticTokenizerError
from models.semantic.features import BuiltinFeatureConfig, BuiltinFeatureExtractor, FeatureExtractor
from models.semantic.kmeans import KMeansConfig, assign, cluster_usage, fit_kmeans
from models.tokenizer import AudioTokenizer

KIND = "semantic_tokenizer"
BACKENDS = ("builtin", "harmony", "hubert")


def build_feature_extractor(
    backend: str, config: dict[str, Any] | None = None, *, device: str | torch.device = "cpu"
) -> FeatureExtractor:
    """Rebuild an extractor from its backend name and `extractor.config()` dictionary."""
    config = dict(config or {})
    try:
        if backend == "builtin":
            return BuiltinFeatureExtractor(BuiltinFeatureConfig(**config)).to(device)
        if backend == "harmony":
            from models.semantic.harmony import HarmonyFeatureConfig, HarmonyFeatureExtractor

            return HarmonyFeatureExtractor(HarmonyFeatureConfig(**config)).to(device)
        if backend == "hubert":
            from models.semantic.hubert import PretrainedEncoderConfig, PretrainedEncoderFeatureExtractor

            return PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(**config), device=device)
    except TypeError as error:  # unknown or missing settings
        raise SemanticTokenizerError(f"invalid settings for the '{backend}' feature extractor: {error}") from error
    raise SemanticTokenizerError(f"unknown feature backend '{backend}' (choose from {', '.join(BACKENDS)})")


class SemanticTokenizer(AudioTokenizer):
    """Waveform `[B, C, T]` at `sample_rate` -> k-means tokens `[B, 1, F]` at `frame_rate`."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        *,
        centroids: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        weights: torch.Tensor | None = None,
    ):
        dim = extractor.dim
        weights = extractor.feature_weights() if weights is None else weights
        if centroids.dim() != 2 or centroids.shape[1] != dim:
            raise SemanticTokenizerError(
                f"centroids have shape {tuple(centroids.shape)}, expected [k, {dim}] for this extractor"
            )
        for name, tensor in (("mean", mean), ("std", std), ("weights", weights)):
            if tuple(tensor.shape) != (dim,):
                raise SemanticTokenizerError(f"{name} has shape {tuple(tensor.shape)}, expected [{dim}]")
        self.extractor = extractor
        self.centroids = centroids.float()
        self.mean = mean.float()
        self.std = std.float()
        self.weights = weights.float()

    # AudioTokenizer interface ---------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.extractor.sample_rate

    @property
    def channels(self) -> int:
        return 1

    @property
    def frame_rate(self) -> float:
        return self.extractor.frame_rate

    @property
    def num_codebooks(self) -> int:
        return 1

    @property
    def cardinality(self) -> int:
        return int(self.centroids.shape[0])

    def num_frames(self, num_samples: int) -> int:
        return self.extractor.num_frames(num_samples)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, C, T]` at `sample_rate` (channels averaged) -> `[B, 1, F]` int64 tokens in `[0, k)`."""
        features = self.features(wav)
        return assign(features, self.centroids.to(features.device)).unsqueeze(1)

    # Extras ----------------------------------------------------------------------------------------
    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, C, T]` -> standardised, weighted features `[B, F, D]` (the space the centroids live in)."""
        if wav.dim() != 3:
            raise SemanticTokenizerError(f"expected a waveform [B, C, T], got shape {tuple(wav.shape)}")
        return self.normalize(self.extractor.extract(wav.float().mean(dim=1, keepdim=True)))

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """Raw extractor features `[..., D]` -> `(x - mean) / std * weights`."""
        device = features.device
        return (features - self.mean.to(device)) / self.std.to(device) * self.weights.to(device)

    def to(self, device: str | torch.device) -> SemanticTokenizer:
        self.extractor.to(device)
        self.centroids, self.mean, self.std, self.weights = (
            t.to(device) for t in (self.centroids, self.mean, self.std, self.weights)
        )
        return self

    def save(self, directory: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write a `semantic_tokenizer` checkpoint to `directory`."""
        config = {
            "k": self.cardinality,
            "dim": self.extractor.dim,
            "backend": self.extractor.backend,
            "extractor": self.extractor.config(),
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
        }
        tensors = {"centroids": self.centroids, "mean": self.mean, "std": self.std, "weights": self.weights}
        return save_checkpoint(directory, kind=KIND, config=config, tensors=tensors, extra=extra)


def load_semantic_tokenizer(
    directory: str | Path,
    *,
    device: str | torch.device = "cpu",
    encoder_path: str | Path | None = None,
) -> SemanticTokenizer:
    """Load a tokenizer saved by `SemanticTokenizer.save` (raises `CheckpointError` for other checkpoints).

    `encoder_path` overrides the stored local path of a pretrained encoder (`hubert` backend), e.g. after
    moving the checkpoint to another machine; the encoder must be the one the centroids were fitted on.
    """
    checkpoint = load_checkpoint(directory, kind=KIND)
    config, tensors = checkpoint.config, checkpoint.tensors
    missing = {"centroids", "mean", "std", "weights"} - set(tensors)
    if missing or "backend" not in config:
        raise CheckpointError(f"{directory}: incomplete semantic tokenizer (missing {sorted(missing) or 'backend'})")
    settings = dict(config.get("extractor") or {})
    if encoder_path is not None:
        if config["backend"] == "builtin":
            raise SemanticTokenizerError(f"{directory}: encoder_path given, but the tokenizer has no encoder")
        settings["path"] = str(encoder_path)
    extractor = build_feature_extractor(config["backend"], settings, device=device)
    if extractor.dim != config.get("dim", extractor.dim):
        raise CheckpointError(
            f"{directory}: the '{config['backend']}' extractor now yields {extractor.dim}-dim features but "
            f"the centroids were fitted on {config['dim']}-dim ones (did the encoder at its path change?)"
        )
    return SemanticTokenizer(
        extractor,
        centroids=tensors["centroids"],
        mean=tensors["mean"],
        std=tensors["std"],
        weights=tensors["weights"],
    ).to(device)


@dataclass
class SemanticFitReport:
    """What `fit_semantic_tokenizer` did."""

    k: int
    dim: int
    frames_available: int
    frames_used: int
    inertia: float  # mean squared distance to the nearest centroid (standardised, weighted space)
    iterations: int
    train_usage: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_semantic_tokenizer(
    extractor: FeatureExtractor,
    features: Iterable[torch.Tensor | np.ndarray],
    *,
    kmeans: KMeansConfig | None = None,
    max_frames: int | None = None,
) -> tuple[SemanticTokenizer, SemanticFitReport]:
    """Fit standardisation and k-means on raw extractor features.

    Args:
        extractor: the extractor that produced `features` (it becomes part of the tokenizer).
        features: arrays `[F_i, D]` (or `[1, F_i, D]`), e.g. one per training file.
        kmeans: k, seed and MiniBatchKMeans settings.
        max_frames: if more frames are given, a uniformly random subset of this size (drawn with
            `kmeans.seed`) is used, so the fit is deterministic for a given input.
    """
    kmeans = kmeans or KMeansConfig()
    parts = []
    for item in features:
        array = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
        array = array.reshape(-1, array.shape[-1]) if array.size else array.reshape(0, extractor.dim)
        if array.shape[-1] != extractor.dim:
            raise SemanticTokenizerError(f"feature dim {array.shape[-1]} != extractor dim {extractor.dim}")
        parts.append(array.astype(np.float32, copy=False))
    data = np.concatenate(parts) if parts else np.zeros((0, extractor.dim), np.float32)
    available = data.shape[0]
    if max_frames is not None and available > max_frames:
        rng = np.random.default_rng(kmeans.seed)
        data = data[np.sort(rng.choice(available, size=max_frames, replace=False))]
    if data.shape[0] < max(kmeans.k, 2):
        raise SemanticTokenizerError(
            f"only {data.shape[0]} feature frames for k={kmeans.k} clusters; use more audio or a smaller k"
        )
    mean = torch.from_numpy(data.mean(axis=0, dtype=np.float64)).float()
    std = torch.from_numpy(data.std(axis=0, dtype=np.float64)).float().clamp_min(1e-5)
    placeholder = torch.zeros(kmeans.k, extractor.dim)
    tokenizer = SemanticTokenizer(extractor, centroids=placeholder, mean=mean, std=std)
    normalized = tokenizer.normalize(torch.from_numpy(data))
    result = fit_kmeans(normalized, kmeans)
    tokenizer.centroids = result.centroids
    tokens = assign(normalized, result.centroids)
    report = SemanticFitReport(
        k=kmeans.k,
        dim=extractor.dim,
        frames_available=available,
        frames_used=int(data.shape[0]),
        inertia=result.inertia,
        iterations=result.iterations,
        train_usage=cluster_usage(tokens, kmeans.k).as_dict(),
    )
    return tokenizer, report
