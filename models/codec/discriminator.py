"""Multi-scale STFT discriminator (EnCodec, Défossez et al., 2022, §3.3), optional and off by default on CPU.

Each sub-discriminator looks at the complex STFT of the audio at one resolution, real and imaginary parts
stacked as input channels `[B, 2C, frames, freq]`, through 2-D convolutions dilated along time and strided
along frequency, and returns a map of logits plus every intermediate feature map (for the feature-matching
loss). Adversarial training sharpens high frequencies that spectral losses leave blurry, but it roughly
doubles the cost of a step; on CPU the reconstruction losses alone are the better use of the budget.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


class STFTDiscriminator(nn.Module):
    """One resolution: waveform `[B, C, T]` -> (logits `[B, 1, frames', freq']`, feature maps)."""

    def __init__(
        self,
        *,
        channels: int,
        n_fft: int,
        filters: int = 32,
        dilations: tuple[int, ...] = (1, 2, 4),
    ) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = [weight_norm(nn.Conv2d(2 * channels, filters, (3, 9), padding=(1, 4)))]
        for dilation in dilations:
            convs.append(
                weight_norm(
                    nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(dilation, 1), padding=(dilation, 4))
                )
            )
        convs.append(weight_norm(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1))))
        self.convs = nn.ModuleList(convs)
        self.head = weight_norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, channels, length = wav.shape
        spec = torch.stft(
            wav.reshape(batch * channels, length).float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            return_complex=True,
            normalized=True,
        )  # [B*C, freq, frames]
        spec = torch.view_as_real(spec).reshape(batch, channels, *spec.shape[1:], 2)
        x = spec.permute(0, 1, 4, 3, 2).reshape(batch, 2 * channels, spec.shape[3], spec.shape[2])
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        return self.head(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    """Several `STFTDiscriminator`s; returns lists of logits and of feature-map lists, one per resolution."""

    def __init__(self, *, channels: int = 1, fft_sizes: tuple[int, ...] = (2048, 1024, 512), filters: int = 32) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            STFTDiscriminator(channels=channels, n_fft=n_fft, filters=filters) for n_fft in fft_sizes
        )

    def forward(self, wav: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, features = [], []
        for discriminator in self.discriminators:
            logit, feature = discriminator(wav)
            logits.append(logit)
            features.append(feature)
        return logits, features
