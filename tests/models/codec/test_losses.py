"""Codec losses and the optional discriminator."""

from __future__ import annotations

import pytest
import torch

from models.codec.codec import CodecOutput
from models.codec.discriminator import MultiScaleSTFTDiscriminator
from models.codec.losses import (
    CodecLoss,
    LossWeights,
    MultiResolutionSpectralLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    mel_filterbank,
)
from tests.models.codec.signals import tone

SR = 8000


@pytest.fixture(scope="module")
def spectral() -> MultiResolutionSpectralLoss:
    return MultiResolutionSpectralLoss(sample_rate=SR, fft_sizes=(128, 256, 512))


def test_spectral_losses_are_zero_for_identical_audio_and_grow_with_distortion(spectral) -> None:
    target = tone(0.5, SR, batch=2)
    same = spectral(target, target)
    assert set(same) == {"loss/mel", "loss/spectral_convergence", "loss/log_magnitude"}
    for value in same.values():
        assert float(value) == pytest.approx(0.0, abs=1e-6)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(target.shape, generator=generator)
    slightly = spectral(target + 0.01 * noise, target)
    badly = spectral(target + 0.2 * noise, target)
    for key in same:
        assert 0 < float(slightly[key]) < float(badly[key]), key


def test_codec_loss_is_the_weighted_sum_of_named_terms_and_has_gradients() -> None:
    target = tone(0.5, SR)
    prediction = (0.5 * target).requires_grad_()
    output = CodecOutput(
        reconstruction=prediction,
        codes=torch.zeros(1, 2, 5, dtype=torch.long),
        commit_loss=torch.tensor(0.3),
        perplexity=torch.ones(2),
        usage=torch.ones(2),
        levels_used=torch.full((1,), 2),
    )
    weights = LossWeights(mel=2.0, spectral_convergence=0.5, log_magnitude=1.5, waveform=3.0, commit=0.25)
    loss = CodecLoss(sample_rate=SR, weights=weights)
    total, terms = loss(output, target)
    expected = (
        2.0 * terms["loss/mel"]
        + 0.5 * terms["loss/spectral_convergence"]
        + 1.5 * terms["loss/log_magnitude"]
        + 3.0 * terms["loss/waveform"]
        + 0.25 * terms["loss/commit"]
    )
    torch.testing.assert_close(total, expected)
    assert terms["loss/total"] is total
    assert float(terms["loss/waveform"].detach()) == pytest.approx(float((0.5 * target).abs().mean()), rel=1e-5)
    total.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0


def test_discriminator_shapes_and_adversarial_losses() -> None:
    disc = MultiScaleSTFTDiscriminator(channels=1, fft_sizes=(256, 128), filters=4)
    wav = tone(0.25, SR, batch=2)
    with torch.no_grad():
        logits, features = disc(wav)
        _, other_features = disc(wav * 0.5)
    assert len(logits) == 2 and len(features) == 2
    assert all(logit.shape[:2] == (2, 1) for logit in logits)
    assert all(len(maps) == 5 for maps in features)
    # a perfect discriminator has zero hinge loss; a fooled one has loss 2 per sub-discriminator
    high, low = [torch.full((2, 1, 3, 3), 5.0)], [torch.full((2, 1, 3, 3), -5.0)]
    assert float(hinge_discriminator_loss(high, low)) == 0.0
    assert float(hinge_discriminator_loss(low, high)) == pytest.approx(12.0)
    assert float(hinge_generator_loss(high)) == 0.0
    assert float(hinge_generator_loss(low)) == pytest.approx(6.0)
    assert float(feature_matching_loss(features, features)) == 0.0
    assert float(feature_matching_loss(features, other_features)) > 0


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    for sr, n_fft, n_mels in ((24_000, 512, 64), (8000, 256, 32), (44_100, 2048, 80)):
        ours = mel_filterbank(sr, n_fft, n_mels)
        reference = torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels)).float()
        assert ours.shape == reference.shape
        torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-4)
