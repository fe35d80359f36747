"""`singsong eval accompaniment`: the tempo/key measures on audio with known answers, and the command end to end
with a tiny random model on a small stem corpus."""

import json

import numpy as np
import pytest
import soundfile as sf

from core.cli import main
from core.errors import SingsongError
from pipelines.evaluation.accompaniment import (
    estimated_tempo,
    evaluate_accompaniment,
    key_correlation,
    key_profile,
    tempo_hit,
)

from ..inference.test_accompanist import _make_model

SR = 22050


def _clicks(tempo: float, seconds: float) -> np.ndarray:
    wave = np.zeros(int(seconds * SR), np.float32)
    burst = (np.random.default_rng(0).standard_normal(400) * np.exp(-np.arange(400) / 60)).astype(np.float32)
    for beat in np.arange(0, seconds, 60 / tempo):
        start = int(beat * SR)
        wave[start : start + 400] += burst[: len(wave) - start]
    return wave


def _chords(root_midi: int, seconds: float, progression=(0, 5, 7, 0)) -> np.ndarray:
    """Triads of the major key on `root_midi` (I - IV - V - I by default), one per second."""
    t = np.arange(int(seconds * SR)) / SR
    wave = np.zeros_like(t)
    for second, offset in enumerate(list(progression) * int(np.ceil(seconds / len(progression)))):
        span = (t >= second) & (t < second + 1)
        for interval in (0, 4, 7):
            frequency = 440 * 2 ** ((root_midi + offset + interval - 69) / 12)
            wave[span] += np.sin(2 * np.pi * frequency * t[span])
    return (0.2 * wave).astype(np.float32)


def test_tempo_hits_allow_half_and_double_but_nothing_else():
    assert tempo_hit(120, 120) and tempo_hit(60.5, 120) and tempo_hit(236, 118)
    assert not tempo_hit(100, 120) and not tempo_hit(90, 120) and not tempo_hit(160, 120)


def test_beat_tracker_finds_a_click_track_tempo():
    assert tempo_hit(estimated_tempo(_clicks(112, 8.0), SR), 112)
    assert not tempo_hit(estimated_tempo(_clicks(112, 8.0), SR), 140)


def test_key_correlation_is_high_for_the_right_key_and_low_for_a_distant_one():
    assert np.argmax(key_profile("D minor")) == 2 and np.argmax(key_profile("Bb major")) == 10
    music = _chords(60, 8.0)  # C major
    assert key_correlation(music, SR, "C major") > 0.6
    assert key_correlation(music, SR, "F# major") < 0.0
    assert key_correlation(np.zeros(SR, np.float32), SR, "C major") == 0.0
    with pytest.raises(SingsongError, match="cannot read key"):
        key_profile("H dorian")


def _corpus(root, songs=3):
    lines = []
    for i in range(songs):
        folder = root / "test" / f"song_{i}"
        folder.mkdir(parents=True)
        tempo, seconds = 100.0 + 10 * i, 6.0
        stems = {
            "vocals": _chords(67 + i, seconds) * 0.3,
            "drums": _clicks(tempo, seconds),
            "other": _chords(60, seconds, progression=(0,)) * 0.5,
        }  # one sustained chord: no extra onsets
        stems["mixture"] = sum(stems.values())
        for name, wave in stems.items():
            sf.write(folder / f"{name}.flac", wave, SR)
        entry = {
            "id": f"song_{i}",
            "split": "test",
            "tempo": tempo,
            "key": "C major",
            "stems": {name: f"test/song_{i}/{name}.flac" for name in stems},
        }
        lines.append(json.dumps(entry))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def test_the_command_scores_every_song_against_both_references(tmp_path, capsys):
    model = _make_model(tmp_path / "model")
    corpus = _corpus(tmp_path / "corpus")
    report = evaluate_accompaniment(model, corpus, seconds=6.0)
    assert [s.song for s in report.songs] == ["song_0", "song_1", "song_2"]
    summary = report.summary()
    assert summary["songs"] == 3
    assert summary["source/tempo_hit_rate"] == 1.0  # click tracks at the declared tempo
    assert summary["source/key_correlation"] > 0.6  # C major chords (+ the vocal's triads) in C major
    for name in ("model", "other_vocal", "reference"):
        assert 0.0 <= summary[f"{name}/tempo_hit_rate"] <= 1.0
        assert -1.0 <= summary[f"{name}/key_correlation"] <= 1.0
    # "other vocal" is the next song's accompaniment scored against this song: a rotation of the model's scores
    # whenever the songs share a key, as here
    assert sorted(s.other_vocal_key_correlation for s in report.songs) == pytest.approx(
        sorted(s.key_correlation for s in report.songs)
    )
    out = tmp_path / "report.json"
    main(
        [
            "eval",
            "accompaniment",
            "--model",
            str(model),
            "--data",
            str(corpus),
            "--seconds",
            "2",
            "--max-songs",
            "2",
            "--json",
            str(out),
        ]
    )
    assert "other vocal" in capsys.readouterr().out
    document = json.loads(out.read_text())
    assert len(document["songs"]) == 2 and document["summary"]["songs"] == 2


def test_corpora_without_tempo_and_key_are_refused_with_the_line(tmp_path):
    with pytest.raises(SingsongError, match=r"manifest\.jsonl is missing"):
        evaluate_accompaniment(None, tmp_path)
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"split": "test", "stems": {"vocals": "v.flac"}}) + "\n")
    with pytest.raises(SingsongError, match=r"manifest\.jsonl:1: entry needs tempo, key"):
        evaluate_accompaniment(None, tmp_path)
