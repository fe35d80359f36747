"""Training losses of the codec: spectral reconstruction, waveform, commitment, and adversarial terms.

Reconstruction (always on):

* multi-scale mel loss: L1 between log-mel spectrograms at several STFT sizes (EnCodec, Défossez et al.,
  2022, §3.4 uses 5 scales; DAC, Kumar et al., 2023, uses log-mel L1 as its main term);
* multi-resolution STFT loss: spectral convergence `||S - Ŝ||_F / ||S||_F` plus L1 of log magnitudes
  (Parallel WaveGAN, Yamamoto et al., 2020, arXiv:1910.11480). Both terms reuse the same STFTs;
* waveform L1 (EnCodec's time-domain term, small weight);
* the quantizer's commitment loss (VQ-VAE / SoundStream), computed in `quantizer.py`.

Adversarial (optional, see `discriminator.py`): hinge losses (Lim & Ye, 2017, as in MelGAN/SoundStream) and
the relative feature-matching L1 of EnCodec (each layer's L1 divided by the mean magnitude of the real
features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from models.codec.codec import CodecOutput


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale (Auditory Toolbox): linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    linear = hz * 3.0 / 200.0
    log_part = 15.0 + torch.log(hz.clamp_min(1e-5) / 1000.0) * 27.0 / math.log(6.4)
    return torch.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    linear = mel * 200.0 / 3.0
    log_part = 1000.0 * torch.exp((mel - 15.0) * math.log(6.4) / 27.0)
    return torch.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, *, fmin: float = 0.0, fmax: float | None = None
) -> torch.Tensor:
    """Triangular mel filters `[n_mels, n_fft // 2 + 1]`, Slaney-normalised to equal area per filter.

    The same construction as `librosa.filters.mel` (its default Slaney scale and norm), written out here
    so that the codec does not import librosa (and scipy.signal with it) just for a matrix.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    bins = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = _mel_to_hz(
        torch.linspace(
            float(_hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
            float(_hz_to_mel(torch.tensor(fmax, dtype=torch.float64))),
            n_mels + 2,
            dtype=torch.float64,
        )
    )
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lower) / (centre - lower)
    falling = (upper - bins[None]) / (upper - centre)
    weights = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return (weights * (2.0 / (upper - lower))).float()


class MultiResolutionSpectralLoss(nn.Module):
    """Mel, spectral-convergence and log-magnitude losses over several STFT resolutions.

    Inputs are waveforms `[B, C, T]`; channels are folded into the batch. Returns the three losses, each
    averaged over resolutions, under namespaced keys.
    """

    def __init__(
        self,
        *,
        sample_rate: int,
        fft_sizes: tuple[int, ...] = (256, 512, 1024, 2048),
        max_mels: int = 80,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.fft_sizes = fft_sizes
        self.eps = eps
        for n_fft in fft_sizes:
            # Fewer mel bands at small FFT sizes, or the lowest bands would be empty.
            n_mels = min(max_mels, n_fft // 8)
            mel = mel_filterbank(sample_rate, n_fft, n_mels)
            self.register_buffer(f"mel_{n_fft}", mel, persistent=False)
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def magnitude(self, wav: torch.Tensor, n_fft: int) -> torch.Tensor:
        """`[B, C, T]` -> STFT magnitude `[B*C, n_fft/2 + 1, frames]`."""
        spec = torch.stft(
            wav.reshape(-1, wav.shape[-1]).float(),
            n_fft=n_fft,
            hop_length=n_fft // 4,
            window=getattr(self, f"window_{n_fft}"),
            center=True,
            return_complex=True,
        )
        # sqrt with a floor: the gradient of |z| at z = 0 is undefined.
        return (spec.real.pow(2) + spec.imag.pow(2)).clamp_min(1e-10).sqrt()

    def log_mel(self, magnitude: torch.Tensor, n_fft: int) -> torch.Tensor:
        return torch.log(getattr(self, f"mel_{n_fft}") @ magnitude + self.eps)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        mel = convergence = log_magnitude = prediction.new_zeros(())
        for n_fft in self.fft_sizes:
            pred_mag = self.magnitude(prediction, n_fft)
            true_mag = self.magnitude(target, n_fft)
            mel = mel + F.l1_loss(self.log_mel(pred_mag, n_fft), self.log_mel(true_mag, n_fft))
            difference = torch.linalg.vector_norm(true_mag - pred_mag, dim=(-2, -1))
            reference = torch.linalg.vector_norm(true_mag, dim=(-2, -1)).clamp_min(self.eps)
            convergence = convergence + (difference / reference).mean()
            log_magnitude = log_magnitude + F.l1_loss(torch.log(pred_mag + self.eps), torch.log(true_mag + self.eps))
        count = len(self.fft_sizes)
        return {
            "loss/mel": mel / count,
            "loss/spectral_convergence": convergence / count,
            "loss/log_magnitude": log_magnitude / count,
        }


@dataclass(frozen=True)
class LossWeights:
    """Weights of the reconstruction objective (EnCodec: λ_f = 1 for spectra, λ_t = 0.1 for the waveform)."""

    mel: float = 1.0
    spectral_convergence: float = 1.0
    log_magnitude: float = 1.0
    waveform: float = 0.1
    commit: float = 1.0
    adversarial: float = 1.0
    feature_matching: float = 2.0


class CodecLoss(nn.Module):
    """The codec's reconstruction objective. `forward(output, target) -> (total, {"loss/...": value})`."""

    def __init__(self, *, sample_rate: int, weights: LossWeights | None = None) -> None:
        super().__init__()
        self.weights = weights or LossWeights()
        self.spectral = MultiResolutionSpectralLoss(sample_rate=sample_rate)

    def forward(self, output: CodecOutput, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prediction = output.reconstruction.float()
        target = target.float()
        terms = self.spectral(prediction, target)
        terms["loss/waveform"] = F.l1_loss(prediction, target)
        terms["loss/commit"] = output.commit_loss.float()
        w = self.weights
        total = (
            w.mel * terms["loss/mel"]
            + w.spectral_convergence * terms["loss/spectral_convergence"]
            + w.log_magnitude * terms["loss/log_magnitude"]
            + w.waveform * terms["loss/waveform"]
            + w.commit * terms["loss/commit"]
        )
        terms["loss/total"] = total
        return total, terms


def hinge_discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """`mean(relu(1 - D(x))) + mean(relu(1 + D(G(z))))`, averaged over sub-discriminators."""
    total = real_logits[0].new_zeros(())
    for real, fake in zip(real_logits, fake_logits, strict=True):
        total = total + F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return total / len(real_logits)


def hinge_generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """`mean(relu(1 - D(G(z))))`, averaged over sub-discriminators."""
    return sum(F.relu(1 - fake).mean() for fake in fake_logits) / len(fake_logits)


def feature_matching_loss(
    real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """Relative L1 between discriminator feature maps of real and generated audio (EnCodec eq. 2)."""
    total, count = fake_features[0][0].new_zeros(()), 0
    for reals, fakes in zip(real_features, fake_features, strict=True):
        for real, fake in zip(reals, fakes, strict=True):
            real = real.detach()
            total = total + F.l1_loss(fake, real) / real.abs().mean().clamp_min(1e-8)
            count += 1
    return total / max(count, 1)
