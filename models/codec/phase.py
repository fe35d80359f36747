"""Phase reconstruction from a magnitude spectrogram: fast Griffin-Lim, batched, in torch.

The spectral codec (`models/codec/spectral.py`) transmits magnitudes only; the waveform is recovered by
Griffin-Lim (Griffin & Lim, 1984) with the momentum ("fast Griffin-Lim") update of Perraudin, Balazs &
Søndergaard (2013, "A fast Griffin-Lim algorithm", WASPAA): each iteration projects onto consistent
spectrograms (iSTFT then STFT) and extrapolates the phase with momentum `alpha`,

    c_n = P_C(P_A(t_{n-1})),   t_n = c_n - alpha / (1 + alpha) * c_{n-1}

(the same parameterisation as `librosa.griffinlim`, whose momentum 0.99 is the default here). It is written
with `torch.stft` / `torch.istft` on `[B, bins, frames]` tensors, so a batch of clips is reconstructed in one
go (librosa's NumPy version handles one clip at a time and is several times slower here).

Pitch needs frequency resolution: measured on 16 held-out synthetic songs (10 s each, chroma correlation
with the original), GL from the true magnitude keeps 0.996 at n_fft 2048 / hop 480 but only 0.919 at n_fft
1024 / hop 480.

Two starting phases (`init`): "random" (uniform, seeded, so decoding is deterministic) or "peaks", the
phase-vocoder initialisation of `peak_phase`. On a codec's decoded magnitude the start matters more than the
iteration count: codec_v3's magnitudes with the *true* phase keep a chroma correlation of 0.989, but GL from
a random start only 0.937 (32 iterations) or 0.944 (64); from "peaks" 0.944 after 16 iterations and 0.946
after 32, and the estimated key agrees on 15 of 16 songs instead of 14 (16 held-out songs x 20 s).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

PHASE_INITS = ("random", "peaks")


def peak_phase(magnitude: torch.Tensor, *, n_fft: int, hop_length: int) -> torch.Tensor:
    """`[B, bins, F]` magnitude -> `[B, bins, F]` phase that a sum of slowly varying sinusoids would have.

    The phase-vocoder view of a spectrogram (as in the time-direction integration of PGHI, Prusa, Balazs &
    Sondergaard 2017, and the phase vocoder of Laroche & Dolson 1999, without their phase locking, which measured
    no better on codec_v4: chroma 0.9507 either way): in each frame, every bin belongs
    to its nearest local maximum of the magnitude, whose true frequency is found by fitting a parabola to the
    log-magnitude around the peak (Smith & Serra 1987); a sinusoid at angular frequency w advances its phase by
    `w * hop` per frame, so each bin's phase is the running sum of that advance (trapezoid rule between frames),
    plus `pi * k` - the phase of bin k of a sinusoid at the centre of a centred, symmetric window. Griffin-Lim
    started here begins from phases that already agree from frame to frame, instead of from noise.
    """
    bins = magnitude.shape[-2]
    log_mag = magnitude.clamp_min(1e-7).log()
    left, centre, right = log_mag[:, :-2], log_mag[:, 1:-1], log_mag[:, 2:]
    is_peak = F.pad((centre > left) & (centre >= right), (0, 0, 1, 1))  # [B, bins, F]
    curvature = left - 2 * centre + right
    curved = curvature.abs() > 1e-9
    offset = torch.where(curved, 0.5 * (left - right) / torch.where(curved, curvature, 1.0), 0.0)
    offset = F.pad(offset.clamp(-0.5, 0.5), (0, 0, 1, 1))  # peak position relative to its bin, in bins
    index = torch.arange(bins, device=magnitude.device, dtype=torch.float32)[None, :, None].expand_as(log_mag)
    # the nearest peak of every bin: the last peak at or below it and the first at or above it, by running max/min
    below = torch.cummax(torch.where(is_peak, index, -1e9), dim=1).values
    above = torch.cummin(torch.where(is_peak, index, 1e9).flip(1), dim=1).values.flip(1)
    nearest = torch.where(index - below <= above - index, below, above)
    has_peak = nearest.abs() < 1e8  # frames without any peak (silence) keep the bin's own frequency
    peak_bin = torch.gather(index + offset, 1, nearest.clamp(0, bins - 1).long())
    frequency = torch.where(has_peak, peak_bin, index)  # in bins
    advance = (2 * torch.pi * hop_length / n_fft) * frequency
    steps = 0.5 * (advance[..., 1:] + advance[..., :-1])
    phase = torch.cat([torch.zeros_like(advance[..., :1]), steps.cumsum(dim=-1)], dim=-1)
    return phase + torch.pi * index


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
    init: str = "random",
) -> torch.Tensor:
    """`[B, n_fft // 2 + 1, F]` linear magnitude -> `[B, T]` waveform (`T = length` or `(F - 1) * hop`).

    Frames are centred (`torch.stft(center=True)` convention) with a Hann window of `n_fft` samples.
    `init`: the starting phase, "random" (seeded by `seed`) or "peaks" (`peak_phase`).
    `iterations=0` returns the signal with the initial phase.
    """
    if magnitude.ndim != 3 or magnitude.shape[1] != n_fft // 2 + 1:
        raise ValueError(f"expected magnitude [B, {n_fft // 2 + 1}, F], got {tuple(magnitude.shape)}")
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if init not in PHASE_INITS:
        raise ValueError(f"init must be one of {', '.join(PHASE_INITS)}, got {init!r}")
    if init == "peaks":
        phase = peak_phase(magnitude.float(), n_fft=n_fft, hop_length=hop_length).transpose(1, 2)
    magnitude = magnitude.float().transpose(1, 2).contiguous()  # [B, F, bins]
    frames = magnitude.shape[1]
    length = (frames - 1) * hop_length if length is None else length
    transform = FrameTransform(n_fft, hop_length, frames, length, magnitude.device)
    if init == "random":
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
