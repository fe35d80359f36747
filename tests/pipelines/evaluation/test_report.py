"""`singsong eval report` end to end on a tiny corpus of constructed songs (no model rows: they need a trained
cascade; the shipped separator and the bundled retrieval library are used as in a real run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.audio import save_audio
from core.cli import main
from pipelines.evaluation.fit import chromagram
from pipelines.evaluation.report import ReportOptions, build_report, other_vocal_row
from tests.pipelines.evaluation.songs import RATE, song

SEPARATOR = Path(__file__).resolve().parents[3] / "models" / "checkpoints" / "separator"


def _corpus(root: Path) -> Path:
    for index, (tonic, tempo) in enumerate(((0, 120.0), (6, 96.0), (3, 108.0))):
        folder = root / "valid" / f"song_{index:08d}"
        vocal, instrumental = song(tonic, tempo)
        stems = {"vocals": vocal, "other": instrumental, "mixture": vocal + instrumental}
        for name, samples in stems.items():
            save_audio(folder / f"{name}.flac", np.stack([samples, samples]), RATE)
        meta = {"id": folder.name, "seed": index, "tempo": tempo, "files": {n: f"{n}.flac" for n in stems}}
        (folder / "meta.json").write_text(json.dumps(meta))
    return root


def test_report_rows_sections_and_sanity(tmp_path: Path) -> None:
    options = ReportOptions(
        out=tmp_path / "report",
        data=_corpus(tmp_path / "corpus"),
        splits=["valid"],
        seconds=5.0,
        separator_repo=SEPARATOR,
        no_model=True,
        figures=1,
    )
    report = build_report(options)
    assert list(report.summary) == ["isolated", "separated"]
    rows = report.summary["isolated"]
    assert list(rows) == ["truth", "truth +1 semitone", "truth +1/2 beat", "codec(truth)", "other song", "retrieval"]
    # sanity: the song's own instrumental fits better than another song's, than itself a semitone up (harmony)
    # and than itself half a beat late (rhythm)
    assert rows["truth"]["harmonic_margin"] > rows["other song"]["harmonic_margin"] + 0.2
    assert rows["truth"]["harmonic_margin"] > rows["truth +1 semitone"]["harmonic_margin"] + 0.2
    assert rows["truth +1 semitone"]["key_compatible"] == 0.0
    assert rows["truth"]["beat_margin"] > rows["truth +1/2 beat"]["beat_margin"] + 0.3
    assert rows["truth"]["key_compatible"] == 1.0 and rows["other song"]["key_compatible"] < 1.0
    assert rows["truth"]["chroma_similarity"] == pytest.approx(1.0) and rows["truth"]["frechet"] == 0.0
    # retrieval transposes a library song into the vocal's key
    assert rows["retrieval"]["key_compatible"] >= 2 / 3
    # rows without an engine are measured once, against the clean vocal, in both sections
    assert report.summary["separated"]["truth"] == rows["truth"]
    text = (options.out / "report.md").read_text()
    assert "## Isolated vocals" in text and "## Separated vocals" in text and "| retrieval |" in text
    assert (options.out / "metrics.png").stat().st_size > 10_000 and (options.out / "example_00.png").is_file()
    document = json.loads((options.out / "report.json").read_text())
    assert len(document["per_song"]["isolated"]["retrieval"]) == 3


def test_report_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "report", "--out", str(tmp_path / "r"), "--no-model"]) == 2
    assert "exactly one of --data" in capsys.readouterr().err
    (tmp_path / "vocals").mkdir()
    save_audio(tmp_path / "vocals" / "a.wav", song(0)[0], RATE)
    assert main(["eval", "report", "--vocals", str(tmp_path / "vocals"), "--out", str(tmp_path / "r")]) == 2
    assert "needs 2 or more" in capsys.readouterr().err


def test_report_on_plain_vocals_has_engine_rows_only(tmp_path: Path) -> None:
    for index, tonic in enumerate((0, 7)):
        save_audio(tmp_path / "vocals" / f"take{index}.wav", song(tonic)[0], RATE)
    options = ReportOptions(out=tmp_path / "report", vocals=tmp_path / "vocals", seconds=5.0, no_model=True, figures=0)
    report = build_report(options)
    assert list(report.summary) == ["isolated"] and list(report.summary["isolated"]) == ["retrieval"]
    retrieval = report.summary["isolated"]["retrieval"]
    assert "chroma_similarity" not in retrieval and "frechet" not in retrieval  # no ground truth
    # both accompaniments are transposed into their vocal's scale (5 s of a bossa on its V chord can read as the
    # dominant key, so the harmony margin is the firmer check than the key estimate)
    assert retrieval["harmonic_margin"] > 0.2
    assert "| retrieval |" in (options.out / "report.md").read_text()


def test_the_other_vocal_control_gives_each_song_the_next_songs_accompaniment() -> None:
    audios = [np.full(4, 1.0), np.full(6, 2.0), np.full(5, 3.0)]
    rotated = other_vocal_row(audios)
    assert [len(a) for a in rotated] == [4, 6, 5]  # each song's own length
    np.testing.assert_array_equal(rotated[0], [2, 2, 2, 2])  # cut
    np.testing.assert_array_equal(rotated[1], [3, 3, 3, 3, 3, 0])  # zero-padded
    np.testing.assert_array_equal(rotated[2], [1, 1, 1, 1, 0])  # cyclic


def test_codec_from_a_model_or_a_codec_directory() -> None:
    from pipelines.evaluation.report import codec_roundtrip, load_codec
    from pipelines.inference.accompanist import default_model_dir

    codec = load_codec(default_model_dir() / "codec", "cpu")
    assert type(codec) is type(load_codec(None, "cpu"))
    audio = song(0)[1][: 2 * RATE]
    out = codec_roundtrip(codec, audio, RATE, "cpu")
    # the shipped codec is pitch-true: every chroma frame of the round trip follows the original's chords
    before, after = chromagram(audio, RATE), chromagram(out, RATE)
    frames = [np.corrcoef(before[:, i], after[:, i])[0, 1] for i in range(before.shape[1])]
    assert out.shape == audio.shape and np.mean(frames) > 0.8
