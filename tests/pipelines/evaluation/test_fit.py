"""Fit metrics on constructed songs whose right answers are known (tests/pipelines/evaluation/songs.py).

The sanity checks of issue 11: the true instrumental scores well; the truth a semitone up scores clearly
worse on harmony; the truth shifted by half a beat scores worse on rhythm; another song's instrumental
scores worse than the song's own.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import SingsongError
from pipelines.evaluation.fit import (
    Beats,
    Key,
    Melody,
    beat_alignment,
    chromagram,
    estimate_key,
    fit_scores,
    harmonic_support,
    melody_tempo,
    tempo_agrees,
    vocal_melody,
)
from tests.pipelines.evaluation.songs import RATE, song


@pytest.fixture(scope="module")
def scored() -> dict[str, object]:
    vocal, truth = song(0, 120.0)
    _, up = song(1, 120.0)
    _, other = song(6, 90.0)
    melody = vocal_melody(vocal, RATE)
    half_beat = int(0.25 * RATE)
    accompaniments = {"truth": truth, "up": up, "shifted": np.roll(truth, half_beat), "other": other}
    return {"melody": melody, **{name: fit_scores(melody, a, RATE) for name, a in accompaniments.items()}}


def test_vocal_melody_reads_the_constructed_tune() -> None:
    vocal, _ = song(0)
    melody = vocal_melody(vocal, RATE)
    voiced = melody.pitch_classes[melody.pitch_classes >= 0]
    assert set(np.unique(voiced)) <= {0, 2, 4, 5, 7, 9, 11}  # chord tones of C, F, G: all in C major
    # notes start on beats 1 and 3 (long) and on the off-beat after beat 2 (short), at 120 BPM: 0.5 s beats
    phases = (melody.onset_times / 0.5) % 1.0
    assert np.mean(np.minimum(phases, 1 - phases) < 0.1) == pytest.approx(2 / 3, abs=0.1)
    long_notes = melody.note_durations() > 10
    assert np.all(np.minimum(phases, 1 - phases)[long_notes] < 0.1)


def test_key_estimation_and_compatibility() -> None:
    for name in ("C major", "D minor", "F# major", "Bb minor"):
        assert estimate_key(Key.parse(name).profile()).name == Key.parse(name).name
    assert Key.parse("A minor").compatible(Key.parse("C major"))
    assert Key.parse("E minor").compatible(Key.parse("G major"))
    assert not Key.parse("C major").compatible(Key.parse("G major"))
    assert not Key.parse("C minor").compatible(Key.parse("C major"))
    with pytest.raises(SingsongError, match="cannot read key"):
        Key.parse("H dur")


def test_true_instrumental_fits(scored: dict) -> None:
    truth = scored["truth"]
    assert truth.harmonic_margin > 0.25
    assert truth.vocal_key == "C major" and truth.key_compatible
    assert truth.tempo_agrees and abs(truth.accompaniment_tempo / 120.0 - 1) < 0.08
    assert truth.beat_margin > 0.5


def test_semitone_up_is_clearly_worse_on_harmony(scored: dict) -> None:
    truth, up = scored["truth"], scored["up"]
    assert up.harmonic_margin < truth.harmonic_margin - 0.25
    assert up.accompaniment_key == "C# major" and not up.key_compatible


def test_half_beat_shift_is_worse_on_rhythm(scored: dict) -> None:
    truth, shifted = scored["truth"], scored["shifted"]
    assert shifted.beat_margin < truth.beat_margin - 0.5
    assert shifted.beat_margin < 0  # the beats now fall between the long notes


def test_other_song_is_worse_than_the_songs_own(scored: dict) -> None:
    truth, other = scored["truth"], scored["other"]
    assert other.harmonic_margin < truth.harmonic_margin - 0.25
    assert not other.key_compatible and not other.tempo_agrees
    assert other.beat_margin < truth.beat_margin


def test_harmonic_support_controls_and_silence(scored: dict) -> None:
    melody = scored["melody"]
    _, truth = song(0)
    chroma = chromagram(truth, RATE)
    by_control = {c: harmonic_support(melody, chroma, control=c) for c in ("mean", "semitone", "worst")}
    rotations = np.array(by_control["mean"].by_rotation)
    assert by_control["mean"].control == pytest.approx(rotations[1:].mean())
    assert by_control["semitone"].control == pytest.approx((rotations[1] + rotations[11]) / 2)
    assert by_control["worst"].control == pytest.approx(rotations[1:].max())
    assert by_control["worst"].margin <= by_control["mean"].margin
    # rotating the accompaniment's chroma by r rotates the support table by r
    rolled = harmonic_support(melody, np.roll(chroma, 3, axis=0))
    assert rolled.by_rotation[9] == pytest.approx(rotations[0])
    silent = harmonic_support(melody, np.zeros_like(chroma))
    assert silent.support == 0.0 and silent.margin == 0.0
    with pytest.raises(SingsongError, match="control"):
        harmonic_support(melody, chroma, control="best")  # type: ignore[arg-type]


def test_beat_alignment_on_exact_grids() -> None:
    beats = Beats(120.0, np.arange(0, 8, 0.5))
    on_beats = np.arange(0, 8, 1.0)
    assert beat_alignment(on_beats, beats).margin == pytest.approx(1.0)
    assert beat_alignment(on_beats + 0.25, beats).margin == pytest.approx(-1.0)
    # as many notes on beats as off them: the weights (note durations) decide
    both = np.concatenate([on_beats, on_beats + 0.25])
    weights = np.concatenate([np.full(8, 3.0), np.full(8, 1.0)])
    assert beat_alignment(both, beats).margin == pytest.approx(0.0)
    assert beat_alignment(both, beats, weights).margin == pytest.approx(0.5)


def test_tempo_helpers() -> None:
    assert tempo_agrees(61.0, 120.0) and tempo_agrees(238.0, 120.0) and tempo_agrees(125.0, 120.0)
    assert not tempo_agrees(90.0, 120.0) and not tempo_agrees(0.0, 120.0)
    frames = np.full(250, 0)  # 10 s at 25 Hz, a note starting every 0.6 s (100 BPM)
    onsets = np.arange(0, 250, 15)
    assert tempo_agrees(melody_tempo(Melody(frames, onsets, 25.0)), 100.0)
    assert melody_tempo(Melody(frames, onsets[:3], 25.0)) == 0.0
