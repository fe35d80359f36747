from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from core.audio import load_audio, resample
from models.melody import (
    LOW_MELODY_COVERAGE,
    UNVOICED,
    MelodyTokenizer,
    held_notes,
    melody_coverage,
    melody_coverage_of,
    melody_pitch_class,
)
from pipelines.corpus.generate import CorpusSettings, generate_corpus

EXAMPLE_VOCAL = Path(__file__).resolve().parents[2] / "pipelines" / "inference" / "examples" / "vocal.flac"


@pytest.fixture(scope="module")
def tokenizer():
    return MelodyTokenizer()


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    out = tmp_path_factory.mktemp("melody")
    generate_corpus(out, CorpusSettings(songs=1, seconds=8.0, seed=11, format="wav"), progress=False)
    song_dir = next(out.glob("*/song_*"))
    vocal = load_audio(song_dir / "vocals.wav", sample_rate=16000, channels=1).samples
    notes = next(i for i in pretty_midi.PrettyMIDI(str(song_dir / "song.mid")).instruments if i.name == "vocals").notes
    return torch.from_numpy(vocal)[None], notes


def _truth(notes, frames):
    times = (np.arange(frames) + 0.5) / 25.0
    truth = np.full(frames, -1)
    for note in notes:
        truth[(times >= note.start + 0.04) & (times < note.end - 0.04)] = note.pitch % 12
    return truth


def test_pitch_classes_and_voicing_follow_the_sung_notes(tokenizer, song):
    wav, notes = song
    tokens = tokenizer.encode(wav)
    assert tokens.shape == (1, 1, tokenizer.num_frames(wav.shape[-1]))
    assert int(tokens.max()) < tokenizer.cardinality
    pitch_class = melody_pitch_class(tokens)[0, 0].numpy()
    truth = _truth(notes, pitch_class.shape[0])
    sung = truth >= 0
    assert np.mean(pitch_class[sung] == truth[sung]) > 0.85
    silent = np.ones_like(sung)
    for note in notes:  # frames far from any note (rests, breaths) should mostly be unvoiced
        times = (np.arange(len(silent)) + 0.5) / 25.0
        silent &= ~((times > note.start - 0.15) & (times < note.end + 0.3))
    if silent.any():
        assert np.mean(pitch_class[silent] == -1) > 0.7


def test_tokens_ignore_gain_and_survive_noise(tokenizer, song):
    wav, _ = song
    tokens = tokenizer.encode(wav)
    # The chroma is computed from log-compressed magnitudes with a floor, so gain is not a perfect no-op.
    assert (tokenizer.encode(wav * 0.05) == tokens).float().mean() > 0.95, "input level barely matters"
    rms = wav.pow(2).mean().sqrt()
    noisy = wav + torch.randn(wav.shape, generator=torch.Generator().manual_seed(0)) * rms * 10 ** (-20 / 20)
    assert (tokenizer.encode(noisy) == tokens).float().mean() > 0.8


def test_a_steady_tone_is_one_note_with_one_onset(tokenizer):
    t = torch.arange(16000 * 2) / 16000
    tone = sum(0.3 / k * torch.sin(2 * torch.pi * 440 * k * t) for k in range(1, 6))
    wav = torch.cat([torch.zeros(8000), tone, torch.zeros(8000)])[None, None]
    tokens = tokenizer.encode(wav)[0, 0]
    voiced = tokens != UNVOICED
    assert set(melody_pitch_class(tokens[voiced]).tolist()) == {9}
    assert int((tokens > 12).sum()) == 1, "exactly one onset"


# ------------------------------------------------------------------------------------------ melody coverage
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "speech"


def _tokens(runs: list[tuple[int, int]]) -> torch.Tensor:
    """(pitch class or -1 for unvoiced, frames) runs -> melody tokens `[1, 1, F]` (onset on each run's start)."""
    out = []
    for pc, frames in runs:
        out += [UNVOICED] * frames if pc < 0 else [13 + pc] + [1 + pc] * (frames - 1)
    return torch.tensor(out)[None, None]


def test_held_notes_are_runs_of_one_pitch_class_of_at_least_160_ms():
    tokens = _tokens([(0, 4), (2, 3), (-1, 2), (2, 5), (4, 1)])
    held = held_notes(tokens, 25.0, 0.16)[0].tolist()
    assert held == [True] * 4 + [False] * 3 + [False] * 2 + [True] * 5 + [False]
    # a repeated note (an onset token without a pitch change) ends the run
    assert not held_notes(_tokens([(7, 3), (7, 3)]), 25.0, 0.16).any()


def test_coverage_counts_held_notes_only_in_steady_passages():
    sung = [(0, 10), (2, 10), (-1, 5), (4, 20), (-1, 5)] * 5  # held notes and rests: 40 / 50 frames held
    assert melody_coverage(_tokens(sung)).item() == pytest.approx(0.8)
    # speech-like: a held vowel among gliding syllables; the glide gives it away (steadiness 7/19 < 0.75)
    glide = [(5, 1), (6, 2), (7, 1), (8, 7), (9, 2), (10, 1), (11, 2), (0, 1), (-1, 3), (3, 2), (-1, 3)] * 6
    tokens = _tokens(glide)
    assert held_notes(tokens, 25.0, 0.16).float().mean() > 0.2  # held runs alone would count it
    assert melody_coverage(tokens).item() == 0.0
    # a sung passage (250 frames, 200 held) after a spoken one (150 frames): only the sung part counts
    assert 0.45 < melody_coverage(_tokens(glide + sung)).item() <= 200 / 400
    assert melody_coverage(torch.zeros(2, 1, 0, dtype=torch.long)).tolist() == [0.0, 0.0]


def test_coverage_of_sung_vocals_is_high(song):
    wav, _ = song
    assert melody_coverage_of(wav[0].numpy(), 16000) > 0.5  # a corpus vocal rendered by pipelines.corpus
    vocal = load_audio(EXAMPLE_VOCAL)
    assert melody_coverage_of(vocal.samples, vocal.sample_rate) > 0.5  # 0.57 measured


def test_coverage_does_not_depend_on_the_singers_tuning(song):
    wav, _ = song
    sharp = resample(wav[0].numpy(), round(16000 * 2 ** (50 / 1200)), 16000)  # +50 cents: between two classes
    assert melody_coverage_of(sharp, 16000, retune=False) < 0.2, "the pitch class flips on every vibrato cycle"
    assert melody_coverage_of(sharp, 16000) == pytest.approx(melody_coverage_of(wav[0].numpy(), 16000), abs=0.05)


@pytest.mark.parametrize("name", ["espeak-en-us.opus", "espeak-en-gb-f3.opus"])
def test_coverage_of_speech_is_low(name):
    clip = load_audio(FIXTURES / name)
    voiced = (MelodyTokenizer().encode(torch.from_numpy(clip.samples)[None]) != UNVOICED).float().mean()
    assert voiced > 0.5, "speech is mostly voiced: plain voicing would call it a melody"
    assert melody_coverage_of(clip.samples, clip.sample_rate) < LOW_MELODY_COVERAGE / 2  # 0.00 / 0.06 measured


def test_coverage_of_noise_and_silence():
    noise = np.random.default_rng(0).standard_normal((2, 44100 * 5)).astype(np.float32) * 0.1
    assert melody_coverage_of(noise, 44100) < 0.02
    assert melody_coverage_of(np.zeros(16000 * 5, np.float32), 16000) == 0.0
    assert melody_coverage_of(np.zeros(0, np.float32), 16000) == 0.0
