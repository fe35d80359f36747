"""End-to-end checks of the synthetic corpus: the rendered audio must agree with the declared labels.

A small corpus is rendered once per test session; every musical claim in `meta.json` (tempo, key, chords)
is then checked against the audio with independent estimators from librosa.
"""

import json
import os

import librosa
import numpy as np
import pytest
import soundfile as sf

from core.cli import main
from pipelines.corpus.generate import CorpusSettings, generate_corpus, split_for_seed
from pipelines.corpus.song import STEMS

# A deeper check over many styles: SINGSONG_CORPUS_TEST_SONGS=40 SINGSONG_CORPUS_TEST_SEED=500 pytest ...
SONGS = int(os.environ.get("SINGSONG_CORPUS_TEST_SONGS", "4"))
SEED = int(os.environ.get("SINGSONG_CORPUS_TEST_SEED", "100"))
SECONDS = 10.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    summary = generate_corpus(out, CorpusSettings(songs=SONGS, seconds=SECONDS, seed=SEED), progress=False)
    assert summary.rendered == SONGS
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return out, entries


def _load(out, entry, stem, sr=None):
    audio, rate = sf.read(out / entry["stems"][stem], dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if sr is not None and sr != rate:
        mono = librosa.resample(mono, orig_sr=rate, target_sr=sr)
        rate = sr
    return mono, rate


def _meta(out, entry):
    return json.loads((out / entry["meta"]).read_text())


def test_layout_manifest_and_metadata(corpus):
    out, entries = corpus
    assert len(entries) == SONGS
    for entry in entries:
        assert entry["split"] == split_for_seed(entry["seed"])
        for stem in (*STEMS, "mixture"):
            info = sf.info(out / entry["stems"][stem])
            assert info.samplerate == 44100 and info.channels == 2
            assert info.frames == round(SECONDS * 44100)
        assert (out / entry["midi"]).is_file()
        meta = _meta(out, entry)
        assert meta["seed"] == entry["seed"] and meta["style"] and meta["key"]
        assert meta["chords"][0]["start"] == 0 and meta["chords"][-1]["end"] == pytest.approx(SECONDS)
        assert {"symbol", "root", "pitch_classes", "bar"} <= set(meta["chords"][0])
    assert len({e["style"] for e in entries}) >= 2, "styles should vary across seeds"


def test_stems_sum_to_the_mixture(corpus):
    out, entries = corpus
    for entry in entries:
        stems = [sf.read(out / entry["stems"][s], dtype="float32")[0] for s in STEMS]
        mixture = sf.read(out / entry["stems"]["mixture"], dtype="float32")[0]
        # 16-bit files: each of the five files is off by at most half a quantisation step.
        assert np.abs(sum(stems) - mixture).max() < 3.0 / 32768
        assert np.abs(mixture).max() <= 0.9
        for stem in stems:
            assert np.sqrt(np.mean(stem**2)) > 1e-3, "every stem carries signal"


def test_declared_tempo_matches_a_beat_tracker_on_the_drum_stem(corpus):
    out, entries = corpus
    for entry in entries:
        drums, sr = _load(out, entry, "drums", sr=22050)
        tempo, beats = librosa.beat.beat_track(y=drums, sr=sr, units="time")
        tempo = float(np.atleast_1d(tempo)[0])
        declared = entry["tempo"]
        # Beat trackers may lock onto half or double the tempo (the metrical level is ambiguous); the
        # tempo itself must agree within 4%, and the tracked beats must sit on the declared beat grid.
        ratio = min((tempo * m / declared for m in (0.5, 1.0, 2.0)), key=lambda r: abs(np.log(r)))
        assert abs(ratio - 1) < 0.04, f"{entry['id']}: tracker {tempo:.1f} BPM vs declared {declared:.1f}"
        half_beat = 30.0 / declared
        offsets = np.abs(((beats + half_beat / 2) % half_beat) - half_beat / 2)
        assert np.mean(offsets < 0.07) > 0.8, f"{entry['id']}: beats off the declared grid"


def test_vocal_pitches_fall_in_the_declared_key(corpus):
    out, entries = corpus
    for entry in entries:
        meta = _meta(out, entry)
        steps = (0, 2, 4, 5, 7, 9, 11) if meta["mode"] == "major" else (0, 2, 3, 5, 7, 8, 10)
        scale = {(meta["tonic"] + s) % 12 for s in steps}
        vocal, sr = _load(out, entry, "vocals", sr=16000)
        f0, voiced, probability = librosa.pyin(vocal, fmin=70, fmax=900, sr=sr, frame_length=1024)
        sure = voiced & (probability > 0.5)
        assert sure.sum() > 50, f"{entry['id']}: too few voiced frames"
        pitch_classes = np.round(librosa.hz_to_midi(f0[sure])).astype(int) % 12
        in_key = np.mean([pc in scale for pc in pitch_classes])
        assert in_key > 0.85, f"{entry['id']}: only {in_key:.0%} of voiced frames in {meta['key']}"


def _best_root(profile, chord):
    """Root of the transposition of the declared chord shape that best explains a chroma profile.

    Comparing transpositions of the same shape avoids the ambiguity of fitting triads to seventh chords
    (Cm7 contains an Eb major triad).
    """
    intervals = [(pc - chord["root"]) % 12 for pc in chord["pitch_classes"]]
    return max(range(12), key=lambda root: profile[[(root + i) % 12 for i in intervals]].sum())


def test_other_stem_chroma_matches_the_declared_chords(corpus):
    out, entries = corpus
    for entry in entries:
        meta = _meta(out, entry)
        other, sr = _load(out, entry, "other", sr=22050)
        hop = 512
        # norm=None keeps frames energy-weighted: the silence between staccato stabs must not count as much
        # as the stabs themselves.
        chroma = librosa.feature.chroma_cqt(y=other, sr=sr, hop_length=hop, norm=None)
        times = librosa.frames_to_time(np.arange(chroma.shape[1]), sr=sr, hop_length=hop)
        fractions, roots_found, beats_shifted = [], 0, 0
        rng = np.random.default_rng(0)
        for chord in meta["chords"]:
            span = (times >= chord["start"] + 0.05) & (times < chord["end"] - 0.05)
            if span.sum() < 4:
                continue
            profile = chroma[:, span].mean(axis=1)
            profile /= profile.sum()
            declared = profile[list(chord["pitch_classes"])].sum()
            fractions.append(declared)
            roots_found += _best_root(profile, chord) == chord["root"]
            # The same chord shape on a random other root must explain the audio worse.
            shift = int(rng.integers(1, 12))
            beats_shifted += declared > profile[[(pc + shift) % 12 for pc in chord["pitch_classes"]]].sum()
        assert fractions, f"{entry['id']}: no chord long enough to analyse"
        uniform = np.mean([len(c["pitch_classes"]) / 12 for c in meta["chords"]])
        assert np.median(fractions) > uniform + 0.2, f"{entry['id']}: chroma does not follow the chords"
        assert roots_found / len(fractions) >= 0.7, f"{entry['id']}: chord roots not found in the audio"
        assert beats_shifted / len(fractions) >= 0.85


def test_rendering_is_deterministic_and_reruns_do_no_work(tmp_path):
    settings = CorpusSettings(songs=2, seconds=4.0, seed=7, format="wav")
    first = generate_corpus(tmp_path / "a", settings, progress=False)
    generate_corpus(tmp_path / "b", settings, progress=False)
    assert first.rendered == 2
    for path in (tmp_path / "a").glob("*/song_*/*.wav"):
        twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
        assert np.array_equal(sf.read(path)[0], sf.read(twin)[0]), path.name

    again = generate_corpus(tmp_path / "a", settings, progress=False)
    assert (again.rendered, again.skipped) == (0, 2)
    # An unfinished song (no meta.json) is rendered again; the other one is left alone.
    victim = next((tmp_path / "a").glob("*/song_*/meta.json"))
    victim.unlink()
    resumed = generate_corpus(tmp_path / "a", settings, progress=False)
    assert (resumed.rendered, resumed.skipped) == (1, 1)
    assert len((tmp_path / "a" / "manifest.jsonl").read_text().splitlines()) == 2


def test_cli_renders_and_rejects_bad_options(tmp_path, capsys):
    assert main(["corpus", "synth", "--out", str(tmp_path / "c"), "--songs", "1", "--seconds", "3", "--quiet"]) == 0
    assert "rendered 1 songs" in capsys.readouterr().out
    assert main(["corpus", "synth", "--out", str(tmp_path / "d"), "--songs", "1", "--styles", "polka9"]) == 2
    assert "unknown style(s) polka9" in capsys.readouterr().err
    assert main(["corpus", "synth", "--out", str(tmp_path / "d"), "--songs", "0"]) == 2
    assert "--songs must be at least 1" in capsys.readouterr().err
