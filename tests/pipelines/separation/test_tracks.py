"""Track listing and the deterministic shard partition."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.datasets import DatasetError
from core.errors import SingsongError
from pipelines.separation.tracks import Shard, list_tracks, partition, safe_key, shard_of


def test_shards_are_disjoint_cover_everything_and_are_balanced() -> None:
    keys = [f"train/song_{i:08d}" for i in range(2000)]
    groups = partition(keys, 4)
    assert sorted(k for g in groups for k in g) == sorted(keys)
    assert all(400 < len(g) < 600 for g in groups)
    for index, group in enumerate(groups):
        assert all(key in Shard(index, 4) for key in group)
        assert not any(key in Shard((index + 1) % 4, 4) for key in group)


def test_a_tracks_shard_depends_on_its_key_only() -> None:
    # Pinned values: every machine (and every future version) must compute the same partition.
    assert [shard_of(f"song{i}", 8) for i in range(6)] == [shard_of(f"song{i}", 8) for i in range(6)]
    assert (
        shard_of("train/song_00000042", 16)
        == int.from_bytes(__import__("hashlib").sha256(b"train/song_00000042").digest()[:8], "big") % 16
    )
    before = {k: shard_of(k, 5) for k in (f"a{i}" for i in range(50))}
    after = {k: shard_of(k, 5) for k in (f"a{i}" for i in range(100))}  # the corpus grew
    assert all(after[k] == v for k, v in before.items())


@pytest.mark.parametrize("text", ["3/3", "1", "-1/2", "a/b", "2/0"])
def test_bad_shard_specs_are_refused(text: str) -> None:
    with pytest.raises(SingsongError, match="--shard"):
        Shard.parse(text)


def test_manifest_listing_uses_split_and_id(tiny_corpus: Path) -> None:
    jobs = list_tracks(tiny_corpus)
    assert len(jobs) == 4
    for job in jobs:
        assert job.key == f"{job.split}/{job.meta['manifest_id']}" and job.path.name == "mixture.flac"
    union = list_tracks(tiny_corpus, shard=Shard(0, 2)) + list_tracks(tiny_corpus, shard=Shard(1, 2))
    assert sorted(j.key for j in union) == sorted(j.key for j in jobs)


def test_musdb_style_folders_list_one_track_per_song(tmp_path: Path, tiny_corpus: Path) -> None:
    for song in sorted(tiny_corpus.glob("*/song_*"))[:2]:
        shutil.copytree(song, tmp_path / "musdb" / "train" / song.name)
    (tmp_path / "musdb" / "loose.flac").write_bytes(
        (
            tiny_corpus / json.loads((tiny_corpus / "manifest.jsonl").read_text().splitlines()[0])["stems"]["vocals"]
        ).read_bytes()
    )
    jobs = list_tracks(tmp_path / "musdb")
    assert [j.key for j in jobs] == [
        "loose",
        *sorted(f"train/{p.name}" for p in (tmp_path / "musdb" / "train").iterdir()),
    ]
    assert all(j.path.name == "mixture.flac" for j in jobs[1:]) and jobs[1].split == "train"


def test_unsafe_keys_and_empty_inputs(tmp_path: Path) -> None:
    assert safe_key("a b/c?d.wav") == "a_b/c_d.wav"
    with pytest.raises(SingsongError):
        safe_key("../../etc/passwd")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no audio"):
        list_tracks(tmp_path / "empty")
