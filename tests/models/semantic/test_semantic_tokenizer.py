"""k-means fitting/assignment and the SemanticTokenizer (built-in backend): determinism, save/load, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, save_checkpoint
from models.semantic.errors import SemanticTokenizerError
from models.semantic.features import BuiltinFeatureExtractor
from models.semantic.kmeans import KMeansConfig, assign, cluster_usage, fit_kmeans
from models.semantic.tokenizer import SemanticTokenizer, fit_semantic_tokenizer, load_semantic_tokenizer
from tests.models.semantic.signals import midi_hz, sung_tone

K = 6


def _blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10.0, size=(4, 3))
    return (centres[rng.integers(0, 4, size=400)] + rng.normal(size=(400, 3))).astype(np.float32)


def test_fit_kmeans_is_deterministic_and_finds_clusters():
    data = _blobs()
    first, second = fit_kmeans(data, KMeansConfig(k=4, seed=3)), fit_kmeans(data, KMeansConfig(k=4, seed=3))
    assert torch.equal(first.centroids, second.centroids)
    assert first.centroids.shape == (4, 3)
    assert first.inertia < 4.0  # unit-variance blobs: about 3 (D=3) when every blob has its own centroid


def test_assign_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    features, centroids = torch.randn(2, 50, 5, generator=generator), torch.randn(7, 5, generator=generator)
    expected = torch.cdist(features, centroids[None].expand(2, 7, 5)).argmin(-1)
    indices, distances = assign(features, centroids, chunk_size=13, return_distances=True)
    assert torch.equal(indices, expected)
    torch.testing.assert_close(
        distances, torch.cdist(features, centroids[None]).min(-1).values.square(), atol=1e-4, rtol=1e-4
    )


def test_cluster_usage():
    uniform = cluster_usage(torch.arange(8).repeat(3), 8)
    assert uniform.used == 8 and uniform.perplexity == pytest.approx(8.0) and uniform.entropy_bits == pytest.approx(3)
    single = cluster_usage(torch.zeros(10, dtype=torch.long), 8)
    assert single.used == 1 and single.perplexity == pytest.approx(1.0)


def _corpus() -> list[torch.Tensor]:
    """Waveforms `[1, 1, T]`: sung notes at three pitches and some noise (different lengths)."""
    noise = 0.05 * torch.randn(1, 1, 12_000, generator=torch.Generator().manual_seed(5))
    return [sung_tone(midi_hz(m), seconds=s, seed=i) for i, (m, s) in enumerate([(57, 1.0), (60, 0.8), (64, 1.2)])] + [
        noise
    ]


@pytest.fixture(scope="module")
def fitted() -> tuple[SemanticTokenizer, object]:
    extractor = BuiltinFeatureExtractor()
    features = [extractor.extract(wav)[0] for wav in _corpus()]
    return fit_semantic_tokenizer(extractor, features, kmeans=KMeansConfig(k=K, seed=0))


def test_fit_and_encode(fitted):
    tokenizer, report = fitted
    assert tokenizer.cardinality == K and tokenizer.num_codebooks == 1 and not tokenizer.can_decode
    assert report.frames_used == report.frames_available == 25 + 20 + 30 + 19
    assert 1 < report.train_usage["used"] <= K
    wav = torch.cat([sung_tone(midi_hz(57)), sung_tone(midi_hz(60))])  # [2, 1, 16000]
    tokens = tokenizer.encode(wav)
    assert tokens.shape == (2, 1, tokenizer.num_frames(16_000)) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < K
    # Notes of different pitch map to different (majority) tokens.
    assert tokens[0, 0, 5:-5].mode().values != tokens[1, 0, 5:-5].mode().values
    # Stereo input is downmixed: identical channels give the mono tokens.
    assert torch.equal(tokenizer.encode(wav.repeat(1, 2, 1)), tokens)


def test_fit_is_deterministic(fitted):
    tokenizer, _ = fitted
    extractor = BuiltinFeatureExtractor()
    again, _ = fit_semantic_tokenizer(
        extractor, [extractor.extract(w)[0] for w in _corpus()], kmeans=KMeansConfig(k=K, seed=0)
    )
    assert torch.equal(again.centroids, tokenizer.centroids)
    wav = sung_tone(300.0, seconds=0.5)
    assert torch.equal(again.encode(wav), tokenizer.encode(wav))


def test_max_frames_subsamples_deterministically():
    extractor = BuiltinFeatureExtractor()
    features = [extractor.extract(w)[0] for w in _corpus()]
    first, report = fit_semantic_tokenizer(extractor, features, kmeans=KMeansConfig(k=4, seed=1), max_frames=40)
    second, _ = fit_semantic_tokenizer(extractor, features, kmeans=KMeansConfig(k=4, seed=1), max_frames=40)
    assert report.frames_used == 40 and report.frames_available == 94
    assert torch.equal(first.centroids, second.centroids)


def test_save_load_round_trip(fitted, tmp_path):
    tokenizer, report = fitted
    tokenizer.save(tmp_path / "tok", extra={"fit": report.as_dict()})
    loaded = load_semantic_tokenizer(tmp_path / "tok")
    wav = torch.cat([sung_tone(midi_hz(62), seconds=0.7), 0.1 * torch.randn(1, 1, 11_200)])
    assert torch.equal(loaded.encode(wav), tokenizer.encode(wav))
    assert loaded.cardinality == K and loaded.frame_rate == 25.0 and loaded.sample_rate == 16_000
    torch.testing.assert_close(loaded.centroids, tokenizer.centroids, rtol=0, atol=0)


def test_load_errors(tmp_path):
    save_checkpoint(tmp_path / "codec", kind="codec", config={}, tensors={"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="expected a 'semantic_tokenizer' checkpoint"):
        load_semantic_tokenizer(tmp_path / "codec")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_semantic_tokenizer(tmp_path / "missing")
    save_checkpoint(
        tmp_path / "bad",
        kind="semantic_tokenizer",
        config={"backend": "nope", "extractor": {}},
        tensors={n: torch.zeros(1) for n in ("centroids", "mean", "std", "weights")},
    )
    with pytest.raises(SemanticTokenizerError, match="unknown feature backend"):
        load_semantic_tokenizer(tmp_path / "bad")


def test_too_few_frames_for_k():
    extractor = BuiltinFeatureExtractor()
    with pytest.raises(SemanticTokenizerError, match="only 25 feature frames for k=64"):
        fit_semantic_tokenizer(extractor, [extractor.extract(sung_tone(220.0))[0]], kmeans=KMeansConfig(k=64))
