"""Ground-truth comparisons of accompaniments: chroma similarity to the true instrumental, Fréchet distance.

When a song's true instrumental exists (held-out corpus songs), two more questions can be asked:

* **Chroma similarity** — does the accompaniment play the same harmony at the same time as the truth? The mean
  over frames of the cosine similarity between the two constant-Q chromagrams (`fit.chromagram`), both
  averaged over 0.5 s windows (the harmonic rhythm, not note attacks, is what should match). 1 = the same
  pitch classes in the same proportions throughout; unrelated tonal music lands around 0.5-0.7 (chroma is
  non-negative, so cosines are never ~0).
* **Fréchet distance** between two *sets* of accompaniments — do they sound like the same kind of music? As the
  Fréchet Audio Distance (Kilgour et al., 2019): fit a Gaussian to each set's embeddings and compute
  `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`. FAD's VGGish embedding needs downloaded weights, so
  the default embedding is the project's own: per-clip mean and standard deviation of the weight-free
  semantic features (`models/semantic/features.py`: MFCC, deltas, pitch-class salience, pitch, spectral
  statistics; 88 dimensions), each dimension scaled by its deviation over both sets. Any other embedding
  plugs in from a local path (`load_embedder("package.module:factory", path)`). With a few dozen clips the
  estimate is biased upwards (Binkowski et al., 2018): compare rows computed on the same number of songs,
  never absolute values across set sizes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.audio import resample
from core.errors import SingsongError
from pipelines.evaluation.fit import CHROMA_RATE, chromagram

#: `embed(audio [T], sample_rate) -> [D]`: one vector per clip.
Embedder = Callable[[np.ndarray, int], np.ndarray]


def _pool(chroma: np.ndarray, frames: int) -> np.ndarray:
    """Average `[12, F]` over non-overlapping blocks of `frames` -> `[12, F // frames]` (at least one)."""
    blocks = max(1, chroma.shape[1] // frames)
    return chroma[:, : blocks * frames].reshape(12, blocks, -1).mean(axis=2) if chroma.shape[1] >= frames else chroma


def chroma_similarity(chroma_a: np.ndarray, chroma_b: np.ndarray, *, window: float = 0.5) -> float:
    """Mean cosine similarity of two chromagrams `[12, F]` (same rate) over `window`-second blocks.

    The shorter one sets the length; blocks where either is silent count as 0 unless both are silent (1):
    silence where the truth plays is a mismatch, silence where the truth is silent is not.
    """
    frames = min(chroma_a.shape[1], chroma_b.shape[1])
    if frames == 0:
        raise SingsongError("chroma_similarity needs non-empty chromagrams")
    width = max(1, round(window * CHROMA_RATE))
    a, b = _pool(chroma_a[:, :frames], width), _pool(chroma_b[:, :frames], width)
    norm_a, norm_b = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    floor_a, floor_b = 1e-3 * norm_a.max(initial=0.0), 1e-3 * norm_b.max(initial=0.0)
    silent_a, silent_b = norm_a <= floor_a, norm_b <= floor_b
    cosine = (a * b).sum(axis=0) / np.maximum(norm_a * norm_b, 1e-12)
    cosine = np.where(silent_a | silent_b, (silent_a & silent_b).astype(float), cosine)
    return float(cosine.mean())


def audio_chroma_similarity(audio: np.ndarray, truth: np.ndarray, sample_rate: int) -> float:
    """`chroma_similarity` of mono `audio [T]` and mono `truth [T]`, both at `sample_rate`."""
    return chroma_similarity(chromagram(audio, sample_rate), chromagram(truth, sample_rate))


# ------------------------------------------------------------------------------------------ embeddings
@lru_cache(maxsize=1)
def _feature_extractor():
    from models.semantic.features import BuiltinFeatureExtractor

    return BuiltinFeatureExtractor()


def builtin_embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono `audio [T]` -> `[2 D]`: mean and standard deviation over frames of the built-in semantic features."""
    import torch

    extractor = _feature_extractor()
    wave = resample(np.asarray(audio, np.float32), sample_rate, extractor.sample_rate)
    with torch.inference_mode():
        features = extractor.extract(torch.from_numpy(np.ascontiguousarray(wave))[None, None])[0].numpy()
    return np.concatenate([features.mean(axis=0), features.std(axis=0)]).astype(np.float64)


