"""Frame-level features for semantic tokens, and the weight-free built-in extractor.

Every extractor maps a mono waveform `[B, 1, T]` at `extractor.sample_rate` to features `[B, F, D]` at
`extractor.frame_rate` (25 Hz by default, the rate of AudioLM's w2v-BERT semantic tokens) with
`F = ceil(T * frame_rate / sample_rate)`, the same count as `AudioTokenizer.num_frames`. Frame `j` describes
the samples `[j * H, (j + 1) * H)` with `H = sample_rate / frame_rate` (an integer by construction).

The built-in extractor needs no weights. It follows the first iteration of HuBERT (Hsu et al., 2021,
"HuBERT: Self-Supervised Speech Representation Learning by Masked Prediction of Hidden Units"), whose
targets were k-means clusters of MFCC features, and adds what matters for accompaniment: SingSong
(Donahue et al., 2023) conditions on the *vocal*, whose melody (pitch) drives the harmony of the
accompaniment, so pitch information is made explicit rather than left to MFCCs (which mostly discard it).

Per analysis frame (64 ms Hann window, 10 ms hop), pooled by averaging to the target rate:

=========  ====  ==========================================================================================
group      dims  content
=========  ====  ==========================================================================================
mfcc       13    MFCC c1..c13 of an 80-band log-mel spectrogram: spectral envelope (phonetic content)
delta      13    their first time derivative (regression over +-2 frames): articulation dynamics
chroma     12    pitch-class profile of a harmonic-summation f0 salience (melody note, octave-invariant)
pitch      2     pitch height (salience argmax, in octaves) and voicing strength (salience peakiness)
spectral   4     log RMS, log spectral centroid, log spectral flatness, log 85% roll-off frequency
=========  ====  ==========================================================================================

Because k-means uses Euclidean distance, larger groups would dominate after per-dimension
standardisation; `feature_weights()` returns per-dimension weights `w_g / sqrt(dims_g)` so that each group
contributes about `w_g^2` to squared distances. The tokenizer applies them after standardisation.

The harmonic-summation salience (Klapuri, 2006, "Multiple fundamental frequency estimation by summing
harmonic amplitudes") is computed on a log-frequency grid (3 bins per semitone): the salience of a
candidate f0 is a decaying sum of the log-compressed magnitudes at its first 8 harmonics. It is sharpened
(normalised by its per-frame maximum and raised to a power) before folding into 12 pitch classes, so a
sung note yields a peaked chroma at its pitch class while noise and silence give a flat one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.semantic.errors import SemanticTokenizerError


def target_hop(sample_rate: int, frame_rate: float) -> int:
    """Samples per output frame; `sample_rate / frame_rate` must be a whole number."""
    if frame_rate <= 0:
        raise SemanticTokenizerError(f"frame rate must be positive, got {frame_rate}")
    hop = sample_rate / frame_rate
    if abs(hop - round(hop)) > 1e-6:
        raise SemanticTokenizerError(
            f"sample rate {sample_rate} Hz is not a whole multiple of frame rate {frame_rate} Hz"
        )
    return round(hop)


def pool_frames(
    x: torch.Tensor, *, native_hop: float, native_offset: float, hop: float, num_frames: int
) -> torch.Tensor:
    """Average analysis frames into output frames.

    Args:
        x: `[B, N, D]` analysis frames; frame `i` is centred on sample `native_offset + i * native_hop`.
        hop: output hop in samples; output frame `j` covers samples `[j * hop, (j + 1) * hop)`.
        num_frames: F, the number of output frames.
    Returns:
        `[B, F, D]`: the mean of the analysis frames centred inside each output frame (at least one frame,
        the nearest following one, when `native_hop > hop` leaves a window empty).
    """
    batch, count, dim = x.shape
    if num_frames == 0:
        return x.new_zeros(batch, 0, dim)
    edges = (np.arange(num_frames + 1) * hop - native_offset) / native_hop
    bounds = np.clip(np.ceil(edges - 1e-9).astype(np.int64), 0, count)
    starts = np.minimum(bounds[:-1], count - 1)
    ends = np.maximum(bounds[1:], starts + 1)
    # Prefix sums in float64 keep long sequences exact enough; mean = (S[end] - S[start]) / (end - start).
    prefix = F.pad(x.double().cumsum(dim=1), (0, 0, 1, 0))
    starts_t = torch.from_numpy(starts).to(x.device)
    ends_t = torch.from_numpy(ends).to(x.device)
    sums = prefix[:, ends_t] - prefix[:, starts_t]
    return (sums / (ends_t - starts_t).to(sums.dtype)[None, :, None]).to(x.dtype)


class FeatureExtractor(ABC):
    """Waveform `[B, 1, T]` at `sample_rate` -> features `[B, F, D]` at `frame_rate`."""

    #: Backend name stored in tokenizer checkpoints (see `models.semantic.tokenizer.build_feature_extractor`).
    backend: str = ""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Sample rate (Hz) `extract` expects."""

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Output frames per second."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """D, the feature dimension."""

    @abstractmethod
    def extract(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, 1, T]` float waveform -> `[B, F, D]` float32 features, `F = num_frames(T)`."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings that rebuild this extractor (weights are never included)."""

    @property
    def hop_length(self) -> int:
        """Samples per output frame."""
        return target_hop(self.sample_rate, self.frame_rate)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples (a partial last frame counts)."""
        return math.ceil(num_samples / self.hop_length)

    def feature_weights(self) -> torch.Tensor:
        """`[D]` weights applied after standardisation (k-means distance shaping); ones by default."""
        return torch.ones(self.dim)

    def to(self, device: str | torch.device) -> FeatureExtractor:
        return self

    def _check_input(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise SemanticTokenizerError(f"expected a mono waveform [B, 1, T], got shape {tuple(wav.shape)}")
        return wav[:, 0].float()


class GroupedFeatureExtractor(FeatureExtractor):
    """An extractor whose feature axis is a concatenation of named groups, each weighted as a whole.

    Subclasses set `self.cfg` (a dataclass with `sample_rate`, `frame_rate` and `group_weights`) and call
    `_lay_out_groups` with the group sizes in feature order.
    """

    cfg: Any
    _device: torch.device
    _groups: dict[str, slice]
    _dim: int

    def _lay_out_groups(self, sizes: Sequence[tuple[str, int]]) -> None:
        self._groups, offset = {}, 0
        for name, size in sizes:
            self._groups[name] = slice(offset, offset + size)
            offset += size
        self._dim = offset

    @property
    def sample_rate(self) -> int:
        return self.cfg.sample_rate

    @property
    def frame_rate(self) -> float:
        return self.cfg.frame_rate

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def groups(self) -> dict[str, slice]:
        """Feature group name -> slice of the last feature axis."""
        return dict(self._groups)

    def config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def feature_weights(self) -> torch.Tensor:
        """`w_g / sqrt(dims_g)` per dimension: each group adds about `w_g^2` to squared distances."""
        weights = torch.empty(self._dim)
        for name, part in self._groups.items():
            weights[part] = self.cfg.group_weights[name] / math.sqrt(part.stop - part.start)
        return weights

    @torch.no_grad()
    def extract(self, wav: torch.Tensor) -> torch.Tensor:
        x = self._check_input(wav).to(self._device)  # [B, T]
        batch, length = x.shape
        num_frames = self.num_frames(length)
        if num_frames == 0:
            return x.new_zeros(batch, 0, self._dim)
        # Analysis frame i is centred on sample i * analysis_hop; keep those centred before the last
        # output frame's end, zero-padding the signal so every one of them exists.
        hop = self.cfg.analysis_hop
        count = math.ceil(num_frames * self.hop_length / hop)
        frames = self._analysis_frames(F.pad(x, (0, count * hop - length)), count)  # [B, D, N]
        pooled = pool_frames(
            frames.transpose(1, 2), native_hop=hop, native_offset=0.0, hop=self.hop_length, num_frames=num_frames
        )
        return pooled.float()

    @abstractmethod
    def _analysis_frames(self, x: torch.Tensor, count: int) -> torch.Tensor:
        """`[B, D, count]` features of the padded signal `x` `[B, T]`, frame i centred on i * analysis_hop."""


@dataclass
class BuiltinFeatureConfig:
    """Settings of `BuiltinFeatureExtractor` (all stored in tokenizer checkpoints)."""

    sample_rate: int = 16_000
    frame_rate: float = 25.0
    n_fft: int = 1024  # 64 ms at 16 kHz: resolves harmonics of a low male voice
    analysis_hop: int = 160  # 10 ms analysis frames, averaged into output frames
    n_mels: int = 80
    n_mfcc: int = 13  # c1..c13: the envelope; higher ones mostly resolve harmonics (pitch), c0 ~ RMS
    pitch_min_midi: float = 36.0  # C2, 65 Hz: bass voice
    pitch_max_midi: float = 84.0  # C6, 1047 Hz: soprano
    bins_per_semitone: int = 3
    num_harmonics: int = 8
    harmonic_decay: float = 0.8
    salience_gain: float = 1000.0  # log-compression: log1p(gain * magnitude)
    chroma_sharpness: float = 4.0
    group_weights: dict[str, float] = field(
        default_factory=lambda: {"mfcc": 1.0, "delta": 0.5, "chroma": 1.0, "pitch": 0.5, "spectral": 0.5}
    )

    def validate(self) -> None:
        hop = target_hop(self.sample_rate, self.frame_rate)
        if not 0 < self.analysis_hop <= hop:
            raise SemanticTokenizerError(f"analysis hop {self.analysis_hop} must be in (0, {hop}]")
        if self.n_mfcc + 1 > self.n_mels:
            raise SemanticTokenizerError(f"n_mfcc={self.n_mfcc} needs more than {self.n_mels} mel bands")
        if not self.pitch_min_midi < self.pitch_max_midi:
            raise SemanticTokenizerError("pitch_min_midi must be below pitch_max_midi")
        missing = {"mfcc", "delta", "chroma", "pitch", "spectral"} - set(self.group_weights)
        if missing:
            raise SemanticTokenizerError(f"group_weights lacks {sorted(missing)}")


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels / 200 Hz), logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """`[n_mels, n_fft // 2 + 1]` triangular filters equally spaced on the Slaney mel scale (0 Hz to
    Nyquist), area-normalised (each filter integrates to 2 / bandwidth): the usual MFCC front end."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return (weights * (2.0 / (upper - lower))).astype(np.float32)


