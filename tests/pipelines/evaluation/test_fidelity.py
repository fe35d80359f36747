"""Ground-truth comparisons: chroma similarity and the Fréchet distance, on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import SingsongError
from pipelines.evaluation.fidelity import (
    audio_chroma_similarity,
    builtin_embedding,
    chroma_similarity,
    frechet_distance,
    load_embedder,
)
from tests.pipelines.evaluation.songs import RATE, song


def test_chroma_similarity_ranks_truth_transposition_and_other_song() -> None:
    _, truth = song(0)
    _, up = song(1)
    _, other = song(6, 90.0)
    assert audio_chroma_similarity(truth, truth, RATE) == pytest.approx(1.0)
    same_shifted = audio_chroma_similarity(np.roll(truth, RATE // 8), truth, RATE)  # 1/8 s late: same chords
    transposed = audio_chroma_similarity(up, truth, RATE)
    unrelated = audio_chroma_similarity(other, truth, RATE)
    assert same_shifted > 0.9 > 0.5 > transposed
    assert unrelated < 0.5


def test_chroma_similarity_silence_rules() -> None:
    chroma = np.abs(np.random.default_rng(0).standard_normal((12, 200)))
    silent = np.zeros_like(chroma)
    assert chroma_similarity(chroma, silent) == 0.0  # silence where the truth plays: a mismatch
    assert chroma_similarity(silent, silent) == 1.0
    with pytest.raises(SingsongError):
        chroma_similarity(chroma[:, :0], chroma)


def test_frechet_distance_of_known_gaussians() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 3))
    b = rng.standard_normal((4000, 3))
    assert frechet_distance(a, b) == pytest.approx(0.0, abs=0.02)
    # shifting every dimension by 1 standard deviation adds |mu|^2 = 3; doubling the spread of one dimension
    # adds (2 - 1)^2 = 1 (trace term of two diagonal covariances)
    assert frechet_distance(a, b + 1.0, standardise=False) == pytest.approx(3.0, abs=0.1)
    assert frechet_distance(a, b * np.array([2.0, 1.0, 1.0]), standardise=False) == pytest.approx(1.0, abs=0.1)
    # standardised (pooled deviation sqrt(1.25) after the unit shift): units no longer matter, symmetric
    scaled = np.array([1000.0, 1.0, 0.001])
    assert frechet_distance(a * scaled, (b + 1.0) * scaled) == pytest.approx(3 / 1.25, abs=0.1)
    assert frechet_distance(a, b + 1.0) == pytest.approx(frechet_distance(b + 1.0, a))
    with pytest.raises(SingsongError):
        frechet_distance(a[:1], b)


def test_builtin_embedding_separates_kinds_of_music() -> None:
    rng = np.random.default_rng(1)

    def tonal(count: int) -> list[np.ndarray]:
        keys, tempos = rng.integers(0, 12, count), rng.integers(80, 140, count)
        return [song(int(k), float(t))[1] for k, t in zip(keys, tempos, strict=True)]

    embed = load_embedder("builtin")
    assert embed is builtin_embedding
    reference = np.stack([embed(x, RATE) for x in tonal(6)])
    assert reference.shape == (6, 88)
    near = frechet_distance(reference, np.stack([embed(x, RATE) for x in tonal(6)]))
    noise = [rng.standard_normal(8 * RATE).astype(np.float32) * 0.3 for _ in range(6)]
    far = frechet_distance(reference, np.stack([embed(x, RATE) for x in noise]))
    assert far > 3 * near  # 6 clips in 88 dimensions: the diagonal form ("auto")


def test_load_embedder_errors(tmp_path) -> None:
    with pytest.raises(SingsongError, match="builtin"):
        load_embedder("vggish")
    with pytest.raises(SingsongError, match="do not exist"):
        load_embedder("numpy:array", tmp_path / "missing.onnx")
    with pytest.raises(SingsongError, match="cannot load"):
        load_embedder("numpy:no_such_factory")
