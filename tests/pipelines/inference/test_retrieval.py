"""The retrieval baseline engine: matching, alignment, looping, and whole accompaniments that must fit.

The end-to-end test builds a two-song library from constructed songs (tests/pipelines/evaluation/songs.py)
and accompanies a vocal in another key and tempo: the result must be transposed and stretched to fit it,
which the fit metrics check.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.audio import Audio, load_audio, save_audio
from core.cli import main
from pipelines.evaluation.fit import Key, Melody, fit_scores, vocal_melody
from pipelines.inference.engine import GenerationOptions
from pipelines.inference.engine_loader import EngineConfigError, load_engine
from pipelines.inference.retrieval import (
    RetrievalEngine,
    VocalAnalysis,
    best_offset,
    loop_to_length,
    rank_matches,
)
from pipelines.inference.retrieval_library import (
    LibraryEntry,
    LibraryError,
    RetrievalLibrary,
    build_library,
    write_index,
    write_vorbis,
)
from pipelines.inference.stretch import rubberband_available, shift_and_stretch
from tests.pipelines.evaluation.songs import RATE, SECONDS, song


def _entry(file: str, key: str, tempo: float) -> LibraryEntry:
    parsed = Key.parse(key)
    beats = tuple(np.arange(0, SECONDS, 60 / tempo).round(4))
    return LibraryEntry(file, 0, "test", parsed.tonic, parsed.mode, tempo, 4, beats, SECONDS)


def _analysis(key: str, tempo: float) -> VocalAnalysis:
    return VocalAnalysis(Melody(np.zeros(10, np.int64), np.zeros(0, np.int64), 25.0), Key.parse(key), tempo)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("library")
    entries = []
    for tonic, tempo, name in ((0, 100.0, "c_major_100.ogg"), (6, 90.0, "fsharp_major_90.ogg")):
        _, instrumental = song(tonic, tempo)
        write_vorbis(root / name, instrumental[None], RATE)
        entries.append(_entry(name, Key(tonic, "major").name, tempo))
    write_index(root, entries, {"test": True})
    return root


def test_ranking_prefers_the_nearest_key_and_tempo() -> None:
    entries = [
        _entry("c100", "C major", 100),
        _entry("d150", "D major", 150),
        _entry("bm100", "B minor", 100),
        _entry("d98", "D major", 98),
    ]
    ranked = rank_matches(_analysis("D major", 100), entries)
    assert [m.entry.file for m in ranked] == ["d98", "bm100", "c100", "d150"]
    assert ranked[0].semitones == 0 and ranked[0].rate == pytest.approx(100 / 98)
    assert ranked[1].semitones == 0  # B minor is D major's relative: same scale, no transposition
    assert ranked[2].semitones == 2  # C major up a whole tone
    # a vocal tempo read at double time is matched at the level closest to each entry's tempo
    assert rank_matches(_analysis("D major", 196), entries)[0].target_tempo == pytest.approx(98)
    # transpositions take the short way round: C major -> A major is 3 down, not 9 up
    assert rank_matches(_analysis("A major", 100), [_entry("c", "C major", 100)])[0].semitones == -3


def test_best_offset_finds_the_vocal_downbeat() -> None:
    beats = np.arange(0, 8, 0.5)  # 120 BPM, 4/4: bars of 2 s
    onsets = np.array([0.7, 1.2, 1.45, 2.7, 3.2, 4.7, 5.2, 5.45])  # long notes on 0.7, 2.7, 4.7: downbeats
    weights = np.array([4.0, 2, 1, 4, 2, 4, 2, 1])
    assert best_offset(onsets, weights, beats, 4) == pytest.approx(0.7, abs=0.011)


def test_loop_to_length_repeats_whole_loops_with_the_offset() -> None:
    signal = np.arange(100, dtype=np.float32)[None] + 1
    out = loop_to_length(signal, loop_frames=40, offset=10, length=130, fade=0)
    assert out.shape == (1, 130)
    expected = signal[0, (np.arange(130) - 10) % 40]
    np.testing.assert_array_equal(out[0], expected)
    faded = loop_to_length(np.ones((2, 60), np.float32), loop_frames=40, offset=0, length=150, fade=8)
    assert np.allclose(faded, 1.0)  # crossfades of the tail into the next repeat keep a constant level


@pytest.mark.skipif(not rubberband_available(), reason="rubberband-cli is not installed (scripts/setup.sh does)")
@pytest.mark.parametrize(("rate", "semitones"), [(1.25, 2), (1.0, -3), (0.8, 0)])
def test_rubberband_moves_pitch_and_length(rate: float, semitones: int) -> None:
    # (librosa's fallback is exercised by benchmarks/stretch.py: its first call compiles for ~40 s)
    t = np.arange(2 * RATE) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)[None]
    out = shift_and_stretch(tone, RATE, rate=rate, semitones=semitones, method="rubberband")
    assert out.shape[1] == pytest.approx(tone.shape[1] / rate, rel=0.02)
    spectrum = np.abs(np.fft.rfft(out[0, 2000:-2000]))
    peak = np.fft.rfftfreq(out.shape[1] - 4000, 1 / RATE)[spectrum.argmax()]
    assert peak == pytest.approx(440.0 * 2 ** (semitones / 12), rel=0.01)


def test_retrieval_accompaniment_fits_a_vocal_in_another_key_and_tempo(library: Path) -> None:
    vocal_samples, _ = song(2, 110.0)  # D major, 110 BPM: nearest entry is C major at 100 BPM
    vocal = Audio(np.stack([vocal_samples, vocal_samples]), RATE)
    engine = load_engine("retrieval", library)
    assert isinstance(engine, RetrievalEngine)
    takes = engine.accompany_batch([vocal], [GenerationOptions(seed=5, takes=2)])[0]
    assert [t.take for t in takes] == [0, 1] and [t.seed for t in takes] == [5, 6]
    assert takes[0].melody is not None and takes[0].melody is takes[1].melody  # one melody check per vocal
    assert takes[0].melody.coverage > 0.5 and not takes[0].melody.warnings
    first = takes[0]
    assert first.accompaniment.shape == vocal.samples.shape and first.mix.shape == vocal.samples.shape
    assert np.abs(first.mix).max() <= 10 ** (-1 / 20) + 1e-6
    melody = vocal_melody(vocal_samples, RATE)
    scores = fit_scores(melody, first.accompaniment.mean(axis=0), RATE)
    assert scores.key_compatible and scores.accompaniment_key == "D major"
    assert scores.tempo_agrees and abs(scores.accompaniment_tempo / 110 - 1) < 0.08
    assert scores.harmonic_margin > 0.2
    assert scores.beat_margin > 0.3
    # take 2 is the next-best entry (F# major, 4 semitones away): still transposed into D major
    second = fit_scores(melody, takes[1].accompaniment.mean(axis=0), RATE)
    assert Key.parse(second.accompaniment_key).compatible(Key.parse("D major"))


def test_noise_and_silence_are_accompanied_with_a_warning(library: Path) -> None:
    engine = load_engine("retrieval", library)
    noise = np.random.default_rng(0).standard_normal((1, RATE * 3)).astype(np.float32) * 0.1
    for samples in (noise, np.zeros((1, RATE * 3), np.float32)):  # no notes at all: used to crash note_durations
        (take,) = engine.accompany(Audio(samples, RATE), GenerationOptions(seed=0))
        assert take.accompaniment.shape == samples.shape and np.abs(take.accompaniment).max() > 0.01
        assert take.melody is not None and take.melody.coverage == 0.0 and take.melody.low


def test_accompany_command_with_the_retrieval_engine(library: Path, tmp_path: Path) -> None:
    vocal_samples, _ = song(0, 100.0)
    save_audio(tmp_path / "vocal.wav", vocal_samples, RATE)
    code = main(
        [
            "accompany",
            str(tmp_path / "vocal.wav"),
            "-o",
            str(tmp_path / "song.wav"),
            "--engine",
            "retrieval",
            "--model",
            str(library),
            "--stems",
            str(tmp_path / "stems"),
        ]
    )
    assert code == 0
    mixed = load_audio(tmp_path / "song.wav")
    assert mixed.num_frames == len(vocal_samples) and mixed.sample_rate == RATE
    assert load_audio(tmp_path / "stems" / "accompaniment.wav").samples.std() > 0.01


def test_engine_names_and_library_errors(library: Path, tmp_path: Path) -> None:
    with pytest.raises(EngineConfigError, match="model, retrieval"):
        load_engine("retrievl")
    with pytest.raises(LibraryError, match=r"index\.json is missing"):
        RetrievalLibrary.load(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    document = json.loads((library / "index.json").read_text())
    (broken / "index.json").write_text(json.dumps(document))
    with pytest.raises(LibraryError, match="2 library files are missing"):
        RetrievalLibrary.load(broken)
    with pytest.raises(LibraryError, match="not in the train split"):
        build_library(tmp_path / "out", [100_000, 5])  # seed 5 is a validation song of the corpus


def test_bundled_library() -> None:
    from pipelines.corpus.generate import split_for_seed
    from pipelines.corpus.styles import STYLES

    library = RetrievalLibrary.load()
    assert {e.style for e in library.entries} == set(STYLES)
    assert all(split_for_seed(e.seed) == "train" for e in library.entries)
    assert {e.mode for e in library.entries} == {"major", "minor"}
    assert sum(library.path(e).stat().st_size for e in library.entries) < 6.2e6  # "a few MB": 6.0 MB