def _midi_to_hz(midi: np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


class BuiltinFeatureExtractor(GroupedFeatureExtractor):
    """Weight-free DSP features (MFCC, deltas, pitch-class salience, pitch, spectral statistics).

    Fully batched torch; runs on any device. See the module docstring for the feature layout.
    """

    backend = "builtin"

    def __init__(self, config: BuiltinFeatureConfig | None = None):
        self.cfg = config or BuiltinFeatureConfig()
        self.cfg.validate()
        cfg = self.cfg
        self._device = torch.device("cpu")
        self._window = torch.hann_window(cfg.n_fft, periodic=True)
        # Magnitude scale: a sinusoid of amplitude A peaks at about A * sum(window) / 2 in the STFT.
        self._mag_scale = 2.0 / float(self._window.sum())
        self._freqs = torch.from_numpy(np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)).float()

        self._mel = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels)).float()  # [M, K]
        m = np.arange(cfg.n_mels)
        basis = np.cos(np.pi / cfg.n_mels * (m[None, :] + 0.5) * np.arange(cfg.n_mfcc + 1)[:, None])
        basis *= np.sqrt(2.0 / cfg.n_mels)  # orthonormal DCT-II rows (row 0 rescaling irrelevant: dropped)
        self._dct = torch.from_numpy(basis[1:]).float()  # [n_mfcc, M]
        self._delta_kernel = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0]) / 10.0
        self._build_pitch_tables()

        self._lay_out_groups(
            [("mfcc", cfg.n_mfcc), ("delta", cfg.n_mfcc), ("chroma", 12), ("pitch", 2), ("spectral", 4)]
        )

    def _build_pitch_tables(self) -> None:
        """Log-frequency filterbank `[P, K]`, harmonic shifts and the pitch-class folding matrix `[12, C]`."""
        cfg = self.cfg
        bps = cfg.bins_per_semitone
        self._num_candidates = round((cfg.pitch_max_midi - cfg.pitch_min_midi) * bps) + 1
        self._shifts = [round(12 * bps * math.log2(h)) for h in range(1, cfg.num_harmonics + 1)]
        num_bins = self._num_candidates + self._shifts[-1]
        midi = cfg.pitch_min_midi + np.arange(num_bins) / bps
        centres = _midi_to_hz(midi)
        bin_hz = cfg.sample_rate / cfg.n_fft
        half_width = np.maximum(centres * (2.0 ** (1.0 / (12 * bps)) - 1.0), bin_hz)
        freqs = self._freqs.numpy()[None, :]
        tri = np.clip(1.0 - np.abs(freqs - centres[:, None]) / half_width[:, None], 0.0, None)
        tri[centres >= cfg.sample_rate / 2] = 0.0
        tri /= np.maximum(tri.sum(axis=1, keepdims=True), 1e-12)
        self._logfreq = torch.from_numpy(tri).float()  # [P, K]
        self._candidate_midi = torch.from_numpy(midi[: self._num_candidates]).float()
        pitch_class = np.round(midi[: self._num_candidates]).astype(np.int64) % 12
        fold = np.zeros((12, self._num_candidates), dtype=np.float32)
        fold[pitch_class, np.arange(self._num_candidates)] = 1.0
        self._fold = torch.from_numpy(fold)  # [12, C]

    # ------------------------------------------------------------------------------------------------
    def to(self, device: str | torch.device) -> BuiltinFeatureExtractor:
        self._device = torch.device(device)
        for name in (
            "_window",
            "_freqs",
            "_mel",
            "_dct",
            "_delta_kernel",
            "_logfreq",
            "_candidate_midi",
            "_fold",
        ):
            setattr(self, name, getattr(self, name).to(self._device))
        return self

    # ------------------------------------------------------------------------------------------------
    def _analysis_frames(self, x: torch.Tensor, count: int) -> torch.Tensor:
        cfg = self.cfg
        spec = torch.stft(
            x,
            cfg.n_fft,
            cfg.analysis_hop,
            window=self._window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )[..., :count]
        mag = spec.abs() * self._mag_scale  # [B, K, N], a sinusoid of amplitude A peaks near A
        power = mag.square()

        log_mel = torch.log(self._mel @ power + 1e-8)  # [B, M, N]
        mfcc = self._dct @ log_mel  # [B, n_mfcc, N]
        delta = self._deltas(mfcc)
        chroma, pitch = self._pitch_features(mag)
        spectral = self._spectral_stats(power)

        return torch.cat([mfcc, delta, chroma, pitch, spectral], dim=1)  # [B, D, N]

    def _deltas(self, coeffs: torch.Tensor) -> torch.Tensor:
        """First derivative by linear regression over +-2 frames (edge frames repeated): `[B, C, N]`."""
        batch, channels, count = coeffs.shape
        padded = F.pad(coeffs.reshape(batch * channels, 1, count), (2, 2), mode="replicate")
        return F.conv1d(padded, self._delta_kernel.view(1, 1, 5)).reshape(batch, channels, count)

    def _pitch_features(self, mag: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Harmonic-summation salience -> chroma `[B, 12, N]` and (pitch height, voicing) `[B, 2, N]`."""
        cfg = self.cfg
        logspec = torch.log1p(cfg.salience_gain * (self._logfreq @ mag))  # [B, P, N]
        candidates = self._num_candidates
        salience = torch.zeros_like(logspec[:, :candidates])
        for index, shift in enumerate(self._shifts):
            salience = salience + cfg.harmonic_decay**index * logspec[:, shift : shift + candidates]
        peak, best = salience.max(dim=1)  # [B, N]
        sharp = (salience / (peak.unsqueeze(1) + 1e-6)).pow(cfg.chroma_sharpness)
        chroma = self._fold @ sharp  # [B, 12, N]
        chroma = (chroma + 1e-3) / (chroma.sum(dim=1, keepdim=True) + 12e-3)
        height = self._candidate_midi[best] / 12.0 - 5.0  # octaves around MIDI 60
        voicing = torch.log((peak + 1e-3) / (salience.mean(dim=1) + 1e-3))
        return chroma, torch.stack([height, voicing], dim=1)

    def _spectral_stats(self, power: torch.Tensor) -> torch.Tensor:
        """Log RMS, log centroid, log flatness, log 85% roll-off: `[B, 4, N]`."""
        total = power.sum(dim=1)  # [B, N]
        freqs = self._freqs[None, :, None]
        log_rms = 0.5 * torch.log(total / self.cfg.n_fft + 1e-10)
        centroid = (freqs * power).sum(dim=1) / (total + 1e-10)
        eps = 1e-10
        flatness = torch.log(power + eps).mean(dim=1) - torch.log(power.mean(dim=1) + eps)
        cumulative = power.cumsum(dim=1)
        rolloff_bin = (cumulative < 0.85 * cumulative[:, -1:]).sum(dim=1).clamp(max=power.shape[1] - 1)
        rolloff = self._freqs[rolloff_bin]
        return torch.stack([log_rms, torch.log1p(centroid), flatness, torch.log1p(rolloff)], dim=1)
