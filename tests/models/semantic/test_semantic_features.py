"""Built-in (weight-free) semantic features: frame counts, determinism, pitch sensitivity, pooling."""

from __future__ import annotations

import math

import pytest
import torch

from models.semantic.errors import SemanticTokenizerError
from models.semantic.features import BuiltinFeatureConfig, BuiltinFeatureExtractor, pool_frames
from tests.models.semantic.signals import midi_hz, sung_tone


@pytest.fixture(scope="module")
def extractor() -> BuiltinFeatureExtractor:
    return BuiltinFeatureExtractor()


@pytest.mark.parametrize("length", [1, 639, 640, 641, 16_000, 20_123])
def test_shapes_match_num_frames(extractor, length):
    wav = 0.1 * torch.randn(2, 1, length, generator=torch.Generator().manual_seed(length))
    features = extractor.extract(wav)
    assert features.shape == (2, extractor.num_frames(length), extractor.dim)
    assert extractor.num_frames(length) == math.ceil(length * 25 / 16_000)
    assert features.dtype == torch.float32
    assert torch.isfinite(features).all()


def test_layout_and_empty_input(extractor):
    assert extractor.dim == 44 and extractor.sample_rate == 16_000 and extractor.frame_rate == 25.0
    assert extractor.extract(torch.zeros(3, 1, 0)).shape == (3, 0, 44)
    silence = extractor.extract(torch.zeros(1, 1, 4000))
    assert torch.isfinite(silence).all()
    chroma = silence[0, :, extractor.groups["chroma"]]
    torch.testing.assert_close(chroma, torch.full_like(chroma, 1 / 12))  # no pitch: flat pitch classes


def test_deterministic_and_batch_independent(extractor):
    wav = torch.cat([sung_tone(220.0), 0.1 * torch.randn(1, 1, 16_000, generator=torch.Generator().manual_seed(1))])
    first, second = extractor.extract(wav), extractor.extract(wav)
    assert torch.equal(first, second)
    torch.testing.assert_close(extractor.extract(wav[1:]), first[1:], atol=1e-4, rtol=1e-4)


def test_pitch_moves_chroma_and_height(extractor):
    """A sung A3 and C4 differ in their chroma peak (pitch class) and pitch height; A3/A4 share the class."""
    a3 = extractor.extract(sung_tone(midi_hz(57)))[0]
    c4 = extractor.extract(sung_tone(midi_hz(60)))[0]
    a4 = extractor.extract(sung_tone(midi_hz(69)))[0]
    inner = slice(3, -3)  # skip attack/release frames
    chroma, pitch = extractor.groups["chroma"], extractor.groups["pitch"]
    assert a3[inner, chroma].mean(0).argmax() == 9
    assert c4[inner, chroma].mean(0).argmax() == 0
    assert a4[inner, chroma].mean(0).argmax() == 9
    assert a3[inner, chroma].mean(0).max() > 0.4  # peaked, not flat (1/12)
    height = {name: x[inner, pitch.start].median().item() for name, x in (("a3", a3), ("c4", c4), ("a4", a4))}
    assert height["c4"] - height["a3"] == pytest.approx(0.25, abs=0.05)  # 3 semitones = 1/4 octave
    assert height["a4"] - height["a3"] == pytest.approx(1.0, abs=0.05)
    assert (a3[inner, chroma] - c4[inner, chroma]).abs().sum(-1).min() > 0.5


def test_feature_weights_balance_groups(extractor):
    weights = extractor.feature_weights()
    assert weights.shape == (extractor.dim,)
    for name, part in extractor.groups.items():
        assert weights[part].square().sum().item() == pytest.approx(extractor.cfg.group_weights[name] ** 2)


def test_input_and_config_validation(extractor):
    with pytest.raises(SemanticTokenizerError, match="mono waveform"):
        extractor.extract(torch.zeros(1, 2, 100))
    with pytest.raises(SemanticTokenizerError, match="whole multiple"):
        BuiltinFeatureExtractor(BuiltinFeatureConfig(frame_rate=30.0))
    other_rate = BuiltinFeatureExtractor(BuiltinFeatureConfig(frame_rate=50.0))
    assert other_rate.extract(torch.zeros(1, 1, 16_000)).shape == (1, 50, 44)


def test_pool_frames_averages_frames_centred_in_each_window():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1)  # frame i centred on sample 10 * i
    pooled = pool_frames(x, native_hop=10, native_offset=0, hop=40, num_frames=3)
    assert pooled.flatten().tolist() == pytest.approx([1.5, 5.5, 8.5])  # [0..3], [4..7], [8, 9]
    sparse = pool_frames(x[:, :2], native_hop=10, native_offset=0, hop=40, num_frames=2)
    assert sparse.flatten().tolist() == pytest.approx([0.5, 1.0])  # empty window -> nearest frame
