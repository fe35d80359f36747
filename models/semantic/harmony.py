"""Harmony features of an accompaniment: what the vocal should control, and little of the timbre.

SingSong (Donahue et al., 2023) generates the accompaniment's *semantic* tokens first and conditions every
later stage on them, so the semantic tokens decide what the vocal can steer. Tokens of timbre-heavy
features (MFCC-like, or w2v-BERT activations on a small corpus) let a model reach a low loss by predicting
the sound of the band while ignoring the tune: our first default model's semantic stage scored 2.109 nats
with the song's own vocal and 2.149 with another song's (a 0.04 gap). A melody constrains the chords under
it, where they change, and the groove around its note onsets; so these features describe exactly that, at
the semantic rate (25 Hz), and k-means over them (`models.semantic.tokenizer`, backend "harmony") gives
tokens a vocal can predict:

=========  ====  ==========================================================================================
group      dims  content
=========  ====  ==========================================================================================
chroma     12    pitch-class profile of the whole accompaniment (chords), 65 Hz - 2.1 kHz, sums to 1
bass       12    pitch-class profile of the bass register, 30 - 260 Hz (the chord root / inversion)
onset      3     log spectral flux in three bands (< 200 Hz kick/bass, 200 Hz - 2 kHz, > 2 kHz hats)
energy     1     log RMS (sections, dynamics)
=========  ====  ==========================================================================================

Chroma here is plain log-frequency folding of the magnitude spectrum (as `librosa.feature.chroma_stft`,
Ellis 2007), not the harmonic-summation salience the built-in extractor uses for a single sung line: an
accompaniment is polyphonic, and picking one f0 per frame would drop the chord. Magnitudes are compressed
(`log1p(gain * |X|)`) before folding so that one loud partial does not decide the profile, and each profile
is normalised to sum to one (a near-flat profile in silence or pure percussion). The long window (256 ms at
16 kHz) separates neighbouring semitones down to the bass register; onsets use a short-window log-mel flux.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from models.semantic.errors import SemanticTokenizerError
from models.semantic.features import GroupedFeatureExtractor, mel_filterbank, target_hop

GROUPS = ("chroma", "bass", "onset", "energy")


@dataclass
class HarmonyFeatureConfig:
    """Settings of `HarmonyFeatureExtractor` (all stored in tokenizer checkpoints)."""

    sample_rate: int = 16_000
    frame_rate: float = 25.0
    analysis_hop: int = 320  # 20 ms analysis frames, averaged into output frames
    chroma_n_fft: int = 4096  # 256 ms: ~4 Hz bins, a semitone apart at ~70 Hz
    onset_n_fft: int = 512  # 32 ms: sharp onsets
    chroma_min_hz: float = 65.0
    chroma_max_hz: float = 2100.0
    bass_min_hz: float = 30.0
    bass_max_hz: float = 260.0
    onset_band_edges_hz: tuple[float, float] = (200.0, 2000.0)
    n_mels: int = 40
    compression_gain: float = 100.0
    group_weights: dict[str, float] = field(
        default_factory=lambda: {"chroma": 1.0, "bass": 0.7, "onset": 0.6, "energy": 0.3}
    )

    def validate(self) -> None:
        hop = target_hop(self.sample_rate, self.frame_rate)
        if not 0 < self.analysis_hop <= hop:
            raise SemanticTokenizerError(f"analysis hop {self.analysis_hop} must be in (0, {hop}]")
        if not (0 < self.chroma_min_hz < self.chroma_max_hz <= self.sample_rate / 2):
            raise SemanticTokenizerError("chroma band must satisfy 0 < min < max <= Nyquist")
        if not (0 < self.bass_min_hz < self.bass_max_hz <= self.sample_rate / 2):
            raise SemanticTokenizerError("bass band must satisfy 0 < min < max <= Nyquist")
        missing = set(GROUPS) - set(self.group_weights)
        if missing:
            raise SemanticTokenizerError(f"group_weights lacks {sorted(missing)}")


def pitch_class_folding(sample_rate: int, n_fft: int, low_hz: float, high_hz: float) -> np.ndarray:
    """`[12, n_fft // 2 + 1]` matrix folding STFT bins in [low, high] Hz onto pitch classes (C = 0).

    Each bin votes for its two nearest pitch classes with triangular weights in semitones, so a partial
    between two semitones (vibrato, detuning) is shared rather than flipped.
    """
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    fold = np.zeros((12, freqs.size), dtype=np.float32)
    inside = (freqs >= low_hz) & (freqs <= high_hz)
    midi = 69.0 + 12.0 * np.log2(np.maximum(freqs[inside], 1e-6) / 440.0)
    lower = np.floor(midi)
    upper_weight = (midi - lower).astype(np.float32)
    columns = np.flatnonzero(inside)
    np.add.at(fold, (lower.astype(np.int64) % 12, columns), 1.0 - upper_weight)
    np.add.at(fold, ((lower.astype(np.int64) + 1) % 12, columns), upper_weight)
    return fold


class HarmonyFeatureExtractor(GroupedFeatureExtractor):
    """Accompaniment waveform `[B, 1, T]` at 16 kHz -> harmony features `[B, F, 28]` at 25 Hz."""

    backend = "harmony"

    def __init__(self, config: HarmonyFeatureConfig | None = None) -> None:
        self.cfg = config or HarmonyFeatureConfig()
        self.cfg.validate()
        cfg = self.cfg
        self._device = torch.device("cpu")
        self._chroma_window = torch.hann_window(cfg.chroma_n_fft, periodic=True)
        self._onset_window = torch.hann_window(cfg.onset_n_fft, periodic=True)
        self._chroma_fold = torch.from_numpy(
            pitch_class_folding(cfg.sample_rate, cfg.chroma_n_fft, cfg.chroma_min_hz, cfg.chroma_max_hz)
        )
        self._bass_fold = torch.from_numpy(
            pitch_class_folding(cfg.sample_rate, cfg.chroma_n_fft, cfg.bass_min_hz, cfg.bass_max_hz)
        )
        self._mel = torch.from_numpy(mel_filterbank(cfg.sample_rate, cfg.onset_n_fft, cfg.n_mels))
        centres = _mel_centres(cfg.sample_rate, cfg.n_mels)
        low, high = cfg.onset_band_edges_hz
        self._onset_bands = [
            torch.from_numpy(np.flatnonzero(mask)) for mask in (centres < low, (centres >= low) & (centres < high))
        ] + [torch.from_numpy(np.flatnonzero(centres >= high))]
        self._lay_out_groups(list(zip(GROUPS, (12, 12, 3, 1), strict=True)))

    def to(self, device: str | torch.device) -> HarmonyFeatureExtractor:
        self._device = torch.device(device)
        for name in ("_chroma_window", "_onset_window", "_chroma_fold", "_bass_fold", "_mel"):
            setattr(self, name, getattr(self, name).to(self._device))
        self._onset_bands = [band.to(self._device) for band in self._onset_bands]
        return self

    def _analysis_frames(self, x: torch.Tensor, count: int) -> torch.Tensor:
        chroma, bass, energy = self._pitch_profiles(x, count)
        onset = self._onsets(x, count)
        return torch.cat([chroma, bass, onset, energy], dim=1)  # [B, D, N]

    def _stft_magnitude(self, x: torch.Tensor, n_fft: int, window: torch.Tensor, count: int) -> torch.Tensor:
        """`|STFT|` `[B, K, count]`, frames centred on multiples of the analysis hop; a sinusoid of amplitude
        A peaks near A."""
        spec = torch.stft(
            x, n_fft, self.cfg.analysis_hop, window=window, center=True, pad_mode="constant", return_complex=True
        )[..., :count]
        return spec.abs() * (2.0 / float(window.sum()))

    def _pitch_profiles(self, x: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chroma `[B, 12, N]`, bass chroma `[B, 12, N]` (each sums to 1) and log RMS `[B, 1, N]`."""
        mag = self._stft_magnitude(x, self.cfg.chroma_n_fft, self._chroma_window, count)
        compressed = torch.log1p(self.cfg.compression_gain * mag)
        profiles = []
        for fold in (self._chroma_fold, self._bass_fold):
            folded = fold @ compressed + 1e-3  # the floor makes silence a flat profile, not 0/0
            profiles.append(folded / folded.sum(dim=1, keepdim=True))
        power = mag.square().sum(dim=1, keepdim=True) / 2.0  # mean square of the frame (Parseval, scaled)
        return profiles[0], profiles[1], 0.5 * torch.log(power + 1e-10)

    def _onsets(self, x: torch.Tensor, count: int) -> torch.Tensor:
        """Half-wave rectified log-mel flux summed per band, log-compressed: `[B, 3, N]`."""
        mag = self._stft_magnitude(x, self.cfg.onset_n_fft, self._onset_window, count)
        log_mel = torch.log(self._mel @ mag.square() + 1e-8)  # [B, M, N]
        flux = F.pad((log_mel[..., 1:] - log_mel[..., :-1]).clamp(min=0.0), (1, 0))
        bands = [flux[:, band].mean(dim=1) for band in self._onset_bands]
        return torch.log1p(torch.stack(bands, dim=1))


def _mel_centres(sample_rate: int, n_mels: int) -> np.ndarray:
    """Centre frequencies (Hz) of `mel_filterbank`'s filters: its peaks on an FFT grid fine enough to tell."""
    bank = mel_filterbank(sample_rate, 8192, n_mels)
    return np.fft.rfftfreq(8192, 1.0 / sample_rate)[bank.argmax(axis=1)]
