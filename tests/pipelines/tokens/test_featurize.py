"""One featurisation for training and inference: the tokens the cache stores for a vocal are the tokens the
accompanist feeds the cascade for that vocal (same audio, same noise key, same stream)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio import Audio, load_audio
from models.codec import build_codec, get_preset
from models.semantic.features import BuiltinFeatureExtractor
from models.semantic.kmeans import KMeansConfig
from models.semantic.tokenizer import fit_semantic_tokenizer
from pipelines.inference.accompanist import Accompanist
from pipelines.tokens.cache import PairSource, TokenCacheWriter, build_token_cache, default_streams
from pipelines.tokens.featurize import Featurizer, noise_seed
from pipelines.tokens.reader import TokenCache
from pipelines.tokens.streams import StreamName

RATE = 22050  # neither tokenizer's rate: both sides resample


def _sung(seconds: float, rate: int) -> np.ndarray:
    """A stereo melody (two notes a second) with unequal channels: both sides must downmix alike."""
    t = np.arange(int(seconds * rate)) / rate
    pitch = 220 * 2 ** (np.floor(t * 2) % 5 / 12)
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / rate) * np.sin(np.pi * t * 2) ** 2
    return np.stack([wave, 0.5 * wave]).astype(np.float32)


@pytest.fixture(scope="module")
def tokenizers():
    torch.manual_seed(0)
    codec = build_codec(get_preset("tiny", encoder_strides=(4, 5, 8))).eval()
    # Trained-looking codebooks: untrained ones are all zeros and would give every audio the same codes.
    codec.init_codebooks(torch.from_numpy(_sung(4.0, 8000)[:1])[None] * torch.linspace(0.2, 1.0, 4)[:, None, None])
    extractor = BuiltinFeatureExtractor()
    features = extractor.extract(torch.from_numpy(_sung(4.0, 16000)[:1])[None])[0]
    semantic, _ = fit_semantic_tokenizer(extractor, [features], kmeans=KMeansConfig(k=8, seed=0))
    return codec, semantic


def _cached_tokens(tokenizers, tmp_path: Path, item_id: str) -> tuple[Audio, dict[str, np.ndarray]]:
    """The vocal of one item, and every stream the token cache wrote for it."""
    codec, semantic = tokenizers
    vocal = _sung(2.0, RATE)
    sf.write(tmp_path / "vocals.wav", vocal.T, RATE, subtype="FLOAT")
    sf.write(tmp_path / "instrumental.wav", 0.5 * vocal[::-1].T, RATE, subtype="FLOAT")
    streams = default_streams(codec.num_coarse_levels, vocal_noise_snr_db=20.0)
    writer = TokenCacheWriter(tmp_path / "cache", semantic=semantic, codec=codec, streams=streams, fingerprints={})
    item = PairSource(item_id, "train", tmp_path / "vocals.wav", (tmp_path / "instrumental.wav",))
    assert build_token_cache(writer, [item], progress=False).encoded == 1
    cache = TokenCache(tmp_path / "cache")
    cached = {spec.name: cache.tokens(0, spec.name).astype(np.int64) for spec in streams}
    return load_audio(tmp_path / "vocals.wav"), cached


def _accompanist(tokenizers, coarse_noise: float) -> Accompanist:
    """An accompanist whose cascade (a stand-in: featurisation reads nothing else of it) is conditioned on every
    vocal stream, its acoustic condition trained with the noisy twin at probability `coarse_noise`."""
    codec, semantic = tokenizers
    notes = {"condition_noise": {"vocals.coarse": {"stream": "vocals.coarse_noisy", "probability": coarse_noise}}}
    cascade = SimpleNamespace(
        condition_streams=("vocals.semantic", "vocals.coarse", "vocals.melody", "vocals.beat"),
        num_coarse_levels=codec.num_coarse_levels,
        stages={"semantic": SimpleNamespace(training_notes=notes)},
    )
    return Accompanist(cascade, codec, semantic, vocal_noise_snr_db=20.0)


def test_training_and_inference_features_of_the_same_vocal_are_identical(tokenizers, tmp_path: Path) -> None:
    vocal, cached = _cached_tokens(tokenizers, tmp_path, item_id="7")
    # The noise matters (else equality would prove nothing): every noisy twin differs from its clean stream.
    for name in ("vocals.semantic", "vocals.coarse", "vocals.melody"):
        assert not np.array_equal(cached[name], cached[f"{name}_noisy"]), name

    seven = _accompanist(tokenizers, coarse_noise=1.0).featurize([vocal], seeds=[7])
    assert len(set(cached["vocals.beat"][0].tolist())) > 1  # a pulse was found: beat positions vary
    for name in ("vocals.semantic", "vocals.coarse", "vocals.melody", "vocals.beat"):  # read from noisy twins
        np.testing.assert_array_equal(seven[name][0].numpy(), cached[f"{name}_noisy"], err_msg=name)
    # A model trained on clean acoustic tokens gets clean ones (and noisy semantic/melody tokens) at inference.
    clean_coarse = _accompanist(tokenizers, coarse_noise=0.0).featurize([vocal], seeds=[7])
    np.testing.assert_array_equal(clean_coarse["vocals.coarse"][0].numpy(), cached["vocals.coarse"])
    np.testing.assert_array_equal(clean_coarse["vocals.melody"][0].numpy(), cached["vocals.melody_noisy"])

    # Another seed draws other noise: other tokens for some stream; a batch featurises each row as alone.
    batch = _accompanist(tokenizers, coarse_noise=1.0).featurize([vocal, vocal], seeds=[8, 7])
    assert any(not torch.equal(batch[name][0], seven[name][0]) for name in seven)
    for name in seven:
        assert torch.equal(batch[name][1], seven[name][0]), name


def test_noise_is_keyed_by_item_and_stream_and_sized_by_the_snr() -> None:
    melody, semantic = StreamName.parse("vocals.melody"), StreamName.parse("vocals.semantic")
    assert noise_seed(7, melody) == noise_seed("7", StreamName.parse("vocals.melody_noisy"))
    assert len({noise_seed(7, melody), noise_seed(8, melody), noise_seed(7, semantic)}) == 3

    class Mono16k:
        channels, sample_rate = 1, 16000

    clip = Featurizer(_sung(1.0, 16000), 16000, key=3)
    clean = clip.audio(Mono16k(), melody, None)
    assert clean.shape == (1, 16000)
    np.testing.assert_allclose(clean[0], _sung(1.0, 16000).mean(axis=0), atol=1e-6)  # mean of the channels
    noise = clip.audio(Mono16k(), melody, 20.0) - clean
    snr = 10 * np.log10(np.mean(clean**2) / np.mean(noise**2))
    assert abs(snr - 20.0) < 0.5
