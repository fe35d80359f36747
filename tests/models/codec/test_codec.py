"""Behaviour of the codec model: shapes, coarse decoding, gradients, chunking, persistence."""

from __future__ import annotations

import math

import pytest
import torch

from models.checkpoint import CheckpointError
from models.codec import Codec, CodecConfig, CodecConfigError, build_codec, get_preset, load_codec
from models.codec.codec import overlap_discard
from tests.models.codec.signals import tone


@pytest.mark.parametrize("length", [1, 39, 40, 41, 403])
def test_frame_count_and_decoded_length_for_odd_lengths(tiny_codec: Codec, length: int) -> None:
    hop = tiny_codec.hop_length
    wav = torch.randn(2, 1, length) * 0.1
    codes = tiny_codec.encode(wav)
    frames = math.ceil(length / hop)
    assert codes.shape == (2, tiny_codec.num_codebooks, frames)
    assert codes.dtype == torch.int64
    assert tiny_codec.num_frames(length) == frames
    assert int(codes.min()) >= 0 and int(codes.max()) < tiny_codec.cardinality
    audio = tiny_codec.decode(codes)
    assert audio.shape == (2, 1, frames * hop) and audio.dtype == torch.float32
    assert tiny_codec(wav).reconstruction.shape == wav.shape


def test_tokenizer_properties_follow_the_config() -> None:
    config = get_preset("small")
    codec = build_codec(config)
    assert codec.sample_rate == 24_000 and codec.channels == 1
    assert codec.hop_length == 480 and codec.frame_rate == 50.0
    assert codec.num_codebooks == 8 and codec.cardinality == 1024 and codec.num_coarse_levels == 3
    assert codec.can_decode
    assert config.bitrate == pytest.approx(4000.0)


def test_coarse_only_decode_uses_the_leading_levels_and_differs_from_full(tiny_codec: Codec) -> None:
    wav = tone(0.5, tiny_codec.sample_rate)
    codes = tiny_codec.encode(wav)
    coarse = tiny_codec.decode(codes[:, :1])
    full = tiny_codec.decode(codes)
    assert coarse.shape == full.shape
    assert (coarse - full).abs().max() > 1e-4
    # the coarse latent is exactly the level-0 code vectors
    books = tiny_codec.quantizer.codebooks
    latent = tiny_codec.quantizer.dequantize(codes[:, :1])
    torch.testing.assert_close(latent, books[0][codes[:, 0]].transpose(1, 2))
    with pytest.raises(ValueError):
        tiny_codec.decode(codes[:, :0])
    with pytest.raises(ValueError):
        tiny_codec.decode(torch.cat([codes, codes[:, :1]], dim=1))
    with pytest.raises(ValueError):
        tiny_codec.decode(codes + tiny_codec.cardinality)


def test_encode_rejects_wrong_channel_count(tiny_codec: Codec) -> None:
    with pytest.raises(ValueError, match="waveform"):
        tiny_codec.encode(torch.zeros(1, 2, 100))


def test_gradients_flow_through_the_quantizer_to_the_encoder() -> None:
    torch.manual_seed(0)
    codec = build_codec(get_preset("tiny"))
    wav = tone(0.25, codec.sample_rate, batch=2)
    codec.train()
    output = codec(wav)
    (output.reconstruction - wav).pow(2).mean().backward()
    first_encoder_conv = codec.encoder.layers[0].conv.parametrizations.weight.original1
    assert first_encoder_conv.grad is not None
    assert torch.isfinite(first_encoder_conv.grad).all()
    assert first_encoder_conv.grad.abs().sum() > 0


def test_training_forward_reports_codebook_statistics_and_dropout() -> None:
    torch.manual_seed(0)
    config = get_preset("tiny")
    codec = build_codec(CodecConfig.from_dict({**config.to_dict(), "quantizer_dropout": 1.0}))
    codec.train()
    output = codec(tone(0.25, codec.sample_rate, batch=8))
    assert output.codes.shape[1] == config.num_levels
    assert output.perplexity.shape == (config.num_levels,)
    assert ((output.perplexity >= 1) & (output.perplexity <= config.codebook_size)).all()
    assert ((output.usage > 0) & (output.usage <= 1)).all()
    assert output.levels_used.min() >= 1 and output.levels_used.max() <= config.num_levels
    assert output.commit_loss.ndim == 0 and torch.isfinite(output.commit_loss)


