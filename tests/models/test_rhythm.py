"""The vocal's pulse (`models/rhythm.py`): tempo and beat phase from melody onsets, as 25 Hz tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.melody import NUM_PITCH_CLASSES
from models.rhythm import BeatConfig, BeatTokenizer, beat_phase, beat_positions, beat_tokens, melody_tempo

RATE = 25.0


def _melody_tokens(bpm: float, offset_frames: float, seconds: float = 12.0, seed: int = 0) -> np.ndarray:
    """Melody tokens of notes on a beat grid: long notes on the beat, short ones half a beat later."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * RATE)
    tokens = np.zeros(frames, np.int64)
    period = RATE * 60 / bpm
    beat = 0
    while (start := offset_frames + beat * period) < frames - 1:
        pitch = int(rng.integers(12))
        long_end = min(round(start + 0.45 * period), frames)
        tokens[round(start) : long_end] = 1 + pitch
        tokens[round(start)] = 1 + NUM_PITCH_CLASSES + pitch
        off = round(start + 0.5 * period)
        if rng.random() < 0.5 and off < frames:
            tokens[off : min(off + 2, frames)] = 1 + (pitch + 2) % 12
            tokens[off] = 1 + NUM_PITCH_CLASSES + (pitch + 2) % 12
        beat += 1
    return tokens


@pytest.mark.parametrize("bpm", [72.0, 96.0, 120.0, 140.0])
def test_tempo_of_a_melody_on_a_beat_grid(bpm):
    tokens = _melody_tokens(bpm, offset_frames=3.0)
    _, found = beat_tokens(tokens, RATE, 4)
    assert any(abs(found / (bpm * level) - 1) < 0.05 for level in (0.5, 1.0, 2.0)), found


def test_phase_puts_the_long_notes_on_the_beat():
    for offset in (0.0, 4.0, 7.5):
        tokens = _melody_tokens(100.0, offset_frames=offset)
        beats, bpm = beat_tokens(tokens, RATE, 4)
        onsets = np.flatnonzero(tokens > NUM_PITCH_CLASSES)
        long_onsets = [o for o in onsets if (tokens[o : o + 4] > 0).all()]
        on_beat = np.mean(beats[long_onsets] == 1)
        assert on_beat > 0.8, (offset, on_beat, bpm)
        # A shifted grid would not do: the same notes half a beat later sit on position 3 (of 4).
        shifted = beat_positions(
            len(tokens), bpm, beat_phase(*_classes_onsets(tokens), RATE * 60 / bpm) + 0.5 * RATE * 60 / bpm, RATE, 4
        )
        assert np.mean(shifted[long_onsets] == 1) < 0.2


def _classes_onsets(tokens):
    classes = np.where(tokens > 0, (tokens - 1) % NUM_PITCH_CLASSES, -1)
    return classes, np.flatnonzero(tokens > NUM_PITCH_CLASSES)


def test_positions_cycle_through_the_subdivisions_once_per_beat():
    positions = beat_positions(50, bpm=150.0, phase=0.0, frame_rate=RATE, subdivisions=5)  # 10 frames a beat
    np.testing.assert_array_equal(positions[:10], [1, 2, 2, 3, 3, 4, 4, 5, 5, 1])  # nearest step
    np.testing.assert_array_equal(positions[10:20], positions[:10])


def test_no_pulse_without_notes():
    silence = np.zeros(200, np.int64)
    beats, bpm = beat_tokens(silence, RATE, 4)
    assert bpm == 0.0 and not beats.any()
    assert melody_tempo(np.full(200, -1), np.array([5, 40, 90]), RATE) == 0.0  # fewer than 4 onsets


def test_tokenizer_encodes_audio_rows_independently():
    tokenizer = BeatTokenizer(BeatConfig(subdivisions=4))
    assert (tokenizer.cardinality, tokenizer.num_codebooks, tokenizer.frame_rate) == (5, 1, 25.0)
    rate = tokenizer.sample_rate
    t = np.arange(int(8 * rate)) / rate
    # A tone that changes pitch twice a second (120 BPM) against silence.
    pitch = 220 * 2 ** (np.floor(t * 2) % 5 / 12)
    sung = (0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / rate) * (np.modf(t * 2)[0] < 0.8)).astype(np.float32)
    wav = torch.from_numpy(np.stack([sung, np.zeros_like(sung)]))[:, None]
    tokens = tokenizer.encode(wav)
    assert tokens.shape == (2, 1, tokenizer.num_frames(wav.shape[-1]))
    assert not tokens[1].any() and tokens[0].min() >= 1
    tempo = tokenizer.tempo(wav)
    assert any(abs(tempo[0] / (120 * level) - 1) < 0.05 for level in (0.5, 1.0, 2.0)) and tempo[1] == 0.0
    with pytest.raises(ValueError, match="subdivisions"):
        BeatConfig(subdivisions=0)
