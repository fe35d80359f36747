"""Harmony features (backend "harmony"): chords, bass roots and onsets of constructed accompaniments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.semantic.errors import SemanticTokenizerError
from models.semantic.harmony import HarmonyFeatureConfig, HarmonyFeatureExtractor, pitch_class_folding
from models.semantic.kmeans import KMeansConfig
from models.semantic.tokenizer import fit_semantic_tokenizer, load_semantic_tokenizer

SR = 16_000


def note(midi: float, seconds: float, *, harmonics: int = 6, amplitude: float = 0.1) -> np.ndarray:
    """A harmonic tone with a 1/h spectrum and a short attack/decay envelope."""
    t = np.arange(int(seconds * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, harmonics + 1) if f0 * h < SR / 2)
    envelope = np.minimum(1.0, t / 0.01) * np.exp(-t / 2.0)
    return (amplitude * envelope * tone).astype(np.float32)


def chord(root_midi: int, quality: str, seconds: float = 1.0) -> np.ndarray:
    """A triad in the middle register over a bass note two octaves below the root."""
    third = 4 if quality == "maj" else 3
    upper = sum(note(root_midi + offset, seconds) for offset in (0, third, 7))
    return upper + note(root_midi - 24, seconds, amplitude=0.2)


def features(audio: np.ndarray) -> tuple[torch.Tensor, HarmonyFeatureExtractor]:
    extractor = HarmonyFeatureExtractor()
    return extractor.extract(torch.from_numpy(audio)[None, None]), extractor


def test_shapes_and_frame_count():
    extractor = HarmonyFeatureExtractor()
    out = extractor.extract(torch.zeros(2, 1, SR + 7))
    assert out.shape == (2, extractor.num_frames(SR + 7), 28) == (2, 26, 28)
    assert extractor.extract(torch.zeros(1, 1, 0)).shape == (1, 0, 28)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("root", "quality"), [(60, "maj"), (57, "min"), (67, "maj"), (62, "min")])
def test_chroma_names_the_triad_and_bass_the_root(root: int, quality: str):
    feats, extractor = features(chord(root, quality))
    groups = extractor.groups
    middle = feats[0, 5:20]  # away from the edges
    chroma, bass = middle[:, groups["chroma"]].mean(0), middle[:, groups["bass"]].mean(0)
    third = 4 if quality == "maj" else 3
    assert set(chroma.topk(3).indices.tolist()) == {root % 12, (root + third) % 12, (root + 7) % 12}
    assert int(bass.argmax()) == root % 12
    torch.testing.assert_close(middle[:, groups["chroma"]].sum(-1), torch.ones(15))


def test_silence_has_a_flat_profile():
    feats, extractor = features(np.zeros(SR, dtype=np.float32))
    chroma = feats[0, :, extractor.groups["chroma"]]
    torch.testing.assert_close(chroma, torch.full_like(chroma, 1 / 12))


def test_onsets_peak_where_notes_start():
    audio = np.zeros(2 * SR, dtype=np.float32)
    for start in (0.4, 1.2):  # seconds
        tone = note(64, 0.3)
        audio[int(start * SR) : int(start * SR) + tone.size] += tone
    feats, extractor = features(audio)
    onset = feats[0, :, extractor.groups["onset"]].sum(-1)
    peaks = {int(frame) for frame in onset.topk(2).indices}
    assert all(any(abs(p - start * 25) <= 1 for p in peaks) for start in (0.4, 1.2)), peaks


def test_folding_shares_a_quarter_tone_between_neighbours():
    fold = pitch_class_folding(SR, 4096, 65.0, 2100.0)
    freqs = np.fft.rfftfreq(4096, 1 / SR)
    bin_a4 = int(np.argmin(np.abs(freqs - 440.0)))
    assert fold[:, bin_a4].argmax() == 9 and fold[:, bin_a4].sum() == pytest.approx(1.0)
    assert fold[:, freqs < 65.0].sum() == 0 and fold[:, freqs > 2100.0].sum() == 0


def test_tokenizer_separates_chords_and_round_trips(tmp_path):
    clips = {name: chord(root, quality) for name, (root, quality) in {"C": (60, "maj"), "Am": (57, "min")}.items()}
    extractor = HarmonyFeatureExtractor()
    feats = [extractor.extract(torch.from_numpy(clip)[None, None])[0, 3:22] for clip in clips.values()]
    tokenizer, _ = fit_semantic_tokenizer(extractor, feats, kmeans=KMeansConfig(k=2, seed=0))
    tokens = {name: tokenizer.encode(torch.from_numpy(clip)[None, None])[0, 0, 3:22] for name, clip in clips.items()}
    assert tokens["C"].unique().numel() == 1 and tokens["Am"].unique().numel() == 1
    assert tokens["C"][0] != tokens["Am"][0]
    tokenizer.save(tmp_path / "tok")
    loaded = load_semantic_tokenizer(tmp_path / "tok")
    assert torch.equal(loaded.encode(torch.from_numpy(clips["C"])[None, None])[0, 0, 3:22], tokens["C"])


def test_invalid_settings_are_errors():
    with pytest.raises(SemanticTokenizerError, match="chroma band"):
        HarmonyFeatureExtractor(HarmonyFeatureConfig(chroma_min_hz=3000.0))
    with pytest.raises(SemanticTokenizerError, match="whole multiple"):
        HarmonyFeatureExtractor(HarmonyFeatureConfig(frame_rate=23.0))
