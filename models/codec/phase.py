"""Phase reconstruction from a magnitude spectrogram: fast Griffin-Lim, batched, in torch.

The spectral codec (`models/codec/spectral.py`) transmits magnitudes only; the waveform is recovered by
Griffin-Lim (Griffin & Lim, 1984) with the momentum ("fast Griffin-Lim") update of Perraudin, Balazs &
Søndergaard (2013, "A fast Griffin-Lim algorithm", WASPAA): each iteration projects onto consistent
spectrograms (iSTFT then STFT) and extrapolates the phase with momentum `alpha`,

    c_n = P_C(P_A(t_{n-1})),   t_n = c_n - alpha / (1 + alpha) * c_{n-1}

(the same parameterisation as `librosa.griffinlim`, whose momentum 0.99 is the default here). It is written
with `torch.stft` / `torch.istft` on `[B, bins, frames]` tensors, so a batch of clips is reconstructed in one
go (librosa's NumPy version handles one clip at a time and is several times slower here).

The initial phase is pseudo-random but seeded (`seed`), so decoding is deterministic. Pitch needs frequency
resolution: measured on 16 held-out synthetic songs (10 s each, chroma correlation with the original), GL
from the true magnitude keeps 0.996 at n_fft 2048 / hop 480 but only 0.919 at n_fft 1024 / hop 480.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


class FrameTransform:
    """STFT / inverse STFT pair for Griffin-Lim on `[B, frames, bins]` spectra (frames-major, no transposes).

    Same convention as `torch.stft(center=True, window=hann)` / `torch.istft`, written as unfold + rfft and
    irfft + `fold` overlap-add with a precomputed window envelope: on this project's CPUs `torch.stft` and
    `torch.istft` spend most of their time outside the FFT (measured 2-11 ms vs 1.2 ms for the rfft of the same
    frames, 10 s at n_fft 2048 / hop 480, one thread), and Griffin-Lim calls them twice per iteration.
    """

    def __init__(self, n_fft: int, hop_length: int, frames: int, length: int, device: torch.device) -> None:
        self.n_fft, self.hop, self.frames, self.length = n_fft, hop_length, frames, length
        self.window = torch.hann_window(n_fft, device=device)
        self.padded = (frames - 1) * hop_length + n_fft
        envelope = self._overlap_add(self.window.pow(2).expand(1, frames, n_fft))
        self.inverse_envelope = 1.0 / envelope.clamp_min(1e-8)

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """`[B, F, n_fft]` -> `[B, (F - 1) * hop + n_fft]`."""
        folded = F.fold(frames.transpose(1, 2), (1, self.padded), kernel_size=(1, self.n_fft), stride=(1, self.hop))
        return folded.flatten(1)

    def inverse(self, spectrum: torch.Tensor) -> torch.Tensor:
        """`[B, F, bins]` complex -> `[B, length]` (least-squares inverse, as torch.istft)."""
        frames = torch.fft.irfft(spectrum, n=self.n_fft) * self.window
        signal = self._overlap_add(frames) * self.inverse_envelope
        half = self.n_fft // 2
        return signal[:, half : half + self.length]

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """`[B, length]` -> `[B, F, bins]` complex (centred frames, reflect padding)."""
        half = self.n_fft // 2
        needed = (self.frames - 1) * self.hop - signal.shape[-1]
        padded = F.pad(signal[:, None], (half, half + max(0, needed)), mode="reflect")[:, 0]
        frames = padded.unfold(-1, self.n_fft, self.hop)[:, : self.frames]
        return torch.fft.rfft(frames * self.window)


def griffin_lim(
    magnitude: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    iterations: int = 32,
    momentum: float = 0.99,
    length: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """`[B, n_fft // 2 + 1, F]` linear magnitude -> `[B, T]` waveform (`T = length` or `(F - 1) * hop`).

    Frames are centred (`torch.stft(center=True)` convention) with a Hann window of `n_fft` samples.
    `iterations=0` returns the signal with the initial (random) phase.
    """
    if magnitude.ndim != 3 or magnitude.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"expected magnitude [B, {n_fft // 2 + 1}, F], got {tuple(magnitude.shape)}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    magnitude = magnitude.float().transpose(1, 2).contiguous()  # [B, F, bins]
    frames = magnitude.shape[1]
    length = (frames - 1) * hop_length if length is None else length
    transform = FrameTransform(n_fft, hop_length, frames, length, magnitude.device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(magnitude.shape, generator=generator).to(magnitude.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    beta = momentum / (1.0 + momentum)
    for _ in range(iterations):
        # in place where possible: on CPU these element-wise passes over complex spectra cost as much as the FFTs
        rebuilt = transform.forward(transform.inverse(angles.mul_(magnitude)))
        angles = torch.sub(rebuilt, previous, alpha=beta)
        angles.div_(angles.abs().add_(1e-8))
        previous = rebuilt
    return transform.inverse(angles.mul_(magnitude))
