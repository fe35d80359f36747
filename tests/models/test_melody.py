import numpy as np
import pretty_midi
import pytest
import torch

from core.audio import load_audio
from models.melody import UNVOICED, MelodyTokenizer, melody_pitch_class
from pipelines.corpus.generate import CorpusSettings, generate_corpus


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