def test_inference_never_changes_the_codebooks() -> None:
    codec = build_codec(get_preset("tiny")).eval()
    before = {k: v.clone() for k, v in codec.state_dict().items()}
    wav = tone(0.25, codec.sample_rate)
    first = codec.encode(wav)
    codec.decode(first)
    codec(wav)  # eval-mode forward
    assert torch.equal(codec.encode(wav), first)
    for key, value in codec.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not codec.quantizer.initialized


def test_chunked_encode_and_decode_match_whole_signal(tiny_codec: Codec) -> None:
    wav = tone(1.3, tiny_codec.sample_rate, batch=2, seed=1)[..., :-7]  # not a whole number of frames
    chunk_seconds = 0.1  # 20 frames, shorter than the context
    whole = tiny_codec.encode(wav, chunk_seconds=None)
    chunked = tiny_codec.encode(wav, chunk_seconds=chunk_seconds)
    assert torch.equal(chunked, whole)
    assert whole.unique().numel() > 4  # not a degenerate all-equal code stream
    decoded_whole = tiny_codec.decode(whole, chunk_seconds=None)
    decoded_chunked = tiny_codec.decode(whole, chunk_seconds=chunk_seconds)
    torch.testing.assert_close(decoded_chunked, decoded_whole, atol=1e-5, rtol=1e-4)


def test_chunking_without_context_would_leave_seams(tiny_codec: Codec) -> None:
    """Control for the test above: the context is what makes chunked decoding exact."""
    codes = tiny_codec.encode(tone(1.0, tiny_codec.sample_rate, seed=2), chunk_seconds=None)

    def decode(window: torch.Tensor) -> torch.Tensor:
        return tiny_codec.decoder(tiny_codec.quantizer.dequantize(window))

    kwargs = dict(total_frames=codes.shape[-1], chunk_frames=20, in_per_frame=1, out_per_frame=tiny_codec.hop_length)
    with torch.no_grad():
        exact = overlap_discard(decode, codes, context_frames=tiny_codec.decoder.context_frames, **kwargs)
        seamed = overlap_discard(decode, codes, context_frames=0, **kwargs)
        whole = decode(codes)
    torch.testing.assert_close(exact, whole, atol=1e-5, rtol=1e-4)
    assert (seamed - whole).abs().max() > 1e-3


def test_save_and_load_round_trip(tiny_codec: Codec, tmp_path) -> None:
    wav = tone(0.5, tiny_codec.sample_rate, seed=3)
    codes = tiny_codec.encode(wav)
    audio = tiny_codec.decode(codes)
    run = tmp_path / "run"
    tiny_codec.save_pretrained(run / "model", extra={"step": 7})
    for path in (run / "model", run):  # a training run directory resolves to its model/
        loaded = Codec.from_pretrained(path)
        assert loaded.config == tiny_codec.config
        assert not loaded.training
        assert torch.equal(loaded.encode(wav), codes)
        assert torch.equal(loaded.decode(codes), audio)
    assert load_codec(run).quantizer.initialized


def test_loading_a_missing_or_foreign_checkpoint_fails_cleanly(tmp_path) -> None:
    with pytest.raises(CheckpointError):
        load_codec(tmp_path / "nothing")
    from models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "other", kind="semantic", config={}, tensors={"x": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="codec"):
        load_codec(tmp_path / "other")


def test_config_validation_and_json_round_trip() -> None:
    config = get_preset("small")
    assert CodecConfig.from_dict(config.to_dict()) == config
    with pytest.raises(CodecConfigError, match="unknown"):
        CodecConfig.from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(CodecConfigError, match="num_coarse_levels"):
        CodecConfig(num_levels=2, num_coarse_levels=3)
    with pytest.raises(CodecConfigError):
        get_preset("huge")


def test_receptive_field_grows_with_the_dilations() -> None:
    small = build_codec(get_preset("tiny"))
    wide = build_codec(CodecConfig.from_dict({**get_preset("tiny").to_dict(), "dilations": [1, 3, 9]}))
    assert wide.encoder.receptive_field > small.encoder.receptive_field
    assert wide.decoder.context_frames > small.decoder.context_frames
