import json

import pytest

from core.datasets import DatasetError, list_audio_files


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folder_search_filters_by_stem_and_split(tmp_path):
    _touch(tmp_path / "train" / "a" / "vocals.flac")
    _touch(tmp_path / "train" / "a" / "mixture.flac")
    _touch(tmp_path / "test" / "b" / "vocals.wav")
    _touch(tmp_path / "notes.txt")
    assert len(list_audio_files(tmp_path)) == 3
    assert [p.name for p in list_audio_files(tmp_path, stem="vocals")] == ["vocals.wav", "vocals.flac"]
    assert list_audio_files(tmp_path, stem="vocals", split="train") == [tmp_path / "train" / "a" / "vocals.flac"]


def test_manifest_paths_are_relative_to_the_manifest(tmp_path):
    entries = [
        {"id": "s1", "split": "train", "stems": {"vocals": "train/s1/vocals.flac", "mixture": "train/s1/mix.flac"}},
        {"id": "s2", "split": "test", "stems": {"vocals": "test/s2/vocals.flac"}},
    ]
    (tmp_path / "manifest.jsonl").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert list_audio_files(tmp_path, stem="vocals", split="test") == [(tmp_path / "test/s2/vocals.flac")]
    assert list_audio_files(tmp_path / "manifest.jsonl") == [(tmp_path / "train/s1/mix.flac")]


def test_errors_name_the_source(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        list_audio_files(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no audio files found for stem='vocals'"):
        list_audio_files(tmp_path, stem="vocals")
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\nnot json\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: malformed"):
        list_audio_files(tmp_path / "bad.jsonl")
