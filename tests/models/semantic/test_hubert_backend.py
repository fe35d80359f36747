"""Pretrained-encoder backend: a tiny random HuBERT saved locally, loaded, pooled to 25 Hz, tokenized."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from safetensors.torch import load_file

from models.semantic.errors import PretrainedEncoderError, SemanticTokenizerError
from models.semantic.hubert import PretrainedEncoderConfig, PretrainedEncoderFeatureExtractor
from models.semantic.kmeans import KMeansConfig
from models.semantic.tokenizer import fit_semantic_tokenizer, load_semantic_tokenizer
from tests.models.semantic.signals import sung_tone


@pytest.fixture(scope="module")
def hubert_dir(tmp_path_factory):
    """Tiny HuBERT (2 layers, hidden 32, narrow convs) + a preprocessor config asking for normalisation."""
    config = transformers.HubertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("hubert")
    transformers.HubertModel(config).save_pretrained(directory)
    (directory / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "feature_extractor_type": "Wav2Vec2FeatureExtractor",
                "sampling_rate": 16000,
                "do_normalize": True,
                "feature_size": 1,
                "padding_value": 0.0,
                "return_attention_mask": False,
            }
        )
    )
    return directory


def test_extract_shapes_and_alignment(hubert_dir):
    extractor = PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(hubert_dir), layer=2))
    assert (extractor.dim, extractor.sample_rate, extractor.native_hop, extractor.receptive_field) == (
        32,
        16_000,
        320,
        400,
    )
    assert extractor.do_normalize
    wav = 0.1 * torch.randn(2, 1, 6400, generator=torch.Generator().manual_seed(0))
    features = extractor.extract(wav)
    assert features.shape == (2, 10, 32) and torch.isfinite(features).all()
    for length in (5555, 641, 1):
        assert extractor.extract(wav[..., :length]).shape == (2, extractor.num_frames(length), 32)

    # Reference: full model on the normalised signal padded by 40 samples each side (so 20 native frames,
    # frame i centred on hop i), hidden_states[2], consecutive native frames averaged in pairs.
    model = transformers.HubertModel.from_pretrained(hubert_dir, local_files_only=True).eval()
    x = wav[:, 0]
    x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-7)
    with torch.no_grad():
        hidden = model(torch.nn.functional.pad(x, (40, 40)), output_hidden_states=True).hidden_states[2]
    assert hidden.shape[1] == 20
    torch.testing.assert_close(features, hidden.view(2, 10, 2, 32).mean(2), atol=1e-4, rtol=1e-4)


def test_layer_choice_and_errors(hubert_dir, tmp_path):
    wav = sung_tone(220.0, seconds=0.5)
    layer1 = PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(hubert_dir), layer=1))
    layer2 = PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(hubert_dir), layer=2))
    assert len(layer1.model.encoder.layers) == 1  # layers above the chosen one are dropped
    assert not torch.allclose(layer1.extract(wav), layer2.extract(wav))
    with pytest.raises(SemanticTokenizerError, match=r"layer must be in \[0, 2\]"):
        PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(hubert_dir), layer=3))
    with pytest.raises(PretrainedEncoderError, match="does not exist"):
        PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(tmp_path / "nowhere")))
    with pytest.raises(PretrainedEncoderError, match=r"config\.json is missing"):
        PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(tmp_path)))


def test_fit_tokenize_save_load(hubert_dir, tmp_path):
    extractor = PretrainedEncoderFeatureExtractor(PretrainedEncoderConfig(path=str(hubert_dir), layer=1))
    corpus = [sung_tone(f, seconds=0.6, seed=i) for i, f in enumerate((196.0, 247.0, 330.0))]
    features = [extractor.extract(wav)[0] for wav in corpus]
    tokenizer, report = fit_semantic_tokenizer(extractor, features, kmeans=KMeansConfig(k=4, seed=0))
    assert report.dim == 32 and report.frames_used == 45
    tokens = tokenizer.encode(torch.cat(corpus))
    assert tokens.shape == (3, 1, 15) and int(tokens.min()) >= 0 and int(tokens.max()) < 4

    tokenizer.save(tmp_path / "tok")
    stored = json.loads((tmp_path / "tok" / "config.json").read_text())["config"]
    assert stored["backend"] == "hubert" and stored["extractor"]["layer"] == 1
    assert stored["extractor"]["path"] == str(hubert_dir)
    assert set(load_file(tmp_path / "tok" / "model.safetensors")) == {"centroids", "mean", "std", "weights"}
    loaded = load_semantic_tokenizer(tmp_path / "tok")
    assert torch.equal(loaded.encode(torch.cat(corpus)), tokens)

    moved = hubert_dir.rename(hubert_dir.with_name("hubert_moved"))  # the encoder moved: override its path
    try:
        with pytest.raises(PretrainedEncoderError, match="does not exist"):
            load_semantic_tokenizer(tmp_path / "tok")
        relocated = load_semantic_tokenizer(tmp_path / "tok", encoder_path=moved)
        assert torch.equal(relocated.encode(torch.cat(corpus)), tokens)
    finally:
        moved.rename(hubert_dir)
