"""SEANet convolutional encoder and decoder (SoundStream, EnCodec, DAC), without recurrent layers.

Design, following SoundStream (Zeghidour et al., 2021, arXiv:2107.03312) and EnCodec (Défossez et al., 2022,
arXiv:2210.13438):

* encoder: `Conv(7)` -> per stride s: [residual units with dilations 1, 3, 9] -> ELU -> strided
  `Conv(kernel 2s, stride s)` doubling the width -> ELU -> `Conv(3)` to the latent dimension;
* decoder: the mirror image with transposed convolutions halving the width;
* residual unit: `x + Conv1(ELU(Conv_k,dilated(ELU(x))))` with the hidden width divided by `compress`
  (EnCodec); ELU activations and weight normalisation everywhere (Salimans & Kingma, 2016).

EnCodec adds a two-layer LSTM at the bottleneck. We leave it out, like DAC (Kumar et al., 2023,
arXiv:2306.06546): without it every output depends on a *finite* window of input (its receptive field), which
is what lets `Codec` process long files in overlapping chunks and still match whole-file processing exactly,
and it is much cheaper on CPU.

Padding is fixed in size per layer ("same"-style, reflecting the signal) and every strided layer maps `L`
samples to exactly `L / s` frames when `L` is a multiple of the hop, so a window that starts on a frame
boundary computes the same values as the whole signal wherever it has enough context on both sides.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm


class PaddedConv1d(nn.Module):
    """Weight-normalised `Conv1d` with fixed-size padding: `[B, Cin, L] -> [B, Cout, L / stride]`.

    The padding totals `dilation * (kernel - 1) + 1 - stride`, split as evenly as possible (the extra sample
    on the right), so for `L` a multiple of `stride` the output has exactly `L / stride` steps. It reflects
    the signal (EnCodec's choice; zeros make every crop's edge frames outliers that dominate the latent
    statistics), falling back to repeating the edge sample for inputs too short to reflect.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation))
        self.span = dilation * (kernel_size - 1)  # input samples the output looks at, beyond one
        total = max(self.span + 1 - stride, 0)
        self.padding = (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == (0, 0):
            return self.conv(x)
        mode = "reflect" if x.shape[-1] > max(self.padding) else "replicate"
        return self.conv(F.pad(x, self.padding, mode=mode))


class TrimmedConvTranspose1d(nn.Module):
    """Weight-normalised `ConvTranspose1d` trimmed to exactly `L * stride` steps: `[B, Cin, L] -> [B, Cout, L*s]`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int) -> None:
        super().__init__()
        self.conv = weight_norm(nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=stride))
        self.stride = stride
        self.kernel_size = kernel_size
        total = kernel_size - stride
        self.trim = (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y[..., self.trim[0] : y.shape[-1] - self.trim[1]]


class ResidualUnit(nn.Module):
    """`x + Conv_1(ELU(Conv_k,d(ELU(x))))`, hidden width `channels // compress`. Shape-preserving `[B, C, L]`."""

    def __init__(self, channels: int, *, kernel_size: int, dilation: int, compress: int) -> None:
        super().__init__()
        hidden = max(channels // compress, 1)
        self.conv1 = PaddedConv1d(channels, hidden, kernel_size, dilation=dilation)
        self.conv2 = PaddedConv1d(hidden, channels, 1)

    @property
    def span(self) -> int:
        return self.conv1.span

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.elu(self.conv1(F.elu(x))))


def _widths(base: int, num_blocks: int, maximum: int) -> list[int]:
    """Channel widths before each block and after the last one: base, 2*base, 4*base ... capped."""
    return [min(base * 2**i, maximum) for i in range(num_blocks + 1)]


class SEANetEncoder(nn.Module):
    """Waveform `[B, C, T]` (T a multiple of the hop) -> latent frames `[B, D, T / hop]`."""

    def __init__(
        self,
        *,
        channels: int,
        latent_dim: int,
        strides: tuple[int, ...],
        base_channels: int,
        max_channels: int,
        residual_kernel_size: int,
        dilations: tuple[int, ...],
        compress: int,
    ) -> None:
        super().__init__()
        widths = _widths(base_channels, len(strides), max_channels)
        layers: list[nn.Module] = [PaddedConv1d(channels, widths[0], 7)]
        # (span in samples at the layer's input, samples per input step) of each conv, for the receptive field
        spans = [(layers[0].span, 1)]
        step = 1
        for i, stride in enumerate(strides):
            for dilation in dilations:
                unit = ResidualUnit(widths[i], kernel_size=residual_kernel_size, dilation=dilation, compress=compress)
                layers.append(unit)
                spans.append((unit.span, step))
            layers.append(nn.ELU())
            down = PaddedConv1d(widths[i], widths[i + 1], 2 * stride, stride=stride)
            layers.append(down)
            spans.append((down.span, step))
            step *= stride
        layers += [nn.ELU(), PaddedConv1d(widths[-1], latent_dim, 3)]
        spans.append((layers[-1].span, step))
        self.layers = nn.Sequential(*layers)
        self.hop_length = step
        #: input samples (beyond one) that one latent frame depends on, summed over layers
        self.receptive_field = sum(span * scale for span, scale in spans) + 1

    @property
    def context_frames(self) -> int:
        """Frames of context needed on each side of a chunk so its centre matches whole-signal encoding."""
        return math.ceil(self.receptive_field / self.hop_length) + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.layers(wav)


class SEANetDecoder(nn.Module):
    """Latent frames `[B, D, F]` -> waveform `[B, C, F * hop]`; the mirror image of `SEANetEncoder`."""

    def __init__(
        self,
        *,
        channels: int,
        latent_dim: int,
        strides: tuple[int, ...],
        base_channels: int,
        max_channels: int,
        residual_kernel_size: int,
        dilations: tuple[int, ...],
        compress: int,
    ) -> None:
        super().__init__()
        widths = _widths(base_channels, len(strides), max_channels)[::-1]
        upsample = tuple(reversed(strides))
        layers: list[nn.Module] = [PaddedConv1d(latent_dim, widths[0], 7)]
        # Context in *frames*: a span of n steps at a layer whose step is 1/m frame costs n/m frames.
        context = layers[0].span
        samples_per_frame = 1  # steps of the current layer per code frame
        for i, stride in enumerate(upsample):
            layers += [nn.ELU(), TrimmedConvTranspose1d(widths[i], widths[i + 1], 2 * stride, stride=stride)]
            context += math.ceil(2 * stride / stride) / samples_per_frame
            samples_per_frame *= stride
            for dilation in dilations:
                unit = ResidualUnit(
                    widths[i + 1], kernel_size=residual_kernel_size, dilation=dilation, compress=compress
                )
                layers.append(unit)
                context += unit.span / samples_per_frame
        layers += [nn.ELU(), PaddedConv1d(widths[-1], channels, 7)]
        context += layers[-1].span / samples_per_frame
        self.layers = nn.Sequential(*layers)
        self.hop_length = samples_per_frame
        self._context = context

    @property
    def context_frames(self) -> int:
        """Frames of context needed on each side of a chunk so its centre matches whole-signal decoding."""
        return math.ceil(self._context) + 1

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.layers(latent)
