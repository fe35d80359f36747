"""EncodecTokenizer: a small random `transformers` EnCodec saved locally, loaded like Meta's 24 kHz one."""

from __future__ import annotations

import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers

from models.codec.pretrained_encodec import EncodecLoadError, EncodecTokenizer


@pytest.fixture(scope="module")
def encodec_dir(tmp_path_factory):
    """24 kHz, hop 320 (75 Hz), 1024-entry codebooks like the real model; narrow convs and one LSTM."""
    config = transformers.EncodecConfig(num_filters=4, hidden_size=16, num_lstm_layers=1)
    torch.manual_seed(0)
    model = transformers.EncodecModel(config).eval()
    with torch.no_grad():
        # transformers initialises codebooks to zero; give them entries at the scale of the encoder output,
        # shrinking level by level like residuals do, so codes actually vary.
        scale = model.encoder(0.1 * torch.randn(1, 1, 4800)).std()
        for level, layer in enumerate(model.quantizer.layers):
            layer.codebook.embed.normal_(std=float(scale) * 0.7**level)
    directory = tmp_path_factory.mktemp("encodec")
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def loaded(encodec_dir) -> EncodecTokenizer:
    return EncodecTokenizer(encodec_dir)


@pytest.mark.parametrize(("bandwidth", "codebooks"), [(1.5, 2), (3.0, 4), (6.0, 8), (12.0, 16), (24.0, 32)])
def test_bandwidth_selects_codebooks(loaded, bandwidth, codebooks):
    tokenizer = EncodecTokenizer(loaded.model, bandwidth=bandwidth)  # shares the loaded model
    assert tokenizer.num_codebooks == codebooks == EncodecTokenizer.codebooks_for_bandwidth(bandwidth)
    assert tokenizer.num_coarse_levels == max(1, codebooks // 2)
    codes = tokenizer.encode(0.1 * torch.randn(1, 1, 3200, generator=torch.Generator().manual_seed(0)))
    assert codes.shape == (1, codebooks, 10)


def test_encode_decode(loaded):
    tokenizer = EncodecTokenizer(loaded.model, bandwidth=6.0, num_coarse_levels=3)
    assert (tokenizer.sample_rate, tokenizer.channels, tokenizer.frame_rate) == (24_000, 1, 75.0)
    assert (tokenizer.cardinality, tokenizer.num_fine_levels, tokenizer.can_decode) == (1024, 5, True)
    wav = 0.1 * torch.randn(2, 1, 3201, generator=torch.Generator().manual_seed(1))
    codes = tokenizer.encode(wav)
    assert codes.shape == (2, 8, tokenizer.num_frames(3201)) == (2, 8, 11)
    assert codes.dtype == torch.long and int(codes.min()) >= 0 and int(codes.max()) < 1024
    assert torch.equal(codes, tokenizer.encode(wav))
    assert all(len(codes[:, level].unique()) > 1 for level in range(8))  # codes vary over time

    full = tokenizer.decode(codes)
    coarse = tokenizer.decode_coarse(codes)
    assert full.shape == coarse.shape == (2, 1, 11 * 320)
    assert torch.isfinite(full).all()
    torch.testing.assert_close(coarse, tokenizer.decode(codes[:, :3]))
    assert not torch.allclose(full, coarse)  # the fine levels add their residual
    assert tokenizer.decode(codes[:1, :1]).shape == (1, 1, 11 * 320)
    with pytest.raises(ValueError, match="K' <= 8"):
        tokenizer.decode(torch.zeros(1, 9, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 1024\)"):
        tokenizer.decode(torch.full((1, 2, 4), 1024))


def test_load_errors(encodec_dir, tmp_path):
    with pytest.raises(EncodecLoadError, match="does not exist"):
        EncodecTokenizer(tmp_path / "missing")
    with pytest.raises(EncodecLoadError, match=r"config\.json is missing"):
        EncodecTokenizer(tmp_path)
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EncodecLoadError, match="expected an EnCodec model, found 'bert'"):
        EncodecTokenizer(other)
    with pytest.raises(EncodecLoadError, match=r"bandwidth 5\.0 kbps is not supported"):
        EncodecTokenizer(encodec_dir, bandwidth=5.0)
    with pytest.raises(EncodecLoadError, match="num_coarse_levels"):
        EncodecTokenizer(encodec_dir, bandwidth=1.5, num_coarse_levels=3)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((encodec_dir / "config.json").read_text())
    with pytest.raises(EncodecLoadError, match="cannot load EnCodec weights"):
        EncodecTokenizer(no_weights)
