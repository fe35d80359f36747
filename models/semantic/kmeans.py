"""k-means for semantic tokens: fitting (scikit-learn) and deterministic nearest-centroid assignment (torch).

AudioLM and SingSong quantize frame features with k-means (k=1024); HuBERT's unit targets are built the
same way. Fitting uses `sklearn.cluster.MiniBatchKMeans` (Sculley, 2010, "Web-scale k-means clustering")
with k-means++ seeding (Arthur & Vassilvitskii, 2007) and a fixed `random_state`, so the same frames and
seed give the same centroids. Only the centroids are kept (a `[k, D]` tensor saved as safetensors, never a
pickled estimator); assignment at tokenization time is a plain argmin in torch, so it runs on any device
and never depends on scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from models.semantic.errors import SemanticTokenizerError


@dataclass
class KMeansConfig:
    """MiniBatchKMeans settings."""

    k: int = 1024
    seed: int = 0
    batch_size: int = 0  # 0: max(4096, 4 * k), capped at the number of frames
    max_iter: int = 100  # passes over the data (early stopping usually ends sooner)
    n_init: int = 1
    max_no_improvement: int = 10


@dataclass
class KMeansResult:
    centroids: torch.Tensor  # [k, D] float32
    inertia: float  # mean squared distance of the fitted frames to their centroid
    iterations: int  # mini-batch steps run


def fit_kmeans(features: np.ndarray | torch.Tensor, config: KMeansConfig) -> KMeansResult:
    """Fit k centroids to `features [N, D]`; deterministic for a given input and `config.seed`."""
    from sklearn.cluster import MiniBatchKMeans  # deferred: only needed to fit

    data = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if data.ndim != 2:
        raise SemanticTokenizerError(f"k-means expects features [N, D], got shape {data.shape}")
    if config.k < 2:
        raise SemanticTokenizerError(f"k must be at least 2, got {config.k}")
    if data.shape[0] < config.k:
        raise SemanticTokenizerError(
            f"only {data.shape[0]} feature frames for k={config.k} clusters; use more audio or a smaller k"
        )
    if not np.isfinite(data).all():
        raise SemanticTokenizerError("features contain NaN or infinite values")
    batch_size = config.batch_size or max(4096, 4 * config.k)
    estimator = MiniBatchKMeans(
        n_clusters=config.k,
        init="k-means++",
        n_init=config.n_init,
        batch_size=min(batch_size, data.shape[0]),
        max_iter=config.max_iter,
        max_no_improvement=config.max_no_improvement,
        random_state=config.seed,
    )
    estimator.fit(data)
    centroids = torch.from_numpy(np.ascontiguousarray(estimator.cluster_centers_, dtype=np.float32))
    _, distances = assign(torch.from_numpy(data), centroids, return_distances=True)
    return KMeansResult(centroids=centroids, inertia=float(distances.mean()), iterations=int(estimator.n_steps_))


def assign(
    features: torch.Tensor,
    centroids: torch.Tensor,
    *,
    chunk_size: int = 16384,
    return_distances: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest centroid (Euclidean) for every feature vector.

    Args:
        features: `[..., D]`.
        centroids: `[k, D]`.
    Returns:
        `[...]` int64 indices in `[0, k)` (ties go to the lowest index), and with `return_distances` the
        `[...]` squared distances as well. Computed in chunks of rows to bound memory.
    """
    shape = features.shape[:-1]
    flat = features.reshape(-1, features.shape[-1]).to(centroids.dtype)
    centroid_sq = centroids.square().sum(dim=1)  # [k]
    indices, distances = [], []
    for start in range(0, flat.shape[0], chunk_size):
        rows = flat[start : start + chunk_size]
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 does not change the argmin.
        partial = centroid_sq[None, :] - 2.0 * rows @ centroids.T
        best, index = partial.min(dim=1)
        indices.append(index)
        if return_distances:
            distances.append((best + rows.square().sum(dim=1)).clamp_min(0.0))
    index = torch.cat(indices) if indices else flat.new_zeros(0, dtype=torch.long)
    if not return_distances:
        return index.reshape(shape)
    distance = torch.cat(distances) if distances else flat.new_zeros(0)
    return index.reshape(shape), distance.reshape(shape)


@dataclass
class ClusterUsage:
    """How evenly tokens use the codebook."""

    used: int  # distinct clusters seen
    perplexity: float  # exp(entropy) of the token histogram, in [1, k]; k means perfectly uniform use
    entropy_bits: float

    def as_dict(self) -> dict[str, float]:
        return {"used": self.used, "perplexity": self.perplexity, "entropy_bits": self.entropy_bits}


def cluster_usage(tokens: torch.Tensor, k: int) -> ClusterUsage:
    """Histogram statistics of `tokens` (any shape, values in `[0, k)`)."""
    counts = torch.bincount(tokens.reshape(-1).long(), minlength=k).double()
    total = counts.sum()
    if total == 0:
        return ClusterUsage(used=0, perplexity=0.0, entropy_bits=0.0)
    probs = counts[counts > 0] / total
    entropy = float(-(probs * probs.log()).sum())
    return ClusterUsage(used=int((counts > 0).sum()), perplexity=math.exp(entropy), entropy_bits=entropy / math.log(2))