def load_embedder(spec: str = "builtin", path: str | Path | None = None) -> Embedder:
    """`"builtin"`, or `"package.module:factory"` whose `factory(path)` returns an `Embedder` (for standard
    embeddings such as VGGish or CLAP whose weights the user has locally; nothing is downloaded)."""
    if spec == "builtin":
        return builtin_embedding
    module_name, sep, attr = spec.partition(":")
    if not sep:
        raise SingsongError(f"embedding must be 'builtin' or package.module:factory, got {spec!r}")
    if path is not None and not Path(path).exists():
        raise SingsongError(f"embedding weights {path} do not exist")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise SingsongError(f"cannot load embedding factory {spec!r}: {error}") from error
    return factory(path)


def frechet_distance(
    embeddings_a: np.ndarray,
    embeddings_b: np.ndarray,
    *,
    standardise: bool = True,
    covariance: str = "auto",
    eps: float = 1e-6,
) -> float:
    """Fréchet distance between Gaussians fitted to `[N, D]` and `[M, D]` embeddings (N, M >= 2).

    `standardise`: divide every dimension by its standard deviation over both sets pooled first, so no
    feature dominates by its units (the built-in embedding mixes MFCCs, chroma and log energies) and the
    distance is symmetric. `eps` is added to the covariance diagonals when their product is singular (few
    clips, many dimensions), as the reference FID/FAD implementations do. Rounding can leave -1e-12: clamped.

    `covariance`: "full", "diagonal" (the Fréchet distance between Gaussians with diagonal covariances,
    `sum (mu_a - mu_b)^2 + (sd_a - sd_b)^2`), or "auto": full when both sets have more clips than dimensions,
    else diagonal — a full covariance from 20 clips in 88 dimensions is rank 19 and its square-root term is
    dominated by estimation noise (measured on sets of 6 constructed songs vs 6 others and vs 6 noise clips,
    built-in embedding: 124 and 270 with full covariances, 50 and 255 with diagonal ones).
    """
    from scipy import linalg  # here, not at the top: the CLI frame imports this module to build its parser

    a, b = np.asarray(embeddings_a, np.float64), np.asarray(embeddings_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise SingsongError(f"frechet_distance needs [N, D] and [M, D] with N, M >= 2; got {a.shape}, {b.shape}")
    if standardise:
        scale = np.concatenate([a, b]).std(axis=0) + 1e-8
        a, b = a / scale, b / scale
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    if covariance not in ("auto", "full", "diagonal"):
        raise SingsongError(f"covariance must be auto, full or diagonal, got {covariance!r}")
    if covariance == "diagonal" or (covariance == "auto" and min(len(a), len(b)) <= a.shape[1]):
        spread = (a.std(axis=0, ddof=1) - b.std(axis=0, ddof=1)) ** 2
        return float(((mu_a - mu_b) ** 2).sum() + spread.sum())
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():
        offset = np.eye(len(mu_a)) * eps
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    return max(0.0, float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root)))


def set_frechet_distance(
    audios: Sequence[np.ndarray], references: Sequence[np.ndarray], sample_rate: int, embed: Embedder | None = None
) -> float:
    """Fréchet distance between a set of mono clips and a reference set (e.g. the true instrumentals)."""
    embed = embed or builtin_embedding
    return frechet_distance(
        np.stack([embed(x, sample_rate) for x in references]), np.stack([embed(x, sample_rate) for x in audios])
    )
