"""The pairs stage: oracle and separated inputs, windows, activity filter, manifest, resume, bad tracks."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.audio import load_audio, save_audio
from core.datasets import read_manifest
from pipelines.pairs.activity import ActivitySettings
from pipelines.pairs.build import PairsOptions, build_pairs
from pipelines.pairs.loudness import LoudnessSettings
from pipelines.pairs.manifest import REQUIRED_FIELDS, read_pairs
from tests.pipelines.pairs.conftest import noise, sung

RATE = 16000


def test_oracle_pairs_from_the_synthetic_corpus(tmp_path: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "pairs"
    summary = build_pairs(
        PairsOptions(
            input=tiny_corpus, out=out, window=1.5, hop=1.0, progress=False, activity=ActivitySettings(min_activity=0.0)
        )
    )
    assert summary.processed == 4 and summary.windows == 4 * 3 and summary.kept == 12
    lines = list(read_manifest(out / "manifest.jsonl"))
    assert len(lines) == 12 and all(set(REQUIRED_FIELDS) <= set(line) for line in lines)
    assert all(line["source"] == "oracle" and not Path(line["vocals"]).is_absolute() for line in lines)
    pair = next(read_pairs(out))
    corpus = {json.loads(x)["id"]: json.loads(x) for x in (tiny_corpus / "manifest.jsonl").read_text().splitlines()}
    song = corpus[pair.track.split("/")[-1]]
    start, stop = round(pair.start * RATE), round((pair.start + pair.duration) * RATE)
    mixture = load_audio(tiny_corpus / song["stems"]["mixture"]).samples[:, start:stop]
    vocals, instrumental = load_audio(pair.vocals).samples, load_audio(pair.instrumental).samples
    gain_v = 10 ** (pair.stats["vocals_gain_db"] / 20)
    gain_i = 10 ** (pair.stats["instrumental_gain_db"] / 20)
    # oracle instrumental = sum of drums, bass, other: undoing the gains gives back the mixture
    np.testing.assert_allclose(vocals / gain_v + instrumental / gain_i, mixture, atol=5e-4)
    assert pair.sample_rate == RATE and vocals.shape == (2, int(1.5 * RATE))


def _pair_folder(root: Path, name: str, vocals: np.ndarray, accompaniment: np.ndarray, **extra) -> Path:
    folder = root / name
    save_audio(folder / "vocals.wav", vocals, RATE)
    save_audio(folder / "accompaniment.wav", accompaniment, RATE)
    for stem, samples in extra.items():
        save_audio(folder / f"{stem}.wav", samples, RATE)
    return folder


def test_windows_without_singing_are_dropped(tmp_path: Path) -> None:
    vocals = np.concatenate([sung(2.0, RATE), np.zeros((2, 2 * RATE), np.float32), sung(2.0, RATE)], axis=1)
    _pair_folder(tmp_path / "musdb", "song", vocals, noise(6.0, RATE, level_db=-25.0))
    out = tmp_path / "pairs"
    summary = build_pairs(PairsOptions(input=tmp_path / "musdb", out=out, window=2.0, progress=False))
    assert (summary.windows, summary.kept, summary.dropped) == (3, 2, 1)
    pairs = list(read_pairs(out))
    assert [p.window for p in pairs] == [0, 2] and [p.start for p in pairs] == [0.0, 4.0]
    assert all(p.stats["vocal_activity"] > 0.9 for p in pairs)
    assert all(p.stats["vocals_lufs"] is not None and p.stats["median_f0_hz"] for p in pairs)
    assert not (out / "song" / "w0001_vocals.flac").exists()


def test_musdb_style_folder_with_only_a_mixture_uses_mixture_minus_vocals(tmp_path: Path) -> None:
    vocals, band = sung(2.0, RATE), noise(2.0, RATE, level_db=-30.0)
    folder = tmp_path / "musdb" / "test" / "song"
    save_audio(folder / "vocals.wav", vocals, RATE, subtype="FLOAT")
    save_audio(folder / "mixture.wav", vocals + band, RATE, subtype="FLOAT")
    out = tmp_path / "pairs"
    build_pairs(
        PairsOptions(
            input=tmp_path / "musdb", out=out, window=2.0, progress=False, loudness=LoudnessSettings(mode="none")
        )
    )
    (pair,) = read_pairs(out)
    assert pair.split == "test" and pair.track == "test/song"
    np.testing.assert_allclose(load_audio(pair.instrumental).samples, band, atol=2e-4)


def test_separated_output_feeds_the_same_manifest(tmp_path: Path) -> None:
    sep = tmp_path / "sep"
    save_audio(sep / "train" / "a" / "vocals.flac", sung(3.0, RATE), RATE)
    save_audio(sep / "train" / "a" / "instrumental.flac", noise(3.0, RATE), RATE)
    (sep / "manifest.jsonl").write_text(
        json.dumps(
            {
                "id": "train/a",
                "split": "train",
                "duration": 3.0,
                "sample_rate": RATE,
                "model": "m-1234abcd.th",
                "stems": {"vocals": "train/a/vocals.flac", "instrumental": "train/a/instrumental.flac"},
            }
        )
        + "\n"
    )
    out = tmp_path / "pairs"
    build_pairs(PairsOptions(input=sep, out=out, window=3.0, progress=False))
    (pair,) = read_pairs(out)
    assert pair.source == "separated:m-1234abcd.th" and pair.id == "train/a/w0000" and pair.split == "train"


def test_rerun_skips_and_a_broken_track_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "musdb"
    _pair_folder(root, "good", sung(2.0, RATE), noise(2.0, RATE))
    bad = _pair_folder(root, "bad", sung(2.0, RATE), noise(2.0, RATE))
    (bad / "accompaniment.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "pairs"
    with caplog.at_level(logging.ERROR, logger="pipelines.pairs.build"):
        first = build_pairs(PairsOptions(input=root, out=out, window=2.0, progress=False))
    assert first.processed == 1 and [k for k, _ in first.failed] == ["bad"]
    assert "skipping bad" in caplog.text
    stamp = (out / "good" / "w0000_vocals.flac").stat().st_mtime_ns
    again = build_pairs(PairsOptions(input=root, out=out, window=2.0, progress=False))
    assert (again.processed, again.skipped) == (0, 1) and again.manifest_entries == 1
    assert (out / "good" / "w0000_vocals.flac").stat().st_mtime_ns == stamp
    # new settings: redone, and windows of the old settings do not linger
    build_pairs(PairsOptions(input=root, out=out, window=1.0, progress=False))
    assert sorted(p.name for p in (out / "good").glob("*.flac")) == [
        "w0000_instrumental.flac",
        "w0000_vocals.flac",
        "w0001_instrumental.flac",
        "w0001_vocals.flac",
    ]
    shutil.rmtree(bad)
    assert len(list(read_pairs(out))) == 2


def test_shards_of_the_pairs_stage(tmp_path: Path, tiny_corpus: Path) -> None:
    out = tmp_path / "pairs"
    counts = [
        build_pairs(
            PairsOptions(
                input=tiny_corpus,
                out=out,
                window=2.0,
                shard=f"{i}/3",
                progress=False,
                activity=ActivitySettings(min_activity=0.0),
            )
        ).processed
        for i in range(3)
    ]
    assert sum(counts) == 4
    assert len({p.track for p in read_pairs(out)}) == 4
